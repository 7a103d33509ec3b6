use super::*;

const SPEC: &str = r#"kind: Judge
name: golden
args:
- service
- canary_hash
- stable_hash
- {name: namespace, default: prod}
window: 10m
step: 30s
metrics:
- name: p99
  group: latency
  query: histogram_quantile(0.99, sum by (le) (rate(lat_bucket{svc="{{args.service}}",hash="{{variant.hash}}"}[1m])))
  direction: increase
  effect: {allowed_increase: 1.1}
  critical: true
- name: errors
  counts:
    bad: sum(increase(req{code=~"5..",hash="{{variant.hash}}"}[{{step}}]))
    total: sum(increase(req{hash="{{variant.hash}}"}[{{step}}]))
slos:
- name: availability
  objective: 99.9
  error_query: sum(increase(req{code=~"5..",ns="{{args.namespace}}"}[{{window}}]))
  total_query: sum(increase(req{ns="{{args.namespace}}"}[{{window}}]))
scoring: {groups: {latency: 60, errors: 40}}
"#;

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_and_renders_per_variant() {
    let specs = parse_str("g.yaml", SPEC).unwrap();
    let s = &specs[0];
    assert_eq!(s.name, "golden");
    assert_eq!(s.window, Duration::from_secs(600));
    assert_eq!(s.metrics[0].config.effect.allowed_increase, Some(1.1));
    assert!(s.metrics[0].config.critical);
    assert!((s.slos[0].objective - 0.999).abs() < 1e-12);
    assert_eq!(s.slos[0].windows, default_windows());
    let values = s
        .resolve_args(&args(&[
            ("service", "co\"x"),
            ("canary_hash", "abc"),
            ("stable_hash", "def"),
        ]))
        .unwrap();
    let r = s.render(&values).unwrap();
    assert!(
        r.metrics[0].0[0].contains(r#"svc="co\"x",hash="abc""#),
        "{}",
        r.metrics[0].0[0]
    );
    assert!(r.metrics[0].1[0].contains(r#"hash="def""#));
    assert!(r.metrics[1].0[0].contains("[30s]"), "{}", r.metrics[1].0[0]);
    let ((le, lt), (se, _)) = &r.slos[0][0];
    assert!(
        le.contains("[3600s]") && lt.contains("[3600s]") && se.contains("[300s]"),
        "{le}"
    );
    assert!(le.contains(r#"ns="prod""#));
}

#[test]
fn errors_name_field_and_line() {
    let bad = SPEC.replace("  direction: increase\n", "  direction: upward\n");
    let e = parse_str("g.yaml", &bad).unwrap_err();
    assert_eq!(e[0].line, Some(14), "{e:?}");
    assert_eq!(e[0].metric.as_deref(), Some("p99"));
    assert_eq!(e[0].field.as_deref(), Some("metrics[0].direction"), "{e:?}");

    let bad = SPEC.replace("  critical: true\n", "  critcal: true\n");
    let e = parse_str("g.yaml", &bad).unwrap_err();
    assert!(e[0].message.contains("critcal"), "{e:?}");

    let bad = SPEC.replace("{{variant.hash}}\"}[1m]", "{{variant.pod}}\"}[1m]");
    let e = parse_str("g.yaml", &bad).unwrap_err();
    assert!(e[0].message.contains("variant.pod"), "{e:?}");
    assert_eq!(e[0].field.as_deref(), Some("metrics[0].query"));

    let bad = SPEC.replace("objective: 99.9", "objective: 140");
    let e = parse_str("g.yaml", &bad).unwrap_err();
    assert_eq!(e[0].field.as_deref(), Some("slos[0].objective"));

    let bad = SPEC.replace("  effect: {allowed_increase: 1.1}\n", "  confidence: 2\n");
    let e = parse_str("g.yaml", &bad).unwrap_err();
    assert_eq!(
        e[0].field.as_deref(),
        Some("metrics[0].confidence"),
        "{e:?}"
    );
}

#[test]
fn args_are_checked_per_request() {
    let s = &parse_str("g.yaml", SPEC).unwrap()[0];
    let e = s.resolve_args(&args(&[("service", "a")])).unwrap_err();
    assert!(e.to_string().contains("canary_hash"), "{e}");
    let e = s
        .resolve_args(&args(&[
            ("service", "a"),
            ("canary_hash", "a"),
            ("stable_hash", "b"),
            ("x", "1"),
        ]))
        .unwrap_err();
    assert!(matches!(e, ArgError::Undeclared { .. }));
}

#[test]
fn inline_json_spec() {
    let v = serde_json::json!({"kind": "Judge", "name": "inline", "args": ["canary_hash", "stable_hash"],
        "metrics": [{"name": "m", "query": "up{h=\"{{variant.hash}}\"}"}]});
    let s = from_json(&v).unwrap();
    assert_eq!(s.file, "inline");
    assert_eq!(s.metrics[0].group, "m");
}

#[test]
fn canary_scoped_slos_render_for_the_canary_variant_only() {
    let text = SPEC
        .replace(
            "  objective: 99.9\n",
            "  objective: 99.9\n  scope: canary\n",
        )
        .replace(
            "error_query: sum(increase(req{code=~\"5..\",ns=\"{{args.namespace}}\"}[{{window}}]))",
            "error_query: sum(increase(req{code=~\"5..\",hash=\"{{variant.hash}}\"}[{{window}}]))",
        );
    let s = &parse_str("g.yaml", &text).unwrap()[0];
    assert_eq!(s.slos[0].scope, SloScope::Canary);
    let values = s
        .resolve_args(&args(&[
            ("service", "x"),
            ("canary_hash", "abc"),
            ("stable_hash", "def"),
        ]))
        .unwrap();
    let r = s.render(&values).unwrap();
    let ((long_error, _), _) = &r.slos[0][0];
    assert!(long_error.contains(r#"hash="abc""#), "{long_error}");
    // A service-scoped SLO cannot use the variant: it is rejected at load.
    let bad = text.replace("  scope: canary\n", "");
    let e = parse_str("g.yaml", &bad).unwrap_err();
    assert_eq!(e[0].field.as_deref(), Some("slos[0].error_query"), "{e:?}");
}

#[test]
fn histogram_buckets_must_keep_le_and_be_counters() {
    let spec = |buckets: &str| {
        format!(
            "kind: Judge\nname: h\nargs: [canary_hash, stable_hash]\nmetrics:\n- name: latency\n  \
             histogram:\n    buckets: '{buckets}'\n"
        )
    };
    for (bad, says) in [
        (
            "sum(lat_bucket{h=\"{{variant.hash}}\"})",
            "drops the `le` label",
        ),
        (
            "sum by (le) (rate(lat_bucket{h=\"{{variant.hash}}\"}[1m]))",
            "not rate()/increase()",
        ),
        (
            "lat_count{h=\"{{variant.hash}}\"}",
            "not a histogram's `..._bucket` counters",
        ),
    ] {
        let e = parse_str("h.yaml", &spec(bad)).unwrap_err();
        assert_eq!(
            e[0].field.as_deref(),
            Some("metrics[0].histogram.buckets"),
            "{e:?}"
        );
        assert_eq!(e[0].line, Some(7), "{e:?}");
        assert!(e[0].message.contains(says), "{bad}: {e:?}");
    }
    let ok = parse_str(
        "h.yaml",
        &spec("sum by (le, pod) (lat_bucket{h=\"{{variant.hash}}\"})"),
    );
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn budget_is_split_across_sequential_metrics_by_weight() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/analysis-templates/judge-istio-golden-signals.yaml"
    ))
    .unwrap();
    let spec = parse_str("g.yaml", &text).unwrap().remove(0);
    let alphas: Vec<f64> = spec
        .metrics
        .iter()
        .map(|m| m.config.alpha.unwrap())
        .collect();
    assert!(
        (alphas.iter().sum::<f64>() - 0.01).abs() < 1e-12,
        "{alphas:?}"
    );
    assert!((alphas[0] - 0.006).abs() < 1e-12 && (alphas[2] - 0.001).abs() < 1e-12);
}
