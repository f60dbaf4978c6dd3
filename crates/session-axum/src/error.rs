//! Errors of session operations and how they become HTTP responses.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use session_core::StoreError;

/// A session operation failed.
///
/// Handlers return it with `?`; as an [`IntoResponse`] it answers:
///
/// | variant | status |
/// |---|---|
/// | [`Unavailable`](Self::Unavailable) | 503 Service Unavailable |
/// | [`TooLarge`](Self::TooLarge) | 413 Payload Too Large (nothing was stored) |
/// | every other | 500 Internal Server Error |
///
/// The body is a short fixed text; the details (which never contain session ids or session
/// data) go to the log.
///
/// ```
/// use axum::{http::StatusCode, response::IntoResponse};
/// use session_axum::SessionError;
///
/// let err = SessionError::Serialize { key: "n".into(), type_name: "MyType" };
/// assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// assert_eq!(err.to_string(), "could not serialize the value for session key `n` (type `MyType`) as JSON");
/// assert_eq!(err.into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session store could not be reached. Retrying later may succeed.
    #[error(transparent)]
    Unavailable(StoreError),
    /// The session would be larger than `session_redis_max_session_size`: nothing was stored.
    #[error(transparent)]
    TooLarge(StoreError),
    /// The session store failed in another way (for example it reported every fresh id as taken).
    #[error(transparent)]
    Store(StoreError),
    /// A value could not be serialized as JSON.
    ///
    /// The serde message is not kept: it may quote session data.
    #[error("could not serialize the value for session key `{key}` (type `{type_name}`) as JSON")]
    Serialize {
        /// The session key being written.
        key: String,
        /// The Rust type of the value.
        type_name: &'static str,
    },
    /// A stored value is valid JSON but does not fit the type asked for.
    ///
    /// The serde message is not kept: it may quote session data. To drop such a value whatever
    /// it holds, call `session.remove::<serde_json::Value>(key)`.
    #[error("the value of session key `{key}` is not a valid `{expected}`")]
    Deserialize {
        /// The session key being read.
        key: String,
        /// The Rust type that was expected.
        expected: &'static str,
    },
    /// A renew ([`Session::renew`](crate::Session::renew)) found its session gone when it
    /// came to delete the old id: a logout, a revoke or expiry since this request's load, or
    /// another renew of the same session (a login sent twice) that got there first. Nothing
    /// was stored and no cookie is set, so the browser keeps what it has (the winning
    /// renew's cookie, or none after a logout). Answered 409 Conflict, as `session-actix`'s
    /// `request_scope` and `TowerScopeLayer` answer the same case.
    #[error("the session was deleted or renewed by another request during this renew: nothing was stored")]
    Conflict,
    /// The key is the layer's own ([`EXPIRY_KEY`](crate::EXPIRY_KEY), where a session's
    /// [`Expiry`](crate::Expiry) is kept): set it with `Session::set_expiry`.
    #[error("session key `{key}` is reserved by the session layer")]
    ReservedKey {
        /// The key.
        key: String,
    },
}

impl SessionError {
    /// Sorts a store error: unavailable backends become [`SessionError::Unavailable`].
    pub(crate) fn from_store(err: StoreError) -> Self {
        if err.is_unavailable() {
            Self::Unavailable(err)
        } else if err.is_too_large() {
            Self::TooLarge(err)
        } else {
            Self::Store(err)
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short body text sent to the client.
    pub(crate) fn public_message(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "session store unavailable, please retry later",
            Self::TooLarge(_) => "session too large: nothing was stored",
            Self::Conflict => "the session changed in another request at the same time (a logout, or the same login sent twice): nothing was stored",
            _ => "session error",
        }
    }

    /// Logs the details that the response body leaves out.
    pub(crate) fn log(&self) {
        match self {
            Self::Unavailable(_) => tracing::warn!(error = %self, "session store unavailable"),
            // The client's doing, not a fault of the service: no error-level line per request.
            Self::TooLarge(_) => tracing::info!(error = %self, "session write refused"),
            // A race the store settled as it must (a logout sticks): not a fault either.
            Self::Conflict => tracing::info!(error = %self, "session renew not stored"),
            _ => tracing::error!(error = %self, "session error"),
        }
    }
}

impl SessionError {
    /// The answer to this error, for any body type: its status and short text, no
    /// `Set-Cookie` (a failed write or logout must not touch the cookie of a session still
    /// stored). What [`SessionLayer`](crate::SessionLayer) answers for a failed save, and
    /// `TowerScopeLayer` (cargo feature `tower-sessions`) for the store failures it notes.
    /// Not logged here: callers log where the error is theirs.
    pub(crate) fn answer<B: From<&'static str>>(&self) -> axum::http::Response<B> {
        let mut res = axum::http::Response::new(B::from(self.public_message()));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        self.log();
        (self.status(), self.public_message()).into_response()
    }
}

/// The rejection of the [`Session`](crate::Session) extractor when no
/// [`SessionLayer`](crate::SessionLayer) wraps the route: a 500 naming the missing layer.
///
/// ```
/// use axum::{body::Body, http::{Request, StatusCode}, routing::get, Router};
/// use session_axum::Session;
/// use tower::ServiceExt;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let app: Router = Router::new().route("/", get(|_s: Session| async { "" }));
/// let res = app.oneshot(Request::new(Body::empty())).await.unwrap();
/// assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// # })
/// ```
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the Session extractor needs session_axum::SessionLayer around this route; add `.layer(SessionLayer::new(store, key))` to the router")]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
