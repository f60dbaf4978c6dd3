//! The command line, as clap reads it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use session_core::SessionId;

impl Cli {
    /// Parses the process' arguments, exiting with clap's message (status 2) when they are
    /// wrong.
    pub fn from_env() -> Self {
        Self::parse_from(ids_as_values(std::env::args_os()))
    }
}

/// The arguments with every session id that starts with `-` given to `show` or `revoke`
/// moved after a `--`, so clap takes it for the id it is rather than an unknown option.
///
/// base64url ids start with `-` one time in 64, and an operator pastes them as they come.
/// clap's `allow_hyphen_values` would not do: on `revoke`'s list of ids it also swallows the
/// flags that follow (`revoke ID --dry-run` would revoke an id named `--dry-run`). Only the
/// arguments after those two subcommands are looked at: neither has a short option, so there
/// a 43-character word of base64url that starts with `-` was always an error; elsewhere it
/// can be a short option with its value attached (`export -o<file name>`).
pub fn ids_as_values(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args = args.into_iter();
    let mut kept: Vec<OsString> = args.next().into_iter().collect();
    // Up to the subcommand: global options, `--config` with its value.
    let mut takes_ids = false;
    while let Some(arg) = args.next() {
        let is_config = arg == "--config";
        let is_subcommand = !arg.to_string_lossy().starts_with('-');
        if is_subcommand {
            takes_ids = arg == "show" || arg == "revoke";
        }
        kept.push(arg);
        if is_config {
            kept.extend(args.next());
        } else if is_subcommand {
            break;
        }
    }
    if !takes_ids {
        kept.extend(args);
        return kept;
    }
    let mut ids = Vec::new();
    let mut after_dashes = false;
    for arg in args {
        if after_dashes {
            ids.push(arg);
        } else if arg == "--" {
            after_dashes = true;
        } else if arg.to_str().is_some_and(|a| looks_like_dashed_id(a.trim())) {
            ids.push(arg);
        } else {
            kept.push(arg);
        }
    }
    if !ids.is_empty() {
        kept.push("--".into());
        kept.extend(ids);
    } else if after_dashes {
        kept.push("--".into());
    }
    kept
}

fn looks_like_dashed_id(arg: &str) -> bool {
    arg.starts_with('-') && SessionId::parse(arg).is_ok()
}

/// The operator's command line for the session store: the same configuration as the
/// application (`SESSION_CONFIG`, `SESSION_REDIS_*`), or `--config FILE`.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (`.conf` with an `[options]` section, or `.toml`), read instead of
    /// the one `SESSION_CONFIG` names; `SESSION_REDIS_*` variables still override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print data as JSON (one document; JSON lines for `export`).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration, connect to every part of the backend, and dry-run every
    /// command the store needs on a throwaway key.
    Check,
    /// Sessions per backend part, without TTL, TTL and size histograms, memory.
    Stats(StatsArgs),
    /// One session: keys, value sizes and TTL (values only with --values).
    Show(ShowArgs),
    /// Delete sessions: by id, by a key's value, without TTL, or all.
    Revoke(RevokeArgs),
    /// Move sessions from one configuration into another.
    Migrate(MigrateArgs),
    /// Write every session as JSON lines (id, ttl_ms, fields) to a file, or to stdout when it
    /// is not a terminal (see --to-terminal).
    Export(ExportArgs),
    /// Create sessions from JSON lines (as `export` writes them), each only if absent.
    Import(ImportArgs),
    /// Add every stored session to the index of `session_redis_index_key` (once, after
    /// enabling the index on a store that already holds sessions).
    Reindex(ReindexArgs),
    /// Drop the stale names of every index entry (for cron: entries of values never written
    /// or looked up again are pruned by nothing else).
    PruneIndex(PruneIndexArgs),
}

/// `sessionctl prune-index`.
#[derive(Debug, Args)]
pub struct PruneIndexArgs {
    /// Count the entries, prune nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `sessionctl reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Count the sessions that would be indexed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `sessionctl stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Read at most N sessions per part for the histograms (counts stay exact); 0 = all.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub sample: usize,
    /// Read every session (the same as --sample 0).
    #[arg(long)]
    pub exact: bool,
}

/// `sessionctl show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The session id (the cookie's value as the store sees it: 43 characters of base64url).
    /// The command line is visible to every local user (the process list: `ps`,
    /// /proc/PID/cmdline): prefer --ids-from.
    #[arg(required_unless_present = "ids_from")]
    pub id: Option<String>,
    /// Read the session id from FILE (`-`: stdin) instead of the command line, where every
    /// local user could see it: one line, at most 1024 bytes.
    #[arg(long, value_name = "FILE", conflicts_with = "id")]
    pub ids_from: Option<PathBuf>,
    /// Also print the values.
    #[arg(long)]
    pub values: bool,
}

