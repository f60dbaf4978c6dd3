//! The parts of a configured backend, and the servers behind each.
//!
//! A *part* is one place sessions live on their own: the file store, one Redis deployment
//! (standalone, Sentinel or Cluster), one member of a pool, one backend of a multi-backend.
//! Each part has the store's own backend for it (session-core's code for every session
//! operation, so `show`, `revoke` and `migrate` behave exactly as the application does) and,
//! for Redis, what sessionctl needs to reach every server itself: each sentinel, the master
//! and replicas they report, every cluster node (for `check`, and for `SCAN` under the
//! prefix, which the store itself never does). Those own connections are made by
//! [`RedisPlan::node_client`], so they get the same TLS settings and socket options as the
//! store's.

use std::{path::PathBuf, sync::Arc};

use redis::{aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionAddr, ConnectionInfo};
use session_core::{
    backends::{
        file::FileBackend,
        redis::{parse_cluster_nodes, RedisBackend},
    },
    plan::{Auth, BackendPlan, ClusterPlan, RedisPlan, SentinelPlan, Topology},
    SessionBackend,
};

use crate::failure::Failure;

/// One place sessions live (see the [module docs](self)), borrowed from the plan it was
/// found in.
pub struct Part<'a> {
    /// How errors and reports name it: `redis`, `file`, `pool[host:port/0]`,
    /// `multi[name]/redis`, ...
    pub name: String,
    /// The store's backend for this part alone.
    pub backend: Arc<dyn SessionBackend>,
    /// How sessionctl reaches its data itself.
    pub kind: PartKind<'a>,
}

/// The two kinds of parts.
pub enum PartKind<'a> {
    /// The file store.
    Files(Arc<FileBackend>),
    /// A Redis deployment.
    Redis(Box<RedisPart<'a>>),
}

/// What sessionctl needs to reach every server of one Redis deployment.
pub struct RedisPart<'a> {
    /// The key prefix.
    pub prefix: String,
    /// Addresses, credentials, timeouts and TLS: every client of sessionctl's own is made
    /// from it.
    plan: &'a RedisPlan,
}

/// What a server is to the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The one server of a standalone deployment or pool member.
    Standalone,
    /// A sentinel.
    Sentinel,
    /// The master the sentinels report.
    Master,
    /// A replica the sentinels report.
    Replica,
    /// A cluster master with its slot ranges.
    ClusterMaster(Vec<(u16, u16)>),
    /// A cluster replica.
    ClusterReplica,
}

impl Role {
    /// For reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Sentinel => "sentinel",
            Role::Master => "master",
            Role::Replica => "replica",
            Role::ClusterMaster(_) => "cluster master",
            Role::ClusterReplica => "cluster replica",
        }
    }

    /// True for the servers that hold the sessions (where to scan).
    pub fn holds_sessions(&self) -> bool {
        matches!(
            self,
            Role::Standalone | Role::Master | Role::ClusterMaster(_)
        )
    }
}

/// One server, found from the configuration (and, for Sentinel and Cluster, by asking).
pub struct Node {
    /// Its role.
    pub role: Role,
    /// `host:port` or a socket path; never credentials.
    pub location: String,
    /// The database number sessions are in.
    pub db: i64,
    client: redis::Client,
}

impl Node {
    /// The node at `info`'s address with `role`, reached as `plan` reaches its servers.
    fn new(role: Role, info: ConnectionInfo, plan: &RedisPlan) -> Result<Self, Failure> {
        let location = location(info.addr());
        let db = info.redis_settings().db();
        let client = plan
            .node_client(info)
            .map_err(|e| Failure::failed(format!("{location}: {e}")))?;
        Ok(Node {
            role,
            location,
            db,
            client,
        })
    }

    /// Where its sessions are, comparable between configurations:
    /// `redis:<location>/<db>#<prefix>`.
    pub fn place(&self, prefix: &str) -> String {
        redis_place(&self.location, self.db, prefix)
    }
}

/// See [`Node::place`].
pub fn redis_place(location: &str, db: i64, prefix: &str) -> String {
    format!("redis:{location}/{db}#{prefix}")
}

