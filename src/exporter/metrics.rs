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
    models_known: IntGaugeVec,
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

/// Creates metrics and registers each on one registry, so that the declarations below read
/// as a table of name, help and labels, without the `Opts`/`register`/`unwrap` around each.
struct Declare<'r>(&'r Registry);

impl Declare<'_> {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        reg(
            self.0,
            IntCounterVec::new(Opts::new(name, help), labels).unwrap(),
        )
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        reg(
            self.0,
            GaugeVec::new(Opts::new(name, help), labels).unwrap(),
        )
    }

    fn int_gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        reg(
            self.0,
            IntGaugeVec::new(Opts::new(name, help), labels).unwrap(),
        )
    }

    fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Vec<f64>,
    ) -> HistogramVec {
        reg(
            self.0,
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).unwrap(),
        )
    }
}

/// `driftd_build_info` (set to 1 once, for its labels) and the process collector
/// (process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...): no
/// field of `Metrics` updates them.
fn register_build_and_process(r: &Registry) {
    let build = reg(
        r,
        IntGaugeVec::new(
            Opts::new("driftd_build_info", "Build information; always 1."),
            &["version", "revision"],
        )
        .unwrap(),
    );
    build
        .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("DRIFTD_GIT_REVISION")])
        .set(1);
    r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))
    .expect("process metrics register once");
}

// The metrics of each subsystem, declared together. `Metrics` keeps its fields flat (its
// users name them directly); these groups only exist while `Metrics::new` assembles it.

/// Reading labelled rows: each poll, its errors, and the rows it consumed.
struct IngestMetrics {
    outcomes_processed: IntCounterVec,
    label_delay: HistogramVec,
    poll_duration: Histogram,
    poll_errors: IntCounterVec,
    database_up: Gauge,
    watermark_lag: GaugeVec,
    rows_rejected: IntCounterVec,
    rows_scored: IntCounterVec,
}

fn ingest_metrics(d: &Declare) -> IngestMetrics {
    IngestMetrics {
        outcomes_processed: d.counter(
            "driftd_outcomes_processed_total",
            "Labelled outcomes folded into the monitor state.",
            &["model"],
        ),
        label_delay: d.histogram(
            "driftd_label_delay_seconds",
            "Time from a prediction being made to its label being written.",
            &["model"],
            prometheus::exponential_buckets(1.0, 4.0, 12).unwrap(),
        ),
        poll_duration: reg(
            d.0,
            Histogram::with_opts(
                HistogramOpts::new(
                    "driftd_poll_duration_seconds",
                    "Time to read, fold and commit one batch.",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.5, 12).unwrap()),
            )
            .unwrap(),
        ),
        poll_errors: d.counter(
            "driftd_poll_errors_total",
            "Polls that failed, by model (empty: daemon-wide) and kind of error.",
            &["model", "kind"],
        ),
        database_up: reg(
            d.0,
            Gauge::new(
                "driftd_database_up",
                "1 when the last database round trip succeeded.",
            )
            .unwrap(),
        ),
        watermark_lag: d.gauge(
            "driftd_watermark_lag_seconds",
            "Age of the newest consumed label (wall clock minus watermark).",
            &["model"],
        ),
        rows_rejected: d.counter(
            "driftd_rows_rejected_total",
            "Rows set aside in driftd.rejected_rows, by reason.",
            &["model", "reason"],
        ),
        rows_scored: d.counter(
            "driftd_rows_scored_total",
            "Rows without a prediction that the champion scored.",
            &["model"],
        ),
    }
}

/// The monitor's rolling quality of a model's predictions, and the floor it is held to.
struct MonitorMetrics {
    rolling_accuracy: GaugeVec,
    rolling_log_loss: GaugeVec,
    rolling_brier: GaugeVec,
    accuracy_floor: GaugeVec,
}

