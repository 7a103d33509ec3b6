//! Fetching a judgement's queries with as few Prometheus requests as PromQL allows.
//!
//! A metric's query rendered for the canary and for the baseline differs only in the
//! variant's label value: [`pair`] sends it once with both values (`hash=~"a|b"`, the label
//! kept through every aggregation) and splits the answer by that label. An SLO's error and
//! total queries over every window are instant vectors: [`tagged`] sends them as one query,
//! each part tagged with a label, and splits the answer by tag. When a query cannot be
//! folded safely, or the folded query fails (e.g. a snapshot recorded before folding, or a
//! matching error only the folded form hits), the parts are sent one by one as before, so
//! folding never changes a verdict.

use futures_util::future::join_all;

use super::merge::{merge_variants, tag_union, TAG_LABEL};
use crate::source::{Error, PromQuery, QueryValue, Series, Sources};

/// The answers to `canary` and `baseline`, from one request when they fold into one.
pub(super) async fn pair(
    sources: &Sources,
    canary: &PromQuery,
    baseline: &PromQuery,
) -> Result<(QueryValue, QueryValue), Error> {
    if let Some(m) = merge_variants(&canary.query, &baseline.query) {
        let mut q = canary.clone();
        q.query = m.query;
        if let Ok(a) = sources.prometheus(&q).await {
            let mut split = split(a.value, &m.label, &[&m.canary, &m.baseline], false);
            let baseline = split.pop();
            if let (Some(c), Some(b)) = (split.pop(), baseline) {
                return Ok((c, b));
            }
        }
        tracing::debug!(query = %q.query, "folded variants query failed; asking each variant");
    }
    let (c, b) =
        futures_util::future::join(sources.prometheus(canary), sources.prometheus(baseline)).await;
    Ok((c?.value, b?.value))
}

/// The answers to `parts` (instant queries at one time), from one request when they fold
/// into one.
pub(super) async fn tagged(
    sources: &Sources,
    parts: &[PromQuery],
) -> Result<Vec<QueryValue>, Error> {
    let tags: Vec<String> = (0..parts.len()).map(|i| format!("q{i}")).collect();
    let texts: Vec<(&str, &str)> = tags
        .iter()
        .zip(parts)
        .map(|(t, q)| (t.as_str(), q.query.as_str()))
        .collect();
    let same_time = parts
        .windows(2)
        .all(|w| w[0].time == w[1].time && w[0].range.is_none());
    if let (true, Some(first), Some(text)) = (
        parts.len() > 1 && same_time,
        parts.first(),
        tag_union(TAG_LABEL, &texts),
    ) {
        let mut q = first.clone();
        q.query = text;
        if let Ok(a) = sources.prometheus(&q).await {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            return Ok(split(a.value, TAG_LABEL, &tags, true));
        }
        tracing::debug!(query = %q.query, "folded SLO query failed; asking each part");
    }
    join_all(parts.iter().map(|q| sources.prometheus(q)))
        .await
        .into_iter()
        .map(|a| a.map(|a| a.value))
        .collect()
}

/// `v`'s series by the value of `label`: one answer per entry of `values`, in order; series
/// with another value (or none) are dropped, and with `strip` the label is removed.
fn split(v: QueryValue, label: &str, values: &[&str], strip: bool) -> Vec<QueryValue> {
    let (series, matrix) = match v {
        QueryValue::Vector(s) => (s, false),
        QueryValue::Matrix(s) => (s, true),
        scalar @ QueryValue::Scalar { .. } => return vec![scalar; values.len()],
    };
    let mut out: Vec<Vec<Series>> = vec![Vec::new(); values.len()];
    for mut s in series {
        let at = s
            .labels
            .get(label)
            .and_then(|v| values.iter().position(|w| w == v));
        if let Some(i) = at {
            if strip {
                s.labels.remove(label);
            }
            out[i].push(s);
        }
    }
    out.into_iter()
        .map(|s| {
            if matrix {
                QueryValue::Matrix(s)
            } else {
                QueryValue::Vector(s)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn series(labels: &[(&str, &str)], v: f64) -> Series {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Series::of(labels, vec![(0.0, v)])
    }

    #[test]
    fn a_folded_answer_splits_back_by_label() {
        let v = QueryValue::Matrix(vec![
            series(&[("hash", "a"), ("pod", "1")], 1.0),
            series(&[("hash", "b"), ("pod", "2")], 2.0),
            series(&[("hash", "a"), ("pod", "3")], 3.0),
            series(&[("hash", "other")], 9.0),
            series(&[], 9.0),
        ]);
        let out = split(v, "hash", &["a", "b"], false);
        assert_eq!(out[0].values(), vec![1.0, 3.0]);
        assert_eq!(out[1].values(), vec![2.0]);
        assert!(matches!(&out[1], QueryValue::Matrix(s) if s[0].labels["hash"] == "b"));
    }

    #[test]
    fn tags_are_stripped_and_a_missing_part_is_empty() {
        let v = QueryValue::Vector(vec![series(&[(TAG_LABEL, "q1")], 5.0)]);
        let out = split(v, TAG_LABEL, &["q0", "q1"], true);
        assert_eq!(out[0], QueryValue::Vector(Vec::new()));
        assert!(matches!(&out[1], QueryValue::Vector(s) if s[0].labels.is_empty()));
    }
}
