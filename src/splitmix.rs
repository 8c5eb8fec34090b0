//! The crate's one small deterministic generator: the synthetic streams, KSWIN's sampling and
//! the seeds derived from names all use it.

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny deterministic generator whose numbers are
/// easy to reproduce outside Rust, so benchmarks and tests can hand the same stream to River
/// or SciPy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), unbiased (Lemire's multiply-and-reject).
    pub fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in (0, 1): never 0, so `ln` is safe.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A seed from a name and a number (FNV-1a over the name, mixed through SplitMix64), the same
/// on every machine and every run: a model's detector `slot` gets the same seed after a
/// restart or in a replay.
pub fn seed_from(name: &str, slot: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    SplitMix64(h ^ slot.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_by_name_and_slot_and_repeat() {
        assert_eq!(seed_from("churn", 0), seed_from("churn", 0));
        assert_ne!(seed_from("churn", 0), seed_from("churn", 1));
        assert_ne!(seed_from("churn", 0), seed_from("fraud", 0));
    }

    #[test]
    fn below_is_uniform_enough() {
        let mut rng = SplitMix64(1);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[rng.below(7) as usize] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
    }
}
