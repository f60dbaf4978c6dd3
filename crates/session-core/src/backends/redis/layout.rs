//! How one session is stored in Redis: one string, a version header then the whole state as
//! one JSON object of records.
//!
//! ```text
//! v1:<tag: 16 hex digits>:{"=user":"alice","=n":3,"=cart":[1],"-cart":0,"=n":4
//! ```
//!
//! Each record's name is an operation and a session key: `=key` sets the key to the JSON
//! text that follows (embedded as it is, not re-encoded, not escaped into a string), `-key`
//! removes it; read in order, a later record wins. A load is one `GET` and one JSON parse.
//! The object is stored without its closing brace, so a write of a few changed keys
//! appends their records (`APPEND`, `scripts.rs` `AMEND`, `AMEND_LOADED`) instead of sending the whole
//! session: field-level writes as the hash of earlier versions had, so two concurrent
//! requests that change different keys both keep their change with no version check at all.
//! When the records that later ones override pile up, a write rewrites the session whole
//! (one `=` record per key), conditional on the version: the header's random tag, new with
//! every rewrite, and the value's length, which every append grows. A random tag rather
//! than a counter: a session deleted and created again under the same id (a move between
//! backends) never presents an old tag that matches by accident.
//!
//! Records alone, without the header (`,"=k":v...`), are no session: what a write at the
//! loaded version leaves when a logout came between its load and its `APPEND`, which is not
//! conditional (`RedisBackend::append_request`). Every read takes them for an absent session;
//! their writer deletes them at once, and they carry the expiry it set.
//!
//! Sessions written by earlier versions are Redis hashes (one field per key); they are still
//! read and written as hashes (see [`super`]), and a `GET` of one answers `WRONGTYPE`.

use std::fmt::Write as _;

use serde_json::value::RawValue;

use crate::{Changes, SessionState};

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
/// are JSON text; the caller has checked those it did not load (see
/// `state::check_values_are_json`). Bytes,
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
        push_record(&mut out, SET, key, value);
    }
    out
}

