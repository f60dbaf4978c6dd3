//! The typed errors of store operations.
//!
//! Framework layers map them onto HTTP: [`StoreError::Unavailable`] becomes 503 (the backend is
//! down, the request may succeed later), [`StoreError::Corrupt`] becomes "no session" plus a
//! warning (the stored data can never be read, so the user starts afresh).

/// A store operation failed.
///
/// Messages never contain session ids, passwords or session data.
#[derive(Debug, thiserror::Error)]
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
    /// No new session id could be placed after several tries (every try collided). With
    /// 256-bit ids this means the backend misbehaves.
    #[error("could not create a session: {tries} fresh ids were all reported as taken")]
    IdCollision {
        /// How many ids were tried.
        tries: u32,
    },
}

impl StoreError {
    /// Maps a Redis client error: a key of the wrong type (`WRONGTYPE`, also inside a script
    /// or a pipeline) is [`StoreError::Corrupt`]; everything else (refused or dropped
    /// connections, timeouts, authentication, server errors such as `OOM` or `LOADING`) is
    /// [`StoreError::Unavailable`].
    ///
    /// redis-rs error texts carry no credentials, keys or values (its authentication errors
    /// say "Password authentication failed"; server replies echo no arguments), so the text is
    /// kept as it is for operators.
    pub(crate) fn from_redis(backend: &str, err: &redis::RedisError) -> Self {
        if is_wrong_type(err) {
            return StoreError::Corrupt {
                backend: backend.to_owned(),
                detail: "the session key holds a Redis value that is not a hash".to_owned(),
            };
        }
        StoreError::Unavailable {
            backend: backend.to_owned(),
            timed_out: err.is_timeout(),
            message: err.to_string(),
        }
    }

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
            other => other,
        }
    }

    /// True for errors that mean "the backend is down", which a web layer should answer
    /// with 503 Service Unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// True when a stored session could not be read and should count as no session.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}

/// True when Redis answered `WRONGTYPE`, directly or as one entry of a pipeline.
fn is_wrong_type(err: &redis::RedisError) -> bool {
    has_server_code(err, "WRONGTYPE")
}

/// True when Redis answered with the error `code` (such as `READONLY`), directly, inside a
/// pipeline, or from inside a script: Redis before 7 wraps a script's errors as
/// `ERR Error running script ...: -READONLY ...`, so the code is also looked for in the text.
pub(crate) fn has_server_code(err: &redis::RedisError, code: &str) -> bool {
    let wrapped = format!("-{code} ");
    let in_text = |detail: Option<&str>| detail.is_some_and(|d| d.contains(&wrapped));
    err.code() == Some(code)
        || in_text(err.detail())
        || err.clone().into_server_errors().is_some_and(|errors| {
            errors
                .iter()
                .any(|(_, e)| e.code() == code || in_text(e.details()))
        })
}