fn monitor_metrics(d: &Declare) -> MonitorMetrics {
    MonitorMetrics {
        rolling_accuracy: d.gauge(
            "driftd_rolling_accuracy",
            "Accuracy over a window of rows (\"1000\") or of label time (\"24h\").",
            &["model", "window"],
        ),
        rolling_log_loss: d.gauge(
            "driftd_rolling_log_loss",
            "Mean log-loss over a window, for probabilistic predictions.",
            &["model", "window"],
        ),
        rolling_brier: d.gauge(
            "driftd_rolling_brier_score",
            "Mean Brier score over a window, for probabilistic predictions.",
            &["model", "window"],
        ),
        accuracy_floor: d.gauge(
            "driftd_accuracy_floor",
            "The model's configured accuracy floor (triggers.threshold.min_accuracy).",
            &["model"],
        ),
    }
}

/// Concept drift (the detectors on a model's errors) and data drift (its features).
struct DriftMetrics {
    drift_detected: IntCounterVec,
    drift_warning: IntGaugeVec,
    detector_estimate: GaugeVec,
    last_drift_timestamp: GaugeVec,
    feature_drift: FeatureDriftGauges,
    drifted_features_ratio: GaugeVec,
}

fn drift_metrics(d: &Declare) -> DriftMetrics {
    DriftMetrics {
        drift_detected: d.counter(
            "driftd_drift_detected_total",
            "Drifts reported by a detector.",
            &["model", "detector"],
        ),
        drift_warning: d.int_gauge(
            "driftd_drift_warning",
            "1 while a detector is in its warning zone.",
            &["model", "detector"],
        ),
        detector_estimate: d.gauge(
            "driftd_detector_estimate",
            "A detector's current estimate (e.g. the error rate it tracks).",
            &["model", "detector"],
        ),
        last_drift_timestamp: d.gauge(
            "driftd_last_drift_timestamp_seconds",
            "Label time of the row at which drift was last detected.",
            &["model"],
        ),
        feature_drift: feature_drift_gauges(d),
        drifted_features_ratio: d.gauge(
            "driftd_drifted_features_ratio",
            "Share of a model's features whose drift exceeds its threshold.",
            &["model"],
        ),
    }
}

fn feature_drift_gauges(d: &Declare) -> FeatureDriftGauges {
    FeatureDriftGauges {
        psi: d.gauge(
            "driftd_feature_psi",
            "Population stability index of a feature against the champion's training data.",
            &["model", "feature"],
        ),
        ks_statistic: d.gauge(
            "driftd_feature_ks_statistic",
            "Two-sample Kolmogorov-Smirnov statistic (0-1) of a feature against the champion's training data.",
            &["model", "feature"],
        ),
        ks_pvalue: d.gauge(
            "driftd_feature_ks_pvalue",
            "p-value of the two-sample Kolmogorov-Smirnov test of a feature.",
            &["model", "feature"],
        ),
        js_distance: d.gauge(
            "driftd_feature_js_distance",
            "Jensen-Shannon distance (0-1) of a feature against the champion's training data.",
            &["model", "feature"],
        ),
        wasserstein_distance: d.gauge(
            "driftd_feature_wasserstein_distance",
            "Wasserstein distance of a feature against the champion's training data, in the feature's units.",
            &["model", "feature"],
        ),
    }
}

/// Model updates: how many, how they ended, how long they took, when the next is due.
struct TrainingMetrics {
    retrains: IntCounterVec,
    training_duration: HistogramVec,
    next_scheduled_retrain: GaugeVec,
    last_retrain_timestamp: GaugeVec,
}

