//! Synthetic drifting streams: `driftd generate` and the demo. A stream is a sequence of
//! concepts (linear decision boundaries over Gaussian features); it switches abruptly or blends
//! gradually between them, so detectors and updates have something real to find.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use crate::splitmix::SplitMix64;

#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub n_features: usize,
    pub rows: usize,
    /// Row index where the concept switches abruptly.
    pub abrupt_at: Option<usize>,
    /// `(start, end)`: the concept blends linearly into a third one over these rows.
    pub gradual: Option<(usize, usize)>,
    /// Probability that a label is flipped at random.
    pub label_noise: f64,
    pub seed: u64,
    /// Categorical features after the numeric ones (`c0`, `c1`, …; values `v0`…`v5`), each
    /// category moving the decision by its own effect. With any, the abrupt change is in
    /// `c0`: its categories' effects are permuted and their frequencies reversed, while the
    /// numeric concept stays.
    pub categorical: usize,
}

/// Categories of each categorical feature of a generated stream.
pub const GENERATED_CATEGORIES: usize = 6;

impl Default for StreamSpec {
    fn default() -> Self {
        StreamSpec {
            n_features: 8,
            rows: 20_000,
            abrupt_at: Some(8_000),
            gradual: Some((14_000, 17_000)),
            label_noise: 0.05,
            seed: 7,
            categorical: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamRow {
    pub index: usize,
    pub features: Vec<f32>,
    pub label: u32,
    /// Which concept produced the label (0, 1, 2): the ground truth for change points.
    pub concept: u8,
    /// Each categorical feature's category index (`v{k}`).
    pub categories: Vec<usize>,
}

pub struct Stream {
    spec: StreamSpec,
    rng: StdRng,
    concepts: [Vec<f64>; 3],
    /// Per categorical feature, each category's effect on the decision.
    effects: Vec<Vec<f64>>,
    next: usize,
}

fn gaussian(rng: &mut StdRng) -> f64 {
    // Box–Muller; one of the pair is enough here.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Stream {
    pub fn new(spec: StreamSpec) -> Self {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let concept = |rng: &mut StdRng| {
            (0..spec.n_features)
                .map(|_| gaussian(rng))
                .collect::<Vec<_>>()
        };
        let c0 = concept(&mut rng);
        let c1 = concept(&mut rng);
        let c2 = concept(&mut rng);
        // Drawn after the concepts, so a stream without categoricals is what it always was.
        let effects = (0..spec.categorical)
            .map(|_| {
                (0..GENERATED_CATEGORIES)
                    .map(|_| 1.5 * gaussian(&mut rng))
                    .collect()
            })
            .collect();
        Stream {
            spec,
            rng,
            concepts: [c0, c1, c2],
            effects,
            next: 0,
        }
    }

    /// The first concept's weights: what a model fitted before any drift would learn.
    pub fn initial_concept(&self) -> &[f64] {
        &self.concepts[0]
    }

    fn weights_at(&self, i: usize) -> (Vec<f64>, u8) {
        // With categoricals the abrupt change is theirs (see `categorical_part`).
        let after_abrupt =
            self.spec.categorical == 0 && self.spec.abrupt_at.is_some_and(|a| i >= a);
        let base = if after_abrupt { 1 } else { 0 };
        match self.spec.gradual {
            Some((s, e)) if i >= s => {
                let t = if i >= e {
                    1.0
                } else {
                    (i - s) as f64 / (e - s) as f64
                };
                let w = self.concepts[base]
                    .iter()
                    .zip(&self.concepts[2])
                    .map(|(a, b)| (1.0 - t) * a + t * b)
                    .collect();
                (w, if t >= 0.5 { 2 } else { base as u8 })
            }
            _ => (self.concepts[base].clone(), base as u8),
        }
    }
}

impl Iterator for Stream {
    type Item = StreamRow;

    fn next(&mut self) -> Option<StreamRow> {
        if self.next >= self.spec.rows {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let x: Vec<f64> = (0..self.spec.n_features)
            .map(|_| gaussian(&mut self.rng))
            .collect();
        let (w, mut concept) = self.weights_at(i);
        let (categories, effect) = self.categorical_part(i);
        if self.spec.categorical > 0 && self.spec.abrupt_at.is_some_and(|a| i >= a) {
            concept = concept.max(1);
        }
        let margin: f64 = w.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + effect;
        let mut label = u32::from(margin > 0.0);
        if self.rng.gen::<f64>() < self.spec.label_noise {
            label = 1 - label;
        }
        Some(StreamRow {
            index: i,
            features: x.iter().map(|&v| v as f32).collect(),
            label,
            concept,
            categories,
        })
    }
}

impl Stream {
    /// Row `i`'s categories and their effect on the decision. Category `k` is drawn with
    /// weight `k + 1` (the last most often); after the abrupt change, `c0`'s weights are
    /// reversed and its effects rotated by one category.
    fn categorical_part(&mut self, i: usize) -> (Vec<usize>, f64) {
        let changed = self.spec.abrupt_at.is_some_and(|a| i >= a);
        let k = GENERATED_CATEGORIES;
        let total = (k * (k + 1) / 2) as f64;
        let mut effect = 0.0;
        let mut cats = Vec::with_capacity(self.spec.categorical);
        for j in 0..self.spec.categorical {
            let reversed = changed && j == 0;
            let mut u = self.rng.gen::<f64>() * total;
            let mut c = 0;
            while c + 1 < k {
                let weight = if reversed { k - c } else { c + 1 } as f64;
                if u < weight {
                    break;
                }
                u -= weight;
                c += 1;
            }
            let e = if reversed { (c + 1) % k } else { c };
            effect += self.effects[j][e];
            cats.push(c);
        }
        (cats, effect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_seeded_and_change_concept() {
        let a: Vec<_> = Stream::new(StreamSpec::default()).collect();
        let b: Vec<_> = Stream::new(StreamSpec::default()).collect();
        assert_eq!(a, b);
        assert_eq!(a[7_999].concept, 0);
        assert_eq!(a[8_000].concept, 1);
        assert_eq!(a[19_999].concept, 2);
        let ones = a.iter().filter(|r| r.label == 1).count();
        assert!(ones > 8_000 && ones < 12_000, "{ones}");
    }
}
