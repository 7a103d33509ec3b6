//! The `--output table` rendering of a metric judgement, for a person at a terminal.

use crate::judge::MetricJudgement;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), crate::judge::words::readable)
}

/// Renders the judgement as a verdict line, the reasons, and a table of the numbers.
pub fn render(j: &MetricJudgement) -> String {
    let mut out = format!(
        "classification: {}{}\n",
        j.classification.as_str().to_uppercase(),
        if j.critical { " (critical)" } else { "" }
    );
    for r in &j.reasons {
        out.push_str(&format!("  • {r}\n"));
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["", "value"]);
    if let Some(s) = &j.samples {
        for (name, v) in [("canary", &s.canary), ("baseline", &s.baseline)] {
            t.add_row(vec![
                Cell::new(format!("{name} n / mean / median / p90")),
                Cell::new(format!(
                    "{} / {} / {} / {}",
                    v.n,
                    opt(v.mean),
                    opt(v.median),
                    opt(v.p90)
                )),
            ]);
        }
    }
    if let Some(mw) = &j.mann_whitney {
        t.add_row(vec![
            "Mann-Whitney U".into(),
            crate::judge::words::readable(mw.u),
        ]);
        t.add_row(vec!["p-value".into(), opt(mw.p_value)]);
        t.add_row(vec![
            "shift estimate (Hodges-Lehmann)".into(),
            crate::judge::words::readable(mw.estimate),
        ]);
        t.add_row(vec![
            "confidence interval".into(),
            format!("[{}, {}]", opt(mw.ci_lower), opt(mw.ci_upper)),
        ]);
    }
    if let Some(e) = &j.effect_size {
        t.add_row(vec!["mean ratio".into(), opt(e.mean_ratio)]);
        t.add_row(vec!["CLES".into(), crate::judge::words::readable(e.cles)]);
    }
    if let Some(tail) = &j.tail {
        t.add_row(vec![
            "KS D (p)".into(),
            format!(
                "{} ({})",
                crate::judge::words::readable(tail.ks_statistic),
                crate::judge::words::readable(tail.ks_p_value)
            ),
        ]);
        t.add_row(vec![
            format!(
                "p{} ratio",
                crate::judge::words::readable(tail.quantile * 100.0)
            ),
            opt(tail.upper_ratio),
        ]);
    }
    if let Some(c) = &j.counts {
        t.add_row(vec![
            "exact count p-value".into(),
            crate::judge::words::readable(c.p_value),
        ]);
        t.add_row(vec![
            "anytime-valid p-value".into(),
            crate::judge::words::readable(c.sequential_p_value),
        ]);
        t.add_row(vec!["rate ratio".into(), opt(c.rate_ratio)]);
    }
    if let Some(h) = &j.histogram {
        let n = crate::judge::words::readable;
        t.add_row(vec![
            "requests (canary / baseline)".into(),
            format!(
                "{} / {}",
                n(h.test.canary_requests),
                n(h.test.baseline_requests)
            ),
        ]);
        t.add_row(vec![
            "stratified z, e-value (needed)".into(),
            format!(
                "{}, {} ({})",
                n(h.test.z),
                n(h.test.log_e_value.exp()),
                n(h.e_value_threshold)
            ),
        ]);
        t.add_row(vec!["stratified CLES".into(), n(h.test.cles)]);
        for q in &h.quantiles {
            t.add_row(vec![
                format!("p{} canary / baseline", n(q.quantile * 100.0)),
                format!(
                    "{} / {} (ratio {})",
                    opt(q.canary),
                    opt(q.baseline),
                    opt(q.ratio)
                ),
            ]);
        }
        if let Some(slow) = &h.slow {
            t.add_row(vec![
                format!(
                    "slower than {}: anytime-valid p",
                    h.slower_than.map_or("?".into(), n)
                ),
                n(slow.sequential_p_value),
            ]);
        }
    }
    if let Some(sh) = &j.share {
        let n = crate::judge::words::readable;
        t.add_row(vec![
            "canary share (expected)".into(),
            format!("{} ({})", opt(sh.observed), n(sh.expected)),
        ]);
        t.add_row(vec!["share anytime-valid p".into(), n(sh.p_value)]);
    }
    out.push_str(&t.to_string());
    out
}
