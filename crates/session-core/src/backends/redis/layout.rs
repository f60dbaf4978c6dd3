//! How one session is stored in Redis: one string, a version header then the whole state as
//! one JSON object.
//!
//! ```text
//! v1:<tag: 16 hex digits>:{"user":"alice","n":3}
//! ```
//!
//! Each session key maps to the JSON text of its value, embedded as it is (not re-encoded, not
//! escaped into a string), so a load is one `GET` and one JSON parse, and the bytes stored
//! are the state's own plus the 20-byte header. The tag is random and changes with every
//! write: a write that carries the tag its request loaded replaces the value only if the tag
//! is still the stored one (`scripts.rs`, `SAVE`); otherwise it gets the current value back
//! and re-applies only its own changes on top. That is what keeps two concurrent requests
//! that change different keys from undoing each other, now that the value is one string.
//! A random tag rather than a counter: a session deleted and created again under the same
//! id (a move between backends) can never present an old tag that matches by accident.
//!
//! Sessions written by earlier versions are Redis hashes (one field per key); they are still
//! read and written as hashes (see [`super`]), and a `GET` of one answers `WRONGTYPE`.

use std::fmt::Write as _;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::SessionState;

/// The header of every value: `v1:` + 16 hex digits + `:`.
pub(super) const HEADER_LEN: usize = 20;

/// Why a stored string is not a session; never shows the data.
pub(super) type Invalid = String;

/// The header a value written with `tag` starts with: what a conditional write expects.
pub(super) fn header(tag: u64) -> String {
    let mut out = String::with_capacity(HEADER_LEN);
    let _ = write!(out, "v1:{tag:016x}:");
    out
}

/// The stored value of `entries` under a fresh tag, or nothing when there are none (the
/// conditional write then deletes the session: one with no keys is no session). The values
/// are JSON text; the caller has checked those it did not load (see [`check_json`]). Bytes,
/// not a `String`: they go to Redis as they are, with no UTF-8 check of the whole value.
pub(super) fn encode<'a>(entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    if entries.len() == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(HEADER_LEN + 2 + 64 * entries.len());
    out.extend_from_slice(header(rand::random()).as_bytes());
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key).expect("writing into a Vec cannot fail");
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'}');
    out
}

/// [`encode`] of a whole state.
pub(super) fn encode_state(state: &SessionState) -> Vec<u8> {
    encode(state.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// A stored value read back: the state and its tag.
pub(super) fn decode(bytes: &[u8]) -> Result<(SessionState, u64), Invalid> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the stored session is not UTF-8 text")?;
    let tag = tag_of(text).ok_or(NOT_OURS)?;
    let mut de = serde_json::Deserializer::from_str(&text[HEADER_LEN..]);
    let state = de
        .deserialize_map(StateVisitor)
        .and_then(|state| de.end().map(|()| state))
        .map_err(|err| format!("the stored session is not a JSON object of JSON values ({err})"))?;
    Ok((state, tag))
}

/// Checks that `bytes` are the header of a stored session.
pub(super) fn check_header(bytes: &[u8]) -> Result<(), Invalid> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(tag_of)
        .map(drop)
        .ok_or_else(|| NOT_OURS.to_owned())
}

const NOT_OURS: &str = "the stored value is not a session of this library (no v1 header)";

/// The tag of a stored value's header.
fn tag_of(text: &str) -> Option<u64> {
    let header = text.get(..HEADER_LEN)?;
    let hex = header.strip_prefix("v1:")?.strip_suffix(':')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Checks that a value about to be embedded is JSON text: one invalid value would make the
/// whole stored session unreadable, where a hash field only spoiled itself.
pub(super) fn check_json(key: &str, value: &str) -> Result<(), Invalid> {
    serde_json::from_str::<serde::de::IgnoredAny>(value)
        .map(drop)
        .map_err(|_| {
            format!("the value of session key `{key}` is not JSON text; nothing was written")
        })
}

/// Reads the object straight into the state: each value kept as its exact JSON text (one
/// allocation per key and per value, no intermediate map).
struct StateVisitor;

impl<'de> Visitor<'de> for StateVisitor {
    type Value = SessionState;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SessionState, A::Error> {
        let mut state = SessionState::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<String>()? {
            let value: Box<RawValue> = map.next_value()?;
            state.insert(key, Box::<str>::from(value).into_string());
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pairs: &[(&str, &str)]) -> SessionState {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn round_trip_keeps_each_value_exactly() {
        let s = state(&[
            ("user", "\"al\\u0069ce\""),
            ("n", "1.50"),
            ("big", "123456789012345678901234567890"),
            ("quote\"key\n", "{\"a\": [1, 2]}"),
            ("", "null"),
        ]);
        let value = encode_state(&s);
        let (decoded, tag) = decode(&value).unwrap();
        assert_eq!(decoded, s);
        assert!(value.starts_with(header(tag).as_bytes()));
        assert_ne!(
            decode(&encode_state(&s)).unwrap().1,
            tag,
            "a fresh tag per write"
        );
        assert!(encode_state(&SessionState::new()).is_empty());
    }

    #[test]
    fn anything_else_is_invalid_and_says_why_without_the_data() {
        for bad in [
            &b"secret"[..],
            b"v1:0123456789abcdeg:{}",
            b"v1:0123456789abcdef:{\"a\":secret}",
            b"v1:0123456789abcdef:[1]",
            b"v1:0123456789abcdef:{} x",
            b"v2:0123456789abcdef:{}",
            b"v1:0123456789abcdef:{\"a\":\xff}",
        ] {
            let err = decode(bad).unwrap_err();
            assert!(!err.contains("secret"), "{err}");
        }
        assert!(decode(b"v1:00000000000000ff:{}").unwrap().0.is_empty());
    }

    #[test]
    fn values_are_checked_before_they_are_embedded() {
        assert!(check_json("a", "{\"x\":1}").is_ok());
        let err = check_json("a", "1,\"b\":2").unwrap_err();
        assert!(err.contains("`a`") && !err.contains("\"b\""), "{err}");
    }
}
