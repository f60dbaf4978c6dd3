//! HTTP checks of the demo contract, independent of the framework and the store.

use actix_web::cookie::Cookie;
use axum::http::StatusCode;
use session_core::{SessionId, SessionStore};
use session_e2e::MAX_USER_LEN;
use session_testkit::http::open_cookie;
pub use session_testkit::http::{send, send_with, Answer};

/// Opens a `name=value` session cookie the way actix-web's private jar does.
pub fn session_id(pair: &str, key_material: &[u8]) -> SessionId {
    SessionId::parse(&open_cookie(pair, key_material)).unwrap()
}

/// A `name=value` session cookie pair sealing `id` the way actix-web's private jar (and the
/// axum layer) seal it: the cookie a server would send for that session.
pub fn seal(id: &SessionId, key_material: &[u8]) -> String {
    let mut jar = actix_web::cookie::CookieJar::new();
    jar.private_mut(&actix_web::cookie::Key::from(key_material))
        .add(Cookie::new("id", id.as_str().to_owned()));
    let sealed = jar.get("id").expect("the cookie just added");
    format!("id={}", sealed.value())
}

/// Flips one character of the sealed value.
pub fn tamper(pair: &str) -> String {
    let (name, value) = pair.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    format!("{name}={}", String::from_utf8(bytes).unwrap())
}

/// Logs `user` in on `base` (form field) and returns the session cookie pair.
pub async fn login(base: &str, cookie: Option<&str>, user: &str) -> String {
    let res = send(
        "POST",
        &format!("{base}/login"),
        cookie,
        Some(&format!("user={user}")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    res.cookie_pair()
}

/// `/counter` counts per session; `/read` sees the count.
pub async fn counter(base: &str) {
    let first = send("GET", &format!("{base}/counter"), None, None).await;
    assert_eq!((first.status, first.body.as_str()), (StatusCode::OK, "1"));
    let mut cookie = first.cookie_pair();
    for expected in ["2", "3"] {
        let res = send("GET", &format!("{base}/counter"), Some(&cookie), None).await;
        assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, expected));
        if let [_] = res.set_cookie.as_slice() {
            cookie = res.cookie_pair();
        }
    }
    let res = send("GET", &format!("{base}/read"), Some(&cookie), None).await;
    assert_eq!(res.body, "3");
    // Another client has its own session.
    let other = send("GET", &format!("{base}/counter"), None, None).await;
    assert_eq!(other.body, "1");
}

/// `/read` answers the count, sets no cookie, and (per `writes`, a count of store writes)
/// writes nothing.
pub async fn read_writes_nothing(base: &str, writes: &dyn Fn() -> usize) {
    let before = writes();
    let res = send("GET", &format!("{base}/read"), None, None).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "0"));
    assert!(res.set_cookie.is_empty(), "{res:?}");
    assert_eq!(writes(), before, "/read without a session wrote");

    let cookie = send("GET", &format!("{base}/counter"), None, None)
        .await
        .cookie_pair();
    let before = writes();
    for _ in 0..2 {
        let res = send("GET", &format!("{base}/read"), Some(&cookie), None).await;
        assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "1"));
        assert!(res.set_cookie.is_empty(), "{res:?}");
    }
    assert_eq!(writes(), before, "/read wrote to the store");
}

