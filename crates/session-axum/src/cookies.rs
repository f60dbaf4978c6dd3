//! The session cookie: finding it in a request, opening it, and writing it.
//!
//! Same format as actix-session's default (private) cookie: the cookie crate's private jar
//! seals the id (AES-256-GCM, cookie name as associated data, base64 of nonce|ciphertext|tag)
//! and the value is percent-encoded on the way out (`Cookie::encoded`) and decoded on the way in
//! (`parse_encoded`), as actix-web does.

mod private;

use std::borrow::Cow;

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, CookieJar, Key, SameSite};
use percent_encoding::percent_decode_str;
use session_core::{
    plan::{CookiePlan, SameSitePolicy},
    InvalidSessionId, SessionId,
};

pub(crate) use private::CookieKey;

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
    pub(crate) key: CookieKey,
    /// Keys of earlier rotations: cookies they sealed are still accepted, and re-sealed with
    /// `key` (at most [`MAX_FALLBACK_KEYS`]).
    pub(crate) fallback_keys: Vec<CookieKey>,
    pub(crate) security: CookieSecurity,
    /// The refreshed cookie's text around its value, for the layer's own lifetime: kept in
    /// step with the attributes above by [`refresh_template`](Self::refresh_template).
    reissued: Option<ReissueTemplate>,
}

/// The `Set-Cookie` text the cookie crate writes for our cookie with an empty value and the
/// layer's own lifetime, split where the value goes: `name=` and `; HttpOnly; ...; Max-Age=N`.
/// The crate writes the attributes after the value and never makes them depend on it, so a
/// refreshed cookie is `head`, the encoded value, `tail`: the crate's text, without formatting
/// the attributes again on every response (1.3% of a small write via axum, ninth round,
/// docs/benchmarks.md).
#[derive(Clone, Debug, PartialEq)]
struct ReissueTemplate {
    head: String,
    tail: String,
}

/// How the cookie protects the session id: both forms are actix-session's
/// (`CookieContentSecurity::Private` and `::Signed`), so either kind of cookie is shared with
/// an actix service configured the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieSecurity {
    /// Encrypted and authenticated (AES-256-GCM): the id is unreadable and unforgeable. The
    /// default.
    #[default]
    Private,
    /// Signed (HMAC-SHA256): unforgeable, but the id is readable by whoever holds the cookie
    /// (who holds it anyway). For interop with services that expect signed cookies.
    Signed,
}

/// The most fallback keys a layer takes: each one is another open attempt per candidate
/// cookie, for every request that carries one.
pub const MAX_FALLBACK_KEYS: usize = 4;

/// What a request's cookie lets the session be: this id, and whether the cookie must be sent
/// again (sealed with an older key).
pub(crate) struct Opened {
    pub(crate) id: SessionId,
    pub(crate) with_fallback_key: bool,
    /// Which of the request's candidates it is ([`Candidates::get`]).
    pub(crate) index: usize,
}

/// When the browser should drop the cookie: `Max-Age` and/or `Expires`; neither means "when
/// the browser closes".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub(crate) max_age: Option<std::time::Duration>,
    pub(crate) expires: Option<cookie::time::OffsetDateTime>,
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
            .field("fallback_keys", &self.fallback_keys.len())
            .field("security", &self.security)
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

/// The longest cookie value of our name that is kept for opening; a longer one is counted with
/// the skipped candidates. Ours are about a hundred bytes (a sealed id), and browsers store at
/// most 4,096 bytes per cookie. Without it, each of the [`MAX_CANDIDATES`] could be as long as
/// the whole header (hundreds of KB), copied, base64-decoded and AES-opened once per key: work
/// per request that grew with the header times the keys (found by a review).
pub(crate) const MAX_SEALED_VALUE: usize = 4096;

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

    /// The sealed value of candidate `index`, as the request sent it.
    pub(crate) fn get(&self, index: usize) -> Option<&str> {
        self.values.get(index).map(String::as_str)
    }
}

