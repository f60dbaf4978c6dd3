//! Shared by the integration tests: a counting backend (our own code wrapping the in-memory
//! backend, not a mock of Redis) and a small request helper.
#![allow(dead_code)]

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use session_axum::Key;
use session_core::{
    backends::memory::MemoryBackend, BackendHealth, Changes, SessionBackend, SessionId,
    SessionState, StoreError,
};
use tower::ServiceExt;

/// 64 bytes of key material, fed to `Key::from` on both the axum and the actix side.
pub const KEY_MATERIAL: [u8; 64] =
    *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub fn key() -> Key {
    Key::from(&KEY_MATERIAL)
}

/// Calls made to the backend, by method.
#[derive(Default, Debug)]
pub struct Counts {
    pub load: AtomicUsize,
    pub load_touch: AtomicUsize,
    pub create: AtomicUsize,
    pub replace: AtomicUsize,
    pub apply: AtomicUsize,
    pub touch: AtomicUsize,
    pub delete: AtomicUsize,
    pub last_changes: Mutex<Option<Changes>>,
    pub last_ttl: Mutex<Option<Option<Duration>>>,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.load.load(Ordering::SeqCst)
            + self.create.load(Ordering::SeqCst)
            + self.replace.load(Ordering::SeqCst)
            + self.apply.load(Ordering::SeqCst)
            + self.touch.load(Ordering::SeqCst)
            + self.delete.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> usize {
        self.total() - self.load.load(Ordering::SeqCst)
    }

    pub fn get(&self, which: &AtomicUsize) -> usize {
        which.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        for c in [
            &self.load,
            &self.load_touch,
            &self.create,
            &self.replace,
            &self.apply,
            &self.touch,
            &self.delete,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// Wraps [`MemoryBackend`], counting calls; can be switched "down" (every call fails as
/// unavailable) or "corrupt" (every load fails as corrupt).
#[derive(Clone, Default)]
pub struct CountingBackend {
    inner: Arc<MemoryBackend>,
    pub counts: Arc<Counts>,
    pub down: Arc<AtomicBool>,
    pub corrupt: Arc<AtomicBool>,
}

impl CountingBackend {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                backend: "counting".into(),
                timed_out: false,
                message: "switched off by the test".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl SessionBackend for CountingBackend {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<Duration>,
    ) -> Result<Option<SessionState>, StoreError> {
        self.counts.load.fetch_add(1, Ordering::SeqCst);
        if touch.is_some() {
            self.counts.load_touch.fetch_add(1, Ordering::SeqCst);
            *self.counts.last_ttl.lock().unwrap() = Some(touch);
        }
        self.check()?;
        if self.corrupt.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt {
                backend: "counting".into(),
                detail: "switched to corrupt by the test".into(),
            });
        }
        self.inner.load(id, touch).await
    }

    async fn create(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.counts.create.fetch_add(1, Ordering::SeqCst);
        *self.counts.last_ttl.lock().unwrap() = Some(ttl);
        self.check()?;
        self.inner.create(id, state, ttl).await
    }

    async fn replace(
        &self,
        id: &SessionId,
        state: &SessionState,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.counts.replace.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.replace(id, state, ttl).await
    }

    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.counts.apply.fetch_add(1, Ordering::SeqCst);
        *self.counts.last_changes.lock().unwrap() = Some(changes.clone());
        *self.counts.last_ttl.lock().unwrap() = Some(ttl);
        self.check()?;
        self.inner.apply(id, changes, ttl).await
    }

    async fn touch(&self, id: &SessionId, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.counts.touch.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.touch(id, ttl).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.counts.delete.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.delete(id).await
    }

    async fn health(&self) -> Vec<BackendHealth> {
        self.inner.health().await
    }

    fn name(&self) -> &str {
        "counting"
    }
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub set_cookie: Vec<String>,
    pub body: String,
}

impl Answer {
    /// The `name=value` pair a browser would send back, from the only `Set-Cookie`.
    pub fn cookie_pair(&self) -> String {
        assert_eq!(
            self.set_cookie.len(),
            1,
            "expected one Set-Cookie: {self:?}"
        );
        self.set_cookie[0].split(';').next().unwrap().to_owned()
    }
}

pub async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let set_cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        set_cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// Opens a `name=value` cookie pair with the test key (what the server would read).
pub fn open(pair: &str) -> SessionId {
    let cookie = cookie::Cookie::parse_encoded(pair.to_owned()).unwrap();
    let jar = cookie::CookieJar::new();
    let opened = jar.private(&key()).decrypt(cookie).expect("cookie opens");
    SessionId::parse(opened.value()).unwrap()
}
