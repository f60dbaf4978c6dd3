//! The axum demo server. See `session_e2e::axum_app` for the HTTP contract and `session_e2e`
//! for the configuration it reads.
//!
//! ```text
//! SESSION_SECRET=$(head -c 48 /dev/urandom | base64) cargo run --example axum_demo -- --addr 127.0.0.1:8080
//! ```

use std::process::ExitCode;

use clap::Parser;
use session_e2e::{axum_app, exit_code, init_logging, DemoArgs};

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    exit_code(axum_app::run(DemoArgs::parse()).await)
}
