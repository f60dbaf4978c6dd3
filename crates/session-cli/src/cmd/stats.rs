//! `sessionctl stats`: sessions per part and server (SCAN under the prefix, never `KEYS`),
//! sessions without expiry, TTL and size histograms and memory, from a sample of each server's
//! sessions (`--sample N`) or from all of them (`--exact`).
//!
//! A key named like a session that holds a move's marker or a write's leftover records (a
//! string starting with `,`, for a short while) is no session to any read, so it is not
//! counted as one but apart: the sampled keys say so when read, the others are asked for
//! their first byte alone (`GETRANGE key 0 0`, a thousand keys per round trip).

use std::{path::Path, time::Duration};

use serde::Serialize;

use crate::{args::StatsArgs, failure::Failure, load, parts, scan};

/// Sessions per `SCAN` and per pipelined read.
const BATCH: usize = 1000;

/// Upper bounds of the TTL buckets, in seconds.
const TTL_BUCKETS: [(u64, &str); 5] = [
    (60, "< 1 min"),
    (600, "< 10 min"),
    (3600, "< 1 h"),
    (86_400, "< 1 day"),
    (604_800, "< 7 days"),
];

/// Upper bounds of the size buckets, in bytes.
const SIZE_BUCKETS: [(usize, &str); 5] = [
    (256, "< 256 B"),
    (1024, "< 1 KiB"),
    (4096, "< 4 KiB"),
    (16_384, "< 16 KiB"),
    (65_536, "< 64 KiB"),
];

#[derive(Serialize)]
struct GroupStats {
    name: String,
    /// Keys that hold a session (moved markers and leftover records left out).
    sessions: usize,
    /// Keys named like a session that hold a move's marker or a write's leftover records
    /// (both start with `,`, and go within a short while): no session to any read.
    moved_markers_or_records: usize,
    /// Keys under the prefix that are not sessions of this library (nor index entries); for
    /// the file store, entries of its directory that are not session files where it keeps
    /// them (nor its own).
    other_keys: usize,
    /// Whether the group is the file store (for the words of the text output).
    #[serde(skip)]
    file_store: bool,
    /// Entries of the session index (`session_redis_index_key`): one per indexed value.
    index_entries: usize,
    /// How many sessions the histograms were made from.
    sampled: usize,
    /// Among the sampled: without expiry.
    no_ttl: usize,
    /// Estimated over all sessions (exact when every session was sampled).
    no_ttl_estimated: usize,
    /// Bytes Redis uses for the sampled sessions, scaled to all (`MEMORY USAGE`); null for
    /// the file store.
    memory_bytes_estimated: Option<u64>,
    ttl_histogram: Vec<(String, usize)>,
    size_histogram: Vec<(String, usize)>,
    /// Sessions that could not be read (wrong key type, not UTF-8).
    unreadable: usize,
}

/// Prints the statistics.
pub async fn run(config: Option<&Path>, json: bool, args: StatsArgs) -> Result<(), Failure> {
    let (_config, plan) = load::app_config(config)?;
    let limit = if args.exact || args.sample == 0 {
        usize::MAX
    } else {
        args.sample
    };
    let mut all = Vec::new();
    for part in parts::parts(&plan.backend)? {
        for mut group in scan::groups(&part, BATCH).await? {
            all.push(group_stats(&mut group, limit).await?);
        }
    }
    if json {
        out!("{}", crate::text::json_pretty(&all))?;
        return Ok(());
    }
    let total: usize = all.iter().map(|g| g.sessions).sum();
    out!("sessions: {total}")?;
    for g in &all {
        // The name holds a node's address as the cluster announces it: escaped.
        out!("{}", crate::text::printable(&g.name))?;
        out!("  sessions:        {}", g.sessions)?;
        let how = if g.sampled == g.sessions {
            "exact".to_owned()
        } else {
            format!("estimated from {} sampled", g.sampled)
        };
        out!("  without TTL:     {} ({how})", g.no_ttl_estimated)?;
        if let Some(bytes) = g.memory_bytes_estimated {
            out!("  memory:          {bytes} bytes ({how})")?;
        }
        if g.index_entries > 0 {
            out!(
                "  index entries:   {} (session_redis_index_key: one per indexed value)",
                g.index_entries
            )?;
        }
        if g.moved_markers_or_records > 0 {
            out!(
                "  moved markers:   {} (or a write's leftover records: under a session's key for a short while, no session)",
                g.moved_markers_or_records
            )?;
        }
        if g.other_keys > 0 && g.file_store {
            out!(
                "  other entries:   {} (in the session directory, not session files where the store keeps them)",
                g.other_keys
            )?;
        } else if g.other_keys > 0 {
            out!(
                "  other keys:      {} (under the prefix, not sessions)",
                g.other_keys
            )?;
        }
        if g.unreadable > 0 {
            out!("  unreadable:      {}", g.unreadable)?;
        }
        out!("  TTL:             {}", histogram(&g.ttl_histogram))?;
        out!("  size:            {}", histogram(&g.size_histogram))?;
    }
    Ok(())
}

