//! Effect sizes: how big a difference is, as opposed to how sure we are that it exists.

use super::sample::{mean, quantile_sorted};

/// `mean(canary) / mean(baseline)`; NaN when either mean is 0 (Kayenta's rule) or a sample
/// is empty.
pub fn mean_ratio(canary: &[f64], baseline: &[f64]) -> f64 {
    let (a, b) = (mean(canary), mean(baseline));
    if a == 0.0 || b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// Common-language effect size (Vargha-Delaney A): `P(X > Y) + ½·P(X = Y)` for a random
/// canary value X and baseline value Y. 0.5 means no effect. Equals `U / (n·m)`.
pub fn cles(u: f64, n_canary: usize, n_baseline: usize) -> f64 {
    u / (n_canary as f64 * n_baseline as f64)
}

/// Ratio of the `q`-quantile of the canary to that of the baseline (both **sorted**), R-7
/// quantiles. NaN when the baseline quantile is 0, or when the quantiles have different
/// signs (a ratio of a negative to a positive number says nothing about "worse").
pub fn quantile_ratio(canary_sorted: &[f64], baseline_sorted: &[f64], q: f64) -> f64 {
    let (a, b) = (
        quantile_sorted(canary_sorted, q),
        quantile_sorted(baseline_sorted, q),
    );
    if b == 0.0 || (a != 0.0 && a.signum() != b.signum()) {
        f64::NAN
    } else {
        a / b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(mean_ratio(&[2.0, 4.0], &[1.0, 2.0]), 2.0);
        assert!(mean_ratio(&[0.0], &[1.0]).is_nan());
        assert!(mean_ratio(&[1.0], &[0.0, 0.0]).is_nan());
        assert_eq!(cles(6.0, 3, 4), 0.5);
        assert_eq!(
            quantile_ratio(&[1.0, 2.0, 10.0], &[1.0, 2.0, 5.0], 1.0),
            2.0
        );
        assert!(quantile_ratio(&[-1.0], &[1.0], 0.5).is_nan());
    }
}
