//! The sources: an Odoo-style `.conf` or a `.toml` file, `SESSION_REDIS_*` environment
//! variables, and the typed builder. Each is applied on top of the previous one.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    literal::{Raw, Value},
    multi::parse_multi,
    names::{self, Kind, Spec},
    parse::{self, Setting},
    pool::parse_pool,
    redact::REDACTED,
    ConfigError, ConfigErrorKind, Field, HostPort, Mode, SessionConfig,
};

/// The environment variable naming the config file.
pub const CONFIG_FILE_VAR: &str = "SESSION_CONFIG";

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::new()
    }

    /// True when `name` is one of the option names the sources accept (any case, aliases
    /// included, surrounding spaces ignored), as [`SessionConfigBuilder::set`] reads it.
    /// For tools that must tell an option name from other text without trying it.
    ///
    /// ```
    /// use session_core::SessionConfig;
    ///
    /// assert!(SessionConfig::is_option_name("SESSION_REDIS_PASSWORD"));
    /// assert!(!SessionConfig::is_option_name("session_redis_pasword"));
    /// ```
    pub fn is_option_name(name: &str) -> bool {
        names::lookup(name).is_some()
    }

    /// A builder starting from this configuration, to override parts of it in code.
    ///
    /// ```
    /// use session_core::SessionConfig;
    ///
    /// let loaded = SessionConfig::from_sources(None, [("SESSION_REDIS_PORT".to_string(), "6380".to_string())]).unwrap();
    /// let config = loaded.to_builder().port(7000).build().unwrap();
    /// assert_eq!(config.port, 7000);
    /// ```
    pub fn to_builder(&self) -> SessionConfigBuilder {
        SessionConfigBuilder::from_config(self.clone())
    }

    /// Defaults, then `file` (when given), then the `SESSION_REDIS_*` variables among `env`;
    /// validated. `SESSION_CONFIG` in `env` is not consulted: `file` says which file.
    pub fn from_sources<K, V>(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let builder = Self::builder();
        let builder = match file {
            Some(path) => builder.file(path),
            None => builder,
        };
        builder.env(env).build()
    }

    /// Like [`from_env`](Self::from_env) with the environment given: the file named by
    /// `SESSION_CONFIG` in `env`, then the `SESSION_REDIS_*` variables of `env`.
    pub fn from_env_vars<K, V>(env: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::builder().env_with_file(env).build()
    }

    /// Reads the process environment: defaults, then the file named by `SESSION_CONFIG`, then
    /// `SESSION_REDIS_*` / `SESSION_FILESTORE_PATH`; validated. To override in code, use
    /// `SessionConfig::builder().process_env().port(7000).build()`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::builder().process_env().build()
    }

    /// Defaults, then one config file (`.toml` or Odoo-style INI); validated.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().file(path).build()
    }
}

/// Builds a [`SessionConfig`] from layered sources; later calls override earlier ones.
///
/// Precedence follows call order, so the natural chain reads "defaults, then file, then
/// environment, then code":
///
/// ```
/// use session_core::SessionConfig;
///
/// let env = vec![("SESSION_REDIS_PORT".to_string(), "6380".to_string())];
/// let config = SessionConfig::builder()
///     .env(env) // environment beats the defaults (and a file loaded before it)
///     .db(2) // code beats the environment
///     .build()
///     .unwrap();
/// assert_eq!((config.port, config.db), (6380, 2));
/// ```
///
/// Errors from a source (unreadable file, bad value, unknown key) are kept and returned by
/// [`build`](Self::build); the first one wins.
#[derive(Debug, Clone, Default)]
pub struct SessionConfigBuilder {
    config: SessionConfig,
    mode_explicit: bool,
    sentinel_implied: bool,
    error: Option<ConfigError>,
}

/// Where a batch of entries comes from, for error messages.
fn in_source(expected: String, source: &str) -> String {
    format!("{expected} (in {source})")
}

impl SessionConfigBuilder {
    /// Starts from the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from an existing configuration (for example one loaded from the environment).
    pub fn from_config(config: SessionConfig) -> Self {
        Self {
            // A mode other than the default was chosen by someone: a later
            // SESSION_REDIS_SENTINEL_LIST must not override it.
            mode_explicit: config.mode != Mode::Redis,
            config,
            sentinel_implied: false,
            error: None,
        }
    }

