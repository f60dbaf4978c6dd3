//! `sessionctl revoke`: delete sessions by id, by the value of one key (`--where
//! user=alice`: log a user out everywhere), without expiry (`--no-ttl`), or all (`--all`).
//!
//! Deletes go through the configured backend itself, so they are the application's logout:
//! a pool deletes on the member that owns the id, a multi-backend deletes the backends
//! sessions move from first (a logout during a move stays a logout).

use std::{collections::HashSet, io::IsTerminal, path::Path, sync::Arc};

use serde::Serialize;
use session_core::{plan::Plan, IndexName, SessionBackend, SessionId};

use crate::{args::RevokeArgs, cmd::show::parse_id, failure::Failure, load, parts, scan};

/// Sessions per pipelined batch.
const BATCH: usize = 1000;

#[derive(Serialize)]
struct Report {
    matched: usize,
    revoked: usize,
    dry_run: bool,
    /// How `--where` found the sessions: `index` or `scan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    found_by: Option<&'static str>,
}

/// Runs the command; prints how many sessions were removed.
pub async fn run(config: Option<&Path>, json: bool, args: RevokeArgs) -> Result<(), Failure> {
    let selector = Selector::of(&args)?;
    let (config, plan) = load::app_config(config)?;
    let report = match &selector {
        Selector::Where { key, value }
            if !args.scan && config.index_key.as_deref() == Some(key.as_str()) =>
        {
            by_index(plan, key, value, args.dry_run).await?
        }
        _ => by_scan(&plan, &selector, &args).await?,
    };
    if let Some(found_by) = report.found_by {
        tracing::info!(found_by, "sessions selected by --where");
    }
    if json {
        out!("{}", crate::text::json(&report))?;
    } else if args.dry_run {
        out!(
            "would revoke {} session(s) (dry run: nothing deleted)",
            report.matched
        )?;
    } else {
        out!("revoked {} session(s)", report.revoked)?;
    }
    Ok(())
}

/// Deletes the ids given, or walks every part: each `SCAN` batch read (but for `--all`),
/// selected and deleted through the backend before the next is scanned, so memory holds one
/// batch, whatever the number of sessions.
async fn by_scan(plan: &Plan, selector: &Selector, args: &RevokeArgs) -> Result<Report, Failure> {
    let backend = session_core::backends::build(&plan.backend).map_err(Failure::config)?;
    let mut report = Report {
        matched: 0,
        revoked: 0,
        dry_run: args.dry_run,
        found_by: matches!(selector, Selector::Where { .. }).then_some("scan"),
    };
    if let Selector::Ids(ids) = selector {
        // What the ids name, not how many were given: a dry run says what a revoke would
        // delete (ids of sessions already gone count for nothing, as in a revoke).
        if args.dry_run {
            report.matched = named_sessions(plan, ids).await?;
        } else {
            report.revoked = delete_all(&backend, ids, 0).await?;
            report.matched = report.revoked;
        }
        return Ok(report);
    }
    let mut groups = Vec::new();
    for part in parts::parts(&plan.backend)? {
        groups.extend(scan::groups(&part, BATCH).await?);
    }
    if matches!(selector, Selector::All) && !args.yes && !args.dry_run {
        // The number asked about comes from a walk of its own, which keeps no id.
        let mut count = 0;
        for group in &mut groups {
            count += group.count().await?;
        }
        confirm(count)?;
    }
    for group in &mut groups {
        walk(group, selector, &backend, &mut report).await?;
    }
    Ok(report)
}

/// How many of `ids` name a stored session in some part of the backend: what a revoke of
/// them would delete. Read without touching the sessions or moving them between the backends
/// of a multi-backend, as `show` reads; a session stored corrupt counts (a revoke deletes it
/// too).
async fn named_sessions(plan: &Plan, ids: &[SessionId]) -> Result<usize, Failure> {
    let mut named: HashSet<&str> = HashSet::new();
    for part in parts::parts(&plan.backend)? {
        for batch in ids.chunks(BATCH) {
            let found = part.backend.load_many_with_ttl(batch).await;
            for (id, found) in batch.iter().zip(found) {
                match found {
                    Ok(Some(_)) => {
                        named.insert(id.as_str());
                    }
                    Ok(None) => {}
                    Err(err) if err.is_corrupt() => {
                        named.insert(id.as_str());
                    }
                    Err(err) => return Err(Failure::store(err).context(&part.name)),
                }
            }
        }
    }
    Ok(named.len())
}

