//! One `chromedriver` child process, for browser tests: Debian's `chromium-driver` driving
//! Debian's `chromium`, headless, on a free loopback port.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{binary, ports, spawner};

/// How to install the browser and its driver; part of every "binary missing" message.
pub const BROWSER_INSTALL_HINT: &str = "install them with `apt-get install -y chromium \
chromium-driver` (scripts/test.sh does this before running the tests), or set $CHROMIUM and \
$CHROMEDRIVER to the paths of a chromium binary and of its matching chromedriver";

/// How long chromedriver may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(20);
/// Lines of driver log quoted in failure messages.
const LOG_TAIL_LINES: usize = 30;

/// Why chromedriver could not be started. [`Chromedriver::start`] panics with its text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserStartError {
    /// No `chromium` or no `chromedriver` binary where the kit looked.
    #[error("session-testkit: {what} not found: looked for {looked_in}; {BROWSER_INSTALL_HINT}")]
    MissingBinary {
        /// `chromium` or `chromedriver`.
        what: &'static str,
        /// Where the kit looked.
        looked_in: String,
    },
    /// Preparing the temporary directory or spawning the process failed.
    #[error("session-testkit: cannot {what}: {source}")]
    Io {
        /// What the kit was doing.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// chromedriver exited, or did not listen in time (it has been killed).
    #[error(
        "session-testkit: chromedriver on 127.0.0.1:{port} {what}; driver log tail:\n{log_tail}"
    )]
    NotReady {
        /// The port it was given.
        port: u16,
        /// What happened.
        what: String,
        /// The end of the driver's log.
        log_tail: String,
    },
}

/// A running `chromedriver` on `127.0.0.1`, with a private directory for the browser's
/// profile ([`Chromedriver::profile_dir`]).
///
/// chromedriver runs in a process group of its own, and the browsers it starts join that
/// group. Dropping the value kills the whole group (driver and every browser process), reaps
/// the driver and deletes the directory, also when a test panics. When the test process dies
/// without unwinding, the driver gets `SIGKILL` through `PR_SET_PDEATHSIG`, as redis servers
/// do (see the crate documentation), and the browser gets its own when the driver dies
/// ([`Chromedriver::chromium`] is launched through `setpriv --pdeathsig KILL`).
///
/// ```no_run
/// let driver = session_testkit::Chromedriver::start();
/// // A WebDriver client (fantoccini, thirtyfour) connects to `driver.url()` and asks for
/// // `driver.chromium()` with `--user-data-dir=` `driver.profile_dir()`.
/// assert!(driver.url().starts_with("http://127.0.0.1:"));
/// ```
pub struct Chromedriver {
    chromium: PathBuf,
    dir: TempDir,
    log: PathBuf,
    port: u16,
    child: Child,
}

impl Chromedriver {
    /// Starts chromedriver and waits until it listens.
    ///
    /// # Panics
    ///
    /// When it cannot be started: see [`BrowserStartError`] (the message says how to install
    /// `chromium` and `chromium-driver` when one is missing, and quotes the driver's log
    /// otherwise).
    pub fn start() -> Chromedriver {
        Self::try_start().unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts chromedriver, returning why it failed instead of panicking.
    pub fn try_start() -> Result<Chromedriver, BrowserStartError> {
        let chromium = try_chromium_binary()?;
        let driver = locate("chromedriver", "CHROMEDRIVER")?;
        let dir = tempfile::Builder::new()
            .prefix("chromedriver-testkit-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(|source| BrowserStartError::Io {
                what: "create a temporary directory".into(),
                source,
            })?;
        let log = dir.path().join("chromedriver.log");
        let log_file = File::create(&log).map_err(|source| BrowserStartError::Io {
            what: format!("create {}", log.display()),
            source,
        })?;
        let log_err = log_file
            .try_clone()
            .map_err(|source| BrowserStartError::Io {
                what: format!("open {}", log.display()),
                source,
            })?;
        let chromium = tied_to_its_parent(&chromium, dir.path())?;
        let port = ports::reserve_free_port();
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            // The browser writes its caches and settings under these: keep them in the
            // directory that is deleted on drop, out of the user's home.
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            // A group of its own, which the browser processes join: one kill stops them all.
            .process_group(0);
        let child = spawner::spawn(command).map_err(|source| BrowserStartError::Io {
            what: format!("start {}", driver.display()),
            source,
        })?;
        let mut driver = Chromedriver {
            chromium,
            dir,
            log,
            port,
            child,
        };
        driver.wait_ready()?;
        Ok(driver)
    }

