//! The canary's share of requests against the share it was given (STATISTICS.md §5).
//!
//! Raw request rates of a 10 % canary and a 90 % stable differ ninefold by design; what
//! shows a crash-looping or unready canary is its *share* `ρ_k = n_k / N_k` falling below
//! the weight. Each request is routed independently (Envoy's weighted clusters), so under a
//! healthy canary `n_k ~ Binomial(N_k, w)`. The test is a mixture likelihood ratio over
//! shares below `w` — an anytime-valid martingale like the count test's — and a share is
//! `low` only when the test rejects and the observed share is below `allowed_decrease · w`.

use serde::Serialize;

use super::config::MetricConfig;
use super::part::{Classification, Evidence, Part};
use super::words::readable;

/// Per-step requests of each variant and the expected canary share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShareData {
    /// Canary requests per step, oldest first.
    pub canary: Vec<f64>,
    /// Baseline requests per step.
    pub baseline: Vec<f64>,
    /// The share the canary should get, in (0, 1] (with `expected_steps`: their
    /// request-weighted mean, for reports).
    pub expected: f64,
    /// The share it should get at each step, when it changes (its share of the ready pods);
    /// NaN for a step with no ready pod, which is left out.
    pub expected_steps: Option<Vec<f64>>,
}

impl ShareData {
    /// Data whose expected share is given per step (e.g. from ready pods).
    pub fn at_steps(canary: Vec<f64>, baseline: Vec<f64>, expected: Vec<f64>) -> ShareData {
        if expected.windows(2).all(|w| w[0] == w[1]) {
            let e = expected.first().copied().unwrap_or(f64::NAN);
            return ShareData {
                canary,
                baseline,
                expected: e,
                expected_steps: None,
            };
        }
        let (mut num, mut den) = (0.0, 0.0);
        for ((c, b), e) in canary.iter().zip(&baseline).zip(&expected) {
            if e.is_finite() {
                num += e * (c + b);
                den += c + b;
            }
        }
        ShareData {
            canary,
            baseline,
            expected: if den > 0.0 { num / den } else { f64::NAN },
            expected_steps: Some(expected),
        }
    }

    /// `(canary, baseline, expected share)` of each step with a known expected share.
    fn steps(&self) -> Vec<(f64, f64, f64)> {
        self.canary
            .iter()
            .zip(&self.baseline)
            .enumerate()
            .map(|(k, (c, b))| {
                let e = self
                    .expected_steps
                    .as_ref()
                    .map_or(self.expected, |v| v.get(k).copied().unwrap_or(f64::NAN));
                (*c, *b, e)
            })
            .filter(|s| s.2.is_finite())
            .collect()
    }
}

/// What the share test found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShareResult {
    /// The share the canary should get.
    pub expected: f64,
    /// The share it got over the steps judged (null without requests).
    pub observed: Option<f64>,
    /// Observed / expected.
    pub ratio: Option<f64>,
    /// Requests the canary answered over the window.
    pub canary_requests: f64,
    /// Requests of both variants.
    pub total_requests: f64,
    /// The mixture's e-value after the last step.
    pub e_value: f64,
    /// Always-valid p-value for "the canary gets less than its share".
    pub p_value: f64,
    /// The budget it is compared with.
    pub alpha: f64,
}

