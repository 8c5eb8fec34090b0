//! Concept-drift detectors, ported from River 0.26.1 (`river.drift`) so that, fed the same
//! stream with the same parameters, they report drift (and warning) at exactly the same
//! positions as River does.
//!
//! Everything here is pure: no I/O, no async, no clock. A detector is fed one value per
//! [`DriftDetector::update`] and then asked [`DriftDetector::drift_detected`] /
//! [`DriftDetector::warning_detected`].
//!
//! # Shared semantics (River's)
//!
//! * The flags describe the update that has just been made. A flag raised by an update
//!   stays readable until the next update.
//! * After a drift every River detector throws away its whole state, but lazily: the reset
//!   happens at the start of the *next* update, and that update is then applied to the fresh
//!   detector. So the update right after a drift is the first observation of a new warm-up.
//! * Binary detectors (DDM, EDDM, HDDM_A, HDDM_W, FHDDM) expect the error stream
//!   (`1.0` = error, `0.0` = correct). ADWIN, Page-Hinkley and KSWIN also accept real values.
//! * A non-finite value (NaN, ±inf) is not an observation: River would fold it into its
//!   statistics and be stuck with NaN for good. Here such a call only performs a pending
//!   post-drift reset (so a drift is never reported twice) and otherwise changes nothing
//!   (the periodic baseline, which ignores values, still counts the call).
//!
//! # Persistence
//!
//! Every detector (and [`AnyDetector`]) serialises its complete state with serde; a detector
//! restored from `serde_json` continues bit-for-bit where the original stopped. Floats in
//! the state are written as strings holding their shortest exact representation (see
//! `exact_f64`): serde_json's default float parser is not correctly rounded, and JSON has
//! no infinities.

use serde::{Deserialize, Serialize};

mod adwin;
mod ddm;
mod eddm;
mod fhddm;
mod hddm_a;
mod hddm_w;
mod kswin;
mod page_hinkley;
mod periodic;

pub use adwin::Adwin;
pub use ddm::Ddm;
pub use eddm::Eddm;
pub use fhddm::Fhddm;
pub use hddm_a::HddmA;
pub use hddm_w::HddmW;
pub use kswin::Kswin;
pub use page_hinkley::{PageHinkley, PageHinkleyMode};
pub use periodic::Periodic;

/// A streaming concept-drift detector.
pub trait DriftDetector {
    /// Feeds one observation (for binary detectors: `1.0` = error, `0.0` = correct).
    fn update(&mut self, x: f64);
    /// Whether the last update signalled a drift.
    fn drift_detected(&self) -> bool;
    /// Whether the last update signalled a warning (detectors without a warning zone: never).
    fn warning_detected(&self) -> bool {
        false
    }
    /// The detector's current estimate of the monitored quantity (e.g. ADWIN's window mean,
    /// DDM's error rate). See each detector for what exactly it reports.
    fn estimate(&self) -> f64;
}

/// A detector parameter was rejected at construction.
#[derive(Debug, thiserror::Error)]
pub enum DetectorError {
    #[error("{detector}.{param}: {reason}")]
    InvalidParameter {
        detector: &'static str,
        param: &'static str,
        reason: String,
    },
}

/// Returns `Err(InvalidParameter)` unless `ok`.
pub(crate) fn ensure(
    ok: bool,
    detector: &'static str,
    param: &'static str,
    reason: impl FnOnce() -> String,
) -> Result<(), DetectorError> {
    if ok {
        Ok(())
    } else {
        Err(DetectorError::InvalidParameter {
            detector,
            param,
            reason: reason(),
        })
    }
}

/// Checks `lo < v < hi` (and that `v` is a number).
pub(crate) fn ensure_open_unit(
    v: f64,
    detector: &'static str,
    param: &'static str,
) -> Result<(), DetectorError> {
    ensure(v > 0.0 && v < 1.0, detector, param, || {
        format!("must be strictly between 0 and 1, got {v}")
    })
}

/// Checks that `v` is finite.
pub(crate) fn ensure_finite(
    v: f64,
    detector: &'static str,
    param: &'static str,
) -> Result<(), DetectorError> {
    ensure(v.is_finite(), detector, param, || {
        format!("must be a finite number, got {v}")
    })
}

