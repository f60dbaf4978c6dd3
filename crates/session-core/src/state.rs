//! What a session holds, and the changes one request makes to it.
//!
//! Values are JSON text, exactly as actix-session keeps them, so the same stored session reads
//! the same through actix-web and axum. Redis stores a session as one JSON object of records,
//! each value's text embedded as is (`v1:<tag>:{"=user":"alice","=n":3,"=n":4`, kept open for appends: `=key` sets
//! the key, `-key` removes it, a later record wins), so `redis-cli GET` shows readable data;
//! that is also why Redis refuses to write a value that is not JSON text.

use std::collections::HashMap;

/// The whole state of one session: session key to JSON text of its value.
pub type SessionState = HashMap<String, String>;

/// Field-level changes made by one request: keys set (to JSON text) and keys removed.
///
/// Applying only the changed keys is what keeps two concurrent requests that change different
/// keys of one session from overwriting each other. On Redis a write adds the records of
/// these changes to the stored value (`=key` for each key set, `-key` for each removed), on
/// top of whatever another write left there.
///
/// ```
/// use session_core::Changes;
///
/// let mut changes = Changes::default();
/// changes.set("n", "1");
/// changes.remove("flash");
/// assert!(!changes.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Keys to set, with the JSON text of their new value.
    pub set: HashMap<String, String>,
    /// Keys to remove.
    pub remove: Vec<String>,
}

/// Shows the keys only: values are session data, which never reach logs.
impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut set: Vec<&String> = self.set.keys().collect();
        set.sort();
        f.debug_struct("Changes")
            .field("set", &set)
            .field("remove", &self.remove)
            .finish()
    }
}

impl Changes {
    /// Records that `key` now holds the JSON text `value` (undoing an earlier removal of it).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.remove.retain(|k| k != &key);
        self.set.insert(key, value.into());
    }

    /// Records that `key` was removed (undoing an earlier set of it).
    pub fn remove(&mut self, key: impl Into<String>) {
        let key = key.into();
        self.set.remove(&key);
        if !self.remove.contains(&key) {
            self.remove.push(key);
        }
    }

    /// The changes that turn `before` into `after`: every key whose value is new or differs,
    /// and every key that is gone (in key order, so the result does not depend on hash order).
    ///
    /// Every framework adapter computes its write with this one function, from the state it
    /// loaded and the state its request ended with, so a request's write changes no key the
    /// request did not change, and two concurrent requests that change different keys both win.
    ///
    /// ```
    /// use session_core::{Changes, SessionState};
    ///
    /// let state = |pairs: &[(&str, &str)]| -> SessionState {
    ///     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    /// };
    /// let before = state(&[("user", "\"bob\""), ("n", "1"), ("flash", "\"hi\"")]);
    /// let after = state(&[("user", "\"bob\""), ("n", "2"), ("theme", "\"dark\"")]);
    ///
    /// let changes = Changes::between(&before, &after);
    /// assert_eq!(changes.set, state(&[("n", "2"), ("theme", "\"dark\"")]));
    /// assert_eq!(changes.remove, vec!["flash".to_owned()]);
    /// assert!(Changes::between(&after, &after).is_empty());
    /// ```
    pub fn between(before: &SessionState, after: &SessionState) -> Changes {
        Self::diff(
            |key| before.get(key).map(String::as_str),
            before.keys().map(String::as_str),
            after,
        )
    }

    /// [`between`](Self::between) the state a [`Snapshot`] copied and `after`.
    ///
    /// ```
    /// use session_core::{Changes, SessionState, Snapshot};
    ///
    /// let mut state = SessionState::from([("n".to_owned(), "1".to_owned())]);
    /// let loaded = Snapshot::of(&state);
    /// state.insert("n".to_owned(), "2".to_owned());
    /// assert_eq!(Changes::since(&loaded, &state).set["n"], "2");
    /// ```
    pub fn since(before: &Snapshot, after: &SessionState) -> Changes {
        let before: HashMap<&str, &str> = before.pairs().collect();
        Self::diff(
            |key| before.get(key).copied(),
            before.keys().copied(),
            after,
        )
    }

    fn diff<'a>(
        before: impl Fn(&str) -> Option<&'a str>,
        before_keys: impl Iterator<Item = &'a str>,
        after: &SessionState,
    ) -> Changes {
        let set: HashMap<String, String> = after
            .iter()
            .filter(|(key, value)| before(key) != Some(value.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut remove: Vec<String> = before_keys
            .filter(|key| !after.contains_key(*key))
            .map(str::to_owned)
            .collect();
        remove.sort_unstable();
        Changes { set, remove }
    }

    /// True when applying these changes would do nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// Applies the changes to an in-memory state: how the file and memory backends write them,
    /// and how Redis tells whether they leave a session it read with no key (it is then
    /// deleted).
    pub fn apply_to(&self, state: &mut SessionState) {
        for key in &self.remove {
            state.remove(key);
        }
        for (key, value) in &self.set {
            state.insert(key.clone(), value.clone());
        }
    }
}

/// A copy of a session's state, kept to tell later what a request changed
/// ([`Changes::since`]).
///
/// Every key and value sits in one buffer: two allocations and one copy whatever the number
/// of keys, where a clone of the map makes two allocations per key. A request that only reads
/// pays for the copy and never uses it: on a 50-key, 20 KB read through actix-session with a
/// clone, `malloc` and `free` were 24% of the server's CPU samples, against 15% for
/// actix-session's own store (`docs/benchmarks.md`, fourth round).
///
/// `Debug` shows the number of keys only: the values are session data.
///
/// ```
/// use session_core::{SessionState, Snapshot};
///
/// let state = SessionState::from([("user".to_owned(), "\"ada\"".to_owned())]);
/// let copy = Snapshot::of(&state);
/// assert_eq!(copy.pairs().collect::<Vec<_>>(), [("user", "\"ada\"")]);
/// ```
#[derive(Clone, Default)]
pub struct Snapshot {
    /// Each key followed by its value, back to back.
    text: String,
    /// Where each key and each value ends in `text`; each key starts where the previous
    /// value ended.
    ends: Vec<(usize, usize)>,
}

impl Snapshot {
    /// Copies `state`.
    pub fn of(state: &SessionState) -> Self {
        let len = state.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(state.len());
        for (key, value) in state {
            text.push_str(key);
            let key_end = text.len();
            text.push_str(value);
            ends.push((key_end, text.len()));
        }
        Self { text, ends }
    }

    /// The copied keys and values, in no particular order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, value_end)| {
            let pair = (&self.text[start..key_end], &self.text[key_end..value_end]);
            start = value_end;
            pair
        })
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the copied state has no key.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

