//! Every metric driftd exports, in one place, grouped by the subsystem that reports them (as
//! kube-rs's controller-rs does). Other modules report through each subsystem's methods, in
//! their own words; only this module knows the metrics' label names and the Prometheus format.

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
pub const RETRAIN_RESULTS: [&str; 6] = [
    "promoted",
    "kept",
    "failed",
    "cancelled",
    "coalesced",
    "skipped",
];

/// The `result` label of `driftd_retrains_total` for a run that ended in `status` (a run
/// that never ended reads as failed).
pub fn retrain_result(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Promoted => "promoted",
        RunStatus::Kept => "kept",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Coalesced => "coalesced",
        RunStatus::Skipped => "skipped",
        RunStatus::Failed | RunStatus::Requested | RunStatus::Running => "failed",
    }
}

/// Every metric, one struct per subsystem. Each struct's methods say what happened in that
/// subsystem's words (`metrics.monitor.rows_processed(model, n)`); only they know the
/// metrics' label names and their order, so no caller outside this module passes labels.
pub struct Metrics {
    registry: Registry,
    /// Reading labelled rows: each poll, its errors, the rows it set aside, and the database.
    pub ingest: IngestMetrics,
    /// The rolling quality of a model's predictions, and the floor it is held to.
    pub monitor: MonitorMetrics,
    /// Concept drift: the detectors on a model's errors.
    pub detectors: DetectorMetrics,
    /// Data drift: each feature against the champion's training data.
    pub feature_drift: FeatureDriftMetrics,
    /// Model updates: how many, how they ended, how long they took.
    pub training: TrainingMetrics,
    /// When the next scheduled update fires.
    pub schedules: ScheduleMetrics,
    /// Which replica owns each model, the live replicas, and the models this one knows.
    pub ownership: OwnershipMetrics,
    /// The serving champion and the rows it scored.
    pub serving: ServingMetrics,
    /// Accuracy before the labels: the estimate over scored rows, and its gap to the labels.
    pub estimate: EstimateMetrics,
    /// Challengers in shadow against the champion on the same live rows.
    pub shadow: ShadowMetrics,
}

/// The challengers in shadow (`[models.shadow]`).
pub struct ShadowMetrics {
    accuracy: GaugeVec,
}

impl ShadowMetrics {
    fn declare(d: &Declare) -> Self {
        ShadowMetrics {
            accuracy: d.gauge(
                "driftd_shadow_accuracy",
                "Accuracy on the same live rows (each predicted before it was learnt from) of a \
                 challenger in shadow and of the champion (challenger=\"champion\"), over the \
                 newest `window` rows.",
                &["model", "challenger", "window"],
            ),
        }
    }