/// River's `stats.Mean` (unit weights): `n += 1; mean += (1 / n) * (x - mean)`, with the same
/// operation order so results agree to the bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Mean {
    #[serde(with = "exact_f64")]
    pub(crate) n: f64,
    #[serde(with = "exact_f64")]
    pub(crate) mean: f64,
}

impl Mean {
    #[inline]
    pub(crate) fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
    }
}

/// River's `stats.Var` (Welford, `ddof = 1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Var {
    pub(crate) mean: Mean,
    #[serde(with = "exact_f64")]
    pub(crate) s: f64,
}

impl Var {
    #[inline]
    pub(crate) fn update(&mut self, x: f64) {
        let mean_old = self.mean.mean;
        self.mean.update(x);
        let mean_new = self.mean.mean;
        self.s += 1.0 * (x - mean_old) * (x - mean_new);
    }

    #[inline]
    pub(crate) fn get(&self) -> f64 {
        if self.mean.n > 1.0 {
            self.s / (self.mean.n - 1.0)
        } else {
            0.0
        }
    }
}

/// `x.powf(y)` through the C library's `pow`, as CPython's `x ** y` does. A literal exponent
/// would let the compiler rewrite `pow(x, 0.5)` as `sqrt(x)` (or `pow(x, 2)` as `x * x`),
/// which can differ from libm's `pow` in the last bit.
#[inline]
pub(crate) fn libm_pow(x: f64, y: f64) -> f64 {
    x.powf(std::hint::black_box(y))
}

/// Exact serde for `f64` state. serde_json's default number parser is not correctly
/// rounded (without its `float_roundtrip` feature a 17-digit value can come back one ulp
/// off), and JSON has no infinities; so state floats are written as strings holding the
/// shortest representation that round-trips (`"0.002"`, `"25.008955770225626"`, `"1e-7"`,
/// `"inf"`, `"-inf"`, `"NaN"`) and parsed back with Rust's correctly rounded parser. Plain
/// JSON numbers are accepted on input too.
pub(crate) mod exact_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:?}"))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum Repr {
        Num(f64),
        Str(String),
    }

    impl Repr {
        pub(crate) fn value<E: serde::de::Error>(self) -> Result<f64, E> {
            match self {
                Repr::Num(v) => Ok(v),
                Repr::Str(s) => s
                    .parse::<f64>()
                    .map_err(|_| E::custom(format!("expected a number, got {s:?}"))),
            }
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Repr::deserialize(d)?.value()
    }
}

/// [`exact_f64`] for a sequence of `f64` (`Vec`, `VecDeque`).
pub(crate) mod exact_f64_seq {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::exact_f64::Repr;