/// [`encode`] of a whole state.
pub(super) fn encode_state(state: &SessionState) -> Vec<u8> {
    encode(state.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The records of `changes`, to append to a stored value: `,"=k":v` per key set, `,"-k":0`
/// per key removed.
pub(super) fn records(changes: &Changes) -> Vec<u8> {
    let mut out = Vec::with_capacity(records_len(changes));
    for key in &changes.remove {
        out.push(b',');
        push_record(&mut out, REMOVE, key, "0");
    }
    for (key, value) in &changes.set {
        out.push(b',');
        push_record(&mut out, SET, key, value);
    }
    out
}

/// The bytes [`records`] makes of `changes`: `,"=k":v` and `,"-k":0`.
pub(super) fn records_len(changes: &Changes) -> usize {
    let set: usize = changes
        .set
        .iter()
        .map(|(k, v)| escaped_len(k) + v.len() + 5)
        .sum();
    set + changes
        .remove
        .iter()
        .map(|k| escaped_len(k) + 6)
        .sum::<usize>()
}

/// The bytes [`encode`] makes of `entries`, plus two: what a rewrite would store, to weigh
/// against what is stored.
pub(super) fn encoded_len(entries: &[(&str, &str)]) -> usize {
    HEADER_LEN
        + 2
        + entries
            .iter()
            .map(|(k, v)| escaped_len(k) + v.len() + 5)
            .sum::<usize>()
}

/// The length of `key` escaped as serde_json writes it inside a JSON string (quotes not
/// counted). Exact rather than `key.len()`: a session whose keys need many escapes would
/// otherwise look piled up right after a rewrite, and be rewritten by every write.
fn escaped_len(key: &str) -> usize {
    key.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\x08' | b'\x0c' | b'\n' | b'\r' | b'\t' => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// A stored value read back: the state and its tag.
///
/// The object is read as it is stored, open, one record at a time: appending its closing
/// brace first would grow the reply's buffer (allocated to its exact size) to twice its size
/// on every load, which for a 20 KB session showed up as glibc trimming and growing its heap
/// and about a quarter of the request's CPU time (docs/benchmarks.md).
pub(super) fn decode(bytes: &[u8]) -> Result<(SessionState, u64), Invalid> {
    let tag = std::str::from_utf8(bytes.get(..HEADER_LEN).ok_or(NOT_OURS)?)
        .ok()
        .and_then(tag_of)
        .ok_or(NOT_OURS)?;
    let damaged =
        |why: &str| format!("the stored session is not an object of session records ({why})");
    let mut rest = skip_whitespace(&bytes[HEADER_LEN..])
        .strip_prefix(b"{")
        .ok_or_else(|| damaged("no opening brace"))?;
    // Sized from the value (a record takes a few dozen bytes and more), so that a large
    // session is not rehashed four or five times while it is read; at most 64 keys' room.
    let mut state = SessionState::with_capacity((bytes.len() / 128).min(64));
    let mut first = true;
    loop {
        rest = skip_whitespace(rest);
        if rest.is_empty() {
            return Ok((state, tag));
        }
        if !std::mem::take(&mut first) {
            rest = rest
                .strip_prefix(b",")
                .ok_or_else(|| damaged("records not separated by commas"))?;
            rest = skip_whitespace(rest);
        }
        // Checked first so that a parse error cannot quote data ("invalid type: integer 5").
        if !rest.starts_with(b"\"") {
            return Err(damaged("a record name that is not a string"));
        }
        // serde_json counts its columns from where each parse starts: say where that is.
        let at = |rest: &[u8]| bytes.len() - rest.len();
        let (Name(name), after) = one::<Name>(rest)
            .map_err(|err| damaged(&format!("{err}, counted from byte {}", at(rest))))?;
        rest = skip_whitespace(after)
            .strip_prefix(b":")
            .ok_or_else(|| damaged("a record name without its value"))?;
        let (value, after) = one::<&RawValue>(rest)
            .map_err(|err| damaged(&format!("{err}, counted from byte {}", at(rest))))?;
        rest = after;
        let (op, key) = match name.as_bytes().first() {
            Some(&op @ (SET | REMOVE)) => (op, &name[1..]),
            _ => return Err(damaged("a record name without its operation")),
        };
        if op == REMOVE {
            state.remove(key);
        } else {
            // One hash of the key per record (a lookup first would be a second one).
            state.insert(key.to_owned(), value.get().to_owned());
        }
    }
}

/// A record's name: borrowed from the value unless it has escapes (a key with a quote). One
/// parse, and only a syntax error can fail it (a type error could quote the name).
struct Name<'a>(std::borrow::Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(name.into()))
            }
            fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(name.to_owned().into()))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// The one JSON value `bytes` start with, and the bytes after it.
fn one<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<(T, &'a [u8]), String> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    match values.next() {
        Some(Ok(value)) => Ok((value, &bytes[values.byte_offset()..])),
        Some(Err(err)) => Err(err.to_string()),
        None => Err("a record cut short".to_owned()),
    }
}

fn skip_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// The operation of a record that sets its key.
const SET: u8 = b'=';
/// The operation of a record that removes its key.
const REMOVE: u8 = b'-';

/// `"<op><key>":<value>`, the key escaped as a JSON string.
fn push_record(out: &mut Vec<u8>, op: u8, key: &str, value: &str) {
    let start = out.len();
    serde_json::to_writer(&mut *out, key).expect("writing into a Vec cannot fail");
    out.insert(start + 1, op);
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
}

/// Checks that `bytes` are the header of a stored session.
pub(super) fn check_header(bytes: &[u8]) -> Result<(), Invalid> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(tag_of)
        .map(drop)
        .ok_or_else(|| NOT_OURS.to_owned())
}

