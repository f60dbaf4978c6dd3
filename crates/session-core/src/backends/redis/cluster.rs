//! Redis Cluster mode (`session_redis_mode = cluster`).
//!
//! One redis-rs [`ClusterConnection`](redis::cluster_async::ClusterConnection) carries every
//! request: it is cloneable and multiplexed (one connection per node, shared by every task),
//! follows `MOVED`/`ASK` redirections, refreshes the slot map and reconnects to nodes by
//! itself. This module only makes it lazily (nothing connects in `from_config`), remakes it
//! when the first connection to the seed nodes failed, and reports each master's health. With
//! `read_from_replicas` a second one sends the requests' loads to replicas, while every read
//! that decides a move or a deletion stays on the masters.
//!
//! Every store request touches a single key (`prefix + id`): the scripts declare exactly
//! `KEYS[1]`, and a load with sliding expiry is one `GETEX` (or, on a server that refuses it,
//! `GET` + `PEXPIRE` naming the same key twice), so redis-rs routes the whole pipeline to the one master that owns the key's slot, in one round
//! trip. The requests that follow on the same session (the `HGETALL` of a session still stored
//! as a hash by an earlier version, the retry of a write another write overtook) name the same
//! key too. Nothing can fail with `CROSSSLOT`.

use std::{
    sync::{Mutex, PoisonError},
    time::Duration,
};

use futures_util::{
    future::{BoxFuture, Shared},
    FutureExt,
};
use redis::{
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    ConnectionAddr, RedisResult,
};

use super::{connection::Request, tls::TlsPlan};
use crate::{
    plan::{ClusterPlan, ConnectionPlan},
    BackendHealth,
};

/// Attempts per request inside redis-rs beyond the first: enough for a `MOVED` followed by
/// an `ASK` during a resharding, or one reconnect; few enough that a dead node fails the
/// request quickly (redis-rs' default is 16 tries with waits growing to minutes).
pub const CLUSTER_RETRIES: u32 = 3;
/// Shortest and longest wait between those attempts, in milliseconds.
const MIN_RETRY_WAIT_MS: u64 = 50;
const MAX_RETRY_WAIT_MS: u64 = 500;

type Connecting = Shared<BoxFuture<'static, RedisResult<ClusterConnection>>>;

/// The cluster clients and their shared connections: one that sends everything to the
/// masters, and with `read_from_replicas` a second one whose read-only requests go to
/// replicas. Reads that decide what to delete or move (an index lookup, a move's read) go
/// to the masters even then: a lagging replica could miss a login or a logout. A third,
/// made on the first move into the cluster, sends a move's creates at most once
/// ([`Cluster::run_once`]).
pub(super) struct Cluster {
    primary: Lazy,
    replicas: Option<Lazy>,
    once: Lazy,
    seeds: Vec<(String, u16)>,
}

/// A client and its one shared connection, made on first use.
struct Lazy {
    client: ClusterClient,
    current: Mutex<Option<Connecting>>,
}

impl Cluster {
    /// The client for the plan's seed nodes; connects nothing.
    pub(super) fn new(
        plan: &ClusterPlan,
        connection: &ConnectionPlan,
        tls: Option<&TlsPlan>,
    ) -> RedisResult<Self> {
        let seeds = plan.seeds.clone();
        let builder = || {
            let nodes: Vec<ConnectionAddr> = seeds
                .iter()
                .map(|(host, port)| match tls {
                    Some(tls) => tls.tls_addr(host.clone(), *port),
                    None => ConnectionAddr::Tcp(host.clone(), *port),
                })
                .collect();
            let mut builder = ClusterClientBuilder::new(nodes)
                .connection_timeout(connection.connect_timeout)
                .response_timeout(connection.socket_timeout)
                // One bound for the whole request, retries and redirections included: a
                // request never waits longer than `socket_timeout` in total.
                .overall_response_timeout(Some(connection.socket_timeout))
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(MIN_RETRY_WAIT_MS)
                .max_retry_wait(MAX_RETRY_WAIT_MS);
            if let Some(username) = &plan.auth.username {
                builder = builder.username(username);
            }
            if let Some(password) = &plan.auth.password {
                builder = builder.password(password);
            }
            if let Some(keepalive) = connection.keepalive {
                builder = builder.tcp_settings(super::tcp_settings(keepalive));
            }
            if let Some(tls) = tls {
                builder = tls.cluster_builder(builder);
            }
            builder
        };
        let replicas = if plan.read_from_replicas {
            let builder =
                builder().read_routing_strategy(redis::cluster_read_routing::RandomReplicaStrategy);
            Some(Lazy::new(builder.build()?))
        } else {
            None
        };
        Ok(Self {
            primary: Lazy::new(builder().build()?),
            replicas,
            once: Lazy::new(builder().retries(0).build()?),
            seeds,
        })
    }

