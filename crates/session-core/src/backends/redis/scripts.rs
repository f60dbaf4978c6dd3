//! The Lua scripts behind the conditional writes.
//!
//! Each one runs as a single `EVALSHA` (one round trip, atomic on the server): checking that the
//! key exists and writing in two commands would let a logout slip in between and be undone.
//! The common write needs none: what its `APPEND` leaves under a deleted session's key is
//! records without a header, which no read takes for a session (`RedisBackend::append_request`).
//!
//! Argument layout shared by all scripts: `KEYS[1]` is the session key, `ARGV[1]` the expiry in
//! milliseconds (`0`: none). The hash layout's fields are written in chunks because Lua's
//! `unpack` fails beyond a few thousand values, and a large session must not turn into a
//! script error.
//!
//! The session index (`session_redis_index_key`): a write that sets the indexed key on one
//! server passes the index entry as the last key (after the script's own) and `stamp, id`
//! as the last two `ARGV`; the
//! prelude `ZADD`s them **before anything else**, so a `ZADD` that fails (an ACL without
//! `+zadd`, a key of the wrong type) fails the script before the session is written: a
//! session is never stored holding the value without being in the index.

use std::sync::LazyLock;

use futures_util::FutureExt;

use redis::{
    aio::ConnectionLike, Arg, Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind,
    ToRedisArgs,
};

