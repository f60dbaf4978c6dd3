//! `ActixStore` under actix-session's `SessionMiddleware`, over the in-memory core store.
//!
//! The core store's backend is session-core's `ProbeBackend` over the real memory backend: it
//! records which backend calls a request made (to check "one round trip per trait method") and
//! can be switched to answer like a corrupt or unreachable store, to test our own error mapping.

mod common;

use std::time::Duration;

use common::{answer, id_in, purge, session_cookie, set, set_later, Gate, KeyValue};

use actix_session::{config::PersistentSession, Session, SessionMiddleware};
use actix_web::{
    body::MessageBody,
    cookie::{time, Cookie, CookieJar, Key},
    dev::{Service, ServiceResponse},
    http::StatusCode,
    middleware::{from_fn, Condition},
    test, web, App, HttpResponse,
};
use session_actix::{request_scope, ActixStore};
use session_core::{
    testing::probe::{Call, Fault, Op, ProbeBackend},
    SessionId, SessionState, SessionStore,
};

const SESSION_TTL_SECS: i64 = 3600;

fn probed_store() -> (SessionStore, ProbeBackend) {
    let probe = ProbeBackend::memory();
    (SessionStore::new(probe.clone()), probe)
}

async fn get(session: Session, q: web::Query<KeyValue>) -> actix_web::Result<HttpResponse> {
    let value = session.get::<String>(&q.key)?;
    Ok(HttpResponse::Ok().body(value.unwrap_or_else(|| "none".into())))
}

async fn renew(session: Session) -> HttpResponse {
    session.renew();
    HttpResponse::Ok().finish()
}

/// Loads the session, waits for the test's signal, then renews it (a login that raises
/// privileges): the window in which a concurrent logout acts.
async fn renew_later(session: Session, gate: web::Data<Gate>) -> actix_web::Result<HttpResponse> {
    let _ = session.get::<String>("user")?;
    gate.pass().await;
    session.renew();
    Ok(HttpResponse::Ok().finish())
}

/// The app under test. `scoped`: whether `request_scope` wraps the session middleware.
async fn service(
    store: ActixStore,
    key: Key,
    scoped: bool,
    go: web::Data<Gate>,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(
        App::new()
            .app_data(go)
            .wrap(
                SessionMiddleware::builder(store, key)
                    .session_lifecycle(
                        PersistentSession::default()
                            .session_ttl(time::Duration::seconds(SESSION_TTL_SECS)),
                    )
                    .build(),
            )
            .wrap(Condition::new(scoped, from_fn(request_scope)))
            .route("/get", web::get().to(get))
            .route("/set", web::get().to(set))
            .route("/set-later", web::get().to(set_later))
            .route("/renew", web::get().to(renew))
            .route("/renew-later", web::get().to(renew_later))
            .route("/purge", web::get().to(purge)),
    )
    .await
}

/// A cookie that decrypts to `id` under `key`, as the middleware would have set it.
fn cookie_for(id: &SessionId, key: &Key) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    jar.private_mut(key)
        .add(Cookie::new("id", id.as_str().to_owned()));
    jar.get("id").unwrap().clone()
}

fn req(uri: &str, cookie: Option<&Cookie<'static>>) -> actix_http::Request {
    let mut r = test::TestRequest::get().uri(uri);
    if let Some(c) = cookie {
        r = r.cookie(c.clone());
    }
    r.to_request()
}

async fn body<B: MessageBody>(res: ServiceResponse<B>) -> String {
    String::from_utf8(test::read_body(res).await.to_vec()).unwrap()
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

/// The set-up most tests share: the app over a probed memory store, and a session holding
/// `user=alice` made through it.
struct WithSession<S> {
    app: S,
    core: SessionStore,
    probe: ProbeBackend,
    key: Key,
    /// The cookie of the `user=alice` session.
    cookie: Cookie<'static>,
}

/// Builds [`WithSession`]; `scoped` and `go` as for [`service`].
async fn with_session(
    scoped: bool,
    go: web::Data<Gate>,
) -> WithSession<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let (core, probe) = probed_store();
    let key = Key::generate();
    let app = service(ActixStore::new(core.clone()), key.clone(), scoped, go).await;
    let res = test::call_service(&app, req("/set?key=user&value=alice", None)).await;
    let cookie = session_cookie(&res).unwrap();
    WithSession {
        app,
        core,
        probe,
        key,
        cookie,
    }
}