    /// Sends one request; a `read_only` one to a replica when replica reads are on.
    /// redis-rs' cluster connection does its own retries, redirections and reconnects, so
    /// nothing is retried here.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        request: &Request,
        read_only: bool,
    ) -> RedisResult<T> {
        let lazy = match &self.replicas {
            Some(replicas) if read_only => replicas,
            _ => &self.primary,
        };
        let mut conn = lazy.connection().await?;
        request.send(&mut conn).await
    }

    /// [`run`](Self::run) to the masters, never sent twice: for a move's creates, whose
    /// resend after a lost reply could write the copy back after a logout removed it
    /// (`RedisBackend::create_many_tagged`). redis-rs retries inside the cluster connection,
    /// after a dropped connection as after a redirection, and knows no per-request limit,
    /// so these go through a connection of their own that retries nothing. A lost reply,
    /// and also a `MOVED` or `ASK` while slots move, fail the move then; the slot map is
    /// refreshed all the same, and the next load makes the move again.
    pub(super) async fn run_once<T: redis::FromRedisValue>(
        &self,
        request: &Request,
    ) -> RedisResult<T> {
        let mut conn = self.once.connection().await?;
        request.send(&mut conn).await
    }

    /// `cluster host:port,host:port` (the seed nodes), without credentials.
    pub(super) fn location(&self) -> String {
        format!("cluster {}", hosts(&self.seeds))
    }

    /// The connection to the masters (see [`Lazy::connection`]).
    pub(super) async fn connection(&self) -> RedisResult<ClusterConnection> {
        self.primary.connection().await
    }

    /// One entry per master that serves slots, as `CLUSTER NODES` (asked to any node) lists
    /// them, each `PING`ed by its address: up when it answers and no node flags it as
    /// failing. A master that lost its slots to a failover is not listed; when no node
    /// answers at all, one entry for the seed nodes says why.
    pub(super) async fn health(&self, name: &str) -> Vec<BackendHealth> {
        let down = |location: String, error: String| BackendHealth {
            name: name.into(),
            location,
            up: false,
            error: Some(error),
        };
        let mut conn = match self.connection().await {
            Ok(conn) => conn,
            Err(err) => return vec![down(self.location(), err.to_string())],
        };
        let nodes = conn
            .route_command(
                redis::cmd("CLUSTER").arg("NODES").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await
            .and_then(|value| redis::from_redis_value::<String>(value).map_err(Into::into));
        let nodes = match nodes {
            Ok(text) => text,
            Err(err) => return vec![down(self.location(), err.to_string())],
        };
        // All masters at once: one hung master must not make the check take 2 s per master.
        let pings = masters(&nodes).into_iter().map(|master| {
            let mut conn = conn.clone();
            async move {
                let location = format!("master {}:{}", master.host, master.port);
                let ping = tokio::time::timeout(Duration::from_secs(2), async {
                    let by_ip = ping(&mut conn, &master.host, master.port).await;
                    // The client keeps its node connections under the address `CLUSTER SLOTS`
                    // gave: the announced hostname when the nodes prefer it
                    // (`cluster-preferred-endpoint-type hostname`), where `CLUSTER NODES`
                    // lists the IP first.
                    match (&by_ip, &master.hostname) {
                        (Err(err), Some(hostname))
                            if err.kind() == redis::ErrorKind::ClusterConnectionNotFound =>
                        {
                            ping(&mut conn, hostname, master.port).await
                        }
                        _ => by_ip,
                    }
                })
                .await;
                match ping {
                    Ok(Ok(_)) if !master.failing => BackendHealth {
                        name: name.into(),
                        location,
                        up: true,
                        error: None,
                    },
                    Ok(Ok(_)) => down(
                        location,
                        "answers PING, but the cluster flags it as failing".into(),
                    ),
                    Ok(Err(err)) => down(location, err.to_string()),
                    Err(_) => down(location, "no answer to PING within 2 s".into()),
                }
            }
        });
        let mut out = futures_util::future::join_all(pings).await;
        if out.is_empty() {
            out.push(down(
                self.location(),
                "CLUSTER NODES lists no master serving slots".into(),
            ));
        }
        out
    }
}

/// `PING` to the node the cluster connection knows as `host:port`.
async fn ping(conn: &mut ClusterConnection, host: &str, port: u16) -> RedisResult<redis::Value> {
    conn.route_command(
        redis::cmd("PING").clone(),
        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_owned(),
            port,
        }),
    )
    .await
}

impl Lazy {
    fn new(client: ClusterClient) -> Self {
        Self {
            client,
            current: Mutex::new(None),
        }
    }

