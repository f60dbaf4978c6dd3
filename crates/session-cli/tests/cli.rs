//! `sessionctl` against real redis-server processes (standalone, pool) and the file store:
//! every command's success and failure paths.

mod common;

use std::time::Duration;

use common::{
    conf, dbsize, id, markers, put, put_hashes, sessionctl, sessionctl_with_input, stored,
    stored_field, Monitor, MOVED_MARKER_PREFIX,
};
use session_core::{backends::file::FileBackend, SessionBackend, SessionId};
use session_testkit::{RedisServer, ServerOptions};

fn url_env(server: &RedisServer) -> Vec<(&'static str, String)> {
    vec![("SESSION_REDIS_URL", server.url())]
}

fn env_of<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn check_reports_version_latency_and_a_passing_dry_run() {
    let server = RedisServer::start();
    let env = url_env(&server);
    let run = sessionctl(&["check"], &env_of(&env)).expect(0);
    assert!(run.stdout.contains("standalone"), "{}", run.stdout);
    assert!(
        run.stdout.contains("up redis 7") || run.stdout.contains("up redis "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "dry run ok: create, load+touch, load+ttl, apply, apply (large), replace, touch, persist, exists, delete"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("check: ok\n"), "{}", run.stdout);
    assert_eq!(dbsize(&server), 0, "the throwaway session is removed");

    let json = sessionctl(&["check", "--json"], &env_of(&env))
        .expect(0)
        .json();
    assert_eq!(json["ok"], true);
    assert_eq!(
        json["nodes"][0]["location"],
        format!("127.0.0.1:{}", server.port())
    );
    assert!(json["nodes"][0]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(json["nodes"][0]["version"].as_str().unwrap().contains('.'));
}

#[test]
fn check_fails_with_one_line_per_failing_part_and_no_password() {
    let up = RedisServer::start();
    let down = RedisServer::start();
    let down_port = down.port();
    // Killed, not dropped: a dropped server gives its port back to the test kit, and another
    // test's server could start on it in the meantime.
    down.kill();
    let pool = format!(
        "[{{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {}}}, {{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {down_port}, 'SESSION_REDIS_PASSWORD': 'hunter2secret'}}]",
        up.port()
    );
    let run = sessionctl(&["check"], &[("SESSION_REDIS_POOL", &pool)]).expect(1);
    let failing: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&down_port.to_string()))
        .collect();
    assert_eq!(
        failing.len(),
        2,
        "the server down and its dry run:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("check failed: 2 problem(s)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains(&format!("pool[127.0.0.1:{}/0]", up.port())),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("hunter2secret") && !run.stderr.contains("hunter2secret"));
}

#[test]
fn an_invalid_configuration_names_the_key_and_exits_2() {
    let run = sessionctl(&["check"], &[("SESSION_REDIS_PORT", "http")]).expect(2);
    assert!(
        run.stderr.contains("SESSION_REDIS_PORT") && run.stderr.contains("http"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 to 65535"),
        "what is expected: {}",
        run.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let file = conf(
        dir.path(),
        "bad.conf",
        &["session_redis_key_expire = soon".into()],
    );
    let run = sessionctl(&["--config", &file, "check"], &[]).expect(2);
    assert!(
        run.stderr.contains("session_redis_key_expire"),
        "{}",
        run.stderr
    );
    let run = sessionctl(&["--config", "/nonexistent/session.conf", "check"], &[]).expect(2);
    assert!(run.stderr.contains("no such file"), "{}", run.stderr);
}

#[test]
fn check_with_a_config_file_and_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let file = conf(
        dir.path(),
        "files.conf",
        &[
            "session_redis_mode = False".into(),
            format!("session_filestore_path = {}", root.display()),
        ],
    );
    let run = sessionctl(&["--config", &file, "check"], &[]).expect(0);
    assert!(run.stdout.contains("file store"), "{}", run.stdout);
    assert!(run.stdout.contains("dry run ok"), "{}", run.stdout);
}

#[test]
fn check_fails_the_dry_run_of_a_user_without_the_store_commands() {
    let server = RedisServer::start();
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "reader",
        "on",
        ">readerpass",
        "~session:*",
        "+get",
        "+hgetall",
        "+ping",
        "+info",
    ]);
    let url = format!("redis://reader:readerpass@127.0.0.1:{}/0", server.port());
    let run = sessionctl(&["check"], &[("SESSION_REDIS_URL", &url)]).expect(1);
    assert!(
        run.stderr.contains("dry run failed: create"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("readerpass") && !run.stdout.contains("readerpass"));

    // Every command but `RENAME` (the staged rewrite of a large session): found by the dry
    // run, not by the first large session in production.
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "norename",
        "on",
        ">norenamepass",
        "~session:*",
        "+get",
        "+set",
        "+getrange",
        "+append",
        "+strlen",
        "+pexpire",
        "+pttl",
        "+persist",
        "+del",
        "+evalsha",
        "+eval",
        "+exists",
        "+type",
        "+ping",
        "+info",
    ]);
    let url = format!(
        "redis://norename:norenamepass@127.0.0.1:{}/0",
        server.port()
    );
    let run = sessionctl(&["check"], &[("SESSION_REDIS_URL", &url)]).expect(1);
    assert!(
        run.stderr.contains("dry run failed") && run.stderr.contains("apply (large)"),
        "{}",
        run.stderr
    );
}

