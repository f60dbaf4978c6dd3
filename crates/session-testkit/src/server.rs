//! One `redis-server` child process.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use redis::{
    ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, RedisConnectionInfo,
};
use tempfile::TempDir;

use crate::binary::{self, INSTALL_HINT};
use crate::options::ServerOptions;
use crate::tls::{self, TlsFiles};
use crate::{ports, spawner};

/// The address every server listens on. Tests never use any other address.
///
/// Example: the accessor example on [`RedisServer`].
pub const HOST: &str = "127.0.0.1";

/// How often readiness is polled: starting must be fast.
const POLL: Duration = Duration::from_millis(10);
/// How many fresh ports a start tries when it keeps losing races for them.
const PORT_ATTEMPTS: usize = 5;
/// How long a restart keeps trying to bind its old port.
const REBIND_PATIENCE: Duration = Duration::from_secs(5);
/// How long a graceful stop may take before the server is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(10);
/// Timeouts of the connections behind [`RedisServer::cmd`].
const CMD_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of server log quoted in failure messages.
const LOG_TAIL_LINES: usize = 30;

/// Why a server could not be started. [`RedisServer::start`] panics with its text;
/// [`RedisServer::try_start_with`] returns it.
///
/// ```
/// use session_testkit::{RedisServer, ServerOptions, StartError};
///
/// let err = RedisServer::try_start_with(ServerOptions::new().binary("/nonexistent/redis-server"))
///     .unwrap_err();
/// assert!(err.to_string().contains("apt-get install -y redis-server"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No `redis-server` binary where the kit looked.
    #[error("session-testkit: redis-server not found: looked for {looked_in}; {INSTALL_HINT}")]
    MissingBinary {
        /// Where the kit looked.
        looked_in: String,
    },
    /// Preparing the temporary directory or spawning the process failed.
    #[error("session-testkit: cannot {what}: {source}")]
    Io {
        /// What the kit was doing.
        what: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The port was taken by someone else each time the kit tried.
    #[error("session-testkit: redis-server could not bind 127.0.0.1:{port} (address already in use) after {attempts} attempts; server log tail:\n{log_tail}")]
    PortInUse {
        /// The last port tried.
        port: u16,
        /// How many starts were tried.
        attempts: usize,
        /// The end of the server's log.
        log_tail: String,
    },
    /// The server exited before answering.
    #[error("session-testkit: redis-server on 127.0.0.1:{port} exited before answering ({status}); server log tail:\n{log_tail}")]
    Exited {
        /// The port it was given.
        port: u16,
        /// Its exit status.
        status: String,
        /// The end of the server's log.
        log_tail: String,
    },
    /// The server did not answer in time; it has been killed.
    #[error("session-testkit: redis-server on 127.0.0.1:{port} did not answer within {waited:?}; server log tail:\n{log_tail}")]
    Timeout {
        /// The port it was given.
        port: u16,
        /// How long the kit waited.
        waited: Duration,
        /// The end of the server's log.
        log_tail: String,
    },
}

