//! The actix demo's HTTP contract, over real HTTP on a loopback port.
//!
//! Every check is a function taking the `SessionStore` to run the demo on, so the same checks
//! run against the memory store here and against Redis or the file store (add a line to
//! `contract_tests!` at the bottom with another store expression).

mod common;

use actix_web::{
    cookie::{Cookie, CookieJar, Key},
    dev::ServerHandle,
};
use axum::http::StatusCode;
use session_core::{testing::probe::ProbeBackend, SessionId, SessionState, SessionStore};
use session_e2e::{actix_app::ActixDemo, COOKIE_NAME};
use session_testkit::http::open_cookie;

/// A fixed test key, so the tests can open the cookies the demo sets.
const KEY_MATERIAL: &[u8; 64] = b"test-only cookie key material: 64 bytes, never use it in prod!!!";

/// A demo running in-process on a free loopback port.
struct Demo {
    base: String,
    handle: ServerHandle,
    store: SessionStore,
    key: Key,
}

/// What one response said: status, body and the session cookie it set (if any).
struct Answer {
    status: StatusCode,
    body: String,
    cookie: Option<Cookie<'static>>,
}

impl Demo {
    async fn start(store: SessionStore) -> Demo {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let server = ActixDemo::new(store.clone(), KEY_MATERIAL)
            .unwrap()
            .workers(1)
            .serve(listener)
            .expect("start the demo");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Demo {
            base: format!("http://{addr}"),
            handle,
            store,
            key: Key::from(KEY_MATERIAL),
        }
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        form: Option<&str>,
        cookie: Option<&Cookie<'static>>,
    ) -> Answer {
        let pair = cookie.map(|c| format!("{}={}", c.name(), c.value()));
        let url = format!("{}{path}", self.base);
        let res = common::checks::send(method, &url, pair.as_deref(), form).await;
        let cookie = res
            .set_cookie
            .iter()
            .filter_map(|v| Cookie::parse(v.clone()).ok())
            .find(|c| c.name() == COOKIE_NAME);
        Answer {
            status: res.status,
            body: res.body,
            cookie,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&Cookie<'static>>) -> Answer {
        self.send("GET", path, None, cookie).await
    }

    async fn post(&self, path: &str, form: &str, cookie: Option<&Cookie<'static>>) -> Answer {
        self.send("POST", path, Some(form), cookie).await
    }

    /// The session id a cookie carries (the cookie is private: decrypt it with the demo's key).
    fn id_in(&self, cookie: &Cookie<'static>) -> SessionId {
        // The Set-Cookie value is percent-encoded (as browsers keep and send it back).
        let pair = format!("{}={}", cookie.name(), cookie.value());
        SessionId::parse(&open_cookie(&pair, KEY_MATERIAL)).expect("cookie holds a session id")
    }

    async fn stored(&self, cookie: &Cookie<'static>) -> Option<SessionState> {
        self.store.load(&self.id_in(cookie)).await.unwrap()
    }
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

async fn counter_increments(store: SessionStore) {
    let demo = Demo::start(store).await;
    let first = demo.get("/counter", None).await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "1"));
    let cookie = first.cookie.expect("a new session sets its cookie");
    assert!(cookie.http_only().unwrap_or(false));
    assert_eq!(cookie.same_site(), Some(actix_web::cookie::SameSite::Lax));
    assert!(!cookie.secure().unwrap_or(false), "not Secure by default");
    assert!(cookie.max_age().is_some(), "a persistent session");
    for expected in ["2", "3"] {
        let next = demo.get("/counter", Some(&cookie)).await;
        assert_eq!(
            (next.status, next.body.as_str()),
            (StatusCode::OK, expected)
        );
    }
    assert_eq!(demo.stored(&cookie).await, Some(state(&[("n", "3")])));
    demo.stop().await;
}

async fn read_never_writes(store: SessionStore) {
    let demo = Demo::start(store).await;
    let fresh = demo.get("/read", None).await;
    assert_eq!((fresh.status, fresh.body.as_str()), (StatusCode::OK, "0"));
    assert!(fresh.cookie.is_none(), "reading no session creates none");

    let cookie = demo.get("/counter", None).await.cookie.unwrap();
    for _ in 0..3 {
        let read = demo.get("/read", Some(&cookie)).await;
        assert_eq!((read.status, read.body.as_str()), (StatusCode::OK, "1"));
        assert!(read.cookie.is_none(), "/read sets no cookie");
    }
    assert_eq!(demo.stored(&cookie).await, Some(state(&[("n", "1")])));
    demo.stop().await;
}