/// Alternative shares as fractions of the expected one: 5 % to 95 %, log-spaced.
fn alternatives() -> Vec<f64> {
    let (a, b, k) = (0.05f64.ln(), 0.95f64.ln(), 16);
    (0..k)
        .map(|j| (a + (b - a) * j as f64 / (k - 1) as f64).exp())
        .collect()
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `(log e-value after the last step, always-valid p-value)` of the share test.
pub fn share_test(canary: &[f64], baseline: &[f64], expected: f64) -> (f64, f64) {
    let steps: Vec<(f64, f64, f64)> = canary
        .iter()
        .zip(baseline)
        .map(|(c, b)| (*c, *b, expected))
        .collect();
    share_test_steps(&steps)
}

/// The share test over `(canary, baseline, expected share)` steps: the alternatives are the
/// same fractions of each step's expected share, so the share may change from step to step
/// (ready pods coming and going). A step whose expected share is not in (0, 1) is left out.
pub fn share_test_steps(steps: &[(f64, f64, f64)]) -> (f64, f64) {
    let rs = alternatives();
    let log_w = -(rs.len() as f64).ln();
    let mut log_l = vec![0.0f64; rs.len()];
    let mut best = f64::NEG_INFINITY;
    let mut last = 0.0;
    for &(n, m, expected) in steps {
        let (n, m) = (n.max(0.0), m.max(0.0));
        if n + m <= 0.0 || !(expected > 0.0 && expected < 1.0) {
            continue;
        }
        for (l, r) in log_l.iter_mut().zip(&rs) {
            let w = expected * r;
            *l += n * r.ln() + m * ((1.0 - w) / (1.0 - expected)).ln();
        }
        last = log_w + log_sum_exp(&log_l);
        best = best.max(last);
    }
    if best == f64::NEG_INFINITY {
        return (0.0, 1.0);
    }
    (last, (-best).exp().min(1.0))
}

/// Always-valid p-value of the mirror test: "the canary's share is at most `floor`" (a
/// starved canary) against larger shares, a mixture over 16 shares from `1.05 · floor` up
/// to twice the weight it is judged against. Small means starvation is ruled out.
pub fn share_clear(canary: &[f64], baseline: &[f64], floor: f64, expected: f64) -> f64 {
    if expected.is_nan() || expected <= 0.0 {
        return 1.0;
    }
    let steps: Vec<(f64, f64, f64)> = canary
        .iter()
        .zip(baseline)
        .map(|(c, b)| (*c, *b, expected))
        .collect();
    share_clear_steps(&steps, floor / expected)
}

/// The mirror test over `(canary, baseline, expected share)` steps: "the share is at most
/// `fraction` of each step's expected share", against larger fractions (from 1.05× that up to
/// twice the expected share).
pub fn share_clear_steps(steps: &[(f64, f64, f64)], fraction: f64) -> f64 {
    if !(fraction > 0.0 && fraction < 1.0) {
        return 1.0;
    }
    let top = (2.0 / fraction).max(1.06);
    let (a, b, k) = (1.05f64.ln(), top.ln(), 16);
    let gs: Vec<f64> = (0..k)
        .map(|j| (a + (b - a) * j as f64 / (k - 1) as f64).exp())
        .collect();
    let log_w = -(gs.len() as f64).ln();
    let mut log_l = vec![0.0f64; gs.len()];
    let mut best = f64::NEG_INFINITY;
    for &(n, m, expected) in steps {
        let (n, m) = (n.max(0.0), m.max(0.0));
        let floor = fraction * expected;
        if n + m <= 0.0 || !(floor > 0.0 && floor < 1.0) {
            continue;
        }
        for (l, g) in log_l.iter_mut().zip(&gs) {
            let w = (floor * g).min(0.5 * (1.0 + floor)).min(0.999);
            *l += n * (w / floor).ln() + m * ((1.0 - w) / (1.0 - floor)).ln();
        }
        best = best.max(log_w + log_sum_exp(&log_l));
    }
    (-best).exp().min(1.0)
}

/// Judges the canary's share of requests.
pub(crate) fn judge_share(
    cfg: &MetricConfig,
    data: &ShareData,
    evidence: &mut Vec<Evidence>,
) -> (Part, ShareResult) {
    let alpha = cfg.budget();
    let canary: f64 = data.canary.iter().map(|v| v.max(0.0)).sum();
    let baseline: f64 = data.baseline.iter().map(|v| v.max(0.0)).sum();
    let total = canary + baseline;
    let observed = (total > 0.0).then(|| canary / total);
    let ratio = observed.map(|o| o / data.expected);
    let steps = data.steps();
    let (log_e, p) = share_test_steps(&steps);
    let allowed = cfg.effect.allowed_decrease.unwrap_or(0.5);
    let floor = allowed * data.expected;
    evidence.push(Evidence::new("traffic share", p, alpha).clearing(
        format!(
            "a share of {}% or less ({}× its weight)",
            readable(floor * 100.0),
            readable(allowed)
        ),
        share_clear_steps(&steps, allowed),
    ));
    let result = ShareResult {
        expected: data.expected,
        observed,
        ratio,
        canary_requests: canary,
        total_requests: total,
        e_value: log_e.exp(),
        p_value: p,
        alpha,
    };
    let shares = format!(
        "canary share {} of {} requests, expected {} (ratio {})",
        observed.map_or("n/a".into(), |o| format!("{}%", readable(o * 100.0))),
        readable(total),
        format_args!("{}%", readable(data.expected * 100.0)),
        ratio.map_or("n/a".into(), readable),
    );
    let (classification, reason) = if data.expected >= 1.0 {
        (
            Classification::Pass,
            format!("the canary is meant to take all traffic: {shares}"),
        )
    } else if total < cfg.min_events {
        (
            Classification::Nodata,
            format!(
                "not enough requests: {shares}; needs min_requests = {} — nodata, never a pass",
                readable(cfg.min_events)
            ),
        )
    } else if p < alpha && ratio.is_some_and(|r| r <= allowed) {
        (
            Classification::Low,
            format!(
                "canary gets far less than its share (crash loop, failing readiness?): {shares}, \
                 allowed down to {}× (anytime-valid p = {}, budget α = {})",
                readable(allowed),
                readable(p),
                readable(alpha)
            ),
        )
    } else {
        (
            Classification::Pass,
            format!(
                "canary gets its share: {shares} (anytime-valid p = {})",
                readable(p)
            ),
        )
    };
    (
        Part {
            classification,
            critical_effect: classification == Classification::Low,
            reasons: vec![reason],
        },
        result,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fair_share_passes_and_a_starved_canary_does_not() {
        let fair = share_test(&[10.0; 20], &[90.0; 20], 0.1);
        assert!(fair.1 > 0.5, "{fair:?}");
        let starved = share_test(&[2.0; 20], &[98.0; 20], 0.1);
        assert!(starved.1 < 1e-6, "{starved:?}");
        assert_eq!(share_test(&[5.0], &[0.0], 1.0), (0.0, 1.0));
    }

    #[test]
    fn a_fair_share_rules_starvation_out_and_a_starved_one_does_not() {
        assert!(share_clear(&[10.0; 20], &[90.0; 20], 0.05, 0.1) < 1e-4);
        assert!(share_clear(&[10.0], &[90.0], 0.05, 0.1) > 0.01);
        assert!(share_clear(&[5.0; 20], &[95.0; 20], 0.05, 0.1) > 0.1);
        assert_eq!(share_clear(&[5.0], &[95.0], 0.0, 0.1), 1.0);
    }
}
