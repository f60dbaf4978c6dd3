//! The framework issue end to end: both demo servers over HTTP, backed by a real
//! `redis-server` (one per test, so tests run in parallel and never see each other's keys or
//! command statistics).
//!
//! Every test builds its store the way the demos do: a [`SessionConfig`] (here from the builder,
//! in the demos from `SESSION_CONFIG` / `SESSION_REDIS_*`) and [`SessionStore::from_config`],
//! with sliding expiry when `session_redis_key_expire` is set (as the demos' `run` does). Each
//! demo gets its own store built from the same configuration, as two separate processes would.
//!
//! Looking inside Redis: the session id is the decrypted cookie value, its key is
//! `session:<id>`, holding one string (`v1:<tag>:<JSON object>`, read back with `GET` and
//! [`decode_value`]). "Which commands did a request cost" is read from `INFO commandstats` after a
//! `CONFIG RESETSTAT`, on one connection of the test's own; the statistics commands themselves
//! (`config|*`, `info`) are left out of the count.

mod common;

use std::{collections::BTreeMap, time::Duration};

use actix_web::dev::ServerHandle;
use axum::http::StatusCode;
use common::checks::{self, send};
use futures_util::future::join_all;
use session_core::{backends::redis::decode_value, SessionConfig, SessionStore};
use session_e2e::{actix_app::ActixDemo, axum_app};
use session_testkit::{http::Answer, RedisServer};

/// 64 bytes of cookie key material, shared by both demos (what `SESSION_SECRET` would give).
const KEY: &[u8; 64] = b"e2e-secret-e2e-secret-e2e-secret-e2e-secret-e2e-secret-e2e-12345";

/// The demos' store TTL without `key_expire` (one day), in seconds.
const DAY: i64 = 24 * 60 * 60;

/// Commands that change data; none of them may run for `/read`.
const WRITE_COMMANDS: &[&str] = &[
    "hset", "hmset", "hdel", "del", "unlink", "set", "eval", "evalsha", "expire", "pexpire",
    "persist", "getex",
];

/// Both demos on free loopback ports, each with its own store built from one configuration.
struct Demos {
    /// The store of the axum demo, for checks that look inside through the core API.
    store: SessionStore,
    actix: String,
    axum: String,
    actix_handle: ServerHandle,
}

impl Demos {
    async fn start(config: &SessionConfig) -> Demos {
        // What the demos' `run` does with `SESSION_REDIS_KEY_EXPIRE`.
        let sliding = config.key_expire_duration();

        let actix_store = SessionStore::from_config(config).await.unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let actix = format!("http://{}", listener.local_addr().unwrap());
        let server = ActixDemo::new(actix_store, KEY)
            .unwrap()
            .sliding_expiry(sliding)
            .workers(1)
            .serve(listener)
            .expect("start the actix demo");
        let actix_handle = server.handle();
        tokio::spawn(server);

        let store = SessionStore::from_config(config).await.unwrap();
        let app = axum_app::router(store.clone(), KEY, false, sliding);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let axum = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        Demos {
            store,
            actix,
            axum,
            actix_handle,
        }
    }
}

/// One redis-server and both demos on free loopback ports, backed by it.
struct Stack {
    redis: RedisServer,
    /// The store of the axum demo, for checks that look inside through the core API.
    store: SessionStore,
    actix: String,
    axum: String,
    actix_handle: ServerHandle,
}

impl Stack {
    /// Starts everything; `key_expire` is `session_redis_key_expire` in seconds.
    async fn start(key_expire: Option<u64>) -> Stack {
        Stack::start_with(key_expire, &[]).await
    }

    /// [`start`](Self::start) with more options (`(name, value)` pairs).
    async fn start_with(key_expire: Option<u64>, options: &[(&str, &str)]) -> Stack {
        let redis = RedisServer::start();
        let mut builder = SessionConfig::builder().set("session_redis_url", &redis.url());
        if let Some(secs) = key_expire {
            builder = builder.set("session_redis_key_expire", &secs.to_string());
        }
        for (name, value) in options {
            builder = builder.set(name, value);
        }
        let config = builder.build().expect("a valid configuration");
        let demos = Demos::start(&config).await;
        Stack {
            redis,
            store: demos.store,
            actix: demos.actix,
            axum: demos.axum,
            actix_handle: demos.actix_handle,
        }
    }