/// Walks `group`: each batch selected, then deleted (unless a dry run), into `report`.
async fn walk(
    group: &mut scan::Group,
    selector: &Selector,
    backend: &Arc<dyn SessionBackend>,
    report: &mut Report,
) -> Result<(), Failure> {
    // A failed scan or read after earlier batches were deleted must say so, as a failed
    // delete does.
    let counted = |failure: Failure, report: &Report| {
        if report.dry_run {
            failure
        } else {
            revoked_before(failure, report.revoked)
        }
    };
    while let Some(ids) = group.next_ids().await.map_err(|f| counted(f, report))? {
        let selected: Vec<SessionId> = if matches!(selector, Selector::All) {
            ids
        } else {
            group
                .source
                .read(&ids, false)
                .await
                .map_err(|f| counted(f.context(&group.name), report))?
                .into_iter()
                .filter(|f| selector.selects(f))
                .map(|f| f.id)
                .collect()
        };
        report.matched += selected.len();
        if !report.dry_run {
            report.revoked += delete_all(backend, &selected, report.revoked).await?;
        }
    }
    Ok(())
}

/// `--where` on the indexed key: the index finds the sessions (O(their number), no scan),
/// and they are deleted as the application's `delete_indexed` deletes them: through the
/// backend (the owner in a pool, every backend of a multi-backend), then their names dropped
/// from the entry. Not through `delete_indexed` itself: it says nothing of what it deleted
/// before a failure, and an operator must know that some sessions are logged out already.
async fn by_index(plan: Plan, key: &str, value: &str, dry_run: bool) -> Result<Report, Failure> {
    let backend = session_core::backends::build(&plan.backend).map_err(Failure::config)?;
    let store = load::app_store(plan).await?;
    let (mut matched, mut revoked) = (0, 0);
    for value in json_values(value) {
        let ids = match store.find_indexed(&value).await {
            Ok(ids) => ids,
            Err(err) if dry_run => return Err(Failure::store(err)),
            Err(err) => return Err(revoked_before(Failure::store(err), revoked)),
        };
        matched += ids.len();
        if dry_run {
            continue;
        }
        revoked += delete_all(&backend, &ids, revoked).await?;
        drop_names(&backend, &IndexName::new(key, &value), &ids).await;
    }
    Ok(Report {
        matched,
        revoked,
        dry_run,
        found_by: Some("index"),
    })
}

/// Removes the names of the deleted `ids` from `entry`, as `delete_indexed` does, each only if
/// not renewed since (a write that set the value again keeps its name). Best effort: a stale
/// name is dropped by the next lookup of the value or by `prune-index` anyway.
async fn drop_names(backend: &Arc<dyn SessionBackend>, entry: &IndexName, ids: &[SessionId]) {
    if ids.is_empty() {
        return;
    }
    let deleted: HashSet<&str> = ids.iter().map(SessionId::as_str).collect();
    let dropped = match backend.index_members(entry, None).await {
        Ok(members) => {
            let gone: Vec<_> = members
                .into_iter()
                .filter(|m| deleted.contains(m.id.as_str()))
                .collect();
            backend.index_remove(entry, &gone).await
        }
        Err(err) => Err(err),
    };
    if let Err(err) = dropped {
        tracing::warn!(error = %err, "could not drop deleted sessions from the session index");
    }
}

/// The stored JSON values `--where KEY=VALUE` means, as [`same_value`] matches them: the
/// JSON string with exactly that text, and VALUE itself when it is JSON of another value.
fn json_values(value: &str) -> Vec<String> {
    let text = serde_json::Value::String(value.to_owned());
    let mut values = vec![text.to_string()];
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(value) {
        if json != text {
            values.push(json.to_string());
        }
    }
    values
}

/// Which sessions.
enum Selector {
    Ids(Vec<SessionId>),
    Where { key: String, value: String },
    NoTtl,
    All,
}

