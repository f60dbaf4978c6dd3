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
/// * inline settings `name=value`, one per line or separated by `;` (see
///   [`inline_settings`]), with any option name, for example
///   `session_redis_mode=cluster;session_redis_host=10.0.0.1:7000`.
///
/// Errors never repeat a piece of an inline setting that could belong to a value (a
/// password): they say which setting by its position.
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
        for (n, setting) in inline_settings(trimmed).into_iter().enumerate() {
            let position = n + 1;
            let Some((name, value)) = setting.split_once('=') else {
                return Err(Failure::usage(format!(
                    "{flag}: inline setting #{position} has no `=` (not shown: it could be part of a value): write name=value pairs separated by `;` or new lines"
                )));
            };
            let name = name.trim();
            if !plausible_name(name) {
                return Err(Failure::usage(format!(
                    "{flag}: inline setting #{position} does not start with an option name (not shown: it could be part of a value): expected name=value, the name of letters, digits, `_` and `.`, at most {MAX_NAME} characters"
                )));
            }
            // An unknown but plausible name is session-core's error, which names it (never
            // its value) and suggests the closest option.
            builder = builder.set(name, value.trim());
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

/// The settings of inline text: each line, cut at every `;` that is followed (after spaces)
/// by a known option name and `=`; blank ones dropped. Any other `;` is part of the value,
/// so a password such as `abc;def` is kept whole instead of being cut into a password `abc`
/// and a stray setting `def`, which an error would then have printed (or, shaped like
/// `x=1`, applied). Only a value containing `;NAME=` with NAME an option is still cut: such
/// a value belongs in a file. A new line always separates: no value holds one.
fn inline_settings(text: &str) -> Vec<&str> {
    let mut settings = Vec::new();
    for line in text.split('\n') {
        let mut start = 0;
        for (at, _) in line.match_indices(';') {
            let starts_a_setting = line[at + 1..]
                .split_once('=')
                .is_some_and(|(name, _)| SessionConfig::is_option_name(name));
            if starts_a_setting {
                settings.push(&line[start..at]);
                start = at + 1;
            }
        }
        settings.push(&line[start..]);
    }
    settings
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The longest name an error repeats; every option name is far shorter.
const MAX_NAME: usize = 64;

/// True for text that can be a misspelt option name, which an error may repeat: anything
/// else (spaces, punctuation, a long run) may be a piece of a password.
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The characters of a spec that an error repeats at most.
const SHOWN_CHARS: usize = 60;

/// What may be shown of a spec that is neither file, URL nor settings (a mistyped path):
/// up to its first `:`, `=` or `@`, where a password would start in a URL or a setting, or
/// its first space, `;` or `,`, where one would start in settings written without `=`
/// (`session_redis_password hunter2`, which was shown whole), at most [`SHOWN_CHARS`]
/// characters (counted in characters: the text need not be ASCII), with control characters
/// escaped.
fn shown_name(text: &str) -> String {
    let head = text
        .split(|c: char| matches!(c, ':' | '=' | '@' | ';' | ',') || c.is_whitespace())
        .next()
        .unwrap_or_default();
    let kept: String = head.chars().take(SHOWN_CHARS).collect();
    let mut shown = crate::text::printable(&kept).into_owned();
    if kept.len() < text.len() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(spec: &str) -> String {
        match spec_config("--from", spec) {
            Ok(_) => panic!("accepted: {spec:?}"),
            Err(failure) => {
                assert_eq!(failure.status, 2, "{}", failure.message);
                failure.message
            }
        }
    }

    #[test]
    fn a_semicolon_not_followed_by_an_option_name_stays_in_the_value() {
        for password in [
            "abc;Hunter2Zq9",
            "abc;Hunter=2Zq9",
            "a;b; c;;d;",
            "x;session_redis_pasword=1",
        ] {
            let (config, _) = spec_config(
                "--from",
                &format!("session_redis_host=127.0.0.1;session_redis_password={password}"),
            )
            .unwrap();
            assert_eq!(config.password.as_deref(), Some(password));
        }
    }

    #[test]
    fn settings_are_separated_by_new_lines_and_by_a_semicolon_before_an_option_name() {
        let (config, _) = spec_config(
            "--from",
            "session_redis_password=abc; SESSION_REDIS_DB = 5\nsession_redis_prefix=p;q:\n\n",
        )
        .unwrap();
        assert_eq!(config.password.as_deref(), Some("abc"));
        assert_eq!(config.db, 5);
        assert_eq!(config.prefix, "p;q:");
    }

    #[test]
    fn errors_name_a_setting_by_position_and_never_repeat_a_piece_of_a_value() {
        let message = refused("Hunter2Zq9;session_redis_db=5");
        assert!(
            message.contains("inline setting #1 has no `=`"),
            "{message}"
        );
        assert!(!message.contains("Hunter2"), "{message}");

        let message = refused("session_redis_db=5\nHunter2 Zq9!=x");
        assert!(
            message.contains("inline setting #2 does not start with an option name"),
            "{message}"
        );
        assert!(!message.contains("Hunter2"), "{message}");

        let message = refused(&format!("{}=1", "a".repeat(MAX_NAME + 1)));
        assert!(!message.contains(&"a".repeat(MAX_NAME)), "{message}");

        // A misspelt name is named (it is what to fix), its value is not.
        let message = refused("session_redis_pasword=abc;Hunter2Zq9");
        assert!(message.contains("session_redis_pasword"), "{message}");
        assert!(
            !message.contains("abc") && !message.contains("Hunter2"),
            "{message}"
        );
    }

    #[test]
    fn text_that_is_nothing_is_cut_on_characters() {
        let message = refused(&format!("a{}", "é".repeat(40)));
        assert!(
            message.contains(&format!("`a{}`", "é".repeat(40))),
            "{message}"
        );
        let message = refused(&format!("a{}", "é".repeat(80)));
        assert!(
            message.contains(&format!("a{}…", "é".repeat(59))),
            "{message}"
        );
        let message = refused("nothing\u{1b}[2J:secret");
        assert!(message.contains("nothing\\u{1b}[2J…"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    /// Settings written without `=` (`name value`, as some configuration formats have them)
    /// are no settings, and the text is shown as a mistyped path would be: up to where a
    /// value could start, so the password of such a line is not repeated.
    #[test]
    fn text_without_an_equals_sign_is_not_shown_past_its_first_word() {
        for spec in [
            "session_redis_host 127.0.0.1; session_redis_password Hunter2Zq9",
            "session_redis_password\tHunter2Zq9",
            "session_redis_password;Hunter2Zq9",
            "session_redis_password,Hunter2Zq9",
        ] {
            let message = refused(spec);
            assert!(!message.contains("Hunter2"), "{message}");
            assert!(message.contains("`session_redis_"), "{message}");
        }
    }
}
