//! A session over `session_redis_max_session_size` answers 413 and stores nothing.

mod common;

use axum::{extract::Query, http::StatusCode, routing::post, Router};
use common::{key, send};
use session_axum::{Session, SessionError, SessionLayer};
use session_core::{testing::probe::ProbeBackend, SessionStore};

#[derive(serde::Deserialize)]
struct Put {
    len: usize,
}

/// Stores `len` bytes under `blob`.
async fn put(session: Session, Query(q): Query<Put>) -> Result<(), SessionError> {
    session.insert("blob", &"x".repeat(q.len)).await
}

async fn renew(session: Session, Query(q): Query<Put>) -> Result<(), SessionError> {
    session.insert("blob", &"x".repeat(q.len)).await?;
    session.renew().await
}

#[tokio::test]
async fn an_oversized_session_is_413_with_nothing_stored() {
    let probe = ProbeBackend::memory();
    let store = SessionStore::new(probe.clone()).with_max_session_size(Some(1024));
    let app = Router::new()
        .route("/put", post(put))
        .route("/renew", post(renew))
        .layer(SessionLayer::new(store.clone(), key()));

    let res = send(&app, "POST", "/put?len=2000", None).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.body, "session too large: nothing was stored");
    assert_eq!(probe.writes(), 0, "nothing stored");

    let res = send(&app, "POST", "/put?len=100", None).await;
    assert_eq!(res.status, StatusCode::OK);
    let cookie = res.cookie_pair();
    let writes = probe.writes();
    let res = send(&app, "POST", "/put?len=5000", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(probe.writes(), writes, "nothing written");

    // A renew that would be too large keeps the old session: the check comes before the
    // old id is deleted.
    let res = send(&app, "POST", "/renew?len=5000", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    let id = common::open(&cookie);
    assert!(store.load(&id).await.unwrap().is_some(), "still logged in");
}
