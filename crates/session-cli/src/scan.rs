//! Finding the sessions of a part, and reading them in pipelined batches.
//!
//! A walk hands out the ids a batch at a time, as `SCAN` finds them ([`Group::next_ids`]), and
//! keeps none: commands work on each batch before asking for the next, so their memory is
//! bounded by a batch, whatever the number of sessions (keeping every id first cost 1-2 GB per
//! 10 million sessions). Without the whole set, a key `SCAN` returns twice (it may, while
//! Redis shrinks its table: many keys deleted during the walk) is handed out twice: deletes
//! and moves count what the server did, so only counts of what was found (`stats`, `export`,
//! a dry run) can be off by such repeats.
//!
//! Redis: `SCAN` with `MATCH <prefix>*` on every server that holds sessions (never `KEYS`,
//! which blocks the server), then one pipeline per batch (`GET` + `PTTL`, plus
//! `MEMORY USAGE` for `stats`), so a batch of a thousand sessions costs one round trip; the
//! sessions of the batch still stored as hashes (the layout of earlier versions) cost one
//! more (`HGETALL`). The
//! file store: session-core's walk of its directory ([`FileBackend::walk`]), which holds a
//! batch of ids at most and hands out none twice, then concurrent reads.
//!
//! A key named like a session may hold a move's marker or a write's leftover records for a
//! while (a string starting with `,`): no session. The scan cannot tell; a read marks it
//! ([`Found::no_session`]), and `stats` counts the ones it does not read with
//! [`Source::count_no_sessions`].

use std::{sync::Arc, time::Duration};

use futures_util::{stream, StreamExt};
use redis::{aio::MultiplexedConnection, Value};
use session_core::{
    backends::{
        file::{FileBackend, SessionWalk},
        redis::{decode_value, holds_no_session},
    },
    SessionBackend, SessionId, SessionState,
};

use crate::{
    failure::Failure,
    parts::{Part, PartKind},
};

/// Concurrent file reads.
const FILE_READS: usize = 64;

/// One entry of the session index as the store names it.
pub struct IndexEntry {
    /// The indexed session key; the file store's names do not say (`None`).
    pub key: Option<String>,
    /// SHA-256 of the key and the value, in hex.
    pub digest: String,
}

/// Where a group of sessions is read from.
#[derive(Clone)]
pub enum Source {
    /// One Redis server (a standalone server, a master, a cluster master), with the prefix.
    Redis(MultiplexedConnection, String),
    /// The file store.
    Files(Arc<FileBackend>),
}

/// The sessions of one server (or of the file store), walked a batch at a time.
pub struct Group {
    /// The part's name, and the server for Redis.
    pub name: String,
    /// Where the sessions are ([`crate::parts::Node::place`], [`crate::parts::files_place`]).
    pub place: String,
    /// The database number of a Redis server (0 for the file store).
    pub db: i64,
    /// How to read them.
    pub source: Source,
    /// Keys under the prefix that are not a session id of this library (left alone), among
    /// the keys walked so far.
    pub foreign: usize,
    /// Entries of the session index (`session_redis_index_key`) among the keys walked so far:
    /// Redis keys `<prefix>index:<key>:<digest>`, or the file store's `.index/<digest>`
    /// directories. One per indexed value, not per session.
    pub index_entries: Vec<IndexEntry>,
    walk: Walk,
}

/// Where a walk is.
enum Walk {
    /// `SCAN` under the prefix: the pattern, the `COUNT` hint, and the cursor (`None` once
    /// the server said the walk is done).
    Redis {
        pattern: String,
        count: usize,
        cursor: Option<u64>,
    },
    /// The file store's walk (session-core's, which holds a batch at most), `count` ids at a
    /// time.
    Files { walk: SessionWalk, count: usize },
}

impl Group {
    /// The next ids of the walk, in scan order, never an empty batch; `None` once every id
    /// was handed out. About the `SCAN COUNT` hint at a time (the file store: exactly that
    /// many at most).
    pub async fn next_ids(&mut self) -> Result<Option<Vec<SessionId>>, Failure> {
        match (&mut self.walk, &self.source) {
            (Walk::Files { walk, count }, _) => {
                let batch = walk.next_batch(*count).await?;
                // What the directory holds besides the store's files: the file store's
                // counterpart of the keys under a Redis prefix that are not sessions.
                self.foreign = walk.unrecognised();
                Ok(batch)
            }
            (
                Walk::Redis {
                    pattern,
                    count,
                    cursor,
                },
                Source::Redis(conn, prefix),
            ) => loop {
                let Some(at) = *cursor else {
                    return Ok(None);
                };
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(at)
                    .arg("MATCH")
                    .arg(&*pattern)
                    .arg("COUNT")
                    .arg(*count)
                    .query_async(&mut conn.clone())
                    .await
                    .map_err(|e| Failure::failed(format!("{}: SCAN failed: {e}", self.name)))?;
                *cursor = (next != 0).then_some(next);
                let index_prefix = format!("{prefix}index:");
                let mut ids = Vec::new();
                for key in keys {
                    let id = key
                        .strip_prefix(prefix.as_bytes())
                        .and_then(|rest| std::str::from_utf8(rest).ok())
                        .and_then(|rest| SessionId::parse(rest).ok());
                    match id {
                        Some(id) => ids.push(id),
                        None => match index_entry(&key, &index_prefix) {
                            Some(entry) => self.index_entries.push(entry),
                            None => self.foreign += 1,
                        },
                    }
                }
                if !ids.is_empty() {
                    return Ok(Some(ids));
                }
            },
            (Walk::Redis { .. }, Source::Files(_)) => Ok(None),
        }
    }

