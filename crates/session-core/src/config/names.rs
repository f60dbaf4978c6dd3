//! The option names: every `session_redis_*` option, the django-redis-sessions aliases, and
//! the lookup (case-insensitive) with "did you mean" suggestions for typos.

/// Which field of [`SessionConfig`](super::SessionConfig) an option sets. Aliases map onto the
/// same field, which is how a conflict between an option and its alias is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Mode,
    KeyExpire,
    Prefix,
    FilestorePath,
    Url,
    Host,
    Port,
    Username,
    Password,
    Db,
    UnixSocketPath,
    SocketTimeout,
    SocketConnectTimeout,
    SocketKeepalive,
    SocketKeepaliveOptions,
    Encoding,
    EncodingErrors,
    Charset,
    Errors,
    DecodeResponses,
    RetryOnTimeout,
    Ssl,
    SslKeyfile,
    SslCertfile,
    SslCertReqs,
    SslCaCerts,
    SslCaPath,
    SslCaData,
    SslCheckHostname,
    SslPassword,
    SslValidateOcsp,
    SslValidateOcspStapled,
    SslOcspContext,
    SslOcspExpectedCert,
    MaxConnections,
    SingleConnectionClient,
    HealthCheckInterval,
    ClientName,
    Master,
    MigrateFromFilestore,
    SentinelUsername,
    SentinelPassword,
    SentinelReadFromReplicas,
    ClusterReadFromReplicas,
    /// django-redis-sessions' weighted pool.
    Pool,
    /// django-redis-sessions' pool weight: only inside a pool member; rejected at the top level.
    Weight,
    /// acs_redis_multi_sessions' backends with read / write / delete modes.
    MultiBackends,
}

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

const fn spec(name: &'static str, field: Field, kind: Kind) -> Spec {
    Spec {
        name,
        field,
        kind,
        secret: false,
    }
}

const fn secret(name: &'static str, field: Field) -> Spec {
    Spec {
        name,
        field,
        kind: Kind::Str,
        secret: true,
    }
}

