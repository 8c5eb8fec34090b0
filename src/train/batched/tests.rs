//! The engine's tests: batched against one-by-one, schedules, budgets, divergence,
//! early stopping, cancel.

use std::sync::atomic::Ordering;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::Tensor;

use super::*;
use crate::train::synth::{make_classification, Concept};

fn data(seed: u64, n: usize) -> Dataset {
    let c = Concept::new(seed, 10, 8, 2);
    make_classification(&c, n, 0, seed + 1)
}

fn quick_opts(seed: u64) -> FitOptions {
    let cfg = TrainConfig {
        fit_epochs: 20,
        ..Default::default()
    };
    FitOptions::fresh(&cfg, seed)
}

#[test]
fn deterministic_with_seed() {
    let d = data(1, 300);
    let arch = Arch::new(10, &[20, 10], 2);
    let no = AtomicBool::new(false);
    let (m1, s1) = fit(&arch, &d, None, &quick_opts(5), &no).unwrap();
    let (m2, s2) = fit(&arch, &d, None, &quick_opts(5), &no).unwrap();
    assert_eq!(m1, m2, "same seed must give identical weights");
    assert_eq!(s1.final_loss, s2.final_loss);
    let (m3, _) = fit(&arch, &d, None, &quick_opts(6), &no).unwrap();
    assert_ne!(m1, m3);
    assert!(s1.final_loss < s1.initial_loss * 0.8, "{s1:?}");
    assert_eq!(s1.epochs_run, 20);
    assert_eq!(s1.steps, 20 * 300usize.div_ceil(32));
}

/// The engine's hand-written step equals PyTorch-style SGD momentum with autograd.
#[test]
fn matches_autograd_sgd() {
    let d = data(2, 70); // 3 batches per epoch, the last partial
    let arch = Arch::new(10, &[6, 4], 2);
    let cfg = TrainConfig {
        fit_epochs: 3,
        ..Default::default()
    };
    let opts = FitOptions::fresh(&cfg, 9);
    let spec = JobSpec {
        label: "t".into(),
        lr: 0.05,
        epochs: 3,
        max_steps: None,
        freeze: 0,
        seed: 9,
    };
    let (job, _) = prepare_job(&arch, &d, None, &spec, None, None).unwrap();
    let eopts = EngineOpts {
        batch_size: 32,
        momentum: 0.9,
        divergence_factor: 1e9,
        early_stopping: None,
        device: Device::Cpu,
    };
    let no = AtomicBool::new(false);
    let got = train_jobs(&arch, std::slice::from_ref(&job), &eopts, &no)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap()
        .0;
    let _ = opts;

    // Reference: autograd + the same batches (replaying the job's shuffling RNG).
    let mut params: Vec<Tensor> = Vec::new();
    for lin in &job.init {
        params.push(
            Tensor::from_slice(&lin.w)
                .view([lin.out as i64, lin.inp as i64])
                .set_requires_grad(true),
        );
        params.push(Tensor::from_slice(&lin.b).set_requires_grad(true));
    }
    let mut bufs: Vec<Option<Tensor>> = (0..params.len()).map(|_| None).collect();
    let n = job.y.len();
    let mut rng = StdRng::seed_from_u64(job.seed ^ SHUFFLE_SALT);
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let x = Tensor::from_slice(&job.x).view([n as i64, 10]);
    let y = Tensor::from_slice(&job.y).view([n as i64, 1]);
    for _ in 0..3 {
        for i in (1..n).rev() {
            let r = rng.gen_range(0..=i);
            perm.swap(i, r);
        }
        for chunk in perm.chunks(32) {
            let ix = Tensor::from_slice(&chunk.iter().map(|&r| r as i64).collect::<Vec<_>>());
            let mut a = x.index_select(0, &ix);
            for l in 0..3 {
                a = a.linear(&params[2 * l], Some(&params[2 * l + 1]));
                if l < 2 {
                    a = a.relu();
                }
            }
            let loss = a.binary_cross_entropy_with_logits::<Tensor>(
                &y.index_select(0, &ix),
                None,
                None,
                tch::Reduction::Mean,
            );
            for p in params.iter_mut() {
                p.zero_grad();
            }
            loss.backward();
            tch::no_grad(|| {
                for (p, buf) in params.iter_mut().zip(bufs.iter_mut()) {
                    let g = p.grad();
                    let nb = match buf.take() {
                        None => g.copy(),
                        Some(b) => b * 0.9 + g,
                    };
                    let _ = p.f_sub_(&(&nb * 0.05)).unwrap();
                    *buf = Some(nb);
                }
            });
        }
    }
    for (l, lin) in got.iter().enumerate() {
        let rw = Vec::<f32>::try_from(params[2 * l].detach().reshape([-1])).unwrap();
        let rb = Vec::<f32>::try_from(params[2 * l + 1].detach().reshape([-1])).unwrap();
        for (a, b) in lin.w.iter().zip(&rw).chain(lin.b.iter().zip(&rb)) {
            assert!((a - b).abs() < 1e-5, "layer {l}: {a} vs {b}");
        }
    }
}

