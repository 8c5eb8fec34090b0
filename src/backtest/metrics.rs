//! What streaming users expect of a prequential evaluation: accuracy, Cohen's κ, κ-temporal
//! against the no-change classifier (Žliobaitė, Bifet, Read, Pfahringer, Holmes, "Evaluation
//! methods and decision theory for classification of streaming data with temporal
//! dependence", Machine Learning 98, 2015), and the two baselines every stream should be
//! judged against: *no-change* (predict the newest label known) and *majority* (predict the
//! most frequent label seen so far).

use serde::{Deserialize, Serialize};

use super::Retrain;

/// One class's evaluated rows: where it first appeared, its accuracy (recall) overall, and in
/// each block of [`CLASS_BLOCK_ROWS`] stream rows from there, which shows how soon a class
/// the model has never seen is learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub class: u32,
    /// The first evaluated row labelled with it.
    pub first_row: usize,
    pub rows: usize,
    pub accuracy: f64,
    /// Its accuracy in stream rows `first_row + k·1000 .. first_row + (k+1)·1000`
    /// (`None`: none of its rows there).
    pub accuracy_by_block: Vec<Option<f64>>,
    /// Its rows in each of those blocks.
    pub rows_by_block: Vec<usize>,
}

/// The blocks of [`ClassReport::accuracy_by_block`], in stream rows.
pub const CLASS_BLOCK_ROWS: usize = 1000;

/// Every class of `labels[from..]`, in class order, from the rows' correctness.
pub fn class_reports(labels: &[u32], correct: &[bool], from: usize) -> Vec<ClassReport> {
    let mut by_class: std::collections::BTreeMap<u32, (usize, Vec<(usize, usize)>)> =
        Default::default();
    for i in from..labels.len() {
        let (first, blocks) = by_class.entry(labels[i]).or_insert((i, Vec::new()));
        let k = (i - *first) / CLASS_BLOCK_ROWS;
        if blocks.len() <= k {
            blocks.resize(k + 1, (0, 0));
        }
        blocks[k].0 += usize::from(correct[i]);
        blocks[k].1 += 1;
    }
    by_class
        .into_iter()
        .map(|(class, (first_row, blocks))| {
            let hits: usize = blocks.iter().map(|b| b.0).sum();
            let rows: usize = blocks.iter().map(|b| b.1).sum();
            ClassReport {
                class,
                first_row,
                rows,
                accuracy: hits as f64 / rows as f64,
                accuracy_by_block: blocks
                    .iter()
                    .map(|&(h, n)| (n > 0).then(|| h as f64 / n as f64))
                    .collect(),
                rows_by_block: blocks.iter().map(|b| b.1).collect(),
            }
        })
        .collect()
}

/// What the updates after the bootstrap cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateCost {
    pub updates: usize,
    /// Wall seconds of one update's training, mean and maximum.
    pub mean_seconds: f64,
    pub max_seconds: f64,
    /// Optimiser steps of one update (all its jobs), mean.
    pub mean_steps: f64,
}

impl UpdateCost {
    pub fn of(updates: &[Retrain]) -> Self {
        let n = updates.len();
        if n == 0 {
            return UpdateCost::default();
        }
        let secs = updates.iter().map(|u| u.train_seconds);
        UpdateCost {
            updates: n,
            mean_seconds: secs.clone().sum::<f64>() / n as f64,
            max_seconds: secs.fold(0.0, f64::max),
            mean_steps: updates.iter().map(|u| u.steps as f64).sum::<f64>() / n as f64,
        }
    }
}

/// Prequential figures of one replay next to the baselines on the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamMetrics {
    pub accuracy: f64,
    /// Cohen's κ: `(p0 − pc) / (1 − pc)`, `pc` the agreement of two independent classifiers
    /// with the predicted and the true class frequencies. 0 when `pc` = 1.
    pub kappa: f64,
    /// κ-temporal: `(p0 − p_nc) / (1 − p_nc)` with `p_nc` the no-change classifier's accuracy;
    /// below 0 means "worse than repeating the newest label". 0 when `p_nc` = 1.
    pub kappa_temporal: f64,
    /// Accuracy of predicting, for each row, the label of the newest row labelled before it
    /// (with a label delay of `d` rows: the row `d + 1` before it).
    pub no_change_accuracy: f64,
    /// Accuracy of predicting the most frequent label among the rows labelled before it
    /// (ties: the smaller class).
    pub majority_accuracy: f64,
}

