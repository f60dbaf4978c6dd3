//! actix-web integration: an [`actix_session::storage::SessionStore`] over the shared
//! [`session_core::SessionStore`], so `SessionMiddleware::builder(store, key)` works unchanged and
//! an actix service shares sessions (one cookie, one key, one store) with an axum service.
//!
//! ```
//! use std::time::Duration;
//!
//! use actix_session::{config::PersistentSession, Session, SessionMiddleware};
//! use actix_web::{cookie::{time, Key}, middleware::from_fn, test, web, App, HttpResponse};
//! use session_actix::{request_scope, ActixStore};
//! use session_core::SessionStore;
//!
//! async fn counter(session: Session) -> actix_web::Result<HttpResponse> {
//!     let n = session.get::<i64>("n")?.unwrap_or(0) + 1;
//!     session.insert("n", n)?;
//!     Ok(HttpResponse::Ok().body(n.to_string()))
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! // `SessionStore::from_config` gives the Redis or file store; memory is for tests.
//! let core = SessionStore::memory();
//! let store = ActixStore::new(core).sliding_expiry(Duration::from_secs(3600));
//! let app = test::init_service(
//!     App::new()
//!         .wrap(
//!             SessionMiddleware::builder(store, Key::generate())
//!                 .session_lifecycle(PersistentSession::default().session_ttl(time::Duration::hours(1)))
//!                 .build(),
//!         )
//!         // Outside the session middleware: 503 on outages, writes of the changed keys only.
//!         .wrap(from_fn(request_scope))
//!         .route("/counter", web::get().to(counter)),
//! )
//! .await;
//!
//! let res = test::call_service(&app, test::TestRequest::get().uri("/counter").to_request()).await;
//! let cookie = res.response().cookies().next().unwrap().into_owned();
//! let res = test::call_service(
//!     &app,
//!     test::TestRequest::get().uri("/counter").cookie(cookie).to_request(),
//! )
//! .await;
//! assert_eq!(test::read_body(res).await, "2");
//! # });
//! ```
//!
//! # One store call per trait method
//! Every method of the trait is one call to the core store, which is one round trip to Redis:
//! `load` is `load_versioned` (or `load_versioned_and_touch` with
//! [`ActixStore::sliding_expiry`]), `save` is `create`, `update` is `replace` (or a write of
//! the changed keys, `apply_versioned`, see below), `update_ttl` is `touch` and `delete` is
//! `delete`. An `update` that rewrites a session whose records have piled up, or deletes an
//! emptied one, costs one more round trip when another write came in between, a session
//! still stored as a hash by an earlier version one more per load, and a `load` that finds a
//! session past its own deadline (one the axum layer stored under [`session_core::EXPIRY_KEY`])
//! one more, the `delete` that ends it, and a sliding `load` of a session of its own expiry
//! one more, the `touch` that gives it back its own TTL (below).
//!
//! # Which TTL wins
//! actix-session passes its own TTL to `save`, `update` and `update_ttl`: the `session_ttl` of
//! [`PersistentSession`](actix_session::config::PersistentSession) or the `state_ttl` of
//! [`BrowserSession`](actix_session::config::BrowserSession) (one day by default). The core
//! store's [TTL rule](session_core::SessionStore#the-ttl-rule) then decides:
//!
//! 1. `session_redis_key_expire` above 0 wins: every write and every touch sets that TTL on the
//!    stored session, whatever actix says. The cookie's `Max-Age` is still actix's `session_ttl`,
//!    so keep that at least as long as `key_expire` or the browser forgets the cookie first.
//! 2. A session of its own expiry, set by an axum service that shares it
//!    (`session_axum::Expiry::OnInactivity` or `AtDateTime`, stored under
//!    [`session_core::EXPIRY_KEY`]), keeps it: every write, renew, `update_ttl` and sliding
//!    `load` gives it its own TTL ([`session_core::own_ttl`]), as the axum layer does. Before,
//!    one actix request gave a 60-second idle timeout actix's day, and cut a 30-day "remember
//!    me" to a day. `update_ttl` knows the session's expiry from its load inside
//!    [`request_scope`] only. The cookie is actix-session's all the same: its `Max-Age` is
//!    actix's `session_ttl` (or none, for a browser session) whenever actix sends it.
//! 3. Otherwise actix's TTL applies (a zero or negative actix TTL means: no expiry).
//!
//! When the TTL is refreshed is actix's [`TtlExtensionPolicy`](actix_session::config::TtlExtensionPolicy):
//! `OnStateChanges` (the default) refreshes it on writes only, `OnEveryRequest` adds an
//! `update_ttl` round trip to every request that carries a session. For sliding sessions prefer
//! [`ActixStore::sliding_expiry`] with `OnStateChanges`: `load` then refreshes the TTL in the same
//! round trip, one round trip per request instead of two. Note that the cookie's `Max-Age`
//! is then renewed only when the session changes; the server-side expiry is what slides.
//!
//! # Concurrent requests of one session
//! actix-session hands the store the whole session state on `update`. Replacing the stored state
//! with it would let two concurrent requests that change *different* keys of one session
//! overwrite each other (the last writer drops the other's key). [`request_scope`], wrapped
//! outside `SessionMiddleware`, gives every request a private scope in which `load` remembers
//! the state it returned and its version; `update` then changes only the keys that differ from
//! it, exactly like the axum layer. On Redis that is one round trip: the records of the changed
//! keys are added to the stored value, with no version check, so a write that came in between
//! keeps its own keys. The version serves only the occasional rewrite of the whole value (once
//! the records outweigh the session) and the delete of an emptied session: each is made only
//! if no other write came in between, and otherwise the request's records go on top of what
//! that write left (past 32 round trips, the update fails as unavailable, writing nothing).
//! Without [`request_scope`] (or if it is wrapped inside the session middleware) `update`
//! falls back to replacing the whole state, which is correct for one request at a time but
//! has the lost-update problem above; the store logs one warning naming `request_scope`.
//! Two requests that change the *same* key still race: the last write wins, as with any
//! store.
//!
//! Use one `SessionMiddleware` per request. actix-session 0.11 keeps one session object per
//! request, which two of its middlewares on one route share: the inner one takes the state
//! first, and the outer one then writes an empty state (a logout of its session whenever
//! anything changed) while the inner session gets the outer one's keys. That is
//! actix-session's own behaviour, with its own stores too; no store can mend it.
//!
//! # Errors
//! * An id that this library could not have made (a foreign or forged cookie value) loads as no
//!   session, without asking the store.
//! * A corrupt stored session loads as no session, with a warning (the user starts afresh).
//! * A store outage is an error. actix-session turns every store error into an opaque 500;
//!   [`request_scope`] turns those caused by an outage into 503 Service Unavailable, and a
//!   session over `session_redis_max_session_size` into 413 Payload Too Large (nothing is
//!   stored; inside [`request_scope`] a renew that is too large leaves the old session as it
//!   was, outside it actix-session's delete has already ended it).
//! * An `update` of a session deleted meanwhile (a logout in another request, or expiry) writes
//!   nothing: see [`ActixStore`] for why and what the client gets. So does a renew of one,
//!   inside [`request_scope`], which answers it 409 Conflict with no cookie.
//!
//! # Renews and logouts
//! actix-session's renew calls the store's `delete` of the old id, then its `save` of the
//! state. Inside [`request_scope`] that delete waits: the save creates the new id first and
//! then deletes the old one, and when that delete finds nothing (a logout, a revoke or
//! expiry since the load, or another renew of the same session that got there first: a
//! login sent twice) it deletes the new id again and fails, answered 409 with no cookie.
//! A logout that lands anywhere in the renew sticks, at most one of two renews at once
//! keeps a new id, and the loser's answer leaves the browser's cookie alone, so the browser
//! keeps the winner's cookie in whichever order the answers arrive (a cookie naming nothing
//! would log the user out whenever it arrived last). A logout's delete (`purge`) waits for
//! the end of the request, where [`request_scope`] sends it, to its end even when the
//! client drops the request meanwhile
//! ([`SessionStore::delete_to_the_end`](session_core::SessionStore::delete_to_the_end)).
//! Outside the scope the save
//! cannot tell a renew from a new session: a logout between the two calls is lost, and two
//! renews at once both keep a live session.
#![warn(missing_docs)]

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use actix_session::storage::{LoadError, SaveError, SessionKey, UpdateError};
use actix_web::{
    body::MessageBody,
    cookie::time,
    dev::{ServiceRequest, ServiceResponse},
    error::InternalError,
    middleware::Next,
    HttpResponse,
};
use session_core::{Changes, SessionId, SessionState, SessionStore, Snapshot, StoreError, Version};

