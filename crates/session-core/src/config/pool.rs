//! The two multi-server options: `session_redis_pool` (django-redis-sessions'
//! `SESSION_REDIS_POOL`, sessions partitioned between servers) and
//! `session_redis_multi_backends` (acs_redis_multi_sessions' `ACS_SESSION_MULTISESSIONS_POOL`,
//! backends with read / write / delete modes). `docs/pool.md` describes both.

use std::{fmt, path::PathBuf};

use super::{
    parse::{self, Raw, Value, REDACTED},
    redact_url, ConfigError, HostPort, SessionConfig, SessionConfigBuilder,
};

/// One member of `session_redis_pool`.
///
/// A member inherits every top-level option (prefix, timeouts, TLS, ...) and overrides its
/// address (`host`/`port`, `unix_socket_path` or `url`: exactly one), `db` and `password`.
/// Unset (`None`) `port`, `db` and `password` fall back to the top-level values.
///
/// `Debug` never shows the password (nor the one inside a URL).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PoolMember {
    /// `SESSION_REDIS_HOST`: host name or address (`host:port` accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `SESSION_REDIS_PORT`; `None` = the top-level `session_redis_port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `SESSION_REDIS_DB`; `None` = the top-level `session_redis_db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<i64>,
    /// `SESSION_REDIS_PASSWORD`; `None` (or empty) = the top-level password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_socket_path: Option<PathBuf>,
    /// `SESSION_REDIS_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `SESSION_REDIS_WEIGHT`: the member's share of the sessions, relative to the others; ≥ 1.
    pub weight: u32,
}

impl Default for PoolMember {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            db: None,
            password: None,
            unix_socket_path: None,
            url: None,
            weight: 1,
        }
    }
}

impl fmt::Debug for PoolMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolMember")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("unix_socket_path", &self.unix_socket_path)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("weight", &self.weight)
            .finish()
    }
}

impl PoolMember {
    /// The member's stable identity, which the routing hash uses (and health reports show):
    /// the URL with its password redacted, `unix:<path>/<db>`, or `<host>:<port>/<db>`, with
    /// the top-level port and db filled in. Reordering members or changing a password or a
    /// weight keeps identities; changing an address changes it (and moves its sessions).
    pub fn identity(&self, top: &SessionConfig) -> String {
        let db = self.db.unwrap_or(top.db);
        if let Some(url) = &self.url {
            return redact_url(url.trim());
        }
        if let Some(path) = &self.unix_socket_path {
            return format!("unix:{}/{db}", path.display());
        }
        match self.host_port(top) {
            Ok(hp) => format!("{hp}/{db}"),
            Err(_) => format!("{}/{db}", self.host.as_deref().unwrap_or("")),
        }
    }

    fn host_port(&self, top: &SessionConfig) -> Result<HostPort, String> {
        let mut hp = parse::parse_host_text(self.host.as_deref().unwrap_or("").trim())?;
        match (hp.port, self.port) {
            (Some(_), Some(_)) => {
                return Err("a port in both SESSION_REDIS_HOST and SESSION_REDIS_PORT".into())
            }
            (None, p) => hp.port = Some(p.unwrap_or(top.port)),
            (Some(_), None) => {}
        }
        Ok(hp)
    }

    /// The complete configuration of this member: `top` with the member's address, db and
    /// password, and without the pool itself.
    pub fn member_config(&self, top: &SessionConfig) -> SessionConfig {
        let mut c = top.clone();
        c.pool = Vec::new();
        c.multi_backends = Vec::new();
        c.migrate_from_filestore = false;
        c.host = Vec::new();
        c.url = None;
        c.unix_socket_path = None;
        if let Some(url) = &self.url {
            c.url = Some(url.clone());
        } else if let Some(p) = &self.unix_socket_path {
            c.unix_socket_path = Some(p.clone());
        } else if let Ok(hp) = self.host_port(top) {
            c.host = vec![hp];
        }
        if let Some(db) = self.db {
            c.db = db;
        }
        if let Some(pw) = &self.password {
            c.password = Some(pw.clone());
        }
        c
    }

    /// Checks the member on its own (its index `i` names it in errors).
    pub(crate) fn validate(&self, i: usize, top: &SessionConfig) -> Result<(), ConfigError> {
        let key = |k: &str| format!("session_redis_pool[{i}].{k}");
        let given = [
            self.host.is_some(),
            self.unix_socket_path.is_some(),
            self.url.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(ConfigError::invalid(
                &key("SESSION_REDIS_HOST"),
                &self.host.clone().unwrap_or_else(|| "None".into()),
                "exactly one address per pool member: SESSION_REDIS_HOST (with SESSION_REDIS_PORT), SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH or SESSION_REDIS_URL",
            ));
        }
        if self.host.is_some() {
            self.host_port(top).map_err(|e| {
                ConfigError::invalid(
                    &key("SESSION_REDIS_HOST"),
                    self.host.as_deref().unwrap_or(""),
                    &format!("a host name or address ({e})"),
                )
            })?;
        }
        if self.weight == 0 {
            return Err(ConfigError::invalid(
                &key("SESSION_REDIS_WEIGHT"),
                "0",
                "an integer ≥ 1",
            ));
        }
        self.member_config(top).validate().map_err(|mut e| {
            e.key = key(&e.key);
            e
        })
    }