/// What the Redis server at the other end of `conn` says it is: `INFO server`'s `run_id`,
/// random at each start of a server process and never shared by two (a replica has its
/// own). Two spellings of one server (`localhost` and `127.0.0.1`, TCP and its unix socket,
/// TLS and plain ports) answer the same; [`redis_place`] compares the spellings only.
pub async fn server_id(conn: &mut MultiplexedConnection) -> Result<String, String> {
    let info = info_server(conn).await.map_err(|e| e.to_string())?;
    info_field(&info, "run_id")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
        .ok_or_else(|| "its INFO server reply has no run_id".to_owned())
}

/// The `INFO server` reply of the server at the other end of `conn`.
pub async fn info_server(conn: &mut MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("INFO").arg("server").query_async(conn).await
}

/// The value of `field` in an `INFO` reply (`field:value` lines ending with `\r\n`),
/// trimmed.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// The place of the server that said it is `run_id` ([`server_id`]): equal for every
/// spelling of one server, db and prefix.
pub fn identified_place(run_id: &str, db: i64, prefix: &str) -> String {
    redis_place(&format!("run_id={run_id}"), db, prefix)
}

/// Where the sessions of a file store are, comparable between configurations.
pub fn files_place(root: &std::path::Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    format!("files:{}", root.display())
}

/// The servers of a deployment, and what could not be found out.
pub struct Discovery {
    /// Every server found.
    pub nodes: Vec<Node>,
    /// One line per thing that failed (a sentinel that does not answer, ...).
    pub problems: Vec<String>,
}

/// The parts of a plan's backend, each with its own backend built (nothing is connected).
pub fn parts(plan: &BackendPlan) -> Result<Vec<Part<'_>>, Failure> {
    let mut out = Vec::new();
    collect(plan, None, &mut out)?;
    Ok(out)
}

fn collect<'a>(
    plan: &'a BackendPlan,
    within: Option<String>,
    out: &mut Vec<Part<'a>>,
) -> Result<(), Failure> {
    let named = |name: &str| match &within {
        Some(prefix) => format!("{prefix}/{name}"),
        None => name.to_owned(),
    };
    match plan {
        BackendPlan::Memory => {}
        BackendPlan::File(file) => {
            let backend = Arc::new(files(&file.root)?);
            out.push(Part {
                name: named("file"),
                backend: backend.clone(),
                kind: PartKind::Files(backend),
            });
        }
        BackendPlan::Redis(redis) => out.push(redis_part(named("redis"), redis)?),
        BackendPlan::Pool(pool) => {
            for member in &pool.members {
                out.push(redis_part(
                    named(&format!("pool[{}]", member.identity)),
                    &member.redis,
                )?);
            }
        }
        BackendPlan::Multi(multi) => {
            for member in &multi.backends {
                collect(
                    &member.plan,
                    Some(named(&format!("multi[{}]", member.name))),
                    out,
                )?;
            }
        }
        _ => {
            return Err(Failure::usage(
                "this configuration's backend kind is not known to this sessionctl build",
            ))
        }
    }
    Ok(())
}

/// The file store at `root`, without its background sweeper (a command is short-lived).
pub fn files(root: &std::path::Path) -> Result<FileBackend, Failure> {
    FileBackend::new(PathBuf::from(root))
        .map(|b| b.with_cleanup_interval(None))
        .map_err(Failure::config)
}

const UNKNOWN_TOPOLOGY: &str = "this Redis topology is not known to this sessionctl build";

fn redis_part<'a>(name: String, plan: &'a RedisPlan) -> Result<Part<'a>, Failure> {
    let backend = RedisBackend::from_plan(plan).map_err(Failure::config)?;
    if !matches!(
        &plan.topology,
        Topology::Standalone(_) | Topology::Sentinel(_) | Topology::Cluster(_)
    ) {
        return Err(Failure::usage(format!("{name}: {UNKNOWN_TOPOLOGY}")));
    }
    Ok(Part {
        name,
        backend: Arc::new(backend),
        kind: PartKind::Redis(Box::new(RedisPart {
            prefix: plan.prefix.clone(),
            plan,
        })),
    })
}