use actix_session::storage::SessionStore as ActixSessionStore;

/// The core store as an actix-session store.
///
/// Cheap to clone (the core store is an `Arc`), so one handle can be cloned into every worker's
/// `App` and shared with an axum service.
///
/// # A session deleted while a request was using it
/// When `update` finds the session gone (a concurrent logout deleted it, or it expired), it writes
/// nothing and returns a fresh id under which nothing is stored, so the client's cookie now names
/// no session and its next request starts afresh. Re-creating the data under a new id, as
/// actix-session's own Redis store does, would undo the logout; returning an error would turn a
/// request that did its work into a 500; handing back the deleted id would keep a revoked
/// credential alive in the browser.
///
/// # Without [`request_scope`]
/// The first `load` or `save` that runs outside [`request_scope`] (it is missing, or wrapped
/// inside `SessionMiddleware`) logs one warning naming it: the store still works, but
/// concurrent requests can lose each other's changes and outages answer 500. Once per
/// [`ActixStore::new`] (its clones share it), not per request.
#[derive(Clone, Debug)]
pub struct ActixStore {
    store: SessionStore,
    sliding: Option<Duration>,
    /// Set once a call outside [`request_scope`] has been reported. actix's wrap order reads
    /// backwards (the last `wrap` is the outermost), so `request_scope` inside the session
    /// middleware is an easy mistake that silently brings back the lost-update race.
    unscoped_reported: Arc<AtomicBool>,
}

