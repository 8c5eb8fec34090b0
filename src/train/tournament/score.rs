//! *Score*: every candidate on the holdout next to the champion, with the per-row detail
//! the gate and the tie rule need; each candidate's report line.

use std::collections::BTreeMap;

use super::gate::mcnemar_p;
use super::jobs::{collect_jobs, Trained};
use super::plan::Plan;
use super::{Candidate, CandidateReport, Scores};
use crate::config::train::{SelectionMetric, TrainConfig};
use crate::domain::{CandidateSpec, Dataset};
use crate::train::artifact::{predict_on, ModelArtifact};
use crate::train::batched::FitStats;
use crate::train::strategy::{assemble, JobKey};
use crate::train::Result;

/// Clipping of probabilities in the log-loss.
const EPS: f64 = 1e-7;

/// Accuracy and log-loss of `artifact` on `data`.
pub fn score(artifact: &ModelArtifact, data: &Dataset) -> Result<Scores> {
    Ok(score_detail(artifact, data, tch::Device::Cpu)?.scores)
}

/// Holdout scores with the per-row detail the gate and the tie rule need.
pub(super) struct Detail {
    pub(super) scores: Scores,
    pub(super) correct: Vec<bool>,
    pub(super) losses: Vec<f64>,
}

impl Detail {
    /// Standard error of the metric's mean over the holdout rows.
    pub(super) fn standard_error(&self, metric: SelectionMetric) -> f64 {
        let n = self.correct.len().max(1) as f64;
        match metric {
            SelectionMetric::Accuracy => {
                let p = self.scores.accuracy;
                (p * (1.0 - p) / n).sqrt()
            }
            SelectionMetric::LogLoss => {
                let m = self.scores.log_loss;
                let var =
                    self.losses.iter().map(|l| (l - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
                (var / n).sqrt()
            }
        }
    }

    /// McNemar p-value of `self` (the candidate) against `champion` on the same rows.
    pub(super) fn mcnemar_against(&self, champion: &Detail) -> f64 {
        let pairs = || champion.correct.iter().zip(&self.correct);
        let b = pairs().filter(|(h, a)| **h && !**a).count();
        let c = pairs().filter(|(h, a)| !**h && **a).count();
        mcnemar_p(b, c)
    }
}

/// A successfully trained candidate.
pub(super) struct Scored {
    /// Its index in `UpdateOutcome::candidates`.
    pub(super) report: usize,
    pub(super) cand: Candidate,
    pub(super) detail: Option<Detail>,
}

pub(super) fn score_detail(
    artifact: &ModelArtifact,
    data: &Dataset,
    device: tch::Device,
) -> Result<Detail> {
    let p = predict_on(artifact, &data.x, device)?;
    let mut correct = Vec::with_capacity(data.len());
    let mut losses = Vec::with_capacity(data.len());
    for (i, &y) in data.y.iter().enumerate() {
        let cls = y as usize;
        correct.push(p.labels[i] as usize == cls);
        losses.push(-(p.prob(i, cls) as f64).clamp(EPS, 1.0 - EPS).ln());
    }
    let n = data.len().max(1) as f64;
    let acc = correct.iter().filter(|&&c| c).count() as f64 / n;
    let log_loss = losses.iter().sum::<f64>() / n;
    Ok(Detail {
        scores: Scores {
            accuracy: acc,
            log_loss,
            n: data.len(),
        },
        correct,
        losses,
    })
}

/// Score: assembles each candidate from its jobs and scores it on the holdout, in priority
/// order; every candidate gets a report line, the successful ones are returned.
pub(super) fn score_candidates(
    specs: &[CandidateSpec],
    champion: &ModelArtifact,
    trained: &BTreeMap<JobKey, std::result::Result<Trained, String>>,
    plan: &Plan,
    cfg: &TrainConfig,
    champ_detail: Option<&Detail>,
    reports: &mut Vec<CandidateReport>,
) -> Result<Vec<Scored>> {
    let mut scored: Vec<Scored> = Vec::new();
    for &spec in specs {
        let (members, stats, err) = collect_jobs(spec, champion, trained, cfg);
        if let Some(e) = err {
            reports.push(report(spec, None, &stats, None, Some(e)));
            continue;
        }
        let artifact = assemble(spec, champion, &members, cfg)?;
        let detail = if plan.holdout.is_empty() {
            None
        } else {
            Some(score_detail(&artifact, &plan.holdout, plan.device)?)
        };
        let p_value = champ_detail
            .zip(detail.as_ref())
            .map(|(ch, ca)| ca.mcnemar_against(ch));
        let scores = detail.as_ref().map(|d| d.scores);
        reports.push(report(spec, scores, &stats, p_value, None));
        scored.push(Scored {
            report: reports.len() - 1,
            cand: Candidate {
                strategy: spec.strategy,
                recent_rows: spec.recent_rows,
                artifact,
                holdout: scores,
                train_seconds: stats.seconds,
                n_train_rows: stats.n_train_rows,
                calibration: None,
                holdout_trace: None,
            },
            detail,
        });
    }
    Ok(scored)
}

pub(super) fn report(
    spec: CandidateSpec,
    scores: Option<Scores>,
    stats: &FitStats,
    mcnemar_p_value: Option<f64>,
    error: Option<String>,
) -> CandidateReport {
    CandidateReport {
        strategy: spec.strategy,
        recent_rows: spec.recent_rows,
        holdout_accuracy: scores.map(|s| s.accuracy),
        holdout_log_loss: scores.map(|s| s.log_loss),
        train_seconds: stats.seconds,
        n_train_rows: stats.n_train_rows,
        epochs_run: stats.epochs_run,
        steps: stats.steps,
        final_train_loss: if stats.final_loss.is_finite() {
            Some(stats.final_loss)
        } else {
            None
        },
        mcnemar_p_value,
        error,
    }
}