impl Selector {
    fn of(args: &RevokeArgs) -> Result<Self, Failure> {
        if args.scan && args.filter.is_none() {
            return Err(Failure::usage(
                "--scan goes with --where KEY=VALUE (it forces a scan instead of the index)",
            ));
        }
        if let Some(filter) = &args.filter {
            let Some((key, value)) = filter.split_once('=') else {
                return Err(Failure::usage(
                    "--where needs KEY=VALUE, for example --where user=alice",
                ));
            };
            if key.is_empty() {
                return Err(Failure::usage("--where KEY=VALUE: the key is empty"));
            }
            return Ok(Selector::Where {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
        if args.no_ttl {
            return Ok(Selector::NoTtl);
        }
        if args.all {
            return Ok(Selector::All);
        }
        if args.ids.is_empty() && args.ids_from.is_none() {
            return Err(Failure::usage(
                "say which sessions: one or more ids (or --ids-from FILE), --where KEY=VALUE, --no-ttl or --all",
            ));
        }
        let mut ids: Vec<SessionId> = args
            .ids
            .iter()
            .map(|t| parse_id(t))
            .collect::<Result<_, _>>()?;
        if let Some(path) = &args.ids_from {
            ids.extend(crate::ids::read(path)?);
        }
        Ok(Selector::Ids(ids))
    }

    fn selects(&self, found: &scan::Found) -> bool {
        let Some(state) = &found.state else {
            return false;
        };
        match self {
            Selector::Ids(_) | Selector::All => true,
            Selector::NoTtl => found.ttl.is_none(),
            Selector::Where { key, value } => state.get(key).is_some_and(|v| same_value(v, value)),
        }
    }
}

/// True when the stored JSON text `stored` is `wanted`: the same JSON value, or a JSON
/// string with exactly that text (so `user=alice` finds `"alice"`).
pub fn same_value(stored: &str, wanted: &str) -> bool {
    let Ok(stored) = serde_json::from_str::<serde_json::Value>(stored) else {
        return false;
    };
    if stored.as_str() == Some(wanted) {
        return true;
    }
    serde_json::from_str::<serde_json::Value>(wanted).is_ok_and(|w| w == stored)
}

/// Deletes every id through the backend, a pipelined batch at a time; how many existed.
/// Stops after the first batch with a failure, saying how many it had revoked (with
/// `before`, the count of the command's earlier deletes): some sessions are logged out and
/// others may not be, which the error alone did not tell.
pub async fn delete_all(
    backend: &Arc<dyn SessionBackend>,
    ids: &[SessionId],
    before: usize,
) -> Result<usize, Failure> {
    let mut revoked = 0;
    for batch in ids.chunks(BATCH) {
        let mut failed = None;
        for deleted in backend.delete_many(batch).await {
            match deleted {
                Ok(true) => revoked += 1,
                Ok(false) => {}
                Err(err) => {
                    failed.get_or_insert(err);
                }
            }
        }
        if let Some(err) = failed {
            return Err(revoked_before(Failure::store(err), before + revoked));
        }
    }
    Ok(revoked)
}

/// `failure` of a revoke that had deleted `revoked` sessions: it says so, and how to finish.
fn revoked_before(failure: Failure, revoked: usize) -> Failure {
    Failure {
        message: format!(
            "{}\n{revoked} session(s) revoked before the failure, the others not \
             (all or some): run the same command again to finish",
            failure.message
        ),
        ..failure
    }
}

/// Asks before deleting every session; refuses without a terminal to ask on.
fn confirm(count: usize) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "--all would delete {count} session(s): add --yes to confirm (stdin is not a terminal to ask on)"
        )));
    }
    {
        use std::io::Write as _;
        // Written as `err!` writes (never a panic), without its new line: the answer follows
        // on the same line.
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "delete all {count} session(s)? type `yes` to confirm: "
        );
        let _ = stderr.flush();
    }
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::failed("not confirmed: nothing deleted"))
    }
}

#[cfg(test)]
mod tests {
    use super::{json_values, same_value};

    #[test]
    fn where_values_are_looked_up_as_every_json_value_they_match() {
        assert_eq!(json_values("alice"), vec!["\"alice\""]);
        assert_eq!(json_values("42"), vec!["\"42\"", "42"]);
        assert_eq!(
            json_values("\"alice\""),
            vec!["\"\\\"alice\\\"\"", "\"alice\""]
        );
    }

    #[test]
    fn where_values_match_json_values_and_plain_strings() {
        assert!(same_value("\"alice\"", "alice"));
        assert!(same_value("\"alice\"", "\"alice\""));
        assert!(same_value("42", "42"));
        assert!(same_value("true", "true"));
        assert!(!same_value("\"alice\"", "bob"));
        assert!(!same_value("\"42\"", "42x"));
        assert!(!same_value("not json", "not json"));
    }
}
