//! Requests of one session at the same instant through the axum `SessionLayer`, on every
//! topology the README names: one Redis server, a weighted pool, Redis Cluster, Sentinel, a
//! multi-backend moving sessions from the file store into Redis, a multi-backend growing a
//! pool (the move into the very key it read from), a Redis writer with a Redis mirror, and
//! one file store shared by two processes. Each request is sent to one of two stores built
//! from the same configuration (two worker processes), alternating.
//!
//! "No lost updates": 12 requests at once, each setting its own key, 4 rounds; on the
//! moving topologies the session starts in the old store, so the first round's loads race
//! its move. "Logout sticks": 6 writers and 2 renews (a login) load the session (on the
//! moving topologies their loads are what moves it), then a logout, then they go on: the
//! logged-out id stays gone, the renews' new ids hold nothing, and no copy is left in any
//! backend. "Honest errors": a pool member down, and a multi-backend's target down during
//! a move, answer 503 for the sessions they hold, and the same layer recovers.
mod common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{extract::Query, http::StatusCode, routing::get, Router};
use common::{from_env, jar_after, key, local, multi, open, send};
use session_axum::{Session, SessionLayer};
use session_core::{
    backends::file::FileBackend,
    testing::probe::{Op, ProbeBackend},
    SessionBackend, SessionConfig, SessionId, SessionStore,
};
use session_testkit::{ClusterTopology, RedisServer, SentinelTopology};
use tokio::sync::Notify;

type Params = Query<HashMap<String, String>>;

/// Requests that loaded their session and wait for the test's signal before they go on.
#[derive(Default)]
struct Gate {
    waiting: AtomicUsize,
    go: Notify,
}

impl Gate {
    async fn hold(&self) {
        let go = self.go.notified();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        go.await;
    }

