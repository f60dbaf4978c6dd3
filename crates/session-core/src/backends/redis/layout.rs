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
//! their writer deletes them at once, and they carry the expiry it set. The writer tells them
//! from a session by the length its `APPEND` answers: a whole value is written at an odd
//! length and records are appended in batches of even length (a space pads either, JSON
//! whitespace), so a session's length is odd and records alone are even
//! ([`is_session_length`]).
//!
//! Sessions written by earlier versions are Redis hashes (one field per key); they are still
//! read and written as hashes (see [`super`]), and a `GET` of one answers `WRONGTYPE`.

use std::{borrow::Cow, fmt::Write as _, ops::Range};

use serde_json::value::RawValue;

use crate::{
    loaded::{Key, Span},
    Changes, LoadedState, SessionState,
};

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
/// Of odd length (a space at the end when needed): see [`is_session_length`].
pub(super) fn encode<'a>(entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    encode_tagged(entries, crate::backend::fresh_token())
}

/// [`encode`] under the tag `tag`: a move's copy carries the move's token
/// (`SessionBackend::create_many_tagged`).
fn encode_tagged<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    tag: u64,
) -> Vec<u8> {
    if entries.len() == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(HEADER_LEN + 3 + 64 * entries.len());
    out.extend_from_slice(header(tag).as_bytes());
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_record(&mut out, SET, key, value);
    }
    pad(&mut out, Part::Whole);
    out
}

/// [`encode`] of a whole state, under `tag` when given, else a fresh one.
pub(super) fn encode_state(state: &SessionState, tag: Option<u64>) -> Vec<u8> {
    let entries = state.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    encode_tagged(entries, tag.unwrap_or_else(crate::backend::fresh_token))
}

/// The records of `changes`, to append to a stored value: `,"=k":v` per key set, `,"-k":0`
/// per key removed. Of even length (a space at the end when needed): see
/// [`is_session_length`].
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
    pad(&mut out, Part::Records);
    debug_assert_eq!(out.len(), records_len(changes));
    out
}

/// The bytes [`records`] makes of `changes`: `,"=k":v` and `,"-k":0`, and the pad.
pub(super) fn records_len(changes: &Changes) -> usize {
    let set: usize = changes
        .set
        .iter()
        .map(|(k, v)| escaped_len(k) + v.len() + 5)
        .sum();
    let len = set
        + changes
            .remove
            .iter()
            .map(|k| escaped_len(k) + 6)
            .sum::<usize>();
    padded_len(len, Part::Records)
}

/// What gives a stored value's length its parity: JSON whitespace, which a read skips.
const PAD: u8 = b' ';

/// What a stored value's length is padded for: a whole value is of odd length and a batch
/// of records of even length ([`is_session_length`]).
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Whole,
    Records,
}

/// `len` once padded to the parity of `part`.
fn padded_len(len: usize, part: Part) -> usize {
    if is_session_length(len) == (part == Part::Whole) {
        len
    } else {
        len + 1
    }
}

/// Pads `out` to the parity of `part`: the one place [`encode`] and [`records`] keep the
/// rule of [`is_session_length`].
fn pad(out: &mut Vec<u8>, part: Part) {
    if padded_len(out.len(), part) != out.len() {
        out.push(PAD);
    }
}

/// True when a stored value's length says it holds a session, as an `APPEND`'s answer
/// tells (`RedisBackend::append_request`): every whole value this library writes is of odd
/// length and every batch of records it appends of even length, so a session is of odd
/// length however many records were appended to it, and records alone (`ORPHAN`: appended
/// to a key a logout deleted) are of even length. The answer comes from the `APPEND` itself,
/// atomically, where reading the header took a third command. Values written before this
/// rule, of any length, are read as ever; one of even length is rewritten by its next write
/// at a version (`RedisBackend::apply_versioned`) when that conditional rewrite wins (when
/// another write came in between, that write appends instead); until then an even length
/// only sends a write to read the header, as every write did before. During a rolling
/// upgrade, an older writer's record batches (of any length) make about half the sessions
/// they write even again, so the newer writers rewrite those: more rewrites while both
/// versions run, none after.
pub(super) fn is_session_length(len: usize) -> bool {
    len % 2 == 1
}

