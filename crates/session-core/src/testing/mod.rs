//! Test support for backends and framework layers, behind the `testing` cargo feature (off by
//! default, so it never ships in an application build).
//!
//! * [`conformance`]: the suite every [`SessionBackend`](crate::SessionBackend) must pass. A
//!   backend in another crate runs it with one line (`conformance::run_all`, or
//!   [`conformance_tests!`](crate::conformance_tests) for one test per check), so "implements
//!   the trait" and "keeps the contract" mean the same thing everywhere.
//! * [`probe::ProbeBackend`]: the one backend double of the test suites. It wraps a real backend
//!   and records calls, fails (unavailable, corrupt) or pauses chosen operations, so framework
//!   tests check their own behaviour (one round trip per request, 503 on an outage, no
//!   resurrection after a concurrent logout) against real storage semantics.
//!
//! Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! session-core = { version = "0.1", features = ["testing"] }
//! ```
//!
//! It needs nothing beyond what the crate always builds (the in-memory backend and tokio's
//! `sync` primitives).

pub mod conformance;
pub mod probe;
