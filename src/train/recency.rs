//! Recency weights: newer rows count more when `recency_half_life_seconds` is set.

/// Exponential recency weights, halving every `half_life` seconds before `t_ref`,
/// normalised to mean 1.
pub fn recency_weights(ts: &[i64], t_ref: i64, half_life: f64) -> Vec<f32> {
    if ts.is_empty() {
        return Vec::new();
    }
    let w: Vec<f64> = ts
        .iter()
        .map(|&t| 0.5f64.powf(((t_ref - t).max(0) as f64) / half_life))
        .collect();
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    w.iter()
        .map(|v| (v / mean.max(f64::MIN_POSITIVE)) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency() {
        let w = recency_weights(&[0, 100, 200], 200, 100.0);
        assert!((w[2] / w[1] - 2.0).abs() < 1e-5 && (w[1] / w[0] - 2.0).abs() < 1e-5);
        assert!((w.iter().sum::<f32>() / 3.0 - 1.0).abs() < 1e-5);
    }
}