impl ActixStore {
    /// Wraps the core store. Expiry is refreshed on writes only (see [`Self::sliding_expiry`]).
    pub fn new(store: SessionStore) -> Self {
        Self {
            store,
            sliding: None,
            unscoped_reported: Arc::default(),
        }
    }

    /// Sliding expiry: every `load` also resets the session's TTL, in the same round trip.
    ///
    /// actix-session's `load` gets no TTL, so the store must know it: pass the same duration as
    /// actix's `session_ttl`. `session_redis_key_expire`, when set, still wins, and a session
    /// of its own expiry (set by an axum service that shares it) gets that expiry's TTL, with
    /// one more round trip when it differs (see [Which TTL wins](crate#which-ttl-wins)).
    pub fn sliding_expiry(mut self, ttl: Duration) -> Self {
        self.sliding = Some(ttl);
        self
    }

    /// The core store, for health checks or for sharing with another framework.
    pub fn core(&self) -> &SessionStore {
        &self.store
    }

    /// Warns, once, when this call runs outside [`request_scope`].
    fn check_scope(&self) {
        if !scope::active() && !self.unscoped_reported.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "session store called outside session_actix::request_scope (missing, or wrapped \
                 inside SessionMiddleware; it must be the later .wrap): concurrent requests of \
                 one session can lose each other's changes and store outages answer 500, not 503"
            );
        }
    }

    /// Turns a store error into the error actix-session expects, flagging outages and
    /// oversized sessions for [`request_scope`].
    fn failure(&self, err: StoreError) -> anyhow::Error {
        if err.is_unavailable() {
            scope::mark(scope::Failure::Outage);
            tracing::warn!(error = %err, "session store unavailable");
        } else if err.is_too_large() {
            scope::mark(scope::Failure::TooLarge);
            // The client's doing, not a fault of the service: no error-level line per request.
            tracing::info!(error = %err, "session write refused");
        } else {
            tracing::error!(error = %err, "session store failed");
        }
        anyhow::Error::new(err)
    }
}

