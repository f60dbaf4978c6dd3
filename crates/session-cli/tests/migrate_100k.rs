//! The one large migration of the suite: 100,000 sessions from one redis-server into another
//! with `--delete-source`, every session accounted for. (Its speed is measured by
//! `scripts/bench_migrate.sh`, not asserted here.)

mod common;

use common::{dbsize, id, put, sessionctl};
use session_testkit::RedisServer;

const SESSIONS: usize = 100_000;

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

    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &from.url(),
            "--to",
            &to.url(),
            "--delete-source",
            "--json",
            "--progress",
            "lines",
        ],
        &[],
    )
    .expect(0);
    let json = run.json();
    assert_eq!(json["found"], SESSIONS);
    assert_eq!(json["moved"], SESSIONS);
    assert_eq!(json["failed"], 0);
    assert_eq!(dbsize(&from), 0);
    assert_eq!(dbsize(&to), SESSIONS as i64);
    let left: i64 = to.cmd(&["PTTL", &format!("session:{}", id(SESSIONS - 1))]);
    assert!(left > 3_000_000, "the remaining TTL moved along: {left}");
    eprintln!("{}", run.stderr.lines().last().unwrap_or_default());
}
