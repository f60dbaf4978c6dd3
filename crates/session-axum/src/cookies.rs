//! The session cookie: finding it in a request, opening it, and writing it.
//!
//! Same format as actix-session's default (private) cookie: the cookie crate's private jar
//! seals the id (AES-256-GCM, cookie name as associated data, base64 of nonce|ciphertext|tag)
//! and the value is percent-encoded on the way out (`Cookie::encoded`) and decoded on the way in
//! (`parse_encoded`), as actix-web does.

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, CookieJar, Key, SameSite};
use session_core::SessionId;

/// The cookie attributes of a [`SessionLayer`](crate::SessionLayer).
#[derive(Clone)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) max_age: Option<std::time::Duration>,
    pub(crate) key: Key,
}

impl std::fmt::Debug for CookieConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("max_age", &self.max_age)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn to_time(d: std::time::Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How many cookies of our name a request may offer for opening; the rest are counted, not kept.
///
/// A browser sends one cookie per (name, domain, path) it holds, so several of our name appear
/// only when the cookie was set for more than one path or domain (say `/` and `/app`, or the host
/// and its parent domain): a handful at most. Eight covers that with room to spare, while it
/// caps what one request can make us do (each candidate is an AES-GCM open) and keep in memory,
/// however many duplicates a hostile `Cookie` header carries.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// The still sealed values of the request's cookies of our name: at most [`MAX_CANDIDATES`] of
/// them, in header order, and how many more there were.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    values: Vec<String>,
    skipped: usize,
}

impl Candidates {
    /// True when the request carried no cookie of our name.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl CookieConfig {
    /// The defaults, with `key`: name `id`, path `/`, no domain, `Secure`, `HttpOnly`,
    /// `SameSite=Lax`, no `Max-Age` (a browser-session cookie).
    pub(crate) fn new(key: Key) -> Self {
        Self {
            name: "id".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            max_age: None,
            key,
        }
    }

    /// The (still sealed) cookies of our name in the request, bounded (see [`MAX_CANDIDATES`]).
    /// One pass over the headers, so the work is linear in their size; opening waits until the
    /// handler touches the session.
    pub(crate) fn sealed_values(&self, headers: &HeaderMap) -> Candidates {
        let mut candidates = Candidates::default();
        let ours = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse_encoded)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == self.name);
        for cookie in ours {
            if candidates.values.len() < MAX_CANDIDATES {
                candidates.values.push(cookie.value().to_owned());
            } else {
                candidates.skipped += 1;
            }
        }
        candidates
    }

    /// Opens the first sealed value that decrypts to a valid id. Anything else (tampered,
    /// sealed with another key, not an id of ours) means "no session".
    ///
    /// Logs at most one warning, however many candidates failed or were skipped: a request
    /// decides how many cookies it sends, and a line per cookie let one 120 KB header write
    /// 20,001 lines. The line carries counts only, never a cookie value or an id.
    pub(crate) fn open(&self, candidates: &Candidates) -> Option<SessionId> {
        let jar = CookieJar::new();
        let private = jar.private(&self.key);
        let (mut unauthenticated, mut not_an_id) = (0usize, 0usize);
        let mut found = None;
        for value in &candidates.values {
            let Some(opened) = private.decrypt(Cookie::new(self.name.clone(), value.clone()))
            else {
                unauthenticated += 1;
                continue;
            };
            match SessionId::parse(opened.value()) {
                Ok(id) => {
                    found = Some(id);
                    break;
                }
                Err(_) => not_an_id += 1,
            }
        }
        if unauthenticated + not_an_id + candidates.skipped > 0 {
            tracing::warn!(
                cookie = %self.name,
                unauthenticated,
                not_an_id,
                skipped = candidates.skipped,
                max_candidates = MAX_CANDIDATES,
                session_found = found.is_some(),
                "session cookies rejected (tampered, sealed with another key, not a session id, or beyond the candidate limit)"
            );
        }
        found
    }

    /// The `Set-Cookie` value carrying `id`, sealed.
    pub(crate) fn seal(&self, id: &SessionId) -> Option<HeaderValue> {
        let mut cookie = Cookie::new(self.name.clone(), id.as_str().to_owned());
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie.set_path(self.path.clone());
        if let Some(max_age) = self.max_age {
            cookie.set_max_age(to_time(max_age));
        }
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(cookie);
        let sealed = jar.get(&self.name)?;
        header_value(&sealed.encoded().to_string())
    }

    /// The `Set-Cookie` value that makes the browser drop the cookie.
    pub(crate) fn removal(&self) -> Option<HeaderValue> {
        let mut cookie = Cookie::new(self.name.clone(), "");
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.make_removal();
        header_value(&cookie.to_string())
    }
}

