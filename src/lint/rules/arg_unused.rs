//! `arg-unused`: an arg declared but never substituted anywhere. Harmless to the analysis,
//! but it usually means a query was edited and the arg it used to take is now silently
//! ignored (a `service` filter that no longer filters).

use serde_json::Value;

use crate::lint::{Finding, Severity};
use crate::template::judge_spec::JudgeSpec;
use crate::template::yaml::Document;
use crate::template::Template;

/// Args of an AnalysisTemplate that no metric mentions as `{{args.NAME}}`.
pub(in crate::lint) fn argo(file: &str, t: &Template) -> Vec<Finding> {
    let doc = t.doc();
    let raw_metrics = doc
        .value
        .pointer("/spec/metrics")
        .map(Value::to_string)
        .unwrap_or_default();
    let mut out = Vec::new();
    for (i, a) in t.args.iter().enumerate() {
        let used = regex::Regex::new(&format!(
            r"\{{\{{\s*args\.{}\s*\}}\}}",
            regex::escape(&a.name)
        ))
        .is_ok_and(|r| r.is_match(&raw_metrics));
        if !used {
            out.push(Finding {
                file: file.into(),
                line: doc.line_of(&format!("/spec/args/{i}")),
                severity: Severity::Warning,
                rule: "arg-unused",
                message: format!("arg {:?} is declared but no metric uses it", a.name),
                fix: Some(format!(
                    "remove it, or use it as {{{{args.{}}}}} in a query",
                    a.name
                )),
            });
        }
    }
    out
}

/// Args of a Judge spec that its document never mentions as `args.NAME`. `canary_hash` and
/// `stable_hash` are exempt: the variant selectors fill them in whether a query names them
/// or not.
pub(in crate::lint) fn judge(file: &str, spec: &JudgeSpec, doc: Option<&Document>) -> Vec<Finding> {
    let raw = doc.map(|d| d.value.to_string()).unwrap_or_default();
    let line = doc.and_then(|d| d.line_of("/args"));
    let mut out = Vec::new();
    for (name, _) in &spec.args {
        let variant_default = matches!(name.as_str(), "canary_hash" | "stable_hash");
        let used = raw.contains(&format!("args.{name}"));
        if !used && !variant_default {
            out.push(Finding {
                file: file.into(),
                line,
                severity: Severity::Warning,
                rule: "arg-unused",
                message: format!(
                    "Judge {:?}: arg {name:?} is declared but no query uses it",
                    spec.name
                ),
                fix: Some(format!("remove it, or use it as {{{{args.{name}}}}}")),
            });
        }
    }
    out
}