    async fn until_waiting(&self, n: usize) {
        while self.waiting.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    fn release(&self) {
        self.waiting.store(0, Ordering::SeqCst);
        self.go.notify_waiters();
    }
}

fn app(store: &SessionStore, gate: &Arc<Gate>, sliding: bool) -> Router {
    let layer = SessionLayer::new(store.clone(), key())
        .with_secure(false)
        .with_ttl(Some(Duration::from_secs(600)))
        .with_sliding_expiry(sliding);
    let (g1, g2) = (gate.clone(), gate.clone());
    Router::new()
        .route(
            "/set",
            get(|session: Session, Query(q): Params| async move {
                session.insert(&q["key"], &q["value"]).await
            }),
        )
        .route(
            "/set-later",
            get(move |session: Session, Query(q): Params| async move {
                let _ = session.get::<String>(&q["key"]).await?;
                g1.hold().await;
                session.insert(&q["key"], &q["value"]).await
            }),
        )
        .route(
            "/renew-later",
            get(move |session: Session| async move {
                let _ = session.get::<String>("user").await?;
                g2.hold().await;
                session.renew().await?;
                session.insert("user", "mallory").await
            }),
        )
        .route(
            "/logout",
            get(|session: Session| async move { session.purge().await }),
        )
        .layer(layer)
}

/// One topology: the store of each of two processes, and where a session starts (the old
/// store, on the topologies that move sessions; else the topology itself).
struct Topology {
    name: &'static str,
    stores: [SessionStore; 2],
    start_in: SessionStore,
    /// Every place a copy could be left, each read on its own.
    places: Vec<SessionStore>,
}

async fn two(config: &SessionConfig) -> [SessionStore; 2] {
    [
        SessionStore::from_config(config).await.unwrap(),
        SessionStore::from_config(config).await.unwrap(),
    ]
}

fn files(dir: &std::path::Path) -> SessionStore {
    SessionStore::new(FileBackend::new(dir.to_path_buf()).unwrap())
}

fn redis(server: &RedisServer, prefix: &str) -> SessionStore {
    let config = SessionConfig {
        url: Some(server.url()),
        prefix: prefix.to_owned(),
        ..SessionConfig::default()
    };
    SessionStore::new(session_core::backends::redis::RedisBackend::from_config(&config).unwrap())
}

fn url_setting(server: &RedisServer, prefix: &str) -> String {
    format!(
        "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': '{prefix}'",
        server.url()
    )
}

async fn race_on(t: &Topology) {
    for sliding in [false, true] {
        let gate = Arc::new(Gate::default());
        let apps = [
            app(&t.stores[0], &gate, sliding),
            app(&t.stores[1], &gate, sliding),
        ];
        let start = app(&t.start_in, &gate, sliding);
        let case = format!("{}, sliding: {sliding}", t.name);

        // No lost updates.
        let cookie = send(&start, "GET", "/set?key=base&value=b", None)
            .await
            .cookie_pair();
        let id = open(&cookie);
        for round in 0..4 {
            let writers: Vec<_> = (0..12)
                .map(|i| {
                    let (app, cookie) = (apps[i % 2].clone(), cookie.clone());
                    let uri = format!("/set?key=k{i}&value=r{round}");
                    tokio::task::spawn_local(async move {
                        send(&app, "GET", &uri, Some(&cookie)).await.status
                    })
                })
                .collect();
            for writer in writers {
                assert_eq!(writer.await.unwrap(), StatusCode::OK, "{case}");
            }
            let state = t.stores[0].load(&id).await.unwrap().expect(&case);
            assert_eq!(state.len(), 13, "{case}, round {round}: {:?}", state.keys());
            assert_eq!(state["base"], "\"b\"", "{case}");
            for i in 0..12 {
                assert_eq!(state[&format!("k{i}")], format!("\"r{round}\""), "{case}");
            }
            // A copy anywhere else (a mirror) holds every change too.
            for place in &t.places {
                if let Some(copy) = place.load(&id).await.unwrap() {
                    assert_eq!(copy, state, "{case}, round {round}: a copy differs");
                }
            }
        }

        // Logout sticks: writers and renews that loaded the session before it.
        let cookie = send(&start, "GET", "/set?key=user&value=alice", None)
            .await
            .cookie_pair();
        let id = open(&cookie);
        let late: Vec<_> = (0..8)
            .map(|i| {
                let (app, cookie) = (apps[i % 2].clone(), cookie.clone());
                let uri = if i < 6 {
                    format!("/set-later?key=late{i}&value=v")
                } else {
                    "/renew-later".to_owned()
                };
                tokio::task::spawn_local(
                    async move { send(&app, "GET", &uri, Some(&cookie)).await },
                )
            })
            .collect();
        gate.until_waiting(8).await;
        let logout = send(&apps[0], "GET", "/logout", Some(&cookie)).await;
        assert_eq!(logout.status, StatusCode::OK, "{case}");
        gate.release();
        let mut new_ids = Vec::new();
        for (i, answer) in late.into_iter().enumerate() {
            let answer = answer.await.unwrap();
            // A late write changes nothing and answers 200; a late renew stores nothing and
            // answers 409 (its session was gone), with no cookie.
            let expected = if i < 6 {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            assert_eq!(answer.status, expected, "{case}, request {i}");
            for set in &answer.set_cookie {
                if !set.contains("Max-Age=0") {
                    let pair = set.split(';').next().unwrap();
                    new_ids.push(open(pair));
                }
            }
        }
        for store in t.stores.iter().chain(&t.places) {
            assert_eq!(
                store.load(&id).await.unwrap(),
                None,
                "{case}: logout undone"
            );
            for new in &new_ids {
                assert_eq!(
                    store.load(new).await.unwrap(),
                    None,
                    "{case}: a renew racing the logout kept the session"
                );
            }
        }
    }
}

#[test]
fn over_one_redis_server() {
    local(async {
        let server = RedisServer::start();
        let config = from_env(&[("SESSION_REDIS_URL", server.url())]);
        let stores = two(&config).await;
        race_on(&Topology {
            name: "one server",
            start_in: stores[0].clone(),
            places: vec![],
            stores,
        })
        .await;
    });
}

/// The race above, held at its worst moment on one Redis server: a renew (a login) loaded
/// the session, a logout deleted it, and a write at the loaded version sent its `APPEND`
/// (the common write, with no script), which leaves records alone under the deleted key
/// until its writer drops them, one round trip later. The renew's delete of the old id
/// then came: it found those records, and a plain `DEL` answered "removed", so the renew
/// kept the loaded state under the new id, logged in after the logout. Now a delete
/// answers "there was a session" only for one (records alone and moved markers are none),
/// and the renew deletes the new id again.
#[test]
fn a_renew_after_a_logout_and_a_late_writes_append_brings_nothing_back() {
    local(async {
        let server = RedisServer::start();
        let config = from_env(&[("SESSION_REDIS_URL", server.url())]);
        let store = SessionStore::from_config(&config).await.unwrap();
        let gate = Arc::new(Gate::default());
        let app = app(&store, &gate, false);
        let cookie = send(&app, "GET", "/set?key=user&value=alice", None)
            .await
            .cookie_pair();
        let id = open(&cookie);
        let renew = {
            let (app, cookie) = (app.clone(), cookie.clone());
            tokio::task::spawn_local(async move {
                send(&app, "GET", "/renew-later", Some(&cookie)).await
            })
        };
        gate.until_waiting(1).await;
        let logout = send(&app, "GET", "/logout", Some(&cookie)).await;
        assert_eq!(logout.status, StatusCode::OK);
        let key = format!("session:{}", id.as_str());
        let _: i64 = server.cmd(&["APPEND", &key, r#","late":"v" "#]);
        gate.release();
        let renewed = renew.await.unwrap();
        assert_eq!(renewed.status, StatusCode::CONFLICT);
        assert!(
            renewed.set_cookie.iter().all(|c| c.contains("Max-Age=0")),
            "the renew sent a live cookie after the logout: {:?}",
            renewed.set_cookie
        );
        let keys: Vec<String> = server.cmd(&["KEYS", "session:*"]);
        let mut sessions = Vec::new();
        for k in &keys {
            let value: Vec<u8> = server.cmd(&["GET", k]);
            if value.starts_with(b"v1:") {
                sessions.push(String::from_utf8_lossy(&value).into_owned());
            }
        }
        assert!(
            sessions.is_empty(),
            "a renew racing the logout kept the session under a new id: {sessions:?}"
        );
    });
}

#[test]
fn over_a_pool() {
    local(async {
        let (a, b) = (RedisServer::start(), RedisServer::start());
        let config = from_env(&[("SESSION_REDIS_POOL", RedisServer::pool_setting(&[&a, &b]))]);
        let stores = two(&config).await;
        race_on(&Topology {
            name: "pool",
            start_in: stores[0].clone(),
            places: vec![redis(&a, "session:"), redis(&b, "session:")],
            stores,
        })
        .await;
    });
}

#[test]
fn over_a_cluster() {
    local(async {
        let cluster = ClusterTopology::start();
        let config = from_env(&[
            ("SESSION_REDIS_MODE", "cluster".into()),
            ("SESSION_REDIS_HOST", cluster.seed_hosts()),
        ]);
        let stores = two(&config).await;
        race_on(&Topology {
            name: "cluster",
            start_in: stores[0].clone(),
            places: vec![],
            stores,
        })
        .await;
    });
}

#[test]
fn over_sentinel() {
    local(async {
        let topology = SentinelTopology::start();
        let config = from_env(&[
            ("SESSION_REDIS_MODE", "sentinel".into()),
            ("SESSION_REDIS_HOST", topology.sentinel_host_list()),
            ("SESSION_REDIS_MASTER", topology.master_name().into()),
        ]);
        let stores = two(&config).await;
        race_on(&Topology {
            name: "sentinel",
            start_in: stores[0].clone(),
            places: vec![redis(topology.master(), "session:")],
            stores,
        })
        .await;
    });
}

#[test]
fn over_a_multi_backend_moving_from_files_to_redis() {
    local(async {
        let server = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let config = multi(&[
            ("redis", "'read', 'write'", url_setting(&server, "new:")),
            (
                "files",
                "'read', 'delete'",
                format!(
                    "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
                    dir.path().display()
                ),
            ),
        ]);
        race_on(&Topology {
            name: "multi files -> redis",
            stores: two(&config).await,
            start_in: files(dir.path()),
            places: vec![files(dir.path()), redis(&server, "new:")],
        })
        .await;
    });
}

#[test]
fn over_a_multi_backend_growing_a_pool() {
    local(async {
        let servers = [
            RedisServer::start(),
            RedisServer::start(),
            RedisServer::start(),
        ];
        let old = RedisServer::pool_setting(&[&servers[0], &servers[1]]);
        let new = RedisServer::pool_setting(&[&servers[0], &servers[1], &servers[2]]);
        let config = multi(&[
            (
                "new",
                "'read', 'write'",
                format!("'SESSION_REDIS_POOL': {new}"),
            ),
            (
                "old",
                "'read', 'delete'",
                format!("'SESSION_REDIS_POOL': {old}"),
            ),
        ]);
        let old_pool = from_env(&[("SESSION_REDIS_POOL", old)]);
        let old_pool = SessionStore::from_config(&old_pool).await.unwrap();
        race_on(&Topology {
            name: "multi growing a pool",
            stores: two(&config).await,
            start_in: old_pool.clone(),
            places: servers.iter().map(|s| redis(s, "session:")).collect(),
        })
        .await;
    });
}

#[test]
fn over_a_multi_backend_with_a_mirror() {
    local(async {
        let (main, mirror) = (RedisServer::start(), RedisServer::start());
        let config = multi(&[
            (
                "main",
                "'read', 'write', 'delete'",
                url_setting(&main, "s:"),
            ),
            ("mirror", "'write'", url_setting(&mirror, "s:")),
        ]);
        let stores = two(&config).await;
        race_on(&Topology {
            name: "multi with a mirror",
            start_in: stores[0].clone(),
            places: vec![redis(&main, "s:"), redis(&mirror, "s:")],
            stores,
        })
        .await;
    });
}

#[test]
fn over_one_file_store_shared_by_two_processes() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        race_on(&Topology {
            name: "file store",
            stores: [files(dir.path()), files(dir.path())],
            start_in: files(dir.path()),
            places: vec![],
        })
        .await;
    });
}

/// Honest errors on a topology of several servers: with one pool member down, the requests of
/// its sessions answer 503 (no cookie set or removed) and the others' 200; once it is back
/// (empty: no persistence), the same layer serves every request again, without a restart.
#[test]
fn a_pool_member_down_is_503_for_its_sessions_only_and_recovers() {
    local(async {
        let (a, b) = (RedisServer::start(), RedisServer::start());
        let mut config = from_env(&[("SESSION_REDIS_POOL", RedisServer::pool_setting(&[&a, &b]))]);
        config.socket_timeout = Some(0.5);
        config.socket_connect_timeout = Some(0.5);
        let store = SessionStore::from_config(&config).await.unwrap();
        let gate = Arc::new(Gate::default());
        let app = app(&store, &gate, false);
        let mut cookies = Vec::new();
        for _ in 0..12 {
            let answer = send(&app, "GET", "/set?key=user&value=alice", None).await;
            cookies.push(answer.cookie_pair());
        }
        let on_b = |cookie: &str| {
            b.cmd::<i64>(&["EXISTS", &format!("session:{}", open(cookie).as_str())]) == 1
        };
        let owners: Vec<bool> = cookies.iter().map(|c| on_b(c)).collect();
        assert!(
            owners.contains(&true) && owners.contains(&false),
            "{owners:?}"
        );
        b.kill();
        for (cookie, on_b) in cookies.iter().zip(&owners) {
            let answer = send(&app, "GET", "/set?key=n&value=1", Some(cookie)).await;
            if *on_b {
                assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
                assert!(answer.set_cookie.is_empty(), "{:?}", answer.set_cookie);
            } else {
                assert_eq!(answer.status, StatusCode::OK);
            }
        }
        b.restart();
        for cookie in &cookies {
            let answer = send(&app, "GET", "/set?key=n&value=2", Some(cookie)).await;
            assert_eq!(answer.status, StatusCode::OK);
        }
        for _ in 0..8 {
            let answer = send(&app, "GET", "/set?key=user&value=bob", None).await;
            assert_eq!(answer.status, StatusCode::OK);
        }
    });
}

/// A multi-backend moving sessions from the file store into Redis, with Redis down: a
/// request of a session still in the file store cannot move it, and answers 503 (not a fresh
/// session, which would log the user out), leaving the file where it is; once Redis is back,
/// the same layer moves it and serves it, with the request's change.
#[test]
fn a_multi_backend_target_down_is_503_and_the_move_happens_once_it_is_back() {
    local(async {
        let server = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let mut setting = url_setting(&server, "new:");
        setting.push_str(
            ", 'SESSION_REDIS_SOCKET_TIMEOUT': 0.5, 'SESSION_REDIS_SOCKET_CONNECT_TIMEOUT': 0.5",
        );
        let config = multi(&[
            ("redis", "'read', 'write'", setting),
            (
                "files",
                "'read', 'delete'",
                format!(
                    "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
                    dir.path().display()
                ),
            ),
        ]);
        let store = SessionStore::from_config(&config).await.unwrap();
        let gate = Arc::new(Gate::default());
        let app = app(&store, &gate, false);
        let old = files(dir.path());
        let cookie = send(
            &app_of(&old, &gate),
            "GET",
            "/set?key=user&value=alice",
            None,
        )
        .await
        .cookie_pair();
        let id = open(&cookie);
        server.kill();
        let answer = send(&app, "GET", "/set?key=n&value=1", Some(&cookie)).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.set_cookie.is_empty(), "{:?}", answer.set_cookie);
        assert!(
            old.load(&id).await.unwrap().is_some(),
            "the session was lost"
        );
        server.restart();
        let answer = send(&app, "GET", "/set?key=n&value=2", Some(&cookie)).await;
        assert_eq!(answer.status, StatusCode::OK);
        let moved = redis(&server, "new:").load(&id).await.unwrap().unwrap();
        assert_eq!(moved["user"], "\"alice\"");
        assert_eq!(moved["n"], "\"2\"");
        assert_eq!(old.load(&id).await.unwrap(), None);
    });
}

