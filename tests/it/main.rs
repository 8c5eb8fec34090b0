//! driftd's integration tests: one binary, real PostgreSQL, the real daemon.

mod architecture;
mod backtest;
mod categorical;
mod cli;
mod conformance;
mod corrections;
mod demo;
mod deploy;
mod estimate;
mod fidelity;
mod hardening;
mod helpers;
mod monitor;
mod operator;
mod prometheus_e2e;
mod readme;
mod replicas;
mod serve;
mod templates;
mod training;
