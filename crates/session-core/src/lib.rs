//! Session storage shared by the actix-web and axum integrations.
//!
//! `session-core` owns everything that does not depend on a web framework:
//!
//! * [`SessionConfig`]: every `session_redis_*` option (and the django-redis-sessions
//!   aliases), read from defaults, a `SESSION_CONFIG` file, `SESSION_REDIS_*` environment
//!   variables and a typed builder (see "Configuration" below).
//! * [`plan`]: the configuration checked and turned, once, into what to build
//!   ([`SessionConfig::plan`]).
//! * [`backends`]: one file per storage engine (standalone Redis, Sentinel and Cluster, the
//!   weighted pool, the multi-backend, file store, in-memory), each behind its cargo feature
//!   and the small [`SessionBackend`] trait.
//! * [`SessionStore`]: the cloneable handle both framework crates share. It applies the
//!   [TTL rule](TtlRule), generates ids and hides which backend is in use.
//! * [`mover`]: the one mover of sessions between backends (start-up migration, `sessionctl`).
//! * [`observe`]: a span per store operation, and metrics with the `metrics` feature.
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
//!
//! # Configuration
//!
//! Every `session_redis_*` option, from every source.
//! The option names are those of Odoo's `session_redis` module (`session_redis_host`, ...),
//! plus the django-redis-sessions spellings as aliases (`SESSION_REDIS_SENTINEL_LIST`, ...).
//! Names are case-insensitive. Sources, each overriding the one before:
//!
//! 1. the defaults ([`SessionConfig::default`]);
//! 2. a config file named by `SESSION_CONFIG`: an Odoo-style `.conf` (`[options]` section) or a
//!    `.toml` file with the same flat keys;
//! 3. the environment: `SESSION_REDIS_*` and `SESSION_FILESTORE_PATH`;
//! 4. code: [`SessionConfigBuilder`].
//!
//! ```
//! use session_core::{Mode, SessionConfig};
//!
//! let env = vec![
//!     ("SESSION_REDIS_SENTINEL_LIST".to_string(), "[('10.0.0.1', 26379), ('10.0.0.2', 26379)]".to_string()),
//!     ("SESSION_REDIS_SENTINEL_MASTER_ALIAS".to_string(), "mymaster".to_string()),
//! ];
//! let config = SessionConfig::from_sources(None, env).unwrap();
//! assert_eq!(config.mode, Mode::Sentinel);
//! assert_eq!(config.host.len(), 2);
//! ```
//!
//! Every option of Odoo's module is either honoured or rejected by [`SessionConfig::validate`]
//! with the reason; none is silently ignored. `docs/configuration.md` has the full table.
#![warn(missing_docs)]

mod backend;
pub mod backends;
mod config;
mod error;
mod id;
pub mod index;
mod loaded;
#[cfg(feature = "file")]
pub mod migration;
pub mod mover;
pub mod observe;
pub mod plan;
#[cfg(any(feature = "file", feature = "sentinel"))]
mod running;
mod state;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod ttl;

pub use backend::{
    BackendHealth, IndexMember, Retired, SessionBackend, Version, BATCH_WINDOW, MOVED_MARKER_TTL,
};
pub use config::{
    BackendMode, ConfigError, ConfigErrorKind, HostPort, KeepaliveOptions, Mode,
    MultiBackendConfig, PoolMember, SessionConfig, SessionConfigBuilder, CONFIG_FILE_VAR,
};
pub use error::{without_echoed_arguments, StoreError};
pub use id::{InvalidSessionId, SessionId};
pub use index::IndexName;
pub use loaded::LoadedState;
pub use state::{recycle_state, Changes, EntryList, SessionState, Snapshot};
pub use store::{SessionStore, DELETE_INDEXED_PASSES, HEALTH_REUSE};
pub use ttl::{own_ttl, past_deadline, OwnExpiry, TtlRule, DEADLINE_RANGE, EXPIRY_KEY, MAX_TTL};