fn app_of(store: &SessionStore, gate: &Arc<Gate>) -> Router {
    app(store, gate, false)
}

/// A renew racing a logout made by a process configured with the new store alone, during a
/// move between two Redis servers: the renew's load moves the session (a moved marker stays
/// in the old store for a minute), the logout deletes the copy in the new store but not the
/// marker, then the renew deletes the old id. A plain `DEL` answered "removed" for that
/// marker, and the renew kept the session under its new id; a marker is no session.
#[test]
fn a_renew_racing_a_logout_without_the_old_store_brings_nothing_back() {
    local(async {
        let (old, new) = (RedisServer::start(), RedisServer::start());
        let config = multi(&[
            ("new", "'read', 'write'", url_setting(&new, "session:")),
            ("old", "'read', 'delete'", url_setting(&old, "session:")),
        ]);
        let moving = SessionStore::from_config(&config).await.unwrap();
        let (old_store, new_store) = (redis(&old, "session:"), redis(&new, "session:"));
        let gate = Arc::new(Gate::default());
        let (app_moving, app_new) = (app(&moving, &gate, false), app(&new_store, &gate, false));
        let cookie = send(
            &app(&old_store, &gate, false),
            "GET",
            "/set?key=user&value=alice",
            None,
        )
        .await
        .cookie_pair();
        let id = open(&cookie);
        let renew = {
            let (app, cookie) = (app_moving.clone(), cookie.clone());
            tokio::task::spawn_local(async move {
                send(&app, "GET", "/renew-later", Some(&cookie)).await
            })
        };
        gate.until_waiting(1).await;
        let marker: Vec<u8> = old.cmd(&["GET", &format!("session:{}", id.as_str())]);
        assert!(
            marker.starts_with(b",\"~moved\""),
            "the load moved the session"
        );
        let logout = send(&app_new, "GET", "/logout", Some(&cookie)).await;
        assert_eq!(logout.status, StatusCode::OK);
        gate.release();
        let renewed = renew.await.unwrap();
        assert_eq!(renewed.status, StatusCode::CONFLICT);
        assert!(
            renewed.set_cookie.iter().all(|c| c.contains("Max-Age=0")),
            "the renew sent a live cookie after the logout: {:?}",
            renewed.set_cookie
        );
        let keys: Vec<String> = new.cmd(&["KEYS", "session:*"]);
        assert!(
            keys.is_empty(),
            "a renew racing the logout kept the session: {keys:?}"
        );
    });
}