/// The first byte of every record, so of a value made of records alone: what an `APPEND`
/// leaves when the session it was meant for was deleted (or expired) in between
/// (`RedisBackend::append_request`). Such a value is no session: reads take it for an absent
/// one, and the write that made it deletes it.
pub(super) const ORPHAN: u8 = b',';

/// True when a stored value (or its first bytes) is records alone: see [`ORPHAN`].
pub(super) fn is_orphan(bytes: &[u8]) -> bool {
    bytes.first() == Some(&ORPHAN)
}

pub(super) const NOT_OURS: &str =
    "the stored value is not a session of this library (no v1 header)";

/// The tag of a stored value's header.
fn tag_of(text: &str) -> Option<u64> {
    let header = text.get(..HEADER_LEN)?;
    let hex = header.strip_prefix("v1:")?.strip_suffix(':')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
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
            b"v1:0123",
            b"v1:0123456789abcdeg:{",
            b"v1:0123456789abcdef:{\"=a\":secret",
            b"v1:0123456789abcdef:[1",
            b"v1:0123456789abcdef:{\"=a\":1}",
            b"v1:0123456789abcdef:{} x",
            b"v2:0123456789abcdef:{",
            b"v1:0123456789abcdef:{\"=a\":\xff",
            b"v1:0123456789abcdef:{\"=a\":1 \"=b\":2",
            b"v1:0123456789abcdef:{\"=a\":1,",
            b"v1:0123456789abcdef:{,\"=a\":1",
            b"v1:0123456789abcdef:{\"=a\" 1",
            b"v1:0123456789abcdef:{1234567:1",
            b"v1:0123456789abcdef:{\"=a\":1234567secret",
            b"v1:0123456789abcdef:",
        ] {
            let err = decode(bad).unwrap_err();
            assert!(!err.contains("secret") && !err.contains("1234567"), "{err}");
        }
        assert!(decode(b"v1:00000000000000ff:{").unwrap().0.is_empty());
        // Whitespace between records, as a hand edit may leave, is JSON all the same.
        assert_eq!(
            decode(b"v1:00000000000000ff: { \"=a\" : 1 ,\n\"-a\":0, \"=b\":[2] ")
                .unwrap()
                .0,
            state(&[("b", "[2]")])
        );
        // A record without its operation is not ours either.
        assert!(decode(br#"v1:00000000000000ff:{"a":1"#).is_err());
    }

    #[test]
    fn appended_records_set_and_remove_keys() {
        let s = state(&[("a", "1"), ("b", "2"), ("we\"ird", "3")]);
        let mut value = encode_state(&s);
        let mut changes = Changes::default();
        changes.set("a", "10");
        changes.set("c", "[3]");
        changes.remove("we\"ird");
        value.extend_from_slice(&records(&changes));
        let (decoded, _) = decode(&value).unwrap();
        assert_eq!(decoded, state(&[("a", "10"), ("b", "2"), ("c", "[3]")]));
        // Removed then set again by a later write: the later record wins.
        let mut again = Changes::default();
        again.set("we\"ird", "4");
        value.extend_from_slice(&records(&again));
        assert_eq!(decode(&value).unwrap().0["we\"ird"], "4");
        let pairs: Vec<(&str, &str)> = s.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(encoded_len(&pairs), encode_state(&s).len() + 2);
        assert_eq!(records_len(&changes), records(&changes).len());
        // Keys that need escapes are counted as stored (a control character takes six bytes).
        let mut escapes = Changes::default();
        escapes.set("\u{1}\"\\\n\t\u{7f}é", "[1]");
        escapes.remove("\u{0}\r");
        assert_eq!(records_len(&escapes), records(&escapes).len());
        let odd = state(&[("\u{1f}\u{8}\u{c}", "null"), ("plain", "2")]);
        let pairs: Vec<(&str, &str)> = odd.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(encoded_len(&pairs), encode_state(&odd).len() + 2);
    }
}
