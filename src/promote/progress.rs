//! The promotion's progress, kept on the VirtualService itself in the annotation
//! [`ANNOTATION`] and written in the same update as each weight change, so the recorded
//! step and the live weights can never disagree.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The annotation holding the promotion's progress.
pub const ANNOTATION: &str = "canary-engine.io/promotion";

/// Where a promotion stands, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionPhase {
    /// Stopped for a human; the next run resumes.
    Paused,
    /// Every step passed.
    Promoted,
    /// Traffic went back to the stable version.
    RolledBack,
    /// Steps are running (or a run stopped without recording an end: the next run resumes).
    /// A phase this version does not know reads as this one, so the next run resumes.
    #[serde(other)]
    Progressing,
}

impl PromotionPhase {
    /// The name written in the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionPhase::Progressing => "progressing",
            PromotionPhase::Paused => "paused",
            PromotionPhase::Promoted => "promoted",
            PromotionPhase::RolledBack => "rolled_back",
        }
    }
}

impl std::fmt::Display for PromotionPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Progress recorded on the VirtualService.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Identifies the promotion (same command → same id).
    pub id: String,
    /// Where it stands.
    pub phase: PromotionPhase,
    /// Index of the last step started.
    pub step: usize,
    /// Steps whose analysis passed, up to and including this index (`-1`: none).
    pub analyzed_through: i64,
    /// Canary weight set.
    pub weight: u32,
    /// When the promotion started (RFC 3339).
    pub started_at: String,
    /// Last update (RFC 3339).
    pub updated_at: String,
    /// Phase of each analysis so far, oldest first.
    pub verdicts: Vec<String>,
    /// When the current weight was set (RFC 3339): the start of the analyses that follow it,
    /// so a resumed promotion judges the same sequence of steps, not a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_set_at: Option<String>,
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

impl Progress {
    /// A promotion not started yet.
    pub fn fresh(id: &str) -> Progress {
        Progress {
            id: id.to_string(),
            phase: PromotionPhase::Progressing,
            step: 0,
            analyzed_through: -1,
            weight: 0,
            started_at: now(),
            updated_at: now(),
            verdicts: Vec::new(),
            weight_set_at: None,
        }
    }

    /// Step `index` set the canary's weight to `weight`, now.
    pub fn weight_set(&mut self, index: usize, weight: u32) {
        self.step = index;
        self.weight = weight;
        self.updated_at = now();
        self.weight_set_at = Some(self.updated_at.clone());
    }

    /// Step `index`'s analysis passed.
    pub fn passed(&mut self, index: usize) {
        self.step = index;
        self.analyzed_through = index as i64;
        self.updated_at = now();
    }

    /// The promotion is now in `phase`.
    pub fn enter(&mut self, phase: PromotionPhase) {
        self.phase = phase;
        self.updated_at = now();
    }

    /// Rolled back: 0 % to the canary.
    pub fn rolled_back(&mut self) {
        self.enter(PromotionPhase::RolledBack);
        self.weight = 0;
    }
}

/// Read the recorded progress, if any.
pub fn progress_of(vs: &Value) -> Option<Progress> {
    vs.pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
}

/// `vs` with `p` in its annotation.
pub(super) fn with_progress(mut vs: Value, p: &Progress) -> Value {
    let text = serde_json::to_string(p).unwrap_or_default();
    if !vs["metadata"].is_object() {
        vs["metadata"] = Value::Object(Default::default());
    }
    if !vs["metadata"]["annotations"].is_object() {
        vs["metadata"]["annotations"] = Value::Object(Default::default());
    }
    vs["metadata"]["annotations"][ANNOTATION] = Value::String(text);
    vs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotation_keeps_the_phase_names_earlier_versions_wrote() {
        for (phase, text) in [
            (PromotionPhase::Progressing, "progressing"),
            (PromotionPhase::Paused, "paused"),
            (PromotionPhase::Promoted, "promoted"),
            (PromotionPhase::RolledBack, "rolled_back"),
        ] {
            let mut p = Progress::fresh("id");
            p.enter(phase);
            let vs = with_progress(serde_json::json!({"metadata": {"name": "vs"}}), &p);
            let written = vs["metadata"]["annotations"][ANNOTATION].as_str().unwrap();
            let json: Value = serde_json::from_str(written).unwrap();
            assert_eq!(json["phase"], text);
            assert_eq!(phase.as_str(), text);
            assert_eq!(progress_of(&vs), Some(p));
        }
        // Written by an earlier version, before weight_set_at existed.
        let old = r#"{"id":"x","phase":"paused","step":2,"analyzed_through":1,"weight":50,
            "started_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:01:00Z",
            "verdicts":["Successful"]}"#;
        let vs = serde_json::json!({"metadata": {"annotations": {ANNOTATION: old}}});
        let p = progress_of(&vs).expect("an old annotation still reads");
        assert_eq!((p.phase, p.step, p.weight), (PromotionPhase::Paused, 2, 50));
        // One it does not know resumes, as before the phase was typed.
        let odd = old.replace("\"paused\"", "\"waiting\"");
        let vs = serde_json::json!({"metadata": {"annotations": {ANNOTATION: odd}}});
        assert_eq!(
            progress_of(&vs).map(|p| p.phase),
            Some(PromotionPhase::Progressing)
        );
    }
}
