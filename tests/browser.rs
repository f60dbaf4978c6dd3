//! The demo page (`GET /app`) in a real browser: Debian's chromium, headless, driven over
//! WebDriver by chromedriver (both started by session-testkit), with the actix demo and the axum
//! demo on two ports of 127.0.0.1, one secret and one redis-server.
//!
//! These are the cookie rules only a browser applies: cookies are shared by host, not by port
//! (so one session spans both demos); `HttpOnly` hides the cookie from scripts; `Secure` is
//! honoured on `http://127.0.0.1`; a removal cookie removes; expiry.
//!
//! The screenshot of the README (`docs/demo.png`) comes from here: run
//! `UPDATE_SCREENSHOT=1 cargo test --test browser` to rewrite it; otherwise it goes to
//! `target/tmp/demo.png`.

mod common;

use std::time::Duration;

use common::{
    browser::Browser,
    env_demos::{self, EnvDemos},
};
use cookie::{time, Cookie, SameSite};
use session_e2e::{DemoEnv, COOKIE_NAME, MAX_USER_LEN, SESSION_TTL};
use session_testkit::{RedisServer, ServerOptions};

/// The cookie secret both demos share (at least 64 characters, as `SESSION_SECRET` must be).
const SECRET: &str = "browser-test secret, shared by both demos: 64 characters or more!!";

/// Redis, both demos configured from `extra` environment variables plus the shared secret and
/// Redis' URL, and a fresh browser.
struct Stack {
    redis: RedisServer,
    demos: EnvDemos,
    browser: Browser,
}

impl Stack {
    async fn start(extra: &[(&str, &str)]) -> Stack {
        Self::start_with(ServerOptions::new(), extra).await
    }

    async fn start_with(redis: ServerOptions, extra: &[(&str, &str)]) -> Stack {
        let redis = RedisServer::start_with(redis);
        let mut vars = vec![
            ("SESSION_SECRET".to_owned(), SECRET.to_owned()),
            ("SESSION_REDIS_URL".to_owned(), redis.url()),
        ];
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let demos = env_demos::start_in(&DemoEnv::from_vars(vars)).await;
        let browser = Browser::start().await;
        Stack {
            redis,
            demos,
            browser,
        }
    }

    fn actix_page(&self) -> String {
        format!("{}/app", self.demos.actix)
    }

    fn axum_page(&self) -> String {
        format!("{}/app", self.demos.axum)
    }

    /// The session cookie as the browser stores it, if it holds one.
    async fn session_cookie(&self) -> Option<Cookie<'static>> {
        self.browser
            .client
            .get_all_cookies()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name() == COOKIE_NAME)
    }

    async fn stop(self) {
        self.browser.close().await;
        self.demos.actix_handle.stop(true).await;
    }
}

/// The cookie the browser holds matches the demos' configuration: `HttpOnly`, `SameSite=Lax`,
/// `Secure` as configured, path `/`, for this host only, expiring in [`SESSION_TTL`] (one day).
/// `who` names the server that set it, for messages.
async fn check_cookie(stack: &Stack, secure: bool, who: &str) -> Cookie<'static> {
    let cookie = stack
        .session_cookie()
        .await
        .unwrap_or_else(|| panic!("{who}: the browser holds no `{COOKIE_NAME}` cookie"));
    assert_eq!(cookie.http_only(), Some(true), "{who}: {cookie:?}");
    assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{who}: {cookie:?}");
    assert_eq!(cookie.secure(), Some(secure), "{who}: {cookie:?}");
    assert_eq!(cookie.path(), Some("/"), "{who}: {cookie:?}");
    // WebDriver names a host-only cookie's host as its domain (a `Domain=` attribute would
    // show as `.127.0.0.1`, or be refused for an IP address).
    assert_eq!(cookie.domain(), Some("127.0.0.1"), "{who}: {cookie:?}");
    let expires = cookie
        .expires_datetime()
        .unwrap_or_else(|| panic!("{who}: a session cookie, not a persistent one: {cookie:?}"));
    let lifetime = expires - time::OffsetDateTime::now_utc();
    let day = time::Duration::try_from(SESSION_TTL).unwrap();
    assert!(
        lifetime <= day && lifetime > day - time::Duration::minutes(5),
        "{who}: expires in {lifetime}, expected {day}: {cookie:?}"
    );

    // HttpOnly, as the page's own script sees it: the cookie is not there.
    let visible = stack
        .browser
        .client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    let visible = visible.as_str().unwrap_or_default();
    assert!(
        !visible.contains(&format!("{COOKIE_NAME}=")) && !visible.contains(cookie.value()),
        "{who}: document.cookie shows the session cookie: {visible:?}"
    );
    cookie
}