#[test]
fn batched_equals_one_by_one() {
    let arch = Arch::new(10, &[20, 10], 2);
    let d1 = data(3, 200);
    let d2 = data(4, 90);
    let no = AtomicBool::new(false);
    let spec = |lr, epochs, freeze, seed| JobSpec {
        label: "j".into(),
        lr,
        epochs,
        max_steps: None,
        freeze,
        seed,
    };
    let (j1, s1) = prepare_job(&arch, &d1, None, &spec(0.01, 12, 0, 1), None, Some(500.0)).unwrap();
    let parent = Member::from_layers(s1, &j1.init);
    let (j2, _) =
        prepare_job(&arch, &d2, Some(&parent), &spec(0.001, 7, 1, 2), None, None).unwrap();
    let (j3, _) = prepare_job(
        &arch,
        &d1.concat(&d2).unwrap(),
        None,
        &spec(0.02, 5, 0, 3),
        None,
        None,
    )
    .unwrap();
    let jobs = vec![j1, j2, j3];
    let eopts = EngineOpts {
        batch_size: 32,
        momentum: 0.9,
        divergence_factor: 10.0,
        early_stopping: None,
        device: Device::Cpu,
    };
    let together = train_jobs(&arch, &jobs, &eopts, &no).unwrap();
    for (job, tog) in jobs.iter().zip(together) {
        let alone = train_jobs(&arch, std::slice::from_ref(job), &eopts, &no)
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        let tog = tog.unwrap();
        assert_eq!(alone.1.steps, tog.1.steps);
        assert_eq!(alone.1.epochs_run, tog.1.epochs_run);
        for (la, lt) in alone.0.iter().zip(&tog.0) {
            for (a, b) in la.w.iter().zip(&lt.w).chain(la.b.iter().zip(&lt.b)) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
        }
        assert!((alone.1.final_loss - tog.1.final_loss).abs() < 1e-4);
    }
    // The frozen first layer of job 2 did not move.
    let tog = train_jobs(&arch, &jobs, &eopts, &no).unwrap();
    let j2 = tog[1].as_ref().unwrap();
    assert_eq!(j2.0[0], jobs[1].init[0]);
    assert_ne!(j2.0[1], jobs[1].init[1]);
}

#[test]
fn cancel_and_nan() {
    let arch = Arch::new(10, &[20, 10], 2);
    let d = data(5, 200);
    let yes = AtomicBool::new(true);
    assert!(matches!(
        fit(&arch, &d, None, &quick_opts(1), &yes),
        Err(TrainError::Cancelled)
    ));
    let mut bad = d.clone();
    bad.x[7] = f32::NAN;
    let no = AtomicBool::new(false);
    assert!(matches!(
        fit(&arch, &bad, None, &quick_opts(1), &no),
        Err(TrainError::Diverged(_))
    ));
    // A huge learning rate blows up and is caught as divergence.
    let opts = FitOptions {
        lr: 50.0,
        ..quick_opts(1)
    };
    assert!(matches!(
        fit(&arch, &d, None, &opts, &no),
        Err(TrainError::Diverged(_))
    ));
}

#[test]
fn cancel_midway_from_another_thread() {
    let arch = Arch::new(10, &[20, 10], 2);
    let d = data(6, 2000);
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let f2 = flag.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        f2.store(true, Ordering::Relaxed);
    });
    // No sample budget: the fit must still be running when the flag goes up.
    let opts = FitOptions {
        epochs: 10_000,
        sample_budget: 0,
        ..quick_opts(1)
    };
    let t0 = Instant::now();
    assert!(matches!(
        fit(&arch, &d, None, &opts, &flag),
        Err(TrainError::Cancelled)
    ));
    assert!(t0.elapsed().as_secs_f64() < 5.0);
    h.join().unwrap();
}

#[test]
fn early_stopping_stops_and_multiclass_learns() {
    let c = Concept::new(11, 10, 8, 3);
    let d = make_classification(&c, 600, 0, 12);
    let arch = Arch::new(10, &[20, 10], 3);
    let no = AtomicBool::new(false);
    let mut opts = quick_opts(2);
    opts.epochs = 400;
    opts.lr = 0.05;
    opts.early_stopping = Some(EarlyStopping {
        patience: 3,
        validation_fraction: 0.2,
        min_delta: 0.0,
    });
    let (m, s) = fit(&arch, &d, None, &opts, &no).unwrap();
    assert!(s.stopped_early && s.epochs_run < 400, "{s:?}");
    assert!(s.best_val_loss.unwrap() < 1.0);
    assert_eq!(s.n_train_rows, 480);
    let layers = m.layers(&arch).unwrap();
    let p =
        crate::train::mlp::forward_proba(&arch, &layers, &m.scaler.transform(&d.x), Device::Cpu)
            .unwrap();
    assert_eq!(p.len(), 600 * 3);
    let acc = p
        .chunks(3)
        .zip(&d.y)
        .filter(|(row, &y)| {
            let am = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            am as f32 == y
        })
        .count() as f64
        / 600.0;
    assert!(acc > 0.6, "multiclass accuracy {acc}");
}
