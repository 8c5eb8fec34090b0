//! driftd: watches a deployed model's labelled outcomes in PostgreSQL, tracks its accuracy,
//! detects concept drift, and updates the model when it should.
//!
//! Modules follow the data: `outcomes` (source) → `monitor` + `detect` (pure) →
//! `policy` (when to update) → `train` (blocking thread) → `registry` → `exporter`.
//! The core's own types (watermarks, outcomes and the row rules, tasks, strategies, datasets)
//! live in `domain`, which does no I/O and imports nothing of the crate.
//! See `ARCHITECTURE.md`.

pub mod api_error;
pub mod auth;
pub mod backtest;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod db;
pub mod demo;
pub mod detect;
pub mod domain;
pub mod estimate;
pub mod exporter;
pub mod feature_drift;
pub mod generate;
pub mod monitor;
pub mod outcomes;
pub mod policy;
pub mod progress;
pub mod registry;
pub mod serve;
pub mod shadow;
pub mod span;
pub mod splitmix;
pub mod systemd;
pub mod telemetry;
pub mod train;
