//! `request_scope` missing, or wrapped inside `SessionMiddleware` (actix's last `wrap` is the
//! outermost, so the natural reading order gets it backwards): `update` then replaces the whole
//! state and concurrent requests lose each other's changes, and outages answer 500. The store
//! says so once, with a warning naming `request_scope`, on a real Redis server.

mod common;

use std::sync::{Arc, Mutex};

use common::{session_cookie, set};

use actix_session::SessionMiddleware;
use actix_web::{
    body::MessageBody,
    cookie::Key,
    dev::{Service, ServiceResponse},
    middleware::from_fn,
    test, web, App,
};
use session_actix::{request_scope, ActixStore};
use session_core::{backends::redis::RedisBackend, SessionConfig, SessionStore};
use session_testkit::RedisServer;
use tracing::Level;
use tracing_subscriber::{layer::Context, prelude::*, Layer};

/// Every WARN-or-worse event of ours, as its fields in text.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() <= Level::WARN && meta.target().starts_with("session_actix") {
            let mut text = String::new();
            event.record(&mut Fields(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
}

/// How the app under test wraps `request_scope`.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Outside,
    Inside,
    Missing,
}

/// Three requests of one session: create, then two changes.
async fn three_requests<S, B>(app: &S)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(
        app,
        test::TestRequest::get()
            .uri("/set?key=a&value=1")
            .to_request(),
    )
    .await;
    let cookie = session_cookie(&res).expect("a session");
    for value in ["2", "3"] {
        let req = test::TestRequest::get()
            .uri(&format!("/set?key=a&value={value}"))
            .cookie(cookie.clone())
            .to_request();
        assert!(test::call_service(app, req).await.status().is_success());
    }
}

/// [`three_requests`] through an app wrapped as `scope` says; the warnings of ours they logged.
async fn warnings_of(core: &SessionStore, scope: Scope) -> Vec<String> {
    let warnings = Warnings::default();
    let _guard = tracing_subscriber::registry()
        .with(warnings.clone())
        .set_default();
    let sessions = SessionMiddleware::new(ActixStore::new(core.clone()), Key::generate());
    let app = App::new().route("/set", web::get().to(set));
    match scope {
        Scope::Outside => {
            let app = app.wrap(sessions).wrap(from_fn(request_scope));
            three_requests(&test::init_service(app).await).await
        }
        Scope::Inside => {
            let app = app.wrap(from_fn(request_scope)).wrap(sessions);
            three_requests(&test::init_service(app).await).await
        }
        Scope::Missing => three_requests(&test::init_service(app.wrap(sessions)).await).await,
    }
    let seen = warnings.0.lock().unwrap().clone();
    seen
}

#[actix_web::test]
async fn a_missing_or_misplaced_request_scope_is_reported_once() {
    let redis = RedisServer::start();
    let config = SessionConfig {
        url: Some(redis.url()),
        ..SessionConfig::default()
    };
    let core = SessionStore::new(RedisBackend::from_config(&config).unwrap());

    assert_eq!(
        warnings_of(&core, Scope::Outside).await,
        Vec::<String>::new()
    );
    for scope in [Scope::Inside, Scope::Missing] {
        let seen = warnings_of(&core, scope).await;
        assert_eq!(seen.len(), 1, "{scope:?}: {seen:?}");
        assert!(seen[0].contains("request_scope"), "{scope:?}: {seen:?}");
    }
}
