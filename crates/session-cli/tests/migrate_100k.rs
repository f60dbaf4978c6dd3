//! The one large migration of the suite: 100,000 sessions from one redis-server into another
//! with `--delete-source`, every session accounted for. (Its speed is measured by
//! `scripts/bench_migrate.sh`, not asserted here.)

mod common;

use common::{dbsize, id, markers, put, sessionctl, stored};
use session_testkit::RedisServer;

const SESSIONS: usize = 100_000;

/// `sessionctl migrate --from FROM --to TO --delete-source --json` and `more`.
fn migrate_args(from: &RedisServer, to: &RedisServer, more: &[&str]) -> Vec<String> {
    let mut args = vec!["migrate".to_owned(), "--from".to_owned(), from.url()];
    args.extend(["--to".to_owned(), to.url()]);
    args.extend(
        ["--delete-source", "--json"]
            .into_iter()
            .chain(more.iter().copied())
            .map(str::to_owned),
    );
    args
}

/// [`sessionctl`] with owned arguments.
fn run(args: &[String]) -> common::Run {
    sessionctl(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

#[test]
fn a_hundred_thousand_sessions_move_and_every_one_is_accounted_for() {
    let from = RedisServer::start();
    let to = RedisServer::start();
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|n| {
            (
                id(n),
                vec![("user", "\"someone\""), ("n", "42")],
                Some(3_600_000),
            )
        })
        .collect();
    put(&from, "session:", &sessions);
    assert_eq!(dbsize(&from), SESSIONS as i64);

    let run = run(&migrate_args(&from, &to, &["--progress", "lines"])).expect(0);
    let json = run.json();
    assert_eq!(json["found"], SESSIONS);
    assert_eq!(json["moved"], SESSIONS);
    assert_eq!(json["failed"], 0);
    assert_eq!(stored(&from), 0, "no session left in the source");
    assert_eq!(
        markers(&from),
        SESSIONS as i64,
        "a moved marker for each, for a minute"
    );
    assert_eq!(dbsize(&to), SESSIONS as i64);
    let left: i64 = to.cmd(&["PTTL", &format!("session:{}", id(SESSIONS - 1))]);
    assert!(left > 3_000_000, "the remaining TTL moved along: {left}");
    eprintln!("{}", run.stderr.lines().last().unwrap_or_default());
}

/// Ctrl-C during a migration: the moves under way finish (a move stopped between its copy
/// and its last step could keep a copy that a logout had missed), no new batch starts, the
/// command says so (status 130, `interrupted`, `not_tried`), and every session is in
/// exactly one store; running it again moves the rest.
#[test]
fn ctrl_c_finishes_the_moves_under_way_and_loses_nothing() {
    use std::{
        process::Command,
        time::{Duration, Instant},
    };
    const N: usize = 50_000;
    let from = RedisServer::start();
    let to = RedisServer::start();
    let sessions: Vec<_> = (0..N)
        .map(|n| (id(n), vec![("n", "1")], Some(3_600_000)))
        .collect();
    put(&from, "session:", &sessions);
    let args = migrate_args(&from, &to, &["--batch", "50"]);
    let child = common::spawn(&args, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while dbsize(&to) == 0 {
        assert!(Instant::now() < deadline, "no session moved in a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("finishing the moves under way"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["interrupted"], true);
    let not_tried = json["not_tried"].as_u64().unwrap();
    assert!(not_tried > 0, "{json}");
    assert_eq!(json["failed"], 0);
    // Every session in exactly one store: the ones tried moved, the rest stayed.
    assert_eq!(json["moved"].as_i64().unwrap(), dbsize(&to));
    assert_eq!(stored(&from) + dbsize(&to), N as i64);
    assert!(stored(&from) >= not_tried as i64);

    run(&args).expect(0);
    assert_eq!(stored(&from), 0);
    assert_eq!(dbsize(&to), N as i64);
}
