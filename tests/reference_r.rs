//! The rank-sum test, Hodges-Lehmann estimate and interval, and R-7 quantiles against R's
//! own output: `tests/fixtures/wilcox/cases.json`, produced by `gen_wilcox.R` next to it
//! (R 4.2.2, `wilcox.test(..., conf.int = TRUE, exact = FALSE, correct = TRUE,
//! tol.root = 1e-12)`).
//!
//! Tolerances are the contract's: W exactly, p to 1e-9 relative, interval ends to 1e-9 of
//! the combined data range — or R's own accuracy where that is coarser: `uniroot` stops
//! within `tol.root = 1e-12` (absolute) of the step it converges to, which for data at the
//! 1e-6 scale is looser than 1e-9 of the range. The engine returns the step itself.

mod common;

use canary_engine::stats::mann_whitney;
use canary_engine::stats::sample::{quantile_sorted, sorted};
use common::{fixture, floats, rel_close};

#[test]
fn wilcox_matches_r() {
    let doc = fixture("tests/fixtures/wilcox/cases.json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 70, "fixture has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut with_ci = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap_or("?");
        let x = sorted(&floats(&c["x"]));
        let y = sorted(&floats(&c["y"]));
        let conf = c["conf_level"].as_f64().expect("conf_level");
        let r = mann_whitney(&x, &y, conf);

        let w = c["statistic"].as_f64().expect("statistic");
        if r.u != w {
            failures.push(format!("{name}: W {} != R {w}", r.u));
        }
        match (r.p_value, c["p_value"].as_f64()) {
            (Some(p), Some(rp)) if !rel_close(p, rp, 1e-9) => {
                failures.push(format!("{name}: p {p:e} != R {rp:e}"))
            }
            (None, Some(rp)) => failures.push(format!("{name}: p null, R {rp:e}")),
            (Some(p), None) => failures.push(format!("{name}: p {p:e}, R null")),
            _ => {}
        }
        let lo = x[0].min(y[0]);
        let hi = x[x.len() - 1].max(y[y.len() - 1]);
        let range = (hi - lo).max(f64::MIN_POSITIVE);
        let ci_tol = (1e-9 * range).max(1e-12);
        match (r.ci_lower.zip(r.ci_upper), c["conf_int"].as_array()) {
            (Some((a, b)), Some(rc)) => {
                with_ci += 1;
                let (ra, rb) = (rc[0].as_f64().unwrap(), rc[1].as_f64().unwrap());
                if (a - ra).abs() > ci_tol || (b - rb).abs() > ci_tol {
                    failures.push(format!("{name}: CI [{a}, {b}] != R [{ra}, {rb}]"));
                }
            }
            (None, None) => {}
            (ours, theirs) => failures.push(format!("{name}: CI {ours:?} vs R {theirs:?}")),
        }
        if let Some(m) = c["hl_median"].as_f64() {
            if (r.estimate - m).abs() > 1e-12 * range {
                failures.push(format!("{name}: HL {} != R median {m}", r.estimate));
            }
        }
        for (key, sample) in [("quantiles_x", &x), ("quantiles_y", &y)] {
            for (p, v) in c[key].as_object().expect("quantiles") {
                let p: f64 = p.parse().unwrap();
                let q = quantile_sorted(sample, p);
                if q != v.as_f64().unwrap() {
                    failures.push(format!("{name}: {key} p{p}: {q} != R {v}"));
                }
            }
        }
    }
    assert!(with_ci >= 50, "only {with_ci} cases compared an interval");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