/// The metrics of `predicted[i]` for `y[first + i]`, the rows `first..` of a history whose
/// labels `y` are all known; row `j`'s label is known from row `j + delay + 1` on (the rows
/// before `first` are known from the start).
pub fn stream_metrics(
    y: &[u32],
    predicted: &[u32],
    first: usize,
    delay: usize,
    n_classes: usize,
) -> StreamMetrics {
    let evaluated = &y[first..];
    assert_eq!(evaluated.len(), predicted.len(), "one prediction per row");
    let n = evaluated.len().max(1) as f64;
    let n_classes = n_classes.max(1 + y.iter().copied().max().unwrap_or(0) as usize);
    let p0 = agreement(evaluated, predicted);
    // The newest label known when row j is predicted: row j − delay − 1, or the last row
    // known from the start.
    let no_change: Vec<u32> = (first..y.len())
        .map(|j| y[j.saturating_sub(delay + 1).max(first.saturating_sub(1))])
        .collect();
    let p_nc = agreement(evaluated, &no_change);
    let majority = majority_predictions(y, first, delay, n_classes);
    let mut true_freq = vec![0f64; n_classes];
    let mut pred_freq = vec![0f64; n_classes];
    for (&t, &p) in evaluated.iter().zip(predicted) {
        true_freq[t as usize] += 1.0 / n;
        pred_freq[(p as usize).min(n_classes - 1)] += 1.0 / n;
    }
    let pc: f64 = true_freq.iter().zip(&pred_freq).map(|(a, b)| a * b).sum();
    StreamMetrics {
        accuracy: p0,
        kappa: kappa(p0, pc),
        kappa_temporal: kappa(p0, p_nc),
        no_change_accuracy: p_nc,
        majority_accuracy: agreement(evaluated, &majority),
    }
}

/// `(p0 − pe) / (1 − pe)`, 0 when the reference agrees perfectly (as River's `CohenKappa`).
fn kappa(p0: f64, pe: f64) -> f64 {
    if (1.0 - pe).abs() < 1e-12 {
        0.0
    } else {
        (p0 - pe) / (1.0 - pe)
    }
}

fn agreement(a: &[u32], b: &[u32]) -> f64 {
    let hits = a.iter().zip(b).filter(|(x, y)| x == y).count();
    hits as f64 / a.len().max(1) as f64
}

/// For each row `j >= first`, the most frequent label among the rows known before it.
fn majority_predictions(y: &[u32], first: usize, delay: usize, n_classes: usize) -> Vec<u32> {
    let mut counts = vec![0usize; n_classes];
    let mut known = 0usize; // labels y[..known] are counted
    let mut out = Vec::with_capacity(y.len() - first);
    for j in first..y.len() {
        let upto = first.max(j.saturating_sub(delay));
        while known < upto {
            counts[y[known] as usize] += 1;
            known += 1;
        }
        let best = (0..n_classes)
            .max_by(|&a, &b| counts[a].cmp(&counts[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        out.push(best as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case small enough to check by hand.
    #[test]
    fn kappa_and_kappa_temporal_by_hand() {
        // Two bootstrap rows (labels 0, 1), then 8 evaluated rows.
        let y = [0, 1, 1, 1, 0, 0, 1, 1, 0, 1];
        let predicted = [1, 1, 0, 0, 1, 0, 0, 1];
        let m = stream_metrics(&y, &predicted, 2, 0, 2);
        // Evaluated labels 1 1 0 0 1 1 0 1 vs predictions 1 1 0 0 1 0 0 1: 7 of 8 agree.
        assert!((m.accuracy - 7.0 / 8.0).abs() < 1e-12);
        // True: five 1s, three 0s; predicted: four 1s, four 0s.
        // pc = (5/8)(4/8) + (3/8)(4/8) = 0.5, κ = (0.875 − 0.5) / 0.5 = 0.75.
        assert!((m.kappa - 0.75).abs() < 1e-12, "{m:?}");
        // No-change predicts the previous label: 1 1 1 0 0 1 1 0 against 1 1 0 0 1 1 0 1:
        // 4 of 8. κ-temporal = (0.875 − 0.5) / 0.5 = 0.75.
        assert!((m.no_change_accuracy - 0.5).abs() < 1e-12, "{m:?}");
        assert!((m.kappa_temporal - 0.75).abs() < 1e-12);
        // Majority of the labels before each row (ties to 0): counts before rows 2..9 are
        // (1,1)→0, (1,2)→1, (1,3)→1, (2,3)→1, (3,3)→0, (3,4)→1, (3,5)→1, (4,5)→1,
        // against 1 1 0 0 1 1 0 1: 0✗ 1✓ 1✗ 1✗ 0✗ 1✓ 1✗ 1✓ = 3 of 8.
        assert!((m.majority_accuracy - 3.0 / 8.0).abs() < 1e-12, "{m:?}");
    }

    #[test]
    fn delay_and_degenerate_cases() {
        // With a one-row label delay, no-change repeats the label two rows back (the first
        // evaluated row only knows the bootstrap rows: the label one row back).
        let y = [0, 1, 0, 1, 0, 1];
        let m = stream_metrics(&y, &[0, 1, 0, 1], 2, 1, 2);
        assert_eq!(m.no_change_accuracy, 0.75);
        assert_eq!((m.accuracy, m.kappa_temporal), (1.0, 1.0));
        // A constant stream predicted right: pc = 1, κ is 0 by convention, not NaN.
        let m = stream_metrics(&[1, 1, 1], &[1, 1], 1, 0, 2);
        assert_eq!((m.accuracy, m.kappa), (1.0, 0.0));
    }
}
