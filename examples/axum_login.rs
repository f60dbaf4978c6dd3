//! axum-login over tower-sessions over our store (`session_axum::TowerStore`). See
//! `session_e2e::axum_login_app` for the routes and demo users; it reads the same configuration
//! as the other demos (the file store when nothing is configured).
//!
//! ```text
//! cargo run --example axum_login
//! curl -c jar -b jar -d user=alice -d password=wonderland http://127.0.0.1:8080/login
//! curl -c jar -b jar http://127.0.0.1:8080/protected
//! ```

use std::process::ExitCode;

use clap::Parser;
use session_e2e::{axum_login_app, exit_code, init_logging, DemoArgs};

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    exit_code(axum_login_app::run(DemoArgs::parse()).await)
}
