//! An Argo analysis run as a page (`analyze --html`), and the pieces other reports reuse:
//! each metric's measurements over time, coloured by phase, with the run's decision point.

use super::charts::{self, Line, LineChart, Style};
use super::html::{badge, esc, page, unix};
use super::tone::Toned;
use crate::analysis::{MetricResult, Phase, RunReport};

/// The number a measurement's value shows: a scalar, the first element of a vector, or a
/// Judge's score; `None` when there is none.
pub fn measured_number(value: &str) -> Option<f64> {
    let t = value.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
        return match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::Array(a) => a.first().and_then(|x| x.as_f64()),
            serde_json::Value::Object(o) => o.get("score").and_then(|x| x.as_f64()),
            _ => None,
        };
    }
    // Argo prints NaN and ±Inf bare, also inside lists.
    t.trim_start_matches('[')
        .split([',', ']'])
        .next()?
        .trim()
        .parse()
        .ok()
}

/// One line per phase of the measurements of the metrics named `name` across `runs`.
pub fn measurement_lines<'a>(results: impl Iterator<Item = &'a MetricResult>) -> Vec<Line> {
    let phases = [
        Phase::Successful,
        Phase::Inconclusive,
        Phase::Failed,
        Phase::Error,
    ];
    let mut by_phase: Vec<Vec<(f64, f64)>> = vec![Vec::new(); phases.len()];
    for r in results {
        for m in &r.measurements {
            let (Some(t), Some(v)) = (unix(&m.finished_at), measured_number(&m.value)) else {
                continue;
            };
            if let Some(i) = phases.iter().position(|p| *p == m.phase) {
                by_phase[i].push((t, v));
            }
        }
    }
    phases
        .iter()
        .zip(by_phase)
        .filter(|(_, pts)| !pts.is_empty())
        .map(|(p, points)| Line {
            name: p.to_string(),
            colour: p.tone().colour(),
            points,
            style: Style::Points,
        })
        .collect()
}

/// The run as page sections: phase, message, a table, and one chart per metric.
pub fn section(r: &RunReport) -> String {
    let mut out = format!(
        "<p class=\"meta\">{} → {}</p><p>{} {}</p>",
        esc(&r.started_at),
        esc(&r.finished_at),
        badge(&r.phase),
        esc(&r.message)
    );
    out.push_str(
        "<table><tr><th>metric</th><th>phase</th><th>measured</th><th>ok</th><th>failed</th>\
         <th>inconcl.</th><th>error</th><th>last value</th></tr>",
    );
    for m in &r.metrics {
        out.push_str(&format!(
            "<tr><td>{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"long\">{}</td></tr>",
            esc(&m.name),
            if m.dry_run { " (dry-run)" } else { "" },
            badge(&m.phase),
            m.measurements.len(),
            m.successful,
            m.failed,
            m.inconclusive,
            m.error,
            esc(m.last().map(|x| x.value.as_str()).unwrap_or("–"))
        ));
    }
    out.push_str("</table>");
    let decided = unix(&r.finished_at);
    for m in &r.metrics {
        let lines = measurement_lines(std::iter::once(m));
        if lines.is_empty() {
            continue;
        }
        out.push_str(&charts::line_chart(&LineChart {
            title: format!("{}: measurements", m.name),
            y_label: "value".into(),
            x_time: true,
            lines,
            markers: decided
                .map(|t| vec![(t, m.phase.tone().colour(), format!("{}", m.phase))])
                .unwrap_or_default(),
            size: Some((900, 260)),
            ..Default::default()
        }));
    }
    out
}

/// `canary analyze --html`: the whole run as a page.
pub fn html(title: &str, r: &RunReport) -> String {
    page(title, Some(&r.phase), &section(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_numbers_of_every_shape() {
        assert_eq!(measured_number("0.98"), Some(0.98));
        assert_eq!(measured_number("[0.5,NaN]"), Some(0.5));
        assert_eq!(
            measured_number(r#"{"verdict":"pass","score":97.5}"#),
            Some(97.5)
        );
        assert!(measured_number("NaN").is_some_and(f64::is_nan));
        assert_eq!(measured_number(""), None);
        assert_eq!(measured_number("ok"), None);
    }
}
