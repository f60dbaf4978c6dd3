//! A hostile `Cookie` header (20,000 cookies of our name, about 120 KB) under actix-session's
//! middleware and [`request_scope`]: a normal answer, and a bounded number of warning lines,
//! none of them ours (issue 9, item 2). actix-session reads one cookie of the name and logs
//! on its own; `ActixStore` and `request_scope` log nothing per cookie.

mod common;

use std::sync::{Arc, Mutex};

use common::{id_in, session_cookie};

use actix_session::{Session, SessionMiddleware};
use actix_web::{cookie::Key, middleware::from_fn, test, web, App, HttpResponse};
use session_actix::{request_scope, ActixStore};
use session_core::SessionStore;
use tracing::Level;
use tracing_subscriber::{layer::Context, prelude::*, Layer};

/// The target of every event at WARN or above: whose line it is.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() <= Level::WARN {
            let target = event.metadata().target().to_owned();
            self.0.lock().unwrap().push(target);
        }
    }
}

async fn counter(session: Session) -> actix_web::Result<HttpResponse> {
    let n = session.get::<i64>("n")?.unwrap_or(0) + 1;
    session.insert("n", n)?;
    Ok(HttpResponse::Ok().body(n.to_string()))
}

#[actix_web::test]
async fn twenty_thousand_duplicate_cookies_log_a_bounded_number_of_lines_none_ours() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let store = ActixStore::new(SessionStore::memory());
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(store, Key::generate()))
            .wrap(from_fn(request_scope))
            .route("/counter", web::get().to(counter)),
    )
    .await;

    let mut lines = Vec::new();
    for count in [1, 20_000] {
        capture.0.lock().unwrap().clear();
        let header = vec!["id=x"; count].join("; ");
        let req = test::TestRequest::get()
            .uri("/counter")
            .insert_header(("cookie", header))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert!(
            res.status().is_success(),
            "{count} cookies: {}",
            res.status()
        );
        assert_eq!(test::read_body(res).await, "1");
        let seen = capture.0.lock().unwrap().clone();
        assert!(
            seen.iter().all(|target| !target.starts_with("session_")),
            "{seen:?}"
        );
        lines.push(seen.len());
    }
    // The same few lines for one cookie as for 20,000: nothing grows with the header.
    assert_eq!(lines[0], lines[1], "{lines:?}");
    assert!(lines[1] <= 3, "{lines:?}");
}

/// Every event with its level, as its fields in text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<(Level, String)>>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Events {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut text = String::new();
        event.record(&mut Fields(&mut text));
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, text));
    }
}