/// Shared Lua helpers, prepended to every script.
///
/// Only what every script needs: each call runs the whole text, so anything here costs every
/// call. `in_chunks` ([`IN_CHUNKS`]) is added to the script that writes hash fields.
///
/// `KEYS_OF_SCRIPT` is replaced by the number of keys the script itself takes (1, or 2 for
/// [`COMMIT`]): a key beyond those is the index entry.
const PRELUDE: &str = r#"
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local argc = #ARGV
if #KEYS > KEYS_OF_SCRIPT then
  redis.call('ZADD', KEYS[#KEYS], ARGV[argc - 1], ARGV[argc])
  argc = argc - 2
end
"#;

/// Writes `ARGV[from..=to]` with `command` in chunks of 200 values (an even number, so
/// field/value pairs stay together).
const IN_CHUNKS: &str = r#"
local function in_chunks(command, k, from, to)
  local i = from
  while i <= to do
    local j = math.min(i + 199, to)
    redis.call(command, k, unpack(ARGV, i, j))
    i = j + 1
  end
end
"#;

/// What a conditional write that met another write in between does with the request's
/// records (`records`, `''` when it has none to add) when the value it found (its first
/// bytes `head`, its length `len`) is a session by its header and its odd length
/// (`layout::is_session_length`): adds them on top and answers true, so the caller needs no
/// round trip more. Else false, and the script answers the value for the caller to decide:
/// records alone (a logout came in between; `head` starts with `,`), a value written before
/// lengths were kept odd, or a string not of ours. `takes_records` is that test alone, for
/// [`SAVE`]'s put-back, which adds the records in the `SET` it makes anyway.
const ON_TOP: &str = r#"
local function takes_records(head, len, records)
  return records ~= '' and len % 2 == 1 and string.sub(head, 1, 3) == 'v1:'
end
local function on_top(head, len, records)
  if not takes_records(head, len, records) then return false end
  redis.call('APPEND', key, records)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
  return true
end
"#;

/// `ARGV[2]`: the stored value (`layout.rs`). Returns 1 when written, 0 when the key exists
/// (whatever its type: the id is taken either way) — except when it holds exactly the value
/// being written, header included (its tag is random, new with every create): then it is
/// this very create, sent again after a timeout or a dropped connection whose first attempt
/// ran, and it answers 1 again instead of "taken", which would leave the first attempt's
/// session orphaned. This keeps `create` safe to retry. The same state under another tag
/// is another create's: two processes moving one session at the same instant write the
/// same state, and the second must learn that the copy is the first one's ("taken"), not
/// take it for its own, or it would remove it as its own when its move ends in a logout
/// (`backends::multi`, "Moving a session"; a review found it comparing the state alone). Records alone (`layout::ORPHAN`: a write's, after a logout) are no
/// session: the id is free and they are written over (their writer's `DEL` is conditional on
/// them, [`DEL_ORPHAN`]). One `redis.call` when the id is free (`SET NX`).
const CREATE: &str = r#"
local function put()
  if ttl > 0 then return redis.call('SET', key, ARGV[2], 'NX', 'PX', ttl) end
  return redis.call('SET', key, ARGV[2], 'NX')
end
if put() then return 1 end
if redis.call('TYPE', key).ok == 'string' then
  local stored = redis.call('GET', key)
  if string.byte(stored) == 44 then
    redis.call('DEL', key)
    return put() and 1 or 0
  end
  if stored == ARGV[2] then
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    return 1
  end
end
return 0
"#;

/// `ARGV[2]`: the whole new value. Returns 0 (writing nothing) when the session is absent
/// (or only records are left of it, `layout::ORPHAN`: a write's, after a logout). With
/// `ttl` 0 the session ends up without expiry (PERSIST semantics). A session still in the hash
/// layout of earlier versions becomes a string here; any other key (another type, or a string
/// without our header) is not a session and is left alone (`WRONGTYPE`, reported as corrupt).
const REPLACE: &str = r#"
local t = redis.call('TYPE', key).ok
if t == 'none' then return 0 end
local head = t == 'string' and redis.call('GETRANGE', key, 0, 2)
if head and string.byte(head) == 44 then return 0 end
if not (t == 'hash' or head == 'v1:') then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
if ttl > 0 then
  redis.call('SET', key, ARGV[2], 'PX', ttl)
else
  redis.call('SET', key, ARGV[2])
end
return 1
"#;

/// The conditional write that replaces a session's value: a rewrite once its records pile
/// up, or the delete of a session left with no key. `ARGV[2]`: the header (`v1:<tag>:`) of
/// the value the request loaded; `ARGV[3]`: the whole new value, or `''` to delete;
/// `ARGV[4]`: the loaded value's length (appends grow it; a rewrite changes the tag). `ttl`
/// 0 keeps the expiry (`KEEPTTL`).
///
/// `ARGV[5]`: the request's records (`layout::records`), or `''`: what goes on top of the
/// current value when another write changed the session since the load ([`ON_TOP`]).
///
/// Returns 1 when written; 0 when the session is absent (deleted by a logout, or expired:
/// nothing is written, so a logout sticks). When another write changed the session since
/// the load, the records go on top of what that write left, in the same call (answer 1),
/// where the caller's next step was that `APPEND`, one round trip more: with many requests
/// on one session at once (the benchmark's 128 connections on 200 sessions) a quarter of the
/// rewrites met another write, and those writes' third round trip set the write routes' p99
/// (docs/benchmarks.md, thirteenth round). Without records (a delete; a write that only
/// removes keys, whose removals on top might leave no key, which must delete the session;
/// records of 1 KB or more, which would cost Redis more in Lua on every rewrite than the
/// round trip they save now and then), or when the value found is not a session of this
/// version's lengths, it answers the **current value**, and the caller applies its changes
/// to that. On a hash (a session still in the layout of earlier versions) `GETRANGE` raises
/// `WRONGTYPE` before anything is written.
///
/// The rewrite of a small session (loaded under 1 KB) starts with `SET ... XX GET KEEPTTL`: it
/// writes only over an existing key (a logout sticks) and answers the value it replaced,
/// which the script compares with the loaded version; when they differ, it puts that value
/// back, byte for byte, with the expiry `KEEPTTL` kept, before anyone can read it (a script
/// runs atomically, and replicas and the AOF get its effects as one `MULTI`/`EXEC`). Then
/// `PEXPIRE` when there is an expiry to set: two calls where reading the header and the
/// length first took three, 2.6 µs a call against 3.0 on this machine (tenth round,
/// docs/benchmarks.md). The price, only when another write came in between (or records
/// alone are found): two writes where the checks wrote nothing, so two `set` keyspace
/// events, replication traffic, and a `WATCH` of the key aborted. Not for a larger session:
/// the value answered passes through Lua (about 1.2 µs per KB, see [`COMMIT`]); nor for a
/// delete (`GETDEL` answers the value, but a delete that must be undone would lose the
/// expiry). The `SET` is a `pcall`: a server without `SET ... GET` (before Redis 6.2), or a
/// hash under the key (`WRONGTYPE`, before anything is written), gets the checks first, as
/// before, whose `GETRANGE` raises `WRONGTYPE` on a hash.
const SAVE: &str = r#"
local loaded = tonumber(ARGV[4])
local old
if ARGV[3] ~= '' and loaded < 1024 then
  old = redis.pcall('SET', key, ARGV[3], 'XX', 'GET', 'KEEPTTL')
  if not old then return 0 end
end
if type(old) == 'string' then
  if #old == loaded and string.sub(old, 1, 20) == ARGV[2] then
    if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    return 1
  end
  -- As `on_top`, in the `SET` that puts the value back.
  if takes_records(old, #old, ARGV[5]) then
    if ttl > 0 then
      redis.call('SET', key, old .. ARGV[5], 'PX', ttl)
    else
      redis.call('SET', key, old .. ARGV[5], 'KEEPTTL')
    end
    return 1
  end
  redis.call('SET', key, old, 'KEEPTTL')
  if old == '' then return 0 end
  return old
end
local head = redis.call('GETRANGE', key, 0, 19)
local len = redis.call('STRLEN', key)
if head ~= ARGV[2] or len ~= loaded then
  if head == '' then return 0 end
  if on_top(head, len, ARGV[5]) then return 1 end
  return redis.call('GET', key)
end
if ARGV[3] == '' then
  redis.call('DEL', key)
elseif ttl > 0 then
  redis.call('SET', key, ARGV[3], 'PX', ttl)
else
  redis.call('SET', key, ARGV[3], 'KEEPTTL')
end
return 1
"#;

/// [`SAVE`] for a large value, which does not pass through Lua: Redis 7 hashes every byte
/// of every string a script receives, about 1.2 µs per KB (measured: a script that only
/// returns 1 costs 0.8 µs with a 100-byte argument, 3.1 µs with 2 KB, 24 µs with 20 KB),
/// where a plain `SET` of 20 KB costs 0.3-0.5 µs. So the same pipeline first `SET`s the
/// value at a staging key (`KEYS[2]`, `<session key>:w:<tag>`, with a 10 s expiry in case
/// this script never runs), and this script, given only the expected header, `RENAME`s it
/// onto the session when the version is still the stored one. Answers as [`SAVE`] does; the
/// staging key is gone either way. `ARGV[3]`: the loaded value's length, as for [`SAVE`];
/// `ARGV[4]`: the records, added on top when another write came in between, as for [`SAVE`]
/// (which also spares that write the current value passed back through Lua: 24 µs of Redis
/// time for 20 KB).
/// `ttl` 0 keeps the session's expiry (`RENAME` would give it the staging key's): read
/// before, set again after.
const COMMIT: &str = r#"
local head = redis.call('GETRANGE', key, 0, 19)
local len = redis.call('STRLEN', key)
if head ~= ARGV[2] or len ~= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[2])
  if head == '' then return 0 end
  if on_top(head, len, ARGV[4]) then return 1 end
  return redis.call('GET', key)
end
if ttl > 0 then
  redis.call('RENAME', KEYS[2], key)
  redis.call('PEXPIRE', key, ttl)
else
  local left = redis.call('PTTL', key)
  redis.call('RENAME', KEYS[2], key)
  if left > 0 then redis.call('PEXPIRE', key, left) else redis.call('PERSIST', key) end
end
return 1
"#;

/// The write of a request's changed keys: their records appended to the stored value
/// (`layout.rs`: the object is kept without its closing brace for this). `ARGV[2]`: the
/// records. `ttl` 0 keeps the expiry (`APPEND` does).
///
/// Returns the value's new length when written; 0 when the session is absent (deleted by a
/// logout, or expired: nothing is written, so a logout sticks; also when only another
/// write's records are left of it, `layout::ORPHAN`); -1 when the key holds a
/// string that is not a session of ours (left alone). On a hash (a session still in the layout of earlier
/// versions) `GETRANGE` raises `WRONGTYPE` before anything is written. No version check:
/// records only add to what is there, as `HSET`/`HDEL` did to a hash, so two concurrent
/// requests that change different keys both keep their change. Two `redis.call`s, three
/// with an expiry to set: as many as the hash's field-level write had.
const AMEND: &str = r#"
local head = redis.call('GETRANGE', key, 0, 2)
if head ~= 'v1:' then
  if head == '' or string.byte(head) == 44 then return 0 end
  return -1
end
local len = redis.call('APPEND', key, ARGV[2])
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return len
"#;

/// [`AMEND`] for a session this request loaded, and so knows to be a session of ours (the
/// load checked its header; only our own writes replace it): the records are appended
/// without reading the header first. An `APPEND` that made the key (its new length is the
/// records' own: the session was deleted or expired since the load) is undone in the same
/// script, so a logout sticks and no session key is left; so is one that found records
/// alone (`layout::ORPHAN`: another write's, left after the same logout by the scriptless
/// write of `RedisBackend::append_request`, whose `DEL` has not come yet). (An index entry
/// added by the prelude stays, as with [`AMEND`] on an absent session, until the index is
/// pruned.)
/// Returns as [`AMEND`] does, never -1: a key that another program replaced with a string
/// of its own between the load and this write is appended to, where [`AMEND`] leaves it
/// alone, which is why writes without a version keep [`AMEND`]. Used where the scriptless
/// write cannot be: without an expiry to give records left after a logout, or with an index
/// entry to add on one server (which must fail the write when it fails).
const AMEND_LOADED: &str = r#"
local len = redis.call('APPEND', key, ARGV[2])
if len == #ARGV[2] then
  redis.call('DEL', key)
  return 0
end
if redis.call('GETRANGE', key, 0, 0) == ',' then
  drop_records()
  return 0
end
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return len
"#;

/// The field-level write of a session still stored as a hash by an earlier version.
/// `ARGV[2]`: number of removed fields `n`; `ARGV[3..3+n)`: removed fields; the rest: field,
/// value pairs to set (never one of the removed ones). `ttl` 0 leaves the expiry alone. A hash
/// left empty is deleted by Redis itself, which is exactly "a session left with no keys is
/// deleted". Sets go first: removing every old field first would delete the key, and the sets
/// would then recreate it without its expiry.
///
/// The existence check is `HLEN`: 0 when the key is absent (Redis never keeps an empty hash),
/// a `WRONGTYPE` error when the key is not a hash (it became a string since the load), before
/// anything is written.
const APPLY_HASH: &str = r#"
if redis.call('HLEN', key) == 0 then return 0 end
local removed = tonumber(ARGV[2])
in_chunks('HSET', key, 3 + removed, argc)
in_chunks('HDEL', key, 3, 2 + removed)
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return 1
"#;

/// Removes the expiry of an existing session. `PERSIST` alone cannot tell "absent" from "had no
/// expiry", hence the script. Records alone (`layout::ORPHAN`) are no session: absent, and
/// they keep the expiry that lets them go should their writer's `DEL` never come.
const PERSIST: &str = r#"
local t = redis.call('TYPE', key).ok
if t == 'none' or (t == 'string' and redis.call('GETRANGE', key, 0, 0) == ',') then
  return 0
end
redis.call('PERSIST', key)
return 1
"#;

/// Gives a move's copy its expiry (`ttl`, 0: none) only while it starts with the header
/// `ARGV[2]` (`v1:<tag>:`, 20 bytes): another move's copy under the id keeps its own
/// (`SessionBackend::touch_tagged`). Answers 1 when touched, 0 otherwise.
const CONFIRM: &str = r#"
if redis.call('TYPE', key).ok ~= 'string' or redis.call('GETRANGE', key, 0, 19) ~= ARGV[2] then
  return 0
end
if ttl > 0 then redis.call('PEXPIRE', key, ttl) else redis.call('PERSIST', key) end
return 1
"#;

/// A logout's delete: removes whatever the key holds and answers 1 when that was a session
/// (our string, a hash of the layout of earlier versions, or a value of another kind the id
/// held), 0 when nothing or only records alone (`layout::ORPHAN`: a write's `APPEND` after a
/// logout, which its writer has not dropped yet) or a moved marker were there: no read takes
/// those for a session, and neither may the answer. The renews of both framework layers
/// keep their new id only when the delete of the old one found a session: a plain `DEL`
/// answered 1 for a late write's records, and a renew racing a logout kept the session.
/// `delete_many` (bulk revokes) stays a pipeline of `DEL`s, whose count is only reported:
/// a script needs read and write on the key in one ACL pattern, which a `DEL` does not.
const DELETE: &str = r#"
local t = redis.call('TYPE', key).ok
if t == 'none' then return 0 end
local gone = t == 'string' and redis.call('GETRANGE', key, 0, 0) == ','
redis.call('DEL', key)
if gone then return 0 end
return 1
"#;

/// Deletes records alone (`layout::ORPHAN`) that a write left after a logout, and nothing
/// else: between the write's look at them and this, a `create` may have written a session
/// over them (`CREATE`), which a plain `DEL` would remove. Records appended to a moved marker
/// ([`DROP_RECORDS`]) leave the marker as it was.
const DEL_ORPHAN: &str = r#"
if redis.call('TYPE', key).ok == 'string' and redis.call('GETRANGE', key, 0, 0) == ',' then
  drop_records()
  return 1
end
return 0
"#;

/// Removes what a write appended after its session went away (`layout::ORPHAN`), for
/// [`DEL_ORPHAN`] and [`AMEND_LOADED`]: the key is deleted, unless it starts with a moved
/// marker (`layout::moved_marker`: `,"~moved":"` and 16 hex digits and `"`, 28 bytes),
/// which is put back as it was, with its expiry (at most `MOVED_MARKER_TTL`: the scriptless
/// write's `PEXPIRE` gave it a session's). A write by a process that loaded the
/// session before a move retired it (one still configured with the old store) appends to
/// the marker; deleting it with the records made the move's resent retire find nothing
/// and remove the moved copy: a logout no one asked for.
const DROP_RECORDS: &str = r#"
local function drop_records()
  local head = redis.call('GETRANGE', key, 0, 27)
  if #head == 28 and string.sub(head, 1, 11) == ',"~moved":"' and string.sub(head, 28) == '"' then
    local left = redis.call('PTTL', key)
    if left <= 0 or left > MOVED_MARKER_MS then left = MOVED_MARKER_MS end
    redis.call('SET', key, head, 'PX', left)
  else
    redis.call('DEL', key)
  end
end
"#;

/// Gives records alone or a moved marker (`layout::ORPHAN`) back an expiry of at most `ttl`
/// (`MOVED_MARKER_TTL`) after a touching load or a `touch` found them: that touch (`GETEX
/// ... PX`, `PEXPIRE`) had just given them a session's, so a process still configured with
/// the old store of a move would keep every marker it is asked about for a session's
/// lifetime instead of a minute. Only when the key still starts with `,`: a `create` may
/// have written a session over them in between, whose expiry is not this script's to
/// shorten. Answers 1 when it found such a value, 0 otherwise.
const SHORTEN: &str = r#"
if redis.call('TYPE', key).ok == 'string' and redis.call('GETRANGE', key, 0, 0) == ',' then
  local left = redis.call('PTTL', key)
  if left < 0 or left > ttl then redis.call('PEXPIRE', key, ttl) end
  return 1
end
return 0
"#;

/// The last step of a move out of this server (`SessionBackend::retire_many`): a session
/// under the key (our string, or a hash of the layout of earlier versions) is replaced by
/// the move's marker `ARGV[2]` (`layout::moved_marker`) with expiry `ttl`; answers 1. The
/// same marker already there answers 2: this very retire ran before (its reply was lost,
/// and the client sent it again); so does that marker with a stale write's records
/// appended (`DROP_RECORDS`, whose writer has not dropped them yet): the records go, the
/// marker stays (a review found the resend answering another move's there, and the move
/// removing its copy). Another move's marker (it starts with `ARGV[3]`,
/// `layout::MOVED_PREFIX`) answers that move's token (the 16 hex digits after the prefix's
/// quote: the caller keeps a copy whose tag it is, `Retired::Other`), and no key or
/// records alone (a write's, after a logout) answer 0: either way the session went away
/// since the move read it. What was there is then put back (with the marker's expiry):
/// records alone for their writer to delete ([`DEL_ORPHAN`]), the other marker for its
/// own move's resend.
///
/// A logout's retire (`ARGV[4]` is `1`: the marker of `backend::LOGGED_OUT_TOKEN`, which a
/// multi-backend's delete leaves where sessions move from) also takes the place of another
/// move's marker, still answering that move's token: a logout whose own request moved the
/// session first finds that move's marker there, and a move still in flight from before
/// (another process's, which read the old copy before that retire) must then find the
/// logout's marker, not a move's, and a renew's delete racing it too (`multi.rs`,
/// `end_sources`).
///
/// One `redis.call` for a string (`SET ... XX GET`, which writes only over an existing key
/// and answers what it replaced), where reading the type and the first byte first took
/// three: a migration retires every session it moves. A key of another type (a hash) makes
/// `SET ... GET` fail with `WRONGTYPE` before it writes anything; it is then written over.
/// A server before Redis 6.2 refuses `GET` as a syntax error whatever the key holds: it
/// reads first (no key, records alone, a marker), as the hash path must not write a marker
/// where there was no session.
const RETIRE: &str = r#"
local function other(marker) return string.sub(marker, #ARGV[3] + 2, #ARGV[3] + 17) end
local takes_markers = ARGV[4] == '1'
local old = redis.pcall('SET', key, ARGV[2], 'XX', 'GET', 'PX', ttl)
if type(old) == 'table' and old.err then
  if string.find(old.err, 'WRONGTYPE', 1, true) ~= 1 then
    local t = redis.call('TYPE', key).ok
    if t == 'none' then return 0 end
    if t == 'string' then
      local found = redis.call('GET', key)
      if string.sub(found, 1, #ARGV[2]) == ARGV[2] then return 2 end
      if string.byte(found) == 44 then
        if string.sub(found, 1, #ARGV[3]) == ARGV[3] then
          if takes_markers then redis.call('SET', key, ARGV[2], 'PX', ttl) end
          return other(found)
        end
        return 0
      end
    end
  end
  redis.call('SET', key, ARGV[2], 'PX', ttl)
  return 1
end
if not old then return 0 end
if string.sub(old, 1, #ARGV[2]) == ARGV[2] then return 2 end
if string.byte(old) == 44 then
  local marker = string.sub(old, 1, #ARGV[3]) == ARGV[3]
  if marker and takes_markers then return other(old) end
  redis.call('SET', key, old, 'KEEPTTL')
  if marker then return other(old) end
  return 0
end
return 1
"#;

/// `KEYS[1]`: an index entry (a sorted set of ids scored by the Unix ms of their add);
/// `ARGV`: id, stamp, id, stamp, ... Removes each id whose score is still that stamp: one
/// renewed since the caller read it (a write that set the value again) stays.
const INDEX_REMOVE: &str = r#"
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', key, ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call('ZREM', key, ARGV[i])
  end
end
return 1
"#;

/// A script with its text and its SHA1, sent by hash.
pub(super) struct LuaScript {
    code: String,
    hash: String,
}

impl LuaScript {
    fn new(body: &str) -> Self {
        Self::with_keys(body, 1)
    }

    /// A script that takes `keys` keys of its own (the index entry may follow them).
    fn with_keys(body: &str, keys: usize) -> Self {
        let helper = |name: &str, code: &str| {
            if body.contains(&format!("{name}(")) {
                code.to_owned()
            } else {
                String::new()
            }
        };
        let drop_records = DROP_RECORDS.replace(
            "MOVED_MARKER_MS",
            &crate::MOVED_MARKER_TTL.as_millis().to_string(),
        );
        let prelude = PRELUDE.replace("KEYS_OF_SCRIPT", &keys.to_string());
        let code = format!(
            "{prelude}{}{}{}{body}",
            helper("in_chunks", IN_CHUNKS),
            helper("on_top", ON_TOP),
            helper("drop_records", &drop_records)
        );
        let hash = Script::new(&code).get_hash().to_owned();
        Self { code, hash }
    }

    /// A call of this script on one session key; arguments follow with [`ScriptCall::arg`].
    pub(super) fn call(&'static self, key: String) -> ScriptCall {
        self.call_indexed(key, None)
    }

    /// A call on one session key that also adds to the index entry `entry` (its Redis key)
    /// when given: the caller ends the arguments with the stamp and the id (see the module
    /// docs).
    pub(super) fn call_indexed(&'static self, key: String, entry: Option<String>) -> ScriptCall {
        self.call_keys(vec![key], entry)
    }

    /// [`call_indexed`](Self::call_indexed) of a script that takes several keys of its own.
    pub(super) fn call_keys(&'static self, keys: Vec<String>, entry: Option<String>) -> ScriptCall {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.hash)
            .arg(keys.len() + usize::from(entry.is_some()));
        for key in keys {
            cmd.arg(key);
        }
        if let Some(entry) = entry {
            cmd.arg(entry);
        }
        ScriptCall { script: self, cmd }
    }
}

/// One script call: `EVALSHA`, and `EVAL` with the text only when the server answers
/// `NOSCRIPT` (after a restart, a failover to a node that never ran it, `SCRIPT FLUSH`).
///
/// Not redis-rs' `ScriptInvocation`: on `NOSCRIPT` it sends `SCRIPT LOAD`, which a cluster
/// connection sends to **every** node and fails when one is down, so a single unreachable
/// node would fail the writes of healthy slots too. `EVAL` goes by the key's slot like the
/// `EVALSHA` did, caches the script on that node (the next call by hash succeeds), and costs
/// one round trip instead of two.
pub(super) struct ScriptCall {
    script: &'static LuaScript,
    cmd: Cmd,
}

impl ScriptCall {
    /// Appends one `ARGV` value.
    pub(super) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    pub(super) async fn send<T: FromRedisValue>(
        &self,
        conn: &mut (impl ConnectionLike + Send),
    ) -> RedisResult<T> {
        match self.cmd.query_async(conn).await {
            // Boxed: it runs once per script and node after a restart, and inline it would
            // grow every request's future (see `RedisBackend`'s module docs).
            Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.eval_cmd().query_async(conn).boxed().await
            }
            result => result,
        }
    }

    /// The `EVALSHA` command, for a pipeline in which the script is sure to be cached first
    /// (an [`eval_cmd`](Self::eval_cmd) call before it).
    pub(super) fn into_cmd(self) -> Cmd {
        self.cmd
    }

    /// The command of this call in a pipeline of calls to one server (a batch): by text
    /// ([`eval_cmd`](Self::eval_cmd)) when it is the pipeline's first script, which caches
    /// it, by hash after it. A pipeline runs in order on one connection, so none of them can
    /// miss the script. Not `SCRIPT LOAD`, which is not on the ACL list of the store's
    /// commands (README: `session_redis_username`).
    pub(super) fn into_batch_cmd(self, first: bool) -> Cmd {
        if first {
            self.eval_cmd()
        } else {
            self.into_cmd()
        }
    }

    /// The same call by text: `EVAL <code>` then everything after `EVALSHA <hash>`. It
    /// caches the script, so it also starts a pipeline of calls to one server (a batch).
    pub(super) fn eval_cmd(&self) -> Cmd {
        let mut eval = redis::cmd("EVAL");
        eval.arg(&self.script.code);
        for arg in self.cmd.args_iter().skip(2) {
            if let Arg::Simple(bytes) = arg {
                eval.arg(bytes);
            }
        }
        eval
    }
}

pub(super) static CREATE_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(CREATE));
pub(super) static REPLACE_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(REPLACE));
pub(super) static SAVE_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(SAVE));
pub(super) static AMEND_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(AMEND));
pub(super) static AMEND_LOADED_SCRIPT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(AMEND_LOADED));
pub(super) static COMMIT_SCRIPT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::with_keys(COMMIT, 2));
pub(super) static APPLY_HASH_SCRIPT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(APPLY_HASH));
pub(super) static INDEX_REMOVE_SCRIPT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(INDEX_REMOVE));
pub(super) static PERSIST_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(PERSIST));
pub(super) static CONFIRM_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(CONFIRM));
pub(super) static RETIRE_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(RETIRE));
pub(super) static DEL_ORPHAN_SCRIPT: LazyLock<LuaScript> =
    LazyLock::new(|| LuaScript::new(DEL_ORPHAN));
