//! The axum demo's HTTP contract, over real HTTP on a loopback port, with the in-memory store.
//!
//! The checks live in `tests/common/checks.rs`: they take base URLs (and, where they look
//! inside, the store and key material), so `tests/redis_e2e.rs` runs the same checks against
//! Redis-backed demos of both frameworks, and logs in on one server and asks `/whoami` on another.

mod common;

use common::checks;
use session_core::{testing::probe::ProbeBackend, SessionStore};
use session_e2e::axum_app;

/// 64 bytes of cookie key material (what `SESSION_SECRET` would give).
const KEY: &[u8; 64] = b"demo-secret-demo-secret-demo-secret-demo-secret-demo-secret-1234";

/// Serves the demo app for `store` on a free loopback port; returns its base URL.
async fn serve(store: SessionStore) -> String {
    let app = axum_app::router(store, KEY, false, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn counter_and_read() {
    let base = serve(SessionStore::memory()).await;
    checks::counter(&base).await;
}

#[tokio::test]
async fn read_writes_nothing_and_sets_no_cookie() {
    let backend = ProbeBackend::memory();
    let base = serve(SessionStore::new(backend.clone())).await;
    checks::read_writes_nothing(&base, &move || backend.writes()).await;
}

#[tokio::test]
async fn login_renews_the_id_and_whoami_works() {
    let store = SessionStore::memory();
    let base = serve(store.clone()).await;
    checks::login_renews_and_whoami(&base, &base, KEY, Some(&store)).await;
}

#[tokio::test]
async fn two_servers_sharing_key_and_store_share_sessions() {
    let store = SessionStore::memory();
    let a = serve(store.clone()).await;
    let b = serve(store.clone()).await;
    checks::login_renews_and_whoami(&a, &b, KEY, Some(&store)).await;
}

#[tokio::test]
async fn logout_deletes_the_session() {
    let store = SessionStore::memory();
    let base = serve(store.clone()).await;
    checks::logout(&base, KEY, Some(&store)).await;
}

#[tokio::test]
async fn tampered_cookie_gives_a_fresh_session() {
    let base = serve(SessionStore::memory()).await;
    checks::tampered_cookie(&base).await;
}

#[tokio::test]
async fn healthz_names_the_backend() {
    let base = serve(SessionStore::memory()).await;
    let json = checks::healthz(&base, true).await;
    assert_eq!(json["backends"][0]["name"], "memory", "{json}");
}

#[tokio::test]
async fn store_outage_is_503_and_recovers_without_restart() {
    let backend = ProbeBackend::memory();
    let base = serve(SessionStore::new(backend.clone())).await;
    let cookie = checks::login(&base, None, "dave").await;

    backend.set_down(true);
    checks::outage(&base, &cookie).await;

    backend.set_down(false);
    checks::healthz(&base, true).await;
    let res = checks::send("GET", &format!("{base}/whoami"), Some(&cookie), None).await;
    assert_eq!((res.status.as_u16(), res.body.as_str()), (200, "dave"));
    let res = checks::send("GET", &format!("{base}/counter"), Some(&cookie), None).await;
    assert_eq!((res.status.as_u16(), res.body.as_str()), (200, "1"));
}

#[tokio::test]
async fn every_answer_names_its_content_type_and_nosniff() {
    let base = serve(SessionStore::memory()).await;
    checks::content_types_everywhere(&base, true).await;
    checks::markup_is_text(&base).await;

    // The errors made around the handlers: the session layer's 503 and `/healthz`'s.
    let backend = ProbeBackend::memory();
    let base = serve(SessionStore::new(backend.clone())).await;
    let cookie = checks::login(&base, None, "heidi").await;
    backend.set_down(true);
    checks::outage(&base, &cookie).await;
    checks::content_types_everywhere_down(&base).await;
}

/// `GET /app`: the HTML page, outside the session layer (no store call, with or without a
/// session cookie), so it loads during an outage too.
#[tokio::test]
async fn the_app_page_is_html_with_a_fresh_policy_and_needs_no_store() {
    let backend = ProbeBackend::memory();
    let base = serve(SessionStore::new(backend.clone())).await;
    let calls = {
        let backend = backend.clone();
        move || backend.total()
    };
    checks::app_page(&base, "axum", None, &calls).await;
    let cookie = checks::login(&base, None, "ivan").await;
    checks::app_page(&base, "axum", Some(&cookie), &calls).await;
    backend.set_down(true);
    checks::app_page(&base, "axum", Some(&cookie), &calls).await;
}

#[tokio::test]
async fn login_rejects_an_empty_or_over_long_user_and_stores_nothing() {
    let backend = ProbeBackend::memory();
    let base = serve(SessionStore::new(backend.clone())).await;
    checks::user_name_is_bounded(&base, &move || backend.writes()).await;
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let backend = ProbeBackend::memory();
    let base = serve(SessionStore::new(backend.clone())).await;
    checks::cross_site_posts_are_refused(&base, &move || backend.writes()).await;
}