/// Two renews (a login) of one session at the same instant, each through one of `apps` (two
/// processes): a login form submitted twice, or a stolen cookie's request racing the
/// victim's login. Both load the session and wait; then both renew it. The renew whose
/// delete of the old id comes first keeps its new id; the other stores nothing. What is
/// checked: the old id names nothing; exactly one new id holds the session (never two: a
/// racing renew of an old cookie must not keep a second live session); exactly one answer
/// sets a cookie; and a browser that receives both answers, in either order, ends with the
/// live one (before: the other answer removed the cookie, which logged the user out whenever
/// it arrived last).
async fn two_renews_at_once(apps: [&Router; 2], gate: &Gate, places: &[SessionStore], case: &str) {
    for round in 0..10 {
        let case = format!("{case}, round {round}");
        let cookie = send(apps[0], "GET", "/set?key=user&value=alice", None)
            .await
            .cookie_pair();
        let old = open(&cookie);
        let renews: Vec<_> = (0..2)
            .map(|i| {
                let (app, cookie) = (apps[i].clone(), cookie.clone());
                tokio::task::spawn_local(async move {
                    send(&app, "GET", "/renew-later", Some(&cookie)).await
                })
            })
            .collect();
        gate.until_waiting(2).await;
        gate.release();
        let mut answers = Vec::new();
        for renew in renews {
            answers.push(renew.await.unwrap());
        }
        // The winner answers 200 with its new cookie, the loser 409 with none.
        let mut statuses: Vec<StatusCode> = answers.iter().map(|a| a.status).collect();
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{case}");
        let live: Vec<SessionId> = answers
            .iter()
            .flat_map(|a| &a.set_cookie)
            .filter(|set| !set.contains("Max-Age=0"))
            .map(|set| open(set.split(';').next().unwrap()))
            .collect();
        assert_eq!(live.len(), 1, "{case}: live cookies sent: {}", live.len());
        for store in places {
            assert_eq!(
                store.load(&old).await.unwrap(),
                None,
                "{case}: the old id lives"
            );
        }
        let stored = places[0].load(&live[0]).await.unwrap();
        assert_eq!(
            stored.as_ref().map(|s| s["user"].as_str()),
            Some("\"mallory\""),
            "{case}: the winning renew's session"
        );
        for (first, second) in [(0, 1), (1, 0)] {
            let kept = jar_after(&cookie, &[&answers[first], &answers[second]]);
            let kept = kept.map(|pair| open(&pair));
            assert_eq!(
                kept.as_ref(),
                Some(&live[0]),
                "{case}: a browser receiving answer {first} then {second} is logged out"
            );
        }
    }
}

