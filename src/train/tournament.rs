//! [`run_update`]: the daemon's entry point, in stages: *plan* (validate, split off the
//! holdout, window the pools), *train* (for `auto`, every candidate together in one batched
//! computation), *score* (everything on the holdout next to the champion), *select* (the
//! one-standard-error rule) and *gate* (promote or keep, a typed [`Decision`]).
//!
//! Holdout: the newest `holdout_fraction` of the new rows by timestamp (at least one row when
//! there are two or more new rows). It is never trained on, except by the bootstrap fit
//! (no champion), which uses every row and reports in-sample holdout scores.
//!
//! Candidates of `auto` ([`TrainConfig::auto_candidates`]): the `candidates` strategies, then
//! a fresh fit on only the newest N rows per `window_candidates` entry (the holdout chooses
//! the window), then the incremental candidate (`incremental_rows`: a few passes from the
//! champion over the newest rows). Every job is bounded by `sample_budget`.
//!
//! Promotion: `auto` ranks the successful candidates by `selection_metric` (ties: the other
//! metric, then priority order). The gate: the best candidate must beat the
//! champion by more than `min_improvement` (0: strictly better under that ranking) and, with
//! `mcnemar_alpha`, McNemar's test on the paired holdout predictions must reject "equally
//! accurate" with the candidate ahead. If it passes, the promoted model is chosen by the
//! one-standard-error rule: the first candidate in priority order whose
//! holdout metric is within `selection_tolerance_se` standard errors of the best one's —
//! a small holdout (50 rows at the defaults) cannot tell candidates a few rows apart, and
//! the priority order (all data first; ensemble with the champion, refit, fine-tune; shorter
//! windows last) is the better bet then. Ensembles keep the champion's members, so while the
//! champion's holdout accuracy is below the best candidate's (drift) they are not preferred
//! on a tie. A fixed strategy's model is promoted whenever it trains, unless
//! `gate_fixed_strategies`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::artifact::{predict_on, Member, ModelArtifact};
use super::batched::{
    budget_steps, prepare_job, train_jobs, EngineOpts, FitStats, Job, JobOutcome, JobSpec,
};
use super::config::{CandidateSpec, SelectionMetric, Strategy, TrainConfig};
use super::dataset::Dataset;
use super::decision::{Comparison, Decision, KeepReason, Promotion};
use super::mlp::Arch;
use super::strategy::{assemble, job_arch, jobs_for, pools, JobKey, Pools, Rows};
use super::{Result, TrainError};

/// Clipping of probabilities in the log-loss.
const EPS: f64 = 1e-7;

/// What the daemon asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    /// Seeds initialisation, shuffling and replay sampling.
    pub seed: u64,
    /// Overrides `TrainConfig::strategy`.
    pub strategy: Option<Strategy>,
    /// Classes of the model (the model's config); used for the first model, and checked
    /// against the champion's otherwise. Default 2.
    pub n_classes: usize,
}

impl Default for UpdateRequest {
    fn default() -> Self {
        UpdateRequest {
            seed: 0,
            strategy: None,
            n_classes: 2,
        }
    }
}

impl UpdateRequest {
    pub fn new(seed: u64, strategy: Option<Strategy>) -> Self {
        UpdateRequest {
            seed,
            strategy,
            ..Default::default()
        }
    }
}

/// Holdout scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean negative log-likelihood of the true class, probabilities clipped to [1e-7, 1-1e-7].
    pub log_loss: f64,
    pub n: usize,
}

/// A trained model ready to be registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub strategy: Strategy,
    /// Trained on only the newest this many rows (window and incremental candidates).
    pub recent_rows: Option<usize>,
    pub artifact: ModelArtifact,
    /// `None` when there was no holdout.
    pub holdout: Option<Scores>,
    pub train_seconds: f64,
    pub n_train_rows: usize,
}

impl Candidate {
    pub fn spec(&self) -> CandidateSpec {
        CandidateSpec {
            strategy: self.strategy,
            recent_rows: self.recent_rows,
        }
    }
}

/// One candidate's line in the outcome, successful or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub strategy: Strategy,
    /// Trained on only the newest this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_rows: Option<usize>,
    pub holdout_accuracy: Option<f64>,
    pub holdout_log_loss: Option<f64>,
    /// Wall time of the training run(s) that produced it; candidates trained in one batched
    /// run share that run's time.
    pub train_seconds: f64,
    pub n_train_rows: usize,
    pub epochs_run: usize,
    /// Optimiser steps of its longest job.
    #[serde(default)]
    pub steps: usize,
    pub final_train_loss: Option<f64>,
    /// McNemar p-value against the champion (when a champion and a holdout exist).
    pub mcnemar_p_value: Option<f64>,
    /// Why it produced no model (diverged, ...).
    pub error: Option<String>,
}

/// Result of [`run_update`].
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The strategy that ran (request override or config).
    pub strategy: Strategy,
    /// No champion: the first model was fit on every row.
    pub bootstrap: bool,
    /// The selected model (the best `auto` candidate, or the fixed strategy's model), even
    /// when it is not promoted; `None` for `none` or when nothing trained.
    pub chosen: Option<Candidate>,
    /// What the gate decided.
    pub decision: Decision,
    /// `decision.promotes()`: whether `chosen` should replace the champion.
    pub promoted: bool,
    /// The champion's holdout scores (`None` without champion or holdout).
    pub champion_holdout: Option<Scores>,
    pub candidates: Vec<CandidateReport>,
    pub n_holdout: usize,
    /// Rows in the (windowed) old and new training pools.
    pub n_old_rows: usize,
    pub n_new_train_rows: usize,
    /// Optimiser steps of all jobs together (the update's training cost).
    pub steps: usize,
    pub total_seconds: f64,
    /// `decision.to_string()`.
    pub reason: String,
}

impl UpdateOutcome {
    fn decide(&mut self, decision: Decision, start: Instant) {
        self.promoted = decision.promotes();
        self.reason = decision.to_string();
        self.decision = decision;
        self.total_seconds = start.elapsed().as_secs_f64();
    }
}

