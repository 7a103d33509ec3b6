//! A real Kubernetes API server for the tests: `tests/kube-apiserver/` (Go:
//! `k8s.io/apiextensions-apiserver` on an embedded etcd), built once into
//! `target/go-bin/`, started once per test binary, with Istio's and Argo Rollouts' CRDs from
//! `../shared/schemas/` registered. Each test takes its own namespace.
//!
//! Without Go the tests that need it say so on stderr and return; with
//! `CANARY_REQUIRE_KUBE=1` (set by `.ci/run`) a missing server fails them instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

/// The running server.
pub struct KubeServer {
    /// A kubeconfig with an authorised credential (`https://127.0.0.1:PORT`).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The bearer token in the kubeconfig.
    pub token: String,
    /// PEM of the serving certificate and its CA.
    pub ca_pem: Vec<u8>,
    /// Seconds it took to build (if needed), start and register the CRDs.
    pub startup: f64,
    _dir: tempfile::TempDir,
    // Holding the child keeps its stdin open; the server exits when this process does.
    _child: Mutex<Child>,
}

static SERVER: OnceLock<Option<KubeServer>> = OnceLock::new();
static NAMESPACES: AtomicU32 = AtomicU32::new(0);

/// The API server of this test binary, or `None` (announced loudly) when Go is missing.
pub fn server() -> Option<&'static KubeServer> {
    SERVER
        .get_or_init(|| match start() {
            Ok(s) => {
                eprintln!(
                    "real Kubernetes API server at {} (ready in {:.1} s)",
                    s.url, s.startup
                );
                Some(s)
            }
            Err(why) => {
                let required = std::env::var("CANARY_REQUIRE_KUBE").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "CANARY_REQUIRE_KUBE=1 but the API server is unavailable: {why}"
                );
                eprintln!(
                    "\n!!!!!!!!\n!!! SKIPPED: this test needs the real Kubernetes API server \
                     (tests/kube-apiserver, Go): {why}\n!!!!!!!!\n"
                );
                None
            }
        })
        .as_ref()
}

/// The built `tests/<module>` Go harness, or `None` (announced loudly) without Go; with
/// `CANARY_REQUIRE_KUBE=1` a missing harness fails the test instead.
pub fn go_harness(module: &str) -> Option<PathBuf> {
    match go_binary(module) {
        Ok(b) => Some(b),
        Err(why) => {
            let required = std::env::var("CANARY_REQUIRE_KUBE").is_ok_and(|v| v == "1");
            assert!(!required, "CANARY_REQUIRE_KUBE=1 but tests/{module}: {why}");
            eprintln!(
                "\n!!!!!!!!\n!!! SKIPPED: this test needs tests/{module} (Go): {why}\n!!!!!!!!\n"
            );
            None
        }
    }
}

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn newest_source(dir: &Path) -> std::io::Result<std::time::SystemTime> {
    let mut newest = std::time::UNIX_EPOCH;
    for f in ["main.go", "go.mod", "go.sum"] {
        newest = newest.max(std::fs::metadata(dir.join(f))?.modified()?);
    }
    Ok(newest)
}

/// Build `tests/<module>` into `target/go-bin/<module>` unless it is already newer than
/// its sources. Concurrent test binaries build to a temporary name and rename.
pub fn go_binary(module: &str) -> Result<PathBuf, String> {
    let src = project().join("tests").join(module);
    let out_dir = project().join("target").join("go-bin");
    let out = out_dir.join(module);
    let sources = newest_source(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let fresh = std::fs::metadata(&out)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= sources);
    if fresh {
        return Ok(out);
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let tmp = out_dir.join(format!("{module}.{}", std::process::id()));
    let status = Command::new("go")
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&tmp)
        .arg(".")
        .current_dir(&src)
        .status()
        .map_err(|e| format!("cannot run `go` ({e}); install Go 1.26 to run these tests"))?;
    if !status.success() {
        return Err(format!("`go build` in {} failed: {status}", src.display()));
    }
    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn start() -> Result<KubeServer, String> {
    let started = Instant::now();
    let bin = go_binary("kube-apiserver")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(&bin)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .map_err(|_| "the API server did not become ready in 120 s".to_string())?;
    if !line.starts_with("ready ") {
        let _ = child.kill();
        return Err(format!("the API server did not start: {line:?}"));
    }
    let text = std::fs::read_to_string(&kubeconfig).map_err(|e| e.to_string())?;
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .ok_or(format!("kubeconfig has no {key}"))
    };
    let url = field("server:")?;
    let token = field("token:")?;
    use base64::Engine as _;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(field("certificate-authority-data:")?)
        .map_err(|e| e.to_string())?;
    let server = KubeServer {
        kubeconfig,
        url,
        token,
        ca_pem,
        startup: 0.0,
        _dir: dir,
        _child: Mutex::new(child),
    };
    // Registration is async; this may be called from inside a test's runtime.
    let registered = std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(register_crds(&server))
        })
        .join()
    });
    registered.map_err(|_| "CRD registration panicked".to_string())??;
    Ok(KubeServer {
        startup: started.elapsed().as_secs_f64(),
        ..server
    })
}

