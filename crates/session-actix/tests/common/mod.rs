//! Shared by the integration tests: reading the session cookie of a response and the id it
//! seals.
#![allow(dead_code)]

use actix_web::{
    cookie::{Cookie, CookieJar, Key},
    dev::ServiceResponse,
};
use session_core::SessionId;

/// The session cookie (`id`) a response sets, if any.
pub fn session_cookie<B>(res: &ServiceResponse<B>) -> Option<Cookie<'static>> {
    res.response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned())
}

/// The session id inside a cookie, decrypted with the app's key.
pub fn id_in(cookie: &Cookie<'static>, key: &Key) -> SessionId {
    let mut jar = CookieJar::new();
    jar.add_original(cookie.clone());
    let plain = jar.private(key).get("id").expect("cookie decrypts");
    SessionId::parse(plain.value()).expect("cookie holds a session id")
}