/// Login on `login_base` renews the id and keeps the data; `/whoami` on `whoami_base` (the
/// same server, or the other framework's with the same key and store) sees the user.
pub async fn login_renews_and_whoami(
    login_base: &str,
    whoami_base: &str,
    key_material: &[u8],
    store: Option<&SessionStore>,
) {
    let res = send("GET", &format!("{whoami_base}/whoami"), None, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    let before = send("GET", &format!("{login_base}/counter"), None, None)
        .await
        .cookie_pair();
    let after = login(login_base, Some(&before), "alice").await;
    let (old_id, new_id) = (
        session_id(&before, key_material),
        session_id(&after, key_material),
    );
    assert_ne!(old_id, new_id, "login must renew the session id");
    if let Some(store) = store {
        assert_eq!(
            store.load(&old_id).await.unwrap(),
            None,
            "old id still loads"
        );
        assert!(store.load(&new_id).await.unwrap().is_some());
    }

    let res = send("GET", &format!("{whoami_base}/whoami"), Some(&after), None).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "alice"));
    // Data from before the login is kept under the new id.
    let res = send("GET", &format!("{whoami_base}/read"), Some(&after), None).await;
    assert_eq!(res.body, "1");
    // The pre-login cookie is worthless now.
    let res = send("GET", &format!("{whoami_base}/whoami"), Some(&before), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // `user` as a query parameter works too; a missing user is a 400.
    let res = send("POST", &format!("{login_base}/login?user=bob"), None, None).await;
    assert_eq!(res.status, StatusCode::OK);
    let res = send(
        "GET",
        &format!("{whoami_base}/whoami"),
        Some(&res.cookie_pair()),
        None,
    )
    .await;
    assert_eq!(res.body, "bob");
    let res = send("POST", &format!("{login_base}/login"), None, None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

/// Logout deletes the session and expires the cookie; the old cookie stops working.
pub async fn logout(base: &str, key_material: &[u8], store: Option<&SessionStore>) {
    let cookie = login(base, None, "carol").await;
    let id = session_id(&cookie, key_material);
    let res = send("POST", &format!("{base}/logout"), Some(&cookie), None).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.set_cookie.len(), 1, "{res:?}");
    let removal = Cookie::parse(res.set_cookie[0].clone()).unwrap();
    assert_eq!(removal.value(), "");
    assert_eq!(
        removal.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    if let Some(store) = store {
        assert_eq!(store.load(&id).await.unwrap(), None);
    }
    let res = send("GET", &format!("{base}/whoami"), Some(&cookie), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

/// A tampered or foreign cookie is a fresh session, never a 500.
pub async fn tampered_cookie(base: &str) {
    let cookie = login(base, None, "mallory").await;
    let bad = [
        tamper(&cookie),
        "id=not-a-sealed-value".to_owned(),
        "id=".to_owned(),
        "id=%ZZ%%".to_owned(),
    ];
    for bad in &bad {
        let res = send("GET", &format!("{base}/whoami"), Some(bad), None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{bad}: {res:?}");
        let res = send("GET", &format!("{base}/counter"), Some(bad), None).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, "1"),
            "{bad}"
        );
        assert_eq!(res.set_cookie.len(), 1);
    }
}

/// `/healthz`'s answer, once it says `up` (or the last one after a while): a store gives a
/// check's answer to the callers of the next [`session_core::HEALTH_REUSE`], so a change of
/// the backends shows within that.
pub async fn healthz_when(base: &str, up: bool) -> Answer {
    let deadline = std::time::Instant::now() + session_core::HEALTH_REUSE * 3;
    loop {
        let res = send("GET", &format!("{base}/healthz"), None, None).await;
        if res.status.is_success() == up || std::time::Instant::now() > deadline {
            return res;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `/healthz` answers JSON naming each backend; `up` says which status to expect.
pub async fn healthz(base: &str, up: bool) -> serde_json::Value {
    let res = healthz_when(base, up).await;
    let expected = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    assert_eq!(res.status, expected, "{res:?}");
    assert_eq!(res.content_type.as_deref(), Some("application/json"));
    assert!(res.set_cookie.is_empty());
    let json: serde_json::Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(json["status"], if up { "ok" } else { "unavailable" });
    let backends = json["backends"].as_array().unwrap();
    assert!(!backends.is_empty());
    for b in backends {
        assert!(b["name"].is_string(), "{json}");
        assert!(b["up"].is_boolean(), "{json}");
    }
    json
}

/// With the store down, session routes and `/healthz` answer 503 (with `cookie` a live
/// session cookie), as plain text with `nosniff`.
pub async fn outage(base: &str, cookie: &str) {
    for (method, path, cookie) in [
        ("GET", "/counter", None),
        ("GET", "/counter", Some(cookie)),
        ("GET", "/read", Some(cookie)),
        ("GET", "/whoami", Some(cookie)),
        ("POST", "/logout", Some(cookie)),
    ] {
        let res = send(method, &format!("{base}{path}"), cookie, None).await;
        assert_eq!(
            res.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {res:?}"
        );
        assert_text(&res, &format!("{method} {path} during an outage"));
    }
    let res = send("POST", &format!("{base}/login?user=x"), None, None).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_text(&res, "POST /login during an outage");
    healthz(base, false).await;
}

/// `res` is plain text that no browser may sniff as anything else (`what` names the request).
pub fn assert_text(res: &Answer, what: &str) {
    assert_eq!(
        res.content_type.as_deref(),
        Some("text/plain; charset=utf-8"),
        "{what}: {res:?}"
    );
    assert_eq!(
        res.content_type_options.as_deref(),
        Some("nosniff"),
        "{what}: {res:?}"
    );
}

/// Every route of the contract, with its success and its error answers (400, 401, 404, 503
/// of `/healthz`... as the store allows: `healthz_up` says which), names its content type and
/// carries `nosniff`.
pub async fn content_types_everywhere(base: &str, healthz_up: bool) {
    let cookie = login(base, None, "erin").await;
    let long = "u".repeat(MAX_USER_LEN + 1);
    let cases = [
        ("GET", "/".to_owned(), None, None, 200),
        ("GET", "/counter".to_owned(), None, None, 200),
        (
            "GET",
            "/counter".to_owned(),
            Some(cookie.as_str()),
            None,
            200,
        ),
        ("GET", "/read".to_owned(), Some(cookie.as_str()), None, 200),
        (
            "GET",
            "/whoami".to_owned(),
            Some(cookie.as_str()),
            None,
            200,
        ),
        ("GET", "/whoami".to_owned(), None, None, 401),
        ("POST", "/login".to_owned(), None, Some("user=frank"), 200),
        ("POST", "/login?user=grace".to_owned(), None, None, 200),
        ("POST", "/login".to_owned(), None, None, 400),
        ("POST", "/login".to_owned(), None, Some("user="), 400),
        ("POST", format!("/login?user={long}"), None, None, 400),
        (
            "POST",
            "/logout".to_owned(),
            Some(cookie.as_str()),
            None,
            200,
        ),
        ("GET", "/no-such-route".to_owned(), None, None, 404),
    ];
    for (method, path, cookie, form, status) in &cases {
        let what = format!("{method} {path}");
        let res = send(method, &format!("{base}{path}"), *cookie, *form).await;
        assert_eq!(res.status.as_u16(), *status, "{what}: {res:?}");
        assert_text(&res, &what);
        assert!(!res.body.is_empty(), "{what}: an answer without a message");
    }
    // The answers the frameworks make before any handler: a method the route does not take,
    // and a login form too large to read (axum's 2 MB body limit, actix-web's 16 KB form
    // limit). Any status but a success; still typed and not sniffed.
    let huge = format!("user={}", "u".repeat(3 << 20));
    for (method, path, form) in [
        ("GET", "/login", None),
        ("GET", "/logout", None),
        ("DELETE", "/counter", None),
        ("POST", "/login", Some(huge.as_str())),
    ] {
        let what = format!(
            "{method} {path} ({} bytes of form)",
            form.map_or(0, str::len)
        );
        let res = send(method, &format!("{base}{path}"), None, form).await;
        assert!(res.status.is_client_error(), "{what}: {res:?}");
        assert_text(&res, &what);
    }
    let res = healthz_when(base, healthz_up).await;
    assert_eq!(res.status.is_success(), healthz_up, "{res:?}");
    assert_eq!(res.content_type.as_deref(), Some("application/json"));
    assert_eq!(res.content_type_options.as_deref(), Some("nosniff"));
}

/// A user name with markup comes back from `/login` and `/whoami` as plain text, unchanged:
/// shown as text, never rendered (the stored XSS of issue 9).
pub async fn markup_is_text(base: &str) {
    let markup = "<html><script>alert(1)</script></html>";
    let res = send(
        "POST",
        &format!("{base}/login"),
        None,
        Some("user=%3Chtml%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%3C%2Fhtml%3E"),
    )
    .await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, markup));
    assert_text(&res, "POST /login with markup");
    let res = send(
        "GET",
        &format!("{base}/whoami"),
        Some(&res.cookie_pair()),
        None,
    )
    .await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, markup));
    assert_text(&res, "GET /whoami after a login with markup");
}

/// `GET /app` is the HTML page, naming `framework`, with its content type, `nosniff`, a
/// Content-Security-Policy whose nonce is the page's and fresh each time, and no cookie; with a
/// session cookie too (`cookie`), and (called during an outage) whatever the store's state:
/// the page costs no store call (per `calls`, a count of store calls).
pub async fn app_page(
    base: &str,
    framework: &str,
    cookie: Option<&str>,
    calls: &dyn Fn() -> usize,
) {
    let before = calls();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let res = send("GET", &format!("{base}/app"), cookie, None).await;
        assert_eq!(res.status, StatusCode::OK, "{res:?}");
        assert_eq!(
            res.content_type.as_deref(),
            Some("text/html; charset=utf-8"),
            "{res:?}"
        );
        assert_eq!(res.content_type_options.as_deref(), Some("nosniff"));
        assert!(res.set_cookie.is_empty(), "the page set a cookie: {res:?}");
        assert!(
            res.body
                .contains(&format!(r#"<strong id="framework">{framework}</strong>"#)),
            "the page does not name {framework}"
        );
        let csp = res.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'; "), "{csp}");
        assert!(csp.contains("require-trusted-types-for 'script'"), "{csp}");
        let nonce = csp
            .split("script-src 'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no script nonce in {csp}"))
            .to_owned();
        assert!(res.body.contains(&format!(r#"<script nonce="{nonce}">"#)));
        assert_eq!(res.headers["cache-control"], "no-store");
        assert_eq!(res.headers["x-frame-options"], "DENY");
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "the nonce is not fresh");
    assert_eq!(calls(), before, "the page called the store");
}

/// `POST /login` answers 400 with a short reason, sets no cookie and (per `writes`, a count of
/// store writes) stores nothing for an empty user or one over [`MAX_USER_LEN`] bytes; exactly
/// [`MAX_USER_LEN`] bytes (multi-byte characters counted in bytes) is accepted.
pub async fn user_name_is_bounded(base: &str, writes: &dyn Fn() -> usize) {
    let long = "u".repeat(MAX_USER_LEN + 1);
    // 129 two-byte characters: 129 characters, 258 bytes.
    let wide = "é".repeat(MAX_USER_LEN / 2 + 1);
    let before = writes();
    for form in [
        "user=".to_owned(),
        format!("user={long}"),
        format!("user={}", "%C3%A9".repeat(MAX_USER_LEN / 2 + 1)),
    ] {
        let res = send("POST", &format!("{base}/login"), None, Some(&form)).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{res:?}");
        assert_text(&res, "POST /login with a bad user");
        assert!(res.set_cookie.is_empty(), "{res:?}");
        assert!(res.body.len() < 100, "not a short reason: {res:?}");
        assert!(!res.body.contains(&long) && !res.body.contains(&wide));
    }
    // Too long in the query; and no `user` at all (no body, or a form without the field).
    for (uri, form) in [
        (format!("{base}/login?user={long}"), None),
        (format!("{base}/login"), None),
        (format!("{base}/login"), Some("name=alice")),
    ] {
        let res = send("POST", &uri, None, form).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{res:?}");
        assert!(res.set_cookie.is_empty(), "{res:?}");
    }
    assert_eq!(writes(), before, "a rejected login wrote to the store");

    let longest = "u".repeat(MAX_USER_LEN);
    let res = send("POST", &format!("{base}/login?user={longest}"), None, None).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (StatusCode::OK, longest.as_str())
    );
}

/// With the store down: the routes that need no store still answer as usual, and every answer,
/// the 503s included, names its content type and carries `nosniff`.
pub async fn content_types_everywhere_down(base: &str) {
    for (method, path, status) in [
        ("GET", "/", 200),
        ("POST", "/login", 400),
        ("GET", "/counter", 503),
        ("GET", "/no-such-route", 404),
    ] {
        let what = format!("{method} {path} during an outage");
        let res = send(method, &format!("{base}{path}"), None, None).await;
        assert_eq!(res.status.as_u16(), status, "{what}: {res:?}");
        assert_text(&res, &what);
    }
    let res = healthz_when(base, false).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{res:?}");
    assert_eq!(res.content_type.as_deref(), Some("application/json"));
    assert_eq!(res.content_type_options.as_deref(), Some("nosniff"));
}

/// A `POST` another site's page makes (login CSRF: its form logs the visitor in under the
/// attacker's name) is refused with 403 before any session is touched: no cookie, and (per
/// `writes`, a count of store writes) nothing stored. A browser says so with
/// `Sec-Fetch-Site`, or, without it, with an `Origin` that is not the server's own. The
/// demo's own page (`same-origin`, or its own `Origin`) and clients that send neither (curl)
/// log in as before.
pub async fn cross_site_posts_are_refused(base: &str, writes: &dyn Fn() -> usize) {
    let url = format!("{base}/login");
    let own = base.to_owned();
    let before = writes();
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        // A browser that sends Sec-Fetch-Site tells the truth with it, whatever Origin says.
        vec![("sec-fetch-site", "cross-site"), ("origin", own.as_str())],
    ] {
        let res = send_with("POST", &url, None, Some("user=mallory"), &headers).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{headers:?}: {res:?}");
        assert_text(&res, "a cross-site POST");
        assert!(res.set_cookie.is_empty(), "{headers:?}: {res:?}");
    }
    assert_eq!(
        writes(),
        before,
        "a refused cross-site request wrote to the store"
    );
    for headers in [
        vec![("sec-fetch-site", "same-origin"), ("origin", own.as_str())],
        vec![("sec-fetch-site", "none")],
        vec![("origin", own.as_str())],
        vec![],
    ] {
        let res = send_with("POST", &url, None, Some("user=alice"), &headers).await;
        assert_eq!(res.status, StatusCode::OK, "{headers:?}: {res:?}");
    }
}