const CRD_FILES: [&str; 5] = [
    "istio-networking-crds.yaml",
    "rollout-crd.yaml",
    "analysis-template-crd.yaml",
    "cluster-analysis-template-crd.yaml",
    "analysis-run-crd.yaml",
];

/// POST every CRD document as YAML (the API server decodes it), then wait until each is
/// Established and its resources can be listed.
async fn register_crds(server: &KubeServer) -> Result<(), String> {
    let client = server.client().await;
    let shared = project().join("../shared/schemas");
    let mut names = vec![];
    for file in CRD_FILES {
        let path = shared.join(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for doc in text.split("\n---") {
            if !doc.contains("kind: CustomResourceDefinition") {
                continue;
            }
            let req =
                http::Request::post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                    .header("content-type", "application/yaml")
                    .body(doc.as_bytes().to_vec())
                    .map_err(|e| e.to_string())?;
            let answer: Value = serde_json::from_str(
                &client
                    .request_text(req)
                    .await
                    .map_err(|e| format!("{file}: {e}"))?,
            )
            .map_err(|e| e.to_string())?;
            let name = answer["metadata"]["name"].as_str().unwrap_or_default();
            let group = answer["spec"]["group"].as_str().unwrap_or_default();
            let plural = answer["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default();
            let version = answer["spec"]["versions"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["storage"] == true))
                .and_then(|v| v["name"].as_str())
                .unwrap_or_default();
            names.push((
                name.to_string(),
                format!("/apis/{group}/{version}/{plural}"),
            ));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (name, list) in names {
        loop {
            let crd: Value = serde_json::from_str(
                &client
                    .request_text(
                        http::Request::get(format!(
                            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                        ))
                        .body(vec![])
                        .map_err(|e| e.to_string())?,
                    )
                    .await
                    .map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
            let established = crd["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Established" && c["status"] == "True");
            let listable = established
                && client
                    .request_text(
                        http::Request::get(&list)
                            .body(vec![])
                            .map_err(|e| e.to_string())?,
                    )
                    .await
                    .is_ok();
            if listable {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("CRD {name} not established in 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

impl KubeServer {
    /// A `kube` client from the kubeconfig, as `canary` builds one.
    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config from the kubeconfig");
        kube::Client::try_from(config).expect("client")
    }

    /// A namespace of this test's own (the server has no Namespace API and no lifecycle
    /// admission: any name is usable at once).
    pub fn namespace(&self, prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NAMESPACES.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// The `networking.istio.io/v1` VirtualService API in `ns`.
pub fn virtual_services(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

/// Create `obj` (its `metadata.namespace` is set to `ns`) as field manager `manager`.
pub async fn create(client: &kube::Client, ns: &str, manager: &str, mut obj: Value) -> Value {
    obj["metadata"]["namespace"] = Value::String(ns.into());
    let o: DynamicObject = serde_json::from_value(obj).expect("object");
    let pp = PostParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    let created = virtual_services(client, ns)
        .create(&pp, &o)
        .await
        .expect("create the VirtualService");
    serde_json::to_value(created).expect("json")
}

/// The stored VirtualService, or `None` if it does not exist.
pub async fn get(client: &kube::Client, ns: &str, name: &str) -> Option<Value> {
    virtual_services(client, ns)
        .get_opt(name)
        .await
        .expect("get the VirtualService")
        .map(|o| serde_json::to_value(o).expect("json"))
}

/// Delete a VirtualService, as `kubectl delete` would.
pub async fn delete(client: &kube::Client, ns: &str, name: &str) {
    virtual_services(client, ns)
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete the VirtualService");
}

/// Another writer's update: `edit` applied to a fresh read, written as `manager`, retried
/// on conflict.
pub async fn edit(
    client: &kube::Client,
    ns: &str,
    name: &str,
    manager: &str,
    edit: impl Fn(&mut Value),
) -> Value {
    let api = virtual_services(client, ns);
    let pp = PostParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    loop {
        let mut v = serde_json::to_value(api.get(name).await.expect("get")).expect("json");
        edit(&mut v);
        let o: DynamicObject = serde_json::from_value(v).expect("object");
        match api.replace(name, &pp, &o).await {
            Ok(o) => return serde_json::to_value(o).expect("json"),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("update as {manager}: {e}"),
        }
    }
}
