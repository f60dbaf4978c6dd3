//! A Sentinel topology: one master, replicas and three sentinels, all real `redis-server`
//! processes on loopback.

use std::collections::HashMap;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::server::{info_field, quote, replicas_caught_up};
use crate::{RedisServer, ServerOptions, TestCa, HOST};

/// How many sentinels a topology has: three, the smallest number that keeps a quorum of two
/// when one is down.
pub const SENTINELS: usize = 3;

/// How often the topology helpers poll.
const POLL: Duration = Duration::from_millis(50);

/// How to start a [`SentinelTopology`]: a builder, every method optional.
///
/// ```
/// use std::time::Duration;
/// use session_testkit::SentinelOptions;
///
/// let options = SentinelOptions::new()
///     .replicas(1)
///     .master_name("sessions")
///     .password("data-secret")
///     .sentinel_password("sentinel-secret")
///     .down_after(Duration::from_millis(1000));
/// assert!(!format!("{options:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct SentinelOptions {
    replicas: usize,
    master_name: String,
    password: Option<String>,
    sentinel_password: Option<String>,
    tls: bool,
    down_after: Duration,
    failover_timeout: Duration,
    ready_timeout: Duration,
}

impl Default for SentinelOptions {
    fn default() -> Self {
        Self {
            replicas: 2,
            master_name: "mymaster".into(),
            password: None,
            sentinel_password: None,
            tls: false,
            down_after: Duration::from_millis(1000),
            failover_timeout: Duration::from_millis(3000),
            ready_timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for SentinelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        f.debug_struct("SentinelOptions")
            .field("replicas", &self.replicas)
            .field("master_name", &self.master_name)
            .field("password", &redacted(&self.password))
            .field("sentinel_password", &redacted(&self.sentinel_password))
            .field("tls", &self.tls)
            .field("down_after", &self.down_after)
            .field("failover_timeout", &self.failover_timeout)
            .finish()
    }
}

impl SentinelOptions {
    /// Two replicas, master name `mymaster`, no passwords, no TLS, `down-after-milliseconds`
    /// 1000 and `failover-timeout` 3000.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many replicas of the master (default 2; at least 1 for a failover).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// The name the sentinels monitor the master under (default `mymaster`).
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = name.into();
        self
    }

    /// A password on the data nodes (`requirepass` and `masterauth`, and `sentinel
    /// auth-pass` on the sentinels). Written to config files only.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// A password on the sentinels themselves (`requirepass` and `sentinel sentinel-pass`
    /// in sentinel.conf).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }

    /// TLS everywhere: every node and sentinel also listens on a TLS port, with certificates
    /// from one shared CA ([`SentinelTopology::ca_cert_pem`]); replication and the
    /// sentinels' links use TLS (`tls-replication yes`), so the sentinels report TLS ports
    /// for the master and replicas. The plain ports stay open for the kit's own checks.
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }

    /// `down-after-milliseconds` (default 1000): how long the master must be unreachable
    /// before the sentinels fail over.
    pub fn down_after(mut self, after: Duration) -> Self {
        self.down_after = after;
        self
    }

    /// `failover-timeout` (default 3000 ms).
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = timeout;
        self
    }

    /// How long [`SentinelTopology::start_with`] waits for replication and discovery
    /// (default 30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }
}

/// A master, its replicas and three sentinels monitoring it, on free loopback ports.
///
/// Starting blocks until the replicas are in sync and every sentinel sees the master, every
/// replica and the two other sentinels (a couple of seconds: sentinels find each other
/// through hello messages sent every 2 s). Dropping the topology kills every process.
///
/// ```no_run
/// use std::time::Duration;
/// use session_testkit::SentinelTopology;
///
/// let topology = SentinelTopology::start();
/// let before = topology.master_addr();
/// let after = topology.failover();
/// assert_ne!(before, after);
/// topology.kill_master();
/// let again = topology.wait_for_new_master(&after, Duration::from_secs(20));
/// assert_ne!(again, after);
/// ```
pub struct SentinelTopology {
    options: SentinelOptions,
    nodes: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    ca: Option<TestCa>,
}

impl std::fmt::Debug for SentinelTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelTopology")
            .field("options", &self.options)
            .field("nodes", &self.nodes)
            .field("sentinels", &self.sentinels)
            .finish()
    }
}

