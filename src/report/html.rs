//! The page shell every HTML report shares: one self-contained document, inline CSS and SVG,
//! no JavaScript, no external resources.

pub use html_escape::encode_text as esc;

use super::tone::Toned;

/// Four significant digits; `–` for nothing.
pub fn readable_or_dash(v: Option<f64>) -> String {
    match v {
        Some(x) => crate::judge::words::readable(x),
        None => "–".into(),
    }
}

/// Unix seconds (with milliseconds) of an RFC 3339 time.
pub fn unix(t: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// A coloured pill with the outcome's name.
pub fn badge(outcome: &dyn Toned) -> String {
    let c = outcome.tone().colour();
    format!(
        "<span class=\"badge\" style=\"background:rgb({},{},{})\">{}</span>",
        c.0,
        c.1,
        c.2,
        esc(outcome.label())
    )
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;\
max-width:64rem;padding:0 1rem;color:#1f2328;line-height:1.45}\
h1{font-size:1.6rem;margin-bottom:.3rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}\
h3{font-size:1.05rem;margin:1.4rem 0 .4rem}\
table{border-collapse:collapse;margin:.8rem 0;font-size:.92rem}\
td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}td.long{overflow-wrap:anywhere}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:.1rem .7rem;border-radius:1rem;color:#fff;font-size:.85em;vertical-align:middle}\
.meta{color:#57606a}.nochart{color:#57606a;font-style:italic}\
svg{display:block;max-width:100%;height:auto;margin:.6rem 0}\
ul.reasons li{margin:.2rem 0}code{font-size:.9em}\
footer{margin-top:3rem;color:#57606a;font-size:.85rem}";

/// A whole page: `title` in the tab and the heading, the `outcome` badge beside it.
pub fn page(title: &str, outcome: Option<&dyn Toned>, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{t}{o}</title><style>{STYLE}</style></head><body>\
         <h1>{t} {b}</h1>{body}<footer>canary-engine {v}</footer></body></html>\n",
        t = esc(title),
        o = outcome
            .map(|o| format!(" — {}", esc(o.label())))
            .unwrap_or_default(),
        b = outcome.map(badge).unwrap_or_default(),
        v = env!("CARGO_PKG_VERSION"),
    )
}