/// Accuracy and log-loss of `artifact` on `data`.
pub fn score(artifact: &ModelArtifact, data: &Dataset) -> Result<Scores> {
    Ok(score_detail(artifact, data, tch::Device::Cpu)?.scores)
}

/// Holdout scores with the per-row detail the gate and the tie rule need.
struct Detail {
    scores: Scores,
    correct: Vec<bool>,
    losses: Vec<f64>,
}

impl Detail {
    /// Standard error of the metric's mean over the holdout rows.
    fn standard_error(&self, metric: SelectionMetric) -> f64 {
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
    fn mcnemar_against(&self, champion: &Detail) -> f64 {
        let pairs = || champion.correct.iter().zip(&self.correct);
        let b = pairs().filter(|(h, a)| **h && !**a).count();
        let c = pairs().filter(|(h, a)| !**h && **a).count();
        mcnemar_p(b, c)
    }
}

/// A successfully trained candidate.
struct Scored {
    /// Its index in `UpdateOutcome::candidates`.
    report: usize,
    cand: Candidate,
    detail: Option<Detail>,
}

fn score_detail(artifact: &ModelArtifact, data: &Dataset, device: tch::Device) -> Result<Detail> {
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

/// Complementary error function (Numerical Recipes `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Two-sided McNemar p-value from the discordant counts `b` (only the champion right) and
/// `c` (only the candidate right): exact binomial below 25 discordant pairs, else χ² with
/// continuity correction.
pub fn mcnemar_p(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    if n < 25 {
        let k = b.min(c);
        let mut coef = 1f64; // C(n, 0)
        let mut tail = 0f64;
        for i in 0..=k {
            if i > 0 {
                coef *= (n - i + 1) as f64 / i as f64;
            }
            tail += coef;
        }
        (2.0 * tail * 0.5f64.powi(n as i32)).min(1.0)
    } else {
        let d = (b as f64 - c as f64).abs() - 1.0;
        let chi2 = d.max(0.0).powi(2) / n as f64;
        erfc((chi2 / 2.0).sqrt())
    }
}

/// `a` better than `b` under `metric` by more than `margin`; with a zero margin, strictly
/// better under the ranking (the metric, then the other metric on a tie).
fn beats(metric: SelectionMetric, a: &Scores, b: &Scores, margin: f64) -> bool {
    if margin <= 0.0 {
        return rank_key(metric, a) < rank_key(metric, b);
    }
    match metric {
        SelectionMetric::Accuracy => a.accuracy - b.accuracy > margin,
        SelectionMetric::LogLoss => b.log_loss - a.log_loss > margin,
    }
}

/// `a` within `tol` of `best` on `metric`.
fn within(metric: SelectionMetric, a: &Scores, best: &Scores, tol: f64) -> bool {
    match metric {
        SelectionMetric::Accuracy => a.accuracy >= best.accuracy - tol - 1e-12,
        SelectionMetric::LogLoss => a.log_loss <= best.log_loss + tol + 1e-12,
    }
}

/// Ordering key (smaller is better).
fn rank_key(metric: SelectionMetric, s: &Scores) -> (f64, f64) {
    match metric {
        SelectionMetric::Accuracy => (-s.accuracy, s.log_loss),
        SelectionMetric::LogLoss => (s.log_loss, -s.accuracy),
    }
}

struct Trained {
    member: Member,
    stats: FitStats,
    /// Which engine run trained it (jobs of one batched run share its wall time).
    run: usize,
}

/// What every job of an update shares.
struct UpdateCtx<'a> {
    champion: Option<&'a ModelArtifact>,
    pools: &'a Pools,
    n_features: usize,
    n_classes: usize,
    cfg: &'a TrainConfig,
    seed: u64,
    cancel: &'a AtomicBool,
}

/// Jobs of one architecture, with their keys and scalers.
type Group = (Arch, Vec<(JobKey, Job, super::Scaler)>);

/// The rows, starting weights and schedule of one job.
fn job_plan<'a>(key: &JobKey, ctx: &UpdateCtx<'a>) -> Result<(Rows, Option<&'a Member>, JobSpec)> {
    let cfg = ctx.cfg;
    let max_steps = budget_steps(cfg.sample_budget, cfg.batch_size);
    Ok(match key {
        JobKey::Fresh { rows, .. } => (
            *rows,
            None,
            JobSpec {
                label: key.label(),
                lr: cfg.fit_lr,
                epochs: cfg.fit_epochs,
                max_steps,
                freeze: 0,
                seed: key.seed(ctx.seed),
            },
        ),
        JobKey::Finetune { rows, member } => {
            let champ = ctx
                .champion
                .ok_or_else(|| TrainError::InvalidInput("fine-tuning without champion".into()))?;
            // Fine-tuning on only the newest rows is the incremental candidate.
            let epochs = match rows {
                Rows::Recent(_) => cfg.incremental_epochs,
                _ => cfg.finetune_epochs,
            };
            (
                *rows,
                Some(&champ.members[*member]),
                JobSpec {
                    label: key.label(),
                    lr: cfg.finetune_lr,
                    epochs,
                    max_steps,
                    freeze: cfg.freeze_layers,
                    seed: key.seed(ctx.seed),
                },
            )
        }
    })
}

