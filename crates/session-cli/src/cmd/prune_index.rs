//! `sessionctl prune-index`: drops the stale names of every entry of the session index
//! (`session_redis_index_key`), for a periodic sweep (cron). Writes and lookups prune the
//! entries they touch; the entry of a value that is never written or looked up again (a user
//! who never comes back) keeps its last names until this runs.
//!
//! Each entry is pruned as a lookup of its value would prune it (`SessionStore::
//! prune_index_entry`): every name checked against its session's current value, removed only
//! when older than the grace period and unchanged since it was read; an entry left empty
//! disappears.

use std::path::Path;

use futures_util::{stream, StreamExt};
use serde::Serialize;
use session_core::IndexName;

use crate::{args::PruneIndexArgs, failure::Failure, load, parts, scan};

/// Entries pruned at once (each is a few round trips).
const IN_FLIGHT: usize = 16;

#[derive(Serialize)]
struct Report {
    /// Entries of the configured key found in the store.
    entries: usize,
    /// Of those, left without a name, and removed (a Redis key, a file store directory with
    /// its lock file; also a directory found empty, which earlier versions kept).
    emptied: usize,
    /// Names left in the remaining entries.
    names_left: usize,
    /// Entries of another key (one configured before): left alone.
    other_keys: usize,
    dry_run: bool,
}

/// Runs the command; prints what it found and removed.
pub async fn run(config: Option<&Path>, json: bool, args: PruneIndexArgs) -> Result<(), Failure> {
    let (config, plan) = load::app_config(config)?;
    let key = load::index_key(&config)?;
    // Every entry once, whichever part (pool member, backend, cluster node) holds it.
    let mut entries = std::collections::HashSet::new();
    let mut other_keys = 0;
    for part in parts::parts(&plan.backend)? {
        for mut group in scan::groups(&part, 1000).await? {
            // The entries are among the keys under the prefix: the walk finds them, and keeps
            // nothing of the sessions.
            while group.next_ids().await?.is_some() {}
            for entry in group.index_entries {
                match entry.key {
                    Some(k) if k != key => other_keys += 1,
                    _ => match IndexName::from_digest(&key, &entry.digest) {
                        Some(name) => {
                            entries.insert(name);
                        }
                        None => other_keys += 1,
                    },
                }
            }
        }
    }
    let mut report = Report {
        entries: entries.len(),
        emptied: 0,
        names_left: 0,
        other_keys,
        dry_run: args.dry_run,
    };
    if !args.dry_run && !entries.is_empty() {
        let store = &load::app_store(plan).await?;
        let mut left = stream::iter(entries)
            .map(|entry| async move { store.prune_index_entry(&entry).await })
            .buffer_unordered(IN_FLIGHT);
        while let Some(names) = left.next().await {
            let names = names?;
            report.names_left += names;
            if names == 0 {
                report.emptied += 1;
            }
        }
    }
    if json {
        out!("{}", crate::text::json(&report))?;
    } else if args.dry_run {
        out!(
            "{} index entries of `{key}` (dry run: nothing pruned)",
            report.entries
        )?;
    } else {
        out!(
            "pruned {} index entries of `{key}`: {} left empty, {} names left",
            report.entries,
            report.emptied,
            report.names_left
        )?;
    }
    if report.other_keys > 0 {
        err!(
            "sessionctl: {} index entries of another key were left alone (an index key configured before?)",
            report.other_keys
        );
    }
    Ok(())
}
