//! Helpers shared by the end-to-end test binaries (each binary uses a different part of them).
#![allow(dead_code)]

pub mod browser;
pub mod checks;
pub mod env_demos;