/// [`two_renews_at_once`] on one Redis server, two processes; the new ids of both renews are
/// then counted on the server: one session only.
#[test]
fn two_renews_of_one_session_at_once_keep_one_login() {
    local(async {
        let server = RedisServer::start();
        let config = from_env(&[("SESSION_REDIS_URL", server.url())]);
        let stores = two(&config).await;
        let gate = Arc::new(Gate::default());
        let apps = [app(&stores[0], &gate, false), app(&stores[1], &gate, false)];
        two_renews_at_once([&apps[0], &apps[1]], &gate, &stores, "one server").await;
        let keys: Vec<String> = server.cmd(&["KEYS", "session:*"]);
        assert_eq!(keys.len(), 10, "one session per round: {}", keys.len());
    });
}

/// [`two_renews_at_once`] on a multi-backend with a mirror, two processes: the old id has a
/// copy in each backend, deleted one after the other, and each process's renew must still
/// tell whether another came first.
#[test]
fn two_renews_at_once_over_a_mirror_keep_one_login() {
    local(async {
        let (main, mirror) = (RedisServer::start(), RedisServer::start());
        let config = multi(&[
            (
                "main",
                "'read', 'write', 'delete'",
                url_setting(&main, "s:"),
            ),
            ("mirror", "'write'", url_setting(&mirror, "s:")),
        ]);
        let stores = two(&config).await;
        let gate = Arc::new(Gate::default());
        let apps = [app(&stores[0], &gate, false), app(&stores[1], &gate, false)];
        let places = [stores[0].clone(), redis(&main, "s:"), redis(&mirror, "s:")];
        two_renews_at_once([&apps[0], &apps[1]], &gate, &places, "mirror").await;
        for server in [&main, &mirror] {
            let keys: Vec<String> = server.cmd(&["KEYS", "s:*"]);
            assert_eq!(keys.len(), 10, "one session per round: {keys:?}");
        }
    });
}

