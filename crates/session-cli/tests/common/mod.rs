//! Running the real `sessionctl` binary, and putting sessions into real servers.
#![allow(dead_code)]

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use session_testkit::RedisServer;

/// What one run of `sessionctl` gave.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn of(out: Output) -> Self {
        Self {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both outputs unless the exit status is `status`.
    #[track_caller]
    pub fn expect(self, status: i32) -> Self {
        assert_eq!(
            self.status, status,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs `sessionctl args` with exactly `env` as its session environment (the test process'
/// own `SESSION_*` variables are not passed on).
pub fn sessionctl(args: &[&str], env: &[(&str, &str)]) -> Run {
    sessionctl_with_input(args, env, None)
}

/// The same, with `input` on stdin (else stdin is empty, not a terminal).
pub fn sessionctl_with_input(args: &[&str], env: &[(&str, &str)], input: Option<&str>) -> Run {
    let mut child = spawn(args, env);
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).unwrap();
        }
    }
    Run::of(child.wait_with_output().unwrap())
}

/// `sessionctl args` started with exactly `env` as its session environment, every stream
/// piped; for a test that acts on the process while it runs (a signal).
pub fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sessionctl runs")
}

/// A session id of the library's shape (43 characters of base64url), made from `n`.
pub fn id(n: usize) -> String {
    format!("{n:0>43}")
}

/// A session to write: id, fields, TTL in milliseconds.
pub type Session<'a> = (String, Vec<(&'a str, &'a str)>, Option<u64>);

/// Writes sessions straight into Redis, pipelined, as the library stores them: one
/// `session:<id>` string `v1:<tag>:{"=<key>":<value>,...` (the object without its closing
/// brace: writes append to it), with a TTL in milliseconds when
/// given. `fields` hold JSON text.
pub fn put(server: &RedisServer, prefix: &str, sessions: &[Session<'_>]) {
    write(server, prefix, sessions, |pipe, key, fields| {
        let mut value = String::from("v1:00000000000000c1:{");
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                value.push(',');
            }
            value.push_str(&serde_json::to_string(&format!("={k}")).unwrap());
            value.push(':');
            value.push_str(v);
        }
        pipe.cmd("SET").arg(key).arg(value).ignore();
    });
}

/// [`put`] in the layout of earlier versions: a hash, one field per session key. The library
/// still reads these, and writes them field by field.
pub fn put_hashes(server: &RedisServer, prefix: &str, sessions: &[Session<'_>]) {
    write(server, prefix, sessions, |pipe, key, fields| {
        pipe.cmd("HSET").arg(key);
        for (k, v) in fields {
            pipe.arg(*k).arg(*v);
        }
        pipe.ignore();
    });
}

fn write(
    server: &RedisServer,
    prefix: &str,
    sessions: &[Session<'_>],
    set: impl Fn(&mut redis::Pipeline, &str, &[(&str, &str)]),
) {
    let mut conn = server.client().get_connection().unwrap();
    for chunk in sessions.chunks(5000) {
        let mut pipe = redis::pipe();
        for (id, fields, ttl) in chunk {
            let key = format!("{prefix}{id}");
            set(&mut pipe, &key, fields);
            if let Some(ms) = ttl {
                pipe.cmd("PEXPIRE").arg(&key).arg(*ms).ignore();
            }
        }
        let () = pipe.query(&mut conn).unwrap();
    }
}

/// The JSON text of session key `field` of the session stored at `key`, in either layout.
pub fn stored_field(server: &RedisServer, key: &str, field: &str) -> String {
    let kind: String = server.cmd(&["TYPE", key]);
    if kind == "hash" {
        return server.cmd(&["HGET", key, field]);
    }
    let value: String = server.cmd(&["GET", key]);
    let state = session_core::backends::redis::decode_value(value.as_bytes()).unwrap();
    state[field].clone()
}

/// The number of keys of db 0.
pub fn dbsize(server: &RedisServer) -> i64 {
    server.cmd(&["DBSIZE"])
}

/// How what a move leaves under the key of a session it moved away starts (a marker of the
/// move's own, for a minute: session-core's `retire_many`): no session to any reader.
pub const MOVED_MARKER_PREFIX: &str = ",\"~moved\":";

/// The moved markers among the keys of db 0.
pub fn markers(server: &RedisServer) -> i64 {
    server.cmd(&[
        "EVAL",
        "local n = 0 \
         for _, k in ipairs(redis.call('KEYS', '*')) do \
           if redis.call('TYPE', k).ok == 'string' \
             and redis.call('GETRANGE', k, 0, #ARGV[1] - 1) == ARGV[1] then n = n + 1 end \
         end \
         return n",
        "0",
        MOVED_MARKER_PREFIX,
    ])
}

/// The keys of db 0 that are not moved markers: the sessions (and index entries) a test
/// put or moved there.
pub fn stored(server: &RedisServer) -> i64 {
    dbsize(server) - markers(server)
}

/// A config file in `dir` with `lines` under `[options]`.
pub fn conf(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("[options]\n{}\n", lines.join("\n"))).unwrap();
    path.to_str().unwrap().to_owned()
}

/// What a server was asked, in order, as `MONITOR` sees it: for a test of when a command
/// does its work relative to its `SCAN`s, which no count or timing can tell.
pub struct Monitor {
    reader: std::thread::JoinHandle<Vec<String>>,
    port: u16,
}

/// The `ECHO` text that ends a [`Monitor`].
const MONITOR_END: &str = "sessionctl-test-monitor-end";

impl Monitor {
    /// Starts watching `server` (a server without a password).
    pub fn start(server: &RedisServer) -> Self {
        use std::io::{BufRead, BufReader};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut lines = BufReader::new(stream);
        let mut ok = String::new();
        lines.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim_end(), "+OK");
        let reader = std::thread::spawn(move || {
            let mut commands = Vec::new();
            for line in lines.lines() {
                let line = line.unwrap();
                if line.contains(MONITOR_END) {
                    break;
                }
                // `+<time> [<db> <client>] "NAME" "ARG"...`: the name, upper-cased.
                if let Some(name) = line.split("] \"").nth(1).and_then(|r| r.split('"').next()) {
                    commands.push(name.to_ascii_uppercase());
                }
            }
            commands
        });
        Self {
            reader,
            port: server.port(),
        }
    }

    /// Every command's name since [`Monitor::start`].
    pub fn finish(self) -> Vec<String> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let mut conn = client.get_connection().unwrap();
        let _: String = redis::cmd("ECHO")
            .arg(MONITOR_END)
            .query(&mut conn)
            .unwrap();
        self.reader.join().unwrap()
    }
}

/// The URL of an ACL user `half` on `server` that reads every session key under `session:`
/// and writes (deletes) only those ending in an even digit, plus any `extra` key patterns
/// (such as `%W~session:index:*`): a command that fails part way through.
pub fn half_writable_url(server: &RedisServer, extra: &[&str]) -> String {
    let mut acl = vec![
        "ACL",
        "SETUSER",
        "half",
        "on",
        ">halfpass",
        "%R~session:*",
        "%W~session:*[02468]",
    ];
    acl.extend_from_slice(extra);
    acl.push("+@all");
    let _: () = server.cmd(&acl);
    format!("redis://half:halfpass@127.0.0.1:{}/0", server.port())
}
