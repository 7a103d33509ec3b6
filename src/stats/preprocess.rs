//! Cleaning a sample before it is judged: NaN handling and IQR outlier removal, as Kayenta
//! does it.

use super::sample::{quantile_sorted, sorted};
use serde::{Deserialize, Serialize};

/// What to do with NaN values (a Prometheus `0/0`, a gap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NanStrategy {
    /// Drop NaN values (Kayenta's default). A sample of only NaN becomes empty: no data.
    #[default]
    Remove,
    /// Replace NaN with 0 — right for rates where "no events" reads as 0/0.
    Replace,
}

/// Outlier handling before comparison.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outliers {
    /// Keep every value (the default).
    #[default]
    Keep,
    /// Remove values outside Kayenta's IQR fences `[min(p1, Q1 − f·IQR), max(p99, Q3 + f·IQR)]`.
    Remove {
        /// The fence factor `f` (default 3).
        #[serde(default = "default_factor")]
        factor: f64,
    },
}

fn default_factor() -> f64 {
    3.0
}

/// A cleaned sample, sorted ascending, with what was taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// The values that remain, sorted ascending.
    pub values: Vec<f64>,
    /// How many NaN values were removed (0 under `replace`).
    pub nan_removed: usize,
    /// How many NaN values were replaced by 0.
    pub nan_replaced: usize,
    /// How many outliers were removed.
    pub outliers_removed: usize,
}

/// Kayenta's IQR fences for a **sorted** sample: `(min(p1, Q1 − f·IQR), max(p99, Q3 + f·IQR))`
/// with R-7 percentiles. The p1/p99 terms keep a tight sample from losing its edges.
pub fn iqr_fences(sorted: &[f64], factor: f64) -> (f64, f64) {
    let q1 = quantile_sorted(sorted, 0.25);
    let q3 = quantile_sorted(sorted, 0.75);
    let iqr = q3 - q1;
    let lower = quantile_sorted(sorted, 0.01).min(q1 - factor * iqr);
    let upper = quantile_sorted(sorted, 0.99).max(q3 + factor * iqr);
    (lower, upper)
}

/// Applies the NaN strategy, then the outlier strategy, and sorts.
pub fn clean(values: &[f64], nan: NanStrategy, outliers: Outliers) -> Cleaned {
    let nan_count = values.iter().filter(|v| v.is_nan()).count();
    let kept: Vec<f64> = match nan {
        NanStrategy::Remove => values.iter().copied().filter(|v| !v.is_nan()).collect(),
        NanStrategy::Replace => values
            .iter()
            .map(|&v| if v.is_nan() { 0.0 } else { v })
            .collect(),
    };
    let mut sorted_values = sorted(&kept);
    let mut outliers_removed = 0;
    if let Outliers::Remove { factor } = outliers {
        if !sorted_values.is_empty() {
            let (lo, hi) = iqr_fences(&sorted_values, factor);
            let before = sorted_values.len();
            sorted_values.retain(|&v| v >= lo && v <= hi);
            outliers_removed = before - sorted_values.len();
        }
    }
    Cleaned {
        values: sorted_values,
        nan_removed: if nan == NanStrategy::Remove {
            nan_count
        } else {
            0
        },
        nan_replaced: if nan == NanStrategy::Replace {
            nan_count
        } else {
            0
        },
        outliers_removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_strategies() {
        let v = [1.0, f64::NAN, 3.0];
        let c = clean(&v, NanStrategy::Remove, Outliers::Keep);
        assert_eq!((c.values, c.nan_removed), (vec![1.0, 3.0], 1));
        let c = clean(&v, NanStrategy::Replace, Outliers::Keep);
        assert_eq!((c.values, c.nan_replaced), (vec![0.0, 1.0, 3.0], 1));
    }

    #[test]
    fn iqr_outliers() {
        // 1..=20 and one far value (21 values). R-7: Q1 = 6, Q3 = 16, IQR = 10;
        // p1 = 1.2, p99 = 20 + 0.8·980 = 804. Fences: [min(1.2, 6 − 30), max(804, 16 + 30)].
        let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
        v.push(1000.0);
        let s = sorted(&v);
        let (lo, hi) = iqr_fences(&s, 3.0);
        assert_eq!(lo, -24.0);
        assert!((hi - 804.0).abs() < 1e-9);
        let c = clean(&v, NanStrategy::Remove, Outliers::Remove { factor: 3.0 });
        assert_eq!(c.outliers_removed, 1);
        assert_eq!(c.values.len(), 20);
    }
}
