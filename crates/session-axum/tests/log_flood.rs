//! A hostile `Cookie` header (thousands of cookies of our name) costs one warning line and a
//! normal answer, never a line per cookie (issue 9, item 2: one 120 KB header used to write
//! 20,001 WARN lines).

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{http::StatusCode, routing::get, Router};
use common::send;
use session_axum::{Session, SessionError, SessionLayer};
use session_core::SessionStore;
use tracing::{
    field::{Field, Visit},
    Level,
};
use tracing_subscriber::{layer::Context, prelude::*, Layer};

/// Every event at WARN or above, as its fields in text: what an operator's log would get.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() <= Level::WARN {
            let mut line = String::new();
            event.record(&mut Text(&mut line));
            self.0.lock().unwrap().push(line);
        }
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn counter(session: Session) -> Result<String, SessionError> {
    let n = session.get::<u64>("n").await?.unwrap_or(0) + 1;
    session.insert("n", &n).await?;
    Ok(n.to_string())
}

fn app() -> Router {
    let layer = SessionLayer::new(SessionStore::memory(), common::key());
    Router::new().route("/counter", get(counter)).layer(layer)
}

/// 20,000 copies of `id=<value>`: about 120 KB with the value of the report.
fn flood(value: &str) -> String {
    vec![format!("id={value}"); 20_000].join("; ")
}

#[tokio::test]
async fn twenty_thousand_duplicate_cookies_log_one_warning_and_answer_normally() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let app = app();

    // A value we can look for: no cookie value may reach the log.
    let header = flood("FLOODVALUE");
    assert!(header.len() > 200_000, "{}", header.len());
    let started = Instant::now();
    let res = send(&app, "GET", "/counter", Some(&header)).await;
    let elapsed = started.elapsed();
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "1"));
    let lines = capture.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("skipped=19992"), "{lines:?}");
    assert!(!lines[0].contains("FLOODVALUE"), "{lines:?}");
    // Linear work: 20,000 cookies parse in milliseconds; a quadratic pass would take far longer.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");

    // The 120 KB shape of the report (`id=x`), and a live session cookie in front of the flood:
    // the session is found, and the flood after it still costs one line.
    capture.0.lock().unwrap().clear();
    let first = send(&app, "GET", "/counter", None).await;
    let pair = first.cookie_pair();
    let res = send(
        &app,
        "GET",
        "/counter",
        Some(&format!("{pair}; {}", flood("x"))),
    )
    .await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "2"));
    let lines = capture.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (_, sealed) = pair.split_once('=').unwrap();
    assert!(!lines[0].contains(sealed), "{lines:?}");
}

#[tokio::test]
async fn one_valid_cookie_logs_nothing() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let app = app();
    let pair = send(&app, "GET", "/counter", None).await.cookie_pair();
    let res = send(&app, "GET", "/counter", Some(&pair)).await;
    assert_eq!(res.body, "2");
    assert_eq!(capture.lines(), Vec::<String>::new());
}