/// [`check_values_are_json`] for a write to `backend`, refused before anything is written:
/// every store reads back only JSON text, so a value that is not would make the whole session
/// corrupt (every other key lost, every later write refused). Every backend refuses it, the
/// in-memory store included, so that an application's tests on it fail where production would.
pub(crate) fn refuse_unless_json(
    backend: &str,
    state: &SessionState,
) -> Result<(), crate::StoreError> {
    check_values_are_json(state).map_err(|why| crate::StoreError::Corrupt {
        backend: backend.into(),
        detail: format!("{why}; nothing was written"),
    })
}

/// Whether `value` is JSON text, as every stored session value must be.
pub(crate) fn is_json_text(value: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(value).is_ok()
}

/// Checks that every value of a session is JSON text: of a loaded one, so corruption is
/// reported as [`StoreError::Corrupt`](crate::StoreError::Corrupt) at load time instead of
/// surfacing as a confusing deserialisation failure inside a handler; of one about to be
/// written ([`refuse_unless_json`]).
pub(crate) fn check_values_are_json(state: &SessionState) -> Result<(), String> {
    for (key, value) in state {
        if !is_json_text(value) {
            return Err(format!("the value of session key `{key}` is not JSON text"));
        }
    }
    Ok(())
}

/// Cleared tables that requests are done with, kept per thread for the next loads on it:
/// the state maps handed back with [`recycle_state`], and the tables of
/// [`LoadedState`](crate::LoadedState).
///
/// Why: a load builds a table of every key of the session, and that table for a session of
/// 20 keys or more is an allocation of 1 KB or more, which glibc serves only after
/// consolidating every small block that earlier requests freed (`malloc_consolidate`).
/// Taking a spare table instead made 2 KB reads via axum 5-6% cheaper, 20 KB reads 2-9%
/// (tenth round, docs/benchmarks.md). Bounded: at most [`SPARES`](spare::SPARES) tables of
/// each kind per thread, each of bounded room, so a session with many keys is not kept.
/// State maps: only Redis loads take them (`backends::redis::layout::decode`), so only with
/// that backend.
pub(crate) mod spare {
    use std::{cell::RefCell, thread::LocalKey};