    /// How many ids a walk hands out, counted by a walk of its own that keeps none; the group
    /// starts over afterwards. For a total before the work (a progress bar, a confirmation).
    pub async fn count(&mut self) -> Result<usize, Failure> {
        let mut count = 0;
        while let Some(ids) = self.next_ids().await? {
            count += ids.len();
        }
        match (&mut self.walk, &self.source) {
            (Walk::Redis { cursor, .. }, _) => *cursor = Some(0),
            (Walk::Files { walk, .. }, Source::Files(files)) => *walk = files.walk(),
            (Walk::Files { .. }, Source::Redis(..)) => {}
        }
        if matches!(self.source, Source::Redis(..)) {
            self.foreign = 0;
            self.index_entries.clear();
        }
        Ok(count)
    }
}

/// One session as read.
pub struct Found {
    /// Its id.
    pub id: SessionId,
    /// Its fields; `None` when it went away since the scan, or cannot be read.
    pub state: Option<SessionState>,
    /// What is left of its lifetime; `None`: no expiry.
    pub ttl: Option<Duration>,
    /// Bytes Redis uses for it (`MEMORY USAGE`), when asked for.
    pub memory: Option<u64>,
    /// Why it could not be read (a key of the wrong type, not UTF-8, ...): what is stored is
    /// no session. A read the server refused is no such thing: [`Source::read`] fails.
    pub unreadable: Option<String>,
    /// The key holds a move's marker or a write's leftover records (a string starting with
    /// `,`): no session to any read, short-lived, and not unreadable either. Never for the
    /// file store, which leaves neither.
    pub no_session: bool,
}

impl Found {
    /// Bytes of its keys and of their JSON values (what `session_redis_max_session_size`
    /// limits).
    pub fn size(&self) -> usize {
        self.state
            .as_ref()
            .map_or(0, |s| s.iter().map(|(k, v)| k.len() + v.len()).sum())
    }
}

/// Every group of sessions of `part`: one per Redis server that holds sessions, or the file
/// store's, connected but not walked yet. `batch` is the `SCAN COUNT` hint.
pub async fn groups(part: &Part<'_>, batch: usize) -> Result<Vec<Group>, Failure> {
    let batch = batch.max(1);
    match &part.kind {
        PartKind::Files(files) => {
            let index_entries = file_index_entries(files.root())?;
            Ok(vec![Group {
                name: part.name.clone(),
                place: crate::parts::files_place(files.root()),
                db: 0,
                source: Source::Files(files.clone()),
                foreign: 0,
                index_entries,
                walk: Walk::Files {
                    walk: files.walk(),
                    count: batch,
                },
            }])
        }
        PartKind::Redis(redis) => {
            let discovery = redis.discover().await.map_err(|f| f.context(&part.name))?;
            let holders: Vec<_> = discovery
                .nodes
                .iter()
                .filter(|n| n.role.holds_sessions())
                .collect();
            if holders.is_empty() {
                return Err(Failure::failed(format!(
                    "{}: no server holding sessions was found: {}",
                    part.name,
                    discovery.problems.join("; ")
                )));
            }
            let mut out = Vec::new();
            for node in holders {
                let name = format!("{} {}", part.name, node.location);
                let conn = redis
                    .connect(node)
                    .await
                    .map_err(|e| Failure::failed(format!("{name}: {e} ({})", hint(&e))))?;
                out.push(Group {
                    name,
                    place: node.place(&redis.prefix),
                    db: node.db,
                    source: Source::Redis(conn, redis.prefix.clone()),
                    foreign: 0,
                    index_entries: Vec::new(),
                    walk: Walk::Redis {
                        pattern: format!("{}*", glob_escape(&redis.prefix)),
                        count: batch,
                        cursor: Some(0),
                    },
                });
            }
            Ok(out)
        }
    }
}

