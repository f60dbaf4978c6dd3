//! A Redis Cluster topology: masters (three by default) and optional replicas, all real
//! `redis-server` processes on loopback, joined with plain `CLUSTER` commands (no `redis-cli`
//! needed).

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::server::{info_field, replica_offsets, replicas_caught_up};
use crate::{ports, RedisServer, ServerOptions, TestCa, HOST};

/// Number of hash slots of every Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How often the topology helpers poll.
const POLL: Duration = Duration::from_millis(50);

/// How to start a [`ClusterTopology`]: a builder, every method optional.
///
/// ```
/// use std::time::Duration;
/// use session_testkit::ClusterOptions;
///
/// let options = ClusterOptions::new()
///     .masters(3)
///     .replicas_per_master(1)
///     .node_timeout(Duration::from_millis(1000));
/// assert!(format!("{options:?}").contains("masters: 3"));
/// ```
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    masters: usize,
    replicas: usize,
    node_timeout: Duration,
    full_coverage: bool,
    ready_timeout: Duration,
    tls: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            masters: 3,
            replicas: 0,
            node_timeout: Duration::from_millis(1000),
            full_coverage: true,
            ready_timeout: Duration::from_secs(30),
            tls: false,
        }
    }
}

impl ClusterOptions {
    /// Three masters, no replicas, `cluster-node-timeout` 1000 ms, full coverage required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of masters (at least 1); the slots are split evenly between them.
    pub fn masters(mut self, masters: usize) -> Self {
        self.masters = masters.max(1);
        self
    }

    /// Replicas of each master (0 by default). With one or more, killing a master makes a
    /// replica take over after about `node_timeout` plus the election.
    pub fn replicas_per_master(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// `cluster-node-timeout`: how long a node may not answer before it is flagged failing.
    pub fn node_timeout(mut self, timeout: Duration) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// `cluster-require-full-coverage` (Redis' default, `true`): when false, the masters
    /// that are up keep serving their slots while the slots of a failed master are down.
    pub fn require_full_coverage(mut self, required: bool) -> Self {
        self.full_coverage = required;
        self
    }

    /// How long [`ClusterTopology::start_with`] waits for `cluster_state:ok` (30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// TLS everywhere: every node also listens on a TLS port, with a certificate from one
    /// shared CA ([`ClusterTopology::ca_cert_path`]); the cluster bus and replication use TLS
    /// (`tls-cluster yes`, `tls-replication yes`), so the nodes tell a TLS client their TLS
    /// ports (`CLUSTER NODES`, `CLUSTER SLOTS`, `MOVED`) and [`ClusterTopology::seed_hosts`]
    /// lists them. The plain ports stay open for the kit's own checks ([`RedisServer::cmd`]),
    /// and a client on a plain port is told the plain ports.
    ///
    /// ```
    /// use session_testkit::{ClusterOptions, ClusterTopology};
    ///
    /// let cluster = ClusterTopology::start_with(ClusterOptions::new().tls(true));
    /// let tls_port = cluster.node(0).tls_port().unwrap();
    /// assert!(cluster.seed_hosts().contains(&format!(":{tls_port}")));
    /// assert!(cluster.masters().contains(&cluster.master_of_slot(0)));
    /// assert!(cluster.ca_cert_path().unwrap().exists());
    /// cluster.node(1).restart();
    /// cluster.wait_ok();
    /// ```
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls = enabled;
        self
    }
}

/// One node of a [`ClusterTopology`]: the server and its cluster bus port.
struct Node {
    server: RedisServer,
    bus_port: u16,
}

impl Node {
    /// The port clients are given: the TLS one with `tls-cluster yes`.
    fn client_port(&self) -> u16 {
        self.server.tls_port().unwrap_or(self.server.port())
    }
}

