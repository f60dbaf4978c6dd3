//! One module per storage engine, each implementing [`SessionBackend`](crate::SessionBackend).

pub mod file;
pub mod memory;
pub mod redis;