/// actix's TTL as a std duration; negative (which `time::Duration` allows) counts as zero.
fn std_ttl(ttl: &time::Duration) -> Duration {
    Duration::try_from(*ttl).unwrap_or(Duration::ZERO)
}

/// The TTL of a session's own expiry, when it has one: an axum service that shares the session
/// set it (`session_axum::Expiry`, under [`session_core::EXPIRY_KEY`]), and it wins over
/// actix's TTL as it does over the axum layer's ([`session_core::own_ttl`]).
fn own_ttl_of(state: &SessionState) -> Option<Duration> {
    state
        .get(session_core::EXPIRY_KEY)
        .and_then(|json| session_core::own_ttl(json))
}

fn key_of(id: &SessionId) -> Result<SessionKey, anyhow::Error> {
    // Cannot fail: ids are 43 characters and session keys may have up to 4064.
    SessionKey::try_from(id.as_str().to_owned()).map_err(anyhow::Error::new)
}

impl ActixSessionStore for ActixStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let Ok(id) = SessionId::parse(session_key.as_ref()) else {
            return Ok(None);
        };
        self.check_scope();
        let loaded = match self.sliding {
            Some(ttl) => self.store.load_versioned_and_touch(&id, Some(ttl)).await,
            None => self.store.load_versioned(&id).await,
        };
        match loaded {
            Ok(Some((state, _)))
                if state
                    .get(session_core::EXPIRY_KEY)
                    .is_some_and(|json| session_core::past_deadline(json)) =>
            {
                // A deadline the axum layer set on this shared session has passed: the
                // session is over here as it is there.
                self.store.end_past_deadline(&id).await;
                Ok(None)
            }
            Ok(Some((state, version))) => {
                if let (Some(sliding), Some(own)) = (self.sliding, own_ttl_of(&state)) {
                    // The load gave the session actix's TTL; one of its own (an axum
                    // service's `Expiry::OnInactivity` or deadline, on a shared session)
                    // is set again now, as the axum layer does: otherwise an actix read
                    // stretched a short idle timeout to actix's TTL, or cut a long one.
                    // In a task of its own: a request dropped here would leave actix's.
                    let effective = |ttl| self.store.effective_ttl(ttl);
                    if effective(Some(own)) != effective(Some(sliding)) {
                        match self.store.touch_to_the_end(&id, Some(own)).await {
                            Ok(true) => {}
                            Ok(false) => return Ok(None),
                            Err(err) => return Err(LoadError::Other(self.failure(err))),
                        }
                    }
                }
                scope::remember(session_key.as_ref(), &state, version);
                Ok(Some(state))
            }
            Ok(None) => Ok(None),
            Err(err) if err.is_corrupt() => {
                // The error names the backend and what is wrong, never the id or the data.
                tracing::warn!(error = %err, "stored session is unreadable; starting a fresh session");
                Ok(None)
            }
            Err(err) => Err(LoadError::Other(self.failure(err))),
        }
    }

    async fn save(
        &self,
        session_state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        self.check_scope();
        // actix-session saves after a delete in one case: a renew, which moves the state the
        // request loaded to a new id. Inside `request_scope` that delete was held back
        // (`scope::hold_delete`): the new id is created first and the old one deleted after,
        // as the axum layer does, so a logout that lands anywhere in the renew still finds
        // something to delete, or leaves this delete nothing to find.
        let renew_of = scope::take_held_delete();
        // A renew moves a session of its own expiry with it: that expiry's TTL, not actix's.
        let ttl = own_ttl_of(&session_state).unwrap_or_else(|| std_ttl(ttl));
        // A failed create leaves the old session as it was (its delete was never sent).
        let id = self
            .store
            .create(&session_state, Some(ttl))
            .await
            .map_err(|err| SaveError::Other(self.failure(err)))?;
        if let Some((_, old)) = renew_of {
            match self.store.finish_renew(&old, &id).await {
                Ok(true) => {}
                Ok(false) => {
                    // Gone since the load: a logout in another request, a revoke, expiry,
                    // or another renew of the same session (a login sent twice) that got
                    // there first. Keeping the new id would undo a logout, or leave a second
                    // live session behind an old cookie; handing out a dead id would log out
                    // a user whose other renew won, whenever this answer reached the browser
                    // last. An error sets no cookie: `request_scope` answers 409.
                    tracing::info!(
                        "session was deleted or renewed before its renew; nothing stored"
                    );
                    scope::mark(scope::Failure::Conflict);
                    return Err(SaveError::Other(anyhow::anyhow!(
                        "session was deleted or renewed by another request during its renew"
                    )));
                }
                Err(err) => return Err(SaveError::Other(self.failure(err))),
            }
        }
        key_of(&id).map_err(SaveError::Other)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        // A session of its own expiry (set by an axum service that shares it) keeps it.
        let ttl = Some(own_ttl_of(&session_state).unwrap_or_else(|| std_ttl(ttl)));
        let written = match SessionId::parse(session_key.as_ref()) {
            // actix only updates keys that `load` accepted, so this is defensive.
            Err(_) => Ok(false),
            Ok(id) => match scope::take_loaded(session_key.as_ref()) {
                Some((loaded, version)) => {
                    let changes = Changes::since(&loaded, &session_state);
                    // The whole state after the changes: on Redis the rewrite of a value
                    // whose records have piled up, made only if it is still the one this
                    // request loaded.
                    let after = session_core::EntryList::of(
                        session_state
                            .iter()
                            .map(|(key, value)| (key.as_str(), value.as_str())),
                    );
                    // The store sees only the changes; the size limit is about the whole
                    // session, which only this call knows.
                    // Nothing changed (a TTL refresh): no size check, so a session stored
                    // before a smaller limit was set keeps working until it grows.
                    let checked = if changes.is_empty() {
                        Ok(())
                    } else {
                        self.store.check_size(&session_state)
                    };
                    // With sliding expiry this request's load may have set this TTL
                    // already; it is set again all the same: on Redis that is a `PEXPIRE`
                    // in the write's own round trip, where keeping the expiry would take a
                    // script (`apply_versioned_keeping_expiry`).
                    match checked {
                        Ok(()) => {
                            self.store
                                .apply_versioned(&id, version, &after, &changes, ttl)
                                .await
                        }
                        Err(err) => Err(err),
                    }
                }
                None => self.store.replace(&id, &session_state, ttl).await,
            },
        };
        // Its table goes back for the next load on this thread (`recycle_state`).
        session_core::recycle_state(session_state);
        match written {
            Ok(true) => Ok(session_key),
            Ok(false) => {
                tracing::info!(
                    "session was deleted or expired while a request changed it; its changes are dropped"
                );
                key_of(&SessionId::generate()).map_err(UpdateError::Other)
            }
            Err(err) => Err(UpdateError::Other(self.failure(err))),
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        let Ok(id) = SessionId::parse(session_key.as_ref()) else {
            return Ok(());
        };
        // A session of its own expiry keeps it (known from this request's load, inside
        // `request_scope`). A session that is gone stays gone: nothing to extend.
        let ttl = scope::loaded_own_ttl(session_key.as_ref()).unwrap_or_else(|| std_ttl(ttl));
        self.store
            .touch(&id, Some(ttl))
            .await
            .map(drop)
            .map_err(|err| self.failure(err))
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let Ok(id) = SessionId::parse(session_key.as_ref()) else {
            return Ok(());
        };
        // A delete of a session this request loaded is a logout or the first half of a
        // renew: inside `request_scope` it waits for the renew's save, or for the end of the
        // request (`request_scope` sends it then).
        if scope::hold_delete(session_key.as_ref(), &self.store, &id) {
            return Ok(());
        }
        // Not held (outside `request_scope`, or a session this request did not load): sent
        // now, to its end, since a logout's delete must outlive a dropped request.
        self.store
            .delete_to_the_end(&id)
            .await
            .map(drop)
            .map_err(|err| self.failure(err))
    }
}