#[test]
fn show_prints_keys_sizes_and_ttl_and_values_only_when_asked() {
    let server = RedisServer::start();
    let alice = id(1);
    put(
        &server,
        "session:",
        &[(
            alice.clone(),
            vec![("user", "\"alice\""), ("n", "3")],
            Some(600_000),
        )],
    );
    let env = url_env(&server);
    let run = sessionctl(&["show", &alice], &env_of(&env)).expect(0);
    assert!(
        run.stdout.contains("user") && run.stdout.contains("7 B"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("alice"),
        "no values without --values: {}",
        run.stdout
    );
    assert!(run.stdout.contains("ttl:  ") && !run.stdout.contains("no expiry"));
    let run = sessionctl(&["show", &alice, "--values"], &env_of(&env)).expect(0);
    assert!(run.stdout.contains("\"alice\""), "{}", run.stdout);
    let json = sessionctl(&["show", &alice, "--json"], &env_of(&env))
        .expect(0)
        .json();
    assert!(json[0]["ttl_ms"].as_u64().unwrap() > 500_000);
    assert_eq!(json[0]["keys"].as_array().unwrap().len(), 2);

    // A session still stored as a hash (an earlier version's layout) shows the same.
    let bob = id(3);
    put_hashes(
        &server,
        "session:",
        &[(bob.clone(), vec![("user", "\"bob\""), ("n", "4")], None)],
    );
    let run = sessionctl(&["show", &bob, "--values"], &env_of(&env)).expect(0);
    assert!(
        run.stdout.contains("\"bob\"") && run.stdout.contains("no expiry"),
        "{}",
        run.stdout
    );

    let run = sessionctl(&["show", &id(2)], &env_of(&env)).expect(1);
    assert!(run.stderr.contains("no such session"), "{}", run.stderr);
    let run = sessionctl(&["show", "../../etc/passwd"], &env_of(&env)).expect(2);
    assert!(
        run.stderr.contains("invalid session id") && !run.stderr.contains("passwd"),
        "{}",
        run.stderr
    );
}

/// Session keys and values are whatever a client stored: `show` escapes control characters
/// and invisible ones (U+202E) instead of writing them to the terminal, and so does an error
/// that quotes a session key.
#[test]
fn show_escapes_control_characters_of_stored_keys_and_values() {
    let server = RedisServer::start();
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2Juser";
    let escaped = r"\u{1b}]0;pwned\u{7}\u{1b}[2Juser";
    let (new, old) = (id(1), id(2));
    put(
        &server,
        "session:",
        &[(new.clone(), vec![(hostile, "\"\u{202e}olleh\"")], None)],
    );
    // The layout of earlier versions keeps each value as it is (JSON text: U+202E or a C1
    // control such as U+009B, the one-byte CSI, may stand raw in a string).
    put_hashes(
        &server,
        "session:",
        &[(old.clone(), vec![(hostile, "\"\u{9b}2J\u{202e}x\"")], None)],
    );
    let env = url_env(&server);
    for id in [&new, &old] {
        let run = sessionctl(&["show", id, "--values"], &env_of(&env)).expect(0);
        assert!(
            !run.stdout
                .contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']),
            "{:?}",
            run.stdout
        );
        assert!(run.stdout.contains(escaped), "{}", run.stdout);
        assert!(run.stdout.contains(r"\u{202e}"), "{}", run.stdout);
        // JSON output escapes by itself and keeps the key exact.
        let json = sessionctl(&["show", id, "--json"], &env_of(&env))
            .expect(0)
            .json();
        assert_eq!(json[0]["keys"][0]["key"], hostile);
    }
    let run = sessionctl(&["show", &old, "--values"], &env_of(&env)).expect(0);
    assert!(run.stdout.contains(r"\u{9b}2J"), "{}", run.stdout);

    // A value that is not UTF-8: session-core's error names the session key, escaped too.
    let broken = id(3);
    let mut conn = server.client().get_connection().unwrap();
    let () = redis::cmd("HSET")
        .arg(format!("session:{broken}"))
        .arg(hostile)
        .arg(&[0xffu8, 0xfe][..])
        .query(&mut conn)
        .unwrap();
    let run = sessionctl(&["show", &broken], &env_of(&env)).expect(1);
    assert!(
        !run.stderr.contains(['\u{1b}', '\u{7}']) && run.stderr.contains(escaped),
        "{:?}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&broken),
        "no session id: {}",
        run.stderr
    );
}

/// Characters a terminal acts on or that reorder text, which JSON leaves raw (it escapes
/// only U+0000-U+001F): a C1 control (U+009B is the one-byte CSI) and the bidirectional
/// overrides, isolates and marks.
const RAW_IN_JSON: [char; 14] = [
    '\u{85}', '\u{9b}', '\u{9d}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200e}', '\u{61c}',
];

/// `--json` output (and `export`'s JSON lines, which go to the terminal when no file is
/// given) writes those characters as `\uXXXX`: still JSON, read back as the same text.
/// serde_json printed them raw.
#[test]
fn json_output_escapes_c1_controls_and_bidirectional_characters() {
    let server = RedisServer::start();
    let hostile: String = RAW_IN_JSON.iter().flat_map(|c| [*c, 'x']).collect();
    let key = format!("user{hostile}");
    let value = serde_json::to_string(&hostile).unwrap();
    let sid = id(1);
    put(
        &server,
        "session:",
        &[(
            sid.clone(),
            vec![(key.as_str(), value.as_str()), ("\u{200f}", "1")],
            None,
        )],
    );
    let env = url_env(&server);
    let run = sessionctl(&["show", &sid, "--values", "--json"], &env_of(&env)).expect(0);
    assert!(
        !run.stdout.contains(RAW_IN_JSON) && !run.stdout.contains('\u{200f}'),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains(r"\u009b") && run.stdout.contains(r"\u202e"),
        "{}",
        run.stdout
    );
    let json = run.json();
    let keys = json[0]["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["key"] == key.as_str()), "{json}");
    assert!(keys.iter().any(|k| k["value"] == value.as_str()), "{json}");

    let run = sessionctl(&["export"], &env_of(&env)).expect(0);
    assert!(!run.stdout.contains(RAW_IN_JSON), "{:?}", run.stdout);
    let line: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(line["fields"][&key], value.as_str());

    // The text output escapes the same characters, its own way.
    let run = sessionctl(&["show", &sid, "--values"], &env_of(&env)).expect(0);
    assert!(!run.stdout.contains(RAW_IN_JSON), "{:?}", run.stdout);
}

#[test]
fn revoke_by_id_by_value_without_ttl_and_all() {
    let server = RedisServer::start();
    let mut sessions = Vec::new();
    for n in 0..30 {
        let user = if n % 3 == 0 { "\"alice\"" } else { "\"bob\"" };
        let ttl = if n < 20 { Some(600_000) } else { None };
        sessions.push((id(n), vec![("user", user), ("n", "1")], ttl));
    }
    put(&server, "session:", &sessions);
    let _: () = server.cmd(&["SET", "session:not-a-session-id", "x"]);
    let env = url_env(&server);
    let env = env_of(&env);

    // A dry run counts what a revoke would delete: the ids that name a session, not the
    // ids given (id 99 names none).
    let run = sessionctl(&["revoke", &id(1), &id(2), &id(99), "--dry-run"], &env).expect(0);
    assert_eq!(
        run.stdout,
        "would revoke 2 session(s) (dry run: nothing deleted)\n"
    );
    let json = sessionctl(
        &["revoke", &id(1), &id(2), &id(99), "--dry-run", "--json"],
        &env,
    )
    .expect(0)
    .json();
    assert_eq!(
        (json["matched"].clone(), json["revoked"].clone()),
        (2.into(), 0.into())
    );
    assert_eq!(dbsize(&server), 30 + 1, "a dry run deletes nothing");
    let json = sessionctl(&["revoke", &id(1), &id(2), &id(99), "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(
        (json["matched"].clone(), json["revoked"].clone()),
        (2.into(), 2.into())
    );
    let run = sessionctl(&["revoke", &id(1), &id(2), &id(99), "--dry-run"], &env).expect(0);
    assert_eq!(
        run.stdout,
        "would revoke 0 session(s) (dry run: nothing deleted)\n"
    );

    // alice: 0, 3, ..., 27 = 10 sessions.
    let run = sessionctl(&["revoke", "--where", "user=alice", "--dry-run"], &env).expect(0);
    assert!(run.stdout.contains("would revoke 10"), "{}", run.stdout);
    let json = sessionctl(&["revoke", "--where", "user=alice", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(json["revoked"], 10);
    assert_eq!(dbsize(&server), 30 - 2 - 10 + 1);

    // Without TTL: 20..29 minus alice's 21, 24, 27 = 7.
    let run = sessionctl(&["revoke", "--no-ttl"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 7 session(s)\n");

    let run = sessionctl(&["revoke", "--all"], &env).expect(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    let run = sessionctl(&["revoke", "--all", "--yes"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 11 session(s)\n");
    assert_eq!(dbsize(&server), 1, "the key that is not a session stays");

    let run = sessionctl(&["revoke"], &env).expect(2);
    assert!(run.stderr.contains("say which sessions"), "{}", run.stderr);
    let run = sessionctl(&["revoke", "--where", "user"], &env).expect(2);
    assert!(run.stderr.contains("KEY=VALUE"), "{}", run.stderr);
}

/// base64url ids start with `-` one time in 64 (a CI run once drew one): an operator pastes
/// them as they come, before or after the flags, without `--`.
#[test]
fn ids_that_start_with_a_dash_are_shown_and_revoked_as_given() {
    let server = RedisServer::start();
    let dashed = |n: usize| format!("-{}", &id(n)[1..]);
    let sessions: Vec<_> = (0..3)
        .map(|n| (dashed(n), vec![("user", "\"alice\"")], Some(600_000)))
        .collect();
    put(&server, "session:", &sessions);
    let env = url_env(&server);
    let env = env_of(&env);

    let run = sessionctl(&["show", &dashed(0), "--values"], &env).expect(0);
    assert!(run.stdout.contains("\"alice\""), "{}", run.stdout);
    let run = sessionctl(&["revoke", &dashed(0), &dashed(1), "--dry-run"], &env).expect(0);
    assert!(run.stdout.contains("would revoke 2"), "{}", run.stdout);
    let run = sessionctl(&["revoke", &dashed(0), &id(7), "--", &dashed(1)], &env).expect(0);
    assert_eq!(run.stdout, "revoked 2 session(s)\n");
    assert_eq!(dbsize(&server), 1);
    // Still a conflict, with the id moved behind the flags.
    let run = sessionctl(&["revoke", &dashed(2), "--all"], &env).expect(2);
    assert!(run.stderr.contains("--all"), "{}", run.stderr);
    assert_eq!(dbsize(&server), 1);
}

#[test]
fn revoke_fails_clearly_when_redis_is_down() {
    let server = RedisServer::start();
    let env = url_env(&server);
    server.kill();
    let run = sessionctl(&["revoke", &id(1)], &env_of(&env)).expect(1);
    assert!(
        run.stderr.contains("unavailable") && run.stderr.contains("sessionctl check"),
        "{}",
        run.stderr
    );
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env_of(&env)).expect(1);
    assert!(
        run.stderr.contains(&server.port().to_string()),
        "{}",
        run.stderr
    );
}

/// A read the server refuses (an error reply to one `GET` of a pipeline: an ACL that covers
/// only some keys, a cluster slot that moved, a server still loading) says nothing about the
/// session, which may well be there: it is a failure, never a session "that cannot be read"
/// (corrupt, left out). `revoke --where` left such sessions logged in and exited 0, `export`
/// wrote a backup without them and exited 0, `reindex` indexed the rest and exited 0.
#[test]
fn a_read_the_server_refuses_fails_the_command() {
    let server = RedisServer::start();
    let sessions: Vec<_> = (1..=4)
        .map(|n| (id(n), vec![("user", "\"alice\"")], Some(600_000)))
        .collect();
    put(&server, "session:", &sessions);
    // SCAN lists every key whatever the user's key patterns; GET of an odd id is refused.
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "evens",
        "on",
        ">evenspass",
        "~session:*[02468]",
        "+@all",
    ]);
    let url = format!("redis://evens:evenspass@127.0.0.1:{}/0", server.port());
    let env = [("SESSION_REDIS_URL", url.as_str())];

    let run = sessionctl(&["export"], &env).expect(1);
    assert!(
        run.stderr.contains("refused") && run.stderr.contains("NOPERM"),
        "{}",
        run.stderr
    );
    // A failed export leaves no file that could pass for a backup.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup.jsonl");
    let run = sessionctl(&["export", "-o", out.to_str().unwrap()], &env).expect(1);
    assert!(!out.exists(), "{}", run.stderr);
    assert!(run.stderr.contains("incomplete"), "{}", run.stderr);
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(1);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    let run = sessionctl(&["stats"], &env).expect(1);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    let indexed = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    let run = sessionctl(&["reindex"], &indexed).expect(1);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    // Each stopped at the batch with the refusal: every session is still there, and
    // nothing was indexed.
    assert_eq!(dbsize(&server), 4);
}

/// stdout closed before the report is written (`sessionctl stats | head -1`, a reader that
/// went away): a clear error and exit 1, never a panic (`println!` panicked, exit 101 and a
/// backtrace, after `revoke` had deleted: was it done?).
/// A command or key the server's ACL refuses the user is a misconfiguration of a server that
/// is up: the error says so, where it asked whether the server was up.
#[test]
fn a_refusal_by_the_acl_is_not_taken_for_a_server_down() {
    let server = RedisServer::start();
    let alice = id(1);
    put(
        &server,
        "session:",
        &[(alice.clone(), vec![("user", "\"alice\"")], Some(600_000))],
    );
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "nokeys",
        "on",
        ">nokeyspass",
        "~other:*",
        "+@all",
    ]);
    let url = format!("redis://nokeys:nokeyspass@127.0.0.1:{}/0", server.port());
    let run = sessionctl(&["show", &alice], &[("SESSION_REDIS_URL", url.as_str())]).expect(1);
    assert!(
        run.stderr.contains("refused the user") && !run.stderr.contains("is the server up"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[(id(1), vec![("user", "\"alice\"")], None)],
    );
    let env = url_env(&server);
    for args in [
        &["stats"][..],
        &["show", &id(1)],
        &["check"],
        &["--json", "stats"],
        &["revoke", &id(1)],
    ] {
        let mut child = common::spawn(args, &env_of(&env));
        // No reader: every write to stdout fails with EPIPE.
        drop(child.stdout.take());
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("writing the output"), "{args:?}: {stderr}");
    }
    assert_eq!(dbsize(&server), 0, "the revoke was done");
}

/// A revoke that fails part way says how many sessions it did revoke, so that the operator
/// knows some are logged out and that running it again finishes: the error alone read as if
/// nothing had happened.
#[test]
fn a_revoke_that_fails_part_way_says_how_many_it_revoked() {
    let server = RedisServer::start();
    let sessions: Vec<_> = (1..=4)
        .map(|n| (id(n), vec![("user", "\"alice\"")], None))
        .collect();
    put(&server, "session:", &sessions);
    // Reads everywhere, writes (deletes) on the even ids only.
    let url = common::half_writable_url(&server, &[]);
    let env = [("SESSION_REDIS_URL", url.as_str())];
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(1);
    assert!(
        run.stderr
            .contains("2 session(s) revoked before the failure"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("run the same command again"),
        "{}",
        run.stderr
    );
    assert_eq!(dbsize(&server), 2);
}

/// `export` says how many sessions it left out because they cannot be read (here a key of
/// another type under the prefix): a backup that misses some says so, on stderr. It left
/// them out without a word.
#[test]
fn export_counts_the_sessions_it_cannot_read() {
    let server = RedisServer::start();
    let sessions: Vec<_> = (0..3)
        .map(|n| (id(n), vec![("user", "\"alice\"")], Some(600_000)))
        .collect();
    put(&server, "session:", &sessions);
    let _: i64 = server.cmd(&["RPUSH", &format!("session:{}", id(9)), "x"]);
    let env = url_env(&server);
    let run = sessionctl(&["export"], &env_of(&env)).expect(0);
    assert_eq!(run.stdout.lines().count(), 3);
    assert!(
        run.stderr.contains("exported 3 session(s)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("not exported: 1 session(s) that cannot be read"),
        "{}",
        run.stderr
    );
}

/// An export holds every session id, and ids are bearer credentials: the file is created
/// readable by its owner alone, whatever the umask (it was created 0644 under the usual
/// umask 022: every local user could read it and log in as anyone).
#[cfg(unix)]
#[test]
fn export_files_are_readable_by_their_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[(id(1), vec![("user", "\"alice\"")], Some(600_000))],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup.jsonl");
    let env = url_env(&server);
    let run = sessionctl(&["export", "-o", out.to_str().unwrap()], &env_of(&env)).expect(0);
    assert!(
        run.stderr.contains("exported 1 session(s)"),
        "{}",
        run.stderr
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn stats_counts_sessions_without_ttl_and_histograms() {
    let server = RedisServer::start();
    let big = format!("\"{}\"", "x".repeat(2000));
    let mut sessions = Vec::new();
    for n in 0..50 {
        let ttl = match n % 5 {
            0 => None,
            1 => Some(30_000),
            _ => Some(3_000_000),
        };
        let value = if n < 10 { big.as_str() } else { "1" };
        sessions.push((id(n), vec![("v", value)], ttl));
    }
    // Both layouts: the library's strings, and hashes written by earlier versions.
    put(&server, "session:", &sessions[..25]);
    put_hashes(&server, "session:", &sessions[25..]);
    let env = url_env(&server);
    let json = sessionctl(&["stats", "--json", "--exact"], &env_of(&env))
        .expect(0)
        .json();
    let g = &json[0];
    assert_eq!(g["sessions"], 50);
    assert_eq!(g["sampled"], 50);
    assert_eq!(g["no_ttl_estimated"], 10);
    assert!(g["memory_bytes_estimated"].as_u64().unwrap() > 20_000);
    let ttl: Vec<u64> = g["ttl_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .collect();
    assert_eq!(ttl, vec![10, 0, 30, 0, 0, 0, 10]);
    let size: Vec<u64> = g["size_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .collect();
    assert_eq!(size, vec![40, 0, 10, 0, 0, 0]);

    let run = sessionctl(&["stats", "--sample", "20"], &env_of(&env)).expect(0);
    assert!(run.stdout.contains("sessions: 50"), "{}", run.stdout);
    assert!(
        run.stdout.contains("estimated from 20 sampled"),
        "{}",
        run.stdout
    );
}

/// A move leaves a marker under the old key for a minute, and a write after a logout may
/// leave records alone there for a moment: both start with `,` and are no session to any
/// read. `stats` counted them as sessions (and scaled its estimates by them); it now counts
/// them apart, whether it reads them whole (in the sample) or not (past the sample: their
/// first byte).
#[test]
fn stats_counts_moved_markers_apart_from_sessions() {
    let server = RedisServer::start();
    let sessions: Vec<_> = (0..20)
        .map(|n| (id(n), vec![("v", "1")], (n >= 5).then_some(3_000_000)))
        .collect();
    put(&server, "session:", &sessions);
    for n in 20..30 {
        let marker = format!("{MOVED_MARKER_PREFIX}\"{n:016x}\"");
        let _: () = server.cmd(&["SET", &format!("session:{}", id(n)), &marker, "PX", "60000"]);
    }
    for n in 30..35 {
        let _: () = server.cmd(&[
            "SET",
            &format!("session:{}", id(n)),
            ",\"=n\":4",
            "PX",
            "60000",
        ]);
    }
    let env = url_env(&server);
    for flags in [&["--exact"][..], &["--sample", "1"]] {
        let json = sessionctl(&[&["stats", "--json"][..], flags].concat(), &env_of(&env))
            .expect(0)
            .json();
        let g = &json[0];
        assert_eq!(g["sessions"], 20, "{flags:?}: {json}");
        assert_eq!(g["moved_markers_or_records"], 15, "{flags:?}: {json}");
        assert_eq!(g["unreadable"], 0, "{flags:?}: {json}");
    }
    let json = sessionctl(&["stats", "--json", "--exact"], &env_of(&env))
        .expect(0)
        .json();
    assert_eq!(json[0]["sampled"], 20);
    assert_eq!(json[0]["no_ttl_estimated"], 5, "not scaled by the markers");

    let run = sessionctl(&["stats"], &env_of(&env)).expect(0);
    assert!(run.stdout.contains("sessions: 20\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("without TTL:     5 (exact)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("moved markers:   15 (or a write's leftover records"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_round_trips_and_keeps_existing_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path().join("s"))
        .unwrap()
        .with_cleanup_interval(None);
    let ids: Vec<SessionId> = (0..20).map(|_| SessionId::generate()).collect();
    for (n, id) in ids.iter().enumerate() {
        let ttl = (n % 2 == 0).then(|| Duration::from_secs(600));
        let state = [("user".to_owned(), format!("\"u{n}\""))].into();
        assert!(files.create(id, &state, ttl).await.unwrap());
    }
    let root = dir.path().join("s");
    let files_env = [
        ("SESSION_REDIS_MODE", "False"),
        ("SESSION_FILESTORE_PATH", root.to_str().unwrap()),
    ];
    let exported = sessionctl(&["export"], &files_env).expect(0);
    assert_eq!(exported.stdout.lines().count(), 20);
    assert!(exported.stderr.contains("exported 20 session(s)"));
    assert!(
        !exported.stderr.contains("not exported"),
        "{}",
        exported.stderr
    );

    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[(ids[0].as_str().to_owned(), vec![("user", "\"kept\"")], None)],
    );
    let env = url_env(&server);
    let input = format!(
        "{}not json\n{{\"id\":\"short\",\"ttl_ms\":null,\"fields\":{{\"a\":\"1\"}}}}\n",
        exported.stdout
    );
    let run = sessionctl_with_input(&["import"], &env_of(&env), Some(&input)).expect(1);
    assert!(
        run.stdout
            .contains("imported 19 session(s): 1 already present (kept), 2 invalid"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("skipped line(s): 21, 22"),
        "{}",
        run.stderr
    );
    let kept = stored_field(&server, &format!("session:{}", ids[0].as_str()), "user");
    assert_eq!(kept, "\"kept\"");
    let ttl: i64 = server.cmd(&["PTTL", &format!("session:{}", ids[2].as_str())]);
    assert!(ttl > 500_000, "the exported TTL is kept: {ttl}");
    let ttl: i64 = server.cmd(&["PTTL", &format!("session:{}", ids[1].as_str())]);
    assert_eq!(ttl, -1);

    // Again: every id is there now; nothing is overwritten, and every one counts as already
    // present, the same content too (only a create sent again, the same bytes, is its own).
    let run = sessionctl_with_input(&["import", "--json"], &env_of(&env), Some(&exported.stdout))
        .expect(0);
    assert_eq!(
        (
            run.json()["created"].as_u64(),
            run.json()["already_present"].as_u64()
        ),
        (Some(0), Some(20))
    );
    // Export never overwrites a file.
    let out = dir.path().join("backup.jsonl");
    std::fs::write(&out, "precious").unwrap();
    let run = sessionctl(&["export", "-o", out.to_str().unwrap()], &env_of(&env)).expect(1);
    assert!(run.stderr.contains("never overwrites"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_file_store_to_redis_keeps_ttls_and_is_safe_to_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let files = FileBackend::new(root.clone())
        .unwrap()
        .with_cleanup_interval(None);
    let ids: Vec<SessionId> = (0..40).map(|_| SessionId::generate()).collect();
    for (n, id) in ids.iter().enumerate() {
        let ttl = (n % 2 == 0).then(|| Duration::from_secs(600));
        assert!(files
            .create(id, &[("n".to_owned(), n.to_string())].into(), ttl)
            .await
            .unwrap());
    }
    let server = RedisServer::start();
    // The target has one of the ids already: its copy wins.
    put(
        &server,
        "session:",
        &[(ids[3].as_str().to_owned(), vec![("n", "\"theirs\"")], None)],
    );
    let from = format!("files:{}", root.display());
    let to = format!(
        "session_redis_url={};session_redis_key_expire=900",
        server.url()
    );

    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            &to,
            "--dry-run",
            "--json",
        ],
        &[],
    )
    .expect(0);
    let json = run.json();
    assert_eq!(
        (
            json["found"].as_u64(),
            json["moved"].as_u64(),
            json["already_present"].as_u64()
        ),
        (Some(40), Some(39), Some(1))
    );
    assert_eq!(dbsize(&server), 1, "a dry run changes nothing");

    // A copy first: the source keeps everything.
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            &to,
            "--progress",
            "lines",
        ],
        &[],
    )
    .expect(0);
    assert!(
        run.stdout.starts_with("moved 39 of 40 session(s)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("source kept"), "{}", run.stdout);
    assert!(
        run.stderr.contains("migrate: 40/40 (100%)"),
        "a plain progress line: {}",
        run.stderr
    );
    assert_eq!(files.session_ids().await.unwrap().len(), 40);
    assert_eq!(dbsize(&server), 40);
    let left: i64 = server.cmd(&["PTTL", &format!("session:{}", ids[0].as_str())]);
    assert!(
        left > 500_000 && left <= 600_000,
        "remaining TTL kept: {left}"
    );
    let left: i64 = server.cmd(&["PTTL", &format!("session:{}", ids[1].as_str())]);
    assert!(
        left > 800_000 && left <= 900_000,
        "no TTL in the source: key_expire of the target: {left}"
    );
    let theirs = stored_field(&server, &format!("session:{}", ids[3].as_str()), "n");
    assert_eq!(theirs, "\"theirs\"");

    // Then the move: everything is there already, the source is emptied.
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            &to,
            "--delete-source",
            "--progress",
            "bar",
        ],
        &[],
    )
    .expect(0);
    assert!(
        run.stdout.starts_with("moved 0 of 40 session(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("40 already in the target"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("40/40") && run.stderr.contains('['),
        "a bar: {}",
        run.stderr
    );
    assert!(files.session_ids().await.unwrap().is_empty());
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            &to,
            "--delete-source",
            "--json",
        ],
        &[],
    )
    .expect(0);
    assert_eq!(run.json()["found"], 0);
}

#[test]
fn migrate_failures_name_the_flag_and_the_backend() {
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            "nonsense",
            "--to",
            "redis://127.0.0.1:1",
        ],
        &[],
    )
    .expect(2);
    assert!(run.stderr.contains("--from"), "{}", run.stderr);
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            "redis://127.0.0.1:1",
            "--to",
            "session_redis_port=x",
        ],
        &[],
    )
    .expect(2);
    assert!(
        run.stderr.contains("--to") && run.stderr.contains("session_redis_port"),
        "{}",
        run.stderr
    );

    let server = RedisServer::start();
    put(&server, "session:", &[(id(1), vec![("n", "1")], None)]);
    let down = RedisServer::start();
    let down_url = down.url();
    down.kill();
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &server.url(),
            "--to",
            &down_url,
            "--delete-source",
        ],
        &[],
    )
    .expect(1);
    assert!(
        run.stderr.contains("1 session(s) not moved") && run.stderr.contains("unavailable"),
        "{}",
        run.stderr
    );
    assert_eq!(dbsize(&server), 1, "a failed move keeps the source");
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &server.url(),
            "--to",
            &server.url(),
            "--delete-source",
        ],
        &[],
    )
    .expect(0);
    assert!(
        run.stdout.contains("1 unchanged"),
        "the same store: nothing moves, nothing is deleted: {}",
        run.stdout
    );
    assert_eq!(dbsize(&server), 1);
}

/// `--from redis://127.0.0.1:P/0 --to redis://localhost:P/0 --delete-source`: one server,
/// db and prefix written two ways. Places were compared as written, so every session was
/// "already in the target" (its own key) and then retired from the source, the only copy:
/// `{"found":50,"moved":0,"already_present":50,...}`, exit 0, and no session left. Compared
/// by what the server says it is (`INFO server`'s run_id), it is `--from X --to X`: nothing
/// moves, nothing is deleted, every session counted unchanged, and a note says why.
#[test]
fn migrate_between_two_spellings_of_one_server_deletes_nothing() {
    const COUNT: usize = 50;
    let server = RedisServer::start();
    let sessions: Vec<_> = (0..COUNT)
        .map(|n| (id(n), vec![("user", "\"alice\"")], Some(600_000)))
        .collect();
    put(&server, "session:", &sessions);
    let numeric = format!("redis://127.0.0.1:{}/0", server.port());
    let named = format!("redis://localhost:{}/0", server.port());
    for (from, to) in [(&numeric, &named), (&named, &numeric)] {
        for dry_run in [false, true] {
            let mut args = vec![
                "migrate",
                "--from",
                from,
                "--to",
                to,
                "--delete-source",
                "--json",
            ];
            if dry_run {
                args.push("--dry-run");
            }
            let run = sessionctl(&args, &[]).expect(0);
            let json = run.json();
            assert_eq!(
                stored(&server),
                COUNT as i64,
                "{from} -> {to}, dry run: {dry_run}: sessions lost: {json}"
            );
            assert_eq!(
                (
                    json["found"].as_u64(),
                    json["moved"].as_u64(),
                    json["already_present"].as_u64(),
                    json["unchanged"].as_u64(),
                    json["logged_out"].as_u64(),
                    json["failed"].as_u64(),
                ),
                (Some(50), Some(0), Some(0), Some(50), Some(0), Some(0)),
                "{from} -> {to}, dry run: {dry_run}: {json}"
            );
            assert!(
                run.stderr.contains("is the same server, db and prefix"),
                "{}",
                run.stderr
            );
            assert_eq!(markers(&server), 0, "nothing retired");
        }
    }
    // Every session is still readable, by either spelling.
    for n in 0..COUNT {
        for url in [&numeric, &named] {
            let run =
                sessionctl(&["show", &id(n), "--values"], &[("SESSION_REDIS_URL", url)]).expect(0);
            assert!(run.stdout.contains("alice"), "{}", run.stdout);
        }
    }
}

/// A pool member on one side that is the single server of the other side, written another
/// way: the sessions the new pool gives that member stay where they are (unchanged), the
/// others move to the other member; none is lost.
#[test]
fn migrate_into_a_pool_whose_member_is_the_source_written_another_way() {
    const COUNT: usize = 60;
    let a = RedisServer::start();
    let b = RedisServer::start();
    let sessions: Vec<_> = (0..COUNT)
        .map(|n| (id(n), vec![("n", "1")], Some(600_000)))
        .collect();
    put(&a, "session:", &sessions);
    let from = format!("redis://127.0.0.1:{}/0", a.port());
    let pool = format!(
        "[{{'SESSION_REDIS_HOST': 'localhost', 'SESSION_REDIS_PORT': {}}}, {{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {}}}]",
        a.port(),
        b.port()
    );
    let to = format!("session_redis_pool={pool}");
    let json = sessionctl(
        &[
            "migrate",
            "--from",
            &from,
            "--to",
            &to,
            "--delete-source",
            "--json",
        ],
        &[],
    )
    .expect(0)
    .json();
    let (moved, unchanged) = (
        json["moved"].as_u64().unwrap(),
        json["unchanged"].as_u64().unwrap(),
    );
    assert_eq!(
        (json["found"].as_u64(), json["already_present"].as_u64()),
        (Some(COUNT as u64), Some(0)),
        "{json}"
    );
    assert_eq!(moved + unchanged, COUNT as u64, "{json}");
    assert!(moved > 0 && unchanged > 0, "split over the members: {json}");
    assert_eq!(stored(&b), moved as i64);
    assert_eq!(stored(&a), unchanged as i64);
    assert_eq!(markers(&a), moved as i64);
    for n in 0..COUNT {
        sessionctl(&["show", &id(n)], &[("SESSION_REDIS_POOL", &pool)]).expect(0);
    }
}

/// A server whose identity cannot be read (an ACL user without `INFO`) is never taken for
/// another one: the run stops before anything moves, naming the server, and the password
/// is nowhere in the output.
#[test]
fn migrate_refuses_a_server_that_does_not_say_which_it_is() {
    let server = RedisServer::start();
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "mover",
        "on",
        ">moverpass",
        "~*",
        "+@all",
        "-info",
    ]);
    put(&server, "session:", &[(id(1), vec![("n", "1")], None)]);
    let from = format!("redis://mover:moverpass@127.0.0.1:{}/0", server.port());
    let to = format!("redis://mover:moverpass@localhost:{}/0", server.port());
    let run = sessionctl(
        &["migrate", "--from", &from, "--to", &to, "--delete-source"],
        &[],
    )
    .expect(1);
    assert!(
        run.stderr.contains("cannot tell which server this is")
            && run.stderr.contains(&format!("127.0.0.1:{}", server.port()))
            && run.stderr.contains("+info"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("moverpass") && !run.stdout.contains("moverpass"));
    assert_eq!(stored(&server), 1);
    assert_eq!(markers(&server), 0);
    // To the file store there is no server to compare: INFO is not needed.
    let dir = tempfile::tempdir().unwrap();
    let files = format!("files:{}", dir.path().join("s").display());
    let json = sessionctl(&["migrate", "--from", &from, "--to", &files, "--json"], &[])
        .expect(0)
        .json();
    assert_eq!(json["moved"], 1, "{json}");
}

