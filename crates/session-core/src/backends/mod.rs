//! One module per storage engine, each implementing [`SessionBackend`], each behind its cargo
//! feature: `redis` (standalone Redis and the weighted pool; `sentinel`, `cluster` and `tls`
//! extend it), `file`. The in-memory backend and the multi-backend are always there.

use std::sync::Arc;

use crate::{plan::BackendPlan, ConfigError, SessionBackend};

#[cfg(feature = "file")]
pub mod file;
pub mod memory;
pub mod multi;
#[cfg(feature = "redis")]
pub mod pool;
#[cfg(feature = "redis")]
pub mod redis;

/// The backend a plan describes (without the start-up migration, which
/// [`SessionStore::from_plan`](crate::SessionStore::from_plan) adds). Nothing is connected;
/// the only errors left are a file-store directory that cannot be created and a client the
/// Redis library refuses to make.
pub fn build(plan: &BackendPlan) -> Result<Arc<dyn SessionBackend>, ConfigError> {
    Ok(match plan {
        BackendPlan::Memory => Arc::new(memory::MemoryBackend::new()),
        #[cfg(feature = "file")]
        BackendPlan::File(file) => {
            let files = file::FileBackend::new(file.root.clone())?
                .with_max_session_size(file.max_session_size);
            Arc::new(match &file.index_key {
                Some(key) => files.with_index_key(key),
                None => files,
            })
        }
        #[cfg(not(feature = "file"))]
        BackendPlan::File(_) => {
            return Err(ConfigError::feature_disabled(
                "session_redis_mode",
                "False",
                "file",
            ))
        }
        #[cfg(feature = "redis")]
        BackendPlan::Redis(redis) => Arc::new(redis::RedisBackend::from_plan(redis)?),
        #[cfg(feature = "redis")]
        BackendPlan::Pool(pool) => Arc::new(pool::PoolBackend::from_plan(pool)?),
        BackendPlan::Multi(multi) => Arc::new(multi::MultiBackend::from_plan(multi)?),
    })
}
