//! Reading configurations: the application's (session-core's own loading, unchanged), and the
//! `--from` / `--to` configurations of `migrate`, which are files or inline settings.

use std::path::{Path, PathBuf};

use session_core::{plan::Plan, SessionConfig};

use crate::failure::Failure;

/// The application's configuration: `--config FILE` (else the file `SESSION_CONFIG` names),
/// then the `SESSION_REDIS_*` variables, exactly as `SessionConfig::from_env` reads them.
pub fn app_config(file: Option<&Path>) -> Result<(SessionConfig, Plan), Failure> {
    let builder = match file {
        Some(path) => {
            require_file(path, "--config")?;
            SessionConfig::builder().file(path).env(session_vars()?)
        }
        None => SessionConfig::builder().process_env(),
    };
    let config = builder.build().map_err(Failure::config)?;
    let plan = config.plan().map_err(Failure::config)?;
    Ok((config, plan))
}

/// The `SESSION_*` variables of the environment (session-core keeps the ones it knows); one
/// that is not UTF-8 is an error, as in `SessionConfig::from_env`.
fn session_vars() -> Result<Vec<(String, String)>, Failure> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if !name.to_ascii_uppercase().starts_with("SESSION_") {
            continue;
        }
        match value.into_string() {
            Ok(value) => vars.push((name.to_owned(), value)),
            Err(_) => {
                return Err(Failure::usage(format!(
                "the environment variable {name} is not UTF-8 text: set it to the value in UTF-8"
            )))
            }
        }
    }
    Ok(vars)
}

/// `session_redis_index_key` of the application's configuration, for the commands that work
/// on the index; a usage error saying to set it when it is not.
pub fn index_key(config: &SessionConfig) -> Result<String, Failure> {
    config.index_key.clone().ok_or_else(|| {
        Failure::usage(
            "no index is configured: set session_redis_index_key (for example to `user`, the \
             session key the application indexes) in the application's configuration first",
        )
    })
}

/// The store as the application builds it from `plan`, but without its start-up migration
/// (`session_redis_migrate_from_filestore`): a command of the operator's must not start
/// moving the file store's sessions as a side effect.
pub async fn app_store(mut plan: Plan) -> Result<session_core::SessionStore, Failure> {
    plan.migrate_from = None;
    session_core::SessionStore::from_plan(plan)
        .await
        .map_err(Failure::config)
}

/// A configuration given on the command line (`migrate --from/--to`), on its own (the
/// environment does not apply: it would change both sides at once):
///
/// * the path of an existing file (`.conf` or `.toml`, as `SESSION_CONFIG`);
/// * a URL alone: `redis://...`, `rediss://...`, `unix://...` (`session_redis_url`);
/// * `files:PATH`: the file store at PATH;
/// * inline settings `name=value`, separated by `;` or new lines, with any option name,
///   for example `session_redis_mode=cluster;session_redis_host=10.0.0.1:7000`.
pub fn spec_config(flag: &str, spec: &str) -> Result<(SessionConfig, Plan), Failure> {
    let trimmed = spec.trim();
    let builder = if Path::new(trimmed).is_file() {
        SessionConfig::builder().file(PathBuf::from(trimmed))
    } else if let Some(root) = trimmed.strip_prefix("files:") {
        SessionConfig::builder()
            .set("session_redis_mode", "False")
            .set("session_filestore_path", root)
    } else if ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|scheme| trimmed.starts_with(scheme))
    {
        SessionConfig::builder().set("session_redis_url", trimmed)
    } else if trimmed.contains('=') {
        let mut builder = SessionConfig::builder();
        for setting in trimmed.split([';', '\n']).map(str::trim) {
            if setting.is_empty() {
                continue;
            }
            let Some((name, value)) = setting.split_once('=') else {
                return Err(Failure::usage(format!(
                    "{flag}: the inline setting `{}` has no `=`: write name=value pairs separated by `;`",
                    shown_name(setting)
                )));
            };
            builder = builder.set(name.trim(), value.trim());
        }
        builder
    } else {
        return Err(Failure::usage(format!(
            "{flag}: `{}` is neither an existing file, a redis:// URL, files:PATH, nor name=value settings (see `sessionctl migrate --help`)",
            shown_name(trimmed)
        )));
    };
    let config = builder
        .build()
        .map_err(|e| Failure::config(e).context(flag))?;
    let plan = config
        .plan()
        .map_err(|e| Failure::config(e).context(flag))?;
    Ok((config, plan))
}

/// What may be shown of a setting that could hold a password: up to the first `=` or `:`.
fn shown_name(text: &str) -> String {
    let end = text.find([':', '=', '@']).unwrap_or(text.len()).min(60);
    let mut shown: String = text[..end].chars().filter(|c| !c.is_control()).collect();
    if end < text.len() {
        shown.push('…');
    }
    shown
}

fn require_file(path: &Path, flag: &str) -> Result<(), Failure> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "{flag} {}: no such file (give the path of a .conf or .toml configuration file)",
            path.display()
        )))
    }
}
