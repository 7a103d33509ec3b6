//! A judgement as a page (`GET /reports/{id}`, `judge`-kind reports): the verdict and its
//! reasons; per metric, canary vs baseline over the window with the decision point and their
//! distributions with the Hodges-Lehmann interval; per SLO, burn rates against thresholds.

use super::charts::{self, colour, Line, LineChart, Style};
use super::html::{badge, esc, page, readable_or_dash, unix};
use super::tone::Toned;
use crate::judging::{Judgement, MetricOutcome};

/// Render a judgement as a whole page.
pub fn html(id: &str, j: &Judgement) -> String {
    let mut body = format!(
        "<p class=\"meta\">score {} · window {} → {} · analysis <code>{}</code></p>",
        readable_or_dash(Some(j.score)),
        esc(&j.window_start),
        esc(&j.window_end),
        esc(id)
    );
    body.push_str(&section(j));
    page(&j.judge, Some(&j.verdict), &body)
}

/// The body of a judgement, for embedding in other reports.
pub fn section(j: &Judgement) -> String {
    let mut out = String::from("<h2>Reasons</h2><ul class=\"reasons\">");
    for r in &j.reasons {
        out.push_str(&format!("<li>{}</li>", esc(r)));
    }
    out.push_str("</ul>");
    if !j.args.is_empty() {
        let args: Vec<String> = j
            .args
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
            .collect();
        out.push_str(&format!("<p class=\"meta\">args {}</p>", args.join(" ")));
    }
    out.push_str(&format!(
        "<p class=\"meta\">decision <b>{}</b>: {}</p>",
        esc(&format!("{:?}", j.decision).to_lowercase()),
        esc(&j.decision_reason)
    ));
    if let Some(a) = &j.anchor {
        out.push_str(&format!(
            "<p class=\"meta\">analysis from {} ({:?}), {} steps</p>",
            esc(&a.start),
            a.source,
            a.steps
        ));
    }
    if !j.metrics.is_empty() {
        out.push_str(&metrics_table(&j.metrics));
        out.push_str(&evidence_table(&j.metrics));
        let decided = unix(&j.window_end);
        for m in &j.metrics {
            out.push_str(&metric_charts(m, decided));
        }
    }
    if !j.slos.is_empty() {
        out.push_str(&slos(j));
    }
    out
}

fn metrics_table(metrics: &[MetricOutcome]) -> String {
    let mut out = String::from(
        "<h2>Metrics</h2><table><tr><th>metric</th><th>group</th><th>classification</th>\
         <th>shift (HL)</th><th>interval</th><th>p-value</th><th>mean ratio</th><th>why</th></tr>",
    );
    for m in metrics {
        let mw = m.judgement.mann_whitney.as_ref();
        let p = mw.and_then(|x| x.p_value).or(m
            .judgement
            .counts
            .as_ref()
            .map(|c| c.sequential_p_value));
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&m.name),
            esc(&m.group),
            badge(&m.judgement.classification),
            if m.judgement.critical {
                " critical"
            } else {
                ""
            },
            readable_or_dash(mw.map(|x| x.estimate)),
            mw.map(|x| format!(
                "[{}, {}]",
                readable_or_dash(x.ci_lower),
                readable_or_dash(x.ci_upper)
            ))
            .unwrap_or_else(|| "–".into()),
            readable_or_dash(p),
            readable_or_dash(m.judgement.effect_size.as_ref().and_then(|e| e.mean_ratio)),
            esc(&m.judgement.reasons.join("; "))
        ));
    }
    out.push_str("</table>");
    out
}

/// Each anytime-valid test's evidence against its share of the budget: "not yet" or "no".
fn evidence_table(metrics: &[MetricOutcome]) -> String {
    let rows: Vec<String> = metrics
        .iter()
        .flat_map(|m| m.judgement.evidence.iter().map(move |e| (m, e)))
        .map(|(m, e)| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&m.name),
                esc(&e.test),
                readable_or_dash(Some(e.e_value)),
                readable_or_dash(Some(e.threshold)),
                readable_or_dash(Some(e.alpha)),
                readable_or_dash(Some(e.needed)),
                esc(e.rules_out.as_deref().unwrap_or("–")),
                readable_or_dash(e.clear_e_value),
                match e.state {
                    "decided" => "decided: regression",
                    "cleared" => "cleared: ruled out",
                    _ => "not yet",
                }
            )
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "<h2>Evidence so far</h2><table><tr><th>metric</th><th>test</th><th>e-value</th>\
         <th>needed to decide</th><th>budget α</th><th>still ×</th><th>mirror test rules out</th>\
         <th>its e-value</th><th>state</th></tr>{}</table>",
        rows.join("")
    )
}