impl RedisPart<'_> {
    /// Finds every server: the one standalone server; each sentinel, then the master and
    /// replicas the first answering sentinel reports; every node of the cluster, from the
    /// first answering seed.
    pub async fn discover(&self) -> Result<Discovery, Failure> {
        let mut problems = Vec::new();
        let nodes = match &self.plan.topology {
            Topology::Standalone(info) => {
                vec![Node::new(Role::Standalone, info.clone(), self.plan)?]
            }
            Topology::Sentinel(plan) => self.sentinel_nodes(plan, &mut problems).await?,
            Topology::Cluster(plan) => self.cluster_nodes(plan, &mut problems).await?,
            // `redis_part` refused the others already; the match must still cover them.
            _ => return Err(Failure::usage(UNKNOWN_TOPOLOGY)),
        };
        Ok(Discovery { nodes, problems })
    }

    /// A connection to `node`, with the configuration's timeouts.
    pub async fn connect(&self, node: &Node) -> redis::RedisResult<MultiplexedConnection> {
        let connection = &self.plan.connection;
        node.client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connection.connect_timeout))
                    .set_response_timeout(Some(connection.socket_timeout)),
            )
            .await
    }

    /// The node at `host:port` with `role`, reached with `auth` on database `db`.
    fn node(
        &self,
        role: Role,
        addr: ConnectionAddr,
        auth: &Auth,
        db: i64,
    ) -> Result<Node, Failure> {
        Node::new(role, info(addr, auth, db)?, self.plan)
    }

    async fn sentinel_nodes(
        &self,
        plan: &SentinelPlan,
        problems: &mut Vec<String>,
    ) -> Result<Vec<Node>, Failure> {
        let mut nodes = Vec::new();
        let mut master: Option<(String, u16)> = None;
        let mut replicas: Vec<(String, u16)> = Vec::new();
        for (host, port) in &plan.sentinels {
            let addr = ConnectionAddr::Tcp(host.clone(), *port);
            let mut answered = None;
            let mut auths = vec![plan.sentinel_auth.clone()];
            if plan.sentinel_auth_is_fallback && plan.sentinel_auth.password.is_some() {
                // Odoo passes the data nodes' credentials to sentinels that may have none.
                auths.push(Auth::default());
            }
            let mut last_err = String::new();
            for auth in auths {
                let node = self.node(Role::Sentinel, addr.clone(), &auth, 0)?;
                match self.ask_sentinel(&node, &plan.master).await {
                    Ok(found) => {
                        answered = Some(found);
                        nodes.push(node);
                        break;
                    }
                    Err(err) => last_err = err,
                }
            }
            match answered {
                Some((m, r)) => {
                    if master.is_none() {
                        master = m;
                        replicas = r;
                    }
                }
                None => {
                    problems.push(format!("sentinel {}: {last_err}", location(&addr)));
                    // Still listed, so `check` reports it as down.
                    nodes.push(self.node(Role::Sentinel, addr, &plan.sentinel_auth, 0)?);
                }
            }
        }
        match master {
            Some((host, port)) => nodes.push(self.node(
                Role::Master,
                ConnectionAddr::Tcp(host, port),
                &plan.node_auth,
                plan.db,
            )?),
            None => problems.push(format!(
                "no sentinel reported a master named `{}` (session_redis_master): check the name and that the sentinels monitor it",
                plan.master
            )),
        }
        for (host, port) in replicas {
            nodes.push(self.node(
                Role::Replica,
                ConnectionAddr::Tcp(host, port),
                &plan.node_auth,
                plan.db,
            )?);
        }
        Ok(nodes)
    }

    /// The master's address and the replicas' addresses, from one sentinel.
    #[allow(clippy::type_complexity)]
    async fn ask_sentinel(
        &self,
        node: &Node,
        master: &str,
    ) -> Result<(Option<(String, u16)>, Vec<(String, u16)>), String> {
        let mut conn = self.connect(node).await.map_err(|e| e.to_string())?;
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let replicas: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
            .arg("replicas")
            .arg(master)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let replicas = replicas
            .into_iter()
            .filter(|r| {
                !r.get("flags")
                    .is_some_and(|f| f.contains("s_down") || f.contains("disconnected"))
            })
            .filter_map(|r| Some((r.get("ip")?.clone(), r.get("port")?.parse().ok()?)))
            .collect();
        Ok((addr, replicas))
    }

    async fn cluster_nodes(
        &self,
        plan: &ClusterPlan,
        problems: &mut Vec<String>,
    ) -> Result<Vec<Node>, Failure> {
        for (host, port) in &plan.seeds {
            let seed = self.node(
                Role::ClusterMaster(Vec::new()),
                ConnectionAddr::Tcp(host.clone(), *port),
                &plan.auth,
                0,
            )?;
            let text: Result<String, String> = async {
                let mut conn = self.connect(&seed).await.map_err(|e| e.to_string())?;
                redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            match text {
                Ok(text) => {
                    let mut nodes = Vec::new();
                    for (role, host, port) in cluster_lines(&text, host) {
                        nodes.push(self.node(
                            role,
                            ConnectionAddr::Tcp(host, port),
                            &plan.auth,
                            0,
                        )?);
                    }
                    return Ok(nodes);
                }
                Err(err) => problems.push(format!("cluster seed {host}:{port}: {err}")),
            }
        }
        problems.push(
            "no seed node of session_redis_host answered CLUSTER NODES: check the addresses and that the nodes run in cluster mode".into(),
        );
        Ok(Vec::new())
    }
}

