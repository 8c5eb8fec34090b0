//! Every metric driftd exports, in one place. Other modules update them through these fields;
//! only this module and the HTTP handler know the Prometheus format.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::monitor::MonitorState;
use crate::policy::TriggerKind;
use crate::registry::RunStatus;

/// Every `kind` label of `driftd_poll_errors_total` (`StoreError::metric_label`).
pub const POLL_ERROR_KINDS: [&str; 4] = ["database", "registry", "corrupt_state", "conflict"];

/// Every `result` label of `driftd_retrains_total`.
pub const RETRAIN_RESULTS: [&str; 5] = ["promoted", "kept", "failed", "cancelled", "coalesced"];

/// The `result` label of `driftd_retrains_total` for a run that ended in `status` (a run
/// that never ended reads as failed).
pub fn retrain_result(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Promoted => "promoted",
        RunStatus::Kept => "kept",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Coalesced => "coalesced",
        RunStatus::Failed | RunStatus::Requested | RunStatus::Running => "failed",
    }
}

pub struct Metrics {
    registry: Registry,
    pub outcomes_processed: IntCounterVec,
    pub rolling_accuracy: GaugeVec,
    pub rolling_log_loss: GaugeVec,
    pub rolling_brier: GaugeVec,
    pub label_delay: HistogramVec,
    pub poll_duration: Histogram,
    /// By model (empty for daemon-wide work: migrations, ownership) and `kind`.
    pub poll_errors: IntCounterVec,
    pub database_up: Gauge,
    pub watermark_lag: GaugeVec,
    pub rows_rejected: IntCounterVec,
    pub rows_scored: IntCounterVec,
    pub drift_detected: IntCounterVec,
    pub drift_warning: IntGaugeVec,
    pub detector_estimate: GaugeVec,
    pub last_drift_timestamp: GaugeVec,
    pub retrains: IntCounterVec,
    pub training_duration: HistogramVec,
    pub next_scheduled_retrain: GaugeVec,
    pub last_retrain_timestamp: GaugeVec,
    pub champion_version: IntGaugeVec,
    pub model_owner: IntGaugeVec,
    pub replicas: prometheus::IntGauge,
    pub feature_drift: FeatureDriftGauges,
    pub drifted_features_ratio: GaugeVec,
    pub accuracy_floor: GaugeVec,
}

/// One gauge per data-drift statistic (each has its own unit and range), per model and feature.
pub struct FeatureDriftGauges {
    pub psi: GaugeVec,
    pub ks_statistic: GaugeVec,
    pub ks_pvalue: GaugeVec,
    pub js_distance: GaugeVec,
    pub wasserstein_distance: GaugeVec,
}

