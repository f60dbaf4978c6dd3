//! The socket and behaviour options of the Redis backend (issue 4), against real
//! `redis-server` processes. Timeouts, the password, the unix socket and `db` have their base
//! tests in `redis_backend.rs`; these add what each option changes.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use session_core::{
    backends::redis::RedisBackend, Changes, KeepaliveOptions, SessionBackend, SessionConfig,
    SessionId, SessionState, StoreError,
};
use session_testkit::{RedisServer, ServerOptions};

const BOTH: [bool; 2] = [false, true];

fn config(server: &RedisServer, single: bool) -> SessionConfig {
    SessionConfig {
        url: Some(server.url()),
        single_connection_client: single,
        max_connections: Some(4),
        socket_timeout: Some(0.5),
        socket_connect_timeout: Some(0.5),
        ..SessionConfig::default()
    }
}

fn backend(config: SessionConfig) -> RedisBackend {
    RedisBackend::from_config(&config).unwrap()
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `CLIENT LIST` lines of the connections named `name`, as `field -> value` maps.
fn clients(server: &RedisServer, name: &str) -> Vec<HashMap<String, String>> {
    let list: String = server.cmd(&["CLIENT", "LIST"]);
    list.lines()
        .map(|line| {
            line.split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<HashMap<_, _>>()
        })
        .filter(|c| c.get("name").map(String::as_str) == Some(name))
        .collect()
}

fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = server.cmd(&["INFO", "commandstats"]);
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_timeout_turns_a_short_pause_into_a_success() {
    let server = RedisServer::start();
    for single in BOTH {
        for retry in [false, true] {
            let b = backend(SessionConfig {
                retry_on_timeout: retry,
                // The retry may reconnect while the server is still paused: its setup gets
                // the whole pause and more, so only the timeout under test decides.
                socket_connect_timeout: Some(2.0),
                ..config(&server, single)
            });
            let id = SessionId::generate();
            assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
            // Between socket_timeout (0.5 s) and the end of the retry's 0.5 s, with 200 ms to
            // spare either way (Redis may notice the end of a pause up to 100 ms late).
            server.client_pause(Duration::from_millis(700));
            let started = Instant::now();
            let result = b.load(&id, None).await;
            let took = started.elapsed();
            let what = format!("single = {single}, retry = {retry}, took {took:?}");
            if retry {
                assert_eq!(result.unwrap(), Some(state(&[("a", "1")])), "{what}");
            } else {
                let err = result.unwrap_err();
                assert!(
                    matches!(
                        err,
                        StoreError::Unavailable {
                            timed_out: true,
                            ..
                        }
                    ),
                    "{what}: {err:?}"
                );
                assert!(err.to_string().contains("timed out"), "{what}: {err}");
                assert!(took < Duration::from_millis(700), "{what}");
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_bounds_a_server_that_accepts_but_never_answers() {
    // On loopback a stopped (SIGSTOP) server still completes the TCP handshake (the kernel
    // queues the connection), so what socket_connect_timeout bounds here is the connection
    // setup (HELLO/AUTH) the server never answers. A long socket_timeout shows which one fired.
    for single in BOTH {
        let server = RedisServer::start();
        let b = backend(SessionConfig {
            socket_timeout: Some(5.0),
            socket_connect_timeout: Some(0.3),
            ..config(&server, single)
        });
        server.pause();
        let started = Instant::now();
        let err = b.load(&SessionId::generate(), None).await.unwrap_err();
        let took = started.elapsed();
        server.resume();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "single = {single}: {took:?} {err}"
        );
    }
}

/// A create whose reply is lost after it ran is sent again by the client (the same bytes):
/// success, nothing changed. Another create of the id is "taken", even of the very same
/// state (two processes moving one session at the same instant write the same state, and
/// the second must not take the first one's copy for its own: `tests/moves.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_sent_twice_is_still_a_success_but_not_for_someone_else() {
    let server = RedisServer::start();
    let proxy = session_testkit::Proxy::start(server.addr());
    for single in BOTH {
        let b = backend(SessionConfig {
            url: Some(format!("redis://{}", proxy.addr())),
            ..config(&server, single)
        });
        let id = SessionId::generate();
        let s = state(&[("a", "1"), ("b", "\"x\"")]);
        let ttl = Some(Duration::from_secs(60));
        proxy.lose_next_reply(|| {});
        assert!(b.create(&id, &s, ttl).await.unwrap());
        assert_eq!(b.load(&id, None).await.unwrap(), Some(s.clone()));
        // Any other create means the id is taken.
        for other in [
            s.clone(),
            state(&[("a", "1")]),
            state(&[("a", "2"), ("b", "\"x\"")]),
            state(&[("a", "1"), ("b", "\"x\""), ("c", "3")]),
        ] {
            assert!(!b.create(&id, &other, ttl).await.unwrap());
        }
        assert_eq!(b.load(&id, None).await.unwrap(), Some(s));
        // Another key under the id is taken, not corrupt.
        let id = SessionId::generate();
        let _: () = server.cmd(&["SET", &format!("session:{}", id.as_str()), "x"]);
        assert!(!b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_pings_idle_connections_only() {
    let server = RedisServer::start();
    for single in BOTH {
        let b = backend(SessionConfig {
            health_check_interval: Some(1.0),
            ..config(&server, single)
        });
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
        // Busy: back to back, never idle for 1 s (a stall of a loaded CI machine would be).
        for _ in 0..20 {
            assert!(b.load(&id, None).await.unwrap().is_some());
        }
        assert_eq!(calls(&server, "ping"), 0, "busy, single = {single}");
        assert_eq!(calls(&server, "get"), 20);
        // Idle longer than the interval: one PING before the next use.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(b.load(&id, None).await.unwrap().is_some());
        assert_eq!(calls(&server, "ping"), 1, "idle, single = {single}");

        // A connection the server dropped while idle is replaced before use: the request
        // itself succeeds at its first attempt (no dropped-connection retry needed).
        let name = format!("hc-{single}");
        let b = backend(SessionConfig {
            health_check_interval: Some(1.0),
            client_name: Some(name.clone()),
            ..config(&server, single)
        });
        assert!(b.load(&id, None).await.unwrap().is_some());
        let before = clients(&server, &name);
        assert_eq!(before.len(), 1);
        let _: i64 = server.cmd(&["CLIENT", "KILL", "ID", &before[0]["id"]]);
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
        assert!(b.load(&id, None).await.unwrap().is_some());
        assert_eq!(calls(&server, "get"), 1, "one attempt, single = {single}");
        let after = clients(&server, &name);
        assert_eq!(after.len(), 1);
        assert_ne!(after[0]["id"], before[0]["id"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_name_is_set_on_every_connection_including_after_a_kill() {
    let server = RedisServer::start();
    for single in BOTH {
        let name = format!("sessions-{single}");
        let b = backend(SessionConfig {
            client_name: Some(name.clone()),
            ..config(&server, single)
        });
        let id = SessionId::generate();
        assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        let first = clients(&server, &name);
        assert_eq!(first.len(), 1, "single = {single}");
        let _: i64 = server.cmd(&["CLIENT", "KILL", "ID", &first[0]["id"]]);
        assert!(clients(&server, &name).is_empty());
        // The next call meets the dropped connection, reconnects and retries once.
        assert!(b.load(&id, None).await.unwrap().is_some());
        let again = clients(&server, &name);
        assert_eq!(again.len(), 1, "single = {single}");
        assert_ne!(again[0]["id"], first[0]["id"]);
    }
    let err = RedisBackend::from_config(&SessionConfig {
        client_name: Some("two words".into()),
        ..config(&server, true)
    })
    .unwrap_err();
    assert_eq!(err.key, "session_redis_client_name");
}

/// Runs `ops` concurrent loads while sampling how many connections named `name` the server
/// sees; returns the most seen at once.
async fn most_connections_under_load(
    server: &RedisServer,
    b: Arc<RedisBackend>,
    name: &str,
    ops: usize,
) -> usize {
    let id = SessionId::generate();
    assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, most) = (Arc::clone(&done), Arc::clone(&most));
        let url = server.url();
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
            // One sample more after the loads: on a busy machine the loads can all finish
            // before this thread's first sample (a run saw 0 connections for the single one).
            loop {
                let finished = done.load(Ordering::Relaxed);
                let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
                let n = list
                    .lines()
                    .filter(|l| l.contains(&format!(" name={name} ")))
                    .count();
                most.fetch_max(n, Ordering::Relaxed);
                if finished {
                    break;
                }
            }
        })
    };
    for _round in 0..5 {
        let tasks: Vec<_> = (0..ops)
            .map(|_| {
                let (b, id) = (Arc::clone(&b), id.clone());
                tokio::spawn(async move { b.load(&id, None).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    most.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_caps_and_single_connection_client_uses_one() {
    let server = RedisServer::start();
    let pool = Arc::new(backend(SessionConfig {
        client_name: Some("pooled".into()),
        max_connections: Some(4),
        ..config(&server, false)
    }));
    let most = most_connections_under_load(&server, pool, "pooled", 200).await;
    assert!((2..=4).contains(&most), "pool of 4 used {most} connections");

    let single = Arc::new(backend(SessionConfig {
        client_name: Some("single".into()),
        ..config(&server, true)
    }));
    let most = most_connections_under_load(&server, single, "single", 200).await;
    assert_eq!(most, 1);
}

/// The local ports of the backend's connections, from `CLIENT LIST`.
fn local_ports(server: &RedisServer, name: &str) -> Vec<u16> {
    clients(server, name)
        .iter()
        .map(|c| c["addr"].rsplit_once(':').unwrap().1.parse().unwrap())
        .collect()
}

/// `(timer kind, ticks left)` of our side of the established connection from `port` to the
/// server, from /proc/net/tcp: kind 2 is the keepalive timer, 0 none. Only the ESTABLISHED
/// (`01`) row counts: an earlier connection from the same port may linger in TIME_WAIT.
fn tcp_timer(server: &RedisServer, port: u16) -> (u8, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    let remote = format!("0100007F:{:04X}", server.port());
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[1] == local && fields[2] == remote && fields[3] == "01" {
            let (kind, when) = fields[5].split_once(':').unwrap();
            return (
                u8::from_str_radix(kind, 16).unwrap(),
                u64::from_str_radix(when, 16).unwrap(),
            );
        }
    }
    panic!("no socket for local port {port} in /proc/net/tcp");
}

#[tokio::test]
async fn keepalive_is_on_the_socket_only_when_asked() {
    let server = RedisServer::start();
    for single in BOTH {
        let name = format!("ka-{single}");
        let on = backend(SessionConfig {
            client_name: Some(name.clone()),
            socket_keepalive: true,
            socket_keepalive_options: Some(KeepaliveOptions {
                idle: Some(60),
                interval: Some(10),
                count: Some(3),
                user_timeout: Some(5000),
            }),
            ..config(&server, single)
        });
        let id = SessionId::generate();
        assert!(on.create(&id, &state(&[("a", "1")]), None).await.unwrap());
        let ports = local_ports(&server, &name);
        assert_eq!(ports.len(), 1);
        let (kind, ticks) = tcp_timer(&server, ports[0]);
        // Ticks are USER_HZ (100 per second): the first probe is due in about 60 s.
        assert_eq!(kind, 2, "keepalive timer, single = {single}");
        assert!((5000..=6000).contains(&ticks), "{ticks}");

        let name = format!("noka-{single}");
        let off = backend(SessionConfig {
            client_name: Some(name.clone()),
            ..config(&server, single)
        });
        assert!(off.load(&id, None).await.unwrap().is_some());
        let ports = local_ports(&server, &name);
        assert_eq!(
            tcp_timer(&server, ports[0]).0,
            0,
            "no timer, single = {single}"
        );
    }
    // Options without keepalive, or keepalive on a unix socket: errors, not ignored.
    let err = SessionConfig::builder()
        .configure(|c| {
            c.socket_keepalive_options = Some(KeepaliveOptions {
                idle: Some(60),
                ..Default::default()
            })
        })
        .build()
        .unwrap_err();
    assert_eq!(err.key, "session_redis_socket_keepalive_options");
    let err = RedisBackend::from_config(&SessionConfig {
        unix_socket_path: Some("/tmp/redis.sock".into()),
        socket_keepalive: true,
        ..SessionConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.key, "session_redis_socket_keepalive");
}

/// The commands the store needs, top level and inside its scripts. HELLO and AUTH are always
/// allowed; `CLIENT SETINFO` (sent by redis-rs at connect, its answer ignored) is left out on
/// purpose to show a refusal does not fail the connection.
const STORE_COMMANDS: &str =
    "+get +getex +set +getrange +strlen +append +rename +pexpire +pttl +persist +del +evalsha +eval \
     +type +hgetall +hset +hdel +hlen +ping +client|setname";

/// Creates the ACL user `name` with `password`, the keys `session:*` and only `commands`.
fn acl_user<'a>(
    server: &RedisServer,
    name: &'a str,
    password: &str,
    commands: impl Iterator<Item = &'a str>,
) {
    let password = format!(">{password}");
    let mut rule = vec![
        "ACL",
        "SETUSER",
        name,
        "reset",
        "on",
        &password,
        "~session:*",
    ];
    for command in commands {
        rule.push(command);
    }
    let _: () = server.cmd(&rule);
}

#[tokio::test]
async fn acl_user_with_only_the_store_commands_on_the_prefix() {
    let server = RedisServer::start();
    acl_user(
        &server,
        "sessions",
        "acl-pw-123",
        STORE_COMMANDS.split_whitespace(),
    );
    for single in BOTH {
        let with = |prefix: &str, password: &str| {
            backend(SessionConfig {
                username: Some("sessions".into()),
                password: Some(password.into()),
                prefix: prefix.into(),
                client_name: Some("acl".into()),
                health_check_interval: Some(0.01),
                ..config(&server, single)
            })
        };
        let b = with("session:", "acl-pw-123");
        let id = SessionId::generate();
        let s = state(&[("a", "1")]);
        let ttl = Some(Duration::from_secs(60));
        assert!(b.create(&id, &s, ttl).await.unwrap());
        assert!(!b.create(&id, &s, ttl).await.unwrap(), "taken");
        assert_eq!(b.load(&id, None).await.unwrap(), Some(s.clone()));
        assert!(b.load(&id, ttl).await.unwrap().is_some());
        let mut changes = Changes::default();
        changes.set("b", "2");
        changes.remove("a");
        tokio::time::sleep(Duration::from_millis(20)).await; // health check PING
        assert!(b.apply(&id, &changes, ttl).await.unwrap());
        // A large value is staged under the prefix and moved (`RENAME`).
        let big = format!("\"{}\"", "x".repeat(2000));
        let mut large = Changes::default();
        large.set("big", big);
        assert!(b.apply(&id, &large, ttl).await.unwrap());
        assert!(b.replace(&id, &s, None).await.unwrap());
        assert!(b.touch(&id, ttl).await.unwrap());
        assert!(b.touch(&id, None).await.unwrap());
        assert!(b.health().await[0].up);
        assert!(b.delete(&id).await.unwrap());
        // Scripts loaded by this user after a flush.
        let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
        assert!(b.create(&id, &s, ttl).await.unwrap());
        // And by a batch (a move, a migration), which cannot `SCRIPT LOAD` (not on the list).
        let _: () = server.cmd(&["SCRIPT", "FLUSH"]);
        let batch: Vec<_> = (0..5)
            .map(|_| (SessionId::generate(), s.clone(), ttl))
            .collect();
        for created in b.create_many(&batch).await {
            assert!(created.unwrap());
        }

        // Outside the allowed keys: an error naming NOPERM, reported as Unavailable.
        let other = with("other:", "acl-pw-123");
        let err = other.create(&id, &s, ttl).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            err.to_string()
                .contains("NoPerm: this user has no permissions"),
            "{err}"
        );
        // With sliding expiry too: a key refused is an error, not a `GETEX` to stop sending.
        for touch in [None, ttl] {
            let err = other.load(&id, touch).await.unwrap_err();
            assert!(
                err.to_string()
                    .contains("NoPerm: this user has no permissions"),
                "{err}"
            );
        }

        // Wrong password of the ACL user: clear, and the password is not in it.
        let wrong = with("session:", "not-the-pw-9");
        let err = wrong.load(&id, None).await.unwrap_err();
        assert!(err.is_unavailable());
        let text = format!("{err} {err:?} {wrong:?}");
        assert!(
            !text.contains("not-the-pw-9") && !text.contains("acl-pw-123"),
            "{text}"
        );
        eprintln!("ACL wrong password, single = {single}: {err}");
        eprintln!(
            "ACL NOPERM, single = {single}: {}",
            other.load(&id, None).await.unwrap_err()
        );
    }
}

/// Creates a session on `b` (prefix `session:`) and loads it `times` times with sliding
/// expiry: each load finds it and pushes its expiry to ten minutes.
async fn touching_loads(b: &RedisBackend, server: &RedisServer, times: usize) {
    let id = SessionId::generate();
    let s = state(&[("a", "1")]);
    assert!(b
        .create(&id, &s, Some(Duration::from_secs(60)))
        .await
        .unwrap());
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    for _ in 0..times {
        assert_eq!(
            b.load(&id, Some(Duration::from_secs(600))).await.unwrap(),
            Some(s.clone())
        );
        let pttl: i64 = server.cmd(&["PTTL", &format!("session:{}", id.as_str())]);
        assert!(pttl > 590_000, "{pttl}");
    }
    // A missing session is still no session.
    let missing = SessionId::generate();
    let found = b.load(&missing, Some(Duration::from_secs(60))).await;
    assert_eq!(found.unwrap(), None);
}

fn session_prefix(config: SessionConfig) -> RedisBackend {
    backend(SessionConfig {
        prefix: "session:".into(),
        ..config
    })
}

/// With `GETEX` allowed, a load with sliding expiry is that one command.
#[tokio::test]
async fn loads_with_sliding_expiry_are_one_getex() {
    let server = RedisServer::start();
    let b = session_prefix(config(&server, true));
    touching_loads(&b, &server, 1).await;
    let counts = ["getex", "get", "pexpire"].map(|command| server.calls(command));
    assert_eq!(counts, [2, 0, 0]);
}

/// A user whose ACL lacks `+getex` (granted before this library used it): loads with sliding
/// expiry still work, with `GET` and `PEXPIRE`, and only the first one tries `GETEX`.
#[tokio::test]
async fn loads_with_sliding_expiry_work_without_getex() {
    let server = RedisServer::start();
    let commands = STORE_COMMANDS.split_whitespace();
    acl_user(
        &server,
        "nogetex",
        "acl-pw-456",
        commands.filter(|&command| command != "+getex"),
    );
    for single in BOTH {
        let b = session_prefix(SessionConfig {
            username: Some("nogetex".into()),
            password: Some("acl-pw-456".into()),
            ..config(&server, single)
        });
        touching_loads(&b, &server, 3).await;
        let info: String = server.cmd(&["INFO", "commandstats"]);
        let getex = info
            .lines()
            .find(|line| line.starts_with("cmdstat_getex:"))
            .unwrap_or_default();
        assert!(getex.contains("rejected_calls=1,"), "{getex}");
        assert_eq!(server.calls("pexpire"), 4);
    }
}

/// A server without `GETEX` (renamed away here; before Redis 6.2 it does not exist): the
/// same fallback, on `ERR unknown command`.
#[tokio::test]
async fn loads_with_sliding_expiry_work_on_a_server_without_getex() {
    let server =
        RedisServer::start_with(ServerOptions::new().args(["--rename-command", "GETEX", ""]));
    let b = session_prefix(config(&server, true));
    touching_loads(&b, &server, 2).await;
    assert_eq!(server.calls("pexpire"), 3);
}

/// A server whose scripts are renamed away (a hardening some operators apply to `EVAL` and
/// `EVALSHA`) answers `ERR unknown command 'evalsha', with args beginning with: ...`, and
/// those arguments hold the session key, so the session id: the store's error must not carry
/// them into logs and answers. Every write here goes through a script.
#[tokio::test]
async fn a_refused_command_never_echoes_the_session_id_in_the_error() {
    let server = RedisServer::start_with(ServerOptions::new().args([
        "--rename-command",
        "EVALSHA",
        "",
        "--rename-command",
        "EVAL",
        "",
    ]));
    let b = session_prefix(config(&server, true));
    let id = SessionId::generate();
    let err = b
        .create(&id, &state(&[("a", "1")]), Some(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(id.as_str()), "{shown}");
        assert!(shown.contains("unknown command"), "{shown}");
    }
}

/// A `nopass` ACL user named without a password (`session_redis_username` alone, or a URL's
/// `redis://user@host`) is the user the connections log in as: redis-rs sends `AUTH` only
/// with a password, so they stayed on the `default` user, which usually may do anything.
#[tokio::test]
async fn a_username_without_a_password_logs_in_as_that_user() {
    let server = RedisServer::start();
    let _: () = server.cmd(&[
        "ACL",
        "SETUSER",
        "limited",
        "reset",
        "on",
        "nopass",
        "~session:*",
    ]);
    acl_user_commands(&server, "limited");
    for single in BOTH {
        for (name, config) in [
            (
                "own-option",
                SessionConfig {
                    username: Some("limited".into()),
                    ..config(&server, single)
                },
            ),
            (
                "in-url",
                SessionConfig {
                    url: Some(format!("redis://limited@127.0.0.1:{}", server.port())),
                    ..config(&server, single)
                },
            ),
        ] {
            let b = backend(SessionConfig {
                client_name: Some(name.into()),
                ..config
            });
            let id = SessionId::generate();
            assert!(b.create(&id, &state(&[("a", "1")]), None).await.unwrap());
            let users: Vec<String> = clients(&server, name)
                .iter()
                .map(|c| c["user"].clone())
                .collect();
            assert_eq!(users, ["limited"], "{name}, single = {single}");
            let _: () = server.cmd(&["CLIENT", "KILL", "USER", "limited"]);
        }
    }
}

/// Gives `name` the store's commands ([`STORE_COMMANDS`]).
fn acl_user_commands(server: &RedisServer, name: &str) {
    let mut rule = vec!["ACL", "SETUSER", name];
    rule.extend(STORE_COMMANDS.split_whitespace());
    let _: () = server.cmd(&rule);
}
