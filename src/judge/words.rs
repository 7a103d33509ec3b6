//! Numbers as the reasons print them.

/// Four significant digits, for reasons a person reads.
pub fn readable(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A ratio as a signed percentage change: 1.25 → `+25%`.
pub fn pct(ratio: f64) -> String {
    let p = (ratio - 1.0) * 100.0;
    format!("{}{}%", if p >= 0.0 { "+" } else { "" }, readable(p))
}