    /// Both demos' base URLs, named for messages.
    fn demos(&self) -> [(&'static str, &str); 2] {
        [("actix", &self.actix), ("axum", &self.axum)]
    }

    async fn stop(self) {
        self.actix_handle.stop(true).await;
    }

    /// The Redis key of the session a cookie pair (`id=...`) carries.
    fn redis_key(pair: &str) -> String {
        format!("session:{}", checks::session_id(pair, KEY).as_str())
    }

    fn exists(&self, pair: &str) -> bool {
        self.redis.cmd::<i64>(&["EXISTS", &Self::redis_key(pair)]) == 1
    }

    /// The stored value of the session a cookie pair carries (`GET`), `None` when the key is
    /// absent. Its tag changes with every write, so an unchanged value means no write.
    fn raw(&self, pair: &str) -> Option<Vec<u8>> {
        self.redis.cmd(&["GET", &Self::redis_key(pair)])
    }

    /// The session a cookie pair carries, as stored: each key to the JSON text of its value.
    /// Panics unless the key holds a session in the one-string layout.
    fn stored(&self, pair: &str) -> BTreeMap<String, String> {
        let key = Self::redis_key(pair);
        let raw = self
            .raw(pair)
            .unwrap_or_else(|| panic!("no value at {key}"));
        decode_value(&raw)
            .unwrap_or_else(|err| panic!("{key} is not a stored session: {err}"))
            .into_iter()
            .collect()
    }

    fn session_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.redis.cmd(&["KEYS", "session:*"]);
        keys.sort();
        keys
    }

    /// A connection for command statistics, opened once so that its own set-up commands are
    /// not counted.
    fn stats(&self) -> Stats {
        Stats(self.redis.connection())
    }
}

/// Command statistics on one connection.
struct Stats(redis::Connection);

impl Stats {
    fn reset(&mut self) {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query::<()>(&mut self.0)
            .unwrap();
    }

    /// Calls per command since the last reset, without the statistics commands themselves.
    fn calls(&mut self) -> BTreeMap<String, u64> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.0)
            .unwrap();
        parse_commandstats(&info)
            .into_iter()
            .filter(|(name, _)| !name.starts_with("config") && name != "info")
            .collect()
    }
}

/// `cmdstat_hgetall:calls=1,usec=...` lines into `{"hgetall": 1}`.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

fn calls(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Write commands run so far on `redis` (cumulative, for `checks::read_writes_nothing`).
fn write_calls(redis: &RedisServer) -> usize {
    let info: String = redis.cmd(&["INFO", "commandstats"]);
    parse_commandstats(&info)
        .iter()
        .filter(|(name, _)| WRITE_COMMANDS.contains(&name.as_str()))
        .map(|(_, calls)| *calls as usize)
        .sum()
}

async fn get(base: &str, path: &str, cookie: Option<&str>) -> Answer {
    send("GET", &format!("{base}{path}"), cookie, None).await
}

async fn post(base: &str, path: &str, cookie: Option<&str>) -> Answer {
    send("POST", &format!("{base}{path}"), cookie, None).await
}

/// A new session with `n` = 1 on `base`; its cookie pair.
async fn new_session(base: &str) -> String {
    let res = get(base, "/counter", None).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (StatusCode::OK, "1"),
        "{res:?}"
    );
    res.cookie_pair()
}