/// Every canonical option name.
pub(crate) static OPTIONS: &[Spec] = &[
    spec("session_redis_mode", Field::Mode, Kind::Mode),
    spec("session_redis_key_expire", Field::KeyExpire, Kind::U64),
    spec("session_redis_prefix", Field::Prefix, Kind::Str),
    spec("session_filestore_path", Field::FilestorePath, Kind::Path),
    spec("session_redis_url", Field::Url, Kind::Str),
    spec("session_redis_host", Field::Host, Kind::Hosts),
    spec("session_redis_port", Field::Port, Kind::Port),
    spec("session_redis_username", Field::Username, Kind::Str),
    secret("session_redis_password", Field::Password),
    spec("session_redis_db", Field::Db, Kind::I64),
    spec(
        "session_redis_unix_socket_path",
        Field::UnixSocketPath,
        Kind::Path,
    ),
    spec(
        "session_redis_socket_timeout",
        Field::SocketTimeout,
        Kind::Secs,
    ),
    spec(
        "session_redis_socket_connect_timeout",
        Field::SocketConnectTimeout,
        Kind::Secs,
    ),
    spec(
        "session_redis_socket_keepalive",
        Field::SocketKeepalive,
        Kind::Bool,
    ),
    spec(
        "session_redis_socket_keepalive_options",
        Field::SocketKeepaliveOptions,
        Kind::Keepalive,
    ),
    spec("session_redis_encoding", Field::Encoding, Kind::Str),
    spec(
        "session_redis_encoding_errors",
        Field::EncodingErrors,
        Kind::Str,
    ),
    spec("session_redis_charset", Field::Charset, Kind::Str),
    spec("session_redis_errors", Field::Errors, Kind::Str),
    spec(
        "session_redis_decode_responses",
        Field::DecodeResponses,
        Kind::Bool,
    ),
    spec(
        "session_redis_retry_on_timeout",
        Field::RetryOnTimeout,
        Kind::Bool,
    ),
    spec("session_redis_ssl", Field::Ssl, Kind::Bool),
    spec("session_redis_ssl_keyfile", Field::SslKeyfile, Kind::Path),
    spec("session_redis_ssl_certfile", Field::SslCertfile, Kind::Path),
    spec("session_redis_ssl_cert_reqs", Field::SslCertReqs, Kind::Str),
    spec("session_redis_ssl_ca_certs", Field::SslCaCerts, Kind::Path),
    spec("session_redis_ssl_ca_path", Field::SslCaPath, Kind::Path),
    spec("session_redis_ssl_ca_data", Field::SslCaData, Kind::Str),
    spec(
        "session_redis_ssl_check_hostname",
        Field::SslCheckHostname,
        Kind::Bool,
    ),
    secret("session_redis_ssl_password", Field::SslPassword),
    spec(
        "session_redis_ssl_validate_ocsp",
        Field::SslValidateOcsp,
        Kind::Bool,
    ),
    spec(
        "session_redis_ssl_validate_ocsp_stapled",
        Field::SslValidateOcspStapled,
        Kind::Bool,
    ),
    spec(
        "session_redis_ssl_ocsp_context",
        Field::SslOcspContext,
        Kind::Str,
    ),
    spec(
        "session_redis_ssl_ocsp_expected_cert",
        Field::SslOcspExpectedCert,
        Kind::Str,
    ),
    spec(
        "session_redis_max_connections",
        Field::MaxConnections,
        Kind::Usize,
    ),
    spec(
        "session_redis_single_connection_client",
        Field::SingleConnectionClient,
        Kind::Bool,
    ),
    spec(
        "session_redis_health_check_interval",
        Field::HealthCheckInterval,
        Kind::Secs,
    ),
    spec("session_redis_client_name", Field::ClientName, Kind::Str),
    spec("session_redis_master", Field::Master, Kind::Str),
    spec(
        "session_redis_migrate_from_filestore",
        Field::MigrateFromFilestore,
        Kind::Bool,
    ),
    spec(
        "session_redis_sentinel_username",
        Field::SentinelUsername,
        Kind::Str,
    ),
    secret("session_redis_sentinel_password", Field::SentinelPassword),
    spec(
        "session_redis_sentinel_read_from_replicas",
        Field::SentinelReadFromReplicas,
        Kind::Bool,
    ),
    spec(
        "session_redis_cluster_read_from_replicas",
        Field::ClusterReadFromReplicas,
        Kind::Bool,
    ),
    // The pool may hold passwords of its members: treat it as secret.
    Spec {
        name: "session_redis_pool",
        field: Field::Pool,
        kind: Kind::Pool,
        secret: true,
    },
    spec("session_redis_weight", Field::Weight, Kind::Raw),
    // Its settings may hold passwords too.
    Spec {
        name: "session_redis_multi_backends",
        field: Field::MultiBackends,
        kind: Kind::Multi,
        secret: true,
    },
];

/// A django-redis-sessions name that differs from the Odoo one.
#[derive(Debug)]
pub(crate) struct Alias {
    pub name: &'static str,
    pub target: &'static str,
    /// `SESSION_REDIS_SENTINEL_LIST` implies sentinel mode unless the mode is set explicitly.
    pub implies_sentinel: bool,
}

/// The aliases (lowercase; lookups are case-insensitive).
pub(crate) static ALIASES: &[Alias] = &[
    Alias {
        name: "session_redis_sentinel_list",
        target: "session_redis_host",
        implies_sentinel: true,
    },
    Alias {
        name: "session_redis_sentinel_master_alias",
        target: "session_redis_master",
        implies_sentinel: false,
    },
    Alias {
        name: "session_redis_unix_domain_socket_path",
        target: "session_redis_unix_socket_path",
        implies_sentinel: false,
    },
    Alias {
        name: MULTI_ALIAS,
        target: "session_redis_multi_backends",
        implies_sentinel: false,
    },
];

/// acs_redis_multi_sessions' name of `session_redis_multi_backends`, the one name this crate
/// reads that does not start with `session_`.
pub(crate) const MULTI_ALIAS: &str = "acs_session_multisessions_pool";

/// A name resolved to its option.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub spec: &'static Spec,
    pub implies_sentinel: bool,
}

/// True for names this crate owns: `session_redis_*` and `session_filestore_path`, any case.
pub(crate) fn is_session_key(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    lower.starts_with("session_redis_") || lower == "session_filestore_path" || lower == MULTI_ALIAS
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

/// True for names whose values must not be shown even though the name is unknown (a typo of
/// `password` still carries a password).
pub(crate) fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["pass", "secret", "token", "cred", "auth", "pwd", "pool"]
        .iter()
        .any(|w| lower.contains(w))
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
