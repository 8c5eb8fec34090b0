//! The tournament's tests: every strategy, `auto` on drift and without, windows, the
//! batched engine against the sequential one, bootstrap, cancel, multiclass.

use super::*;
use crate::shadow::evidence::erfc;
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
        ..Default::default()
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
        assert!(rep.error.is_none() && rep.train_seconds > 0.0 && rep.mcnemar_p_value.is_some());
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
    // The chosen model's holdout trace: its stored predictions on the holdout rows, whose
    // errors are its holdout accuracy's.
    let chosen = out.chosen.as_ref().unwrap();
    let trace = chosen.holdout_trace.as_ref().unwrap();
    assert_eq!(trace.len(), out.n_holdout.min(HoldoutTrace::MAX_ROWS));
    let right = trace
        .rows()
        .filter(|&(p, y)| crate::domain::Task::Binary.predicted_class(p) == y)
        .count();
    let acc = chosen.holdout.unwrap().accuracy;
    assert!(
        (right as f64 / trace.len() as f64 - acc).abs() < 1e-9,
        "{right} vs {acc}"
    );
}

#[test]
fn ties_keep_the_champion_and_what_is_promoted_is_more_accurate() {
    // A champion fit on plenty of rows of a concept, more rows of the same concept: the
    // candidates are about as accurate. With `ties_keep_champion`, whatever is promoted
    // (the best candidate or one preferred within the tolerance) is right on more holdout
    // rows than the champion; a tie keeps it.
    let cfg = TrainConfig {
        ties_keep_champion: true,
        ..quick()
    };
    let a = Concept::new(4, 12, 9, 2);
    let old = make_classification(&a, 2000, 0, 10);
    let no = no();
    let bootstrap = run_update(
        &UpdateRequest::new(3, None),
        None,
        &old,
        &Dataset::empty(12),
        &cfg,
        &no,
    );
    let champ = bootstrap.unwrap().chosen.unwrap().artifact;
    let mut kept = 0;
    for seed in 0..4 {
        let same = make_classification(&a, 500, 3000 + 500 * seed as i64, 20 + seed);
        let out = run_update(
            &UpdateRequest::new(seed, None),
            Some(&champ),
            &old,
            &same,
            &cfg,
            &no,
        )
        .unwrap();
        let ch = out.champion_holdout.unwrap().accuracy;
        let chosen = out.chosen.unwrap().holdout.unwrap().accuracy;
        if out.promoted {
            assert!(chosen > ch, "{}", out.reason);
        } else {
            kept += 1;
        }
    }
    eprintln!("{kept} of 4 kept");
    // The gate on given scores: a candidate as accurate as the champion with a lower
    // log-loss is promoted without the rule; with it, the champion stays and says why.
    let s = |accuracy, log_loss| Scores {
        accuracy,
        log_loss,
        n: 100,
    };
    let scored = vec![super::score::Scored {
        report: 0,
        cand: Candidate {
            strategy: Strategy::RefitNew,
            recent_rows: None,
            artifact: champ,
            holdout: Some(s(0.9, 0.2)),
            train_seconds: 0.0,
            n_train_rows: 100,
            calibration: None,
            holdout_trace: None,
        },
        detail: None,
    }];
    let reports = vec![CandidateReport {
        strategy: Strategy::RefitNew,
        recent_rows: None,
        holdout_accuracy: Some(0.9),
        holdout_log_loss: Some(0.2),
        train_seconds: 0.0,
        n_train_rows: 100,
        epochs_run: 1,
        steps: 1,
        final_train_loss: None,
        mcnemar_p_value: Some(1.0),
        error: None,
    }];
    let champion = Some(s(0.9, 0.3));
    let verdict = |cfg: &TrainConfig| gate(Strategy::Auto, &scored, 0, 0, &reports, champion, cfg);
    assert!(verdict(&quick()).promotes(), "{}", verdict(&quick()));
    let tie = verdict(&cfg);
    assert!(
        matches!(tie, Verdict::Keep(KeepReason::Tie { .. })),
        "{tie}"
    );
    assert!(
        tie.to_string()
            .contains("not more accurate than the champion"),
        "{tie}"
    );
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
    assert_eq!(out.reason, out.verdict.to_string());
    assert_eq!(out.promoted, out.verdict.promotes());
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
            (x.holdout_accuracy.unwrap() - y.holdout_accuracy.unwrap()).abs() <= 1.0 / 60.0 + 1e-9
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

#[test]
fn a_new_class_is_learnt_by_every_strategy_with_grow_and_refused_without() {
    let cfg = quick();
    // A world of three classes, of which the champion saw only two.
    let world = make_classification(&Concept::new(1, 12, 9, 3), 1400, 0, 12);
    let first: Vec<usize> = (0..800).filter(|&i| world.y[i] < 2.0).collect();
    let old = world.subset(&first);
    let new = world.subset(&(800..1400).collect::<Vec<_>>());
    assert!(new.y.contains(&2.0));
    let boot = run_update(
        &UpdateRequest::default(),
        None,
        &old,
        &Dataset::empty(12),
        &cfg,
        &no(),
    );
    let champ = boot.unwrap().chosen.unwrap().artifact;
    assert_eq!(champ.arch.n_classes, 2);
    let fixed = UpdateRequest::default();
    let e = run_update(&fixed, Some(&champ), &old, &new, &cfg, &no()).unwrap_err();
    assert!(e.to_string().contains("not a class index below 2"), "{e}");
    let grow = UpdateRequest {
        grow_classes: true,
        ..Default::default()
    };
    for strategy in [
        Strategy::Auto,
        Strategy::FinetuneNew,
        Strategy::FinetuneCombined,
        Strategy::RefitNew,
        Strategy::EnsembleNew,
    ] {
        let req = UpdateRequest {
            strategy: Some(strategy),
            ..grow.clone()
        };
        let out = run_update(&req, Some(&champ), &old, &new, &cfg, &no()).unwrap();
        assert_eq!(
            out.grew_classes,
            Some(ClassGrowth { from: 2, to: 3 }),
            "{strategy}"
        );
        assert!(
            out.reason.contains("binary became multiclass"),
            "{}",
            out.reason
        );
        let art = out.chosen.expect("a model").artifact;
        art.validate().unwrap();
        assert_eq!(art.arch.n_classes, 3, "{strategy}");
        // The new class is predicted on rows of it, far better than by the champion, which
        // never output it (its widened copy could, by chance).
        let recall = |a: &ModelArtifact| {
            let p = predict(a, &new.x).unwrap();
            let of_new: Vec<usize> = (0..new.len()).filter(|&i| new.y[i] == 2.0).collect();
            let right = of_new.iter().filter(|&&i| p.labels[i] == 2).count();
            right as f64 / of_new.len() as f64
        };
        let before = recall(&crate::train::widen::widen(&champ, 3).unwrap());
        let after = recall(&art);
        eprintln!("{strategy}: class 2 recall {before:.3} → {after:.3}");
        assert!(after > before + 0.2, "{strategy}: {before:.3} → {after:.3}");
        if strategy == Strategy::Auto {
            assert!(after > 0.8, "auto: {after:.3}");
        }
    }
    // A first model sizes its output from the rows.
    let out = run_update(&grow, None, &new, &Dataset::empty(12), &cfg, &no()).unwrap();
    assert_eq!(out.chosen.unwrap().artifact.arch.n_classes, 3);
    assert_eq!(out.grew_classes, Some(ClassGrowth { from: 2, to: 3 }));
}

#[test]
fn refit_combined_with_nothing_new_holds_out_the_newest_old_rows() {
    let cfg = quick();
    let (champ, old) = champion(&cfg, 2);
    let empty = Dataset::empty(12);
    let out = run_update(
        &UpdateRequest::new(1, Some(Strategy::RefitCombined)),
        Some(&champ),
        &old,
        &empty,
        &cfg,
        &no(),
    )
    .unwrap();
    let k = old.split_newest(cfg.holdout_fraction).1.len();
    assert!(k > 0);
    assert_eq!(out.n_holdout, k);
    assert_eq!(out.n_old_rows, old.len() - k);
    assert_eq!(out.n_new_train_rows, 0);
    assert_eq!(out.champion_holdout.unwrap().n, k);
    assert_eq!(out.candidates.len(), 1);
    assert!(out.chosen.is_some());
    assert!(
        out.reason.contains("favours the champion"),
        "{}",
        out.reason
    );
    // Every other strategy still needs new rows.
    let r = run_update(
        &UpdateRequest::new(1, Some(Strategy::FinetuneCombined)),
        Some(&champ),
        &old,
        &empty,
        &cfg,
        &no(),
    );
    assert!(matches!(r, Err(TrainError::InvalidInput(_))));
}

/// Rows of (x0 numeric, plan categorical, x2 numeric): the label is 1 for plans "pro" and
/// "team", and the plans seen are `plans`.
fn plan_rows(n: usize, plans: &[&str], t0: i64, seed: u64) -> (Dataset, Vec<&'static str>) {
    use rand::{Rng, SeedableRng};
    const ALL: [&str; 5] = ["free", "basic", "pro", "team", "edu"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut d = Dataset::empty(3);
    let mut names = Vec::new();
    for i in 0..n {
        let plan = *ALL
            .iter()
            .filter(|p| plans.contains(p))
            .nth(rng.gen_range(0..plans.len()))
            .unwrap();
        let y = u8::from(plan == "pro" || plan == "team" || plan == "edu");
        d.x.extend([
            rng.gen::<f32>(),
            crate::domain::category_code(plan),
            rng.gen::<f32>(),
        ]);
        d.y.push(f32::from(y));
        d.ts.push(t0 + i as i64);
        d.ids.push(t0 + i as i64);
        names.push(plan);
    }
    (d, names)
}

#[test]
fn a_categorical_feature_is_one_hot_its_vocabulary_grows_and_pytorch_reproduces_it() {
    let cfg = quick();
    let req = UpdateRequest {
        categorical: vec![1],
        max_categories: 8,
        ..Default::default()
    };
    let (old, _) = plan_rows(600, &["free", "basic", "pro", "team"], 0, 1);
    let boot = run_update(&req, None, &old, &Dataset::empty(3), &cfg, &no()).unwrap();
    let champ = boot.chosen.unwrap().artifact;
    let enc = champ.encoding.clone().expect("a vocabulary");
    assert_eq!(enc.vocabularies[0].codes.len(), 4);
    assert_eq!(champ.arch.n_features, 2 + 5);
    let (test, _) = plan_rows(400, &["free", "basic", "pro", "team"], 1000, 2);
    let p = predict(&champ, &test.x).unwrap();
    let right = (0..test.len())
        .filter(|&i| p.labels[i] as f32 == test.y[i])
        .count();
    assert!(
        right as f64 > 0.95 * test.len() as f64,
        "{right} of {}",
        test.len()
    );
    // A plan it never saw is "other"; a fine-tune over new rows with it widens the inputs.
    let (new, _) = plan_rows(400, &["free", "basic", "pro", "team", "edu"], 2000, 3);
    for strategy in [Strategy::FinetuneNew, Strategy::EnsembleNew, Strategy::Auto] {
        let r = UpdateRequest {
            strategy: Some(strategy),
            ..req.clone()
        };
        let out = run_update(&r, Some(&champ), &old, &new, &cfg, &no()).unwrap();
        let art = out.chosen.unwrap().artifact;
        art.validate().unwrap();
        let grown = art.encoding.as_ref().unwrap();
        assert_eq!(
            grown.vocabularies[0].codes[..4],
            enc.vocabularies[0].codes[..],
            "{strategy}"
        );
        assert_eq!(grown.vocabularies[0].codes.len(), 5, "{strategy}");
        assert_eq!(art.arch.n_features, 2 + 6);
    }
    // The export, in PyTorch, from the plans' text.
    let Ok(python) = std::env::var("DRIFTD_PYTHON") else {
        panic!("DRIFTD_PYTHON is not set: the PyTorch export check cannot run");
    };
    let dir = tempfile::tempdir().unwrap();
    let (rows, plans) = plan_rows(50, &["free", "basic", "pro", "team", "edu"], 5000, 4);
    let p = predict(&champ, &rows.x).unwrap();
    let x: Vec<serde_json::Value> = (0..rows.len())
        .map(|i| serde_json::json!([rows.row(i)[0], plans[i], rows.row(i)[2]]))
        .collect();
    let path = |f: &str| dir.path().join(f);
    std::fs::write(path("m.safetensors"), champ.to_safetensors_bytes()).unwrap();
    std::fs::write(path("m.json"), champ.sidecar_json()).unwrap();
    std::fs::write(path("in.json"), serde_json::json!({ "x": x }).to_string()).unwrap();
    std::fs::write(
        path("exp.json"),
        serde_json::json!({ "proba": p.proba }).to_string(),
    )
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/export_check.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["m.safetensors", "m.json", "in.json", "exp.json"].map(path))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
