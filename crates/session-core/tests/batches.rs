//! The batch operations of `SessionBackend` (`load_many_with_ttl`, `create_many`,
//! `delete_many`), which the mover uses: the same answers as the single operations, in order,
//! on every backend (memory, file store, Redis pipelines, the pool's per-member pipelines),
//! and one bad session or a server down answered per session.

use std::{sync::Arc, time::Duration};

use session_core::{
    backends::{file::FileBackend, memory::MemoryBackend, pool::PoolBackend, redis::RedisBackend},
    SessionBackend, SessionConfig, SessionId, SessionState,
};
use session_testkit::RedisServer;

fn redis(server: &RedisServer) -> Arc<dyn SessionBackend> {
    Arc::new(
        RedisBackend::from_config(&SessionConfig {
            url: Some(server.url()),
            ..SessionConfig::default()
        })
        .unwrap(),
    )
}

fn state(n: usize) -> SessionState {
    SessionState::from([
        ("n".to_owned(), n.to_string()),
        ("user".to_owned(), "\"u\"".to_owned()),
    ])
}

async fn same_answers_as_single_operations(backend: &dyn SessionBackend, name: &str) {
    let ids: Vec<SessionId> = (0..50).map(|_| SessionId::generate()).collect();
    let sessions: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            (
                id.clone(),
                state(n),
                (n % 2 == 0).then(|| Duration::from_secs(600)),
            )
        })
        .collect();
    assert!(
        backend
            .create_many(&sessions)
            .await
            .into_iter()
            .all(|r| r.unwrap()),
        "{name}"
    );

    let mut asked = ids.clone();
    asked.insert(10, SessionId::generate());
    let loaded = backend.load_many_with_ttl(&asked).await;
    assert_eq!(loaded.len(), 51, "{name}");
    for (id, answer) in asked.iter().zip(&loaded) {
        let single = backend.load_with_ttl(id).await.unwrap();
        let answer = answer.as_ref().unwrap();
        assert_eq!(
            answer.as_ref().map(|(s, _)| s),
            single.as_ref().map(|(s, _)| s),
            "{name}"
        );
        assert_eq!(
            answer.as_ref().map(|(_, t)| t.is_some()),
            single.as_ref().map(|(_, t)| t.is_some()),
            "{name}"
        );
    }
    assert!(
        loaded[10].as_ref().unwrap().is_none(),
        "{name}: an absent id"
    );
    let (_, ttl) = loaded[0].as_ref().unwrap().as_ref().unwrap();
    assert!(ttl.unwrap() > Duration::from_secs(500), "{name}");

    // Create never overwrites: a different state is refused, the same one is a retry.
    let again = vec![
        (ids[0].clone(), state(999), None),
        (ids[1].clone(), state(1), None),
    ];
    let answers: Vec<bool> = backend
        .create_many(&again)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(!answers[0], "{name}: an id taken by another state");
    assert_eq!(
        backend.load(&ids[0], None).await.unwrap(),
        Some(state(0)),
        "{name}"
    );

    let deleted: Vec<bool> = backend
        .delete_many(&asked)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(deleted.iter().filter(|d| **d).count(), 50, "{name}");
    assert!(!deleted[10], "{name}");
    for id in &ids {
        assert!(backend.load(id, None).await.unwrap().is_none(), "{name}");
    }
    assert!(backend.create_many(&[]).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_answers_batches_like_single_operations() {
    same_answers_as_single_operations(&MemoryBackend::new(), "memory").await;
    let dir = tempfile::tempdir().unwrap();
    let files = FileBackend::new(dir.path().to_path_buf())
        .unwrap()
        .with_cleanup_interval(None);
    same_answers_as_single_operations(&files, "file").await;
    let server = RedisServer::start();
    same_answers_as_single_operations(redis(&server).as_ref(), "redis").await;
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let pool = PoolBackend::new(vec![
        (format!("127.0.0.1:{}/0", a.port()), 1, redis(&a)),
        (format!("127.0.0.1:{}/0", b.port()), 2, redis(&b)),
    ]);
    same_answers_as_single_operations(&pool, "pool").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_session_or_a_server_down_is_answered_per_session() {
    let server = RedisServer::start();
    let backend = redis(&server);
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    let sessions: Vec<_> = ids.iter().map(|id| (id.clone(), state(1), None)).collect();
    backend.create_many(&sessions).await;
    // The middle one is not a hash any more.
    let key = format!("session:{}", ids[1].as_str());
    let _: () = server.cmd(&["DEL", &key]);
    let _: () = server.cmd(&["SET", &key, "x"]);
    let loaded = backend.load_many_with_ttl(&ids).await;
    assert!(loaded[0].as_ref().unwrap().is_some());
    assert!(
        loaded[1].as_ref().unwrap_err().is_corrupt(),
        "{:?}",
        loaded[1]
    );
    assert!(loaded[2].as_ref().unwrap().is_some());

    server.kill();
    let loaded = backend.load_many_with_ttl(&ids).await;
    assert!(
        loaded
            .iter()
            .all(|r| r.as_ref().unwrap_err().is_unavailable()),
        "{loaded:?}"
    );
    let deleted = backend.delete_many(&ids).await;
    assert!(deleted
        .iter()
        .all(|r| r.as_ref().unwrap_err().is_unavailable()));
    let created = backend.create_many(&sessions).await;
    assert!(created
        .iter()
        .all(|r| r.as_ref().unwrap_err().is_unavailable()));
    // Back without a restart of the backend.
    server.restart();
    let created = backend.create_many(&sessions).await;
    assert!(created.iter().all(|r| *r.as_ref().unwrap()), "{created:?}");
}

// `Observed` (every store built from a configuration is wrapped in it) must forward the batch
// operations as batches. In this file rather than in `observe`'s unit tests: a span created
// on another test thread while those tests capture spans with a thread-local subscriber
// races tracing's callsite cache.
mod observed {
    use std::{sync::Arc, time::Duration};

    use async_trait::async_trait;
    use session_core::{
        observe::Observed, BackendHealth, Changes, SessionBackend, SessionId, SessionState,
        StoreError,
    };

    /// A backend that tells batched calls from single ones.
    #[derive(Default)]
    struct Batches {
        single: std::sync::atomic::AtomicUsize,
        batched: std::sync::atomic::AtomicUsize,
    }

    impl Batches {
        fn single(&self) -> Result<bool, StoreError> {
            self.single
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(false)
        }
        fn batch<T>(&self, n: usize, answer: impl Fn() -> T) -> Vec<Result<T, StoreError>> {
            self.batched
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (0..n).map(|_| Ok(answer())).collect()
        }
    }

    #[async_trait]
    impl SessionBackend for Batches {
        async fn load(
            &self,
            _: &SessionId,
            _: Option<Duration>,
        ) -> Result<Option<SessionState>, StoreError> {
            self.single().map(|_| None)
        }
        async fn create(
            &self,
            _: &SessionId,
            _: &SessionState,
            _: Option<Duration>,
        ) -> Result<bool, StoreError> {
            self.single()
        }
        async fn replace(
            &self,
            _: &SessionId,
            _: &SessionState,
            _: Option<Duration>,
        ) -> Result<bool, StoreError> {
            self.single()
        }
        async fn apply(
            &self,
            _: &SessionId,
            _: &Changes,
            _: Option<Duration>,
        ) -> Result<bool, StoreError> {
            self.single()
        }
        async fn touch(&self, _: &SessionId, _: Option<Duration>) -> Result<bool, StoreError> {
            self.single()
        }
        async fn delete(&self, _: &SessionId) -> Result<bool, StoreError> {
            self.single()
        }
        async fn load_many_with_ttl(
            &self,
            ids: &[SessionId],
        ) -> Vec<Result<Option<(SessionState, Option<Duration>)>, StoreError>> {
            self.batch(ids.len(), || None)
        }
        async fn create_many(
            &self,
            sessions: &[(SessionId, SessionState, Option<Duration>)],
        ) -> Vec<Result<bool, StoreError>> {
            self.batch(sessions.len(), || true)
        }
        async fn delete_many(&self, ids: &[SessionId]) -> Vec<Result<bool, StoreError>> {
            self.batch(ids.len(), || true)
        }
        async fn health(&self) -> Vec<BackendHealth> {
            Vec::new()
        }
        fn name(&self) -> &str {
            "batches"
        }
    }

    /// The batch operations reach the wrapped backend as batches (one pipelined round trip
    /// each on Redis), not as one call per session.
    #[tokio::test]
    async fn observed_batches_stay_batches() {
        let inner = Arc::new(Batches::default());
        let observed = Observed::new(inner.clone());
        let ids: Vec<SessionId> = (0..5).map(|_| SessionId::generate()).collect();
        assert_eq!(observed.load_many_with_ttl(&ids).await.len(), 5);
        assert_eq!(observed.delete_many(&ids).await.len(), 5);
        let sessions: Vec<_> = ids
            .iter()
            .map(|id| (id.clone(), SessionState::new(), None))
            .collect();
        assert_eq!(observed.create_many(&sessions).await.len(), 5);
        let count =
            |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!((count(&inner.batched), count(&inner.single)), (3, 0));
    }
}