/// Prepares the jobs of `keys`, grouped by architecture; a job without rows is an error
/// entry in the returned map instead.
fn group_jobs(
    keys: &[JobKey],
    all_rows: Option<&Dataset>,
    ctx: &UpdateCtx<'_>,
    failed: &mut BTreeMap<JobKey, std::result::Result<Trained, String>>,
) -> Result<BTreeMap<Vec<usize>, Group>> {
    // Keyed by the architecture's widths: jobs of one architecture share one batched run.
    let mut groups: BTreeMap<Vec<usize>, Group> = BTreeMap::new();
    for key in keys {
        let arch = job_arch(key, ctx.champion, ctx.n_features, ctx.n_classes);
        let (rows, init, spec) = job_plan(key, ctx)?;
        let data = match (rows, all_rows) {
            (Rows::All, Some(all)) => all.clone(),
            _ => ctx.pools.rows(rows)?,
        };
        if data.is_empty() {
            failed.insert(
                key.clone(),
                Err(format!("{}: no training rows", key.label())),
            );
            continue;
        }
        let (job, scaler) = prepare_job(
            &arch,
            &data,
            init,
            &spec,
            ctx.cfg.early_stopping.as_ref(),
            ctx.cfg.recency_half_life_seconds,
        )?;
        let mut widths = arch.hidden.clone();
        widths.push(arch.n_features);
        groups
            .entry(widths)
            .or_insert_with(|| (arch, Vec::new()))
            .1
            .push((key.clone(), job, scaler));
    }
    Ok(groups)
}

/// Trains the distinct jobs, batched per architecture (or one by one). `all_rows` are the
/// bootstrap's rows ([`Rows::All`]).
fn train_keys(
    keys: &[JobKey],
    all_rows: Option<&Dataset>,
    ctx: &UpdateCtx<'_>,
) -> Result<BTreeMap<JobKey, std::result::Result<Trained, String>>> {
    let eopts = EngineOpts::from_config(ctx.cfg)?;
    let mut out = BTreeMap::new();
    let groups = group_jobs(keys, all_rows, ctx, &mut out)?;
    let mut run = 0usize;
    for (_, (arch, group)) in groups {
        let jobs: Vec<Job> = group.iter().map(|g| g.1.clone()).collect();
        let batches: Vec<&[Job]> = if ctx.cfg.batched_tournament {
            vec![&jobs[..]]
        } else {
            jobs.chunks(1).collect()
        };
        let mut results: Vec<(usize, JobOutcome)> = Vec::with_capacity(jobs.len());
        for batch in batches {
            run += 1;
            let trained = train_jobs(&arch, batch, &eopts, ctx.cancel)?;
            results.extend(trained.into_iter().map(|r| (run, r)));
        }
        for ((key, _, scaler), (run, res)) in group.into_iter().zip(results) {
            let entry = match res {
                Ok((layers, stats)) => Ok(Trained {
                    member: Member::from_layers(scaler, &layers),
                    stats,
                    run,
                }),
                Err(e) => Err(e.to_string()),
            };
            out.insert(key, entry);
        }
    }
    Ok(out)
}

/// The validated, time-ordered, split and windowed input of an update.
struct Plan {
    strategy: Strategy,
    n_features: usize,
    n_classes: usize,
    old: Dataset,
    new: Dataset,
    holdout: Dataset,
    /// New rows to train on before the window is applied.
    n_new_train: usize,
    pools: Pools,
    t_now: i64,
    device: tch::Device,
}

impl Plan {
    fn new(
        req: &UpdateRequest,
        champion: Option<&ModelArtifact>,
        old: &Dataset,
        new: &Dataset,
        cfg: &TrainConfig,
    ) -> Result<Plan> {
        cfg.validate()?;
        old.validate()?;
        new.validate()?;
        let n_features = match champion {
            Some(c) => c.arch.n_features,
            None if !new.is_empty() || old.is_empty() => new.n_features,
            None => old.n_features,
        };
        for (name, d) in [("old", old), ("new", new)] {
            if !d.is_empty() && d.n_features != n_features {
                return Err(TrainError::InvalidInput(format!(
                    "{name} rows have {} features, expected {n_features}",
                    d.n_features
                )));
            }
        }
        let n_classes = check_classes(req, champion)?;
        old.validate_labels(n_classes)?;
        new.validate_labels(n_classes)?;
        let old = old.time_ordered();
        let new = new.time_ordered();
        let (new_train, holdout) = new.split_newest(cfg.holdout_fraction);
        let t_now = new.max_ts().or(old.max_ts()).unwrap_or(0);
        let pools = pools(&old, &new_train, t_now, cfg, req.seed);
        Ok(Plan {
            strategy: req.strategy.unwrap_or(cfg.strategy),
            n_features,
            n_classes,
            old,
            new,
            n_new_train: new_train.len(),
            holdout,
            pools,
            t_now,
            device: cfg.device.resolve()?,
        })
    }

    fn outcome(&self, champion: Option<&ModelArtifact>) -> UpdateOutcome {
        UpdateOutcome {
            strategy: self.strategy,
            bootstrap: champion.is_none(),
            chosen: None,
            decision: Decision::Keep(KeepReason::NothingTrained),
            promoted: false,
            champion_holdout: None,
            candidates: Vec::new(),
            n_holdout: self.holdout.len(),
            n_old_rows: self.pools.old.len(),
            n_new_train_rows: self.pools.new_train.len(),
            steps: 0,
            total_seconds: 0.0,
            reason: String::new(),
        }
    }

    fn ctx<'a>(
        &'a self,
        champion: Option<&'a ModelArtifact>,
        cfg: &'a TrainConfig,
        seed: u64,
        cancel: &'a AtomicBool,
    ) -> UpdateCtx<'a> {
        UpdateCtx {
            champion,
            pools: &self.pools,
            n_features: self.n_features,
            n_classes: self.n_classes,
            cfg,
            seed,
            cancel,
        }
    }

    /// What the update trains: `auto`'s candidates, or the one fixed strategy.
    fn candidates(&self, cfg: &TrainConfig) -> Vec<CandidateSpec> {
        if self.strategy == Strategy::Auto {
            cfg.auto_candidates()
        } else {
            vec![CandidateSpec::plain(self.strategy)]
        }
    }
}

/// The request's classes, which must be the champion's.
fn check_classes(req: &UpdateRequest, champion: Option<&ModelArtifact>) -> Result<usize> {
    if req.n_classes < 2 {
        return Err(TrainError::InvalidInput(format!(
            "n_classes must be >= 2, got {}",
            req.n_classes
        )));
    }
    let n_classes = champion.map_or(req.n_classes, |c| c.arch.n_classes);
    if n_classes != req.n_classes {
        return Err(TrainError::InvalidInput(format!(
            "the champion has {n_classes} classes, the request {}",
            req.n_classes
        )));
    }
    Ok(n_classes)
}