    /// The shared connection, made on first use. Concurrent first callers share one attempt.
    /// An attempt that failed (no seed node answered) is forgotten so the next call tries
    /// again; a connection that was made once repairs itself and is kept.
    async fn connection(&self) -> RedisResult<ClusterConnection> {
        let connecting = {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            current
                .get_or_insert_with(|| {
                    let client = self.client.clone();
                    async move { client.get_async_connection().await }
                        .boxed()
                        .shared()
                })
                .clone()
        };
        let result = connecting.clone().await;
        if result.is_err() {
            let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            if current
                .as_ref()
                .is_some_and(|c| Shared::ptr_eq(c, &connecting))
            {
                *current = None;
            }
        }
        result
    }
}

/// What a cluster error means for the operator: redis-rs reports the last error after its
/// retries, which for a dead master is often the redirection that pointed to it.
pub(super) fn hint(err: &redis::RedisError) -> &'static str {
    match err.code() {
        Some("MOVED" | "ASK") => {
            " (the node that owns the key's slot did not answer after redirections: it is \
             down, or a failover or resharding is in progress)"
        }
        Some("CLUSTERDOWN") => {
            " (the cluster is down: some slots have no reachable master; CLUSTER INFO shows \
             cluster_state)"
        }
        Some("TRYAGAIN" | "MASTERDOWN") => {
            " (the cluster is moving the key's slot or its master is down; retry later)"
        }
        _ if err.is_io_error() || err.is_connection_refusal() => {
            " (a cluster node did not answer: it is down or unreachable)"
        }
        _ => "",
    }
}

pub(super) fn hosts(seeds: &[(String, u16)]) -> String {
    seeds
        .iter()
        .map(|(host, port)| format!("{host}:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One node of a `CLUSTER NODES` reply, as [`parse_cluster_nodes`] reads it: the one parser of
/// that reply, for the backend's health check and for `sessionctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterNode {
    /// The host as the node reports it; empty for the node that answered when it does not
    /// know its own address yet (the caller knows which address it asked).
    pub host: String,
    /// The client port.
    pub port: u16,
    /// The hostname the node announces (`cluster-announce-hostname`), when it does. With
    /// `cluster-preferred-endpoint-type hostname` clients connect to it rather than to `host`.
    pub hostname: Option<String>,
    /// Flagged `master`.
    pub master: bool,
    /// Flagged `fail` or `fail?` by the node that answered.
    pub failing: bool,
    /// Flagged `noaddr`: its address is unknown.
    pub no_address: bool,
    /// The slot ranges it serves, inclusive (masters only; the `[slot->-node]` migration
    /// annotations are left out).
    pub slots: Vec<(u16, u16)>,
}

/// The nodes of a `CLUSTER NODES` reply, sorted by address: lines of
/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`.
/// Lines that do not have that shape are skipped.
///
/// ```
/// use session_core::backends::redis::parse_cluster_nodes;
///
/// let nodes = parse_cluster_nodes("a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 5462\n");
/// assert_eq!((nodes[0].port, nodes[0].master), (7000, true));
/// assert_eq!(nodes[0].slots, vec![(0, 5460), (5462, 5462)]);
/// ```
pub fn parse_cluster_nodes(text: &str) -> Vec<ClusterNode> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let addr = fields[1].split(['@', ',']).next().unwrap_or_default();
        let hostname = fields[1]
            .split_once(',')
            .map(|(_, hostname)| hostname)
            .filter(|hostname| !hostname.is_empty())
            .map(str::to_owned);
        let Some((host, port)) = addr.rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse() else { continue };
        let flags: Vec<&str> = fields[2].split(',').collect();
        let master = flags.contains(&"master");
        let slots = if master {
            fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect()
        } else {
            Vec::new()
        };
        out.push(ClusterNode {
            host: host.to_owned(),
            port,
            hostname,
            master,
            failing: flags.iter().any(|f| *f == "fail" || *f == "fail?"),
            no_address: flags.contains(&"noaddr"),
            slots,
        });
    }
    out.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    out
}

/// The masters that own slots, from a `CLUSTER NODES` reply.
fn masters(text: &str) -> Vec<ClusterNode> {
    parse_cluster_nodes(text)
        .into_iter()
        .filter(|node| node.master && !node.slots.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_with_slots_only() {
        let text = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002,node-b master,fail? - 1 2 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 1 2 3 disconnected
d4 127.0.0.1:7004@17004 slave a1 0 2 1 connected
e5 127.0.0.1:7005@17005 master - 0 2 4 connected 10923-16383
";
        assert_eq!(
            masters(text)
                .into_iter()
                .map(|m| (m.host, m.port, m.failing))
                .collect::<Vec<_>>(),
            vec![
                ("127.0.0.1".to_owned(), 7001, false),
                ("127.0.0.1".to_owned(), 7002, true),
                ("127.0.0.1".to_owned(), 7005, false),
            ]
        );
        assert_eq!(
            masters(text)
                .into_iter()
                .map(|m| m.hostname)
                .collect::<Vec<_>>(),
            vec![None, Some("node-b".to_owned()), None]
        );
    }
}
