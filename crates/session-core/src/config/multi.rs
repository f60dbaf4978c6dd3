//! `session_redis_multi_backends`: acs_redis_multi_sessions' `ACS_SESSION_MULTISESSIONS_POOL`,
//! backends with read / write / delete modes. `docs/pool.md` describes it.

use super::{
    literal::{dict, dict_key, list_items, literal_value, Raw, Value},
    redact::REDACTED,
    ConfigError, ConfigErrorKind, SessionConfig,
};

/// A mode of a backend of `session_redis_multi_backends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendMode {
    /// The backend is asked on load.
    Read,
    /// The backend receives creates, replaces, applies and touches.
    Write,
    /// The backend receives deletes.
    Delete,
}

impl BackendMode {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
        }
    }
}

/// One backend of `session_redis_multi_backends`: a name, its modes and its own complete
/// configuration (built from the defaults and the backend's `setting` dict; nothing is
/// inherited from the top level).
///
/// Serialized in acs_redis_multi_sessions' form (`backend`, `modes`, `setting`), as the
/// option's parser reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MultiBackendConfig {
    /// The backend's name (`"backend"` in acs_redis_multi_sessions' form), unique; shown in health reports
    /// and errors.
    #[serde(rename = "backend")]
    pub name: String,
    /// Its modes: a non-empty subset of read, write, delete.
    pub modes: Vec<BackendMode>,
    /// Its settings.
    #[serde(rename = "setting")]
    pub config: SessionConfig,
}

impl MultiBackendConfig {
    /// True when the backend has `mode`.
    pub fn has(&self, mode: BackendMode) -> bool {
        self.modes.contains(&mode)
    }

    fn show(&self) -> String {
        let modes: Vec<String> = self
            .modes
            .iter()
            .map(|m| format!("{:?}", m.as_str()))
            .collect();
        let setting: Vec<String> = self
            .config
            .entries()
            .into_iter()
            .map(|(k, v)| format!("{:?}: {v}", k.to_ascii_uppercase()))
            .collect();
        format!(
            "{{\"backend\": {:?}, \"modes\": [{}], \"setting\": {{{}}}}}",
            self.name,
            modes.join(", "),
            setting.join(", ")
        )
    }
}

/// `session_redis_multi_backends` in config-file syntax, secrets redacted.
pub(crate) fn show_multi(multi: &[MultiBackendConfig]) -> String {
    format!(
        "[{}]",
        multi
            .iter()
            .map(MultiBackendConfig::show)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

const MULTI_EXAMPLE: &str = "({\"backend\": \"0\", \"modes\": [\"read\", \"write\"], \"setting\": {'SESSION_REDIS_HOST': 'localhost'}},)";

/// Turns the `setting` entries of one backend into its configuration; the `&str` names the
/// source in errors.
pub(crate) type BuildSetting =
    dyn Fn(Vec<(String, Raw)>, &str) -> Result<SessionConfig, ConfigError>;

/// Reads `session_redis_multi_backends`; `given` is the option's name as written. `build` turns
/// one backend's `setting` entries into its configuration: the sources own that step, and
/// taking it as an argument keeps this module from depending on them.
pub(crate) fn parse_multi(
    given: &str,
    raw: &Raw,
    build: &BuildSetting,
) -> Result<Option<Vec<MultiBackendConfig>>, ConfigError> {
    let Some(v) = literal_value(given, raw, MULTI_EXAMPLE)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, item) in list_items(given, &v, MULTI_EXAMPLE)?.iter().enumerate() {
        let here = format!("{given}[{i}]");
        let d = dict(
            &here,
            item,
            "a dict {\"backend\": name, \"modes\": [...], \"setting\": {...}} for each backend",
        )?;
        let mut name = None;
        let mut modes = None;
        let mut setting: Option<&[(Value, Value)]> = None;
        for (k, value) in d {
            let k = dict_key(&here, k)?;
            match k.trim().to_ascii_lowercase().as_str() {
                "backend" | "name" => {
                    name = Some(match value {
                        Value::Str(s) => s.clone(),
                        Value::Int(n) => n.to_string(),
                        other => {
                            return Err(ConfigError::invalid(
                                &format!("{here}.{k}"),
                                &format!("`{other:?}`"),
                                "the backend's name, a string",
                            ))
                        }
                    })
                }
                "modes" => modes = Some(value),
                "setting" | "settings" | "config" => {
                    setting = Some(dict(
                        &format!("{here}.{k}"),
                        value,
                        "a dict of SESSION_REDIS_* settings",
                    )?)
                }
                _ => {
                    return Err(ConfigError::new(
                        ConfigErrorKind::UnknownKey,
                        &format!("{here}.{k}"),
                        REDACTED,
                        "one of \"backend\", \"modes\", \"setting\"",
                    ))
                }
            }
        }
        let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
            ConfigError::invalid(
                &format!("{here}.backend"),
                "(missing)",
                "the backend's name, such as \"0\" or \"redis\"",
            )
        })?;
        let here = format!("{given}[{name:?}]");
        let mode_list: Vec<Value> = match modes {
            Some(Value::List(l)) => l.clone(),
            // A single mode written as a string.
            Some(v @ Value::Str(_)) => vec![v.clone()],
            _ => {
                return Err(ConfigError::invalid(
                    &format!("{here}.modes"),
                    "(missing)",
                    "a list of modes: \"read\", \"write\", \"delete\"",
                ))
            }
        };
        let mut parsed = Vec::new();
        for m in &mode_list {
            let mode = match m {
                Value::Str(s) => BackendMode::parse(s),
                _ => None,
            }
            .ok_or_else(|| {
                ConfigError::invalid(
                    &format!("{here}.modes"),
                    &format!("`{m:?}`"),
                    "\"read\", \"write\" or \"delete\"",
                )
            })?;
            if !parsed.contains(&mode) {
                parsed.push(mode);
            }
        }
        let entries: Vec<(String, Raw)> = setting
            .unwrap_or(&[])
            .iter()
            .map(|(k, v)| Ok((dict_key(&here, k)?, Raw::Typed(v.clone()))))
            .collect::<Result<_, ConfigError>>()?;
        let mut config = build(entries, &format!("{here}.setting")).map_err(|mut e| {
            e.key = format!("{here}.setting.{}", e.key);
            e
        })?;
        // redis-py sends no AUTH for an empty password (acs_redis_multi_sessions' examples write `''`).
        if config.password.as_deref() == Some("") {
            config.password = None;
        }
        out.push(MultiBackendConfig {
            name,
            modes: parsed,
            config,
        });
    }
    Ok(Some(out))
}
