//! The kit's own behaviour against real redis-server processes.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use session_testkit::{RedisServer, ServerOptions, StartError};

#[test]
fn start_answers_and_reports_its_address() {
    let started = Instant::now();
    let server = RedisServer::start();
    eprintln!("started in {:?}", started.elapsed());
    assert_eq!(server.host(), "127.0.0.1");
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    assert!(server.is_running());
    let info: String = server.cmd(&["INFO", "server"]);
    assert!(info.contains(&format!("process_id:{}", server.pid().unwrap())));
    assert!(info.contains(&format!("tcp_port:{}", server.port())));
}

#[test]
fn no_persistence_and_loopback_only() {
    let server = RedisServer::start();
    let save: Vec<String> = server.cmd(&["CONFIG", "GET", "save"]);
    assert_eq!(save, vec!["save".to_string(), String::new()]);
    let aof: Vec<String> = server.cmd(&["CONFIG", "GET", "appendonly"]);
    assert_eq!(aof[1], "no");
    let bind: Vec<String> = server.cmd(&["CONFIG", "GET", "bind"]);
    assert_eq!(bind[1], "127.0.0.1");
    let dir: Vec<String> = server.cmd(&["CONFIG", "GET", "dir"]);
    assert_eq!(std::path::Path::new(&dir[1]), server.dir());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the directory holds the password");
}

#[test]
fn cmd_helpers_for_assertions() {
    let server = RedisServer::start();
    let _: () = server.cmd(&["SET", "k", "v", "EX", "100"]);
    let ttl: i64 = server.cmd(&["TTL", "k"]);
    assert!((90..=100).contains(&ttl), "{ttl}");
    let _: () = server.cmd(&["CONFIG", "RESETSTAT"]);
    let _: String = server.cmd(&["GET", "k"]);
    let stats: String = server.cmd(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_get:calls=1"), "{stats}");
    let clients: String = server.cmd(&["CLIENT", "LIST"]);
    assert!(clients.contains("cmd=client"), "{clients}");
    // DEBUG is enabled for local connections on Redis 7.
    let _: () = server.cmd(&["DEBUG", "SLEEP", "0"]);
    assert!(server.try_cmd::<String>(&["NO-SUCH-COMMAND"]).is_err());
    assert!(server.try_cmd::<String>(&[]).is_err());
}

#[test]
fn cmd_panic_names_the_command_but_not_its_arguments() {
    let server = RedisServer::start();
    let _: () = server.cmd(&["SET", "k", "v"]);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: i64 = server.cmd(&["INCRBY", "k", "secret-argument"]);
    }))
    .unwrap_err();
    let text = err.downcast_ref::<String>().unwrap();
    assert!(text.contains("INCRBY"), "{text}");
    assert!(!text.contains("secret-argument"), "{text}");
}

#[test]
fn kill_refuses_connections_and_restart_serves_again_on_the_same_port() {
    let server = RedisServer::start();
    let port = server.port();
    let client = server.client();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let pid = server.pid().unwrap();

    server.kill();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(!process_exists(pid), "killed server {pid} still exists");
    let refused = TcpStream::connect(server.addr()).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(redis::cmd("PING").query::<String>(&mut con).is_err());
    assert!(client.get_connection().is_err());
    server.kill(); // idempotent

    server.restart();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_ne!(server.pid(), Some(pid));
    let mut con = client.get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    // No persistence: the data is gone.
    assert_eq!(server.cmd::<Option<String>>(&["GET", "k"]), None);
}

#[test]
fn restart_waits_for_its_port_to_be_released() {
    let server = RedisServer::start();
    server.kill();
    // Someone else grabs the port while the server is down, then lets it go.
    let squatter = std::net::TcpListener::bind(server.addr()).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(squatter);
    });
    let started = Instant::now();
    server.restart();
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    assert!(server.log_tail(200).contains("Address already in use"));
    releaser.join().unwrap();
}

#[test]
fn stop_is_graceful_and_restart_of_a_running_server_works() {
    let server = RedisServer::start();
    let first = server.pid().unwrap();
    server.restart();
    let second = server.pid().unwrap();
    assert_ne!(first, second);
    assert!(!process_exists(first));
    server.stop();
    assert!(!server.is_running());
    assert!(!process_exists(second));
    assert!(
        server.log_tail(100).contains("ready to exit"),
        "{}",
        server.log_tail(100)
    );
    server.stop(); // idempotent
    server.restart();
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let server = RedisServer::start();
    let mut con = server.connection();
    con.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    server.pause();
    assert!(server.is_running());
    assert!(redis::cmd("PING").query::<String>(&mut con).is_err());
    server.resume();
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");

    // A paused server can still be stopped, and dropped.
    server.pause();
    server.stop();
    assert!(!server.is_running());
    server.restart();
    server.pause();
    let pid = server.pid().unwrap();
    drop(server);
    assert!(!process_exists(pid));
}

