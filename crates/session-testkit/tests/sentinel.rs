//! The Sentinel topology helpers, against real processes.

use std::time::Duration;

use session_testkit::{SentinelOptions, SentinelTopology};

#[test]
fn planned_failover() {
    let started = std::time::Instant::now();
    let topology = SentinelTopology::start();
    eprintln!("topology ready after {:?}", started.elapsed());
    let first = topology.master_addr();
    assert_eq!(first.1, topology.nodes()[0].port());
    assert!(topology.sentinel_host_list().starts_with("[('127.0.0.1', "));

    let _: () = topology.master().cmd(&["SET", "k", "v"]);
    assert_eq!(topology.wait_replication(Duration::from_secs(10)), 2);

    let started = std::time::Instant::now();
    let second = topology.failover();
    eprintln!("planned failover done after {:?}", started.elapsed());
    assert_ne!(second, first);
    assert_eq!(topology.master().cmd::<String>(&["GET", "k"]), "v");

    // kill_master and wait_for_new_master are exercised under load by session-core's
    // tests/redis_sentinel.rs (master_crash_under_load); not repeated here to keep the
    // sentinel tests' total time down.
}

#[test]
fn passwords_on_nodes_and_sentinels() {
    let topology = SentinelTopology::start_with(
        SentinelOptions::new()
            .replicas(1)
            .password("node-pw")
            .sentinel_password("sentinel-pw"),
    );
    assert_eq!(topology.sentinel(0).password(), Some("sentinel-pw"));
    assert_eq!(topology.master().password(), Some("node-pw"));
    let no_auth = redis::Client::open(topology.sentinel(1).url()).unwrap();
    let err = redis::cmd("SENTINEL")
        .arg("MASTERS")
        .query::<redis::Value>(&mut no_auth.get_connection().unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    topology.failover();
}

#[test]
fn tls_topology_reports_tls_ports() {
    let topology = SentinelTopology::start_with(SentinelOptions::new().replicas(1).tls(true));
    let (_, port) = topology.master_addr();
    assert_eq!(Some(port), topology.nodes()[0].tls_port());
    assert!(topology
        .ca_cert_pem()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert_eq!(
        topology.sentinel_addrs()[0].1,
        topology.sentinel(0).tls_port().unwrap()
    );
    let second = topology.failover();
    assert_eq!(Some(second.1), topology.nodes()[1].tls_port());
}