fn header_value(text: &str) -> Option<HeaderValue> {
    match HeaderValue::from_str(text) {
        Ok(value) => Some(value),
        Err(_) => {
            // Only a cookie name, path or domain with control characters can get here.
            tracing::error!(
                "session cookie attributes are not valid in an HTTP header; cookie not sent"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(value: String) -> Candidates {
        Candidates {
            values: vec![value],
            skipped: 0,
        }
    }

    fn pair_of(config: &CookieConfig, id: &SessionId) -> String {
        let header = config.seal(id).unwrap();
        header
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    fn cookie_header(text: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(text).unwrap());
        headers
    }

    #[test]
    fn candidates_are_bounded_and_the_rest_counted() {
        let config = config();
        let text = vec!["id=x"; 20_000].join("; ");
        let sealed = config.sealed_values(&cookie_header(&format!("a=b; {text}")));
        assert_eq!(sealed.values.len(), MAX_CANDIDATES);
        assert_eq!(sealed.skipped, 20_000 - MAX_CANDIDATES);
        assert_eq!(config.open(&sealed), None);
    }

    #[test]
    fn a_valid_cookie_among_the_first_candidates_opens() {
        let config = config();
        let id = SessionId::generate();
        let pair = pair_of(&config, &id);
        // Up to MAX_CANDIDATES - 1 bad ones before it: still found.
        let bad = ["id=x"; MAX_CANDIDATES - 1].join("; ");
        let sealed = config.sealed_values(&cookie_header(&format!("{bad}; {pair}")));
        assert_eq!(config.open(&sealed), Some(id.clone()));
        // Past the bound it is not looked at: the request gets a fresh session, not a 5xx.
        let bad = ["id=x"; MAX_CANDIDATES].join("; ");
        let sealed = config.sealed_values(&cookie_header(&format!("{bad}; {pair}")));
        assert_eq!(config.open(&sealed), None);
    }

    fn config() -> CookieConfig {
        CookieConfig::new(Key::generate())
    }

    #[test]
    fn seal_then_open_round_trips() {
        let config = config();
        let id = SessionId::generate();
        let header = config.seal(&id).unwrap();
        let mut headers = HeaderMap::new();
        // A browser sends back only name=value.
        let pair = header
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {pair}")).unwrap(),
        );
        let sealed = config.sealed_values(&headers);
        assert_eq!((sealed.values.len(), sealed.skipped), (1, 0));
        assert_eq!(config.open(&sealed), Some(id));
    }

    #[test]
    fn other_key_or_tampering_opens_nothing() {
        let config = config();
        let id = SessionId::generate();
        let header = config.seal(&id).unwrap();
        let pair = header
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        let sealed = config.sealed_values(&headers);
        let other = CookieConfig {
            key: Key::generate(),
            ..config.clone()
        };
        assert_eq!(other.open(&sealed), None);
        let mut bytes = sealed.values[0].clone().into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        assert_eq!(config.open(&only(String::from_utf8(bytes).unwrap())), None);
        assert_eq!(config.open(&only(id.as_str().to_owned())), None);
    }
}

#[cfg(test)]
mod fuzz;
