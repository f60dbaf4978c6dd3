//! Resource bounds under request volume and timing, on real `redis-server` processes: many
//! requests of one session at once, and requests dropped by their clients, while a server
//! does not answer. Every wait ends (with an error), every task the store spawns ends, and
//! the same store serves again once the server answers, without a restart.
//!
//! No test here asserts a duration: each wait is guarded by a generous timeout that only
//! tells a bounded wait from a wait without end.

mod common;

use std::{sync::Arc, time::Duration};

use common::new_first;
use futures_util::future::join_all;
use session_core::{
    backends::redis::RedisBackend, SessionBackend, SessionConfig, SessionId, SessionState,
    SessionStore,
};
use session_testkit::RedisServer;

/// Far above any bounded wait of these tests (a few timeouts of 0.5 s, and the multi-backend's
/// per-session lock wait of 5 s), far below the time the unbounded waits they found took.
const GUARD: Duration = Duration::from_secs(40);

/// Requests of one session at once: enough that waiting for each other one after the other,
/// each at least one timeout of 0.5 s, lasts far beyond [`GUARD`].
const CONCURRENT: usize = 120;

fn state() -> SessionState {
    SessionState::from([("n".to_owned(), "1".to_owned())])
}

/// A standalone Redis backend with timeouts of half a second, on one shared connection or
/// (`pool`) a pool of that many.
fn redis_with(server: &RedisServer, pool: Option<usize>) -> RedisBackend {
    RedisBackend::from_config(&SessionConfig {
        url: Some(server.url()),
        socket_timeout: Some(0.5),
        socket_connect_timeout: Some(0.5),
        max_connections: pool,
        ..SessionConfig::default()
    })
    .unwrap()
}

/// [`redis_with`] one shared connection.
fn redis(server: &RedisServer) -> Arc<dyn SessionBackend> {
    Arc::new(redis_with(server, None))
}

/// Waits, up to [`GUARD`], until the runtime runs at most `at_most` tasks; the count then.
async fn tasks_down_to(at_most: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + GUARD;
    while metrics.num_alive_tasks() > at_most && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    metrics.num_alive_tasks()
}

