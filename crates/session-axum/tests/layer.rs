//! The layer's behaviour over the in-memory store, counted at the backend.

mod common;

use std::{collections::HashMap, time::Duration};

use axum::{
    extract::Query,
    http::StatusCode,
    routing::{get, post},
    Router,
};
use common::{key, open, send};
use session_axum::{SameSite, Session, SessionError, SessionLayer};
use session_core::{
    testing::probe::{Call, Fault, Op, ProbeBackend},
    SessionId, SessionStore,
};

async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
    session.insert("n", &n).await?;
    Ok(n.to_string())
}

async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
}

async fn set(
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(), SessionError> {
    for (k, v) in q {
        session.insert(&k, &v).await?;
    }
    Ok(())
}

async fn remove(
    session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(), SessionError> {
    for k in q.keys() {
        session.remove::<serde_json::Value>(k).await?;
    }
    Ok(())
}

async fn login(session: Session) -> Result<(), SessionError> {
    session.insert("user", "alice").await?;
    session.renew().await
}

async fn logout(session: Session) -> Result<(), SessionError> {
    session.purge().await
}

async fn clear(session: Session) -> Result<(), SessionError> {
    session.clear().await
}

fn routes() -> Router {
    Router::new()
        .route("/none", get(|| async { "untouched" }))
        .route("/counter", get(counter))
        .route("/read", get(read))
        .route("/set", post(set))
        .route("/remove", post(remove))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/clear", post(clear))
}

fn setup_with(
    edit: impl FnOnce(SessionLayer) -> SessionLayer,
) -> (Router, ProbeBackend, SessionStore) {
    let backend = ProbeBackend::memory();
    let store = SessionStore::new(backend.clone());
    let layer = edit(SessionLayer::new(store.clone(), key()));
    (routes().layer(layer), backend, store)
}

fn setup() -> (Router, ProbeBackend, SessionStore) {
    setup_with(|l| l)
}

#[tokio::test]
async fn untouched_session_makes_no_store_call() {
    let (app, backend, _) = setup();
    let first = send(&app, "GET", "/counter", None).await;
    let cookie = first.cookie_pair();
    backend.reset();

    let res = send(&app, "GET", "/none", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.set_cookie.is_empty());
    assert_eq!(backend.total(), 0);

    // A request without a cookie that only reads needs no store call either.
    let res = send(&app, "GET", "/read", None).await;
    assert_eq!(res.body, "0");
    assert!(res.set_cookie.is_empty());
    assert_eq!(backend.total(), 0);
}

#[tokio::test]
async fn new_session_is_created_once_and_changes_apply_only_changed_keys() {
    let (app, backend, store) = setup();
    let first = send(&app, "POST", "/set?user=bob", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(backend.count(Op::Create), 1);
    assert_eq!(backend.writes(), 1);
    let cookie = first.cookie_pair();
    let id = open(&cookie);
    backend.reset();

    let res = send(&app, "GET", "/counter", Some(&cookie)).await;
    assert_eq!(res.body, "1");
    // Browser-session cookie: nothing to refresh, so no Set-Cookie for an existing session.
    assert!(res.set_cookie.is_empty());
    assert_eq!(backend.count(Op::Load), 1);
    assert_eq!(backend.count(Op::Apply), 1);
    assert_eq!(backend.writes(), 1);
    let changes = backend.last_changes().unwrap();
    assert_eq!(
        changes.set,
        HashMap::from([("n".to_owned(), "1".to_owned())])
    );
    assert!(changes.remove.is_empty());
    // The store TTL defaults to one day, as actix-session's.
    assert_eq!(backend.last_ttl(), Some(Some(Duration::from_secs(86400))));

    let res = send(&app, "GET", "/counter", Some(&cookie)).await;
    assert_eq!(res.body, "2");
    let state = store.load(&id).await.unwrap().unwrap();
    // JSON text values, as actix-session stores them.
    assert_eq!(state["user"], "\"bob\"");
    assert_eq!(state["n"], "2");

    backend.reset();
    send(&app, "POST", "/remove?user", Some(&cookie)).await;
    let changes = backend.last_changes().unwrap();
    assert!(changes.set.is_empty());
    assert_eq!(changes.remove, vec!["user".to_owned()]);
    assert_eq!(backend.writes(), 1);
}

#[tokio::test]
async fn unchanged_session_writes_nothing() {
    let (app, backend, _) = setup();
    let cookie = send(&app, "POST", "/set?user=bob", None)
        .await
        .cookie_pair();
    backend.reset();

    let res = send(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!(res.body, "0");
    assert!(res.set_cookie.is_empty());
    assert_eq!(backend.count(Op::Load), 1);
    assert_eq!(backend.writes(), 0);

    // Inserting the value already stored is no change either.
    let res = send(&app, "POST", "/set?user=bob", Some(&cookie)).await;
    assert!(res.set_cookie.is_empty());
    assert_eq!(backend.writes(), 0);
}

#[tokio::test]
async fn renew_moves_the_data_to_a_new_id() {
    let (app, backend, store) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    let old = open(&cookie);
    backend.reset();

    let res = send(&app, "POST", "/login", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK);
    let new_cookie = res.cookie_pair();
    let new = open(&new_cookie);
    assert_ne!(old, new);
    assert_eq!(store.load(&old).await.unwrap(), None);
    let state = store.load(&new).await.unwrap().unwrap();
    assert_eq!(state["user"], "\"alice\"");
    assert_eq!(state["n"], "1");
    // Renew is the one case with two writes: delete the old id, create the new one.
    assert_eq!(backend.count(Op::Delete), 1);
    assert_eq!(backend.count(Op::Create), 1);
    assert_eq!(backend.writes(), 2);

    // The old cookie is dead; the new one works.
    assert_eq!(send(&app, "GET", "/read", Some(&cookie)).await.body, "0");
    assert_eq!(
        send(&app, "GET", "/read", Some(&new_cookie)).await.body,
        "1"
    );

    // Renew of a brand-new session: just a create.
    backend.reset();
    let res = send(&app, "POST", "/login", None).await;
    assert_eq!(res.set_cookie.len(), 1);
    assert_eq!(backend.writes(), 1);
}

#[tokio::test]
async fn purge_deletes_and_expires_the_cookie() {
    let (app, backend, store) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    let id = open(&cookie);
    backend.reset();

    let res = send(&app, "POST", "/logout", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.set_cookie.len(), 1);
    let removal = &res.set_cookie[0];
    assert!(removal.starts_with("id=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    // Purge needs no load: the id comes from the cookie.
    assert_eq!(backend.count(Op::Load), 0);
    assert_eq!(backend.count(Op::Delete), 1);
    assert_eq!(backend.total(), 1);
    assert_eq!(store.load(&id).await.unwrap(), None);
    assert_eq!(send(&app, "GET", "/read", Some(&cookie)).await.body, "0");
}

/// A cookie of another name with a non-ASCII value (browsers send it as raw bytes, here
/// UTF-8) in the same header does not hide ours: the session reads, and a logout deletes it
/// and expires the cookie. `HeaderValue::to_str` refused the whole header for that one
/// cookie: the session looked absent, and the logout answered 200 but deleted nothing.
#[tokio::test]
async fn a_non_ascii_cookie_beside_ours_hides_nothing() {
    let (app, _, store) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    let id = open(&cookie);
    for header in [
        format!("{cookie}; lang=fran\u{e7}ais"),
        format!("lang=fran\u{e7}ais; {cookie}"),
    ] {
        assert_eq!(send(&app, "GET", "/read", Some(&header)).await.body, "1");
    }
    let res = send(
        &app,
        "POST",
        "/logout",
        Some(&format!("{cookie}; lang=fran\u{e7}ais")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.set_cookie[0].contains("Max-Age=0"),
        "{:?}",
        res.set_cookie
    );
    assert_eq!(store.load(&id).await.unwrap(), None);
}

#[tokio::test]
async fn clearing_every_key_deletes_the_session_and_the_cookie() {
    let (app, _, store) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    let id = open(&cookie);
    let res = send(&app, "POST", "/clear", Some(&cookie)).await;
    assert!(res.set_cookie[0].contains("Max-Age=0"));
    assert_eq!(store.load(&id).await.unwrap(), None);
}

#[tokio::test]
async fn tampered_or_foreign_cookie_gives_a_fresh_session() {
    let (app, backend, _) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    send(&app, "GET", "/counter", Some(&cookie)).await;
    let (name, value) = cookie.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
    let plain_id = format!("id={}", SessionId::generate().as_str());
    for bad in [tampered.as_str(), plain_id.as_str(), "id=garbage%%%", "id="] {
        backend.reset();
        let res = send(&app, "GET", "/counter", Some(bad)).await;
        assert_eq!(res.status, StatusCode::OK, "{bad}");
        assert_eq!(res.body, "1", "{bad}");
        // Never loaded anything: a bad cookie means a new session, created once.
        assert_eq!(backend.count(Op::Load), 0);
        assert_eq!(backend.count(Op::Create), 1);
        assert_eq!(res.set_cookie.len(), 1);
    }
    // A cookie sealed with another key is foreign.
    let other = SessionLayer::new(SessionStore::memory(), session_axum::Key::generate());
    let other_app = routes().layer(other);
    let foreign = send(&other_app, "GET", "/counter", None)
        .await
        .cookie_pair();
    assert_eq!(send(&app, "GET", "/read", Some(&foreign)).await.body, "0");
}

#[tokio::test]
async fn stale_or_corrupt_session_is_no_session() {
    let (app, backend, store) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    store.delete(&open(&cookie)).await.unwrap();
    let res = send(&app, "GET", "/counter", Some(&cookie)).await;
    assert_eq!(res.body, "1");
    let cookie = res.cookie_pair();

    backend.fail(Op::Load, Some(Fault::Corrupt));
    let res = send(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "0");
}

#[tokio::test]
async fn default_cookie_attributes_match_actix_session() {
    let (app, _, _) = setup();
    let res = send(&app, "GET", "/counter", None).await;
    let c = cookie::Cookie::parse_encoded(res.set_cookie[0].clone()).unwrap();
    assert_eq!(c.name(), "id");
    assert_eq!(c.path(), Some("/"));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site(), Some(SameSite::Lax));
    assert_eq!(c.max_age(), None);
    assert_eq!(c.domain(), None);
    // The value is sealed: the id is not readable in it.
    let id = open(&res.cookie_pair());
    assert!(!res.set_cookie[0].contains(id.as_str()));
}

#[tokio::test]
async fn custom_cookie_attributes() {
    let (app, _, _) = setup_with(|l| {
        l.with_name("sid")
            .with_path("/app")
            .with_domain("example.test")
            .with_secure(false)
            .with_http_only(false)
            .with_same_site(SameSite::Strict)
            .with_max_age(Some(Duration::from_secs(600)))
    });
    let res = send(&app, "GET", "/counter", None).await;
    let c = cookie::Cookie::parse_encoded(res.set_cookie[0].clone()).unwrap();
    assert_eq!(c.name(), "sid");
    assert_eq!(c.path(), Some("/app"));
    assert_eq!(c.domain(), Some("example.test"));
    assert_eq!(c.secure(), None);
    assert_eq!(c.http_only(), None);
    assert_eq!(c.same_site(), Some(SameSite::Strict));
    assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(600)));
    let pair = res.cookie_pair();
    let first = res.set_cookie[0].clone();
    // A persistent cookie is re-sent when the session changes, to push its expiry forward:
    // the value the browser sent, with the same attributes, so the very text of the first.
    let res = send(&app, "GET", "/counter", Some(&pair)).await;
    assert_eq!(res.body, "2");
    assert_eq!(res.set_cookie, vec![first]);
    // The removal cookie carries the same path and domain, or the browser would keep the cookie.
    let res = send(&app, "POST", "/logout", Some(&pair)).await;
    let c = cookie::Cookie::parse(res.set_cookie[0].clone()).unwrap();
    assert_eq!((c.name(), c.value()), ("sid", ""));
    assert_eq!(c.path(), Some("/app"));
    assert_eq!(c.domain(), Some("example.test"));
    assert_eq!(c.max_age(), Some(cookie::time::Duration::ZERO));
}

#[tokio::test]
async fn sliding_expiry_touches_in_the_load_and_resends_the_cookie() {
    let ttl = Duration::from_secs(120);
    let (app, backend, _) = setup_with(|l| {
        l.with_ttl(Some(ttl))
            .with_max_age(Some(ttl))
            .with_sliding_expiry(true)
    });
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    backend.reset();
    let res = send(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!(res.body, "1");
    assert_eq!(backend.count_where(|c| matches!(c, Call::Load(Some(_)))), 1);
    assert_eq!(backend.total(), 1);
    assert_eq!(backend.last_ttl(), Some(Some(ttl)));
    assert_eq!(open(&res.cookie_pair()), open(&cookie));

    // Without sliding expiry a read does not touch.
    let (app, backend, _) = setup_with(|l| l.with_ttl(Some(ttl)));
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    backend.reset();
    send(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!(backend.count_where(|c| matches!(c, Call::Load(Some(_)))), 0);
}

#[tokio::test]
async fn store_outage_answers_503_and_recovers() {
    let (app, backend, _) = setup();
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    backend.set_down(true);

    // Load fails inside the handler.
    let res = send(&app, "GET", "/counter", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.body.contains("unavailable"));
    assert!(res.set_cookie.is_empty());
    // The write after the handler fails (a new session needs no load).
    let res = send(&app, "GET", "/counter", None).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.set_cookie.is_empty());
    let res = send(&app, "POST", "/logout", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    // Routes that do not touch the session are unaffected.
    assert_eq!(
        send(&app, "GET", "/none", Some(&cookie)).await.status,
        StatusCode::OK
    );

    backend.set_down(false);
    let res = send(&app, "GET", "/counter", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "2");
}

/// A concurrent logout lands between a request's load and its write: a write of its changes
/// (`renew: false`), or a renew, which moves the loaded state to a new id (a login). Neither
/// brings the session back: nothing is written or created. The write removes the cookie; the
/// renew sets none (its browser keeps what it has: another renew's live cookie, when that
/// one came first; see `topology_races.rs` `two_renews_of_one_session_at_once_keep_one_login`).
#[tokio::test]
async fn changes_and_renews_of_a_session_deleted_meanwhile_bring_nothing_back() {
    for renew in [false, true] {
        let backend = ProbeBackend::memory();
        let store = SessionStore::new(backend.clone());
        let layer = SessionLayer::new(store.clone(), key());
        let app = routes().layer(layer.clone());
        let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
        let id = open(&cookie);

        let racing = {
            let store = store.clone();
            let id = id.clone();
            Router::new()
                .route(
                    "/race",
                    get(move |session: Session| async move {
                        let n = session.get::<u64>("n").await?.unwrap_or(0);
                        store.delete(&id).await.unwrap();
                        if renew {
                            session.renew().await?;
                        }
                        session.insert("n", &(n + 1)).await?;
                        Ok::<_, SessionError>("ok")
                    }),
                )
                .layer(layer)
        };
        backend.reset();
        let res = send(&racing, "GET", "/race", Some(&cookie)).await;
        // A renew of a session gone stores nothing and answers 409; a write answers 200.
        let expected = if renew {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
        assert_eq!(res.status, expected);
        if renew {
            assert!(res.set_cookie.is_empty(), "{:?}", res.set_cookie);
        } else {
            assert!(
                res.set_cookie[0].contains("Max-Age=0"),
                "{:?}",
                res.set_cookie
            );
        }
        // The write of the changes is tried, and finds nothing to write to; a renew creates
        // the new id, finds the old one gone, and deletes the new one again (its id never
        // leaves the server).
        let (creates, deletes) = if renew { (1, 3) } else { (0, 1) };
        assert_eq!(backend.count(Op::Create), creates, "{:?}", backend.calls());
        assert_eq!(backend.count(Op::Delete), deletes, "{:?}", backend.calls());
        assert_eq!(store.load(&id).await.unwrap(), None, "logout must stick");
    }
}

/// Without a logout in between, a renew moves the session (the check reads the delete's
/// answer, not a missing session in general).
#[tokio::test]
async fn a_renew_moves_the_session_to_a_new_id() {
    let store = SessionStore::new(ProbeBackend::memory());
    let layer = SessionLayer::new(store.clone(), key());
    let app = routes().layer(layer.clone());
    let cookie = send(&app, "GET", "/counter", None).await.cookie_pair();
    let old = open(&cookie);
    let renewing = Router::new()
        .route(
            "/login",
            get(|session: Session| async move {
                session.renew().await?;
                session.insert("user", &"alice").await?;
                Ok::<_, SessionError>("ok")
            }),
        )
        .layer(layer);
    let res = send(&renewing, "GET", "/login", Some(&cookie)).await;
    let new = open(&res.cookie_pair());
    assert_ne!(new, old);
    assert_eq!(store.load(&old).await.unwrap(), None);
    assert_eq!(
        store.load(&new).await.unwrap().unwrap()["user"],
        "\"alice\""
    );
}

/// A logout that lands while a renew is under way (before its create, or between its
/// create and its delete of the old id) sticks: the renew answers with no cookie (the
/// logout's answer removed it) and leaves no session under either id. The renew used to delete the old id first: a
/// logout before its create found nothing, answered "logged out", and the create brought
/// the session back under the new id (a ninth review).
#[tokio::test]
async fn a_logout_during_a_renew_sticks() {
    for paused in [Op::Create, Op::Delete] {
        let (app, backend, store) = setup();
        let cookie = send(&app, "POST", "/login", None).await.cookie_pair();
        let old = open(&cookie);
        backend.reset();
        let pause = backend.pause(paused);
        let renew = send(&app, "POST", "/login", Some(&cookie));
        let logout = async {
            pause.reached().await;
            let logout = send(&app, "POST", "/logout", Some(&cookie)).await;
            pause.release();
            logout
        };
        let (renewed, logout) = tokio::join!(renew, logout);
        assert_eq!(logout.status, StatusCode::OK);
        assert_eq!(renewed.status, StatusCode::CONFLICT, "{paused:?}");
        assert!(
            renewed.set_cookie.is_empty(),
            "{paused:?}: the renew handed out {:?}",
            renewed.set_cookie
        );
        assert_eq!(store.load(&old).await.unwrap(), None);
        // The renew's create, and three deletes: the logout's, the renew's of the old id
        // (which found nothing) and the renew's of its new id.
        assert_eq!(backend.count(Op::Create), 1, "{paused:?}");
        assert_eq!(backend.count(Op::Delete), 3, "{paused:?}");
    }
}

#[tokio::test]
async fn type_errors_are_500_and_name_the_key() {
    let (app, _, _) = setup();
    let cookie = send(&app, "POST", "/set?n=text", None).await.cookie_pair();
    let res = send(&app, "GET", "/counter", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The body says nothing about the data.
    assert!(!res.body.contains("text"));

    let err = SessionError::Deserialize {
        key: "n".into(),
        expected: "u64",
    };
    assert_eq!(
        err.to_string(),
        "the value of session key `n` is not a valid `u64`"
    );

    let bad = Router::new()
        .route(
            "/bad",
            get(|session: Session| async move {
                let map: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
                session.insert("map", &map).await
            }),
        )
        .layer(SessionLayer::new(SessionStore::memory(), key()));
    let res = send(&bad, "GET", "/bad", None).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.set_cookie.is_empty());
}

#[tokio::test]
async fn extractor_without_layer_is_a_500_naming_the_layer() {
    let app = Router::new().route("/", get(|_s: Session| async { "" }));
    let res = send(&app, "GET", "/", None).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.body.contains("SessionLayer"), "{}", res.body);
}

#[test]
fn debug_output_hides_the_key() {
    let layer = SessionLayer::new(SessionStore::memory(), key());
    let text = format!("{layer:?}");
    assert!(text.contains("<redacted>"));
    assert!(!text.contains("0123456789abcdef"));
}
