//! Drives the HTTP benchmark: one redis-server on loopback, one `bench-server` per contender and
//! expiry mode, 200 seeded sessions replayed by `wrk` (a Lua script picks a cookie per request),
//! and per route: requests/s, p99, CPU µs per request of the server and of Redis (from
//! `/proc/PID/stat` around the run) and Redis µs per call of each command (`INFO commandstats`).
//! Prints markdown tables with ratios against the peers measured in the same run.
//!
//! Run it through `scripts/bench_http.sh`, which builds it and installs `wrk` when missing.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// Seconds per route.
    #[arg(long, default_value_t = 4)]
    duration: u64,
    /// Times each route is measured per contender, the contenders taking turns (in an order
    /// that rotates every round) with every server kept running: the tables then show the
    /// median of the rounds, and a table of ranges and of paired ratios (each round's ours
    /// against the peer measured next to it) is added. On this shared machine a single p99
    /// moves by a third between runs; with one round (the default) the tables show single
    /// measurements, as before.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    /// wrk connections (one wrk thread).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Sessions seeded and replayed per contender and size.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Session sizes to measure: small, 2k, 20k.
    #[arg(long, value_delimiter = ',', default_value = "small,2k,20k")]
    sizes: Vec<String>,
    /// Contenders: floor, actix-session, ours-actix, tower-sessions, ours-axum.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "floor,actix-session,ours-actix,tower-sessions,ours-axum"
    )]
    contenders: Vec<String>,
    /// Also measure sliding expiry for the larger sizes (always measured for `small`).
    #[arg(long)]
    sliding_all_sizes: bool,
    /// The redis-server binary.
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
    /// Where the raw results go (tab separated), besides the tables on stdout.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Also record each server with `perf record` (flat profile, 2 kHz) into this folder, one
    /// `CONTENDER-SIZE-EXPIRY-ROUTE.perf.data` per route, for `perf report -i FILE`. perf's
    /// sampling costs CPU: read the CPU figures of a run without it.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// A `bench-server` binary built from another commit: every contender named with the
    /// suffix `@base` (`ours-axum@base`) runs on it, so a change is measured against the code
    /// before it in the same run.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

/// A session size: `keys` extra keys of `bytes` bytes of JSON each (besides the counter `n`).
fn size_spec(name: &str) -> anyhow::Result<(usize, usize)> {
    Ok(match name {
        "small" => (0, 0),
        "2k" => (20, 100),
        "20k" => (50, 400),
        other => bail!("unknown size {other:?}: expected small, 2k or 20k"),
    })
}

/// What one wrk run measured.
#[derive(Clone, Debug, Default)]
struct Measure {
    requests: u64,
    rps: f64,
    p99_us: f64,
    errors: u64,
    server_us: f64,
    redis_us: f64,
    /// Socket reads and writes of Redis per request (`total_reads_processed`,
    /// `total_writes_processed`): below the round trips per request when the client batches
    /// the commands of concurrent requests into one write.
    redis_reads: f64,
    redis_writes: f64,
    /// Command name -> (calls per request, µs per call).
    commands: BTreeMap<String, (f64, f64)>,
}

impl Measure {
    fn total_us(&self) -> f64 {
        self.server_us + self.redis_us
    }
}

/// Key of one row: size, expiry mode, route.
type Row = (String, &'static str, &'static str);

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_port(port: u16, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("process exited before listening on {port}: {status}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing listens on {port} after 20 s")
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file are 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // Clock ticks: USER_HZ is 100 on every Linux architecture this runs on.
    Ok(ticks as f64 / 100.0)
}

