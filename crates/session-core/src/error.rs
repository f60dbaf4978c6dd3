//! The typed errors of store operations.
//!
//! Framework layers map them onto HTTP: [`StoreError::Unavailable`] becomes 503 (the backend is
//! down, the request may succeed later), [`StoreError::TooLarge`] 413 (nothing was stored),
//! [`StoreError::Corrupt`] becomes "no session" plus a warning (the stored data can never be
//! read, so the user starts afresh).

use std::borrow::Cow;

/// The part of a Redis error's text that repeats the command's arguments.
const ECHO: &str = "with args beginning with";

/// `text`, a Redis error's text, with the command arguments Redis repeats in it cut out.
///
/// Redis answers a command it does not know (renamed away by an operator's hardening, such as
/// `EVAL` and `EVALSHA`, or missing from an older server) with `ERR unknown command 'get',
/// with args beginning with: '<key>' ...`: the command's first arguments, so the session key,
/// and with it the session id, and a script's arguments (session data). Every error text that
/// can hold a server's answer goes through this before it reaches an error, a log line or a
/// report. The rest of the line after the arguments goes with them: Redis does not escape
/// them, so where they end cannot be told.
///
/// ```
/// use session_core::without_echoed_arguments;
///
/// let text = "ResponseError: unknown command 'GET', with args beginning with: 'session:abc'";
/// assert_eq!(
///     without_echoed_arguments(text),
///     "ResponseError: unknown command 'GET', with args beginning with: (not shown)"
/// );
/// assert_eq!(without_echoed_arguments("connection refused"), "connection refused");
/// ```
pub fn without_echoed_arguments(text: &str) -> Cow<'_, str> {
    if !text.contains(ECHO) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| match line.find(ECHO) {
            Some(at) => format!("{}{ECHO}: (not shown)", &line[..at]),
            None => line.to_owned(),
        })
        .collect();
    Cow::Owned(lines.join("\n"))
}

/// A store operation failed.
///
/// Messages never contain session ids, passwords or session data.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time. Retrying later may succeed;
    /// no restart is needed once the backend is back.
    #[error("session backend `{backend}` is unavailable{}: {message}", if *.timed_out { " (timed out)" } else { "" })]
    Unavailable {
        /// Which backend, as named in [`BackendHealth::name`](crate::BackendHealth::name).
        backend: String,
        /// True when the failure was a timeout.
        timed_out: bool,
        /// What went wrong, from the client library or the operating system.
        message: String,
    },
    /// A stored session exists but cannot be read (not a hash, value not JSON, bad file).
    /// Treat it as no session.
    #[error("stored session in backend `{backend}` is corrupt: {detail}")]
    Corrupt {
        /// Which backend.
        backend: String,
        /// What is wrong with it (never the data itself).
        detail: String,
    },
    /// The session is larger than `session_redis_max_session_size` allows: nothing was
    /// written. Web layers answer 413 Payload Too Large.
    #[error("session too large: {size} bytes, above the limit of {limit} (session_redis_max_session_size)")]
    TooLarge {
        /// The session's size: the bytes of its keys and of their JSON values.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No new session id could be placed after several tries (every try collided). With
    /// 256-bit ids this means the backend misbehaves.
    #[error("could not create a session: {tries} fresh ids were all reported as taken")]
    IdCollision {
        /// How many ids were tried.
        tries: u32,
    },
    /// The operation needs something this store does not have: a backend that cannot keep
    /// the session index, or no index configured (`session_redis_index_key`); or an index
    /// lookup was given a value that is not JSON text, which no session holds.
    #[error("session backend `{backend}` cannot {operation}")]
    Unsupported {
        /// Which backend.
        backend: String,
        /// What was asked, and what would make it possible.
        operation: String,
    },
}

impl StoreError {
    /// The same error, with the backend named as one part of a composite backend (a pool
    /// member, one of several backends): `{prefix}/{backend}`.
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            StoreError::Unavailable {
                backend,
                timed_out,
                message,
            } => StoreError::Unavailable {
                backend: format!("{prefix}/{backend}"),
                timed_out,
                message,
            },
            StoreError::Corrupt { backend, detail } => StoreError::Corrupt {
                backend: format!("{prefix}/{backend}"),
                detail,
            },
            StoreError::Unsupported { backend, operation } => StoreError::Unsupported {
                backend: format!("{prefix}/{backend}"),
                operation,
            },
            other => other,
        }
    }

    /// True for errors that mean "the backend is down", which a web layer should answer
    /// with 503 Service Unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// True when a write was refused because the session is over the size limit, which a web
    /// layer should answer with 413 Payload Too Large.
    pub fn is_too_large(&self) -> bool {
        matches!(self, StoreError::TooLarge { .. })
    }

    /// True when a stored session could not be read and should count as no session.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}
