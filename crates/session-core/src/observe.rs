//! Observability of store operations: a `tracing` span for each one and, with the `metrics`
//! feature, counters and a latency histogram through the [`metrics`](https://docs.rs/metrics)
//! facade.
//!
//! It is a decorator, [`Observed`], that wraps any [`SessionBackend`] and is one itself, so every
//! backend (Redis in each topology, pool, multi-backend, file, memory) is observed the same way
//! without a line of observation code inside it.
//!
//! # What is recorded
//! Only the backend's name, the operation, its outcome and how long it took. Never the session
//! id (a bearer credential), the session's keys or its values: none of them is even passed to
//! the code that records.
//!
//! The span, `session_store` (target `session_core::observe`, level DEBUG: at the usual INFO
//! filter it is never created, so the request path pays nothing for it), has these fields:
//!
//! | field | value |
//! |---|---|
//! | `backend` | the backend's [name](SessionBackend::name): `redis`, `pool`, `file`, ... |
//! | `operation` | `load`, `create`, `replace`, `apply`, `touch`, `delete`, `index` (the session index) or `health` |
//! | `outcome` | see [`Outcome`]: `ok`, `not_found`, `exists`, `unavailable`, `corrupt`, `id_collision`, `too_large`, `unsupported` |
//! | `elapsed_ms` | the operation's wall-clock time in milliseconds (a float) |
//!
//! With `RUST_LOG=session_core::observe=debug`, log lines the backend writes while the
//! operation runs carry the span as context, and the end of each operation is also an event
//! with the outcome and the elapsed time, for log-only setups. Metrics do not depend on the log
//! level.
//!
//! [`SessionStore::from_config`](crate::SessionStore::from_config) observes the backend it
//! builds; wrap a backend given to [`SessionStore::new`](crate::SessionStore::new) yourself.
//!
//! # Metrics (feature `metrics`)
//! | metric | kind | labels |
//! |---|---|---|
//! | `session_store_operations_total` | counter | `backend`, `operation`, `outcome` |
//! | `session_store_errors_total` | counter | `backend`, `operation`, `kind` (`unavailable`, `corrupt`, `id_collision`, `too_large`, `unsupported`) |
//! | `session_store_operation_duration_seconds` | histogram | `backend`, `operation` |
//! | `session_store_failovers_total` | counter | `backend` |
//!
//! A health check with a part down counts as an `unavailable` error of operation `health`, so
//! an alert on errors also fires when only the health endpoint sees the outage. Failovers are
//! counted by the topology code through [`failover_seen`].
//!
//! Nothing is recorded until the application installs a recorder (an exporter such as
//! `metrics-exporter-prometheus`); [`describe_metrics`] gives the recorder the help texts and
//! units.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use tracing::{field, Instrument};

use crate::{
    BackendHealth, Changes, IndexMember, IndexName, LoadedState, Retired, SessionBackend,
    SessionId, SessionState, StoreError, Version,
};

/// The counter of store operations, by backend, operation and outcome.
pub const OPERATIONS_TOTAL: &str = "session_store_operations_total";
/// The counter of failed store operations, by backend, operation and [`StoreError`] kind.
pub const ERRORS_TOTAL: &str = "session_store_errors_total";
/// The histogram of store operation latency in seconds, by backend and operation.
pub const OPERATION_DURATION_SECONDS: &str = "session_store_operation_duration_seconds";
/// The counter of failovers seen (a Sentinel master switch, a cluster slot moving), by backend.
pub const FAILOVERS_TOTAL: &str = "session_store_failovers_total";

