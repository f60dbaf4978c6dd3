//! `sessionctl` against Sentinel and Cluster topologies of real redis-server processes.

mod common;

use common::{id, put, sessionctl};
use session_testkit::{ClusterTopology, RedisServer, SentinelOptions, SentinelTopology};

#[test]
fn sentinel_check_reaches_each_sentinel_the_master_and_replicas_then_fails_on_one_down() {
    let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1));
    let hosts = topology.sentinel_host_list();
    let env = [
        ("SESSION_REDIS_MODE", "sentinel"),
        ("SESSION_REDIS_HOST", hosts.as_str()),
        ("SESSION_REDIS_MASTER", topology.master_name()),
    ];
    let json = sessionctl(&["check", "--json"], &env).expect(0).json();
    let roles: Vec<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["sentinel", "sentinel", "sentinel", "master", "replica"],
        "{json}"
    );
    let (host, port) = topology.master_addr();
    assert_eq!(json["nodes"][3]["location"], format!("{host}:{port}"));
    assert_eq!(json["dry_runs"][0]["ok"], true, "{json}");

    // Sessions on the master: found, shown, revoked through the sentinels.
    put(
        topology.master(),
        "session:",
        &[
            (id(1), vec![("user", "\"alice\"")], None),
            (id(2), vec![("user", "\"bob\"")], None),
        ],
    );
    sessionctl(&["show", &id(1)], &env).expect(0);
    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 1 session(s)\n");

    let down = topology.sentinel(1).port();
    topology.sentinel(1).kill();
    let run = sessionctl(&["check"], &env).expect(1);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&format!(":{down}")))
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "the discovery problem and the sentinel down:\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("sentinel"), "{}", run.stderr);

    let wrong = [
        ("SESSION_REDIS_MODE", "sentinel"),
        ("SESSION_REDIS_HOST", hosts.as_str()),
        ("SESSION_REDIS_MASTER", "nosuchmaster"),
    ];
    let run = sessionctl(&["check"], &wrong).expect(1);
    assert!(
        run.stderr
            .contains("no sentinel reported a master named `nosuchmaster`"),
        "{}",
        run.stderr
    );
}

#[test]
fn cluster_check_stats_and_a_migration_from_standalone() {
    let cluster = ClusterTopology::start();
    let seeds = cluster.seed_hosts();
    let env = [
        ("SESSION_REDIS_MODE", "cluster"),
        ("SESSION_REDIS_HOST", seeds.as_str()),
    ];
    let json = sessionctl(&["check", "--json"], &env).expect(0).json();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), cluster.nodes().count(), "every node: {json}");
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n["role"] == "cluster master")
            .count(),
        3
    );
    assert!(
        nodes
            .iter()
            .all(|n| n["up"] == true && n["version"].is_string()),
        "{json}"
    );
    let dry_runs = json["dry_runs"].as_array().unwrap();
    assert_eq!(
        dry_runs.len(),
        3,
        "one throwaway session per master: {json}"
    );
    assert!(dry_runs.iter().all(|r| r["ok"] == true), "{json}");
    let keys: i64 = cluster.nodes().map(|n| n.cmd::<i64>(&["DBSIZE"])).sum();
    assert_eq!(keys, 0, "every throwaway session is removed");

    // 500 sessions moved from a standalone server into the cluster.
    let standalone = RedisServer::start();
    let sessions: Vec<_> = (0..500)
        .map(|n| {
            (
                id(n),
                vec![("user", if n % 2 == 0 { "\"alice\"" } else { "\"bob\"" })],
                Some(600_000),
            )
        })
        .collect();
    put(&standalone, "session:", &sessions);
    let to = format!("session_redis_mode=cluster;session_redis_host={seeds}");
    let run = sessionctl(
        &[
            "migrate",
            "--from",
            &standalone.url(),
            "--to",
            &to,
            "--delete-source",
            "--json",
        ],
        &[],
    )
    .expect(0);
    assert_eq!(run.json()["moved"], 500);
    // Moved markers only, for a minute: no session.
    assert_eq!(standalone.cmd::<i64>(&["DBSIZE"]), 500);
    assert_eq!(common::markers(&standalone), 500);

    // Counted per master, all of them.
    let stats = sessionctl(&["stats", "--json"], &env).expect(0).json();
    let per_master: Vec<u64> = stats
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(per_master.len(), 3, "{stats}");
    assert_eq!(per_master.iter().sum::<u64>(), 500);
    assert!(
        per_master.iter().all(|n| *n > 100),
        "spread over the masters: {per_master:?}"
    );

    let run = sessionctl(&["revoke", "--where", "user=alice"], &env).expect(0);
    assert_eq!(run.stdout, "revoked 250 session(s)\n");
    let run = sessionctl(&["export"], &env).expect(0);
    assert_eq!(run.stdout.lines().count(), 250);
}
