//! The per-request session handle and the extractor that hands it to handlers.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts, http::HeaderValue};
use serde::{de::DeserializeOwned, Serialize};
use session_core::{Changes, SessionId, SessionState};
use tokio::sync::{Mutex, MutexGuard};

use crate::{
    config::Config,
    cookies::Candidates,
    error::{MissingSessionLayer, SessionError},
};

/// The session of the current request, taken as an axum extractor.
///
/// Cheap to clone (all clones are the same session). Nothing is read until a method is first
/// called; methods that may load are `async`. Values are stored as JSON text.
///
/// ```
/// use axum::{body::Body, http::{header, Request}, routing::post, Router};
/// use session_axum::{Key, Session, SessionError, SessionLayer};
/// use session_core::SessionStore;
/// use tower::ServiceExt;
///
/// async fn login(session: Session) -> Result<&'static str, SessionError> {
///     session.insert("user", "alice").await?;
///     // New id, same data: an id planted before login is worthless afterwards.
///     session.renew().await?;
///     Ok("welcome")
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let layer = SessionLayer::new(SessionStore::memory(), Key::generate());
/// let app: Router = Router::new().route("/login", post(login)).layer(layer);
/// let req = Request::post("/login").body(Body::empty()).unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert!(res.headers()[header::SET_COOKIE].to_str().unwrap().starts_with("id="));
/// # })
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the id nor the data may reach logs.
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

struct Inner {
    config: Arc<Config>,
    /// Values of the request's cookies of our name, still sealed (bounded in number).
    sealed: Candidates,
    data: Mutex<Data>,
}

#[derive(Default)]
struct Data {
    /// True once the cookie has been opened (id known or known absent).
    opened: bool,
    /// True once the stored state has been read into `state`.
    loaded: bool,
    /// The id of the stored session this request works on; `None` for a new session.
    id: Option<SessionId>,
    /// The session's state as this request sees it.
    state: SessionState,
    /// The state as the store holds it under `id` (what the load returned): `save` writes only
    /// the keys that differ from it, with [`Changes::between`], as the actix adapter does.
    stored: SessionState,
    /// A stored session to delete after the handler (renew, purge).
    delete: Option<SessionId>,
    /// The request's cookie must go: purge, or a renew that left nothing to store.
    expire_cookie: bool,
    /// The load reset the TTL (sliding expiry), so a persistent cookie is re-sent.
    touched: bool,
}