/// A backend whose every operation is traced (and counted, with the `metrics` feature).
///
/// Behaves exactly as the backend it wraps: same results, same errors, same name and health.
///
/// ```
/// use std::sync::Arc;
///
/// use session_core::{backends::memory::MemoryBackend, observe::Observed, SessionStore};
///
/// let store = SessionStore::new(Observed::new(Arc::new(MemoryBackend::new())));
/// assert_eq!(store.backend_name(), "memory");
/// ```
pub struct Observed {
    inner: Arc<dyn SessionBackend>,
    /// The inner backend's name, read once: a shared string is a cheap metric label.
    backend: Arc<str>,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Observed {
    /// Wraps `inner`; its name labels every span and metric.
    pub fn new(inner: Arc<dyn SessionBackend>) -> Self {
        let backend = Arc::from(inner.name());
        Self { inner, backend }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &Arc<dyn SessionBackend> {
        &self.inner
    }

    /// Runs one operation inside its span, then records its outcome and latency. `outcome` names
    /// a successful result (a `false` from a conditional write is not an error, but worth
    /// telling apart from `ok`).
    /// A batch as one operation: its outcome is the first failure of its answers, else ok.
    async fn observe_batch<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Vec<Result<T, StoreError>>>,
    ) -> Vec<Result<T, StoreError>> {
        let answers = self.observe(
            operation,
            async { Ok(call.await) },
            |answers: &Vec<Result<T, StoreError>>| {
                answers
                    .iter()
                    .find_map(|a| a.as_ref().err())
                    .map_or(Outcome::Ok, Outcome::of_error)
            },
        );
        answers.await.unwrap_or_default()
    }

    async fn observe<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T, StoreError>>,
        outcome: impl FnOnce(&T) -> Outcome,
    ) -> Result<T, StoreError> {
        let span = tracing::debug_span!(
            "session_store",
            backend = &*self.backend,
            operation = operation.as_str(),
            outcome = field::Empty,
            elapsed_ms = field::Empty,
        );
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(value) => outcome(value),
            Err(err) => Outcome::of_error(err),
        };
        self.record(&span, operation, outcome, elapsed);
        result
    }

    // Without the `metrics` feature the operation is only in the span, which already has it.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn record(
        &self,
        span: &tracing::Span,
        operation: Operation,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        span.record("outcome", outcome.as_str());
        span.record("elapsed_ms", elapsed_ms);
        span.in_scope(|| {
            tracing::debug!(
                outcome = outcome.as_str(),
                elapsed_ms,
                "session store operation done"
            )
        });
        #[cfg(feature = "metrics")]
        metrics_impl::record(&self.backend, operation, outcome, elapsed);
    }
}

/// `true` from a conditional write means it happened; `false` that the session was absent.
fn written(done: &bool) -> Outcome {
    if *done {
        Outcome::Ok
    } else {
        Outcome::NotFound
    }
}

/// The outcome of a load: whether it found a session.
fn found<T>(loaded: &Option<T>) -> Outcome {
    if loaded.is_some() {
        Outcome::Ok
    } else {
        Outcome::NotFound
    }
}