    #[cfg(feature = "redis")]
    use super::SessionState;

    /// How many cleared tables of one kind one thread keeps.
    pub(crate) const SPARES: usize = 8;
    /// The most keys' room of a state map worth keeping: 56 keys is a table of 64 buckets,
    /// the most a load sizes for (`backends::redis::layout::decode`).
    #[cfg(feature = "redis")]
    pub(crate) const SPARE_CAPACITY: usize = 56;

    /// One thread's spare tables of one kind.
    pub(crate) type Spares<T> = RefCell<Vec<T>>;

    #[cfg(feature = "redis")]
    thread_local! {
        static MAPS: Spares<SessionState> = const { RefCell::new(Vec::new()) };
    }

    /// The most recently kept of `spares` with at most four times `capacity` keys' room
    /// (`room` of a table; at least 8 keys' room allowed): a small session held for long (a
    /// streaming response) does not pin a table sized for many more keys.
    pub(crate) fn take<T: 'static>(
        spares: &'static LocalKey<Spares<T>>,
        capacity: usize,
        room: impl Fn(&T) -> usize,
    ) -> Option<T> {
        let most = capacity.max(2) * 4;
        // `try_with`: a session dropped while the thread's locals are torn down finds none.
        spares
            .try_with(|spares| {
                let mut spares = spares.borrow_mut();
                let at = spares.iter().rposition(|table| room(table) <= most)?;
                Some(spares.swap_remove(at))
            })
            .ok()
            .flatten()
    }

    /// Keeps `table` (cleared) in `spares` unless this thread has [`SPARES`]; drops it
    /// otherwise.
    pub(crate) fn keep<T: 'static>(spares: &'static LocalKey<Spares<T>>, table: T) {
        let _ = spares.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < SPARES {
                spares.push(table);
            }
        });
    }

    /// [`take`] of a state map.
    #[cfg(feature = "redis")]
    pub(super) fn take_map(capacity: usize) -> Option<SessionState> {
        take(&MAPS, capacity, SessionState::capacity)
    }

    /// [`keep`] of a state map.
    #[cfg(feature = "redis")]
    pub(super) fn keep_map(state: SessionState) {
        keep(&MAPS, state);
    }
}

/// An empty state with room for `capacity` keys: a map handed back with [`recycle_state`] on
/// this thread when there is one (module `spare` says why), a new one otherwise.
#[cfg(feature = "redis")]
pub(crate) fn state_with_capacity(capacity: usize) -> SessionState {
    match spare::take_map(capacity) {
        Some(mut state) => {
            state.reserve(capacity);
            state
        }
        None => SessionState::with_capacity(capacity),
    }
}

/// Hands a state that a request is done with back for reuse: the next load on this thread
/// reads into its table instead of allocating one. Optional (dropping a state is always
/// fine); the framework adapters call it when a request ends. The entries are dropped here;
/// only the empty table is kept, at most a few per thread and only small ones (and only
/// with the `redis` feature, whose loads take them).
///
/// ```
/// use session_core::{recycle_state, SessionState};
///
/// let mut state = SessionState::new();
/// state.insert("user".into(), r#""alice""#.into());
/// recycle_state(state);
/// ```
pub fn recycle_state(state: SessionState) {
    #[cfg(feature = "redis")]
    {
        let mut state = state;
        // Cleared first: `capacity` counts the room of slots that removals left behind only
        // once they are free again.
        state.clear();
        if state.capacity() == 0 || state.capacity() > spare::SPARE_CAPACITY {
            return;
        }
        spare::keep_map(state);
    }
    // Without Redis no load takes a spare table: dropped.
    #[cfg(not(feature = "redis"))]
    drop(state);
}

