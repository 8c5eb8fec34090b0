//! How each strategy turns (champion, old rows, new rows) into training jobs, and jobs back
//! into a model artifact.
//!
//! | strategy | jobs | artifact |
//! |---|---|---|
//! | `finetune_new` | each champion member, from its weights and scaler, on *new* rows | champion layout, members replaced |
//! | `finetune_combined` | same on *combined* rows | same |
//! | `refit_new` | one fresh model (config architecture, new scaler) on *new* rows | that model |
//! | `refit_combined` | same on *combined* rows | same |
//! | `ensemble_new` | one fresh model (champion architecture) on *new* rows | champion members + it |
//! | `ensemble_combined` | same on *combined* rows | same |
//!
//! *new* rows are the windowed new training rows plus the replay sample of old rows
//! (`replay_fraction`); *combined* rows are windowed old + new training rows. Identical jobs
//! are trained once: `ensemble_new`'s fresh member is `refit_new`'s model whenever the
//! architectures agree (same rows, same seed), so `auto` trains at most
//! `2 × members + 2` models.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::SeedableRng;

use super::artifact::{Ensemble, Member, ModelArtifact};
use super::mlp::Arch;
use super::{Result, TrainError};
use crate::config::train::TrainConfig;
use crate::domain::Dataset;
use crate::domain::{CandidateSpec, Strategy};

/// Which rows a job trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Rows {
    /// New training rows + replayed old rows.
    New,
    /// Old + new training rows.
    Combined,
    /// Bootstrap: every row, the holdout included.
    All,
    /// The newest this many of the old + new training rows (window and incremental
    /// candidates).
    Recent(usize),
}

impl Rows {
    /// A number that tells row sets apart in job seeds (New 1, Combined 2, All 3 as before).
    fn tag(self) -> u64 {
        match self {
            Rows::New => 1,
            Rows::Combined => 2,
            Rows::All => 3,
            Rows::Recent(n) => splitmix(n as u64 ^ 0x5eed),
        }
    }

    /// The same candidate on only the newest `recent` rows.
    fn restricted(self, recent: Option<usize>) -> Rows {
        match recent {
            Some(n) => Rows::Recent(n),
            None => self,
        }
    }
}

/// One distinct model to train.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum JobKey {
    /// Fresh He init, new scaler, `fit_lr` / `fit_epochs`, hidden widths as given.
    Fresh { rows: Rows, hidden: Vec<usize> },
    /// Champion member `member`, its scaler, `finetune_lr` / `finetune_epochs`.
    Finetune { rows: Rows, member: usize },
}

impl JobKey {
    pub fn label(&self) -> String {
        match self {
            JobKey::Fresh { rows, hidden } => format!("fresh({rows:?}, {hidden:?})"),
            JobKey::Finetune { rows, member } => format!("finetune({rows:?}, member {member})"),
        }
    }

    /// A per-job seed derived from the request seed.
    pub fn seed(&self, base: u64) -> u64 {
        let tag = match self {
            JobKey::Fresh { rows, hidden } => {
                let h = hidden
                    .iter()
                    .fold(0u64, |a, &w| a.wrapping_mul(31).wrapping_add(w as u64));
                rows.tag().wrapping_add(h.wrapping_mul(1000))
            }
            JobKey::Finetune { rows, member } => rows
                .tag()
                .wrapping_mul(100)
                .wrapping_add(10_000)
                .wrapping_add(*member as u64),
        };
        splitmix(base ^ splitmix(tag))
    }
}

pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The jobs candidate `spec` needs.
pub(crate) fn jobs_for(
    spec: CandidateSpec,
    champion: &ModelArtifact,
    cfg: &TrainConfig,
) -> Vec<JobKey> {
    let members = champion.members.len();
    let fresh = |rows: Rows, hidden: &[usize]| {
        vec![JobKey::Fresh {
            rows: rows.restricted(spec.recent_rows),
            hidden: hidden.to_vec(),
        }]
    };
    let finetune = |rows: Rows| {
        (0..members)
            .map(|member| JobKey::Finetune {
                rows: rows.restricted(spec.recent_rows),
                member,
            })
            .collect()
    };
    match spec.strategy {
        Strategy::None | Strategy::Auto => vec![],
        Strategy::FinetuneNew => finetune(Rows::New),
        Strategy::FinetuneCombined => finetune(Rows::Combined),
        Strategy::RefitNew => fresh(Rows::New, &cfg.hidden_layers),
        Strategy::RefitCombined => fresh(Rows::Combined, &cfg.hidden_layers),
        Strategy::EnsembleNew => fresh(Rows::New, &champion.arch.hidden),
        Strategy::EnsembleCombined => fresh(Rows::Combined, &champion.arch.hidden),
    }
}