#[actix_web::test]
async fn insert_then_get_through_the_cookie() {
    let (core, probe) = probed_store();
    let key = Key::generate();
    let app = service(
        ActixStore::new(core.clone()),
        key.clone(),
        true,
        Default::default(),
    )
    .await;

    let res = test::call_service(&app, req("/set?key=user&value=alice", None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = session_cookie(&res).expect("a new session sets its cookie");
    assert_eq!(
        cookie.max_age(),
        Some(time::Duration::seconds(SESSION_TTL_SECS))
    );
    assert_eq!(probe.take_calls(), vec![Call::Create(secs(3600))]);

    // The cookie is private: its value is not the id.
    let id = id_in(&cookie, &key);
    assert!(!cookie.value().contains(id.as_str()));
    assert_eq!(
        core.load(&id).await.unwrap(),
        Some(SessionState::from([("user".into(), "\"alice\"".into())]))
    );
    probe.take_calls();

    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert!(session_cookie(&res).is_none(), "a read sets no cookie");
    assert_eq!(body(res).await, "alice");
    assert_eq!(
        probe.take_calls(),
        vec![Call::Load(None)],
        "a read is one load"
    );

    // A change is written as the changed key only (apply), in one call.
    let res = test::call_service(&app, req("/set?key=user&value=bob", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        probe.take_calls(),
        vec![Call::Load(None), Call::Apply(secs(3600))]
    );
    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(body(res).await, "bob");
}

#[actix_web::test]
async fn foreign_cookie_value_is_no_session_without_a_store_call() {
    let (core, probe) = probed_store();
    let key = Key::generate();
    let app = service(ActixStore::new(core), key.clone(), true, Default::default()).await;
    let mut jar = CookieJar::new();
    jar.private_mut(&key)
        .add(Cookie::new("id", "../../not-an-id"));
    let cookie = jar.get("id").unwrap().clone();
    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "none");
    assert_eq!(probe.take_calls(), vec![]);
}

#[actix_web::test]
async fn renew_moves_the_data_to_a_new_id() {
    let WithSession {
        app,
        core,
        key,
        cookie: old,
        ..
    } = with_session(true, Default::default()).await;

    let res = test::call_service(&app, req("/renew", Some(&old))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let new = session_cookie(&res).expect("renew sets a new cookie");
    let (old_id, new_id) = (id_in(&old, &key), id_in(&new, &key));
    assert_ne!(old_id, new_id);
    assert_eq!(
        core.load(&old_id).await.unwrap(),
        None,
        "the old id no longer loads"
    );

    let res = test::call_service(&app, req("/get?key=user", Some(&new))).await;
    assert_eq!(body(res).await, "alice");
    let res = test::call_service(&app, req("/get?key=user", Some(&old))).await;
    assert_eq!(body(res).await, "none");
}

#[actix_web::test]
async fn purge_deletes_the_session_and_expires_the_cookie() {
    let WithSession {
        app,
        core,
        key,
        cookie,
        ..
    } = with_session(true, Default::default()).await;

    let res = test::call_service(&app, req("/purge", Some(&cookie))).await;
    let removal = session_cookie(&res).expect("purge sends a removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(removal.max_age(), Some(time::Duration::ZERO));
    assert_eq!(core.load(&id_in(&cookie, &key)).await.unwrap(), None);

    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(body(res).await, "none", "the old cookie no longer works");
}

/// What [`race`] leaves for the test to check.
struct Race<S> {
    app: S,
    core: SessionStore,
    key: Key,
    /// The cookie of the session both racing requests carried.
    cookie: Cookie<'static>,
    /// The answer to the slow request: its status and session cookie.
    slow: (StatusCode, Option<Cookie<'static>>),
}

/// The set-up the race tests share: a session holding `user=alice`, then two requests with its
/// cookie at once. `slow` is a `/set-later` request: it loads the session and waits; `fast` runs
/// to completion (answering 200) before `slow` goes on to its write.
async fn race(
    scoped: bool,
    slow: &str,
    fast: &str,
) -> Race<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let go = web::Data::new(Gate::default());
    let WithSession {
        app,
        core,
        key,
        cookie,
        ..
    } = with_session(scoped, go.clone()).await;
    let (slow, ()) = tokio::join!(answer(&app, req(slow, Some(&cookie))), async {
        let res = test::call_service(&app, req(fast, Some(&cookie))).await;
        assert_eq!(res.status(), StatusCode::OK);
        go.go.notify_one();
    });
    Race {
        app,
        core,
        key,
        cookie,
        slow,
    }
}

/// A request that loaded the session before a concurrent logout must not bring it back: a
/// late write of its changes (with `request_scope` or without), or a renew, which moves the
/// loaded state to a new id (a login; with `request_scope`: without it, actix-session's
/// delete-then-save cannot be told from a new session's save, the documented limitation).
#[actix_web::test]
async fn writes_and_renews_after_concurrent_purge_do_not_resurrect() {
    for (scoped, slow) in [
        (true, "/set-later?key=n&value=1"),
        (false, "/set-later?key=n&value=1"),
        (true, "/renew-later"),
    ] {
        let renew = slow == "/renew-later";
        let Race {
            app,
            core,
            key,
            cookie,
            slow,
            ..
        } = race(scoped, slow, "/purge").await;
        if renew {
            // The renew stores nothing and sets no cookie: 409 (see races.rs).
            assert_eq!(slow, (StatusCode::CONFLICT, None));
            assert_eq!(core.load(&id_in(&cookie, &key)).await.unwrap(), None);
            continue;
        }
        assert_eq!(slow.0, StatusCode::OK, "scoped={scoped}");
        let handed_out = slow.1.expect("the late write answers with a cookie");
        let fresh = id_in(&handed_out, &key);
        assert_ne!(
            fresh,
            id_in(&cookie, &key),
            "the deleted id is not handed back"
        );
        assert_eq!(core.load(&id_in(&cookie, &key)).await.unwrap(), None);
        assert_eq!(
            core.load(&fresh).await.unwrap(),
            None,
            "nothing is stored under the new id"
        );
        let res = test::call_service(&app, req("/get?key=user", Some(&handed_out))).await;
        assert_eq!(body(res).await, "none");
    }
}

/// Without a logout in between, a renew moves the session (the check reads the delete's
/// answer, not a missing session in general).
#[actix_web::test]
async fn a_renew_moves_the_session_to_a_new_id() {
    let go = web::Data::new(Gate::default());
    go.go.notify_one();
    let WithSession {
        app,
        core,
        key,
        cookie,
        ..
    } = with_session(true, go).await;
    let res = test::call_service(&app, req("/renew-later", Some(&cookie))).await;
    let moved = id_in(&session_cookie(&res).expect("a new cookie"), &key);
    assert_ne!(moved, id_in(&cookie, &key));
    assert_eq!(
        core.load(&moved).await.unwrap().unwrap()["user"],
        "\"alice\""
    );
}

/// With `request_scope`, two concurrent requests changing different keys both land; without
/// it, actix-session's whole-state update loses one (the documented limitation).
#[actix_web::test]
async fn concurrent_writes_of_different_keys() {
    for scoped in [true, false] {
        let Race {
            core,
            key,
            cookie,
            slow,
            ..
        } = race(scoped, "/set-later?key=a&value=1", "/set?key=b&value=2").await;
        assert_eq!(slow.0, StatusCode::OK);
        let stored = core.load(&id_in(&cookie, &key)).await.unwrap().unwrap();
        assert_eq!(stored.get("a").map(String::as_str), Some("\"1\""));
        assert_eq!(stored.get("user").map(String::as_str), Some("\"alice\""));
        if scoped {
            assert_eq!(
                stored.get("b").map(String::as_str),
                Some("\"2\""),
                "field-level write"
            );
        } else {
            assert_eq!(
                stored.get("b"),
                None,
                "whole-state write loses the other key"
            );
        }
    }
}

#[actix_web::test]
async fn corrupt_session_loads_as_a_fresh_session() {
    let WithSession {
        app,
        probe,
        key,
        cookie,
        ..
    } = with_session(true, Default::default()).await;

    probe.fail(Op::Load, Some(Fault::Corrupt));
    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "none");

    // Writing starts a new session under a new id rather than updating the unreadable one.
    let res = test::call_service(&app, req("/set?key=user&value=bob", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let new = session_cookie(&res).expect("a fresh session gets a cookie");
    assert_ne!(id_in(&new, &key), id_in(&cookie, &key));
    probe.fail(Op::Load, None);
    let res = test::call_service(&app, req("/get?key=user", Some(&new))).await;
    assert_eq!(body(res).await, "bob");
}

#[actix_web::test]
async fn outage_is_503_with_request_scope() {
    let WithSession {
        app, probe, cookie, ..
    } = with_session(true, Default::default()).await;

    probe.set_down(true);
    for (uri, cookie) in [
        ("/get?key=user", Some(&cookie)),  // load fails
        ("/set?key=user&value=bob", None), // save fails
        ("/purge", Some(&cookie)),         // load fails before delete
    ] {
        // Errors become responses in the server; the test service hands them back as they are.
        let err = test::try_call_service(&app, req(uri, cookie))
            .await
            .err()
            .expect(uri);
        let res = err.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(res.cookies().next().is_none());
        let text = actix_web::body::to_bytes(res.into_body()).await.unwrap();
        // The axum layer's words (session-axum `SessionError`), so a client of both
        // services behind one site reads one answer.
        assert_eq!(
            text, "session store unavailable, please retry later",
            "{uri}"
        );
        assert!(
            format!("{err:?}").contains("unavailable"),
            "the cause is kept for logs"
        );
    }

    probe.set_down(false);
    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "alice", "no data lost during the outage");
}

#[actix_web::test]
async fn outage_without_request_scope_is_actix_sessions_500() {
    let (core, probe) = probed_store();
    let app = service(
        ActixStore::new(core),
        Key::generate(),
        false,
        Default::default(),
    )
    .await;
    probe.set_down(true);
    let err = test::try_call_service(&app, req("/set?key=user&value=bob", None))
        .await
        .err()
        .expect("an outage is an error");
    assert_eq!(
        err.error_response().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[actix_web::test]
async fn sliding_expiry_touches_in_the_load_round_trip() {
    let (core, probe) = probed_store();
    let key = Key::generate();
    let store = ActixStore::new(core).sliding_expiry(Duration::from_secs(3600));
    let app = service(store, key.clone(), true, Default::default()).await;
    let res = test::call_service(&app, req("/set?key=user&value=alice", None)).await;
    let cookie = session_cookie(&res).unwrap();
    probe.take_calls();

    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(body(res).await, "alice");
    assert_eq!(probe.take_calls(), vec![Call::Load(secs(3600))]);
}

#[actix_web::test]
async fn key_expire_wins_over_actix_ttl() {
    let (core, probe) = probed_store();
    let core = core.with_key_expire(Some(Duration::from_secs(60)));
    let key = Key::generate();
    let store = ActixStore::new(core).sliding_expiry(Duration::from_secs(3600));
    let app = service(store, key.clone(), true, Default::default()).await;
    let res = test::call_service(&app, req("/set?key=user&value=alice", None)).await;
    let cookie = session_cookie(&res).unwrap();
    let res = test::call_service(&app, req("/set?key=user&value=bob", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        probe.take_calls(),
        // key_expire's 60 s, not actix's hour: by the sliding load, and again by the write
        // (on Redis a `PEXPIRE` in the write's own round trip, cheaper than the script
        // that keeping the expiry takes).
        vec![
            Call::Create(secs(60)),
            Call::Load(secs(60)),
            Call::Apply(secs(60))
        ]
    );
}

#[actix_web::test]
async fn tampered_cookie_is_a_fresh_session() {
    let WithSession {
        app,
        probe,
        mut cookie,
        ..
    } = with_session(true, Default::default()).await;
    let mut value = cookie.value().to_owned();
    let last = value.pop().unwrap();
    value.push(if last == 'A' { 'B' } else { 'A' });
    cookie.set_value(value);
    probe.take_calls();
    let res = test::call_service(&app, req("/get?key=user", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, "none");
    assert_eq!(probe.take_calls(), vec![]);
    // A cookie made with a valid id but another key is foreign too.
    let foreign = cookie_for(&SessionId::generate(), &Key::generate());
    let res = test::call_service(&app, req("/get?key=user", Some(&foreign))).await;
    assert_eq!(body(res).await, "none");
}

/// A session shared with an axum service whose own deadline (`Expiry::AtDateTime`, stored
/// under `session_core::EXPIRY_KEY`) has passed is over through actix too, whatever TTL the
/// store kept (`session_redis_key_expire` wins over the deadline on every write): no session,
/// and it is deleted. It was served, logged in, until its store TTL ended. A deadline still
/// ahead changes nothing.
#[actix_web::test]
async fn a_shared_session_past_its_deadline_is_not_served() {
    let (core, _probe) = probed_store();
    let core = core.with_key_expire(Some(Duration::from_secs(600)));
    let key = Key::generate();
    let app = service(
        ActixStore::new(core.clone()),
        key.clone(),
        true,
        web::Data::new(Gate::default()),
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (at, served) in [(now - 1, false), (now + 3600, true)] {
        let state = SessionState::from([
            ("user".to_owned(), "\"alice\"".to_owned()),
            (
                session_core::EXPIRY_KEY.to_owned(),
                format!(r#"{{"at_unix":{at}}}"#),
            ),
        ]);
        let id = core.create(&state, None).await.unwrap();
        let res =
            test::call_service(&app, req("/get?key=user", Some(&cookie_for(&id, &key)))).await;
        assert_eq!(res.status(), StatusCode::OK);
        let answer = body(res).await;
        assert_eq!(answer == "alice", served, "deadline {at}: {answer}");
        assert_eq!(
            core.load(&id).await.unwrap().is_some(),
            served,
            "deadline {at}"
        );
    }
}
