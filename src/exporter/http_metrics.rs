//! The HTTP subsystem's metrics: requests answered by route and status code, and how long
//! they took. `route` is the route's template (`/v1/models/{model}/predict`), or `unmatched`,
//! so the number of series stays bounded whatever the callers send.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Declares the metrics on `registry` (the one `/metrics` renders).
    pub fn register(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "driftd_http_requests_total",
                "HTTP requests answered, by route template and status code",
            ),
            &["route", "code"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "driftd_http_request_duration_seconds",
                "Time from a request's arrival to its response, by route template",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0, 30.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
        ] {
            registry
                .register(c)
                .expect("metric names are unique and valid");
        }
        HttpMetrics { requests, duration }
    }

    /// A request to `route` was answered with `code` after `seconds`.
    pub fn request_answered(&self, route: &str, code: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, &code.to_string()])
            .inc();
        self.duration.with_label_values(&[route]).observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_code() {
        let r = Registry::new();
        let m = HttpMetrics::register(&r);
        m.request_answered("/v1/models", 200, 0.001);
        m.request_answered("/v1/models", 401, 0.000_1);
        m.request_answered(UNMATCHED, 404, 0.000_1);
        let text = {
            use prometheus::Encoder;
            let mut buf = Vec::new();
            prometheus::TextEncoder::new()
                .encode(&r.gather(), &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert!(
            text.contains(r#"driftd_http_requests_total{code="401",route="/v1/models"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"driftd_http_request_duration_seconds_count{route="/v1/models"} 2"#),
            "{text}"
        );
    }
}
