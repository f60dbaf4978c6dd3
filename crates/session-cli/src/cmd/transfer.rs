//! `sessionctl export` / `import`: JSON lines, one session per line:
//! `{"id": "...", "ttl_ms": 1234 | null, "fields": {"key": "<JSON text of the value>"}}`.
//! Both stream: export writes each batch as it is read, import creates each batch as it is
//! read, only where the id is absent (the target's copy wins), with the line's TTL.

use std::{
    collections::HashMap,
    io::{BufRead, BufWriter, IsTerminal, Write},
    path::Path,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use session_core::{plan::Plan, SessionId};

use crate::{
    args::{ExportArgs, ImportArgs},
    failure::Failure,
    load, parts, scan,
};

/// Sessions per batch, both ways.
const BATCH: usize = 1000;

/// How many skipped line numbers `import` lists (and keeps: the rest are only counted).
const SHOWN_LINES: usize = 20;

/// One line.
#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    ttl_ms: Option<u64>,
    fields: HashMap<String, String>,
}

/// Writes every session of every part.
pub async fn export(config: Option<&Path>, args: ExportArgs) -> Result<(), Failure> {
    if args.output.is_none() && !args.to_terminal && std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "export writes every session id, each a credential that logs its holder in, and \
             stdout is a terminal (its scrollback, a shared screen or a recorded session would \
             keep them): give -o FILE (created readable by you alone), pipe or redirect stdout, \
             or add --to-terminal to print them here anyway",
        ));
    }
    let (_config, plan) = load::app_config(config)?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            private_file()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(|e| {
                    Failure::failed(format!(
                        "--output {}: {e} (export never overwrites a file)",
                        path.display()
                    ))
                })?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let written = write_sessions(&plan, &mut out).await;
    drop(out);
    let (written, unreadable) = match (written, &args.output) {
        (Ok(counts), _) => counts,
        (Err(failure), None) => return Err(failure),
        // The file holds part of the sessions, with nothing in it to say so: removed, so
        // that it cannot pass for a backup. It is this run's own (created new, above).
        (Err(failure), Some(path)) => {
            let fate = match std::fs::remove_file(path) {
                Ok(()) => "removed".to_owned(),
                Err(e) => format!("could not be removed ({e}): delete it"),
            };
            return Err(Failure {
                message: format!(
                    "{}\nthe incomplete export {} {fate}",
                    failure.message,
                    path.display()
                ),
                ..failure
            });
        }
    };
    err!("exported {written} session(s)");
    if unreadable > 0 {
        err!(
            "not exported: {unreadable} session(s) that cannot be read (a key of another type, a value that is not a session; `sessionctl stats` counts them)"
        );
    }
    Ok(())
}

