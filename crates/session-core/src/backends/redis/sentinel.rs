//! Finding the master (and, optionally, a replica) through Redis Sentinel.
//!
//! # Resolution
//! The sentinels are asked in turn, starting with the one that answered last, for
//! `SENTINEL GET-MASTER-ADDR-BY-NAME <master>`. A sentinel that refuses the connection, does
//! not answer within the lookup timeouts, rejects the credentials or does not know the master
//! is skipped. The address a sentinel gives is then checked with `ROLE` on the node itself: a
//! sentinel cut off from the others can still report a master that has since been demoted,
//! and writes sent there would fail with `READONLY`. A node that is not a master sends the
//! lookup on to the next sentinel.
//!
//! The resolved master is cached: new connections reuse it without asking the sentinels.
//! `invalidate_master` forgets it (the connection layer calls it on `READONLY`,
//! dropped or refused connections), so the next connection resolves again. Resolutions are
//! single-flight: when twenty requests fail at once, one lookup runs and the others wait for
//! its answer, an error included (they do not ask the sentinels again one after the other).
//!
//! # Credentials
//! Odoo's `session_redis` passes the Redis options to the sentinels too (redis-py's `sentinel_kwargs`). The
//! rule here: the sentinels get `session_redis_sentinel_username`/`_password` when either is
//! set; otherwise the data nodes' `session_redis_username`/`_password`. When those fallback
//! credentials are rejected by a sentinel that has no password configured at all (a common
//! set-up: passwords on the data nodes only), the lookup is repeated without credentials.
//! Explicit sentinel credentials are never dropped that way.
//!
//! # Replicas
//! With `session_redis_sentinel_read_from_replicas`, the resolver picks a
//! healthy replica from `SENTINEL REPLICAS` (flags exactly `slave`, link to the master up),
//! at random among them so that several application processes spread their reads; no
//! healthy replica (or no sentinel answering) means the master serves the reads. Not for
//! good: once [`REPLICA_RETRY_INTERVAL`] has passed since such a lookup, the next checkout
//! of a read connection starts another lookup in the background (one at a time, under the
//! same lookup lock); a replica found makes every read connection stale, so the reads move
//! to it, and none leaves them on the master for another interval. A checkout only compares
//! times and never waits for the sentinels; while a replica is in use, nothing of this
//! applies: its connections stay until it changes or fails.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, PoisonError, Weak,
    },
    time::{Duration, Instant},
};

use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, Client, ErrorKind, RedisConnectionInfo,
    RedisError, RedisResult, Value,
};

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::{
    plan::{Auth, SentinelPlan},
    running::Running,
    BackendHealth,
};

/// Upper bound of the connect timeout of one lookup: a dead sentinel must not hold the
/// resolution up for the whole `socket_connect_timeout` (the next one may answer at once).
const LOOKUP_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Upper bound of the response timeout of one lookup.
const LOOKUP_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// An address resolved this recently is kept when asked to forget it: a burst of failures on
/// the old master's connections must not turn into a burst of lookups that each throw the
/// fresh answer away.
const INVALIDATE_GRACE: Duration = Duration::from_millis(100);
/// How often an event subscription that has been quiet is `PING`ed. A subscription only
/// listens, so a connection that died without a FIN or RST (a pulled cable, a dropped NAT
/// entry, a frozen VM) would otherwise stay "subscribed" forever and every failover event
/// would be missed; TCP keepalive takes hours by default. The ping must answer within
/// `LOOKUP_RESPONSE_TIMEOUT`, so a dead subscription is replaced within about 5.5 s.
const EVENT_PING_INTERVAL: Duration = Duration::from_secs(5);
/// How long reads that fell back to the master (no healthy replica known, or no sentinel
/// answered) stay there before the sentinels are asked again. Without a bound they stayed
/// for the connections' life, and the master kept every read after the replicas were back.
/// The sentinels see a restarted replica within about a second (they `PING` it every
/// second) and a replica's link to the master within 10 s (`INFO`, every 10 s), so a
/// shorter wait gains little. Each retry is one lookup in the background (one
/// `SENTINEL REPLICAS` per sentinel asked) and no reconnection while there is still no
/// replica (see [`Sentinel::replica_changed_at`]), so a longer one would save next to
/// nothing and leave the master the reads for longer.
const REPLICA_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Builds a client for a `host:port` with the given credentials; the place where TLS
/// settings are applied (the same for sentinels and data nodes, as Odoo's `session_redis` does).
pub(super) type MakeClient =
    Box<dyn Fn(&str, u16, RedisConnectionInfo) -> RedisResult<Client> + Send + Sync>;

/// A cached address and the client made for it.
struct Resolved {
    host: String,
    port: u16,
    client: Client,
    at: Instant,
}

/// What is known about the master (or the replica used for reads).
#[derive(Default)]
struct Slot {
    /// The address in use; `None` after an invalidation, until the next resolution.
    current: Option<Resolved>,
    /// The last address resolved, kept across invalidations to notice a change.
    last: Option<(String, u16)>,
    /// When the address last changed: connections made before are stale.
    changed_at: Option<Instant>,
    /// When the last lookup ended without an address, and its error (`None`: the sentinels
    /// know no healthy replica). The callers that waited for that lookup take this answer.
    missed: Option<(Instant, Option<RedisError>)>,
    /// The replica's only: when the last lookup left the reads on the master; `None` while a
    /// replica is in use.
    fell_back: Option<Instant>,
}

impl Slot {
    /// Uses `resolved` from now on; true when that is another address than before.
    fn install(&mut self, resolved: Resolved) -> bool {
        let addr = (resolved.host.clone(), resolved.port);
        let changed = self.last.as_ref().is_some_and(|last| *last != addr);
        if changed {
            self.changed_at = Some(Instant::now());
        }
        self.last = Some(addr);
        self.current = Some(resolved);
        changed
    }

    /// The replica's only: true when the reads have been on the master, for want of a
    /// replica, for `interval` since the lookup that sent them there.
    fn retry_due(&self, interval: Duration) -> bool {
        self.fell_back.is_some_and(|at| at.elapsed() >= interval)
    }

    fn client(&self) -> Option<Client> {
        self.current.as_ref().map(|r| r.client.clone())
    }