/// The per-request scope that [`request_scope`] opens and [`ActixStore`] fills in.
///
/// A tokio task-local, not state in the store: one store serves all requests of a worker at
/// once, while a task-local scope wraps exactly one request's future. Outside a scope (no
/// [`request_scope`] middleware) every function here does nothing.
mod scope {
    use super::*;

    /// Why a store call of this request failed, when the answer should say so.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Failure {
        /// The store is unavailable: 503.
        Outage,
        /// The session is over `session_redis_max_session_size`: 413, nothing stored.
        TooLarge,
        /// A renew found its session gone (a logout, or another renew of it, came first):
        /// 409, nothing stored and no cookie set.
        Conflict,
    }

    #[derive(Default)]
    pub(super) struct RequestScope {
        /// A store call of this request failed in a way the response should tell.
        pub(super) failure: Option<Failure>,
        /// actix-session's `delete` of a session this request loaded, not sent yet: a
        /// renew's `save` sends it after creating the new id; otherwise (a logout)
        /// [`request_scope`] sends it once the inner services are done.
        held_delete: Option<(SessionStore, SessionId)>,
        /// A copy of the state `load` returned and its version, by session key, until
        /// `update` takes them. A [`Snapshot`], not a clone of the map: most requests only
        /// read, and never look at it.
        loaded: HashMap<String, (Snapshot, Version)>,
    }

    impl Drop for RequestScope {
        /// A request dropped with a logout's delete still held (a client gone while a
        /// middleware between [`request_scope`] and `SessionMiddleware` was still at work
        /// after actix-session's delete): without the scope actix-session had sent that
        /// delete, so it is sent now, in a task of its own. Dropped with the request, the
        /// session, and any stolen copy of its cookie, outlived the logout
        /// (`a_held_logout_is_sent_when_its_request_is_dropped_after_the_session_middleware`).
        fn drop(&mut self) {
            if let Some((store, id)) = self.held_delete.take() {
                store.delete_detached(id);
            }
        }
    }

    tokio::task_local! {
        pub(super) static REQUEST: RefCell<RequestScope>;
    }

    /// Whether this call runs inside [`request_scope`].
    pub(super) fn active() -> bool {
        REQUEST.try_with(|_| ()).is_ok()
    }

    pub(super) fn mark(failure: Failure) {
        let _ = REQUEST.try_with(|scope| scope.borrow_mut().failure = Some(failure));
    }

    pub(super) fn remember(session_key: &str, state: &SessionState, version: Version) {
        let _ = REQUEST.try_with(|scope| {
            scope
                .borrow_mut()
                .loaded
                .insert(session_key.to_owned(), (Snapshot::of(state), version))
        });
    }

    /// Holds back the `delete` of `session_key` when this request loaded that session (a
    /// logout or a renew's first call; a delete of a session its load did not find, under
    /// another `SessionMiddleware` of the same scope, goes at once). Whether it was held.
    pub(super) fn hold_delete(session_key: &str, store: &SessionStore, id: &SessionId) -> bool {
        REQUEST
            .try_with(|scope| {
                let mut scope = scope.borrow_mut();
                if scope.held_delete.is_some() || !scope.loaded.contains_key(session_key) {
                    return false;
                }
                scope.held_delete = Some((store.clone(), id.clone()));
                true
            })
            .unwrap_or(false)
    }

    /// The held delete: for the renew's `save` that sends it, or for [`request_scope`] to
    /// send once the inner services are done (a logout).
    pub(super) fn take_held_delete() -> Option<(SessionStore, SessionId)> {
        REQUEST
            .try_with(|scope| scope.borrow_mut().held_delete.take())
            .ok()
            .flatten()
    }

    /// The TTL of the own expiry ([`session_core::own_ttl`]) of the session `session_key` as
    /// this request loaded it, if it has one (for `update_ttl`, which gets no state).
    pub(super) fn loaded_own_ttl(session_key: &str) -> Option<Duration> {
        REQUEST
            .try_with(|scope| {
                let scope = scope.borrow();
                let (snapshot, _) = scope.loaded.get(session_key)?;
                let (_, json) = snapshot
                    .pairs()
                    .find(|(key, _)| *key == session_core::EXPIRY_KEY)?;
                session_core::own_ttl(json)
            })
            .ok()
            .flatten()
    }

    pub(super) fn take_loaded(session_key: &str) -> Option<(Snapshot, Version)> {
        REQUEST
            .try_with(|scope| scope.borrow_mut().loaded.remove(session_key))
            .ok()
            .flatten()
    }
}

