//! `sessionctl migrate --from A --to B`: every session of A into B through session-core's
//! one mover ([`session_core::mover`], the start-up migration's): created in B only if B does
//! not have the id, with the remaining TTL; with `--delete-source` deleted from A afterwards
//! (a logout during the move stays a logout); safe to interrupt and run again: the first
//! Ctrl-C (SIGINT) starts no new batch and lets the moves under way finish, for a move
//! stopped between its copies and its last step would keep a copy that a logout in between
//! had missed (a second Ctrl-C stops at once, and says so).
//!
//! A session whose owner in B is where it already is (a pool that gained a member: most ids
//! stay with their member) is left alone: only sessions whose owner changed move.
//!
//! "Where" is the server as it says it is (`INFO server`'s `run_id`), its db and the key
//! prefix, never the address as written: `--from redis://127.0.0.1:P --to
//! redis://localhost:P` is one server, and taking it for two made every move find the
//! session "already in the target" (its own key) and then retire the source, the only
//! copy. See [`Identities`].

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use serde::Serialize;
use session_core::{
    backends::pool::score,
    mover::{MoveOutcome, Mover},
    plan::{BackendPlan, Plan, Topology},
    SessionBackend, SessionId,
};

use crate::{
    args::MigrateArgs,
    failure::Failure,
    load,
    parts::{self, files_place, identified_place, redis_place, PartKind, Role},
    progress::Progress,
    scan::{self, Source},
};

/// The `SCAN COUNT` hint: listing ids is cheap, whatever the batch of moves.
const SCAN_COUNT: usize = 1000;

/// At most this many failure lines are printed (the rest are counted).
const SHOWN_ERRORS: usize = 5;

#[derive(Serialize, Default)]
struct Report {
    /// Sessions found in the source.
    found: usize,
    /// Created in the target (dry run: would be).
    moved: usize,
    /// The target had the id already and kept its copy.
    already_present: usize,
    /// Already where the target's configuration wants them: not touched.
    unchanged: usize,
    /// Logged out during the move: in neither store now.
    logged_out: usize,
    /// Gone from the source between the scan and the move (expired, logged out).
    gone: usize,
    /// Could not be moved (see the errors); running again retries them.
    failed: usize,
    dry_run: bool,
    delete_source: bool,
    /// Stopped by Ctrl-C: the moves under way finished, the rest were not tried.
    interrupted: bool,
    /// Found in the source but not tried (an interrupted run): running again moves them.
    not_tried: usize,
    elapsed_s: f64,
    per_second: f64,
}

/// Where the target wants a session.
enum Owner {
    /// Always this place.
    Fixed(String),
    /// A pool: (identity, weight, place) per member, routed as the pool routes.
    Pool(Vec<(String, u32, String)>),
    /// Sentinel or Cluster: the places of its servers (a source among them is refused).
    Servers(Vec<String>),
}

impl Owner {
    async fn of(plan: &Plan) -> Result<Self, Failure> {
        Ok(match &plan.backend {
            BackendPlan::File(file) => Owner::Fixed(files_place(&file.root)),
            BackendPlan::Redis(redis) => match &redis.topology {
                Topology::Standalone(info) => Owner::Fixed(redis_place(
                    &parts::location(info.addr()),
                    info.redis_settings().db(),
                    &redis.prefix,
                )),
                _ => {
                    let mut places = Vec::new();
                    for part in parts::parts(&plan.backend)? {
                        if let PartKind::Redis(r) = &part.kind {
                            if let Ok(d) = r.discover().await {
                                places.extend(d.nodes.iter().map(|n| n.place(&r.prefix)));
                            }
                        }
                    }
                    Owner::Servers(places)
                }
            },
            BackendPlan::Pool(pool) => Owner::Pool(
                pool.members
                    .iter()
                    .map(|m| {
                        let place = match &m.redis.topology {
                            Topology::Standalone(info) => redis_place(
                                &parts::location(info.addr()),
                                info.redis_settings().db(),
                                &m.redis.prefix,
                            ),
                            _ => String::new(),
                        };
                        (m.identity.clone(), m.weight, place)
                    })
                    .collect(),
            ),
            _ => {
                return Err(Failure::usage(
                    "--to: a multi-backend or in-memory target is not supported: migrate into one of its backends",
                ))
            }
        })
    }

    /// The same owner, each Redis place replaced by the server's own name for it
    /// ([`Identities::of`]).
    fn identified(self, identities: &Identities) -> Self {
        let of = |place: String| identities.of(&place).to_owned();
        match self {
            Owner::Fixed(p) => Owner::Fixed(of(p)),
            Owner::Pool(members) => Owner::Pool(
                members
                    .into_iter()
                    .map(|(identity, weight, p)| (identity, weight, of(p)))
                    .collect(),
            ),
            Owner::Servers(places) => Owner::Servers(places.into_iter().map(of).collect()),
        }
    }