#[async_trait]
impl SessionBackend for Observed {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        self.observe(Operation::Load, self.inner.load(id, touch), found)
            .await
    }

    async fn load_versioned(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.observe(Operation::Load, self.inner.load_versioned(id, touch), found)
            .await
    }

    async fn load_versioned_from_primary(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Version)>, StoreError> {
        self.observe(
            Operation::Load,
            self.inner.load_versioned_from_primary(id),
            found,
        )
        .await
    }

    async fn load_in_place(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<(LoadedState, Version)>, StoreError> {
        self.observe(Operation::Load, self.inner.load_in_place(id, touch), found)
            .await
    }

    async fn apply_versioned(
        &self,
        id: &SessionId,
        version: Version,
        after: &[(&str, &str)],
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.observe(
            Operation::Apply,
            self.inner.apply_versioned(id, version, after, changes, ttl),
            written,
        )
        .await
    }

    async fn load_with_ttl(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionState, Option<Duration>)>, StoreError> {
        // Forwarded, not the trait's default (a plain load without a lifetime): a move must
        // keep what the session had left, read from the primary.
        self.observe(Operation::Load, self.inner.load_with_ttl(id), found)
            .await
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.observe(
            Operation::Create,
            self.inner.create(id, state, ttl),
            |done| {
                if *done {
                    Outcome::Ok
                } else {
                    Outcome::Exists
                }
            },
        )
        .await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.observe(
            Operation::Replace,
            self.inner.replace(id, state, ttl),
            written,
        )
        .await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.observe(
            Operation::Apply,
            self.inner.apply(id, changes, ttl),
            written,
        )
        .await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.observe(Operation::Touch, self.inner.touch(id, ttl), written)
            .await
    }

    async fn touch_tagged(
        &self,
        id: &SessionId,
        ttl: Option<Duration>,
        tag: u64,
    ) -> Result<bool, StoreError> {
        self.observe(
            Operation::Touch,
            self.inner.touch_tagged(id, ttl, tag),
            written,
        )
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.observe(Operation::Delete, self.inner.delete(id), written)
            .await
    }

    // The batch forms are forwarded (each observed as one operation), not left to the
    // trait's defaults: those would turn one pipelined round trip per batch into one request
    // per session.

    async fn load_many_with_ttl(
        &self,
        ids: &[SessionId],
    ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
        self.observe_batch(Operation::Load, self.inner.load_many_with_ttl(ids))
            .await
    }

    async fn create_many(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>)],
    ) -> Vec<Result<bool, StoreError>> {
        self.observe_batch(Operation::Create, self.inner.create_many(sessions))
            .await
    }

    async fn create_many_tagged(
        &self,
        sessions: &[(SessionId, SessionState, Option<Duration>, u64)],
    ) -> Vec<Result<bool, StoreError>> {
        self.observe_batch(Operation::Create, self.inner.create_many_tagged(sessions))
            .await
    }

    async fn delete_many(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
        self.observe_batch(Operation::Delete, self.inner.delete_many(ids))
            .await
    }

    // Counted as deletes: the delete a move makes of the copy it moved.
    async fn retire_many(&self, moves: &[(SessionId, u64)]) -> Vec<Result<Retired, StoreError>> {
        self.observe_batch(Operation::Delete, self.inner.retire_many(moves))
            .await
    }

    fn index_key(&self) -> Option<&str> {
        self.inner.index_key()
    }

    async fn index_add(&self, index: &IndexName, id: &SessionId) -> Result<(), StoreError> {
        self.observe(Operation::Index, self.inner.index_add(index, id), |_| {
            Outcome::Ok
        })
        .await
    }

    async fn index_members(
        &self,
        index: &IndexName,
        oldest: Option<usize>,
    ) -> Result<Vec<IndexMember>, StoreError> {
        self.observe(
            Operation::Index,
            self.inner.index_members(index, oldest),
            |_| Outcome::Ok,
        )
        .await
    }

    async fn index_remove(
        &self,
        index: &IndexName,
        members: &[IndexMember],
    ) -> Result<(), StoreError> {
        self.observe(
            Operation::Index,
            self.inner.index_remove(index, members),
            |_| Outcome::Ok,
        )
        .await
    }

    async fn health(&self) -> Vec<BackendHealth> {
        // Health reports "down" as data, not as an error: wrap it so the same span and
        // counters apply, with `unavailable` when any part is down.
        let checked = self.observe(
            Operation::Health,
            async { Ok(self.inner.health().await) },
            |parts: &Vec<BackendHealth>| {
                if parts.iter().all(|h| h.up) {
                    Outcome::Ok
                } else {
                    Outcome::Unavailable
                }
            },
        );
        // `observe` only fails when the call does, and this call cannot.
        checked.await.unwrap_or_default()
    }

    fn place(&self, id: &SessionId) -> Option<String> {
        self.inner.place(id)
    }

    fn name(&self) -> &str {
        &self.backend
    }
}

/// A [`SessionBackend`] operation, as named in spans and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Load,
    Create,
    Replace,
    Apply,
    Touch,
    Delete,
    /// Reading or changing the session index.
    Index,
    Health,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Load => "load",
            Operation::Create => "create",
            Operation::Replace => "replace",
            Operation::Apply => "apply",
            Operation::Touch => "touch",
            Operation::Delete => "delete",
            Operation::Index => "index",
            Operation::Health => "health",
        }
    }
}

/// How a store operation ended: the `outcome` field of the span and label of the operations
/// counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Done (a load that found the session, a write that happened, every part healthy).
    Ok,
    /// The session was absent: a load found nothing, or a conditional write wrote nothing.
    NotFound,
    /// `create` found the id taken (the store then tries another id).
    Exists,
    /// [`StoreError::Unavailable`], or a health check with a part down.
    Unavailable,
    /// [`StoreError::Corrupt`].
    Corrupt,
    /// [`StoreError::IdCollision`].
    IdCollision,
    /// [`StoreError::TooLarge`] (refused by the store before the backend is asked, so only
    /// seen by a decorator placed above the store's own checks).
    TooLarge,
    /// [`StoreError::Unsupported`].
    Unsupported,
}

