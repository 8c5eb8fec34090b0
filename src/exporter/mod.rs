//! The Prometheus registry and the HTTP surface: `/metrics`, `/healthz`, `/readyz`,
//! `GET/PUT /log-level`, and
//! what every request goes through (limits, errors as JSON, the request metrics).

mod http;
pub mod http_metrics;
mod metrics;

pub use http::{serve, DatabaseHealth, Health, HttpState, RequestLimits};
pub use metrics::Metrics;