/// Middleware function to wrap *outside* `SessionMiddleware` with
/// [`actix_web::middleware::from_fn`]: `.wrap(session_mw).wrap(from_fn(request_scope))`
/// (in actix the last `wrap` is the outermost).
///
/// It gives each request a private scope in which [`ActixStore`]
/// * remembers the state it loaded, so `update` writes only the changed keys (see
///   [Concurrent requests](crate#concurrent-requests-of-one-session)), and
/// * records store outages, which this middleware answers with 503 Service Unavailable instead
///   of the opaque 500 that actix-session makes of every store error, and sessions over
///   `session_redis_max_session_size`, answered with 413 Payload Too Large (nothing stored),
///   and renews that found their session gone, answered with 409 Conflict (nothing stored,
///   no cookie: see [Renews and logouts](crate#renews-and-logouts)). Other errors pass
///   through unchanged.
/// * holds back actix-session's delete of a session the request loaded: a renew's goes after
///   its new id is created, a logout's is sent here once the inner services are done (a
///   failure then answers 503 or 500 instead of removing the cookie).
///
/// Why a scope: actix-session wraps store errors in a ready-made 500 response whose cause cannot
/// be inspected afterwards, so the store has to say "that was an outage" on the side.
pub async fn request_scope<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    scope::REQUEST
        .scope(RefCell::default(), async move {
            let mut result = next.call(req).await;
            // A logout's delete, held back by `ActixStore::delete` (a renew's was sent by its
            // save). Sent even when the inner services failed: a logout the user asked for.
            // To its end: a client that closes the tab right after "log out" drops this
            // request, and the session (and any stolen copy of its cookie) would outlive it.
            if let Some((store, id)) = scope::take_held_delete() {
                if let Err(err) = store.delete_to_the_end(&id).await {
                    // The answer must not remove the cookie of a session still stored: the
                    // error answer replaces actix-session's, as when its own delete failed.
                    if err.is_unavailable() {
                        scope::mark(scope::Failure::Outage);
                        tracing::warn!(error = %err, "session store unavailable");
                    } else {
                        tracing::error!(error = %err, "session store failed");
                    }
                    // An empty 500, as actix-session answers its own store errors: the
                    // error's text (backend names, their messages) is for the log, not the
                    // client (`ErrorInternalServerError` put it in the body:
                    // `a_failed_held_logout_answers_500_without_the_stores_error_text`).
                    result = Err(InternalError::from_response(
                        err,
                        HttpResponse::InternalServerError().finish(),
                    )
                    .into());
                }
            }
            let failure = scope::REQUEST.with(|scope| scope.borrow().failure);
            match (result, failure) {
                (Err(err), Some(scope::Failure::Outage)) => Err(InternalError::from_response(
                    err,
                    HttpResponse::ServiceUnavailable()
                        .content_type("text/plain; charset=utf-8")
                        .body("session store unavailable, please retry later"),
                )
                .into()),
                (Err(err), Some(scope::Failure::Conflict)) => Err(InternalError::from_response(
                    err,
                    HttpResponse::Conflict()
                        .content_type("text/plain; charset=utf-8")
                        .body("the session changed in another request at the same time (a logout, or the same login sent twice): nothing was stored"),
                )
                .into()),
                (Err(err), Some(scope::Failure::TooLarge)) => Err(InternalError::from_response(
                    err,
                    HttpResponse::PayloadTooLarge()
                        .content_type("text/plain; charset=utf-8")
                        .body("session too large: nothing was stored"),
                )
                .into()),
                (other, _) => other,
            }
        })
        .await
}

