//! Anytime-valid sequential test for count metrics: a mixture likelihood ratio whose
//! always-valid p-value may be checked after every interval, forever, without inflating the
//! false-alarm rate (Ville's inequality; Lindon & Malek 2022, Johari et al. 2017).
//!
//! Per interval `k`, the canary's `x_k` bad events out of the `x_k + y_k` seen in both
//! variants are `Binomial(x_k + y_k, θ_k(r))` with `θ_k(r) = rρ_k / (rρ_k + 1 − ρ_k)`, `ρ_k`
//! the canary's share of requests and `r` the ratio of bad-event rates. For each `r` the
//! likelihood ratio against `r = 1` is a martingale with mean 1 under no regression, and so
//! is any mixture over `r`. The mixture here is over "canary worse" ratios only (a grid from
//! 1.05× to 20×), so the test is one-sided, like the exact test.
//!
//! It is recomputed from the per-interval increments on every call, so replicas and repeated
//! polls agree on the same number from the same data.

use super::counts::Counts;

/// One interval's counts for both variants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The canary's bad/total events in this interval.
    pub canary: Counts,
    /// The baseline's bad/total events in this interval.
    pub baseline: Counts,
}

/// Canary and baseline counts summed over all intervals (what the one-look exact test uses).
pub fn totals(intervals: &[Interval]) -> (Counts, Counts) {
    let zero = Counts {
        bad: 0.0,
        total: 0.0,
    };
    intervals.iter().fold((zero, zero), |(c, b), iv| {
        (
            Counts {
                bad: c.bad + iv.canary.bad,
                total: c.total + iv.canary.total,
            },
            Counts {
                bad: b.bad + iv.baseline.bad,
                total: b.total + iv.baseline.total,
            },
        )
    })
}

/// The mixing distribution: rate ratios `r_j` with equal weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    ratios: Vec<f64>,
}

impl Default for Mixture {
    /// 32 ratios log-spaced from 1.05 to 20 (numpy's `geomspace(1.05, 20, 32)`).
    fn default() -> Self {
        Self::geometric(1.05, 20.0, 32)
    }
}

impl Mixture {
    /// Alternatives for ruling a ratio of `null` or more out: 32 ratios log-spaced from
    /// `null / 20` to `null / 1.05`.
    pub fn below(null: f64) -> Self {
        Self::geometric(null / 20.0, null / 1.05, 32)
    }

    /// `count` ratios log-spaced between `from` and `to` inclusive, equally weighted.
    pub fn geometric(from: f64, to: f64, count: usize) -> Self {
        assert!(count >= 1 && from > 0.0 && to >= from);
        let (a, b) = (from.ln(), to.ln());
        let ratios = (0..count)
            .map(|j| {
                if count == 1 {
                    from
                } else {
                    (a + (b - a) * j as f64 / (count - 1) as f64).exp()
                }
            })
            .collect();
        Self { ratios }
    }
}

/// The sequential test after each interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequential {
    /// `log M_k` after each interval `k`.
    pub log_m: Vec<f64>,
    /// The always-valid p-value after each interval: `min(1, 1 / max_{i≤k} M_i)`.
    pub p_values: Vec<f64>,
}

impl Sequential {
    /// The always-valid p-value after the last interval (1 with no intervals).
    pub fn p_value(&self) -> f64 {
        self.p_values.last().copied().unwrap_or(1.0)
    }
}

/// Runs the mixture test over `intervals` in time order.
pub fn sequential_test(intervals: &[Interval], mixture: &Mixture) -> Sequential {
    sequential_test_against(intervals, mixture, 1.0)
}