/// Item 1: Every route of the contract, on one demo backed by Redis (no `key_expire`: the demos'
/// one-day TTL, refreshed on writes).
///
/// `writes` counts the store's writes; `backend` is the name `/healthz` must report.
async fn contract(base: &str, store: &SessionStore, writes: &dyn Fn() -> usize, backend: &str) {
    checks::counter(base).await;
    checks::read_writes_nothing(base, writes).await;
    checks::login_renews_and_whoami(base, base, KEY, Some(store)).await;
    checks::logout(base, KEY, Some(store)).await;
    checks::tampered_cookie(base).await;
    let json = checks::healthz(base, true).await;
    assert_eq!(json["backends"][0]["name"], backend, "{json}");
    assert_eq!(json["backends"][0]["up"], true, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_actix_backed_by_redis() {
    let stack = Stack::start(None).await;
    let writes = || write_calls(&stack.redis);
    contract(&stack.actix, &stack.store, &writes, "redis").await;
    assert!(!stack.session_keys().is_empty(), "sessions live in Redis");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_axum_backed_by_redis() {
    let stack = Stack::start(None).await;
    let writes = || write_calls(&stack.redis);
    contract(&stack.axum, &stack.store, &writes, "redis").await;
    assert!(!stack.session_keys().is_empty(), "sessions live in Redis");
    stack.stop().await;
}

/// A fingerprint of every file under `dir` (path, size, modification time): it changes
/// whenever the file store writes, so it stands in for a write counter.
fn file_store_fingerprint(dir: &std::path::Path) -> usize {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                entries.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    entries.sort();
    entries.hash(&mut hasher);
    hasher.finish() as usize
}

/// The same contract with Redis disabled (the file store), and a session shared across the
/// two frameworks through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_both_backed_by_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = SessionConfig::builder()
        .set("session_redis_mode", "disabled")
        .set("session_filestore_path", dir.path().to_str().unwrap())
        .build()
        .unwrap();
    let demos = Demos::start(&config).await;
    let writes = || file_store_fingerprint(dir.path());
    for base in [&demos.actix, &demos.axum] {
        contract(base, &demos.store, &writes, demos.store.backend_name()).await;
    }
    checks::login_renews_and_whoami(&demos.actix, &demos.axum, KEY, Some(&demos.store)).await;
    checks::login_renews_and_whoami(&demos.axum, &demos.actix, KEY, Some(&demos.store)).await;
    demos.actix_handle.stop(true).await;
}

/// Item 2: One cookie, one key, one Redis: a login on either server is seen by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_on_one_framework_whoami_on_the_other() {
    let stack = Stack::start(Some(600)).await;
    checks::login_renews_and_whoami(&stack.actix, &stack.axum, KEY, Some(&stack.store)).await;
    checks::login_renews_and_whoami(&stack.axum, &stack.actix, KEY, Some(&stack.store)).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_alternating_between_the_servers_is_one_counter() {
    let stack = Stack::start(None).await;
    let mut cookie = new_session(&stack.actix).await;
    let first_key = Stack::redis_key(&cookie);
    for (n, base) in [&stack.axum, &stack.actix, &stack.axum, &stack.actix]
        .into_iter()
        .enumerate()
    {
        let res = get(base, "/counter", Some(&cookie)).await;
        let expected = (n + 2).to_string();
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, expected.as_str()),
            "{base}: {res:?}"
        );
        // actix re-sends the cookie when the session changes; it must be the same session.
        if let [_] = res.set_cookie.as_slice() {
            cookie = res.cookie_pair();
        }
        assert_eq!(Stack::redis_key(&cookie), first_key);
    }
    assert_eq!(stack.session_keys(), vec![first_key.clone()]);
    assert_eq!(
        stack.stored(&cookie),
        BTreeMap::from([("n".into(), "5".into())])
    );
    for (name, base) in stack.demos() {
        let res = get(base, "/read", Some(&cookie)).await;
        assert_eq!(res.body, "5", "{name}");
    }
    stack.stop().await;
}