fn metric_charts(m: &MetricOutcome, decided: Option<f64>) -> String {
    let (canary, baseline) = m.chart_points();
    if canary.is_empty() && baseline.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<h3>{} {}</h3>",
        esc(&m.name),
        badge(&m.judgement.classification)
    );
    out.push_str(&charts::line_chart(&LineChart {
        title: format!("{}: canary vs baseline", m.name),
        x_time: true,
        lines: vec![
            Line {
                name: "baseline".into(),
                colour: colour::BASELINE,
                points: baseline.clone(),
                style: Style::Line,
            },
            Line {
                name: "canary".into(),
                colour: colour::CANARY,
                points: canary.clone(),
                style: Style::Line,
            },
        ],
        markers: decided
            .map(|t| {
                vec![(
                    t,
                    m.judgement.classification.tone().colour(),
                    format!("decided: {}", m.judgement.classification.as_str()),
                )]
            })
            .unwrap_or_default(),
        ..Default::default()
    }));
    let shift = m.judgement.mann_whitney.as_ref().and_then(|mw| {
        Some((mw.estimate, mw.ci_lower?, mw.ci_upper?)).filter(|(e, _, _)| e.is_finite())
    });
    let values = |p: &[(f64, f64)]| p.iter().map(|x| x.1).collect::<Vec<f64>>();
    out.push_str(&charts::ecdf(
        &format!("{}: distributions (ECDF) and the shift interval", m.name),
        &values(&canary),
        &values(&baseline),
        shift,
    ));
    out
}

fn slos(j: &Judgement) -> String {
    let mut out = String::from(
        "<h2>SLOs</h2><table><tr><th>SLO</th><th>rule</th><th>long window burn</th>\
         <th>short window burn</th><th>outcome</th></tr>",
    );
    let mut pictures = String::new();
    for s in &j.slos {
        for r in &s.rules {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}/{} &gt; {}×</td><td class=\"n\">{}× ({} of {})</td>\
                 <td class=\"n\">{}× ({} of {})</td><td>{}</td></tr>",
                esc(&s.name),
                esc(&r.long.window),
                esc(&r.short.window),
                readable_or_dash(Some(r.factor)),
                readable_or_dash(r.long.burn_rate),
                readable_or_dash(Some(r.long.bad)),
                readable_or_dash(Some(r.long.total)),
                readable_or_dash(r.short.burn_rate),
                readable_or_dash(Some(r.short.bad)),
                readable_or_dash(Some(r.short.total)),
                badge(&r.outcome)
            ));
        }
        for r in &s.rules {
            let bars: Vec<(String, f64, charts::RGBColor)> = [&r.long, &r.short]
                .into_iter()
                .map(|w| {
                    let burn = w.burn_rate.unwrap_or(f64::NAN);
                    let c = if !burn.is_finite() {
                        colour::INCONCLUSIVE
                    } else if burn > r.factor {
                        colour::FAIL
                    } else {
                        colour::PASS
                    };
                    (format!("{} window", w.window), burn, c)
                })
                .collect();
            pictures.push_str(&charts::bar_chart(
                &format!(
                    "{}: burn rate over {}/{} ({} % objective)",
                    s.name,
                    r.long.window,
                    r.short.window,
                    readable_or_dash(Some(s.objective * 100.0))
                ),
                "burn rate (x budget)",
                &bars,
                Some((
                    r.factor,
                    format!("threshold {}x", readable_or_dash(Some(r.factor))),
                )),
            ));
        }
    }
    out.push_str("</table>");
    out.push_str(&pictures);
    out
}