#[test]
fn client_pause_delays_commands() {
    let server = RedisServer::start();
    server.client_pause(Duration::from_millis(200));
    let started = Instant::now();
    let _: String = server.cmd(&["PING"]);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn password_is_required_and_used_by_the_helpers() {
    let server = RedisServer::start_with(ServerOptions::new().password("pa ss\"word"));
    assert_eq!(server.password(), Some("pa ss\"word"));
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    let anonymous = redis::Client::open(server.url()).unwrap();
    let mut con = anonymous.get_connection().unwrap();
    let err = redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("NOAUTH"), "{err}");
    // The password stays out of the command line and of Debug output.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid().unwrap())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("pa ss"));
    assert!(!format!("{server:?}").contains("pa ss"));
    // And survives a restart.
    server.kill();
    server.restart();
    assert!(redis::cmd("PING")
        .query::<String>(&mut anonymous.get_connection().unwrap())
        .is_err());
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
}

#[test]
fn unix_socket() {
    let server = RedisServer::start_with(ServerOptions::new().unix_socket(true));
    let path = server.unix_socket_path().unwrap().to_path_buf();
    assert!(path.starts_with(server.dir()));
    let client = redis::Client::open(server.unix_url().unwrap()).unwrap();
    let pong: String = redis::cmd("PING")
        .query(&mut client.get_connection().unwrap())
        .unwrap();
    assert_eq!(pong, "PONG");
    let client = redis::Client::open(server.unix_connection_info().unwrap()).unwrap();
    let pong: String = redis::cmd("PING")
        .query(&mut client.get_connection().unwrap())
        .unwrap();
    assert_eq!(pong, "PONG");
    assert!(RedisServer::start().unix_socket_path().is_none());
    drop(server);
    assert!(!path.exists());
}

#[test]
fn extra_args_reach_the_server() {
    let server = RedisServer::start_with(
        ServerOptions::new()
            .arg("--maxmemory")
            .arg("10mb")
            .args(["--databases", "3"]),
    );
    assert_eq!(
        server.cmd::<Vec<String>>(&["CONFIG", "GET", "maxmemory"])[1],
        "10485760"
    );
    assert_eq!(
        server.cmd::<Vec<String>>(&["CONFIG", "GET", "databases"])[1],
        "3"
    );
}

#[test]
fn bad_args_fail_with_the_server_log() {
    let err = RedisServer::try_start_with(ServerOptions::new().arg("--no-such-option").arg("1"))
        .unwrap_err();
    assert!(matches!(err, StartError::Exited { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("no-such-option"), "{text}");
}

#[test]
fn missing_binary_option_gives_the_install_hint() {
    let err = RedisServer::try_start_with(ServerOptions::new().binary("/nonexistent/redis-server"))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StartError::MissingBinary { .. }), "{text}");
    assert!(text.contains("apt-get install -y redis-server"), "{text}");
    assert!(text.contains("scripts/test.sh"), "{text}");
}

#[test]
fn a_server_that_never_answers_times_out_with_its_log() {
    // `sleep` stands in for a server that hangs before listening.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("redis-server");
    std::fs::write(&fake, "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'Redis server v=7.0.0'; exit 0; }\necho 'fake server starting'\nexec sleep 30\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let start = || {
        RedisServer::try_start_with(
            ServerOptions::new()
                .binary(&fake)
                .startup_timeout(Duration::from_millis(300)),
        )
        .unwrap_err()
    };
    let mut started = Instant::now();
    let mut err = start();
    // A server of another test forked while the script was open for writing holds that
    // descriptor until it execs, and exec of the script then fails with ETXTBSY ("Text file
    // busy"): a race of the test's own making, so try again.
    for _ in 0..5 {
        if !err.to_string().contains("Text file busy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        started = Instant::now();
        err = start();
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = err.to_string();
    assert!(matches!(err, StartError::Timeout { .. }), "{text}");
    assert!(text.contains("fake server starting"), "{text}");
}

#[test]
fn many_servers_in_parallel_get_distinct_ports() {
    let servers: Vec<RedisServer> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6).map(|_| scope.spawn(RedisServer::start)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = servers.iter().map(RedisServer::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), servers.len());
    for server in &servers {
        assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
    }
}

#[tokio::test]
async fn usable_from_tokio_tests() {
    let server = RedisServer::start();
    let client = server.client();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(server.cmd::<String>(&["GET", "k"]), "v");
}

fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its parent has not collected it yet.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn server_and_options_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RedisServer>();
    assert_send_sync::<ServerOptions>();
    let server = std::sync::Arc::new(RedisServer::start());
    let remote = std::sync::Arc::clone(&server);
    std::thread::spawn(move || remote.kill()).join().unwrap();
    assert!(!server.is_running());
}