/// A running (or killed, restartable) `redis-server` on `127.0.0.1`.
///
/// Dropping it kills the process, reaps it and deletes its temporary directory, also
/// when a test panics. Every method takes `&self`, so one server can be shared, for
/// example through an `Arc`, between a test and the tasks it spawns.
///
/// ```
/// use session_testkit::RedisServer;
///
/// let server = RedisServer::start();
/// let mut con = server.client().get_connection().unwrap();
/// let _: () = redis::cmd("SET").arg("k").arg("v").arg("EX").arg(60).query(&mut con).unwrap();
/// assert!(server.cmd::<i64>(&["TTL", "k"]) > 0);
/// ```
///
/// The accessors:
///
/// ```
/// use session_testkit::{RedisServer, ServerOptions, HOST};
///
/// let server = RedisServer::start_with(ServerOptions::new().password("pw").unix_socket(true));
/// assert_eq!(server.host(), HOST);
/// assert_eq!(HOST, "127.0.0.1");
/// assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
/// assert_eq!(server.addr(), std::net::SocketAddr::from(([127, 0, 0, 1], server.port())));
/// assert_eq!(server.password(), Some("pw"));
/// assert!(server.unix_socket_path().unwrap().starts_with(server.dir()));
/// assert!(format!("{:?}", server.options()).contains("<redacted>"));
/// assert!(server.log_tail(100).contains("Ready to accept connections"));
/// let client = redis::Client::open(server.connection_info()).unwrap();
/// let info: String = redis::cmd("INFO").arg("server").query(&mut client.get_connection().unwrap()).unwrap();
/// assert!(info.contains(&format!("process_id:{}", server.pid().unwrap())));
/// assert!(server.is_running());
/// server.pause();
/// server.resume();
/// server.kill();
/// assert!(!server.is_running() && server.pid().is_none());
/// ```
pub struct RedisServer {
    options: ServerOptions,
    binary: PathBuf,
    dir: TempDir,
    config: PathBuf,
    log: PathBuf,
    socket: PathBuf,
    port: u16,
    /// The TLS port and certificates, when [`ServerOptions::tls`] asked for them.
    tls: Option<(u16, TlsFiles)>,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server with default options and waits until it answers.
    ///
    /// # Panics
    ///
    /// When the server cannot be started: see [`StartError`] (the message says how to
    /// install `redis-server` when it is missing, and quotes the server's log otherwise).
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// assert!(server.is_running());
    /// ```
    pub fn start() -> RedisServer {
        Self::start_with(ServerOptions::new())
    }