impl SentinelTopology {
    /// Starts the default topology (see [`SentinelOptions::new`]).
    ///
    /// # Panics
    ///
    /// When a process does not start or the topology is not ready in time; the message
    /// says what was missing.
    pub fn start() -> Self {
        Self::start_with(SentinelOptions::new())
    }

    /// Starts a topology with `options`. Panics as [`SentinelTopology::start`].
    pub fn start_with(options: SentinelOptions) -> Self {
        let ca = options.tls.then(TestCa::new);
        let node_options = || {
            // A master waits 5 s by default for more replicas before a diskless sync; every
            // node can become a master here, and tests wait for their replicas.
            let mut o = ServerOptions::new().config_line("repl-diskless-sync-delay 0");
            if let Some(password) = &options.password {
                o = o
                    .password(password.clone())
                    .config_line(format!("masterauth {}", quote(password)));
            }
            if let Some(ca) = &ca {
                o = o
                    .tls(true)
                    .tls_ca(ca.clone())
                    .config_line("tls-replication yes");
            }
            o
        };
        let master = RedisServer::start_with(node_options());
        let master_port = data_port(&master, options.tls);
        let mut nodes = vec![master];
        for _ in 0..options.replicas {
            nodes.push(RedisServer::start_with(
                node_options()
                    .config_line(format!("replicaof {HOST} {master_port}"))
                    // Stale replicas must still be promotable in tests that kill quickly.
                    .config_line("replica-serve-stale-data yes"),
            ));
        }
        let name = quote(&options.master_name);
        let mut sentinels = Vec::with_capacity(SENTINELS);
        for _ in 0..SENTINELS {
            let mut o = ServerOptions::new()
                .arg("--sentinel")
                .config_line(format!("sentinel monitor {name} {HOST} {master_port} 2"))
                .config_line(format!(
                    "sentinel down-after-milliseconds {name} {}",
                    options.down_after.as_millis()
                ))
                .config_line(format!(
                    "sentinel failover-timeout {name} {}",
                    options.failover_timeout.as_millis()
                ));
            if let Some(password) = &options.password {
                o = o.config_line(format!("sentinel auth-pass {name} {}", quote(password)));
            }
            if let Some(password) = &options.sentinel_password {
                o = o
                    .password(password.clone())
                    .config_line(format!("sentinel sentinel-pass {}", quote(password)));
            }
            if let Some(ca) = &ca {
                o = o
                    .tls(true)
                    .tls_ca(ca.clone())
                    .config_line("tls-replication yes");
            }
            sentinels.push(RedisServer::start_with(o));
        }
        let topology = Self {
            options,
            nodes,
            sentinels,
            ca,
        };
        topology.wait_ready(topology.options.ready_timeout);
        topology
    }

    /// The name the sentinels monitor the master under.
    pub fn master_name(&self) -> &str {
        &self.options.master_name
    }

    /// The options the topology was started with.
    pub fn options(&self) -> &SentinelOptions {
        &self.options
    }

    /// The data nodes: the first master first, then the replicas (the roles change with
    /// failovers; see [`SentinelTopology::master`]).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The three sentinels.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// Sentinel `i` (0, 1 or 2), for example to [`RedisServer::kill`] it.
    pub fn sentinel(&self, i: usize) -> &RedisServer {
        &self.sentinels[i]
    }

    /// The sentinels' addresses as clients reach them: `(127.0.0.1, port)`, the TLS port
    /// when the topology has TLS.
    pub fn sentinel_addrs(&self) -> Vec<(String, u16)> {
        self.sentinels
            .iter()
            .map(|s| (HOST.to_string(), data_port(s, self.options.tls)))
            .collect()
    }

    /// The sentinel list in Odoo's Python-literal syntax:
    /// `[('127.0.0.1', P1), ('127.0.0.1', P2), ('127.0.0.1', P3)]`.
    pub fn sentinel_host_list(&self) -> String {
        let items: Vec<String> = self
            .sentinel_addrs()
            .iter()
            .map(|(host, port)| format!("('{host}', {port})"))
            .collect();
        format!("[{}]", items.join(", "))
    }

