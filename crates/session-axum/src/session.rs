//! The per-request session handle and the extractor that hands it to handlers.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{extract::FromRequestParts, http::request::Parts, http::HeaderValue};
use cookie::time::OffsetDateTime;
use serde::{de::DeserializeOwned, Serialize};
use session_core::{Changes, LoadedState, SessionId, SessionState, Version};
use tokio::sync::{Mutex, MutexGuard};

use crate::{
    config::Config,
    cookies::{Candidates, Lifetime},
    error::{MissingSessionLayer, SessionError},
};

/// The stored key that holds a session's own [`Expiry`], when it has one. Hidden from the
/// session's keys; an application cannot write it (see [`SessionError::ReservedKey`]).
/// session-core's [`session_core::EXPIRY_KEY`]: the actix store honours its deadline too.
pub const EXPIRY_KEY: &str = session_core::EXPIRY_KEY;

/// When one session ends, overriding the layer's settings: the "remember me" checkbox.
/// Set with [`Session::set_expiry`]; kept with the session (under [`EXPIRY_KEY`]), so later
/// requests follow it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The cookie ends with the browser (no `Max-Age`); the store keeps the session for the
    /// layer's TTL.
    OnSessionEnd,
    /// After this long without a write (or without a request, with sliding expiry or
    /// `always_save`): the store TTL and the cookie's `Max-Age` are both this duration (the
    /// store TTL at least a second: zero, or a fraction kept as zero seconds, never means "no
    /// expiry").
    OnInactivity(Duration),
    /// At this instant, whatever happens: the cookie's `Expires` and the store TTL both end
    /// there, and neither sliding expiry nor `always_save` extends it. A load after it finds
    /// no session (and deletes it), even where the store keeps the key longer
    /// (`session_redis_key_expire` decides the TTL of every write).
    AtDateTime(OffsetDateTime),
}