/// A corrupt stored session (on a real Redis server) counts as no session: the request answers
/// normally, as a fresh session, with one warning line of ours; no line at any level holds the
/// session id or the stored bytes.
#[actix_web::test]
async fn a_corrupt_stored_session_logs_one_warning_and_no_secret() {
    let events = Events::default();
    let _guard = tracing_subscriber::registry()
        .with(events.clone())
        .set_default();
    let redis = session_testkit::RedisServer::start();
    let config = session_core::SessionConfig {
        url: Some(redis.url()),
        ..session_core::SessionConfig::default()
    };
    let core = SessionStore::new(
        session_core::backends::redis::RedisBackend::from_config(&config).unwrap(),
    );
    let key = Key::generate();
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(
                ActixStore::new(core.clone()),
                key.clone(),
            ))
            .wrap(from_fn(request_scope))
            .route("/counter", web::get().to(counter)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/counter").to_request()).await;
    let cookie = session_cookie(&res).unwrap();
    let id = id_in(&cookie, &key);
    let damaged = r#"v1:0000000000000001:{"=n":SECRETVALUE"#;
    let _: () = redis.cmd(&["SET", &format!("session:{}", id.as_str()), damaged]);

    events.0.lock().unwrap().clear();
    let req = test::TestRequest::get()
        .uri("/counter")
        .cookie(cookie.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(test::read_body(res).await, "1");
    let lines = events.0.lock().unwrap().clone();
    let warnings: Vec<_> = lines
        .iter()
        .filter(|(level, _)| *level <= Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].1.contains("unreadable"), "{warnings:?}");
    for (_, line) in &lines {
        for secret in [id.as_str(), cookie.value(), "SECRETVALUE"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}

/// [`Events`], plus the fields of every span as it is made or recorded: what a `fmt` log
/// prints as each line's context.
#[derive(Clone, Default)]
struct EventsAndSpans(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for EventsAndSpans {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut text = String::new();
        event.record(&mut Fields(&mut text));
        self.0.lock().unwrap().push(text);
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        let mut text = format!("span {}", attrs.metadata().name());
        attrs.record(&mut Fields(&mut text));
        self.0.lock().unwrap().push(text);
    }

    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: Context<'_, S>,
    ) {
        let mut text = String::from("span record");
        values.record(&mut Fields(&mut text));
        self.0.lock().unwrap().push(text);
    }
}

/// The README's "passwords, session ids and session data never reach logs, error messages or
/// `Debug` output", through actix-session and `request_scope` (the axum layer has its own
/// test, `no_event_at_any_level_holds_a_secret`): every event and span at every level, TRACE
/// included, and the errors the middleware hands the server, through a session's life on a
/// Redis server that needs a password: a login that renews the id, writes, a tampered cookie,
/// an outage (the server stopped: 503) and its recovery, a logout, and a store built with a
/// wrong password. None holds the password, a session id, a cookie value or a session value.
#[actix_web::test]
async fn no_event_span_or_error_holds_a_secret() {
    let events = EventsAndSpans::default();
    let _guard = tracing_subscriber::registry()
        .with(events.clone())
        .set_default();
    let password = "PASSWORDMARKER";
    let redis = session_testkit::RedisServer::start_with(
        session_testkit::ServerOptions::new().password(password),
    );
    let config = session_core::SessionConfig::builder()
        .set("session_redis_host", "127.0.0.1")
        .set("session_redis_port", &redis.port().to_string())
        .set("session_redis_password", password)
        .set("session_redis_socket_timeout", "0.5")
        .build()
        .unwrap();
    let core = SessionStore::from_config(&config).await.unwrap();
    let key = Key::generate();
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(
                ActixStore::new(core.clone()).sliding_expiry(std::time::Duration::from_secs(600)),
                key.clone(),
            ))
            .wrap(from_fn(request_scope))
            .route("/counter", web::get().to(counter))
            .route(
                "/login",
                web::get().to(|session: Session| async move {
                    session.insert("user", "VALUEMARKER")?;
                    session.renew();
                    Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
                }),
            )
            .route(
                "/logout",
                web::get().to(|session: Session| async move {
                    session.purge();
                    HttpResponse::Ok().finish()
                }),
            ),
    )
    .await;
    let get = |uri: &str, cookie: Option<&actix_web::cookie::Cookie<'static>>| {
        let mut req = test::TestRequest::get().uri(uri);
        if let Some(cookie) = cookie {
            req = req.cookie(cookie.clone());
        }
        req.to_request()
    };
    let mut errors = Vec::new();

    let res = test::call_service(&app, get("/counter", None)).await;
    let first = session_cookie(&res).unwrap();
    let res = test::call_service(&app, get("/login", Some(&first))).await;
    assert!(res.status().is_success(), "{}", res.status());
    let login = session_cookie(&res).unwrap();
    let res = test::call_service(&app, get("/counter", Some(&login))).await;
    assert_eq!(test::read_body(res).await, "2");
    let mut tampered = login.clone();
    let mut value = tampered.value().to_owned();
    value.replace_range(4..6, "AA");
    tampered.set_value(value);
    let res = test::call_service(&app, get("/counter", Some(&tampered))).await;
    assert_eq!(
        test::read_body(res).await,
        "1",
        "a tampered cookie is a fresh session"
    );

    redis.stop();
    let err = test::try_call_service(&app, get("/counter", Some(&login)))
        .await
        .expect_err("an outage is an error");
    assert_eq!(
        err.error_response().status(),
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    );
    errors.push(format!("{err} {err:?}"));
    redis.restart();
    // The server restarted empty: the first request after it may meet the old connection.
    let mut back = None;
    for _ in 0..50 {
        match test::try_call_service(&app, get("/login", None)).await {
            Ok(res) if res.status().is_success() => {
                back = Some(session_cookie(&res).unwrap());
                break;
            }
            Ok(res) => errors.push(format!("{:?}", res.status())),
            Err(err) => errors.push(format!("{err} {err:?}")),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let back = back.expect("recovered");
    let res = test::call_service(&app, get("/logout", Some(&back))).await;
    assert!(res.status().is_success(), "{}", res.status());

    let wrong = session_core::SessionConfig::builder()
        .set("session_redis_host", "127.0.0.1")
        .set("session_redis_port", &redis.port().to_string())
        .set("session_redis_password", "WRONGPASSWORDMARKER")
        .build()
        .unwrap();
    match SessionStore::from_config(&wrong).await {
        Ok(store) => {
            let err = store.load(&id_in(&back, &key)).await.unwrap_err();
            errors.push(format!("{err} {err:?}"));
        }
        Err(err) => errors.push(format!("{err} {err:?}")),
    }

    let lines = events.0.lock().unwrap().clone();
    assert!(!lines.is_empty());
    let mut secrets = vec![
        password.to_owned(),
        "WRONGPASSWORDMARKER".to_owned(),
        "VALUEMARKER".to_owned(),
        tampered.value().to_owned(),
    ];
    for cookie in [&first, &login, &back] {
        secrets.push(id_in(cookie, &key).as_str().to_owned());
        secrets.push(cookie.value().to_owned());
    }
    for line in lines.iter().chain(&errors) {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "{secret} in {line}");
        }
    }
}
