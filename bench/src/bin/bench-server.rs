//! One HTTP bench server: a contender's session middleware over Redis, or the floor (no session),
//! on one worker (actix) or a current-thread runtime (axum), so that its CPU time per request is
//! the cost of one request on one core.
//!
//! Routes, all `GET`:
//! * `/seed?keys=K&bytes=B`: a new session holding `n = 0` and `K` keys (`k00`, `k01`, ...) whose
//!   JSON value is `B` bytes long; answers with the session cookie. The bench driver calls it to
//!   make the sessions it replays.
//! * `/read`: reads `n`.
//! * `/write`: reads `n`, stores `n + 1` (one key changed).
//!
//! `scripts/bench_http.sh` builds and drives it; see `docs/benchmarks.md`.

use std::{collections::HashMap, time::Duration};

use clap::{Parser, ValueEnum};

/// Session TTL of every contender.
const TTL: Duration = Duration::from_secs(3600);

/// The cookie key of the contenders that seal their cookie (64 bytes, as `Key::from` wants).
const KEY: [u8; 64] = [7; 64];

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Contender {
    /// actix-web without any session middleware: the cost of the HTTP stack alone.
    Floor,
    /// actix-session's `SessionMiddleware` over its own `RedisSessionStore`.
    ActixSession,
    /// actix-session's `SessionMiddleware` over `session_actix::ActixStore`, with `request_scope`.
    OursActix,
    /// tower-sessions' `SessionManagerLayer` over tower-sessions-redis-store (fred).
    TowerSessions,
    /// `session_axum::SessionLayer`.
    OursAxum,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum)]
    contender: Contender,
    /// Listen address.
    #[arg(long)]
    addr: std::net::SocketAddr,
    /// The Redis server, `redis://127.0.0.1:PORT`.
    #[arg(long)]
    redis_url: String,
    /// Sliding expiry: every request that carries a session resets its TTL.
    #[arg(long)]
    sliding: bool,
}

/// The seed request's size: `keys` keys of `bytes` bytes of JSON each.
fn seed_size(query: &HashMap<String, String>) -> (usize, usize) {
    let number = |name: &str| {
        query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            // Bounded: the driver asks for at most 50 x 400.
            .min(1_000)
    };
    (number("keys"), number("bytes"))
}

/// A JSON string value of exactly `bytes` bytes (quotes included).
fn filler(bytes: usize) -> String {
    "x".repeat(bytes.saturating_sub(2))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.contender {
        Contender::Floor | Contender::ActixSession | Contender::OursActix => actix::run(args),
        Contender::TowerSessions | Contender::OursAxum => axum_server::run(args),
    }
}

mod actix {
    use std::collections::HashMap;

    use actix_session::{
        config::{PersistentSession, TtlExtensionPolicy},
        storage::{RedisSessionStore, SessionStore},
        Session, SessionMiddleware,
    };
    use actix_web::{
        cookie::{time, Key},
        middleware::from_fn,
        web, App, HttpResponse, HttpServer,
    };
    use session_actix::{request_scope, ActixStore};

    use super::{filler, seed_size, Args, Contender, KEY, TTL};

    async fn seed(session: Session, query: web::Query<HashMap<String, String>>) -> HttpResponse {
        let (keys, bytes) = seed_size(&query);
        let value = filler(bytes);
        for i in 0..keys {
            session
                .insert(format!("k{i:02}"), &value)
                .expect("a string");
        }
        session.insert("n", 0).expect("a number");
        HttpResponse::Ok().body("seeded")
    }

    async fn read(session: Session) -> HttpResponse {
        let n = session.get::<i64>("n").ok().flatten().unwrap_or(0);
        HttpResponse::Ok().body(n.to_string())
    }

    async fn write(session: Session) -> HttpResponse {
        let n = session.get::<i64>("n").ok().flatten().unwrap_or(0) + 1;
        session.insert("n", n).expect("a number");
        HttpResponse::Ok().body(n.to_string())
    }

    async fn floor_seed() -> HttpResponse {
        HttpResponse::Ok()
            .insert_header(("set-cookie", "id=floor; Path=/; HttpOnly"))
            .body("seeded")
    }

    async fn floor() -> HttpResponse {
        HttpResponse::Ok().body("0")
    }