    /// The answer of a lookup that ended without an address after `queued`, the moment a
    /// caller began to wait for the lookup lock. Without it each waiting caller ran the
    /// same failing lookup again, one after the other: with every sentinel hung, the k-th
    /// caller waited k lookups.
    fn missed_since(&self, queued: Instant) -> Option<Option<RedisError>> {
        self.missed
            .as_ref()
            .filter(|(at, _)| *at > queued)
            .map(|(_, err)| err.clone())
    }

    /// Forgets the address (unless it was resolved a moment ago, see `INVALIDATE_GRACE`).
    fn forget(&mut self) {
        if self
            .current
            .as_ref()
            .is_some_and(|r| r.at.elapsed() >= INVALIDATE_GRACE)
        {
            self.current = None;
        }
    }
}

/// The Sentinel side of the backend: resolves and caches the master (and a replica).
pub(super) struct Sentinel {
    sentinels: Vec<(String, u16)>,
    master_name: String,
    /// What to tell the sentinels.
    sentinel_credentials: Auth,
    /// True when `sentinel_credentials` are the data nodes' used as a fallback: they are
    /// dropped for a sentinel without a password.
    fallback: bool,
    /// Credentials and db for the data nodes.
    node_info: RedisConnectionInfo,
    make_client: MakeClient,
    lookup: AsyncConnectionConfig,
    /// Where the next lookup starts: the sentinel that answered last.
    next: AtomicUsize,
    master: Mutex<Slot>,
    replica: Mutex<Slot>,
    /// Single-flight lookups.
    resolving: tokio::sync::Mutex<()>,
    /// How many switch watchers are alive (started on first use, which is async). Each
    /// counts itself out when it ends or its runtime drops it.
    watchers: Running,
    /// Dropped with the resolver: tells the watchers to stop.
    stop: watch::Sender<()>,
    /// [`EVENT_PING_INTERVAL`], shorter in tests.
    event_ping_interval: Duration,
    /// [`REPLICA_RETRY_INTERVAL`], shorter in tests.
    replica_retry_interval: Duration,
    /// Whether the background replica lookup of [`Sentinel::retry_replica`] runs.
    replica_retry: Running,
}

