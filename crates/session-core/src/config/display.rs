//! Showing a configuration: `Display` (the options that differ from the defaults, in the
//! syntax of a config file) and the value forms it uses.

use std::{fmt, path::PathBuf};

use super::{
    multi::show_multi,
    pool::show_pool,
    redact::{redact_url, shorten, REDACTED},
    SessionConfig,
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

fn py_bool(b: bool) -> String {
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

impl SessionConfig {
    /// The options that differ from the defaults as `(session_redis_*, value)` in config-file
    /// syntax, secrets redacted. `Display` prints these.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let d = Self::default();
        let mut out: Vec<(&'static str, String)> =
            vec![("session_redis_mode", self.mode.to_string())];
        let mut opt = |key: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((key, v));
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let flag = |b: bool| b.then(|| py_bool(true));
        opt(
            "session_redis_key_expire",
            (self.key_expire != 0).then(|| self.key_expire.to_string()),
        );
        opt(
            "session_redis_prefix",
            (self.prefix != d.prefix).then(|| format!("{:?}", self.prefix)),
        );
        opt("session_filestore_path", path(&self.filestore_path));
        opt("session_redis_url", self.url.as_deref().map(redact_url));
        opt(
            "session_redis_host",
            (!self.host.is_empty()).then(|| {
                self.host
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        );
        opt(
            "session_redis_port",
            (self.port != d.port).then(|| self.port.to_string()),
        );
        opt("session_redis_username", self.username.clone());
        opt(
            "session_redis_password",
            self.password.as_ref().map(|_| REDACTED.into()),
        );
        opt(
            "session_redis_db",
            (self.db != 0).then(|| self.db.to_string()),
        );
        opt(
            "session_redis_unix_socket_path",
            path(&self.unix_socket_path),
        );
        opt(
            "session_redis_socket_timeout",
            self.socket_timeout.map(secs),
        );
        opt(
            "session_redis_socket_connect_timeout",
            self.socket_connect_timeout.map(secs),
        );
        opt(
            "session_redis_max_connections",
            self.max_connections.map(|m| m.to_string()),
        );
        opt(
            "session_redis_single_connection_client",
            flag(self.single_connection_client),
        );
        opt(
            "session_redis_socket_keepalive",
            flag(self.socket_keepalive),
        );
        opt(
            "session_redis_socket_keepalive_options",
            self.socket_keepalive_options.map(|o| o.to_string()),
        );
        opt("session_redis_encoding", self.encoding.clone());
        opt(
            "session_redis_encoding_errors",
            self.encoding_errors.clone(),
        );
        opt("session_redis_charset", self.charset.clone());
        opt("session_redis_errors", self.errors.clone());
        opt(
            "session_redis_decode_responses",
            flag(self.decode_responses),
        );
        opt(
            "session_redis_retry_on_timeout",
            flag(self.retry_on_timeout),
        );
        opt("session_redis_ssl", flag(self.ssl));
        opt("session_redis_ssl_keyfile", path(&self.ssl_keyfile));
        opt("session_redis_ssl_certfile", path(&self.ssl_certfile));
        opt("session_redis_ssl_cert_reqs", self.ssl_cert_reqs.clone());
        opt("session_redis_ssl_ca_certs", path(&self.ssl_ca_certs));
        opt("session_redis_ssl_ca_path", path(&self.ssl_ca_path));
        opt(
            "session_redis_ssl_ca_data",
            self.ssl_ca_data.as_deref().map(shorten),
        );
        opt(
            "session_redis_ssl_check_hostname",
            self.ssl_check_hostname.map(py_bool),
        );
        opt(
            "session_redis_ssl_password",
            self.ssl_password.as_ref().map(|_| REDACTED.into()),
        );
        opt(
            "session_redis_ssl_validate_ocsp",
            flag(self.ssl_validate_ocsp),
        );
        opt(
            "session_redis_ssl_validate_ocsp_stapled",
            flag(self.ssl_validate_ocsp_stapled),
        );
        opt(
            "session_redis_ssl_ocsp_context",
            self.ssl_ocsp_context.as_deref().map(shorten),
        );
        opt(
            "session_redis_ssl_ocsp_expected_cert",
            self.ssl_ocsp_expected_cert.as_deref().map(shorten),
        );
        opt(
            "session_redis_health_check_interval",
            self.health_check_interval.map(secs),
        );
        opt("session_redis_client_name", self.client_name.clone());
        opt("session_redis_master", self.master.clone());
        opt(
            "session_redis_migrate_from_filestore",
            flag(self.migrate_from_filestore),
        );
        opt(
            "session_redis_sentinel_username",
            self.sentinel_username.clone(),
        );
        opt(
            "session_redis_sentinel_password",
            self.sentinel_password.as_ref().map(|_| REDACTED.into()),
        );
        opt(
            "session_redis_sentinel_read_from_replicas",
            flag(self.sentinel_read_from_replicas),
        );
        opt(
            "session_redis_cluster_read_from_replicas",
            flag(self.cluster_read_from_replicas),
        );
        opt(
            "session_redis_pool",
            (!self.pool.is_empty()).then(|| show_pool(&self.pool)),
        );
        opt(
            "session_redis_multi_backends",
            (!self.multi_backends.is_empty()).then(|| show_multi(&self.multi_backends)),
        );
        out
    }
}