/// One session over both frameworks: a login on the actix page is the user of the axum page,
/// the counter is one sequence whichever page counts, the cookie is what the configuration
/// says and invisible to scripts, a hostile user name stays text, bad names read as messages,
/// and a logout on the axum page logs the actix page out and removes the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_across_both_frameworks() {
    let stack = Stack::start(&[]).await;
    let browser = &stack.browser;

    // The axum page, first visit: nobody, 0, Redis up, no cookie yet.
    browser.open(&stack.axum_page()).await;
    let axum_tab = browser.client.window().await.unwrap();
    browser.expect_text("framework", "axum").await;
    browser.expect_text("user", "not logged in").await;
    browser.expect_text("counter", "0").await;
    browser.expect_text("health", "ok").await;
    assert!(
        stack.session_cookie().await.is_none(),
        "a cookie before any write"
    );

    // The axum demo makes the session.
    browser.click("count-button").await;
    browser.expect_text("counter", "1").await;
    let axum_cookie = check_cookie(&stack, false, "axum, first count").await;

    // The actix page, another port of the same host: the same session.
    let actix_tab = browser.open_tab(&stack.actix_page()).await;
    browser.expect_text("framework", "actix-web").await;
    browser.expect_text("counter", "1").await;
    browser.expect_text("user", "not logged in").await;

    // Log in on the actix page: a new session id (login renews it), same data.
    browser.log_in_as("alice").await;
    browser.expect_text("counter", "1").await;
    let actix_cookie = check_cookie(&stack, false, "actix, login").await;
    assert_ne!(
        actix_cookie.value(),
        axum_cookie.value(),
        "the login did not renew the session id"
    );

    // The axum page sees the same user and counter.
    browser.switch_to(&axum_tab).await;
    browser.reload().await;
    browser.expect_text("user", "alice").await;
    browser.expect_text("counter", "1").await;

    // The counter, clicked on each page in turn: one sequence, no increment lost.
    let mut expected = 1;
    for _ in 0..3 {
        for tab in [&actix_tab, &axum_tab] {
            browser.switch_to(tab).await;
            browser.click("count-button").await;
            expected += 1;
            browser.expect_text("counter", &expected.to_string()).await;
        }
    }
    for tab in [&actix_tab, &axum_tab] {
        browser.switch_to(tab).await;
        browser.reload().await;
        browser.expect_text("counter", &expected.to_string()).await;
        browser.expect_text("user", "alice").await;
    }

    // The picture of the README: the actix page, logged in, counted.
    browser.switch_to(&actix_tab).await;
    save_screenshot(browser).await;

    // A bad user name reads as a message, and changes nothing.
    let long = "x".repeat(MAX_USER_LEN + 1);
    browser.log_in(&long).await;
    browser
        .expect_message("That user name was refused: `user` is longer than 256 bytes")
        .await;
    browser.expect_text("user", "alice").await;
    browser.log_in("").await;
    browser
        .expect_message("That user name was refused: `user` is empty")
        .await;

    // A hostile user name is text on both pages: no element made, no script run.
    let hostile = r#"<img src=x onerror="document.title='pwned'"><b>mallory</b>"#;
    browser.switch_to(&axum_tab).await;
    browser.log_in(hostile).await;
    browser.expect_text("user", hostile).await;
    browser.switch_to(&actix_tab).await;
    browser.reload().await;
    browser.expect_text("user", hostile).await;
    for tab in [&actix_tab, &axum_tab] {
        browser.switch_to(tab).await;
        let made = browser
            .client
            .execute(
                "return document.querySelectorAll('#user *, img, b').length",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(made, 0, "the user name became markup");
        assert_ne!(browser.client.title().await.unwrap(), "pwned");
    }

    // Log out on the axum page: logged out there, the cookie removed from the browser.
    browser.switch_to(&axum_tab).await;
    browser.click("logout-button").await;
    browser.expect_text("user", "not logged in").await;
    browser.expect_text("counter", "0").await;
    assert!(
        stack.session_cookie().await.is_none(),
        "the browser still holds the cookie after logout: {:?}",
        stack.session_cookie().await
    );

    // The actix page still shows the old state until it reloads; then it is logged out too.
    browser.switch_to(&actix_tab).await;
    browser.expect_text("user", hostile).await;
    browser.reload().await;
    browser.expect_text("user", "not logged in").await;
    browser.expect_text("counter", "0").await;
    assert!(stack.session_cookie().await.is_none());

    stack.stop().await;
}

/// `SESSION_COOKIE_SECURE=true` on plain `http://127.0.0.1`: browsers treat loopback as a
/// secure context, so the `Secure` cookie is kept and sent, and the flow works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_cookie_works_on_http_loopback() {
    let stack = Stack::start(&[("SESSION_COOKIE_SECURE", "true")]).await;
    let browser = &stack.browser;

    browser.open(&stack.actix_page()).await;
    browser.log_in_as("bob").await;
    browser.click("count-button").await;
    browser.expect_text("counter", "1").await;
    check_cookie(&stack, true, "actix, secure").await;

    browser.open(&stack.axum_page()).await;
    browser.expect_text("user", "bob").await;
    browser.click("count-button").await;
    browser.expect_text("counter", "2").await;
    check_cookie(&stack, true, "axum, secure").await;

    browser.click("logout-button").await;
    browser.expect_text("user", "not logged in").await;
    assert!(stack.session_cookie().await.is_none());
    stack.stop().await;
}