    /// The member as a Python literal dict, secrets redacted.
    fn show(&self) -> String {
        let mut parts = Vec::new();
        let q = |s: &str| format!("{s:?}");
        if let Some(h) = &self.host {
            parts.push(format!("'SESSION_REDIS_HOST': {}", q(h)));
        }
        if let Some(p) = self.port {
            parts.push(format!("'SESSION_REDIS_PORT': {p}"));
        }
        if let Some(d) = self.db {
            parts.push(format!("'SESSION_REDIS_DB': {d}"));
        }
        if self.password.is_some() {
            parts.push(format!("'SESSION_REDIS_PASSWORD': '{REDACTED}'"));
        }
        if let Some(p) = &self.unix_socket_path {
            parts.push(format!(
                "'SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH': {}",
                q(&p.display().to_string())
            ));
        }
        if let Some(u) = &self.url {
            parts.push(format!("'SESSION_REDIS_URL': {}", q(&redact_url(u))));
        }
        parts.push(format!("'SESSION_REDIS_WEIGHT': {}", self.weight));
        format!("{{{}}}", parts.join(", "))
    }
}

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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MultiBackendConfig {
    /// The backend's name (`"backend"` in the seed's form), unique; shown in health reports
    /// and errors.
    pub name: String,
    /// Its modes: a non-empty subset of read, write, delete.
    pub modes: Vec<BackendMode>,
    /// Its settings.
    #[serde(default)]
    pub config: SessionConfig,
}

impl MultiBackendConfig {
    /// True when the backend has `mode`.
    pub fn has(&self, mode: BackendMode) -> bool {
        self.modes.contains(&mode)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("session_redis_multi_backends[{:?}].{k}", self.name);
        if self.modes.is_empty() {
            return Err(ConfigError::invalid(
                &key("modes"),
                "[]",
                "one or more of \"read\", \"write\", \"delete\"",
            ));
        }
        if self.has(BackendMode::Read)
            && !self.has(BackendMode::Write)
            && !self.has(BackendMode::Delete)
        {
            return Err(ConfigError::invalid(
                &key("modes"),
                "[\"read\"]",
                "\"delete\" (or \"write\") as well for a read backend: otherwise a logout cannot remove its copy and the next load would bring the session back",
            ));
        }
        let c = &self.config;
        if c.key_expire != 0 {
            return Err(ConfigError::invalid(
                &key("session_redis_key_expire"),
                &c.key_expire.to_string(),
                "unset inside a backend: the expiry is one rule for the whole store; set session_redis_key_expire at the top level",
            ));
        }
        if c.migrate_from_filestore {
            return Err(ConfigError::invalid(
                &key("session_redis_migrate_from_filestore"),
                "True",
                "unset inside a backend: a file-store backend with read and delete modes moves sessions into the write backends as they are used",
            ));
        }
        if !c.multi_backends.is_empty() {
            return Err(ConfigError::invalid(
                &key("session_redis_multi_backends"),
                "(set)",
                "no nested multi-backends",
            ));
        }
        c.validate().map_err(|mut e| {
            e.key = key(&e.key);
            e
        })
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

/// `session_redis_pool` in config-file syntax, secrets redacted.
pub(crate) fn show_pool(pool: &[PoolMember]) -> String {
    format!(
        "[{}]",
        pool.iter()
            .map(PoolMember::show)
            .collect::<Vec<_>>()
            .join(", ")
    )
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

// ---------------------------------------------------------------------------------------------
// Reading the sources' values

/// The value of a pool or multi-backend option as a literal: Python text, or TOML's typed value.
/// `Ok(None)` for an unset value (`None`, empty).
fn literal(given: &str, raw: &Raw, example: &str) -> Result<Option<Value>, ConfigError> {
    match raw {
        Raw::Typed(Value::None) => Ok(None),
        Raw::Typed(Value::Str(t)) | Raw::Text(t) => {
            let t = t.trim();
            if t.is_empty() || t.eq_ignore_ascii_case("none") {
                return Ok(None);
            }
            // The parser's message quotes no input, only positions: safe with secrets inside.
            parse::parse_literal(t).map(Some).map_err(|e| {
                ConfigError::invalid(
                    given,
                    REDACTED,
                    &format!("a Python literal list such as {example} ({e})"),
                )
            })
        }
        Raw::Typed(v) => Ok(Some(v.clone())),
    }
}

fn items<'a>(given: &str, v: &'a Value, example: &str) -> Result<&'a [Value], ConfigError> {
    match v {
        Value::List(items) => Ok(items),
        _ => Err(ConfigError::invalid(
            given,
            REDACTED,
            &format!("a list such as {example}"),
        )),
    }
}

fn dict<'a>(key: &str, v: &'a Value, what: &str) -> Result<&'a [(Value, Value)], ConfigError> {
    match v {
        Value::Dict(d) => Ok(d),
        _ => Err(ConfigError::invalid(key, REDACTED, what)),
    }
}