/// Inline `--from` settings: a `;` inside a password stays in it (it separates settings only
/// before an option name and `=`), and no error repeats a piece of a setting that could be
/// part of a password.
#[test]
fn migrate_inline_settings_keep_a_password_with_semicolons_and_never_print_it() {
    let password = "abc;Hunter2Zq9;x=y";
    let server = RedisServer::start_with(ServerOptions::new().password(password));
    let port = server.port().to_string();
    let mut conn = server.client().get_connection().unwrap();
    let () = redis::cmd("SET")
        .arg(format!("session:{}", id(1)))
        .arg("v1:00000000000000c1:{\"=n\":1")
        .query(&mut conn)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = format!("files:{}", dir.path().join("s").display());
    let inline = |password: &str| {
        format!("session_redis_host=127.0.0.1; session_redis_port={port};session_redis_password={password}")
    };
    let migrate = |from: &str| {
        sessionctl(
            &[
                "migrate",
                "--from",
                from,
                "--to",
                &to,
                "--dry-run",
                "--json",
            ],
            &[],
        )
    };
    let run = migrate(&inline(password)).expect(0);
    assert_eq!(run.json()["found"], 1, "the whole password was sent");

    // A wrong one fails, without a piece of it.
    let run = migrate(&inline("abc;Wrong7Qx;k=v")).expect(1);
    for piece in ["Wrong7Qx", "k=v"] {
        assert!(!run.stderr.contains(piece), "{}", run.stderr);
    }

    // Settings that cannot be read are named by position, never shown.
    let run = migrate(&format!("Hunter2Zq9;session_redis_port={port}")).expect(2);
    assert!(
        run.stderr.contains("--from: inline setting #1 has no `=`")
            && !run.stderr.contains("Hunter2"),
        "{}",
        run.stderr
    );
    let run = migrate(&format!("session_redis_port={port}\nabc Hunter2Zq9=x")).expect(2);
    assert!(
        run.stderr
            .contains("--from: inline setting #2 does not start with an option name")
            && !run.stderr.contains("Hunter2"),
        "{}",
        run.stderr
    );
}

