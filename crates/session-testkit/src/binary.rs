//! Finding the `redis-server` binary.

use std::env;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::server::StartError;

/// How to install the server; part of every "binary missing" message.
///
/// Example: the example on [`try_redis_server_binary`].
pub const INSTALL_HINT: &str = "install it with `apt-get install -y redis-server` \
(scripts/test.sh does this before running the tests), or set $REDIS_SERVER to the path of a \
redis-server binary";

/// The `redis-server` binary the kit starts, or a [`StartError::MissingBinary`]
/// naming where it looked and how to install it.
///
/// `$REDIS_SERVER`, when set and not empty, wins over `PATH`: pointing it at a missing
/// file is an error rather than a silent fall back, so a typo is noticed.
///
/// ```
/// let binary = session_testkit::try_redis_server_binary().expect("redis-server installed");
/// assert!(binary.is_file());
/// assert_eq!(session_testkit::redis_server_binary(), binary);
/// assert!(session_testkit::INSTALL_HINT.contains("apt-get install -y redis-server"));
/// ```
pub fn try_redis_server_binary() -> Result<PathBuf, StartError> {
    locate(env::var_os("REDIS_SERVER"), env::var_os("PATH"))
}

/// The `redis-server` binary the kit starts.
///
/// # Panics
///
/// When it cannot be found, with the install command in the message.
///
/// Example: the example on [`try_redis_server_binary`].
pub fn redis_server_binary() -> PathBuf {
    try_redis_server_binary().unwrap_or_else(|err| panic!("{err}"))
}

fn locate(override_path: Option<OsString>, path: Option<OsString>) -> Result<PathBuf, StartError> {
    if let Some(explicit) = override_path.filter(|p| !p.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return check_executable(&explicit, "$REDIS_SERVER");
    }
    let path = path.unwrap_or_default();
    for dir in env::split_paths(&path) {
        let candidate = dir.join("redis-server");
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(StartError::MissingBinary {
        looked_in: format!("`redis-server` on PATH ({})", path.to_string_lossy()),
    })
}

/// Checks a binary named explicitly (by `$REDIS_SERVER` or [`crate::ServerOptions::binary`]).
pub(crate) fn check_executable(path: &Path, origin: &str) -> Result<PathBuf, StartError> {
    if is_executable(path) {
        Ok(path.to_path_buf())
    } else {
        Err(StartError::MissingBinary {
            looked_in: format!(
                "{} ({}), which is not an executable file",
                origin,
                path.display()
            ),
        })
    }
}

/// The major version printed by `redis-server --version` ("Redis server v=7.0.15 ..."),
/// remembered per binary; `None` when it cannot be read.
pub(crate) fn major_version(binary: &Path) -> Option<u32> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<PathBuf, Option<u32>>>> = Mutex::new(None);

    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    *cache
        .entry(binary.to_path_buf())
        .or_insert_with(|| parse_major_version(&version_output(binary)?))
}

/// `binary --version`, given at most 5 s: a broken binary must not hang the tests.
fn version_output(binary: &Path) -> Option<String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    child.stdout.take()?.read_to_string(&mut text).ok()?;
    Some(text)
}

fn parse_major_version(text: &str) -> Option<u32> {
    let version = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))?;
    version.split('.').next()?.parse().ok()
}

pub(crate) fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_to_missing_file_is_an_error_with_the_install_hint() {
        let err = locate(Some("/nonexistent/redis-server".into()), None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("$REDIS_SERVER"), "{text}");
        assert!(text.contains("/nonexistent/redis-server"), "{text}");
        assert!(text.contains("apt-get install -y redis-server"), "{text}");
    }

    #[test]
    fn empty_path_is_an_error_with_the_install_hint() {
        let err = locate(None, Some("/nonexistent-dir".into())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("PATH (/nonexistent-dir)"), "{text}");
        assert!(text.contains("scripts/test.sh"), "{text}");
    }

    #[test]
    fn empty_override_falls_back_to_path() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("redis-server");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = locate(Some("".into()), Some(dir.path().as_os_str().to_owned())).unwrap();
        assert_eq!(found, fake);
    }

    #[test]
    fn parses_the_major_version() {
        let text = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d";
        assert_eq!(parse_major_version(text), Some(7));
        assert_eq!(parse_major_version("Redis server v=6.2.1"), Some(6));
        assert_eq!(parse_major_version("garbage"), None);
    }

    #[test]
    fn non_executable_file_on_path_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis-server"), "").unwrap();
        assert!(locate(None, Some(dir.path().as_os_str().to_owned())).is_err());
    }
}
