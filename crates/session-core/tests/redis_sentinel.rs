//! Sentinel mode against real processes: a master, replicas and three sentinels
//! (session-testkit's `SentinelTopology`), with failovers under load.
//!
//! The failover tests print their figures (`cargo test --test redis_sentinel -- --nocapture`):
//! failed operations, time until writes succeed again, acknowledged writes lost.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

mod common;

use session_core::{Changes, SessionConfig, SessionId, SessionState, SessionStore};
use session_testkit::{SentinelOptions, SentinelTopology};

const TTL: Option<Duration> = Some(Duration::from_secs(600));
const CLIENTS: usize = 20;
/// Upper bound of the operations one client makes, whatever happens.
const MAX_ROUNDS: u64 = 5_000;
/// A client that saw a failure waits this long before its next operation, as a real client
/// would (and so that the failure count measures time, not a busy loop).
const BACKOFF: Duration = Duration::from_millis(20);

fn env(topology: &SentinelTopology, extra: &[(&str, &str)]) -> SessionConfig {
    let mut vars = vec![
        ("SESSION_REDIS_MODE".to_string(), "sentinel".to_string()),
        (
            "SESSION_REDIS_HOST".to_string(),
            topology.sentinel_host_list(),
        ),
        (
            "SESSION_REDIS_MASTER".to_string(),
            topology.master_name().to_string(),
        ),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    SessionConfig::from_env_vars(vars).unwrap()
}

async fn open(config: &SessionConfig) -> SessionStore {
    SessionStore::from_config(config).await.unwrap()
}

fn state(pairs: &[(&str, &str)]) -> SessionState {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_syntax_reaches_the_master_with_one_sentinel_down() {
    let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
    topology.sentinel(0).kill();
    let config = env(&topology, &[]);
    assert_eq!(config.host.len(), 3);
    let store = open(&config).await;
    let id = store
        .create(&state(&[("user", "\"alice\"")]), TTL)
        .await
        .unwrap();
    let key = format!("session:{}", id.as_str());
    assert_eq!(topology.master().cmd::<i64>(&["EXISTS", &key]), 1);
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(state(&[("user", "\"alice\"")]))
    );

    let health = store.health().await;
    assert_eq!(health.len(), 4, "{health:?}");
    assert_eq!(health.iter().filter(|h| h.up).count(), 3, "{health:?}");
    assert!(health[3].location.contains("master mymaster"), "{health:?}");

    // The django-redis-sessions names work the same way.
    let config = SessionConfig::from_env_vars([
        (
            "SESSION_REDIS_SENTINEL_LIST",
            topology.sentinel_host_list().as_str(),
        ),
        (
            "SESSION_REDIS_SENTINEL_MASTER_ALIAS",
            topology.master_name(),
        ),
    ])
    .unwrap();
    let store = open(&config).await;
    assert!(store.load(&id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_and_nodes_with_passwords() {
    let topology = SentinelTopology::start_with(
        SentinelOptions::new()
            .replicas(1)
            .password("node-secret")
            .sentinel_password("sentinel-secret"),
    );
    let config = env(
        &topology,
        &[
            ("SESSION_REDIS_PASSWORD", "node-secret"),
            ("SESSION_REDIS_SENTINEL_PASSWORD", "sentinel-secret"),
        ],
    );
    let store = open(&config).await;
    let id = store.create(&state(&[("n", "1")]), TTL).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());

    // The sentinels refuse the data nodes' password: an honest error, without secrets.
    let config = env(&topology, &[("SESSION_REDIS_PASSWORD", "node-secret")]);
    let err = store_err(&config).await;
    assert!(!err.contains("secret"), "{err}");
    assert!(
        err.contains("no master found through the sentinels"),
        "{err}"
    );
}

/// Password on the data nodes only (the common set-up): the sentinels refuse those
/// credentials, and both the master lookups and the failover-event subscriptions must fall
/// back to none, or a planned failover would only be noticed through `READONLY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_password_only_still_follows_sentinel_events() {
    let topology = SentinelTopology::start_with(SentinelOptions::new().password("node-secret"));
    let config = env(&topology, &[("SESSION_REDIS_PASSWORD", "node-secret")]);
    let store = open(&config).await;
    let id = store.create(&state(&[("n", "1")]), TTL).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    // Every sentinel gets a subscriber on its three failover channels (`sub=3` in CLIENT LIST).
    let deadline = Instant::now() + Duration::from_secs(5);
    for sentinel in topology.sentinels() {
        loop {
            let clients: String = sentinel.cmd(&["CLIENT", "LIST"]);
            if clients.lines().any(|l| l.contains(" sub=3 ")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no event subscription on a sentinel:\n{clients}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn store_err(config: &SessionConfig) -> String {
    let store = open(config).await;
    store
        .create(&state(&[("n", "1")]), TTL)
        .await
        .unwrap_err()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_go_to_a_replica_when_asked() {
    let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
    let config = env(
        &topology,
        &[("SESSION_REDIS_SENTINEL_READ_FROM_REPLICAS", "True")],
    );
    let store = open(&config).await;
    let id = store.create(&state(&[("n", "1")]), TTL).await.unwrap();
    topology.wait_replication(Duration::from_secs(10));
    let replica = &topology.nodes()[1];
    let _: () = replica.cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.load(&id).await.unwrap().is_some());
    let stats: String = replica.cmd(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_get:"), "{stats}");
    // A sliding-expiry load writes (`GETEX ... PX`): the master serves it.
    let master_stats = || topology.master().cmd::<String>(&["INFO", "commandstats"]);
    let _: () = topology.master().cmd(&["CONFIG", "RESETSTAT"]);
    assert!(store.load_and_touch(&id, TTL).await.unwrap().is_some());
    assert!(master_stats().contains("cmdstat_getex:"));
}

/// Every sentinel sees the replica of `topology` as `healthy` (flags exactly `slave`, link
/// to the master up: what the store takes) or as down (`s_down` in its flags), within
/// `within`.
async fn every_sentinel_sees_the_replica(
    topology: &SentinelTopology,
    healthy: bool,
    within: Duration,
) {
    let port = topology.nodes()[1].port().to_string();
    let seen = || {
        topology.sentinels().iter().all(|s| {
            let replicas: Vec<HashMap<String, String>> =
                s.cmd(&["SENTINEL", "REPLICAS", topology.master_name()]);
            replicas.iter().any(|r| {
                let flags = r.get("flags").map(String::as_str).unwrap_or_default();
                r.get("port") == Some(&port)
                    && if healthy {
                        flags == "slave"
                            && r.get("master-link-status").map(String::as_str) == Some("ok")
                    } else {
                        flags.contains("s_down")
                    }
            })
        })
    };
    let deadline = Instant::now() + within;
    while !seen() {
        assert!(
            Instant::now() < deadline,
            "the sentinels never saw the replica {}",
            if healthy { "healthy" } else { "down" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With `sentinel_read_from_replicas`, reads go to the master while no replica is healthy,
/// and back to a replica once one is. They stayed on the master for as long as the
/// connection lived: nothing made the connections opened for that fallback ask the
/// sentinels again, so a replica back after a restart (or a network cut) was never used
/// again until the process restarted, and the master kept the whole read load. Both
/// strategies: the shared connection (the default) and a pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_fell_back_to_the_master_return_to_a_replica() {
    let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
    let replicas = ("SESSION_REDIS_SENTINEL_READ_FROM_REPLICAS", "True");
    let stores = [
        (
            "shared connection",
            open(&env(&topology, &[replicas])).await,
        ),
        (
            "pool",
            open(&env(
                &topology,
                &[replicas, ("SESSION_REDIS_MAX_CONNECTIONS", "4")],
            ))
            .await,
        ),
    ];
    let data = state(&[("n", "1")]);
    let id = stores[0].1.create(&data, TTL).await.unwrap();
    topology.wait_replication(Duration::from_secs(10));
    let (master, replica) = (topology.master(), &topology.nodes()[1]);
    for (name, store) in &stores {
        let before = replica.calls("get");
        assert_eq!(store.load(&id).await.unwrap().as_ref(), Some(&data));
        assert!(
            replica.calls("get") > before,
            "{name}: the replica serves no read"
        );
    }

    // No healthy replica: the reads go to the master (a load may fail while the store
    // notices the replica gone).
    replica.kill();
    every_sentinel_sees_the_replica(&topology, false, Duration::from_secs(10)).await;
    for (name, store) in &stores {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = master.calls("get");
            if let Ok(Some(found)) = store.load(&id).await {
                assert_eq!(found, data);
                if master.calls("get") > before {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the master serves no read"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The replica is back and healthy: the reads go there again, within a bounded time.
    let topology = blocking(move || {
        topology.nodes()[1].restart();
        topology.wait_replication(Duration::from_secs(10));
        topology
    })
    .await
    .unwrap();
    every_sentinel_sees_the_replica(&topology, true, Duration::from_secs(30)).await;
    let replica = &topology.nodes()[1];
    let healthy = Instant::now();
    for (name, store) in &stores {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let before = replica.calls("get");
            assert_eq!(store.load(&id).await.unwrap(), Some(data.clone()));
            if replica.calls("get") > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the reads stay on the master, {:?} after the replica is healthy",
                healthy.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "{name}: reads back on the replica {:?} after the sentinels saw it healthy",
            healthy.elapsed()
        );
    }
}

/// One acknowledged session: its last acknowledged state, when it was created and when it
/// was last written.
struct Acked {
    state: SessionState,
    created: Instant,
    last: Instant,
}

/// What the load clients saw.
#[derive(Default)]
struct Load {
    /// Every session a create or apply acknowledged, with the state it should have now, and
    /// when it was last acknowledged.
    acked: Mutex<HashMap<SessionId, Acked>>,
    failed: AtomicU64,
    ops: AtomicU64,
    /// Loads that answered something other than the last acknowledged state.
    stale_reads: AtomicU64,
    /// Milliseconds after `start` of the last failure and of the first success after
    /// `mark`.
    last_failure_ms: AtomicU64,
    first_write_after_mark_ms: AtomicU64,
    mark_ms: AtomicU64,
    stop: AtomicBool,
    start: Mutex<Option<Instant>>,
}

impl Load {
    fn now_ms(&self) -> u64 {
        self.start.lock().unwrap().unwrap().elapsed().as_millis() as u64
    }

    fn failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.last_failure_ms
            .fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    fn write_ok(&self) {
        let now = self.now_ms();
        let mark = self.mark_ms.load(Ordering::Relaxed);
        if mark > 0 && now > mark {
            let _ = self.first_write_after_mark_ms.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

/// 20 clients that create a session, load it, change it and load it again, in a loop.
fn start_load(store: &SessionStore, load: &Arc<Load>) -> Vec<tokio::task::JoinHandle<()>> {
    *load.start.lock().unwrap() = Some(Instant::now());
    (0..CLIENTS)
        .map(|client| {
            let store = store.clone();
            let load = Arc::clone(load);
            tokio::spawn(async move {
                for round in 0..MAX_ROUNDS {
                    if load.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut expected = state(&[("user", &format!("\"c{client}r{round}\""))]);
                    load.ops.fetch_add(1, Ordering::Relaxed);
                    let id = match store.create(&expected, TTL).await {
                        Ok(id) => id,
                        Err(_) => {
                            load.failure();
                            tokio::time::sleep(BACKOFF).await;
                            continue;
                        }
                    };
                    load.write_ok();
                    let created = Instant::now();
                    load.acked.lock().unwrap().insert(
                        id.clone(),
                        Acked {
                            state: expected.clone(),
                            created,
                            last: created,
                        },
                    );

                    load.ops.fetch_add(1, Ordering::Relaxed);
                    match store.load(&id).await {
                        Ok(Some(s)) if s == expected => {}
                        Ok(_) => {
                            load.stale_reads.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            load.failure();
                            tokio::time::sleep(BACKOFF).await;
                            continue;
                        }
                    }

                    let mut changes = Changes::default();
                    changes.set("step", "2");
                    load.ops.fetch_add(1, Ordering::Relaxed);
                    match store.apply(&id, &changes, TTL).await {
                        Ok(true) => {
                            load.write_ok();
                            expected.insert("step".into(), "2".into());
                            load.acked.lock().unwrap().insert(
                                id.clone(),
                                Acked {
                                    state: expected.clone(),
                                    created,
                                    last: Instant::now(),
                                },
                            );
                        }
                        Ok(false) => {
                            // The session vanished under us: an acknowledged create was lost.
                            load.stale_reads.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            load.failure();
                            tokio::time::sleep(BACKOFF).await;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Checks every acknowledged session: one created before `cutoff` must still be there; one
/// whose last acknowledged write came later must show that write. Returns (checked, created
/// before the cutoff but missing, later acknowledged writes lost).
async fn verify(store: &SessionStore, load: &Load, cutoff: Instant) -> (usize, usize, usize) {
    let acked: Vec<(SessionId, SessionState, Instant, Instant)> = load
        .acked
        .lock()
        .unwrap()
        .iter()
        .map(|(id, a)| (id.clone(), a.state.clone(), a.created, a.last))
        .collect();
    let mut missing_before = 0;
    let mut lost_after = 0;
    for (id, expected, created, last) in &acked {
        let found = store.load(id).await.unwrap();
        if *created < cutoff && found.is_none() {
            missing_before += 1;
        } else if *last >= cutoff && found.as_ref() != Some(expected) {
            lost_after += 1;
        }
    }
    (acked.len(), missing_before, lost_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planned_failover_under_load() {
    let topology = Arc::new(SentinelTopology::start());
    let store = open(&env(&topology, &[])).await;
    let load = Arc::new(Load::default());
    let clients = start_load(&store, &load);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SENTINEL FAILOVER does not wait for the replica it promotes to catch up (unlike
    // CLUSTER FAILOVER): the promise checked here holds only while replication keeps up.
    let t = Arc::clone(&topology);
    let acked = blocking(move || t.wait_replication(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(acked, 2, "the replicas do not keep up before the failover");
    let started = Instant::now();
    load.mark_ms.store(load.now_ms(), Ordering::Relaxed);
    let failed_before = load.failed.load(Ordering::Relaxed);
    let t = Arc::clone(&topology);
    let new_master = blocking(move || t.failover()).await.unwrap();
    let failover_took = started.elapsed();
    // Keep the load on for a while on the new master.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (checked, missing_before, lost_after) = verify(&store, &load, started).await;
    let failed = load.failed.load(Ordering::Relaxed);
    println!(
        "sentinel planned failover: {CLIENTS} clients, {} operations, {} failed ({} before the failover), \
         failover took {failover_took:?} (SENTINEL FAILOVER until every sentinel agrees), \
         {checked} sessions checked, {missing_before} acknowledged before the failover missing, \
         {lost_after} acknowledged writes during/after it lost, {} stale reads; new master {new_master:?}",
        load.ops.load(Ordering::Relaxed),
        failed,
        failed_before,
        load.stale_reads.load(Ordering::Relaxed),
    );
    assert_eq!(missing_before, 0);
    assert!(store.health().await.iter().all(|h| h.up));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn master_crash_under_load() {
    let topology = Arc::new(SentinelTopology::start());
    let store = open(&env(&topology, &[])).await;
    let load = Arc::new(Load::default());
    let clients = start_load(&store, &load);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Everything acknowledged before this point is on the replicas.
    let t = Arc::clone(&topology);
    let acked = blocking(move || t.wait_replication(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(acked, 2);
    let replicated = Instant::now();
    let t = Arc::clone(&topology);
    let old = blocking(move || t.kill_master()).await.unwrap();
    load.mark_ms.store(load.now_ms(), Ordering::Relaxed);
    let killed = Instant::now();

    let t = Arc::clone(&topology);
    let new_master = blocking(move || t.wait_for_new_master(&old, Duration::from_secs(30)))
        .await
        .unwrap();
    let promoted_after = killed.elapsed();
    // Keep the load on until writes succeed again, then one more second.
    let deadline = Instant::now() + Duration::from_secs(20);
    while load.first_write_after_mark_ms.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let mark = load.mark_ms.load(Ordering::Relaxed);
    let first_write = load.first_write_after_mark_ms.load(Ordering::Relaxed);
    assert!(first_write > 0, "writes never succeeded again");
    let last_failure = load.last_failure_ms.load(Ordering::Relaxed);
    let (checked, missing_before, lost_after) = verify(&store, &load, replicated).await;
    println!(
        "sentinel master crash (SIGKILL): {CLIENTS} clients, {} operations, {} failed, \
         writes succeed again {} ms after the kill (last failure at +{} ms; sentinels agreed on \
         the new master after {promoted_after:?}), {checked} sessions checked, {missing_before} \
         replicated (WAIT) before the crash missing, {lost_after} acknowledged after WAIT lost \
         (not replicated in time), {} stale reads; new master {new_master:?}",
        load.ops.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
        first_write.saturating_sub(mark),
        last_failure.saturating_sub(mark),
        load.stale_reads.load(Ordering::Relaxed),
    );
    assert_eq!(missing_before, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_and_nodes_over_tls() {
    let topology = SentinelTopology::start_with(
        SentinelOptions::new()
            .replicas(1)
            .tls(true)
            .sentinel_password("sentinel-secret"),
    );
    let ca = topology.ca_cert_path().unwrap().display().to_string();
    let config = env(
        &topology,
        &[
            ("SESSION_REDIS_SSL", "True"),
            ("SESSION_REDIS_SSL_CA_CERTS", &ca),
            ("SESSION_REDIS_SENTINEL_PASSWORD", "sentinel-secret"),
        ],
    );
    let store = open(&config).await;
    let id = store.create(&state(&[("n", "1")]), TTL).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    // Every connection of ours went to a TLS port: the sentinels' and the master's.
    let tls_port = topology.master().tls_port().unwrap().to_string();
    let clients: String = topology.master().cmd(&["CLIENT", "LIST"]);
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")),
        "{clients}"
    );
    assert!(store.health().await.iter().all(|h| h.up));

    // Without the CA, nothing is trusted: an honest error.
    let config = env(
        &topology,
        &[
            ("SESSION_REDIS_SSL", "True"),
            ("SESSION_REDIS_SENTINEL_PASSWORD", "sentinel-secret"),
        ],
    );
    let err = store_err(&config).await;
    assert!(
        err.contains("no master found through the sentinels"),
        "{err}"
    );
}

/// Two processes move one session into a Sentinel store that reads from replicas (the
/// switch of `moves.rs`, `a_move_that_finds_its_copy_vouched_for_by_another_keeps_it`):
/// A creates the copy and holds its retire of the old one; B finds A's copy and retires the
/// old copy under a marker that vouches for it (the copy's tag), then A finds that marker
/// and keeps its copy. The tag must be read where the copy was made, the master: read from
/// a replica that has not received the copy yet (replication is asynchronous), B found no
/// tag and marked with a random token, A took that for a logout and removed the copy: the
/// user was logged out. Here the replica's link is cut for the race, so it lags for sure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_moves_into_a_store_reading_replicas_keep_the_session() {
    use common::{load_held_at, new_first};
    use session_core::{
        backends::redis::RedisBackend,
        testing::probe::{Op, ProbeBackend},
        SessionBackend,
    };
    let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
    let old_server = session_testkit::RedisServer::start();
    let new: Arc<dyn SessionBackend> = Arc::new(
        RedisBackend::from_config(&env(
            &topology,
            &[("SESSION_REDIS_SENTINEL_READ_FROM_REPLICAS", "True")],
        ))
        .unwrap(),
    );
    let old: Arc<dyn SessionBackend> = Arc::new(
        RedisBackend::from_config(&SessionConfig {
            url: Some(old_server.url()),
            ..SessionConfig::default()
        })
        .unwrap(),
    );
    let (a_old, b_old) = (
        ProbeBackend::wrap(old.clone()),
        ProbeBackend::wrap(old.clone()),
    );
    let process = |old: &ProbeBackend| Arc::new(new_first(new.clone(), Arc::new(old.clone())));
    let (process_a, process_b) = (process(&a_old), process(&b_old));
    let data = state(&[("n", "1")]);
    let id = SessionId::generate();
    assert!(old.create(&id, &data, TTL).await.unwrap());
    // The replica is in use, then stops receiving the master's writes.
    topology.wait_replication(Duration::from_secs(10));
    let replica = &topology.nodes()[1];
    let _: () = replica.cmd(&["CONFIG", "RESETSTAT"]);
    assert_eq!(new.load(&SessionId::generate(), None).await.unwrap(), None);
    let stats: String = replica.cmd(&["INFO", "commandstats"]);
    assert!(
        stats.contains("cmdstat_get:"),
        "the replica serves loads: {stats}"
    );
    let _: () = replica.cmd(&["CONFIG", "SET", "masterauth", "not-the-password"]);
    let _: i64 = replica.cmd(&["CLIENT", "KILL", "TYPE", "master"]);

    // B has looked in the new store (nothing) and holds its read of the old one.
    let b_read = b_old.pause(Op::Load);
    let b = load_held_at(&process_b, &id, &b_read).await;
    // A reads, creates its copy, and holds its retire (counted as a delete).
    let a_retire = a_old.pause(Op::Delete);
    let a = load_held_at(&process_a, &id, &a_retire).await;
    // B reads the old copy, finds A's copy in the new store, and retires the old one first.
    b_read.release();
    assert_eq!(b.await.unwrap().unwrap(), Some(data.clone()));
    a_retire.release();
    let a = a.await.unwrap().unwrap();
    let _: () = replica.cmd(&["CONFIG", "SET", "masterauth", ""]);
    assert_eq!(a, Some(data.clone()), "A logged the user out");
    assert_eq!(
        new.load_with_ttl(&id)
            .await
            .unwrap()
            .map(|(state, _)| state),
        Some(data),
        "logged out"
    );
}

/// One round trip per store operation in Sentinel mode too: once the master is known, each
/// operation reaches the master as the same commands as on a single server (no `ROLE`, no
/// question to a sentinel per operation). Counted by the master's `INFO commandstats`, over
/// the commands the store sends (the sentinels' and replicas' own `PING`, `INFO`,
/// `PUBLISH`, `REPLCONF` are left out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_is_one_round_trip_to_the_master() {
    let topology = SentinelTopology::start();
    let store = open(&env(&topology, &[])).await;
    let master = topology.master();
    let ours = [
        "get", "getex", "set", "append", "pexpire", "evalsha", "eval", "type", "getrange", "del",
        "persist", "pttl", "role", "strlen",
    ];
    let calls = || -> HashMap<String, u64> {
        let info: String = master.cmd(&["INFO", "commandstats"]);
        info.lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
                let calls = rest.split(',').next()?.parse().ok()?;
                ours.contains(&name).then(|| (name.to_owned(), calls))
            })
            .collect()
    };
    let expect = |pairs: &[(&str, u64)], what: &str| {
        let expected: HashMap<String, u64> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        assert_eq!(calls(), expected, "{what}");
        let _: () = master.cmd(&["CONFIG", "RESETSTAT"]);
    };
    // Warm-up: the master found, every script cached.
    let warm = store.create(&state(&[("a", "1")]), TTL).await.unwrap();
    assert!(store.touch(&warm, None).await.unwrap());
    assert!(store.delete(&warm).await.unwrap());
    let _: () = master.cmd(&["CONFIG", "RESETSTAT"]);

    let id = store.create(&state(&[("a", "1")]), TTL).await.unwrap();
    expect(&[("evalsha", 1), ("set", 1)], "create");
    assert!(store.load(&id).await.unwrap().is_some());
    expect(&[("get", 1)], "load");
    assert!(store.touch(&id, TTL).await.unwrap());
    expect(&[("pexpire", 1), ("getrange", 1)], "touch");
    assert!(store.delete(&id).await.unwrap());
    expect(
        &[("evalsha", 1), ("type", 1), ("getrange", 1), ("del", 1)],
        "delete",
    );
}
