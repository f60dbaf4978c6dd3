//! actix-web integration: comes with the framework issue.
