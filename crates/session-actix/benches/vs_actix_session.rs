//! Our store against actix-session's own `RedisSessionStore` (the peer), in the same run, on
//! the same redis-server, through the same actix-web middleware: requests per second and Redis
//! commands per request.
//!
//! Two requests of an existing, logged-in session, both with sliding expiry (the session TTL is
//! refreshed on every request):
//! * `read`: reads one key, changes nothing. The peer needs `TtlExtensionPolicy::OnEveryRequest`
//!   for sliding expiry, which costs a second round trip (`GET`, then `EXPIRE`); ours refreshes
//!   the TTL in the load's own command (`GETEX` with `PX`).
//! * `write`: increments a counter. Both make two round trips (load, then write); the peer
//!   sends the whole state and its `SET` overwrites whatever is stored, ours (a script) adds
//!   only the changed key's record to the stored value (rewriting it whole, if still the value
//!   loaded, once the records outweigh the session), so a concurrent change of another key is
//!   kept.
//!
//! `cargo bench -p session-actix --bench vs_actix_session`; results in `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use actix_session::{
    config::{PersistentSession, TtlExtensionPolicy},
    storage::{RedisSessionStore, SessionStore},
    Session, SessionMiddleware,
};
use actix_web::{
    cookie::{time, Cookie, Key},
    dev::{Service, ServiceResponse},
    middleware::from_fn,
    test, web, App, HttpResponse,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use session_actix::{request_scope, ActixStore};
use session_core::{SessionConfig, SessionStore as CoreStore};
use session_testkit::RedisServer;

const CONCURRENCY: [u64; 2] = [1, 16];
const TTL_SECS: i64 = 3600;

async fn read(session: Session) -> HttpResponse {
    let n = session.get::<i64>("n").unwrap_or_default().unwrap_or(0);
    HttpResponse::Ok().body(n.to_string())
}

async fn write(session: Session) -> HttpResponse {
    let n = session.get::<i64>("n").unwrap_or_default().unwrap_or(0) + 1;
    session.insert("n", n).expect("serialisable");
    HttpResponse::Ok().body(n.to_string())
}

fn middleware<S: SessionStore + 'static>(
    store: S,
    policy: TtlExtensionPolicy,
) -> SessionMiddleware<S> {
    SessionMiddleware::builder(store, Key::from(&[7u8; 64]))
        .cookie_secure(false)
        .session_lifecycle(
            PersistentSession::default()
                .session_ttl(time::Duration::seconds(TTL_SECS))
                .session_ttl_extension_policy(policy),
        )
        .build()
}

/// Which store sits under actix-session's middleware.
#[derive(Clone, Copy)]
enum Contender {
    Peer,
    Ours,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Peer => "actix-session RedisSessionStore",
            Contender::Ours => "session-actix ActixStore",
        }
    }
}

/// Sends `count` requests to `path` with `cookie`, `tasks` at a time, and returns the wall time.
async fn drive<S>(app: &S, path: &str, cookie: &Cookie<'static>, count: u64, tasks: u64) -> Duration
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let started = Instant::now();
    let workers = (0..tasks).map(|task| async move {
        let share = count / tasks + u64::from(task < count % tasks);
        for _ in 0..share {
            let req = test::TestRequest::get()
                .uri(path)
                .cookie(cookie.clone())
                .to_request();
            let res = test::call_service(app, req).await;
            assert!(res.status().is_success(), "{path}: {}", res.status());
        }
    });
    futures_util::future::join_all(workers).await;
    started.elapsed()
}

/// Two counters of the server's `INFO stats`: commands executed (including those run inside
/// scripts) and reads from client sockets (with one request at a time, each read is one
/// round trip: a pipeline arrives in one read).
fn counters(server: &RedisServer) -> (u64, u64) {
    let info: String = server.cmd(&["INFO", "stats"]);
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in INFO stats"))
    };
    (
        field("total_commands_processed:"),
        field("total_reads_processed:"),
    )
}

/// Measures one contender: Redis commands per request, then requests per second.
fn measure<S>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    system: &actix_web::rt::SystemRunner,
    server: &RedisServer,
    name: &str,
    service: S,
) where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    // One session to work on, with a counter in it.
    let cookie = system.block_on(async {
        let res = test::call_service(
            &service,
            test::TestRequest::get().uri("/write").to_request(),
        )
        .await;
        res.response()
            .cookies()
            .next()
            .expect("session cookie")
            .into_owned()
    });
    for path in ["/read", "/write"] {
        const REQUESTS: u64 = 200;
        let (commands, reads) = counters(server);
        system.block_on(drive(&service, path, &cookie, REQUESTS, 1));
        let (commands_after, reads_after) = counters(server);
        // The second INFO call counts once in each counter.
        let per_request = |before: u64, after: u64| (after - before - 1) as f64 / REQUESTS as f64;
        eprintln!(
            "{name:<34} {path:<7} {:.2} round trips, {:.2} Redis commands (scripts included) per request",
            per_request(reads, reads_after),
            per_request(commands, commands_after),
        );
    }
    for tasks in CONCURRENCY {
        for path in ["/read", "/write"] {
            group.throughput(Throughput::Elements(1));
            group.bench_function(
                BenchmarkId::new(format!("{name}{path}"), format!("{tasks} tasks")),
                |b| {
                    b.iter_custom(|iters| {
                        system.block_on(drive(&service, path, &cookie, iters, tasks))
                    })
                },
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start();
    let system = actix_web::rt::System::new();
    let mut group = c.benchmark_group("actix_requests");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    let peer = system.block_on(async {
        let store = RedisSessionStore::new(server.url())
            .await
            .expect("peer store");
        test::init_service(
            App::new()
                .wrap(middleware(store, TtlExtensionPolicy::OnEveryRequest))
                .route("/read", web::get().to(read))
                .route("/write", web::get().to(write)),
        )
        .await
    });
    measure(&mut group, &system, &server, Contender::Peer.name(), peer);

    let ours = system.block_on(async {
        let config = SessionConfig::builder()
            .set("session_redis_url", &server.url())
            .build()
            .expect("config");
        let core = CoreStore::from_config(&config).await.expect("store");
        let store = ActixStore::new(core).sliding_expiry(Duration::from_secs(TTL_SECS as u64));
        test::init_service(
            App::new()
                .wrap(middleware(store, TtlExtensionPolicy::OnStateChanges))
                .wrap(from_fn(request_scope))
                .route("/read", web::get().to(read))
                .route("/write", web::get().to(write)),
        )
        .await
    });
    measure(&mut group, &system, &server, Contender::Ours.name(), ours);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
