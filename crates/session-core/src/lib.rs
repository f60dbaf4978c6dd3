//! Session storage shared by the actix-web and axum integrations.
//!
//! `session-core` owns everything that does not depend on a web framework:
//!
//! * [`config`]: every `session_redis_*` option (and the django-redis-sessions aliases),
//!   read from defaults, a `SESSION_CONFIG` file, `SESSION_REDIS_*` environment variables
//!   and a typed builder.
//! * [`backends`]: one file per storage engine (standalone Redis, file store, in-memory),
//!   all behind the small [`SessionBackend`] trait.
//! * [`SessionStore`]: the cloneable handle both framework crates share. It applies the
//!   TTL rule, generates ids and hides which backend is in use.
//!
//! ```
//! use session_core::{SessionState, SessionStore};
//!
//! # tokio_test();
//! # fn tokio_test() { tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = SessionStore::memory();
//! let mut state = SessionState::new();
//! state.insert("user".into(), "\"alice\"".into());
//! let id = store.create(&state, None).await.unwrap();
//! assert_eq!(store.load(&id).await.unwrap(), Some(state));
//! # }) }
//! ```
#![warn(missing_docs)]

mod backend;
pub mod backends;
pub mod config;
mod error;
mod id;
#[cfg(feature = "file")]
pub mod migration;
pub mod observe;
pub mod plan;
mod state;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod ttl;

pub use backend::{BackendHealth, SessionBackend};
pub use config::{ConfigError, SessionConfig};
pub use error::StoreError;
pub use id::{InvalidSessionId, SessionId};
pub use state::{Changes, SessionState};
pub use store::SessionStore;
pub use ttl::{TtlRule, MAX_TTL};
