//! Shared by the integration tests: the cookie key, and session-testkit's HTTP helpers bound to
//! an in-process `Router`. (The backend double is session-core's `testing::probe::ProbeBackend`.)
#![allow(dead_code)]

use axum::Router;
use session_axum::Key;
use session_core::SessionId;
pub use session_testkit::http::Answer;
use session_testkit::http::{open_cookie, request};
use tower::ServiceExt;

/// 64 bytes of key material, fed to `Key::from` on both the axum and the actix side.
pub const KEY_MATERIAL: [u8; 64] =
    *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn key() -> Key {
    Key::from(&KEY_MATERIAL)
}

/// Sends one request with an empty body through `app`, in-process.
pub async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>) -> Answer {
    let res = app
        .clone()
        .oneshot(request(method, uri, cookie, None))
        .await
        .unwrap();
    Answer::read(res).await
}

/// Opens a `name=value` cookie pair with the test key (what the server would read).
pub fn open(pair: &str) -> SessionId {
    SessionId::parse(&open_cookie(pair, &KEY_MATERIAL)).unwrap()
}

/// A configuration from `SESSION_REDIS_*`-style pairs, as the environment would give them.
pub fn from_env(vars: &[(&str, String)]) -> session_core::SessionConfig {
    session_core::SessionConfig::from_env_vars(vars.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .unwrap()
}

/// A multi-backend configuration: `(name, modes, setting)` per backend, in the
/// acs_redis_multi_sessions form (`modes` and `setting` as Python literal text).
pub fn multi(backends: &[(&str, &str, String)]) -> session_core::SessionConfig {
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

/// Runs `test` on a current-thread runtime inside a `LocalSet` (for `spawn_local`).
pub fn local(test: impl std::future::Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(tokio::task::LocalSet::new().run_until(test));
}

/// The cookie pair a browser keeps after `answers`' `Set-Cookie` headers, applied in that
/// order over the pair it sent: a live cookie replaces it, a removal (`Max-Age=0`) drops it,
/// an answer without one leaves it.
pub fn jar_after(sent: &str, answers: &[&Answer]) -> Option<String> {
    let mut jar = Some(sent.to_owned());
    for set in answers.iter().flat_map(|answer| &answer.set_cookie) {
        jar = if set.contains("Max-Age=0") {
            None
        } else {
            Some(set.split(';').next().unwrap().to_owned())
        };
    }
    jar
}
