//! `sessionctl`'s own connections (SCAN, INFO, asking the sentinels and the cluster nodes)
//! over TLS, against real TLS redis-server processes: the configuration names only the TLS
//! ports, so a command that succeeds spoke TLS, with the trusted roots, client certificate
//! and checks configured. The sessions are written and counted through the servers' plain
//! ports.

mod common;

use common::{dbsize, id, put, sessionctl, sessionctl_with_input, Session};
use session_testkit::{
    ClusterOptions, ClusterTopology, RedisServer, SentinelOptions, SentinelTopology, ServerOptions,
    TestCa, CLIENT_KEY_PASSWORD,
};

const PASSWORD: &str = "tls-cli-hunter2";

fn tls_server(options: ServerOptions) -> RedisServer {
    RedisServer::start_with(options.tls(true).password(PASSWORD))
}

/// 30 sessions: alice has 0, 3, ..., 27 (10), bob the other 20.
fn sessions() -> Vec<Session<'static>> {
    (0..30)
        .map(|n| {
            let user = if n % 3 == 0 { "\"alice\"" } else { "\"bob\"" };
            (id(n), vec![("user", user)], Some(600_000))
        })
        .collect()
}

/// `rediss://` with the password to the server's TLS port.
fn rediss(server: &RedisServer) -> String {
    format!(
        "rediss://:{PASSWORD}@127.0.0.1:{}/0",
        server.tls_port().unwrap()
    )
}

fn ca(server: &RedisServer) -> String {
    server.ca_cert_path().unwrap().display().to_string()
}

/// `check`, `stats`, `export`, `migrate --from`, `revoke --where` and `revoke --all --yes`
/// with the application's configuration in `env` (and the same as inline `--from`
/// settings), the sessions of [`sessions`] on `server`.
fn every_scanning_command(server: &RedisServer, env: &[(&str, &str)]) {
    let tls = format!("127.0.0.1:{}", server.tls_port().unwrap());
    let json = sessionctl(&["check", "--json"], env).expect(0).json();
    assert_eq!(json["nodes"][0]["location"], tls, "{json}");
    assert_eq!(json["nodes"][0]["up"], true, "{json}");
    assert!(json["nodes"][0]["version"].is_string(), "INFO ran: {json}");
    assert_eq!(json["dry_runs"][0]["ok"], true, "{json}");

    let stats = sessionctl(&["stats", "--json", "--exact"], env)
        .expect(0)
        .json();
    assert_eq!(stats[0]["sessions"], 30, "{stats}");

    let run = sessionctl(&["export"], env).expect(0);
    assert_eq!(run.stdout.lines().count(), 30);

    let target = RedisServer::start();
    let from: String = env
        .iter()
        .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(";");
    let json = sessionctl(
        &["migrate", "--from", &from, "--to", &target.url(), "--json"],
        &[],
    )
    .expect(0)
    .json();
    assert_eq!(json["moved"], 30, "{json}");
    assert_eq!(dbsize(&target), 30);

    let run = sessionctl(&["revoke", "--where", "user=alice"], env).expect(0);
    assert_eq!(run.stdout, "revoked 10 session(s)\n");
    let run = sessionctl(&["revoke", "--all", "--yes"], env).expect(0);
    assert_eq!(run.stdout, "revoked 20 session(s)\n");
    assert_eq!(dbsize(server), 0);
}

#[test]
fn standalone_over_tls_with_the_configured_ca() {
    let server = tls_server(ServerOptions::new());
    put(&server, "session:", &sessions());
    let url = rediss(&server);
    let ca = ca(&server);
    every_scanning_command(
        &server,
        &[
            ("SESSION_REDIS_URL", &url),
            ("SESSION_REDIS_SSL_CA_CERTS", &ca),
        ],
    );
}

#[test]
fn standalone_over_tls_with_a_client_certificate_and_an_encrypted_key() {
    let server = tls_server(ServerOptions::new().tls_auth_clients(true));
    put(&server, "session:", &sessions());
    let files = server.tls_files().unwrap();
    let port = server.tls_port().unwrap().to_string();
    let ca = ca(&server);
    let cert = files.client_cert.display().to_string();
    let key = files.client_key_encrypted.display().to_string();
    let mut env = vec![
        ("SESSION_REDIS_SSL", "True"),
        ("SESSION_REDIS_HOST", "127.0.0.1"),
        ("SESSION_REDIS_PORT", port.as_str()),
        ("SESSION_REDIS_PASSWORD", PASSWORD),
        ("SESSION_REDIS_SSL_CA_CERTS", ca.as_str()),
    ];
    // Without the certificate the server ends the handshake: that failure is the
    // server's, and the scan reports it.
    let run = sessionctl(&["stats"], &env).expect(1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&port), "{}", run.stderr);
    env.extend([
        ("SESSION_REDIS_SSL_CERTFILE", cert.as_str()),
        ("SESSION_REDIS_SSL_KEYFILE", key.as_str()),
        ("SESSION_REDIS_SSL_PASSWORD", CLIENT_KEY_PASSWORD),
    ]);
    every_scanning_command(&server, &env);
}

