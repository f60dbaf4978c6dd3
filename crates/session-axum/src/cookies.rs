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

impl CookieConfig {
    /// The (still sealed) values of every cookie of our name in the request. Parsing is cheap;
    /// opening them waits until the handler touches the session.
    pub(crate) fn sealed_values(&self, headers: &HeaderMap) -> Vec<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse_encoded)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == self.name)
            .map(|cookie| cookie.value().to_owned())
            .collect()
    }

    /// Opens the first sealed value that decrypts to a valid id. Anything else (tampered,
    /// sealed with another key, not an id of ours) means "no session"; the value is never logged.
    pub(crate) fn open(&self, sealed: &[String]) -> Option<SessionId> {
        let jar = CookieJar::new();
        let private = jar.private(&self.key);
        for value in sealed {
            let Some(opened) = private.decrypt(Cookie::new(self.name.clone(), value.clone()))
            else {
                tracing::warn!(
                    cookie = %self.name,
                    "session cookie failed authentication (tampered, or sealed with another key); starting a fresh session"
                );
                continue;
            };
            match SessionId::parse(opened.value()) {
                Ok(id) => return Some(id),
                Err(err) => tracing::warn!(
                    cookie = %self.name,
                    error = %err,
                    "session cookie holds no valid session id; starting a fresh session"
                ),
            }
        }
        None
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

    fn config() -> CookieConfig {
        CookieConfig {
            name: "id".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            max_age: None,
            key: Key::generate(),
        }
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
        assert_eq!(sealed.len(), 1);
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
        let mut bytes = sealed[0].clone().into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        assert_eq!(config.open(&[String::from_utf8(bytes).unwrap()]), None);
        assert_eq!(config.open(&[id.as_str().to_owned()]), None);
    }
}
