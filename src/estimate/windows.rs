//! Rolling means of per-row expected correctness: over the last N rows, and over the last T
//! seconds of scoring time (`created_at`), both bounded as the monitor's windows are.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The mean of the last `size` values. The sum is recomputed from the entries every `size`
/// pushes, so rounding from add/subtract cannot accumulate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanWindow {
    pub size: usize,
    #[serde(with = "crate::domain::packed::f32s")]
    values: VecDeque<f32>,
    sum: f64,
    since_resum: usize,
}

impl MeanWindow {
    pub fn new(size: usize) -> Self {
        MeanWindow {
            size,
            values: VecDeque::with_capacity(size.min(1 << 16)),
            sum: 0.0,
            since_resum: 0,
        }
    }

    pub fn push(&mut self, v: f64) {
        let v = v as f32;
        if self.values.len() == self.size {
            self.sum -= f64::from(self.values.pop_front().unwrap_or(0.0));
        }
        self.values.push_back(v);
        self.sum += f64::from(v);
        self.since_resum += 1;
        if self.since_resum >= self.size {
            self.sum = self.values.iter().map(|&v| f64::from(v)).sum();
            self.since_resum = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The mean, `None` while empty.
    pub fn mean(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.sum / self.values.len() as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    start: i64,
    n: u64,
    sum: f64,
}

/// The mean of the values stamped in the last `span_secs` seconds, in 60 buckets. "Now" is
/// the newest stamp seen, not the wall clock, so a replay or a restart gives the same number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanTimeWindow {
    pub span_secs: i64,
    bucket_secs: i64,
    buckets: VecDeque<Bucket>,
}

impl MeanTimeWindow {
    pub const BUCKETS: i64 = 60;

    pub fn new(span_secs: i64) -> Self {
        MeanTimeWindow {
            span_secs,
            bucket_secs: (span_secs / Self::BUCKETS).max(1),
            buckets: VecDeque::new(),
        }
    }

    pub fn push(&mut self, ts: i64, v: f64) {
        let start = ts - ts.rem_euclid(self.bucket_secs);
        match self.buckets.back_mut() {
            // Rows come in scoring order; one stamped earlier joins the newest bucket.
            Some(b) if b.start >= start => {
                b.n += 1;
                b.sum += v;
            }
            _ => self.buckets.push_back(Bucket {
                start,
                n: 1,
                sum: v,
            }),
        }
        let newest = self.buckets.back().map_or(start, |b| b.start);
        while self
            .buckets
            .front()
            .is_some_and(|f| f.start + self.span_secs <= newest)
        {
            self.buckets.pop_front();
        }
    }

    /// Rows in the window.
    pub fn rows(&self) -> u64 {
        self.buckets.iter().map(|b| b.n).sum()
    }

    pub fn mean(&self) -> Option<f64> {
        let n = self.rows();
        (n > 0).then(|| self.buckets.iter().map(|b| b.sum).sum::<f64>() / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mean_window_matches_a_naive_mean() {
        let mut w = MeanWindow::new(7);
        let values: Vec<f64> = (0..50)
            .map(|i| f64::from((i * 37 % 11) as u8) / 10.0)
            .collect();
        for (i, &v) in values.iter().enumerate() {
            w.push(v);
            let tail = &values[(i + 1).saturating_sub(7)..=i];
            let naive = tail.iter().map(|&v| f64::from(v as f32)).sum::<f64>() / tail.len() as f64;
            assert!((w.mean().unwrap() - naive).abs() < 1e-9, "row {i}");
        }
        let back: MeanWindow = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn a_time_window_forgets_what_is_older_than_its_span() {
        let mut w = MeanTimeWindow::new(600);
        w.push(0, 1.0);
        w.push(300, 0.0);
        assert_eq!(w.mean(), Some(0.5));
        w.push(700, 0.0);
        assert_eq!((w.rows(), w.mean()), (2, Some(0.0)));
        assert_eq!(MeanTimeWindow::new(60).mean(), None);
    }
}
