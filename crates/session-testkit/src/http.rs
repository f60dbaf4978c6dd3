//! HTTP helpers shared by the tests of both framework integrations and of the demos: build a
//! request, read a response into an [`Answer`], send one over real HTTP, open a sealed session
//! cookie.
//!
//! They live here, not in `session_core::testing`, because they need HTTP types and a client,
//! which the core crate must not depend on; this crate is already the dev-only kit every test
//! crate of the workspace uses. Nothing here knows a framework: axum tests feed
//! [`request`] to a `Router` in-process, the demo tests use [`send`] on a loopback port, and
//! both read the answer the same way.
//!
//! ```
//! use session_testkit::http::{request, Answer};
//!
//! let req = request("POST", "/login", Some("id=abc"), Some("user=alice"));
//! assert_eq!(req.headers()["cookie"], "id=abc");
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let res = ::http::Response::builder()
//!     .header("set-cookie", "id=sealed; Path=/; HttpOnly")
//!     .body(http_body_util::Full::new(hyper::body::Bytes::from("ok")))
//!     .unwrap();
//! let answer = Answer::read(res).await;
//! assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "ok"));
//! assert_eq!(answer.cookie_pair(), "id=sealed");
//! # });
//! ```

use ::http::{header, Method, Request, Response, StatusCode};
use cookie::{Cookie, CookieJar, Key};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

/// What a test looks at in one HTTP response.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// Every `Set-Cookie` header, in order, as sent.
    pub set_cookie: Vec<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `X-Content-Type-Options` header, if any (`nosniff` keeps browsers from guessing
    /// HTML in a text answer).
    pub content_type_options: Option<String>,
    /// Every header, for the checks the fields above do not cover (the demo page's
    /// `Content-Security-Policy`, ...).
    pub headers: http::HeaderMap,
    /// The body, as UTF-8 text (the demos and layers under test only answer text, JSON or
    /// the demo page's HTML).
    pub body: String,
}

impl Answer {
    /// Reads a whole response. Generic over the body so an in-process `Router` response and a
    /// client response read the same way.
    pub async fn read<B>(res: Response<B>) -> Answer
    where
        B: Body,
        B::Error: std::fmt::Debug,
    {
        let status = res.status();
        let set_cookie = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let text_of = |name| {
            res.headers()
                .get(name)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let content_type = text_of(header::CONTENT_TYPE);
        let content_type_options = text_of(header::X_CONTENT_TYPE_OPTIONS);
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            set_cookie,
            content_type,
            content_type_options,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// The `name=value` pair a browser would send back, from the only `Set-Cookie` (panics,
    /// showing the answer, when there is not exactly one).
    pub fn cookie_pair(&self) -> String {
        assert_eq!(
            self.set_cookie.len(),
            1,
            "expected one Set-Cookie: {self:?}"
        );
        self.set_cookie[0].split(';').next().unwrap().to_owned()
    }
}

/// A request as a browser would send it: `cookie` is a `name=value` pair for the `Cookie`
/// header, `form` an urlencoded body.
pub fn request(
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Request<Full<Bytes>> {
    request_with(method, uri, cookie, form, &[])
}

/// [`request`] with more headers (`Origin`, `Sec-Fetch-Site`: what a browser says about where
/// a request comes from).
pub fn request_with(
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    headers: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let body = match form {
        Some(form) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Full::new(Bytes::from(form.to_owned()))
        }
        None => Full::new(Bytes::new()),
    };
    req.body(body).unwrap()
}

/// Sends one [`request`] over real HTTP to `url` (a full `http://` URL) and reads the answer.
pub async fn send(method: &str, url: &str, cookie: Option<&str>, form: Option<&str>) -> Answer {
    send_with(method, url, cookie, form, &[]).await
}

/// [`send`] with more headers, as [`request_with`].
pub async fn send_with(
    method: &str,
    url: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(request_with(method, url, cookie, form, headers))
        .await
        .unwrap();
    Answer::read(res).await
}

/// The plain value of a private (encrypted) cookie, given as the `name=value` pair a browser
/// sends back, opened with `key_material` (at least 64 bytes, as `Key::from` takes it) the way
/// actix-web's and the axum layer's private jars open it. The pair may be percent-encoded, as
/// actix-web writes it. Panics when the cookie does not open: a test wants to know.
///
/// It returns the text, not a session id, so this crate needs no session-core (whose tests
/// use this crate): callers parse it with `SessionId::parse`.
pub fn open_cookie(pair: &str, key_material: &[u8]) -> String {
    let cookie = Cookie::parse_encoded(pair.to_owned()).expect("a name=value cookie pair");
    let opened = CookieJar::new()
        .private(&Key::from(key_material))
        .decrypt(cookie)
        .expect("the cookie opens with the key");
    opened.value().to_owned()
}