/// Text that is nothing `migrate` reads is quoted in part, cut on a character boundary: a
/// non-ASCII one made it panic.
#[test]
fn migrate_quotes_non_ascii_text_without_panicking() {
    let text = format!("a{}", "é".repeat(40));
    let run = sessionctl(
        &["migrate", "--from", &text, "--to", "files:/nonexistent"],
        &[],
    )
    .expect(2);
    assert!(
        run.stderr.contains("--from: `a") && run.stderr.contains("is neither an existing file"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let text = format!("a{}", "é".repeat(100));
    let run = sessionctl(
        &["migrate", "--from", "files:/nonexistent", "--to", &text],
        &[],
    )
    .expect(2);
    assert!(
        run.stderr
            .contains(&format!("--to: `a{}…`", "é".repeat(59))),
        "{}",
        run.stderr
    );
}

#[test]
fn migrate_pool_to_a_bigger_pool_moves_only_sessions_whose_owner_changed() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    let c = RedisServer::start();
    let member = |s: &RedisServer| {
        format!(
            "{{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {}}}",
            s.port()
        )
    };
    let old = format!("session_redis_pool=[{}, {}]", member(&a), member(&b));
    let new = format!(
        "session_redis_pool=[{}, {}, {}]",
        member(&a),
        member(&b),
        member(&c)
    );
    // Sessions written through the old pool land on their owners.
    let dir = tempfile::tempdir().unwrap();
    let lines: String = (0..300)
        .map(|n| {
            format!(
                "{{\"id\":\"{}\",\"ttl_ms\":600000,\"fields\":{{\"n\":\"{n}\"}}}}\n",
                id(n)
            )
        })
        .collect();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines).unwrap();
    let old_pool = old.trim_start_matches("session_redis_pool=").to_owned();
    sessionctl(
        &["import", input.to_str().unwrap()],
        &[("SESSION_REDIS_POOL", &old_pool)],
    )
    .expect(0);
    assert_eq!(dbsize(&a) + dbsize(&b), 300);

    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &old,
            "--to",
            &new,
            "--delete-source",
            "--json",
        ],
        &[],
    )
    .expect(0);
    // stderr is not a terminal: the default progress is plain lines.
    assert!(
        run.stderr.contains("migrate: 300/300 (100%)"),
        "{}",
        run.stderr
    );
    let json = run.json();
    let moved = json["moved"].as_u64().unwrap();
    assert_eq!(json["found"], 300);
    assert_eq!(json["unchanged"].as_u64().unwrap() + moved, 300);
    assert_eq!(
        moved as i64,
        dbsize(&c),
        "exactly the sessions the new member owns moved"
    );
    assert!(moved > 50 && moved < 150, "about a third: {moved}");
    // The members the moved sessions left hold a moved marker for each, for a minute.
    assert_eq!(stored(&a) + stored(&b) + stored(&c), 300);
    assert_eq!(markers(&a) + markers(&b), moved as i64);
    // Every session is where the new pool looks for it.
    let new_pool = new.trim_start_matches("session_redis_pool=").to_owned();
    for n in (0..300).step_by(37) {
        sessionctl(&["show", &id(n)], &[("SESSION_REDIS_POOL", &new_pool)]).expect(0);
    }
    // Run again: nothing left to move.
    let json = sessionctl(&["migrate", "--from", &new, "--to", &new, "--json"], &[])
        .expect(0)
        .json();
    assert_eq!(
        (json["moved"].as_u64(), json["unchanged"].as_u64()),
        (Some(0), Some(300))
    );
}