    /// True when the target keeps sessions on Redis (then places must be compared by what
    /// the servers say they are).
    fn on_redis(&self) -> bool {
        match self {
            Owner::Fixed(p) => p.starts_with("redis:"),
            Owner::Pool(_) | Owner::Servers(_) => true,
        }
    }

    /// True when `id`, found at `place`, is already where the target wants it.
    fn keeps(&self, place: &str, id: &SessionId) -> bool {
        match self {
            Owner::Fixed(p) => p == place,
            Owner::Pool(members) => members
                .iter()
                .map(|(identity, weight, p)| (score(identity, *weight, id.as_str()), p))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .is_some_and(|(_, p)| p == place),
            Owner::Servers(places) => places.iter().any(|p| p == place),
        }
    }
}

/// Runs the migration; fails (exit 1) when any session could not be moved.
pub async fn run(json: bool, args: MigrateArgs) -> Result<(), Failure> {
    let (_from, from_plan) = load::spec_config("--from", &args.from)?;
    let (_to, to_plan) = load::spec_config("--to", &args.to)?;
    let owner = Owner::of(&to_plan).await?;
    let target = session_core::backends::build(&to_plan.backend).map_err(Failure::config)?;
    let batch = args.batch as usize;

    let started = Instant::now();
    let mut groups = Vec::new();
    for part in parts::parts(&from_plan.backend)? {
        for group in scan::groups(&part, SCAN_COUNT).await? {
            groups.push((part.backend.clone(), group));
        }
    }
    // Before anything moves: which server each place is, by its own word (see `Identities`).
    let owner = if owner.on_redis() {
        let identities = Identities::read(&to_plan, &groups).await?;
        for (_, group) in &mut groups {
            group.place = identities.of(&group.place).to_owned();
        }
        owner.identified(&identities)
    } else {
        owner
    };
    // The total for the progress display (and for what an interrupted run left), from a walk
    // of its own that keeps no id: the moves then walk again, a batch at a time, so memory
    // holds a few batches whatever the number of sessions.
    let mut total = 0;
    for (_, group) in &mut groups {
        let count = group.count().await?;
        total += count;
        if let Owner::Servers(places) = &owner {
            if count > 0 && places.contains(&group.place) {
                return Err(Failure::usage(format!(
                    "--from and --to share the server {} with the same prefix: nothing to move",
                    group.name
                )));
            }
        }
    }
    let mut report = Report {
        dry_run: args.dry_run,
        delete_source: args.delete_source,
        ..Report::default()
    };
    let mut progress = Progress::new(args.progress, "migrate", total as u64);
    let mut errors = Vec::new();
    let stop = stop_on_ctrl_c();
    let mut tried = 0;
    let mut walk_failed = None;
    // A few batches per call, so the mover overlaps them.
    let chunk = batch * 4;
    'groups: for (source, group) in &mut groups {
        let mover = Mover::new(source.clone(), target.clone(), to_plan.ttl)
            .keep_source(!args.delete_source)
            .batch(batch);
        let mut ids: Vec<SessionId> = Vec::new();
        let mut walked = false;
        while !walked || !ids.is_empty() {
            if !walked && ids.len() < chunk {
                match group.next_ids().await {
                    Ok(Some(more)) => ids.extend(more),
                    Ok(None) => walked = true,
                    Err(failure) => {
                        walk_failed = Some(failure);
                        break 'groups;
                    }
                }
                if !walked && ids.len() < chunk {
                    continue;
                }
            }
            if stop.load(Ordering::SeqCst) {
                report.interrupted = true;
                break 'groups;
            }
            let ids: Vec<SessionId> = ids.drain(..ids.len().min(chunk)).collect();
            tried += ids.len();
            let todo: Vec<SessionId> = ids
                .iter()
                .filter(|id| !owner.keeps(&group.place, id))
                .cloned()
                .collect();
            report.unchanged += ids.len() - todo.len();
            if args.dry_run {
                dry_run(&target, &todo, &mut report, &mut errors).await;
            } else {
                for outcome in mover.move_many(&todo).await {
                    match outcome {
                        Ok(MoveOutcome::Created) => report.moved += 1,
                        Ok(MoveOutcome::AlreadyThere) => report.already_present += 1,
                        Ok(MoveOutcome::LoggedOut) => report.logged_out += 1,
                        Ok(MoveOutcome::Absent) => report.gone += 1,
                        Err(err) => {
                            report.failed += 1;
                            errors.push(format!("{}: {err}", group.name));
                        }
                    }
                }
            }
            progress.advance(ids.len() as u64);
        }
    }
    progress.finish();
    if let Some(failure) = walk_failed {
        return Err(Failure {
            message: format!(
                "{}\n{} session(s) moved before the failure, {} failed, the others not tried: run the same command again to finish",
                failure.message, report.moved, report.failed
            ),
            ..failure
        });
    }
    // Sessions found by the counting walk and not tried (an interrupted run) are part of
    // what was found; sessions created since it are counted as they are tried.
    report.found = if report.interrupted {
        tried.max(total)
    } else {
        tried
    };
    report.not_tried = report.found.saturating_sub(tried);
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.per_second = report.found as f64 / report.elapsed_s.max(1e-6);
    // A report that cannot be written comes after the failures: those say what to do.
    let printed = if json {
        out!("{}", crate::text::json(&report))
    } else {
        let verb = if args.dry_run { "would move" } else { "moved" };
        out!(
            "{verb} {} of {} session(s) in {:.2} s ({:.0}/s): {} already in the target, {} unchanged (owner did not change), {} logged out during the move, {} gone, {} failed{}",
            report.moved,
            report.found,
            report.elapsed_s,
            report.per_second,
            report.already_present,
            report.unchanged,
            report.logged_out,
            report.gone,
            report.failed,
            if args.delete_source || args.dry_run { "" } else { " (source kept: add --delete-source to remove moved sessions from it)" }
        )
    };
    if !report.interrupted && errors.is_empty() {
        return printed;
    }
    let more = errors.len().saturating_sub(SHOWN_ERRORS);
    errors.truncate(SHOWN_ERRORS);
    if more > 0 {
        errors.push(format!("... and {more} more"));
    }
    let failures = if errors.is_empty() {
        String::new()
    } else {
        format!(":\n{}", errors.join("\n"))
    };
    if report.interrupted {
        // The failures of the batches that ran are shown too: Ctrl-C does not hide them.
        return Err(Failure::interrupted(format!(
            "interrupted: {} session(s) not tried, {} failed (run the same command again to move them){failures}",
            report.not_tried, report.failed
        )));
    }
    Err(Failure::failed(format!(
        "{} session(s) not moved (run the same command again to retry them){failures}",
        report.failed,
    )))
}