impl Outcome {
    /// The name used in spans and metric labels: `ok`, `not_found`, `exists`, `unavailable`,
    /// `corrupt`, `id_collision`, `too_large` or `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Exists => "exists",
            Outcome::Unavailable => "unavailable",
            Outcome::Corrupt => "corrupt",
            Outcome::IdCollision => "id_collision",
            Outcome::TooLarge => "too_large",
            Outcome::Unsupported => "unsupported",
        }
    }

    /// The outcome of a failed operation: the error's kind. An exhaustive match, so a new
    /// [`StoreError`] variant cannot go uncounted.
    pub fn of_error(err: &StoreError) -> Self {
        match err {
            StoreError::Unavailable { .. } => Outcome::Unavailable,
            StoreError::Corrupt { .. } => Outcome::Corrupt,
            StoreError::IdCollision { .. } => Outcome::IdCollision,
            StoreError::TooLarge { .. } => Outcome::TooLarge,
            StoreError::Unsupported { .. } => Outcome::Unsupported,
        }
    }

    /// True for the outcomes of failed operations, counted in `session_store_errors_total`.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Outcome::Unavailable
                | Outcome::Corrupt
                | Outcome::IdCollision
                | Outcome::TooLarge
                | Outcome::Unsupported
        )
    }
}