    pub(crate) fn serialize<'a, C, S>(v: &'a C, s: S) -> Result<S::Ok, S::Error>
    where
        &'a C: IntoIterator<Item = &'a f64>,
        S: Serializer,
    {
        let mut seq = s.serialize_seq(None)?;
        for x in v {
            seq.serialize_element(&format_args!("{x:?}").to_string())?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, C, D>(d: D) -> Result<C, D::Error>
    where
        C: FromIterator<f64>,
        D: Deserializer<'de>,
    {
        Vec::<Repr>::deserialize(d)?
            .into_iter()
            .map(Repr::value)
            .collect()
    }
}

/// Which detector to run, with its parameters. Deserialises from e.g.
/// `{"kind": "adwin", "delta": 0.01}`; every omitted parameter takes River's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DetectorConfig {
    /// [`Adwin`].
    Adwin {
        #[serde(default = "defaults::adwin_delta")]
        delta: f64,
        #[serde(default = "defaults::adwin_clock")]
        clock: u32,
        #[serde(default = "defaults::adwin_max_buckets")]
        max_buckets: u32,
        #[serde(default = "defaults::adwin_min_window_length")]
        min_window_length: u32,
        #[serde(default = "defaults::adwin_grace_period")]
        grace_period: u32,
    },
    /// [`Ddm`].
    Ddm {
        #[serde(default = "defaults::warm_start")]
        warm_start: u64,
        #[serde(default = "defaults::ddm_warning_threshold")]
        warning_threshold: f64,
        #[serde(default = "defaults::ddm_drift_threshold")]
        drift_threshold: f64,
    },
    /// [`Eddm`].
    Eddm {
        #[serde(default = "defaults::warm_start")]
        warm_start: u64,
        #[serde(default = "defaults::eddm_alpha")]
        alpha: f64,
        #[serde(default = "defaults::eddm_beta")]
        beta: f64,
    },
    /// [`HddmA`].
    HddmA {
        #[serde(default = "defaults::hddm_drift_confidence")]
        drift_confidence: f64,
        #[serde(default = "defaults::hddm_warning_confidence")]
        warning_confidence: f64,
        #[serde(default)]
        two_sided_test: bool,
    },
    /// [`HddmW`].
    HddmW {
        #[serde(default = "defaults::hddm_drift_confidence")]
        drift_confidence: f64,
        #[serde(default = "defaults::hddm_warning_confidence")]
        warning_confidence: f64,
        #[serde(default = "defaults::hddm_w_lambda_val")]
        lambda_val: f64,
        #[serde(default)]
        two_sided_test: bool,
    },
    /// [`Fhddm`].
    Fhddm {
        #[serde(default = "defaults::fhddm_sliding_window_size")]
        sliding_window_size: u32,
        #[serde(default = "defaults::fhddm_confidence_level")]
        confidence_level: f64,
        #[serde(default)]
        short_window_size: Option<u32>,
    },
    /// [`PageHinkley`].
    PageHinkley {
        #[serde(default = "defaults::ph_min_instances")]
        min_instances: u64,
        #[serde(default = "defaults::ph_delta")]
        delta: f64,
        #[serde(default = "defaults::ph_threshold")]
        threshold: f64,
        #[serde(default = "defaults::ph_alpha")]
        alpha: f64,
        #[serde(default)]
        mode: PageHinkleyMode,
    },
    /// [`Kswin`].
    Kswin {
        #[serde(default = "defaults::kswin_alpha")]
        alpha: f64,
        #[serde(default = "defaults::kswin_window_size")]
        window_size: u32,
        #[serde(default = "defaults::kswin_stat_size")]
        stat_size: u32,
        /// Seed of the sampling RNG; absent: the monitor derives one from the model's name and
        /// the detector's slot ([`DetectorConfig::build_seeded`]), so a restart or a replay
        /// repeats its numbers.
        #[serde(default)]
        seed: Option<u64>,
    },
    /// [`Periodic`]: fires every `period` updates; `0` (the default) never fires.
    Periodic {
        #[serde(default)]
        period: u64,
    },
}

/// River's default parameters (functions, for `#[serde(default = ...)]`).
mod defaults {
    pub(super) fn adwin_delta() -> f64 {
        super::adwin::DEFAULT_DELTA
    }
    pub(super) fn adwin_clock() -> u32 {
        super::adwin::DEFAULT_CLOCK
    }
    pub(super) fn adwin_max_buckets() -> u32 {
        super::adwin::DEFAULT_MAX_BUCKETS
    }
    pub(super) fn adwin_min_window_length() -> u32 {
        super::adwin::DEFAULT_MIN_WINDOW_LENGTH
    }
    pub(super) fn adwin_grace_period() -> u32 {
        super::adwin::DEFAULT_GRACE_PERIOD
    }
    pub(super) fn warm_start() -> u64 {
        30
    }
    pub(super) fn ddm_warning_threshold() -> f64 {
        super::ddm::DEFAULT_WARNING_THRESHOLD
    }
    pub(super) fn ddm_drift_threshold() -> f64 {
        super::ddm::DEFAULT_DRIFT_THRESHOLD
    }
    pub(super) fn eddm_alpha() -> f64 {
        super::eddm::DEFAULT_ALPHA
    }
    pub(super) fn eddm_beta() -> f64 {
        super::eddm::DEFAULT_BETA
    }
    pub(super) fn hddm_drift_confidence() -> f64 {
        0.001
    }
    pub(super) fn hddm_warning_confidence() -> f64 {
        0.005
    }
    pub(super) fn hddm_w_lambda_val() -> f64 {
        super::hddm_w::DEFAULT_LAMBDA
    }
    pub(super) fn fhddm_sliding_window_size() -> u32 {
        super::fhddm::DEFAULT_SLIDING_WINDOW_SIZE
    }
    pub(super) fn fhddm_confidence_level() -> f64 {
        super::fhddm::DEFAULT_CONFIDENCE_LEVEL
    }
    pub(super) fn ph_min_instances() -> u64 {
        super::page_hinkley::DEFAULT_MIN_INSTANCES
    }
    pub(super) fn ph_delta() -> f64 {
        super::page_hinkley::DEFAULT_DELTA
    }
    pub(super) fn ph_threshold() -> f64 {
        super::page_hinkley::DEFAULT_THRESHOLD
    }
    pub(super) fn ph_alpha() -> f64 {
        super::page_hinkley::DEFAULT_ALPHA
    }
    pub(super) fn kswin_alpha() -> f64 {
        super::kswin::DEFAULT_ALPHA
    }
    pub(super) fn kswin_window_size() -> u32 {
        super::kswin::DEFAULT_WINDOW_SIZE
    }
    pub(super) fn kswin_stat_size() -> u32 {
        super::kswin::DEFAULT_STAT_SIZE
    }
}

