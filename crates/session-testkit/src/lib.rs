//! Real `redis-server` processes for tests.
//!
//! Every [`RedisServer`] is a real `redis-server` child process listening on a free
//! port of `127.0.0.1` (and optionally on a unix socket), with its own temporary
//! directory and no persistence. Starting one blocks until the server answers, which
//! takes a few tens of milliseconds. The API is synchronous, so it works the same from
//! plain `#[test]`s and from `#[tokio::test]`s.
//!
//! ```
//! use session_testkit::RedisServer;
//!
//! let server = RedisServer::start();
//! let _: () = server.cmd(&["SET", "greeting", "hello"]);
//! assert_eq!(server.cmd::<String>(&["GET", "greeting"]), "hello");
//!
//! // Simulate a crash, then bring the server back on the same port.
//! server.kill();
//! assert!(server.client().get_connection().is_err());
//! server.restart();
//! assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
//! ```
//!
//! # No process is ever left behind
//!
//! * Dropping a [`RedisServer`] kills the process (`SIGKILL`), reaps it and removes its
//!   temporary directory. Drop also runs while a test unwinds from a panic.
//! * If the test process dies without unwinding (abort, `SIGKILL`, a `panic = "abort"`
//!   profile), Linux delivers `SIGKILL` to every server through
//!   `prctl(PR_SET_PDEATHSIG)`. That signal fires when the *thread* that forked the
//!   child exits, not the process, and test harnesses run each test on its own
//!   short-lived thread. So every server is forked from one dedicated spawner thread
//!   that lives as long as the test process: the death signal then fires exactly when
//!   the process dies, and a server handed from one thread to another survives.
//!
//! Prefer one server per test: it is cheap, and tests then cannot see each other's
//! keys or statistics. A server kept in a `static` is never dropped; the death signal
//! still kills it when the test process ends, but its temporary directory stays.
//!
//! # `redis-server` must be installed
//!
//! The binary is taken from `$REDIS_SERVER` when that is set, else from `PATH`. When
//! it is missing, starting a server panics with the install command
//! (`apt-get install -y redis-server`, which `scripts/test.sh` runs); tests are never
//! skipped silently.
//!
//! # Ports
//!
//! Ports are picked at random below the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`) and checked free by binding them.
//! Ephemeral ports are what outgoing connections use, so a port from that range could
//! be taken by some client socket while a killed server waits to be restarted; below
//! it, only other listeners compete. A port is never handed out twice inside one test
//! process while its server exists, and a start that loses a race for its port
//! (`Address already in use`) retries on another one.
#![warn(missing_docs)]
#![cfg(unix)]

mod binary;
mod cluster;
pub mod http;
mod options;
mod ports;
mod proxy;
mod sentinel;
mod server;
mod spawner;
mod tls;

pub use binary::{redis_server_binary, try_redis_server_binary, INSTALL_HINT};
pub use cluster::{ClusterOptions, ClusterTopology, SLOTS};
pub use options::ServerOptions;
pub use proxy::Proxy;
pub use sentinel::{SentinelOptions, SentinelTopology};
pub use server::{RedisServer, StartError, HOST};
pub use tls::{TestCa, TlsFiles, CLIENT_KEY_PASSWORD};