impl CookieConfig {
    /// The cookie of `plan` (session-core's `session_cookie_*` settings, or their defaults),
    /// sealed with `key`.
    pub(crate) fn new(key: Key, plan: &CookiePlan) -> Self {
        Self {
            name: plan.name.clone(),
            path: plan.path.clone(),
            domain: plan.domain.clone(),
            secure: plan.secure,
            http_only: plan.http_only,
            same_site: match plan.same_site {
                SameSitePolicy::Lax => SameSite::Lax,
                SameSitePolicy::Strict => SameSite::Strict,
                SameSitePolicy::None => SameSite::None,
            },
            max_age: plan.max_age,
            key: CookieKey::new(key),
            fallback_keys: Vec::new(),
            security: CookieSecurity::Private,
            reissued: None,
        }
        .with_template()
    }

    /// Computes the refreshed cookie's template again, after the attributes changed (the
    /// layer's `with_*` methods).
    pub(crate) fn refresh_template(&mut self) {
        self.reissued = self.template();
    }

    fn with_template(mut self) -> Self {
        self.refresh_template();
        self
    }

    /// The crate's text for an empty value, split at the first `=` (the crate percent-encodes
    /// any `=` in the name); `None` when that text is no valid header value (then every
    /// refresh goes through the crate, which refuses it in the same way).
    fn template(&self) -> Option<ReissueTemplate> {
        let text = formatted(self.with_lifetime(String::new(), self.lifetime()).encoded());
        header_value(&text)?;
        let (head, tail) = text.split_at(text.find('=')? + 1);
        Some(ReissueTemplate {
            head: head.to_owned(),
            tail: tail.to_owned(),
        })
    }

    /// The layer's own lifetime for the cookie (`with_max_age`).
    pub(crate) fn lifetime(&self) -> Lifetime {
        Lifetime {
            max_age: self.max_age,
            expires: None,
        }
    }

    /// Opens (or verifies) one value with one key: `None` when it does not open, otherwise
    /// whether it holds a session id. A private cookie of a sealed id's length is opened by
    /// [`CookieKey::open_sealed_id`] (in a buffer on the stack, the cipher expanded once; the
    /// id's own text is the one allocation), anything else by the cookie crate.
    fn unseal_id(
        &self,
        key: &CookieKey,
        value: &str,
    ) -> Option<Result<SessionId, InvalidSessionId>> {
        if self.security == CookieSecurity::Private && value.len() == private::SEALED_ID_LEN {
            return key.open_sealed_id(&self.name, value);
        }
        self.unseal(&key.key, value)
            .map(|text| SessionId::parse(&text))
    }

    /// Opens (or verifies) one value with one key, through the cookie crate.
    fn unseal(&self, key: &Key, value: &str) -> Option<String> {
        let jar = CookieJar::new();
        let cookie = Cookie::new(self.name.clone(), value.to_owned());
        let opened = match self.security {
            CookieSecurity::Private => jar.private(key).decrypt(cookie),
            CookieSecurity::Signed => jar.signed(key).verify(cookie),
        };
        opened.map(|c| c.value().to_owned())
    }