#[test]
fn host_name_and_verification_switches_are_the_librarys() {
    let server = tls_server(ServerOptions::new().tls_server_names(["redis.test"]));
    put(&server, "session:", &sessions()[..3]);
    let url = rediss(&server);
    let ca = ca(&server);
    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_SSL_CA_CERTS", ca.as_str()),
    ];
    let run = sessionctl(&["stats"], &env).expect(1);
    assert!(run.stderr.contains("not valid for name"), "{}", run.stderr);

    let unchecked = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_SSL_CA_CERTS", ca.as_str()),
        ("SESSION_REDIS_SSL_CHECK_HOSTNAME", "False"),
    ];
    let stats = sessionctl(&["stats", "--json"], &unchecked)
        .expect(0)
        .json();
    assert_eq!(stats[0]["sessions"], 3, "{stats}");

    // No CA at all: `ssl_cert_reqs = none`, and `#insecure` in the URL, check nothing.
    let none = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_SSL_CERT_REQS", "none"),
    ];
    sessionctl(&["check"], &none).expect(0);
    let insecure = format!("{url}#insecure");
    let run = sessionctl(&["export"], &[("SESSION_REDIS_URL", &insecure)]).expect(0);
    assert_eq!(run.stdout.lines().count(), 3);
}

#[test]
fn an_untrusted_certificate_fails_in_one_line_without_the_password() {
    let server = tls_server(ServerOptions::new());
    put(&server, "session:", &sessions()[..3]);
    let url = rediss(&server);
    let other = server
        .tls_files()
        .unwrap()
        .other_ca_cert
        .display()
        .to_string();
    let port = server.tls_port().unwrap().to_string();
    let env = [
        ("SESSION_REDIS_URL", url.as_str()),
        ("SESSION_REDIS_SSL_CA_CERTS", other.as_str()),
    ];
    for args in [
        &["stats"][..],
        &["export"],
        &["revoke", "--where", "user=alice"],
        &["revoke", "--all", "--yes"],
    ] {
        let run = sessionctl(args, &env).expect(1);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        let line = run.stderr.trim_end();
        assert!(
            line.starts_with("sessionctl: ")
                && line.contains(&port)
                && line.contains("UnknownIssuer")
                && line.contains("session_redis_ssl_ca_certs"),
            "{args:?}: {line}"
        );
        assert!(!run.stdout.contains(PASSWORD) && !line.contains(PASSWORD));
    }
    let from = format!("session_redis_url={url};session_redis_ssl_ca_certs={other}");
    let target = RedisServer::start();
    let run = sessionctl(&["migrate", "--from", &from, "--to", &target.url()], &[]).expect(1);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("UnknownIssuer"), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);

    // `check`: the server down (sessionctl's own connection) and the dry run (the store's).
    let run = sessionctl(&["check"], &env).expect(1);
    let down = format!(
        "sessionctl: redis standalone 127.0.0.1:{port}: invalid peer certificate: UnknownIssuer"
    );
    assert!(run.stderr.lines().any(|l| l == down), "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("dry run failed") && l.contains("UnknownIssuer")),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
    assert_eq!(dbsize(&server), 3, "nothing was revoked");
}

