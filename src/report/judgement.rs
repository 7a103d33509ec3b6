//! `GET /reports/{id}`: a self-contained HTML page — verdict, reasons, metrics, SLOs.

use html_escape::encode_text as esc;

use crate::judging::Judgement;
use crate::slo::SloOutcome;

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            let s = format!("{x:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Some(x) => x.to_string(),
        None => "–".into(),
    }
}

/// Render a judgement as a page.
pub fn html(id: &str, j: &Judgement) -> String {
    let verdict = serde_json::to_value(j.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let colour = match verdict.as_str() {
        "pass" => "#1a7f37",
        "marginal" => "#9a6700",
        "fail" => "#cf222e",
        _ => "#57606a",
    };
    let mut out = String::new();
    out.push_str(&format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1f2328}}\
         table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}}\
         .v{{display:inline-block;padding:.2rem .8rem;border-radius:1rem;color:#fff;background:{colour}}}\
         code{{font-size:.9em}}</style></head><body>",
        esc(&j.judge),
        esc(&verdict)
    ));
    out.push_str(&format!(
        "<h1>{} <span class=\"v\">{}</span></h1><p>score {} · window {} → {} · analysis <code>{}</code></p>",
        esc(&j.judge),
        esc(&verdict),
        num(Some(j.score)),
        esc(&j.window_start),
        esc(&j.window_end),
        esc(id)
    ));
    out.push_str("<h2>Reasons</h2><ul>");
    for r in &j.reasons {
        out.push_str(&format!("<li>{}</li>", esc(r)));
    }
    out.push_str("</ul>");
    if !j.metrics.is_empty() {
        out.push_str("<h2>Metrics</h2><table><tr><th>metric</th><th>group</th><th>classification</th><th>shift (HL)</th><th>interval</th><th>p-value</th><th>mean ratio</th><th>why</th></tr>");
        for m in &j.metrics {
            let mw = m.judgement.mann_whitney.as_ref();
            let p = mw.and_then(|x| x.p_value).or(m
                .judgement
                .counts
                .as_ref()
                .map(|c| c.sequential_p_value));
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.name),
                esc(&m.group),
                esc(m.judgement.classification.as_str()),
                num(mw.map(|x| x.estimate)),
                mw.map(|x| format!("[{}, {}]", num(x.ci_lower), num(x.ci_upper)))
                    .unwrap_or_else(|| "–".into()),
                num(p),
                num(m.judgement.effect_size.as_ref().and_then(|e| e.mean_ratio)),
                esc(&m.judgement.reasons.join("; "))
            ));
        }
        out.push_str("</table>");
    }
    if !j.slos.is_empty() {
        out.push_str("<h2>SLOs</h2><table><tr><th>SLO</th><th>rule</th><th>long window burn</th><th>short window burn</th><th>outcome</th></tr>");
        for s in &j.slos {
            for r in &s.rules {
                let outcome = match r.outcome {
                    SloOutcome::Pass => "pass",
                    SloOutcome::Fail => "fail",
                    SloOutcome::Inconclusive => "inconclusive",
                };
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{}/{} &gt; {}×</td><td>{}× ({} of {})</td><td>{}× ({} of {})</td><td>{}</td></tr>",
                    esc(&s.name),
                    esc(&r.long.window),
                    esc(&r.short.window),
                    num(Some(r.factor)),
                    num(r.long.burn_rate),
                    num(Some(r.long.bad)),
                    num(Some(r.long.total)),
                    num(r.short.burn_rate),
                    num(Some(r.short.bad)),
                    num(Some(r.short.total)),
                    outcome
                ));
            }
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>\n");
    out
}
