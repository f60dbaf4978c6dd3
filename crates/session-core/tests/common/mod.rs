//! Helpers shared by the integration tests of session-core.
#![allow(dead_code)]

pub mod conformance;
