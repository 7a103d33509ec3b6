//! A realistic traffic simulator: Istio-shaped requests of a canary beside its stable.
//!
//! - Per 30 s step the service gets `Poisson(rps · 30 · load)` requests, where `load`
//!   follows a daily curve; each request goes to the canary with probability `weight`
//!   (Envoy's weighted clusters), times `share` (below 1: a crash-looping canary).
//! - Latency is log-normal (median 40 ms, σ 0.6) in Istio's default buckets. Spikes (5 % of
//!   steps) triple every request's latency and multiply the error ratio by 5, for both
//!   variants alike.
//! - Each canary's pods differ a little from the stable's, persistently for the analysis:
//!   latency ×U(0.97, 1.03), error ratio ×U(0.9, 1.1).
//! - Regressions: error ratio ×`errors`, latency ×`latency`, and a tail where `tail_frac` of
//!   the canary's requests are `tail_factor`× slower.
//!
//! It gives each analysis's steps as numbers (for judging in process) and as OpenMetrics
//! counters (for `promtool` and a real Prometheus), from the same draws.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, Poisson};

/// Istio's default `istio_request_duration_milliseconds` buckets (Envoy's), then `+Inf`.
pub const BOUNDS: [f64; 20] = [
    0.5,
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
    300000.0,
    600000.0,
    1800000.0,
    3600000.0,
    f64::INFINITY,
];

/// Seconds per step (the Judge spec's `step`) and per scrape.
pub const STEP: i64 = 30;
/// Steps per analysis: 10 minutes.
pub const STEPS: usize = 20;
/// Polls per analysis (Argo `count: 5`, `interval: 2m`): after steps 4, 8, …, 20.
pub const POLLS: usize = 5;

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name in tables.
    pub name: &'static str,
    /// Requests per second to the whole service.
    pub rps: f64,
    /// Canary weight (0..1].
    pub weight: f64,
    /// Baseline error ratio.
    pub error_ratio: f64,
    /// Canary error ratio multiplier (1: healthy).
    pub errors: f64,
    /// Canary latency multiplier.
    pub latency: f64,
    /// Fraction of canary requests in a slow tail.
    pub tail_frac: f64,
    /// How much slower the tail is.
    pub tail_factor: f64,
    /// Fraction of its share the canary actually receives.
    pub share: f64,
    /// The canary's pods differ a little from the stable's (latency ×U(0.97, 1.03), errors
    /// ×U(0.9, 1.1)), as real pods do; off for a canary exactly as bad as a margin.
    pub pod_spread: bool,
}

impl Scenario {
    /// A healthy canary.
    pub const fn healthy(name: &'static str, rps: f64, weight: f64) -> Scenario {
        Scenario {
            name,
            rps,
            weight,
            error_ratio: 0.003,
            errors: 1.0,
            latency: 1.0,
            tail_frac: 0.0,
            tail_factor: 1.0,
            share: 1.0,
            pod_spread: true,
        }
    }

    /// Whether the canary is as good as the stable (up to the pods' small differences).
    pub fn is_healthy(&self) -> bool {
        self.errors == 1.0 && self.latency == 1.0 && self.tail_frac == 0.0 && self.share == 1.0
    }
}

/// One step of one variant.
#[derive(Debug, Clone, Default)]
pub struct Side {
    /// Requests per bucket (not cumulative).
    pub buckets: Vec<f64>,
    /// Requests.
    pub requests: f64,
    /// 5xx responses.
    pub errors: f64,
}

/// One step of both variants.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The canary's.
    pub canary: Side,
    /// The stable's.
    pub baseline: Side,
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// Probability of each bucket for a log-normal latency with the given median, mixed with a
/// fraction `tail` that is `tail_factor` times slower.
fn bucket_probs(median: f64, tail: f64, tail_factor: f64) -> Vec<f64> {
    let sigma = 0.6;
    let cdf = |x: f64, med: f64| {
        if x.is_infinite() {
            1.0
        } else {
            normal_cdf((x.ln() - med.ln()) / sigma)
        }
    };
    let mut prev = 0.0;
    BOUNDS
        .iter()
        .map(|&b| {
            let c = (1.0 - tail) * cdf(b, median) + tail * cdf(b, median * tail_factor);
            let p = (c - prev).max(0.0);
            prev = c;
            p
        })
        .collect()
}

/// Multinomial draw by conditional binomials.
fn multinomial(rng: &mut StdRng, n: u64, probs: &[f64]) -> Vec<f64> {
    let mut left = n;
    let mut rest = 1.0;
    probs
        .iter()
        .map(|&p| {
            if left == 0 || rest <= 0.0 {
                return 0.0;
            }
            let q = (p / rest).clamp(0.0, 1.0);
            let k = Binomial::new(left, q).map_or(0, |d| d.sample(rng));
            left -= k;
            rest -= p;
            k as f64
        })
        .collect()
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    Binomial::new(n, p.clamp(0.0, 1.0)).map_or(0, |d| d.sample(rng))
}

