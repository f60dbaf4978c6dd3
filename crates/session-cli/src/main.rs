//! `sessionctl`: the operator's command line for the session store.
//!
//! It reads exactly the configuration the application reads (session-core's loading:
//! `SESSION_CONFIG`, `SESSION_REDIS_*`, or `--config FILE`), and does every session
//! operation through session-core's own backends, so it behaves as the application does.
//! Every command and flag: `docs/sessionctl.md`.

/// `println!` that gives the write's error (a [`failure::Failure`]) instead of panicking:
/// stdout is often a pipe whose reader may be gone (`sessionctl stats | head -1`), and a
/// panic there said nothing of whether the command had done its work.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::failure::Failure::output)
    }};
}

/// `eprintln!` that never panics: stderr can be a pipe whose reader is gone (a log collector
/// that stopped, a `| head` that had its lines), and `eprintln!` then panicked
/// with exit status 101, after the command had done its work or with its failure unsaid. A
/// message that cannot be written is lost; the exit status still tells.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
mod cmd;
mod failure;
mod ids;
mod load;
mod parts;
mod progress;
mod scan;
mod text;

use std::process::ExitCode;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::from_env();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            err!("sessionctl: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Messages can quote what a server said or a key it holds: escaped like the
            // commands' own output, so no error can drive the terminal. A server that does
            // not know a command repeats its arguments, session keys among them: cut, here
            // where every failure passes, whichever command and path it came from.
            let message = session_core::without_echoed_arguments(&failure.message);
            for line in message.lines() {
                err!("sessionctl: {}", text::printable(line));
            }
            ExitCode::from(failure.status)
        }
    }
}

async fn run(cli: Cli) -> Result<(), failure::Failure> {
    let json = cli.json;
    let config = cli.config.as_deref();
    match cli.command {
        Command::Check => cmd::check::run(config, json).await,
        Command::Stats(args) => cmd::stats::run(config, json, args).await,
        Command::Show(args) => cmd::show::run(config, json, args).await,
        Command::Revoke(args) => cmd::revoke::run(config, json, args).await,
        Command::Migrate(args) => cmd::migrate::run(json, args).await,
        Command::Export(args) => cmd::transfer::export(config, args).await,
        Command::Import(args) => cmd::transfer::import(config, json, args).await,
        Command::Reindex(args) => cmd::reindex::run(config, json, args).await,
        Command::PruneIndex(args) => cmd::prune_index::run(config, json, args).await,
    }
}
