//! SVG charts, drawn with `plotters`: inline in a page, readable without JavaScript.
//!
//! Three shapes cover every report: a line chart (time series, steps, verdict bands, curves),
//! an ECDF of two samples with the Hodges-Lehmann interval, and a bar chart against a
//! threshold. Each returns an `<svg>` element; an empty input gives a short note instead of an
//! empty frame.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
pub use plotters::style::RGBColor;

/// Colours shared by every chart and page.
pub mod colour {
    use plotters::style::RGBColor;
    /// Canary series.
    pub const CANARY: RGBColor = RGBColor(207, 34, 46);
    /// Baseline series.
    pub const BASELINE: RGBColor = RGBColor(9, 105, 218);
    /// Pass / Successful.
    pub const PASS: RGBColor = RGBColor(26, 127, 55);
    /// Amber: a verdict to look at, or something still under way.
    pub const MARGINAL: RGBColor = RGBColor(154, 103, 0);
    /// Fail / Failed.
    pub const FAIL: RGBColor = RGBColor(207, 34, 46);
    /// Inconclusive, no data.
    pub const INCONCLUSIVE: RGBColor = RGBColor(130, 80, 223);
    /// Grey: could not measure, or not started.
    pub const ERROR: RGBColor = RGBColor(87, 96, 106);
    /// Thresholds and guides.
    pub const GUIDE: RGBColor = RGBColor(110, 119, 129);
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Joined points.
    Line,
    /// Points only.
    Points,
    /// A staircase: each value holds until the next point.
    Step,
}

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend label.
    pub name: String,
    /// Fill colour of the band.
    pub colour: RGBColor,
    /// `(x, y)` points; non-finite values are skipped.
    pub points: Vec<(f64, f64)>,
    /// How to draw it.
    pub style: Style,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    /// Title above the chart.
    pub title: String,
    /// Y axis label.
    pub y_label: String,
    /// X axis label (time charts have none).
    pub x_label: String,
    /// X values are unix seconds, labelled as UTC clock times.
    pub x_time: bool,
    /// The series.
    pub lines: Vec<Line>,
    /// Vertical markers `(x, colour, label)`: decision points.
    pub markers: Vec<(f64, RGBColor, String)>,
    /// Horizontal guides `(y, colour, label)`: thresholds.
    pub guides: Vec<(f64, RGBColor, String)>,
    /// Coloured backgrounds `(x0, x1, colour)`: verdicts over time.
    pub bands: Vec<(f64, f64, RGBColor)>,
    /// Y range to use instead of the data's.
    pub y_range: Option<(f64, f64)>,
    /// Size in pixels (default 900 × 320).
    pub size: Option<(u32, u32)>,
}

fn empty(title: &str, why: &str) -> String {
    format!(
        "<p class=\"nochart\"><strong>{}</strong>: {}</p>",
        html_escape::encode_text(title),
        html_escape::encode_text(why)
    )
}