/// Training rows after the window, for an update.
#[derive(Debug, Clone)]
pub(crate) struct Pools {
    pub old: Dataset,
    pub new_train: Dataset,
    pub replay: Dataset,
}

impl Pools {
    pub fn rows(&self, rows: Rows) -> Result<Dataset> {
        match rows {
            Rows::New => Ok(self.new_train.concat(&self.replay)?.time_ordered()),
            Rows::Combined | Rows::All => Ok(self.old.concat(&self.new_train)?.time_ordered()),
            Rows::Recent(n) => {
                let all = self.old.concat(&self.new_train)?.time_ordered();
                Ok(all.slice(all.len().saturating_sub(n), all.len()))
            }
        }
    }
}

/// Applies `cfg.window` to time-ordered `old` and `new_train` (ages measured from `t_now`):
/// rows older than `max_age_seconds` are dropped, then only the newest `max_rows` are kept
/// (new rows first, then the newest old ones). Then draws the seeded replay sample.
pub(crate) fn pools(
    old: &Dataset,
    new_train: &Dataset,
    t_now: i64,
    cfg: &TrainConfig,
    seed: u64,
) -> Pools {
    let keep_recent = |d: &Dataset| -> Dataset {
        match cfg.window.max_age_seconds {
            Some(age) => {
                let cutoff = t_now.saturating_sub(age);
                let first = d.ts.partition_point(|&t| t < cutoff);
                d.slice(first, d.len())
            }
            None => d.clone(),
        }
    };
    let mut old_w = keep_recent(old);
    let mut new_w = keep_recent(new_train);
    if let Some(max) = cfg.window.max_rows {
        if new_w.len() > max {
            new_w = new_w.slice(new_w.len() - max, new_w.len());
        }
        let room = max - new_w.len();
        if old_w.len() > room {
            old_w = old_w.slice(old_w.len() - room, old_w.len());
        }
    }
    let k = (cfg.replay_fraction * old_w.len() as f64).round() as usize;
    let replay = if k == 0 {
        Dataset::empty(old.n_features)
    } else {
        let mut rng = StdRng::seed_from_u64(splitmix(seed ^ 0x007e_91a7));
        let mut idx = sample(&mut rng, old_w.len(), k.min(old_w.len())).into_vec();
        idx.sort_unstable();
        old_w.subset(&idx)
    };
    Pools {
        old: old_w,
        new_train: new_w,
        replay,
    }
}

/// The architecture a job trains.
pub(crate) fn job_arch(
    key: &JobKey,
    champion: Option<&ModelArtifact>,
    n_features: usize,
    n_classes: usize,
) -> Arch {
    match (key, champion) {
        (JobKey::Finetune { .. }, Some(c)) => c.arch.clone(),
        (JobKey::Fresh { hidden, .. }, _) => Arch::new(n_features, hidden, n_classes),
        // Not reachable (fine-tuning needs a champion); keep a well-formed answer.
        (JobKey::Finetune { .. }, None) => Arch::new(n_features, &[], n_classes),
    }
}

