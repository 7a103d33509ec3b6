//! Every kind of HTML report, looked at in a real headless browser (Debian's `chromium`,
//! driven over WebDriver by `chromedriver`): it renders, its charts have a size, nothing
//! overflows the page, and the browser logs no console error or warning. A screenshot of each
//! is written to `target/screenshots/`; with `CANARY_UPDATE_SCREENSHOTS=1` also to
//! `docs/images/`, where the README shows them.
//!
//! The pages are made the way users make them: the judgement by `canary serve`'s
//! `/reports/{id}` (the browser sends the bearer token), the others by `--html` on `analyze`,
//! `backtest` and `calibrate` against a real Prometheus, and the promotion report by
//! `canary demo`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::judge_data::{Scenarios, BASELINE, CANARY};
use common::prom::free_port;
use common::serve::{Serve, TOKEN};
use serde_json::{json, Value};

/// A chromedriver process with one headless Chromium session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let chromedriver =
            std::env::var("CANARY_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium =
            std::env::var("CANARY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{chromedriver}: {e} — install Debian's chromium and chromium-driver \
                     (see .ci/run)"
                )
            });
        let rt = tokio::runtime::Runtime::new().unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = rt.block_on(async {
                let r = http.get(format!("{base}/status")).send().await.ok()?;
                r.json::<Value>().await.ok()
            });
            if ready.is_some_and(|v| v["value"]["ready"] == true) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags this machine's closed network needs (no background connections).
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,1500",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            http,
            rt,
            _profile: profile,
        };
        let v = b.call(reqwest::Method::POST, "/session", caps);
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        b
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{}", self.base, path);
        let v: Value = self.rt.block_on(async {
            let mut request = self.http.request(method, &url);
            if !body.is_null() {
                request = request.json(&body);
            }
            request
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    fn session(&self, method: reqwest::Method, what: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}/{what}", self.session), body)
    }

    /// Send `Authorization: Bearer …` with every request from now on (Chrome DevTools).
    fn bearer(&self, token: &str) {
        self.session(
            reqwest::Method::POST,
            "goog/cdp/execute",
            json!({"cmd": "Network.enable", "params": {}}),
        );
        self.session(
            reqwest::Method::POST,
            "goog/cdp/execute",
            json!({"cmd": "Network.setExtraHTTPHeaders",
                   "params": {"headers": {"Authorization": format!("Bearer {token}")}}}),
        );
    }

    fn open(&self, url: &str) {
        self.session(reqwest::Method::POST, "url", json!({ "url": url }));
    }

    fn eval(&self, script: &str) -> Value {
        self.session(
            reqwest::Method::POST,
            "execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    /// Console messages since the last call.
    fn console(&self) -> Vec<Value> {
        self.session(reqwest::Method::POST, "se/log", json!({"type": "browser"}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn screenshot(&self) -> Vec<u8> {
        let v = self.call(
            reqwest::Method::GET,
            &format!("/session/{}/screenshot", self.session),
            Value::Null,
        );
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self
                .rt
                .block_on(async { self.http.delete(&url).send().await });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Look at one page: it loads, has `min_charts` charts with a size, fits the window, logs no
/// console error or warning; its screenshot is saved as `name.png`.
fn inspect(b: &Browser, url: &str, name: &str, min_charts: usize, heading: &str) {
    b.console();
    b.open(url);
    let title =
        b.eval("return document.querySelector('h1') && document.querySelector('h1').textContent");
    assert!(
        title.as_str().is_some_and(|t| t.contains(heading)),
        "{name}: heading {title}"
    );
    let charts = b.eval(
        "return [...document.querySelectorAll('svg')].map(s => { \
           const r = s.getBoundingClientRect(); return [r.width, r.height]; })",
    );
    let charts = charts.as_array().unwrap();
    assert!(
        charts.len() >= min_charts,
        "{name}: {} charts, expected at least {min_charts}",
        charts.len()
    );
    for c in charts {
        let (w, h) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!(w > 200.0 && h > 80.0, "{name}: a chart drawn at {w}×{h}");
    }
    let overflow = b.eval("return document.documentElement.scrollWidth - window.innerWidth");
    assert!(
        overflow.as_f64().unwrap() <= 0.0,
        "{name}: wider than the window by {overflow}px"
    );
    let problems: Vec<Value> = b
        .console()
        .into_iter()
        .filter(|m| m["level"] == "SEVERE" || m["level"] == "WARNING")
        .collect();
    assert!(problems.is_empty(), "{name}: console says {problems:?}");
    let png = b.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: not a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert!(width >= 1000, "{name}: screenshot {width}px wide");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    if std::env::var("CANARY_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let docs = common::project_path("docs/images");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("report-{name}.png")), &png).unwrap();
    }
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn run(args: &[&str]) {
    let (code, out, err) = common::canary(args);
    assert!(
        code == 0 || code == 1,
        "canary {args:?} exited {code}\n{out}\n{err}"
    );
}

#[test]
fn the_console_check_can_fail() {
    let b = Browser::start();
    b.console();
    b.open("data:text/html,<p>x</p><script>console.error('boom')</script>");
    let logged = b.console();
    assert!(
        logged
            .iter()
            .any(|m| m["level"] == "SEVERE" && m["message"].as_str().unwrap().contains("boom")),
        "{logged:?}"
    );
}

#[test]
fn every_report_renders_in_a_real_browser_without_console_errors() {
    let data = Scenarios::start();
    let prometheus = &data.prometheus;
    let at = |m: i64| data.at(m);
    let out = tempfile::tempdir().unwrap();
    let page = |n: &str| -> PathBuf { out.path().join(format!("{n}.html")) };
    let judge = "analysis-templates/judge-istio-kayenta-compatible.yaml";
    let judge_args = [
        "--arg",
        "service=tail",
        "--arg",
        "namespace=prod",
        "--arg",
        &format!("canary_hash={CANARY}"),
        "--arg",
        &format!("stable_hash={BASELINE}"),
    ]
    .map(String::from);
    let with = |head: Vec<String>| -> Vec<String> {
        head.into_iter().chain(judge_args.iter().cloned()).collect()
    };
    let strs = |v: &[String]| -> Vec<String> { v.to_vec() };

    // backtest and calibrate (Judge spec), analyze (Argo templates), demo (promotion).
    let bt = with(strs(&[
        "backtest".into(),
        judge.into(),
        "--prometheus".into(),
        prometheus.url.clone(),
        "--from".into(),
        at(-60),
        "--to".into(),
        at(0),
        "--every".into(),
        "2m".into(),
        "--html".into(),
        page("backtest").display().to_string(),
    ]));
    run(&bt.iter().map(String::as_str).collect::<Vec<_>>());
    let cal = with(strs(&[
        "calibrate".into(),
        judge.into(),
        "--prometheus".into(),
        prometheus.url.clone(),
        "--from".into(),
        at(-55),
        "--to".into(),
        at(0),
        "--every".into(),
        "1m".into(),
        "--html".into(),
        page("calibration").display().to_string(),
    ]));
    run(&cal.iter().map(String::as_str).collect::<Vec<_>>());
    let analysis_page = page("analysis").display().to_string();
    run(&[
        "analyze",
        "analysis-templates/istio-success-rate.yaml",
        "analysis-templates/istio-p99-latency.yaml",
        "--prometheus",
        &prometheus.url,
        "--arg",
        "service=errors",
        "--arg",
        "namespace=prod",
        "--arg",
        "revision=.*",
        "--once",
        "--html",
        &analysis_page,
    ]);
    let demo = out.path().join("demo");
    run(&["demo", "--out", &demo.display().to_string()]);

    // The judgement, from canary serve.
    let serve = Serve::start(&prometheus.url, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer: Value = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/judge", serve.url))
            .bearer_auth(TOKEN)
            .json(&json!({"judge": "istio-kayenta-compatible", "args": {
                "service": "tail", "namespace": "prod",
                "canary_hash": CANARY, "stable_hash": BASELINE}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let report = answer["report"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));

    let b = Browser::start();
    inspect(&b, &file_url(&page("backtest")), "backtest", 4, "Backtest");
    inspect(
        &b,
        &file_url(&page("calibration")),
        "calibration",
        10,
        "A/A calibration",
    );
    inspect(&b, &file_url(&page("analysis")), "analysis", 2, "Analysis");
    inspect(
        &b,
        &file_url(&demo.join("report-v3.html")),
        "promotion",
        2,
        "Promotion",
    );
    // The demo's deciding judgement: canary vs baseline per metric, the evidence, the budget.
    inspect(
        &b,
        &file_url(&demo.join("judgement-v3.html")),
        "demo judgement",
        2,
        "istio-golden-signals",
    );
    b.bearer(TOKEN);
    inspect(
        &b,
        &format!("{}{report}", serve.url),
        "judgement",
        8,
        "istio-kayenta-compatible",
    );
}