fn time_label(x: f64, span: f64) -> String {
    let ms = (x * 1000.0).round() as i64;
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    if span > 2.0 * 86_400.0 {
        t.format("%m-%d %H:%M").to_string()
    } else if span < 10.0 {
        t.format("%M:%S%.3f").to_string()
    } else if span < 600.0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(0.001..1e6).contains(&a) {
        format!("{v:.2e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.06;
    (lo - pad, hi + pad)
}

/// Draw a line chart as an `<svg>` element.
pub fn line_chart(c: &LineChart) -> String {
    let xs = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(c.markers.iter().map(|m| m.0))
        .chain(c.bands.iter().flat_map(|b| [b.0, b.1]))
        .filter(|x| x.is_finite());
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let ys = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(c.guides.iter().map(|g| g.0))
        .filter(|y| y.is_finite());
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !x0.is_finite() {
        return empty(&c.title, "no data to draw");
    }
    let (x0, x1) = if x1 - x0 < 1e-9 {
        (x0 - 1.0, x1 + 1.0)
    } else {
        (x0, x1)
    };
    let (y0, y1) = c.y_range.unwrap_or_else(|| padded(y0, y1));
    let size = c.size.unwrap_or((900, 320));
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, ("sans-serif", 17))
            .margin(8)
            .x_label_area_size(if c.x_label.is_empty() { 28 } else { 42 })
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let span = x1 - x0;
        let x_time = c.x_time;
        let x_fmt = move |x: &f64| {
            if x_time {
                time_label(*x, span)
            } else {
                short(*x)
            }
        };
        let y_fmt = |y: &f64| short(*y);
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(7)
            .y_labels(6)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(c.x_label.as_str())
            .y_desc(c.y_label.as_str())
            .label_style(("sans-serif", 13))
            .draw()?;
        for (a, b, colour) in &c.bands {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(*a, y0), (*b, y1)],
                colour.mix(0.18).filled(),
            )))?;
        }
        for (y, colour, label) in &c.guides {
            chart
                .draw_series(LineSeries::new(
                    [(x0, *y), (x1, *y)],
                    ShapeStyle::from(colour).stroke_width(1),
                ))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], ShapeStyle::from(colour))
                });
        }
        for l in &c.lines {
            let pts: Vec<(f64, f64)> = l
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect();
            let colour = l.colour;
            let series = match l.style {
                Style::Line => chart.draw_series(LineSeries::new(
                    pts,
                    ShapeStyle::from(colour).stroke_width(2),
                ))?,
                Style::Step => {
                    let mut stairs = Vec::new();
                    for w in pts.windows(2) {
                        stairs.push(w[0]);
                        stairs.push((w[1].0, w[0].1));
                    }
                    if let Some(last) = pts.last() {
                        stairs.push(*last);
                        stairs.push((x1, last.1));
                    }
                    chart.draw_series(LineSeries::new(
                        stairs,
                        ShapeStyle::from(colour).stroke_width(2),
                    ))?
                }
                Style::Points => chart.draw_series(
                    pts.into_iter()
                        .map(move |p| Circle::new(p, 3, colour.filled())),
                )?,
            };
            series.label(l.name.as_str()).legend(move |(x, y)| {
                PathElement::new(
                    [(x, y), (x + 16, y)],
                    ShapeStyle::from(colour).stroke_width(2),
                )
            });
        }
        for (x, colour, label) in &c.markers {
            chart.draw_series(LineSeries::new(
                [(*x, y0), (*x, y1)],
                ShapeStyle::from(colour).stroke_width(1),
            ))?;
            if !label.is_empty() {
                // Near the right edge, the label goes to the left of its line.
                let side = if *x > x0 + 0.75 * (x1 - x0) {
                    HPos::Right
                } else {
                    HPos::Left
                };
                let style = TextStyle::from(("sans-serif", 11).into_font())
                    .color(colour)
                    .pos(Pos::new(side, VPos::Top));
                chart.draw_series(std::iter::once(Text::new(label.clone(), (*x, y1), style)))?;
            }
        }
        if c.lines.len() + c.guides.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(208, 215, 222))
                .label_font(("sans-serif", 12))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => empty(&c.title, &format!("could not draw: {e}")),
    }
}

/// Empirical CDFs of canary and baseline, with the Hodges-Lehmann shift interval drawn as a
/// band around the baseline median moved by the shift: where the canary's median sits if the
/// shift estimate is right.
pub fn ecdf(
    title: &str,
    canary: &[f64],
    baseline: &[f64],
    shift: Option<(f64, f64, f64)>,
) -> String {
    let cdf = |v: &[f64]| -> Vec<(f64, f64)> {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        s.iter()
            .enumerate()
            .map(|(i, x)| (*x, (i + 1) as f64 / n))
            .collect()
    };
    let c = cdf(canary);
    let b = cdf(baseline);
    if c.is_empty() && b.is_empty() {
        return empty(title, "no samples");
    }
    let median = {
        let mut s: Vec<f64> = baseline.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied()
    };
    let mut chart = LineChart {
        title: title.to_string(),
        y_label: "fraction ≤ x".into(),
        x_label: "value".into(),
        lines: vec![
            Line {
                name: format!("baseline (n={})", b.len()),
                colour: colour::BASELINE,
                points: b,
                style: Style::Step,
            },
            Line {
                name: format!("canary (n={})", c.len()),
                colour: colour::CANARY,
                points: c,
                style: Style::Step,
            },
        ],
        y_range: Some((0.0, 1.05)),
        size: Some((900, 280)),
        ..Default::default()
    };
    if let (Some(m), Some((est, lo, hi))) = (median, shift) {
        if lo.is_finite() && hi.is_finite() {
            chart.bands.push((m + lo, m + hi, colour::MARGINAL));
            chart.markers.push((
                m + est,
                colour::MARGINAL,
                format!("baseline median + HL shift {}", short(est)),
            ));
        }
    }
    line_chart(&chart)
}

