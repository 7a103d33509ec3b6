//! An A/A calibration as a page: false-alarm rates against the target, how each threshold
//! moves them, and how fast injected regressions are caught.

use super::charts::{self, colour, Line, LineChart, RGBColor, Style};
use super::html::{badge, esc, page, readable_or_dash};
use super::tone::Toned;
use crate::calibrate::{Calibration, Mode};
use crate::judge::Verdict;

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1} %", v * 100.0)
    } else {
        "–".into()
    }
}

/// A false-alarm rate against its target, shown as a verdict: `pass` when it meets it.
fn target_verdict(meets_target: bool) -> Verdict {
    if meets_target {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(9, 105, 218),
    RGBColor(207, 34, 46),
    RGBColor(26, 127, 55),
    RGBColor(130, 80, 223),
    RGBColor(154, 103, 0),
    RGBColor(87, 96, 106),
];

/// Render a calibration.
pub fn html(c: &Calibration) -> String {
    let mode = match c.mode {
        Mode::Adjacent => "the baseline's latest window against the window before it",
        Mode::Args => "canary and baseline as the args select them",
    };
    let mut body = format!(
        "<p class=\"meta\">{} → {} · {} windows, every {} · A/A: {}</p>",
        esc(&c.from),
        esc(&c.to),
        c.moments,
        humantime::format_duration(std::time::Duration::from_secs(c.every_seconds)),
        esc(mode)
    );
    body.push_str(&format!(
        "<p>Overall false-alarm rate <strong>{}</strong> (95 % upper bound {}; verdict fail in \
         {} of {} judged windows; marginal {}, inconclusive {}) against a target of {} {}</p>{}\
         <p class=\"meta\">No difference is real in an A/A test: every alarm is a false alarm. \
         SLO burn-rate gates do not compare canary to baseline and are not part of it.</p>",
        pct(c.false_alarm_rate),
        pct(c.false_alarm_rate_upper95),
        c.fail,
        c.moments - c.inconclusive,
        c.marginal,
        c.inconclusive,
        pct(c.target),
        badge(&target_verdict(c.meets_target)),
        if c.moments - c.inconclusive < c.windows_needed {
            format!(
                "<p><strong>Too few windows to be sure:</strong> {} judged windows with no alarm \
                 are needed to show (95 %) a rate under the target.</p>",
                c.windows_needed
            )
        } else {
            String::new()
        }
    ));
    let mut bars: Vec<(String, f64, RGBColor)> = c
        .metrics
        .iter()
        .map(|m| {
            let col = if m.meets_target {
                colour::PASS
            } else {
                colour::FAIL
            };
            (m.name.clone(), m.false_alarm_rate * 100.0, col)
        })
        .collect();
    bars.push((
        "verdict".into(),
        c.false_alarm_rate * 100.0,
        if c.meets_target {
            colour::PASS
        } else {
            colour::FAIL
        },
    ));
    body.push_str(&charts::bar_chart(
        "False-alarm rate per metric and of the verdict (%)",
        "% of A/A windows",
        &bars,
        Some((c.target * 100.0, format!("target {}", pct(c.target)))),
    ));
    let every = c.every_seconds as f64;
    body.push_str(&charts::line_chart(&LineChart {
        title: "A/A verdict of each window".into(),
        x_time: true,
        bands: c
            .verdicts
            .iter()
            .map(|(t, v)| (*t as f64, *t as f64 + every, v.tone().colour()))
            .collect(),
        y_range: Some((0.0, 1.0)),
        size: Some((900, 120)),
        ..Default::default()
    }));

    body.push_str(
        "<h2>Per metric</h2><table><tr><th>metric</th><th>windows</th><th>false alarms</th>\
         <th>rate (95 % bound)</th><th>effect now</th><th>effect for target</th><th>confidence now</th>\
         <th>confidence for target</th></tr>",
    );
    for m in &c.metrics {
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{} (+{} nodata)</td><td class=\"n\">{}</td>\
             <td class=\"n\">{} (≤ {}) {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&m.name),
            m.windows,
            m.nodata,
            m.false_alarms,
            pct(m.false_alarm_rate),
            pct(m.false_alarm_rate_upper95),
            badge(&target_verdict(m.meets_target)),
            readable_or_dash(Some(m.effect)),
            m.recommended_effect
                .map(|v| readable_or_dash(Some(v)))
                .unwrap_or_else(|| "none in range".into()),
            m.confidence,
            m.recommended_confidence
                .map(|v| v.to_string())
                .unwrap_or_else(|| "none in range".into()),
        ));
    }
    body.push_str("</table>");
    for m in &c.metrics {
        body.push_str(&format!("<h3>{}</h3>", esc(&m.name)));
        let curve = |pts: &[crate::calibrate::CurvePoint]| -> Vec<(f64, f64)> {
            pts.iter()
                .filter(|p| p.rate.is_finite())
                .map(|p| (p.value, p.rate * 100.0))
                .collect()
        };
        body.push_str(&charts::line_chart(&LineChart {
            title: format!("{}: false-alarm rate by effect threshold", m.name),
            x_label: "allowed effect (mean ratio)".into(),
            y_label: "% false alarms".into(),
            lines: vec![Line {
                name: "A/A false alarms".into(),
                colour: colour::BASELINE,
                points: curve(&m.effect_curve),
                style: Style::Line,
            }],
            guides: vec![(c.target * 100.0, colour::GUIDE, "target".into())],
            markers: vec![(m.effect, colour::MARGINAL, "now".into())],
            size: Some((900, 240)),
            ..Default::default()
        }));
        body.push_str(&charts::line_chart(&LineChart {
            title: format!("{}: false-alarm rate by confidence", m.name),
            x_label: "confidence".into(),
            y_label: "% false alarms".into(),
            lines: vec![Line {
                name: "A/A false alarms".into(),
                colour: colour::BASELINE,
                points: curve(&m.confidence_curve),
                style: Style::Line,
            }],
            guides: vec![(c.target * 100.0, colour::GUIDE, "target".into())],
            markers: vec![(m.confidence, colour::MARGINAL, "now".into())],
            size: Some((900, 240)),
            ..Default::default()
        }));
        if m.ratio.is_empty() {
            continue;
        }
        body.push_str(&charts::line_chart(&LineChart {
            title: format!("{}: canary ÷ baseline mean in each A/A window", m.name),
            x_time: true,
            lines: vec![Line {
                name: "ratio".into(),
                colour: colour::ERROR,
                points: m.ratio.clone(),
                style: Style::Line,
            }],
            guides: vec![(1.0, colour::GUIDE, "no difference".into())],
            size: Some((900, 220)),
            ..Default::default()
        }));
    }

    body.push_str("<h2>Injected regressions</h2>");
    body.push_str(&charts::line_chart(&LineChart {
        title: "Share of fully regressed windows caught, by regression size".into(),
        x_label: "regression factor".into(),
        y_label: "% caught".into(),
        lines: c
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| Line {
                name: m.name.clone(),
                colour: PALETTE[i % PALETTE.len()],
                points: m
                    .detection
                    .iter()
                    .map(|d| (d.factor, d.rate * 100.0))
                    .collect(),
                style: Style::Line,
            })
            .collect(),
        y_range: Some((0.0, 105.0)),
        ..Default::default()
    }));
    body.push_str(
        "<table><tr><th>metric</th><th>factor</th><th>caught (full window)</th>\
         <th>caught within one window of the start</th><th>time to first alarm: median</th>\
         <th>p90</th></tr>",
    );
    let dur = |s: Option<f64>| {
        s.map(|v| humantime::format_duration(std::time::Duration::from_secs(v as u64)).to_string())
            .unwrap_or_else(|| "–".into())
    };
    for m in &c.metrics {
        for d in &m.detection {
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">×{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{} of {} starts</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&m.name),
                d.factor,
                pct(d.rate),
                pct(d.caught_within_window),
                d.starts,
                dur(d.median_seconds),
                dur(d.p90_seconds)
            ));
        }
    }
    body.push_str("</table>");
    page(
        &format!("A/A calibration: {}", c.judge),
        Some(&target_verdict(c.meets_target)),
        &body,
    )
}