    fn middleware<S: SessionStore + 'static>(
        store: S,
        policy: TtlExtensionPolicy,
    ) -> SessionMiddleware<S> {
        SessionMiddleware::builder(store, Key::from(&KEY))
            .cookie_secure(false)
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(time::Duration::seconds(TTL.as_secs() as i64))
                    .session_ttl_extension_policy(policy),
            )
            .build()
    }

    pub(super) fn run(args: Args) -> anyhow::Result<()> {
        actix_web::rt::System::new().block_on(serve(args))
    }

    async fn serve(args: Args) -> anyhow::Result<()> {
        let server = match args.contender {
            Contender::Floor => HttpServer::new(|| {
                App::new()
                    .route("/seed", web::get().to(floor_seed))
                    .route("/read", web::get().to(floor))
                    .route("/write", web::get().to(floor))
            })
            .workers(1)
            .bind(args.addr)?
            .run(),
            Contender::ActixSession => {
                let store = RedisSessionStore::new(&args.redis_url).await?;
                // actix-session slides only with `OnEveryRequest`: an `EXPIRE` after the `GET`.
                let policy = if args.sliding {
                    TtlExtensionPolicy::OnEveryRequest
                } else {
                    TtlExtensionPolicy::OnStateChanges
                };
                HttpServer::new(move || {
                    App::new()
                        .wrap(middleware(store.clone(), policy.clone()))
                        .route("/seed", web::get().to(seed))
                        .route("/read", web::get().to(read))
                        .route("/write", web::get().to(write))
                })
                .workers(1)
                .bind(args.addr)?
                .run()
            }
            Contender::OursActix => {
                let config = session_core::SessionConfig::builder()
                    .set("session_redis_url", &args.redis_url)
                    .build()?;
                let core = session_core::SessionStore::from_config(&config).await?;
                let mut store = ActixStore::new(core);
                if args.sliding {
                    // Our sliding expiry: the load refreshes the TTL in its own round trip.
                    store = store.sliding_expiry(TTL);
                }
                HttpServer::new(move || {
                    App::new()
                        .wrap(middleware(
                            store.clone(),
                            TtlExtensionPolicy::OnStateChanges,
                        ))
                        .wrap(from_fn(request_scope))
                        .route("/seed", web::get().to(seed))
                        .route("/read", web::get().to(read))
                        .route("/write", web::get().to(write))
                })
                .workers(1)
                .bind(args.addr)?
                .run()
            }
            Contender::TowerSessions | Contender::OursAxum => unreachable!("an axum contender"),
        };
        server.await?;
        Ok(())
    }
}

mod axum_server {
    use std::collections::HashMap;

    use axum::{extract::Query, routing::get, Router};
    use tower_sessions_redis_store::{
        fred::prelude::{ClientLike, Config},
        RedisStore,
    };

    use super::{filler, seed_size, Args, Contender, KEY, TTL};

    pub(super) fn run(args: Args) -> anyhow::Result<()> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(serve(args))
    }

    async fn serve(args: Args) -> anyhow::Result<()> {
        let app = match args.contender {
            Contender::TowerSessions => tower_sessions_app(&args).await?,
            Contender::OursAxum => ours_app(&args).await?,
            _ => unreachable!("an actix contender"),
        };
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        axum::serve(listener, app).await?;
        Ok(())
    }

    async fn tower_sessions_app(args: &Args) -> anyhow::Result<Router> {
        use tower_sessions::{cookie::time, Expiry, Session, SessionManagerLayer};

        async fn seed(
            session: Session,
            Query(query): Query<HashMap<String, String>>,
        ) -> &'static str {
            let (keys, bytes) = seed_size(&query);
            let value = filler(bytes);
            for i in 0..keys {
                session
                    .insert(&format!("k{i:02}"), &value)
                    .await
                    .expect("stored");
            }
            session.insert("n", 0).await.expect("stored");
            "seeded"
        }
        async fn read(session: Session) -> String {
            let n: i64 = session.get("n").await.ok().flatten().unwrap_or(0);
            n.to_string()
        }
        async fn write(session: Session) -> String {
            let n: i64 = session.get("n").await.ok().flatten().unwrap_or(0) + 1;
            session.insert("n", n).await.expect("stored");
            n.to_string()
        }

        // One connection, like our single multiplexed connection.
        let client = tower_sessions_redis_store::fred::prelude::Client::new(
            Config::from_url(&args.redis_url)?,
            None,
            None,
            None,
        );
        client.init().await?;
        // tower-sessions' defaults (a plain, unsigned cookie: its ids are 128 random bits);
        // `OnInactivity` sets the Redis expiry on every save, and `always_save` makes every
        // request a save, which is how tower-sessions slides.
        let layer = SessionManagerLayer::new(RedisStore::new(client))
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
                TTL.as_secs() as i64
            )))
            .with_always_save(args.sliding);
        Ok(Router::new()
            .route("/seed", get(seed))
            .route("/read", get(read))
            .route("/write", get(write))
            .layer(layer))
    }

    async fn ours_app(args: &Args) -> anyhow::Result<Router> {
        use session_axum::{Key, Session, SessionLayer};

        async fn seed(
            session: Session,
            Query(query): Query<HashMap<String, String>>,
        ) -> &'static str {
            let (keys, bytes) = seed_size(&query);
            let value = filler(bytes);
            for i in 0..keys {
                session
                    .insert(&format!("k{i:02}"), &value)
                    .await
                    .expect("stored");
            }
            session.insert("n", &0).await.expect("stored");
            "seeded"
        }
        async fn read(session: Session) -> String {
            let n: i64 = session.get("n").await.ok().flatten().unwrap_or(0);
            n.to_string()
        }
        async fn write(session: Session) -> String {
            let n: i64 = session.get("n").await.ok().flatten().unwrap_or(0) + 1;
            session.insert("n", &n).await.expect("stored");
            n.to_string()
        }

        let config = session_core::SessionConfig::builder()
            .set("session_redis_url", &args.redis_url)
            .build()?;
        let store = session_core::SessionStore::from_config(&config).await?;
        let layer = SessionLayer::new(store, Key::from(&KEY))
            .with_secure(false)
            .with_max_age(Some(TTL))
            .with_ttl(Some(TTL))
            .with_sliding_expiry(args.sliding);
        Ok(Router::new()
            .route("/seed", get(seed))
            .route("/read", get(read))
            .route("/write", get(write))
            .layer(layer))
    }
}
