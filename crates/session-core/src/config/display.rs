//! Showing a configuration: `Display` (the options that differ from the defaults, in the
//! syntax of a config file) and the value forms it uses.

use std::{fmt, path::PathBuf};

use super::{
    multi::show_multi,
    pool::show_pool,
    redact::{redact_url, shorten, REDACTED},
    HostPort, Mode, MultiBackendConfig, PoolMember, SessionConfig,
};

/// The options that differ from the defaults, one `session_redis_* = value` per line in the
/// syntax of a config file (mode always first), secrets shown as `<redacted>`. Handy for a
/// start-up log line.
impl fmt::Display for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.entries().into_iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{key} = {value}")?;
        }
        Ok(())
    }
}

pub(crate) fn py_bool(b: bool) -> String {
    if b { "True" } else { "False" }.into()
}

fn secs(f: f64) -> String {
    // Whole seconds print without a fraction, like an Odoo config writes them.
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Shows `Some(<redacted>)` for a set secret, in `Debug`.
pub(crate) struct Secret<'a>(pub &'a Option<String>);

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => write!(f, "Some({REDACTED})"),
            None => f.write_str("None"),
        }
    }
}

// How `SessionConfig::entries` shows each option, as the option table names them: the value
// and the default in, the text of a config-file line out, or `None` to leave the option out.

/// Always shown: the mode opens every listing.
pub(crate) fn mode(v: &Mode, _: &Mode) -> Option<String> {
    Some(v.to_string())
}

/// Shown when it differs from the default.
pub(crate) fn changed<T: PartialEq + fmt::Display>(v: &T, default: &T) -> Option<String> {
    (v != default).then(|| v.to_string())
}

/// Shown quoted when it differs from the default: a prefix may end in a space or a colon.
pub(crate) fn quoted(v: &str, default: &str) -> Option<String> {
    (v != default).then(|| format!("{v:?}"))
}

pub(crate) fn path(v: &Option<PathBuf>, _: &Option<PathBuf>) -> Option<String> {
    v.as_ref().map(|p| p.display().to_string())
}

pub(crate) fn url(v: &Option<String>, _: &Option<String>) -> Option<String> {
    v.as_deref().map(redact_url)
}

pub(crate) fn hosts(v: &[HostPort], _: &[HostPort]) -> Option<String> {
    (!v.is_empty()).then(|| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

pub(crate) fn text(v: &Option<String>, _: &Option<String>) -> Option<String> {
    v.clone()
}

pub(crate) fn secret(v: &Option<String>, _: &Option<String>) -> Option<String> {
    v.as_ref().map(|_| REDACTED.into())
}

/// Certificates and other long values, cut short.
pub(crate) fn shortened(v: &Option<String>, _: &Option<String>) -> Option<String> {
    v.as_deref().map(shorten)
}

pub(crate) fn seconds(v: &Option<f64>, _: &Option<f64>) -> Option<String> {
    v.map(secs)
}

pub(crate) fn value<T: fmt::Display>(v: &Option<T>, _: &Option<T>) -> Option<String> {
    v.as_ref().map(ToString::to_string)
}

/// A flag that is off by default: shown only when on.
pub(crate) fn flag(v: &bool, _: &bool) -> Option<String> {
    v.then(|| py_bool(true))
}

pub(crate) fn boolean(v: &Option<bool>, _: &Option<bool>) -> Option<String> {
    v.map(py_bool)
}

pub(crate) fn pool(v: &[PoolMember], _: &[PoolMember]) -> Option<String> {
    (!v.is_empty()).then(|| show_pool(v))
}

pub(crate) fn multi(v: &[MultiBackendConfig], _: &[MultiBackendConfig]) -> Option<String> {
    (!v.is_empty()).then(|| show_multi(v))
}