/// The entries of a whole state by reference, as [`SessionStore::apply_versioned`]'s
/// `after` takes them, in a list taken from a spare one of this thread and handed back
/// (emptied) when dropped.
///
/// Why not a plain `Vec`: a list of more than 31 entries is 1 KB or more, which glibc
/// serves through its large-request path after consolidating every small block freed since
/// (0.55 µs of a one-key write in a 50-key session via axum, eleventh round,
/// docs/benchmarks.md). Only the empty allocation is kept, one per thread, and only up to
/// 256 entries' room.
///
/// [`SessionStore::apply_versioned`]: crate::SessionStore::apply_versioned
///
/// ```
/// use session_core::{EntryList, SessionState};
///
/// let mut state = SessionState::new();
/// state.insert("user".into(), r#""alice""#.into());
/// let after = EntryList::of(state.iter().map(|(k, v)| (k.as_str(), v.as_str())));
/// assert_eq!(&after[..], &[("user", r#""alice""#)]);
/// ```
pub struct EntryList<'a>(Vec<(&'a str, &'a str)>);

/// The most entries' room an [`EntryList`]'s allocation may have to be kept for reuse.
const SPARE_ENTRIES: usize = 256;

thread_local! {
    static SPARE_LIST: std::cell::Cell<Vec<(&'static str, &'static str)>> =
        const { std::cell::Cell::new(Vec::new()) };
}

impl<'a> EntryList<'a> {
    /// The list of `entries`, in this thread's spare allocation when there is one.
    pub fn of(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        // A list of `'static` entries is one of `'a` entries as it is (the type is covariant).
        let mut list: Vec<(&'a str, &'a str)> = SPARE_LIST
            .try_with(|spare| spare.take())
            .unwrap_or_default();
        list.extend(entries);
        Self(list)
    }
}

impl<'a> std::ops::Deref for EntryList<'a> {
    type Target = [(&'a str, &'a str)];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for EntryList<'_> {
    fn drop(&mut self) {
        let mut list = std::mem::take(&mut self.0);
        if list.capacity() == 0 || list.capacity() > SPARE_ENTRIES {
            return;
        }
        list.clear();
        // Back to `'static` entries: no element is left to convert, and a collect from a
        // `Vec`'s own iterator into elements of the same size keeps its allocation (std's
        // in-place collect; were it not to, this would only allocate as a new list does).
        #[allow(
            clippy::unnecessary_filter_map,
            reason = "the map changes the elements' lifetime, with no element to map"
        )]
        let spare: Vec<(&'static str, &'static str)> =
            list.into_iter().filter_map(|_| None).collect();
        let _ = SPARE_LIST.try_with(|slot| slot.set(spare));
    }
}