fn dict_key(key: &str, k: &Value) -> Result<String, ConfigError> {
    match k {
        Value::Str(s) => Ok(s.clone()),
        Value::Ident(s) => Ok(s.clone()),
        other => Err(ConfigError::invalid(
            key,
            &format!("{other:?}"),
            "string keys",
        )),
    }
}

const POOL_EXAMPLE: &str =
    "[{'SESSION_REDIS_HOST': 'localhost', 'SESSION_REDIS_PORT': 6379, 'SESSION_REDIS_WEIGHT': 1}]";

/// Reads `session_redis_pool`; `given` is the option's name as written.
pub(crate) fn parse_pool(given: &str, raw: &Raw) -> Result<Option<Vec<PoolMember>>, ConfigError> {
    let Some(v) = literal(given, raw, POOL_EXAMPLE)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, item) in items(given, &v, POOL_EXAMPLE)?.iter().enumerate() {
        let here = format!("{given}[{i}]");
        let d = dict(
            &here,
            item,
            "a dict of SESSION_REDIS_* keys for each pool member",
        )?;
        let mut m = PoolMember::default();
        for (k, value) in d {
            let k = dict_key(&here, k)?;
            let lower = k.trim().to_ascii_lowercase();
            let short = lower.strip_prefix("session_redis_").unwrap_or(&lower);
            let key = format!("{here}.{k}");
            let secret = short == "password";
            let shown = if secret {
                REDACTED.to_owned()
            } else if short == "url" {
                match value {
                    Value::Str(s) => format!("`{}`", redact_url(s)),
                    _ => format!("`{value:?}`"),
                }
            } else {
                format!("`{value:?}`")
            };
            let bad = |expected: &str| ConfigError::invalid(&key, &shown, expected);
            let text = |v: &Value| -> Result<Option<String>, ConfigError> {
                match v {
                    Value::None => Ok(None),
                    Value::Str(s) if s.trim().is_empty() => Ok(None),
                    Value::Str(s) => Ok(Some(s.clone())),
                    _ => Err(bad("a string or None")),
                }
            };
            let int =
                |v: &Value, min: i64, max: i64, what: &str| -> Result<Option<i64>, ConfigError> {
                    let n = match v {
                        Value::None => return Ok(None),
                        Value::Int(n) => *n,
                        Value::Str(s) => s.trim().parse::<i64>().map_err(|_| bad(what))?,
                        _ => return Err(bad(what)),
                    };
                    if n < min || n > max {
                        return Err(bad(what));
                    }
                    Ok(Some(n))
                };
            match short {
                "host" => m.host = text(value)?,
                "port" => {
                    m.port = int(value, 1, 65535, "a TCP port, an integer from 1 to 65535, or None")?
                        .map(|p| p as u16)
                }
                "db" => m.db = int(value, 0, i64::MAX, "an integer ≥ 0, or None")?,
                "password" => m.password = text(value)?,
                "unix_domain_socket_path" | "unix_socket_path" => {
                    m.unix_socket_path = text(value)?.map(PathBuf::from)
                }
                "url" => m.url = text(value)?,
                "weight" => {
                    m.weight = int(value, 1, u32::MAX as i64, "an integer ≥ 1")?.unwrap_or(1) as u32
                }
                _ => {
                    return Err(ConfigError::invalid(
                        &key,
                        &shown,
                        "a pool member key: SESSION_REDIS_HOST, SESSION_REDIS_PORT, SESSION_REDIS_DB, SESSION_REDIS_PASSWORD, SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH, SESSION_REDIS_URL or SESSION_REDIS_WEIGHT (other options are set once, at the top level, and every member inherits them)",
                    ))
                }
            }
        }
        out.push(m);
    }
    Ok(Some(out))
}

const MULTI_EXAMPLE: &str = "({\"backend\": \"0\", \"modes\": [\"read\", \"write\"], \"setting\": {'SESSION_REDIS_HOST': 'localhost'}},)";

/// Reads `session_redis_multi_backends`; `given` is the option's name as written.
pub(crate) fn parse_multi(
    given: &str,
    raw: &Raw,
) -> Result<Option<Vec<MultiBackendConfig>>, ConfigError> {
    let Some(v) = literal(given, raw, MULTI_EXAMPLE)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, item) in items(given, &v, MULTI_EXAMPLE)?.iter().enumerate() {
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
                    return Err(ConfigError::invalid(
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
        let mut config = SessionConfigBuilder::new()
            .entries(entries, &format!("{here}.setting"))
            .build_unvalidated()
            .map_err(|mut e| {
                e.key = format!("{here}.setting.{}", e.key);
                e
            })?;
        // redis-py sends no AUTH for an empty password (the seed writes `''`).
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