/// Item 3: Login renews the id and deletes the old key; logout deletes the key and the old cookie
/// stops working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_and_logout_remove_the_redis_keys() {
    let stack = Stack::start(None).await;
    for (name, base) in stack.demos() {
        let before = new_session(base).await;
        assert!(stack.exists(&before), "{name}");
        let after = checks::login(base, Some(&before), "alice").await;
        assert_ne!(
            Stack::redis_key(&before),
            Stack::redis_key(&after),
            "{name}: login keeps the id"
        );
        assert!(
            !stack.exists(&before),
            "{name}: the old id's key survives the renewal"
        );
        assert_eq!(
            stack.stored(&after),
            BTreeMap::from([
                ("n".into(), "1".into()),
                ("user".into(), "\"alice\"".into())
            ]),
            "{name}: data kept under the new id"
        );
        assert_eq!(
            stack.session_keys(),
            vec![Stack::redis_key(&after)],
            "{name}"
        );
        let res = get(base, "/whoami", Some(&before)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{name}: {res:?}");

        let res = post(base, "/logout", Some(&after)).await;
        assert_eq!(res.status, StatusCode::OK, "{name}: {res:?}");
        assert!(!stack.exists(&after), "{name}: logout leaves the key");
        assert!(stack.session_keys().is_empty(), "{name}");
        for (other, other_base) in stack.demos() {
            let res = get(other_base, "/whoami", Some(&after)).await;
            assert_eq!(
                res.status,
                StatusCode::UNAUTHORIZED,
                "{name} logout, {other} whoami: {res:?}"
            );
        }
    }
    stack.stop().await;
}

/// Item 4 (axum): A handler that never touches the session costs no Redis command, even with a
/// valid session cookie and sliding expiry on: the session is loaded lazily.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_route_without_session_makes_no_redis_command() {
    let stack = Stack::start(Some(60)).await;
    let cookie = new_session(&stack.axum).await;
    let mut stats = stack.stats();
    for cookie in [Some(cookie.as_str()), None] {
        stats.reset();
        let res = get(&stack.axum, "/", cookie).await;
        assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "hello"));
        assert!(res.set_cookie.is_empty(), "{res:?}");
        assert_eq!(stats.calls(), calls(&[]), "cookie: {}", cookie.is_some());
    }
    // The statistics do see a request that uses the session (the check above is not blind).
    stats.reset();
    get(&stack.axum, "/read", Some(&cookie)).await;
    assert_eq!(stats.calls(), calls(&[("getex", 1)]));
    stack.stop().await;
}

/// Item 4 (actix): actix-session loads the session in its middleware before any handler runs, so a
/// route inside the session scope costs one load whenever a cookie comes with the request,
/// used or not. What the demo guarantees: no load without a cookie, exactly one `GET` and
/// no write with one, and `/healthz` (outside the scope) makes only its `PING`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_route_without_session_costs_one_eager_load_and_healthz_only_pings() {
    let stack = Stack::start(None).await;
    let cookie = new_session(&stack.actix).await;
    let mut stats = stack.stats();

    stats.reset();
    let res = get(&stack.actix, "/", None).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "hello"));
    assert_eq!(stats.calls(), calls(&[]), "no cookie, no load");

    stats.reset();
    let res = get(&stack.actix, "/", Some(&cookie)).await;
    assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "hello"));
    assert!(res.set_cookie.is_empty(), "{res:?}");
    assert_eq!(stats.calls(), calls(&[("get", 1)]), "one eager load");

    stats.reset();
    let res = get(&stack.actix, "/healthz", Some(&cookie)).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    assert_eq!(
        stats.calls(),
        calls(&[("ping", 1)]),
        "the health check only"
    );
    stack.stop().await;
}