/// The bytes [`encode`] makes of `entries`, plus two: what a rewrite would store, to weigh
/// against what is stored.
pub(super) fn encoded_len(entries: &[(&str, &str)]) -> usize {
    let len = HEADER_LEN
        + entries
            .iter()
            .map(|(k, v)| escaped_len(k) + v.len() + 5)
            .sum::<usize>();
    padded_len(len, Part::Whole) + 2
}

/// The length of `key` escaped as serde_json writes it inside a JSON string (quotes not
/// counted). Exact rather than `key.len()`: a session whose keys need many escapes would
/// otherwise look piled up right after a rewrite, and be rewritten by every write.
///
/// Compares without a branch per byte (a `match` compiled to a jump table), as the other
/// per-byte checks: every write at a version sums it over the whole session's keys.
fn escaped_len(key: &str) -> usize {
    key.bytes()
        .map(|b| {
            // `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`; any other control character is `\u00XX`.
            let short = (b == b'"')
                | (b == b'\\')
                | (b == b'\x08')
                | (b == b'\x0c')
                | (b == b'\n')
                | (b == b'\r')
                | (b == b'\t');
            let control = b < 0x20;
            1 + usize::from(short) + 5 * usize::from(control & !short)
        })
        .sum()
}

/// A stored value read back: the state and its tag.
///
/// The object is read as it is stored, open, one record at a time: appending its closing
/// brace first would grow the reply's buffer (allocated to its exact size) to twice its size
/// on every load, which for a 20 KB session showed up as glibc trimming and growing its heap
/// and about a quarter of the request's CPU time (docs/benchmarks.md).
///
/// Records are delimited by hand where that is plain (a name or a string value without
/// escapes, a number) and by serde_json otherwise; both accept the same records and read the
/// same state from them (unit tests run the two against each other), and the hand path is
/// the common one: serde_json's per-value set-up and its string scan (eight bytes at a time)
/// were most of a 20 KB load (sixth round, docs/benchmarks.md).
pub(super) fn decode(bytes: &[u8]) -> Result<(SessionState, u64), Invalid> {
    let (tag, start) = opened(bytes)?;
    // One UTF-8 check of the whole value (JSON text is UTF-8, so a value that is not is
    // damaged anyway); every slice below starts and ends at an ASCII byte, so each is a
    // `&str` with no check of its own.
    let text = std::str::from_utf8(bytes).map_err(|err| not_utf8(err.valid_up_to()))?;
    // Straight into the state, records applied in order. A value written whole (a create, a
    // rewrite) holds each key once, so its records are inserted with one hash each; only
    // appended records override, and from the first one that does on, a record looks its
    // key up first and overwrites the value in place, so a counter's records (a small
    // session written often) cost a hash each and no allocation. (A scratch map of the
    // latest record per key, copied into the state at the end, cost a second map and a
    // second hash per key: without it the decode went from 21.3% to 18.2% of a 2 KB read's
    // CPU, ninth round, docs/benchmarks.md.)
    let mut state = crate::state::state_with_capacity(capacity_for(bytes.len()));
    let mut overriding = false;
    for_each_record(text, start, |record| {
        let key = record.key.name(text);
        apply(
            &mut state,
            &mut overriding,
            record.op,
            key,
            &text[record.value],
        );
    })?;
    Ok((state, tag))
}