/// A multi-backend (the file store being emptied into Redis): `show` reads each backend
/// without moving the session, `stats` lists both, `revoke` deletes everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_backend_is_read_without_moving_and_revoked_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let files = FileBackend::new(root.clone())
        .unwrap()
        .with_cleanup_interval(None);
    let in_file = SessionId::generate();
    assert!(files
        .create(
            &in_file,
            &[("user".to_owned(), "\"alice\"".to_owned())].into(),
            None
        )
        .await
        .unwrap());
    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[
            (id(1), vec![("user", "\"alice\"")], None),
            (id(2), vec![("user", "\"bob\"")], None),
        ],
    );
    let multi = format!(
        "[{{'backend': 'redis', 'modes': ['read', 'write'], 'setting': {{'SESSION_REDIS_URL': '{}'}}}}, \
          {{'backend': 'files', 'modes': ['read', 'delete'], 'setting': {{'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'}}}}]",
        server.url(),
        root.display()
    );
    let env = [("SESSION_REDIS_MULTI_BACKENDS", multi.as_str())];

    let run = sessionctl(&["show", in_file.as_str()], &env).expect(0);
    assert!(
        run.stdout.contains("part: multi[files]/file"),
        "{}",
        run.stdout
    );
    assert!(
        files.load(&in_file, None).await.unwrap().is_some(),
        "not moved"
    );
    assert_eq!(dbsize(&server), 2);

    let stats = sessionctl(&["stats", "--json"], &env).expect(0).json();
    let names: Vec<&str> = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{stats}");
    assert!(
        names[0].starts_with("multi[redis]/redis") && names[1] == "multi[files]/file",
        "{names:?}"
    );

    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 2 session(s)\n");
    assert!(files.load(&in_file, None).await.unwrap().is_none());
    assert_eq!(dbsize(&server), 1);
}