    /// Applies a config file: `.toml` is read as TOML, anything else as an Odoo-style INI file
    /// (`[options]` section). Keys other than `session_redis_*` / `session_filestore_path` are
    /// ignored, like the rest of an Odoo config.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.load_file(path.as_ref()) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Applies the environment: every `SESSION_REDIS_*` variable and `SESSION_FILESTORE_PATH`
    /// (names in any case). Other variables are ignored, `SESSION_CONFIG` included (see
    /// [`env_with_file`](Self::env_with_file)).
    pub fn env<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        if self.error.is_none() {
            let entries: Vec<(String, Raw)> = vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(k, _)| names::is_session_key(k))
                .map(|(k, v)| (k, Raw::Text(v)))
                .collect();
            if let Err(e) = self.apply_entries(entries, "the environment") {
                self.error = Some(e);
            }
        }
        self
    }

    /// Applies the file named by `SESSION_CONFIG` (when set and not empty) among `vars`, then
    /// the `SESSION_REDIS_*` variables among them: the environment beats the file.
    pub fn env_with_file<K, V>(self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let file = vars
            .iter()
            .find(|(k, v)| k == CONFIG_FILE_VAR && !v.trim().is_empty())
            .map(|(_, v)| PathBuf::from(v.trim()));
        let this = match file {
            Some(path) => self.file(path),
            None => self,
        };
        this.env(vars)
    }

    /// Applies the real process environment: the `SESSION_CONFIG` file, then
    /// `SESSION_REDIS_*`. A session variable whose value is not UTF-8 is an error.
    pub fn process_env(mut self) -> Self {
        let mut vars = Vec::new();
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str() else { continue };
            if !(names::is_session_key(k) || k == CONFIG_FILE_VAR) {
                continue;
            }
            match v.into_string() {
                Ok(v) => vars.push((k.to_owned(), v)),
                Err(_) => {
                    self.error.get_or_insert(ConfigError {
                        kind: ConfigErrorKind::Source,
                        key: k.to_owned(),
                        value: "(not UTF-8)".into(),
                        expected: "a UTF-8 value".into(),
                    });
                }
            }
        }
        self.env_with_file(vars)
    }

    /// Sets one option by any of its names (case-insensitive), with its value in the text
    /// syntax of a config file. Each call is its own source: a later call wins.
    pub fn set(mut self, name: &str, value: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.apply_entries(
                vec![(name.to_owned(), Raw::Text(value.to_owned()))],
                "the builder",
            ) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Edits the configuration directly, for options without a dedicated setter.
    pub fn configure(mut self, edit: impl FnOnce(&mut SessionConfig)) -> Self {
        let before = self.config.mode;
        edit(&mut self.config);
        if self.config.mode != before {
            self.mode_explicit = true;
        }
        self
    }

    /// `session_redis_mode`.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = mode;
        self.mode_explicit = true;
        self
    }
    /// `session_redis_key_expire`, in whole seconds; 0 = no expiry from this setting.
    pub fn key_expire(mut self, seconds: u64) -> Self {
        self.config.key_expire = seconds;
        self
    }
    /// `session_redis_prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }
    /// `session_filestore_path`.
    pub fn filestore_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.filestore_path = Some(path.into());
        self
    }
    /// `session_redis_url`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = Some(url.into());
        self
    }
    /// `session_redis_host` with one host (its port is `session_redis_port`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.host = vec![HostPort {
            host: host.into(),
            port: None,
        }];
        self
    }
    /// `session_redis_host` as a list (sentinels, cluster seed nodes).
    pub fn hosts(mut self, hosts: impl IntoIterator<Item = HostPort>) -> Self {
        self.config.host = hosts.into_iter().collect();
        self
    }
    /// `session_redis_port`.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }
    /// `session_redis_username`.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.config.username = Some(username.into());
        self
    }
    /// `session_redis_password`.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.config.password = Some(password.into());
        self
    }
    /// `session_redis_db`.
    pub fn db(mut self, db: i64) -> Self {
        self.config.db = db;
        self
    }
    /// `session_redis_unix_socket_path`.
    pub fn unix_socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.unix_socket_path = Some(path.into());
        self
    }
    /// `session_redis_socket_timeout`.
    pub fn socket_timeout(mut self, timeout: Duration) -> Self {
        self.config.socket_timeout = Some(timeout.as_secs_f64());
        self
    }
    /// `session_redis_socket_connect_timeout`.
    pub fn socket_connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.socket_connect_timeout = Some(timeout.as_secs_f64());
        self
    }
    /// `session_redis_max_connections`.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.config.max_connections = Some(max);
        self
    }
    /// `session_redis_single_connection_client`.
    pub fn single_connection_client(mut self, single: bool) -> Self {
        self.config.single_connection_client = single;
        self
    }
    /// `session_redis_sentinel_read_from_replicas` (sentinel mode).
    pub fn sentinel_read_from_replicas(mut self, enabled: bool) -> Self {
        self.config.sentinel_read_from_replicas = enabled;
        self
    }
    /// `session_redis_cluster_read_from_replicas` (cluster mode).
    pub fn cluster_read_from_replicas(mut self, enabled: bool) -> Self {
        self.config.cluster_read_from_replicas = enabled;
        self
    }
    /// `session_redis_master` (sentinel mode).
    pub fn master(mut self, master: impl Into<String>) -> Self {
        self.config.master = Some(master.into());
        self
    }
    /// `session_redis_sentinel_username` (sentinel mode).
    pub fn sentinel_username(mut self, username: impl Into<String>) -> Self {
        self.config.sentinel_username = Some(username.into());
        self
    }
    /// `session_redis_sentinel_password` (sentinel mode).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.config.sentinel_password = Some(password.into());
        self
    }

    /// Applies entries read elsewhere (the `setting` dict of a multi-backend).
    pub(crate) fn entries(mut self, entries: Vec<(String, Raw)>, source: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.apply_entries(entries, source) {
                self.error = Some(e);
            }
        }
        self
    }

    /// The configuration so far, without validation (for inspection).
    pub fn peek(&self) -> &SessionConfig {
        &self.config
    }

    /// Finishes: the first source error if any, then [`SessionConfig::validate`].
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        let config = self.build_unvalidated()?;
        config.validate()?;
        Ok(config)
    }

    /// Finishes without [`SessionConfig::validate`]: only errors of the sources themselves
    /// (unreadable file, unknown key, unreadable value, conflicting aliases). For tools that
    /// inspect or rewrite a configuration; a store must be given a validated one.
    pub fn build_unvalidated(self) -> Result<SessionConfig, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut config = self.config;
        if self.sentinel_implied && !self.mode_explicit {
            config.mode = Mode::Sentinel;
        }
        Ok(config)
    }

    fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let text = super::read_bounded(path)
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "stream did not contain valid UTF-8",
                    )
                })
            })
            .map_err(|e| ConfigError {
                kind: ConfigErrorKind::Source,
                key: CONFIG_FILE_VAR.into(),
                value: format!("`{shown}`"),
                expected: format!("a readable UTF-8 config file of at most 4 MiB ({e})"),
            })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let entries = if is_toml {
            toml_entries(&text, &shown)?
        } else {
            ini_entries(&text, &shown)?
        };
        self.apply_entries(entries, &format!("config file {shown}"))
    }

    /// Applies one source's entries: resolve names, parse values, refuse conflicting
    /// duplicates (an option and its alias with different values), then set the fields.
    fn apply_entries(
        &mut self,
        entries: Vec<(String, Raw)>,
        source: &str,
    ) -> Result<(), ConfigError> {
        let mut seen: HashMap<Field, (String, Setting, String)> = HashMap::new();
        let mut parsed = Vec::new();
        for (given, raw) in entries {
            let given = given.trim().to_owned();
            let resolved = names::lookup(&given).ok_or_else(|| unknown_key(&given, source))?;
            let spec = resolved.spec;
            let setting = read_setting(spec, &given, &raw).map_err(|mut e| {
                e.expected = in_source(e.expected, source);
                e
            })?;
            if spec.field == Field::weight && setting != Setting::Unset {
                return Err(ConfigError::invalid(
                    &given,
                    &raw.show(),
                    "no top-level weight: SESSION_REDIS_WEIGHT belongs inside a member of SESSION_REDIS_POOL (see docs/pool.md)",
                ));
            }
            let shown = parse::shown(spec, &raw);
            if let Some((other, previous, other_shown)) = seen.get(&spec.field) {
                if *previous != setting {
                    return Err(ConfigError {
                        kind: ConfigErrorKind::Conflict,
                        key: format!("{other}` and `{given}"),
                        value: format!("{other_shown} and {shown}"),
                        expected: in_source(
                            format!(
                                "one value: both names set `{}`; give only one of them",
                                spec.name
                            ),
                            source,
                        ),
                    });
                }
            }
            seen.insert(spec.field, (given.clone(), setting.clone(), shown));
            parsed.push((spec.field, resolved.implies_sentinel, setting));
        }
        for (field, implies_sentinel, setting) in parsed {
            if field == Field::mode {
                self.mode_explicit = setting != Setting::Unset;
            }
            if implies_sentinel {
                self.sentinel_implied = setting != Setting::Unset;
            }
            self.config.apply(field, setting);
        }
        Ok(())
    }
}

