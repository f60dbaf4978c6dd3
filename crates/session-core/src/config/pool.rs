//! `session_redis_pool`: django-redis-sessions' `SESSION_REDIS_POOL`, sessions partitioned
//! between standalone Redis servers by weight. `docs/pool.md` describes it.

use std::{fmt, path::PathBuf};

use super::{
    host::parse_host_text,
    literal::{dict, dict_key, list_items, literal_value, Raw, Value},
    redact::{redact_url, REDACTED},
    ConfigError, ConfigErrorKind, HostPort, SessionConfig,
};

/// One member of `session_redis_pool`.
///
/// A member inherits every top-level option (prefix, timeouts, TLS, ...) and overrides its
/// address (`host`/`port`, `unix_socket_path` or `url`: exactly one), `db` and `password`.
/// Unset (`None`) `port`, `db` and `password` fall back to the top-level values.
///
/// `Debug` never shows the password (nor the one inside a URL, nor a URL given as the host).
/// Serialized with django-redis-sessions' member keys, as the pool's parser reads them.
#[derive(Clone, PartialEq, serde::Serialize)]
pub struct PoolMember {
    /// `SESSION_REDIS_HOST`: host name or address (`host:port` accepted).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::serde_impl::url"
    )]
    #[serde(rename = "SESSION_REDIS_HOST")]
    pub host: Option<String>,
    /// `SESSION_REDIS_PORT`; `None` = the top-level `session_redis_port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "SESSION_REDIS_PORT")]
    pub port: Option<u16>,
    /// `SESSION_REDIS_DB`; `None` = the top-level `session_redis_db`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "SESSION_REDIS_DB")]
    pub db: Option<i64>,
    /// `SESSION_REDIS_PASSWORD`; `None` (or empty) = the top-level password.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::serde_impl::secret"
    )]
    #[serde(rename = "SESSION_REDIS_PASSWORD")]
    pub password: Option<String>,
    /// `SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH")]
    pub unix_socket_path: Option<PathBuf>,
    /// `SESSION_REDIS_URL`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::serde_impl::url"
    )]
    #[serde(rename = "SESSION_REDIS_URL")]
    pub url: Option<String>,
    /// `SESSION_REDIS_WEIGHT`: the member's share of the sessions, relative to the others; ≥ 1.
    #[serde(rename = "SESSION_REDIS_WEIGHT")]
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
            .field("host", &self.host.as_deref().map(redact_url))
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
    /// the top-level port and db filled in (a host that is not one, such as a URL with a
    /// password, redacted as a URL: `validate` refuses it). Reordering members or changing a
    /// password or a weight keeps identities; changing an address changes it (and moves its
    /// sessions).
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
            Err(_) => format!("{}/{db}", redact_url(self.host.as_deref().unwrap_or(""))),
        }
    }

    pub(crate) fn host_port(&self, top: &SessionConfig) -> Result<HostPort, String> {
        let mut hp = parse_host_text(self.host.as_deref().unwrap_or("").trim())?;
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
        // The top-level port is for the members given by host: a member given by URL or
        // socket has its address whole, and validation refuses a port beside it.
        if self.url.is_some() || self.unix_socket_path.is_some() {
            c.port = SessionConfig::default().port;
        }
        if let Some(url) = &self.url {
            c.url = Some(url.clone());
        } else if let Some(p) = &self.unix_socket_path {
            c.unix_socket_path = Some(p.clone());
        } else if let Ok(hp) = self.host_port(top) {
            // The member's port, its host's own or the top-level one, is the one it uses:
            // the top-level port left beside a host with another would be refused as unused.
            c.port = hp.port.unwrap_or(c.port);
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

    /// The member as a Python literal dict, secrets redacted.
    fn show(&self) -> String {
        let mut parts = Vec::new();
        let q = |s: &str| format!("{s:?}");
        if let Some(h) = &self.host {
            parts.push(format!("'SESSION_REDIS_HOST': {}", q(&redact_url(h))));
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

const POOL_EXAMPLE: &str =
    "[{'SESSION_REDIS_HOST': 'localhost', 'SESSION_REDIS_PORT': 6379, 'SESSION_REDIS_WEIGHT': 1}]";

/// Reads `session_redis_pool`; `given` is the option's name as written.
pub(crate) fn parse_pool(given: &str, raw: &Raw) -> Result<Option<Vec<PoolMember>>, ConfigError> {
    let Some(v) = literal_value(given, raw, POOL_EXAMPLE)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, item) in list_items(given, &v, POOL_EXAMPLE)?.iter().enumerate() {
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
                    // A URL of the wrong type (a list of URLs) is not taken apart.
                    _ => REDACTED.to_owned(),
                }
            } else if short == "host" {
                // A `redis://:password@host` URL is a common mistake for a host.
                match value {
                    Value::Str(s) => format!("`{}`", redact_url(s)),
                    _ => format!("`{}`", redact_url(&value.show())),
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
                    m.port = int(
                        value,
                        1,
                        65535,
                        "a TCP port, an integer from 1 to 65535, or None",
                    )?
                    .map(|p| p as u16)
                }
                "db" => {
                    m.db = int(
                        value,
                        0,
                        super::options::MAX_DB,
                        "an integer from 0 to 2147483647, or None",
                    )?
                }
                "password" => m.password = text(value)?,
                "unix_domain_socket_path" | "unix_socket_path" => {
                    m.unix_socket_path = text(value)?.map(PathBuf::from)
                }
                "url" => m.url = text(value)?,
                "weight" => {
                    m.weight = int(value, 1, u32::MAX as i64, "an integer ≥ 1")?.unwrap_or(1) as u32
                }
                _ => {
                    // An unknown key's value is never shown: whatever it is (a misspelt
                    // password, `SESSION_REDIS_PASSWD`), nothing says it is not a secret.
                    return Err(ConfigError::new(
                        ConfigErrorKind::UnknownKey,
                        &key,
                        REDACTED,
                        "a pool member key: SESSION_REDIS_HOST, SESSION_REDIS_PORT, SESSION_REDIS_DB, SESSION_REDIS_PASSWORD, SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH, SESSION_REDIS_URL or SESSION_REDIS_WEIGHT (other options are set once, at the top level, and every member inherits them)",
                    ));
                }
            }
        }
        out.push(m);
    }
    Ok(Some(out))
}
