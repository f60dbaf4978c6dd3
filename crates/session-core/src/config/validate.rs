//! Checking a configuration as a whole: every option is honoured, or rejected here with its
//! reason. Each source has already checked each value on its own; these are the rules about
//! values that only make sense together (modes, TLS, the URL rule, pools and multi-backends).

use std::collections::{HashMap, HashSet};

use super::{
    host::check_host,
    options::{MAX_CONNECTIONS, MAX_DB, MAX_SECONDS},
    redact::{redact_url, shorten, REDACTED},
    BackendMode, ConfigError, Mode, MultiBackendConfig, PoolMember, SessionConfig,
};

/// Why a secret reading `<redacted>` is refused.
const REDACTED_BACK: &str = "the real secret: `<redacted>` is how a serialized configuration shows a secret, and a serialized configuration is for display, not to be loaded back";

impl SessionConfig {
    /// Checks the combination of options: every option is honoured, or rejected here with
    /// its reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_values()?;
        self.validate_cookie()?;
        self.validate_unsupported()?;
        self.validate_pool_and_multi()?;
        self.validate_topology()
    }

    /// The cookie settings: each one ends up in a `Set-Cookie` header, where a `;` or a
    /// control character would split or smuggle attributes, and a browser silently drops a
    /// cookie it finds invalid (a bad name, `SameSite=None` without `Secure`), which would
    /// look like sessions that never stick.
    pub(crate) fn validate_cookie(&self) -> Result<(), ConfigError> {
        fn attribute_text(v: &str) -> bool {
            !v.chars().any(|c| c == ';' || c == ',' || c.is_control())
        }
        if let Some(name) = &self.cookie_name {
            // RFC 6265's cookie-name: an RFC 7230 token.
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || name.len() > 64 || !name.chars().all(token) {
                return Err(ConfigError::invalid(
                    "session_cookie_name",
                    &shorten(name),
                    "a cookie name of 1 to 64 letters, digits or `!#$%&'*+-.^_`|~` (no spaces, `=`, `;` or quotes)",
                ));
            }
        }
        if let Some(age) = self.cookie_age {
            let max = crate::MAX_TTL.as_secs();
            if age == 0 || age > max {
                return Err(ConfigError::invalid(
                    "session_cookie_age",
                    &age.to_string(),
                    &format!("1 to {max} seconds (100 years); leave it unset for the defaults"),
                ));
            }
        }
        if let Some(domain) = &self.cookie_domain {
            if domain.is_empty()
                || domain.len() > 253
                || !attribute_text(domain)
                || domain.contains(char::is_whitespace)
            {
                return Err(ConfigError::invalid(
                    "session_cookie_domain",
                    &shorten(domain),
                    "a domain name of at most 253 bytes without spaces, `;`, `,` or control characters; leave it unset for the host that set the cookie",
                ));
            }
        }
        if let Some(path) = &self.cookie_path {
            if !path.starts_with('/') || path.len() > 1024 || !attribute_text(path) {
                return Err(ConfigError::invalid(
                    "session_cookie_path",
                    &shorten(path),
                    "a path starting with `/`, at most 1024 bytes, without `;`, `,` or control characters",
                ));
            }
        }
        if let Some(same_site) = &self.cookie_samesite {
            let Some(parsed) = crate::plan::SameSitePolicy::parse(same_site) else {
                return Err(ConfigError::invalid(
                    "session_cookie_samesite",
                    &shorten(same_site),
                    "`Lax`, `Strict` or `None`",
                ));
            };
            if parsed == crate::plan::SameSitePolicy::None && self.cookie_secure == Some(false) {
                return Err(ConfigError::invalid(
                    "session_cookie_samesite",
                    same_site,
                    "`Lax` or `Strict` while `session_cookie_secure` is false: browsers drop a `SameSite=None` cookie that is not `Secure`",
                ));
            }
        }
        Ok(())
    }

    fn validate_values(&self) -> Result<(), ConfigError> {
        // A serialized configuration shows its secrets as `<redacted>` (serde_impl.rs): one
        // loaded back must not send that as a password and fail later as "wrong password".
        for (key, value) in [
            ("session_redis_password", &self.password),
            ("session_redis_sentinel_password", &self.sentinel_password),
            ("session_redis_ssl_password", &self.ssl_password),
        ] {
            if value.as_deref() == Some(REDACTED) {
                return Err(ConfigError::invalid(key, REDACTED, REDACTED_BACK));
            }
        }
        if self.url.as_deref().is_some_and(|u| u.contains(REDACTED)) {
            return Err(ConfigError::invalid(
                "session_redis_url",
                &redact_url(self.url.as_deref().unwrap_or_default()),
                REDACTED_BACK,
            ));
        }
        if self.port == 0 {
            return Err(ConfigError::invalid(
                "session_redis_port",
                "0",
                "a TCP port, an integer from 1 to 65535",
            ));
        }
        if !(0..=MAX_DB).contains(&self.db) {
            return Err(ConfigError::invalid(
                "session_redis_db",
                &self.db.to_string(),
                &format!("an integer from 0 to {MAX_DB}"),
            ));
        }
        // Redis rejects an expiry whose absolute time (now + TTL, in milliseconds) overflows;
        // catch it here rather than as a failed write on every request.
        // Redis refuses a single value above 512 MiB: a larger limit could never be reached
        // and only hides a typo (a limit in bits, or with a unit suffix dropped).
        const MAX_SESSION_SIZE: u64 = 512 * 1024 * 1024;
        if self.max_session_size > MAX_SESSION_SIZE {
            return Err(ConfigError::invalid(
                "session_redis_max_session_size",
                &self.max_session_size.to_string(),
                &format!("at most {MAX_SESSION_SIZE} bytes (512 MiB, Redis' limit for one value); 0 for no limit"),
            ));
        }
        if let Some(key) = &self.index_key {
            if !crate::index::valid_index_key(key) {
                return Err(ConfigError::invalid(
                    "session_redis_index_key",
                    key,
                    "a session key of 1 to 64 characters among A-Z a-z 0-9 _ . - : (such as `user`)",
                ));
            }
        }
        // The same bound as every TTL a backend sets (crate::MAX_TTL).
        let max = crate::MAX_TTL.as_secs();
        if self.key_expire > max {
            return Err(ConfigError::invalid(
                "session_redis_key_expire",
                &self.key_expire.to_string(),
                &format!("at most {max} seconds (100 years)"),
            ));
        }
        for (key, value) in [
            ("session_redis_socket_timeout", self.socket_timeout),
            (
                "session_redis_socket_connect_timeout",
                self.socket_connect_timeout,
            ),
        ] {
            if let Some(v) = value {
                if !(v.is_finite() && v > 0.0 && v < MAX_SECONDS) {
                    return Err(ConfigError::invalid(
                        key,
                        &v.to_string(),
                        "a positive number of seconds below 1e9 (unset it for the default)",
                    ));
                }
            }
        }
        if let Some(v) = self.health_check_interval {
            // The same bound as the timeouts: the interval is added to instants, which
            // panics on overflow, and nobody means a check every 31 years.
            if !(v.is_finite() && (0.0..MAX_SECONDS).contains(&v)) {
                return Err(ConfigError::invalid(
                    "session_redis_health_check_interval",
                    &v.to_string(),
                    "a number of seconds ≥ 0 and below 1e9",
                ));
            }
        }
        if let Some(opts) = self.socket_keepalive_options {
            // Linux' limits for the three keepalive knobs; 0 is refused by setsockopt.
            for (name, value, max) in [
                ("TCP_KEEPIDLE", opts.idle, 32767),
                ("TCP_KEEPINTVL", opts.interval, 32767),
                ("TCP_KEEPCNT", opts.count, 127),
            ] {
                if let Some(v) = value.filter(|v| *v == 0 || *v > max) {
                    return Err(ConfigError::invalid(
                        "session_redis_socket_keepalive_options",
                        &format!("{name}: {v}"),
                        &format!("{name} from 1 to {max}"),
                    ));
                }
            }
            // redis-py ignores them without socket_keepalive; whoever wrote them expects
            // keepalive, so say it is off rather than silently do nothing.
            if !self.socket_keepalive && !opts.is_empty() {
                return Err(ConfigError::invalid(
                    "session_redis_socket_keepalive_options",
                    &opts.to_string(),
                    "to be set together with session_redis_socket_keepalive = True (the options only tune keepalive, which is off)",
                ));
            }
        }
        if let Some(n) = self
            .max_connections
            .filter(|n| !(1..=MAX_CONNECTIONS).contains(n))
        {
            return Err(ConfigError::invalid(
                "session_redis_max_connections",
                &n.to_string(),
                &format!("an integer from 1 to {MAX_CONNECTIONS}"),
            ));
        }
        for h in &self.host {
            // The sources' parser refuses what `check_host` refuses; a `HostPort` made in
            // code (a `redis://:password@host` URL as its host) has not been through it.
            if check_host(h.host.trim()).is_err() || h.port == Some(0) {
                return Err(ConfigError::invalid(
                    "session_redis_host",
                    &h.to_string(),
                    "host names or addresses (no URL: a URL goes in session_redis_url) with ports from 1 to 65535",
                ));
            }
        }
        if let Some(p) = &self.filestore_path {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "session_filestore_path",
                    "",
                    "a directory path (unset it for the default)",
                ));
            }
        }
        if let Some(p) = &self.unix_socket_path {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    "session_redis_unix_socket_path",
                    "",
                    "the path of Redis' unix socket",
                ));
            }
        }
        if let Some(url) = &self.url {
            validate_url(url)?;
        }
        // Python codec settings: Rust works in bytes and UTF-8, which is what these say.
        for (key, value) in [
            ("session_redis_encoding", &self.encoding),
            ("session_redis_charset", &self.charset),
        ] {
            if let Some(v) = value {
                let norm = v.trim().to_ascii_lowercase().replace('_', "-");
                if norm != "utf-8" && norm != "utf8" {
                    return Err(ConfigError::unsupported(
                        key,
                        v,
                        "utf-8: this library stores session data as UTF-8 JSON; other codecs are a Python (redis-py) setting with no equivalent here",
                    ));
                }
            }
        }
        for (key, value) in [
            ("session_redis_encoding_errors", &self.encoding_errors),
            ("session_redis_errors", &self.errors),
        ] {
            if let Some(v) = value {
                if !v.trim().eq_ignore_ascii_case("strict") {
                    return Err(ConfigError::unsupported(
                        key,
                        v,
                        "strict: invalid UTF-8 is always an error here; other error handlers are a Python (redis-py) setting with no equivalent",
                    ));
                }
            }
        }
        Ok(())
    }

    /// `session_redis_pool` and `session_redis_multi_backends`: exclusive, and each replaces the
    /// top-level address, which must then be unset rather than silently ignored.
    fn validate_pool_and_multi(&self) -> Result<(), ConfigError> {
        let (key, what) = match (self.pool.is_empty(), self.multi_backends.is_empty()) {
            (true, true) => return Ok(()),
            (false, false) => {
                return Err(ConfigError::invalid(
                    "session_redis_pool",
                    "(set)",
                    "unset when session_redis_multi_backends is set: put the pool inside one backend's setting instead",
                ))
            }
            (false, true) => ("session_redis_pool", "each pool member gives its own address"),
            (true, false) => (
                "session_redis_multi_backends",
                "each backend gives its own settings",
            ),
        };
        if self.mode != Mode::Redis {
            return Err(ConfigError::invalid(
                "session_redis_mode",
                self.mode.as_str(),
                &format!(
                    "redis (or unset) with {key}: {}",
                    if self.pool.is_empty() {
                        "each backend sets its own mode in its setting"
                    } else {
                        "a pool partitions sessions between standalone Redis servers; sentinel and cluster mode route by themselves"
                    }
                ),
            ));
        }
        let hosts = self
            .host
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for (option, set, shown) in [
            ("session_redis_host", !self.host.is_empty(), hosts),
            (
                "session_redis_url",
                self.url.is_some(),
                self.url.as_deref().map(redact_url).unwrap_or_default(),
            ),
            (
                "session_redis_unix_socket_path",
                self.unix_socket_path.is_some(),
                self.unix_socket_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    option,
                    &shown,
                    &format!("unset when {key} is set: {what}"),
                ));
            }
        }
        if !self.pool.is_empty() {
            let mut seen = HashMap::new();
            for (i, member) in self.pool.iter().enumerate() {
                member.validate(i, self)?;
                if let Some(j) = seen.insert(member.identity(self), i) {
                    return Err(ConfigError::invalid(
                        &format!("session_redis_pool[{i}]"),
                        &member.identity(self),
                        &format!("a server not already in the pool (member {j} has the same address and db)"),
                    ));
                }
            }
            return Ok(());
        }
        if self.migrate_from_filestore {
            return Err(ConfigError::invalid(
                "session_redis_migrate_from_filestore",
                "True",
                "unset with session_redis_multi_backends: add the file store as a backend with modes read and delete, and its sessions move as they are used",
            ));
        }
        let mut names = HashSet::new();
        for b in &self.multi_backends {
            if !names.insert(b.name.as_str()) {
                return Err(ConfigError::invalid(
                    "session_redis_multi_backends",
                    &format!("backend {:?}", b.name),
                    "unique backend names",
                ));
            }
            b.validate()?;
        }
        for mode in [BackendMode::Read, BackendMode::Write, BackendMode::Delete] {
            if !self.multi_backends.iter().any(|b| b.has(mode)) {
                return Err(ConfigError::invalid(
                    "session_redis_multi_backends",
                    &format!("{} backend(s)", self.multi_backends.len()),
                    &format!(
                        "at least one backend with mode \"{}\" (and one each for read, write and delete)",
                        mode.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_unsupported(&self) -> Result<(), ConfigError> {
        self.validate_tls()?;
        if self.migrate_from_filestore && self.mode == Mode::Disabled {
            return Err(ConfigError::invalid(
                "session_redis_migrate_from_filestore",
                "True",
                "False when session_redis_mode is disabled: the migration moves file-store sessions into Redis, and Redis is off",
            ));
        }
        Ok(())
    }

    /// The TLS rows: combinations that cannot work, and the OCSP options, which cannot be
    /// honoured on this stack. Files are read later, by the Redis backend at start-up.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let url_scheme = self
            .url
            .as_deref()
            .and_then(|url| url.split_once("://"))
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if self.ssl && self.mode == Mode::Redis {
            if let Some(scheme) = url_scheme.filter(|s| s != "rediss" && s != "valkeys") {
                return Err(ConfigError::invalid(
                    "session_redis_ssl",
                    "True",
                    &format!(
                        "False with a {scheme}:// session_redis_url (`{}`), which asks for a connection without TLS: write rediss:// instead (or unset session_redis_ssl)",
                        redact_url(self.url.as_deref().unwrap_or_default())
                    ),
                ));
            }
            if let (None, Some(p)) = (&self.url, &self.unix_socket_path) {
                return Err(ConfigError::invalid(
                    "session_redis_ssl",
                    "True",
                    &format!(
                        "False with session_redis_unix_socket_path ({}): TLS runs over TCP only; use host/port for TLS",
                        p.display()
                    ),
                ));
            }
        }
        match (&self.ssl_certfile, &self.ssl_keyfile) {
            (Some(p), None) | (None, Some(p)) => {
                let key = if self.ssl_certfile.is_some() {
                    "session_redis_ssl_certfile"
                } else {
                    "session_redis_ssl_keyfile"
                };
                return Err(ConfigError::invalid(
                    key,
                    &p.display().to_string(),
                    "session_redis_ssl_certfile and session_redis_ssl_keyfile together: mutual TLS needs both the client certificate and its private key",
                ));
            }
            _ => {}
        }
        if let Some(reqs) = &self.ssl_cert_reqs {
            let norm = reqs.trim().to_ascii_lowercase();
            let norm = norm.trim_start_matches("ssl.").trim_start_matches("cert_");
            if !matches!(norm, "required" | "optional" | "none") {
                return Err(ConfigError::invalid(
                    "session_redis_ssl_cert_reqs",
                    reqs,
                    "one of required, optional, none",
                ));
            }
        }
        if self.mode == Mode::Sentinel && self.ssl_check_hostname == Some(false) {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_check_hostname",
                "False",
                "True in sentinel mode: host name checks cannot be turned off for the masters the sentinels name (redis-rs has no setting for it); put the names you connect with in the certificates, or use session_redis_ssl_cert_reqs = none (no checks at all) on a trusted network",
            ));
        }
        const OCSP: &str = "not possible: rustls, the TLS library under redis-rs, does not check OCSP and redis-rs takes no custom certificate verifier. Instead, use short-lived server certificates (revocation matters less), keep revoked certificates out through your CA's CRL process, or put a TLS proxy that checks OCSP (stunnel, HAProxy) in front of Redis; then unset this option";
        if self.ssl_validate_ocsp {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_validate_ocsp",
                "True",
                OCSP,
            ));
        }
        if self.ssl_validate_ocsp_stapled {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_validate_ocsp_stapled",
                "True",
                OCSP,
            ));
        }
        if let Some(cert) = &self.ssl_ocsp_expected_cert {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_ocsp_expected_cert",
                &shorten(cert),
                OCSP,
            ));
        }
        if let Some(ctx) = &self.ssl_ocsp_context {
            return Err(ConfigError::unsupported(
                "session_redis_ssl_ocsp_context",
                &shorten(ctx),
                "not possible: it is a pyOpenSSL context object, which has no meaning outside Python; unset it (for OCSP checks, see session_redis_ssl_validate_ocsp)",
            ));
        }
        Ok(())
    }

    fn validate_topology(&self) -> Result<(), ConfigError> {
        let hosts = || {
            self.host
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let sentinel_only = |this: &Self| -> Result<(), ConfigError> {
            if let Some(m) = &this.master {
                return Err(ConfigError::invalid(
                    "session_redis_master",
                    m,
                    &format!(
                        "no master name in {} mode: session_redis_master is for session_redis_mode = sentinel",
                        this.mode
                    ),
                ));
            }
            for (key, value, secret) in [
                (
                    "session_redis_sentinel_username",
                    &this.sentinel_username,
                    false,
                ),
                (
                    "session_redis_sentinel_password",
                    &this.sentinel_password,
                    true,
                ),
            ] {
                if let Some(v) = value {
                    return Err(ConfigError::invalid(
                        key,
                        if secret { REDACTED } else { v },
                        &format!(
                            "nothing in {} mode: {key} is for session_redis_mode = sentinel",
                            this.mode
                        ),
                    ));
                }
            }
            if this.sentinel_read_from_replicas {
                return Err(ConfigError::invalid(
                    "session_redis_sentinel_read_from_replicas",
                    "True",
                    &format!(
                        "False in {} mode: replica reads are for session_redis_mode = sentinel",
                        this.mode
                    ),
                ));
            }
            Ok(())
        };
        if self.cluster_read_from_replicas && !matches!(self.mode, Mode::Cluster | Mode::Disabled) {
            return Err(ConfigError::invalid(
                "session_redis_cluster_read_from_replicas",
                "True",
                &format!(
                    "False in {} mode: replica reads of this option are for session_redis_mode = cluster",
                    self.mode
                ),
            ));
        }
        match self.mode {
            // Redis is off: its connection settings may stay in the file for later.
            Mode::Disabled => Ok(()),
            Mode::Redis => {
                sentinel_only(self)?;
                if self.host.len() > 1 {
                    return Err(ConfigError::invalid(
                        "session_redis_host",
                        &hosts(),
                        "one host in redis mode: set session_redis_mode = sentinel (with session_redis_master) or cluster for a list",
                    ));
                }
                if let Some(url) = &self.url {
                    let conflict = if !self.host.is_empty() {
                        Some(("session_redis_host", hosts()))
                    } else if let Some(p) = &self.unix_socket_path {
                        Some(("session_redis_unix_socket_path", p.display().to_string()))
                    } else if self.port != 6379 {
                        Some(("session_redis_port", self.port.to_string()))
                    } else {
                        None
                    };
                    if let Some((key, value)) = conflict {
                        return Err(ConfigError::invalid(
                            key,
                            &value,
                            &format!(
                                "no value when session_redis_url is set (`{}`): the URL gives the address; put it in the URL or unset the URL",
                                redact_url(url)
                            ),
                        ));
                    }
                }
                if let (Some(p), true) = (&self.unix_socket_path, self.port != 6379) {
                    return Err(ConfigError::invalid(
                        "session_redis_port",
                        &self.port.to_string(),
                        &format!(
                            "no port with session_redis_unix_socket_path ({}): a unix socket has none; unset one of them",
                            p.display()
                        ),
                    ));
                }
                self.port_used_by_a_host("the host's own port is the one used")?;
                if let (Some(p), false) = (&self.unix_socket_path, self.host.is_empty()) {
                    return Err(ConfigError::invalid(
                        "session_redis_unix_socket_path",
                        &p.display().to_string(),
                        &format!(
                            "either a unix socket or session_redis_host (`{}`), not both",
                            hosts()
                        ),
                    ));
                }
                Ok(())
            }
            Mode::Sentinel => {
                if self.host.is_empty() {
                    return Err(ConfigError::invalid(
                        "session_redis_host",
                        "(empty)",
                        "the list of sentinels in sentinel mode, such as [('10.0.0.1', 26379), ('10.0.0.2', 26379)] (or SESSION_REDIS_SENTINEL_LIST)",
                    ));
                }
                if self.master.as_deref().is_none_or(|m| m.trim().is_empty()) {
                    return Err(ConfigError::invalid(
                        "session_redis_master",
                        "(unset)",
                        "the name of the master the sentinels monitor, required in sentinel mode (or SESSION_REDIS_SENTINEL_MASTER_ALIAS)",
                    ));
                }
                self.no_url_or_socket("sentinel mode takes the sentinels in session_redis_host")?;
                // A sentinel without a port means 26379, the Sentinel port: a port set here
                // beside one would be ignored without a word, where it may have been meant
                // for it. With every sentinel's port given it concerns nothing (a leftover
                // that django-redis-sessions' settings carry and ignore too).
                if self.port != 6379 && self.host.iter().any(|h| h.port.is_none()) {
                    return Err(ConfigError::invalid(
                        "session_redis_port",
                        &self.port.to_string(),
                        "no port in sentinel mode with a sentinel given without one: give each sentinel its port in session_redis_host, such as [('10.0.0.1', 26380)] (a sentinel without a port means 26379); the master's address comes from the sentinels",
                    ));
                }
                Ok(())
            }
            Mode::Cluster => {
                sentinel_only(self)?;
                if self.host.is_empty() {
                    return Err(ConfigError::invalid(
                        "session_redis_host",
                        "(empty)",
                        "one or more seed nodes in cluster mode, such as 10.0.0.1:7000,10.0.0.2:7000",
                    ));
                }
                self.no_url_or_socket("cluster mode takes its seed nodes in session_redis_host")?;
                self.port_used_by_a_host(
                    "every seed node has its own port, which is the one used; the other nodes' come from the cluster",
                )?;
                self.validate_cluster_options()
            }
        }
    }

    /// Refuses a `session_redis_port` other than the default when every host (redis mode:
    /// the one; cluster mode: each seed) carries a port of its own and none is this one: it
    /// would be used for nothing, without a word, where it may have been the port meant. The
    /// default 6379, which config templates carry, and a port equal to a host's, pass.
    fn port_used_by_a_host(&self, why: &str) -> Result<(), ConfigError> {
        let own_ports: Option<Vec<u16>> = self.host.iter().map(|h| h.port).collect();
        match own_ports {
            Some(ports)
                if self.port != 6379 && !ports.is_empty() && !ports.contains(&self.port) =>
            {
                let hosts: Vec<String> = self.host.iter().map(ToString::to_string).collect();
                Err(ConfigError::invalid(
                    "session_redis_port",
                    &self.port.to_string(),
                    &format!(
                        "no port beside session_redis_host `{}`: {why}; put the port in one place",
                        hosts.join(",")
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The options a Redis Cluster cannot honour: each one an error with the reason, so
    /// nothing set is silently ignored (docs/cluster.md lists them).
    fn validate_cluster_options(&self) -> Result<(), ConfigError> {
        if self.db != 0 {
            return Err(ConfigError::invalid(
                "session_redis_db",
                &self.db.to_string(),
                "0 in cluster mode: a Redis Cluster has only database 0",
            ));
        }
        if let Some(name) = &self.client_name {
            return Err(ConfigError::unsupported(
                "session_redis_client_name",
                name,
                "no client name in cluster mode: the redis-rs cluster client opens and reopens its node connections itself and has no hook to send CLIENT SETNAME on each; unset it",
            ));
        }
        if let Some(max) = self.max_connections {
            return Err(ConfigError::unsupported(
                "session_redis_max_connections",
                &max.to_string(),
                "no pool size in cluster mode: the cluster client keeps one multiplexed connection per node, shared by every request; unset it",
            ));
        }
        if let Some(interval) = self.health_check_interval.filter(|s| *s != 0.0) {
            return Err(ConfigError::unsupported(
                "session_redis_health_check_interval",
                &interval.to_string(),
                "0 or unset in cluster mode: the cluster client checks and reconnects its node connections itself and cannot PING them before use",
            ));
        }
        Ok(())
    }

    fn no_url_or_socket(&self, why: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            return Err(ConfigError::invalid(
                "session_redis_url",
                &redact_url(url),
                &format!("no URL in {} mode: {why}", self.mode),
            ));
        }
        if let Some(p) = &self.unix_socket_path {
            return Err(ConfigError::invalid(
                "session_redis_unix_socket_path",
                &p.display().to_string(),
                &format!("no unix socket in {} mode: {why}", self.mode),
            ));
        }
        Ok(())
    }
}

fn validate_url(url: &str) -> Result<(), ConfigError> {
    let shown = redact_url(url);
    let bad = |why: &str| {
        Err(ConfigError::invalid(
            "session_redis_url",
            &shown,
            &format!("a redis://, rediss:// or unix:// URL ({why})"),
        ))
    };
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return bad("no scheme");
    };
    match scheme.to_ascii_lowercase().as_str() {
        "redis" | "rediss" => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit('@').next().unwrap_or("");
            if host.is_empty() {
                return bad("no host");
            }
            Ok(())
        }
        "unix" | "redis+unix" => {
            let path = rest.split(['?', '#']).next().unwrap_or("");
            if path.is_empty() {
                return bad("no socket path");
            }
            Ok(())
        }
        other => bad(&format!("unknown scheme `{other}`")),
    }
}

impl PoolMember {
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
                &self.host.as_deref().map_or_else(|| "None".into(), redact_url),
                "exactly one address per pool member: SESSION_REDIS_HOST (with SESSION_REDIS_PORT), SESSION_REDIS_UNIX_DOMAIN_SOCKET_PATH or SESSION_REDIS_URL",
            ));
        }
        if self.host.is_some() {
            self.host_port(top).map_err(|e| {
                ConfigError::invalid(
                    &key("SESSION_REDIS_HOST"),
                    &redact_url(self.host.as_deref().unwrap_or("")),
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
}

impl MultiBackendConfig {
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
        if c.index_key.is_some() {
            return Err(ConfigError::invalid(
                &key("session_redis_index_key"),
                c.index_key.as_deref().unwrap_or_default(),
                "unset inside a backend: the index is one for the whole store; set session_redis_index_key at the top level",
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
}