/// Reads one value for `spec`. Pools and multi-backends have their own readers, which name the
/// member and key in their errors; a multi-backend's settings are read as a source of their own.
fn read_setting(spec: &Spec, given: &str, raw: &Raw) -> Result<Setting, ConfigError> {
    match spec.kind {
        Kind::Pool => Ok(parse_pool(given, raw)?
            .map(Setting::Pool)
            .unwrap_or(Setting::Unset)),
        Kind::Multi => {
            let build = |entries, source: &str| {
                SessionConfigBuilder::new()
                    .entries(entries, source)
                    .build_unvalidated()
            };
            Ok(parse_multi(given, raw, &build)?
                .map(Setting::Multi)
                .unwrap_or(Setting::Unset))
        }
        _ => parse::parse_setting(spec, given, raw),
    }
}

fn unknown_key(given: &str, source: &str) -> ConfigError {
    let expected = match names::suggest(given) {
        Some(s) => format!("a known option: did you mean `{s}`?"),
        None => "a known option (see docs/configuration.md)".to_owned(),
    };
    ConfigError {
        kind: ConfigErrorKind::UnknownKey,
        key: given.to_owned(),
        // Never the value: a name nobody knows says nothing about whether its value is a
        // secret (`SESSION_REDIS_PW`, `SESSION_REDIS_PASSWD`), and the name is what to fix.
        value: REDACTED.to_owned(),
        expected: in_source(expected, source),
    }
}

