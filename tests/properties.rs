//! Invariants that must hold for any data (proptest): p-values are probabilities, swapping
//! canary and baseline mirrors the result, shifting the canary shifts the estimate.

use canary_engine::stats::counts::{exact_p_value, Counts};
use canary_engine::stats::mann_whitney;
use canary_engine::stats::sample::sorted;
use canary_engine::stats::sequential::{sequential_test, Interval, Mixture};
use proptest::prelude::*;

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        // Continuous values.
        prop::collection::vec(-1e3f64..1e3, 1..60),
        // Heavy ties.
        prop::collection::vec((0i32..4).prop_map(f64::from), 1..60),
    ]
}

fn range(x: &[f64], y: &[f64]) -> f64 {
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (hi - lo).max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn p_value_is_a_probability(x in sample(), y in sample(), conf in 0.5f64..0.999) {
        let r = mann_whitney(&sorted(&x), &sorted(&y), conf);
        if let Some(p) = r.p_value {
            prop_assert!((0.0..=1.0).contains(&p), "p = {p}");
        }
        if let (Some(lo), Some(hi)) = (r.ci_lower, r.ci_upper) {
            prop_assert!(lo <= hi + 1e-9 * range(&x, &y), "[{lo}, {hi}]");
        }
    }

    #[test]
    fn swapping_mirrors_the_result(x in sample(), y in sample(), conf in 0.5f64..0.999) {
        let (xs, ys) = (sorted(&x), sorted(&y));
        let a = mann_whitney(&xs, &ys, conf);
        let b = mann_whitney(&ys, &xs, conf);
        let tol = 1e-9 * range(&x, &y);
        prop_assert_eq!(a.u + b.u, (x.len() * y.len()) as f64);
        prop_assert!((a.estimate + b.estimate).abs() <= tol);
        match (a.p_value, b.p_value) {
            (Some(p), Some(q)) => prop_assert!((p - q).abs() <= 1e-12),
            (p, q) => prop_assert_eq!(p, q),
        }
        if let (Some(al), Some(au), Some(bl), Some(bu)) =
            (a.ci_lower, a.ci_upper, b.ci_lower, b.ci_upper)
        {
            prop_assert!((al + bu).abs() <= tol, "lower {al} vs −upper {bu}");
            prop_assert!((au + bl).abs() <= tol, "upper {au} vs −lower {bl}");
        }
    }

    #[test]
    fn shifting_the_canary_shifts_estimate_and_interval(
        x in prop::collection::vec(-1000i32..1000, 1..60),
        y in prop::collection::vec(-1000i32..1000, 1..60),
        c in -500i32..500,
    ) {
        // Integers keep every difference exact, so the shift must be exact too.
        let xs = sorted(&x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
        let ys = sorted(&y.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
        let shifted: Vec<f64> = xs.iter().map(|v| v + f64::from(c)).collect();
        let a = mann_whitney(&xs, &ys, 0.95);
        let b = mann_whitney(&shifted, &ys, 0.95);
        let c = f64::from(c);
        prop_assert_eq!(b.estimate, a.estimate + c);
        if let (Some(al), Some(bl)) = (a.ci_lower, b.ci_lower) {
            prop_assert_eq!(bl, al + c);
        }
        if let (Some(au), Some(bu)) = (a.ci_upper, b.ci_upper) {
            prop_assert_eq!(bu, au + c);
        }
    }

    #[test]
    fn count_p_values_are_probabilities_and_monotone(
        x in 0u32..500, y in 0u32..500, n in 1u32..100_000, m in 1u32..100_000,
    ) {
        let c = |bad: u32, total: u32| Counts { bad: f64::from(bad), total: f64::from(total) };
        let p = exact_p_value(c(x, n.max(x)), c(y, m.max(y)));
        prop_assert!((0.0..=1.0).contains(&p));
        // One more canary failure can only make the canary look worse.
        let q = exact_p_value(c(x + 1, n.max(x + 1)), c(y, m.max(y)));
        if n.max(x + 1) == n.max(x) {
            prop_assert!(q <= p + 1e-12, "{q} > {p}");
        }
    }

    #[test]
    fn sequential_p_is_a_nonincreasing_probability(
        steps in prop::collection::vec((0u32..20, 0u32..500, 0u32..20, 0u32..500), 1..40),
    ) {
        let iv: Vec<Interval> = steps
            .iter()
            .map(|&(cb, ct, bb, bt)| Interval {
                canary: Counts { bad: f64::from(cb.min(ct)), total: f64::from(ct) },
                baseline: Counts { bad: f64::from(bb.min(bt)), total: f64::from(bt) },
            })
            .collect();
        let s = sequential_test(&iv, &Mixture::default());
        prop_assert!(s.p_values.iter().all(|p| (0.0..=1.0).contains(p)));
        prop_assert!(s.p_values.windows(2).all(|w| w[1] <= w[0]));
    }
}
