//! How a server is started.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::tls::TestCa;

/// How to start a [`crate::RedisServer`]: a builder, every method optional.
///
/// The defaults give a TCP-only server on a free loopback port, without password,
/// persistence or debug restrictions (`DEBUG SLEEP` works on Redis 7).
///
/// ```
/// use session_testkit::{RedisServer, ServerOptions};
///
/// let server = RedisServer::start_with(
///     ServerOptions::new()
///         .password("s3cret")
///         .unix_socket(true)
///         .arg("--maxmemory")
///         .arg("10mb"),
/// );
/// assert_eq!(server.cmd::<Vec<String>>(&["CONFIG", "GET", "maxmemory"])[1], "10485760");
///
/// let options = ServerOptions::new()
///     .args(["--maxmemory-policy", "allkeys-lru"])
///     .startup_timeout(std::time::Duration::from_secs(30));
/// let server = RedisServer::start_with(options);
/// assert_eq!(server.cmd::<Vec<String>>(&["CONFIG", "GET", "maxmemory-policy"])[1], "allkeys-lru");
/// ```
#[derive(Clone, Default)]
pub struct ServerOptions {
    pub(crate) password: Option<String>,
    pub(crate) unix_socket: bool,
    pub(crate) tls: bool,
    pub(crate) tls_auth_clients: bool,
    pub(crate) tls_server_names: Option<Vec<String>>,
    pub(crate) args: Vec<OsString>,
    pub(crate) config_lines: Vec<String>,
    pub(crate) tls_ca: Option<TestCa>,
    pub(crate) binary: Option<PathBuf>,
    pub(crate) startup_timeout: Option<Duration>,
}

impl ServerOptions {
    /// The defaults: TCP only, no password, no extra arguments.
    ///
    /// Example: the example on [`ServerOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires this password (`requirepass`) from every client.
    ///
    /// [`crate::RedisServer::client`] and [`crate::RedisServer::cmd`] authenticate with
    /// it. It goes into the server's config file, not its command line, so it does not
    /// show up in `ps`; `Debug` output redacts it.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().password("s3cret"));
    /// assert_eq!(server.password(), Some("s3cret"));
    /// assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    /// ```
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Also listens on a unix socket, `redis.sock` in the server's temporary directory,
    /// with permissions `700`.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().unix_socket(true));
    /// assert!(server.unix_socket_path().unwrap().exists());
    /// ```
    pub fn unix_socket(mut self, enabled: bool) -> Self {
        self.unix_socket = enabled;
        self
    }

