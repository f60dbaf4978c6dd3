//! The axum-login demo (`examples/axum_login.rs`, `session_e2e::axum_login_app`): axum-login
//! over tower-sessions over `session_axum::TowerStore`, on real Redis and on the file store (the
//! demo's default): login, a protected route, logout, and what the store holds at each step.

use std::time::Duration;

use sha2::Digest;

use session_axum::TowerStore;
use session_core::{backends::file::FileBackend, SessionConfig, SessionStore};
use session_e2e::axum_login_app;
use session_testkit::{
    http::{self, open_cookie, Answer},
    RedisServer,
};
use tower_sessions::session::Id;

/// 64 bytes of cookie key material (what `SESSION_SECRET` would give).
const KEY: &[u8; 64] = b"demo-secret-demo-secret-demo-secret-demo-secret-demo-secret-1234";

/// Serves the demo for `store` on a free loopback port; returns its base URL.
async fn serve(store: SessionStore) -> String {
    serve_sliding(store, None).await
}

/// [`serve`], with the demo's sliding expiry (`session_redis_key_expire`).
async fn serve_sliding(store: SessionStore, sliding: Option<Duration>) -> String {
    let app = axum_login_app::router(store, KEY, false, sliding);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn send(
    base: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    http::send(method, &format!("{base}{path}"), cookie, form).await
}

/// The configuration and store for `redis`, with `options` (`session_redis_*` names).
async fn redis_store(
    redis: &RedisServer,
    options: &[(&str, &str)],
) -> (SessionConfig, SessionStore) {
    let mut builder = SessionConfig::builder().set("session_redis_url", &redis.url());
    for (name, value) in options {
        builder = builder.set(name, value);
    }
    let config = builder.build().unwrap();
    let store = SessionStore::from_config(&config).await.unwrap();
    (config, store)
}

/// `POST /login` as alice, with no cookie.
async fn login_alice(base: &str) -> Answer {
    send(
        base,
        "POST",
        "/login",
        None,
        Some("user=alice&password=wonderland"),
    )
    .await
}

/// Our id of the session a demo cookie names: the cookie is tower-sessions' private cookie
/// (the same AES-GCM jar as ours), holding their id.
fn our_id(pair: &str) -> session_core::SessionId {
    let id: Id = open_cookie(pair, KEY).parse().unwrap();
    TowerStore::session_id(&id)
}

/// Login, protected route, logout, on `store`.
async fn login_protected_logout(store: SessionStore) {
    let app = serve(store.clone()).await;

    let anonymous = send(&app, "GET", "/protected", None, None).await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert!(anonymous.set_cookie.is_empty());

    let wrong = send(
        &app,
        "POST",
        "/login",
        None,
        Some("user=alice&password=nope"),
    )
    .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(wrong.body, "wrong user name or password");
    assert!(wrong.set_cookie.is_empty(), "{wrong:?}");

    for form in ["password=x", "user=alice", "user=&password=x"] {
        let refused = send(&app, "POST", "/login", None, Some(form)).await;
        assert_eq!(refused.status, 400, "{form}: {refused:?}");
        assert!(refused.set_cookie.is_empty(), "{refused:?}");
    }
    let too_long = format!("user={}&password=x", "u".repeat(300));
    let refused = send(&app, "POST", "/login", None, Some(&too_long)).await;
    assert_eq!(refused.status, 400, "{refused:?}");

    let login = login_alice(&app).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.body, "logged in as alice");
    let cookie = login.cookie_pair();
    assert!(cookie.starts_with("id="), "{cookie}");
    // Through our store API: axum-login's record, as JSON text, under the derived id.
    let stored = store.load(&our_id(&cookie)).await.unwrap().unwrap();
    let data: serde_json::Value = serde_json::from_str(&stored["axum-login.data"]).unwrap();
    assert_eq!(data["user_id"], "alice", "{data}");
    // The stored auth hash is keyed: not the password's bare digest.
    let bare: Vec<u8> = sha2::Sha256::digest(b"wonderland").to_vec();
    assert_ne!(data["auth_hash"], serde_json::json!(bare), "{data}");

    let protected = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!(protected.status, 200, "{protected:?}");
    assert_eq!(protected.body, "hello, alice");
    assert_eq!(protected.content_type_options.as_deref(), Some("nosniff"));

    // Logging in again from a logged-in session is allowed (axum-login keeps the id then).
    let bob = send(
        &app,
        "POST",
        "/login",
        Some(&cookie),
        Some("user=bob&password=builder"),
    )
    .await;
    assert_eq!(bob.status, 200, "{bob:?}");
    let cookie = bob.cookie_pair();
    assert_eq!(
        send(&app, "GET", "/protected", Some(&cookie), None)
            .await
            .body,
        "hello, bob"
    );

    let logout = send(&app, "POST", "/logout", Some(&cookie), None).await;
    assert_eq!(logout.status, 200, "{logout:?}");
    assert!(
        logout.set_cookie.iter().any(|c| c.contains("Max-Age=0")),
        "{logout:?}"
    );
    assert!(store.load(&our_id(&cookie)).await.unwrap().is_none());
    // The old cookie, replayed, logs nobody in.
    let replay = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!(replay.status, 401, "{replay:?}");
}