impl DetectorConfig {
    /// Every detector kind, with River's default parameters (periodic: never fires).
    pub fn all_defaults() -> Vec<DetectorConfig> {
        [
            "adwin",
            "ddm",
            "eddm",
            "hddm_a",
            "hddm_w",
            "fhddm",
            "page_hinkley",
            "kswin",
            "periodic",
        ]
        .iter()
        .map(|k| Self::default_for(k).expect("known kind"))
        .collect()
    }

    /// The configuration of detector `kind` (as returned by [`DetectorConfig::name`]) with
    /// River's default parameters; `None` for an unknown kind.
    pub fn default_for(kind: &str) -> Option<DetectorConfig> {
        serde_json::from_value(serde_json::json!({ "kind": kind })).ok()
    }

    /// Builds the detector with `seed` for a randomised one (KSWIN) whose configuration sets
    /// none; the configured seed wins.
    pub fn build_seeded(&self, seed: u64) -> Result<AnyDetector, DetectorError> {
        match *self {
            DetectorConfig::Kswin {
                alpha,
                window_size,
                stat_size,
                seed: None,
            } => Ok(AnyDetector::Kswin(Kswin::new(
                alpha,
                window_size,
                stat_size,
                Some(seed),
            )?)),
            _ => self.build(),
        }
    }

    /// Builds the detector, validating its parameters (an unseeded KSWIN draws its seed from
    /// the operating system, as River's does).
    pub fn build(&self) -> Result<AnyDetector, DetectorError> {
        Ok(match *self {
            DetectorConfig::Adwin {
                delta,
                clock,
                max_buckets,
                min_window_length,
                grace_period,
            } => AnyDetector::Adwin(Adwin::new(
                delta,
                clock,
                max_buckets,
                min_window_length,
                grace_period,
            )?),
            DetectorConfig::Ddm {
                warm_start,
                warning_threshold,
                drift_threshold,
            } => AnyDetector::Ddm(Ddm::new(warm_start, warning_threshold, drift_threshold)?),
            DetectorConfig::Eddm {
                warm_start,
                alpha,
                beta,
            } => AnyDetector::Eddm(Eddm::new(warm_start, alpha, beta)?),
            DetectorConfig::HddmA {
                drift_confidence,
                warning_confidence,
                two_sided_test,
            } => AnyDetector::HddmA(HddmA::new(
                drift_confidence,
                warning_confidence,
                two_sided_test,
            )?),
            DetectorConfig::HddmW {
                drift_confidence,
                warning_confidence,
                lambda_val,
                two_sided_test,
            } => AnyDetector::HddmW(HddmW::new(
                drift_confidence,
                warning_confidence,
                lambda_val,
                two_sided_test,
            )?),
            DetectorConfig::Fhddm {
                sliding_window_size,
                confidence_level,
                short_window_size,
            } => AnyDetector::Fhddm(Fhddm::new(
                sliding_window_size,
                confidence_level,
                short_window_size,
            )?),
            DetectorConfig::PageHinkley {
                min_instances,
                delta,
                threshold,
                alpha,
                mode,
            } => AnyDetector::PageHinkley(PageHinkley::new(
                min_instances,
                delta,
                threshold,
                alpha,
                mode,
            )?),
            DetectorConfig::Kswin {
                alpha,
                window_size,
                stat_size,
                seed,
            } => AnyDetector::Kswin(Kswin::new(alpha, window_size, stat_size, seed)?),
            DetectorConfig::Periodic { period } => AnyDetector::Periodic(Periodic::new(period)?),
        })
    }

