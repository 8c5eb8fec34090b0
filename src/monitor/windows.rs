//! Rolling windows over per-row scores: the last N rows, and the last T seconds of label time.
//! Both are bounded: a count window holds N entries, a time window a fixed number of buckets.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// What one labelled row contributes to the windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowScore {
    pub correct: bool,
    /// Per-row log-loss and Brier score, when the prediction is a probability.
    pub log_loss: Option<f64>,
    pub brier: Option<f64>,
}

/// Aggregates of a window, ready to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub n: u64,
    pub correct: u64,
    pub n_prob: u64,
    pub log_loss_sum: f64,
    pub brier_sum: f64,
}

impl WindowStats {
    fn add(&mut self, s: &RowScore) {
        self.n += 1;
        self.correct += u64::from(s.correct);
        if let (Some(ll), Some(b)) = (s.log_loss, s.brier) {
            self.n_prob += 1;
            self.log_loss_sum += ll;
            self.brier_sum += b;
        }
    }
    pub fn accuracy(&self) -> Option<f64> {
        (self.n > 0).then(|| self.correct as f64 / self.n as f64)
    }
    pub fn log_loss(&self) -> Option<f64> {
        (self.n_prob > 0).then(|| self.log_loss_sum / self.n_prob as f64)
    }
    pub fn brier(&self) -> Option<f64> {
        (self.n_prob > 0).then(|| self.brier_sum / self.n_prob as f64)
    }
}

/// The last `size` rows. Sums are recomputed from the entries whenever the ring wraps around
/// once, so floating-point drift from add/subtract cannot accumulate over a long stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountWindow {
    pub size: usize,
    #[serde(with = "crate::domain::packed::bools")]
    correct: VecDeque<bool>,
    // NaN marks a row without a probability.
    #[serde(with = "crate::domain::packed::f32s")]
    log_loss: VecDeque<f32>,
    #[serde(with = "crate::domain::packed::f32s")]
    brier: VecDeque<f32>,
    stats: WindowStats,
    since_resum: usize,
}

impl CountWindow {
    pub fn new(size: usize) -> Self {
        CountWindow {
            size,
            correct: VecDeque::with_capacity(size),
            log_loss: VecDeque::with_capacity(size),
            brier: VecDeque::with_capacity(size),
            stats: WindowStats::default(),
            since_resum: 0,
        }
    }

    pub fn push(&mut self, s: &RowScore) {
        if self.correct.len() == self.size {
            let c = self.correct.pop_front().unwrap_or(false);
            let ll = self.log_loss.pop_front().unwrap_or(f32::NAN);
            let b = self.brier.pop_front().unwrap_or(f32::NAN);
            self.stats.n -= 1;
            self.stats.correct -= u64::from(c);
            if !ll.is_nan() {
                self.stats.n_prob -= 1;
                self.stats.log_loss_sum -= f64::from(ll);
                self.stats.brier_sum -= f64::from(b);
            }
        }
        let stored = RowScore {
            correct: s.correct,
            log_loss: s.log_loss.map(|v| f64::from(v as f32)),
            brier: s.brier.map(|v| f64::from(v as f32)),
        };
        self.correct.push_back(stored.correct);
        self.log_loss
            .push_back(stored.log_loss.map_or(f32::NAN, |v| v as f32));
        self.brier
            .push_back(stored.brier.map_or(f32::NAN, |v| v as f32));
        self.stats.add(&stored);
        self.since_resum += 1;
        if self.since_resum >= self.size {
            self.resum();
        }
    }

    fn resum(&mut self) {
        let mut st = WindowStats::default();
        for i in 0..self.correct.len() {
            let ll = self.log_loss[i];
            let b = self.brier[i];
            st.add(&RowScore {
                correct: self.correct[i],
                log_loss: (!ll.is_nan()).then_some(f64::from(ll)),
                brier: (!b.is_nan()).then_some(f64::from(b)),
            });
        }
        self.stats = st;
        self.since_resum = 0;
    }

    pub fn stats(&self) -> WindowStats {
        self.stats
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    start: i64,
    stats: WindowStats,
}

/// The rows labelled in the last `span_secs` seconds of label time, in `BUCKETS` buckets.
/// "Now" is the newest label seen, not the wall clock, so the window is a pure function of the
/// stream (a restart or a replay gives the same numbers). Resolution is `span / BUCKETS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub span_secs: i64,
    bucket_secs: i64,
    buckets: VecDeque<Bucket>,
}

impl TimeWindow {
    pub const BUCKETS: i64 = 60;

    pub fn new(span_secs: i64) -> Self {
        TimeWindow {
            span_secs,
            bucket_secs: (span_secs / Self::BUCKETS).max(1),
            buckets: VecDeque::new(),
        }
    }