/// Redis stopped: both pages still load and say "try again", in words; Redis back on the same
/// port (with its data: append-only file): the same user, same counter, same cookie, without
/// logging in again or restarting a demo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_says_try_again_and_the_login_survives_it() {
    let redis = ServerOptions::new()
        .config_line("appendonly yes")
        .config_line("appendfsync always");
    let stack = Stack::start_with(redis, &[]).await;
    let browser = &stack.browser;

    browser.open(&stack.actix_page()).await;
    let actix_tab = browser.client.window().await.unwrap();
    browser.log_in_as("carol").await;
    browser.click("count-button").await;
    browser.expect_text("counter", "1").await;
    let before = stack.session_cookie().await.expect("a session cookie");
    let axum_tab = browser.open_tab(&stack.axum_page()).await;
    browser.expect_text("user", "carol").await;

    stack.redis.stop();
    let try_again =
        "The session store is not answering right now. Nothing was lost: try again in a moment.";
    // A reload: the page itself loads (it needs no store) and explains. The health line
    // follows within a second (the store shares one health answer for a second).
    browser.reload().await;
    browser.expect_message(try_again).await;
    browser.expect_text("user", "unknown").await;
    browser
        .reload_until("the health line to say unavailable", |b| async move {
            b.text("health").await == "unavailable"
        })
        .await;
    browser.expect_message(try_again).await;
    // A click on the other page: the same sentence, not a raw 503 body.
    browser.switch_to(&actix_tab).await;
    browser.click("count-button").await;
    browser.expect_message(try_again).await;
    browser.expect_text("counter", "?").await;

    stack.redis.restart();
    // The store reconnects by itself; the page says so once it has.
    for tab in [&axum_tab, &actix_tab] {
        browser.switch_to(tab).await;
        browser
            .reload_until("the store to be back", |b| async move {
                b.text("health").await == "ok" && b.text("message").await.is_empty()
            })
            .await;
        browser.expect_text("user", "carol").await;
        browser.expect_text("counter", "1").await;
    }
    let after = stack.session_cookie().await.expect("a session cookie");
    assert_eq!(
        after.value(),
        before.value(),
        "a new session after the outage"
    );
    browser.click("count-button").await;
    browser.expect_text("counter", "2").await;
    stack.stop().await;
}

/// `SESSION_REDIS_KEY_EXPIRE=3` slides: a click every second keeps the session past 3 s (the
/// counter goes on, the user stays); 4 s without a request end it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_expiry_keeps_an_active_session_and_ends_an_idle_one() {
    let stack = Stack::start(&[("SESSION_REDIS_KEY_EXPIRE", "3")]).await;
    let browser = &stack.browser;

    browser.open(&stack.actix_page()).await;
    let actix_tab = browser.client.window().await.unwrap();
    browser.log_in_as("dora").await;
    let axum_tab = browser.open_tab(&stack.axum_page()).await;
    browser.expect_text("user", "dora").await;

    // Six clicks a second apart, on each page in turn: well past the 3 s of one TTL. A
    // session that had expired on the way would count from 1 again.
    for n in 1..=6 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        browser
            .switch_to(if n % 2 == 0 { &axum_tab } else { &actix_tab })
            .await;
        browser.click("count-button").await;
        browser.expect_text("counter", &n.to_string()).await;
    }
    browser.reload().await;
    browser.expect_text("user", "dora").await;

    // Idle for longer than the TTL: the page makes no request by itself, so nothing slides.
    tokio::time::sleep(Duration::from_secs(4)).await;
    browser.reload().await;
    browser.expect_text("user", "not logged in").await;
    browser.expect_text("counter", "0").await;
    stack.stop().await;
}

/// A session over `SESSION_REDIS_MAX_SESSION_SIZE` reads as a sentence on both pages (413,
/// nothing saved), and a name that fits still logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_session_reads_as_a_message() {
    let stack = Stack::start(&[("SESSION_REDIS_MAX_SESSION_SIZE", "100")]).await;
    let browser = &stack.browser;
    let too_large = "This session has grown too large: the store refused it and nothing was saved.";
    let big = "y".repeat(150);
    for page in [stack.actix_page(), stack.axum_page()] {
        browser.open(&page).await;
        browser.log_in(&big).await;
        browser.expect_message(too_large).await;
        browser.reload().await;
        browser.expect_text("user", "not logged in").await;
        browser.log_in_as("erin").await;
        browser.click("logout-button").await;
        browser.expect_text("user", "not logged in").await;
    }
    stack.stop().await;
}

/// Writes the page's screenshot to `docs/demo.png` with `UPDATE_SCREENSHOT=1`, else to
/// `target/tmp/demo.png`; either way checks that it is a PNG.
async fn save_screenshot(browser: &Browser) {
    let png = browser.client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let path = if std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/demo.png")
    } else {
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo.png")
    };
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot of the demo page: {}", path.display());
}
