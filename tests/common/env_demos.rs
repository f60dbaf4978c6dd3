//! Both demos started the way their binaries start: settings read from an environment (the
//! process's, or one given), one store per demo as two processes would have.

use actix_web::dev::ServerHandle;
use session_core::Mode;
use session_e2e::{actix_app::ActixDemo, axum_app, build_store, DemoEnv, DemoSettings};

/// Two running demos: base URLs, and the handle that stops the actix one.
pub struct EnvDemos {
    pub actix: String,
    pub axum: String,
    pub actix_handle: ServerHandle,
}

/// Starts both demos on free loopback ports with the cookie key `key`, after checking that
/// the environment selects `mode`.
pub async fn start(key: &[u8; 64], mode: Mode) -> EnvDemos {
    let (config, actix_store) = build_store().await.unwrap();
    assert_eq!(config.mode, mode);
    let (_, axum_store) = build_store().await.unwrap();
    serve(
        ActixDemo::new(actix_store, key).unwrap(),
        axum_app::router(axum_store, key, false, None),
    )
    .await
}

/// Starts both demos on free loopback ports with exactly the settings their binaries would
/// read from `env` (`SESSION_SECRET`, `SESSION_COOKIE_SECURE`, `SESSION_REDIS_*`, ...).
pub async fn start_in(env: &DemoEnv) -> EnvDemos {
    let settings = || async { DemoSettings::from_demo_env(env).await.unwrap() };
    let actix = ActixDemo::from_settings(settings().await).unwrap();
    serve(actix, axum_app::router_from_settings(settings().await)).await
}

async fn serve(actix: ActixDemo, axum_app: axum::Router) -> EnvDemos {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let actix_base = format!("http://{}", listener.local_addr().unwrap());
    let server = actix
        .workers(1)
        .serve(listener)
        .expect("start the actix demo");
    let actix_handle = server.handle();
    tokio::spawn(server);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let axum = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, axum_app).await.unwrap() });
    EnvDemos {
        actix: actix_base,
        axum,
        actix_handle,
    }
}
