//! `session_redis_multi_backends`: several backends, each with read / write / delete modes
//! (acs_redis_multi_sessions' `ACS_SESSION_MULTISESSIONS_POOL`), for moving sessions from one
//! engine to another and for separate read and write paths.
//!
//! The semantics are deterministic and never hide a failure:
//!
//! * **load** asks the `read` backends in configured order; the first that has the session
//!   wins. An error does not stop the search, but when no backend had the session and one
//!   failed, that error is returned (never a silent logout). A session found in a backend
//!   without `write` mode is first copied (conditional create) into every `write` backend, so
//!   the request's later conditional writes find it, then deleted from where it was found when
//!   that backend has `delete` mode: that is how sessions move between engines. The copy's TTL
//!   is the touch TTL when the load touches, else `session_redis_key_expire`, else none. When
//!   a `write` backend already holds the id, its copy is the one returned (it is the one later
//!   writes change). A miss writes nothing.
//! * **create** goes to every `write` backend, conditionally; when one reports the id taken
//!   (false) or fails (error), the copies already made are removed (best effort, logged).
//! * **replace / apply / touch** go to every `write` backend: true when the session existed in
//!   any; an error from any backend is returned after all were tried.
//! * **delete** goes to every `delete` backend and every `write` backend (write implies
//!   delete, so a logout always removes what was written): true when any had it; errors as
//!   above. Configuration refuses a `read` backend with neither `write` nor `delete`: a
//!   session deleted elsewhere would be found there again and brought back.
//! * **health** reports every backend, named.
//!
//! Each backend builds its own clients: nothing is shared between backends.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    config::BackendMode,
    plan::{BackendPlan, MultiPlan},
    BackendHealth, Changes, ConfigError, SessionBackend, SessionConfig, SessionId, SessionState,
    StoreError, TtlRule,
};

const NAME: &str = "multi";

/// One backend with its modes.
struct Named {
    name: String,
    read: bool,
    write: bool,
    delete: bool,
    backend: Arc<dyn SessionBackend>,
}

/// Several backends with read / write / delete modes (see the [module docs](self)).
pub struct MultiBackend {
    backends: Vec<Named>,
    /// The expiry of a session a load copies into the write backends.
    ttl: TtlRule,
}

impl std::fmt::Debug for MultiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.backends.iter().map(|b| {
                format!(
                    "{} ({}{}{}): {}",
                    b.name,
                    if b.read { "r" } else { "-" },
                    if b.write { "w" } else { "-" },
                    if b.delete { "d" } else { "-" },
                    b.backend.name()
                )
            }))
            .finish()
    }
}

impl MultiBackend {
    /// Backends as `(name, modes, backend)`, in the order loads ask them. `ttl` gives the
    /// expiry of sessions a load copies into the write backends (see
    /// [`TtlRule::for_move`]).
    ///
    /// # Panics
    /// When there is no backend with each of the three modes
    /// ([`from_config`](Self::from_config) validates it).
    pub fn new(
        backends: Vec<(String, Vec<BackendMode>, Arc<dyn SessionBackend>)>,
        ttl: TtlRule,
    ) -> Self {
        let backends: Vec<Named> = backends
            .into_iter()
            .map(|(name, modes, backend)| Named {
                name,
                read: modes.contains(&BackendMode::Read),
                write: modes.contains(&BackendMode::Write),
                // Whatever a backend receives it must lose on logout, or the logout would not
                // stick: write implies delete.
                delete: modes.contains(&BackendMode::Delete) || modes.contains(&BackendMode::Write),
                backend,
            })
            .collect();
        assert!(
            backends.iter().any(|b| b.read)
                && backends.iter().any(|b| b.write)
                && backends.iter().any(|b| b.delete),
            "a multi-backend needs read, write and delete backends"
        );
        Self { backends, ttl }
    }