/// Runs one model update; see the module docs. `old`: rows the champion was trained on;
/// `new`: labelled rows since its cut-off (both time-ordered; they are sorted if not).
/// Blocking and CPU/GPU-bound: call it from a blocking thread. `cancel` is polled every step.
///
/// Errors: [`TrainError::Cancelled`], invalid input, and a bootstrap fit that diverges. A
/// candidate that diverges is reported in its [`CandidateReport::error`] instead.
pub fn run_update(
    req: &UpdateRequest,
    champion: Option<&ModelArtifact>,
    old: &Dataset,
    new: &Dataset,
    cfg: &TrainConfig,
    cancel: &AtomicBool,
) -> Result<UpdateOutcome> {
    let start = Instant::now();
    let plan = Plan::new(req, champion, old, new, cfg)?;
    if let Some(n) = cfg.num_threads {
        tch::set_num_threads(n);
    }
    tch::manual_seed(req.seed as i64);
    let Some(champion) = champion else {
        return bootstrap(&plan, req, cfg, cancel, start);
    };
    champion.validate()?;
    let mut outcome = plan.outcome(Some(champion));
    let champ_detail = if plan.holdout.is_empty() {
        None
    } else {
        Some(score_detail(champion, &plan.holdout, plan.device)?)
    };
    outcome.champion_holdout = champ_detail.as_ref().map(|d| d.scores);
    if plan.strategy == Strategy::None {
        outcome.decide(Decision::Keep(KeepReason::StrategyNone), start);
        return Ok(outcome);
    }
    if plan.n_new_train == 0 {
        return Err(TrainError::InvalidInput("no new rows to train on".into()));
    }
    let specs = plan.candidates(cfg);
    let ctx = plan.ctx(Some(champion), cfg, req.seed, cancel);
    let trained = train_candidates(&specs, champion, &ctx)?;
    outcome.steps = trained
        .values()
        .filter_map(|t| t.as_ref().ok())
        .map(|t| t.stats.steps)
        .sum();
    let mut scored = score_candidates(
        &specs,
        champion,
        &trained,
        &plan,
        cfg,
        champ_detail.as_ref(),
        &mut outcome.candidates,
    )?;
    if scored.is_empty() {
        outcome.decide(Decision::Keep(KeepReason::NothingTrained), start);
        return Ok(outcome);
    }
    let (top, chosen) = select(&scored, champ_detail.as_ref(), cfg);
    let decision = gate(
        plan.strategy,
        &scored,
        top,
        chosen,
        &outcome.candidates,
        outcome.champion_holdout,
        cfg,
    );
    let cand = scored.swap_remove(chosen).cand;
    tracing::info!(strategy = %plan.strategy, chosen = %cand.spec(), promoted = decision.promotes(), "{decision}");
    outcome.chosen = Some(cand);
    outcome.decide(decision, start);
    Ok(outcome)
}

/// No champion: one fresh model on every row (holdout included), windowed.
fn bootstrap(
    plan: &Plan,
    req: &UpdateRequest,
    cfg: &TrainConfig,
    cancel: &AtomicBool,
    start: Instant,
) -> Result<UpdateOutcome> {
    let mut outcome = plan.outcome(None);
    let all = plan.old.concat(&plan.new)?;
    let empty = Dataset::empty(plan.n_features);
    let windowed = pools(&all, &empty, plan.t_now, cfg, req.seed).old;
    if windowed.is_empty() {
        return Err(TrainError::InvalidInput(
            "no rows to fit a first model on".into(),
        ));
    }
    let key = JobKey::Fresh {
        rows: Rows::All,
        hidden: cfg.hidden_layers.clone(),
    };
    let ctx = plan.ctx(None, cfg, req.seed, cancel);
    let mut trained = train_keys(std::slice::from_ref(&key), Some(&windowed), &ctx)?;
    let t = trained
        .remove(&key)
        .expect("bootstrap job")
        .map_err(TrainError::Diverged)?;
    let arch = Arch::new(plan.n_features, &cfg.hidden_layers, plan.n_classes);
    let artifact = ModelArtifact::single(arch, t.member);
    let scores = if plan.holdout.is_empty() {
        None
    } else {
        Some(score_detail(&artifact, &plan.holdout, plan.device)?.scores)
    };
    let spec = CandidateSpec::plain(Strategy::RefitCombined);
    outcome
        .candidates
        .push(report(spec, scores, &t.stats, None, None));
    outcome.chosen = Some(Candidate {
        strategy: spec.strategy,
        recent_rows: None,
        artifact,
        holdout: scores,
        train_seconds: t.stats.seconds,
        n_train_rows: t.stats.n_train_rows,
    });
    outcome.n_old_rows = windowed.len();
    outcome.n_new_train_rows = 0;
    outcome.steps = t.stats.steps;
    let rows = windowed.len();
    outcome.decide(Decision::Promote(Promotion::Bootstrap { rows }), start);
    Ok(outcome)
}

/// Train: every distinct job of the candidates, once.
fn train_candidates(
    specs: &[CandidateSpec],
    champion: &ModelArtifact,
    ctx: &UpdateCtx<'_>,
) -> Result<BTreeMap<JobKey, std::result::Result<Trained, String>>> {
    let mut keys: Vec<JobKey> = Vec::new();
    for &s in specs {
        for k in jobs_for(s, champion, ctx.cfg) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    train_keys(&keys, None, ctx)
}

/// Score: assembles each candidate from its jobs and scores it on the holdout, in priority
/// order; every candidate gets a report line, the successful ones are returned.
fn score_candidates(
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
            },
            detail,
        });
    }
    Ok(scored)
}