/// Input is bounded: a line far above the session size limit is skipped without being held,
/// a session above the limit is refused, and the lines after them are imported.
/// A multi-backend's backend names are any text the configuration holds, and name the parts
/// of every report: `check` and `show` printed them raw, so a name holding an escape
/// sequence drove the operator's terminal. Escaped as stored data is.
#[test]
fn part_names_from_the_configuration_are_escaped() {
    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[(id(1), vec![("user", "\"alice\"")], None)],
    );
    let multi = format!(
        "[{{'backend': 'a\u{1b}]0;pwned\u{7}\u{202e}b', 'modes': ['read', 'write', 'delete'], 'setting': {{'SESSION_REDIS_URL': '{}'}}}}]",
        server.url()
    );
    let env = [("SESSION_REDIS_MULTI_BACKENDS", multi.as_str())];
    let escaped = r"multi[a\u{1b}]0;pwned\u{7}\u{202e}b]";
    for args in [&["check"][..], &["show", &id(1)], &["stats"]] {
        let run = sessionctl(args, &env).expect(0);
        assert!(
            !run.stdout.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "{args:?}: {:?}",
            run.stdout
        );
        assert!(run.stdout.contains(escaped), "{args:?}: {}", run.stdout);
    }
    // `migrate`'s notes name the parts of --from: here the same server as --to, by another
    // spelling.
    let from = format!("session_redis_multi_backends={}", &multi);
    let to = format!("redis://localhost:{}/0", server.port());
    let run = sessionctl(&["migrate", "--from", &from, "--to", &to], &[]).expect(0);
    assert!(
        !run.stderr.contains(['\u{1b}', '\u{7}', '\u{202e}']) && run.stderr.contains(escaped),
        "{:?}",
        run.stderr
    );
}

#[test]
fn import_skips_oversized_lines_and_sessions() {
    let server = RedisServer::start();
    let url = server.url();
    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_MAX_SESSION_SIZE", "100"),
    ];
    let line = |n: usize, value: &str| {
        format!(
            "{{\"id\":\"{}\",\"ttl_ms\":null,\"fields\":{{\"v\":\"\\\"{value}\\\"\"}}}}\n",
            id(n)
        )
    };
    let input = format!(
        "{}{}{}{}",
        line(1, "small"),
        line(2, &"x".repeat(1_000_000)),
        line(3, &"y".repeat(200)),
        line(4, "small too")
    );
    let run = common::sessionctl_with_input(&["import", "--json"], &env, Some(&input)).expect(1);
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        (
            json["created"].as_u64(),
            json["invalid"].as_u64(),
            json["too_large"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{json}"
    );
    assert!(
        run.stderr.contains("skipped line(s): 2, 3"),
        "{}",
        run.stderr
    );
    assert_eq!(dbsize(&server), 2);
}

