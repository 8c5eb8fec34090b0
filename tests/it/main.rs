//! driftd's integration tests: one binary, real PostgreSQL, the real daemon.

mod conformance;
mod helpers;
mod monitor;
mod replicas;
mod training;