/// Item 5: `/read` writes nothing and, with sliding expiry (`key_expire` 60), resets the TTL with
/// exactly one `GET` and one `PEXPIRE` (which the backend sends as one pipeline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_writes_nothing_and_slides_the_ttl_in_one_pipeline() {
    let stack = Stack::start(Some(60)).await;
    let mut stats = stack.stats();
    for (name, base) in stack.demos() {
        let cookie = new_session(base).await;
        let key = Stack::redis_key(&cookie);
        assert_eq!(
            stack.stored(&cookie),
            BTreeMap::from([("n".into(), "1".into())]),
            "{name}"
        );
        let before = stack.raw(&cookie);
        let _: i64 = stack.redis.cmd(&["PEXPIRE", &key, "5000"]);

        stats.reset();
        let res = get(base, "/read", Some(&cookie)).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, "1"),
            "{name}"
        );
        let seen = stats.calls();
        assert_eq!(
            seen,
            calls(&[("getex", 1)]),
            "{name}: /read must cost one load-and-touch and no write"
        );
        let pttl: i64 = stack.redis.cmd(&["PTTL", &key]);
        assert!(
            (55_000..=60_000).contains(&pttl),
            "{name}: PTTL {pttl} ms after /read, expected about 60 s"
        );
        assert_eq!(
            stack.raw(&cookie),
            before,
            "{name}: /read changed the stored value (its content or its tag)"
        );
    }
    stack.stop().await;
}

/// Item 6: after `/counter` on each demo, the key's TTL (seconds) lies in `expected`.
async fn ttl_after_counter(key_expire: Option<u64>, expected: std::ops::RangeInclusive<i64>) {
    let stack = Stack::start(key_expire).await;
    for (name, base) in stack.demos() {
        let cookie = new_session(base).await;
        let res = get(base, "/counter", Some(&cookie)).await;
        assert_eq!(res.body, "2", "{name}");
        let ttl: i64 = stack.redis.cmd(&["TTL", &Stack::redis_key(&cookie)]);
        assert!(
            expected.contains(&ttl),
            "{name}: TTL {ttl}, expected {expected:?}"
        );
    }
    stack.stop().await;
}

/// Item 6: The key's TTL is `session_redis_key_expire` when set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_follows_key_expire() {
    ttl_after_counter(Some(120), 115..=120).await;
}

/// Item 6: Without `key_expire`, the TTL is the demos' session TTL (one day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_without_key_expire_is_the_demo_session_ttl() {
    ttl_after_counter(None, DAY - 5..=DAY).await;
}

/// Item 7: A tampered cookie is a fresh session (a new Redis key), never a 500; the real session
/// is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_cookie_is_a_fresh_session() {
    let stack = Stack::start(Some(600)).await;
    for (name, base) in stack.demos() {
        let cookie = checks::login(base, None, "mallory").await;
        let real = stack.stored(&cookie);
        let bad = checks::tamper(&cookie);
        let res = get(base, "/whoami", Some(&bad)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{name}: {res:?}");
        let res = get(base, "/counter", Some(&bad)).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (StatusCode::OK, "1"),
            "{name}"
        );
        let fresh = res.cookie_pair();
        assert_ne!(
            Stack::redis_key(&fresh),
            Stack::redis_key(&cookie),
            "{name}"
        );
        assert!(stack.exists(&fresh), "{name}");
        assert_eq!(
            stack.stored(&cookie),
            real,
            "{name}: the real session changed"
        );
        checks::tampered_cookie(base).await;
    }
    stack.stop().await;
}