/// A candidate's trained members and summed statistics, or the first error of its jobs.
fn collect_jobs(
    spec: CandidateSpec,
    champion: &ModelArtifact,
    trained: &BTreeMap<JobKey, std::result::Result<Trained, String>>,
    cfg: &TrainConfig,
) -> (BTreeMap<JobKey, Member>, FitStats, Option<String>) {
    let mut members = BTreeMap::new();
    let mut err = None;
    let mut stats = FitStats {
        final_loss: f64::NAN,
        ..Default::default()
    };
    let mut seen_runs: Vec<usize> = Vec::new();
    for k in &jobs_for(spec, champion, cfg) {
        match trained.get(k) {
            Some(Ok(t)) => {
                members.insert(k.clone(), t.member.clone());
                // Jobs of one batched run share its wall time: count it once.
                if !seen_runs.contains(&t.run) {
                    seen_runs.push(t.run);
                    stats.seconds += t.stats.seconds;
                }
                stats.n_train_rows = stats.n_train_rows.max(t.stats.n_train_rows);
                stats.epochs_run = stats.epochs_run.max(t.stats.epochs_run);
                stats.steps = stats.steps.max(t.stats.steps);
                stats.final_loss = t.stats.final_loss;
            }
            Some(Err(e)) => err = Some(e.clone()),
            None => err = Some(format!("job {} was not trained", k.label())),
        }
    }
    (members, stats, err)
}

/// Select: the best candidate by the selection metric (ties: the other metric, then order),
/// and the one the one-standard-error rule promotes: the first in priority order within
/// `selection_tolerance_se` standard errors of the best. While the champion is beaten
/// outright on accuracy (drift), ensembles (which keep the champion's members) are not
/// preferred over the best on a tie. Returns (best, chosen) indices into `scored`.
fn select(scored: &[Scored], champ: Option<&Detail>, cfg: &TrainConfig) -> (usize, usize) {
    let metric = cfg.selection_metric;
    let mut top = 0;
    for (i, sc) in scored.iter().enumerate() {
        if let (Some(a), Some(b)) = (&sc.detail, &scored[top].detail) {
            if rank_key(metric, &a.scores) < rank_key(metric, &b.scores) {
                top = i;
            }
        }
    }
    let Some(best) = &scored[top].detail else {
        return (top, top);
    };
    let tol = cfg.selection_tolerance_se * best.standard_error(metric);
    let stale = champ.is_some_and(|c| c.scores.accuracy < best.scores.accuracy);
    let chosen = scored
        .iter()
        .position(|sc| {
            let keeps_champion = matches!(
                sc.cand.strategy,
                Strategy::EnsembleNew | Strategy::EnsembleCombined
            );
            sc.detail
                .as_ref()
                .is_some_and(|d| within(metric, &d.scores, &best.scores, tol))
                && !(stale && keeps_champion)
        })
        .unwrap_or(top);
    (top, chosen)
}

/// Gate: whether the chosen candidate replaces the champion (see the module docs).
fn gate(
    strategy: Strategy,
    scored: &[Scored],
    top: usize,
    chosen: usize,
    reports: &[CandidateReport],
    champion: Option<Scores>,
    cfg: &TrainConfig,
) -> Decision {
    let best = &scored[top];
    if strategy != Strategy::Auto && !cfg.gate_fixed_strategies {
        return Decision::Promote(Promotion::Fixed {
            candidate: best.cand.spec(),
        });
    }
    let (Some(bs), Some(ch)) = (best.cand.holdout, champion) else {
        return Decision::Keep(KeepReason::NoHoldout);
    };
    let comparison = Comparison {
        best: best.cand.spec(),
        best_scores: bs,
        champion: ch,
        p_value: reports[best.report].mcnemar_p_value.unwrap_or(1.0),
    };
    if !beats(cfg.selection_metric, &bs, &ch, cfg.min_improvement) {
        return Decision::Keep(KeepReason::NotBetter {
            comparison,
            min_improvement: cfg.min_improvement,
        });
    }
    if let Some(alpha) = cfg.mcnemar_alpha {
        if !(comparison.p_value < alpha && bs.accuracy > ch.accuracy) {
            return Decision::Keep(KeepReason::McNemar { comparison, alpha });
        }
    }
    if chosen == top {
        return Decision::Promote(Promotion::Best(comparison));
    }
    let c = &scored[chosen].cand;
    Decision::Promote(Promotion::Preferred {
        comparison,
        chosen: c.spec(),
        scores: c.holdout.expect("a chosen candidate has holdout scores"),
        tolerance_se: cfg.selection_tolerance_se,
    })
}