/// [`decode`] into a [`LoadedState`], which keeps `bytes` and reads keys and values in place
/// (the same records, the same state).
pub(super) fn decode_in_place(bytes: Vec<u8>) -> Result<(LoadedState, u64), Invalid> {
    let (tag, start) = match opened(&bytes) {
        Ok(opened) => opened,
        Err(err) => {
            super::held_reply::release(bytes);
            return Err(err);
        }
    };
    let capacity = capacity_for(bytes.len());
    let text = String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        super::held_reply::release(err.into_bytes());
        not_utf8(at)
    })?;
    let state = LoadedState::read(text, capacity, |filler| {
        for_each_record(filler.text(), start, |record| {
            let key = match record.key {
                RecordKey::At(range) => Key::At(Span::of(range)),
                RecordKey::Unescaped(ref key) => Key::Unescaped(key),
            };
            if record.op == REMOVE {
                filler.remove(key);
            } else {
                filler.set(key, Span::of(record.value));
            }
        })
    })?;
    Ok((state, tag))
}

/// Room from a value's size (a record takes a few dozen bytes and more), so that a large
/// session is not rehashed (every key hashed again) while it is read: at most 56 keys' room,
/// which is 64 buckets, however large the values.
fn capacity_for(len: usize) -> usize {
    (len / 128).clamp(4, 56)
}

/// One record of a stored value, as [`for_each_record`] hands it over.
struct Record<'t> {
    /// [`SET`] or [`REMOVE`].
    op: u8,
    key: RecordKey<'t>,
    /// Where the value's JSON text sits in the records' text.
    value: Range<usize>,
}

/// A record's key: where the value's text holds it as it is, or unescaped (a key with a
/// quote, a backslash or a control character).
enum RecordKey<'t> {
    At(Range<usize>),
    Unescaped(Cow<'t, str>),
}

impl RecordKey<'_> {
    /// The key, of the value's `text`.
    fn name<'a>(&'a self, text: &'a str) -> &'a str {
        match self {
            RecordKey::At(range) => &text[range.clone()],
            RecordKey::Unescaped(key) => key,
        }
    }
}

/// Reads the records of a stored value's `text`, from byte `start` (after its opening
/// brace), in order, handing each to `apply`, except that of a run of records for one key
/// only the last is handed over. Every range handed over is of `text`.
///
/// Records are delimited by hand where that is plain (a name or a string value without
/// escapes, a number) and by serde_json otherwise: see [`decode`].
fn for_each_record<'t>(
    text: &'t str,
    start: usize,
    mut apply: impl FnMut(Record<'t>),
) -> Result<(), Invalid> {
    let b = text.as_bytes();
    // The last record read, applied when the next one is for another key: a run of records
    // for one key (a counter's, appended write after write) costs one hash, not one each
    // (about 40 ns a record: 0.8 µs of a 20 KB write, eleventh round, docs/benchmarks.md).
    let mut pending: Option<Record<'t>> = None;
    let mut pos = start;
    let mut first = true;
    loop {
        pos = skip_whitespace_at(b, pos);
        if pos == b.len() {
            break;
        }
        if !std::mem::take(&mut first) {
            if b[pos] != b',' {
                return Err(damaged("records not separated by commas"));
            }
            pos = skip_whitespace_at(b, pos + 1);
        }
        // Checked first so that a parse error cannot quote data ("invalid type: integer 5").
        if b.get(pos) != Some(&b'"') {
            return Err(damaged("a record name that is not a string"));
        }
        let (op, key, end) = match plain_string_end(b, pos) {
            Some(end) => (
                b.get(pos + 1).copied(),
                RecordKey::At(pos + 2..end - 1),
                end,
            ),
            None => {
                let (Name(name), after) = one::<Name>(&b[pos..])
                    .map_err(|err| damaged(&format!("{err}, counted from byte {pos}")))?;
                let op = name.as_bytes().first().copied();
                // The operation off the front (a name that starts with anything else is
                // refused below, before its key is read).
                let key = match name {
                    Cow::Borrowed(name) => Cow::Borrowed(name.get(1..).unwrap_or("")),
                    Cow::Owned(mut name) => {
                        if !name.is_empty() {
                            name.remove(0);
                        }
                        Cow::Owned(name)
                    }
                };
                (op, RecordKey::Unescaped(key), b.len() - after.len())
            }
        };
        pos = skip_whitespace_at(b, end);
        if b.get(pos) != Some(&b':') {
            return Err(damaged("a record name without its value"));
        }
        pos = skip_whitespace_at(b, pos + 1);
        let value = match plain_value_end(b, pos) {
            Some(end) => pos..end,
            None => {
                let (_, after) = one::<&RawValue>(&b[pos..])
                    .map_err(|err| damaged(&format!("{err}, counted from byte {pos}")))?;
                pos..b.len() - after.len()
            }
        };
        pos = value.end;
        let op = match op {
            Some(op @ (SET | REMOVE)) => op,
            _ => return Err(damaged("a record name without its operation")),
        };
        let record = Record { op, key, value };
        // A record for the same key as the one before it: that one is dead (a record sets or
        // removes its key whatever came before), and only the last of the run is applied.
        if pending
            .as_ref()
            .is_some_and(|before| before.key.name(text) == record.key.name(text))
        {
            pending = Some(record);
            continue;
        }
        if let Some(before) = pending.replace(record) {
            apply(before);
        }
    }
    if let Some(last) = pending {
        apply(last);
    }
    Ok(())
}