    /// The backends the configuration's `session_redis_multi_backends` describes: a
    /// shorthand for [`SessionConfig::plan`] then [`from_plan`](Self::from_plan).
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        match config.plan()?.backend {
            BackendPlan::Multi(plan) => Self::from_plan(&plan),
            _ => Err(ConfigError::invalid(
                "session_redis_multi_backends",
                "[]",
                "one or more backends",
            )),
        }
    }

    /// Builds every backend of the plan (Redis in any mode, a pool, or the file store), each
    /// with its own clients.
    pub fn from_plan(plan: &MultiPlan) -> Result<Self, ConfigError> {
        let mut backends = Vec::with_capacity(plan.backends.len());
        for b in &plan.backends {
            let backend = super::build(&b.plan).map_err(|mut e| {
                e.key = format!("session_redis_multi_backends[{:?}].{}", b.name, e.key);
                e
            })?;
            backends.push((b.name.clone(), b.modes.clone(), backend));
        }
        Ok(Self::new(backends, plan.ttl))
    }

    fn writers(&self) -> impl Iterator<Item = &Named> {
        self.backends.iter().filter(|b| b.write)
    }

    /// Runs `op` on every backend `which` selects; true when any returned true; the first
    /// error (after all were tried) otherwise.
    async fn all<'a, F, Fut>(&'a self, which: fn(&Named) -> bool, op: F) -> Result<bool, StoreError>
    where
        F: Fn(&'a Named) -> Fut,
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        let mut any = false;
        let mut first_err = None;
        for b in self.backends.iter().filter(|b| which(b)) {
            match op(b).await {
                Ok(found) => any |= found,
                Err(e) => {
                    tracing::warn!(backend = %b.name, error = %e, "multi-backend: operation failed");
                    first_err.get_or_insert(tag(b, e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(any),
        }
    }

    /// Copies a session found in a non-write backend into every write backend, then removes
    /// the original when `from` has delete mode. Returns the state later writes will see.
    async fn promote(
        &self,
        from: &Named,
        id: &SessionId,
        state: SessionState,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        // A load does not tell how long the session had left where it was found.
        let ttl = self.ttl.for_move(touch, None);
        let mut result = Some(state);
        for w in self.writers() {
            let state = result.as_ref().expect("set until a writer answers");
            let created = w
                .backend
                .create(id, state, ttl)
                .await
                .map_err(|e| tag(w, e))?;
            if !created {
                // This writer already has the id (an earlier move whose clean-up failed, or a
                // write-only backend): its copy is the one later writes change.
                result = w.backend.load(id, touch).await.map_err(|e| tag(w, e))?;
                if result.is_none() {
                    // Gone between the two calls (expired or logged out): so is the session.
                    return Ok(None);
                }
            }
        }
        if from.delete {
            if let Err(e) = from.backend.delete(id).await {
                // The write backends hold the session; the stale copy is found again later,
                // where the writers' copy wins and the delete is retried.
                tracing::warn!(backend = %from.name, error = %e, "multi-backend: could not remove a moved session from its old backend");
            }
        }
        Ok(result)
    }
}

/// Names the backend in an error.
fn tag(b: &Named, e: StoreError) -> StoreError {
    e.within(&format!("{NAME}[{}]", b.name))
}

#[async_trait]
impl SessionBackend for MultiBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        let mut first_err = None;
        for b in self.backends.iter().filter(|b| b.read) {
            // Touching is a write: only write backends are touched.
            let touch_here = if b.write { touch } else { None };
            match b.backend.load(id, touch_here).await {
                Ok(Some(state)) if b.write => return Ok(Some(state)),
                Ok(Some(state)) => return self.promote(b, id, state, touch).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(backend = %b.name, error = %e, "multi-backend: load failed; asking the next backend");
                    first_err.get_or_insert(tag(b, e));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut created: Vec<&Named> = Vec::new();
        let mut outcome = Ok(true);
        for w in self.writers() {
            match w.backend.create(id, state, ttl).await {
                Ok(true) => created.push(w),
                Ok(false) => {
                    outcome = Ok(false);
                    break;
                }
                Err(e) => {
                    outcome = Err(tag(w, e));
                    break;
                }
            }
        }
        if !matches!(outcome, Ok(true)) {
            for w in created {
                if let Err(e) = w.backend.delete(id).await {
                    tracing::warn!(backend = %w.name, error = %e, "multi-backend: could not remove a partly created session");
                }
            }
        }
        outcome
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.all(|b| b.write, |b| b.backend.replace(id, state, ttl))
            .await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.all(|b| b.write, |b| b.backend.apply(id, changes, ttl))
            .await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.all(|b| b.write, |b| b.backend.touch(id, ttl)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.all(|b| b.delete, |b| b.backend.delete(id)).await
    }

    async fn health(&self) -> Vec<BackendHealth> {
        crate::backend::health_of_parts(
            self.backends
                .iter()
                .map(|b| (format!("{NAME}[{}]", b.name), b.backend.as_ref())),
        )
        .await
    }

    fn name(&self) -> &str {
        NAME
    }
}
