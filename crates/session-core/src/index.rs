//! The optional index of sessions by the value of one session key: "log this user out
//! everywhere" in O(that user's sessions), not a scan of the store.
//!
//! With `session_redis_index_key = user` (or a backend's `with_index_key`), every write that
//! sets `user` also puts the session's id into the index entry of that value, **before or in
//! the same round trip as the write** (on one Redis server the write's script `ZADD`s first,
//! so a failed add fails the write; on a Cluster, whose index entry lives in another slot,
//! the `ZADD` goes first as its own
//! request). So the index is a superset of the truth: it may name sessions that are gone or
//! hold another value now (a logout, an expiry, a second login on the same session), never
//! miss one that holds the value. [`SessionStore::find_indexed`] therefore checks every id it
//! names against the session's current value (one pipelined read) and drops the stale ones
//! from the index as it goes. The whole design, its costs and limits: `docs/index.md`.
//!
//! [`SessionStore::find_indexed`]: crate::SessionStore::find_indexed

use std::time::Duration;

use sha2::Digest;

use crate::{Changes, SessionState};

/// How long an index member is kept whatever its session looks like: a write adds the id
/// before (or with) the session itself, and on a Redis Cluster the two are separate
/// requests, so a member younger than this may belong to a write still in flight. Stale
/// members are dropped only once older (clocks of the application servers are assumed to
/// agree within this much).
pub const INDEX_GRACE: Duration = Duration::from_secs(60);

/// One entry of the index: the sessions whose indexed key holds one value. Backends name
/// their storage for it from [`key`](Self::key) and [`digest`](Self::digest) (Redis:
/// `<prefix>index:<key>:<digest>`, the file store: `<root>/.index/<digest>/`).
///
/// ```
/// use session_core::IndexName;
///
/// // The same JSON value, however it is spelled, is the same entry.
/// assert_eq!(IndexName::new("user", r#""alice""#), IndexName::new("user", r#" "al\u0069ce" "#));
/// assert_ne!(IndexName::new("user", r#""alice""#), IndexName::new("user", r#""bob""#));
/// assert_eq!(IndexName::new("user", "42").digest().len(), 64);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IndexName {
    key: String,
    digest: String,
}

/// The value is user data (a user name, an email): only the key shows.
impl std::fmt::Debug for IndexName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexName")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl IndexName {
    /// The entry of the session key `key` holding the JSON text `value`. The value is
    /// compared as JSON (`"alice"` and `"al\u0069ce"` are one entry); text that is not JSON
    /// is taken as it is.
    pub fn new(key: &str, value: &str) -> Self {
        let canonical = canonical_json(value);
        let mut hash = sha2::Sha256::new();
        hash.update(key.as_bytes());
        hash.update([0]);
        hash.update(canonical.as_bytes());
        let digest = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Self {
            key: key.to_owned(),
            digest,
        }
    }

    /// The entry named by its key and digest, as a backend stores it (for a sweep of every
    /// entry, which finds the digests in the store, not the values). `None` unless `key` is
    /// a valid `session_redis_index_key` and `digest` 64 lower-case hex digits.
    ///
    /// ```
    /// use session_core::IndexName;
    ///
    /// let alice = IndexName::new("user", r#""alice""#);
    /// assert_eq!(IndexName::from_digest("user", alice.digest()), Some(alice));
    /// assert_eq!(IndexName::from_digest("user", "../etc"), None);
    /// ```
    pub fn from_digest(key: &str, digest: &str) -> Option<Self> {
        let hex = digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (hex && valid_index_key(key)).then(|| Self {
            key: key.to_owned(),
            digest: digest.to_owned(),
        })
    }

    /// The indexed session key (`user`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// SHA-256 of the key and the value, in hex: fixed length and free of any character a
    /// client chose, so safe in a Redis key or a file name, and the value itself (a user name,
    /// an email) is never spelled out in the store's key names.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// The index entry a write of the whole `state` adds its id to, when the backend indexes
/// `key` and the state holds it.
pub(crate) fn entry_of_state(key: Option<&str>, state: &SessionState) -> Option<IndexName> {
    let key = key?;
    state.get(key).map(|value| IndexName::new(key, value))
}

/// The index entry a write of `changes` adds its id to, when the backend indexes `key` and
/// the changes set it.
pub(crate) fn entry_of_changes(key: Option<&str>, changes: &Changes) -> Option<IndexName> {
    let key = key?;
    changes.set.get(key).map(|value| IndexName::new(key, value))
}

/// JSON text in one spelling: serde_json's own rendering of the parsed value (keys of objects
/// sorted, no spaces, strings with the shortest escapes). Writes of the indexed key are rare
/// (a login), so parsing there costs nothing measurable.
///
/// Except for values holding a number that only a float can hold (a fraction, an exponent,
/// an integer beyond 64 bits): rounding it would make two different values one entry (two
/// users' ids `12345678901234567890123` and `...124`), so such a value is kept as its exact
/// text, trimmed. Different spellings of it are then different entries, never the same one.
pub(crate) fn canonical_json(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) if !has_float(&value) => value.to_string(),
        _ => text.trim().to_owned(),
    }
}

/// True when `value` holds a number that serde_json keeps as an `f64`.
fn has_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(has_float),
        serde_json::Value::Object(fields) => fields.values().any(has_float),
        _ => false,
    }
}

/// The `session_redis_index_key` values accepted: a session key as applications name them.
/// Bounded so that no configuration can make index names unbounded; the characters are those
/// of identifiers plus `.`, `-` and `:` (no space, no quote, nothing a shell or a Redis
/// pattern would read differently).
pub(crate) fn valid_index_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_differ_by_key_and_by_value_and_not_by_spelling() {
        let alice = IndexName::new("user", "\"alice\"");
        assert_eq!(alice, IndexName::new("user", "\"alice\""));
        assert_ne!(alice, IndexName::new("owner", "\"alice\""));
        assert_ne!(alice, IndexName::new("user", "\"alice \""));
        // A string "42" and the number 42 are different values.
        assert_ne!(
            IndexName::new("user", "42"),
            IndexName::new("user", "\"42\"")
        );
        assert_eq!(
            IndexName::new("user", "{\"b\":1,\"a\":2}"),
            IndexName::new("user", "{ \"a\": 2, \"b\": 1 }")
        );
        // Numbers beyond 64 bits are not rounded into one entry.
        assert_ne!(
            IndexName::new("uid", "12345678901234567890123"),
            IndexName::new("uid", "12345678901234567890124")
        );
        assert_ne!(
            IndexName::new("uid", "{\"id\":0.30000000000000001}"),
            IndexName::new("uid", "{\"id\":0.3}")
        );
        assert_eq!(IndexName::new("uid", " 1.5 "), IndexName::new("uid", "1.5"));
        assert_eq!(
            IndexName::new("uid", "18446744073709551615"),
            IndexName::new("uid", " 18446744073709551615")
        );
        assert!(!format!("{alice:?}").contains("alice"));
        assert!(alice.digest().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn index_keys_are_bounded_identifiers() {
        for good in ["user", "user_id", "auth.user", "a:b-c", &"k".repeat(64)] {
            assert!(valid_index_key(good), "{good}");
        }
        for bad in [
            "",
            "us er",
            "user*",
            "\"user\"",
            "ü",
            &"k".repeat(65),
            "a\nb",
        ] {
            assert!(!valid_index_key(bad), "{bad:?}");
        }
    }
}