/// One record (its operation, its key and its value) applied to the state being read: see
/// [`decode`].
fn apply(state: &mut SessionState, overriding: &mut bool, op: u8, key: &str, value: &str) {
    if op == REMOVE {
        state.remove(key);
        *overriding = true;
    } else if !*overriding {
        *overriding = state.insert(key.to_owned(), value.to_owned()).is_some();
    } else if let Some(old) = state.get_mut(key) {
        old.clear();
        old.push_str(value);
    } else {
        state.insert(key.to_owned(), value.to_owned());
    }
}

/// The tag of a stored value's header and where its records start: after the header's
/// opening brace (the object is stored open, see [`decode`]). What comes before is ASCII.
fn opened(bytes: &[u8]) -> Result<(u64, usize), Invalid> {
    let tag = std::str::from_utf8(bytes.get(..HEADER_LEN).ok_or(NOT_OURS)?)
        .ok()
        .and_then(tag_of)
        .ok_or(NOT_OURS)?;
    let body = skip_whitespace(&bytes[HEADER_LEN..])
        .strip_prefix(b"{")
        .ok_or_else(|| damaged("no opening brace"))?;
    Ok((tag, bytes.len() - body.len()))
}

/// Why a value that is not UTF-8 is no session: where its first bad byte is.
fn not_utf8(at: usize) -> Invalid {
    damaged(&format!("not UTF-8, from byte {at}"))
}

/// Why a value with our header is not a session: `why` names the fault, never the data.
fn damaged(why: &str) -> Invalid {
    format!("the stored session is not an object of session records ({why})")
}

/// The end (past its closing quote) of the JSON string at `b[pos]` (a `"`) when it is plain:
/// no escape and no control character, which makes it valid JSON as it is (the text is
/// UTF-8). `None` sends anything else to serde_json.
fn plain_string_end(b: &[u8], pos: usize) -> Option<usize> {
    let inner = &b[pos + 1..];
    let close = memchr::memchr2(b'"', b'\\', inner)?;
    (inner[close] == b'"' && !has_control(&inner[..close])).then_some(pos + 1 + close + 1)
}

/// True when `text` holds a byte below 0x20, which a JSON string may not hold as it is.
/// Sixteen bytes at a time, with no early exit inside a chunk, which the compiler turns into
/// vector compares.
fn has_control(text: &[u8]) -> bool {
    let chunks = text.chunks_exact(16);
    let tail = chunks.remainder().iter().any(|&c| c < 0x20);
    tail || chunks
        .map(|chunk| chunk.iter().fold(0u8, |seen, &c| seen | u8::from(c < 0x20)))
        .any(|seen| seen != 0)
}

/// The end of the JSON value at `b[pos]` when it is a plain string or a number (what
/// sessions mostly hold); `None` for anything else (objects, arrays, literals, escapes),
/// which serde_json delimits.
fn plain_value_end(b: &[u8], pos: usize) -> Option<usize> {
    match b.get(pos)? {
        b'"' => plain_string_end(b, pos),
        b'-' | b'0'..=b'9' => number_end(b, pos),
        _ => None,
    }
}