/// Records that `backend` switched servers on its own (a Sentinel master switch, a cluster
/// failover): counts `session_store_failovers_total{backend}` with the `metrics` feature, and
/// does nothing without it, so failover code can call it unconditionally.
pub fn failover_seen(backend: &str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(FAILOVERS_TOTAL, "backend" => backend.to_owned()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = backend;
}

/// Gives the installed metrics recorder the help text and unit of every metric above (for
/// example the `# HELP` lines of a Prometheus exporter). Call it once, after installing the
/// recorder. Does nothing without the `metrics` feature.
pub fn describe_metrics() {
    #[cfg(feature = "metrics")]
    metrics_impl::describe();
}

#[cfg(feature = "metrics")]
mod metrics_impl {
    use std::{sync::Arc, time::Duration};

    use metrics::{counter, describe_counter, describe_histogram, histogram, SharedString, Unit};

    use super::*;

    pub(super) fn record(
        backend: &Arc<str>,
        operation: Operation,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        let backend = SharedString::from(Arc::clone(backend));
        let operation = operation.as_str();
        counter!(
            OPERATIONS_TOTAL,
            "backend" => backend.clone(),
            "operation" => operation,
            "outcome" => outcome.as_str(),
        )
        .increment(1);
        if outcome.is_error() {
            counter!(
                ERRORS_TOTAL,
                "backend" => backend.clone(),
                "operation" => operation,
                "kind" => outcome.as_str(),
            )
            .increment(1);
        }
        histogram!(
            OPERATION_DURATION_SECONDS,
            "backend" => backend,
            "operation" => operation,
        )
        .record(elapsed.as_secs_f64());
    }

    pub(super) fn describe() {
        describe_counter!(
            OPERATIONS_TOTAL,
            Unit::Count,
            "Session store operations, by backend, operation and outcome."
        );
        describe_counter!(
            ERRORS_TOTAL,
            Unit::Count,
            "Failed session store operations, by backend, operation and error kind."
        );
        describe_histogram!(
            OPERATION_DURATION_SECONDS,
            Unit::Seconds,
            "Latency of session store operations, by backend and operation."
        );
        describe_counter!(
            FAILOVERS_TOTAL,
            Unit::Count,
            "Failovers a session backend followed (Sentinel master switch, cluster failover)."
        );
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, sync::Mutex};

    use tracing::{
        field::{Field, Visit},
        span,
    };
    use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};

    use super::*;
    use crate::{
        backends::memory::MemoryBackend,
        testing::probe::{Fault, Op, ProbeBackend},
    };

    /// One closed span, or one event: its name and fields as text.
    #[derive(Debug, Clone)]
    struct Seen {
        name: &'static str,
        fields: HashMap<String, String>,
    }

    /// A subscriber layer that keeps every closed span and every event, to check what an
    /// operator would see.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Seen>>>);

    struct Fields<'a>(&'a mut HashMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            let span = ctx.span(id).expect("a new span is known");
            span.extensions_mut().insert(fields);
        }

        fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
            let span = ctx.span(id).expect("a recorded span is known");
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<HashMap<String, String>>() {
                values.record(&mut Fields(fields));
            }
        }

        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = HashMap::new();
            event.record(&mut Fields(&mut fields));
            let name = event.metadata().name();
            self.0.lock().unwrap().push(Seen { name, fields });
        }

        fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
            let span = ctx.span(&id).expect("a closing span is known");
            let fields = span
                .extensions_mut()
                .remove::<HashMap<String, String>>()
                .unwrap_or_default();
            let name = span.name();
            self.0.lock().unwrap().push(Seen { name, fields });
        }
    }

    impl Capture {
        fn spans(&self) -> Vec<Seen> {
            let seen = self.0.lock().unwrap();
            seen.iter()
                .filter(|s| s.name == "session_store")
                .cloned()
                .collect()
        }

        /// Everything captured, as one text, to look for what must never appear.
        fn text(&self) -> String {
            format!("{:?}", self.0.lock().unwrap())
        }
    }

    /// The workspace's one test double, named as the errors below name their backend: down
    /// (every call unavailable), or with corrupt loads.
    fn failing(fault: Fault) -> Arc<dyn SessionBackend> {
        let probe = ProbeBackend::memory().named("failing");
        match fault {
            Fault::Unavailable => probe.set_down(true),
            _ => probe.fail(Op::Load, Some(fault)),
        }
        Arc::new(probe)
    }

    fn unavailable() -> StoreError {
        StoreError::Unavailable {
            backend: "failing".into(),
            timed_out: true,
            message: "connection refused".into(),
        }
    }

    fn corrupt() -> StoreError {
        StoreError::Corrupt {
            backend: "failing".into(),
            detail: "not a hash".into(),
        }
    }

    fn state(key: &str, value: &str) -> SessionState {
        SessionState::from([(key.to_owned(), value.to_owned())])
    }

    /// Runs every operation once on a memory backend (with the outcomes listed in the test
    /// below) and returns the id and the secrets it used.
    async fn exercise(backend: &Observed) -> (SessionId, [&'static str; 4]) {
        let secrets = ["secret-key", "secret-value", "other-key", "other-value"];
        let id = SessionId::generate();
        let data = state(secrets[0], &format!("\"{}\"", secrets[1]));
        assert!(backend.create(&id, &data, None).await.unwrap());
        assert!(!backend.create(&id, &data, None).await.unwrap());
        assert_eq!(backend.load(&id, None).await.unwrap(), Some(data));
        let mut changes = Changes::default();
        changes.set(secrets[2], format!("\"{}\"", secrets[3]));
        assert!(backend.apply(&id, &changes, None).await.unwrap());
        assert!(backend
            .touch(&id, Some(Duration::from_secs(60)))
            .await
            .unwrap());
        assert!(backend.delete(&id).await.unwrap());
        assert_eq!(backend.load(&id, None).await.unwrap(), None);
        assert!(!backend.replace(&id, &state("k", "1"), None).await.unwrap());
        assert!(backend.health().await.iter().all(|h| h.up));
        (id, secrets)
    }

    #[tokio::test]
    async fn a_span_per_operation_with_backend_operation_outcome_and_elapsed_never_the_id_or_data()
    {
        let capture = Capture::default();
        let _default = tracing_subscriber::registry()
            .with(capture.clone())
            .set_default();
        let backend = Observed::new(Arc::new(MemoryBackend::new()));
        assert_eq!(backend.name(), "memory");
        let (id, secrets) = exercise(&backend).await;

        let spans = capture.spans();
        let seen: Vec<(&str, &str)> = spans
            .iter()
            .map(|s| (s.fields["operation"].as_str(), s.fields["outcome"].as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("create", "ok"),
                ("create", "exists"),
                ("load", "ok"),
                ("apply", "ok"),
                ("touch", "ok"),
                ("delete", "ok"),
                ("load", "not_found"),
                ("replace", "not_found"),
                ("health", "ok"),
            ]
        );
        for span in &spans {
            assert_eq!(span.fields["backend"], "memory");
            let elapsed: f64 = span.fields["elapsed_ms"].parse().unwrap();
            assert!(elapsed >= 0.0, "{span:?}");
            // Exactly these four fields: nothing else can carry an id or data.
            assert_eq!(span.fields.len(), 4, "{span:?}");
        }

        let text = capture.text();
        // The DEBUG event at the end of each operation was seen, so it is checked too.
        assert!(text.contains("session store operation done"), "{text}");
        assert!(!text.contains(id.as_str()), "the session id leaked: {text}");
        for secret in secrets {
            assert!(!text.contains(secret), "`{secret}` leaked: {text}");
        }
    }

    #[tokio::test]
    async fn errors_are_named_by_their_kind_and_pass_through_unchanged() {
        let capture = Capture::default();
        let _default = tracing_subscriber::registry()
            .with(capture.clone())
            .set_default();
        let id = SessionId::generate();
        let down = Observed::new(failing(Fault::Unavailable));
        let err = down.load(&id, None).await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(!down.health().await[0].up);
        let bad = Observed::new(failing(Fault::Corrupt));
        assert!(bad.load(&id, None).await.unwrap_err().is_corrupt());

        let seen: Vec<(String, String, String)> = capture
            .spans()
            .into_iter()
            .map(|s| {
                let f = |name: &str| s.fields[name].clone();
                (f("backend"), f("operation"), f("outcome"))
            })
            .collect();
        let expected = [
            ("failing", "load", "unavailable"),
            ("failing", "health", "unavailable"),
            ("failing", "load", "corrupt"),
        ]
        .map(|(b, o, r)| (b.to_owned(), o.to_owned(), r.to_owned()));
        assert_eq!(seen, expected);
        assert!(!capture.text().contains(id.as_str()));
    }

    /// Every operation and outcome a span or label can carry, by an exhaustive match: a new
    /// one fails to compile here until it is listed, and so until the docs are checked.
    fn every_operation_and_outcome() -> (Vec<Operation>, Vec<Outcome>) {
        let operations = vec![
            Operation::Load,
            Operation::Create,
            Operation::Replace,
            Operation::Apply,
            Operation::Touch,
            Operation::Delete,
            Operation::Index,
            Operation::Health,
        ];
        for op in &operations {
            match op {
                Operation::Load
                | Operation::Create
                | Operation::Replace
                | Operation::Apply
                | Operation::Touch
                | Operation::Delete
                | Operation::Index
                | Operation::Health => {}
            }
        }
        let outcomes = vec![
            Outcome::Ok,
            Outcome::NotFound,
            Outcome::Exists,
            Outcome::Unavailable,
            Outcome::Corrupt,
            Outcome::IdCollision,
            Outcome::TooLarge,
            Outcome::Unsupported,
        ];
        for outcome in &outcomes {
            match outcome {
                Outcome::Ok
                | Outcome::NotFound
                | Outcome::Exists
                | Outcome::Unavailable
                | Outcome::Corrupt
                | Outcome::IdCollision
                | Outcome::TooLarge
                | Outcome::Unsupported => {}
            }
        }
        (operations, outcomes)
    }

    /// The line of `text` that starts with `start` (a table row).
    fn row<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .map(|line| line.trim_start_matches("//! "))
            .find(|line| line.starts_with(start))
            .unwrap_or_else(|| panic!("no row {start}"))
    }

    /// The README and this module's docs list every value an operator can see in the
    /// `operation` and `outcome` fields and the `kind` label: they left out `index` (the
    /// session index's reads and writes), `too_large` and `unsupported`, so an alert or a
    /// dashboard built from them missed those series.
    #[test]
    fn the_docs_list_every_operation_outcome_and_error_kind() {
        let (operations, outcomes) = every_operation_and_outcome();
        for (name, text) in [
            ("README.md", include_str!("../../../README.md")),
            ("observe.rs", include_str!("observe.rs")),
        ] {
            let ops = row(text, "| `operation` |");
            let outs = row(text, "| `outcome` |");
            let kinds = row(text, &format!("| `{ERRORS_TOTAL}` |"));
            for op in &operations {
                let shown = format!("`{}`", op.as_str());
                assert!(ops.contains(&shown), "{name}: {shown} missing in {ops}");
            }
            for outcome in &outcomes {
                let shown = format!("`{}`", outcome.as_str());
                assert!(outs.contains(&shown), "{name}: {shown} missing in {outs}");
                if outcome.is_error() {
                    assert!(kinds.contains(&shown), "{name}: {shown} missing in {kinds}");
                }
            }
        }
    }

    #[test]
    fn every_error_kind_is_an_error_outcome() {
        for err in [
            unavailable(),
            corrupt(),
            StoreError::IdCollision { tries: 1 },
        ] {
            assert!(Outcome::of_error(&err).is_error(), "{err}");
        }
        for outcome in [Outcome::Ok, Outcome::NotFound, Outcome::Exists] {
            assert!(!outcome.is_error(), "{outcome:?}");
        }
    }

    #[cfg(feature = "metrics")]
    mod with_metrics {
        use metrics_util::{
            debugging::{DebugValue, DebuggingRecorder},
            MetricKind,
        };

        use super::*;

        /// The snapshot as `(name, labels sorted as "k=v") -> value`.
        type Values = HashMap<(String, Vec<String>), DebugValue>;

        fn key(name: &str, labels: &[&str]) -> (String, Vec<String>) {
            let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
            labels.sort();
            (name.to_owned(), labels)
        }

        fn counter(values: &Values, name: &str, labels: &[&str]) -> u64 {
            match values.get(&key(name, labels)) {
                Some(DebugValue::Counter(n)) => *n,
                other => panic!("{name}{labels:?}: {other:?} in {values:#?}"),
            }
        }

        #[tokio::test]
        async fn counts_latency_errors_by_kind_and_failovers() {
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            let _local = metrics::set_default_local_recorder(&recorder);
            describe_metrics();

            let (id, secrets) = exercise(&Observed::new(Arc::new(MemoryBackend::new()))).await;
            let down = Observed::new(failing(Fault::Unavailable));
            let _ = down.load(&id, None).await;
            let _ = down.apply(&id, &Changes::default(), None).await;
            let _ = Observed::new(failing(Fault::Corrupt)).load(&id, None).await;
            failover_seen("sentinel");
            failover_seen("sentinel");

            let mut values = Values::new();
            for (composite, _, _, value) in snapshotter.snapshot().into_vec() {
                let (kind, metric) = composite.into_parts();
                let mut labels: Vec<String> = metric
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                let text = format!("{} {labels:?}", metric.name());
                assert!(!text.contains(id.as_str()), "{text}");
                for secret in secrets {
                    assert!(!text.contains(secret), "{text}");
                }
                if kind == MetricKind::Histogram {
                    let DebugValue::Histogram(samples) = &value else {
                        panic!("{text}: {value:?}");
                    };
                    assert!(samples.iter().all(|s| s.into_inner() >= 0.0), "{text}");
                }
                values.insert((metric.name().to_owned(), labels), value);
            }

            let ops = |labels: &[&str]| counter(&values, OPERATIONS_TOTAL, labels);
            assert_eq!(
                ops(&["backend=memory", "operation=create", "outcome=ok"]),
                1
            );
            assert_eq!(
                ops(&["backend=memory", "operation=create", "outcome=exists"]),
                1
            );
            assert_eq!(
                ops(&["backend=memory", "operation=load", "outcome=not_found"]),
                1
            );
            assert_eq!(
                ops(&["backend=failing", "operation=load", "outcome=unavailable"]),
                1
            );
            let errors = |labels: &[&str]| counter(&values, ERRORS_TOTAL, labels);
            assert_eq!(
                errors(&["backend=failing", "operation=load", "kind=unavailable"]),
                1
            );
            assert_eq!(
                errors(&["backend=failing", "operation=apply", "kind=unavailable"]),
                1
            );
            assert_eq!(
                errors(&["backend=failing", "operation=load", "kind=corrupt"]),
                1
            );
            // No error was counted for the memory backend.
            assert!(values.keys().all(|(name, labels)| name != ERRORS_TOTAL
                || !labels.contains(&"backend=memory".to_owned())));
            match &values[&key(
                OPERATION_DURATION_SECONDS,
                &["backend=memory", "operation=load"],
            )] {
                DebugValue::Histogram(samples) => assert_eq!(samples.len(), 2),
                other => panic!("{other:?}"),
            }
            assert_eq!(counter(&values, FAILOVERS_TOTAL, &["backend=sentinel"]), 2);
        }
    }
}