/// What to look at when a server cannot be reached. A certificate the configured roots do
/// not trust is not a server that is down: asking whether it is up would send the operator
/// the wrong way. rustls words every verification failure "invalid peer certificate".
fn hint(err: &redis::RedisError) -> &'static str {
    if err.to_string().contains("invalid peer certificate") {
        "the server's certificate must be valid for the host name (session_redis_ssl_check_hostname) \
         and signed by a CA of session_redis_ssl_ca_certs/_ca_path/_ca_data, or of the system's roots when none is set"
    } else {
        "is the server up? `sessionctl check` tests every part"
    }
}

/// The entry directories of the file store's index (`<root>/.index/<digest>`).
fn file_index_entries(root: &std::path::Path) -> Result<Vec<IndexEntry>, Failure> {
    let dir = root.join(".index");
    let listing = match std::fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Failure::failed(format!(
                "listing {}: {e}",
                crate::parts::files_place(&dir)
            )))
        }
    };
    let mut entries = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| Failure::failed(format!("listing the file index: {e}")))?;
        if let Some(digest) = entry.file_name().to_str() {
            entries.push(IndexEntry {
                key: None,
                digest: digest.to_owned(),
            });
        }
    }
    Ok(entries)
}

/// `<index_prefix><key>:<digest>` as an entry of the index (the key may hold `:` itself; the
/// digest is the last part).
fn index_entry(name: &[u8], index_prefix: &str) -> Option<IndexEntry> {
    let rest = std::str::from_utf8(name.strip_prefix(index_prefix.as_bytes())?).ok()?;
    let (key, digest) = rest.rsplit_once(':')?;
    Some(IndexEntry {
        key: Some(key.to_owned()),
        digest: digest.to_owned(),
    })
}

