//! The axum demo server: the HTTP contract of the README over session-axum.
//!
//! ```text
//! SESSION_SECRET=$(head -c 48 /dev/urandom | base64) cargo run --example axum_demo -- --addr 127.0.0.1:8080
//! ```

use std::process::ExitCode;

use clap::Parser;
use session_e2e::{
    axum_app, build_store, cookie_key_material, cookie_secure, init_logging, DemoArgs,
};

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let args = DemoArgs::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: DemoArgs) -> Result<(), String> {
    let key_material = cookie_key_material()?;
    let (config, store) = build_store().await?;
    let app = axum_app::router(
        store,
        &key_material,
        cookie_secure(),
        config.key_expire_duration(),
    );
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    tracing::info!(addr = %args.addr, "axum demo listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))
}
