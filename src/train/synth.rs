//! Synthetic classification data in the spirit of scikit-learn's `make_classification`, for
//! tests, the classic experiment and the benchmark.
//!
//! A [`Concept`] fixes the generating process: `clusters_per_class` Gaussian clusters per class
//! centred on random vertices of a hypercube with side `2 · class_sep` in the informative
//! subspace, each with a random linear covariance (`z · A`, `A ~ U(-1, 1)`); redundant features
//! are random linear combinations of the informative ones; the remaining features are N(0, 1)
//! noise; columns are permuted; 1 % of labels are flipped at random. Two concepts with
//! different seeds are different "worlds" over the same feature space, which is how the
//! experiments simulate concept drift.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::mlp::std_normal;
use crate::domain::Dataset;

/// A fixed data-generating process.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    pub n_features: usize,
    pub n_informative: usize,
    pub n_redundant: usize,
    pub n_classes: usize,
    pub flip_y: f64,
    /// `[n_clusters][n_informative]`.
    centroids: Vec<Vec<f64>>,
    /// `[n_clusters]` of `[n_informative × n_informative]` row-major.
    transforms: Vec<Vec<f64>>,
    /// `[n_informative × n_redundant]` row-major.
    redundant: Vec<f64>,
    /// Output column `j` takes generated column `perm[j]`.
    perm: Vec<usize>,
}

impl Concept {
    /// `n_features` columns of which `n_informative` informative and the rest redundant,
    /// 2 clusters per class, `class_sep` 1, 1 % label noise.
    pub fn new(seed: u64, n_features: usize, n_informative: usize, n_classes: usize) -> Self {
        Self::with_options(
            seed,
            n_features,
            n_informative,
            n_features - n_informative,
            n_classes,
            2,
            1.0,
        )
    }

    pub fn with_options(
        seed: u64,
        n_features: usize,
        n_informative: usize,
        n_redundant: usize,
        n_classes: usize,
        clusters_per_class: usize,
        class_sep: f64,
    ) -> Self {
        assert!(n_informative + n_redundant <= n_features && n_informative > 0 && n_classes >= 2);
        let mut rng = StdRng::seed_from_u64(seed);
        let n_clusters = n_classes * clusters_per_class;
        let mut centroids: Vec<Vec<f64>> = Vec::with_capacity(n_clusters);
        while centroids.len() < n_clusters {
            let c: Vec<f64> = (0..n_informative)
                .map(|_| {
                    if rng.gen::<bool>() {
                        class_sep
                    } else {
                        -class_sep
                    }
                })
                .collect();
            // Distinct vertices, as long as the hypercube has enough of them.
            if !centroids.contains(&c) || centroids.len() >= 1usize << n_informative.min(20) {
                centroids.push(c);
            }
        }
        let transforms = (0..n_clusters)
            .map(|_| {
                (0..n_informative * n_informative)
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect()
            })
            .collect();
        let redundant = (0..n_informative * n_redundant)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let mut perm: Vec<usize> = (0..n_features).collect();
        for i in (1..n_features).rev() {
            let j = rng.gen_range(0..=i);
            perm.swap(i, j);
        }
        Concept {
            n_features,
            n_informative,
            n_redundant,
            n_classes,
            flip_y: 0.01,
            centroids,
            transforms,
            redundant,
            perm,
        }
    }
}

/// `n` rows drawn from `concept`, timestamps `t0, t0 + 1, …` (ids the same).
pub fn make_classification(concept: &Concept, n: usize, t0: i64, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let (fi, fr, f) = (
        concept.n_informative,
        concept.n_redundant,
        concept.n_features,
    );
    let n_clusters = concept.centroids.len();
    let mut out = Dataset {
        n_features: f,
        ..Default::default()
    };
    let mut row = vec![0f64; f];
    let mut z = vec![0f64; fi];
    for i in 0..n {
        let k = rng.gen_range(0..n_clusters);
        let mut label = k % concept.n_classes;
        z.iter_mut().for_each(|v| *v = std_normal(&mut rng));
        let a = &concept.transforms[k];
        for j in 0..fi {
            let mut s = concept.centroids[k][j];
            for (m, zm) in z.iter().enumerate() {
                s += zm * a[m * fi + j];
            }
            row[j] = s;
        }
        for r in 0..fr {
            row[fi + r] = (0..fi)
                .map(|j| row[j] * concept.redundant[j * fr + r])
                .sum();
        }
        for v in row.iter_mut().skip(fi + fr) {
            *v = std_normal(&mut rng);
        }
        if rng.gen::<f64>() < concept.flip_y {
            label = rng.gen_range(0..concept.n_classes);
        }
        out.x.extend(concept.perm.iter().map(|&p| row[p] as f32));
        out.y.push(label as f32);
        out.ts.push(t0 + i as i64);
        out.ids.push(t0 + i as i64);
    }
    out
}

/// `n` rows, each drawn from `b` with probability `p_b` and from `a` otherwise.
pub fn make_mixture(a: &Concept, b: &Concept, p_b: f64, n: usize, t0: i64, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let da = make_classification(a, n, t0, seed);
    let db = make_classification(b, n, t0, seed.wrapping_add(1));
    let mut out = Dataset {
        n_features: a.n_features,
        ..Default::default()
    };
    for i in 0..n {
        let src = if rng.gen::<f64>() < p_b { &db } else { &da };
        out.x.extend_from_slice(src.row(i));
        out.y.push(src.y[i]);
        out.ts.push(t0 + i as i64);
        out.ids.push(t0 + i as i64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_balance_and_determinism() {
        let c = Concept::new(1, 20, 15, 2);
        let d = make_classification(&c, 1000, 100, 2);
        d.validate().unwrap();
        assert_eq!(d.n_features, 20);
        assert_eq!(d.ts[0], 100);
        let ones = d.y.iter().filter(|&&v| v == 1.0).count();
        assert!((400..600).contains(&ones), "{ones}");
        assert_eq!(d, make_classification(&c, 1000, 100, 2));
        assert_ne!(c, Concept::new(2, 20, 15, 2));
        let m = make_mixture(&c, &Concept::new(2, 20, 15, 2), 0.5, 50, 0, 3);
        m.validate().unwrap();
    }
}