/// Writes every session of every part to `out` as JSON lines; how many were written, and how
/// many could not be read (no session: left out).
async fn write_sessions(plan: &Plan, out: &mut impl Write) -> Result<(usize, usize), Failure> {
    let (mut written, mut unreadable) = (0usize, 0usize);
    for part in parts::parts(&plan.backend)? {
        for mut group in scan::groups(&part, BATCH).await? {
            // Each batch written before the next is scanned: memory bounded by a batch.
            while let Some(ids) = group.next_ids().await? {
                for batch in ids.chunks(BATCH) {
                    for found in group
                        .source
                        .read(batch, false)
                        .await
                        .map_err(|f| f.context(&group.name))?
                    {
                        // Counted, so that a backup that leaves sessions out says so; a
                        // session gone since the scan is not missing from it.
                        unreadable += usize::from(found.unreadable.is_some());
                        let Some(fields) = found.state else { continue };
                        let line = Line {
                            id: found.id.as_str().to_owned(),
                            ttl_ms: found.ttl.map(|t| t.as_millis() as u64),
                            fields,
                        };
                        // Escaped as `--json` output is: without `--output` the lines go to
                        // the operator's terminal, and they read back the same either way.
                        out.write_all(crate::text::json(&line).as_bytes())?;
                        out.write_all(b"\n")?;
                        written += 1;
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok((written, unreadable))
}

/// Options that create a file readable and writable by its owner alone: an export holds
/// every session id, each a bearer credential, which the usual umask (022) would have left
/// readable by every local user.
fn private_file() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[derive(Serialize, Default)]
struct ImportReport {
    created: usize,
    already_present: usize,
    /// Lines that are not a valid session (their numbers are printed, never their content).
    invalid: usize,
    /// Sessions above `session_redis_max_session_size`.
    too_large: usize,
    failed: usize,
}

/// Creates the sessions of the input in the configured backend.
pub async fn import(config: Option<&Path>, json: bool, args: ImportArgs) -> Result<(), Failure> {
    let (_config, plan) = load::app_config(config)?;
    let backend = session_core::backends::build(&plan.backend).map_err(Failure::config)?;
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut report = ImportReport::default();
    // The first few numbers only: an import file can hold billions of bad lines, and one
    // number kept per line grew without bound.
    let mut bad_lines = Vec::with_capacity(SHOWN_LINES);
    let mut skip = |n: usize| {
        if bad_lines.len() < SHOWN_LINES {
            bad_lines.push(n);
        }
    };
    let mut errors = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    // A line holds one session and its JSON escaping: at most a few times the session size
    // limit (512 MiB, Redis' own limit for a value, when the configuration has none).
    let limit = plan.max_session_size.unwrap_or(512 << 20).saturating_mul(4) + 4096;
    let mut input = input;
    let mut n = 0;
    loop {
        let next = bounded_line(&mut input, limit)?;
        let done = next.is_none();
        if let Some(line) = next {
            n += 1;
            let line = match line {
                Some(line) if line.trim().is_empty() => continue,
                Some(line) => line,
                None => {
                    report.invalid += 1;
                    skip(n);
                    continue;
                }
            };
            match parse_line(&line) {
                Some((id, fields, ttl)) => {
                    let size: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
                    if plan.max_session_size.is_some_and(|max| size > max) {
                        report.too_large += 1;
                        skip(n);
                    } else {
                        batch.push((id, fields, plan.ttl.for_move(None, ttl)));
                    }
                }
                None => {
                    report.invalid += 1;
                    skip(n);
                }
            }
            if batch.len() < BATCH {
                continue;
            }
        }
        for result in backend.create_many(&batch).await {
            match result {
                Ok(true) => report.created += 1,
                Ok(false) => report.already_present += 1,
                Err(err) => {
                    report.failed += 1;
                    if errors.len() < 5 {
                        errors.push(err.to_string());
                    }
                }
            }
        }
        batch.clear();
        if done {
            break;
        }
    }
    // A report that cannot be written comes after the failures: those say what to do.
    let printed = if json {
        out!("{}", crate::text::json(&report))
    } else {
        out!(
            "imported {} session(s): {} already present (kept), {} invalid line(s), {} too large, {} failed",
            report.created, report.already_present, report.invalid, report.too_large, report.failed
        )
    };
    if !bad_lines.is_empty() {
        let shown: Vec<String> = bad_lines.iter().map(ToString::to_string).collect();
        let more = (report.invalid + report.too_large).saturating_sub(bad_lines.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        err!("skipped line(s): {}{more}", shown.join(", "));
    }
    if report.failed > 0 {
        return Err(Failure::failed(format!(
            "{} session(s) not imported (run again to retry; existing ones are kept):\n{}",
            report.failed,
            errors.join("\n")
        )));
    }
    if report.invalid + report.too_large > 0 {
        return Err(Failure::failed(format!(
            "{} line(s) skipped (see their numbers above)",
            report.invalid + report.too_large
        )));
    }
    printed
}

/// The next line of `input` without its newline: `None` at the end, `Some(None)` for a line
/// longer than `limit` bytes or not UTF-8 (skipped up to its end, never held in memory).
fn bounded_line(input: &mut dyn BufRead, limit: usize) -> std::io::Result<Option<Option<String>>> {
    let mut line = Vec::new();
    let mut bounded = <&mut dyn BufRead as std::io::Read>::take(&mut *input, limit as u64 + 1);
    let read = bounded.read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > limit {
        // Too long: drop the rest of it, a buffer at a time.
        loop {
            let buffer = input.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            match buffer.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    input.consume(end + 1);
                    break;
                }
                None => {
                    let all = buffer.len();
                    input.consume(all);
                }
            }
        }
        return Ok(Some(None));
    }
    Ok(Some(String::from_utf8(line).ok()))
}

/// A valid line: a well-formed id, at least one field, every value JSON text.
#[allow(clippy::type_complexity)]
fn parse_line(line: &str) -> Option<(SessionId, HashMap<String, String>, Option<Duration>)> {
    let line: Line = serde_json::from_str(line).ok()?;
    let id = SessionId::parse(&line.id).ok()?;
    if line.fields.is_empty()
        || line
            .fields
            .values()
            .any(|v| serde_json::from_str::<serde::de::IgnoredAny>(v).is_err())
    {
        return None;
    }
    Some((
        id,
        line.fields,
        line.ttl_ms.filter(|ms| *ms > 0).map(Duration::from_millis),
    ))
}
