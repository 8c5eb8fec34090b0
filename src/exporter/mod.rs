//! The Prometheus registry and the HTTP surface: `/metrics`, `/healthz`, `/readyz`,
//! `GET/PUT /log-level`.

pub mod admin;
mod http;
mod metrics;

pub use http::{serve, DatabaseHealth, Health, HttpState};
pub use metrics::Metrics;
