//! Sessions shared by an actix-web service and an axum service: one cookie, one key, one
//! store. One test binary for the three concerns (fewer links in CI).

#[path = "../common/mod.rs"]
mod common;

mod expiry;
mod races;
mod values;