fn training_metrics(d: &Declare) -> TrainingMetrics {
    TrainingMetrics {
        retrains: d.counter(
            "driftd_retrains_total",
            "Model updates, by what triggered them and how they ended.",
            &["model", "trigger", "result"],
        ),
        training_duration: d.histogram(
            "driftd_training_duration_seconds",
            "Wall time of a training run, by strategy.",
            &["strategy"],
            prometheus::exponential_buckets(0.1, 2.5, 12).unwrap(),
        ),
        next_scheduled_retrain: d.gauge(
            "driftd_next_scheduled_retrain_timestamp_seconds",
            "When the next scheduled update fires.",
            &["model"],
        ),
        last_retrain_timestamp: d.gauge(
            "driftd_last_retrain_timestamp_seconds",
            "When the last update finished.",
            &["model"],
        ),
    }
}

/// The serving champion and which replica owns each model.
struct ServingMetrics {
    champion_version: IntGaugeVec,
    model_owner: IntGaugeVec,
    replicas: prometheus::IntGauge,
    models_known: IntGaugeVec,
}

fn serving_metrics(d: &Declare) -> ServingMetrics {
    ServingMetrics {
        champion_version: d.int_gauge(
            "driftd_champion_version",
            "Version number of the serving champion.",
            &["model"],
        ),
        model_owner: d.int_gauge(
            "driftd_model_owner",
            "1 on the replica that owns the model.",
            &["model"],
        ),
        replicas: reg(
            d.0,
            prometheus::IntGauge::new(
                "driftd_replicas",
                "Live replicas (fresh heartbeat) that share the models, as this replica sees them.",
            )
            .unwrap(),
        ),
        models_known: d.int_gauge(
            "driftd_models",
            "Models this replica knows, by origin: configured ([[models]]) or template (found in the outcomes table).",
            &["origin"],
        ),
    }
}

impl Metrics {
    /// Every metric, registered on a registry of its own (the render shows them sorted by
    /// name, so the order they are declared in does not matter).
    pub fn new() -> Self {
        let registry = Registry::new();
        register_build_and_process(&registry);
        let d = Declare(&registry);
        let ingest = ingest_metrics(&d);
        let monitor = monitor_metrics(&d);
        let drift = drift_metrics(&d);
        let training = training_metrics(&d);
        let serving = serving_metrics(&d);
        let m = Metrics {
            outcomes_processed: ingest.outcomes_processed,
            label_delay: ingest.label_delay,
            poll_duration: ingest.poll_duration,
            poll_errors: ingest.poll_errors,
            database_up: ingest.database_up,
            watermark_lag: ingest.watermark_lag,
            rows_rejected: ingest.rows_rejected,
            rows_scored: ingest.rows_scored,
            rolling_accuracy: monitor.rolling_accuracy,
            rolling_log_loss: monitor.rolling_log_loss,
            rolling_brier: monitor.rolling_brier,
            accuracy_floor: monitor.accuracy_floor,
            drift_detected: drift.drift_detected,
            drift_warning: drift.drift_warning,
            detector_estimate: drift.detector_estimate,
            last_drift_timestamp: drift.last_drift_timestamp,
            feature_drift: drift.feature_drift,
            drifted_features_ratio: drift.drifted_features_ratio,
            retrains: training.retrains,
            training_duration: training.training_duration,
            next_scheduled_retrain: training.next_scheduled_retrain,
            last_retrain_timestamp: training.last_retrain_timestamp,
            champion_version: serving.champion_version,
            model_owner: serving.model_owner,
            replicas: serving.replicas,
            models_known: serving.models_known,
            registry,
        };
        // Daemon-wide errors (migrations, ownership) exist at 0 from the start.
        m.poll_errors.with_label_values(&["", "database"]);
        for origin in ["configured", "template"] {
            m.models_known.with_label_values(&[origin]);
        }
        m
    }

    /// One more model known to this replica; `from_template` when discovery found it.
    pub fn model_adopted(&self, from_template: bool) {
        let origin = if from_template {
            "template"
        } else {
            "configured"
        };
        self.models_known.with_label_values(&[origin]).inc();
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
    /// The registry `/metrics` renders, for subsystems that declare their metrics in a
    /// struct of their own ([`super::http_metrics`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

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