    /// The (still sealed) cookies of our name in the request, bounded (see [`MAX_CANDIDATES`]).
    /// One pass over the headers, so the work is linear in their size; opening waits until the
    /// handler touches the session.
    ///
    /// The same cookies as the cookie crate's `Cookie::split_parse_encoded` (what actix-web
    /// reads) with the same values, checked by a property test against it (`cookies/fuzz.rs`),
    /// but only the value of a cookie of our name is percent-decoded: the crate decodes every
    /// name and value and builds a `Cookie` for each, 3% of a small read's CPU in a profile
    /// (docs/benchmarks.md, the seventh round).
    ///
    /// The header is split on `;` as bytes and only each pair needs to be UTF-8: browsers
    /// send a cookie set with a non-ASCII value (`lang=français`) as its raw bytes, and
    /// `HeaderValue::to_str` refuses the whole header for one of them. The session then
    /// looked absent, and a logout deleted nothing and left the session alive (a ninth
    /// review). A `;` byte never occurs inside a multi-byte UTF-8 character, so the pairs
    /// of a header that is UTF-8 throughout are the ones a split of its text gives.
    pub(crate) fn sealed_values(&self, headers: &HeaderMap) -> Candidates {
        let mut candidates = Candidates::default();
        let ours = headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b';'))
            .filter_map(|pair| std::str::from_utf8(pair).ok())
            .filter_map(|pair| self.value_if_ours(pair));
        for value in ours {
            if candidates.values.len() < MAX_CANDIDATES && value.len() <= MAX_SEALED_VALUE {
                candidates.values.push(value.into_owned());
            } else {
                candidates.skipped += 1;
            }
        }
        candidates
    }

    /// The percent-decoded value of one `name=value` pair of a `Cookie` header when its
    /// name, decoded, is ours. The cookie crate's rules: name and value are trimmed, a pair
    /// without `=` or with an empty name is no cookie, and neither is one whose name or value
    /// does not decode to UTF-8 (a name that does not decode is never ours, so comparing
    /// bytes is enough for it).
    fn value_if_ours<'a>(&self, pair: &'a str) -> Option<Cow<'a, str>> {
        let (name, value) = pair.split_once('=')?;
        let name = name.trim();
        let ours = if name.contains('%') {
            percent_decode_str(name).eq(self.name.bytes())
        } else {
            name == self.name
        };
        if !ours || name.is_empty() {
            return None;
        }
        percent_decoded(value.trim())
    }

    /// Opens the first sealed value that decrypts to a valid id. Anything else (tampered,
    /// sealed with another key, not an id of ours) means "no session".
    ///
    /// Logs at most one warning, however many candidates failed or were skipped: a request
    /// decides how many cookies it sends, and a line per cookie let one 120 KB header write
    /// 20,001 lines. The line carries counts only, never a cookie value or an id.
    pub(crate) fn open(&self, candidates: &Candidates) -> Option<Opened> {
        let (mut unauthenticated, mut not_an_id) = (0usize, 0usize);
        let mut found = None;
        'candidates: for (index, value) in candidates.values.iter().enumerate() {
            let keys = std::iter::once(&self.key).chain(self.fallback_keys.iter());
            for (i, key) in keys.enumerate() {
                let Some(opened) = self.unseal_id(key, value) else {
                    continue;
                };
                match opened {
                    Ok(id) => {
                        found = Some(Opened {
                            id,
                            with_fallback_key: i > 0,
                            index,
                        });
                        break 'candidates;
                    }
                    Err(_) => {
                        not_an_id += 1;
                        continue 'candidates;
                    }
                }
            }
            unauthenticated += 1;
        }
        if unauthenticated + not_an_id + candidates.skipped > 0 {
            tracing::warn!(
                cookie = %self.name,
                unauthenticated,
                not_an_id,
                skipped = candidates.skipped,
                max_candidates = MAX_CANDIDATES,
                session_found = found.is_some(),
                "session cookies rejected (tampered, sealed with another key, not a session id, or skipped: beyond the candidate limit or too long)"
            );
        }
        found
    }

    /// The `Set-Cookie` value carrying `id`, sealed, living for `lifetime`.
    pub(crate) fn seal(&self, id: &SessionId, lifetime: Lifetime) -> Option<HeaderValue> {
        let cookie = self.with_lifetime(id.as_str().to_owned(), lifetime);
        let mut jar = CookieJar::new();
        match self.security {
            CookieSecurity::Private => jar.private_mut(&self.key.key).add(cookie),
            CookieSecurity::Signed => jar.signed_mut(&self.key.key).add(cookie),
        }
        let sealed = jar.get(&self.name)?;
        header_value(&formatted(sealed.encoded()))
    }

    /// The `Set-Cookie` value that sends back `sealed`, a value the request's cookie carried
    /// and [`open`](Self::open) opened with the current key, as it is, living for
    /// `lifetime`: what refreshing a persistent cookie's `Max-Age` or `Expires` needs, without sealing
    /// the id again (an AES-GCM seal, a fresh nonce and base64 per response, measured at
    /// about 1 µs). The browser gets back the very value it sent.
    ///
    /// With the layer's own lifetime and a value of base64 characters, standard or URL-safe
    /// (every sealed value: a private cookie is standard base64, a signed one base64 and the
    /// id's URL-safe base64), from the template ([`ReissueTemplate`]), the value escaped as
    /// the crate escapes it: `/` and `=` percent-encoded, the rest as it is (a property test
    /// holds the two to the same text). Anything else goes through the crate.
    pub(crate) fn reissue(&self, sealed: &str, lifetime: Lifetime) -> Option<HeaderValue> {
        // The attributes are fields the crate may set directly: in tests, check that whoever
        // changed them refreshed the template.
        debug_assert_eq!(
            self.reissued,
            self.template(),
            "cookie attributes changed without refresh_template"
        );
        if let Some(template) = self
            .reissued
            .as_ref()
            .filter(|_| lifetime == self.lifetime())
        {
            if let Some(value) = base64_encoded(sealed) {
                let mut text =
                    String::with_capacity(template.head.len() + value.len() + template.tail.len());
                text.push_str(&template.head);
                text.push_str(&value);
                text.push_str(&template.tail);
                return HeaderValue::try_from(text).ok();
            }
        }
        header_value(&formatted(
            self.with_lifetime(sealed.to_owned(), lifetime).encoded(),
        ))
    }

    /// The `Set-Cookie` value that makes the browser drop the cookie.
    pub(crate) fn removal(&self) -> Option<HeaderValue> {
        let mut cookie = self.attributed(String::new());
        cookie.make_removal();
        header_value(&cookie.to_string())
    }

    /// A cookie of our name holding `value`, with the configured attributes and `lifetime`.
    fn with_lifetime(&self, value: String, lifetime: Lifetime) -> Cookie<'static> {
        let mut cookie = self.attributed(value);
        if let Some(max_age) = lifetime.max_age {
            cookie.set_max_age(to_time(max_age));
        }
        if let Some(expires) = lifetime.expires {
            cookie.set_expires(expires);
        }
        cookie
    }

    /// A cookie of our name holding `value`, with the configured attributes.
    fn attributed(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::new(self.name.clone(), value);
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }
}

