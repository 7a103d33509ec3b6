//! Mann-Whitney U (Wilcoxon rank-sum) test with the Hodges-Lehmann shift estimate and its
//! confidence interval, numerically matching R's
//! `wilcox.test(x = canary, y = baseline, conf.int = TRUE, exact = FALSE, correct = TRUE)`.
//!
//! R finds each interval end with `uniroot` on a step function; here the step where the
//! function crosses its quantile is found exactly, so the answer is the pairwise difference R
//! converges to (STATISTICS.md §1).

use super::normal;
use super::pairwise::{Differences, Selector};
use super::sample::tie_sum_sorted;
use serde::Serialize;

/// The result of the rank-sum comparison of a canary sample `x` with a baseline sample `y`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MannWhitney {
    /// R's `statistic` W: the U of the canary, `Σ rank(x_i) − n(n+1)/2` with mid-ranks.
    pub u: f64,
    /// Two-sided p-value (normal approximation, tie- and continuity-corrected); `None` when
    /// every observation is tied (R reports NaN).
    pub p_value: Option<f64>,
    /// Hodges-Lehmann estimate of the shift canary − baseline: the median of all pairwise
    /// differences.
    pub estimate: f64,
    /// Lower end of the confidence interval for the shift; `None` where R refuses to compute
    /// one (all observations tied at an end of the search range).
    pub ci_lower: Option<f64>,
    /// Upper end of the confidence interval for the shift.
    pub ci_upper: Option<f64>,
    /// Canary sample size `n`.
    pub n_canary: usize,
    /// Baseline sample size `m`.
    pub n_baseline: usize,
    /// The two-sided confidence level of the interval.
    pub confidence: f64,
}

/// `W` and the tie term `Σ(t³ − t)` of the combined sample `{x_i − shift} ∪ y`, both sorted.
/// The subtraction is done in floating point exactly as R's `x - d` does it, so ties appear
/// and vanish where they do in R.
fn rank_sum(x: &[f64], y: &[f64], shift: f64) -> (f64, f64) {
    let (n, m) = (x.len(), y.len());
    let (mut i, mut j) = (0usize, 0usize);
    let (mut twice_w, mut ties) = (0u64, 0.0f64);
    while i < n || j < m {
        let xv = if i < n { x[i] - shift } else { f64::INFINITY };
        let yv = if j < m { y[j] } else { f64::INFINITY };
        let v = xv.min(yv);
        let j0 = j;
        while j < m && y[j] == v {
            j += 1;
        }
        let i0 = i;
        while i < n && x[i] - shift == v {
            i += 1;
        }
        let (cx, cy) = ((i - i0) as u64, (j - j0) as u64);
        // Finite input always advances; a NaN or Inf − Inf would loop here for ever.
        debug_assert!(cx + cy > 0, "rank_sum needs finite values");
        if cx + cy == 0 {
            break;
        }
        // Each x in this group beats the j0 baseline values below it and ties with cy.
        twice_w += cx * (2 * j0 as u64 + cy);
        let t = (cx + cy) as f64;
        ties += t * t * t - t;
    }
    (twice_w as f64 / 2.0, ties)
}

/// R's `sqrt((n.x * n.y / 12) * ((n.x + n.y + 1) - TIES / ((n.x + n.y) * (n.x + n.y - 1))))`.
fn sigma(n: usize, m: usize, ties: f64) -> f64 {
    let (n, m) = (n as f64, m as f64);
    ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt()
}

/// R's continuity-corrected standardised statistic `(dz − sign(dz)/2) / σ`.
fn standardise(dz: f64, sigma: f64) -> f64 {
    let corr = if dz > 0.0 {
        0.5
    } else if dz < 0.0 {
        -0.5
    } else {
        0.0
    };
    (dz - corr) / sigma
}

/// R's estimating function without its quantile, `wdiff(d, zq) + zq`, evaluated the way R
/// evaluates it; `None` when all observations of `{x − d} ∪ y` are tied (R stops with an
/// error there).
fn r_wdiff(x: &[f64], y: &[f64], d: f64) -> Option<f64> {
    let (w, ties) = rank_sum(x, y, d);
    let s = sigma(x.len(), y.len(), ties);
    (s > 0.0).then(|| standardise(w - (x.len() * y.len()) as f64 / 2.0, s))
}

