//! A loaded session read in place: the stored text, and where each key's value sits in it.

use std::hash::{BuildHasher, RandomState};

use hashbrown::hash_table::{Entry as Slot, HashTable};

use crate::SessionState;

/// A session's state as one load found it, read in place: the stored text, kept whole, with
/// a table of where each key and its value (JSON text) sit in it.
///
/// Why not a [`SessionState`]: a map holds a `String` for every key and every value, so a
/// load of a 50-key, 20 KB session made about 100 allocations and copied every value, and
/// the request's end freed them again. Read in place, a Redis load keeps the reply it
/// received and allocates only the table (one kept per thread, as for maps), and a buffer
/// for the keys it holds escaped, if any: via axum, 20 KB reads cost 0.88-0.89 of what they
/// did with a map at 32 connections, 20 KB one-key writes 0.81-0.86, 2 KB reads and writes
/// 0.90-0.93 (twelfth round, docs/benchmarks.md). The axum layer holds its session this way, with
/// the request's own changes beside it; [`SessionStore::load_in_place`] returns one.
///
/// Keys are hashed with std's [`RandomState`] (SipHash, randomly keyed), as a `HashMap`
/// would: keys can come from clients, and a keyed hash is what keeps a crafted set of them
/// from degrading every lookup.
///
/// `Debug` shows the number of keys only: the values are session data.
///
/// [`SessionStore::load_in_place`]: crate::SessionStore::load_in_place
///
/// ```
/// use session_core::{LoadedState, SessionState};
///
/// let state = SessionState::from([("user".to_owned(), r#""ada""#.to_owned())]);
/// let mut loaded = LoadedState::from(state);
/// assert_eq!(loaded.get("user"), Some(r#""ada""#));
/// assert_eq!(loaded.take("user").as_deref(), Some(r#""ada""#));
/// assert!(loaded.is_empty());
/// ```
#[derive(Default)]
pub struct LoadedState {
    /// The stored text the spans of values, and of most keys, point into.
    text: String,
    /// Keys that `text` holds escaped (a quote, a backslash, a control character),
    /// unescaped and back to back. A span from `text.len()` on points here.
    unescaped: String,
    entries: HashTable<Entry>,
    hasher: RandomState,
    /// `text` is a reply a backend read (Redis), handed to `held_reply` when dropped; not a
    /// copy of a map, which would only push a held reply out.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    reply: bool,
}

/// Where one key and its value sit.
#[derive(Clone, Copy)]
struct Entry {
    key: Span,
    value: Span,
}

/// A byte range of `text`, or of `unescaped` shifted by `text.len()`. (An empty span at
/// `text.len()` reads as one of `unescaped`: empty either way.)
#[derive(Clone, Copy)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    pub(crate) fn of(range: std::ops::Range<usize>) -> Self {
        Self {
            start: range.start,
            end: range.end,
        }
    }
}

/// The text of `span` in the state made of `text` and `unescaped`.
fn resolve<'a>(text: &'a str, unescaped: &'a str, span: Span) -> &'a str {
    match span.start.checked_sub(text.len()) {
        Some(start) => &unescaped[start..span.end - text.len()],
        None => &text[span.start..span.end],
    }
}

impl LoadedState {
    fn slice(&self, span: Span) -> &str {
        resolve(&self.text, &self.unescaped, span)
    }