/// `prefix` with the glob characters of `MATCH` escaped.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Source {
    /// Reads `ids`: one pipeline for Redis, concurrent reads for the file store.
    ///
    /// Fails when the server refuses a read (an error reply to one command of the pipeline:
    /// an ACL that covers only some keys, a slot that moved, a server loading its data) or
    /// the file store cannot be reached: such a session may be there and fine, so counting it
    /// "unreadable" (no session) made `revoke --where` leave it logged in, and `export` leave
    /// it out of a backup, with exit status 0.
    pub async fn read(&self, ids: &[SessionId], memory: bool) -> Result<Vec<Found>, Failure> {
        let mut refused = Refused::default();
        let found = self.read_all(ids, memory, &mut refused).await?;
        refused.into_result()?;
        Ok(found)
    }

    async fn read_all(
        &self,
        ids: &[SessionId],
        memory: bool,
        refused: &mut Refused,
    ) -> Result<Vec<Found>, Failure> {
        match self {
            Source::Files(files) => {
                let results: Vec<_> = stream::iter(ids)
                    .map(|id| {
                        let files = files.clone();
                        async move { (id, files.load_with_ttl(id).await) }
                    })
                    .buffered(FILE_READS)
                    .collect()
                    .await;
                let mut out = Vec::with_capacity(results.len());
                for (id, result) in results {
                    let (state, ttl, unreadable) = match result {
                        Ok(found) => {
                            let (state, ttl) = found.map_or((None, None), |(s, t)| (Some(s), t));
                            (state, ttl, None)
                        }
                        // An I/O failure (permissions, too many open files) is no corrupt
                        // file: the session may be there.
                        Err(err) if err.is_unavailable() => {
                            refused.add(err.to_string());
                            (None, None, None)
                        }
                        Err(err) => (None, None, Some(err.to_string())),
                    };
                    out.push(Found {
                        id: id.clone(),
                        state,
                        ttl,
                        memory: None,
                        unreadable,
                        no_session: false,
                    });
                }
                Ok(out)
            }
            Source::Redis(conn, prefix) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for id in ids {
                    let key = format!("{prefix}{}", id.as_str());
                    pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
                    if memory {
                        pipe.cmd("MEMORY")
                            .arg("USAGE")
                            .arg(&key)
                            .arg("SAMPLES")
                            .arg(0);
                    }
                }
                let replies: Vec<Value> = pipe
                    .query_async(&mut conn.clone())
                    .await
                    .map_err(|e| Failure::failed(format!("reading sessions: {e}")))?;
                let per = if memory { 3 } else { 2 };
                let mut replies = replies.into_iter();
                let mut out = Vec::with_capacity(ids.len());
                let mut hashes = Vec::new();
                for id in ids {
                    let value = replies.next().unwrap_or(Value::Nil);
                    let pttl = replies.next().unwrap_or(Value::Nil);
                    let used = if per == 3 { replies.next() } else { None };
                    let no_session =
                        matches!(&value, Value::BulkString(bytes) if holds_no_session(bytes));
                    let (state, unreadable) = match value {
                        Value::Nil => (None, None),
                        Value::BulkString(bytes) => match decode_value(&bytes) {
                            Ok(state) if state.is_empty() => (None, None),
                            Ok(state) => (Some(state), None),
                            Err(why) => (None, Some(why)),
                        },
                        Value::ServerError(err) if err.code() == "WRONGTYPE" => {
                            hashes.push(out.len());
                            (None, None)
                        }
                        Value::ServerError(err) => {
                            refused.add(refusal(&err));
                            (None, None)
                        }
                        _ => (None, Some("not a string".into())),
                    };
                    let ttl = match pttl {
                        Value::Int(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                        // Else read as "no expiry": `revoke --no-ttl` would delete it.
                        Value::ServerError(err) => {
                            refused.add(refusal(&err));
                            None
                        }
                        _ => None,
                    };
                    let memory = match used {
                        Some(Value::Int(bytes)) if bytes >= 0 => Some(bytes as u64),
                        _ => None,
                    };
                    out.push(Found {
                        id: id.clone(),
                        state,
                        ttl,
                        memory,
                        unreadable,
                        no_session,
                    });
                }
                if !hashes.is_empty() {
                    let mut pipe = redis::pipe();
                    pipe.ignore_errors();
                    for &i in &hashes {
                        pipe.cmd("HGETALL")
                            .arg(format!("{prefix}{}", out[i].id.as_str()));
                    }
                    let replies: Vec<Value> = pipe
                        .query_async(&mut conn.clone())
                        .await
                        .map_err(|e| Failure::failed(format!("reading sessions: {e}")))?;
                    for (&i, hash) in hashes.iter().zip(replies) {
                        if let Value::ServerError(err) = &hash {
                            if err.code() != "WRONGTYPE" {
                                refused.add(refusal(err));
                                continue;
                            }
                        }
                        match parse_hash(hash) {
                            Ok(state) if state.is_empty() => out[i].ttl = None,
                            Ok(state) => out[i].state = Some(state),
                            Err(why) => out[i].unreadable = Some(why),
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// How many of `ids` hold no session (a move's marker, a write's leftover records:
    /// [`Found::no_session`]), from the first byte of each value alone: one pipeline of
    /// `GETRANGE key 0 0`, for counting sessions without reading them whole. A key gone
    /// since the scan, or of another type (a hash of earlier versions answers `WRONGTYPE`),
    /// is not counted. Always 0 for the file store.
    pub async fn count_no_sessions(&self, ids: &[SessionId]) -> Result<usize, Failure> {
        let Source::Redis(conn, prefix) = self else {
            return Ok(0);
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for id in ids {
            pipe.cmd("GETRANGE")
                .arg(format!("{prefix}{}", id.as_str()))
                .arg(0)
                .arg(0);
        }
        let replies: Vec<Value> = pipe
            .query_async(&mut conn.clone())
            .await
            .map_err(|e| Failure::failed(format!("reading sessions: {e}")))?;
        Ok(replies
            .iter()
            .filter(|reply| matches!(reply, Value::BulkString(first) if holds_no_session(first)))
            .count())
    }
}

/// The reads of one [`Source::read`] that the server refused, or the file store failed.
#[derive(Default)]
struct Refused {
    count: usize,
    first: Option<String>,
}

impl Refused {
    fn add(&mut self, why: String) {
        self.count += 1;
        self.first.get_or_insert(why);
    }

    fn into_result(self) -> Result<(), Failure> {
        match self.first {
            None => Ok(()),
            Some(first) => Err(Failure::failed(format!(
                "reading sessions: {} read(s) refused, the first with: {first} (those sessions may be there: nothing was done with them; fix the cause and run again)",
                self.count
            ))),
        }
    }
}

/// An error reply as a message: its code and text, cut short (a server's text, never a key).
fn refusal(err: &redis::ServerError) -> String {
    let text = match err.details() {
        Some(details) => format!("{} {details}", err.code()),
        None => err.code().to_owned(),
    };
    text.chars().take(200).collect()
}

/// An `HGETALL` reply (a session in the hash layout of earlier versions) as a session; the
/// reason when it is not one.
fn parse_hash(value: Value) -> Result<SessionState, String> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Nil => Vec::new(),
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            let mut items = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        Value::ServerError(err) => return Err(format!("{err:?}").chars().take(200).collect()),
        _ => return Err("not a hash".into()),
    };
    let text = |v: Value| match v {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    };
    let mut state = SessionState::with_capacity(pairs.len());
    for (k, v) in pairs {
        match (text(k), text(v)) {
            (Some(k), Some(v)) => {
                state.insert(k, v);
            }
            _ => return Err("a field or value is not UTF-8 text".into()),
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_the_prefix_are_escaped() {
        assert_eq!(glob_escape("session:"), "session:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
