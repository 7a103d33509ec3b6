use super::*;

const TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service
  - name: threshold
    value: "0.95"
  metrics:
  - name: success-rate
    interval: 1m
    count: 3
    failureLimit: 1
    successCondition: result[0] >= {{ args.threshold }}
    provider:
      prometheus:
        address: http://prometheus:9090
        query: sum(rate(req{service="{{args.service}}",code!~"5.."}[5m])) / sum(rate(req{service="{{args.service}}"}[5m]))
"#;

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_and_resolves() {
    let t = parse_str("t.yaml", TEMPLATE).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].name, "success-rate");
    let m = resolve(&t, &given(&[("service", "checkout")])).unwrap();
    assert_eq!(m[0].metric.success_condition, "result[0] >= 0.95");
    let q = &m[0].metric.provider.prometheus.as_ref().unwrap().query;
    assert!(q.contains(r#"service="checkout""#), "{q}");
    assert_eq!(m[0].metric.effective_count(), Some(3));
}

#[test]
fn missing_arg_is_named() {
    let t = parse_str("t.yaml", TEMPLATE).unwrap();
    let e = resolve(&t, &given(&[])).unwrap_err();
    assert!(
        e[0].to_string().contains("\"service\" was not supplied"),
        "{}",
        e[0]
    );
}

#[test]
fn argo_rule_violation_names_file_metric_field_and_line() {
    let bad = TEMPLATE.replace("    interval: 1m\n", "");
    let t = parse_str("t.yaml", &bad).unwrap();
    let e = resolve(&t, &given(&[("service", "x")])).unwrap_err();
    let s = e[0].to_string();
    assert_eq!(
        s,
        "t.yaml:12: metric \"success-rate\": spec.metrics[0].count: interval must be specified when count > 1"
    );
}

#[test]
fn schema_violation_names_line() {
    let bad = TEMPLATE.replace("    count: 3\n", "    count: [3]\n");
    let e = parse_str("t.yaml", &bad).unwrap_err();
    assert_eq!(e[0].line, Some(13), "{e:?}");
    assert!(e[0].message.contains("integer or a string"), "{e:?}");
    assert_eq!(e[0].metric.as_deref(), Some("success-rate"));
    assert_eq!(e[0].field.as_deref(), Some("spec.metrics[0].count"));
    let typo = TEMPLATE.replace("successCondition", "sucessCondition");
    let e = parse_str("t.yaml", &typo).unwrap_err();
    assert!(e[0].message.contains("sucessCondition"), "{e:?}");
}

#[test]
fn count_from_an_arg_is_an_integer_after_substitution() {
    let t = TEMPLATE
        .replace("    count: 3\n", "    count: \"{{args.count}}\"\n")
        .replace(
            "  - name: service\n",
            "  - name: service\n  - name: count\n",
        );
    let t = parse_str("t.yaml", &t).unwrap();
    let m = resolve(&t, &given(&[("service", "x"), ("count", "5")])).unwrap();
    assert_eq!(m[0].metric.count, Some(5));
    let e = resolve(&t, &given(&[("service", "x"), ("count", "five")])).unwrap_err();
    assert_eq!(
        e[0].field.as_deref(),
        Some("spec.metrics[0].count"),
        "{e:?}"
    );
}

#[test]
fn other_kinds_and_syntax_errors() {
    let e = parse_str("j.yaml", "kind: Judge\nname: x\n").unwrap_err();
    assert_eq!(e[0].line, Some(1));
    let e = parse_str("s.yaml", "kind: [\n").unwrap_err();
    assert!(e[0].message.starts_with("YAML syntax error"), "{e:?}");
}

#[test]
fn dry_run_rules_match_metric_names() {
    let t = TEMPLATE.replace(
        "  metrics:\n",
        "  dryRun:\n  - metricName: success.*\n  metrics:\n",
    );
    let t = parse_str("t.yaml", &t).unwrap();
    let m = resolve(&t, &given(&[("service", "x")])).unwrap();
    assert!(m[0].dry_run);
    let t = TEMPLATE.replace(
        "  metrics:\n",
        "  dryRun:\n  - metricName: nothing\n  metrics:\n",
    );
    let t = parse_str("t.yaml", &t).unwrap();
    let e = resolve(&t, &given(&[("service", "x")])).unwrap_err();
    assert!(e[0].message.contains("didn't match"), "{e:?}");
}
