//! The actix-web demo server. See `session_e2e::actix_app` for the HTTP contract and
//! `session_e2e` for the configuration it reads.
//!
//! ```text
//! cargo run --example actix_demo -- --addr 127.0.0.1:8080
//! ```

use std::process::ExitCode;

use clap::Parser;
use session_e2e::{actix_app, exit_code, init_logging, DemoArgs};

#[actix_web::main]
async fn main() -> ExitCode {
    init_logging();
    exit_code(actix_app::run(DemoArgs::parse()).await)
}
