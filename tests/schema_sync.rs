//! The committed schema (`schemas/analysis-template.schema.json`) is Argo's CRD schema.
//!
//! It is the `openAPIV3Schema` of `../shared/schemas/analysis-template-crd.yaml` reduced by
//! `schema::for_validation` (descriptions and the Job provider's pod spec dropped). Run with `CANARY_BLESS=1` to regenerate it after the upstream copy
//! changes.

use std::path::Path;

use canary_engine::template::{schema, yaml};

fn crd_schema(file: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/schemas")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = yaml::load_documents(&text).unwrap();
    let s = docs[0]
        .value
        .pointer("/spec/versions/0/schema/openAPIV3Schema")
        .expect("CRD has an openAPIV3Schema");
    schema::for_validation(s)
}

#[test]
fn committed_schema_matches_upstream_crd() {
    let upstream = crd_schema("analysis-template-crd.yaml");
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/analysis-template.schema.json");
    if std::env::var_os("CANARY_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&upstream).unwrap() + "\n";
        std::fs::write(&committed, text).unwrap();
    }
    let ours: serde_json::Value = serde_json::from_str(schema::SCHEMA_JSON).unwrap();
    assert_eq!(
        ours, upstream,
        "run with CANARY_BLESS=1 to refresh the committed schema"
    );
}

#[test]
fn cluster_template_has_the_same_schema() {
    let a = crd_schema("analysis-template-crd.yaml");
    let c = crd_schema("cluster-analysis-template-crd.yaml");
    assert_eq!(a, c);
}
