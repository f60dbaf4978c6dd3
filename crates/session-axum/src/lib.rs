//! axum integration: comes with the framework issue.
