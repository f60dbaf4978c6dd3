//! Store operations per second against a real `redis-server` (started by session-testkit),
//! for each connection strategy and 1, 16 and 64 concurrent tasks.
//!
//! Three workloads:
//! * `mix`: one iteration is a request's worth of work on an existing session: `load`,
//!   `apply` (one key changed) and `load_and_touch` (3 operations).
//! * `create_delete`: `create` then `delete` of a fresh session (2 operations).
//! * `index`: the same login and logout without and with `session_redis_index_key`, and a
//!   logout everywhere (`delete_indexed`) of a user with three sessions.
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

/// The session index (`session_redis_index_key`): what it adds to a login (a `create` that
/// sets the indexed key, then a `delete`), each store on its own redis-server so that its
/// `INFO commandstats` (Redis µs per script call) is its own; and a logout everywhere of a
/// user with three sessions (`delete_indexed`). Every iteration is a different user, as
/// logins are.
fn index_ops(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let servers = [RedisServer::start(), RedisServer::start()];
    let stores: Vec<(&str, SessionStore)> = ["plain", "indexed"]
        .into_iter()
        .zip(&servers)
        .map(|(name, server)| {
            let mut plan = RedisPlan::standalone(server.connection_info());
            if name == "indexed" {
                plan.index_key = Some("user".into());
            }
            let backend = RedisBackend::from_plan(&plan).expect("backend");
            (name, SessionStore::new(backend))
        })
        .collect();
    let user = |n: u64| {
        let mut state = sample_state();
        state.insert("user".into(), format!("\"user-{n}\""));
        state
    };
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = 16;

    let mut group = c.benchmark_group("index");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(2));
    for (name, store) in &stores {
        group.bench_function(
            BenchmarkId::new(format!("login_logout/{name}"), tasks),
            |b| {
                b.to_async(&runtime).iter_custom(|iters| {
                    let (store, counter) = (store.clone(), counter.clone());
                    async move {
                        spread(iters, tasks, move |_| {
                            let (store, counter) = (store.clone(), counter.clone());
                            async move {
                                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let id = store.create(&user(n), TTL).await.expect("create");
                                assert!(store.delete(&id).await.expect("delete"));
                            }
                        })
                        .await
                    }
                });
            },
        );
    }
    let (_, indexed) = &stores[1];
    group.throughput(Throughput::Elements(4));
    group.bench_function(BenchmarkId::new("logout_everywhere/indexed", tasks), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let (store, counter) = (indexed.clone(), counter.clone());
            async move {
                spread(iters, tasks, move |_| {
                    let (store, counter) = (store.clone(), counter.clone());
                    async move {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        for _ in 0..3 {
                            store.create(&user(n), TTL).await.expect("create");
                        }
                        let value = format!("\"user-{n}\"");
                        assert_eq!(store.delete_indexed(&value).await.expect("logout"), 3);
                    }
                })
                .await
            }
        });
    });
    group.finish();
    for ((name, _), server) in stores.iter().zip(&servers) {
        let info: String = server.cmd(&["INFO", "commandstats"]);
        for line in info.lines().filter(|l| {
            ["cmdstat_evalsha:", "cmdstat_zadd:", "cmdstat_del:"]
                .iter()
                .any(|p| l.starts_with(p))
        }) {
            eprintln!("index/{name}: {line}");
        }
    }
}

criterion_group!(benches, store_ops, index_ops);
criterion_main!(benches);