impl std::fmt::Debug for EntryList<'_> {
    /// The keys only: values are session data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(key, _)| key))
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A state of `pairs`, for the unit tests of this crate.
    pub(crate) fn state(pairs: &[(&str, &str)]) -> SessionState {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn entry_lists_reuse_one_allocation_per_thread_and_keep_no_entry() {
        let a = state(&[("a", "1"), ("b", "2")]);
        let first = EntryList::of(a.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let room = first.0.as_ptr();
        assert_eq!(first.len(), 2);
        drop(first);
        let b = state(&[("c", "3")]);
        let second = EntryList::of(b.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(
            &second[..],
            &[("c", "3")],
            "nothing of the first list is left"
        );
        // What the spare list is for; it relies on std's in-place collect (see `Drop`), which
        // std does but does not promise: should this fail on a new toolchain, the lists
        // still work, each with an allocation of its own again.
        assert_eq!(second.0.as_ptr(), room, "the same allocation");
        drop(second);
        // Too large a list is not kept.
        let big: SessionState = (0..300).map(|i| (i.to_string(), i.to_string())).collect();
        drop(EntryList::of(
            big.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ));
        assert_eq!(
            SPARE_LIST.with(|spare| {
                let list = spare.take();
                let room = list.capacity();
                spare.set(list);
                room
            }),
            0
        );
    }

    #[test]
    fn set_and_remove_cancel_each_other() {
        let mut c = Changes::default();
        c.set("a", "1");
        c.remove("a");
        assert!(c.set.is_empty());
        assert_eq!(c.remove, vec!["a".to_owned()]);
        c.set("a", "2");
        assert!(c.remove.is_empty());
        let mut state = SessionState::from([("b".to_owned(), "3".to_owned())]);
        c.remove("b");
        c.apply_to(&mut state);
        assert_eq!(
            state,
            SessionState::from([("a".to_owned(), "2".to_owned())])
        );
    }

    #[test]
    fn between_then_apply_turns_before_into_after() {
        let before = state(&[("a", "1"), ("b", "2"), ("c", "3"), ("e", "5")]);
        let after = state(&[("a", "1"), ("b", "20"), ("d", "4")]);
        let changes = Changes::between(&before, &after);
        assert_eq!(changes.set, state(&[("b", "20"), ("d", "4")]));
        assert_eq!(changes.remove, vec!["c".to_owned(), "e".to_owned()]);
        let mut applied = before.clone();
        changes.apply_to(&mut applied);
        assert_eq!(applied, after);
        assert!(Changes::between(&before, &before).is_empty());
        assert_eq!(
            Changes::between(&before, &SessionState::new()).remove.len(),
            before.len()
        );
    }

    #[test]
    fn since_a_snapshot_is_between_the_state_it_copied() {
        // Keys and values that would run together if the bounds were off by one.
        let before = state(&[
            ("a", "1"),
            ("ab", "\"\""),
            ("", "2"),
            ("é", "\"é\""),
            ("c", "3"),
        ]);
        let copy = Snapshot::of(&before);
        assert_eq!(copy.len(), before.len());
        assert_eq!(
            copy.pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<SessionState>(),
            before
        );
        for after in [
            state(&[("a", "1"), ("ab", "\"x\""), ("d", "4"), ("é", "\"é\"")]),
            SessionState::new(),
            before.clone(),
        ] {
            assert_eq!(
                Changes::since(&copy, &after),
                Changes::between(&before, &after)
            );
        }
        let empty = Snapshot::of(&SessionState::new());
        assert!(empty.is_empty());
        assert_eq!(Changes::since(&empty, &before).set.len(), before.len());
        // The values are session data: never shown.
        assert_eq!(format!("{copy:?}"), "Snapshot { keys: 5, .. }");
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let mut c = Changes::default();
        c.set("user", "\"s3cret-data\"");
        c.remove("n");
        let shown = format!("{c:?}");
        assert!(shown.contains("user") && shown.contains("\"n\""), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn json_check_names_the_key() {
        let ok = SessionState::from([("a".to_owned(), "{\"x\":1}".to_owned())]);
        assert!(check_values_are_json(&ok).is_ok());
        let bad = SessionState::from([("a".to_owned(), "{not json".to_owned())]);
        assert!(check_values_are_json(&bad).unwrap_err().contains("`a`"));
        // A value that would forge a key once embedded in Redis' one string: refused, and
        // the message shows only the key.
        let forging = SessionState::from([("a".to_owned(), "1,\"=b\":2".to_owned())]);
        let err = check_values_are_json(&forging).unwrap_err();
        assert!(err.contains("`a`") && !err.contains("\"=b\""), "{err}");
    }

    /// A state handed back comes out of the next load empty: no key of one session can
    /// show up in another's. Its table is reused; big ones and more than a few are dropped.
    #[cfg(feature = "redis")]
    #[test]
    fn recycled_states_come_back_empty_and_bounded() {
        let mut used = state(&[("user", "\"alice\""), ("n", "1")]);
        used.reserve(20);
        let room = used.capacity();
        recycle_state(used);
        let reused = state_with_capacity(room / 2);
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), room, "the same table");

        // A small session does not take a table four times its size or more.
        recycle_state(SessionState::with_capacity(spare::SPARE_CAPACITY));
        assert!(state_with_capacity(4).capacity() < 16);
        assert!(spare::take_map(spare::SPARE_CAPACITY).is_some());

        // A table bigger than a load ever sizes is not kept.
        let mut big = SessionState::with_capacity(spare::SPARE_CAPACITY + 1);
        big.insert("k".into(), "1".into());
        recycle_state(big);
        assert!(spare::take_map(spare::SPARE_CAPACITY).is_none());

        // At most `SPARE_MAPS` per thread.
        for _ in 0..spare::SPARES + 3 {
            recycle_state(SessionState::with_capacity(8));
        }
        let mut kept = 0;
        while spare::take_map(spare::SPARE_CAPACITY).is_some() {
            kept += 1;
        }
        assert_eq!(kept, spare::SPARES);

        // Asking for more room than a spare table has grows it.
        recycle_state(SessionState::with_capacity(3));
        assert!(state_with_capacity(40).capacity() >= 40);
    }
}