/// A `SessionMiddleware` builder over `store` with the cookie and lifecycle settings of
/// `config` (`session_cookie_name`, `_age`, `_domain`, `_path`, `_secure`, `_httponly`,
/// `_samesite`, `session_expire_at_browser_close`, `session_save_every_request`: django's
/// names, from the same sources as every `session_redis_*` option), mapped onto
/// actix-session's own settings; call `.build()`, or adjust it first. The same settings give
/// `session_axum::SessionLayer::from_config` the same cookie, so both services share it.
///
/// * `session_cookie_age` with a persistent cookie: `PersistentSession` with that TTL (the
///   cookie's `Max-Age` and the store TTL); with `session_expire_at_browser_close` (or
///   without an age): `BrowserSession` whose state lives for the age (one day by default).
/// * `session_save_every_request`: `TtlExtensionPolicy::OnEveryRequest` (an `update_ttl`
///   per request with a session).
///
/// Fails when one of those settings is invalid, naming it.
///
/// ```
/// use actix_web::{cookie::Key, middleware::from_fn, App};
/// use session_actix::{middleware_from_config, request_scope, ActixStore};
/// use session_core::{SessionConfig, SessionStore};
///
/// let config = SessionConfig::from_sources(None, [
///     ("SESSION_COOKIE_NAME", "sid"),
///     ("SESSION_COOKIE_AGE", "3600"),
/// ]).unwrap();
/// let store = ActixStore::new(SessionStore::memory());
/// let sessions = middleware_from_config(store, Key::generate(), &config).unwrap().build();
/// let app = App::new().wrap(sessions).wrap(from_fn(request_scope));
/// ```
pub fn middleware_from_config(
    store: ActixStore,
    key: actix_web::cookie::Key,
    config: &session_core::SessionConfig,
) -> Result<actix_session::config::SessionMiddlewareBuilder<ActixStore>, session_core::ConfigError>
{
    use actix_session::config::{BrowserSession, PersistentSession, TtlExtensionPolicy};
    use actix_web::cookie::SameSite;
    use session_core::plan::SameSitePolicy;

    let plan = config.cookie_plan()?;
    let ttl = time::Duration::seconds(i64::try_from(plan.ttl.as_secs()).unwrap_or(i64::MAX));
    let policy = if plan.save_every_request {
        TtlExtensionPolicy::OnEveryRequest
    } else {
        TtlExtensionPolicy::OnStateChanges
    };
    let builder = actix_session::SessionMiddleware::builder(store, key)
        .cookie_name(plan.name)
        .cookie_path(plan.path)
        .cookie_domain(plan.domain)
        .cookie_secure(plan.secure)
        .cookie_http_only(plan.http_only)
        .cookie_same_site(match plan.same_site {
            SameSitePolicy::Lax => SameSite::Lax,
            SameSitePolicy::Strict => SameSite::Strict,
            SameSitePolicy::None => SameSite::None,
        });
    Ok(match plan.max_age {
        Some(_) => builder.session_lifecycle(
            PersistentSession::default()
                .session_ttl(ttl)
                .session_ttl_extension_policy(policy),
        ),
        None => builder.session_lifecycle(
            BrowserSession::default()
                .state_ttl(ttl)
                .state_ttl_extension_policy(policy),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_ttl_is_zero() {
        assert_eq!(std_ttl(&time::Duration::seconds(-5)), Duration::ZERO);
        assert_eq!(std_ttl(&time::Duration::seconds(5)), Duration::from_secs(5));
    }
}