    /// Also listens for TLS on a second free loopback port
    /// ([`crate::RedisServer::tls_port`]), with a server certificate for `127.0.0.1` and
    /// `localhost` signed by a CA made at start time ([`crate::RedisServer::ca_cert_pem`]).
    /// Clients are not asked for certificates (`tls-auth-clients no`) unless
    /// [`ServerOptions::tls_auth_clients`] says so. Every TLS server also gets a client
    /// certificate and a second, unrelated CA: see [`crate::RedisServer::tls_files`].
    ///
    /// The plain port stays open on loopback: [`crate::RedisServer::cmd`], the readiness
    /// check and the other helpers keep using it, so a test can tell its own TLS
    /// connections apart (`CLIENT LIST` shows `laddr=127.0.0.1:TLS_PORT`).
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().tls(true));
    /// let port = server.tls_port().unwrap();
    /// assert_eq!(server.tls_url().unwrap(), format!("rediss://127.0.0.1:{port}"));
    /// assert!(server.ca_cert_pem().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    /// assert!(server.ca_cert_path().unwrap().starts_with(server.dir()));
    /// let tls_port: Vec<String> = server.cmd(&["CONFIG", "GET", "tls-port"]);
    /// assert_eq!(tls_port[1], port.to_string());
    /// ```
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// With [`ServerOptions::tls`]: requires a client certificate signed by the kit's CA on
    /// the TLS port (`tls-auth-clients yes`). The kit's client certificate and keys are in
    /// [`crate::RedisServer::tls_files`] (they are made for every TLS server).
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().tls(true).tls_auth_clients(true));
    /// let auth: Vec<String> = server.cmd(&["CONFIG", "GET", "tls-auth-clients"]);
    /// assert_eq!(auth[1], "yes");
    /// assert!(server.tls_files().unwrap().client_cert.exists());
    /// ```
    pub fn tls_auth_clients(mut self, required: bool) -> Self {
        self.tls_auth_clients = required;
        self
    }

    /// With [`ServerOptions::tls`]: the names (DNS names or IP addresses) the server
    /// certificate is valid for, instead of `127.0.0.1` and `localhost`. `["redis.test"]`
    /// makes a certificate that a client connecting to `127.0.0.1` must reject as a host
    /// name mismatch.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server =
    ///     RedisServer::start_with(ServerOptions::new().tls(true).tls_server_names(["redis.test"]));
    /// assert!(server.tls_port().is_some());
    /// ```
    pub fn tls_server_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tls_server_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Appends one command-line argument for `redis-server`, after the kit's own
    /// configuration, so it overrides it (`--maxmemory`, `--replicaof`, ...).
    ///
    /// Leave `--port`, `--bind` and `--requirepass` to the kit (use
    /// [`ServerOptions::password`]): it must know them to check that the server answers.
    ///
    /// Example: the example on [`ServerOptions`].
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several command-line arguments, as [`ServerOptions::arg`] does.
    ///
    /// Example: the example on [`ServerOptions`].
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends one line to the server's config file, after the kit's own lines: for
    /// directives that carry secrets (`masterauth`, `sentinel auth-pass`) and so must not
    /// show up on the command line, or that only a config file accepts (`sentinel monitor`
    /// lines must be in the file a sentinel rewrites). `Debug` output shows how many lines
    /// there are, not what they say.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().config_line("maxmemory 10mb"));
    /// assert_eq!(server.cmd::<Vec<String>>(&["CONFIG", "GET", "maxmemory"])[1], "10485760");
    /// ```
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.config_lines.push(line.into());
        self
    }

    /// With [`ServerOptions::tls`]: signs the server certificate with this CA instead of
    /// a fresh one, so that servers of one topology trust each other (TLS replication,
    /// sentinels talking TLS to the nodes) and a client needs one CA for all of them.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions, TestCa};
    ///
    /// let ca = TestCa::new();
    /// let a = RedisServer::start_with(ServerOptions::new().tls(true).tls_ca(ca.clone()));
    /// let b = RedisServer::start_with(ServerOptions::new().tls(true).tls_ca(ca.clone()));
    /// assert_eq!(a.ca_cert_pem(), Some(ca.pem()));
    /// assert_eq!(b.ca_cert_pem(), Some(ca.pem()));
    /// ```
    pub fn tls_ca(mut self, ca: TestCa) -> Self {
        self.tls_ca = Some(ca);
        self
    }

    /// Starts this binary instead of the one from `$REDIS_SERVER` or `PATH`.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions, StartError};
    ///
    /// let err = RedisServer::try_start_with(
    ///     ServerOptions::new().binary("/nonexistent/redis-server"),
    /// )
    /// .unwrap_err();
    /// assert!(matches!(err, StartError::MissingBinary { .. }));
    /// ```
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// How long to wait for the server to answer after it is spawned (default 10 s,
    /// generous because the machine may be busy with parallel builds).
    ///
    /// Example: the example on [`ServerOptions`].
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = Some(timeout);
        self
    }

    pub(crate) fn effective_startup_timeout(&self) -> Duration {
        self.startup_timeout.unwrap_or(Duration::from_secs(10))
    }
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("unix_socket", &self.unix_socket)
            .field("tls", &self.tls)
            .field("tls_auth_clients", &self.tls_auth_clients)
            .field("tls_server_names", &self.tls_server_names)
            .field("args", &self.args)
            .field("config_lines", &self.config_lines.len())
            .field("tls_ca", &self.tls_ca.is_some())
            .field("binary", &self.binary)
            .field("startup_timeout", &self.startup_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let text = format!("{:?}", ServerOptions::new().password("hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
