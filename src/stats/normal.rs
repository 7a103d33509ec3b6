//! The standard normal distribution, with the tail accuracy the p-values need.

use statrs::distribution::{ContinuousCDF, Normal};

/// Upper tail `P(Z > z)`, accurate far into the tail (computed from `erfc`, not `1 − Φ`).
pub fn upper_tail(z: f64) -> f64 {
    // libm (a port of musl) is accurate to about an ulp; statrs' erfc is off by ~5e-11
    // relative, which shows in far-tail p-values.
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Lower tail `Φ(z) = P(Z ≤ z)`.
pub fn lower_tail(z: f64) -> f64 {
    upper_tail(-z)
}

/// Two-sided p-value `2·min(Φ(z), 1 − Φ(z))`, as R's `wilcox.test` computes it.
pub fn two_sided_p(z: f64) -> f64 {
    (2.0 * upper_tail(z.abs())).min(1.0)
}

/// The quantile function `Φ⁻¹(p)` (R's `qnorm`).
pub fn quantile(p: f64) -> f64 {
    // Normal::standard() cannot fail; the constructor only rejects invalid parameters.
    Normal::standard().inverse_cdf(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // R 4.2.2, options(digits = 17): pnorm(-1.96), pnorm(-10), qnorm(0.975), qnorm(0.01).
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        assert!(rel(lower_tail(-1.96), 0.024_997_895_148_220_428) < 1e-14);
        assert!(rel(lower_tail(-10.0), 7.619_853_024_160_527e-24) < 1e-14);
        assert!(rel(quantile(0.975), 1.959_963_984_540_053_6) < 1e-14);
        assert!(rel(quantile(0.01), -2.326_347_874_040_840_8) < 1e-14);
        assert_eq!(two_sided_p(0.0), 1.0);
    }
}
