//! Shared helpers for the demo servers and end-to-end tests.
