//! Redis replies and client errors as [`StoreError`]s: the one place that reads them.

use crate::StoreError;

/// Maps a Redis client error: a key of the wrong type (`WRONGTYPE`, also inside a script
/// or a pipeline) is [`StoreError::Corrupt`]; everything else (refused or dropped
/// connections, timeouts, authentication, server errors such as `OOM` or `LOADING`) is
/// [`StoreError::Unavailable`].
///
/// redis-rs error texts carry no credentials (its authentication errors say "Password
/// authentication failed"), and server replies echo no arguments but those of a command the
/// server does not know, which [`shown`] cuts out; the rest is kept as it is for operators.
pub(super) fn store_error(backend: &str, err: &redis::RedisError) -> StoreError {
    if is_wrong_type(err) {
        return StoreError::Corrupt {
            backend: backend.to_owned(),
            detail: "the session key holds a Redis value that is not a session (neither a string nor a hash)".to_owned(),
        };
    }
    StoreError::Unavailable {
        backend: backend.to_owned(),
        timed_out: err.is_timeout(),
        message: shown(err),
    }
}

/// The text of a Redis client error as errors and log lines may show it: without the
/// arguments a server repeats when it does not know a command (a session key among them;
/// [`without_echoed_arguments`](crate::without_echoed_arguments)).
pub(super) fn shown(err: &redis::RedisError) -> String {
    crate::without_echoed_arguments(&err.to_string()).into_owned()
}

/// True when Redis answered `WRONGTYPE`, directly or as one entry of a pipeline.
pub(super) fn is_wrong_type(err: &redis::RedisError) -> bool {
    has_server_code(err, "WRONGTYPE")
}

/// True when Redis answered with the error `code` (such as `READONLY`), directly, inside a
/// pipeline, or from inside a script: Redis before 7 wraps a script's errors as
/// `ERR Error running script ...: -READONLY ...`, so the code is also looked for in the text.
pub(super) fn has_server_code(err: &redis::RedisError, code: &str) -> bool {
    let wrapped = format!("-{code} ");
    any_reply_error(err, |found, detail| {
        found == Some(code) || detail.is_some_and(|d| d.contains(&wrapped))
    })
}

/// True when `matches(code, detail)` holds for the error itself or for any server error
/// among a pipeline's answers that it carries.
fn any_reply_error(
    err: &redis::RedisError,
    matches: impl Fn(Option<&str>, Option<&str>) -> bool,
) -> bool {
    matches(err.code(), err.detail())
        || err.clone().into_server_errors().is_some_and(|errors| {
            errors
                .iter()
                .any(|(_, e)| matches(Some(e.code()), e.details()))
        })
}

/// True when Redis refused to run `command` itself (lower case): unknown to this server
/// (`ERR unknown command`; a proxy in front of it may say `unsupported command`), or not
/// allowed to this user by its ACL (`NOPERM ... the '<command>' command`), as opposed to
/// refusing the keys it names or its arguments. Directly or as an entry of a pipeline.
pub(super) fn refuses_command(err: &redis::RedisError, command: &str) -> bool {
    any_reply_error(err, |code, detail| {
        let detail = detail.unwrap_or_default().to_ascii_lowercase();
        let named =
            detail.contains(&format!("'{command}'")) || detail.contains(&format!("`{command}`"));
        named
            && (code == Some("NOPERM")
                || (code == Some("ERR")
                    && (detail.contains("unknown command")
                        || detail.contains("unsupported command"))))
    })
}
