//! One module per storage engine, each implementing [`SessionBackend`].

use std::sync::Arc;

use crate::{
    config::{ConfigError, Mode, SessionConfig},
    SessionBackend,
};

pub mod file;
pub mod memory;
pub mod multi;
pub mod pool;
pub mod redis;

/// The backend a configuration describes, without the start-up migration: the multi-backend
/// when `session_redis_multi_backends` is set, else the pool when `session_redis_pool` is set
/// (the two are exclusive), else Redis in its mode, else the file store.
pub fn build(config: &SessionConfig) -> Result<Arc<dyn SessionBackend>, ConfigError> {
    config.validate()?;
    Ok(if !config.multi_backends.is_empty() {
        Arc::new(multi::MultiBackend::from_config(config)?)
    } else if !config.pool.is_empty() {
        Arc::new(pool::PoolBackend::from_config(config)?)
    } else {
        match config.mode {
            Mode::Disabled => Arc::new(file::FileBackend::new(config.filestore_path())?),
            Mode::Redis | Mode::Sentinel | Mode::Cluster => {
                Arc::new(redis::RedisBackend::from_config(config)?)
            }
        }
    })
}