    pub fn push(&mut self, ts: i64, s: &RowScore) {
        let start = ts - ts.rem_euclid(self.bucket_secs);
        match self.buckets.back_mut() {
            // Rows arrive in label-time order; an older one joins the newest bucket.
            Some(b) if b.start >= start => b.stats.add(s),
            _ => {
                let mut stats = WindowStats::default();
                stats.add(s);
                self.buckets.push_back(Bucket { start, stats });
            }
        }
        let newest = self.buckets.back().map_or(start, |b| b.start);
        while let Some(front) = self.buckets.front() {
            if front.start + self.span_secs <= newest {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    pub fn stats(&self) -> WindowStats {
        let mut st = WindowStats::default();
        for b in &self.buckets {
            st.n += b.stats.n;
            st.correct += b.stats.correct;
            st.n_prob += b.stats.n_prob;
            st.log_loss_sum += b.stats.log_loss_sum;
            st.brier_sum += b.stats.brier_sum;
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(correct: bool) -> RowScore {
        RowScore {
            correct,
            log_loss: Some(if correct { 0.1 } else { 2.0 }),
            brier: Some(if correct { 0.01 } else { 0.8 }),
        }
    }

    #[test]
    fn count_window_matches_a_naive_recount() {
        let mut w = CountWindow::new(7);
        let pattern: Vec<bool> = (0..100).map(|i| (i * 37 % 11) < 6).collect();
        for (i, &c) in pattern.iter().enumerate() {
            w.push(&row(c));
            let lo = (i + 1).saturating_sub(7);
            let tail = &pattern[lo..=i];
            let st = w.stats();
            assert_eq!(st.n as usize, tail.len());
            assert_eq!(st.correct as usize, tail.iter().filter(|&&c| c).count());
            let ll: f64 = tail
                .iter()
                .map(|&c| if c { 0.1f32 } else { 2.0 } as f64)
                .sum();
            assert!((st.log_loss_sum - ll).abs() < 1e-9);
        }
    }

    #[test]
    fn a_count_window_round_trips_packed_and_reads_the_plain_form() {
        let mut w = CountWindow::new(13);
        for i in 0..30 {
            w.push(&RowScore {
                correct: i % 3 != 0,
                log_loss: (i % 5 != 0).then_some(0.1 + i as f64 / 7.0),
                brier: (i % 5 != 0).then_some(i as f64 / 31.0),
            });
        }
        let json = serde_json::to_value(&w).unwrap();
        assert!(
            json["brier"].is_string() && json["correct"].is_string(),
            "{json}"
        );
        let back: CountWindow = serde_json::from_value(json).unwrap();
        // PartialEq on f32 fails on NaN: compare bits.
        let bits = |w: &CountWindow| -> Vec<u32> {
            w.log_loss
                .iter()
                .chain(&w.brier)
                .map(|x| x.to_bits())
                .collect()
        };
        assert_eq!(bits(&back), bits(&w));
        assert_eq!(
            (&back.correct, back.stats, back.since_resum),
            (&w.correct, w.stats, w.since_resum)
        );
        // An earlier snapshot: plain arrays, NaN written as null.
        let plain = serde_json::json!({
            "size": 3, "correct": [true, false], "log_loss": [0.5, null], "brier": [0.25, null],
            "stats": w.stats, "since_resum": 2
        });
        let old: CountWindow = serde_json::from_value(plain).unwrap();
        assert_eq!(old.correct, [true, false]);
        assert_eq!(old.brier[0], 0.25);
        assert!(old.log_loss[1].is_nan());
        let bad = serde_json::json!({
            "size": 3, "correct": "9:AA==", "log_loss": "", "brier": "", "stats": w.stats,
            "since_resum": 0
        });
        assert!(
            serde_json::from_value::<CountWindow>(bad).is_err(),
            "9 bits need 2 bytes"
        );
    }

    #[test]
    fn time_window_forgets_old_buckets() {
        let mut w = TimeWindow::new(3_600);
        w.push(0, &row(false));
        w.push(1_800, &row(true));
        assert_eq!(w.stats().n, 2);
        w.push(3_600 + 60, &row(true));
        // The row at t=0 fell out; the one at 1800 is still within the hour.
        assert_eq!(w.stats().n, 2);
        assert_eq!(w.stats().accuracy(), Some(1.0));
    }

    #[test]
    fn memory_is_bounded_by_the_window_not_the_stream() {
        let mut c = CountWindow::new(100);
        let mut t = TimeWindow::new(3_600);
        for i in 0..100_000i64 {
            c.push(&row(i % 3 == 0));
            t.push(i, &row(i % 3 == 0));
        }
        assert_eq!(c.correct.len(), 100);
        assert!(t.buckets.len() <= TimeWindow::BUCKETS as usize + 1);
    }
}
