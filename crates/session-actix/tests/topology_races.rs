//! Requests of one session at the same instant through actix-session's `SessionMiddleware`
//! over `ActixStore` inside `request_scope`, on the topologies besides one Redis server
//! (`races.rs`): a weighted pool, Redis Cluster, a multi-backend moving sessions from the
//! file store into Redis (the session starts in the file store, so the first requests race
//! its move), a multi-backend growing a pool, a Redis writer with a Redis mirror, and one
//! file store shared by two processes. Requests alternate between two stores built from
//! the same configuration (two worker processes).
//!
//! 12 requests at once, each setting its own key, 4 rounds: every change lands. Then 6
//! writers and 2 renews (a login) that loaded the session, a logout, and their writes and
//! renews: the logged-out id stays gone and no session is left under any id.

mod common;

use std::sync::atomic::Ordering;

use common::{answer, id_in, purge, renew_later, req, session_cookie, set, set_later, Gate};

use actix_session::SessionMiddleware;
use actix_web::{cookie::Key, http::StatusCode, middleware::from_fn, test, web, App};
use futures_util::future::join_all;
use session_actix::{request_scope, ActixStore};
use session_core::{
    backends::{file::FileBackend, redis::RedisBackend},
    SessionConfig, SessionId, SessionStore,
};
use session_testkit::{ClusterTopology, RedisServer};

macro_rules! app {
    ($store:expr, $key:expr, $gate:expr) => {
        test::init_service(
            App::new()
                .app_data($gate.clone())
                .wrap(SessionMiddleware::new(
                    ActixStore::new($store.clone()),
                    $key.clone(),
                ))
                .wrap(from_fn(request_scope))
                .route("/set", web::get().to(set))
                .route("/set-later", web::get().to(set_later))
                .route("/renew-later", web::get().to(renew_later))
                .route("/logout", web::get().to(purge)),
        )
        .await
    };
}

/// The race of the module docs on one topology: `stores` are the two processes' stores,
/// `start_in` where a session starts, `places` every backend read on its own.
async fn race_on(
    name: &str,
    stores: [SessionStore; 2],
    start_in: SessionStore,
    places: Vec<SessionStore>,
) {
    let key = Key::generate();
    let gate = web::Data::new(Gate::default());
    let a = app!(stores[0], key, gate);
    let b = app!(stores[1], key, gate);
    let start = app!(start_in, key, gate);

    let res = test::call_service(
        &start,
        test::TestRequest::get()
            .uri("/set?key=base&value=b")
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&res).unwrap();
    let id = id_in(&cookie, &key);
    for round in 0..4 {
        let answers = join_all((0..12).map(|i| {
            let uri = format!("/set?key=k{i}&value=r{round}");
            let (a, b, cookie) = (&a, &b, &cookie);
            async move {
                if i % 2 == 0 {
                    test::call_service(a, req(&uri, cookie)).await.status()
                } else {
                    test::call_service(b, req(&uri, cookie)).await.status()
                }
            }
        }))
        .await;
        assert!(
            answers.iter().all(|s| *s == StatusCode::OK),
            "{name}: {answers:?}"
        );
        let state = stores[0].load(&id).await.unwrap().expect(name);
        assert_eq!(state.len(), 13, "{name}, round {round}: {:?}", state.keys());
        for i in 0..12 {
            assert_eq!(state[&format!("k{i}")], format!("\"r{round}\""), "{name}");
        }
        for place in &places {
            if let Some(copy) = place.load(&id).await.unwrap() {
                assert_eq!(copy, state, "{name}, round {round}: a copy differs");
            }
        }
    }

    let res = test::call_service(
        &start,
        test::TestRequest::get()
            .uri("/set?key=user&value=alice")
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&res).unwrap();
    let id = id_in(&cookie, &key);
    let late = (0..8).map(|i| {
        let uri = if i < 6 {
            format!("/set-later?key=late{i}&value=v")
        } else {
            "/renew-later".to_owned()
        };
        let (a, b, cookie) = (&a, &b, &cookie);
        async move {
            let answered = if i % 2 == 0 {
                answer(a, req(&uri, cookie)).await
            } else {
                answer(b, req(&uri, cookie)).await
            };
            (i, answered)
        }
    });
    let (answers, out) = tokio::join!(join_all(late), async {
        while gate.loaded.load(Ordering::SeqCst) < 8 {
            tokio::task::yield_now().await;
        }
        let out = test::call_service(&a, req("/logout", &cookie)).await;
        gate.go.notify_waiters();
        out
    });
    assert_eq!(out.status(), StatusCode::OK, "{name}");
    let mut ids: Vec<SessionId> = vec![id];
    for (i, (status, set)) in answers {
        // The renews (6 and 7) find the session gone: 409, no cookie.
        let expected = if i < 6 {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(status, expected, "{name}, request {i}");
        if let Some(set) = set.filter(|c| !c.value().is_empty()) {
            ids.push(id_in(&set, &key));
        }
    }
    for store in stores.iter().chain(&places) {
        for id in &ids {
            assert_eq!(
                store.load(id).await.unwrap(),
                None,
                "{name}: a session is left after the logout"
            );
        }
    }
}

fn from_env(vars: &[(&str, String)]) -> SessionConfig {
    SessionConfig::from_env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.clone()))).unwrap()
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
    SessionStore::new(RedisBackend::from_config(&config).unwrap())
}