/// `value` percent-decoded as `percent_decode_str(value).decode_utf8()` decodes it: `%` and
/// two hex digits become that byte, any other `%` stays as it is, and `None` when the result
/// is not UTF-8. A sealed value of ours always has escapes (base64 of 71 bytes, whose one
/// `=` of padding goes out as `%3D`, and each `/` as `%2F`), and the crate's conversion to a `Cow` pushes the
/// decoded bytes one at a time into a vector that grows as it goes: 1-3% of a request via
/// axum in profiles (docs/benchmarks.md, the eighth round). Here the runs between escapes
/// are copied whole into a buffer sized once. Held to the crate's decoder by a property test
/// (`cookies/fuzz.rs`).
fn percent_decoded(value: &str) -> Option<Cow<'_, str>> {
    let bytes = value.as_bytes();
    let Some(mut at) = memchr::memchr(b'%', bytes) else {
        return Some(Cow::Borrowed(value));
    };
    let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut start = 0;
    loop {
        out.extend_from_slice(&bytes[start..at]);
        match (hex(bytes.get(at + 1)), hex(bytes.get(at + 2))) {
            (Some(high), Some(low)) => {
                // Two hex digits: at most 0xff.
                out.push((high * 16 + low) as u8);
                start = at + 3;
            }
            _ => {
                out.push(b'%');
                start = at + 1;
            }
        }
        match memchr::memchr(b'%', &bytes[start..]) {
            Some(next) => at = start + next,
            None => break,
        }
    }
    out.extend_from_slice(&bytes[start..]);
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// The `Set-Cookie` text of `cookie`, written into one buffer sized for a whole cookie:
/// `to_string` grows its buffer piece by piece, reallocating it as it goes (measured on a
/// small write via axum: the allocator under those reallocations was 0.8% of the server's
/// samples, a quarter of `reissue`'s 3.5%; sixth round of docs/benchmarks.md).
fn formatted(cookie: impl std::fmt::Display) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(256);
    let _ = write!(text, "{cookie}");
    text
}