/// Which server each Redis place of `--from` and `--to` is, by what the server says about
/// itself (`INFO server`'s `run_id`, [`parts::server_id`]), with the db and the key prefix:
/// place as configured ([`redis_place`]) → place by identity ([`identified_place`]).
///
/// Places were compared as written, so one server written two ways (`127.0.0.1` and
/// `localhost`, a socket and TCP, a TLS port and a plain one) was two places: every session
/// was "already in the target" (its own key), and `--delete-source` then retired the source,
/// the only copy. Compared by identity, such a source is where the target wants its sessions,
/// as with `--from X --to X`: left alone, counted "unchanged".
///
/// A server whose identity cannot be read must not pass for another one:
/// * a source server (it answered `SCAN` a moment ago) or a target server that holds
///   sessions which answers but refuses `INFO` (an ACL without `+info`) stops the run
///   before anything moves (exit 1), naming the server;
/// * a target server that does not answer at all is compared by its address, with a
///   warning: every move into it needs its answer (its copy, then a create), and fails
///   without one, so no source is retired for it;
/// * a target replica or Sentinel/Cluster node that holds no sessions, and whose identity
///   cannot be read, is compared by its address (it only serves the refusal of a source
///   that is one of the target's servers).
struct Identities {
    /// Place as configured → place by identity.
    known: HashMap<String, String>,
    /// The target's places among them, as configured.
    target: Vec<String>,
}

impl Identities {
    async fn read(
        to_plan: &Plan,
        groups: &[(Arc<dyn SessionBackend>, scan::Group)],
    ) -> Result<Self, Failure> {
        let mut known = HashMap::new();
        for (_, group) in groups {
            let Source::Redis(conn, prefix) = &group.source else {
                continue;
            };
            let run_id = parts::server_id(&mut conn.clone())
                .await
                .map_err(|e| unidentified("--from", &group.name, &e))?;
            known.insert(
                group.place.clone(),
                identified_place(&run_id, group.db, prefix),
            );
        }
        let mut target = Vec::new();
        if known.is_empty() {
            // No Redis source: nothing to compare with the target's servers.
            return Ok(Self { known, target });
        }
        for part in parts::parts(&to_plan.backend)? {
            let PartKind::Redis(redis) = &part.kind else {
                continue;
            };
            let discovery = match redis.discover().await {
                Ok(discovery) => discovery,
                Err(err) => {
                    say(format!(
                        "sessionctl: warning: --to {}: could not list its servers ({}); they are compared with --from by address",
                        part.name, err.message
                    ));
                    continue;
                }
            };
            for node in discovery.nodes.iter().filter(|n| n.role != Role::Sentinel) {
                let place = node.place(&redis.prefix);
                if known.contains_key(&place) {
                    // Written as a source is: the same place already.
                    continue;
                }
                let name = format!("{} {}", part.name, node.location);
                let mut conn = match redis.connect(node).await {
                    Ok(conn) => conn,
                    Err(err) => {
                        say(format!(
                            "sessionctl: warning: --to {name}: does not answer ({err}); compared with --from by address (moves into it fail while it does not answer, and nothing is retired for them)"
                        ));
                        continue;
                    }
                };
                match parts::server_id(&mut conn).await {
                    Ok(run_id) => {
                        let identity = identified_place(&run_id, node.db, &redis.prefix);
                        known.insert(place.clone(), identity);
                        target.push(place);
                    }
                    Err(err) if node.role.holds_sessions() => {
                        return Err(unidentified("--to", &name, &err))
                    }
                    Err(err) => say(format!(
                        "sessionctl: warning: --to {name}: cannot tell which server this is ({err}); compared with --from by address"
                    )),
                }
            }
        }
        let identities = Self { known, target };
        identities.note_spellings(groups);
        Ok(identities)
    }

