//! Count tests, the sequential mixture, the KS test and (a second opinion on) Mann-Whitney
//! against `tests/fixtures/counts/cases.json`, produced by `gen_counts.py` next to it
//! (scipy 1.17.1, numpy 2.4.6).

mod common;

use canary_engine::stats::counts::{exact_p_value, Counts};
use canary_engine::stats::ks::ks_test;
use canary_engine::stats::mann_whitney;
use canary_engine::stats::sample::sorted;
use canary_engine::stats::sequential::{sequential_test, Interval, Mixture};
use common::{fixture, floats, rel_close};

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().expect("number")
}

#[test]
fn exact_binomial_matches_scipy() {
    let doc = fixture("tests/fixtures/counts/cases.json");
    let cases = doc["binomial"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for c in cases {
        let canary = Counts {
            bad: f(&c["canary_bad"]),
            total: f(&c["canary_total"]),
        };
        let baseline = Counts {
            bad: f(&c["baseline_bad"]),
            total: f(&c["baseline_total"]),
        };
        let p = exact_p_value(canary, baseline);
        let want = f(&c["p_value"]);
        let ok = if want == 0.0 {
            p < 1e-300
        } else {
            rel_close(p, want, 1e-9)
        };
        assert!(ok, "{}: {p:e} vs scipy {want:e}", c["name"]);
    }
}

#[test]
fn sequential_matches_independent_python() {
    let doc = fixture("tests/fixtures/counts/cases.json");
    let cases = doc["sequential"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let (cb, ct) = (floats(&c["canary_bad"]), floats(&c["canary_total"]));
        let (bb, bt) = (floats(&c["baseline_bad"]), floats(&c["baseline_total"]));
        let intervals: Vec<Interval> = (0..cb.len())
            .map(|k| Interval {
                canary: Counts {
                    bad: cb[k],
                    total: ct[k],
                },
                baseline: Counts {
                    bad: bb[k],
                    total: bt[k],
                },
            })
            .collect();
        let s = sequential_test(&intervals, &Mixture::default());
        let (log_m, p) = (floats(&c["log_m"]), floats(&c["p_values"]));
        assert_eq!(s.log_m.len(), log_m.len());
        for k in 0..log_m.len() {
            assert!(
                (s.log_m[k] - log_m[k]).abs() <= 1e-9 * log_m[k].abs().max(1.0),
                "{} look {k}: log M {} vs {}",
                c["name"],
                s.log_m[k],
                log_m[k]
            );
            assert!(
                rel_close(s.p_values[k], p[k], 1e-9),
                "{} look {k}: p",
                c["name"]
            );
        }
    }
}

#[test]
fn ks_matches_scipy() {
    let doc = fixture("tests/fixtures/counts/cases.json");
    for c in doc["ks"].as_array().unwrap() {
        let ks = ks_test(&sorted(&floats(&c["x"])), &sorted(&floats(&c["y"])));
        assert!(
            (ks.statistic - f(&c["d"])).abs() < 1e-12,
            "{}: D",
            c["name"]
        );
        assert!(
            rel_close(ks.p_value, f(&c["p_value"]), 1e-9),
            "{}: p {} vs {}",
            c["name"],
            ks.p_value,
            f(&c["p_value"])
        );
    }
}

#[test]
fn mann_whitney_matches_scipy_too() {
    let doc = fixture("tests/fixtures/counts/cases.json");
    for c in doc["mann_whitney_scipy"].as_array().unwrap() {
        let r = mann_whitney(&sorted(&floats(&c["x"])), &sorted(&floats(&c["y"])), 0.95);
        assert_eq!(r.u, f(&c["u"]), "{}", c["name"]);
        assert!(
            rel_close(r.p_value.unwrap(), f(&c["p_value"]), 1e-9),
            "{}",
            c["name"]
        );
    }
}