/// `value` percent-encoded as the cookie crate encodes a cookie value, when it is made of
/// base64 characters only, standard or URL-safe (`A-Z a-z 0-9 + / = - _`): of those, the
/// crate's set holds `/` and `=`. `None` for any other value.
fn base64_encoded(value: &str) -> Option<Cow<'_, str>> {
    // Every byte looked at, with no branch per byte: a `match` per byte compiled to a jump
    // table whose mispredictions were 0.28 µs of a small write via axum (eleventh round,
    // docs/benchmarks.md), where compares that the compiler can vectorize take a few ns.
    let (escapes, others) = value
        .bytes()
        .fold((0usize, 0usize), |(escapes, others), b| {
            let escaped = (b == b'/') | (b == b'=');
            let kept = (b.wrapping_sub(b'A') < 26)
                | (b.wrapping_sub(b'a') < 26)
                | (b.wrapping_sub(b'0') < 10)
                | (b == b'+')
                | (b == b'-')
                | (b == b'_');
            (
                escapes + usize::from(escaped),
                others + usize::from(!(escaped | kept)),
            )
        });
    if others > 0 {
        return None;
    }
    if escapes == 0 {
        return Some(Cow::Borrowed(value));
    }
    // The runs between escapes copied whole: pushing one `char` at a time was most of a
    // refreshed cookie's cost (about 0.3 µs of a small write via axum, tenth round,
    // docs/benchmarks.md).
    let mut out = String::with_capacity(value.len() + 2 * escapes);
    let mut rest = value;
    while let Some(at) = memchr::memchr2(b'/', b'=', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        out.push_str(if rest.as_bytes()[at] == b'/' {
            "%2F"
        } else {
            "%3D"
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
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
        let header = config.seal(id, config.lifetime()).unwrap();
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
        assert!(config.open(&sealed).is_none());
    }

    #[test]
    fn a_valid_cookie_among_the_first_candidates_opens() {
        let config = config();
        let id = SessionId::generate();
        let pair = pair_of(&config, &id);
        // Up to MAX_CANDIDATES - 1 bad ones before it: still found.
        let bad = ["id=x"; MAX_CANDIDATES - 1].join("; ");
        let sealed = config.sealed_values(&cookie_header(&format!("{bad}; {pair}")));
        assert_eq!(config.open(&sealed).map(|o| o.id), Some(id.clone()));
        // Past the bound it is not looked at: the request gets a fresh session, not a 5xx.
        let bad = ["id=x"; MAX_CANDIDATES].join("; ");
        let sealed = config.sealed_values(&cookie_header(&format!("{bad}; {pair}")));
        assert!(config.open(&sealed).is_none());
    }

    fn config() -> CookieConfig {
        CookieConfig::new(Key::generate(), &CookiePlan::default())
    }

    /// A value of our name longer than any cookie a browser stores is skipped, not copied or
    /// opened; a valid cookie beside it still opens.
    #[test]
    fn an_overlong_value_is_skipped() {
        let config = config();
        let id = SessionId::generate();
        let pair = pair_of(&config, &id);
        let long = format!("{}={}", config.name, "A".repeat(MAX_SEALED_VALUE + 1));
        let sealed = config.sealed_values(&cookie_header(&format!("{long}; {pair}")));
        assert_eq!((sealed.values.len(), sealed.skipped), (1, 1));
        assert_eq!(config.open(&sealed).map(|o| o.id), Some(id));
    }

    #[test]
    fn seal_then_open_round_trips() {
        let config = config();
        let id = SessionId::generate();
        let header = config.seal(&id, config.lifetime()).unwrap();
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
        assert_eq!(config.open(&sealed).map(|o| o.id), Some(id));
    }

    #[test]
    fn other_key_or_tampering_opens_nothing() {
        let config = config();
        let id = SessionId::generate();
        let header = config.seal(&id, config.lifetime()).unwrap();
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
            key: CookieKey::new(Key::generate()),
            ..config.clone()
        };
        assert!(other.open(&sealed).is_none());
        let mut bytes = sealed.values[0].clone().into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        assert!(config
            .open(&only(String::from_utf8(bytes).unwrap()))
            .is_none());
        assert!(config.open(&only(id.as_str().to_owned())).is_none());
    }
}

#[cfg(test)]
mod fuzz;
