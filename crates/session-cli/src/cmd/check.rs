//! `sessionctl check`: the configuration, every server of every part, and a dry run of every
//! command the store needs, on a throwaway session under the prefix.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde::Serialize;
use session_core::{Changes, IndexName, SessionBackend, SessionId, SessionState};

use crate::{
    failure::Failure,
    load,
    parts::{self, Part, PartKind, Role},
    text::printable,
};

/// One server's answer.
#[derive(Serialize)]
struct NodeReport {
    part: String,
    role: &'static str,
    location: String,
    up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What the node refused that the store needs, though it answered (`EVAL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// One part's dry run.
#[derive(Serialize)]
struct DryRun {
    part: String,
    ok: bool,
    steps: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    backend: String,
    nodes: Vec<NodeReport>,
    problems: Vec<String>,
    dry_runs: Vec<DryRun>,
}

/// Runs the check; fails (exit 1) with one line per failing part.
pub async fn run(config: Option<&Path>, json: bool) -> Result<(), Failure> {
    let (_config, plan) = load::app_config(config)?;
    let parts = parts::parts(&plan.backend)?;
    let mut report = Report {
        ok: true,
        backend: describe(&parts),
        nodes: Vec::new(),
        problems: Vec::new(),
        dry_runs: Vec::new(),
    };
    for part in &parts {
        match &part.kind {
            PartKind::Files(files) => report.nodes.push(NodeReport {
                part: part.name.clone(),
                role: "file store",
                location: files.root().display().to_string(),
                up: true,
                version: None,
                latency_ms: None,
                error: None,
                refused: None,
            }),
            PartKind::Redis(redis) => match redis.discover().await {
                Ok(discovery) => {
                    report.problems.extend(
                        discovery
                            .problems
                            .iter()
                            .map(|p| format!("{}: {p}", part.name)),
                    );
                    for node in &discovery.nodes {
                        report.nodes.push(probe(part, redis, node).await);
                    }
                    // On a cluster, one throwaway session per master: each on a key of that
                    // master's slots.
                    let mut on_masters = false;
                    for node in &discovery.nodes {
                        if let Role::ClusterMaster(slots) = &node.role {
                            on_masters = true;
                            let id = id_in_slots(&redis.prefix, slots);
                            let name = format!("{} {}", part.name, node.location);
                            report.dry_runs.push(dry_run(part, name, id).await);
                        }
                    }
                    if on_masters {
                        continue;
                    }
                }
                Err(failure) => report
                    .problems
                    .push(format!("{}: {}", part.name, failure.message)),
            },
        }
        report
            .dry_runs
            .push(dry_run(part, part.name.clone(), SessionId::generate()).await);
    }
    for node in &report.nodes {
        if let Some(refused) = &node.refused {
            report.problems.push(format!(
                "{} {} {}: {refused}",
                node.part, node.role, node.location
            ));
        }
    }
    for node in report.nodes.iter().filter(|n| !n.up) {
        report.problems.push(format!(
            "{} {} {}: {}",
            node.part,
            node.role,
            node.location,
            node.error.as_deref().unwrap_or("down")
        ));
    }
    for run in report.dry_runs.iter().filter(|r| !r.ok) {
        report.problems.push(format!(
            "{}: dry run failed: {}",
            run.part,
            run.error.as_deref().unwrap_or("")
        ));
    }
    report.ok = report.problems.is_empty();
    let printed = if json {
        out!("{}", crate::text::json_pretty(&report))
    } else {
        print_human(&report)
    };
    // The problems before an output that could not be written: they are on stderr.
    if report.ok {
        printed
    } else {
        Err(Failure::failed(format!(
            "check failed: {} problem(s):\n{}",
            report.problems.len(),
            report.problems.join("\n")
        )))
    }
}

fn describe(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_human(report: &Report) -> Result<(), Failure> {
    // Part names hold the configuration's own text (a multi-backend's backend names are any
    // text): escaped as what the servers say is.
    out!(
        "configuration: valid; backend: {}",
        printable(&report.backend)
    )?;
    for n in &report.nodes {
        let state = if n.up { "up" } else { "DOWN" };
        let version = n
            .version
            .as_deref()
            .map(|v| format!(" redis {v}"))
            .unwrap_or_default();
        let latency = n
            .latency_ms
            .map(|l| format!(" {l:.2} ms"))
            .unwrap_or_default();
        // Where a node is and its version are what the servers announce (CLUSTER NODES,
        // INFO), and an error can quote a server: escaped like stored data, as the part is.
        out!(
            "  {:<24} {:<16} {:<28} {state}{}{latency}",
            printable(&n.part),
            n.role,
            printable(&n.location),
            printable(&version)
        )?;
    }
    for r in &report.dry_runs {
        if r.ok {
            out!(
                "  {:<24} dry run ok: {}",
                printable(&r.part),
                r.steps.join(", ")
            )?;
        } else {
            out!(
                "  {:<24} dry run FAILED after [{}]: {}",
                printable(&r.part),
                r.steps.join(", "),
                printable(r.error.as_deref().unwrap_or(""))
            )?;
        }
    }
    out!(
        "{}",
        if report.ok {
            "check: ok"
        } else {
            "check: FAILED"
        }
    )
}

/// Connects to one server: `PING` (the best of three round trips) and its version.
async fn probe(part: &Part<'_>, redis: &parts::RedisPart<'_>, node: &parts::Node) -> NodeReport {
    let mut out = NodeReport {
        part: part.name.clone(),
        role: node.role.as_str(),
        location: node.location.clone(),
        up: false,
        version: None,
        latency_ms: None,
        error: None,
        refused: None,
    };
    let mut conn = match redis.connect(node).await {
        Ok(conn) => conn,
        Err(err) => {
            out.error = Some(err.to_string());
            return out;
        }
    };
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
        if let Err(err) = pong {
            out.error = Some(err.to_string());
            return out;
        }
        best = best.min(start.elapsed());
    }
    out.up = true;
    out.latency_ms = Some(best.as_secs_f64() * 1000.0);
    match parts::info_server(&mut conn).await {
        Ok(info) => out.version = parts::info_field(&info, "redis_version").map(str::to_owned),
        // An ACL user limited to the store's commands may not run INFO: not a failure.
        Err(err) => tracing::info!(error = %err, "INFO refused"),
    }
    // Scripts go by hash (`EVALSHA`, which the dry run runs); after a restart, a failover or
    // `SCRIPT FLUSH` the store sends each one by text once (`EVAL`), which the dry run
    // cannot provoke without flushing everyone's scripts. So a script of its own, with no
    // key, on every data node: replicas too, since ACLs are per node and a replica may be
    // the master after a failover (a read-only replica runs a script that writes nothing).
    // Only a refusal by the ACL counts; another error (`LOADING`, `BUSY`) is the node's
    // state, not its permissions.
    if !matches!(node.role, Role::Sentinel) {
        let eval: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg("return 1")
            .arg(0)
            .query_async(&mut conn)
            .await;
        match eval {
            Err(err) if err.code() == Some("NOPERM") => {
                out.refused = Some(format!(
                    "EVAL refused ({err}): after a restart, a failover or SCRIPT FLUSH every write would fail"
                ));
            }
            Err(err) => tracing::info!(error = %err, "EVAL failed"),
            Ok(_) => {}
        }
    }
    out
}

/// Every operation the store uses, on a fresh random id (so on a key nobody else has), with
/// the session deleted at the end whatever happened.
async fn dry_run(part: &Part<'_>, name: String, id: SessionId) -> DryRun {
    let backend = part.backend.as_ref();
    let mut steps = Vec::new();
    let result = steps_of(backend, &id, &mut steps).await;
    // Removed afterwards even when a step failed halfway.
    let mut cleanup = backend.delete(&id).await;
    if let Some(entry) = probe_entry(backend) {
        let removed = match backend.index_members(&entry, None).await {
            Ok(members) => {
                let ours: Vec<_> = members.into_iter().filter(|m| m.id == id).collect();
                backend.index_remove(&entry, &ours).await
            }
            Err(err) => Err(err),
        };
        if let (Err(err), Ok(_)) = (removed, &cleanup) {
            cleanup = Err(err);
        }
    }
    let error = match (result, cleanup) {
        (Err(e), _) => Some(e),
        (Ok(()), Err(e)) => Some(format!("delete: {e}")),
        (Ok(()), Ok(_)) => None,
    };
    DryRun {
        part: name,
        ok: error.is_none(),
        steps,
        error,
    }
}

async fn steps_of(
    backend: &dyn SessionBackend,
    id: &SessionId,
    steps: &mut Vec<&'static str>,
) -> Result<(), String> {
    let ttl = Some(Duration::from_secs(60));
    let mut state: SessionState = [("sessionctl_check".to_owned(), "\"probe\"".to_owned())].into();
    // With an index, the throwaway session holds the indexed key too, so the dry run covers
    // the index's commands (ACL users need them as well).
    let entry = probe_entry(backend);
    if let Some(entry) = &entry {
        state.insert(entry.key().to_owned(), PROBE_VALUE.to_owned());
    }
    let expect = |step: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{step}: the store answered as if the throwaway session were missing"
            ))
        }
    };
    let failed = |step: &'static str| move |e: session_core::StoreError| format!("{step}: {e}");

    expect(
        "create",
        backend
            .create(id, &state, ttl)
            .await
            .map_err(failed("create"))?,
    )?;
    steps.push("create");
    if let Some(entry) = &entry {
        let members = backend
            .index_members(entry, None)
            .await
            .map_err(failed("index lookup"))?;
        if !members.iter().any(|m| m.id == *id) {
            return Err("index lookup: the index does not name the session just created".into());
        }
        steps.push("index");
    }
    let loaded = backend.load(id, ttl).await.map_err(failed("load"))?;
    expect("load", loaded.as_ref() == Some(&state))?;
    steps.push("load+touch");
    let with_ttl = backend
        .load_with_ttl(id)
        .await
        .map_err(failed("load with ttl"))?;
    expect("load with ttl", with_ttl.is_some())?;
    steps.push("load+ttl");
    let mut changes = Changes::default();
    changes.set("n", "1");
    expect(
        "apply",
        backend
            .apply(id, &changes, ttl)
            .await
            .map_err(failed("apply"))?,
    )?;
    steps.push("apply");
    // A write adds records to the stored value; once they outweigh the session, a write
    // rewrites it, and on one server a value over 1 KB is then staged with `SET` and moved
    // with `RENAME`: three writes of a 2 KB value get there, so an ACL user needs those
    // commands too.
    let large = |c: char| {
        let mut large = Changes::default();
        large.set("pad", format!("\"{}\"", c.to_string().repeat(2048)));
        large
    };
    for c in ['a', 'b'] {
        expect(
            "apply (large)",
            backend
                .apply(id, &large(c), ttl)
                .await
                .map_err(failed("apply (large)"))?,
        )?;
    }
    let (mut loaded, version) = backend
        .load_versioned(id, None)
        .await
        .map_err(failed("apply (large)"))?
        .ok_or("apply (large): the store answered as if the throwaway session were missing")?;
    let rewrite = large('c');
    rewrite.apply_to(&mut loaded);
    let after: Vec<(&str, &str)> = loaded
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    expect(
        "apply (large)",
        backend
            .apply_versioned(id, version, &after, &rewrite, ttl)
            .await
            .map_err(failed("apply (large)"))?,
    )?;
    steps.push("apply (large)");
    expect(
        "replace",
        backend
            .replace(id, &state, ttl)
            .await
            .map_err(failed("replace"))?,
    )?;
    steps.push("replace");
    expect(
        "touch",
        backend.touch(id, ttl).await.map_err(failed("touch"))?,
    )?;
    steps.push("touch");
    expect(
        "persist",
        backend.touch(id, None).await.map_err(failed("persist"))?,
    )?;
    steps.push("persist");
    // A write with no changes and no expiry to set only asks whether the session exists.
    expect(
        "exists",
        backend
            .apply(id, &Changes::default(), None)
            .await
            .map_err(failed("exists"))?,
    )?;
    steps.push("exists");
    expect(
        "delete",
        backend.delete(id).await.map_err(failed("delete"))?,
    )?;
    steps.push("delete");
    Ok(())
}

/// The indexed value of the throwaway session.
const PROBE_VALUE: &str = "\"sessionctl check probe\"";

/// The index entry the throwaway session is added to, when the store keeps an index.
fn probe_entry(backend: &dyn SessionBackend) -> Option<IndexName> {
    backend
        .index_key()
        .map(|key| IndexName::new(key, PROBE_VALUE))
}

/// A fresh id whose key (`prefix` + id) hashes into one of `slots` (a master's ranges); any
/// fresh id when the master reports none.
fn id_in_slots(prefix: &str, slots: &[(u16, u16)]) -> SessionId {
    // Each try lands in the ranges with the master's share of the slots: a few tries.
    for _ in 0..100_000 {
        let id = SessionId::generate();
        let slot = key_slot(format!("{prefix}{}", id.as_str()).as_bytes());
        if slots.iter().any(|(from, to)| (*from..=*to).contains(&slot)) {
            return id;
        }
    }
    SessionId::generate()
}

/// Redis Cluster's slot of a key: CRC16 (XMODEM) of the key, or of its `{hash tag}` when it
/// has a non-empty one, modulo 16384.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&len| len > 0)
            .map(|len| &rest[..len])
    });
    crc16(tagged.unwrap_or(key)) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_cluster_slots() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
    }
}