pub(super) static DELETE_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(DELETE));
pub(super) static SHORTEN_SCRIPT: LazyLock<LuaScript> = LazyLock::new(|| LuaScript::new(SHORTEN));

#[cfg(test)]
mod tests {
    use super::*;

    /// `DROP_RECORDS` tells a moved marker by its shape in Lua: the shape
    /// `layout::moved_marker` makes, whatever the token.
    #[test]
    fn drop_records_knows_the_markers_shape() {
        for token in [0, 7, u64::MAX] {
            let marker = super::super::layout::moved_marker(token);
            assert_eq!(marker.len(), 28);
            let start = std::str::from_utf8(&marker[..11]).unwrap();
            assert!(DROP_RECORDS.contains(&format!("string.sub(head, 1, 11) == '{start}'")));
            assert_eq!(marker[27], b'"');
        }
        let code = &AMEND_LOADED_SCRIPT.code;
        assert!(code.contains("local function drop_records()"));
        assert!(code.contains(&format!(
            "left > {} then",
            crate::MOVED_MARKER_TTL.as_millis()
        )));
    }

    /// `RETIRE` on every kind of key, as this server runs it and as a server before Redis
    /// 6.2 would (its `SET` refuses `GET` as a syntax error whatever the key holds: here a
    /// made-up option does the same): no key, records alone and another move's marker are
    /// left as they are and answer 0, 0 and that move's token; the move's own marker 2; a
    /// session (a string or a hash) becomes the marker and answers 1. A logout's retire
    /// (`ARGV[4]` `1`) answers the same and also takes the place of another move's marker.
    #[tokio::test]
    async fn retire_answers_by_what_the_key_holds_with_and_without_set_get() {
        let server = session_testkit::RedisServer::start();
        let client = redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let old_server = LuaScript::new(&RETIRE.replace("'XX', 'GET'", "'XX', 'NOGET'"));
        let scripts: [&'static LuaScript; 2] = [&RETIRE_SCRIPT, Box::leak(Box::new(old_server))];
        let mine = super::super::layout::moved_marker(1);
        let theirs = super::super::layout::moved_marker(0xfedc_ba98_7654_3210);
        let prefix = super::super::layout::MOVED_PREFIX;
        let runs = scripts.into_iter().flat_map(|s| [(s, false), (s, true)]);
        for (n, (script, logout)) in runs.enumerate() {
            let key = |what: &str| format!("{n}:{what}");
            server.cmd::<String>(&["SET", &key("session"), "v1:0000000000000000:{\"=n\":1 "]);
            server.cmd::<i64>(&["HSET", &key("hash"), "n", "1"]);
            server.cmd::<String>(&["SET", &key("orphan"), ",\"=n\":2 "]);
            let theirs_text = String::from_utf8(theirs.clone()).unwrap();
            server.cmd::<String>(&["SET", &key("theirs"), &theirs_text]);
            let mine_text = String::from_utf8(mine.clone()).unwrap();
            server.cmd::<String>(&["SET", &key("mine"), &mine_text]);
            // A stale write's records on this move's marker, before their writer drops them.
            let mine_and_records = format!("{mine_text},\"=n\":3 ");
            server.cmd::<String>(&["SET", &key("mine+"), &mine_and_records]);
            // Without `SET ... GET` the records stay for their writer's `DEL_ORPHAN`.
            let mine_plus_after = if n < 2 { &mine_text } else { &mine_and_records };
            let int = redis::Value::Int;
            let token = redis::Value::BulkString(b"fedcba9876543210".to_vec());
            for (what, answer, after) in [
                ("mine+", int(2), Some(mine_plus_after.as_str())),
                ("none", int(0), None),
                ("orphan", int(0), Some(",\"=n\":2 ")),
                (
                    "theirs",
                    token,
                    Some(if logout { &mine_text } else { &theirs_text }.as_str()),
                ),
                ("mine", int(2), Some(mine_text.as_str())),
                ("session", int(1), Some(mine_text.as_str())),
                ("hash", int(1), Some(mine_text.as_str())),
            ] {
                let mut call = script.call(key(what));
                call.arg(60_000).arg(&mine).arg(prefix);
                if logout {
                    call.arg("1");
                }
                let got: redis::Value = call.send(&mut conn).await.unwrap();
                assert_eq!(got, answer, "{what}, run {n}");
                let stored: Option<String> = server.cmd(&["GET", &key(what)]);
                assert_eq!(stored.as_deref(), after, "{what}, run {n}");
                let left: i64 = server.cmd(&["PTTL", &key(what)]);
                assert!(
                    after.is_none() || left == -1 || left <= 60_000,
                    "{what}, run {n}"
                );
            }
        }
    }
}
