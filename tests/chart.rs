//! The Helm chart, rendered by a real Helm (v4's library through helm-sdkpy, `ci/helm.py`):
//! pod and container security against Kyverno's restricted profile and the usual
//! best-practice policies, with default values and with every optional feature on; the
//! ConfigMap's templates validate; the environment it sets is what `canary serve` reads; and
//! the rendered server really starts and serves the mounted Judges.
//!
//! Needs `python3` with `helm-sdkpy`, `pyyaml` and `kubernetes-validate` (`.ci/run` installs
//! them: `pip install --ignore-requires-python helm-sdkpy pyyaml kubernetes-validate`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Render the chart with `values` (None: defaults); Err with Helm's message on failure.
fn render(values: Option<&Path>) -> Result<Vec<Value>, String> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new("python3");
    c.current_dir(root())
        .args(["ci/helm.py", "template", "charts/canary-engine", "--out"])
        .arg(out.path())
        .args(["--kube-version", "1.33.0"]);
    if let Some(v) = values {
        c.arg("-f").arg(v);
    }
    let result = c.output().expect(
        "python3 (with `pip install --ignore-requires-python helm-sdkpy pyyaml kubernetes-validate`)",
    );
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert_ne!(
        result.status.code(),
        Some(2),
        "ci/helm.py is missing a dependency: {stderr}"
    );
    if !result.status.success() {
        return Err(format!(
            "{stderr}{}",
            String::from_utf8_lossy(&result.stdout)
        ));
    }
    Ok(serde_json::from_str(&std::fs::read_to_string(out.path()).unwrap()).unwrap())
}

fn all_features() -> PathBuf {
    root().join("charts/canary-engine/ci/all-features-values.yaml")
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn dockerfile_uid() -> i64 {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile sets USER");
    user.split(':').next().unwrap().trim().parse().unwrap()
}

/// Kyverno's pod-security `restricted` policies (which include `baseline`) and the
/// best-practice ones the issue names, checked on a pod template.
fn check_restricted(pod: &Value, label: &str) {
    let spec = &pod["spec"];
    let psc = &spec["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_ne!(spec[host], true, "{label}: {host}");
    }
    assert_eq!(psc["runAsNonRoot"], true, "{label}: pod runAsNonRoot");
    assert_eq!(
        psc["runAsUser"].as_i64(),
        Some(dockerfile_uid()),
        "{label}: fixed UID, the image's"
    );
    assert_ne!(psc["runAsGroup"], 0, "{label}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{label}");
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let obj = v.as_object().unwrap();
        // restricted: only these volume types.
        let kind = obj.keys().find(|k| *k != "name").unwrap();
        assert!(
            [
                "configMap",
                "secret",
                "emptyDir",
                "projected",
                "downwardAPI",
                "persistentVolumeClaim",
                "csi",
                "ephemeral"
            ]
            .contains(&kind.as_str()),
            "{label}: volume type {kind}"
        );
    }
    let containers: Vec<&Value> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    assert!(!containers.is_empty());
    for c in containers {
        let name = c["name"].as_str().unwrap();
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{label}/{name}");
        assert_ne!(sc["privileged"], true, "{label}/{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{label}/{name}");
        assert_ne!(sc["runAsNonRoot"], false, "{label}/{name}");
        assert_ne!(sc["runAsUser"], 0, "{label}/{name}");
        let drop: Vec<&str> = sc["capabilities"]["drop"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(drop.contains(&"ALL"), "{label}/{name}: drop ALL");
        for add in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            assert_eq!(add, "NET_BIND_SERVICE", "{label}/{name}: adds {add}");
        }
        if let Some(t) = sc["seccompProfile"]["type"].as_str() {
            assert!(
                ["RuntimeDefault", "Localhost"].contains(&t),
                "{label}/{name}"
            );
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            assert!(p.get("hostPort").is_none(), "{label}/{name}: hostPort");
        }
        // Best practice: pinned image (tag other than latest, or digest), requests and a
        // memory limit, both probes.
        let image = c["image"].as_str().unwrap();
        let pinned = image.contains("@sha256:")
            || image.rsplit_once(':').is_some_and(|(repo, tag)| {
                !repo.ends_with('/') && tag != "latest" && !tag.contains('/')
            });
        assert!(pinned, "{label}/{name}: image {image} is not pinned");
        assert!(
            c["resources"]["requests"]["cpu"].is_string(),
            "{label}/{name}"
        );
        assert!(
            c["resources"]["requests"]["memory"].is_string(),
            "{label}/{name}"
        );
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "{label}/{name}"
        );
        assert_eq!(
            c["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{label}/{name}"
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{label}/{name}"
        );
    }
}