fn report(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::synth::{make_classification, make_mixture, Concept};
    use crate::train::{predict, EarlyStopping, Window};

    fn no() -> AtomicBool {
        AtomicBool::new(false)
    }

    fn quick() -> TrainConfig {
        TrainConfig {
            fit_epochs: 60,
            finetune_epochs: 40,
            ..Default::default()
        }
    }

    /// Champion fit on `old` (concept A); returns (champion, old).
    fn champion(cfg: &TrainConfig, n_classes: usize) -> (ModelArtifact, Dataset) {
        let a = Concept::new(1, 12, 9, n_classes);
        let old = make_classification(&a, 400, 0, 10);
        let req = UpdateRequest {
            seed: 3,
            strategy: None,
            n_classes,
        };
        let out = run_update(&req, None, &old, &Dataset::empty(12), cfg, &no()).unwrap();
        assert!(out.bootstrap && out.promoted);
        assert_eq!(out.n_old_rows, 400);
        (out.chosen.unwrap().artifact, old)
    }

    #[test]
    fn mcnemar_values() {
        assert_eq!(mcnemar_p(0, 0), 1.0);
        assert!((mcnemar_p(0, 10) - 2.0 * 0.5f64.powi(10)).abs() < 1e-12);
        assert!((mcnemar_p(5, 5) - 1.0).abs() < 1e-12);
        assert!(
            (mcnemar_p(3, 9) - 0.146_000_0).abs() < 1e-3,
            "{}",
            mcnemar_p(3, 9)
        );
        // chi2 = (|10-30|-1)^2/40 = 9.025 -> p = 0.002663
        assert!(
            (mcnemar_p(10, 30) - 0.002_663).abs() < 2e-5,
            "{}",
            mcnemar_p(10, 30)
        );
        assert!((erfc(0.0) - 1.0).abs() < 1e-7 && (erfc(1.0) - 0.157_299_2).abs() < 1e-6);
    }

    #[test]
    fn every_strategy_trains_and_predicts() {
        let cfg = quick();
        let (champ, old) = champion(&cfg, 2);
        let b = Concept::new(2, 12, 9, 2);
        let new = make_mixture(&Concept::new(1, 12, 9, 2), &b, 0.5, 300, 1000, 11);
        let no = no();
        for s in Strategy::TRAINING {
            let out = run_update(
                &UpdateRequest::new(5, Some(s)),
                Some(&champ),
                &old,
                &new,
                &cfg,
                &no,
            )
            .unwrap();
            assert_eq!(out.n_holdout, 60);
            assert_eq!(out.candidates.len(), 1, "{s}");
            assert!(out.promoted, "{s}: {}", out.reason);
            let cand = out.chosen.unwrap();
            assert_eq!(cand.strategy, s);
            let art = &cand.artifact;
            art.validate().unwrap();
            let p = predict(art, &new.x).unwrap();
            assert_eq!(p.len(), 300);
            assert!(p.proba.iter().all(|v| (0.0..=1.0).contains(v)));
            let sc = cand.holdout.unwrap();
            assert!(sc.accuracy > 0.5 && sc.log_loss.is_finite(), "{s}: {sc:?}");
            let rep = &out.candidates[0];
            assert!(
                rep.error.is_none() && rep.train_seconds > 0.0 && rep.mcnemar_p_value.is_some()
            );
            match s {
                Strategy::FinetuneNew | Strategy::FinetuneCombined => {
                    assert_eq!(art.members.len(), 1);
                    assert_eq!(
                        art.members[0].scaler, champ.members[0].scaler,
                        "fine-tuning keeps the scaler"
                    );
                    assert_ne!(art.members[0].weights, champ.members[0].weights);
                    assert_eq!(rep.epochs_run, 40);
                }
                Strategy::RefitNew | Strategy::RefitCombined => {
                    assert_eq!(art.members.len(), 1);
                    assert_ne!(
                        art.members[0].scaler, champ.members[0].scaler,
                        "a refit fits a new scaler"
                    );
                    assert_eq!(rep.epochs_run, 60);
                }
                _ => {
                    assert_eq!(art.members.len(), 2);
                    assert_eq!(
                        art.members[0], champ.members[0],
                        "the champion member is kept as is"
                    );
                    assert_ne!(art.members[1].scaler, champ.members[0].scaler);
                    assert_eq!(art.ensemble.weights, vec![0.5, 0.5]);
                }
            }
            let expected_rows = match s {
                Strategy::FinetuneNew | Strategy::RefitNew | Strategy::EnsembleNew => 240,
                _ => 640,
            };
            assert_eq!(rep.n_train_rows, expected_rows, "{s}");
        }
        // Fine-tuning an ensemble fine-tunes every member (each with its own scaler), and
        // ensembling an ensemble keeps at most max_ensemble_members.
        let ens = run_update(
            &UpdateRequest::new(5, Some(Strategy::EnsembleNew)),
            Some(&champ),
            &old,
            &new,
            &cfg,
            &no,
        )
        .unwrap()
        .chosen
        .unwrap()
        .artifact;
        let ft = run_update(
            &UpdateRequest::new(5, Some(Strategy::FinetuneNew)),
            Some(&ens),
            &old,
            &new,
            &cfg,
            &no,
        )
        .unwrap()
        .chosen
        .unwrap()
        .artifact;
        assert_eq!(ft.members.len(), 2);
        assert_eq!(ft.ensemble, ens.ensemble);
        for (a, b) in ft.members.iter().zip(&ens.members) {
            assert_eq!(a.scaler, b.scaler);
        }
        let small = TrainConfig {
            max_ensemble_members: 2,
            ..cfg.clone()
        };
        let e2 = run_update(
            &UpdateRequest::new(6, Some(Strategy::EnsembleCombined)),
            Some(&ens),
            &old,
            &new,
            &small,
            &no,
        )
        .unwrap()
        .chosen
        .unwrap()
        .artifact;
        assert_eq!(e2.members.len(), 2);
        assert_eq!(
            e2.members[0], ens.members[1],
            "the oldest, lowest-weight member is dropped"
        );
        assert!((e2.ensemble.weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn auto_promotes_on_drift_and_keeps_champion_when_stationary() {
        let cfg = quick();
        let (champ, old) = champion(&cfg, 2);
        let no = no();
        // Drift: the new rows come from another concept.
        let drifted = make_classification(&Concept::new(2, 12, 9, 2), 400, 1000, 12);
        let out = run_update(
            &UpdateRequest::new(5, None),
            Some(&champ),
            &old,
            &drifted,
            &cfg,
            &no,
        )
        .unwrap();
        assert_eq!(out.strategy, Strategy::Auto);
        assert_eq!(out.candidates.len(), 6);
        assert!(out
            .candidates
            .iter()
            .all(|c| c.error.is_none() && c.holdout_accuracy.is_some()));
        let ch = out.champion_holdout.unwrap();
        let chosen = out.chosen.as_ref().unwrap();
        let best = out
            .candidates
            .iter()
            .map(|c| c.holdout_accuracy.unwrap())
            .fold(0.0, f64::max);
        assert!(out.promoted, "{}", out.reason);
        // The promoted model is within one standard error of the best candidate.
        let se = (best * (1.0 - best) / 80.0).sqrt();
        assert!(
            chosen.holdout.unwrap().accuracy >= best - se - 1e-9,
            "{}",
            out.reason
        );
        assert!(best > ch.accuracy + 0.1, "{} vs {ch:?}", out.reason);
        // Drift: the stale champion's ensembles are not preferred on a tie.
        assert!(
            !matches!(
                chosen.strategy,
                Strategy::EnsembleNew | Strategy::EnsembleCombined
            ) || chosen.holdout.unwrap().accuracy == best
        );
        // With the tolerance at 0 the best candidate itself is promoted.
        let exact = TrainConfig {
            selection_tolerance_se: 0.0,
            ..cfg.clone()
        };
        let out0 = run_update(
            &UpdateRequest::new(5, None),
            Some(&champ),
            &old,
            &drifted,
            &exact,
            &no,
        )
        .unwrap();
        assert_eq!(out0.chosen.unwrap().holdout.unwrap().accuracy, best);
        // With McNemar at 5 % the big improvement still passes.
        let strict = TrainConfig {
            mcnemar_alpha: Some(0.05),
            ..cfg.clone()
        };
        let out2 = run_update(
            &UpdateRequest::new(5, None),
            Some(&champ),
            &old,
            &drifted,
            &strict,
            &no,
        )
        .unwrap();
        assert!(out2.promoted, "{}", out2.reason);

        // Stationary: a champion fit on plenty of rows, and more rows of the same concept;
        // with a 5-point margin nothing is promoted.
        let a = Concept::new(1, 12, 9, 2);
        let old = make_classification(&a, 2000, 0, 10);
        let champ = run_update(
            &UpdateRequest::new(3, None),
            None,
            &old,
            &Dataset::empty(12),
            &cfg,
            &no,
        )
        .unwrap()
        .chosen
        .unwrap()
        .artifact;
        let same = make_classification(&a, 800, 3000, 13);
        let margin = TrainConfig {
            min_improvement: 0.05,
            ..cfg.clone()
        };
        let out = run_update(
            &UpdateRequest::new(5, None),
            Some(&champ),
            &old,
            &same,
            &margin,
            &no,
        )
        .unwrap();
        eprintln!("stationary: {}", out.reason);
        assert!(!out.promoted, "{}", out.reason);
        assert!(out.chosen.is_some() && out.champion_holdout.unwrap().accuracy > 0.7);
        // McNemar alone (no margin) also refuses an insignificant difference.
        let mc = TrainConfig {
            mcnemar_alpha: Some(0.01),
            ..cfg.clone()
        };
        let out = run_update(
            &UpdateRequest::new(5, None),
            Some(&champ),
            &old,
            &same,
            &mc,
            &no,
        )
        .unwrap();
        assert!(!out.promoted, "{}", out.reason);
    }

    #[test]
    fn window_and_incremental_candidates_and_the_sample_budget() {
        let cfg = TrainConfig {
            window_candidates: vec![100, 200],
            incremental_rows: Some(100),
            incremental_epochs: 3,
            sample_budget: 3_200,
            ..quick()
        };
        let (champ, old) = champion(&quick(), 2);
        let new = make_classification(&Concept::new(2, 12, 9, 2), 400, 1000, 12);
        let out = run_update(
            &UpdateRequest::new(5, None),
            Some(&champ),
            &old,
            &new,
            &cfg,
            &no(),
        )
        .unwrap();
        let names: Vec<String> = out
            .candidates
            .iter()
            .map(|c| {
                CandidateSpec {
                    strategy: c.strategy,
                    recent_rows: c.recent_rows,
                }
                .to_string()
            })
            .collect();
        // The six strategies, then the windows (longest first), then the incremental one.
        assert_eq!(
            names[6..],
            [
                "refit_combined[newest 200]",
                "refit_combined[newest 100]",
                "finetune_combined[newest 100]"
            ]
        );
        let by = |name: &str| &out.candidates[names.iter().position(|n| n == name).unwrap()];
        assert_eq!(by("refit_combined[newest 100]").n_train_rows, 100);
        assert_eq!(by("refit_combined[newest 200]").n_train_rows, 200);
        // 3 passes over 100 rows at batch 32: 12 steps, under the budget.
        let inc = by("finetune_combined[newest 100]");
        assert_eq!((inc.epochs_run, inc.steps), (3, 12));
        // The budget (3 200 samples = 100 steps) cuts the 60 epochs over 720 rows short.
        let refit = by("refit_combined");
        assert_eq!((refit.n_train_rows, refit.steps), (720, 100));
        assert!(out.candidates.iter().all(|c| c.error.is_none()));
        assert!(out.steps >= 100 * 3 + 12);
        assert_eq!(out.reason, out.decision.to_string());
        assert_eq!(out.promoted, out.decision.promotes());
    }

    #[test]
    fn batched_and_sequential_tournaments_agree() {
        let cfg = quick();
        let (champ, old) = champion(&cfg, 2);
        let new = make_mixture(
            &Concept::new(1, 12, 9, 2),
            &Concept::new(2, 12, 9, 2),
            0.5,
            300,
            1000,
            11,
        );
        let no = no();
        let req = UpdateRequest::new(9, Some(Strategy::Auto));
        let a = run_update(&req, Some(&champ), &old, &new, &cfg, &no).unwrap();
        let seq = TrainConfig {
            batched_tournament: false,
            ..cfg.clone()
        };
        let b = run_update(&req, Some(&champ), &old, &new, &seq, &no).unwrap();
        for (x, y) in a.candidates.iter().zip(&b.candidates) {
            assert_eq!(x.strategy, y.strategy);
            assert!((x.holdout_log_loss.unwrap() - y.holdout_log_loss.unwrap()).abs() < 1e-4);
            assert!(
                (x.holdout_accuracy.unwrap() - y.holdout_accuracy.unwrap()).abs()
                    <= 1.0 / 60.0 + 1e-9
            );
        }
        let (pa, pb) = (a.chosen.unwrap().artifact, b.chosen.unwrap().artifact);
        let xa = predict(&pa, &new.x).unwrap().proba;
        let xb = predict(&pb, &new.x).unwrap().proba;
        assert!(xa.iter().zip(&xb).all(|(p, q)| (p - q).abs() < 1e-4));
    }

    #[test]
    fn none_bootstrap_cancel_and_nan() {
        let cfg = quick();
        let (champ, old) = champion(&cfg, 2);
        let new = make_classification(&Concept::new(2, 12, 9, 2), 200, 1000, 12);
        let no = no();
        let out = run_update(
            &UpdateRequest::new(1, Some(Strategy::None)),
            Some(&champ),
            &old,
            &new,
            &cfg,
            &no,
        )
        .unwrap();
        assert!(out.chosen.is_none() && !out.promoted && out.candidates.is_empty());
        assert_eq!(out.champion_holdout.unwrap().n, 40);

        let yes = AtomicBool::new(true);
        let r = run_update(
            &UpdateRequest::default(),
            Some(&champ),
            &old,
            &new,
            &cfg,
            &yes,
        );
        assert!(matches!(r, Err(TrainError::Cancelled)));
        let r = run_update(&UpdateRequest::default(), None, &old, &new, &cfg, &yes);
        assert!(matches!(r, Err(TrainError::Cancelled)));

        // NaN in the training rows: every candidate diverges, the champion is kept.
        let mut bad = new.clone();
        bad.x[5] = f32::NAN;
        let out = run_update(
            &UpdateRequest::default(),
            Some(&champ),
            &old,
            &bad,
            &cfg,
            &no,
        )
        .unwrap();
        assert!(!out.promoted && out.chosen.is_none());
        assert!(out
            .candidates
            .iter()
            .all(|c| c.error.as_deref().is_some_and(|e| e.contains("diverged"))));
        // ... and a bootstrap on NaN data is an error.
        let r = run_update(
            &UpdateRequest::default(),
            None,
            &bad,
            &Dataset::empty(12),
            &cfg,
            &no,
        );
        assert!(matches!(r, Err(TrainError::Diverged(_))), "{r:?}");

        // Bootstrap with new rows: trains on all of them, holdout included.
        let out = run_update(&UpdateRequest::default(), None, &old, &new, &cfg, &no).unwrap();
        assert!(out.bootstrap && out.promoted && out.candidates[0].n_train_rows == 600);
        // Shape errors.
        let wrong = Dataset {
            n_features: 3,
            x: vec![0.0; 3],
            y: vec![0.0],
            ts: vec![0],
            ids: vec![0],
        };
        assert!(matches!(
            run_update(
                &UpdateRequest::default(),
                Some(&champ),
                &old,
                &wrong,
                &cfg,
                &no
            ),
            Err(TrainError::InvalidInput(_))
        ));
    }

    #[test]
    fn variants_window_replay_recency_freeze_early_stopping() {
        let base = quick();
        let (champ, old) = champion(&base, 2);
        let new = make_mixture(
            &Concept::new(1, 12, 9, 2),
            &Concept::new(2, 12, 9, 2),
            0.5,
            300,
            1000,
            11,
        );
        let no = no();
        let cfg = TrainConfig {
            replay_fraction: 0.5,
            window: Window {
                max_age_seconds: Some(1200),
                max_rows: Some(450),
            },
            recency_half_life_seconds: Some(100.0),
            freeze_layers: 1,
            early_stopping: Some(EarlyStopping {
                patience: 5,
                ..Default::default()
            }),
            ..base.clone()
        };
        let out = run_update(
            &UpdateRequest::new(2, Some(Strategy::Auto)),
            Some(&champ),
            &old,
            &new,
            &cfg,
            &no,
        )
        .unwrap();
        // t_now = 1299: the age window keeps old rows with ts >= 99, max_rows leaves 450 - 240.
        assert_eq!((out.n_old_rows, out.n_new_train_rows), (210, 240));
        let rep = |s: Strategy| {
            out.candidates
                .iter()
                .find(|c| c.strategy == s)
                .unwrap()
                .clone()
        };
        // 240 new + 105 replayed, minus the 10 % validation split.
        assert_eq!(rep(Strategy::RefitNew).n_train_rows, 310);
        assert_eq!(rep(Strategy::RefitCombined).n_train_rows, 405);
        assert!(
            out.candidates.iter().all(|c| c.error.is_none()),
            "{:?}",
            out.candidates
        );
        // The frozen first layer of a fine-tuned model equals the champion's.
        let ft = run_update(
            &UpdateRequest::new(2, Some(Strategy::FinetuneCombined)),
            Some(&champ),
            &old,
            &new,
            &cfg,
            &no,
        )
        .unwrap()
        .chosen
        .unwrap()
        .artifact;
        let l0 = |a: &ModelArtifact| a.members[0].weights[0].clone();
        assert_eq!(l0(&ft), l0(&champ));
        assert_ne!(ft.members[0].weights[2], champ.members[0].weights[2]);
    }

    #[test]
    fn multiclass_update() {
        let cfg = quick();
        let (champ, old) = champion(&cfg, 3);
        assert_eq!(champ.arch.n_outputs(), 3);
        let req3 = UpdateRequest {
            n_classes: 3,
            ..Default::default()
        };
        // The request must agree with the champion on the classes.
        let new0 = make_classification(&Concept::new(2, 12, 9, 3), 30, 1000, 12);
        assert!(run_update(
            &UpdateRequest::default(),
            Some(&champ),
            &old,
            &new0,
            &cfg,
            &AtomicBool::new(false)
        )
        .is_err());
        let new = make_classification(&Concept::new(2, 12, 9, 3), 300, 1000, 12);
        let out = run_update(
            &req3,
            Some(&champ),
            &old,
            &new,
            &cfg,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(out.promoted, "{}", out.reason);
        let art = out.chosen.unwrap().artifact;
        let p = predict(&art, &new.x).unwrap();
        assert_eq!(p.proba.len(), 900);
        assert!(p.labels.iter().all(|&l| l < 3));
        let mut bad = new.clone();
        bad.y[0] = 3.0;
        assert!(run_update(
            &req3,
            Some(&champ),
            &old,
            &bad,
            &cfg,
            &AtomicBool::new(false)
        )
        .is_err());
    }
}
