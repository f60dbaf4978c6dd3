//! No redis-server outlives its test: not after a panic, not after the test process
//! dies abruptly, and not because the thread that started it ended.
//!
//! Some tests re-run this test binary as a subprocess with an environment variable
//! that turns a helper test into the scenario; without the variable the helpers do
//! nothing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use session_testkit::RedisServer;

const ABORT_SCENARIO: &str = "SESSION_TESTKIT_ABORT_SCENARIO_PID_FILE";
const MISSING_BINARY_SCENARIO: &str = "SESSION_TESTKIT_MISSING_BINARY_SCENARIO";

#[test]
fn a_panicking_test_leaves_no_server_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let server = RedisServer::start();
        tx.send(server.pid().unwrap()).unwrap();
        panic!("deliberate panic while a server runs");
    })
    .join();
    assert!(outcome.is_err());
    let pid = rx.recv().unwrap();
    assert!(
        wait_until_gone(pid, Duration::from_secs(2), false),
        "server {pid} survived the panic"
    );
}

#[test]
fn a_server_outlives_the_thread_that_started_it() {
    // The death signal follows the spawner thread, not the caller's thread.
    let server = std::thread::spawn(RedisServer::start).join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.is_running());
    assert_eq!(server.cmd::<String>(&["PING"]), "PONG");
}

#[test]
fn an_aborted_test_process_leaves_no_server_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The server is orphaned when the scenario aborts. As a subreaper this process
    // inherits it and can reap it, instead of leaving a zombie to a pid 1 that may not
    // reap (as in some containers).
    // SAFETY: plain prctl on this process; no memory is involved.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "scenario_abort_with_a_running_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_SCENARIO, &pid_file)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the scenario should have aborted");
    let report = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|err| panic!("no pid written ({err}); child output: {output:?}"));
    let (pid, server_dir) = report.split_once('\n').unwrap();
    let pid: u32 = pid.parse().unwrap();
    let gone = wait_until_gone(pid, Duration::from_secs(5), true);
    // Nothing dropped the aborted process's temporary directory.
    let _ = std::fs::remove_dir_all(server_dir);
    assert!(gone, "server {pid} survived the aborted test process");
}

#[test]
fn scenario_abort_with_a_running_server() {
    let Some(pid_file) = std::env::var_os(ABORT_SCENARIO) else {
        return;
    };
    // Started from a thread that ends at once: the server must survive that and
    // still die with the process.
    let server = std::thread::spawn(RedisServer::start).join().unwrap();
    let report = format!("{}\n{}", server.pid().unwrap(), server.dir().display());
    std::fs::write(Path::new(&pid_file), report).unwrap();
    // No unwinding, no Drop: only the death signal can stop the server now.
    std::process::abort();
}

#[test]
fn a_missing_binary_panics_with_the_install_command() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "scenario_start_without_binary",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MISSING_BINARY_SCENARIO, "1")
        .env("REDIS_SERVER", "/nonexistent/redis-server")
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "start without a binary must fail, not skip"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("apt-get install -y redis-server"), "{text}");
    assert!(text.contains("scripts/test.sh"), "{text}");
    assert!(
        text.contains("$REDIS_SERVER (/nonexistent/redis-server)"),
        "{text}"
    );
}

#[test]
fn scenario_start_without_binary() {
    if std::env::var_os(MISSING_BINARY_SCENARIO).is_none() {
        return;
    }
    let _server = RedisServer::start();
}

/// Whether the process is gone (or a zombie, which has exited) within `patience`.
/// `reap` only for orphans this process inherited as a subreaper: never for a pid a
/// `std::process::Child` of this process might own.
fn wait_until_gone(pid: u32, patience: Duration, reap: bool) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if reap {
            // SAFETY: waitpid on one pid with WNOHANG, no memory is involved.
            unsafe {
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
        let alive = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        };
        if !alive {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