    /// Starts a server with `options` and waits until it answers.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().arg("--databases").arg("4"));
    /// assert_eq!(server.cmd::<Vec<String>>(&["CONFIG", "GET", "databases"])[1], "4");
    /// ```
    pub fn start_with(options: ServerOptions) -> RedisServer {
        Self::try_start_with(options).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts a server with `options`, returning why it failed instead of panicking.
    ///
    /// A start that loses the race for its port to another process retries on a fresh
    /// port, a few times.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions, StartError};
    ///
    /// let err = RedisServer::try_start_with(ServerOptions::new().arg("--no-such-option").arg("1"))
    ///     .unwrap_err();
    /// assert!(matches!(err, StartError::Exited { .. }), "{err}");
    /// ```
    pub fn try_start_with(options: ServerOptions) -> Result<RedisServer, StartError> {
        let binary = match &options.binary {
            Some(path) => binary::check_executable(path, "ServerOptions::binary")?,
            None => binary::try_redis_server_binary()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("redis-testkit-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(|source| StartError::Io {
                what: "create a temporary directory".into(),
                source,
            })?;
        let config = dir.path().join("redis.conf");
        let log = dir.path().join("redis.log");
        let tls_files = if options.tls {
            Some(
                tls::write_certificates(
                    dir.path(),
                    &options
                        .tls_server_names
                        .clone()
                        .unwrap_or_else(|| tls::DEFAULT_SERVER_NAMES.map(String::from).to_vec()),
                    options.tls_ca.as_ref(),
                )
                .map_err(|source| StartError::Io {
                    what: "write TLS certificates".into(),
                    source,
                })?,
            )
        } else {
            None
        };
        write_config(&config, dir.path(), &options, &binary, tls_files.as_ref()).map_err(
            |source| StartError::Io {
                what: format!("write {}", config.display()),
                source,
            },
        )?;

        let mut server = RedisServer {
            options,
            binary,
            socket: dir.path().join(UNIX_SOCKET_FILE),
            dir,
            config,
            log,
            port: ports::reserve_free_port(),
            tls: tls_files.map(|files| (ports::reserve_free_port(), files)),
            child: Mutex::new(None),
        };
        for attempt in 1..=PORT_ATTEMPTS {
            match server.launch() {
                Ok(child) => {
                    *server.lock_child() = Some(child);
                    return Ok(server);
                }
                Err(StartError::PortInUse { log_tail, .. }) if attempt == PORT_ATTEMPTS => {
                    return Err(StartError::PortInUse {
                        port: server.port,
                        attempts: attempt,
                        log_tail,
                    });
                }
                Err(StartError::PortInUse { .. }) => {
                    // Lost a race for the port: take another one.
                    // Either port may be the one lost: take fresh ones for both.
                    let lost = server.port;
                    server.port = ports::reserve_free_port();
                    ports::release(lost);
                    if let Some((tls_port, _)) = &mut server.tls {
                        let lost = *tls_port;
                        *tls_port = ports::reserve_free_port();
                        ports::release(lost);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The TCP port, fixed for the server's whole life (restarts included).
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `"127.0.0.1"`.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn host(&self) -> &str {
        HOST
    }

    /// `127.0.0.1:PORT` as a socket address.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:PORT`, without the password (see [`RedisServer::password`]).
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn url(&self) -> String {
        format!("redis://{HOST}:{}", self.port)
    }

    /// The `session_redis_pool` setting of a weighted pool of `servers`, each of weight 1
    /// (django-redis-sessions' list of dicts).
    ///
    /// ```no_run
    /// use session_testkit::RedisServer;
    ///
    /// let (a, b) = (RedisServer::start(), RedisServer::start());
    /// let pool = RedisServer::pool_setting(&[&a, &b]);
    /// assert!(pool.starts_with("[{'SESSION_REDIS_HOST': '127.0.0.1'"));
    /// ```
    pub fn pool_setting(servers: &[&RedisServer]) -> String {
        let members: Vec<String> = servers
            .iter()
            .map(|s| {
                format!(
                    "{{'SESSION_REDIS_HOST': '{HOST}', 'SESSION_REDIS_PORT': {}, 'SESSION_REDIS_WEIGHT': 1}}",
                    s.port
                )
            })
            .collect();
        format!("[{}]", members.join(", "))
    }

    /// The TLS port, when [`ServerOptions::tls`] asked for one; fixed for the server's
    /// whole life, like [`RedisServer::port`].
    ///
    /// Example: the example on [`ServerOptions::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(port, _)| *port)
    }

    /// `rediss://127.0.0.1:TLS_PORT`, without the password, when the server has TLS.
    /// Its certificate is signed by [`RedisServer::ca_cert_pem`], which no system trusts.
    ///
    /// Example: the example on [`ServerOptions::tls`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port()
            .map(|port| format!("rediss://{HOST}:{port}"))
    }

    /// The PEM text of the CA that signed the server's certificate, when it has TLS.
    ///
    /// Example: the example on [`ServerOptions::tls`].
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.tls
            .as_ref()
            .map(|(_, files)| files.ca_cert_pem.as_str())
    }

    /// Every certificate file of a TLS server (client certificate and keys, a second
    /// unrelated CA, ...), when it has TLS.
    ///
    /// Example: the example on [`TlsFiles`].
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref().map(|(_, files)| files)
    }

    /// The file holding [`RedisServer::ca_cert_pem`], inside [`RedisServer::dir`].
    ///
    /// Example: the example on [`ServerOptions::tls`].
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|(_, files)| files.ca_cert.as_path())
    }

