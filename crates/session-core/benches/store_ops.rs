//! Store operations per second against a real `redis-server` (started by session-testkit),
//! for each connection strategy and 1, 16 and 64 concurrent tasks.
//!
//! Two workloads:
//! * `mix`: one iteration is a request's worth of work on an existing session: `load`,
//!   `apply` (one key changed) and `load_and_touch` (3 operations).
//! * `create_delete`: `create` then `delete` of a fresh session (2 operations).
//!
//! Criterion's throughput is in operations per second. Run with
//! `cargo bench -p session-core --bench store_ops`; `docs/benchmarks.md` has the results.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use session_core::{
    backends::redis::RedisBackend,
    plan::{RedisPlan, Strategy},
    Changes, SessionId, SessionState, SessionStore,
};
use session_testkit::RedisServer;

const CONCURRENCY: [u64; 3] = [1, 16, 64];
const TTL: Option<Duration> = Some(Duration::from_secs(600));

fn strategies() -> [(&'static str, Strategy); 3] {
    [
        ("pool16", Strategy::Pool { max_size: 16 }),
        ("pool64", Strategy::Pool { max_size: 64 }),
        ("single", Strategy::Single),
    ]
}

fn sample_state() -> SessionState {
    SessionState::from([
        (
            "user".to_owned(),
            "{\"id\":42,\"name\":\"alice\"}".to_owned(),
        ),
        (
            "csrf".to_owned(),
            "\"0123456789abcdef0123456789abcdef\"".to_owned(),
        ),
        ("cart".to_owned(), "[1,2,3,4,5]".to_owned()),
    ])
}

/// Runs `iters` iterations of `work`, spread over `tasks` concurrent tasks, and returns the
/// wall time.
async fn spread<F, Fut>(iters: u64, tasks: u64, work: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let work = Arc::new(work);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let n = iters / tasks + u64::from(task < iters % tasks);
            let work = work.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    work(task).await;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("benchmark task panicked");
    }
    started.elapsed()
}

fn store_ops(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let stores: Vec<_> = strategies()
        .into_iter()
        .map(|(name, strategy)| {
            let mut plan = RedisPlan::standalone(server.connection_info());
            plan.connection.strategy = strategy;
            let backend = RedisBackend::from_plan(&plan).expect("backend");
            (name, SessionStore::new(backend))
        })
        .collect();

    let mut group = c.benchmark_group("mix");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(3));
    for (name, store) in &stores {
        for tasks in CONCURRENCY {
            // One session per task, as with that many users browsing at once.
            let ids: Arc<Vec<SessionId>> = Arc::new(runtime.block_on(async {
                let mut ids = Vec::new();
                for _ in 0..tasks {
                    ids.push(store.create(&sample_state(), TTL).await.expect("create"));
                }
                ids
            }));
            group.bench_with_input(BenchmarkId::new(*name, tasks), &tasks, |b, &tasks| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let (store, ids) = (store.clone(), ids.clone());
                    async move {
                        spread(iters, tasks, move |task| {
                            let (store, ids) = (store.clone(), ids.clone());
                            async move {
                                let id = &ids[task as usize];
                                store.load(id).await.expect("load").expect("session");
                                let mut changes = Changes::default();
                                changes.set("last_seen", "1700000000");
                                assert!(store.apply(id, &changes, TTL).await.expect("apply"));
                                store
                                    .load_and_touch(id, TTL)
                                    .await
                                    .expect("load_and_touch")
                                    .expect("session");
                            }
                        })
                        .await
                    }
                });
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("create_delete");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(2));
    for (name, store) in &stores {
        for tasks in CONCURRENCY {
            group.bench_with_input(BenchmarkId::new(*name, tasks), &tasks, |b, &tasks| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let store = store.clone();
                    async move {
                        spread(iters, tasks, move |_| {
                            let store = store.clone();
                            async move {
                                let id = store.create(&sample_state(), TTL).await.expect("create");
                                assert!(store.delete(&id).await.expect("delete"));
                            }
                        })
                        .await
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, store_ops);
criterion_main!(benches);
