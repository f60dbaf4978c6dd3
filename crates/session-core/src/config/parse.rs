//! Reading one option's value the way an Odoo config is read: `True`/`False`, numbers, `None`,
//! quoted strings, and the structured forms (host lists, keepalive dicts) for the option's
//! [`Kind`], into a typed [`Setting`].

use std::path::PathBuf;

use super::{
    host::{hosts_from_value, parse_hosts_text, parse_port_text},
    literal::{parse_literal, unquote, Raw, Value},
    names::{Kind, Spec},
    redact::{redact_url, REDACTED},
    ConfigError, ConfigErrorKind, Field, HostPort, KeepaliveOptions, Mode, MultiBackendConfig,
    PoolMember,
};

/// A parsed value, typed for its field. `Unset` puts the field back to its default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    Unset,
    Mode(Mode),
    Bool(bool),
    U64(u64),
    I64(i64),
    Port(u16),
    Usize(usize),
    Secs(f64),
    Str(String),
    Path(PathBuf),
    Hosts(Vec<HostPort>),
    Keepalive(KeepaliveOptions),
    Pool(Vec<PoolMember>),
    Multi(Vec<MultiBackendConfig>),
}

impl std::str::FromStr for Mode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_mode_text(&unquote(s)).ok_or_else(|| {
            ConfigError::invalid(
                "session_redis_mode",
                s,
                "one of redis, sentinel, cluster, or False/0/disabled/none to disable Redis",
            )
        })
    }
}

/// `None` (any case) and the empty string mean "unset".
fn is_none(t: &str) -> bool {
    t.is_empty() || t.eq_ignore_ascii_case("none")
}

