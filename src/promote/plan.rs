//! A promotion's plan from an Argo Rollout manifest: its steps, routes and analyses, each
//! analysis template found by name in a directory and loaded with the Rollout's args.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::rollout::{self, AnalysisRef, RolloutStep};
use super::{Background, Step};
use crate::template::{self, yaml, ResolvedMetric};
use crate::traffic::Target;

/// A manifest or template that cannot make a plan: what is wrong, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// Load analysis templates and Judge specs, every problem of every file in one error.
fn load_metrics(
    paths: &[PathBuf],
    given: &BTreeMap<String, String>,
    judge_every: Option<Duration>,
) -> Result<Vec<ResolvedMetric>, PlanError> {
    template::load_analysis(paths, given, judge_every)
        .map_err(|errors| PlanError(template::errors_text(&errors)))
}

/// What a Rollout manifest gives, its templates loaded.
pub struct FromRollout {
    /// Namespace and name of the VirtualService the Rollout routes through.
    pub virtual_service: (String, String),
    /// Its canary steps.
    pub steps: Vec<Step>,
    /// The analyses its `analysis` steps run, by index.
    pub analyses: Vec<Vec<ResolvedMetric>>,
    /// Its `canary.analysis`, if any.
    pub background: Option<Background>,
    /// Its routes and destinations.
    pub target: Target,
}

/// A Rollout manifest at `path`, its analysis templates found by name in `templates_dirs`
/// (the manifest's own directory when empty) and loaded with the Rollout's args, which
/// `given` (`--arg`) overrides. A background Judge judges every `background_interval`.
pub fn from_rollout(
    path: &Path,
    templates_dirs: &[PathBuf],
    given: &BTreeMap<String, String>,
    background_interval: Duration,
) -> Result<FromRollout, PlanError> {
    let label = path.display().to_string();
    let text = yaml::read_file(path).map_err(|e| PlanError(format!("cannot read {label}: {e}")))?;
    let r = rollout::parse(&label, &text)
        .map_err(|errors| PlanError(template::errors_text(&errors)))?;
    let dirs: Vec<PathBuf> = if templates_dirs.is_empty() {
        vec![path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)]
    } else {
        templates_dirs.to_vec()
    };
    let index = template_index(&dirs)?;
    let load = |what: &str, refs: &AnalysisRef, judge_every: Option<Duration>| {
        let mut files = Vec::new();
        for t in &refs.templates {
            match index.get(t) {
                Some(f) if !files.contains(f) => files.push(f.clone()),
                Some(_) => {}
                None => {
                    return Err(PlanError(format!(
                        "{label}: {what} names template {t:?}, which no file in {} defines",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
        let mut args: BTreeMap<String, String> = refs.args.iter().cloned().collect();
        for (name, from) in &refs.from_cluster {
            if !given.contains_key(name) {
                return Err(PlanError(format!(
                    "{label}: {what} arg {name:?} takes its value from the cluster ({from}): \
                     give it with --arg {name}=VALUE"
                )));
            }
        }
        // --arg overrides the Rollout's values, for the args these templates declare.
        let metrics_args = |declared: &[String]| -> BTreeMap<String, String> {
            let mut out = args.clone();
            for (k, v) in given {
                if declared.contains(k) || refs.from_cluster.iter().any(|(n, _)| n == k) {
                    out.insert(k.clone(), v.clone());
                }
            }
            out
        };
        let declared = declared_args(&files);
        args = metrics_args(&declared);
        args.retain(|k, _| declared.contains(k));
        let metrics = load_metrics(&files, &args, judge_every)?;
        // A file may define more templates than the step names: keep the named ones.
        Ok(metrics
            .into_iter()
            .filter(|m| {
                refs.templates
                    .iter()
                    .any(|t| m.template == *t || m.template == format!("Judge/{t}"))
            })
            .collect::<Vec<_>>())
    };
    let mut steps = Vec::new();
    let mut analyses = Vec::new();
    for (i, s) in r.steps.iter().enumerate() {
        steps.push(match s {
            RolloutStep::SetWeight(w) => Step::SetWeight(*w),
            RolloutStep::Pause(d) => Step::Pause(*d),
            RolloutStep::Analysis(refs) => {
                analyses.push(load(&format!("step {i}"), refs, None)?);
                Step::Analysis(analyses.len() - 1)
            }
        });
    }
    let background = match &r.background {
        Some((refs, starting_step)) => Some(Background {
            metrics: load("canary.analysis", refs, Some(background_interval))?,
            starting_step: *starting_step,
        }),
        None => None,
    };
    let namespace = r
        .virtual_service
        .0
        .or(r.namespace)
        .unwrap_or_else(|| "default".into());
    Ok(FromRollout {
        virtual_service: (namespace, r.virtual_service.1),
        steps,
        analyses,
        background,
        target: Target {
            http_routes: r.routes,
            tls_routes: r.tls_routes,
            tcp_ports: r.tcp_ports,
            destinations: r.destinations,
        },
    })
}

/// Template and Judge names → the file defining them, over `dirs` (YAML files, not recursive).
fn template_index(dirs: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>, PlanError> {
    let mut out = BTreeMap::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| PlanError(format!("--templates-dir {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        for f in files {
            let Ok(text) = yaml::read_file(&f) else {
                continue;
            };
            let Ok(docs) = yaml::load_documents(&text) else {
                continue;
            };
            for d in docs {
                let name = match d.value.get("kind").and_then(serde_json::Value::as_str) {
                    Some("AnalysisTemplate" | "ClusterAnalysisTemplate") => {
                        d.value.pointer("/metadata/name")
                    }
                    Some("Judge") => d.value.get("name"),
                    _ => None,
                };
                if let Some(n) = name.and_then(serde_json::Value::as_str) {
                    out.entry(n.to_string()).or_insert_with(|| f.clone());
                }
            }
        }
    }
    Ok(out)
}

/// Names of the args the templates and Judges in `files` declare.
fn declared_args(files: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = yaml::read_file(f) else {
            continue;
        };
        let Ok(docs) = yaml::load_documents(&text) else {
            continue;
        };
        for d in docs {
            let args = d
                .value
                .pointer("/spec/args")
                .or_else(|| d.value.get("args"))
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            for a in args {
                let name = a
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .or_else(|| a.as_str());
                if let Some(n) = name {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}