    fn wait_ready(&mut self) -> Result<(), BrowserStartError> {
        let started = Instant::now();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.not_ready(format!("exited before listening ({status})")));
            }
            if TcpStream::connect_timeout(&addr, POLL).is_ok() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(self.not_ready(format!("did not listen within {READY_TIMEOUT:?}")));
            }
            sleep(POLL);
        }
    }

    fn not_ready(&self, what: String) -> BrowserStartError {
        BrowserStartError::NotReady {
            port: self.port,
            what,
            log_tail: self.log_tail(LOG_TAIL_LINES),
        }
    }

    /// `http://127.0.0.1:PORT`, the WebDriver endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The chromium binary to ask for (`goog:chromeOptions.binary`): a launcher in the
    /// driver's directory that ties the browser's life to the driver's.
    pub fn chromium(&self) -> &Path {
        &self.chromium
    }

    /// A private directory for the browser's profile (`--user-data-dir=`), deleted on drop.
    pub fn profile_dir(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// The last `lines` lines of the driver's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "session-testkit: log tail of chromedriver on {} (test panicked):\n{}",
                self.url(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        // SAFETY: kill(2) on the process group our unreaped child leads (its pid is its group
        // id, `process_group(0)`), so the id cannot belong to anyone else yet.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.child.wait();
        ports::release(self.port);
    }
}

impl std::fmt::Debug for Chromedriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromedriver")
            .field("port", &self.port)
            .field("pid", &self.child.id())
            .field("chromium", &self.chromium)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// A launcher of `chromium` (a script in `dir`) that asks for `SIGKILL` when its parent,
/// chromedriver, dies (`setpriv --pdeathsig KILL`, util-linux, part of every Debian). The
/// process group handles a drop; this handles a test process that dies without unwinding: its
/// chromedriver gets the death signal from the kit's spawner, and the browser then gets its own
/// (the browser's helper processes exit when it does). Without `setpriv`, `chromium` itself.
fn tied_to_its_parent(chromium: &Path, dir: &Path) -> Result<PathBuf, BrowserStartError> {
    let Ok(setpriv) = locate("setpriv", "SETPRIV") else {
        return Ok(chromium.to_path_buf());
    };
    let quote = |path: &Path| format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"));
    let script = format!(
        "#!/bin/sh\nexec {} --pdeathsig KILL -- {} \"$@\"\n",
        quote(&setpriv),
        quote(chromium)
    );
    let launcher = dir.join("chromium");
    let io = |source| BrowserStartError::Io {
        what: format!("write {}", launcher.display()),
        source,
    };
    std::fs::write(&launcher, script).map_err(io)?;
    std::fs::set_permissions(
        &launcher,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(io)?;
    Ok(launcher)
}

/// The `chromium` binary: `$CHROMIUM` when set and not empty, else `chromium` on `PATH`.
///
/// ```no_run
/// let chromium = session_testkit::try_chromium_binary().expect("chromium installed");
/// assert!(chromium.is_file());
/// ```
pub fn try_chromium_binary() -> Result<PathBuf, BrowserStartError> {
    locate("chromium", "CHROMIUM")
}

/// `$override_var` when set and not empty (a missing file is an error, not a fall back), else
/// `name` on `PATH`.
fn locate(name: &'static str, override_var: &str) -> Result<PathBuf, BrowserStartError> {
    let missing = |looked_in: String| BrowserStartError::MissingBinary {
        what: name,
        looked_in,
    };
    if let Some(explicit) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return if binary::is_executable(&explicit) {
            Ok(explicit)
        } else {
            Err(missing(format!(
                "${override_var} ({}), which is not an executable file",
                explicit.display()
            )))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| binary::is_executable(candidate))
        .ok_or_else(|| missing(format!("`{name}` on PATH ({})", path.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let err = BrowserStartError::MissingBinary {
            what: "chromium",
            looked_in: "`chromium` on PATH (/usr/bin)".into(),
        };
        let text = err.to_string();
        assert!(
            text.contains("apt-get install -y chromium chromium-driver"),
            "{text}"
        );
        assert!(text.contains("chromium not found"), "{text}");
    }
}