fn histogram(buckets: &[(String, usize)]) -> String {
    buckets
        .iter()
        .map(|(label, n)| format!("{label}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statistics of one group, walked a batch at a time: the first `limit` sessions of the
/// walk are read, the others only told from markers.
async fn group_stats(group: &mut scan::Group, limit: usize) -> Result<GroupStats, Failure> {
    let mut ttl = vec![0usize; TTL_BUCKETS.len() + 2];
    let mut size = vec![0usize; SIZE_BUCKETS.len() + 1];
    let (mut sampled, mut no_ttl, mut unreadable, mut memory) = (0, 0, 0, 0u64);
    let (mut keys, mut read) = (0usize, 0usize);
    let mut no_session = 0;
    let mut has_memory = false;
    while let Some(ids) = group.next_ids().await? {
        keys += ids.len();
        let (sample, rest) = ids.split_at(ids.len().min(limit - read));
        read += sample.len();
        for batch in sample.chunks(BATCH) {
            for found in group
                .source
                .read(batch, true)
                .await
                .map_err(|f| f.context(&group.name))?
            {
                if found.no_session {
                    no_session += 1;
                    continue;
                }
                if found.unreadable.is_some() {
                    unreadable += 1;
                    continue;
                }
                if found.state.is_none() {
                    continue; // gone since the scan
                }
                sampled += 1;
                ttl[ttl_bucket(found.ttl)] += 1;
                if found.ttl.is_none() {
                    no_ttl += 1;
                }
                let bytes = found.size();
                size[SIZE_BUCKETS
                    .iter()
                    .position(|(max, _)| bytes < *max)
                    .unwrap_or(SIZE_BUCKETS.len())] += 1;
                if let Some(m) = found.memory {
                    memory += m;
                    has_memory = true;
                }
            }
        }
        // The keys not sampled are not read: their first byte tells a marker from a session.
        for batch in rest.chunks(BATCH) {
            no_session += group
                .source
                .count_no_sessions(batch)
                .await
                .map_err(|f| f.context(&group.name))?;
        }
    }
    let sessions = keys.saturating_sub(no_session);
    let scale = |n: u64| {
        if sampled == 0 {
            0
        } else {
            (n as f64 * sessions as f64 / sampled as f64).round() as u64
        }
    };
    let mut ttl_labels: Vec<String> = TTL_BUCKETS.iter().map(|(_, l)| (*l).to_owned()).collect();
    ttl_labels.push(">= 7 days".into());
    ttl_labels.push("no expiry".into());
    let mut size_labels: Vec<String> = SIZE_BUCKETS.iter().map(|(_, l)| (*l).to_owned()).collect();
    size_labels.push(">= 64 KiB".into());
    Ok(GroupStats {
        name: group.name.clone(),
        sessions,
        moved_markers_or_records: no_session,
        other_keys: group.foreign,
        file_store: matches!(group.source, crate::scan::Source::Files(_)),
        index_entries: group.index_entries.len(),
        sampled,
        no_ttl,
        no_ttl_estimated: scale(no_ttl as u64) as usize,
        memory_bytes_estimated: has_memory.then(|| scale(memory)),
        ttl_histogram: ttl_labels.into_iter().zip(ttl).collect(),
        size_histogram: size_labels.into_iter().zip(size).collect(),
        unreadable,
    })
}

fn ttl_bucket(ttl: Option<Duration>) -> usize {
    match ttl {
        None => TTL_BUCKETS.len() + 1,
        Some(t) => TTL_BUCKETS
            .iter()
            .position(|(max, _)| t.as_secs() < *max)
            .unwrap_or(TTL_BUCKETS.len()),
    }
}