async fn login_renews_the_id(store: SessionStore) {
    let demo = Demo::start(store).await;
    let before = demo.get("/counter", None).await.cookie.unwrap();
    let login = demo.post("/login", "user=alice", Some(&before)).await;
    assert_eq!(
        (login.status, login.body.as_str()),
        (StatusCode::OK, "alice")
    );
    let after = login.cookie.expect("login sets the renewed cookie");
    assert_ne!(after.value(), before.value());
    assert_ne!(demo.id_in(&after), demo.id_in(&before));
    assert_eq!(
        demo.stored(&before).await,
        None,
        "the old id no longer loads"
    );
    assert_eq!(
        demo.stored(&after).await,
        Some(state(&[("n", "1"), ("user", "\"alice\"")])),
        "data is kept across the renewal"
    );

    let who = demo.get("/whoami", Some(&after)).await;
    assert_eq!((who.status, who.body.as_str()), (StatusCode::OK, "alice"));
    let old = demo.get("/whoami", Some(&before)).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);

    // The query parameter works too, and a login without a session starts one.
    let by_query = demo.post("/login?user=bob", "", None).await;
    assert_eq!(by_query.status, StatusCode::OK);
    let who = demo.get("/whoami", by_query.cookie.as_ref()).await;
    assert_eq!((who.status, who.body.as_str()), (StatusCode::OK, "bob"));

    let missing = demo.post("/login", "", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body.contains("`user`"));
    demo.stop().await;
}