/// Per model, at most this many features get their own drift series (in the order of the
/// report); the drifted ratio still covers every feature. Bounds the series a wide model adds.
pub const MAX_FEATURE_SERIES: usize = 50;

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let build = reg(
            &r,
            IntGaugeVec::new(
                Opts::new("driftd_build_info", "Build information; always 1."),
                &["version", "revision"],
            )
            .unwrap(),
        );
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("DRIFTD_GIT_REVISION")])
            .set(1);
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process metrics register once");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).unwrap(),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            reg(&r, GaugeVec::new(Opts::new(name, help), labels).unwrap())
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            reg(&r, IntGaugeVec::new(Opts::new(name, help), labels).unwrap())
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            reg(
                &r,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).unwrap(),
            )
        };
        let m = Metrics {
            outcomes_processed: counter(
                "driftd_outcomes_processed_total",
                "Labelled outcomes folded into the monitor state.",
                &["model"],
            ),
            rolling_accuracy: gauge(
                "driftd_rolling_accuracy",
                "Accuracy over a window of rows (\"1000\") or of label time (\"24h\").",
                &["model", "window"],
            ),
            rolling_log_loss: gauge(
                "driftd_rolling_log_loss",
                "Mean log-loss over a window, for probabilistic predictions.",
                &["model", "window"],
            ),
            rolling_brier: gauge(
                "driftd_rolling_brier_score",
                "Mean Brier score over a window, for probabilistic predictions.",
                &["model", "window"],
            ),
            label_delay: histogram(
                "driftd_label_delay_seconds",
                "Time from a prediction being made to its label being written.",
                &["model"],
                prometheus::exponential_buckets(1.0, 4.0, 12).unwrap(),
            ),
            poll_duration: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "driftd_poll_duration_seconds",
                        "Time to read, fold and commit one batch.",
                    )
                    .buckets(prometheus::exponential_buckets(0.001, 2.5, 12).unwrap()),
                )
                .unwrap(),
            ),
            poll_errors: counter(
                "driftd_poll_errors_total",
                "Polls that failed, by model (empty: daemon-wide) and kind of error.",
                &["model", "kind"],
            ),
            database_up: reg(
                &r,
                Gauge::new(
                    "driftd_database_up",
                    "1 when the last database round trip succeeded.",
                )
                .unwrap(),
            ),
            watermark_lag: gauge(
                "driftd_watermark_lag_seconds",
                "Age of the newest consumed label (wall clock minus watermark).",
                &["model"],
            ),
            rows_rejected: counter(
                "driftd_rows_rejected_total",
                "Rows set aside in driftd.rejected_rows, by reason.",
                &["model", "reason"],
            ),
            rows_scored: counter(
                "driftd_rows_scored_total",
                "Rows without a prediction that the champion scored.",
                &["model"],
            ),
            drift_detected: counter(
                "driftd_drift_detected_total",
                "Drifts reported by a detector.",
                &["model", "detector"],
            ),
            drift_warning: int_gauge(
                "driftd_drift_warning",
                "1 while a detector is in its warning zone.",
                &["model", "detector"],
            ),
            detector_estimate: gauge(
                "driftd_detector_estimate",
                "A detector's current estimate (e.g. the error rate it tracks).",
                &["model", "detector"],
            ),
            last_drift_timestamp: gauge(
                "driftd_last_drift_timestamp_seconds",
                "Label time of the row at which drift was last detected.",
                &["model"],
            ),
            retrains: counter(
                "driftd_retrains_total",
                "Model updates, by what triggered them and how they ended.",
                &["model", "trigger", "result"],
            ),
            training_duration: histogram(
                "driftd_training_duration_seconds",
                "Wall time of a training run, by strategy.",
                &["strategy"],
                prometheus::exponential_buckets(0.1, 2.5, 12).unwrap(),
            ),
            next_scheduled_retrain: gauge(
                "driftd_next_scheduled_retrain_timestamp_seconds",
                "When the next scheduled update fires.",
                &["model"],
            ),
            last_retrain_timestamp: gauge(
                "driftd_last_retrain_timestamp_seconds",
                "When the last update finished.",
                &["model"],
            ),
            champion_version: int_gauge(
                "driftd_champion_version",
                "Version number of the serving champion.",
                &["model"],
            ),
            model_owner: int_gauge(
                "driftd_model_owner",
                "1 on the replica that owns the model.",
                &["model"],
            ),
            replicas: reg(
                &r,
                prometheus::IntGauge::new(
                    "driftd_replicas",
                    "Live replicas (fresh heartbeat) that share the models, as this replica sees them.",
                )
                .unwrap(),
            ),
            feature_drift: FeatureDriftGauges {
                psi: gauge(
                    "driftd_feature_psi",
                    "Population stability index of a feature against the champion's training data.",
                    &["model", "feature"],
                ),
                ks_statistic: gauge(
                    "driftd_feature_ks_statistic",
                    "Two-sample Kolmogorov-Smirnov statistic (0-1) of a feature against the champion's training data.",
                    &["model", "feature"],
                ),
                ks_pvalue: gauge(
                    "driftd_feature_ks_pvalue",
                    "p-value of the two-sample Kolmogorov-Smirnov test of a feature.",
                    &["model", "feature"],
                ),
                js_distance: gauge(
                    "driftd_feature_js_distance",
                    "Jensen-Shannon distance (0-1) of a feature against the champion's training data.",
                    &["model", "feature"],
                ),
                wasserstein_distance: gauge(
                    "driftd_feature_wasserstein_distance",
                    "Wasserstein distance of a feature against the champion's training data, in the feature's units.",
                    &["model", "feature"],
                ),
            },
            drifted_features_ratio: gauge(
                "driftd_drifted_features_ratio",
                "Share of a model's features whose drift exceeds its threshold.",
                &["model"],
            ),
            accuracy_floor: gauge(
                "driftd_accuracy_floor",
                "The model's configured accuracy floor (triggers.threshold.min_accuracy).",
                &["model"],
            ),
            registry: r,
        };
        // Daemon-wide errors (migrations, ownership) exist at 0 from the start.
        m.poll_errors.with_label_values(&["", "database"]);
        m
    }

    /// Publishes the gauges that mirror a model's monitor state.
    pub fn publish_monitor(&self, model: &str, state: &MonitorState) {
        for (window, st) in state.window_stats() {
            let labels = [model, window.as_str()];
            if let Some(a) = st.accuracy() {
                self.rolling_accuracy.with_label_values(&labels).set(a);
            }
            if let Some(ll) = st.log_loss() {
                self.rolling_log_loss.with_label_values(&labels).set(ll);
            }
            if let Some(b) = st.brier() {
                self.rolling_brier.with_label_values(&labels).set(b);
            }
        }
        for slot in &state.detectors {
            let labels = [model, slot.label.as_str()];
            self.drift_warning
                .with_label_values(&labels)
                .set(i64::from(slot.warning));
            // Touch the counter so the series exists (at 0) before the first drift.
            self.drift_detected.with_label_values(&labels);
            use crate::detect::DriftDetector;
            let est = slot.detector.estimate();
            if est.is_finite() {
                self.detector_estimate.with_label_values(&labels).set(est);
            }
        }
    }

    /// A poll (or, with `model` empty, daemon-wide database work) failed with an error of
    /// `kind` (the error's `metric_label()`).
    pub fn poll_failed(&self, model: &str, kind: &str) {
        self.poll_errors.with_label_values(&[model, kind]).inc();
    }

    /// A training request was coalesced into the follow-up of a running one.
    pub fn training_coalesced(&self, model: &str, trigger: TriggerKind) {
        self.retrains
            .with_label_values(&[
                model,
                trigger.as_str(),
                retrain_result(RunStatus::Coalesced),
            ])
            .inc();
    }

    /// A training ended in `status` at `at`; `new_champion` is the version it promoted.
    pub fn training_finished(
        &self,
        model: &str,
        trigger: TriggerKind,
        status: RunStatus,
        new_champion: Option<i64>,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.retrains
            .with_label_values(&[model, trigger.as_str(), retrain_result(status)])
            .inc();
        self.last_retrain_timestamp
            .with_label_values(&[model])
            .set(at.timestamp() as f64);
        if let Some(v) = new_champion {
            self.champion_version.with_label_values(&[model]).set(v);
        }
    }

    /// How long a training with `strategy` took.
    pub fn training_took(&self, strategy: crate::train::Strategy, seconds: f64) {
        self.training_duration
            .with_label_values(&[strategy.as_str()])
            .observe(seconds);
    }

    /// Creates a model's counters at 0, so that `increase()` and `changes()` see their first
    /// increment (Prometheus ignores the first sample of a series): called when a model's
    /// loop starts, with its detectors' labels.
    pub fn touch_model_series(&self, model: &str, detectors: &[&str]) {
        self.outcomes_processed.with_label_values(&[model]);
        for kind in POLL_ERROR_KINDS {
            self.poll_errors.with_label_values(&[model, kind]);
        }
        for detector in detectors {
            self.drift_detected.with_label_values(&[model, detector]);
        }
        self.rows_scored.with_label_values(&[model]);
        for reason in crate::outcomes::RejectReason::ALL {
            self.rows_rejected
                .with_label_values(&[model, reason.as_str()]);
        }
        for trigger in TriggerKind::ALL {
            for result in RETRAIN_RESULTS {
                self.retrains
                    .with_label_values(&[model, trigger.as_str(), result]);
            }
        }
    }

    /// Publishes one data-drift check.
    pub fn publish_feature_drift(
        &self,
        model: &str,
        report: &crate::feature_drift::FeatureDriftReport,
    ) {
        let g = &self.feature_drift;
        for f in report.features.iter().take(MAX_FEATURE_SERIES) {
            for (gauge, v) in [
                (&g.psi, f.psi),
                (&g.ks_statistic, f.ks),
                (&g.ks_pvalue, f.ks_pvalue),
                (&g.js_distance, f.js),
                (&g.wasserstein_distance, f.wasserstein),
            ] {
                gauge.with_label_values(&[model, f.feature.as_str()]).set(v);
            }
        }
        self.drifted_features_ratio
            .with_label_values(&[model])
            .set(report.drifted_ratio);
    }

    /// Publishes each model's configured accuracy floor, so one alert rule serves every model.
    pub fn publish_accuracy_floors(&self, models: &[crate::config::ModelConfig]) {
        for m in models {
            if let Some(floor) = m.triggers.threshold.min_accuracy {
                self.accuracy_floor.with_label_values(&[&m.name]).set(floor);
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feature_drift::{FeatureDriftReport, FeatureStat};

    #[test]
    fn one_series_per_statistic_and_at_most_the_cap_of_features() {
        let m = Metrics::new();
        let features = (0..MAX_FEATURE_SERIES + 7)
            .map(|i| FeatureStat {
                feature: format!("f{i}"),
                psi: 0.3,
                ks: 0.2,
                ks_pvalue: 0.01,
                js: 0.1,
                wasserstein: 4.5,
                drifted: i % 2 == 0,
            })
            .collect();
        let report = FeatureDriftReport {
            features,
            drifted_ratio: 0.5,
            n_reference: 100,
            n_recent: 100,
        };
        m.publish_feature_drift("m", &report);
        let text = m.render();
        let series = |name: &str| {
            text.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .count()
        };
        assert_eq!(series("driftd_feature_psi"), MAX_FEATURE_SERIES);
        assert_eq!(
            series("driftd_feature_wasserstein_distance"),
            MAX_FEATURE_SERIES
        );
        assert!(
            text.contains("driftd_feature_wasserstein_distance{feature=\"f0\",model=\"m\"} 4.5")
        );
        assert!(
            !text.contains("statistic="),
            "no unit-mixing statistic label"
        );
        assert!(text.contains("driftd_drifted_features_ratio{model=\"m\"} 0.5"));
        // Build and process metrics are there from the start.
        assert!(text.contains("driftd_build_info{revision=\""), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }

    #[test]
    fn the_configured_floor_is_exported_per_model() {
        let toml = "[database]\nurl = \"postgres://x@h/db\"\n\
                    [[models]]\nname = \"a\"\nn_features = 2\n\
                    [models.triggers.threshold]\nmin_accuracy = 0.75\n\
                    [[models]]\nname = \"b\"\nn_features = 2\n";
        let cfg = crate::config::Config::from_toml_str(toml, Vec::new()).unwrap();
        let m = Metrics::new();
        m.publish_accuracy_floors(&cfg.models);
        let text = m.render();
        assert!(
            text.contains("driftd_accuracy_floor{model=\"a\"} 0.75"),
            "{text}"
        );
        assert!(
            !text.contains("driftd_accuracy_floor{model=\"b\"}"),
            "b has no floor"
        );
    }
}