/// Item 8: Redis killed: 503 (never a panic or a 500); Redis restarted: 200 again, same demos.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_503_and_recovers_without_restarting_the_demos() {
    let stack = Stack::start(None).await;
    let cookies: Vec<String> = {
        let mut cookies = Vec::new();
        for (_, base) in stack.demos() {
            cookies.push(checks::login(base, None, "dave").await);
        }
        cookies
    };

    stack.redis.kill();
    for ((name, base), cookie) in stack.demos().into_iter().zip(&cookies) {
        let res = get(base, "/counter", None).await;
        assert_eq!(
            res.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {res:?}"
        );
        checks::outage(base, cookie).await;
    }

    stack.redis.restart();
    for (name, base) in stack.demos() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let health = get(base, "/healthz", None).await;
            let counter = get(base, "/counter", None).await;
            if health.status == StatusCode::OK && counter.status == StatusCode::OK {
                assert_eq!(counter.body, "1", "{name}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} did not recover within 5 s: {health:?} {counter:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        checks::healthz(base, true).await;
    }
    // The restarted server starts empty: the old cookies are worth a fresh session, not an error.
    for ((name, base), cookie) in stack.demos().into_iter().zip(&cookies) {
        let res = get(base, "/whoami", Some(cookie)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{name}: {res:?}");
    }
    stack.stop().await;
}

/// Redis hung (`SIGSTOP`: the port accepts connections, nothing answers) under a burst of
/// requests, half of them dropped by their clients after 100 ms: every request that waits
/// gets a 503, none hangs (each is guarded by a timeout far above `socket_timeout`, 0.5 s
/// here), and once Redis answers again the same demos serve the same sessions, without a
/// restart. The default connection strategy, one shared multiplexed connection, and a pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_under_a_burst_is_503_for_every_request_and_recovers() {
    const GUARD: Duration = Duration::from_secs(30);
    const BURST: usize = 40;
    for pool in [None, Some("4")] {
        let mut options = vec![
            ("session_redis_socket_timeout", "0.5"),
            ("session_redis_socket_connect_timeout", "0.5"),
        ];
        if let Some(size) = pool {
            options.push(("session_redis_max_connections", size));
        }
        let stack = Stack::start_with(Some(600), &options).await;
        let mut cookies = Vec::new();
        for (_, base) in stack.demos() {
            cookies.push(checks::login(base, None, "dave").await);
        }

        stack.redis.pause();
        for ((name, base), cookie) in stack.demos().into_iter().zip(&cookies) {
            let mut requests = Vec::new();
            for i in 0..BURST {
                let (url, cookie) = (format!("{base}/counter"), cookie.clone());
                requests.push(tokio::spawn(async move {
                    let sending = send("GET", &url, Some(&cookie), None);
                    if i % 2 == 0 {
                        // A client that gives up: the server sees the connection dropped.
                        let _ = tokio::time::timeout(Duration::from_millis(100), sending).await;
                        None
                    } else {
                        Some(tokio::time::timeout(GUARD, sending).await)
                    }
                }));
            }
            for answer in join_all(requests).await {
                match answer.unwrap() {
                    None => {}
                    Some(Ok(res)) => assert_eq!(
                        res.status,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "{name}, pool {pool:?}: {res:?}"
                    ),
                    Some(Err(_)) => panic!("{name}, pool {pool:?}: no answer within {GUARD:?}"),
                }
            }
        }

        stack.redis.resume();
        for ((name, base), cookie) in stack.demos().into_iter().zip(&cookies) {
            let mut whoami = None;
            for _ in 0..50 {
                let res = get(base, "/whoami", Some(cookie)).await;
                if res.status == StatusCode::OK {
                    whoami = Some(res.body);
                    break;
                }
                assert_eq!(
                    res.status,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "{name}, pool {pool:?}: {res:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(
                whoami.as_deref(),
                Some("dave"),
                "{name}, pool {pool:?}: no recovery"
            );
        }
        stack.stop().await;
    }
}

/// Anonymous requests cost the store nothing it keeps: a flood of requests that do not write
/// their session (no cookie, garbage, a tampered seal, the valid cookie of a session logged
/// out, a fresh valid cookie per request), to every route that does not store (`/read`,
/// `/whoami`, `/`, `/app`, `/healthz`, a logout, a logout everywhere), through both demos
/// with the session index on, leaves Redis exactly as it was: no session, no index entry,
/// no other key. An empty session is never written (`SessionStore::create`), whatever the
/// framework asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_that_write_nothing_store_nothing() {
    let stack = Stack::start_with(Some(600), &[("session_redis_index_key", "user")]).await;
    let mut logged_out = Vec::new();
    for (_, base) in stack.demos() {
        let cookie = checks::login(base, None, "erin").await;
        let res = post(base, "/logout", Some(&cookie)).await;
        assert_eq!(res.status, StatusCode::OK, "{res:?}");
        logged_out.push(cookie);
    }
    let keys_before: i64 = stack.redis.cmd(&["DBSIZE"]);
    for (name, base) in stack.demos() {
        for round in 0..20 {
            let cookies = [
                None,
                Some("id=garbage".to_owned()),
                Some(checks::tamper(&logged_out[round % 2])),
                Some(logged_out[round % 2].clone()),
                // A valid cookie of a session never stored, new each round.
                Some(checks::seal(&session_core::SessionId::generate(), KEY)),
            ];
            for cookie in &cookies {
                for (method, path) in [
                    ("GET", "/read"),
                    ("GET", "/whoami"),
                    ("GET", "/"),
                    ("GET", "/app"),
                    ("GET", "/healthz"),
                    ("POST", "/logout"),
                    ("POST", "/logout-everywhere"),
                ] {
                    let res = send(method, &format!("{base}{path}"), cookie.as_deref(), None).await;
                    assert!(
                        res.status.is_success() || res.status.is_client_error(),
                        "{name} {method} {path}: {res:?}"
                    );
                }
            }
        }
    }
    let keys_after: i64 = stack.redis.cmd(&["DBSIZE"]);
    assert_eq!(keys_after, keys_before, "keys stored by anonymous requests");
    stack.stop().await;
}