/// Reads a boolean: `True`/`False` any case, `1`/`0`, `yes`/`no`, `on`/`off`.
pub(crate) fn parse_bool_text(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Reads a mode: `redis`, `sentinel`, `cluster`, or disabled (`False`, `0`, `disabled`, `none`,
/// `off`, `no`), any case.
pub(crate) fn parse_mode_text(t: &str) -> Option<Mode> {
    match t.trim().to_ascii_lowercase().as_str() {
        "redis" => Some(Mode::Redis),
        "sentinel" => Some(Mode::Sentinel),
        "cluster" => Some(Mode::Cluster),
        "false" | "0" | "disabled" | "none" | "off" | "no" => Some(Mode::Disabled),
        _ => None,
    }
}

/// Keepalive options from `{4: 60, 'TCP_KEEPINTVL': 10, socket.TCP_KEEPCNT: 3}`.
pub(crate) fn keepalive_from_value(v: &Value) -> Result<KeepaliveOptions, String> {
    let items = match v {
        Value::None => return Ok(KeepaliveOptions::default()),
        Value::Dict(items) => items,
        Value::Str(s) => {
            return keepalive_from_value(&parse_literal(s).map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "`{}` is not a dict such as {{'TCP_KEEPIDLE': 60, 'TCP_KEEPINTVL': 10}}",
                other.show()
            ))
        }
    };
    let mut out = KeepaliveOptions::default();
    for (k, v) in items {
        let name = match k {
            Value::Int(n) => n.to_string(),
            Value::Str(s) | Value::Ident(s) => s.to_ascii_uppercase(),
            other => return Err(format!("`{}` is not a TCP option", other.show())),
        };
        let name = name.strip_prefix("SOCKET.").unwrap_or(&name);
        let value = match v {
            Value::Int(n) => u32::try_from(*n).ok(),
            Value::Str(s) => s.trim().parse::<u32>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("`{}` for {name}: expected an integer ≥ 0", v.show()))?;
        let slot = match name {
            "4" | "TCP_KEEPIDLE" => &mut out.idle,
            "5" | "TCP_KEEPINTVL" => &mut out.interval,
            "6" | "TCP_KEEPCNT" => &mut out.count,
            "18" | "TCP_USER_TIMEOUT" => &mut out.user_timeout,
            other => {
                return Err(format!(
                    "unknown TCP option `{other}`: expected TCP_KEEPIDLE (4), TCP_KEEPINTVL (5), TCP_KEEPCNT (6) or TCP_USER_TIMEOUT (18)"
                ))
            }
        };
        *slot = Some(value);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Kind conversion

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Mode => "one of redis, sentinel, cluster, or False/0/disabled/none to disable Redis",
        Kind::Bool => "a boolean: True or False (any case), 1 or 0",
        Kind::U64 => "an integer ≥ 0",
        Kind::I64 => "an integer ≥ 0",
        Kind::Port => "a TCP port, an integer from 1 to 65535",
        Kind::Usize => "an integer ≥ 1",
        Kind::Secs => "a number of seconds ≥ 0 (integer or decimal)",
        Kind::Str => "a string",
        Kind::Path => "a file system path",
        Kind::Hosts => "a host list: host:port,host:port or [('host', port), ('host2', port)]",
        Kind::Keepalive => {
            "a dict such as {'TCP_KEEPIDLE': 60, 'TCP_KEEPINTVL': 10} or {4: 60, 5: 10}"
        }
        Kind::Pool => "a list of pool members",
        Kind::Multi => "a list of backends",
        Kind::Raw => "a value",
    }
}

/// How a value given for `spec` is shown in errors: never a secret, nor a URL's password.
pub(crate) fn shown(spec: &Spec, raw: &Raw) -> String {
    match raw {
        _ if spec.secret => REDACTED.to_owned(),
        Raw::Text(t) | Raw::Typed(Value::Str(t)) if spec.field == Field::url => {
            format!("`{}`", redact_url(t))
        }
        // A URL of the wrong type (a TOML list of URLs) is not taken apart: hide all of it.
        Raw::Typed(_) if spec.field == Field::url => REDACTED.to_owned(),
        // A host list may hold a `redis://:password@host` URL written where a host belongs.
        other if spec.kind == Kind::Hosts => redact_url(&other.show()),
        other => other.show(),
    }
}

/// Reads a raw value for an option. `given` is the name as written, used in errors.
///
/// Pool and multi-backend lists are read by their own modules, which name the member and key
/// in their errors; the caller dispatches those.
pub(crate) fn parse_setting(spec: &Spec, given: &str, raw: &Raw) -> Result<Setting, ConfigError> {
    let shown = shown(spec, raw);
    let fail = |detail: Option<String>| {
        let mut expected = expected(spec.kind).to_owned();
        if let Some(d) = detail.filter(|_| !spec.secret) {
            expected = format!("{expected} ({d})");
        }
        ConfigError {
            kind: ConfigErrorKind::Invalid,
            key: given.to_owned(),
            value: shown.clone(),
            expected,
        }
    };
    // redis-py reads ssl_cert_reqs None (and "none") as CERT_NONE, not as "unset".
    if spec.field == Field::ssl_cert_reqs {
        let none = match raw {
            Raw::Text(t) => t.trim().eq_ignore_ascii_case("none"),
            Raw::Typed(Value::None) => true,
            Raw::Typed(Value::Str(s)) => s.trim().eq_ignore_ascii_case("none"),
            Raw::Typed(_) => false,
        };
        if none {
            return Ok(Setting::Str("none".into()));
        }
    }
    let value = match raw {
        Raw::Typed(v) => v.clone(),
        Raw::Text(t) => {
            let t = t.trim();
            if is_none(t) {
                return Ok(match spec.kind {
                    Kind::Mode if !t.is_empty() => Setting::Mode(Mode::Disabled),
                    _ => Setting::Unset,
                });
            }
            return text_setting(spec.kind, t).map_err(fail);
        }
    };
    typed_setting(spec.kind, &value).map_err(fail)
}

fn text_setting(kind: Kind, t: &str) -> Result<Setting, Option<String>> {
    // Structured kinds read the literal themselves; scalars drop one level of quotes first.
    match kind {
        Kind::Hosts => return parse_hosts_text(t).map(Setting::Hosts).map_err(Some),
        Kind::Keepalive => {
            let v = parse_literal(t).map_err(Some)?;
            return keepalive_from_value(&v)
                .map(Setting::Keepalive)
                .map_err(Some);
        }
        _ => {}
    }
    let t = unquote(t);
    let t = t.as_str();
    match kind {
        Kind::Mode => parse_mode_text(t).map(Setting::Mode).ok_or(None),
        Kind::Bool => parse_bool_text(t).map(Setting::Bool).ok_or(None),
        Kind::U64 => t.parse::<u64>().map(Setting::U64).map_err(|_| None),
        Kind::I64 => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Setting::I64(n)),
            _ => Err(None),
        },
        Kind::Port => parse_port_text(t).map(Setting::Port).ok_or(None),
        Kind::Usize => match t.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Setting::Usize(n)),
            _ => Err(None),
        },
        Kind::Secs => match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 0.0 => Ok(Setting::Secs(f)),
            _ => Err(None),
        },
        Kind::Str | Kind::Raw => Ok(Setting::Str(t.to_owned())),
        Kind::Path => Ok(Setting::Path(PathBuf::from(t))),
        Kind::Hosts | Kind::Keepalive | Kind::Pool | Kind::Multi => {
            unreachable!("read above, or by pool.rs and multi.rs")
        }
    }
}

