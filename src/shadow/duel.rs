//! The champion and a challenger on the same recent rows: which of them was right on each,
//! and whether the challenger is better with significance.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::evidence::mcnemar_better_p;
use crate::domain::HoldoutTrace;

/// The newest `capacity` rows both predicted (each row once, before the challenger learnt
/// from it), with the challenger's predictions for the detectors of the version it may
/// become.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Duel {
    /// Per row, bit 0: the champion was right; bit 1: the challenger was.
    #[serde(with = "super::packed_bytes")]
    outcomes: VecDeque<u8>,
    #[serde(with = "crate::domain::packed::f32s")]
    predictions: VecDeque<f32>,
    labels: VecDeque<u32>,
    /// Rows only the champion was right on (McNemar's `b`), and only the challenger (`c`).
    champion_only: usize,
    challenger_only: usize,
    champion_right: usize,
    challenger_right: usize,
}

/// How the two did on the duel's rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    pub rows: usize,
    pub champion_accuracy: f64,
    pub challenger_accuracy: f64,
    /// One-sided McNemar: that the challenger is no better.
    pub p_value: f64,
}

impl Duel {
    /// One row: whether each was right, and what the challenger predicted.
    pub fn push(
        &mut self,
        capacity: usize,
        champion: bool,
        challenger: bool,
        prediction: f32,
        label: u32,
    ) {
        while self.outcomes.len() >= capacity.max(1) {
            let old = self.outcomes.pop_front().unwrap_or(0);
            self.predictions.pop_front();
            self.labels.pop_front();
            self.count(old, false);
        }
        let code = u8::from(champion) | u8::from(challenger) << 1;
        self.outcomes.push_back(code);
        self.predictions.push_back(prediction);
        self.labels.push_back(label);
        self.count(code, true);
    }

    fn count(&mut self, code: u8, add: bool) {
        let step = |n: &mut usize| {
            if add {
                *n += 1
            } else {
                *n -= 1
            }
        };
        match code {
            1 => step(&mut self.champion_only),
            2 => step(&mut self.challenger_only),
            _ => {}
        }
        if code & 1 == 1 {
            step(&mut self.champion_right);
        }
        if code & 2 == 2 {
            step(&mut self.challenger_right);
        }
    }

    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Duel::default();
    }

    pub fn standing(&self) -> Standing {
        let n = self.len().max(1) as f64;
        Standing {
            rows: self.len(),
            champion_accuracy: self.champion_right as f64 / n,
            challenger_accuracy: self.challenger_right as f64 / n,
            p_value: mcnemar_better_p(self.champion_only, self.challenger_only),
        }
    }

    /// The challenger's predictions on the duel's rows, oldest first (its detectors start
    /// from them if it is promoted).
    pub fn trace(&self) -> HoldoutTrace {
        HoldoutTrace::newest(
            self.predictions
                .iter()
                .copied()
                .zip(self.labels.iter().copied())
                .collect::<Vec<_>>()
                .into_iter(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_window() {
        let mut d = Duel::default();
        // 10 rows the challenger alone gets right, then 10 both get right.
        for _ in 0..10 {
            d.push(15, false, true, 0.9, 1);
        }
        for _ in 0..10 {
            d.push(15, true, true, 0.9, 1);
        }
        let s = d.standing();
        assert_eq!(s.rows, 15);
        assert!((s.challenger_accuracy - 1.0).abs() < 1e-12);
        assert!((s.champion_accuracy - 10.0 / 15.0).abs() < 1e-12);
        // Five discordant rows, all the challenger's: one-sided exact p = 0.5^5.
        assert!((s.p_value - 0.5f64.powi(5)).abs() < 1e-12);
        assert_eq!(d.trace().len(), 15);
        let back: Duel = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        // The champion ahead: no evidence for the challenger at all.
        for _ in 0..15 {
            d.push(15, true, false, 0.1, 1);
        }
        assert_eq!(d.standing().p_value, 1.0);
    }
}