/// `POST /logout-everywhere` (the session index, `session_redis_index_key = user`): alice on
/// three devices, two through actix and one through axum, and bob on one. Alice logs out
/// everywhere from axum: all three of her sessions end on both frameworks, bob's stays; the
/// route asks for a login first, says when no index is configured, and answers 503 while
/// Redis is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_ends_every_session_of_the_user_on_both_frameworks() {
    let redis = RedisServer::start();
    let config = SessionConfig::builder()
        .set("session_redis_url", &redis.url())
        .set("session_redis_index_key", "user")
        .build()
        .unwrap();
    let demos = Demos::start(&config).await;
    let alice = [
        checks::login(&demos.actix, None, "alice").await,
        checks::login(&demos.actix, None, "alice").await,
        checks::login(&demos.axum, None, "alice").await,
    ];
    let bob = checks::login(&demos.axum, None, "bob").await;

    for base in [&demos.actix, &demos.axum] {
        let res = post(base, "/logout-everywhere", None).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{base}: {res:?}");
    }
    let res = post(&demos.axum, "/logout-everywhere", Some(&alice[2])).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (StatusCode::OK, "logged out of 3 session(s)")
    );
    for cookie in &alice {
        for base in [&demos.actix, &demos.axum] {
            let res = get(base, "/whoami", Some(cookie)).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{base}: {res:?}");
        }
    }
    for base in [&demos.actix, &demos.axum] {
        let res = get(base, "/whoami", Some(&bob)).await;
        assert_eq!((res.status, res.body.as_str()), (StatusCode::OK, "bob"));
    }
    // From actix too, and a user name that is not a plain word.
    let eve = checks::login(&demos.axum, None, "eve \"<admin>\"").await;
    let res = post(&demos.actix, "/logout-everywhere", Some(&eve)).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (StatusCode::OK, "logged out of 1 session(s)")
    );
    let res = get(&demos.axum, "/whoami", Some(&bob)).await;
    assert_eq!(res.status, StatusCode::OK);

    // Without an index configured: said so, nothing deleted.
    let plain = SessionConfig::builder()
        .set("session_redis_url", &redis.url())
        .build()
        .unwrap();
    let unindexed = Demos::start(&plain).await;
    for base in [&unindexed.actix, &unindexed.axum] {
        let res = post(base, "/logout-everywhere", Some(&bob)).await;
        assert_eq!(res.status, StatusCode::NOT_IMPLEMENTED, "{base}: {res:?}");
        assert!(res.body.contains("SESSION_REDIS_INDEX_KEY"), "{res:?}");
    }
    let res = get(&demos.axum, "/whoami", Some(&bob)).await;
    assert_eq!(res.status, StatusCode::OK);

    redis.kill();
    for base in [&demos.actix, &demos.axum] {
        let res = post(base, "/logout-everywhere", Some(&bob)).await;
        assert_eq!(
            res.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{base}: {res:?}"
        );
    }
    unindexed.actix_handle.stop(true).await;
    demos.actix_handle.stop(true).await;
}
