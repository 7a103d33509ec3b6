//! The stratified (van Elteren) rank statistic on histogram buckets, its normal-mixture
//! boundary, the slow-request counts and `histogram_quantile`'s interpolation, against
//! `tests/fixtures/histogram/cases.json`, produced with scipy (`mannwhitneyu`, `tiecorrect`)
//! and a transcription of Prometheus' `bucketQuantile` by `gen_stratified.py` next to it.

mod common;

use canary_engine::stats::histogram::{
    boundary, log_mixture, pooled, quantile, slow_counts, step_u, stratified_test, StepBuckets,
};
use common::{fixture, floats};
use serde_json::Value;

fn bound(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "+Inf" => f64::INFINITY,
        v => v.as_f64().expect("bound"),
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn stratified_statistic_matches_scipy() {
    let doc = fixture("tests/fixtures/histogram/cases.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 15, "{} cases", cases.len());
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let bounds: Vec<f64> = c["bounds"].as_array().unwrap().iter().map(bound).collect();
        let steps: Vec<StepBuckets> = c["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| StepBuckets {
                canary: floats(&s["canary"]),
                baseline: floats(&s["baseline"]),
            })
            .collect();
        let (v0, alpha) = (c["v"].as_f64().unwrap(), c["alpha"].as_f64().unwrap());
        let e = &c["expected"];
        let (u, mean, var) = (floats(&e["u"]), floats(&e["mean"]), floats(&e["var"]));
        for (k, s) in steps.iter().enumerate() {
            let got = step_u(s);
            assert!(
                close(got.u, u[k], 1e-12),
                "{name} step {k}: U {} vs {}",
                got.u,
                u[k]
            );
            assert!(close(got.mean, mean[k], 1e-12), "{name} step {k}: E");
            assert!(
                close(got.var, var[k], 1e-9),
                "{name} step {k}: Var {} vs {}",
                got.var,
                var[k]
            );
        }
        let t = stratified_test(&steps, v0, alpha);
        let (s, v) = (floats(&e["s"]), floats(&e["v_total"]));
        let (b, lm) = (floats(&e["boundary"]), floats(&e["log_m"]));
        for (k, look) in t.trail.iter().enumerate() {
            assert!(
                close(look.s, s[k], 1e-9),
                "{name} look {k}: S {} vs {}",
                look.s,
                s[k]
            );
            assert!(close(look.v, v[k], 1e-9), "{name} look {k}: V");
            assert!(
                close(look.boundary, b[k], 1e-9),
                "{name} look {k}: boundary"
            );
            assert!(close(boundary(look.v, v0, alpha), b[k], 1e-9));
            assert!(
                close(log_mixture(look.s, look.v, v0), lm[k], 1e-9),
                "{name} look {k}: log M"
            );
        }
        match e["cles"].as_f64() {
            Some(want) => assert!(
                close(t.cles, want, 1e-12),
                "{name}: CLES {} vs {want}",
                t.cles
            ),
            None => assert!(t.cles.is_nan(), "{name}: CLES"),
        }
        for (side, key) in [(true, "canary_quantiles"), (false, "baseline_quantiles")] {
            let counts = pooled(&steps, side);
            for q in ["0.5", "0.9", "0.99"] {
                let got = quantile(&bounds, &counts, q.parse().unwrap());
                match e[key][q].as_f64() {
                    Some(want) => {
                        assert!(close(got, want, 1e-12), "{name} {key} {q}: {got} vs {want}")
                    }
                    None => assert!(got.is_nan(), "{name} {key} {q}: {got}"),
                }
            }
        }
        let t_slow = bound(&c["slower_than"]);
        let from = bounds
            .iter()
            .position(|b| *b == t_slow)
            .expect("slower_than is a bound");
        let (cs, bs) = (floats(&e["canary_slow"]), floats(&e["baseline_slow"]));
        for (k, s) in steps.iter().enumerate() {
            let (c_slow, _, b_slow, _) = slow_counts(s, from);
            assert_eq!(
                (c_slow, b_slow),
                (cs[k], bs[k]),
                "{name} step {k}: slow counts"
            );
        }
    }
}