/// Builds `strategy`'s artifact from its trained jobs.
pub(crate) fn assemble(
    spec: CandidateSpec,
    champion: &ModelArtifact,
    trained: &BTreeMap<JobKey, Member>,
    cfg: &TrainConfig,
) -> Result<ModelArtifact> {
    let get = |key: &JobKey| {
        trained
            .get(key)
            .cloned()
            .ok_or_else(|| TrainError::InvalidInput(format!("job {} missing", key.label())))
    };
    let keys = jobs_for(spec, champion, cfg);
    match spec.strategy {
        Strategy::FinetuneNew | Strategy::FinetuneCombined => {
            let members = keys.iter().map(get).collect::<Result<Vec<_>>>()?;
            Ok(ModelArtifact {
                arch: champion.arch.clone(),
                members,
                ensemble: champion.ensemble.clone(),
                encoding: champion.encoding.clone(),
            })
        }
        Strategy::RefitNew | Strategy::RefitCombined => {
            let n_features = champion.arch.n_features;
            let arch = Arch::new(n_features, &cfg.hidden_layers, champion.arch.n_classes);
            Ok(ModelArtifact::single(arch, get(&keys[0])?))
        }
        Strategy::EnsembleNew | Strategy::EnsembleCombined => {
            let fresh = get(&keys[0])?;
            let a = cfg.ensemble_new_member_weight as f32;
            let mut members: Vec<(Member, f32)> = champion
                .members
                .iter()
                .cloned()
                .zip(champion.ensemble.weights.iter().map(|w| w * (1.0 - a)))
                .collect();
            while members.len() + 1 > cfg.max_ensemble_members {
                // Drop the lowest-weight (first on ties: oldest) champion member.
                let (drop, _) = members
                    .iter()
                    .enumerate()
                    .min_by(|x, y| x.1 .1.total_cmp(&y.1 .1).then(x.0.cmp(&y.0)))
                    .expect("non-empty");
                members.remove(drop);
            }
            members.push((fresh, a));
            let total: f32 = members.iter().map(|m| m.1).sum();
            let weights = members.iter().map(|m| m.1 / total).collect();
            Ok(ModelArtifact {
                arch: champion.arch.clone(),
                members: members.into_iter().map(|m| m.0).collect(),
                ensemble: Ensemble {
                    method: "weighted_mean_proba".into(),
                    weights,
                },
                encoding: champion.encoding.clone(),
            })
        }
        Strategy::None | Strategy::Auto => Ok(champion.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(ts: std::ops::Range<i64>) -> Dataset {
        let n = (ts.end - ts.start) as usize;
        Dataset {
            x: vec![0.0; n],
            n_features: 1,
            y: vec![0.0; n],
            ts: ts.clone().collect(),
            ids: ts.collect(),
        }
    }

    #[test]
    fn window_and_replay() {
        let old = ds(0..100);
        let new = ds(100..150);
        let mut cfg = TrainConfig::default();
        let p = pools(&old, &new, 160, &cfg, 1);
        assert_eq!(
            (p.old.len(), p.new_train.len(), p.replay.len()),
            (100, 50, 0)
        );
        cfg.window.max_age_seconds = Some(100); // keep ts >= 60
        let p = pools(&old, &new, 160, &cfg, 1);
        assert_eq!((p.old.len(), p.old.ts[0]), (40, 60));
        cfg.window.max_rows = Some(70);
        let p = pools(&old, &new, 160, &cfg, 1);
        assert_eq!((p.old.len(), p.new_train.len(), p.old.ts[0]), (20, 50, 80));
        cfg.window = Default::default();
        cfg.replay_fraction = 0.25;
        let p = pools(&old, &new, 160, &cfg, 1);
        assert_eq!(p.replay.len(), 25);
        assert!(p.replay.ts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(p.replay, pools(&old, &new, 160, &cfg, 1).replay);
        assert_ne!(p.replay, pools(&old, &new, 160, &cfg, 2).replay);
        assert_eq!(p.rows(Rows::New).unwrap().len(), 75);
        assert_eq!(p.rows(Rows::Combined).unwrap().len(), 150);
    }

    #[test]
    fn seeds_differ_per_job() {
        let a = JobKey::Fresh {
            rows: Rows::New,
            hidden: vec![20, 10],
        }
        .seed(1);
        let b = JobKey::Fresh {
            rows: Rows::Combined,
            hidden: vec![20, 10],
        }
        .seed(1);
        let c = JobKey::Finetune {
            rows: Rows::New,
            member: 0,
        }
        .seed(1);
        assert!(a != b && b != c && a != c);
        assert_eq!(
            a,
            JobKey::Fresh {
                rows: Rows::New,
                hidden: vec![20, 10]
            }
            .seed(1)
        );
    }
}