/// A hostile import file can hold billions of malformed lines: the command keeps the numbers
/// of the first few (the ones it prints) and counts the rest, instead of holding one number
/// per bad line in memory; and it says how many it did not list.
#[test]
fn import_lists_the_first_skipped_lines_and_counts_the_rest() {
    let server = RedisServer::start();
    let env = url_env(&server);
    let mut input = "not json\n".repeat(25);
    input.push_str(&format!(
        "{{\"id\":\"{}\",\"ttl_ms\":null,\"fields\":{{\"v\":\"1\"}}}}\n",
        id(1)
    ));
    let run = sessionctl_with_input(&["import"], &env_of(&env), Some(&input)).expect(1);
    let listed: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
    assert!(
        run.stderr.contains(&format!(
            "skipped line(s): {} and 5 more",
            listed.join(", ")
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("25 line(s) skipped"), "{}", run.stderr);
    assert_eq!(dbsize(&server), 1);
}

/// The file store's failure paths: a directory that cannot be made, one other users may
/// write into. Each names the option and what to do.
#[test]
fn check_refuses_an_unusable_file_store_directory() {
    let run = sessionctl(
        &["check"],
        &[
            ("SESSION_REDIS_MODE", "False"),
            ("SESSION_FILESTORE_PATH", "/dev/null/sessions"),
        ],
    )
    .expect(2);
    assert!(
        run.stderr.contains("session_filestore_path") && run.stderr.contains("cannot create it"),
        "{}",
        run.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let run = sessionctl(
        &["check"],
        &[
            ("SESSION_REDIS_MODE", "False"),
            ("SESSION_FILESTORE_PATH", shared.to_str().unwrap()),
        ],
    )
    .expect(2);
    assert!(
        run.stderr.contains("other users may write in it"),
        "{}",
        run.stderr
    );
}

/// `check` needs every command the README's ACL list names: a user without any one of them
/// fails it, naming the step of the dry run (or, for `EVAL`, which the store only sends after
/// a restart or `SCRIPT FLUSH`, the node that refused it), except `GETEX` (loads with sliding
/// expiry fall back to `GET` and `PEXPIRE`). With all of them it passes.
#[test]
fn check_needs_each_command_of_the_acl_list() {
    const STORE: [&str; 14] = [
        "get", "getex", "set", "getrange", "strlen", "append", "rename", "pexpire", "pttl",
        "persist", "del", "evalsha", "eval", "type",
    ];
    let server = RedisServer::start();
    let check = |user: &str, missing: Option<&str>| {
        let mut acl = vec![
            "ACL".to_owned(),
            "SETUSER".to_owned(),
            user.to_owned(),
            "reset".to_owned(),
            "on".to_owned(),
            format!(">{user}pass"),
            "~session:*".to_owned(),
            "+ping".to_owned(),
            "+info".to_owned(),
        ];
        acl.extend(
            STORE
                .iter()
                .filter(|c| Some(**c) != missing)
                .map(|c| format!("+{c}")),
        );
        let args: Vec<&str> = acl.iter().map(String::as_str).collect();
        let _: () = server.cmd(&args);
        let url = format!("redis://{user}:{user}pass@127.0.0.1:{}/0", server.port());
        sessionctl(&["check"], &[("SESSION_REDIS_URL", &url)])
    };
    check("everything", None).expect(0);
    for missing in STORE {
        let run = check(&format!("no{missing}"), Some(missing));
        if missing == "getex" {
            run.expect(0);
        } else {
            let run = run.expect(1);
            assert!(
                run.stderr.contains("dry run failed") || run.stderr.contains("EVAL refused"),
                "without {missing}: {}",
                run.stderr
            );
        }
    }
}

/// stderr gone (a pipe whose reader went away: `sessionctl ... 2>&1 | head -1`, a closed
/// log): the messages are lost, the exit status is the command's own, never a panic (101):
/// `eprintln!` panicked. (A closed descriptor 2, `2>&-`, is reopened on /dev/null by Rust's
/// start-up on Linux, so the pipe is what reaches the failing writes.)
#[test]
fn a_closed_stderr_never_makes_a_panic() {
    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[(id(1), vec![("user", "\"alice\"")], Some(600_000))],
    );
    let env = url_env(&server);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup.jsonl");
    let runs: [(&[&str], i32); 3] = [
        (&["show", &id(9)], 1),
        (&["show", "not-an-id"], 2),
        (&["export", "-o", out.to_str().unwrap()], 0),
    ];
    for (args, status) in runs {
        let mut child = common::spawn(args, &env_of(&env));
        drop(child.stderr.take());
        drop(child.stdin.take());
        let done = child.wait_with_output().unwrap();
        assert_eq!(done.status.code(), Some(status), "{args:?}");
    }
    assert!(out.exists(), "the export was written");
}

/// `export` without `-o` writes every session id, each a credential, to stdout: onto a
/// terminal (scrollback, screen sharing, a recorded session) it is refused unless asked for
/// with `--to-terminal`; into a pipe or a file it goes as before.
#[test]
fn export_refuses_to_print_ids_on_a_terminal_unless_asked() {
    // Tests never skip: without `script` (Debian's bsdutils, an essential package) this
    // fails with the install command, as a missing redis-server does.
    let script = which("script")
        .expect("no `script` to give the command a terminal: apt-get install -y bsdutils");
    let server = RedisServer::start();
    put(
        &server,
        "session:",
        &[(id(7), vec![("user", "\"alice\"")], Some(600_000))],
    );
    let on_terminal = |args: &str| {
        // `script` runs the command with a pseudo-terminal as stdin, stdout and stderr.
        let out = std::process::Command::new(&script)
            .args([
                "-qec",
                &format!("{} {args}", env!("CARGO_BIN_EXE_sessionctl")),
            ])
            .arg("/dev/null")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SESSION_REDIS_URL", server.url())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (status, shown) = on_terminal("export");
    assert_eq!(status, Some(2), "{shown}");
    assert!(!shown.contains(&id(7)), "{shown}");
    assert!(
        shown.contains("-o FILE") && shown.contains("--to-terminal"),
        "{shown}"
    );
    let (status, shown) = on_terminal("export --to-terminal");
    assert_eq!(status, Some(0), "{shown}");
    assert!(shown.contains(&id(7)), "{shown}");
    // A pipe is no terminal: as before.
    let env = url_env(&server);
    let run = sessionctl(&["export"], &env_of(&env)).expect(0);
    assert!(run.stdout.contains(&id(7)), "{}", run.stdout);
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or(())
}

/// A session id is a credential, and the command line of a process is readable by every
/// local user (`ps`, `/proc/PID/cmdline`): `revoke` and `show` read ids from a file or
/// stdin instead, one per line, never repeating one in an error.
#[test]
fn ids_are_read_from_a_file_or_stdin() {
    let server = RedisServer::start();
    let sessions: Vec<_> = (0..6)
        .map(|n| (id(n), vec![("user", "\"alice\"")], Some(600_000)))
        .collect();
    put(&server, "session:", &sessions);
    let env = url_env(&server);
    let env = env_of(&env);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids");
    std::fs::write(&file, format!("{}\r\n\n  {}  \n", id(0), id(1))).unwrap();

    let run = sessionctl(&["revoke", "--ids-from", file.to_str().unwrap()], &env).expect(0);
    assert_eq!(run.stdout, "revoked 2 session(s)\n");
    let input = format!("{}\n{}\n", id(2), id(99));
    let run = sessionctl_with_input(&["revoke", "--ids-from", "-"], &env, Some(&input)).expect(0);
    assert_eq!(run.stdout, "revoked 1 session(s)\n");
    let run = sessionctl_with_input(
        &["show", "--ids-from", "-", "--values"],
        &env,
        Some(&format!("{}\n", id(3))),
    )
    .expect(0);
    assert!(run.stdout.contains("\"alice\""), "{}", run.stdout);
    // Ids on the command line still work.
    sessionctl(&["revoke", &id(4)], &env).expect(0);

    // A bad line is named by its number, never quoted, and nothing is deleted.
    let secret = "Hunter2Zq9notAnIdButSecret";
    let input = format!("{}\n{secret}\n", id(5));
    let run = sessionctl_with_input(&["revoke", "--ids-from", "-"], &env, Some(&input)).expect(2);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    // An endless line is not read into memory, and not quoted.
    let long = dir.path().join("long");
    std::fs::write(&long, "A".repeat(1 << 20)).unwrap();
    let run = sessionctl(&["revoke", "--ids-from", long.to_str().unwrap()], &env).expect(2);
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
    assert!(run.stderr.len() < 1000, "{}", run.stderr);
    // `show` takes one id.
    let input = format!("{}\n{}\n", id(5), id(5));
    let run = sessionctl_with_input(&["show", "--ids-from", "-"], &env, Some(&input)).expect(2);
    assert!(run.stderr.contains("one"), "{}", run.stderr);
    let run = sessionctl_with_input(&["revoke", "--ids-from", "-"], &env, Some("")).expect(2);
    assert!(run.stderr.contains("no session id"), "{}", run.stderr);
    let missing = dir.path().join("missing");
    let run = sessionctl(&["revoke", "--ids-from", missing.to_str().unwrap()], &env).expect(2);
    assert!(run.stderr.contains("--ids-from"), "{}", run.stderr);
    assert_eq!(dbsize(&server), 2, "only the ids given were revoked");

    let help = sessionctl(&["revoke", "--help"], &env).expect(0);
    assert!(help.stdout.contains("process list"), "{}", help.stdout);
}

/// Commands that walk every session work on each `SCAN` batch as it comes: they kept every
/// id of a server in memory first (1-2 GB per 10 million sessions), then read them. The
/// server's own record of what it was asked (`MONITOR`) shows work between two `SCAN`s.
#[test]
fn walks_work_on_each_scan_batch_before_the_scan_ends() {
    let server = RedisServer::start();
    let target = RedisServer::start();
    let sessions: Vec<_> = (0..5000)
        .map(|n| {
            let ttl = if n % 2 == 0 { Some(600_000) } else { None };
            (id(n), vec![("user", "\"alice\""), ("n", "1")], ttl)
        })
        .collect();
    put(&server, "session:", &sessions);
    let url = server.url();
    let env = [("SESSION_REDIS_URL", url.as_str())];
    let indexed = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_INDEX_KEY", "user"),
    ];
    let (from, to) = (server.url(), target.url());
    type Env<'a> = &'a [(&'a str, &'a str)];
    let runs: Vec<(Vec<&str>, Env)> = vec![
        (vec!["export"], &env),
        (vec!["stats", "--sample", "10"], &env),
        (vec!["stats", "--exact"], &env),
        (vec!["revoke", "--where", "n=2"], &env),
        (vec!["revoke", "--no-ttl", "--dry-run"], &env),
        (vec!["reindex", "--dry-run"], &indexed),
        (vec!["prune-index", "--dry-run"], &indexed),
        (vec!["migrate", "--from", &from, "--to", &to], &env),
        (vec!["revoke", "--all", "--yes"], &env),
    ];
    for (args, env) in runs {
        put(&server, "session:", &sessions);
        let monitor = Monitor::start(&server);
        let run = sessionctl(&args, env);
        let commands = monitor.finish();
        assert!(run.status == 0, "{args:?}: {}", run.stderr);
        let first = commands.iter().position(|c| c == "SCAN").unwrap();
        let last = commands.iter().rposition(|c| c == "SCAN").unwrap();
        assert!(
            commands[first..last]
                .iter()
                .filter(|c| *c == "SCAN")
                .count()
                >= 2,
            "{args:?}: too few SCANs for the test: {commands:?}"
        );
        // `prune-index` reads nothing of the sessions: its walk keeps nothing of them either
        // (asserted through the other commands, which share it).
        if args[0] != "prune-index" {
            assert!(
                commands[first..last].iter().any(|c| c != "SCAN"),
                "{args:?}: every SCAN came before any other command"
            );
        }
    }
    assert_eq!(dbsize(&server), 0, "revoke --all deleted every session");
}

/// A server with commands renamed away answers `ERR unknown command 'get', with args
/// beginning with: '<session key>' ...`: sessionctl's errors must not print those arguments,
/// which hold session ids, whatever command the server refused.
#[test]
fn a_refused_command_never_prints_the_session_ids_it_was_given() {
    let server = RedisServer::start_with(ServerOptions::new().args([
        "--rename-command",
        "GET",
        "",
        "--rename-command",
        "EVALSHA",
        "",
        "--rename-command",
        "EVAL",
        "",
    ]));
    put(
        &server,
        "session:",
        &[(id(1), vec![("user", "\"alice\"")], Some(600_000))],
    );
    let env = url_env(&server);
    for args in [
        &["stats"][..],
        &["show", &id(1)],
        &["export"],
        &["revoke", "--where", "user=alice"],
    ] {
        let run = sessionctl(args, &env_of(&env)).expect(1);
        assert!(!run.stderr.contains(&id(1)), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("unknown command"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// The file store's walk (session-core's, which reads a few dozen shard directories at a
/// time and holds a batch of ids at most, where sessionctl listed the whole directory
/// first): over thousands of shard directories, every command finds every session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_walks_find_every_session_once_over_many_shards() {
    let (_dir, root, files) = quick_file_store();
    let mut ids = std::collections::HashSet::new();
    for n in 0..3000 {
        let id = SessionId::generate();
        let ttl = (n % 2 == 0).then(|| Duration::from_secs(600));
        let state = [("user".to_owned(), "\"alice\"".to_owned())].into();
        assert!(files.create(&id, &state, ttl).await.unwrap());
        ids.insert(id.as_str().to_owned());
    }
    let shards = std::fs::read_dir(&root).unwrap().count();
    assert!(shards > 1000, "{shards} shards");
    let env = [
        ("SESSION_REDIS_MODE", "False"),
        ("SESSION_FILESTORE_PATH", root.to_str().unwrap()),
    ];

    let exported = sessionctl(&["export"], &env).expect(0);
    let mut seen = std::collections::HashSet::new();
    for line in exported.stdout.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = line["id"].as_str().unwrap().to_owned();
        assert!(ids.contains(&id), "an id not in the store");
        assert!(seen.insert(id), "an id exported twice");
    }
    assert_eq!(seen.len(), 3000);
    let stats = sessionctl(&["stats", "--json"], &env).expect(0).json();
    assert_eq!(stats[0]["sessions"], 3000);
    let json = sessionctl(&["revoke", "--no-ttl", "--dry-run", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(json["matched"], 1500);

    let server = RedisServer::start();
    let from = format!("files:{}", root.display());
    let json = sessionctl(
        &["migrate", "--from", &from, "--to", &server.url(), "--json"],
        &[],
    )
    .expect(0)
    .json();
    assert_eq!(
        (json["found"].as_u64(), json["moved"].as_u64()),
        (Some(3000), Some(3000))
    );
    assert_eq!(dbsize(&server), 3000);

    let json = sessionctl(&["revoke", "--all", "--yes", "--json"], &env)
        .expect(0)
        .json();
    assert_eq!(json["revoked"], 3000);
    assert!(files.session_ids().await.unwrap().is_empty());
}

/// `stats` of a file store counts what its directory holds besides the store's own files
/// (a session file outside its id's shard, where the store never reads it; any other
/// file), as it counts the keys under a Redis prefix that are not sessions: where it
/// reported none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_stats_count_the_entries_that_are_not_session_files() {
    let (_dir, root, files) = quick_file_store();
    let state = [("user".to_owned(), "\"alice\"".to_owned())].into();
    for _ in 0..3 {
        assert!(files
            .create(&SessionId::generate(), &state, None)
            .await
            .unwrap());
    }
    let stray = SessionId::generate();
    let elsewhere = if &stray.as_str()[..2] == "AA" {
        "BB"
    } else {
        "AA"
    };
    std::fs::create_dir_all(root.join(elsewhere)).unwrap();
    std::fs::write(
        root.join(elsewhere)
            .join(format!("{}.json", stray.as_str())),
        b"{}",
    )
    .unwrap();
    std::fs::write(root.join("README"), b"x").unwrap();
    let env = [
        ("SESSION_REDIS_MODE", "False"),
        ("SESSION_FILESTORE_PATH", root.to_str().unwrap()),
    ];

    let stats = sessionctl(&["stats", "--json"], &env).expect(0).json();
    assert_eq!(
        (
            stats[0]["sessions"].as_u64(),
            stats[0]["other_keys"].as_u64()
        ),
        (Some(3), Some(2)),
        "{stats}"
    );
    let run = sessionctl(&["stats"], &env).expect(0);
    assert!(
        run.stdout
            .contains("other entries:   2 (in the session directory"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(stray.as_str()), "{}", run.stdout);
}

/// A file store in a temporary folder (kept alive by the first value) at the second value,
/// without background sweeper or flushes: only what a test writes is there.
fn quick_file_store() -> (tempfile::TempDir, std::path::PathBuf, FileBackend) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s");
    let files = FileBackend::new(root.clone())
        .unwrap()
        .with_cleanup_interval(None)
        .with_fsync(false);
    (dir, root, files)
}