    /// The place by identity of `place`, or `place` itself when it is not a Redis server
    /// whose identity was read (the file store; see the type's docs).
    fn of<'a>(&'a self, place: &'a str) -> &'a str {
        self.known.get(place).map_or(place, String::as_str)
    }

    /// Says on stderr which places are one server written two ways, so that an operator who
    /// sees "unchanged" knows why.
    fn note_spellings(&self, groups: &[(Arc<dyn SessionBackend>, scan::Group)]) {
        for (_, group) in groups {
            let Some(identity) = self.known.get(&group.place) else {
                continue;
            };
            for place in &self.target {
                if self.known.get(place) == Some(identity) {
                    say(format!(
                        "sessionctl: note: --from {} is the same server, db and prefix as --to's {}: its sessions are already where --to keeps them, and are left alone (counted unchanged)",
                        group.name,
                        shown_place(place),
                    ));
                }
            }
        }
    }
}

/// Writes a line on stderr, escaped as errors are: it names parts (the configuration's text)
/// and servers, and quotes what a server said.
fn say(line: String) {
    err!(
        "{}",
        crate::text::printable(&session_core::without_echoed_arguments(&line))
    );
}

/// A place as shown: `redis:<host:port>/<db>#<prefix>` holds no credentials (they are not
/// part of a location), only the address; the file store's is its directory.
fn shown_place(place: &str) -> &str {
    place.strip_prefix("redis:").unwrap_or(place)
}

/// The failure of a run that could not tell which server `name` is: without it, one server
/// written two ways would pass for two, and `--delete-source` would delete its sessions.
fn unidentified(flag: &str, name: &str, err: &str) -> Failure {
    Failure::failed(format!(
        "{flag} {name}: cannot tell which server this is ({err}): migrate compares the servers of --from and --to by `INFO server` (run_id), so that one server written two ways is never taken for two and its sessions deleted; nothing was moved. Allow the user `INFO` (`+info`) on this server"
    ))
}

/// A flag the first Ctrl-C sets (the loop then starts no new batch); a second one exits at
/// once with status 130. Moves of session-core run in tasks of their own and are not
/// cancelled by the runtime's end, but a process that exits stops them. The listener is
/// made here, before the first batch, and kept: a SIGINT that came before the task first
/// ran, or between the two, is not lost to the default action (which kills at once).
#[cfg(unix)]
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Arc::new(AtomicBool::new(false));
    let Ok(mut sigint) = signal(SignalKind::interrupt()) else {
        return stop;
    };
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        if sigint.recv().await.is_none() {
            return;
        }
        flag.store(true, Ordering::SeqCst);
        err!(
            "sessionctl: interrupted: finishing the moves under way (Ctrl-C again stops at once, and a logout made during those moves may then be undone)"
        );
        if sigint.recv().await.is_some() {
            std::process::exit(130);
        }
    });
    stop
}

/// Elsewhere: tokio's `ctrl_c`, registered when the task first runs.
#[cfg(not(unix))]
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            err!("sessionctl: interrupted: finishing the moves under way");
        }
    });
    stop
}

/// Counts what a real run would do: which ids the target has already (one batch read).
async fn dry_run(
    target: &Arc<dyn SessionBackend>,
    ids: &[SessionId],
    report: &mut Report,
    errors: &mut Vec<String>,
) {
    for result in target.load_many_with_ttl(ids).await {
        match result {
            Ok(Some(_)) => report.already_present += 1,
            Ok(None) => report.moved += 1,
            Err(err) => {
                report.failed += 1;
                errors.push(format!("target: {err}"));
            }
        }
    }
}