/// A running Redis Cluster. Every process dies when the topology is dropped.
///
/// ```
/// use session_testkit::ClusterTopology;
///
/// let cluster = ClusterTopology::start();
/// assert_eq!(cluster.masters().len(), 3);
/// assert!(cluster.node(0).cmd::<String>(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
/// let master = cluster.master_of_slot(0);
/// assert!(cluster.masters().contains(&master));
/// ```
pub struct ClusterTopology {
    nodes: Vec<Node>,
    options: ClusterOptions,
    ca: Option<TestCa>,
}

impl ClusterTopology {
    /// Three masters, no replicas: see [`ClusterOptions::new`].
    ///
    /// # Panics
    ///
    /// When a server cannot start or the cluster does not reach `cluster_state:ok`.
    pub fn start() -> Self {
        Self::start_with(ClusterOptions::new())
    }

    /// Starts `masters * (1 + replicas)` servers with `cluster-enabled yes`, splits the slots
    /// between the masters (`CLUSTER ADDSLOTSRANGE`), joins every node (`CLUSTER MEET`), makes
    /// the replicas follow their masters (`CLUSTER REPLICATE`) and waits until every node
    /// reports `cluster_state:ok` and every replica is in sync.
    ///
    /// # Panics
    ///
    /// As [`ClusterTopology::start`].
    pub fn start_with(options: ClusterOptions) -> Self {
        let total = options.masters * (1 + options.replicas);
        let ca = options.tls.then(TestCa::new);
        let nodes: Vec<Node> = (0..total)
            .map(|_| {
                let bus_port = ports::reserve_free_port();
                let mut server_options = match &ca {
                    Some(ca) => ServerOptions::new()
                        .tls(true)
                        .tls_ca(ca.clone())
                        .config_line("tls-cluster yes")
                        .config_line("tls-replication yes"),
                    None => ServerOptions::new(),
                };
                server_options = server_options
                    // A master waits 5 s by default for more replicas before a diskless sync.
                    .config_line("repl-diskless-sync-delay 0")
                    .config_line("cluster-enabled yes")
                    .config_line("cluster-config-file nodes.conf")
                    .config_line(format!(
                        "cluster-node-timeout {}",
                        options.node_timeout.as_millis()
                    ))
                    .config_line(format!("cluster-port {bus_port}"))
                    .config_line(format!(
                        "cluster-require-full-coverage {}",
                        if options.full_coverage { "yes" } else { "no" }
                    ))
                    // A replica may take over however long its link was down: tests
                    // kill masters on purpose.
                    .config_line("cluster-replica-validity-factor 0");
                let server = RedisServer::start_with(server_options);
                if let Some(files) = server.tls_files() {
                    // A node's bus connections always present a certificate, and the server
                    // certificate is not one a client may use (its only purpose is
                    // `serverAuth`): the kit's client certificate is. Rewritten into the
                    // config file so that a restarted node keeps it.
                    let cert = files.client_cert.display().to_string();
                    let key = files.client_key.display().to_string();
                    let _: () = server.cmd(&[
                        "CONFIG",
                        "SET",
                        "tls-client-cert-file",
                        &cert,
                        "tls-client-key-file",
                        &key,
                    ]);
                    let _: () = server.cmd(&["CONFIG", "REWRITE"]);
                }
                Node { server, bus_port }
            })
            .collect();
        let topology = Self { nodes, options, ca };
        topology.form();
        topology
    }

