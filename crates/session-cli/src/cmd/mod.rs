//! One module per command.

pub mod check;
pub mod migrate;
pub mod prune_index;
pub mod reindex;
pub mod revoke;
pub mod show;
pub mod stats;
pub mod transfer;
