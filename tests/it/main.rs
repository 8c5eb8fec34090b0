//! driftd's integration tests: one binary, real PostgreSQL, the real daemon.

mod helpers;
mod monitor;