#[test]
fn sentinels_master_and_replica_over_tls() {
    let topology = SentinelTopology::start_with(
        SentinelOptions::new()
            .replicas(1)
            .tls(true)
            .password(PASSWORD)
            .sentinel_password("sentinel-secret"),
    );
    let hosts = topology.sentinel_host_list();
    let ca = topology.ca_cert_path().unwrap().display().to_string();
    let env = [
        ("SESSION_REDIS_MODE", "sentinel"),
        ("SESSION_REDIS_HOST", hosts.as_str()),
        ("SESSION_REDIS_MASTER", topology.master_name()),
        ("SESSION_REDIS_PASSWORD", PASSWORD),
        ("SESSION_REDIS_SENTINEL_PASSWORD", "sentinel-secret"),
        ("SESSION_REDIS_SSL", "True"),
        ("SESSION_REDIS_SSL_CA_CERTS", ca.as_str()),
    ];
    let json = sessionctl(&["check", "--json"], &env).expect(0).json();
    let nodes = json["nodes"].as_array().unwrap();
    let roles: Vec<&str> = nodes.iter().map(|n| n["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["sentinel", "sentinel", "sentinel", "master", "replica"],
        "{json}"
    );
    assert!(nodes.iter().all(|n| n["up"] == true), "{json}");
    let master_tls = topology.master().tls_port().unwrap();
    assert_eq!(nodes[3]["location"], format!("127.0.0.1:{master_tls}"));
    assert_eq!(json["dry_runs"][0]["ok"], true, "{json}");

    put(topology.master(), "session:", &sessions());
    let stats = sessionctl(&["stats", "--json", "--exact"], &env)
        .expect(0)
        .json();
    assert_eq!(stats[0]["sessions"], 30, "{stats}");
    let run = sessionctl(&["export"], &env).expect(0);
    assert_eq!(run.stdout.lines().count(), 30);
    let target = RedisServer::start();
    let from: String = env
        .iter()
        .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(";");
    let json = sessionctl(
        &["migrate", "--from", &from, "--to", &target.url(), "--json"],
        &[],
    )
    .expect(0)
    .json();
    assert_eq!(json["moved"], 30, "{json}");
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 10 session(s)\n");
    let run = sessionctl(&["revoke", "--all", "--yes"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 20 session(s)\n");
    assert_eq!(dbsize(topology.master()), 0);
}

#[test]
fn cluster_nodes_over_tls() {
    let cluster = ClusterTopology::start_with(ClusterOptions::new().tls(true));
    let seeds = cluster.seed_hosts();
    let ca = cluster.ca_cert_path().unwrap().display().to_string();
    let env = [
        ("SESSION_REDIS_MODE", "cluster"),
        ("SESSION_REDIS_HOST", seeds.as_str()),
        ("SESSION_REDIS_SSL", "True"),
        ("SESSION_REDIS_SSL_CA_CERTS", ca.as_str()),
    ];
    let json = sessionctl(&["check", "--json"], &env).expect(0).json();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{json}");
    let tls_ports: Vec<String> = cluster
        .nodes()
        .map(|n| format!("127.0.0.1:{}", n.tls_port().unwrap()))
        .collect();
    assert!(
        nodes.iter().all(|n| n["up"] == true
            && n["role"] == "cluster master"
            && tls_ports.contains(&n["location"].as_str().unwrap().to_owned())),
        "every master, by its TLS port: {json}"
    );
    let dry_runs = json["dry_runs"].as_array().unwrap();
    assert!(
        dry_runs.len() == 3 && dry_runs.iter().all(|r| r["ok"] == true),
        "{json}"
    );

    // Written through the cluster client of the library, spread over the masters.
    let source = RedisServer::start();
    put(&source, "session:", &sessions());
    let to = env
        .iter()
        .map(|(k, v)| format!("{}={v}", k.to_ascii_lowercase()))
        .collect::<Vec<_>>()
        .join(";");
    let json = sessionctl(
        &["migrate", "--from", &source.url(), "--to", &to, "--json"],
        &[],
    )
    .expect(0)
    .json();
    assert_eq!(json["moved"], 30, "{json}");

    let stats = sessionctl(&["stats", "--json", "--exact"], &env)
        .expect(0)
        .json();
    let counts: Vec<u64> = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 3, "{stats}");
    assert_eq!(counts.iter().sum::<u64>(), 30);
    let run = sessionctl(&["export"], &env).expect(0);
    assert_eq!(run.stdout.lines().count(), 30);
    let target = RedisServer::start();
    let json = sessionctl(
        &["migrate", "--from", &to, "--to", &target.url(), "--json"],
        &[],
    )
    .expect(0)
    .json();
    assert_eq!(json["moved"], 30, "{json}");
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 10 session(s)\n");
    let run = sessionctl(&["revoke", "--all", "--yes"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 20 session(s)\n");
    let keys: i64 = cluster.nodes().map(|n| n.cmd::<i64>(&["DBSIZE"])).sum();
    assert_eq!(keys, 0);
}

#[test]
fn pool_members_over_tls() {
    let ca = TestCa::new();
    let servers: Vec<RedisServer> = (0..2)
        .map(|_| tls_server(ServerOptions::new().tls_ca(ca.clone())))
        .collect();
    let members: Vec<String> = servers
        .iter()
        .map(|s| {
            format!(
                "{{'SESSION_REDIS_HOST': '127.0.0.1', 'SESSION_REDIS_PORT': {}}}",
                s.tls_port().unwrap()
            )
        })
        .collect();
    let pool = format!("[{}]", members.join(", "));
    let ca = servers[0].ca_cert_path().unwrap().display().to_string();
    let env = [
        ("SESSION_REDIS_POOL", pool.as_str()),
        ("SESSION_REDIS_PASSWORD", PASSWORD),
        ("SESSION_REDIS_SSL", "True"),
        ("SESSION_REDIS_SSL_CA_CERTS", ca.as_str()),
    ];
    let json = sessionctl(&["check", "--json"], &env).expect(0).json();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{json}");
    assert!(nodes.iter().all(|n| n["up"] == true), "{json}");
    // Written through the pool, so each on the member that owns it.
    let lines: String = (0..40)
        .map(|n| {
            format!(
                "{{\"id\":\"{}\",\"ttl_ms\":600000,\"fields\":{{\"n\":\"{n}\"}}}}\n",
                id(n)
            )
        })
        .collect();
    sessionctl_with_input(&["import"], &env, Some(&lines)).expect(0);
    let stats = sessionctl(&["stats", "--json", "--exact"], &env)
        .expect(0)
        .json();
    let counts: Vec<u64> = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{stats}");
    assert_eq!(counts.iter().sum::<u64>(), 40);
    assert!(counts.iter().all(|n| *n > 0), "on both members: {counts:?}");
    let run = sessionctl(&["revoke", "--all", "--yes"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 40 session(s)\n");
    assert!(servers.iter().all(|s| dbsize(s) == 0));
}