/// One end of the interval: where the estimating function crosses `zq` (R's `root()`).
/// `at_ends` is the function (without `zq`) at `min(x) − max(y)` and `max(x) − min(y)`,
/// the same for both ends.
fn interval_end(sel: &mut Selector<'_>, at_ends: (f64, f64), s_open: f64, zq: f64) -> f64 {
    let diffs = sel.differences();
    if at_ends.0 - zq <= 0.0 {
        return diffs.min();
    }
    if at_ends.1 - zq >= 0.0 {
        return diffs.max();
    }
    // Between two consecutive differences, with k differences ≤ d, W(d) = nm − k and only
    // the ties inside each sample remain. f is non-increasing in k: find the first k where it
    // is negative; the crossing is at the k-th smallest difference.
    let nm = diffs.len();
    let f_open = |k: u64| standardise(nm as f64 / 2.0 - k as f64, s_open) - zq;
    let (mut lo, mut hi) = (1u64, nm);
    if f_open(hi) >= 0.0 {
        return diffs.max();
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f_open(mid) < 0.0 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    sel.kth_pair(lo, lo).0
}

/// Compares canary `x` with baseline `y` (both **sorted ascending**, finite, non-empty) at
/// the given two-sided confidence level.
pub fn mann_whitney(x: &[f64], y: &[f64], confidence: f64) -> MannWhitney {
    assert!(
        !x.is_empty() && !y.is_empty(),
        "both samples must be non-empty"
    );
    let (n, m) = (x.len(), y.len());
    let (u, ties) = rank_sum(x, y, 0.0);
    let s = sigma(n, m, ties);
    let p_value = (s > 0.0).then(|| normal::two_sided_p(standardise(u - (n * m) as f64 / 2.0, s)));

    let diffs = Differences::new(x, y);
    let alpha = 1.0 - confidence;
    let z_hi = -normal::quantile(alpha / 2.0); // R: qnorm(alpha/2, lower.tail = FALSE)
    let z_lo = normal::quantile(alpha / 2.0);
    // The median first: its search brackets the interval ends tightly.
    let mut sel = Selector::new(diffs);
    let estimate = sel.median();
    // R evaluates its function at both ends of the search range before deciding, for each
    // interval end, and either evaluation may refuse (all tied).
    let ends = r_wdiff(x, y, diffs.min()).zip(r_wdiff(x, y, diffs.max()));
    let ci = ends.map(|at_ends| {
        let s_open = sigma(n, m, tie_sum_sorted(x) + tie_sum_sorted(y));
        (
            interval_end(&mut sel, at_ends, s_open, z_hi),
            interval_end(&mut sel, at_ends, s_open, z_lo),
        )
    });
    MannWhitney {
        u,
        p_value,
        estimate,
        ci_lower: ci.map(|c| c.0),
        ci_upper: ci.map(|c| c.1),
        n_canary: n,
        n_baseline: m,
        confidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::approx_constant)] // 3.14 is a data value here, not π
    fn r_small_example() {
        // R 4.2.2: wilcox.test(c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30),
        //   c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29), conf.int = TRUE,
        //   exact = FALSE, correct = TRUE, tol.root = 1e-12) -> W = 58,
        //   p = 0.13291945818531886, conf.int = [-0.36999999999968486, 1.1829999999993448]
        let mut x = vec![1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let mut y = vec![0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        x.sort_by(f64::total_cmp);
        y.sort_by(f64::total_cmp);
        let r = mann_whitney(&x, &y, 0.95);
        assert_eq!(r.u, 58.0);
        assert!((r.p_value.unwrap() / 0.132_919_458_185_318_86 - 1.0).abs() < 1e-12);
        assert!((r.ci_lower.unwrap() + 0.369_999_999_999_684_86).abs() < 1e-9);
        assert!((r.ci_upper.unwrap() - 1.182_999_999_999_344_8).abs() < 1e-9);
    }

    #[test]
    fn all_tied_has_no_p_value_or_interval() {
        let r = mann_whitney(&[2.0, 2.0], &[2.0, 2.0, 2.0], 0.95);
        assert_eq!(r.u, 3.0);
        assert_eq!(r.p_value, None);
        assert_eq!((r.ci_lower, r.ci_upper), (None, None));
        assert_eq!(r.estimate, 0.0);
    }

    #[test]
    fn clamps_to_the_range_like_r() {
        // R: wilcox.test(1, 2:60, conf.int = TRUE, exact = FALSE) gives the interval
        // [min(x) − max(y), max(x) − min(y)] = [-59, -1].
        let y: Vec<f64> = (2..=60).map(f64::from).collect();
        let r = mann_whitney(&[1.0], &y, 0.95);
        assert_eq!((r.ci_lower, r.ci_upper), (Some(-59.0), Some(-1.0)));
    }
}