    /// The unix socket, when [`ServerOptions::unix_socket`] asked for one.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn unix_socket_path(&self) -> Option<&Path> {
        self.options.unix_socket.then_some(self.socket.as_path())
    }

    /// `redis+unix:///path/to/redis.sock`, when the server has a unix socket.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().unix_socket(true));
    /// let client = redis::Client::open(server.unix_url().unwrap()).unwrap();
    /// let pong: String = redis::cmd("PING").query(&mut client.get_connection().unwrap()).unwrap();
    /// assert_eq!(pong, "PONG");
    /// ```
    pub fn unix_url(&self) -> Option<String> {
        self.unix_socket_path()
            .map(|path| format!("redis+unix://{}", path.display()))
    }

    /// The password given with [`ServerOptions::password`].
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn password(&self) -> Option<&str> {
        self.options.password.as_deref()
    }

    /// The server's temporary directory (config, log, unix socket); deleted on drop.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The options the server was started with.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// How to reach the server over TCP, with the password when there is one.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn connection_info(&self) -> ConnectionInfo {
        self.info_for(ConnectionAddr::Tcp(HOST.to_string(), self.port))
    }

    /// How to reach the server over its unix socket, when it has one.
    ///
    /// ```
    /// use session_testkit::{RedisServer, ServerOptions};
    ///
    /// let server = RedisServer::start_with(ServerOptions::new().unix_socket(true).password("pw"));
    /// let client = redis::Client::open(server.unix_connection_info().unwrap()).unwrap();
    /// let pong: String = redis::cmd("PING").query(&mut client.get_connection().unwrap()).unwrap();
    /// assert_eq!(pong, "PONG");
    /// ```
    pub fn unix_connection_info(&self) -> Option<ConnectionInfo> {
        self.unix_socket_path()
            .map(|path| self.info_for(ConnectionAddr::Unix(path.to_path_buf())))
    }

    /// A `redis::Client` for the server over TCP, authenticated when there is a
    /// password. It stays valid across [`RedisServer::kill`] and
    /// [`RedisServer::restart`]: the port does not change.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// let mut con = server.client().get_connection().unwrap();
    /// let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    /// assert_eq!(pong, "PONG");
    /// ```
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.connection_info()).unwrap_or_else(|err| {
            panic!(
                "session-testkit: cannot build a client for {}: {err}",
                self.url()
            )
        })
    }

    /// A new synchronous connection with 5 s read and write timeouts.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// let mut con = server.connection();
    /// let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    /// assert_eq!(n, 0);
    /// ```
    pub fn connection(&self) -> redis::Connection {
        self.try_connection().unwrap_or_else(|err| {
            panic!("session-testkit: cannot connect to {}: {err}", self.url())
        })
    }

    /// Runs one command on a fresh connection, like `redis-cli`, and converts the reply.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached, answers with an error, or the reply does not
    /// convert to `T`. The message names the command but not its arguments, which may
    /// be session data.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// let _: () = server.cmd(&["SET", "k", "v", "EX", "100"]);
    /// assert!(server.cmd::<i64>(&["TTL", "k"]) > 90);
    /// let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    /// let stats: String = server.cmd(&["INFO", "commandstats"]);
    /// assert!(!stats.contains("cmdstat_set"));
    /// ```
    pub fn cmd<T: FromRedisValue>(&self, args: &[&str]) -> T {
        self.try_cmd(args).unwrap_or_else(|err| {
            panic!(
                "session-testkit: command `{}` ({} arguments) on {} failed: {err}",
                args.first().copied().unwrap_or("<none>"),
                args.len().saturating_sub(1),
                self.url()
            )
        })
    }

    /// How many times the server ran `command` (lower case, as `INFO commandstats` names
    /// it, such as `hgetall` or `config|resetstat`) since it started or since the last
    /// `CONFIG RESETSTAT`; commands run inside scripts count too. Panics as
    /// [`RedisServer::cmd`] does.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    /// let _: () = server.cmd(&["SET", "k", "v"]);
    /// assert_eq!(server.calls("set"), 1);
    /// assert_eq!(server.calls("get"), 0);
    /// ```
    pub fn calls(&self, command: &str) -> u64 {
        let info: String = self.cmd(&["INFO", "commandstats"]);
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|rest| {
                let n = rest.split(',').next().unwrap_or_default();
                n.parse().unwrap_or_else(|_| {
                    panic!("session-testkit: `INFO commandstats` gave calls={n:?} for {command}")
                })
            })
            .unwrap_or(0)
    }

    /// Runs one command as [`RedisServer::cmd`] does, returning the error instead of
    /// panicking.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// assert!(server.try_cmd::<String>(&["NO-SUCH-COMMAND"]).is_err());
    /// server.kill();
    /// assert!(server.try_cmd::<String>(&["PING"]).is_err());
    /// ```
    pub fn try_cmd<T: FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let Some((name, rest)) = args.split_first() else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "session-testkit: empty command",
            )));
        };
        let mut cmd = redis::cmd(name);
        for arg in rest {
            cmd.arg(*arg);
        }
        cmd.query(&mut self.try_connection()?)
    }

    /// The process id, or `None` once the server was killed or stopped (or died).
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn pid(&self) -> Option<u32> {
        let mut child = self.lock_child();
        reap_if_exited(&mut child);
        child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (a paused server counts as running).
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Kills the server with `SIGKILL`, like a crash, and reaps it. Connections break,
    /// new ones are refused until [`RedisServer::restart`]. Does nothing when it is not
    /// running.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// server.kill();
    /// assert!(std::net::TcpStream::connect(server.addr()).is_err());
    /// ```
    pub fn kill(&self) {
        if let Some(mut child) = self.lock_child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server gracefully (`SIGTERM`, Redis's own shutdown) and waits for it;
    /// kills it when it takes more than 10 s. Does nothing when it is not running.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// server.stop();
    /// assert!(server.log_tail(50).contains("ready to exit"));
    /// ```
    pub fn stop(&self) {
        let Some(mut child) = self.lock_child().take() else {
            return;
        };
        signal(&child, libc::SIGTERM);
        // A paused server handles SIGTERM only once it runs again.
        signal(&child, libc::SIGCONT);
        let deadline = Instant::now() + STOP_PATIENCE;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port with the same options, and waits until
    /// it answers; stops it first (gracefully) if it is still running. The data is gone:
    /// there is no persistence.
    ///
    /// # Panics
    ///
    /// When the server cannot be started again, for instance because another process
    /// took the port and kept it for 5 s.
    ///
    /// ```
    /// let server = session_testkit::RedisServer::start();
    /// let client = server.client();
    /// server.kill();
    /// assert!(client.get_connection().is_err());
    /// server.restart();
    /// assert!(client.get_connection().is_ok());
    /// ```
    pub fn restart(&self) {
        self.stop();
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.launch() {
                Ok(child) => {
                    *self.lock_child() = Some(child);
                    return;
                }
                // Someone holds the port for now; a killed client connection may
                // keep it for a moment.
                Err(StartError::PortInUse { .. }) if started.elapsed() < REBIND_PATIENCE => {
                    sleep(Duration::from_millis(50));
                }
                Err(StartError::PortInUse { log_tail, .. }) => panic!(
                    "{}",
                    StartError::PortInUse {
                        port: self.port,
                        attempts,
                        log_tail
                    }
                ),
                Err(err) => panic!("{err}"),
            }
        }
    }

    /// Freezes the process with `SIGSTOP`: it keeps its port and accepts TCP
    /// connections (the kernel does), but answers nothing, like a hung server, until
    /// [`RedisServer::resume`]. Dropping a paused server still kills it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let server = session_testkit::RedisServer::start();
    /// let mut con = server.connection();
    /// con.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    /// server.pause();
    /// assert!(redis::cmd("PING").query::<String>(&mut con).is_err());
    /// server.resume();
    /// assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    /// ```
    pub fn pause(&self) {
        if let Some(child) = self.lock_child().as_ref() {
            signal(child, libc::SIGSTOP);
        }
    }

    /// Lets a server frozen by [`RedisServer::pause`] run again.
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn resume(&self) {
        if let Some(child) = self.lock_child().as_ref() {
            signal(child, libc::SIGCONT);
        }
    }

    /// Runs `CLIENT PAUSE <duration> ALL`: the server stays up but holds every client
    /// command for that long (Redis's own way to simulate a slow server).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let server = session_testkit::RedisServer::start();
    /// server.client_pause(Duration::from_millis(200));
    /// let started = Instant::now();
    /// let _: String = server.cmd(&["PING"]);
    /// assert!(started.elapsed() >= Duration::from_millis(150));
    /// ```
    pub fn client_pause(&self, duration: Duration) {
        let millis = duration.as_millis().to_string();
        let _: () = self.cmd(&["CLIENT", "PAUSE", &millis, "ALL"]);
    }

    /// The last `lines` lines of the server's log (all starts of this server).
    ///
    /// Example: the accessor example on [`RedisServer`].
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, 0, lines)
    }

    fn info_for(&self, addr: ConnectionAddr) -> ConnectionInfo {
        let mut redis = RedisConnectionInfo::default();
        if let Some(password) = &self.options.password {
            redis = redis.set_password(password);
        }
        addr.into_connection_info()
            .expect("a ConnectionAddr always converts")
            .set_redis_settings(redis)
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        let con = self.client().get_connection_with_timeout(CMD_TIMEOUT)?;
        con.set_read_timeout(Some(CMD_TIMEOUT))?;
        con.set_write_timeout(Some(CMD_TIMEOUT))?;
        Ok(con)
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns the server on `self.port` and waits until it answers.
    fn launch(&self) -> Result<Child, StartError> {
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let io_err = |what: &str| {
            let what = what.to_string();
            move |source| StartError::Io { what, source }
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_err("open the server log"))?;
        let log_for_stderr = log.try_clone().map_err(io_err("open the server log"))?;
        let mut command = Command::new(&self.binary);
        command
            .arg(&self.config)
            .arg("--port")
            .arg(self.port.to_string());
        if let Some((tls_port, _)) = &self.tls {
            command.arg("--tls-port").arg(tls_port.to_string());
        }
        command
            .args(&self.options.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr);
        let mut child =
            spawner::spawn(command).map_err(io_err(&format!("start {}", self.binary.display())))?;

        let timeout = self.options.effective_startup_timeout();
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let log_tail = tail(&self.log, log_start, LOG_TAIL_LINES);
                    return Err(if log_tail.contains("Address already in use") {
                        StartError::PortInUse {
                            port: self.port,
                            attempts: 1,
                            log_tail,
                        }
                    } else {
                        StartError::Exited {
                            port: self.port,
                            status: status.to_string(),
                            log_tail,
                        }
                    });
                }
                Ok(None) => {}
                Err(source) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(StartError::Io {
                        what: "watch the server process".into(),
                        source,
                    });
                }
            }
            // The pid check makes sure we reached our server, not some other process
            // that won the port while ours was failing to bind.
            if self.probe_pid() == Some(child.id()) {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError::Timeout {
                    port: self.port,
                    waited: timeout,
                    log_tail: tail(&self.log, log_start, LOG_TAIL_LINES),
                });
            }
            sleep(POLL);
        }
    }

    /// The `process_id` the server on our port reports, if it answers.
    fn probe_pid(&self) -> Option<u32> {
        let con = self
            .client()
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        con.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut con = con;
        let info: String = redis::cmd("INFO").arg("server").query(&mut con).ok()?;
        info.lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The directory and its log are about to be deleted; keep the evidence.
            eprintln!(
                "session-testkit: log tail of redis-server on {} (test panicked):\n{}",
                self.url(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        self.kill();
        ports::release(self.port);
        if let Some((tls_port, _)) = &self.tls {
            ports::release(*tls_port);
        }
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("tls_port", &self.tls_port())
            .field("pid", &self.lock_child().as_ref().map(Child::id))
            .field("dir", &self.dir.path())
            .field("options", &self.options)
            .finish()
    }
}

fn reap_if_exited(child: &mut Option<Child>) {
    if let Some(process) = child {
        if !matches!(process.try_wait(), Ok(None)) {
            *child = None;
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) with the pid of a child we have not reaped yet, so the pid
    // cannot have been reused by another process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// The last `lines` lines of the log written after byte `from`.
fn tail(log: &Path, from: u64, lines: usize) -> String {
    let mut text = String::new();
    let read = File::open(log).and_then(|mut file| {
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if let Err(err) = read {
        return format!("(cannot read {}: {err})", log.display());
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        "(empty log)".into()
    } else {
        all[start..].join("\n")
    }
}

/// Writes the kit's configuration. The password lives here rather than on the
/// command line, where `ps` would show it; the directory is private (mode 700).
fn write_config(
    path: &Path,
    dir: &Path,
    options: &ServerOptions,
    binary: &Path,
    tls: Option<&TlsFiles>,
) -> io::Result<()> {
    let mut text = String::new();
    text.push_str("bind 127.0.0.1\n");
    text.push_str("daemonize no\n");
    text.push_str("save \"\"\n");
    text.push_str("appendonly no\n");
    text.push_str(&format!("dir {}\n", quote(&dir.to_string_lossy())));
    text.push_str("logfile \"\"\n");
    if binary::major_version(binary).is_some_and(|major| major >= 7) {
        // Redis 7 refuses DEBUG by default; tests use DEBUG SLEEP and friends.
        text.push_str("enable-debug-command local\n");
    }
    if options.unix_socket {
        let socket = dir.join(UNIX_SOCKET_FILE);
        text.push_str(&format!(
            "unixsocket {}\n",
            quote(&socket.to_string_lossy())
        ));
        text.push_str("unixsocketperm 700\n");
    }
    if let Some(tls) = tls {
        // The port itself is given at launch, as `--port` is: it can change on a retry.
        for (key, file) in [
            ("tls-cert-file", &tls.server_cert),
            ("tls-key-file", &tls.server_key),
            ("tls-ca-cert-file", &tls.ca_cert),
        ] {
            text.push_str(&format!("{key} {}\n", quote(&file.to_string_lossy())));
        }
        let auth = if options.tls_auth_clients {
            "yes"
        } else {
            "no"
        };
        text.push_str(&format!("tls-auth-clients {auth}\n"));
    }
    if let Some(password) = &options.password {
        text.push_str(&format!("requirepass {}\n", quote(password)));
    }
    for line in &options.config_lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// The socket's file name inside the server's directory.
const UNIX_SOCKET_FILE: &str = "redis.sock";

/// How many replicas in a master's `INFO replication` have acknowledged its current offset.
///
/// `state=online` is not enough to call a replica in sync: after a diskless sync the master
/// streams writes to a replica only once that replica has acknowledged an offset (its first
/// `REPLCONF ACK`, up to a second later), so a failover before that promotes a replica that
/// has nothing written since the sync. A replica's offset here is its last acknowledgement
/// (0 before the first). A master that has written nothing (offset 0, a fresh cluster node:
/// only its replication `PING`, every 10 s, moves it) has nothing a replica could miss;
/// a test that writes and then needs the write on a replica waits for it
/// (`ClusterTopology::wait_replication`). A Sentinel master's offset moves within a second
/// (the sentinels' hello messages are replicated).
pub(crate) fn replicas_caught_up(info: &str) -> usize {
    let master_offset = info_field(info, "master_repl_offset").unwrap_or(0);
    replica_offsets(info)
        .filter(|&offset| offset >= master_offset)
        .count()
}

/// The acknowledged offsets of the online replicas in a master's `INFO replication`.
pub(crate) fn replica_offsets(info: &str) -> impl Iterator<Item = usize> + '_ {
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .filter_map(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|v| v.parse().ok())
        })
}

/// A numeric field (`key:value` line) of an `INFO` reply.
pub(crate) fn info_field(info: &str, key: &str) -> Option<usize> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// A double-quoted string as Redis's config parser (`sdssplitargs`) reads it.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for byte in value.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_what_the_config_parser_would_split_on() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(quote("é\n"), "\"\\xc3\\xa9\\x0a\"");
    }
}