impl Expiry {
    /// The stored form, under [`EXPIRY_KEY`]; the tower-sessions adapter stores a record's
    /// date in it too, so both read one format.
    pub(crate) fn to_json(self) -> String {
        match self {
            Expiry::OnSessionEnd => r#""on_session_end""#.to_owned(),
            Expiry::OnInactivity(d) => format!(r#"{{"inactivity_secs":{}}}"#, d.as_secs()),
            Expiry::AtDateTime(t) => format!(r#"{{"at_unix":{}}}"#, t.unix_timestamp()),
        }
    }

    /// Reads what [`to_json`](Self::to_json) wrote; anything else (a value written by hand or
    /// by another application) is ignored with a warning: the layer's settings apply. One
    /// reading with the actix store's ([`session_core::OwnExpiry::parse`]), so that a shared
    /// session gets one lifetime whichever framework serves it.
    pub(crate) fn from_json(json: &str) -> Option<Self> {
        match session_core::OwnExpiry::parse(json)? {
            session_core::OwnExpiry::OnSessionEnd => Some(Expiry::OnSessionEnd),
            session_core::OwnExpiry::Inactivity(secs) => {
                Some(Expiry::OnInactivity(Duration::from_secs(secs)))
            }
            // Within `DEADLINE_RANGE`, which `OffsetDateTime` always holds.
            session_core::OwnExpiry::At(at) => OffsetDateTime::from_unix_timestamp(at)
                .ok()
                .map(Expiry::AtDateTime),
        }
    }
}

/// The session of the current request, taken as an axum extractor.
///
/// Cheap to clone (all clones are the same session). Nothing is read until a method is first
/// called; methods that may load are `async`. Values are stored as JSON text.
///
/// ```
/// use axum::{body::Body, http::{header, Request}, routing::post, Router};
/// use session_axum::{Key, Session, SessionError, SessionLayer};
/// use session_core::SessionStore;
/// use tower::ServiceExt;
///
/// async fn login(session: Session) -> Result<&'static str, SessionError> {
///     session.insert("user", "alice").await?;
///     // New id, same data: an id planted before login is worthless afterwards.
///     session.renew().await?;
///     Ok("welcome")
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let layer = SessionLayer::new(SessionStore::memory(), Key::generate());
/// let app: Router = Router::new().route("/login", post(login)).layer(layer);
/// let req = Request::post("/login").body(Body::empty()).unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert!(res.headers()[header::SET_COOKIE].to_str().unwrap().starts_with("id="));
/// # })
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the id nor the data may reach logs.
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

struct Inner {
    config: Arc<Config>,
    /// Values of the request's cookies of our name, still sealed (bounded in number).
    sealed: Candidates,
    data: Mutex<Data>,
}

#[derive(Default)]
struct Data {
    /// True once the cookie has been opened (id known or known absent).
    opened: bool,
    /// True once the stored state has been read into `stored`.
    loaded: bool,
    /// The id of the stored session this request works on; `None` for a new session.
    id: Option<SessionId>,
    /// The stored keys this request has not changed, as the load found them: read in place,
    /// in the text the store answered, with no allocation per key but for keys stored
    /// escaped (a 20 KB one-key write 0.81-0.86
    /// of its cost with a map of `String`s, twelfth round, docs/benchmarks.md).
    stored: LoadedState,
    /// The keys this request changed, each moved here from `stored` by its first change.
    /// `save` writes only the keys whose value now differs from the stored one, as
    /// [`Changes::between`] the stored and the current state would (and as the actix adapter
    /// does), without a copy of the session: measured, copies of the whole state were 10-15%
    /// of the server's CPU per request on 2 KB and 20 KB sessions (see docs/benchmarks.md).
    changed: HashMap<String, Change>,
    /// The stored [`EXPIRY_KEY`] entry, as the load found it (it is not in `stored`).
    stored_expiry: Option<String>,
    /// Which stored value the load saw: the write hands it back, so the store can replace
    /// the session in one round trip when nothing else wrote it in between.
    version: Version,
    /// A stored session to delete after the handler (renew, purge).
    delete: Option<SessionId>,
    /// `delete` is a renew's: the state this request loaded goes under a new id, but only if
    /// the old one was still stored (a logout since the load would otherwise be undone).
    renewed: bool,
    /// The request's cookie must go: purge, or a renew that left nothing to store.
    expire_cookie: bool,
    /// The load reset the TTL (sliding expiry), so a persistent cookie is re-sent.
    touched: bool,
    /// The request carried a cookie of our name that names no session: tampered, sealed with
    /// an unknown key, or naming a session the store no longer has. Cleared from the browser
    /// when the handler touched the session and nothing new is stored.
    stale_cookie: bool,
    /// The cookie was sealed with a fallback key: sent again, sealed with the current one.
    reseal: bool,
    /// Which of the request's cookies opened to `id` (see [`Session::cookie_for`]). `id`
    /// is only ever set from that cookie: afterwards it is only taken (renew, purge) or
    /// cleared (a session the store does not have), so while it is `Some` it is that id.
    opened_from: Option<usize>,
    /// The session's own expiry (stored under [`EXPIRY_KEY`], not in `stored`).
    expiry: Option<Expiry>,
    /// `set_expiry` changed it in this request.
    expiry_changed: bool,
}

/// A key the request changed.
struct Change {
    /// Its value now, as JSON text; `None`: removed.
    now: Option<String>,
    /// Its value as the load found it; `None`: not stored.
    stored: Option<String>,
}

impl Data {
    /// The JSON text of `key`'s value as this request sees it.
    fn get(&self, key: &str) -> Option<&str> {
        match self.changed.get(key) {
            Some(change) => change.now.as_deref(),
            None => self.stored.get(key),
        }
    }

    /// Sets `key` to `now` (`None`: removes it).
    fn set(&mut self, key: &str, now: Option<String>) {
        match self.changed.get_mut(key) {
            Some(change) => change.now = now,
            None => {
                let stored = self.stored.take(key);
                self.changed.insert(key.to_owned(), Change { now, stored });
            }
        }
    }

    /// Every key with its value's JSON text, as this request sees them, in no order.
    fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        let changed = self
            .changed
            .iter()
            .filter_map(|(key, change)| Some((key.as_str(), change.now.as_deref()?)));
        self.stored.iter().chain(changed)
    }

    /// True when the session holds no key.
    fn is_empty(&self) -> bool {
        self.stored.is_empty() && self.changed.values().all(|change| change.now.is_none())
    }
}

impl Session {
    pub(crate) fn new(config: Arc<Config>, sealed: Candidates) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                sealed,
                data: Mutex::new(Data::default()),
            }),
        }
    }

    /// The `Set-Cookie` value for the stored session `id` (the one the request's cookie
    /// opened to): that cookie's own sealed value again when it was sealed with the current
    /// key, sealed afresh when it was sealed with a fallback key.
    fn cookie_for(&self, data: &Data, id: &SessionId, lifetime: Lifetime) -> Option<HeaderValue> {
        let cookie = &self.inner.config.cookie;
        match data.opened_from.and_then(|i| self.inner.sealed.get(i)) {
            Some(sealed) if !data.reseal => cookie.reissue(sealed, lifetime),
            _ => cookie.seal(id, lifetime),
        }
    }

    /// Opens the cookie (no store call) and returns the locked data.
    async fn opened(&self) -> MutexGuard<'_, Data> {
        let mut data = self.inner.data.lock().await;
        if !data.opened {
            match self.inner.config.cookie.open(&self.inner.sealed) {
                Some(opened) => {
                    data.reseal = opened.with_fallback_key;
                    data.opened_from = Some(opened.index);
                    data.id = Some(opened.id);
                }
                None => data.stale_cookie = !self.inner.sealed.is_empty(),
            }
            data.opened = true;
        }
        data
    }

    /// Opens the cookie and loads the stored state (one store call, the first time only).
    async fn loaded(&self) -> Result<MutexGuard<'_, Data>, SessionError> {
        let mut data = self.opened().await;
        if data.loaded {
            return Ok(data);
        }
        if let Some(id) = data.id.clone() {
            let config = &self.inner.config;
            let result = if config.sliding {
                config.store.load_in_place_and_touch(&id, config.ttl).await
            } else {
                config.store.load_in_place(&id).await
            };
            let mut result = result.map(|found| {
                found.map(|(mut state, version)| {
                    let stored_expiry = state.take(EXPIRY_KEY);
                    (state, version, stored_expiry)
                })
            });
            let (own_expiry, past_deadline) = match &result {
                Ok(Some((_, _, Some(json)))) => {
                    (Expiry::from_json(json), session_core::past_deadline(json))
                }
                _ => (None, false),
            };
            if past_deadline {
                // Past its deadline the session is over, whatever TTL the store kept it for
                // (a deadline passed still gets a second). A cookie replayed after the
                // deadline (its `Expires` stops only a browser) was served the session.
                config.store.end_past_deadline(&id).await;
                result = Ok(None);
            } else if let Some(expiry) = own_expiry {
                let own_ttl = self.store_ttl(Some(expiry));
                // Compared as the store resolves them: under `session_redis_key_expire` both
                // are that, and the load has set it already.
                let effective = |ttl| config.store.effective_ttl(ttl);
                if config.sliding && effective(own_ttl) != effective(config.ttl) {
                    // The load reset the TTL to the layer's, but this session has its own:
                    // set it now, not after the handler, whose write may never come (a 5xx
                    // with skip_save_on_server_error, a panic, a client gone). Left to the
                    // write, such a request stretched an hour's deadline to the layer's day.
                    // In a task of its own: a request dropped here would leave the layer's.
                    match config.store.touch_to_the_end(&id, own_ttl).await {
                        Ok(true) => {}
                        Ok(false) => result = Ok(None),
                        Err(err) => return Err(SessionError::from_store(err)),
                    }
                }
            }
            match result {
                Ok(Some((state, version, stored_expiry))) => {
                    data.version = version;
                    data.changed.clear();
                    if stored_expiry.is_some() {
                        // Read above, for the deadline and the sliding TTL.
                        data.expiry = own_expiry;
                        if data.expiry.is_none() {
                            tracing::warn!(
                                key = EXPIRY_KEY,
                                "stored session expiry is not one this library wrote; the layer's settings apply"
                            );
                        }
                    }
                    data.stored_expiry = stored_expiry;
                    data.stored = state;
                    data.touched = config.sliding;
                }
                Ok(None) => {
                    tracing::debug!("session cookie names a session that no longer exists; starting a fresh session");
                    data.id = None;
                    data.stale_cookie = true;
                }
                Err(err) if err.is_corrupt() => {
                    tracing::warn!(error = %err, "stored session is corrupt; starting a fresh session");
                    data.id = None;
                    data.stale_cookie = true;
                }
                // Not marked loaded: a later call may succeed once the store is back.
                Err(err) => return Err(SessionError::from_store(err)),
            }
        }
        data.loaded = true;
        Ok(data)
    }

    /// A name for this session in logs and traces, which is not its credential: the
    /// [fingerprint](SessionId::fingerprint) of the id the request's cookie names (no store
    /// call), `None` for a request without a valid session cookie. The same in every request
    /// of the session and in the actix service that shares it; it changes with
    /// [`renew`](Self::renew) (from the next request on).
    pub async fn id(&self) -> Option<String> {
        self.opened().await.id.as_ref().map(SessionId::fingerprint)
    }

    /// True when the session holds no key (a new session, or one the store no longer has).
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        Ok(self.loaded().await?.is_empty())
    }

    /// The session's keys, sorted.
    pub async fn keys(&self) -> Result<Vec<String>, SessionError> {
        let data = self.loaded().await?;
        let mut keys: Vec<String> = data.entries().map(|(key, _)| key.to_owned()).collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Every key with its value as JSON, sorted by key.
    pub async fn entries(&self) -> Result<Vec<(String, serde_json::Value)>, SessionError> {
        let data = self.loaded().await?;
        let mut entries = data
            .entries()
            .map(|(key, json)| Ok((key.to_owned(), decode::<serde_json::Value>(key, json)?)))
            .collect::<Result<Vec<_>, SessionError>>()?;
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// True when the session holds `key`.
    pub async fn contains_key(&self, key: &str) -> Result<bool, SessionError> {
        Ok(self.loaded().await?.get(key).is_some())
    }

    /// This session's own expiry, `None` when it follows the layer's settings.
    pub async fn expiry(&self) -> Result<Option<Expiry>, SessionError> {
        Ok(self.loaded().await?.expiry)
    }

    /// Gives this session its own expiry (the "remember me" checkbox), or `None` to follow the
    /// layer's settings again. The store TTL and the cookie's `Max-Age`/`Expires` follow it
    /// from this request on, and later requests keep it. Takes effect when the session holds
    /// data (an empty session is not stored).
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_axum::{Expiry, Session, SessionError};
    ///
    /// async fn login(session: Session, remember: bool) -> Result<(), SessionError> {
    ///     session.insert("user", "alice").await?;
    ///     if remember {
    ///         session.set_expiry(Some(Expiry::OnInactivity(Duration::from_secs(30 * 24 * 3600)))).await?;
    ///     }
    ///     session.renew().await
    /// }
    /// ```
    pub async fn set_expiry(&self, expiry: Option<Expiry>) -> Result<(), SessionError> {
        let mut data = self.loaded().await?;
        if data.expiry != expiry {
            data.expiry = expiry;
            data.expiry_changed = true;
        }
        Ok(())
    }

    /// The value stored under `key`, or `None` when there is none.
    ///
    /// Fails with [`SessionError::Deserialize`] when the stored JSON does not fit `T`, and with
    /// [`SessionError::Unavailable`] when the store cannot be reached.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let data = self.loaded().await?;
        data.get(key).map(|json| decode(key, json)).transpose()
    }

    /// Stores `value` under `key`. Nothing is written when the value is unchanged.
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        if key == EXPIRY_KEY {
            return Err(SessionError::ReservedKey {
                key: key.to_owned(),
            });
        }
        let json = serde_json::to_string(value).map_err(|_| SessionError::Serialize {
            key: key.to_owned(),
            type_name: std::any::type_name::<T>(),
        })?;
        self.loaded().await?.set(key, Some(json));
        Ok(())
    }

    /// Removes `key` and returns the value it held.
    ///
    /// When the stored value does not fit `T` the key is kept and
    /// [`SessionError::Deserialize`] is returned; `remove::<serde_json::Value>` removes any value.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut data = self.loaded().await?;
        let Some(json) = data.get(key) else {
            return Ok(None);
        };
        let value = decode(key, json)?;
        data.set(key, None);
        Ok(Some(value))
    }

    /// Removes every key. The stored session goes away with its last key, and the cookie with it.
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut data = self.loaded().await?;
        let keys: Vec<String> = data.entries().map(|(key, _)| key.to_owned()).collect();
        for key in keys {
            data.set(&key, None);
        }
        Ok(())
    }

    /// Moves the session to a new id, keeping its data: call it when privileges change (login)
    /// so an id an attacker planted beforehand is worthless (session fixation).
    ///
    /// After the handler the full state is created under the new id, then the old session is
    /// deleted: two store calls, as a purge followed by new data. When that delete finds no
    /// session (a logout in another request, a revoke, or expiry since this request's load),
    /// the new id is deleted again and the request answers 409 Conflict
    /// ([`SessionError::Conflict`]) with no cookie: a renew never brings back a session that
    /// was deleted. Of two renews of one session at the same instant (a login sent twice),
    /// the one whose delete comes first keeps its new id; the other stores nothing, answers
    /// 409 and leaves the browser's cookie alone, so the browser ends with the first's
    /// cookie in whichever order the answers arrive (the second's changes are dropped).
    pub async fn renew(&self) -> Result<(), SessionError> {
        let mut data = self.loaded().await?;
        if let Some(old) = data.id.take() {
            data.delete = Some(old);
            data.renewed = true;
            data.expire_cookie = true;
        }
        // The full state goes to `create` under the new id, where nothing is stored yet.
        data.stored_expiry = None;
        Ok(())
    }

    /// Deletes the session from the store and expires the cookie (logout).
    ///
    /// Needs no load: the id comes from the cookie. Values inserted afterwards start a new
    /// session under a new id.
    pub async fn purge(&self) -> Result<(), SessionError> {
        let mut data = self.opened().await;
        if let Some(old) = data.id.take() {
            data.delete = Some(old);
        }
        // What is inserted from now on is a new session's, not the loaded one's.
        data.renewed = false;
        if !self.inner.sealed.is_empty() {
            data.expire_cookie = true;
        }
        data.stored = LoadedState::default();
        data.changed.clear();
        data.stored_expiry = None;
        data.loaded = true;
        data.touched = false;
        data.expiry = None;
        data.expiry_changed = false;
        Ok(())
    }

    /// The store TTL for this session: its own expiry's, or the layer's.
    fn store_ttl(&self, expiry: Option<Expiry>) -> Option<Duration> {
        match expiry {
            None | Some(Expiry::OnSessionEnd) => self.inner.config.ttl,
            // At least a second, as a past deadline below: a TTL of zero is the TTL rule's
            // "none", which stored the session without expiry, and a sub-second duration is
            // kept as zero whole seconds (`to_json`) for the next request's write.
            Some(Expiry::OnInactivity(d)) => Some(d.max(Duration::from_secs(1))),
            Some(Expiry::AtDateTime(at)) => {
                let left = at - OffsetDateTime::now_utc();
                // Past deadlines still get a (one-second) TTL: never "no expiry".
                Some(
                    Duration::try_from(left)
                        .unwrap_or_default()
                        .max(Duration::from_secs(1)),
                )
            }
        }
    }

    /// The cookie's lifetime for this session: its own expiry's, or the layer's.
    fn lifetime(&self, expiry: Option<Expiry>) -> Lifetime {
        match expiry {
            None => self.inner.config.cookie.lifetime(),
            Some(Expiry::OnSessionEnd) => Lifetime::default(),
            Some(Expiry::OnInactivity(d)) => Lifetime {
                max_age: Some(d),
                expires: None,
            },
            Some(Expiry::AtDateTime(at)) => Lifetime {
                max_age: None,
                expires: Some(at),
            },
        }
    }

    /// A renew's writes: `state` created under a new id, **then** the old id deleted. A
    /// delete that finds nothing means a logout (or a revoke, or expiry) came since the
    /// load, before or during the renew (or another renew of the session got there first):
    /// the new id is deleted too and the answer is 409 with no cookie, so the logout sticks
    /// and at most one
    /// renew of a session keeps a new id. Deleting first left a window: a logout between that delete and
    /// the create found nothing to delete, answered "logged out", and the create then
    /// brought the session back under the new id (a ninth review). A logout that comes after
    /// both writes carries the old id, which names nothing any more: the browser keeps
    /// whichever cookie it receives last (docs/security.md). A failed create leaves the old
    /// session as it was; a failed delete removes the new one again and reports the error.
    async fn renew_into(
        &self,
        old: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
        lifetime: Lifetime,
    ) -> Result<Option<HeaderValue>, SessionError> {
        let config = &self.inner.config;
        let store = &config.store;
        let id = store
            .create(state, ttl)
            .await
            .map_err(SessionError::from_store)?;
        match store.finish_renew(old, &id).await {
            Ok(true) => Ok(config.cookie.seal(&id, lifetime)),
            Ok(false) => {
                // Gone since the load: a logout, a revoke, expiry, or another renew of this
                // session (a login sent twice) that got there first. No `Set-Cookie`: the
                // browser keeps what it has, the winning renew's live cookie whichever answer
                // reaches it last, or no cookie after its own logout. Removing the cookie here
                // logged the user out whenever this answer came after the winner's. And 409,
                // not the handler's answer: that one says the login worked, where nothing of
                // it was stored (as `request_scope` and `TowerScopeLayer` answer).
                Err(SessionError::Conflict)
            }
            Err(err) => Err(SessionError::from_store(err)),
        }
    }

    /// What [`save`](Self::save) keeps of a request whose handler answered 5xx under
    /// `with_skip_save_on_server_error`: a purge's delete, and the cookie's removal. Nothing
    /// else the handler did is saved (a renew neither: it moves the session, a logout does
    /// not); skipping the delete too left a user logged in whose logout then failed.
    pub(crate) async fn save_purge_only(&self) -> Result<Option<HeaderValue>, SessionError> {
        let mut data = self.inner.data.lock().await;
        if data.renewed {
            return Ok(None);
        }
        let Some(old) = data.delete.take() else {
            return Ok(None);
        };
        let config = &self.inner.config;
        config
            .store
            .delete_to_the_end(&old)
            .await
            .map_err(SessionError::from_store)?;
        Ok(config.cookie.removal())
    }

    /// Writes what the handler did: at most one store write (two for a renew, and with a
    /// session of its own expiry under `always_save`; under sliding expiry such a session's
    /// TTL is set by `loaded`). Returns the `Set-Cookie` value to send, if any.
    pub(crate) async fn save(&self) -> Result<Option<HeaderValue>, SessionError> {
        let config = &self.inner.config;
        if config.always_save && !self.inner.sealed.is_empty() {
            // Refreshing needs the session's own expiry, which only a load tells.
            drop(self.loaded().await?);
        }
        let mut data = self.inner.data.lock().await;
        if !data.opened {
            return Ok(None);
        }
        let store = &config.store;
        let expiry = data.expiry;
        let ttl = self.store_ttl(expiry);
        // The stored form of the session's own expiry, when it has one (an empty session
        // stays empty: it is not stored at all).
        let expiry_json = expiry.filter(|_| !data.is_empty()).map(Expiry::to_json);
        // The state as stored: the application's keys plus that expiry. Built only where the
        // whole state is written or measured; a request that changed nothing copies nothing
        // (measured: two full copies per read were a tenth of the server's CPU on a 2 KB
        // session, see docs/benchmarks.md).
        let expiry_entry = expiry_json.as_deref().map(|json| (EXPIRY_KEY, json));
        let full_state = |data: &Data| -> SessionState {
            entries_to_store(data, expiry_entry)
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect()
        };
        if let Some(old) = data.delete.take() {
            // A renew writes the state under a new id: check its size before the old id goes,
            // or a refused write would log the user out.
            if !data.is_empty() {
                store
                    .check_size_of(entries_to_store(&data, expiry_entry))
                    .map_err(SessionError::from_store)?;
            }
            if data.renewed && !data.is_empty() {
                let lifetime = self.lifetime(expiry);
                return self
                    .renew_into(&old, &full_state(&data), ttl, lifetime)
                    .await;
            }
            // A logout: sent to its end even if the client drops the request meanwhile
            // (closing the tab right after "log out"), or the session would outlive it.
            let deleted = store
                .delete_to_the_end(&old)
                .await
                .map_err(SessionError::from_store)?;
            if data.renewed && !deleted {
                // Deleted since the load (a logout in another request, a revoke, expiry):
                // creating the loaded state under a new id would bring the session back.
                tracing::info!("session was deleted or expired before its renew; it stays deleted");
                return Ok(config.cookie.removal());
            }
        }
        let cookie = &config.cookie;
        let lifetime = self.lifetime(expiry);
        let persistent = lifetime != Lifetime::default();
        match data.id.clone() {
            None if !data.is_empty() => {
                let id = store
                    .create(&full_state(&data), ttl)
                    .await
                    .map_err(SessionError::from_store)?;
                Ok(cookie.seal(&id, lifetime))
            }
            None if data.expire_cookie || data.stale_cookie => Ok(cookie.removal()),
            None => Ok(None),
            Some(id) => {
                let changes = changes_to_store(
                    &data.changed,
                    data.stored_expiry.as_deref(),
                    expiry_json.as_deref(),
                );
                if changes.is_empty() {
                    // A sliding load already gave a session of its own expiry its TTL
                    // (`loaded`); a new expiry needs a touch.
                    let needs_touch = (config.always_save && !data.touched) || data.expiry_changed;
                    if needs_touch
                        && !store
                            .touch(&id, ttl)
                            .await
                            .map_err(SessionError::from_store)?
                    {
                        return Ok(cookie.removal());
                    }
                    let resend = data.reseal
                        || data.expiry_changed
                        || (persistent && (data.touched || config.always_save));
                    return Ok(if resend {
                        self.cookie_for(&data, &id, lifetime)
                    } else {
                        None
                    });
                }
                // The store sees only the changes; the size limit is about the whole session.
                store
                    .check_size_of(entries_to_store(&data, expiry_entry))
                    .map_err(SessionError::from_store)?;
                // The whole state after the changes, by reference: on Redis it replaces the
                // stored value when that is still the one this request loaded.
                let after = session_core::EntryList::of(entries_to_store(&data, expiry_entry));
                // With sliding expiry the load already set this TTL; it is set again all
                // the same: on Redis that is a `PEXPIRE` in the write's own round trip, where
                // keeping the expiry would take a script (`apply_versioned_keeping_expiry`).
                let written = store
                    .apply_versioned(&id, data.version, &after, &changes, ttl)
                    .await;
                if !written.map_err(SessionError::from_store)? {
                    // Deleted meanwhile (a logout elsewhere) or expired: bringing it back would
                    // undo that logout, so the changes are dropped.
                    tracing::debug!("session vanished before its changes were saved (logged out or expired); changes dropped");
                    return Ok(cookie.removal());
                }
                if data.is_empty() {
                    // The store deletes a session left without keys.
                    Ok(cookie.removal())
                } else if persistent || data.reseal || data.expiry_changed {
                    Ok(self.cookie_for(&data, &id, lifetime))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// What `save` writes to an existing session: [`Changes::between`] the stored state and the
/// application's keys plus the session's own expiry (`expiry_json`, under [`EXPIRY_KEY`]),
/// computed from the `changed` keys and the stored expiry entry alone.
fn changes_to_store(
    changed: &HashMap<String, Change>,
    stored_expiry: Option<&str>,
    expiry_json: Option<&str>,
) -> Changes {
    let mut changes = Changes::default();
    for (key, change) in changed {
        match (&change.now, &change.stored) {
            (Some(now), Some(before)) if now == before => {}
            (Some(now), _) => changes.set(key.as_str(), now.as_str()),
            (None, Some(_)) => changes.remove(key.as_str()),
            (None, None) => {}
        }
    }
    if expiry_json != stored_expiry {
        match expiry_json {
            Some(json) => changes.set(EXPIRY_KEY, json),
            None => changes.remove(EXPIRY_KEY),
        }
    }
    changes
}

/// The entries `save` stores: the application's keys and the expiry entry, if any.
fn entries_to_store<'a>(
    data: &'a Data,
    expiry_entry: Option<(&'a str, &'a str)>,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    data.entries().chain(expiry_entry)
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, SessionError> {
    serde_json::from_str(json).map_err(|_| SessionError::Deserialize {
        key: key.to_owned(),
        expected: std::any::type_name::<T>(),
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
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

    /// The changes from the changed keys' originals are exactly those of `Changes::between`
    /// the stored state and the current one, expiry entries included, whichever keys were
    /// recorded as changed (at least those that differ).
    #[test]
    fn changes_to_store_match_between_with_the_expiry_entry() {
        let expiry = Expiry::OnInactivity(Duration::from_secs(60)).to_json();
        let other = Expiry::OnSessionEnd.to_json();
        let with_expiry = |keys: &SessionState, json: Option<&str>| {
            let mut full = keys.clone();
            if let Some(json) = json {
                full.insert(EXPIRY_KEY.to_owned(), json.to_owned());
            }
            full
        };
        let stored = state(&[("a", "1"), ("b", "2")]);
        let current = [
            state(&[("a", "1"), ("b", "2")]),
            state(&[("a", "1"), ("b", "3")]),
            state(&[("a", "1")]),
            state(&[("a", "1"), ("b", "2"), ("c", "4")]),
            state(&[]),
        ];
        let jsons = [None, Some(expiry.as_str()), Some(other.as_str())];
        for stored_expiry in jsons {
            for now in &current {
                let originals_of = |keys: &mut dyn Iterator<Item = &String>| {
                    keys.map(|k| {
                        let change = Change {
                            now: now.get(k).cloned(),
                            stored: stored.get(k).cloned(),
                        };
                        (k.clone(), change)
                    })
                    .collect::<HashMap<_, _>>()
                };
                let every_key = originals_of(&mut stored.keys().chain(now.keys()));
                let differing = originals_of(
                    &mut stored
                        .keys()
                        .chain(now.keys())
                        .filter(|k| stored.get(*k) != now.get(*k)),
                );
                for json in jsons {
                    let json = json.filter(|_| !now.is_empty());
                    let mut expected = Changes::between(
                        &with_expiry(&stored, stored_expiry),
                        &with_expiry(now, json),
                    );
                    expected.remove.sort();
                    for originals in [&every_key, &differing] {
                        let mut got = changes_to_store(originals, stored_expiry, json);
                        got.remove.sort();
                        assert_eq!(
                            got, expected,
                            "{stored:?} -> {now:?}, {stored_expiry:?} -> {json:?}"
                        );
                    }
                }
            }
        }
    }

    /// What a request sees and writes, from the stored keys read in place and the keys it
    /// changed beside them, is what a plain map of the session would see and what
    /// [`Changes::between`] the stored and the final map would write, over any sequence of
    /// inserts, removes and clears (a key inserted then removed, a clear then the same value
    /// again, a key changed back to its stored value).
    #[test]
    fn changes_beside_the_stored_keys_read_and_write_as_one_map() {
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Set(usize, usize),
            Remove(usize),
            Clear,
        }
        const KEYS: [&str; 4] = ["a", "b", "we\"ird", ""];
        const VALUES: [&str; 3] = ["1", "\"x\"", "[2]"];
        let op = prop_oneof![
            4 => (0..KEYS.len(), 0..VALUES.len()).prop_map(|(k, v)| Op::Set(k, v)),
            2 => (0..KEYS.len()).prop_map(Op::Remove),
            1 => Just(Op::Clear),
        ];
        let stored = proptest::collection::hash_map(0..KEYS.len(), 0..VALUES.len(), 0..4);
        let ops = proptest::collection::vec(op, 0..12);
        proptest!(ProptestConfig::with_cases(500), |(stored in stored, ops in ops)| {
            let stored: SessionState = stored
                .into_iter()
                .map(|(k, v)| (KEYS[k].to_owned(), VALUES[v].to_owned()))
                .collect();
            let mut data = Data {
                stored: LoadedState::from(stored.clone()),
                ..Data::default()
            };
            let mut model = stored.clone();
            for op in ops {
                match op {
                    Op::Set(k, v) => {
                        data.set(KEYS[k], Some(VALUES[v].to_owned()));
                        model.insert(KEYS[k].to_owned(), VALUES[v].to_owned());
                    }
                    Op::Remove(k) => {
                        data.set(KEYS[k], None);
                        model.remove(KEYS[k]);
                    }
                    Op::Clear => {
                        let keys: Vec<String> =
                            data.entries().map(|(key, _)| key.to_owned()).collect();
                        for key in keys {
                            data.set(&key, None);
                        }
                        model.clear();
                    }
                }
                for key in KEYS {
                    prop_assert_eq!(data.get(key), model.get(key).map(String::as_str));
                }
                let mut seen: Vec<(&str, &str)> = data.entries().collect();
                seen.sort_unstable();
                let mut expected: Vec<(&str, &str)> =
                    model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                expected.sort_unstable();
                prop_assert_eq!(seen, expected);
                prop_assert_eq!(data.is_empty(), model.is_empty());
            }
            let mut written = changes_to_store(&data.changed, None, None);
            written.remove.sort();
            prop_assert_eq!(written, Changes::between(&stored, &model));
        });
    }
}
