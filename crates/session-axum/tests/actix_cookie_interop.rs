//! One cookie serves actix-web and axum: a cookie sealed by actix-web's private jar (cookie 0.16,
//! written as actix-session's middleware writes it) opens in our layer, and ours opens in actix's
//! jar (read as actix-web reads request cookies), given the same 64 bytes of key material.

mod common;

use axum::{http::StatusCode, routing::get, Router};
use common::{send, KEY_MATERIAL};
use session_axum::{Session, SessionError, SessionLayer};
use session_core::{SessionId, SessionState, SessionStore};

use actix_web::cookie as actix_cookie;

/// What actix-session's `set_session_cookie` does with its default configuration.
fn actix_seal(id: &SessionId) -> String {
    let key = actix_cookie::Key::from(&KEY_MATERIAL);
    let mut cookie = actix_cookie::Cookie::new("id", id.as_str().to_owned());
    cookie.set_secure(true);
    cookie.set_http_only(true);
    cookie.set_same_site(actix_cookie::SameSite::Lax);
    cookie.set_path("/");
    let mut jar = actix_cookie::CookieJar::new();
    jar.private_mut(&key).add(cookie);
    let sealed = jar.delta().next().unwrap().clone();
    sealed.encoded().to_string()
}

/// What actix-session's `extract_session_key` does with a request's `Cookie` header.
fn actix_open(cookie_header: &str) -> Option<String> {
    let key = actix_cookie::Key::from(&KEY_MATERIAL);
    let cookie = cookie_header
        .split(';')
        .filter_map(|s| actix_cookie::Cookie::parse_encoded(s.trim().to_owned()).ok())
        .find(|c| c.name() == "id")?;
    let mut jar = actix_cookie::CookieJar::new();
    jar.add_original(cookie);
    jar.private(&key).get("id").map(|c| c.value().to_owned())
}

fn app(store: SessionStore) -> Router {
    app_with(store, |l| l)
}

fn app_with(store: SessionStore, edit: impl FnOnce(SessionLayer) -> SessionLayer) -> Router {
    Router::new()
        .route(
            "/whoami",
            get(|session: Session| async move {
                Ok::<_, SessionError>(session.get::<String>("user").await?.unwrap_or_default())
            }),
        )
        .route(
            "/login",
            get(|session: Session| async move {
                session.insert("user", "bob").await?;
                session.renew().await
            }),
        )
        .layer(edit(SessionLayer::new(
            store,
            session_axum::Key::from(&KEY_MATERIAL),
        )))
}

#[tokio::test]
async fn actix_cookie_opens_in_axum() {
    let store = SessionStore::memory();
    // actix-session stores values as JSON text: "alice" is stored as "\"alice\"".
    let state = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    let id = store.create(&state, None).await.unwrap();
    let set_cookie = actix_seal(&id);
    let pair = set_cookie.split(';').next().unwrap();
    let res = send(
        &app(store),
        "GET",
        "/whoami",
        Some(&format!("other=1; {pair}")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "alice");
}

#[tokio::test]
async fn axum_cookie_opens_in_actix() {
    let store = SessionStore::memory();
    let res = send(&app(store.clone()), "GET", "/login", None).await;
    let pair = res.cookie_pair();
    let opened = actix_open(&format!("a=b; {pair}")).expect("actix opens our cookie");
    let id = SessionId::parse(&opened).unwrap();
    let state = store.load(&id).await.unwrap().unwrap();
    assert_eq!(state["user"], "\"bob\"");

    // The same attributes actix-session writes by default (apart from Secure, asserted in the
    // layer tests), parsed by actix's cookie crate.
    let c = actix_cookie::Cookie::parse_encoded(res.set_cookie[0].clone()).unwrap();
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site(), Some(actix_cookie::SameSite::Lax));
    assert_eq!(c.path(), Some("/"));

    // A different key opens nothing.
    let other = actix_cookie::Key::from(&[9u8; 64]);
    let mut jar = actix_cookie::CookieJar::new();
    jar.add_original(actix_cookie::Cookie::parse_encoded(pair.clone()).unwrap());
    assert!(jar.private(&other).get("id").is_none());
}

/// Signed cookies (actix-session's `CookieContentSecurity::Signed`), both ways: actix's signed
/// jar (cookie 0.16) and our `CookieSecurity::Signed` layer (cookie 0.18) verify each other's
/// cookies with the same key, and refuse one whose id was changed.
#[tokio::test]
async fn signed_cookies_both_ways() {
    let store = SessionStore::memory();
    let signed_app = |store: SessionStore| {
        app_with(store, |l| {
            l.with_cookie_security(session_axum::CookieSecurity::Signed)
        })
    };
    let key = actix_cookie::Key::from(&KEY_MATERIAL);

    // actix → axum.
    let state = SessionState::from([("user".to_owned(), "\"alice\"".to_owned())]);
    let id = store.create(&state, None).await.unwrap();
    let mut jar = actix_cookie::CookieJar::new();
    jar.signed_mut(&key)
        .add(actix_cookie::Cookie::new("id", id.as_str().to_owned()));
    let pair = jar.delta().next().unwrap().encoded().to_string();
    let res = send(&signed_app(store.clone()), "GET", "/whoami", Some(&pair)).await;
    assert_eq!(res.body, "alice");
    // The private layer does not take a signed cookie (nor the reverse).
    let res = send(&app(store.clone()), "GET", "/whoami", Some(&pair)).await;
    assert_eq!(res.body, "");

    // axum → actix.
    let res = send(&signed_app(store.clone()), "GET", "/login", None).await;
    let pair = res.cookie_pair();
    let mut jar = actix_cookie::CookieJar::new();
    jar.add_original(actix_cookie::Cookie::parse_encoded(pair.clone()).unwrap());
    let opened = jar
        .signed(&key)
        .get("id")
        .expect("actix verifies our signed cookie");
    let id = SessionId::parse(opened.value()).unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap()["user"], "\"bob\"");

    // A changed id fails the signature on both sides.
    let forged = format!(
        "{}{}",
        &pair[..pair.len() - 43],
        SessionId::generate().as_str()
    );
    let mut jar = actix_cookie::CookieJar::new();
    jar.add_original(actix_cookie::Cookie::parse_encoded(forged.clone()).unwrap());
    assert!(jar.signed(&key).get("id").is_none());
    let res = send(&signed_app(store), "GET", "/whoami", Some(&forged)).await;
    assert_eq!(res.body, "");
}