impl Session {
    pub(crate) fn new(config: Arc<Config>, sealed: Candidates) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                sealed,
                data: Mutex::new(Data::default()),
            }),
        }
    }

    /// Opens the cookie (no store call) and returns the locked data.
    async fn opened(&self) -> MutexGuard<'_, Data> {
        let mut data = self.inner.data.lock().await;
        if !data.opened {
            data.id = self.inner.config.cookie.open(&self.inner.sealed);
            data.opened = true;
        }
        data
    }

    /// Opens the cookie and loads the stored state (one store call, the first time only).
    async fn loaded(&self) -> Result<MutexGuard<'_, Data>, SessionError> {
        let mut data = self.opened().await;
        if data.loaded {
            return Ok(data);
        }
        if let Some(id) = data.id.clone() {
            let config = &self.inner.config;
            let result = if config.sliding {
                config.store.load_and_touch(&id, config.ttl).await
            } else {
                config.store.load(&id).await
            };
            match result {
                Ok(Some(state)) => {
                    data.stored = state.clone();
                    data.state = state;
                    data.touched = config.sliding;
                }
                Ok(None) => {
                    tracing::debug!("session cookie names a session that no longer exists; starting a fresh session");
                    data.id = None;
                }
                Err(err) if err.is_corrupt() => {
                    tracing::warn!(error = %err, "stored session is corrupt; starting a fresh session");
                    data.id = None;
                }
                // Not marked loaded: a later call may succeed once the store is back.
                Err(err) => return Err(SessionError::from_store(err)),
            }
        }
        data.loaded = true;
        Ok(data)
    }

    /// The value stored under `key`, or `None` when there is none.
    ///
    /// Fails with [`SessionError::Deserialize`] when the stored JSON does not fit `T`, and with
    /// [`SessionError::Unavailable`] when the store cannot be reached.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let data = self.loaded().await?;
        data.state
            .get(key)
            .map(|json| decode(key, json))
            .transpose()
    }

    /// Stores `value` under `key`. Nothing is written when the value is unchanged.
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        let json = serde_json::to_string(value).map_err(|_| SessionError::Serialize {
            key: key.to_owned(),
            type_name: std::any::type_name::<T>(),
        })?;
        let mut data = self.loaded().await?;
        data.state.insert(key.to_owned(), json);
        Ok(())
    }

    /// Removes `key` and returns the value it held.
    ///
    /// When the stored value does not fit `T` the key is kept and
    /// [`SessionError::Deserialize`] is returned; `remove::<serde_json::Value>` removes any value.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut data = self.loaded().await?;
        let Some(json) = data.state.get(key) else {
            return Ok(None);
        };
        let value = decode(key, json)?;
        data.state.remove(key);
        Ok(Some(value))
    }

    /// Removes every key. The stored session goes away with its last key, and the cookie with it.
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut data = self.loaded().await?;
        data.state.clear();
        Ok(())
    }

    /// Moves the session to a new id, keeping its data: call it when privileges change (login)
    /// so an id an attacker planted beforehand is worthless (session fixation).
    ///
    /// After the handler the old session is deleted and the full state is created under the new
    /// id: with a purge followed by new data, the only cases where the layer makes two store
    /// calls.
    pub async fn renew(&self) -> Result<(), SessionError> {
        let mut data = self.loaded().await?;
        if let Some(old) = data.id.take() {
            data.delete = Some(old);
            data.expire_cookie = true;
        }
        // The full state goes to `create` under the new id, where nothing is stored yet.
        data.stored.clear();
        Ok(())
    }

    /// Deletes the session from the store and expires the cookie (logout).
    ///
    /// Needs no load: the id comes from the cookie. Values inserted afterwards start a new
    /// session under a new id.
    pub async fn purge(&self) -> Result<(), SessionError> {
        let mut data = self.opened().await;
        if let Some(old) = data.id.take() {
            data.delete = Some(old);
        }
        if !self.inner.sealed.is_empty() {
            data.expire_cookie = true;
        }
        data.state.clear();
        data.stored.clear();
        data.loaded = true;
        data.touched = false;
        Ok(())
    }

    /// Writes what the handler did: at most one store write (two for a renew). Returns the
    /// `Set-Cookie` value to send, if any.
    pub(crate) async fn save(&self) -> Result<Option<HeaderValue>, SessionError> {
        let mut data = self.inner.data.lock().await;
        if !data.opened {
            return Ok(None);
        }
        let config = &self.inner.config;
        let store = &config.store;
        if let Some(old) = data.delete.take() {
            // A renew writes the state under a new id: check its size before the old id goes,
            // or a refused write would log the user out.
            if !data.state.is_empty() {
                store
                    .check_size(&data.state)
                    .map_err(SessionError::from_store)?;
            }
            store.delete(&old).await.map_err(SessionError::from_store)?;
        }
        let cookie = &config.cookie;
        match data.id.clone() {
            None if !data.state.is_empty() => {
                let id = store
                    .create(&data.state, config.ttl)
                    .await
                    .map_err(SessionError::from_store)?;
                Ok(cookie.seal(&id))
            }
            None if data.expire_cookie => Ok(cookie.removal()),
            None => Ok(None),
            Some(id) => {
                let changes = Changes::between(&data.stored, &data.state);
                if changes.is_empty() {
                    return Ok(if data.touched && cookie.max_age.is_some() {
                        cookie.seal(&id)
                    } else {
                        None
                    });
                }
                // The store sees only the changes; the size limit is about the whole session.
                store
                    .check_size(&data.state)
                    .map_err(SessionError::from_store)?;
                if !store
                    .apply(&id, &changes, config.ttl)
                    .await
                    .map_err(SessionError::from_store)?
                {
                    // Deleted meanwhile (a logout elsewhere) or expired: bringing it back would
                    // undo that logout, so the changes are dropped.
                    tracing::debug!("session vanished before its changes were saved (logged out or expired); changes dropped");
                    return Ok(cookie.removal());
                }
                if data.state.is_empty() {
                    // The store deletes a session left without keys.
                    Ok(cookie.removal())
                } else if cookie.max_age.is_some() {
                    Ok(cookie.seal(&id))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, SessionError> {
    serde_json::from_str(json).map_err(|_| SessionError::Deserialize {
        key: key.to_owned(),
        expected: std::any::type_name::<T>(),
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}