/// Bars against an optional threshold line. `bars`: `(label, value, colour)`.
pub fn bar_chart(
    title: &str,
    y_label: &str,
    bars: &[(String, f64, RGBColor)],
    threshold: Option<(f64, String)>,
) -> String {
    if bars.is_empty() {
        return empty(title, "nothing to draw");
    }
    let top = bars
        .iter()
        .map(|b| b.1)
        .chain(threshold.iter().map(|t| t.0))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = if top <= 0.0 { 1.0 } else { top * 1.15 };
    let n = bars.len();
    let width = (120 + 90 * n as u32).clamp(360, 900);
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (width, 260)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let x_fmt = move |x: &f64| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let y_fmt = |y: &f64| short(*y);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(2 * n + 1)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .y_desc(y_label)
            .label_style(("sans-serif", 13))
            .draw()?;
        for (i, (_, v, colour)) in bars.iter().enumerate() {
            let v = if v.is_finite() { *v } else { 0.0 };
            let x = i as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.2, 0.0), (x + 0.8, v)],
                colour.filled(),
            )))?;
            let style = TextStyle::from(("sans-serif", 11).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart.draw_series(std::iter::once(Text::new(short(v), (x + 0.5, v), style)))?;
        }
        if let Some((t, label)) = &threshold {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, *t), (n as f64, *t)],
                    ShapeStyle::from(colour::GUIDE).stroke_width(2),
                ))?
                .label(label.as_str())
                .legend(|(x, y)| {
                    PathElement::new(
                        [(x, y), (x + 16, y)],
                        ShapeStyle::from(colour::GUIDE).stroke_width(2),
                    )
                });
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(208, 215, 222))
                .label_font(("sans-serif", 12))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => empty(title, &format!("could not draw: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_is_an_svg_with_its_labels() {
        let svg = line_chart(&LineChart {
            title: "p99 <latency>".into(),
            x_time: true,
            lines: vec![Line {
                name: "canary".into(),
                colour: colour::CANARY,
                points: vec![(1_700_000_000.0, 1.0), (1_700_000_060.0, 2.0)],
                style: Style::Line,
            }],
            guides: vec![(1.5, colour::GUIDE, "limit".into())],
            ..Default::default()
        });
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("p99 &lt;latency&gt;"));
        assert!(svg.contains("canary") && svg.contains("limit"));
        assert!(svg.contains("22:13"), "clock-time labels: {svg}");
    }

    #[test]
    fn no_data_is_said_not_drawn() {
        let out = line_chart(&LineChart {
            title: "empty".into(),
            ..Default::default()
        });
        assert!(out.contains("no data"));
        assert!(ecdf("e", &[], &[], None).contains("no samples"));
    }

    #[test]
    fn bars_show_their_values_and_the_threshold() {
        let svg = bar_chart(
            "burn",
            "burn rate",
            &[
                ("1h".into(), 20.0, colour::FAIL),
                ("5m".into(), 3.0, colour::PASS),
            ],
            Some((14.4, "threshold 14.4".into())),
        );
        assert!(
            svg.contains("threshold 14.4") && svg.contains("\n20\n"),
            "{svg}"
        );
    }
}