    fn find(&self, key: &str) -> Option<&Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        self.entries
            .find(hash, |e| resolve(&self.text, &self.unescaped, e.key) == key)
    }

    /// The JSON text of `key`'s value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|e| self.slice(e.value))
    }

    /// True when the state holds `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Removes `key`, returning its value's JSON text.
    pub fn take(&mut self, key: &str) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let (text, unescaped) = (&self.text, &self.unescaped);
        let entry = self
            .entries
            .find_entry(hash, |e| resolve(text, unescaped, e.key) == key)
            .ok()?
            .remove()
            .0;
        Some(self.slice(entry.value).to_owned())
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the state holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key with its value's JSON text, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|e| (self.slice(e.key), self.slice(e.value)))
    }

    /// A copy of every key and value, as a map.
    ///
    /// ```
    /// use session_core::{LoadedState, SessionState};
    ///
    /// let state = SessionState::from([("n".to_owned(), "1".to_owned())]);
    /// assert_eq!(LoadedState::from(state.clone()).to_state(), state);
    /// ```
    pub fn to_state(&self) -> SessionState {
        self.iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// A state over `text`, filled by `read` through a [`Filler`], which records each key
    /// (Redis: the records of a stored value, in order).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn read<E>(
        text: String,
        capacity: usize,
        read: impl FnOnce(&mut Filler<'_>) -> Result<(), E>,
    ) -> Result<Self, E> {
        let mut state = Self {
            text,
            unescaped: String::new(),
            entries: spare::table(capacity),
            hasher: RandomState::new(),
            reply: true,
        };
        let mut filler = Filler {
            text: &state.text,
            unescaped: &mut state.unescaped,
            entries: &mut state.entries,
            hasher: &state.hasher,
        };
        read(&mut filler)?;
        Ok(state)
    }
}

/// Records keys into a [`LoadedState`] being read (see [`LoadedState::read`]).
pub(crate) struct Filler<'a> {
    text: &'a str,
    unescaped: &'a mut String,
    entries: &'a mut HashTable<Entry>,
    hasher: &'a RandomState,
}

/// A key being recorded: where `text` holds it as it is, or its unescaped text.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Key<'k> {
    At(Span),
    Unescaped(&'k str),
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl<'a> Filler<'a> {
    /// The text the state is read over.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The text of `key`.
    fn name<'k>(&self, key: &'k Key<'k>) -> &'k str
    where
        'a: 'k,
    {
        match key {
            Key::At(span) => &self.text[span.start..span.end],
            Key::Unescaped(name) => name,
        }
    }

    /// Sets `key` to the value at `value`, over any value before.
    pub(crate) fn set(&mut self, key: Key<'_>, value: Span) {
        let (text, unescaped, hasher) = (self.text, &*self.unescaped, self.hasher);
        let name = self.name(&key);
        let slot = self.entries.entry(
            hasher.hash_one(name),
            |e| resolve(text, unescaped, e.key) == name,
            |e| hasher.hash_one(resolve(text, unescaped, e.key)),
        );
        match slot {
            Slot::Occupied(mut slot) => slot.get_mut().value = value,
            Slot::Vacant(slot) => {
                let key = match key {
                    Key::At(span) => span,
                    // Copied only when the key is not in the table: an escaped key set
                    // again and again (a counter's records) is copied once, and only a key
                    // removed and set again is copied again (never more than the text).
                    Key::Unescaped(name) => {
                        let start = text.len() + self.unescaped.len();
                        self.unescaped.push_str(name);
                        Span::of(start..start + name.len())
                    }
                };
                slot.insert(Entry { key, value });
            }
        }
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: Key<'_>) {
        let (text, unescaped) = (self.text, &*self.unescaped);
        let name = self.name(&key);
        if let Ok(slot) = self.entries.find_entry(self.hasher.hash_one(name), |e| {
            resolve(text, unescaped, e.key) == name
        }) {
            slot.remove();
        }
    }
}

/// One copy of `state`, keys and values back to back: how a backend that keeps maps (the
/// file store, memory) answers a load in place.
impl From<SessionState> for LoadedState {
    fn from(state: SessionState) -> Self {
        let len = state.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut text = String::with_capacity(len);
        let mut spans = Vec::with_capacity(state.len());
        for (key, value) in &state {
            let key = {
                let start = text.len();
                text.push_str(key);
                Span::of(start..text.len())
            };
            text.push_str(value);
            spans.push(Entry {
                key,
                value: Span::of(key.end..text.len()),
            });
        }
        crate::recycle_state(state);
        let hasher = RandomState::new();
        let mut entries = HashTable::with_capacity(spans.len());
        for entry in spans {
            let key = &text[entry.key.start..entry.key.end];
            // Keys of a map are distinct; and with room for all, nothing is rehashed.
            entries.insert_unique(hasher.hash_one(key), entry, |e| {
                hasher.hash_one(&text[e.key.start..e.key.end])
            });
        }
        Self {
            text,
            unescaped: String::new(),
            entries,
            hasher,
            reply: false,
        }
    }
}

impl std::fmt::Debug for LoadedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedState")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Drop for LoadedState {
    /// The table goes back for the next load on this thread, and a large reply (Redis) goes
    /// to `held_reply`, which may hold it back from glibc: both measured costly to allocate afresh
    /// (`spare`, and `backends::redis::held_reply`).
    fn drop(&mut self) {
        spare::keep(std::mem::take(&mut self.entries));
        #[cfg(feature = "redis")]
        if self.reply {
            crate::backends::redis::held_reply::release(
                std::mem::take(&mut self.text).into_bytes(),
            );
        }
    }
}

