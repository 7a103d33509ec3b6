//! The rank-sum test, Hodges-Lehmann estimate and interval, and R-7 quantiles against R's
//! own output: `tests/fixtures/wilcox/cases.json`, produced by `gen_wilcox.R` next to it
//! (R 4.2.2, `wilcox.test(..., conf.int = TRUE, exact = FALSE, correct = TRUE,
//! tol.root = 1e-12)`).
//!
//! Tolerances are the contract's: W exactly, p to 1e-9 relative, interval ends to 1e-9 of
//! the combined data range. The interval is checked twice: against `conf_int_tight` (the same
//! call with `tol.root` 1e-13 of the data range) at exactly 1e-9 of the range, and against
//! the literal call (`tol.root = 1e-12`, absolute) at 1e-9 of the range or that
//! 1e-12, whichever is larger — for data at the 1e-6 scale R's own answer there is only
//! within 1e-12 of the step it converges to. The engine returns the step itself.

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
        for (key, tol) in [("conf_int_tight", 1e-9 * range), ("conf_int", ci_tol)] {
            match (r.ci_lower.zip(r.ci_upper), c[key].as_array()) {
                (Some((a, b)), Some(rc)) => {
                    with_ci += 1;
                    let (ra, rb) = (rc[0].as_f64().unwrap(), rc[1].as_f64().unwrap());
                    if (a - ra).abs() > tol || (b - rb).abs() > tol {
                        failures.push(format!("{name}: CI [{a}, {b}] != R {key} [{ra}, {rb}]"));
                    }
                }
                (None, None) => {}
                (ours, theirs) => {
                    failures.push(format!("{name}: CI {ours:?} vs R {key} {theirs:?}"))
                }
            }
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
    assert!(with_ci >= 100, "only {with_ci} interval comparisons");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