/// The session entries of an Odoo-style INI file: keys at the top or in `[options]`, with
/// indented continuation lines; `#` and `;` comment lines; no interpolation (Odoo reads its
/// file with `RawConfigParser`).
fn ini_entries(text: &str, file: &str) -> Result<Vec<(String, Raw)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_options = true;
    let mut continuing = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            // A blank line ends a multi-line value, as in configparser.
            continuing = continuing && !trimmed.is_empty();
            continue;
        }
        if line.starts_with([' ', '\t']) && continuing {
            if let Some((_, v)) = out.last_mut() {
                v.push('\n');
                v.push_str(trimmed);
            }
            continue;
        }
        continuing = false;
        if trimmed.starts_with('[') {
            let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
                return Err(ConfigError {
                    kind: ConfigErrorKind::Source,
                    key: format!("{file} line {}", n + 1),
                    value: format!("`{trimmed}`"),
                    expected: "a section header such as [options]".into(),
                });
            };
            in_options = name.trim().eq_ignore_ascii_case("options");
            continue;
        }
        if !in_options {
            continue;
        }
        let split = trimmed.find(['=', ':']);
        let Some(at) = split else {
            if names::is_session_key(trimmed) {
                return Err(ConfigError {
                    kind: ConfigErrorKind::Source,
                    key: trimmed.to_owned(),
                    value: "(nothing)".into(),
                    expected: in_source(
                        format!("`{trimmed} = value`"),
                        &format!("config file {file}"),
                    ),
                });
            }
            continue;
        };
        let key = trimmed[..at].trim();
        if names::is_session_key(key) {
            out.push((key.to_owned(), trimmed[at + 1..].trim().to_owned()));
            continuing = true;
        }
    }
    Ok(out.into_iter().map(|(k, v)| (k, Raw::Text(v))).collect())
}

/// The session entries of a TOML file: flat keys at the top level or under `[options]`.
fn toml_entries(text: &str, file: &str) -> Result<Vec<(String, Raw)>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // The full error quotes the offending line, which may hold a password: keep only
        // the message and the line number.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        ConfigError {
            kind: ConfigErrorKind::Source,
            key: CONFIG_FILE_VAR.into(),
            value: format!("`{file}`"),
            expected: format!(
                "valid TOML ({}{})",
                e.message().trim(),
                line.map(|l| format!(", line {l}")).unwrap_or_default()
            ),
        }
    })?;
    let mut out = Vec::new();
    let mut push = |k: &str, v: &toml::Value| {
        if names::is_session_key(k) {
            let raw = match v {
                toml::Value::String(s) => Raw::Text(s.clone()),
                other => Raw::Typed(toml_value(other)),
            };
            out.push((k.to_owned(), raw));
        }
    };
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) if k.eq_ignore_ascii_case("options") => {
                for (k, v) in t {
                    push(k, v);
                }
            }
            _ => push(k, v),
        }
    }
    Ok(out)
}

fn toml_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Str(s.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(a) => Value::List(a.iter().map(toml_value).collect()),
        toml::Value::Table(t) => Value::Dict(
            t.iter()
                .map(|(k, v)| (Value::Str(k.clone()), toml_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_kind() {
        let kind = |b: SessionConfigBuilder| b.build().unwrap_err().kind;
        let b = SessionConfig::builder;
        assert_eq!(
            kind(b().set("session_redis_hots", "h")),
            ConfigErrorKind::UnknownKey
        );
        assert_eq!(
            kind(b().env([
                ("SESSION_REDIS_MASTER", "a"),
                ("SESSION_REDIS_SENTINEL_MASTER_ALIAS", "b")
            ])),
            ConfigErrorKind::Conflict
        );
        assert_eq!(
            kind(b().file("/nonexistent/session.conf")),
            ConfigErrorKind::Source
        );
        assert_eq!(
            kind(b().set("session_redis_port", "x")),
            ConfigErrorKind::Invalid
        );
        assert_eq!(
            kind(b().set("session_redis_encoding", "latin-1")),
            ConfigErrorKind::Unsupported
        );
    }
}