/// One plain HTTP/1.1 GET; returns the `name=value` of every `Set-Cookie`.
fn get_cookies(port: u16, path: &str) -> anyhow::Result<Vec<String>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(head
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then(|| {
                value
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .collect())
}

struct Redis {
    child: Child,
    conn: redis::Connection,
}

impl Redis {
    fn start(binary: &str) -> anyhow::Result<(Self, String)> {
        let port = free_port()?;
        let mut child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // A database per contender and expiry mode (see `main`).
            .args(["--databases", "256"])
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary} (apt-get install redis-server)"))?;
        wait_for_port(port, &mut child)?;
        let url = format!("redis://127.0.0.1:{port}");
        let conn = redis::Client::open(url.as_str())?.get_connection()?;
        Ok((Self { child, conn }, url))
    }

    fn reset_stats(&mut self) -> anyhow::Result<()> {
        redis::cmd("CONFIG").arg("RESETSTAT").exec(&mut self.conn)?;
        Ok(())
    }

    /// `used_memory` of `INFO memory`: the bytes Redis holds, to tell the stored size of a
    /// session (the difference around seeding, divided by the sessions seeded).
    fn used_memory(&mut self) -> anyhow::Result<u64> {
        let info: String = redis::cmd("INFO").arg("memory").query(&mut self.conn)?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .context("used_memory in INFO memory")
    }

    /// Every key of database `db` (a few hundred), by `SCAN` in steps of 100, so that no
    /// reply outgrows this connection's output buffer (which `used_memory` counts).
    fn keys(&mut self, db: u32) -> anyhow::Result<BTreeSet<Vec<u8>>> {
        redis::cmd("SELECT").arg(db).exec(&mut self.conn)?;
        let mut keys = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(100)
                .query(&mut self.conn)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// The mean `MEMORY USAGE` of `keys` (key, value and their overhead in Redis, the
    /// value's allocation as it is: an `APPEND` that outgrew it reallocated it with room
    /// to spare), over those still there.
    fn mean_memory_usage(&mut self, db: u32, keys: &[Vec<u8>]) -> anyhow::Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        redis::cmd("SELECT").arg(db).exec(&mut self.conn)?;
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0);
        }
        let usages: Vec<Option<u64>> = pipe.query(&mut self.conn)?;
        let present: Vec<u64> = usages.into_iter().flatten().collect();
        Ok(present.iter().sum::<u64>() / present.len().max(1) as u64)
    }

    /// Socket reads and writes since the last `CONFIG RESETSTAT`.
    fn io_counts(&mut self) -> anyhow::Result<(u64, u64)> {
        let info: String = redis::cmd("INFO").arg("stats").query(&mut self.conn)?;
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        Ok((
            field("total_reads_processed"),
            field("total_writes_processed"),
        ))
    }

    /// `INFO commandstats` as command -> (calls, usec).
    fn command_stats(&mut self) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn)?;
        let mut stats = BTreeMap::new();
        for line in info.lines() {
            let Some((name, values)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |key: &str| -> u64 {
                values
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            stats.insert(name.to_owned(), (field("calls"), field("usec")));
        }
        Ok(stats)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A contender's server with its seeded sessions, through the rounds of one size and mode.
struct Running {
    contender: String,
    /// Running through the rounds (stopped while the others are seeded).
    server: Option<Server>,
    cookie_file: PathBuf,
    /// The keys its seeding added, and their mean `MEMORY USAGE` then.
    seeded: Vec<Vec<u8>>,
    usage_seeded: u64,
    /// Its Redis database, and the URL with it.
    db: u32,
    url: String,
}

/// A running bench server, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(
        contender: &str,
        sliding: bool,
        redis_url: &str,
        baseline: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let (binary, contender) = match contender.strip_suffix("@base") {
            Some(name) => (
                baseline
                    .context("a contender named NAME@base needs --baseline")?
                    .to_owned(),
                name,
            ),
            None => (sibling_binary("bench-server")?, contender),
        };
        let port = free_port()?;
        let mut command = Command::new(binary);
        command
            .args(["--contender", contender, "--redis-url", redis_url])
            .args(["--addr", &format!("127.0.0.1:{port}")]);
        if sliding {
            command.arg("--sliding");
        }
        let mut child = command.spawn()?;
        wait_for_port(port, &mut child)?;
        Ok(Self { child, port })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name(name))
}