/// Tables handed back by dropped states, for the next loads on the same thread: see
/// `state::spare`, which keeps them as it keeps state maps.
mod spare {
    use hashbrown::HashTable;

    use super::Entry;
    use crate::state::spare::{keep as keep_spare, take, Spares};

    /// The most keys' room of a table worth keeping.
    const SPARE_CAPACITY: usize = 112;

    thread_local! {
        static TABLES: Spares<HashTable<Entry>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// An empty table with room for `capacity` keys, a spare one when this thread has one
    /// of at most four times that room.
    pub(super) fn table(capacity: usize) -> HashTable<Entry> {
        let mut table = take(&TABLES, capacity, HashTable::capacity).unwrap_or_default();
        // Empty, so nothing is rehashed: the hasher is never called.
        table.reserve(capacity, |_| 0);
        table
    }

    /// Keeps `table` (emptied) unless this thread has enough, or it is too large.
    pub(super) fn keep(mut table: HashTable<Entry>) {
        table.clear();
        if table.capacity() == 0 || table.capacity() > SPARE_CAPACITY {
            return;
        }
        keep_spare(&TABLES, table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::state;

    #[test]
    fn reads_takes_and_lists_what_the_map_held() {
        let map = state(&[("user", "\"ada\""), ("", "0"), ("é\"", "[1]"), ("n", "1")]);
        let mut loaded = LoadedState::from(map.clone());
        assert_eq!(loaded.len(), 4);
        for (key, value) in &map {
            assert_eq!(loaded.get(key), Some(value.as_str()));
            assert!(loaded.contains_key(key));
        }
        assert_eq!(loaded.get("nobody"), None);
        assert_eq!(loaded.take("n").as_deref(), Some("1"));
        assert_eq!(loaded.take("n"), None);
        assert!(!loaded.contains_key("n"));
        assert_eq!(
            loaded.to_state(),
            state(&[("user", "\"ada\""), ("", "0"), ("é\"", "[1]")])
        );
        assert!(LoadedState::default().is_empty());
        assert_eq!(LoadedState::default().take("user"), None);
        assert_eq!(format!("{loaded:?}"), "LoadedState { keys: 3, .. }");
    }

    #[test]
    fn a_dropped_table_serves_the_next_read_on_the_thread() {
        let read = |keys: usize| {
            LoadedState::read::<()>(String::new(), keys, |_| Ok(()))
                .unwrap()
                .entries
                .capacity()
        };
        let first = LoadedState::read::<()>(String::new(), 40, |_| Ok(())).unwrap();
        let capacity = first.entries.capacity();
        drop(first);
        assert_eq!(read(40), capacity);
        // One for 4 keys does not take a table for 40.
        assert!(read(4) < capacity);
    }
}