fn typed_setting(kind: Kind, v: &Value) -> Result<Setting, Option<String>> {
    if let Value::Str(s) = v {
        if kind != Kind::Str {
            let t = s.trim();
            if is_none(t) {
                return Ok(match kind {
                    Kind::Mode if !t.is_empty() => Setting::Mode(Mode::Disabled),
                    _ => Setting::Unset,
                });
            }
            return text_setting(kind, t);
        }
    }
    match (kind, v) {
        (Kind::Mode, Value::Bool(false)) | (Kind::Mode, Value::Int(0)) => {
            Ok(Setting::Mode(Mode::Disabled))
        }
        (Kind::Bool, Value::Bool(b)) => Ok(Setting::Bool(*b)),
        (Kind::Bool, Value::Int(n @ (0 | 1))) => Ok(Setting::Bool(*n == 1)),
        (Kind::U64, Value::Int(n)) if *n >= 0 => Ok(Setting::U64(*n as u64)),
        (Kind::I64, Value::Int(n)) if *n >= 0 => Ok(Setting::I64(*n)),
        (Kind::Port, Value::Int(n)) => u16::try_from(*n)
            .ok()
            .filter(|p| *p != 0)
            .map(Setting::Port)
            .ok_or(None),
        (Kind::Usize, Value::Int(n)) if *n >= 1 => Ok(Setting::Usize(*n as usize)),
        (Kind::Secs, Value::Int(n)) if *n >= 0 => Ok(Setting::Secs(*n as f64)),
        (Kind::Secs, Value::Float(f)) if f.is_finite() && *f >= 0.0 => Ok(Setting::Secs(*f)),
        (Kind::Str, Value::Str(s)) => Ok(Setting::Str(s.clone())),
        (Kind::Str, Value::Int(n)) => Ok(Setting::Str(n.to_string())),
        (_, Value::None) if kind != Kind::Mode => Ok(Setting::Unset),
        (Kind::Mode, Value::None) => Ok(Setting::Mode(Mode::Disabled)),
        (Kind::Hosts, v) => hosts_from_value(v).map(Setting::Hosts).map_err(Some),
        (Kind::Keepalive, v) => keepalive_from_value(v)
            .map(Setting::Keepalive)
            .map_err(Some),
        (Kind::Raw, _) => Ok(Setting::Str(v.show())),
        _ => Err(None),
    }
}