/// A process's multi-backend over `main` (`read`, `write`, `delete`) and `mirror` (`write`),
/// with its mirror behind `probe` when given (to hold its calls).
fn mirrored(
    main: &RedisServer,
    mirror: &RedisServer,
    probe: Option<fn(Arc<dyn SessionBackend>) -> ProbeBackend>,
) -> (SessionStore, Option<ProbeBackend>) {
    use session_core::{backends::multi::MultiBackend, BackendMode, TtlRule};
    let backend = |server: &RedisServer| -> Arc<dyn SessionBackend> {
        let config = SessionConfig {
            url: Some(server.url()),
            prefix: "s:".to_owned(),
            ..SessionConfig::default()
        };
        Arc::new(session_core::backends::redis::RedisBackend::from_config(&config).unwrap())
    };
    let probe = probe.map(|wrap| wrap(backend(mirror)));
    let mirror_backend: Arc<dyn SessionBackend> = match &probe {
        Some(probe) => Arc::new(probe.clone()),
        None => backend(mirror),
    };
    let multi = MultiBackend::new(
        vec![
            (
                "main".to_owned(),
                vec![BackendMode::Read, BackendMode::Write, BackendMode::Delete],
                backend(main),
            ),
            (
                "mirror".to_owned(),
                vec![BackendMode::Write],
                mirror_backend,
            ),
        ],
        TtlRule::default(),
    );
    (SessionStore::new(multi), probe)
}