/// The end of the JSON number at `b[pos]`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`,
/// or `None` when it does not have that form (serde_json then says why).
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i + 1),
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// A record's name: borrowed from the value unless it has escapes (a key with a quote). One
/// parse, and only a syntax error can fail it (a type error could quote the name).
struct Name<'a>(Cow<'a, str>);

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

/// The first index from `pos` on that is not JSON whitespace.
fn skip_whitespace_at(bytes: &[u8], pos: usize) -> usize {
    bytes.len() - skip_whitespace(&bytes[pos..]).len()
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

/// What a move leaves where it took a session from, for
/// [`MOVED_MARKER_TTL`](crate::MOVED_MARKER_TTL) (`SessionBackend::retire_many`, `scripts.rs`
/// `RETIRE`): `,"~moved":"<token: 16 hex digits>"`, shaped as records alone (starting with
/// [`ORPHAN`], of even length), so every read takes it for no session, and a create writes
/// over it, in this version and in the ones before it.
pub(super) fn moved_marker(token: u64) -> Vec<u8> {
    let mut out = MOVED_PREFIX.to_vec();
    out.extend_from_slice(format!("\"{token:016x}\"").as_bytes());
    debug_assert!(!is_session_length(out.len()));
    out
}

/// How every moved marker starts ([`moved_marker`]).
pub(super) const MOVED_PREFIX: &[u8] = b",\"~moved\":";

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
    // 16 hex digits (either case), with no branch per digit: this runs on every load, and
    // a check then `from_str_radix` took about 70 ns (eleventh round, docs/benchmarks.md).
    let (tag, ok) = hex.bytes().fold((0u64, true), |(tag, ok), b| {
        let digit = b.wrapping_sub(b'0');
        let letter = (b | 0x20).wrapping_sub(b'a');
        let value = if digit < 10 {
            digit
        } else {
            letter.wrapping_add(10)
        };
        (
            tag << 4 | u64::from(value & 0xf),
            ok & ((digit < 10) | (letter < 6)),
        )
    });
    ok.then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::state;

    #[test]
    fn the_moved_marker_is_no_session_to_any_reader() {
        for token in [0, 1, u64::MAX] {
            let marker = moved_marker(token);
            assert!(is_orphan(&marker));
            assert!(!is_session_length(marker.len()));
            assert!(marker.starts_with(MOVED_PREFIX));
            assert!(decode(&marker).is_err());
        }
        assert_ne!(moved_marker(1), moved_marker(2));
    }

    /// The decoder before the hand-delimited path: serde_json for every name and value,
    /// each record owned as it is read. The oracle of the differential test below.
    /// The header is read as `decode` reads it (`opened`): the tests compare the records.
    pub(super) fn reference_decode(bytes: &[u8]) -> Result<(SessionState, u64), Invalid> {
        let (tag, start) = opened(bytes)?;
        let mut rest = &bytes[start..];
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

    /// [`decode`], checked against [`decode_in_place`]: both read the same state, or fail
    /// with the same message.
    fn both(bytes: &[u8]) -> Result<(SessionState, u64), Invalid> {
        let mapped = decode(bytes);
        let in_place = decode_in_place(bytes.to_vec()).map(|(loaded, tag)| {
            let state = loaded.to_state();
            assert_eq!(state.len(), loaded.len());
            (state, tag)
        });
        assert_eq!(mapped, in_place, "{:?}", String::from_utf8_lossy(bytes));
        mapped
    }

    #[test]
    fn escaped_len_is_what_serde_json_writes_for_every_character_class() {
        for c in (0u8..=127)
            .map(char::from)
            .chain(['é', '€', '\u{7f}', '\u{2028}'])
        {
            let key = format!("a{c}b");
            let written = serde_json::to_string(&key).unwrap().len() - 2;
            assert_eq!(escaped_len(&key), written, "{c:?}");
        }
    }

    #[test]
    fn tags_are_sixteen_hex_digits_of_either_case() {
        for tag in [0, 1, 0xff, 0x0123_4567_89ab_cdef, u64::MAX, rand::random()] {
            assert_eq!(tag_of(&header(tag)), Some(tag));
            assert_eq!(
                tag_of(&header(tag).to_uppercase().replace('V', "v")),
                Some(tag)
            );
        }
        for bad in [
            "v1:0123456789abcdeg:",
            "v1:0123456789abcde/:",
            "v1:0123456789abcde@:",
            "v1:0123456789abcde`:",
            "v1:0123456789abcde :",
            "v1:+123456789abcdef:",
            "v1:0123456789abcdef;",
            "v2:0123456789abcdef:",
            "v1:0123456789abcdef",
        ] {
            assert_eq!(tag_of(bad), None, "{bad}");
        }
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
        let value = encode_state(&s, None);
        let (decoded, tag) = both(&value).unwrap();
        assert_eq!(decoded, s);
        assert!(value.starts_with(header(tag).as_bytes()));
        assert_ne!(
            decode(&encode_state(&s, None)).unwrap().1,
            tag,
            "a fresh tag per write"
        );
        assert!(encode_state(&SessionState::new(), None).is_empty());
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
            let err = both(bad).unwrap_err();
            assert!(!err.contains("secret") && !err.contains("1234567"), "{err}");
        }
        assert!(both(b"v1:00000000000000ff:{").unwrap().0.is_empty());
        // Whitespace between records, as a hand edit may leave, is JSON all the same.
        assert_eq!(
            both(b"v1:00000000000000ff: { \"=a\" : 1 ,\n\"-a\":0, \"=b\":[2] ")
                .unwrap()
                .0,
            state(&[("b", "[2]")])
        );
        // A record without its operation is not ours either.
        assert!(both(br#"v1:00000000000000ff:{"a":1"#).is_err());
    }

    #[test]
    fn appended_records_set_and_remove_keys() {
        let s = state(&[("a", "1"), ("b", "2"), ("we\"ird", "3")]);
        let mut value = encode_state(&s, None);
        let mut changes = Changes::default();
        changes.set("a", "10");
        changes.set("c", "[3]");
        changes.remove("we\"ird");
        value.extend_from_slice(&records(&changes));
        let (decoded, _) = both(&value).unwrap();
        assert_eq!(decoded, state(&[("a", "10"), ("b", "2"), ("c", "[3]")]));
        // Removed then set again by a later write: the later record wins.
        let mut again = Changes::default();
        again.set("we\"ird", "4");
        value.extend_from_slice(&records(&again));
        assert_eq!(both(&value).unwrap().0["we\"ird"], "4");
        let pairs: Vec<(&str, &str)> = s.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(encoded_len(&pairs), encode_state(&s, None).len() + 2);
        assert_eq!(records_len(&changes), records(&changes).len());
        // Keys that need escapes are counted as stored (a control character takes six bytes).
        let mut escapes = Changes::default();
        escapes.set("\u{1}\"\\\n\t\u{7f}é", "[1]");
        escapes.remove("\u{0}\r");
        assert_eq!(records_len(&escapes), records(&escapes).len());
        let odd = state(&[("\u{1f}\u{8}\u{c}", "null"), ("plain", "2")]);
        let pairs: Vec<(&str, &str)> = odd.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(encoded_len(&pairs), encode_state(&odd, None).len() + 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Runs of records for one key (only the last of each is applied) read as the
        /// records applied one by one: keys from two letters, one of them sometimes written
        /// escaped (`\u0061` is `a`), sets and removes, whitespace around the commas.
        #[test]
        fn runs_of_records_for_one_key_read_as_applied_in_order(
            records in proptest::collection::vec(
                (0..3usize, proptest::bool::ANY, json_value(), " {0,1}"),
                0..40,
            ),
        ) {
            let mut value = header(0xff).into_bytes();
            value.push(b'{');
            for (i, (key, remove, json, space)) in records.iter().enumerate() {
                if i > 0 {
                    value.extend_from_slice(space.as_bytes());
                    value.push(b',');
                }
                let op = if *remove { '-' } else { '=' };
                let key = ["a", "b", "\\u0061"][*key];
                let json = if *remove { "0" } else { json.as_str() };
                value.extend_from_slice(format!("\"{op}{key}\":{json}").as_bytes());
            }
            proptest::prop_assert_eq!(both(&value).unwrap(), reference_decode(&value).unwrap());
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Whatever the keys and values, a whole value is of odd length and every batch of
        /// records of even length, so a session stays odd through any number of appends and
        /// records alone stay even (`is_session_length`); and the pads are read as nothing.
        #[test]
        fn sessions_are_odd_and_records_even(
            entries in proptest::collection::hash_map("[a-z\"\\\u{1}é ]{0,6}", json_value(), 1..6),
            batches in proptest::collection::vec(
                (proptest::collection::hash_map("[a-z\"\u{1f}]{0,3}", json_value(), 0..3),
                 proptest::collection::vec("[a-z\"]{0,3}", 0..2)),
                1..5,
            ),
        ) {
            let mut expected: SessionState = entries.into_iter().collect();
            let mut value = encode_state(&expected, None);
            proptest::prop_assert!(is_session_length(value.len()));
            let mut orphan = Vec::new();
            for (set, remove) in batches {
                let mut changes = Changes::default();
                for key in &remove {
                    if !set.contains_key(key) {
                        changes.remove(key.as_str());
                    }
                }
                for (key, json) in &set {
                    changes.set(key.as_str(), json.as_str());
                }
                changes.apply_to(&mut expected);
                let batch = records(&changes);
                proptest::prop_assert_eq!(batch.len(), records_len(&changes));
                proptest::prop_assert!(batch.len().is_multiple_of(2));
                value.extend_from_slice(&batch);
                orphan.extend_from_slice(&batch);
                proptest::prop_assert!(is_session_length(value.len()));
                proptest::prop_assert!(!is_session_length(orphan.len()));
            }
            proptest::prop_assert_eq!(both(&value).unwrap().0, expected);
        }
    }

    /// A JSON value of the kinds sessions hold, some with escapes and odd numbers, as text.
    fn json_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-zA-Z0-9 é€\u{1}\"\\\\/]{0,40}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| serde_json::to_string(&n).unwrap()),
            prop::sample::select(vec![
                "0",
                "-0",
                "1.5e10",
                "2E-3",
                "1e+2",
                "true",
                "false",
                "null",
                "[]",
                "{}",
                "[1,\"a\",{\"b\":null}]",
                "\"\\u00e9\"",
                "\"\\ud83d\\ude00\"",
                "123456789012345678901234567890",
            ])
            .prop_map(str::to_owned),
        ]
    }

    /// Stored values that are sessions, then damaged: a few bytes replaced, inserted or
    /// removed, from an alphabet of what JSON treats specially.
    fn stored_then_damaged() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let record = ("[=\\-]?[a-z\"\\\\\u{1}é ]{0,4}", json_value(), " {0,1}");
        let edits = prop::collection::vec(
            (
                0..3u8,
                any::<prop::sample::Index>(),
                prop::sample::select(
                    b"\"\\,:{}[]-+.eE0123456789 \t\n\x01\x1f\x7f\xc3\xa9\xff\xe2tnu".to_vec(),
                ),
            ),
            0..4,
        );
        (prop::collection::vec(record, 0..8), edits).prop_map(|(records, edits)| {
            let mut value = header(0xff).into_bytes();
            value.push(b'{');
            for (i, (name, json, space)) in records.iter().enumerate() {
                if i > 0 {
                    value.extend_from_slice(space.as_bytes());
                    value.push(b',');
                }
                value.extend_from_slice(serde_json::to_string(name).unwrap().as_bytes());
                value.extend_from_slice(space.as_bytes());
                value.push(b':');
                value.extend_from_slice(json.as_bytes());
            }
            for (kind, at, byte) in edits {
                // Edits leave the header alone: a bad header fails the same way in both.
                let at = HEADER_LEN + at.index(value.len() - HEADER_LEN + 1);
                match kind {
                    0 if at < value.len() => value[at] = byte,
                    1 => value.insert(at, byte),
                    _ if at < value.len() => drop(value.remove(at)),
                    _ => {}
                }
            }
            value
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The hand-delimited decoder accepts exactly what serde_json accepts, and reads the
        /// same state from it.
        #[test]
        fn decode_agrees_with_serde_json_on_any_value(value in stored_then_damaged()) {
            match (both(&value), reference_decode(&value)) {
                (Ok(ours), Ok(reference)) => proptest::prop_assert_eq!(ours, reference),
                (Err(_), Err(_)) => {}
                (ours, reference) => proptest::prop_assert!(
                    false,
                    "{:?}: ours {ours:?}, serde_json {reference:?}",
                    String::from_utf8_lossy(&value)
                ),
            }
        }
    }

    /// Values at the edges of the hand path's grammar, alone, before another record, and
    /// before whitespace: the decoders agree on each.
    #[test]
    fn decode_agrees_with_serde_json_at_the_edges_of_the_grammar() {
        let texts = [
            "0",
            "-0",
            "01",
            "-01",
            "1.",
            "1.e5",
            ".5",
            "-",
            "--1",
            "+1",
            "1e",
            "1e+",
            "1E-",
            "1.5e",
            "1.5e+7",
            "0.0",
            "0e0",
            "00",
            "1x",
            "0x1",
            "1_0",
            "Infinity",
            "NaN",
            "-Infinity",
            "١",
            "1\u{a0}",
            "true",
            "tru",
            "nul",
            "null",
            "falsey",
            "\"\"",
            "\"a\"",
            "\"a",
            "\"a\\\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u00e9\"",
            "\"\\ud800\"",
            "\"a\u{1}b\"",
            "\"a\u{7f}b\"",
            "\"a\tb\"",
            "\"é€😀\"",
            "\"a\"b",
            "[",
            "[1,]",
            "{}",
            "{\"a\":}",
            "",
            " ",
            "\"\\\\\"",
            "\"\\/\"",
        ];
        for text in texts {
            for after in ["", ",\"=b\":1", " ", "\n,\"=b\":\"x\"", "}", ":", "\"", ","] {
                for name in [
                    "\"=a\"",
                    "\"=a\\\"b\"",
                    "\"=a\u{1}\"",
                    "\"=\"",
                    "\"a\"",
                    "\"=é\"",
                ] {
                    let value = format!("v1:00000000000000ff:{{{name}:{text}{after}");
                    let (ours, reference) =
                        (both(value.as_bytes()), reference_decode(value.as_bytes()));
                    match (&ours, &reference) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{value:?}"),
                        (Err(_), Err(_)) => {}
                        _ => panic!("{value:?}: ours {ours:?}, serde_json {reference:?}"),
                    }
                }
            }
        }
    }

    /// The load keeps each key's last record only: checked against the records applied one
    /// by one, over hundreds of records that override and remove keys, escaped keys among
    /// them (read through serde_json, where the others are delimited by hand).
    #[test]
    fn many_overriding_records_decode_as_applied_in_order() {
        let keys = ["n", "we\"ird", "", "k\u{1}", "é", "other"];
        let mut expected = state(&[("n", "0"), ("other", "\"x\"")]);
        let mut value = encode_state(&expected, None);
        let mut seed = 7u64;
        for round in 0..600 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = keys[(seed >> 33) as usize % keys.len()];
            let mut changes = Changes::default();
            if (seed >> 40).is_multiple_of(4) {
                changes.remove(key);
            } else {
                changes.set(key, round.to_string());
            }
            changes.apply_to(&mut expected);
            value.extend_from_slice(&records(&changes));
            if round % 97 == 0 || round == 599 {
                assert_eq!(both(&value).unwrap().0, expected, "after {round} writes");
            }
        }
    }
}
