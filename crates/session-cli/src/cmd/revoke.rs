//! `sessionctl revoke`: delete sessions by id, by the value of one key (`--where
//! user=alice`: log a user out everywhere), without expiry (`--no-ttl`), or all (`--all`).
//!
//! Deletes go through the configured backend itself, so they are the application's logout:
//! a pool deletes on the member that owns the id, a multi-backend deletes the backends
//! sessions move from first (a logout during a move stays a logout).

use std::{io::IsTerminal, path::Path, sync::Arc};

use serde::Serialize;
use session_core::{SessionBackend, SessionId};

use crate::{args::RevokeArgs, cmd::show::parse_id, failure::Failure, load, parts, scan};

/// Sessions per pipelined batch.
const BATCH: usize = 1000;

#[derive(Serialize)]
struct Report {
    matched: usize,
    revoked: usize,
    dry_run: bool,
}

/// Runs the command; prints how many sessions were removed.
pub async fn run(config: Option<&Path>, json: bool, args: RevokeArgs) -> Result<(), Failure> {
    let selector = Selector::of(&args)?;
    let (_config, plan) = load::app_config(config)?;
    let backend = session_core::backends::build(&plan.backend).map_err(Failure::config)?;
    let ids = match &selector {
        Selector::Ids(ids) => ids.clone(),
        _ => select(&plan, &selector).await?,
    };
    if matches!(selector, Selector::All) && !args.yes && !args.dry_run {
        confirm(ids.len())?;
    }
    let revoked = if args.dry_run {
        0
    } else {
        delete_all(&backend, &ids).await?
    };
    let report = Report {
        matched: ids.len(),
        revoked,
        dry_run: args.dry_run,
    };
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else if args.dry_run {
        println!(
            "would revoke {} session(s) (dry run: nothing deleted)",
            report.matched
        );
    } else {
        println!("revoked {} session(s)", report.revoked);
    }
    Ok(())
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
        if args.ids.is_empty() {
            return Err(Failure::usage(
                "say which sessions: one or more ids, --where KEY=VALUE, --no-ttl or --all",
            ));
        }
        Ok(Selector::Ids(
            args.ids
                .iter()
                .map(|t| parse_id(t))
                .collect::<Result<_, _>>()?,
        ))
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

/// The ids the selector picks, from every part: scanned, then read in pipelined batches.
async fn select(
    plan: &session_core::plan::Plan,
    selector: &Selector,
) -> Result<Vec<SessionId>, Failure> {
    let mut ids = Vec::new();
    for part in parts::parts(&plan.backend)? {
        for group in scan::groups(&part, 1000, |_| {}).await? {
            if matches!(selector, Selector::All) {
                ids.extend(group.ids);
                continue;
            }
            for batch in group.ids.chunks(1000) {
                let found = group
                    .source
                    .read(batch, false)
                    .await
                    .map_err(|f| f.context(&group.name))?;
                ids.extend(
                    found
                        .into_iter()
                        .filter(|f| selector.selects(f))
                        .map(|f| f.id),
                );
            }
        }
    }
    Ok(ids)
}

/// Deletes every id through the backend, a pipelined batch at a time; how many existed.
pub async fn delete_all(
    backend: &Arc<dyn SessionBackend>,
    ids: &[SessionId],
) -> Result<usize, Failure> {
    let mut revoked = 0;
    for batch in ids.chunks(BATCH) {
        for deleted in backend.delete_many(batch).await {
            if deleted? {
                revoked += 1;
            }
        }
    }
    Ok(revoked)
}

/// Asks before deleting every session; refuses without a terminal to ask on.
fn confirm(count: usize) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "--all would delete {count} session(s): add --yes to confirm (stdin is not a terminal to ask on)"
        )));
    }
    eprint!("delete all {count} session(s)? type `yes` to confirm: ");
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
    use super::same_value;

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