    /// The detector's kind, as spelled in configuration: `"adwin"`, `"ddm"`, `"eddm"`,
    /// `"hddm_a"`, `"hddm_w"`, `"fhddm"`, `"page_hinkley"`, `"kswin"`, `"periodic"`.
    pub fn name(&self) -> &'static str {
        match self {
            DetectorConfig::Adwin { .. } => "adwin",
            DetectorConfig::Ddm { .. } => "ddm",
            DetectorConfig::Eddm { .. } => "eddm",
            DetectorConfig::HddmA { .. } => "hddm_a",
            DetectorConfig::HddmW { .. } => "hddm_w",
            DetectorConfig::Fhddm { .. } => "fhddm",
            DetectorConfig::PageHinkley { .. } => "page_hinkley",
            DetectorConfig::Kswin { .. } => "kswin",
            DetectorConfig::Periodic { .. } => "periodic",
        }
    }

    /// Whether the detector is meaningful on a real-valued stream (ADWIN, Page-Hinkley,
    /// KSWIN, and the value-blind periodic baseline). The others expect a 0/1 error stream.
    pub fn accepts_real_valued(&self) -> bool {
        matches!(
            self,
            DetectorConfig::Adwin { .. }
                | DetectorConfig::PageHinkley { .. }
                | DetectorConfig::Kswin { .. }
                | DetectorConfig::Periodic { .. }
        )
    }
}

/// Any detector, for storage and dispatch; its serde form holds the complete state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AnyDetector {
    Adwin(Adwin),
    Ddm(Ddm),
    Eddm(Eddm),
    HddmA(HddmA),
    HddmW(HddmW),
    Fhddm(Fhddm),
    PageHinkley(PageHinkley),
    Kswin(Kswin),
    Periodic(Periodic),
}

macro_rules! dispatch {
    ($self:expr, $d:ident => $body:expr) => {
        match $self {
            AnyDetector::Adwin($d) => $body,
            AnyDetector::Ddm($d) => $body,
            AnyDetector::Eddm($d) => $body,
            AnyDetector::HddmA($d) => $body,
            AnyDetector::HddmW($d) => $body,
            AnyDetector::Fhddm($d) => $body,
            AnyDetector::PageHinkley($d) => $body,
            AnyDetector::Kswin($d) => $body,
            AnyDetector::Periodic($d) => $body,
        }
    };
}

impl AnyDetector {
    /// The kind, as [`DetectorConfig::name`] spells it.
    pub fn name(&self) -> &'static str {
        match self {
            AnyDetector::Adwin(_) => "adwin",
            AnyDetector::Ddm(_) => "ddm",
            AnyDetector::Eddm(_) => "eddm",
            AnyDetector::HddmA(_) => "hddm_a",
            AnyDetector::HddmW(_) => "hddm_w",
            AnyDetector::Fhddm(_) => "fhddm",
            AnyDetector::PageHinkley(_) => "page_hinkley",
            AnyDetector::Kswin(_) => "kswin",
            AnyDetector::Periodic(_) => "periodic",
        }
    }
}

