//! Both demos started the way their binaries start: the store built by
//! `session_e2e::build_store` from the process environment, one store per demo as two
//! processes would have.

use actix_web::dev::ServerHandle;
use session_core::Mode;
use session_e2e::{actix_app::ActixDemo, axum_app, build_store};

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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let actix = format!("http://{}", listener.local_addr().unwrap());
    let server = ActixDemo::new(actix_store, key)
        .unwrap()
        .workers(1)
        .serve(listener)
        .expect("start the actix demo");
    let actix_handle = server.handle();
    tokio::spawn(server);

    let (_, axum_store) = build_store().await.unwrap();
    let app = axum_app::router(axum_store, key, false, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let axum = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    EnvDemos {
        actix,
        axum,
        actix_handle,
    }
}
