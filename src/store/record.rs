//! One stored judgement, and the API's JSON view of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::judging::Judgement;

/// A judgement as it is kept: its id, when it was made, and the judgement itself (the
/// document and the report page are made from it when a store needs them).
#[derive(Debug, Clone)]
pub struct Record {
    /// The id the answer names (`/api/v1/analyses/{id}`, `/reports/{id}`).
    pub id: String,
    /// When the judgement was made.
    pub created_at: DateTime<Utc>,
    /// The verdict with its per-metric evidence, as answered.
    pub judgement: Arc<Judgement>,
}

impl Record {
    /// A new record with a fresh id, made now.
    pub fn new(judgement: Judgement) -> Record {
        Record {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: Utc::now(),
            judgement: Arc::new(judgement),
        }
    }

    /// The API document (`POST /api/v1/judge`'s answer), as JSON bytes.
    pub fn document(&self) -> Result<Vec<u8>, serde_json::Error> {
        document(&self.id, &self.judgement)
    }

    /// The HTML report page.
    pub fn report(&self) -> String {
        crate::report::judgement::html(&self.id, &self.judgement)
    }
}

/// The API's view of a judgement (the contract's fields first), serialized straight from
/// the judgement without an intermediate JSON tree.
#[derive(serde::Serialize)]
struct AnalysisDoc<'a> {
    id: &'a str,
    verdict: crate::judge::score::Verdict,
    decision: crate::judging::Decision,
    decision_reason: &'a str,
    score: f64,
    reasons: &'a [String],
    metrics: &'a [crate::judging::MetricOutcome],
    slos: &'a [crate::slo::SloResult],
    report: String,
    judge: &'a str,
    window: Window<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor: Option<&'a crate::judging::Anchor>,
    args: &'a BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
struct Window<'a> {
    start: &'a str,
    end: &'a str,
}

/// The API document of judgement `j` with id `id`, as JSON bytes.
pub fn document(id: &str, j: &Judgement) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&AnalysisDoc {
        id,
        verdict: j.verdict,
        decision: j.decision,
        decision_reason: &j.decision_reason,
        score: j.score,
        reasons: &j.reasons,
        metrics: &j.metrics,
        slos: &j.slos,
        report: format!("/reports/{id}"),
        judge: &j.judge,
        window: Window {
            start: &j.window_start,
            end: &j.window_end,
        },
        anchor: j.anchor.as_ref(),
        args: &j.args,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::judge::score::Verdict;
    use crate::judging::Decision;

    /// A small judgement for store tests.
    pub(crate) fn judgement() -> Judgement {
        Judgement {
            judge: "golden".into(),
            verdict: Verdict::Pass,
            decision: Decision::Pass,
            decision_reason: "the verdict is pass".into(),
            score: 100.0,
            reasons: vec!["all metrics pass".into()],
            metrics: Vec::new(),
            slos: Vec::new(),
            window_start: "2026-12-03T10:00:00Z".into(),
            window_end: "2026-12-03T10:10:00Z".into(),
            anchor: None,
            args: BTreeMap::from([("service".to_string(), "checkout".to_string())]),
        }
    }

    #[test]
    fn the_document_leads_with_the_contract_fields() {
        let r = Record::new(judgement());
        let doc = String::from_utf8(r.document().expect("encode")).expect("utf-8");
        assert!(
            doc.starts_with(&format!("{{\"id\":\"{}\",\"verdict\":\"pass\"", r.id)),
            "{doc}"
        );
        assert!(r.report().contains(&r.id));
    }
}