    /// How `challenger` and the champion stand on the newest `window` rows.
    pub fn publish(
        &self,
        model: &str,
        challenger: &str,
        window: usize,
        standing: &crate::shadow::Standing,
    ) {
        if standing.rows == 0 {
            return;
        }
        let window = window.to_string();
        for (who, accuracy) in [
            (challenger, standing.challenger_accuracy),
            ("champion", standing.champion_accuracy),
        ] {
            self.accuracy
                .with_label_values(&[model, who, window.as_str()])
                .set(accuracy);
        }
    }
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
/// subsystem updates them.
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

// The subsystems' metrics. Their declarations come first, together, as a table of name, help
// and labels (scripts/validators/dashboard_lint.py reads them from this file); what each
// subsystem reports follows in a second `impl` block of its own.

pub struct IngestMetrics {
    label_delay: HistogramVec,
    poll_duration: Histogram,
    /// By model (empty for daemon-wide work: migrations, ownership) and `kind`.
    poll_errors: IntCounterVec,
    database_up: Gauge,
    watermark_lag: GaugeVec,
    rows_rejected: IntCounterVec,
    label_corrections: IntCounterVec,
}

impl IngestMetrics {
    fn declare(d: &Declare) -> Self {
        IngestMetrics {
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
            label_corrections: d.counter(
                "driftd_label_corrections_total",
                "Rows read again because their label (and labeled_at) was rewritten after the monitor counted them; not counted again.",
                &["model"],
            ),
        }
    }
}

pub struct EstimateMetrics {
    estimated_accuracy: GaugeVec,
    estimation_gap: GaugeVec,
    rows_estimated: IntCounterVec,
}

impl EstimateMetrics {
    fn declare(d: &Declare) -> Self {
        EstimateMetrics {
            estimated_accuracy: d.gauge(
                "driftd_estimated_accuracy",
                "Estimated accuracy of the scored rows, labelled or not (calibrated confidence), \
                 over a window of rows (\"1000\") or of scoring time (\"24h\").",
                &["model", "window"],
            ),
            estimation_gap: d.gauge(
                "driftd_estimation_gap",
                "Estimated minus realized accuracy over the newest labelled rows \
                 (estimate.gap_rows); a gap that opens is a sign of concept drift.",
                &["model"],
            ),
            rows_estimated: d.counter(
                "driftd_rows_estimated_total",
                "Scored rows folded into the estimate, once each.",
                &["model"],
            ),
        }
    }
}

pub struct MonitorMetrics {
    outcomes_processed: IntCounterVec,
    unseen_labels: IntCounterVec,
    rolling_accuracy: GaugeVec,
    rolling_log_loss: GaugeVec,
    rolling_brier: GaugeVec,
    accuracy_floor: GaugeVec,
}

impl MonitorMetrics {
    fn declare(d: &Declare) -> Self {
        MonitorMetrics {
            outcomes_processed: d.counter(
                "driftd_outcomes_processed_total",
                "Labelled outcomes folded into the monitor state.",
                &["model"],
            ),
            unseen_labels: d.counter(
                "driftd_unseen_labels_total",
                "Labelled outcomes whose label the serving model has no class for (counted as \
                 its errors; with classes = \"grow\" the next update learns the class).",
                &["model"],
            ),
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
}

pub struct DetectorMetrics {
    drift_detected: IntCounterVec,
    drift_warning: IntGaugeVec,
    detector_estimate: GaugeVec,
    last_drift_timestamp: GaugeVec,
}

impl DetectorMetrics {
    fn declare(d: &Declare) -> Self {
        DetectorMetrics {
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
        }
    }
}

/// One gauge per data-drift statistic (each has its own unit and range), per model and
/// feature, and the share of a model's features that drifted.
pub struct FeatureDriftMetrics {
    psi: GaugeVec,
    ks_statistic: GaugeVec,
    ks_pvalue: GaugeVec,
    js_distance: GaugeVec,
    wasserstein_distance: GaugeVec,
    chi2_pvalue: GaugeVec,
    unseen_share: GaugeVec,
    drifted_features_ratio: GaugeVec,
}

impl FeatureDriftMetrics {
    fn declare(d: &Declare) -> Self {
        FeatureDriftMetrics {
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
            chi2_pvalue: d.gauge(
                "driftd_feature_chi2_pvalue",
                "p-value of Pearson's chi-square test of a categorical feature's category frequencies against the champion's training data.",
                &["model", "feature"],
            ),
            unseen_share: d.gauge(
                "driftd_feature_unseen_category_share",
                "Share of a categorical feature's recent values in no category of the champion's training data.",
                &["model", "feature"],
            ),
            drifted_features_ratio: d.gauge(
                "driftd_drifted_features_ratio",
                "Share of a model's features whose drift exceeds its threshold.",
                &["model"],
            ),
        }
    }
}

pub struct TrainingMetrics {
    retrains: IntCounterVec,
    training_duration: HistogramVec,
    last_retrain_timestamp: GaugeVec,
}

impl TrainingMetrics {
    fn declare(d: &Declare) -> Self {
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
            last_retrain_timestamp: d.gauge(
                "driftd_last_retrain_timestamp_seconds",
                "When the last update finished.",
                &["model"],
            ),
        }
    }
}

pub struct ScheduleMetrics {
    next_scheduled_retrain: GaugeVec,
}

impl ScheduleMetrics {
    fn declare(d: &Declare) -> Self {
        ScheduleMetrics {
            next_scheduled_retrain: d.gauge(
                "driftd_next_scheduled_retrain_timestamp_seconds",
                "When the next scheduled update fires.",
                &["model"],
            ),
        }
    }
}

pub struct ServingMetrics {
    champion_version: IntGaugeVec,
    rows_scored: IntCounterVec,
    unknown_categories: IntCounterVec,
}

impl ServingMetrics {
    fn declare(d: &Declare) -> Self {
        ServingMetrics {
            champion_version: d.int_gauge(
                "driftd_champion_version",
                "Version number of the serving champion.",
                &["model"],
            ),
            rows_scored: d.counter(
                "driftd_rows_scored_total",
                "Rows without a prediction that the champion scored.",
                &["model"],
            ),
            unknown_categories: d.counter(
                "driftd_serve_unknown_categories_total",
                "Categorical values in prediction requests outside the champion's vocabulary (answered as its \"other\" category).",
                &["model", "feature"],
            ),
        }
    }
}

pub struct OwnershipMetrics {
    model_owner: IntGaugeVec,
    replicas: prometheus::IntGauge,
    models_known: IntGaugeVec,
}

impl OwnershipMetrics {
    fn declare(d: &Declare) -> Self {
        OwnershipMetrics {
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
}

// What each subsystem reports.

impl IngestMetrics {
    /// One batch was read, folded and committed in `seconds`.
    pub fn poll_took(&self, seconds: f64) {
        self.poll_duration.observe(seconds);
    }

    /// A poll of `model` failed with an error of `kind` (the error's `metric_label()`).
    pub fn poll_failed(&self, model: &str, kind: &str) {
        self.poll_errors.with_label_values(&[model, kind]).inc();
    }

    /// Daemon-wide database work (migrations, ownership) failed: counted with an empty model.
    pub fn daemon_database_failed(&self) {
        self.poll_failed("", "database");
    }

    /// The newest consumed label of `model` is `seconds` old.
    pub fn set_watermark_lag(&self, model: &str, seconds: f64) {
        self.watermark_lag.with_label_values(&[model]).set(seconds);
    }

    /// `n` rows of `model` were set aside for `reason` (`RejectReason::as_str`).
    pub fn rows_rejected(&self, model: &str, reason: &str, n: u64) {
        self.rows_rejected
            .with_label_values(&[model, reason])
            .inc_by(n);
    }

    /// `n` rows of `model` came back corrected after they were counted.
    pub fn label_corrections(&self, model: &str, n: u64) {
        self.label_corrections.with_label_values(&[model]).inc_by(n);
    }

    /// The seconds from prediction to label of a batch's rows (a negative one counts as 0).
    pub fn label_delays(&self, model: &str, seconds: &[f64]) {
        let hist = self.label_delay.with_label_values(&[model]);
        for d in seconds {
            hist.observe(d.max(0.0));
        }
    }

    /// Only [`super::DatabaseHealth`] sets it, together with `/readyz`'s view.
    pub(super) fn set_database_up(&self, up: bool) {
        self.database_up.set(if up { 1.0 } else { 0.0 });
    }

    fn touch(&self, model: &str) {
        self.label_corrections.with_label_values(&[model]);
        for kind in POLL_ERROR_KINDS {
            self.poll_errors.with_label_values(&[model, kind]);
        }
        for reason in crate::outcomes::RejectReason::ALL {
            self.rows_rejected
                .with_label_values(&[model, reason.as_str()]);
        }
    }
}

impl MonitorMetrics {
    /// `n` labelled outcomes of `model` were folded into its monitor state.
    pub fn rows_processed(&self, model: &str, n: u64) {
        self.outcomes_processed
            .with_label_values(&[model])
            .inc_by(n);
    }

    /// `n` of `model`'s labelled outcomes had a label its champion could not output.
    pub fn unseen_labels(&self, model: &str, n: u64) {
        self.unseen_labels.with_label_values(&[model]).inc_by(n);
    }

    /// Publishes the rolling windows of a model's monitor state.
    pub fn publish(&self, model: &str, state: &MonitorState) {
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
    }

    /// Publishes each model's configured accuracy floor, so one alert rule serves every model.
    pub fn publish_accuracy_floors(&self, models: &[crate::config::ModelConfig]) {
        for m in models {
            if let Some(floor) = m.triggers.threshold.min_accuracy {
                self.accuracy_floor.with_label_values(&[&m.name]).set(floor);
            }
        }
    }

    fn touch(&self, model: &str) {
        self.outcomes_processed.with_label_values(&[model]);
        self.unseen_labels.with_label_values(&[model]);
    }
}

impl EstimateMetrics {
    /// Publishes the estimate's windows after `n` more scored rows of `model` were estimated.
    pub fn publish(&self, model: &str, estimates: &crate::estimate::Estimates, n: u64) {
        for (window, mean, _) in estimates.window_means() {
            if let Some(m) = mean {
                self.estimated_accuracy
                    .with_label_values(&[model, window.as_str()])
                    .set(m);
            }
        }
        self.rows_estimated.with_label_values(&[model]).inc_by(n);
    }

    /// The estimation gap of `model`'s newest labelled rows (`None`: not calibrated yet).
    pub fn set_gap(&self, model: &str, gap: Option<f64>) {
        if let Some(g) = gap {
            self.estimation_gap.with_label_values(&[model]).set(g);
        }
    }
}

impl DetectorMetrics {
    /// Publishes each detector of a model's monitor state: its warning zone and estimate.
    pub fn publish(&self, model: &str, state: &MonitorState) {
        use crate::detect::DriftDetector;
        for slot in &state.detectors {
            let labels = [model, slot.label.as_str()];
            self.drift_warning
                .with_label_values(&labels)
                .set(i64::from(slot.warning));
            // Touch the counter so the series exists (at 0) before the first drift.
            self.drift_detected.with_label_values(&labels);
            let est = slot.detector.estimate();
            if est.is_finite() {
                self.detector_estimate.with_label_values(&labels).set(est);
            }
        }
    }

    /// `detector` of `model` reported a drift at the row labelled at `labeled_at`.
    pub fn drift_detected(
        &self,
        model: &str,
        detector: &str,
        labeled_at: chrono::DateTime<chrono::Utc>,
    ) {
        self.drift_detected
            .with_label_values(&[model, detector])
            .inc();
        self.last_drift_timestamp
            .with_label_values(&[model])
            .set(labeled_at.timestamp() as f64);
    }

    fn touch(&self, model: &str, detectors: &[&str]) {
        for detector in detectors {
            self.drift_detected.with_label_values(&[model, detector]);
        }
    }
}

impl FeatureDriftMetrics {
    /// Publishes one data-drift check of `model`.
    pub fn publish(&self, model: &str, report: &crate::feature_drift::FeatureDriftReport) {
        for f in report.features.iter().take(MAX_FEATURE_SERIES) {
            for (gauge, v) in [
                (&self.psi, f.psi),
                (&self.ks_statistic, f.ks),
                (&self.ks_pvalue, f.ks_pvalue),
                (&self.js_distance, f.js),
                (&self.wasserstein_distance, f.wasserstein),
            ] {
                gauge.with_label_values(&[model, f.feature.as_str()]).set(v);
            }
            // Only categorical features have these.
            for (gauge, v) in [
                (&self.chi2_pvalue, f.chi2_pvalue),
                (&self.unseen_share, f.unseen_share),
            ] {
                if let Some(v) = v {
                    gauge.with_label_values(&[model, f.feature.as_str()]).set(v);
                }
            }
        }
        self.drifted_features_ratio
            .with_label_values(&[model])
            .set(report.drifted_ratio);
    }
}

impl TrainingMetrics {
    /// A training request was coalesced into the follow-up of a running one.
    pub fn coalesced(&self, model: &str, trigger: TriggerKind) {
        self.count(model, trigger, RunStatus::Coalesced);
    }

    /// A training request was dropped: it had nothing to learn from (not a failure).
    pub fn skipped(&self, model: &str, trigger: TriggerKind) {
        self.count(model, trigger, RunStatus::Skipped);
    }

    /// A training of `model` ended in `status` at `at`.
    pub fn finished(
        &self,
        model: &str,
        trigger: TriggerKind,
        status: RunStatus,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.count(model, trigger, status);
        self.last_retrain_timestamp
            .with_label_values(&[model])
            .set(at.timestamp() as f64);
    }

    /// How long a training with `strategy` took.
    pub fn took(&self, strategy: crate::train::Strategy, seconds: f64) {
        self.training_duration
            .with_label_values(&[strategy.as_str()])
            .observe(seconds);
    }

    fn count(&self, model: &str, trigger: TriggerKind, status: RunStatus) {
        self.retrains
            .with_label_values(&[model, trigger.as_str(), retrain_result(status)])
            .inc();
    }

    fn touch(&self, model: &str) {
        for trigger in TriggerKind::ALL {
            for result in RETRAIN_RESULTS {
                self.retrains
                    .with_label_values(&[model, trigger.as_str(), result]);
            }
        }
    }
}

impl ScheduleMetrics {
    /// The next scheduled update of `model` fires at `at`.
    pub fn set_next(&self, model: &str, at: chrono::DateTime<chrono::Utc>) {
        self.next_scheduled_retrain
            .with_label_values(&[model])
            .set(at.timestamp() as f64);
    }
}

impl ServingMetrics {
    /// `n` values of `model`'s categorical `feature` in requests were not in its vocabulary.
    pub fn unknown_categories(&self, model: &str, feature: &str, n: u64) {
        self.unknown_categories
            .with_label_values(&[model, feature])
            .inc_by(n);
    }

    /// `version` is the champion of `model`.
    pub fn set_champion(&self, model: &str, version: i64) {
        self.champion_version
            .with_label_values(&[model])
            .set(version);
    }

    /// The champion of `model` scored `n` rows that had no prediction.
    pub fn rows_scored(&self, model: &str, n: u64) {
        self.rows_scored.with_label_values(&[model]).inc_by(n);
    }

    fn touch(&self, model: &str) {
        self.rows_scored.with_label_values(&[model]);
    }
}

impl OwnershipMetrics {
    /// Whether this replica owns `model` (runs its loop) now.
    pub fn set_owner(&self, model: &str, owned: bool) {
        self.model_owner
            .with_label_values(&[model])
            .set(i64::from(owned));
    }

    /// This replica sees `n` live replicas.
    pub fn set_live_replicas(&self, n: usize) {
        self.replicas.set(n as i64);
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

    fn touch_origins(&self) {
        for origin in ["configured", "template"] {
            self.models_known.with_label_values(&[origin]);
        }
    }
}

impl Metrics {
    /// Every metric, registered on a registry of its own (the render shows them sorted by
    /// name, so the order they are declared in does not matter).
    pub fn new() -> Self {
        let registry = Registry::new();
        register_build_and_process(&registry);
        let d = Declare(&registry);
        let m = Metrics {
            ingest: IngestMetrics::declare(&d),
            monitor: MonitorMetrics::declare(&d),
            detectors: DetectorMetrics::declare(&d),
            feature_drift: FeatureDriftMetrics::declare(&d),
            training: TrainingMetrics::declare(&d),
            schedules: ScheduleMetrics::declare(&d),
            serving: ServingMetrics::declare(&d),
            ownership: OwnershipMetrics::declare(&d),
            estimate: EstimateMetrics::declare(&d),
            shadow: ShadowMetrics::declare(&d),
            registry,
        };
        // Daemon-wide errors (migrations, ownership) and both origins exist at 0 from the start.
        m.ingest.poll_errors.with_label_values(&["", "database"]);
        m.ownership.touch_origins();
        m
    }

    /// Publishes the gauges that mirror a model's monitor state: its windows and detectors.
    pub fn publish_monitor(&self, model: &str, state: &MonitorState) {
        self.monitor.publish(model, state);
        self.detectors.publish(model, state);
    }

    /// Creates a model's counters at 0, so that `increase()` and `changes()` see their first
    /// increment (Prometheus ignores the first sample of a series): called when a model's
    /// loop starts, with its detectors' labels.
    pub fn touch_model_series(&self, model: &str, detectors: &[&str]) {
        self.monitor.touch(model);
        self.ingest.touch(model);
        self.detectors.touch(model, detectors);
        self.serving.touch(model);
        self.training.touch(model);
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
                chi2: None,
                chi2_pvalue: None,
                unseen_share: None,
            })
            .collect();
        let report = FeatureDriftReport {
            features,
            drifted_ratio: 0.5,
            n_reference: 100,
            n_recent: 100,
        };
        m.feature_drift.publish("m", &report);
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
        m.monitor.publish_accuracy_floors(&cfg.models);
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
    /// Every family with sample values, rendered without the process collector's lines
    /// (their values change from one render to the next).
    fn exposition(m: &Metrics) -> String {
        m.render()
            .lines()
            .filter(|l| !l.contains("process_"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// A model config with probabilistic windows and two detectors, and rows that drift.
    fn exercised() -> Metrics {
        let toml = "[database]\nurl = \"postgres://x@h/db\"\n\
                    [[models]]\nname = \"a\"\nn_features = 2\n\
                    [models.triggers.threshold]\nmin_accuracy = 0.75\n";
        let cfg = crate::config::Config::from_toml_str(toml, Vec::new()).unwrap();
        let mc = &cfg.models[0];
        let mut state = crate::monitor::MonitorState::new(mc);
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for i in 0..400i64 {
            let label = u32::from(i % 3 == 0);
            let wrong = i > 200 && i % 2 == 0;
            state.update(&crate::outcomes::Outcome {
                id: i + 1,
                labeled_at: t0 + chrono::Duration::seconds(i),
                features: vec![0.0, 1.0],
                prediction: if (label == 1) != wrong { 0.8 } else { 0.2 },
                label,
                model_version: None,
            });
        }
        let m = Metrics::new();
        m.touch_model_series("a", &["adwin", "ddm"]);
        m.publish_monitor("a", &state);
        m.monitor.publish_accuracy_floors(&cfg.models);
        m.ownership.model_adopted(false);
        m.ownership.model_adopted(true);
        m.ownership.model_adopted(true);
        m.ingest.poll_failed("a", "conflict");
        m.ingest.daemon_database_failed();
        m.training.coalesced("a", TriggerKind::Drift);
        let at = chrono::DateTime::from_timestamp(1_700_000_500, 0).unwrap();
        m.training
            .finished("a", TriggerKind::Manual, RunStatus::Promoted, at);
        m.serving.set_champion("a", 3);
        m.training
            .finished("a", TriggerKind::Schedule, RunStatus::Running, at);
        m.training.took(crate::train::Strategy::Auto, 2.5);
        m.training.took(crate::train::Strategy::RefitNew, 0.05);
        let mut estimates = crate::estimate::Estimates::new(&[1_000], &[("1h".into(), 3_600)]);
        let mut maps = crate::estimate::Calibrations::default();
        maps.set(1, crate::estimate::Calibration::Identity);
        let scored = crate::estimate::ScoredRow {
            id: 1,
            created_at: t0,
            score: 0.9,
            version: Some(1),
        };
        estimates.fold(crate::config::Task::Binary, &maps, &[scored]);
        m.estimate.publish("a", &estimates, 1);
        m.estimate.set_gap("a", Some(-0.01));
        m.feature_drift.publish(
            "a",
            &FeatureDriftReport {
                features: vec![FeatureStat {
                    feature: "f0".into(),
                    psi: 0.3,
                    ks: 0.2,
                    ks_pvalue: 0.01,
                    js: 0.1,
                    wasserstein: 4.5,
                    drifted: true,
                    chi2: Some(12.0),
                    chi2_pvalue: Some(0.002),
                    unseen_share: Some(0.2),
                }],
                drifted_ratio: 0.5,
                n_reference: 100,
                n_recent: 100,
            },
        );
        // What the daemon's loops, ownership and schedules set.
        exercise_rest(&m);
        // The HTTP subsystem declares its metrics on the same registry (exporter/http_metrics.rs).
        let http = super::super::http_metrics::HttpMetrics::register(m.registry());
        http.request_answered("/v1/models/{model}/predict", 200, 0.002);
        m
    }

    /// Every family has the type and label names that scripts/validators/driftd-metrics.txt
    /// (what dashboards and alert rules are checked against) lists, and no other family.
    #[test]
    fn the_exposition_is_the_validators_list() {
        let spec_path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/validators/driftd-metrics.txt"
        );
        let spec = std::fs::read_to_string(spec_path).unwrap();
        let text = exposition(&exercised());
        let mut listed = std::collections::BTreeSet::new();
        for line in spec
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (name, kind) = (cols[0], cols[1]);
            let labels: std::collections::BTreeSet<&str> = match cols[2] {
                "-" => Default::default(),
                l => l.split(',').collect(),
            };
            listed.insert(name.to_string());
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} is not a {kind}:\n{text}"
            );
            let samples: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter(|l| {
                    let family = l.split(['{', ' ']).next().unwrap();
                    family == name
                        || (kind == "histogram"
                            && ["_bucket", "_sum", "_count"]
                                .iter()
                                .any(|s| family.strip_suffix(s) == Some(name)))
                })
                .collect();
            assert!(!samples.is_empty(), "no sample of {name}");
            for sample in samples {
                let got: std::collections::BTreeSet<&str> = sample
                    .split_once('{')
                    .map(|(_, rest)| rest.split_once('}').unwrap().0)
                    .into_iter()
                    .flat_map(|ls| ls.split("\","))
                    .filter_map(|kv| kv.split('=').next())
                    .map(|k| k.trim_start_matches(','))
                    .filter(|k| !k.is_empty() && *k != "le")
                    .collect();
                assert_eq!(got, labels, "{sample}");
            }
        }
        for line in text.lines().filter(|l| l.starts_with("# TYPE driftd_")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(listed.contains(name), "{name} is not in driftd-metrics.txt");
        }
    }

    fn exercise_rest(m: &Metrics) {
        m.ingest.set_watermark_lag("a", 12.5);
        m.serving.set_champion("a", 4);
        m.serving.rows_scored("a", 7);
        m.ownership.set_owner("a", true);
        m.ownership.set_owner("b", false);
        m.ownership.set_live_replicas(3);
        m.ingest.set_database_up(true);
        let next = chrono::DateTime::from_timestamp(1_700_003_600, 0).unwrap();
        m.schedules.set_next("a", next);
        m.ingest.rows_rejected("a", "invalid_label", 2);
        m.ingest.label_corrections("a", 3);
        m.ingest.label_delays("a", &[0.5, 3.0, 700.0]);
        let at = chrono::DateTime::from_timestamp(1_700_000_300, 0).unwrap();
        m.detectors.drift_detected("a", "adwin", at);
        m.monitor.rows_processed("a", 398);
        m.monitor.unseen_labels("a", 2);
        m.serving.unknown_categories("a", "f0", 1);
        m.ingest.poll_took(0.004);
        m.ingest.poll_took(0.2);
        let standing = crate::shadow::Standing {
            rows: 500,
            champion_accuracy: 0.8,
            challenger_accuracy: 0.86,
            p_value: 0.001,
        };
        m.shadow.publish("a", "online", 500, &standing);
    }
}