async fn whoami_without_login_is_401(store: SessionStore) {
    let demo = Demo::start(store).await;
    assert_eq!(
        demo.get("/whoami", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let cookie = demo.get("/counter", None).await.cookie.unwrap();
    assert_eq!(
        demo.get("/whoami", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    demo.stop().await;
}

async fn logout_ends_the_session(store: SessionStore) {
    let demo = Demo::start(store).await;
    let cookie = demo
        .post("/login", "user=alice", None)
        .await
        .cookie
        .unwrap();
    assert_eq!(
        demo.get("/whoami", Some(&cookie)).await.status,
        StatusCode::OK
    );

    let logout = demo.post("/logout", "", Some(&cookie)).await;
    assert_eq!(logout.status, StatusCode::OK);
    let removal = logout.cookie.expect("logout expires the cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(
        removal.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    assert_eq!(demo.stored(&cookie).await, None, "deleted from the store");

    let who = demo.get("/whoami", Some(&cookie)).await;
    assert_eq!(
        who.status,
        StatusCode::UNAUTHORIZED,
        "the old cookie no longer works"
    );
    let read = demo.get("/read", Some(&cookie)).await;
    assert_eq!(read.body, "0");
    demo.stop().await;
}

async fn tampered_cookie_is_a_fresh_session(store: SessionStore) {
    let demo = Demo::start(store).await;
    let mut cookie = demo.get("/counter", None).await.cookie.unwrap();
    let mut value = cookie.value().to_owned();
    let last = value.pop().unwrap();
    value.push(if last == 'A' { 'B' } else { 'A' });
    cookie.set_value(value);
    let answer = demo.get("/counter", Some(&cookie)).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "1"));
    assert!(
        answer.cookie.is_some(),
        "a fresh session gets a fresh cookie"
    );

    let garbage = Cookie::new(COOKIE_NAME, "not-even-base64!");
    let answer = demo.get("/whoami", Some(&garbage)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = demo.get("/counter", Some(&garbage)).await;
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "1"));
    demo.stop().await;
}

async fn healthz_names_the_backend(store: SessionStore) {
    let name = store.backend_name().to_owned();
    let demo = Demo::start(store).await;
    let health = demo.get("/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("JSON body");
    assert_eq!(json["status"], "ok");
    let backends = json["backends"].as_array().expect("a list of backends");
    assert!(
        backends
            .iter()
            .any(|b| b["name"] == name.as_str() && b["up"] == true),
        "{json}"
    );
    demo.stop().await;
}

/// Declares one `#[actix_web::test]` per check, all running on the store `$store` makes.
macro_rules! contract_tests {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::*;
            #[actix_web::test]
            async fn counter_increments() {
                super::counter_increments($store).await
            }
            #[actix_web::test]
            async fn read_never_writes() {
                super::read_never_writes($store).await
            }
            #[actix_web::test]
            async fn login_renews_the_id() {
                super::login_renews_the_id($store).await
            }
            #[actix_web::test]
            async fn whoami_without_login_is_401() {
                super::whoami_without_login_is_401($store).await
            }
            #[actix_web::test]
            async fn logout_ends_the_session() {
                super::logout_ends_the_session($store).await
            }
            #[actix_web::test]
            async fn tampered_cookie_is_a_fresh_session() {
                super::tampered_cookie_is_a_fresh_session($store).await
            }
            #[actix_web::test]
            async fn healthz_names_the_backend() {
                super::healthz_names_the_backend($store).await
            }
        }
    };
}

contract_tests!(memory, SessionStore::memory());

#[actix_web::test]
async fn store_outage_is_503_never_500() {
    // A backend that is down: every call fails as an unreachable Redis would. (Our own error
    // mapping under test; the real outage test kills a real redis-server.)
    let down = ProbeBackend::memory().named("down");
    down.set_down(true);
    let demo = Demo::start(SessionStore::new(down)).await;
    let counter = demo.get("/counter", None).await;
    assert_eq!(counter.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(counter.cookie.is_none());
    let login = demo.post("/login", "user=alice", None).await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    // A request carrying a session fails at load time.
    let cookie = {
        let mut jar = CookieJar::new();
        jar.private_mut(&demo.key).add(Cookie::new(
            COOKIE_NAME,
            SessionId::generate().as_str().to_owned(),
        ));
        jar.get(COOKIE_NAME).unwrap().clone()
    };
    assert_eq!(
        demo.get("/read", Some(&cookie)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        demo.get("/whoami", Some(&cookie)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let health = demo.get("/healthz", Some(&cookie)).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("JSON even when down");
    assert_eq!(json["status"], "unavailable");
    assert_eq!(json["backends"][0]["name"], "down");
    assert_eq!(json["backends"][0]["up"], false);
    demo.stop().await;
}

#[actix_web::test]
async fn every_answer_names_its_content_type_and_nosniff() {
    let demo = Demo::start(SessionStore::memory()).await;
    common::checks::content_types_everywhere(&demo.base, true).await;
    common::checks::markup_is_text(&demo.base).await;
    demo.stop().await;

    // The errors made by the layers around the handlers: 503 from `request_scope` and from
    // `/healthz`, with the store going down after a login.
    let backend = ProbeBackend::memory();
    let demo = Demo::start(SessionStore::new(backend.clone())).await;
    let cookie = common::checks::login(&demo.base, None, "heidi").await;
    backend.set_down(true);
    common::checks::outage(&demo.base, &cookie).await;
    common::checks::content_types_everywhere_down(&demo.base).await;
    demo.stop().await;
}

/// `GET /app`: the HTML page, outside the session middleware (no store call, even with a
/// session cookie, which actix-session would load eagerly), so it loads during an outage too.
#[actix_web::test]
async fn the_app_page_is_html_with_a_fresh_policy_and_needs_no_store() {
    let backend = ProbeBackend::memory();
    let demo = Demo::start(SessionStore::new(backend.clone())).await;
    let calls = {
        let backend = backend.clone();
        move || backend.total()
    };
    common::checks::app_page(&demo.base, "actix-web", None, &calls).await;
    let cookie = common::checks::login(&demo.base, None, "ivan").await;
    common::checks::app_page(&demo.base, "actix-web", Some(&cookie), &calls).await;
    backend.set_down(true);
    common::checks::app_page(&demo.base, "actix-web", Some(&cookie), &calls).await;
    demo.stop().await;
}

#[actix_web::test]
async fn login_rejects_an_empty_or_over_long_user_and_stores_nothing() {
    let backend = ProbeBackend::memory();
    let demo = Demo::start(SessionStore::new(backend.clone())).await;
    common::checks::user_name_is_bounded(&demo.base, &move || backend.writes()).await;
    demo.stop().await;
}

#[actix_web::test]
async fn cross_site_posts_are_refused() {
    let backend = ProbeBackend::memory();
    let demo = Demo::start(SessionStore::new(backend.clone())).await;
    common::checks::cross_site_posts_are_refused(&demo.base, &move || backend.writes()).await;
    demo.stop().await;
}
