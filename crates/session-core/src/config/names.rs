//! The option names: every `session_redis_*` option, the django-redis-sessions aliases, and
//! the lookup (case-insensitive) with "did you mean" suggestions for typos. The names
//! themselves (`OPTIONS`, `ALIASES`) are generated from the option table in `options.rs`.

use super::{Field, ALIASES, OPTIONS};

/// How a value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Mode,
    Bool,
    /// Integer ≥ 0 (seconds for key_expire).
    U64,
    /// Integer ≥ 0 kept as i64 (db).
    I64,
    Port,
    Usize,
    /// Seconds, integer or float.
    Secs,
    Str,
    Path,
    Hosts,
    Keepalive,
    /// A list of pool members (Python literal or TOML array of tables).
    Pool,
    /// A list of multi-backends (Python literal or TOML array of tables).
    Multi,
    /// Anything: only "unset or not" matters (weight).
    Raw,
}

/// One option: canonical (lowercase) name, field, value kind, and whether its value is a
/// secret that must never be shown.
#[derive(Debug)]
pub(crate) struct Spec {
    pub name: &'static str,
    pub field: Field,
    pub kind: Kind,
    pub secret: bool,
}

/// A django-redis-sessions name that differs from the Odoo one.
#[derive(Debug)]
pub(crate) struct Alias {
    pub name: &'static str,
    pub target: &'static str,
    /// `SESSION_REDIS_SENTINEL_LIST` implies sentinel mode unless the mode is set explicitly.
    pub implies_sentinel: bool,
}

/// A name resolved to its option.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub spec: &'static Spec,
    pub implies_sentinel: bool,
}

/// True for names this crate owns: `session_redis_*`, `session_cookie_*` (a typo there is an
/// error, not ignored), the other names of the table (`session_filestore_path`, django's
/// `session_expire_at_browser_close` and `session_save_every_request`) and
/// `acs_session_multisessions_pool`, any case.
pub(crate) fn is_session_key(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    // Besides the `session_redis_` family, the table has two more: `session_filestore_path`
    // and acs_redis_multi_sessions' `acs_session_multisessions_pool`.
    lower.starts_with("session_redis_")
        || lower.starts_with("session_cookie_")
        || OPTIONS.iter().any(|s| s.name == lower)
        || ALIASES.iter().any(|a| a.name == lower)
}

/// Finds an option by any of its names, case-insensitively.
pub(crate) fn lookup(name: &str) -> Option<Resolved> {
    let lower = name.trim().to_ascii_lowercase();
    if let Some(spec) = OPTIONS.iter().find(|s| s.name == lower) {
        return Some(Resolved {
            spec,
            implies_sentinel: false,
        });
    }
    let alias = ALIASES.iter().find(|a| a.name == lower)?;
    let spec = OPTIONS
        .iter()
        .find(|s| s.name == alias.target)
        .expect("alias targets exist");
    Some(Resolved {
        spec,
        implies_sentinel: alias.implies_sentinel,
    })
}

/// The closest known name to an unknown one, spelled in the same case style (an upper-case
/// environment variable gets an upper-case suggestion).
pub(crate) fn suggest(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    // Every name shares the `session_redis_` prefix, which would make any two names look alike:
    // compare what follows it.
    let tail = |n: &str| -> String {
        n.strip_prefix("session_redis_")
            .or_else(|| n.strip_prefix("session_"))
            .unwrap_or(n)
            .to_owned()
    };
    let wanted = tail(&lower);
    let best = OPTIONS
        .iter()
        .map(|s| s.name)
        .chain(ALIASES.iter().map(|a| a.name))
        .map(|candidate| (strsim::jaro_winkler(&wanted, &tail(candidate)), candidate))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    if best.0 < 0.8 {
        return None;
    }
    let upper = name.chars().any(|c| c.is_ascii_uppercase())
        && !name.chars().any(|c| c.is_ascii_lowercase());
    Some(if upper {
        best.1.to_ascii_uppercase()
    } else {
        best.1.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_exactly_one_spec() {
        for s in OPTIONS {
            assert_eq!(OPTIONS.iter().filter(|o| o.field == s.field).count(), 1);
            assert_eq!(s.name, s.name.to_ascii_lowercase());
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("session_redis_hots").as_deref(),
            Some("session_redis_host")
        );
        assert_eq!(
            suggest("SESSION_REDIS_PASWORD").as_deref(),
            Some("SESSION_REDIS_PASSWORD")
        );
        assert_eq!(
            suggest("session_redis_sentinel_master").as_deref(),
            Some("session_redis_sentinel_master_alias")
        );
        assert_eq!(suggest("session_redis_zzzzqqq"), None);
    }
}