/// `sessionctl revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Session ids to delete. The command line is visible to every local user (the process
    /// list: `ps`, /proc/PID/cmdline): prefer --ids-from.
    #[arg(conflicts_with_all = ["filter", "no_ttl", "all"])]
    pub ids: Vec<String>,
    /// Read the session ids to delete from FILE (`-`: stdin) instead of the command line,
    /// where every local user could see them: one per line (blank lines skipped), each line
    /// at most 1024 bytes, at most 1,000,000 ids.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["filter", "no_ttl", "all"])]
    pub ids_from: Option<PathBuf>,
    /// Delete every session whose KEY holds VALUE (a JSON value, or a plain string such as
    /// `user=alice`).
    #[arg(long = "where", value_name = "KEY=VALUE", conflicts_with_all = ["no_ttl", "all"])]
    pub filter: Option<String>,
    /// With --where on the indexed key (`session_redis_index_key`): scan every session
    /// instead of asking the index (for sessions written before the index was enabled and
    /// not yet reindexed, see `sessionctl reindex`).
    #[arg(long)]
    pub scan: bool,
    /// Delete every session without an expiry.
    #[arg(long, conflicts_with = "all")]
    pub no_ttl: bool,
    /// Delete every session.
    #[arg(long)]
    pub all: bool,
    /// Do not ask before `--all`.
    #[arg(long)]
    pub yes: bool,
    /// Count what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `sessionctl migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source configuration: a file, or inline settings (see docs/sessionctl.md).
    #[arg(long, value_name = "CONFIG")]
    pub from: String,
    /// Target configuration: a file, or inline settings.
    #[arg(long, value_name = "CONFIG")]
    pub to: String,
    /// Delete each session from the source once the target has it.
    #[arg(long)]
    pub delete_source: bool,
    /// Count what would move, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How many sessions move together (each step of a move is one pipelined round trip
    /// per batch, and the progress step); 1 moves one session, one command at a time.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Progress display: a bar on a terminal, periodic lines otherwise.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
}

/// `sessionctl export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout (created readable by its owner alone, never
    /// overwritten).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print to stdout even when it is a terminal. Every line holds a session id, which logs
    /// its holder in as that user: without this flag, an export to a terminal (its
    /// scrollback, a shared screen, a recorded session) is refused.
    #[arg(long, conflicts_with = "output")]
    pub to_terminal: bool,
}

/// `sessionctl import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read this file instead of stdin.
    pub input: Option<PathBuf>,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    /// A bar when stderr is a terminal, lines otherwise.
    Auto,
    /// A bar with rate and ETA.
    Bar,
    /// One line every few seconds.
    Lines,
    /// Nothing but the summary.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DASHED: &str = "-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const PLAIN: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let args = std::iter::once("sessionctl")
            .chain(args.iter().copied())
            .map(OsString::from);
        Cli::try_parse_from(ids_as_values(args))
    }

    #[test]
    fn an_id_that_starts_with_a_dash_is_an_id_wherever_it_stands() {
        assert!(SessionId::parse(DASHED).is_ok());
        let Command::Show(show) = parse(&["show", DASHED, "--values"]).unwrap().command else {
            panic!("not show")
        };
        assert_eq!(show.id.as_deref(), Some(DASHED));
        assert!(show.values);

        for args in [
            &["revoke", DASHED, PLAIN, "--dry-run"][..],
            &["revoke", "--dry-run", DASHED, PLAIN],
            &["revoke", PLAIN, "--dry-run", "--", DASHED],
            &["--json", "revoke", "--dry-run", "--", PLAIN, DASHED],
        ] {
            let cli = parse(args).unwrap();
            let Command::Revoke(revoke) = cli.command else {
                panic!("not revoke")
            };
            let mut ids = revoke.ids.clone();
            ids.sort();
            assert_eq!(ids, [DASHED, PLAIN], "{args:?}");
            assert!(revoke.dry_run, "{args:?}");
        }
    }

    #[test]
    fn flags_and_short_dashed_values_are_left_to_clap() {
        // A flag keeps its meaning, a dashed word that is not an id stays an error, and a
        // conflict is still seen with the id moved.
        assert!(parse(&["revoke", "--all", "--yes"]).is_ok());
        assert!(parse(&["show", "-Yabc"]).is_err());
        assert!(parse(&["revoke", DASHED, "--all"]).is_err());
        assert_eq!(
            ids_as_values(["sessionctl", "show", "--"].map(OsString::from)),
            ["sessionctl", "show", "--"].map(OsString::from)
        );
        // Only after `show` and `revoke`: elsewhere a short option may carry its value, and a
        // global option before the subcommand keeps its own.
        let file = format!("-o{}", &PLAIN[..41]);
        assert_eq!(file.len(), DASHED.len());
        let Command::Export(export) = parse(&["export", &file]).unwrap().command else {
            panic!("not export")
        };
        assert_eq!(
            export.output.as_deref(),
            Some(std::path::Path::new(&PLAIN[..41]))
        );
        let cli = parse(&["--config", "app.toml", "--json", "show", DASHED]).unwrap();
        assert!(cli.json && cli.config.is_some());
        let cli = parse(&["revoke", &format!("{DASHED} "), "--dry-run"]).unwrap();
        assert!(matches!(cli.command, Command::Revoke(r) if r.dry_run && r.ids.len() == 1));
    }
}
