//! *Train*: every distinct job of the candidates once, batched per architecture (or one by
//! one), and each candidate's members collected from its jobs.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use crate::config::train::TrainConfig;
use crate::domain::{CandidateSpec, Dataset};
use crate::train::artifact::{Member, ModelArtifact};
use crate::train::batched::{
    budget_steps, prepare_job, train_jobs, EngineOpts, FitStats, Job, JobOutcome, JobSpec,
};
use crate::train::mlp::Arch;
use crate::train::strategy::{job_arch, jobs_for, JobKey, Pools, Rows};
use crate::train::{Result, Scaler, TrainError};

pub(super) struct Trained {
    pub(super) member: Member,
    pub(super) stats: FitStats,
    /// Which engine run trained it (jobs of one batched run share its wall time).
    pub(super) run: usize,
}

/// What every job of an update shares.
pub(super) struct UpdateCtx<'a> {
    pub(super) champion: Option<&'a ModelArtifact>,
    pub(super) pools: &'a Pools,
    pub(super) n_features: usize,
    pub(super) n_classes: usize,
    pub(super) cfg: &'a TrainConfig,
    pub(super) seed: u64,
    pub(super) cancel: &'a AtomicBool,
}

/// Jobs of one architecture, with their keys and scalers.
pub(super) type Group = (Arch, Vec<(JobKey, Job, Scaler)>);

/// The rows, starting weights and schedule of one job.
pub(super) fn job_plan<'a>(
    key: &JobKey,
    ctx: &UpdateCtx<'a>,
) -> Result<(Rows, Option<&'a Member>, JobSpec)> {
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
pub(super) fn group_jobs(
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
pub(super) fn train_keys(
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

/// Train: every distinct job of the candidates, once.
pub(super) fn train_candidates(
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

/// A candidate's trained members and summed statistics, or the first error of its jobs.
pub(super) fn collect_jobs(
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