/// The wrk script: every request carries the cookie of one of the seeded sessions, at random,
/// and `done` prints one machine-readable line.
const WRK_SCRIPT: &str = r#"
local cookies = {}
function init(args)
  for line in io.lines(args[1]) do cookies[#cookies + 1] = line end
  math.randomseed(os.time())
end
function request()
  return wrk.format("GET", wrk.path, { ["Cookie"] = cookies[math.random(#cookies)] })
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#;

fn run_wrk(
    args: &Args,
    port: u16,
    route: &str,
    script: &Path,
    cookies: &Path,
) -> anyhow::Result<(u64, f64, f64, u64)> {
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{}", args.connections)])
        .args([&format!("-d{}s", args.duration), "--latency", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/{route}"))
        .arg("--")
        .arg(cookies)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .with_context(|| format!("no RESULT line from wrk: {stdout}"))?;
    let field = |key: &str| -> anyhow::Result<u64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .context("wrk RESULT field")?
            .parse()
            .context("wrk RESULT number")
    };
    let requests = field("requests")?;
    let rps = requests as f64 / (field("duration_us")? as f64 / 1e6);
    Ok((requests, rps, field("p99_us")? as f64, field("errors")?))
}

fn measure(
    args: &Args,
    redis: &mut Redis,
    server: &Server,
    route: &str,
    script: &Path,
    cookies: &Path,
    profile_name: &str,
) -> anyhow::Result<Measure> {
    let perf = match &args.profile {
        Some(dir) => Some(
            Command::new("perf")
                .args([
                    "record",
                    "-q",
                    "-F",
                    "2000",
                    "-p",
                    &server.child.id().to_string(),
                    "-o",
                ])
                .arg(dir.join(format!("{profile_name}.perf.data")))
                .args(["--", "sleep", &args.duration.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .context("running perf (apt-get install linux-perf)")?,
        ),
        None => None,
    };
    redis.reset_stats()?;
    let (server_before, redis_before) = (
        cpu_seconds(server.child.id())?,
        cpu_seconds(redis.child.id())?,
    );
    let (requests, rps, p99_us, errors) = run_wrk(args, server.port, route, script, cookies)?;
    let (server_after, redis_after) = (
        cpu_seconds(server.child.id())?,
        cpu_seconds(redis.child.id())?,
    );
    let stats = redis.command_stats()?;
    let (reads, writes) = redis.io_counts()?;
    if let Some(mut perf) = perf {
        perf.wait()?;
    }
    let per_request = |seconds: f64| seconds * 1e6 / requests.max(1) as f64;
    let commands = stats
        .into_iter()
        // The bench's own INFO / CONFIG calls.
        .filter(|(name, _)| name != "info" && name != "config")
        .map(|(name, (calls, usec))| {
            (
                name,
                (
                    calls as f64 / requests.max(1) as f64,
                    usec as f64 / calls.max(1) as f64,
                ),
            )
        })
        .collect();
    Ok(Measure {
        requests,
        rps,
        p99_us,
        errors,
        server_us: per_request(server_after - server_before),
        redis_us: per_request(redis_after - redis_before),
        redis_reads: reads as f64 / requests.max(1) as f64,
        redis_writes: writes as f64 / requests.max(1) as f64,
        commands,
    })
}

const PEERS: [(&str, &str); 3] = [
    ("ours-actix", "actix-session"),
    ("ours-axum", "tower-sessions"),
    ("ours-axum", "actix-session"),
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.profile {
        // perf does not make the folder, and fails quietly without it (its output is muted).
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (mut redis, redis_url) = Redis::start(&args.redis_server)?;
    let work = std::env::temp_dir().join(format!("session-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let script = work.join("replay.lua");
    std::fs::write(&script, WRK_SCRIPT)?;

    // Every round's measure, in the order of the rounds.
    let mut results: BTreeMap<(Row, String), Vec<Measure>> = BTreeMap::new();
    let mut rows: Vec<Row> = Vec::new();
    // (size, contender) -> Redis memory per stored session, in bytes (last expiry mode seeded).
    let mut stored: BTreeMap<(String, String), u64> = BTreeMap::new();
    // (size, contender) -> mean `MEMORY USAGE` of its sessions when seeded and after the
    // write route (last expiry mode seeded).
    let mut usage: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    let mut next_db: u32 = 0;
    for size in &args.sizes {
        let (keys, bytes) = size_spec(size)?;
        let modes: &[&'static str] = if size == "small" || args.sliding_all_sizes {
            &["fixed", "sliding"]
        } else {
            &["fixed"]
        };
        for &mode in modes {
            for route in ["read", "write"] {
                rows.push((size.clone(), mode, route));
            }
            // Each contender seeded alone (its memory measured), then every server running
            // through the rounds of this size and mode.
            let mut running: Vec<Running> = Vec::new();
            for contender in &args.contenders {
                // The floor has no session, hence no size or expiry mode: measured once.
                if contender == "floor" && (size != "small" || mode != "fixed") {
                    continue;
                }
                // A database of its own: Redis' key table doubles its buckets at every power
                // of two, and in a shared one each doubling (16 KB and more) was charged to
                // whichever contender's seeding crossed it (100 bytes per session and more,
                // either way); in its own each contender's table grows the same way.
                next_db += 1;
                let db = next_db;
                let url = format!("{redis_url}/{db}");
                let server =
                    Server::start(contender, mode == "sliding", &url, args.baseline.as_deref())?;
                let cookie_file = work.join(format!("{contender}-{size}-{mode}.cookies"));
                let mut lines = String::new();
                // One session first, not counted: it opens the server's connections and loads
                // its scripts, which Redis counts in `used_memory` too (a pool of several
                // connections showed as hundreds of bytes per small session).
                if contender != "floor" {
                    get_cookies(server.port, &format!("/seed?keys={keys}&bytes={bytes}"))?;
                }
                // The keys first, so that reading them is not counted.
                let keys_before = redis.keys(db)?;
                let memory_before = redis.used_memory()?;
                for _ in 0..args.sessions {
                    let cookies =
                        get_cookies(server.port, &format!("/seed?keys={keys}&bytes={bytes}"))?;
                    if cookies.is_empty() {
                        bail!("{contender}: the seed request set no cookie");
                    }
                    writeln!(lines, "{}", cookies.join("; "))?;
                }
                std::fs::write(&cookie_file, lines)?;
                if contender != "floor" {
                    let grown = redis.used_memory()?.saturating_sub(memory_before);
                    let per_session = grown / args.sessions.max(1) as u64;
                    eprintln!("{size:>5} {mode:<7} {contender:<14} {per_session} bytes of Redis memory per session");
                    stored.insert((size.clone(), contender.clone()), per_session);
                }
                let seeded: Vec<Vec<u8>> =
                    redis.keys(db)?.difference(&keys_before).cloned().collect();
                let usage_seeded = redis.mean_memory_usage(db, &seeded)?;
                // Stopped until every contender is seeded, so each one's seeding is measured
                // alone.
                drop(server);
                running.push(Running {
                    contender: contender.clone(),
                    server: None,
                    cookie_file,
                    seeded,
                    usage_seeded,
                    db,
                    url,
                });
            }
            // Started again (the same cookie key: the seeded cookies hold) for the rounds.
            for r in &mut running {
                r.server = Some(Server::start(
                    &r.contender,
                    mode == "sliding",
                    &r.url,
                    args.baseline.as_deref(),
                )?);
            }
            // Every read round before the first write, so reads find the sessions as seeded;
            // within a round the contenders take turns, starting one further each round, so
            // no contender always runs first or right after the same one.
            for route in ["read", "write"] {
                for round in 0..args.rounds {
                    let turn = round as usize % running.len().max(1);
                    for r in running[turn..].iter().chain(&running[..turn]) {
                        let contender = &r.contender;
                        let profile_name = if args.rounds > 1 {
                            format!("{contender}-{size}-{mode}-{route}-{round}")
                        } else {
                            format!("{contender}-{size}-{mode}-{route}")
                        };
                        let m = measure(
                            &args,
                            &mut redis,
                            r.server.as_ref().context("started above")?,
                            route,
                            &script,
                            &r.cookie_file,
                            &profile_name,
                        )?;
                        eprintln!(
                            "{size:>5} {mode:<7} {route:<5} {contender:<14} round {round}: {:>8.0} rps  p99 {:>6.2} ms  server {:>5.1} µs  redis {:>5.1} µs  errors {}",
                            m.rps, m.p99_us / 1000.0, m.server_us, m.redis_us, m.errors
                        );
                        results
                            .entry(((size.clone(), mode, route), contender.clone()))
                            .or_default()
                            .push(m);
                    }
                }
            }
            for r in running.iter().filter(|r| r.contender != "floor") {
                let after_writes = redis.mean_memory_usage(r.db, &r.seeded)?;
                eprintln!(
                    "{size:>5} {mode:<7} {:<14} MEMORY USAGE per session {} bytes seeded, {after_writes} after the write route",
                    r.contender, r.usage_seeded
                );
                usage.insert(
                    (size.clone(), r.contender.clone()),
                    (r.usage_seeded, after_writes),
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let medians: BTreeMap<(Row, String), Measure> = results
        .iter()
        .map(|(key, rounds)| (key.clone(), median_measure(rounds)))
        .collect();
    let mut report = report(&args, &rows, &medians);
    if args.rounds > 1 {
        report.push_str(&spread(&args, &rows, &results));
    }
    let contenders: Vec<&String> = args.contenders.iter().filter(|c| *c != "floor").collect();
    memory_table(
        &mut report,
        "Redis memory per stored session (bytes, `used_memory` growth while seeding / sessions)",
        &args.sizes,
        &contenders,
        |size, c| {
            stored
                .get(&(size.to_owned(), c.to_owned()))
                .map(u64::to_string)
        },
    );
    memory_table(
        &mut report,
        "Redis memory per session, `MEMORY USAGE` (bytes, mean over the seeded sessions): seeded / after the write route",
        &args.sizes,
        &contenders,
        |size, c| {
            usage
                .get(&(size.to_owned(), c.to_owned()))
                .map(|(seeded, written)| format!("{seeded} / {written}"))
        },
    );
    print!("{report}");
    if let Some(path) = &args.raw {
        std::fs::write(path, raw(&results))?;
    }
    Ok(())
}

/// A table of one figure per session size (rows) and contender (columns).
fn memory_table(
    report: &mut String,
    title: &str,
    sizes: &[String],
    contenders: &[&String],
    cell: impl Fn(&str, &str) -> Option<String>,
) {
    let names: Vec<&str> = contenders.iter().map(|c| c.as_str()).collect();
    let _ = writeln!(report, "\n## {title}\n");
    let _ = writeln!(report, "| session | {} |", names.join(" | "));
    let _ = writeln!(report, "|---|{}", "---|".repeat(names.len()));
    for size in sizes {
        let _ = write!(report, "| {size} |");
        for c in &names {
            let _ = write!(report, " {} |", cell(size, c).as_deref().unwrap_or("-"));
        }
        let _ = writeln!(report);
    }
}

/// The pairs a ratio is shown for: ours against each peer, and a contender against its own
/// `@base` build.
fn ratio_pairs(contenders: &[&String]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = PEERS
        .iter()
        .filter(|(ours, peer)| {
            contenders.iter().any(|c| c == ours) && contenders.iter().any(|c| c == peer)
        })
        .map(|(ours, peer)| (ours.to_string(), peer.to_string()))
        .collect();
    for c in contenders {
        if let Some(name) = c.strip_suffix("@base") {
            if contenders.iter().any(|other| *other == name) {
                pairs.push((name.to_owned(), c.to_string()));
            }
        }
    }
    pairs
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// `median (min-max)` of `values`, with `decimals` decimals; the value alone for one round.
fn spread_cell(values: &[f64], decimals: usize) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mid = median(values.iter().copied());
    if values.len() < 2 {
        format!("{mid:.decimals$}")
    } else {
        format!("{mid:.decimals$} ({low:.decimals$}-{high:.decimals$})")
    }
}

/// One measure of the rounds' medians, figure by figure (each command's calls and µs per
/// call too: a command some rounds did not run counts 0 calls there).
fn median_measure(rounds: &[Measure]) -> Measure {
    let of = |figure: fn(&Measure) -> f64| median(rounds.iter().map(figure));
    let names: BTreeSet<&String> = rounds.iter().flat_map(|m| m.commands.keys()).collect();
    let commands = names
        .into_iter()
        .map(|name| {
            let calls = median(
                rounds
                    .iter()
                    .map(|m| m.commands.get(name).map_or(0.0, |c| c.0)),
            );
            let usec = median(
                rounds
                    .iter()
                    .filter_map(|m| m.commands.get(name).map(|c| c.1)),
            );
            (name.clone(), (calls, usec))
        })
        .collect();
    Measure {
        requests: of(|m| m.requests as f64) as u64,
        rps: of(|m| m.rps),
        p99_us: of(|m| m.p99_us),
        errors: rounds.iter().map(|m| m.errors).sum(),
        server_us: of(|m| m.server_us),
        redis_us: of(|m| m.redis_us),
        redis_reads: of(|m| m.redis_reads),
        redis_writes: of(|m| m.redis_writes),
        commands,
    }
}

/// The head of a table of one column per contender, then one per pair's ratio.
fn ratio_table_head(out: &mut String, contenders: &[&String], pairs: &[(String, String)]) {
    let _ = write!(out, "| session | expiry | route |");
    for c in contenders {
        let _ = write!(out, " {c} |");
    }
    for (ours, other) in pairs {
        let _ = write!(out, " {ours} / {other} |");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "|{}",
        "---|".repeat(contenders.len() + 3 + pairs.len())
    );
}

/// A figure of a measure: its title, how it is read, and its decimals.
type Figure = (&'static str, fn(&Measure) -> f64, usize);

/// The tables of ranges over the rounds: per contender the median and the range of CPU per
/// request and of p99, and per pair the ratios of the measures taken in the same round
/// (next to each other in time, so the machine's swings between rounds cancel out), with the
/// rounds in which ours was at or below the other.
fn spread(args: &Args, rows: &[Row], results: &BTreeMap<(Row, String), Vec<Measure>>) -> String {
    let mut out = String::new();
    let contenders: Vec<&String> = args.contenders.iter().filter(|c| *c != "floor").collect();
    let pairs = ratio_pairs(&contenders);
    let get = |row: &Row, c: &str| results.get(&(row.clone(), c.to_owned()));
    let figures: [Figure; 2] = [
        ("CPU µs per request, server + Redis", Measure::total_us, 1),
        ("p99 latency (ms)", |m| m.p99_us / 1000.0, 2),
    ];
    for (title, figure, decimals) in figures {
        let _ = writeln!(
            out,
            "\n## {title} over {} rounds: median (min-max); ratios of the same round: median (min-max), rounds at or below\n",
            args.rounds
        );
        ratio_table_head(&mut out, &contenders, &pairs);
        for row in rows {
            let _ = write!(out, "| {} | {} | {} |", row.0, row.1, row.2);
            for c in &contenders {
                let cell = get(row, c).map(|rounds| {
                    let values: Vec<f64> = rounds.iter().map(figure).collect();
                    spread_cell(&values, decimals)
                });
                let _ = write!(out, " {} |", cell.as_deref().unwrap_or("-"));
            }
            for (ours, other) in &pairs {
                let cell = get(row, ours).zip(get(row, other)).map(|(o, p)| {
                    let ratios: Vec<f64> = o
                        .iter()
                        .zip(p)
                        .map(|(o, p)| figure(o) / figure(p))
                        .collect();
                    let at_or_below = ratios.iter().filter(|r| **r <= 1.0).count();
                    format!(
                        "{}, {at_or_below} of {}",
                        spread_cell(&ratios, 2),
                        ratios.len()
                    )
                });
                let _ = write!(out, " {} |", cell.as_deref().unwrap_or("-"));
            }
            let _ = writeln!(out);
        }
    }
    out
}

fn report(args: &Args, rows: &[Row], results: &BTreeMap<(Row, String), Measure>) -> String {
    let mut out = String::new();
    let contenders: Vec<&String> = args.contenders.iter().filter(|c| *c != "floor").collect();
    let get = |row: &Row, c: &str| results.get(&(row.clone(), c.to_owned()));
    let floor = |route: &'static str| get(&("small".to_owned(), "fixed", route), "floor");
    let pairs = ratio_pairs(&contenders);
    let medians = if args.rounds > 1 {
        format!(", medians of {} rounds", args.rounds)
    } else {
        String::new()
    };

    let _ = writeln!(
        out,
        "\n## CPU µs per request, server + Redis ({} connections, {} s per route{})\n",
        args.connections, args.duration, medians
    );
    ratio_table_head(&mut out, &contenders, &pairs);
    for row in rows {
        let _ = write!(out, "| {} | {} | {} |", row.0, row.1, row.2);
        for c in &contenders {
            match get(row, c) {
                Some(m) => {
                    let _ = write!(
                        out,
                        " {:.1} ({:.1} + {:.1}) |",
                        m.total_us(),
                        m.server_us,
                        m.redis_us
                    );
                }
                None => {
                    let _ = write!(out, " - |");
                }
            }
        }
        for (ours, peer) in &pairs {
            match (get(row, ours), get(row, peer)) {
                (Some(o), Some(p)) => {
                    let _ = write!(out, " {:.2} |", o.total_us() / p.total_us());
                }
                _ => {
                    let _ = write!(out, " - |");
                }
            }
        }
        let _ = writeln!(out);
    }
    if let (Some(r), Some(w)) = (floor("read"), floor("write")) {
        let _ = writeln!(
            out,
            "\nFloor (actix-web, no session): {:.1} µs on /read ({:.1} + {:.1}), {:.1} µs on /write; {:.0} and {:.0} rps.",
            r.total_us(), r.server_us, r.redis_us, w.total_us(), r.rps, w.rps
        );
        let _ = writeln!(
            out,
            "\nSession overhead over the floor (CPU µs per request, small session):\n"
        );
        let _ = writeln!(
            out,
            "| expiry | route | {} |",
            contenders
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(out, "|---|---|{}", "---|".repeat(contenders.len()));
        for row in rows.iter().filter(|r| r.0 == "small") {
            let base = if row.2 == "read" { r } else { w };
            let _ = write!(out, "| {} | {} |", row.1, row.2);
            for c in &contenders {
                match get(row, c) {
                    Some(m) => {
                        let _ = write!(out, " {:.1} |", m.total_us() - base.total_us());
                    }
                    None => {
                        let _ = write!(out, " - |");
                    }
                }
            }
            let _ = writeln!(out);
        }
    }

    let _ = writeln!(out, "\n## Requests/s and p99 latency (ms{medians})\n");
    let _ = writeln!(
        out,
        "| session | expiry | route | {} |",
        contenders
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|{}", "---|".repeat(contenders.len()));
    for row in rows {
        let _ = write!(out, "| {} | {} | {} |", row.0, row.1, row.2);
        for c in &contenders {
            match get(row, c) {
                Some(m) => {
                    let errors = if m.errors > 0 {
                        format!(", {} errors", m.errors)
                    } else {
                        String::new()
                    };
                    let _ = write!(out, " {:.0} / {:.2}{errors} |", m.rps, m.p99_us / 1000.0);
                }
                None => {
                    let _ = write!(out, " - |");
                }
            }
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(
        out,
        "\n## Redis commands per request (calls x µs per call{medians})\n"
    );
    let _ = writeln!(
        out,
        "| session | expiry | route | {} |",
        contenders
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|{}", "---|".repeat(contenders.len()));
    for row in rows {
        let _ = write!(out, "| {} | {} | {} |", row.0, row.1, row.2);
        for c in &contenders {
            match get(row, c) {
                Some(m) => {
                    let cells: Vec<String> = m
                        .commands
                        .iter()
                        .filter(|(_, (calls, _))| *calls >= 0.01)
                        .map(|(name, (calls, usec))| format!("{name} {calls:.2}x{usec:.2}"))
                        .collect();
                    let _ = write!(out, " {}; {:.2} reads |", cells.join(", "), m.redis_reads);
                }
                None => {
                    let _ = write!(out, " - |");
                }
            }
        }
        let _ = writeln!(out);
    }
    out
}

fn raw(results: &BTreeMap<(Row, String), Vec<Measure>>) -> String {
    let mut out = String::from(
        "size\texpiry\troute\tcontender\tround\trequests\trps\tp99_us\terrors\tserver_us\tredis_us\tredis_reads\tredis_writes\tcommands\n",
    );
    let each_round = results
        .iter()
        .flat_map(|(key, rounds)| rounds.iter().enumerate().map(move |(i, m)| (key, i, m)));
    for (((size, mode, route), contender), round, m) in each_round {
        let commands: Vec<String> = m
            .commands
            .iter()
            .map(|(name, (calls, usec))| format!("{name}:{calls:.3}x{usec:.3}"))
            .collect();
        let _ = writeln!(
            out,
            "{size}\t{mode}\t{route}\t{contender}\t{round}\t{}\t{:.0}\t{:.0}\t{}\t{:.2}\t{:.2}\t{:.3}\t{:.3}\t{}",
            m.requests,
            m.rps,
            m.p99_us,
            m.errors,
            m.server_us,
            m.redis_us,
            m.redis_reads,
            m.redis_writes,
            commands.join(",")
        );
    }
    out
}