    fn form(&self) {
        let masters = self.options.masters;
        let per = usize::from(SLOTS) / masters;
        for i in 0..masters {
            let first = i * per;
            let last = if i + 1 == masters {
                usize::from(SLOTS) - 1
            } else {
                first + per - 1
            };
            let _: () = self.nodes[i].server.cmd(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]);
        }
        let first = &self.nodes[0].server;
        for node in &self.nodes[1..] {
            let _: () = first.cmd(&[
                "CLUSTER",
                "MEET",
                HOST,
                &node.server.port().to_string(),
                &node.bus_port.to_string(),
            ]);
        }
        let deadline = Instant::now() + self.options.ready_timeout;
        self.wait(deadline, "every node to know every other", || {
            self.nodes.iter().all(|n| {
                n.server
                    .try_cmd::<String>(&["CLUSTER", "NODES"])
                    .is_ok_and(|text| text.lines().count() == self.nodes.len())
            })
        });
        for (r, replica) in self.nodes[masters..].iter().enumerate() {
            let master_id = self.node_id(r % masters);
            let _: () = replica.server.cmd(&["CLUSTER", "REPLICATE", &master_id]);
        }
        self.wait_ready(deadline);
    }

    fn wait(&self, deadline: Instant, what: &str, mut done: impl FnMut() -> bool) {
        while !done() {
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|n| format!("node {}:\n{}", n.server.port(), n.server.log_tail(15)))
                    .collect();
                panic!("cluster: timed out waiting for {what}\n{}", logs.join("\n"));
            }
            sleep(POLL);
        }
    }

    /// Waits until every running node reports `cluster_state:ok`, every running replica's
    /// link to its master is up, and every master lists each replica that says so as online
    /// and caught up with its offset (see `replicas_caught_up`: a link that is up may not
    /// stream writes yet). The replicas are counted from their own side too: a master asked
    /// just before its replica connected lists none.
    fn wait_ready(&self, deadline: Instant) {
        self.wait(deadline, "cluster_state:ok on every node", || {
            let running: Vec<&Node> = self
                .nodes
                .iter()
                .filter(|n| n.server.is_running())
                .collect();
            let infos: Option<Vec<String>> = running
                .iter()
                .map(|n| {
                    let ok = n
                        .server
                        .try_cmd::<String>(&["CLUSTER", "INFO"])
                        .is_ok_and(|info| info.contains("cluster_state:ok"));
                    let info = n.server.try_cmd::<String>(&["INFO", "replication"]).ok();
                    info.filter(|_| ok)
                })
                .collect();
            let Some(infos) = infos else { return false };
            running.iter().zip(&infos).all(|(node, info)| {
                if !info.contains("role:master") {
                    return info.contains("master_link_status:up");
                }
                let linked = infos
                    .iter()
                    .filter(|i| i.contains("master_link_status:up"))
                    .filter_map(|i| info_field(i, "master_port"))
                    .filter(|&port| {
                        node.server.port() as usize == port
                            || node.server.tls_port().map(usize::from) == Some(port)
                    })
                    .count();
                let connected = info_field(info, "connected_slaves").unwrap_or(0);
                replicas_caught_up(info) >= connected.max(linked)
            })
        });
    }

    /// Waits (up to `timeout`) until every replica connected to node `i` has acknowledged
    /// everything node `i` had written when this was called, and returns how many have.
    ///
    /// Not `WAIT`: it waits only for the writes of the connection that sends it, and a test
    /// writes through the store's connections. Replicas acknowledge their offset every
    /// second, so this takes up to about a second.
    pub fn wait_replication(&self, i: usize, timeout: Duration) -> usize {
        let server = &self.nodes[i].server;
        let info: String = server.cmd(&["INFO", "replication"]);
        let written = info_field(&info, "master_repl_offset").unwrap_or(0);
        let deadline = Instant::now() + timeout;
        loop {
            let info: String = server.cmd(&["INFO", "replication"]);
            let connected = info_field(&info, "connected_slaves").unwrap_or(0);
            let acked = replica_offsets(&info).filter(|&o| o >= written).count();
            if (connected > 0 && acked >= connected) || Instant::now() >= deadline {
                return acked;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to the ready timeout) until every running node reports `cluster_state:ok`
    /// and every running replica is in sync: after a restart or a failover.
    pub fn wait_ok(&self) {
        self.wait_ready(Instant::now() + self.options.ready_timeout);
    }

    /// Node `i`: the masters first (`0..masters`), then the replicas; replica `r` (counting
    /// from the first replica) started as a replica of master `r % masters`.
    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i].server
    }

    /// Every node, masters first.
    pub fn nodes(&self) -> impl Iterator<Item = &RedisServer> {
        self.nodes.iter().map(|n| &n.server)
    }

    /// The running nodes that are masters owning slots now (after a failover, a former
    /// replica is one), by node index.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                let server = &self.nodes[i].server;
                server.is_running()
                    && server
                        .try_cmd::<String>(&["CLUSTER", "NODES"])
                        .is_ok_and(|text| {
                            text.lines().any(|line| {
                                let fields: Vec<&str> = line.split_whitespace().collect();
                                fields.len() > 8
                                    && fields[2].contains("myself")
                                    && fields[2].contains("master")
                            })
                        })
            })
            .collect()
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...` of the masters as started: a `session_redis_host`.
    /// The TLS ports in a [`ClusterOptions::tls`] topology.
    pub fn seed_hosts(&self) -> String {
        self.nodes[..self.options.masters]
            .iter()
            .map(|n| format!("{HOST}:{}", n.client_port()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A file holding the PEM of the CA behind every certificate of a TLS topology (inside
    /// the first node's directory).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca.as_ref().and(self.nodes[0].server.ca_cert_path())
    }

    /// The cluster node id of node `i`.
    pub fn node_id(&self, i: usize) -> String {
        self.nodes[i].server.cmd(&["CLUSTER", "MYID"])
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`, asked to a running node).
    pub fn slot_of(&self, key: &str) -> u16 {
        let node = self
            .nodes
            .iter()
            .find(|n| n.server.is_running())
            .expect("a running node");
        node.server.cmd(&["CLUSTER", "KEYSLOT", key])
    }

    /// The index of the running master that owns `slot`, asking the running nodes.
    ///
    /// # Panics
    ///
    /// When no running node owns the slot.
    pub fn master_of_slot(&self, slot: u16) -> usize {
        self.try_master_of_slot(slot)
            .unwrap_or_else(|| panic!("cluster: no node owns slot {slot}"))
    }

    /// Like [`master_of_slot`](Self::master_of_slot), but `None` while no running master
    /// owns the slot, as during a failover: the node asked may already flag the old master
    /// as failing before it lists the new one.
    ///
    /// # Panics
    ///
    /// When the owner is a node that is not part of this cluster.
    pub fn try_master_of_slot(&self, slot: u16) -> Option<usize> {
        let owner = self
            .nodes
            .iter()
            .filter(|n| n.server.is_running())
            .find_map(|n| n.server.try_cmd::<String>(&["CLUSTER", "NODES"]).ok())
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // A master flagged `fail` may still list its slots in a node whose view
                    // lags behind the failover.
                    if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                        return None;
                    }
                    let owns = fields[8..].iter().any(|range| {
                        let (a, b) = range.split_once('-').unwrap_or((range, range));
                        matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
                    });
                    owns.then(|| fields[1].split(['@', ',']).next().unwrap_or_default().to_owned())
                })
            })
            ?;
        let i = self
            .nodes
            .iter()
            .position(|n| format!("{HOST}:{}", n.server.port()) == owner)
            .unwrap_or_else(|| panic!("cluster: slot {slot} is owned by unknown node {owner}"));
        Some(i)
    }

    /// Kills (`SIGKILL`) the master that owns `slot` and returns its index, to restart it
    /// with `node(i).restart()`: it comes back with its node id and slots (its
    /// `nodes.conf` survives), but without data.
    pub fn kill_master_of_slot(&self, slot: u16) -> usize {
        let i = self.master_of_slot(slot);
        self.nodes[i].server.kill();
        i
    }
}

impl Drop for ClusterTopology {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.server.kill();
            ports::release(node.bus_port);
        }
    }
}