fn multi(backends: &[(&str, &str, String)]) -> SessionConfig {
    let list: Vec<String> = backends
        .iter()
        .map(|(name, modes, setting)| {
            format!("{{'backend': '{name}', 'modes': [{modes}], 'setting': {{{setting}}}}}")
        })
        .collect();
    from_env(&[(
        "ACS_SESSION_MULTISESSIONS_POOL",
        format!("({},)", list.join(", ")),
    )])
}

#[actix_web::test]
async fn over_a_pool() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let config = from_env(&[("SESSION_REDIS_POOL", RedisServer::pool_setting(&[&a, &b]))]);
    let stores = two(&config).await;
    let places = vec![redis(&a, "session:"), redis(&b, "session:")];
    race_on("pool", stores.clone(), stores[0].clone(), places).await;
}

#[actix_web::test]
async fn over_a_cluster() {
    let cluster = ClusterTopology::start();
    let config = from_env(&[
        ("SESSION_REDIS_MODE", "cluster".into()),
        ("SESSION_REDIS_HOST", cluster.seed_hosts()),
    ]);
    let stores = two(&config).await;
    race_on("cluster", stores.clone(), stores[0].clone(), vec![]).await;
}

#[actix_web::test]
async fn over_a_multi_backend_moving_from_files_to_redis() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = multi(&[
        (
            "redis",
            "'read', 'write'",
            format!(
                "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 'new:'",
                server.url()
            ),
        ),
        (
            "files",
            "'read', 'delete'",
            format!(
                "'SESSION_REDIS_MODE': False, 'SESSION_FILESTORE_PATH': '{}'",
                dir.path().display()
            ),
        ),
    ]);
    let places = vec![files(dir.path()), redis(&server, "new:")];
    race_on(
        "multi files -> redis",
        two(&config).await,
        files(dir.path()),
        places,
    )
    .await;
}

#[actix_web::test]
async fn over_a_multi_backend_growing_a_pool() {
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
    let old_pool = SessionStore::from_config(&from_env(&[("SESSION_REDIS_POOL", old)]))
        .await
        .unwrap();
    let places = servers.iter().map(|s| redis(s, "session:")).collect();
    race_on("multi growing a pool", two(&config).await, old_pool, places).await;
}

#[actix_web::test]
async fn over_a_multi_backend_with_a_mirror() {
    let (main, mirror) = (RedisServer::start(), RedisServer::start());
    let setting = |s: &RedisServer| {
        format!(
            "'SESSION_REDIS_URL': '{}', 'SESSION_REDIS_PREFIX': 's:'",
            s.url()
        )
    };
    let config = multi(&[
        ("main", "'read', 'write', 'delete'", setting(&main)),
        ("mirror", "'write'", setting(&mirror)),
    ]);
    let stores = two(&config).await;
    let places = vec![redis(&main, "s:"), redis(&mirror, "s:")];
    race_on(
        "multi with a mirror",
        stores.clone(),
        stores[0].clone(),
        places,
    )
    .await;
}

#[actix_web::test]
async fn over_one_file_store_shared_by_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    race_on(
        "file store",
        [files(dir.path()), files(dir.path())],
        files(dir.path()),
        vec![],
    )
    .await;
}