#[tokio::test]
async fn login_protected_logout_on_redis() {
    let redis = RedisServer::start();
    let (_, store) = redis_store(&redis, &[]).await;
    login_protected_logout(store).await;
    let keys: Vec<String> = redis.cmd(&["KEYS", "*"]);
    assert!(keys.is_empty(), "logout left {keys:?}");
}

#[tokio::test]
async fn login_protected_logout_on_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(FileBackend::new(dir.path().join("sessions")).unwrap());
    login_protected_logout(store).await;
}

/// Redis down: 503 (not axum-login's bare 500), and the same app works again once it is back.
#[tokio::test]
async fn redis_outage_is_503_and_recovers() {
    let redis = RedisServer::start();
    let timeouts = [
        ("session_redis_socket_timeout", "0.5"),
        ("session_redis_socket_connect_timeout", "0.5"),
    ];
    let app = serve(redis_store(&redis, &timeouts).await.1).await;
    let login = login_alice(&app).await;
    let cookie = login.cookie_pair();

    redis.kill();
    let down = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!(down.status, 503, "{down:?}");
    // `TowerScopeLayer`'s answer (the axum layer's text; `outage_is_503` answers the same).
    assert_eq!(down.body, "session store unavailable, please retry later");

    redis.restart();
    // The restarted server has no data (no persistence): the user logs in again.
    let login = login_alice(&app).await;
    assert_eq!(login.status, 200, "{login:?}");
    let again = send(&app, "GET", "/protected", Some(&login.cookie_pair()), None).await;
    assert_eq!(again.body, "hello, alice");
}

/// Redis dies right after a health check said it was up: the next request's store error is
/// still a 503. The demo told an outage by the store's health check, which is reused for a
/// second (`HEALTH_REUSE`), so such a request got axum-login's empty 500; it now asks the
/// adapter whether its own calls failed as unavailable.
#[tokio::test]
async fn an_outage_right_after_a_health_check_is_503() {
    let redis = RedisServer::start();
    let timeouts = [
        ("session_redis_socket_timeout", "0.5"),
        ("session_redis_socket_connect_timeout", "0.5"),
    ];
    let app = serve(redis_store(&redis, &timeouts).await.1).await;
    let cookie = login_alice(&app).await.cookie_pair();
    let healthz = send(&app, "GET", "/healthz", None, None).await;
    assert_eq!(healthz.status, 200, "{healthz:?}");
    redis.kill();
    let down = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!(down.status, 503, "{down:?}");
}

/// With `session_redis_key_expire`, every request with a session restarts its TTL at
/// `key_expire` (tower-sessions' always-save), as in the other demos.
#[tokio::test]
async fn key_expire_slides_on_every_request() {
    let redis = RedisServer::start();
    let (config, store) = redis_store(&redis, &[("session_redis_key_expire", "1800")]).await;
    let app = serve_sliding(store, config.key_expire_duration()).await;
    let cookie = login_alice(&app).await.cookie_pair();
    let key = format!("session:{}", our_id(&cookie).as_str());
    let ttl = || redis.cmd::<i64>(&["PTTL", &key]);
    assert!((1_700_000..=1_800_000).contains(&ttl()), "{}", ttl());
    // As if most of the TTL had passed; a read-only request then restarts it.
    let _: () = redis.cmd(&["PEXPIRE", &key, "60000"]);
    let protected = send(&app, "GET", "/protected", Some(&cookie), None).await;
    assert_eq!(protected.body, "hello, alice");
    assert!((1_700_000..=1_800_000).contains(&ttl()), "{}", ttl());
}

/// Another site's form posting valid credentials to `/login` (login CSRF: the visitor would
/// browse logged in as the attacker) is refused with 403: no cookie, nothing stored. The
/// demo's own page logs in as before.
#[tokio::test]
async fn a_cross_site_login_is_refused() {
    let store = SessionStore::memory();
    let base = serve(store.clone()).await;
    let form = Some("user=alice&password=wonderland");
    let url = format!("{base}/login");
    for headers in [
        [("sec-fetch-site", "cross-site")],
        [("origin", "http://evil.example")],
    ] {
        let res = http::send_with("POST", &url, None, form, &headers).await;
        assert_eq!(res.status.as_u16(), 403, "{headers:?}: {res:?}");
        assert!(res.set_cookie.is_empty(), "{res:?}");
    }
    let res = http::send_with(
        "POST",
        &url,
        None,
        form,
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(res.status.as_u16(), 200, "{res:?}");
}