/// The mixture test of "the rate ratio is `null`" against the mixture's ratios. With
/// `null = 1` and ratios above 1 it is the regression test; with `null` the tolerated ratio
/// and [`Mixture::below`] it rules a regression *out* ("the canary's ratio is below
/// `null`"): for any true ratio at or above `null` each step's likelihood ratio has mean at
/// most 1 (the binomial's likelihood ratio is monotone in the ratio), so the same
/// always-valid p-value holds for the whole composite null.
pub fn sequential_test_against(intervals: &[Interval], mixture: &Mixture, null: f64) -> Sequential {
    let j = mixture.ratios.len();
    let log_w = -(j as f64).ln();
    let null = if null.is_finite() && null > 0.0 {
        null
    } else {
        1.0
    };
    let log_r: Vec<f64> = mixture.ratios.iter().map(|r| (r / null).ln()).collect();
    let mut log_l = vec![0.0f64; j];
    let mut log_m = Vec::with_capacity(intervals.len());
    let mut p_values = Vec::with_capacity(intervals.len());
    let mut best = f64::NEG_INFINITY;
    for iv in intervals {
        let (n, m) = (iv.canary.total.max(0.0), iv.baseline.total.max(0.0));
        let (x, y) = (iv.canary.bad.max(0.0), iv.baseline.bad.max(0.0));
        if n + m > 0.0 {
            let rho = n / (n + m);
            if rho > 0.0 && rho < 1.0 {
                // Against r₀: log L += x·ln(r / r₀) − (x + y)·ln((1 + ρ(r − 1)) / (1 + ρ(r₀ − 1))).
                let at_null = (rho * (null - 1.0)).ln_1p();
                for (l, (&r, &lr)) in log_l.iter_mut().zip(mixture.ratios.iter().zip(&log_r)) {
                    *l += x * lr - (x + y) * ((rho * (r - 1.0)).ln_1p() - at_null);
                }
            }
        }
        let lm = log_w + log_sum_exp(&log_l);
        best = best.max(lm);
        log_m.push(lm);
        p_values.push((-best).exp().min(1.0));
    }
    Sequential { log_m, p_values }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(cb: f64, ct: f64, bb: f64, bt: f64) -> Interval {
        Interval {
            canary: Counts { bad: cb, total: ct },
            baseline: Counts { bad: bb, total: bt },
        }
    }

    #[test]
    fn no_data_is_no_evidence() {
        let s = sequential_test(&[iv(0.0, 0.0, 0.0, 0.0)], &Mixture::default());
        assert_eq!(s.log_m, vec![0.0]);
        assert_eq!(s.p_value(), 1.0);
    }

    #[test]
    fn a_healthy_canary_rules_out_a_regression_with_enough_events() {
        // Equal error rates, 10 % canary: "ratio ≥ 1.2" is ruled out with enough errors and
        // not with a handful.
        let many: Vec<Interval> = (0..20).map(|_| iv(50.0, 5000.0, 450.0, 45000.0)).collect();
        let s = sequential_test_against(&many, &Mixture::below(1.2), 1.2);
        assert!(s.p_value() < 1e-3, "{}", s.p_value());
        let few: Vec<Interval> = (0..20).map(|_| iv(1.0, 500.0, 9.0, 4500.0)).collect();
        let s = sequential_test_against(&few, &Mixture::below(1.2), 1.2);
        assert!(s.p_value() > 0.1, "{}", s.p_value());
        // A canary really at the tolerated ratio is not cleared.
        let at: Vec<Interval> = (0..20).map(|_| iv(60.0, 5000.0, 450.0, 45000.0)).collect();
        let s = sequential_test_against(&at, &Mixture::below(1.2), 1.2);
        assert!(s.p_value() > 0.5, "{}", s.p_value());
    }

    #[test]
    fn clear_regression_gives_small_p() {
        let data: Vec<Interval> = (0..20).map(|_| iv(10.0, 1000.0, 10.0, 9000.0)).collect();
        let s = sequential_test(&data, &Mixture::default());
        assert!(s.p_value() < 1e-10, "{}", s.p_value());
        // The always-valid p-value never increases.
        assert!(s.p_values.windows(2).all(|w| w[1] <= w[0]));
    }
}
