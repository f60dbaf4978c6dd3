//! `sessionctl reindex`: adds every stored session that holds the indexed key
//! (`session_redis_index_key`) to the index, once, after the index was enabled on a store
//! that already held sessions (writes index only the sessions they write).
//!
//! Each session is added where it is stored (its part's own backend: the pool member, the
//! backend of a multi-backend), as the application's own write would have done. Running it
//! again adds nothing new: an entry holds each id once.

use std::path::Path;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use session_core::IndexName;

use crate::{args::ReindexArgs, failure::Failure, load, parts, scan};

/// Sessions read per pipelined batch.
const BATCH: usize = 1000;
/// Index additions in flight at once (each is one round trip).
const IN_FLIGHT: usize = 64;

#[derive(Serialize)]
struct Report {
    scanned: usize,
    indexed: usize,
    dry_run: bool,
}

/// Runs the command; prints how many sessions were scanned and indexed.
pub async fn run(config: Option<&Path>, json: bool, args: ReindexArgs) -> Result<(), Failure> {
    let (config, plan) = load::app_config(config)?;
    let key = load::index_key(&config)?;
    let mut report = Report {
        scanned: 0,
        indexed: 0,
        dry_run: args.dry_run,
    };
    for part in parts::parts(&plan.backend)? {
        for mut group in scan::groups(&part, BATCH).await? {
            while let Some(ids) = group.next_ids().await? {
                report.scanned += ids.len();
                let found = group
                    .source
                    .read(&ids, false)
                    .await
                    .map_err(|f| f.context(&group.name))?;
                let entries: Vec<_> = found
                    .into_iter()
                    .filter_map(|f| {
                        let value = f.state.as_ref()?.get(&key)?;
                        Some((IndexName::new(&key, value), f.id))
                    })
                    .collect();
                report.indexed += entries.len();
                if args.dry_run {
                    continue;
                }
                let backend = &part.backend;
                stream::iter(entries)
                    .map(|(entry, id)| async move { backend.index_add(&entry, &id).await })
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect::<Vec<()>>()
                    .await
                    .map_err(|e| Failure::store(e).context(&group.name))?;
            }
        }
    }
    if json {
        out!("{}", crate::text::json(&report))?;
    } else if args.dry_run {
        out!(
            "would index {} of {} session(s) by `{key}` (dry run: nothing changed)",
            report.indexed,
            report.scanned
        )?;
    } else {
        out!(
            "indexed {} of {} session(s) by `{key}`",
            report.indexed,
            report.scanned
        )?;
    }
    Ok(())
}