/// The nodes of a `CLUSTER NODES` reply: role (with slots for masters), host, port. Failed
/// nodes and nodes without an address are left out. A node that reports an empty address is
/// the seed itself.
fn cluster_lines(text: &str, seed_host: &str) -> Vec<(Role, String, u16)> {
    let mut out: Vec<_> = parse_cluster_nodes(text)
        .into_iter()
        .filter(|node| !node.failing && !node.no_address)
        .map(|node| {
            let host = if node.host.is_empty() {
                seed_host.to_owned()
            } else {
                node.host
            };
            let role = if node.master {
                Role::ClusterMaster(node.slots)
            } else {
                Role::ClusterReplica
            };
            (role, host, node.port)
        })
        .collect();
    // Sorted again: the seed's own line sorts by the host it was given.
    out.sort_by(|a, b| (a.1.as_str(), a.2).cmp(&(b.1.as_str(), b.2)));
    out
}

fn info(addr: ConnectionAddr, auth: &Auth, db: i64) -> Result<ConnectionInfo, Failure> {
    use redis::IntoConnectionInfo;
    let shown = location(&addr);
    Ok(addr
        .into_connection_info()
        .map_err(|e| Failure::failed(format!("{shown}: {e}")))?
        .set_redis_settings(auth.info().set_db(db)))
}

/// An address without credentials.
pub fn location(addr: &ConnectionAddr) -> String {
    addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_lines_give_roles_slots_and_addresses() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [123->-abc]
c3 :7002@17002 master - 0 0 3 connected 10923-16383
d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected
e5 127.0.0.1:7004@17004 master,fail - 0 0 4 disconnected
";
        let nodes = cluster_lines(text, "10.0.0.9");
        assert_eq!(nodes.len(), 4);
        assert_eq!(
            nodes[0],
            (
                Role::ClusterMaster(vec![(10923, 16383)]),
                "10.0.0.9".into(),
                7002
            )
        );
        assert_eq!(
            nodes[1],
            (
                Role::ClusterMaster(vec![(0, 5460)]),
                "127.0.0.1".into(),
                7000
            )
        );
        assert_eq!(
            nodes[2],
            (
                Role::ClusterMaster(vec![(5461, 10922)]),
                "127.0.0.1".into(),
                7001
            )
        );
        assert_eq!(nodes[3], (Role::ClusterReplica, "127.0.0.1".into(), 7003));
    }
}