#[test]
fn default_and_all_feature_renders_pass_the_restricted_profile() {
    for (label, values) in [("defaults", None), ("all features", Some(all_features()))] {
        let objects = render(values.as_deref()).unwrap_or_else(|e| panic!("{label}: {e}"));
        let deployments = of_kind(&objects, "Deployment");
        assert_eq!(deployments.len(), 1, "{label}");
        let d = deployments[0];
        check_restricted(&d["spec"]["template"], label);
        assert_eq!(d["spec"]["replicas"], 2, "{label}");
        let pod = &d["spec"]["template"]["spec"];
        assert!(
            !pod["topologySpreadConstraints"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{label}"
        );
        // The Judge specs are mounted as a whole volume, never by subPath (which kubelet does
        // not update), so ConfigMap edits reach the running server's reload.
        let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
        let judges = mounts
            .iter()
            .find(|m| m["mountPath"] == "/etc/canary/judges")
            .expect("judges mounted");
        assert!(judges.get("subPath").is_none(), "{label}: {judges}");
        // Graceful termination outlasts the server's drain (deadline 8 s + 2 s).
        assert!(
            pod["terminationGracePeriodSeconds"].as_i64().unwrap() > 10,
            "{label}"
        );
        assert_eq!(of_kind(&objects, "PodDisruptionBudget").len(), 1, "{label}");
        assert_eq!(of_kind(&objects, "Service").len(), 1, "{label}");
        // Nothing cluster-wide unless asked.
        assert!(of_kind(&objects, "ClusterRole").is_empty(), "{label}");
        assert!(
            of_kind(&objects, "ClusterRoleBinding").is_empty(),
            "{label}"
        );
    }
}

#[test]
fn default_render_has_no_rbac_and_no_api_token_mounted() {
    let objects = render(None).unwrap();
    assert!(of_kind(&objects, "Role").is_empty());
    assert!(of_kind(&objects, "RoleBinding").is_empty());
    let d = of_kind(&objects, "Deployment")[0];
    assert_eq!(
        d["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    for kind in ["ServiceMonitor", "NetworkPolicy", "Certificate"] {
        assert!(of_kind(&objects, kind).is_empty(), "{kind} is optional");
    }
}

#[test]
fn all_features_render_wires_every_option() {
    let objects = render(Some(&all_features())).unwrap();
    // Least-privilege RBAC, one Role per promotion namespace.
    let roles = of_kind(&objects, "Role");
    let namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["shop", "payments"]);
    for r in &roles {
        for rule in r["rules"].as_array().unwrap() {
            assert_eq!(
                rule["apiGroups"],
                serde_json::json!(["networking.istio.io"])
            );
            let resources: Vec<&str> = rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert!(
                !verbs.contains(&"*") && !verbs.contains(&"delete"),
                "{verbs:?}"
            );
            if resources.contains(&"destinationrules") {
                assert!(!verbs.contains(&"update") && !verbs.contains(&"patch"));
            }
        }
    }
    assert_eq!(of_kind(&objects, "RoleBinding").len(), 2);
    for kind in ["ServiceMonitor", "NetworkPolicy", "Certificate"] {
        assert_eq!(of_kind(&objects, kind).len(), 1, "{kind}");
    }
    let np = of_kind(&objects, "NetworkPolicy")[0];
    assert_eq!(np["spec"]["policyTypes"][0], "Ingress");
    assert_eq!(
        np["spec"]["ingress"].as_array().unwrap().len(),
        2,
        "Argo Rollouts and Prometheus"
    );
    // The Grafana dashboard, labelled for the sidecar, with the panels the issue asks for.
    let dashboards: Vec<&Value> = of_kind(&objects, "ConfigMap")
        .into_iter()
        .filter(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    assert_eq!(dashboards.len(), 1);
    let text = dashboards[0]["data"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    let dashboard: Value = serde_json::from_str(text).unwrap();
    let exprs = dashboard.to_string();
    for metric in [
        "canary_verdicts_total",
        "canary_judge_duration_seconds_bucket",
        "canary_prometheus_query_errors_total",
        "canary_judge_spec_reload_failures_total",
    ] {
        assert!(exprs.contains(metric), "dashboard lacks {metric}");
    }
    let d = of_kind(&objects, "Deployment")[0];
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS", "TLS on");
    assert!(c["image"].as_str().unwrap().contains("@sha256:"));
    let env = c["env"].to_string();
    for name in [
        "CANARY_TLS_CERT",
        "CANARY_PROMETHEUS_TENANT",
        "CANARY_PROMETHEUS_BASIC_AUTH",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        assert!(env.contains(name), "{name} not set");
    }
    // The token comes from the External Secrets-made Secret, not one the chart makes.
    assert!(
        env.contains("canary-engine-api-token")
            || d.to_string().contains("canary-engine-api-token")
    );
    assert!(
        of_kind(&objects, "Secret").is_empty(),
        "existingSecret: no chart-made Secret"
    );
}

#[test]
fn a_values_typo_fails_the_install() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("replicas: 3\n", "replicas"),
        ("replicaCount: two\n", "replicaCount"),
        ("image: {tag: latest}\n", "tag"),
    ] {
        let f = dir.path().join("values.yaml");
        std::fs::write(&f, text).unwrap();
        let e = render(Some(&f)).expect_err(text);
        assert!(e.contains(expected), "{text}: {e}");
    }
}

/// Every `CANARY_*` variable the chart sets is one `canary serve` reads, and the server the
/// default render describes starts with the chart's files and serves the mounted Judges.
#[test]
fn the_rendered_server_starts_and_serves_the_mounted_judges() {
    let objects = render(Some(&all_features())).unwrap();
    let d = of_kind(&objects, "Deployment")[0];
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let help = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if name.starts_with("CANARY_") && name != "CANARY_LOG" {
            assert!(
                help.contains(&format!("[env: {name}")),
                "`canary serve` does not read {name}"
            );
        }
    }

    // The ConfigMap's files, as the pod sees them.
    let objects = render(None).unwrap();
    let cm = of_kind(&objects, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"].as_str().unwrap().ends_with("-judges"))
        .expect("the judges ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    let data = cm["data"].as_object().unwrap();
    for (file, text) in data {
        std::fs::write(dir.path().join(file), text.as_str().unwrap()).unwrap();
        // The chart ships exactly the repository's templates.
        let original = std::fs::read_to_string(root().join("analysis-templates").join(file))
            .unwrap_or_else(|_| panic!("{file} is not in analysis-templates/"));
        assert_eq!(
            original,
            text.as_str().unwrap(),
            "{file} differs from analysis-templates/"
        );
    }
    let shipped = std::fs::read_dir(root().join("analysis-templates"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "yaml")
        })
        .count();
    assert_eq!(data.len(), shipped, "every shipped template is mounted");

    // Every mounted file validates: Judges as Judge specs, the rest as AnalysisTemplates.
    for file in data.keys() {
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("kind: Judge") {
            let judges = canary_engine::template::judge_spec::judges_in(file, &text)
                .unwrap_or_else(|e| panic!("{file}: {e:?}"));
            assert!(!judges.is_empty());
        } else {
            canary_engine::template::load_file(&path).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        }
    }

    std::fs::write(dir.path().join("token"), "s3cret").unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("serve")
        .env("CANARY_LISTEN", "127.0.0.1:0")
        .env("CANARY_JUDGES", dir.path())
        .env("CANARY_TOKEN_FILE", dir.path().join("token"))
        .env("CANARY_PROMETHEUS_URL", "http://127.0.0.1:9")
        .env("CANARY_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let addr = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find_map(|l| {
            let rest = l.strip_prefix("canary serve listening on ")?;
            rest.split_whitespace().next().map(str::to_string)
        })
        .expect("the server logs its address");
    let get = |path: &str, token: Option<&str>| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let judges = get("/api/v1/judges", Some("s3cret"));
    let unauthorized = get("/api/v1/judges", None);
    let health = get("/healthz", None);
    let _ = server.kill();
    let _ = server.wait();
    assert!(judges.starts_with("HTTP/1.1 200"), "{judges}");
    assert!(judges.contains("istio-golden-signals"), "{judges}");
    assert!(unauthorized.starts_with("HTTP/1.1 401"), "{unauthorized}");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
