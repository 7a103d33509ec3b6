//! A backtest as a page: the verdict timeline, and each metric over the whole range with the
//! moments it failed.

use super::analysis::measurement_lines;
use super::charts::{self, colour, Line, LineChart, Style};
use super::html::{badge, esc, page, readable_or_dash};
use super::tone::Toned;
use crate::backtest::Backtest;
use crate::judge::Classification;

/// Render a backtest.
pub fn html(b: &Backtest) -> String {
    let failed = b.points.iter().filter(|p| p.failed()).count();
    let total = b.points.len();
    let mut body = format!(
        "<p class=\"meta\">{} → {} · every {} · {} moments · {} range queries fetched, {} \
         answered from memory, {} sent as asked</p>",
        esc(&b.from),
        esc(&b.to),
        humantime::format_duration(std::time::Duration::from_secs(b.every_seconds)),
        total,
        b.queries.range_queries,
        b.queries.from_memory,
        b.queries.passed_through
    );
    let counts: Vec<String> = b
        .summary
        .iter()
        .map(|(k, v)| format!("{} {v}", badge(k)))
        .collect();
    body.push_str(&format!(
        "<p>{} — would have failed <strong>{failed} of {total}</strong> moments ({:.1} %)</p>",
        counts.join(" "),
        100.0 * failed as f64 / total.max(1) as f64
    ));
    if !b.args.is_empty() {
        let args: Vec<String> = b
            .args
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
            .collect();
        body.push_str(&format!("<p class=\"meta\">args {}</p>", args.join(" ")));
    }

    let every = b.every_seconds as f64;
    let bands = b
        .points
        .iter()
        .map(|p| {
            let t = p.t as f64;
            (t, t + every, p.outcome.tone().colour())
        })
        .collect();
    let scores: Vec<(f64, f64)> = b
        .points
        .iter()
        .filter_map(|p| Some((p.t as f64, p.score?)))
        .collect();
    body.push_str("<h2>Verdict timeline</h2>");
    body.push_str(&charts::line_chart(&LineChart {
        title: format!("{}: outcome at each moment", b.name),
        y_label: if scores.is_empty() { "" } else { "score" }.into(),
        x_time: true,
        lines: if scores.is_empty() {
            Vec::new()
        } else {
            vec![Line {
                name: "score".into(),
                colour: colour::ERROR,
                points: scores,
                style: Style::Line,
            }]
        },
        bands,
        y_range: Some((0.0, 105.0)),
        size: Some((900, 240)),
        ..Default::default()
    }));
    body.push_str(
        "<p class=\"meta\">background: green pass, amber marginal, purple inconclusive, \
         red fail, grey error</p>",
    );

    if b.kind == "judge" {
        body.push_str("<h2>Metrics over the range</h2>");
        for (name, s) in &b.series {
            let markers: Vec<(f64, charts::RGBColor, String)> = b
                .points
                .iter()
                .filter(|p| {
                    p.judgement.as_ref().is_some_and(|j| {
                        j.metrics.iter().any(|m| {
                            &m.name == name
                                && matches!(
                                    m.judgement.classification,
                                    Classification::High | Classification::Low
                                )
                        })
                    })
                })
                .take(60)
                .map(|p| (p.t as f64, colour::FAIL, String::new()))
                .collect();
            body.push_str(&charts::line_chart(&LineChart {
                title: format!("{name}: canary vs baseline (red lines: moments it failed)"),
                x_time: true,
                lines: vec![
                    Line {
                        name: "baseline".into(),
                        colour: colour::BASELINE,
                        points: s.baseline.clone(),
                        style: Style::Line,
                    },
                    Line {
                        name: "canary".into(),
                        colour: colour::CANARY,
                        points: s.canary.clone(),
                        style: Style::Line,
                    },
                ],
                markers,
                ..Default::default()
            }));
        }
    } else {
        body.push_str("<h2>Measurements over the range</h2>");
        let names: Vec<String> = b
            .points
            .first()
            .and_then(|p| p.run.as_ref())
            .map(|r| r.metrics.iter().map(|m| m.name.clone()).collect())
            .unwrap_or_default();
        for name in names {
            let results = b
                .points
                .iter()
                .filter_map(|p| p.run.as_ref())
                .flat_map(|r| r.metrics.iter().filter(|m| m.name == name));
            body.push_str(&charts::line_chart(&LineChart {
                title: format!("{name}: every measurement of every run, by phase"),
                y_label: "value".into(),
                x_time: true,
                lines: measurement_lines(results),
                size: Some((900, 280)),
                ..Default::default()
            }));
        }
    }

    body.push_str("<h2>Moments that did not pass</h2>");
    let bad: Vec<_> = b.points.iter().filter(|p| !p.outcome.passed()).collect();
    if bad.is_empty() {
        body.push_str("<p>Every moment passed.</p>");
    } else {
        body.push_str("<table><tr><th>moment</th><th>outcome</th><th>score</th><th>why</th></tr>");
        for p in bad.iter().take(500) {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&p.at),
                badge(&p.outcome),
                readable_or_dash(p.score),
                esc(&p.why)
            ));
        }
        body.push_str("</table>");
        if bad.len() > 500 {
            body.push_str(&format!(
                "<p class=\"meta\">… and {} more</p>",
                bad.len() - 500
            ));
        }
    }
    page(&format!("Backtest: {}", b.name), None, &body)
}
