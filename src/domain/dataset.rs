//! Labelled rows handed to training: features row-major, labels, timestamps, ids.

use serde::{Deserialize, Serialize};

/// Vectors whose lengths disagree, or rows that do not fit together (the message says how).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

type Result<T> = std::result::Result<T, ShapeError>;

/// Labelled rows, normally time-ordered.
///
/// `x` is row-major `[n_rows, n_features]`; `y` holds 0/1 (binary) or the class index;
/// `ts` unix seconds; `ids` the outcome ids (carried through for bookkeeping only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub x: Vec<f32>,
    pub n_features: usize,
    pub y: Vec<f32>,
    pub ts: Vec<i64>,
    pub ids: Vec<i64>,
}

impl Dataset {
    /// An empty dataset with `n_features` columns.
    pub fn empty(n_features: usize) -> Self {
        Dataset {
            n_features,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Row `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.n_features..(i + 1) * self.n_features]
    }

    /// Checks that the vectors agree in length.
    pub fn validate(&self) -> Result<()> {
        let n = self.y.len();
        if self.n_features == 0 && n > 0 {
            return Err(ShapeError("n_features is 0".into()));
        }
        if self.x.len() != n * self.n_features || self.ts.len() != n || self.ids.len() != n {
            return Err(ShapeError(format!(
                "dataset shapes disagree: x {} (n_features {}), y {}, ts {}, ids {}",
                self.x.len(),
                self.n_features,
                n,
                self.ts.len(),
                self.ids.len()
            )));
        }
        Ok(())
    }

    /// One more than the largest label, if every label is a class index (`None` when there
    /// are no rows, or a label is not a class index: [`Self::validate_labels`] says which).
    pub fn n_label_classes(&self) -> Option<usize> {
        let mut top = None::<f32>;
        for &v in &self.y {
            if !(v >= 0.0 && v.fract() == 0.0) {
                return None;
            }
            top = Some(top.map_or(v, |t| t.max(v)));
        }
        top.map(|t| t as usize + 1)
    }

    /// Checks every label is a class index below `n_classes`.
    pub fn validate_labels(&self, n_classes: usize) -> Result<()> {
        for (i, &v) in self.y.iter().enumerate() {
            if !(v >= 0.0 && v < n_classes as f32 && v.fract() == 0.0) {
                return Err(ShapeError(format!(
                    "label {v} of row {i} is not a class index below {n_classes}"
                )));
            }
        }
        Ok(())
    }

    /// The rows at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let f = self.n_features;
        let mut out = Dataset {
            x: Vec::with_capacity(idx.len() * f),
            n_features: f,
            y: Vec::with_capacity(idx.len()),
            ts: Vec::with_capacity(idx.len()),
            ids: Vec::with_capacity(idx.len()),
        };
        for &i in idx {
            out.x.extend_from_slice(self.row(i));
            out.y.push(self.y[i]);
            out.ts.push(self.ts[i]);
            out.ids.push(self.ids[i]);
        }
        out
    }

    /// Rows `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Dataset {
        let f = self.n_features;
        Dataset {
            x: self.x[start * f..end * f].to_vec(),
            n_features: f,
            y: self.y[start..end].to_vec(),
            ts: self.ts[start..end].to_vec(),
            ids: self.ids[start..end].to_vec(),
        }
    }

    /// `self` followed by `other`'s rows.
    pub fn concat(&self, other: &Dataset) -> Result<Dataset> {
        if self.is_empty() {
            return Ok(other.clone());
        }
        if other.is_empty() {
            return Ok(self.clone());
        }
        if self.n_features != other.n_features {
            return Err(ShapeError(format!(
                "feature counts differ: {} vs {}",
                self.n_features, other.n_features
            )));
        }
        let mut out = self.clone();
        out.x.extend_from_slice(&other.x);
        out.y.extend_from_slice(&other.y);
        out.ts.extend_from_slice(&other.ts);
        out.ids.extend_from_slice(&other.ids);
        Ok(out)
    }

    /// The rows stably sorted by timestamp (a no-op copy when already ordered).
    pub fn time_ordered(&self) -> Dataset {
        if self.ts.windows(2).all(|w| w[0] <= w[1]) {
            return self.clone();
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by_key(|&i| self.ts[i]);
        self.subset(&idx)
    }

    /// Splits time-ordered rows into (older, newest `fraction`). The newest part gets
    /// `round(fraction * n)` rows, at least 1 when `fraction > 0` and `n >= 2`, and never all.
    pub fn split_newest(&self, fraction: f64) -> (Dataset, Dataset) {
        let n = self.len();
        let mut k = (fraction * n as f64).round() as usize;
        if fraction > 0.0 && n >= 2 {
            k = k.clamp(1, n - 1);
        } else {
            k = k.min(n);
        }
        (self.slice(0, n - k), self.slice(n - k, n))
    }

    /// Newest timestamp, if any.
    pub fn max_ts(&self) -> Option<i64> {
        self.ts.iter().copied().max()
    }

    /// Number of rows per class (labels outside `0..n_classes` are not counted).
    pub fn class_counts(&self, n_classes: usize) -> Vec<usize> {
        let mut c = vec![0; n_classes];
        for &v in &self.y {
            if let Some(slot) = c.get_mut(v as usize) {
                *slot += 1;
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(n: usize) -> Dataset {
        Dataset {
            x: (0..n * 2).map(|v| v as f32).collect(),
            n_features: 2,
            y: (0..n).map(|i| (i % 2) as f32).collect(),
            ts: (0..n as i64).collect(),
            ids: (0..n as i64).collect(),
        }
    }

    #[test]
    fn split_and_sort() {
        let d = ds(10);
        d.validate().unwrap();
        let (a, b) = d.split_newest(0.2);
        assert_eq!((a.len(), b.len()), (8, 2));
        assert_eq!(b.ts, vec![8, 9]);
        assert_eq!(b.row(0), &[16.0, 17.0]);
        let (a, b) = ds(1).split_newest(0.2);
        assert_eq!((a.len(), b.len()), (1, 0));
        let mut r = d.clone();
        r.ts.reverse();
        let s = r.time_ordered();
        assert_eq!(s.ts, (0..10).collect::<Vec<_>>());
        assert_eq!(s.row(0), &[18.0, 19.0]);
        assert!(Dataset {
            n_features: 3,
            ..d.clone()
        }
        .validate()
        .is_err());
        let mut bad = d.clone();
        bad.y[3] = 2.0;
        assert!(bad.validate_labels(2).is_err());
        d.validate_labels(2).unwrap();
    }
}