    /// The PEM of the CA behind every certificate of a TLS topology.
    pub fn ca_cert_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(TestCa::pem)
    }

    /// A file holding [`SentinelTopology::ca_cert_pem`] (inside the first node's directory).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca.as_ref().and(self.nodes[0].ca_cert_path())
    }

    /// The master's address as the first sentinel that answers reports it
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    ///
    /// # Panics
    ///
    /// When no sentinel answers.
    pub fn master_addr(&self) -> (String, u16) {
        self.sentinels
            .iter()
            .find_map(|s| self.addr_from(s))
            .unwrap_or_else(|| panic!("session-testkit: no sentinel reports a master"))
    }

    /// The data node the sentinels report as master.
    pub fn master(&self) -> &RedisServer {
        let (_, port) = self.master_addr();
        self.node_at(port)
            .unwrap_or_else(|| panic!("session-testkit: no node listens on port {port}"))
    }

    /// The node listening on `port` (plain or TLS).
    pub fn node_at(&self, port: u16) -> Option<&RedisServer> {
        self.nodes
            .iter()
            .find(|n| n.port() == port || n.tls_port() == Some(port))
    }

    /// A planned failover: `SENTINEL FAILOVER` on the first sentinel that accepts it, then
    /// waits (up to 30 s) until a new master is promoted and every live sentinel reports
    /// it. Returns the new master's address.
    ///
    /// # Panics
    ///
    /// When no sentinel accepts the failover or it does not complete in time.
    pub fn failover(&self) -> (String, u16) {
        let old = self.master_addr();
        let deadline = Instant::now() + Duration::from_secs(30);
        let name = self.options.master_name.clone();
        loop {
            let accepted = self.sentinels.iter().filter(|s| s.is_running()).any(|s| {
                s.try_cmd::<String>(&["SENTINEL", "FAILOVER", &name])
                    .is_ok()
            });
            if accepted {
                break;
            }
            // INPROG or NOGOODSLAVE right after start or after another failover.
            assert!(
                Instant::now() < deadline,
                "session-testkit: no sentinel accepted SENTINEL FAILOVER"
            );
            sleep(Duration::from_millis(200));
        }
        self.wait_for_new_master(&old, deadline.saturating_duration_since(Instant::now()))
    }

    /// Kills the current master with `SIGKILL` (a crash) and returns the address it had.
    /// The sentinels fail over after `down-after-milliseconds` plus an election; see
    /// [`SentinelTopology::wait_for_new_master`].
    pub fn kill_master(&self) -> (String, u16) {
        let addr = self.master_addr();
        self.master().kill();
        addr
    }

    /// Waits until every live sentinel reports the same master, other than `old`, that
    /// node answers `ROLE` as a master, and no sentinel is still in the middle of the
    /// failover (the leader reconfigures the other replicas after the promotion; a second
    /// failover cannot start before it is done). Returns the new master's address.
    ///
    /// # Panics
    ///
    /// After `timeout`, with what the sentinels reported.
    pub fn wait_for_new_master(&self, old: &(String, u16), timeout: Duration) -> (String, u16) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen: Vec<Option<(String, u16)>> = self
                .sentinels
                .iter()
                .filter(|s| s.is_running())
                .map(|s| self.addr_from(s))
                .collect();
            if let Some(Some(first)) = seen.first() {
                let agreed = seen.iter().all(|s| s.as_ref() == Some(first));
                if agreed && first != old && self.is_master(first.1) && self.settled() {
                    return first.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "session-testkit: no new master agreed on within {timeout:?} (old {old:?}); sentinels report {seen:?}"
            );
            sleep(POLL);
        }
    }

    /// Writes a marker on the master and waits (`WAIT`, up to `timeout`) until every
    /// replica that is connected has acknowledged it, so everything written before this
    /// call is on those replicas. Returns how many replicas acknowledged.
    ///
    /// The write matters: `WAIT` only waits for the calling connection's own writes.
    ///
    /// Right after a failover the replicas are still being pointed at the new master and
    /// resynchronised, so this first waits (within `timeout`) until at least one replica is
    /// connected and every connected one is `online`.
    pub fn wait_replication(&self, timeout: Duration) -> usize {
        let master = self.master();
        let mut con = master.connection();
        let deadline = Instant::now() + timeout;
        let connected = loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut con)
                .expect("INFO replication on the master");
            let connected = info_field(&info, "connected_slaves").unwrap_or(0);
            let syncing = info
                .lines()
                .any(|l| l.starts_with("slave") && !l.contains("state=online"));
            if (connected > 0 && !syncing) || Instant::now() >= deadline {
                break connected;
            }
            sleep(Duration::from_millis(20));
        };
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        let _: i64 = redis::cmd("INCR")
            .arg("session-testkit:wait")
            .query(&mut con)
            .expect("INCR on the master");
        let acked: usize = redis::cmd("WAIT")
            .arg(connected)
            .arg(timeout.as_millis() as u64)
            .query(&mut con)
            .expect("WAIT on the master");
        acked
    }

    fn addr_from(&self, sentinel: &RedisServer) -> Option<(String, u16)> {
        let reply: Option<(String, u16)> = sentinel
            .try_cmd(&[
                "SENTINEL",
                "GET-MASTER-ADDR-BY-NAME",
                &self.options.master_name,
            ])
            .ok()?;
        reply
    }

    /// True when no live sentinel has a failover in progress.
    fn settled(&self) -> bool {
        self.sentinels.iter().filter(|s| s.is_running()).all(|s| {
            s.try_cmd::<HashMap<String, String>>(&["SENTINEL", "MASTER", &self.options.master_name])
                .is_ok_and(|m| m.get("flags").is_some_and(|f| f == "master"))
        })
    }

    fn is_master(&self, port: u16) -> bool {
        let Some(node) = self.node_at(port) else {
            return false;
        };
        matches!(node.try_cmd::<redis::Value>(&["ROLE"]),
            Ok(redis::Value::Array(items))
                if matches!(items.first(), Some(redis::Value::BulkString(b)) if b == b"master"))
    }

    /// Waits until replication is online and every sentinel knows everything.
    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let replicas = self.options.replicas;
        loop {
            let missing = self.not_ready(replicas);
            let Some(missing) = missing else { return };
            assert!(
                Instant::now() < deadline,
                "session-testkit: sentinel topology not ready within {timeout:?}: {missing}"
            );
            sleep(POLL);
        }
    }

    /// What is still missing, or `None` when ready.
    fn not_ready(&self, replicas: usize) -> Option<String> {
        let info: String = match self.nodes[0].try_cmd(&["INFO", "replication"]) {
            Ok(info) => info,
            Err(err) => return Some(format!("master INFO failed: {err}")),
        };
        let streaming = replicas_caught_up(&info);
        if streaming < replicas {
            return Some(format!(
                "{streaming} of {replicas} replicas online and caught up with the master"
            ));
        }
        let name = self.options.master_name.as_str();
        for (i, s) in self.sentinels.iter().enumerate() {
            let master: HashMap<String, String> = match s.try_cmd(&["SENTINEL", "MASTER", name]) {
                Ok(m) => m,
                Err(err) => return Some(format!("sentinel {i}: SENTINEL MASTER failed: {err}")),
            };
            let get = |k: &str| master.get(k).map(String::as_str).unwrap_or("?");
            if get("flags") != "master"
                || get("num-slaves") != replicas.to_string()
                || get("num-other-sentinels") != (SENTINELS - 1).to_string()
            {
                return Some(format!(
                    "sentinel {i} sees flags={} num-slaves={} num-other-sentinels={}",
                    get("flags"),
                    get("num-slaves"),
                    get("num-other-sentinels")
                ));
            }
            let seen: Vec<HashMap<String, String>> = match s
                .try_cmd(&["SENTINEL", "REPLICAS", name])
            {
                Ok(r) => r,
                Err(err) => return Some(format!("sentinel {i}: SENTINEL REPLICAS failed: {err}")),
            };
            for r in &seen {
                let flags = r.get("flags").map(String::as_str).unwrap_or("?");
                let link = r
                    .get("master-link-status")
                    .map(String::as_str)
                    .unwrap_or("?");
                if flags != "slave" || link != "ok" {
                    return Some(format!(
                        "sentinel {i} sees a replica with flags={flags} master-link-status={link}"
                    ));
                }
            }
        }
        None
    }
}

/// The port clients use: the TLS one in a TLS topology.
fn data_port(server: &RedisServer, tls: bool) -> u16 {
    if tls {
        server.tls_port().expect("a TLS server has a TLS port")
    } else {
        server.port()
    }
}
