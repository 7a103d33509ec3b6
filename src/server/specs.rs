//! The Judge specs a server answers for: loaded from a directory, reloaded when files change.
//!
//! A file that stops parsing keeps its last good specs serving; the problem is logged,
//! listed in `/readyz` and counted. Documents of other kinds (the Argo AnalysisTemplates the
//! chart mounts next to the specs) are skipped. Files and directories starting with `.` are
//! skipped too — Kubernetes ConfigMap volumes keep their previous versions there.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::template::judge_spec::{self, JudgeSpec};

/// A file that could not be loaded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Broken {
    /// Path of the Judge spec file that failed to load.
    pub file: String,
    /// What is wrong (every error, one per line).
    pub error: String,
}

#[derive(Default)]
struct FileState {
    hash: u64,
    specs: Vec<Arc<JudgeSpec>>,
    error: Option<String>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<PathBuf, FileState>,
    by_name: HashMap<String, Arc<JudgeSpec>>,
    dir_error: Option<String>,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Files read because they changed (or appeared).
    pub changed: usize,
    /// Files that failed to load this time.
    pub failed: usize,
}

/// The loaded specs.
#[derive(Default)]
pub struct JudgeStore {
    dir: Option<PathBuf>,
    state: RwLock<State>,
}

impl std::fmt::Debug for JudgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeStore")
            .field("dir", &self.dir)
            .finish()
    }
}

impl JudgeStore {
    /// A store reading `dir` (none: inline specs only).
    pub fn new(dir: Option<PathBuf>) -> Self {
        JudgeStore {
            dir,
            state: RwLock::new(State::default()),
        }
    }

    /// The spec called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<JudgeSpec>> {
        self.read().by_name.get(name).cloned()
    }

    /// Names of every loaded spec, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.read().by_name.keys().cloned().collect();
        v.sort();
        v
    }

    /// Files currently failing to load.
    pub fn broken(&self) -> Vec<Broken> {
        let st = self.read();
        let mut out: Vec<Broken> = st
            .files
            .iter()
            .filter_map(|(p, f)| {
                f.error.as_ref().map(|e| Broken {
                    file: p.display().to_string(),
                    error: e.clone(),
                })
            })
            .collect();
        if let (Some(e), Some(d)) = (&st.dir_error, &self.dir) {
            out.push(Broken {
                file: d.display().to_string(),
                error: e.clone(),
            });
        }
        out
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-read changed files. Cheap when nothing changed (files are hashed, not parsed).
    pub fn reload(&self) -> ReloadReport {
        let mut report = ReloadReport::default();
        let Some(dir) = &self.dir else {
            return report;
        };
        let listing = match list(dir) {
            Ok(l) => l,
            Err(e) => {
                let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
                if st.dir_error.is_none() {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot read the judges directory; keeping the specs loaded before");
                    report.failed += 1;
                }
                st.dir_error = Some(e);
                return report;
            }
        };
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        st.dir_error = None;
        let mut seen = Vec::new();
        for (path, text) in listing {
            seen.push(path.clone());
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            let hash = h.finish();
            if st.files.get(&path).is_some_and(|f| f.hash == hash) {
                continue;
            }
            report.changed += 1;
            let label = path.display().to_string();
            let entry = st.files.entry(path.clone()).or_default();
            entry.hash = hash;
            match load_judges(&label, &text) {
                Ok(specs) => {
                    entry.specs = specs.into_iter().map(Arc::new).collect();
                    entry.error = None;
                    tracing::info!(file = %label, judges = entry.specs.len(), "loaded judge specs");
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(file = %label, error = %e, "judge spec file is invalid; its last good version keeps serving");
                    entry.error = Some(e);
                }
            }
        }
        st.files.retain(|p, _| seen.contains(p));
        // Rebuild the name index; on a duplicate name the first file (in path order) wins.
        let mut by_name: HashMap<String, Arc<JudgeSpec>> = HashMap::new();
        let mut duplicate_errors = Vec::new();
        for (path, f) in &st.files {
            for s in &f.specs {
                if let Some(first) = by_name.get(&s.name) {
                    duplicate_errors.push((
                        path.clone(),
                        format!("judge {:?} is already defined in {}", s.name, first.file),
                    ));
                } else {
                    by_name.insert(s.name.clone(), s.clone());
                }
            }
        }
        for (p, e) in duplicate_errors {
            if let Some(f) = st.files.get_mut(&p) {
                f.error.get_or_insert(e);
            }
        }
        st.by_name = by_name;
        report
    }
}

/// Every regular, non-hidden `.yaml`/`.yml` file directly in `dir`, with its text.
fn list(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if name.starts_with('.') || !is_yaml || !path.is_file() {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(t) => out.push((path, t)),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The Judge documents of a file (other kinds skipped), errors as one text.
fn load_judges(file: &str, text: &str) -> Result<Vec<JudgeSpec>, String> {
    judge_spec::judges_in(file, text).map_err(|e| {
        e.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "kind: Judge\nname: a\nargs: [canary_hash, stable_hash]\nmetrics:\n- name: m\n  query: up{h=\"{{variant.hash}}\"}\n";

    #[test]
    fn loads_reloads_and_keeps_the_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, GOOD).unwrap();
        std::fs::write(
            dir.path().join("argo.yaml"),
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: x}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), "garbage: [").unwrap();
        let store = JudgeStore::new(Some(dir.path().to_path_buf()));
        assert_eq!(store.reload().failed, 0);
        assert_eq!(store.names(), vec!["a"]);
        assert_eq!(
            store.reload(),
            ReloadReport::default(),
            "unchanged files are not re-read"
        );

        std::fs::write(
            &f,
            GOOD.replace("query: up", "query: up\n  direction: sideways"),
        )
        .unwrap();
        let r = store.reload();
        assert_eq!(r.failed, 1);
        assert!(
            store.get("a").is_some(),
            "the last good version keeps serving"
        );
        let broken = store.broken();
        assert_eq!(broken.len(), 1);
        assert!(broken[0].error.contains(":7:"), "{}", broken[0].error);

        std::fs::write(&f, GOOD.replace("name: a", "name: b")).unwrap();
        store.reload();
        assert!(store.get("a").is_none());
        assert!(store.get("b").is_some());
        assert!(store.broken().is_empty());
    }

    #[test]
    fn multi_document_files_keep_line_numbers() {
        let text = format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\n---\n{}",
            GOOD.replace("name: m", "name: m\n  confidence: 7")
        );
        let e = load_judges("f.yaml", &text).unwrap_err();
        assert!(e.starts_with("f.yaml:9:"), "{e}");
    }
}
