//! Descriptive helpers on samples: sorting, R-7 quantiles, means, tie groups.

/// Sorts a copy of `values` ascending. Callers remove NaN first; `total_cmp` keeps the sort
/// total anyway.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// Arithmetic mean; NaN for an empty slice.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Quantile of a **sorted** sample with R's default definition (type 7, numpy's `linear`),
/// computed with R's own arithmetic (`index = 1 + (n − 1)·p`, `(1 − h)·x[lo] + h·x[hi]`) so
/// results match R to the last bit.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let index = 1.0 + (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = index.floor();
    let hi = index.ceil();
    let (x_lo, x_hi) = (sorted[lo as usize - 1], sorted[hi as usize - 1]);
    let h = index - lo;
    if index > lo && x_hi != x_lo {
        (1.0 - h) * x_lo + h * x_hi
    } else {
        x_lo
    }
}

/// `Σ (t³ − t)` over the groups of equal values of a **sorted** sample (the tie term of the
/// rank-test variance).
pub fn tie_sum_sorted(sorted: &[f64]) -> f64 {
    let mut total = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        total += t * t * t - t;
        i = j;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r7_quantiles() {
        // R: quantile(c(1, 2, 3, 4, 10), c(0.25, 0.5, 0.9, 0.99), type = 7)
        let s = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile_sorted(&s, 0.25), 2.0);
        assert_eq!(quantile_sorted(&s, 0.5), 3.0);
        assert!((quantile_sorted(&s, 0.9) - 7.6).abs() < 1e-12);
        assert!((quantile_sorted(&s, 0.99) - 9.76).abs() < 1e-12);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn ties() {
        assert_eq!(tie_sum_sorted(&[1.0, 1.0, 2.0, 3.0, 3.0, 3.0]), 6.0 + 24.0);
        assert_eq!(tie_sum_sorted(&[1.0, 2.0]), 0.0);
    }
}
