//! A promotion as a page: canary weight over time with each analysis's verdict, the events,
//! and every analysis run with its measurements.

use super::analysis;
use super::charts::{self, colour, Line, LineChart, Style};
use super::html::{badge, esc, page, unix};
use super::tone::Toned;
use crate::promote::{Event, Report};

/// What an event says, in a few words.
fn describe(e: &Event) -> (String, String) {
    match e {
        Event::Started {
            id,
            resumed_at_step,
        } => (
            "started".into(),
            match resumed_at_step {
                Some(s) => format!("{id}, resumed at step {}", s + 1),
                None => id.clone(),
            },
        ),
        Event::Step {
            index,
            step,
            weight,
            ..
        } => (
            "step".into(),
            format!("{}: {step} (canary {weight} %)", index + 1),
        ),
        Event::Analysis {
            index,
            background,
            phase,
            message,
        } => (
            "analysis".into(),
            format!(
                "{} {}{}",
                if *background {
                    "background".to_string()
                } else {
                    format!("step {}", index + 1)
                },
                phase,
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ),
        ),
        Event::Promoted { weight } => ("promoted".into(), format!("canary {weight} %")),
        Event::RolledBack { reason } => ("rolled back".into(), reason.clone()),
        Event::Paused { reason } => ("paused".into(), reason.clone()),
    }
}

/// Render a promotion report.
pub fn html(r: &Report) -> String {
    let mut body = format!(
        "<p class=\"meta\">promotion <code>{}</code> · final canary weight {} %</p><p>{}</p>",
        esc(&r.id),
        r.final_weight,
        esc(&r.reason)
    );
    // Canary weight over time, and each analysis's verdict where it was decided.
    let mut weight = Vec::new();
    let mut markers = Vec::new();
    for (e, t) in r.events.iter().zip(&r.event_times) {
        let Some(t) = unix(t) else { continue };
        match e {
            Event::Step { weight: w, .. } | Event::Promoted { weight: w } => {
                weight.push((t, f64::from(*w)))
            }
            Event::RolledBack { .. } => weight.push((t, 0.0)),
            Event::Analysis {
                phase, background, ..
            } => markers.push((
                t,
                phase.tone().colour(),
                format!("{}{}", if *background { "bg " } else { "" }, phase),
            )),
            _ => {}
        }
    }
    body.push_str(&charts::line_chart(&LineChart {
        title: "Canary weight, and each analysis where it was decided".into(),
        y_label: "canary %".into(),
        x_time: true,
        lines: vec![Line {
            name: "canary weight".into(),
            colour: colour::CANARY,
            points: weight,
            style: Style::Step,
        }],
        markers,
        y_range: Some((0.0, 105.0)),
        size: Some((900, 260)),
        ..Default::default()
    }));
    body.push_str("<h2>Events</h2><table><tr><th>time</th><th>event</th><th>detail</th></tr>");
    for (e, t) in r.events.iter().zip(&r.event_times) {
        let (kind, detail) = describe(e);
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"long\">{}</td></tr>",
            esc(t),
            esc(&kind),
            esc(&detail)
        ));
    }
    body.push_str("</table>");
    for (i, a) in r.analyses.iter().enumerate() {
        body.push_str(&format!("<h2>Analysis {} {}</h2>", i + 1, badge(&a.phase)));
        body.push_str(&analysis::section(a));
    }
    page(&format!("Promotion {}", r.id), Some(&r.outcome), &body)
}