impl DriftDetector for AnyDetector {
    #[inline]
    fn update(&mut self, x: f64) {
        dispatch!(self, d => d.update(x))
    }
    #[inline]
    fn drift_detected(&self) -> bool {
        dispatch!(self, d => d.drift_detected())
    }
    #[inline]
    fn warning_detected(&self) -> bool {
        dispatch!(self, d => d.warning_detected())
    }
    #[inline]
    fn estimate(&self) -> f64 {
        dispatch!(self, d => d.estimate())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream with two change points, binary or real-valued.
    fn stream(real: bool, n: usize, seed: u64) -> Vec<f64> {
        let mut g = crate::generate::SplitMix64(seed);
        (0..n)
            .map(|i| {
                let phase = (i * 3 / n) as f64; // 0, 1, 2
                let u = g.uniform();
                if real {
                    u + 0.6 * phase
                } else if u < 0.1 + 0.15 * phase {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn run(d: &mut AnyDetector, xs: &[f64], offset: usize, out: &mut Vec<(usize, bool, bool)>) {
        for (i, &x) in xs.iter().enumerate() {
            d.update(x);
            if d.drift_detected() || d.warning_detected() {
                out.push((offset + i, d.drift_detected(), d.warning_detected()));
            }
        }
    }

    fn configs() -> Vec<DetectorConfig> {
        let mut v = DetectorConfig::all_defaults();
        v.push(DetectorConfig::Kswin {
            alpha: 0.005,
            window_size: 100,
            stat_size: 30,
            seed: Some(7),
        });
        v.push(DetectorConfig::Periodic { period: 97 });
        v.push(serde_json::from_str(r#"{"kind":"fhddm","short_window_size":25}"#).unwrap());
        v.push(serde_json::from_str(r#"{"kind":"hddm_a","two_sided_test":true}"#).unwrap());
        v.push(serde_json::from_str(r#"{"kind":"hddm_w","two_sided_test":true}"#).unwrap());
        v.push(serde_json::from_str(r#"{"kind":"page_hinkley","mode":"up"}"#).unwrap());
        v.push(serde_json::from_str(r#"{"kind":"adwin","clock":1}"#).unwrap());
        v
    }

    #[test]
    fn state_round_trips_through_json_mid_stream() {
        for cfg in configs() {
            for real in [false, true] {
                if real && !cfg.accepts_real_valued() {
                    continue;
                }
                let xs = stream(real, 30_000, 99);
                // Clone one build: an unseeded KSWIN draws its seed at construction.
                let proto = cfg.build().unwrap();
                let mut whole = proto.clone();
                let mut expected = Vec::new();
                run(&mut whole, &xs, 0, &mut expected);

                // Stop at several points, including right after a drift (pending reset).
                let mut cuts = vec![1, 50, 4_321, 15_000, 29_999];
                if let Some(&(i, _, _)) = expected.iter().find(|e| e.1) {
                    cuts.push(i + 1);
                }
                for cut in cuts {
                    let mut first = proto.clone();
                    let mut got = Vec::new();
                    run(&mut first, &xs[..cut], 0, &mut got);
                    let json = serde_json::to_string(&first).unwrap();
                    let mut resumed: AnyDetector = serde_json::from_str(&json).unwrap();
                    assert_eq!(
                        serde_json::to_string(&resumed).unwrap(),
                        json,
                        "{}: state changed by a JSON round trip",
                        cfg.name()
                    );
                    assert_eq!(resumed.drift_detected(), first.drift_detected());
                    assert_eq!(resumed.warning_detected(), first.warning_detected());
                    assert_eq!(resumed.estimate().to_bits(), first.estimate().to_bits());
                    run(&mut resumed, &xs[cut..], cut, &mut got);
                    assert_eq!(
                        got,
                        expected,
                        "{} (real={real}): indices differ after resuming at {cut}",
                        cfg.name()
                    );
                    assert_eq!(
                        serde_json::to_string(&resumed).unwrap(),
                        serde_json::to_string(&whole).unwrap()
                    );
                }
            }
        }
    }

    #[test]
    fn config_defaults_names_and_json_shape() {
        let all = DetectorConfig::all_defaults();
        let names: Vec<_> = all.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "adwin",
                "ddm",
                "eddm",
                "hddm_a",
                "hddm_w",
                "fhddm",
                "page_hinkley",
                "kswin",
                "periodic"
            ]
        );
        for c in &all {
            let d = c.build().unwrap();
            assert_eq!(d.name(), c.name());
            // Config round trip.
            let back: DetectorConfig =
                serde_json::from_str(&serde_json::to_string(c).unwrap()).unwrap();
            assert_eq!(&back, c);
        }
        assert_eq!(
            DetectorConfig::default_for("adwin").unwrap(),
            DetectorConfig::Adwin {
                delta: 0.002,
                clock: 32,
                max_buckets: 5,
                min_window_length: 5,
                grace_period: 10
            }
        );
        assert_eq!(
            DetectorConfig::default_for("page_hinkley").unwrap(),
            DetectorConfig::PageHinkley {
                min_instances: 30,
                delta: 0.005,
                threshold: 50.0,
                alpha: 1.0 - 0.0001,
                mode: PageHinkleyMode::Both
            }
        );
        assert!(DetectorConfig::default_for("nope").is_none());
        // Typos are errors, not silently defaulted.
        assert!(serde_json::from_str::<DetectorConfig>(r#"{"kind":"adwin","dleta":0.1}"#).is_err());
        let c: DetectorConfig = serde_json::from_str(r#"{"kind":"periodic","period":5}"#).unwrap();
        assert_eq!(c, DetectorConfig::Periodic { period: 5 });
        assert!(c.accepts_real_valued());
        assert!(!DetectorConfig::default_for("ddm")
            .unwrap()
            .accepts_real_valued());
    }

    #[test]
    fn invalid_parameters_are_rejected_with_a_clear_message() {
        let bad = [
            (r#"{"kind":"adwin","delta":0}"#, "adwin.delta"),
            (r#"{"kind":"adwin","clock":0}"#, "adwin.clock"),
            (r#"{"kind":"adwin","max_buckets":0}"#, "adwin.max_buckets"),
            (
                r#"{"kind":"ddm","warning_threshold":4}"#,
                "ddm.warning_threshold",
            ),
            (r#"{"kind":"eddm","alpha":0.8}"#, "eddm.alpha"),
            (
                r#"{"kind":"hddm_a","drift_confidence":1.5}"#,
                "hddm_a.drift_confidence",
            ),
            (r#"{"kind":"hddm_w","lambda_val":0}"#, "hddm_w.lambda_val"),
            (
                r#"{"kind":"fhddm","sliding_window_size":0}"#,
                "fhddm.sliding_window_size",
            ),
            (
                r#"{"kind":"fhddm","short_window_size":101}"#,
                "fhddm.short_window_size",
            ),
            (
                r#"{"kind":"page_hinkley","alpha":1.5}"#,
                "page_hinkley.alpha",
            ),
            (r#"{"kind":"kswin","stat_size":60}"#, "kswin.stat_size"),
            (r#"{"kind":"kswin","alpha":2}"#, "kswin.alpha"),
        ];
        for (json, prefix) in bad {
            let cfg: DetectorConfig = serde_json::from_str(json).unwrap();
            let err = cfg.build().expect_err(json).to_string();
            assert!(err.starts_with(prefix), "{json}: {err}");
        }
        assert!(serde_json::from_str::<DetectorConfig>(
            r#"{"kind":"page_hinkley","mode":"sideways"}"#
        )
        .is_err());
    }

    #[test]
    fn non_finite_input_is_ignored_but_completes_a_pending_reset() {
        for cfg in configs() {
            if cfg.name() == "periodic" {
                // The periodic baseline counts calls, whatever their value.
                continue;
            }
            let xs = stream(false, 5_000, 3);
            let mut a = cfg.build().unwrap();
            let mut b = a.clone();
            for &x in &xs {
                a.update(x);
                b.update(x);
                let drifted = b.drift_detected();
                b.update(f64::NAN);
                assert!(!b.drift_detected());
                if drifted {
                    // `a` resets on its next finite update: so does `b`, here.
                    continue;
                }
                assert_eq!(
                    serde_json::to_string(&a).unwrap(),
                    serde_json::to_string(&b).unwrap(),
                    "{}",
                    cfg.name()
                );
            }
        }
    }

    #[test]
    fn infinite_sentinels_serialise() {
        let d = DetectorConfig::default_for("hddm_w")
            .unwrap()
            .build()
            .unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert!(
            json.contains("\"inf\"") && json.contains("\"-inf\""),
            "{json}"
        );
        let back: AnyDetector = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}