/// A renew and a logout of one session at the same instant in two processes over a
/// multi-backend with a mirror: the session has a copy in each backend, and each delete
/// removes the main copy, then the mirror's. The logout is held between the two; the renew's
/// delete then finds no main copy but the mirror's. A mirror's copy is no session (no load
/// reads it), but the delete answered "there was a session" for it, so the renew kept the
/// loaded state under its new id after the logout (found in this review).
#[test]
fn a_renew_racing_a_logout_over_a_mirror_brings_nothing_back() {
    local(async {
        let (main, mirror) = (RedisServer::start(), RedisServer::start());
        let (renewing, _) = mirrored(&main, &mirror, None);
        let (logging_out, probe) = mirrored(&main, &mirror, Some(ProbeBackend::wrap));
        let probe = probe.unwrap();
        let gate = Arc::new(Gate::default());
        let (app_renew, app_logout) = (
            app(&renewing, &gate, false),
            app(&logging_out, &gate, false),
        );
        let cookie = send(&app_renew, "GET", "/set?key=user&value=alice", None)
            .await
            .cookie_pair();
        let id = open(&cookie);
        let renew = {
            let (app, cookie) = (app_renew.clone(), cookie.clone());
            tokio::task::spawn_local(async move {
                send(&app, "GET", "/renew-later", Some(&cookie)).await
            })
        };
        gate.until_waiting(1).await;
        let held = probe.pause(Op::Delete);
        let logout = {
            let (app, cookie) = (app_logout.clone(), cookie.clone());
            tokio::task::spawn_local(
                async move { send(&app, "GET", "/logout", Some(&cookie)).await },
            )
        };
        held.reached().await;
        gate.release();
        let renewed = renew.await.unwrap();
        held.release();
        let logout = logout.await.unwrap();
        assert_eq!(logout.status, StatusCode::OK);
        assert_eq!(renewed.status, StatusCode::CONFLICT);
        for (name, server) in [("main", &main), ("mirror", &mirror)] {
            let keys: Vec<String> = server.cmd(&["KEYS", "s:*"]);
            assert!(
                keys.is_empty(),
                "{name}: a renew racing the logout kept the session: {} keys, live cookie sent: {}",
                keys.len(),
                renewed.set_cookie.iter().any(|c| !c.contains("Max-Age=0"))
            );
        }
        assert_eq!(renewing.load(&id).await.unwrap(), None);
    });
}

/// A logout whose client drops the request before its delete is sent (the tab closed right
/// after "log out"): the delete runs to its end. Before, the dropped request took the delete
/// with it, and the session, with any stolen copy of its cookie, stayed good for its TTL.
/// The probe holds the delete while the test drops the request.
#[test]
fn a_logout_dropped_by_its_client_still_ends_the_session() {
    local(async {
        let server = RedisServer::start();
        let config = SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        };
        let probe = ProbeBackend::new(
            session_core::backends::redis::RedisBackend::from_config(&config).unwrap(),
        );
        let store = SessionStore::new(probe.clone());
        let app = app(&store, &Arc::new(Gate::default()), false);
        let cookie = send(&app, "GET", "/set?key=user&value=alice", None)
            .await
            .cookie_pair();
        let id = open(&cookie);
        let held = probe.pause(Op::Delete);
        tokio::select! {
            _ = send(&app, "GET", "/logout", Some(&cookie)) => {
                panic!("the logout ended without its delete")
            }
            _ = held.reached() => {}
        }
        held.release();
        // A delete that goes on after its request is gone takes a moment to land.
        let mut gone = false;
        for _ in 0..200 {
            gone = store.load(&id).await.unwrap().is_none();
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            gone,
            "a logout dropped by its client left the session stored"
        );
    });
}