/// The steps of analysis number `index` of `s` (deterministic in `seed` and `index`).
pub fn analysis(s: &Scenario, seed: u64, index: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let pod_latency = rng.random_range(0.97..1.03);
    let pod_errors = rng.random_range(0.9..1.1);
    let (pod_latency, pod_errors) = if s.pod_spread {
        (pod_latency, pod_errors)
    } else {
        (1.0, 1.0)
    };
    let phase = rng.random_range(0.0..std::f64::consts::TAU);
    (0..STEPS)
        .map(|k| {
            let load = 1.0 + 0.3 * (phase + k as f64 * 0.01).sin();
            let spike = rng.random_bool(0.05);
            let (lat, err) = if spike { (3.0, 5.0) } else { (1.0, 1.0) };
            let lambda = s.rps * STEP as f64 * load;
            let total = if lambda > 0.0 {
                Poisson::new(lambda).map_or(0.0, |d| d.sample(&mut rng)) as u64
            } else {
                0
            };
            let n = binomial(&mut rng, total, s.weight * s.share);
            let m = total - n;
            let canary_probs = bucket_probs(
                40.0 * lat * pod_latency * s.latency,
                s.tail_frac,
                s.tail_factor,
            );
            let base_probs = bucket_probs(40.0 * lat, 0.0, 1.0);
            let c_err = binomial(&mut rng, n, s.error_ratio * err * pod_errors * s.errors);
            let b_err = binomial(&mut rng, m, s.error_ratio * err);
            Step {
                canary: Side {
                    buckets: multinomial(&mut rng, n, &canary_probs),
                    requests: n as f64,
                    errors: c_err as f64,
                },
                baseline: Side {
                    buckets: multinomial(&mut rng, m, &base_probs),
                    requests: m as f64,
                    errors: b_err as f64,
                },
            }
        })
        .collect()
}

/// Cumulative counters of one variant as OpenMetrics lines.
struct Counters {
    buckets: Vec<f64>,
    requests_ok: f64,
    requests_5xx: f64,
}

impl Counters {
    fn new() -> Self {
        Counters {
            buckets: vec![0.0; BOUNDS.len()],
            requests_ok: 0.0,
            requests_5xx: 0.0,
        }
    }

    fn add(&mut self, s: &Side) {
        for (c, b) in self.buckets.iter_mut().zip(&s.buckets) {
            *c += b;
        }
        self.requests_5xx += s.errors;
        self.requests_ok += s.requests - s.errors;
    }

    fn write(&self, out: &mut String, service: &str, hash: &str, t: i64) {
        use std::fmt::Write;
        let l = format!(
            "reporter=\"destination\",destination_service_name=\"{service}\",\
             destination_service_namespace=\"sim\",rollouts_pod_template_hash=\"{hash}\""
        );
        let mut cum = 0.0;
        for (b, c) in BOUNDS.iter().zip(&self.buckets) {
            cum += c;
            let le = if b.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{b}")
            };
            let _ = writeln!(
                out,
                "istio_request_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {cum} {t}"
            );
        }
        let _ = writeln!(
            out,
            "istio_requests_total{{{l},response_code=\"200\"}} {} {t}",
            self.requests_ok
        );
        let _ = writeln!(
            out,
            "istio_requests_total{{{l},response_code=\"503\"}} {} {t}",
            self.requests_5xx
        );
    }
}

/// Analyses laid out in time for Prometheus: analysis `i` starts at `start + i · cycle` with
/// canary hash `c{i}`, then 2 minutes with the stable only. Returns the OpenMetrics samples
/// (one family block per metric name is produced by the caller) as lines, unsorted.
pub fn openmetrics_lines(
    service: &str,
    analyses: &[Vec<Step>],
    start: i64,
    out: &mut Vec<(i64, String)>,
) {
    let cycle = cycle_secs();
    let mut stable = Counters::new();
    for (i, steps) in analyses.iter().enumerate() {
        let t0 = start + i as i64 * cycle;
        let mut canary = Counters::new();
        let hash = format!("c{i}");
        let mut lines = String::new();
        canary.write(&mut lines, service, &hash, t0);
        stable.write(&mut lines, service, "stable", t0);
        for (k, s) in steps.iter().enumerate() {
            let t = t0 + (k as i64 + 1) * STEP;
            canary.add(&s.canary);
            stable.add(&s.baseline);
            canary.write(&mut lines, service, &hash, t);
            stable.write(&mut lines, service, "stable", t);
        }
        // The gap: the canary is gone, the stable carries on with no new requests.
        for k in 1..(cycle / STEP - STEPS as i64) {
            stable.write(
                &mut lines,
                service,
                "stable",
                t0 + (STEPS as i64 + k) * STEP,
            );
        }
        for line in lines.lines() {
            out.push((t0, line.to_string()));
        }
    }
}

/// Seconds between analysis starts.
pub fn cycle_secs() -> i64 {
    STEPS as i64 * STEP + 120
}

/// Group lines into OpenMetrics families (every sample of a family together) and end with
/// `# EOF`.
pub fn to_openmetrics(lines: Vec<(i64, String)>) -> String {
    let mut by_family: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (_, l) in lines {
        let name = l.split('{').next().unwrap_or("").to_string();
        by_family.entry(name).or_default().push(l);
    }
    let mut out = String::new();
    for (name, ls) in by_family {
        let (family, kind) = match name.strip_suffix("_bucket") {
            Some(f) => (f.to_string(), "histogram"),
            None => (name.trim_end_matches("_total").to_string(), "counter"),
        };
        out.push_str(&format!("# TYPE {family} {kind}\n"));
        for l in ls {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}