impl Sentinel {
    /// The resolver for `plan`. `make_client` builds clients (plain or TLS);
    /// `connect_timeout`/`response_timeout` are the configured ones, capped for lookups (see
    /// the constants).
    pub(super) fn new(
        plan: &SentinelPlan,
        make_client: MakeClient,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        let node_info = plan.node_auth.info().set_db(plan.db);
        let lookup = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout.min(LOOKUP_CONNECT_TIMEOUT)))
            .set_response_timeout(Some(response_timeout.min(LOOKUP_RESPONSE_TIMEOUT)));
        Self {
            sentinels: plan.sentinels.clone(),
            master_name: plan.master.clone(),
            sentinel_credentials: plan.sentinel_auth.clone(),
            fallback: plan.sentinel_auth_is_fallback,
            node_info,
            make_client,
            lookup,
            next: AtomicUsize::new(0),
            master: Mutex::new(Slot::default()),
            replica: Mutex::new(Slot::default()),
            resolving: tokio::sync::Mutex::new(()),
            watchers: Running::default(),
            stop: watch::channel(()).0,
            event_ping_interval: EVENT_PING_INTERVAL,
            replica_retry_interval: REPLICA_RETRY_INTERVAL,
            replica_retry: Running::default(),
        }
    }

    /// `sentinel://h1:p1,h2:p2/master`, for logs and health (no credentials).
    pub(super) fn location(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        format!("sentinel://{}/{}", list.join(","), self.master_name)
    }

    /// The master's address, when one is cached.
    pub(super) fn cached_master(&self) -> Option<(String, u16)> {
        lock(&self.master)
            .current
            .as_ref()
            .map(|r| (r.host.clone(), r.port))
    }

    /// When the master last changed (see [`Target`](super::connection::Target)).
    pub(super) fn master_changed_at(&self) -> Option<Instant> {
        lock(&self.master).changed_at
    }

    /// When the replica used for reads last changed. Asked at every checkout of a read
    /// connection, so also where the reads that went to the master for want of a replica
    /// come back: once [`REPLICA_RETRY_INTERVAL`] has passed since the lookup that sent them
    /// there, this starts another one in the background (the checkout does not wait for it).
    /// A replica found makes every read connection stale; none restarts the wait, and the
    /// connections to the master stay.
    pub(super) fn replica_changed_at(self: &Arc<Self>) -> Option<Instant> {
        let (changed_at, due) = {
            let slot = lock(&self.replica);
            (slot.changed_at, slot.retry_due(self.replica_retry_interval))
        };
        if due {
            self.retry_replica();
        }
        changed_at
    }

    /// A client for the current master: the cached one, or a fresh resolution. The first
    /// call also starts the switch watchers (see [`Sentinel::watch`]).
    pub(super) async fn master_client(self: &Arc<Self>) -> RedisResult<Client> {
        self.start_watching();
        if let Some(client) = lock(&self.master).client() {
            return Ok(client);
        }
        let queued = Instant::now();
        let _flight = self.resolving.lock().await;
        // Someone else may have resolved, or failed to, while this task waited for the lock.
        {
            let slot = lock(&self.master);
            if let Some(client) = slot.client() {
                return Ok(client);
            }
            if let Some(Some(err)) = slot.missed_since(queued) {
                return Err(err);
            }
        }
        let resolved = match self.resolve_master().await {
            Ok(resolved) => resolved,
            Err(err) => {
                lock(&self.master).missed = Some((Instant::now(), Some(err.clone())));
                return Err(err);
            }
        };
        tracing::info!(
            master = %self.master_name,
            address = %format!("{}:{}", resolved.host, resolved.port),
            "sentinel: resolved the master"
        );
        let client = resolved.client.clone();
        if lock(&self.master).install(resolved) {
            crate::observe::failover_seen(super::NAME);
        }
        Ok(client)
    }

    /// A client for a healthy replica, or for the master when there is none.
    pub(super) async fn replica_client(self: &Arc<Self>) -> RedisResult<Client> {
        self.start_watching();
        if let Some(client) = lock(&self.replica).client() {
            return Ok(client);
        }
        let queued = Instant::now();
        let replica = {
            let _flight = self.resolving.lock().await;
            let missed = {
                let slot = lock(&self.replica);
                if let Some(client) = slot.client() {
                    return Ok(client);
                }
                slot.missed_since(queued).is_some()
            };
            if missed {
                None
            } else {
                self.lookup_replica().await
            }
        };
        match replica {
            Some(client) => Ok(client),
            // No replica is known or healthy: reads go to the master rather than fail, and a
            // retry in the background sends them back (see `REPLICA_RETRY_INTERVAL`).
            None => self.master_client().await,
        }
    }

    /// Asks the sentinels for a replica and records the answer: the replica found (its
    /// client returned), or the miss that the callers queued behind this lookup take and
    /// that sends the reads to the master. The caller holds the lookup lock.
    async fn lookup_replica(&self) -> Option<Client> {
        let replica = self.resolve_replica().await;
        let now = Instant::now();
        let mut slot = lock(&self.replica);
        match replica {
            Ok(Some(resolved)) => {
                let client = resolved.client.clone();
                let _ = slot.install(resolved);
                // The reads were on the master: every read connection is stale, so that
                // they all move to the replica now.
                if slot.fell_back.take().is_some() {
                    slot.changed_at = Some(now);
                }
                Some(client)
            }
            Ok(None) => {
                slot.missed = Some((now, None));
                slot.fell_back = Some(now);
                None
            }
            Err(err) => {
                slot.missed = Some((now, Some(err)));
                slot.fell_back = Some(now);
                None
            }
        }
    }

    /// Whether the reads have been on the master, for want of a replica, for
    /// [`REPLICA_RETRY_INTERVAL`] since the last lookup.
    fn replica_retry_due(&self) -> bool {
        lock(&self.replica).retry_due(self.replica_retry_interval)
    }

    /// Starts the replica lookup of [`REPLICA_RETRY_INTERVAL`] on the caller's runtime, unless
    /// one is running. In the background rather than in the checkout that noticed it is due,
    /// which then waited for the sentinels (seconds when they hang), and with the shared
    /// connection every read with it. Counted by a guard, as the watchers: a runtime that
    /// shuts down and drops the task does not stop the retries for good.
    fn retry_replica(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.replica_retry.none() || !self.replica_retry.start(1) {
            return;
        }
        let alive = self.replica_retry.guard();
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let _alive = alive;
            let _flight = this.resolving.lock().await;
            // A new connection's lookup may have answered while this one waited.
            if this.replica_retry_due() {
                let _ = this.lookup_replica().await;
            }
        });
    }

    /// Forgets the master (unless it was resolved a moment ago, see `INVALIDATE_GRACE`).
    pub(super) fn invalidate_master(&self) {
        lock(&self.master).forget();
        // A replica read may have been served by this master: ask again too.
        lock(&self.replica).forget();
    }

    /// Forgets the replica.
    pub(super) fn invalidate_replica(&self) {
        lock(&self.replica).forget();
    }

    /// Starts one watcher per sentinel when none is alive. They run on the caller's runtime,
    /// which may shut down before the resolver (a start-up check in a runtime of its own, an
    /// actix-web worker, with its own runtime, restarted after a panic): started once for
    /// good, failovers were then noticed only when a request met the demoted master. All
    /// watchers share that runtime, so they end together and the next use starts them again.
    fn start_watching(self: &Arc<Self>) {
        let n = self.sentinels.len();
        // A load first, as the file store's sweeper does: the common answer, "running", then
        // costs no compare-and-swap.
        if n == 0 || !self.watchers.none() || !self.watchers.start(n) {
            return;
        }
        for index in 0..n {
            let alive = self.watchers.guard();
            let watch = Self::watch(Arc::downgrade(self), index, self.stop.subscribe());
            tokio::spawn(async move {
                let _alive = alive;
                watch.await;
            });
        }
    }

    /// Follows one sentinel's failover events and switches the master as soon as one names
    /// ours: `+failover-state-wait-promotion` (the leader has just sent `REPLICAOF NO ONE` to
    /// the replica it promotes), `+promoted-slave` (the replica reported itself master) and
    /// `+switch-master` (every sentinel, at the end). Without them a planned failover would be
    /// noticed only once the old master is demoted, seconds later, and until then it keeps
    /// acknowledging writes that the failover throws away; even `+promoted-slave` comes up to
    /// a second (the sentinels' INFO period) after the promotion. Switching at the first event
    /// may send a write to the promoted replica a moment before it is master: it answers
    /// `READONLY` and the write is retried (and if the promotion fails, `READONLY` makes the
    /// sentinels be asked again). Every sentinel is followed, since only the leader sends the
    /// first two.
    ///
    /// A quiet subscription is pinged (see [`EVENT_PING_INTERVAL`]) and replaced when the
    /// ping goes unanswered or the sentinel goes away (after a second's pause). Events sent
    /// while no subscription was live are lost, so after every reconnection the sentinel is
    /// asked for the master, and a different answer than the cached one drops the cache (the
    /// next request resolves it again, with the role check). Stops with the resolver.
    async fn watch(this: Weak<Self>, index: usize, mut stop: watch::Receiver<()>) {
        let mut reconnecting = false;
        loop {
            let subscribed = {
                let Some(this) = this.upgrade() else { return };
                let (host, port) = this.sentinels[index].clone();
                let creds = &this.sentinel_credentials;
                // The same fallback as `sentinel_query`: data-node credentials that a sentinel
                // without a password refuses are dropped, or the events would never arrive.
                let subscribed = match this.subscribe(&host, port, creds.info()).await {
                    Err(err)
                        if this.fallback && creds.password.is_some() && no_password_set(&err) =>
                    {
                        this.subscribe(&host, port, RedisConnectionInfo::default())
                            .await
                    }
                    other => other,
                };
                if subscribed.is_ok() && reconnecting {
                    this.recheck_master(&host, port).await;
                }
                subscribed.map(|pubsub| (pubsub, this.event_ping_interval))
            };
            if let Ok((pubsub, ping_every)) = subscribed {
                let (mut sink, mut messages) = pubsub.split();
                let mut ping =
                    tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
                ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = ping.tick() => {
                            let pong = tokio::time::timeout(
                                LOOKUP_RESPONSE_TIMEOUT,
                                sink.ping::<Value>(),
                            );
                            if !matches!(pong.await, Ok(Ok(_))) {
                                tracing::debug!(
                                    "sentinel: the event subscription stopped answering; \
                                     subscribing again"
                                );
                                break;
                            }
                        }
                        msg = messages.next() => {
                            let Some(msg) = msg else { break };
                            let Some(this) = this.upgrade() else { return };
                            let payload: String = msg.get_payload().unwrap_or_default();
                            if let Some((host, port)) =
                                switch_event(msg.get_channel_name(), &payload, &this.master_name)
                            {
                                this.switch_to(host, port);
                            }
                            ping.reset();
                        }
                    }
                }
            }
            reconnecting = true;
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// After a gap in the event subscription: drops the cached master when the sentinel
    /// names another one now (a failover happened while no event could arrive).
    async fn recheck_master(&self, host: &str, port: u16) {
        let Some(cached) = self.cached_master() else {
            return;
        };
        if let Ok(Some(current)) = self.ask(host, port).await {
            if current != cached {
                tracing::info!(
                    master = %self.master_name,
                    "sentinel: the master changed while the event subscription was down"
                );
                lock(&self.master).current = None;
            }
        }
    }

    /// Subscribes to the failover events of one sentinel, within the lookup timeouts.
    async fn subscribe(
        &self,
        host: &str,
        port: u16,
        info: RedisConnectionInfo,
    ) -> RedisResult<redis::aio::PubSub> {
        let client = (self.make_client)(host, port, info)?;
        let subscribing = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub
                .subscribe(&[WAIT_PROMOTION, "+promoted-slave", "+switch-master"])
                .await?;
            RedisResult::Ok(pubsub)
        };
        tokio::time::timeout(LOOKUP_CONNECT_TIMEOUT * 2, subscribing)
            .await
            .unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "subscribing to sentinel events timed out",
                )
                .into())
            })
    }

    /// Makes `host:port` the master, as a sentinel event said.
    fn switch_to(&self, host: String, port: u16) {
        if self.cached_master().as_ref() == Some(&(host.clone(), port)) {
            return;
        }
        let client = match (self.make_client)(&host, port, self.node_info.clone()) {
            Ok(client) => client,
            Err(_) => {
                self.invalidate_master();
                return;
            }
        };
        tracing::info!(
            master = %self.master_name,
            address = %format!("{host}:{port}"),
            "sentinel: switched to the new master"
        );
        let moved = lock(&self.master).install(Resolved {
            host,
            port,
            client,
            at: Instant::now(),
        });
        if moved {
            crate::observe::failover_seen(super::NAME);
        }
        // The replica in use may be the one just promoted.
        let mut replica = lock(&self.replica);
        replica.current = None;
        replica.changed_at = Some(Instant::now());
    }

    /// One entry per sentinel (does it answer, does it know the master) and one for the
    /// master they report ([`master_health`](Self::master_health)).
    pub(super) async fn health(&self, name: &str) -> Vec<BackendHealth> {
        let mut out = Vec::with_capacity(self.sentinels.len() + 1);
        // The distinct addresses the sentinels name, in their order.
        let mut named: Vec<(String, u16)> = Vec::new();
        // Every sentinel at once: dead sentinels cost one lookup timeout in all, not one each.
        let answers = futures_util::future::join_all(
            self.sentinels
                .iter()
                .map(|(host, port)| async move { (host, port, self.ask(host, *port).await) }),
        )
        .await;
        for (host, port, result) in answers {
            let location = format!("sentinel {host}:{port}");
            out.push(match &result {
                Ok(Some(addr)) => {
                    if !named.contains(addr) {
                        named.push(addr.clone());
                    }
                    BackendHealth {
                        name: name.into(),
                        location,
                        up: true,
                        error: None,
                    }
                }
                Ok(None) => BackendHealth {
                    name: name.into(),
                    location,
                    up: false,
                    error: Some(format!("does not know master `{}`", self.master_name)),
                },
                Err(err) => BackendHealth {
                    name: name.into(),
                    location,
                    up: false,
                    error: Some(err.to_string()),
                },
            });
        }
        out.push(self.master_health(name, &named).await);
        out
    }

    /// The master's entry: up when an address the sentinels name answers `ROLE` as master.
    /// Sentinels may disagree (one cut off during a failover still names the demoted
    /// master); judging by the first answer alone reported the master down while the store,
    /// which skips such an address as well, worked. Down, with the first address's problem,
    /// when none does.
    async fn master_health(&self, name: &str, named: &[(String, u16)]) -> BackendHealth {
        let entry = |host: &str, port: u16, error: Option<String>| BackendHealth {
            name: name.into(),
            location: format!("master {} at {host}:{port}", self.master_name),
            up: error.is_none(),
            error,
        };
        let checks =
            futures_util::future::join_all(named.iter().map(|(host, port)| async move {
                (host, *port, self.check_role(host, *port).await)
            }))
            .await;
        let mut first_problem = None;
        for (host, port, check) in checks {
            let problem = match check {
                Ok((_, true)) => return entry(host, port, None),
                Ok((_, false)) => "the node is not a master (failover in progress?)".to_owned(),
                Err(err) => err.to_string(),
            };
            first_problem.get_or_insert_with(|| entry(host, port, Some(problem)));
        }
        first_problem.unwrap_or_else(|| BackendHealth {
            name: name.into(),
            location: format!("master {}", self.master_name),
            up: false,
            error: Some("no sentinel reports the master".into()),
        })
    }

    /// Asks the sentinels in turn until one gives an address that answers `ROLE` as master.
    async fn resolve_master(&self) -> RedisResult<Resolved> {
        let n = self.sentinels.len();
        let start = self.next.load(Ordering::Relaxed);
        let mut errors = Vec::new();
        for i in 0..n {
            let index = (start + i) % n;
            let (host, port) = &self.sentinels[index];
            match self.ask(host, *port).await {
                Ok(Some((mhost, mport))) => match self.check_role(&mhost, mport).await {
                    Ok((client, true)) => {
                        self.next.store(index, Ordering::Relaxed);
                        return Ok(Resolved {
                            host: mhost,
                            port: mport,
                            client,
                            at: Instant::now(),
                        });
                    }
                    Ok((_, false)) => errors.push(format!(
                        "sentinel {host}:{port} reports {mhost}:{mport}, which is not a master"
                    )),
                    Err(err) => errors.push(format!(
                        "sentinel {host}:{port} reports {mhost}:{mport}, which fails: {err}"
                    )),
                },
                Ok(None) => errors.push(format!(
                    "sentinel {host}:{port} does not know master `{}`",
                    self.master_name
                )),
                Err(err) => errors.push(format!("sentinel {host}:{port}: {err}")),
            }
        }
        Err(RedisError::from((
            ErrorKind::Io,
            "no master found through the sentinels",
            errors.join("; "),
        )))
    }

    /// A healthy replica from the sentinels, at random among the healthy ones the first
    /// sentinel that knows any reports. A sentinel that knows none is skipped, as one that does
    /// not answer: a sentinel just started, or cut off from the replicas, reports none while
    /// the others know them. `Ok(None)` when the sentinels that answered know none.
    async fn resolve_replica(&self) -> RedisResult<Option<Resolved>> {
        let n = self.sentinels.len();
        let start = self.next.load(Ordering::Relaxed);
        let mut last_err = None;
        let mut answered = false;
        for i in 0..n {
            let (host, port) = &self.sentinels[(start + i) % n];
            let replicas = match self
                .sentinel_query(host, *port, &["REPLICAS", &self.master_name])
                .await
            {
                Ok(v) => {
                    answered = true;
                    v
                }
                Err(err) => {
                    last_err = Some(err);
                    continue;
                }
            };
            let healthy = healthy_replicas(replicas);
            if healthy.is_empty() {
                continue;
            }
            let (rhost, rport) = healthy[rand::random_range(0..healthy.len())].clone();
            let client = (self.make_client)(&rhost, rport, self.node_info.clone())?;
            return Ok(Some(Resolved {
                host: rhost,
                port: rport,
                client,
                at: Instant::now(),
            }));
        }
        match last_err {
            Some(err) if !answered => Err(err),
            _ => Ok(None),
        }
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` on one sentinel. `Ok(None)`: it does not know the
    /// master.
    async fn ask(&self, host: &str, port: u16) -> RedisResult<Option<(String, u16)>> {
        let reply = self
            .sentinel_query(host, port, &["GET-MASTER-ADDR-BY-NAME", &self.master_name])
            .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        let (mhost, mport): (String, u16) = redis::from_redis_value(reply)?;
        Ok(Some((mhost, mport)))
    }

    /// One `SENTINEL ...` command on a fresh connection with the lookup timeouts; with the
    /// fallback credentials, repeated without them when the sentinel has no password.
    async fn sentinel_query(&self, host: &str, port: u16, args: &[&str]) -> RedisResult<Value> {
        let creds = &self.sentinel_credentials;
        match self
            .sentinel_query_with(host, port, args, creds.info())
            .await
        {
            Err(err) if self.fallback && creds.password.is_some() && no_password_set(&err) => {
                self.sentinel_query_with(host, port, args, RedisConnectionInfo::default())
                    .await
            }
            other => other,
        }
    }

    async fn sentinel_query_with(
        &self,
        host: &str,
        port: u16,
        args: &[&str],
        info: RedisConnectionInfo,
    ) -> RedisResult<Value> {
        let client = (self.make_client)(host, port, info)?;
        let mut conn = self.connect(&client).await?;
        let mut cmd = redis::cmd("SENTINEL");
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await
    }

    /// `ROLE` on a data node: returns its client and whether it is a master.
    async fn check_role(&self, host: &str, port: u16) -> RedisResult<(Client, bool)> {
        let client = (self.make_client)(host, port, self.node_info.clone())?;
        let mut conn = self.connect(&client).await?;
        let role: Value = redis::cmd("ROLE").query_async(&mut conn).await?;
        let is_master = match role {
            Value::Array(items) => matches!(
                items.first(),
                Some(Value::BulkString(b)) if b == b"master"
            ),
            _ => false,
        };
        Ok((client, is_master))
    }

    async fn connect(&self, client: &Client) -> RedisResult<MultiplexedConnection> {
        client
            .get_multiplexed_async_connection_with_config(&self.lookup)
            .await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The event the failover's leader publishes right after it sent `REPLICAOF NO ONE` to the
/// replica it promotes.
const WAIT_PROMOTION: &str = "+failover-state-wait-promotion";

/// The new master's address when a sentinel event names `master`:
/// `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>`, or
/// `+promoted-slave`/`+failover-state-wait-promotion` with
/// `slave <ip>:<port> <ip> <port> @ <name> <old-ip> <old-port>`.
/// An address no node listens on (port 0) is ignored: switching to it would drop every
/// connection to the real master and refuse the next ones until a lookup undid it.
fn switch_event(channel: &str, payload: &str, master: &str) -> Option<(String, u16)> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    let (host, port) = match channel {
        "+switch-master" if parts.len() == 5 && parts[0] == master => (parts[3], parts[4]),
        "+promoted-slave" | WAIT_PROMOTION
            if parts.len() >= 6 && parts[4] == "@" && parts[5] == master =>
        {
            (parts[2], parts[3])
        }
        _ => return None,
    };
    let port = port.parse().ok().filter(|port| *port != 0)?;
    Some((host.to_string(), port))
}

/// A rejected `AUTH`. redis-rs folds the server's reason into "Password authentication
/// failed", so a sentinel without any password cannot be told apart from a wrong password;
/// retrying without the fallback credentials covers the first case and costs only a `NOAUTH`
/// in the second.
fn no_password_set(err: &RedisError) -> bool {
    err.kind() == ErrorKind::AuthenticationFailed
        || err.to_string().contains("without any password configured")
}

/// One replica as `SENTINEL REPLICAS` describes it.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The addresses of the healthy replicas in a `SENTINEL REPLICAS` answer: flags exactly
/// `slave`, link to the master up, and an address a connection can go to (a host, a port
/// other than 0, as for failover events: an entry naming neither would make the reads fail
/// until the next lookup).
fn healthy_replicas(value: Value) -> Vec<(String, u16)> {
    parse_replicas(value)
        .into_iter()
        .filter(|r| r.get("flags") == Some("slave") && r.get("master-link-status") == Some("ok"))
        .filter_map(|r| {
            let host = r.get("ip").filter(|host| !host.is_empty())?;
            let port = r
                .get("port")?
                .parse()
                .ok()
                .filter(|port: &u16| *port != 0)?;
            Some((host.to_owned(), port))
        })
        .collect()
}

/// `SENTINEL REPLICAS` answers a list of flat key/value arrays (RESP2) or maps (RESP3).
fn parse_replicas(value: Value) -> Vec<Fields> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .map(|item| {
            let pairs = match item {
                Value::Map(pairs) => pairs,
                Value::Array(flat) => {
                    let mut it = flat.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    pairs
                }
                _ => Vec::new(),
            };
            Fields(
                pairs
                    .into_iter()
                    .filter_map(|(k, v)| {
                        Some((
                            redis::from_redis_value::<String>(k).ok()?,
                            redis::from_redis_value::<String>(v).ok()?,
                        ))
                    })
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use session_testkit::{Proxy, SentinelOptions, SentinelTopology};

    use super::*;
    use crate::{
        config::{HostPort, Mode},
        plan::{BackendPlan, Topology},
        SessionConfig,
    };
    use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

    /// A plain TCP client (no TLS) for `host:port`.
    fn plain_client(host: &str, port: u16, info: RedisConnectionInfo) -> RedisResult<Client> {
        let info: ConnectionInfo = ConnectionAddr::Tcp(host.to_string(), port)
            .into_connection_info()?
            .set_redis_settings(info);
        Client::open(info)
    }

    fn config_for(topology: &SentinelTopology, dead_first: Option<u16>) -> SessionConfig {
        let mut host: Vec<HostPort> = topology
            .sentinel_addrs()
            .into_iter()
            .map(|(host, port)| HostPort {
                host,
                port: Some(port),
            })
            .collect();
        if let Some(port) = dead_first {
            host.insert(
                0,
                HostPort {
                    host: "127.0.0.1".into(),
                    port: Some(port),
                },
            );
        }
        SessionConfig {
            mode: Mode::Sentinel,
            host,
            master: Some(topology.master_name().into()),
            ..SessionConfig::default()
        }
    }

    fn sentinel(config: &SessionConfig) -> Arc<Sentinel> {
        Arc::new(resolver(config))
    }

    fn resolver(config: &SessionConfig) -> Sentinel {
        let plan = config.plan().unwrap();
        let BackendPlan::Redis(redis) = plan.backend else {
            panic!("a Redis plan");
        };
        let Topology::Sentinel(plan) = redis.topology else {
            panic!("a Sentinel plan");
        };
        Sentinel::new(
            &plan,
            Box::new(plain_client),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    /// Reads that fell back to the master (no replica) stayed there for the connections'
    /// life. Now a checkout after the retry interval starts one lookup in the background
    /// (not one per checkout), the connections to the master are not made stale while the
    /// sentinels still know no replica, and while a replica is in use nothing is asked. The
    /// return to a replica is `reads_that_fell_back_to_the_master_return_to_a_replica`
    /// (tests/redis_sentinel.rs).
    #[tokio::test(flavor = "multi_thread")]
    async fn reads_on_the_master_for_want_of_a_replica_ask_again_after_the_interval() {
        const RETRY: Duration = Duration::from_millis(300);
        let without = SentinelTopology::start_with(SentinelOptions::new().replicas(0));
        let with = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        for (topology, has_replica) in [(&without, false), (&with, true)] {
            let mut config = config_for(topology, None);
            config.sentinel_read_from_replicas = true;
            let mut resolver = resolver(&config);
            resolver.replica_retry_interval = RETRY;
            let sentinel = Arc::new(resolver);
            let fell_back = || lock(&sentinel.replica).fell_back;

            let client = sentinel.replica_client().await.unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let role: Value = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
            assert_eq!(
                format!("{role:?}").contains("slave"),
                has_replica,
                "{role:?}"
            );
            let first = fell_back();
            assert_eq!(first.is_some(), !has_replica);
            tokio::time::sleep(RETRY + RETRY / 2).await;
            // Twenty checkouts: none sees its connection stale (nor waits for a lookup).
            for _ in 0..20 {
                assert_eq!(sentinel.replica_changed_at(), None);
            }
            if has_replica {
                tokio::time::sleep(RETRY / 2).await;
                let slot = lock(&sentinel.replica);
                assert!(slot.fell_back.is_none() && slot.missed.is_none());
                assert!(slot.current.is_some(), "the replica in use was dropped");
                continue;
            }
            // The background lookup ran (still no replica): the wait starts over.
            let deadline = Instant::now() + Duration::from_secs(5);
            while fell_back() == first || !sentinel.replica_retry.none() {
                assert!(
                    Instant::now() < deadline,
                    "the sentinels were never asked again"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(sentinel.replica_changed_at(), None);
        }
    }

    #[test]
    fn switch_events_are_parsed() {
        assert_eq!(
            switch_event(
                "+switch-master",
                "mymaster 127.0.0.1 1 127.0.0.1 2",
                "mymaster"
            ),
            Some(("127.0.0.1".into(), 2))
        );
        assert_eq!(
            switch_event(
                "+switch-master",
                "other 127.0.0.1 1 127.0.0.1 2",
                "mymaster"
            ),
            None
        );
        assert_eq!(
            switch_event(
                "+promoted-slave",
                "slave 127.0.0.1:3 127.0.0.1 3 @ mymaster 127.0.0.1 1",
                "mymaster"
            ),
            Some(("127.0.0.1".into(), 3))
        );
    }

    /// An event that names port 0 switched to it: every connection to the real master was
    /// dropped as stale and the next ones refused until a lookup undid it. Such an event is
    /// ignored now, as junk that does not parse is.
    #[test]
    fn switch_events_naming_port_0_are_ignored() {
        for (channel, payload) in [
            ("+switch-master", "mymaster 127.0.0.1 1 127.0.0.1 0"),
            (
                "+promoted-slave",
                "slave 127.0.0.1:0 127.0.0.1 0 @ mymaster 127.0.0.1 1",
            ),
            (
                WAIT_PROMOTION,
                "slave 127.0.0.1:0 127.0.0.1 0 @ mymaster 127.0.0.1 1",
            ),
            ("+switch-master", "mymaster 127.0.0.1 1 127.0.0.1 65536"),
            ("+switch-master", "mymaster 127.0.0.1 1 127.0.0.1"),
            ("+promoted-slave", "slave @ mymaster"),
            ("+promoted-slave", ""),
        ] {
            assert_eq!(
                switch_event(channel, payload, "mymaster"),
                None,
                "{payload}"
            );
        }
    }

    /// A replica entry naming port 0 or no host is not taken: reads sent there failed until
    /// the next lookup. Only well-formed healthy entries are.
    #[test]
    fn replicas_without_a_usable_address_are_not_taken() {
        let entry = |ip: &str, port: &str, flags: &str| {
            Value::Array(
                [
                    ("ip", ip),
                    ("port", port),
                    ("flags", flags),
                    ("master-link-status", "ok"),
                ]
                .into_iter()
                .flat_map(|(k, v)| {
                    [
                        Value::BulkString(k.as_bytes().to_vec()),
                        Value::BulkString(v.as_bytes().to_vec()),
                    ]
                })
                .collect(),
            )
        };
        let answer = Value::Array(vec![
            entry("127.0.0.1", "0", "slave"),
            entry("", "6380", "slave"),
            entry("127.0.0.1", "65536", "slave"),
            entry("127.0.0.1", "6381", "slave,s_down"),
            entry("127.0.0.1", "6382", "slave"),
        ]);
        assert_eq!(
            healthy_replicas(answer),
            vec![("127.0.0.1".to_owned(), 6382)]
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn resolves_past_dead_sentinels_and_follows_a_failover() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let dead = session_testkit::RedisServer::start();
        let dead_port = dead.port();
        dead.kill();
        let config = config_for(&topology, Some(dead_port));
        let sentinel = sentinel(&config);
        topology.sentinel(0).kill();

        let client = sentinel.master_client().await.unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(sentinel.cached_master(), Some(topology.master_addr()));

        let health = sentinel.health("redis").await;
        assert_eq!(health.iter().filter(|h| h.up).count(), 3, "{health:?}");

        let replica = sentinel.replica_client().await.unwrap();
        let mut conn = replica.get_multiplexed_async_connection().await.unwrap();
        let role: Value = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
        assert!(format!("{role:?}").contains("slave"), "{role:?}");

        let new_master = tokio::task::spawn_blocking(move || {
            let addr = topology.failover();
            (topology, addr)
        })
        .await
        .unwrap();
        tokio::time::sleep(INVALIDATE_GRACE).await;
        sentinel.invalidate_master();
        sentinel.master_client().await.unwrap();
        assert_eq!(sentinel.cached_master(), Some(new_master.1));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn sentinel_credentials_and_the_fallback() {
        let topology = SentinelTopology::start_with(
            SentinelOptions::new()
                .replicas(1)
                .password("node-pw")
                .sentinel_password("sentinel-pw"),
        );
        let mut config = config_for(&topology, None);
        config.password = Some("node-pw".into());
        // The data nodes' password is not the sentinels': no master.
        let err = sentinel(&config).master_client().await.unwrap_err();
        assert!(!err.to_string().contains("node-pw"), "{err}");
        config.sentinel_password = Some("sentinel-pw".into());
        sentinel(&config).master_client().await.unwrap();

        // Passwords on the data nodes only: the fallback credentials are dropped for the
        // sentinels, which have none.
        let topology =
            SentinelTopology::start_with(SentinelOptions::new().replicas(1).password("node-pw"));
        let mut config = config_for(&topology, None);
        config.password = Some("node-pw".into());
        sentinel(&config).master_client().await.unwrap();
    }

    /// Every sentinel hung (a partition that drops their packets, a frozen host): the
    /// callers that queued behind one failed lookup get its answer, as they get a successful
    /// one. Each ran a lookup of its own, one after the other, so the k-th caller waited k
    /// lookups (3 s each here) before its error: a pool's twenty new connections, and the
    /// requests waiting for them, failed after a minute instead of after 3 s.
    #[tokio::test(flavor = "multi_thread")]
    async fn callers_waiting_for_a_failed_lookup_share_its_error() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let mut config = config_for(&topology, None);
        config.sentinel_read_from_replicas = true;
        let sentinel = sentinel(&config);
        for s in topology.sentinels() {
            s.pause();
        }
        let started = Instant::now();
        let callers = (0..8).map(|i| {
            let sentinel = Arc::clone(&sentinel);
            tokio::spawn(async move {
                let result = if i % 2 == 0 {
                    sentinel.master_client().await
                } else {
                    sentinel.replica_client().await
                };
                (result.is_err(), started.elapsed())
            })
        });
        let answers = futures_util::future::join_all(callers).await;
        for s in topology.sentinels() {
            s.resume();
        }
        let slowest = answers
            .into_iter()
            .map(|answer| {
                let (failed, took) = answer.unwrap();
                assert!(failed, "no sentinel answers, yet a client was given");
                took
            })
            .max()
            .unwrap();
        // One replica lookup and one master lookup, each at most a second per sentinel
        // (connect and answer capped at 500 ms), with room for a loaded machine.
        assert!(
            slowest < Duration::from_secs(9),
            "the last caller waited {slowest:?}: the lookups ran one per caller"
        );
        // Nothing failed is remembered: the sentinels back, the next caller resolves.
        sentinel.master_client().await.unwrap();
    }

    /// The sentinel asked first knows no healthy replica (here: one that monitors another
    /// group under the same name, with none; in production a sentinel just added or
    /// restarted, or cut off from the replicas) while the others know one. Reads went to the
    /// master, for as long as the connection lived, because the first answer ended the
    /// search; the next sentinel is asked now, as it is for the master.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_sentinel_that_knows_no_healthy_replica_is_skipped() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let elsewhere = SentinelTopology::start_with(SentinelOptions::new().replicas(0));
        let mut config = config_for(&topology, None);
        let (host, port) = elsewhere.sentinel_addrs()[0].clone();
        config.host.insert(
            0,
            HostPort {
                host,
                port: Some(port),
            },
        );
        config.sentinel_read_from_replicas = true;
        let sentinel = sentinel(&config);
        let replica = sentinel.replica_client().await.unwrap();
        let mut conn = replica.get_multiplexed_async_connection().await.unwrap();
        let role: Value = redis::cmd("ROLE").query_async(&mut conn).await.unwrap();
        assert!(
            format!("{role:?}").contains("slave"),
            "reads went to a master: {role:?}"
        );
    }

    /// The watchers run on the runtime of the first lookup, which may shut down before the
    /// resolver does (a start-up check in a runtime of its own, an actix-web worker, with
    /// its own runtime, restarted after a panic). They were never started again: failovers
    /// were noticed only when a request met the demoted master, and a planned one lost the
    /// writes the old master took until then. The next use in a live runtime starts them.
    #[test]
    fn the_watchers_start_again_when_their_runtime_is_gone() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let sentinel = sentinel(&config_for(&topology, None));
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            sentinel.master_client().await.unwrap();
        });
        drop(first);

        let next = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        next.block_on(async {
            sentinel.master_client().await.unwrap();
            let old = sentinel.cached_master().unwrap();
            // Give the watchers the time to subscribe before the failover's events.
            every_watcher_subscribed(&topology, Duration::from_secs(5)).await;
            fail_over_and_follow(
                topology,
                &sentinel,
                &old,
                Duration::from_secs(10),
                "the failover was not followed: no watcher runs",
            )
            .await;
        });
    }

    /// Every sentinel down, then back on the same addresses: lookups fail meanwhile (an
    /// error, nothing remembered), the same resolver finds the master again, and its
    /// watchers subscribe again and follow the next failover.
    #[tokio::test(flavor = "multi_thread")]
    async fn every_sentinel_down_then_back_needs_no_restart() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let sentinel = sentinel(&config_for(&topology, None));
        sentinel.master_client().await.unwrap();
        for s in topology.sentinels() {
            s.kill();
        }
        tokio::time::sleep(INVALIDATE_GRACE).await;
        sentinel.invalidate_master();
        assert!(sentinel.master_client().await.is_err());
        let topology = tokio::task::spawn_blocking(move || {
            for s in topology.sentinels() {
                s.restart();
            }
            topology
        })
        .await
        .unwrap();
        sentinel.master_client().await.unwrap();
        let old = sentinel.cached_master().unwrap();
        assert!(
            every_watcher_subscribed(&topology, Duration::from_secs(10)).await,
            "the watchers never subscribed again"
        );
        fail_over_and_follow(
            topology,
            &sentinel,
            &old,
            Duration::from_secs(10),
            "the failover was not followed",
        )
        .await;
    }

    /// One sentinel is stale: it names a node that is a replica (here it monitors one as
    /// the master; in production a sentinel cut off from the others during a failover).
    /// Health took the first sentinel's answer and reported the master down, while the
    /// other sentinels named the real master and every request worked: a load balancer
    /// that asks health would take a working application out.
    #[tokio::test(flavor = "multi_thread")]
    async fn health_finds_the_master_past_a_stale_sentinel() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let (_, master_port) = topology.master_addr();
        let replica = topology
            .nodes()
            .iter()
            .find(|node| node.port() != master_port)
            .unwrap();
        let stale = session_testkit::RedisServer::start_with(
            session_testkit::ServerOptions::new()
                .arg("--sentinel")
                .config_line(format!(
                    "sentinel monitor {} 127.0.0.1 {} 2",
                    topology.master_name(),
                    replica.port()
                )),
        );
        let mut config = config_for(&topology, None);
        config.host.insert(
            0,
            HostPort {
                host: "127.0.0.1".into(),
                port: Some(stale.port()),
            },
        );
        let sentinel = sentinel(&config);
        sentinel.master_client().await.unwrap();
        let health = sentinel.health("redis").await;
        let master = health.last().unwrap();
        assert!(master.up, "{health:?}");
        assert_eq!(
            master.location,
            format!(
                "master {} at 127.0.0.1:{master_port}",
                topology.master_name()
            )
        );
    }

    /// Half-open: the watcher's connection to its only sentinel goes silent (no FIN, no RST)
    /// and a failover happens meanwhile. The ping notices, the watcher subscribes again and,
    /// since the failover's events were lost, asks for the master and drops the stale one.
    /// Without the ping the old master would stay cached until a request failed on it.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_silent_event_subscription_is_replaced_and_the_missed_failover_noticed() {
        let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
        let proxy = Proxy::start(topology.sentinel(0).addr());
        let mut config = config_for(&topology, None);
        config.host = vec![HostPort {
            host: "127.0.0.1".into(),
            port: Some(proxy.port()),
        }];
        let BackendPlan::Redis(redis) = config.plan().unwrap().backend else {
            panic!("a Redis plan");
        };
        let Topology::Sentinel(plan) = redis.topology else {
            panic!("a Sentinel plan");
        };
        let mut resolver = Sentinel::new(
            &plan,
            Box::new(plain_client),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        resolver.event_ping_interval = Duration::from_millis(200);
        let sentinel = Arc::new(resolver);
        sentinel.master_client().await.unwrap();
        let old = sentinel.cached_master().unwrap();

        // Wait for the subscription (three channels) before cutting it.
        let subscribed = || {
            let clients: String = topology.sentinel(0).cmd(&["CLIENT", "LIST"]);
            clients.contains("sub=3")
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !subscribed() {
            assert!(Instant::now() < deadline, "the watcher never subscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        proxy.freeze();

        let (topology, new_master) = fail_over_and_follow(
            topology,
            &sentinel,
            &old,
            Duration::from_secs(15),
            "the stale master is still cached: the silent subscription was never replaced",
        )
        .await;
        sentinel.master_client().await.unwrap();
        assert_eq!(sentinel.cached_master(), Some(new_master));
        drop(topology);
    }

    /// Whether every sentinel of `topology` has a client subscribed to the three channels
    /// the watchers follow, waiting up to `within` for it.
    async fn every_watcher_subscribed(topology: &SentinelTopology, within: Duration) -> bool {
        let subscribed = || {
            topology.sentinels().iter().all(|s| {
                let clients: String = s.cmd(&["CLIENT", "LIST"]);
                clients.contains("sub=3")
            })
        };
        let deadline = Instant::now() + within;
        while !subscribed() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// A planned failover of `topology` (run off the async threads: it waits), then waits
    /// until `sentinel` no longer holds `old` as the master, at most `within`, else fails
    /// saying `why`. Returns the topology, to be dropped by the caller, and the new master.
    async fn fail_over_and_follow(
        topology: SentinelTopology,
        sentinel: &Sentinel,
        old: &(String, u16),
        within: Duration,
        why: &str,
    ) -> (SentinelTopology, (String, u16)) {
        let (topology, new_master) = tokio::task::spawn_blocking(move || {
            let addr = topology.failover();
            (topology, addr)
        })
        .await
        .unwrap();
        assert_ne!(&new_master, old);
        let deadline = Instant::now() + within;
        while sentinel.cached_master().as_ref() == Some(old) {
            assert!(Instant::now() < deadline, "{why}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (topology, new_master)
    }
}
