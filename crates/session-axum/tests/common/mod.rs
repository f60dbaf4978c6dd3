//! Shared by the integration tests: the cookie key and a small request helper. (The backend
//! double is session-core's `testing::probe::ProbeBackend`.)
#![allow(dead_code)]

use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use session_axum::Key;
use session_core::SessionId;
use tower::ServiceExt;

/// 64 bytes of key material, fed to `Key::from` on both the axum and the actix side.
pub const KEY_MATERIAL: [u8; 64] =
    *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn key() -> Key {
    Key::from(&KEY_MATERIAL)
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub set_cookie: Vec<String>,
    pub body: String,
}

impl Answer {
    /// The `name=value` pair a browser would send back, from the only `Set-Cookie`.
    pub fn cookie_pair(&self) -> String {
        assert_eq!(
            self.set_cookie.len(),
            1,
            "expected one Set-Cookie: {self:?}"
        );
        self.set_cookie[0].split(';').next().unwrap().to_owned()
    }
}

pub async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Opens a `name=value` cookie pair with the test key (what the server would read).
pub fn open(pair: &str) -> SessionId {
    let cookie = cookie::Cookie::parse_encoded(pair.to_owned()).unwrap();
    let jar = cookie::CookieJar::new();
    let opened = jar.private(&key()).decrypt(cookie).expect("cookie opens");
    SessionId::parse(opened.value()).unwrap()
}
