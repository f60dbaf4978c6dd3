//! Why a command failed, and its exit status.

use session_core::{ConfigError, StoreError};

/// A failed command: the message printed on stderr and the exit status.
#[derive(Debug)]
pub struct Failure {
    /// One or more lines; never a password, a session id or session data.
    pub message: String,
    /// 1: the store or the data; 2: the command line or the configuration; 130: stopped by
    /// Ctrl-C (the shell's number for SIGINT).
    pub status: u8,
}

impl Failure {
    /// Bad input on the command line.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: 2,
        }
    }

    /// An invalid configuration: session-core's message names the key, the value (secrets
    /// redacted) and what is expected.
    pub fn config(err: ConfigError) -> Self {
        Self {
            message: format!("configuration: {err}"),
            status: 2,
        }
    }

    /// A store that failed: the message names the backend and where it is.
    pub fn store(err: StoreError) -> Self {
        // A refusal by the server's ACL is "unavailable" to the library (the operation cannot
        // be served), but the server is up: asking whether it is would mislead.
        let text = err.to_string();
        let hint = if err.is_unavailable() && (text.contains("NoPerm") || text.contains("NOPERM")) {
            " (the server refused the user a command or key: see the ACL the README lists under `session_redis_username`)"
        } else if err.is_unavailable() {
            " (is the server up and reachable from here? `sessionctl check` tests every part)"
        } else {
            ""
        };
        Self {
            message: format!("{text}{hint}"),
            status: 1,
        }
    }

    /// Anything else that went wrong with the data or the servers.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: 1,
        }
    }

    /// stdout could not be written (a pipe whose reader is gone): the command's work is
    /// done, its report is lost.
    pub fn output(err: std::io::Error) -> Self {
        Self::failed(format!(
            "writing the output: {err} (the command itself ran to its end)"
        ))
    }

    /// A command stopped by Ctrl-C before it was done.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: 130,
        }
    }

    /// The same failure, said to be about `what` (a flag, a part of the backend).
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Self::store(err)
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Self::failed(err.to_string())
    }
}
