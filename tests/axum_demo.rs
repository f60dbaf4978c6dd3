//! The axum demo's HTTP contract, over real HTTP on a loopback port, with the in-memory store.
//!
//! The checks live in `tests/common/checks.rs`: they take base URLs (and, where they look
//! inside, the store and key material), so `tests/redis_e2e.rs` runs the same checks against
//! Redis-backed demos of both frameworks, and logs in on one server and asks `/whoami` on another.

mod common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use common::checks;
use session_core::{
    backends::memory::MemoryBackend, BackendHealth, Changes, SessionBackend, SessionId,
    SessionState, SessionStore, StoreError,
};
use session_e2e::axum_app;

/// 64 bytes of cookie key material (what `SESSION_SECRET` would give).
const KEY: &[u8; 64] = b"demo-secret-demo-secret-demo-secret-demo-secret-demo-secret-1234";

/// The in-memory backend, counting writes and switchable down (as a stopped server would be).
#[derive(Clone, Default)]
struct ProbeBackend {
    inner: Arc<MemoryBackend>,
    writes: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl ProbeBackend {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                backend: "probe".into(),
                timed_out: false,
                message: "switched off by the test".into(),
            });
        }
        Ok(())
    }

    fn wrote(&self) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.check()
    }
}

#[async_trait]
impl SessionBackend for ProbeBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        if touch.is_some() {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        self.check()?;
        self.inner.load(id, touch).await
    }
    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.wrote()?;
        self.inner.create(id, state, ttl).await
    }
    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.wrote()?;
        self.inner.replace(id, state, ttl).await
    }
    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.wrote()?;
        self.inner.apply(id, changes, ttl).await
    }
    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.wrote()?;
        self.inner.touch(id, ttl).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.wrote()?;
        self.inner.delete(id).await
    }
    async fn health(&self) -> Vec<BackendHealth> {
        let down = self.down.load(Ordering::SeqCst);
        vec![BackendHealth {
            name: "probe".into(),
            location: "memory".into(),
            up: !down,
            error: down.then(|| "switched off by the test".into()),
        }]
    }
    fn name(&self) -> &str {
        "probe"
    }
}

/// Serves the demo app for `store` on a free loopback port; returns its base URL.
async fn serve(store: SessionStore) -> String {
    let app = axum_app::router(store, KEY, false, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn counter_and_read() {
    let base = serve(SessionStore::memory()).await;
    checks::counter(&base).await;
}

#[tokio::test]
async fn read_writes_nothing_and_sets_no_cookie() {
    let backend = ProbeBackend::default();
    let base = serve(SessionStore::new(backend.clone())).await;
    let writes = backend.writes.clone();
    checks::read_writes_nothing(&base, &move || writes.load(Ordering::SeqCst)).await;
}

#[tokio::test]
async fn login_renews_the_id_and_whoami_works() {
    let store = SessionStore::memory();
    let base = serve(store.clone()).await;
    checks::login_renews_and_whoami(&base, &base, KEY, Some(&store)).await;
}

#[tokio::test]
async fn two_servers_sharing_key_and_store_share_sessions() {
    let store = SessionStore::memory();
    let a = serve(store.clone()).await;
    let b = serve(store.clone()).await;
    checks::login_renews_and_whoami(&a, &b, KEY, Some(&store)).await;
}

#[tokio::test]
async fn logout_deletes_the_session() {
    let store = SessionStore::memory();
    let base = serve(store.clone()).await;
    checks::logout(&base, KEY, Some(&store)).await;
}

#[tokio::test]
async fn tampered_cookie_gives_a_fresh_session() {
    let base = serve(SessionStore::memory()).await;
    checks::tampered_cookie(&base).await;
}

#[tokio::test]
async fn healthz_names_the_backend() {
    let base = serve(SessionStore::memory()).await;
    let json = checks::healthz(&base, true).await;
    assert_eq!(json["backends"][0]["name"], "memory", "{json}");
}

#[tokio::test]
async fn store_outage_is_503_and_recovers_without_restart() {
    let backend = ProbeBackend::default();
    let base = serve(SessionStore::new(backend.clone())).await;
    let cookie = checks::login(&base, None, "dave").await;

    backend.down.store(true, Ordering::SeqCst);
    checks::outage(&base, &cookie).await;

    backend.down.store(false, Ordering::SeqCst);
    checks::healthz(&base, true).await;
    let res = checks::send("GET", &format!("{base}/whoami"), Some(&cookie), None).await;
    assert_eq!((res.status.as_u16(), res.body.as_str()), (200, "dave"));
    let res = checks::send("GET", &format!("{base}/counter"), Some(&cookie), None).await;
    assert_eq!((res.status.as_u16(), res.body.as_str()), (200, "1"));
}