/// A session in the store it moves from (a multi-backend switching Redis servers), the
/// store it moves into hung (`SIGSTOP`): every load finds the session and starts a move,
/// and moves of one session in one process wait for each other (a per-session lock). Each
/// move fails after a timeout, so `CONCURRENT` loads of one cookie at once queued for
/// `CONCURRENT` such timeouts one after the other: a client could keep requests, and the
/// moves spawned for them (which a dropped request does not stop, and which hold the
/// session's state), waiting for minutes. Each load must end with an error, each move of a
/// dropped load must end, and the session must move once the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_of_one_session_queued_behind_a_hung_move_target_end_and_so_do_their_moves() {
    let (old_server, new_server) = (RedisServer::start(), RedisServer::start());
    let (old, new) = (redis(&old_server), redis(&new_server));
    let id = SessionId::generate();
    assert!(old.create(&id, &state(), None).await.unwrap());
    let multi = new_first(Arc::clone(&new), Arc::clone(&old));
    new_server.pause();

    // Requests that wait for their answer.
    let loads = (0..CONCURRENT).map(|_| {
        let (multi, id) = (multi.clone(), id.clone());
        tokio::spawn(async move { tokio::time::timeout(GUARD, multi.load(&id, None)).await })
    });
    let mut unending = 0;
    for answer in join_all(loads).await {
        match answer.unwrap() {
            Ok(Err(err)) => assert!(err.is_unavailable(), "{err:?}"),
            Ok(Ok(found)) => panic!("a load answered {:?} with its target hung", found.is_some()),
            Err(_) => unending += 1,
        }
    }
    assert_eq!(
        unending, 0,
        "loads of one session still waiting after {GUARD:?}, of {CONCURRENT}"
    );

    // Requests dropped by their clients: the moves they started go on in tasks of their own.
    // The connections' own tasks, and a few made or ended meanwhile (a reconnect).
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
        + 2;
    let loads: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (multi, id) = (multi.clone(), id.clone());
            tokio::spawn(async move { multi.load(&id, None).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for load in &loads {
        load.abort();
    }
    let left = tasks_down_to(baseline).await;
    assert!(
        left <= baseline,
        "{left} tasks still running {GUARD:?} after {CONCURRENT} dropped loads (before: {baseline})"
    );

    // The same store moves the session once the target answers.
    new_server.resume();
    let mut moved = None;
    for _ in 0..20 {
        match multi.load(&id, None).await {
            Ok(found) => {
                moved = Some(found);
                break;
            }
            Err(err) => assert!(err.is_unavailable(), "{err:?}"),
        }
    }
    assert_eq!(
        moved,
        Some(Some(state())),
        "no recovery after the target came back"
    );
    assert_eq!(new.load(&id, None).await.unwrap(), Some(state()));
    assert_eq!(old.load(&id, None).await.unwrap(), None);
}

/// The `touch` that gives a session its own TTL back after a sliding load runs in a task of
/// its own (`SessionStore::touch_to_the_end`), which a dropped request does not stop. With
/// Redis hung, requests dropped by the hundred must not leave those tasks running: each
/// ends with the timeouts (an answer, or a free pooled connection), and the same store
/// touches again once Redis answers. The shared connection and a pool of 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touches_of_dropped_requests_end_while_redis_is_hung() {
    for pool in [None, Some(4)] {
        let server = RedisServer::start();
        let store = SessionStore::new(redis_with(&server, pool));
        let ttl = Some(Duration::from_secs(60));
        let id = store.create(&state(), ttl).await.unwrap();
        server.pause();
        let baseline = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
            + 2;
        let touches: Vec<_> = (0..CONCURRENT * 2)
            .map(|_| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.touch_to_the_end(&id, ttl).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for touch in &touches {
            touch.abort();
        }
        let left = tasks_down_to(baseline).await;
        assert!(
            left <= baseline,
            "pool {pool:?}: {left} tasks still running {GUARD:?} after {} dropped touches \
             (before: {baseline})",
            CONCURRENT * 2
        );
        server.resume();
        let mut touched = false;
        for _ in 0..20 {
            match store.touch(&id, ttl).await {
                Ok(found) => {
                    touched = found;
                    break;
                }
                Err(err) => assert!(err.is_unavailable(), "{err:?}"),
            }
        }
        assert!(touched, "pool {pool:?}: no recovery after Redis came back");
    }
}

/// A port that accepts connections and never answers (a loopback listener that nobody reads:
/// the kernel completes the TCP handshake), from the very first connection: a proxy in front
/// of a dead server, a wrong port taken by another program. Every operation, on a store
/// built that way, with both strategies and with a client name (whose `CLIENT SETNAME` is
/// sent while connecting), ends with "unavailable", as does the health check, and no
/// request waits past its timeouts (guarded, never timed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_accepts_and_never_answers_fails_every_operation() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    for (pool, client_name) in [
        (None, None),
        (Some(4), None),
        (None, Some("app")),
        (Some(4), Some("app")),
    ] {
        let store = SessionStore::new(
            RedisBackend::from_config(&SessionConfig {
                url: Some(url.clone()),
                socket_timeout: Some(0.5),
                socket_connect_timeout: Some(0.5),
                max_connections: pool,
                client_name: client_name.map(str::to_owned),
                ..SessionConfig::default()
            })
            .unwrap(),
        );
        let case = format!("pool {pool:?}, client name {client_name:?}");
        let id = SessionId::generate();
        let operations = (0..CONCURRENT).map(|i| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move {
                tokio::time::timeout(GUARD, async {
                    match i % 3 {
                        0 => store.load(&id).await.map(|_| ()),
                        1 => store.create(&state(), None).await.map(|_| ()),
                        _ => store.delete(&id).await.map(|_| ()),
                    }
                })
                .await
            })
        });
        for answer in join_all(operations).await {
            match answer.unwrap() {
                Ok(Err(err)) => assert!(err.is_unavailable(), "{case}: {err:?}"),
                Ok(Ok(())) => panic!("{case}: an operation succeeded against a silent port"),
                Err(_) => panic!("{case}: an operation still waiting after {GUARD:?}"),
            }
        }
        let health = tokio::time::timeout(GUARD, store.health()).await;
        let health = health.unwrap_or_else(|_| panic!("{case}: health still waiting"));
        assert!(health.iter().all(|h| !h.up), "{case}: {health:?}");
    }
}
