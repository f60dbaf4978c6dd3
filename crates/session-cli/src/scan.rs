//! Finding the sessions of a part, and reading them in pipelined batches.
//!
//! Redis: `SCAN` with `MATCH <prefix>*` on every server that holds sessions (never `KEYS`,
//! which blocks the server), then one pipeline per batch (`GET` + `PTTL`, plus
//! `MEMORY USAGE` for `stats`), so a batch of a thousand sessions costs one round trip; the
//! sessions of the batch still stored as hashes (the layout of earlier versions) cost one
//! more (`HGETALL`). The
//! file store: its directory listing, then concurrent reads.
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
        file::FileBackend,
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

/// The sessions of one server (or of the file store).
pub struct Group {
    /// The part's name, and the server for Redis.
    pub name: String,
    /// Where the sessions are ([`crate::parts::Node::place`], [`crate::parts::files_place`]).
    pub place: String,
    /// The database number of a Redis server (0 for the file store).
    pub db: i64,
    /// How to read them.
    pub source: Source,
    /// Their ids, in scan order.
    pub ids: Vec<SessionId>,
    /// Keys under the prefix that are not a session id of this library (left alone).
    pub foreign: usize,
    /// Entries of the session index (`session_redis_index_key`): Redis keys
    /// `<prefix>index:<key>:<digest>`, or the file store's `.index/<digest>` directories.
    pub index_entries: Vec<IndexEntry>,
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
/// store's. `batch` is the `SCAN COUNT` hint. Calls `seen` with the number of ids found so
/// far, now and then.
pub async fn groups(
    part: &Part<'_>,
    batch: usize,
    mut seen: impl FnMut(usize),
) -> Result<Vec<Group>, Failure> {
    match &part.kind {
        PartKind::Files(files) => {
            let ids = files.session_ids().await?;
            seen(ids.len());
            let index_entries = file_index_entries(files.root())?;
            Ok(vec![Group {
                name: part.name.clone(),
                place: crate::parts::files_place(files.root()),
                db: 0,
                source: Source::Files(files.clone()),
                ids,
                foreign: 0,
                index_entries,
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
            let mut total = 0;
            for node in holders {
                let name = format!("{} {}", part.name, node.location);
                let conn = redis
                    .connect(node)
                    .await
                    .map_err(|e| Failure::failed(format!("{name}: {e} ({})", hint(&e))))?;
                let (ids, foreign, index_entries) =
                    scan(conn.clone(), &redis.prefix, batch, |n| seen(total + n))
                        .await
                        .map_err(|e| Failure::failed(format!("{name}: SCAN failed: {e}")))?;
                total += ids.len();
                out.push(Group {
                    name,
                    place: node.place(&redis.prefix),
                    db: node.db,
                    source: Source::Redis(conn, redis.prefix.clone()),
                    ids,
                    foreign,
                    index_entries,
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

/// `SCAN` under `prefix` on one server: the session ids, how many other keys matched, and the
/// entries of the session index among those.
async fn scan(
    mut conn: MultiplexedConnection,
    prefix: &str,
    batch: usize,
    mut seen: impl FnMut(usize),
) -> redis::RedisResult<(Vec<SessionId>, usize, Vec<IndexEntry>)> {
    let index_prefix = format!("{prefix}index:");
    let mut index_entries = Vec::new();
    let mut unique_entries = std::collections::HashSet::new();
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut ids = Vec::new();
    let mut foreign = 0;
    // SCAN may return a key twice (while the table is resized): keep each once.
    let mut unique = std::collections::HashSet::new();
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(batch)
            .query_async(&mut conn)
            .await?;
        for key in keys {
            let id = key
                .strip_prefix(prefix.as_bytes())
                .and_then(|rest| std::str::from_utf8(rest).ok())
                .and_then(|rest| SessionId::parse(rest).ok());
            match id {
                Some(id) => {
                    if unique.insert(id.as_str().to_owned()) {
                        ids.push(id);
                    }
                }
                None => match index_entry(&key, &index_prefix) {
                    Some(entry) => {
                        if unique_entries.insert(key) {
                            index_entries.push(entry);
                        }
                    }
                    None => foreign += 1,
                },
            }
        }
        seen(ids.len());
        if next == 0 {
            return Ok((ids, foreign, index_entries));
        }
        cursor = next;
    }
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
