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
