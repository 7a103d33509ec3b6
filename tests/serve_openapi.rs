//! The OpenAPI 3.1 document of `canary serve` (`src/server/openapi.json`) against the server:
//!
//! - **in sync with the router**: its operations are exactly [`Route::ALL`], each with the
//!   security its [`Access`] needs; every status a handler (or the middleware in front of it)
//!   can answer is listed for that operation, and nothing else — found by reading the
//!   server's source, so a new `StatusCode` in a handler fails here until it is documented;
//!   every error code in the source is in the document's list, and the reverse;
//! - **live answers** of a real `canary serve` (a real Prometheus with scenario data, and a
//!   real PostgreSQL for the results and the audit ledger when it is installed) validate
//!   against the document's schemas, headers and media types, for a representative request
//!   of every operation and every status that can be provoked from outside;
//! - **schemathesis** (Python, pinned in `.ci/run`) fuzzes the same live server with every
//!   check it has plus `tests/schemathesis/hooks.py`'s error-shape check, and must find
//!   nothing. Without schemathesis the test says so loudly and passes, unless
//!   `CANARY_REQUIRE_SCHEMATHESIS=1` (CI), where it fails.

mod common;
#[path = "serve_openapi/contract.rs"]
mod contract;
#[path = "serve_openapi/schemathesis.rs"]
mod schemathesis;
#[path = "serve_openapi/source.rs"]
mod source;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use canary_engine::server::openapi::{Access, Route, DOCUMENT};
use common::judge_data::{shared_prometheus, BASELINE, CANARY};
use common::postgres::Postgres;
use common::serve::{Serve, TOKEN};
use contract::{raw, trickle, Ask, Contract};
use serde_json::{json, Value};
use source::{status_number, Source};

/// The ledger readers' token of the servers started here.
const READER: &str = "reader-token-0123456789";

/// The document, parsed.
fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("src/server/openapi.json is JSON")
}

/// The document's operation of `route`.
fn operation(doc: &Value, route: Route) -> &Value {
    let op = &doc["paths"][route.path()][route.method().as_str().to_lowercase()];
    assert!(op.is_object(), "{route:?} is not in the document");
    op
}

/// `value` with a `$ref` into the document followed (once, as components are written).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => value,
    }
}

/// The statuses the document lists for `route`.
fn documented_statuses(doc: &Value, route: Route) -> BTreeSet<u16> {
    operation(doc, route)["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(|k| {
            k.parse()
                .unwrap_or_else(|_| panic!("{route:?}: status {k}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The document and the router

#[test]
fn the_document_lists_every_route_with_its_access_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, _) in item.as_object().expect("path item") {
            assert!(
                methods.contains(&key.as_str()),
                "{path}: {key} is not a method"
            );
            listed.insert((key.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<_> = Route::ALL
        .iter()
        .map(|r| (r.method().to_string(), r.path().to_string()))
        .collect();
    assert_eq!(
        listed, served,
        "the document's operations are the router's routes"
    );
    assert!(
        doc.get("security").is_none(),
        "each operation states its own security; no document-wide default"
    );

    let schemes = &doc["components"]["securitySchemes"];
    for name in ["judgeToken", "readerToken"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    let mut ids = BTreeSet::new();
    for route in Route::ALL {
        let op = operation(&doc, route);
        let expected = match route.access() {
            Access::Public => json!([]),
            Access::Judge => json!([{"judgeToken": []}]),
            Access::Reader => json!([{"readerToken": []}]),
        };
        assert_eq!(op["security"], expected, "{route:?}'s security");
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id.to_string()), "operationId {id} twice");
        // Every `{param}` of the path is a required path parameter, and no other.
        let in_path: BTreeSet<&str> = route
            .path()
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| resolve(&doc, p))
                    .filter(|p| p["in"] == "path")
                    .inspect(|p| assert_eq!(p["required"], true, "{route:?}: {p}"))
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(in_path, declared, "{route:?}'s path parameters");
        // A route behind a token can always be refused for it.
        let statuses = documented_statuses(&doc, route);
        if route.access() != Access::Public {
            assert!(
                statuses.contains(&401) && statuses.contains(&403),
                "{route:?}"
            );
        }
    }
    check_refs(&doc, &doc, "#");
}

/// Every `$ref` in the document resolves inside it.
fn check_refs(doc: &Value, v: &Value, at: &str) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let target = r.strip_prefix('#').unwrap_or_else(|| panic!("{at}: {r}"));
                assert!(doc.pointer(target).is_some(), "{at}: {r} does not resolve");
            }
            for (k, x) in m {
                check_refs(doc, x, &format!("{at}/{k}"));
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_refs(doc, x, &format!("{at}/{i}"));
            }
        }
        _ => {}
    }
}

#[test]
fn every_status_a_route_can_answer_is_documented_and_nothing_else() {
    let doc = document();
    let source = Source::read();
    let mut all = BTreeSet::new();
    for route in Route::ALL {
        let can = source.route_statuses(route);
        let documented = documented_statuses(&doc, route);
        assert_eq!(
            documented,
            can,
            "{} {}: the statuses the document lists (left) against those the source can \
             answer (right)",
            route.method(),
            route.path()
        );
        all.extend(can);
    }
    // Anything else the server's code can answer is reached from a route (the fallbacks
    // answer what the document does not describe: an unknown path, a method a path lacks).
    let named = regex::Regex::new(r"StatusCode::([A-Z_]+)").expect("regex");
    for ((file, name), (_, body)) in &source.fns {
        if file == "openapi" && (name == "not_found" || name == "method_not_allowed") {
            continue;
        }
        for c in named.captures_iter(body) {
            let status = status_number(&c[1]);
            assert!(
                all.contains(&status),
                "src/server/{file}.rs fn {name} answers {status}, which no operation lists"
            );
        }
    }
}

#[test]
fn every_error_code_is_documented_and_the_document_lists_no_other() {
    let doc = document();
    let description = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
        ["description"]
        .as_str()
        .expect("ErrorDetail.code has a description");
    let listed: BTreeSet<String> = description
        .split_once("One of: ")
        .and_then(|(_, rest)| rest.split_once('.'))
        .map(|(list, _)| list.split(", ").map(str::to_string).collect())
        .expect("ErrorDetail.code's description lists the codes after `One of: `");
    let source = Source::read().error_codes();
    assert_eq!(
        listed, source,
        "the error codes the document lists (left) against those in src/server (right)"
    );
}

/// The scenario data's args for `service`.
fn args(service: &str) -> Value {
    json!({"service": service, "namespace": "prod", "canary_hash": CANARY, "stable_hash": BASELINE})
}

/// A small inline Judge spec over the scenario data: one metric, one group; `query`
/// replaces its query when given.
fn inline_spec(query: Option<&str>) -> Value {
    let q = "sum(rate(istio_requests_total{reporter=\"destination\", \
             destination_service_name=\"{{args.service}}\", \
             rollouts_pod_template_hash=\"{{variant.hash}}\"}[{{step}}]))";
    json!({
        "kind": "Judge", "name": "inline-request-rate",
        "args": ["service", "namespace", "canary_hash", "stable_hash"],
        "window": "10m", "step": "30s",
        "metrics": [{"name": "request-rate", "group": "traffic",
                     "query": query.unwrap_or(q), "direction": "decrease"}],
        "scoring": {"groups": {"traffic": 100}, "pass": 95, "marginal": 75}
    })
}

/// Token files for the readers' token.
fn reader_token_file(dir: &Path) -> String {
    let p = dir.join("reader");
    std::fs::write(&p, format!("{READER}\n")).unwrap();
    p.display().to_string()
}

/// A PostgreSQL for the results and the ledger, when installed (`None`, loudly, when not;
/// a failure with `CANARY_REQUIRE_POSTGRES=1`).
fn postgres() -> Option<(Postgres, String)> {
    let pg = Postgres::start()?;
    let url = pg.database("openapi");
    Some((pg, url))
}

/// The flags of a server with every optional part on: inline specs, the readers' token, and
/// with a database the PostgreSQL result store and audit ledger.
fn full_flags(dir: &Path, database: Option<&str>) -> Vec<String> {
    let mut flags = vec![
        "--allow-inline".to_string(),
        "--reader-token-file".to_string(),
        reader_token_file(dir),
    ];
    if let Some(url) = database {
        for flag in ["--database-url", "--audit-url"] {
            flags.push(flag.to_string());
            flags.push(url.to_string());
        }
    }
    flags
}

fn start(prometheus: &str, flags: &[String]) -> Serve {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Serve::start(prometheus, &flags)
}

#[test]
fn live_answers_are_what_the_document_says() {
    let prometheus = shared_prometheus();
    let pg = postgres();
    let database = pg.as_ref().map(|(_, url)| url.as_str());
    let dir = tempfile::tempdir().unwrap();
    let s = start(&prometheus.url, &full_flags(dir.path(), database));
    let url = |p: &str| format!("{}{p}", s.url);
    let mut c = Contract::new();

    // Judgements: each verdict of the scenario data, by name and inline.
    let judge = url("/api/v1/judge");
    let mut ids = Vec::new();
    for service in ["healthy", "errors", "quiet", "silent"] {
        let body = json!({"judge": "istio-kayenta-compatible", "args": args(service)});
        let a = Ask::post(judge.clone(), Some(TOKEN), &body).send();
        assert_eq!(a.status, 200, "{service}: {}", a.json());
        let v = c.check(Route::Judge, service, &a);
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    for (what, body) in [
        (
            "polling",
            json!({"judge": "istio-golden-signals", "args": args("healthy"),
                   "decide_after": "8m", "since": ""}),
        ),
        (
            "anchored",
            json!({"judge": "istio-golden-signals", "args": args("errors"),
                   "since": (chrono::Utc::now() - chrono::Duration::minutes(30)).to_rfc3339()}),
        ),
        (
            "inline",
            json!({"judge": inline_spec(None), "args": args("healthy")}),
        ),
    ] {
        let a = Ask::post(judge.clone(), Some(TOKEN), &body).send();
        assert_eq!(a.status, 200, "{what}: {}", a.json());
        c.check(Route::Judge, what, &a);
    }
    let judged = |body: Value| json!({"judge": "istio-kayenta-compatible", "args": body});
    let refused: [(&str, Option<&str>, Value, u16); 6] = [
        (
            "unknown judge",
            Some(TOKEN),
            json!({"judge": "nope", "args": {}}),
            404,
        ),
        (
            "missing arg",
            Some(TOKEN),
            judged(json!({"service": "healthy"})),
            400,
        ),
        (
            "NUL in an arg",
            Some(TOKEN),
            judged(json!({"service": "a\u{0}b"})),
            400,
        ),
        (
            "unknown field",
            Some(TOKEN),
            json!({"judge": "istio-kayenta-compatible", "args": args("healthy"), "x": 1}),
            400,
        ),
        (
            "bad since",
            Some(TOKEN),
            json!({"judge": "istio-kayenta-compatible", "args": args("healthy"),
                   "since": "yesterday"}),
            400,
        ),
        (
            "invalid PromQL inline",
            Some(TOKEN),
            json!({"judge": inline_spec(Some("sum(rate(")), "args": args("healthy")}),
            502,
        ),
    ];
    for (what, token, body, status) in refused {
        let a = Ask::post(judge.clone(), token, &body).send();
        assert_eq!(a.status, status, "{what}: {}", a.json());
        c.check(Route::Judge, what, &a);
    }
    for (what, body, content_type) in [
        ("not JSON", "{", "application/json"),
        ("not declared JSON", "{}", "text/plain"),
    ] {
        let a = Ask {
            method: "POST",
            url: judge.clone(),
            token: Some(TOKEN),
            body: Some((body.to_string(), content_type)),
        }
        .send();
        assert_eq!(a.status, 400, "{what}");
        c.check(Route::Judge, what, &a);
    }

    // What a judgement left behind.
    for id in &ids {
        let a = Ask::get(url(&format!("/api/v1/analyses/{id}")), Some(TOKEN)).send();
        assert_eq!(a.status, 200);
        assert_eq!(c.check(Route::Analysis, "stored", &a)["id"], id.as_str());
        let a = Ask::get(url(&format!("/reports/{id}")), Some(TOKEN)).send();
        assert_eq!(a.status, 200);
        c.check(Route::Report, "stored", &a);
    }
    for (route, prefix) in [
        (Route::Analysis, "/api/v1/analyses"),
        (Route::Report, "/reports"),
    ] {
        for (what, id, token, status) in [
            ("unknown id", "no-such-id", Some(TOKEN), 404),
            ("not UTF-8", "%FF%FE", Some(TOKEN), 400),
        ] {
            let a = Ask::get(url(&format!("{prefix}/{id}")), token).send();
            assert_eq!(a.status, status, "{route:?} {what}");
            c.check(route, what, &a);
        }
    }

    // The loaded judges and their budgets.
    let a = Ask::get(url("/api/v1/judges"), Some(TOKEN)).send();
    assert_eq!(a.status, 200);
    c.check(Route::Judges, "loaded", &a);
    let budgets = "/api/v1/budgets/istio-golden-signals";
    for (what, query, status) in [
        ("declared args", "?service=healthy&namespace=prod", 200),
        ("an undeclared arg", "?service=healthy&nope=1", 400),
    ] {
        let a = Ask::get(url(&format!("{budgets}{query}")), Some(TOKEN)).send();
        assert_eq!(a.status, status, "{what}: {}", a.json());
        c.check(Route::Budgets, what, &a);
    }
    let a = Ask::get(url("/api/v1/budgets/nope"), Some(TOKEN)).send();
    assert_eq!(a.status, 404);
    c.check(Route::Budgets, "unknown judge", &a);

    // The ledger, for its readers only.
    let audit = url("/api/v1/audit");
    if database.is_some() {
        for (what, query, token, status) in [
            ("a page", "?limit=1", Some(READER), 200),
            ("the next page", "?limit=1&after=1", Some(READER), 200),
            (
                "filtered",
                "?event=audit.&since=2020-01-01T00:00:00Z",
                Some(READER),
                200,
            ),
            ("limit 0", "?limit=0", Some(READER), 400),
            ("bad since", "?since=yesterday", Some(READER), 400),
            ("unknown parameter", "?nope=1", Some(READER), 400),
            ("NUL in promotion", "?promotion=a%00b", Some(READER), 400),
        ] {
            let a = Ask::get(format!("{audit}{query}"), token).send();
            assert_eq!(a.status, status, "audit {what}: {}", a.json());
            c.check(Route::Audit, what, &a);
        }
    } else {
        let a = Ask::get(audit, Some(READER)).send();
        assert_eq!(a.status, 404);
        c.check(Route::Audit, "no ledger", &a);
    }

    // Public routes, the document itself, and what no route serves.
    let a = Ask::get(url("/api/v1/openapi.json"), None).send();
    assert_eq!(a.status, 200);
    c.check(Route::OpenApi, "served", &a);
    assert_eq!(
        a.body,
        DOCUMENT.as_bytes(),
        "the served document is the committed one"
    );
    for (route, path) in [
        (Route::Healthz, "/healthz"),
        (Route::Readyz, "/readyz"),
        (Route::Metrics, "/metrics"),
    ] {
        let a = Ask::get(url(path), None).send();
        assert_eq!(a.status, 200, "{path}");
        c.check(route, "up", &a);
    }
    let a = Ask::get(url("/api/v1/nope"), Some(TOKEN)).send();
    assert_eq!(a.status, 404);
    assert_eq!(
        c.check_unrouted("unknown path", &a)["error"]["code"],
        "not_found"
    );
    let a = Ask {
        method: "DELETE",
        url: judge.clone(),
        token: Some(TOKEN),
        body: None,
    }
    .send();
    assert_eq!(a.status, 405);
    assert_eq!(
        c.check_unrouted("DELETE", &a)["error"]["code"],
        "method_not_allowed"
    );
    assert!(
        a.header("allow").is_some_and(|m| m.contains("POST")),
        "{:?}",
        a.headers
    );

    // Every route: a declared oversized body is refused before anything else, and a route
    // behind a token refuses no token, a wrong one and the other one.
    for route in Route::ALL {
        let path = route.path().replace("{id}", &ids[0]);
        let path = path.replace("{judge}", "istio-golden-signals");
        let method = route.method();
        let a = Ask {
            method: method.as_str(),
            url: url(&path),
            token: None,
            body: Some(("x".repeat(100_000), "application/json")),
        }
        .send();
        assert_eq!(a.status, 413, "{route:?}");
        c.check(route, "an oversized body", &a);
        let other = match route.access() {
            Access::Public => continue,
            Access::Judge => READER,
            Access::Reader => TOKEN,
        };
        let refusals = [
            ("no token", None, 401),
            ("a wrong token", Some("wrong"), 401),
            ("the other token", Some(other), 403),
        ];
        for (what, token, status) in refusals {
            let body = (method == axum::http::Method::POST)
                .then(|| (judged(args("healthy")).to_string(), "application/json"));
            let a = Ask {
                method: method.as_str(),
                url: url(&path),
                token,
                body,
            }
            .send();
            let status = if route == Route::Audit && database.is_none() {
                404 // no ledger: the route is off, whoever asks
            } else {
                status
            };
            assert_eq!(a.status, status, "{route:?} with {what}: {}", a.json());
            c.check(route, what, &a);
        }
    }
    // The database gone: what needs it is a 503, with the reason.
    if let Some((pg, _)) = &pg {
        pg.stop();
        let body = judged(args("healthy"));
        let a = Ask::post(judge.clone(), Some(TOKEN), &body).send();
        assert_eq!(a.status, 503, "{}", a.json());
        c.check(Route::Judge, "no database", &a);
        for (route, path, token) in [
            (
                Route::Analysis,
                format!("/api/v1/analyses/{}", ids[0]),
                TOKEN,
            ),
            (Route::Report, format!("/reports/{}", ids[0]), TOKEN),
            (Route::Audit, "/api/v1/audit".to_string(), READER),
        ] {
            let a = Ask::get(url(&path), Some(token)).send();
            assert_eq!(a.status, 503, "{route:?}: {}", a.json());
            c.check(route, "no database", &a);
        }
    }
    drop(s);

    // Prometheus unreachable, and a client that does not finish its body.
    let dead = format!("http://127.0.0.1:{}", common::prom::free_port());
    let mut flags = full_flags(dir.path(), None);
    flags.extend(["--client-timeout".to_string(), "1s".to_string()]);
    let d = start(&dead, &flags);
    let a = Ask::get(format!("{}/readyz", d.url), None).send();
    assert_eq!(a.status, 503);
    assert_eq!(
        c.check(Route::Readyz, "no Prometheus", &a)["error"]["code"],
        "not_ready"
    );
    let body = json!({"judge": "istio-kayenta-compatible", "args": args("healthy")});
    let a = Ask::post(format!("{}/api/v1/judge", d.url), Some(TOKEN), &body).send();
    assert_eq!(a.status, 503);
    c.check(Route::Judge, "no Prometheus", &a);
    let query = "?service=healthy&namespace=prod";
    let a = Ask::get(format!("{}{budgets}{query}", d.url), Some(TOKEN)).send();
    assert_eq!(a.status, 503, "{}", a.json());
    c.check(Route::Budgets, "no Prometheus", &a);
    let a = trickle(&d.url);
    assert_eq!(a.status, 408);
    c.check(Route::Judge, "a trickled body", &a);
    let a = Ask::get(format!("{}/api/v1/audit", d.url), Some(READER)).send();
    assert_eq!(a.status, 404);
    c.check(Route::Audit, "no ledger", &a);
    drop(d);

    // Over the connection limit, on any route, before any routing.
    let mut flags = full_flags(dir.path(), None);
    flags.extend(["--max-connections".to_string(), "1".to_string()]);
    let l = start(&dead, &flags);
    let held = std::net::TcpStream::connect(l.url.trim_start_matches("http://")).unwrap();
    for route in Route::ALL {
        let path = route.path().replace("{id}", "x").replace("{judge}", "x");
        let request = format!("{} {path} HTTP/1.1\r\nhost: x\r\n\r\n", route.method());
        // Until the server has taken the held connection, this one may be served.
        let deadline = Instant::now() + Duration::from_secs(10);
        let a = loop {
            let a = raw(&l.url, &request);
            if a.status == 503 || Instant::now() > deadline {
                break a;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(a.status, 503, "{route:?}");
        let v = c.check(route, "over the connection limit", &a);
        assert_eq!(v["error"]["code"], "too_many_connections");
    }
    drop(held);
    drop(l);

    // No answer within the deadline.
    let mut flags = full_flags(dir.path(), None);
    flags.extend(["--deadline".to_string(), "1ms".to_string()]);
    let t = start(&prometheus.url, &flags);
    let a = Ask::post(format!("{}/api/v1/judge", t.url), Some(TOKEN), &body).send();
    assert_eq!(a.status, 504, "{}", a.json());
    c.check(Route::Judge, "past the deadline", &a);
    let a = Ask::get(format!("{}{budgets}{query}", t.url), Some(TOKEN)).send();
    assert_eq!(a.status, 504, "{}", a.json());
    c.check(Route::Budgets, "past the deadline", &a);
    drop(t);

    eprintln!("statuses validated live against the document (of those it lists):");
    for route in Route::ALL {
        let key = format!("{} {}", route.method(), route.path());
        let seen = c.seen.get(&key).cloned().unwrap_or_default();
        let listed = documented_statuses(&c.doc, route);
        eprintln!("  {key:32} {seen:?} of {listed:?}");
        assert!(seen.contains(&200) || (route == Route::Audit && database.is_none()));
    }
    drop(pg);
}

#[test]
fn schemathesis_finds_nothing_against_a_live_server() {
    let Some(version) = schemathesis::installed() else {
        return;
    };
    let prometheus = shared_prometheus();
    let pg = postgres();
    let database = pg.as_ref().map(|(_, url)| url.as_str());
    let dir = tempfile::tempdir().unwrap();
    let s = start(&prometheus.url, &full_flags(dir.path(), database));

    // The document under test is the one the server serves.
    let a = Ask::get(format!("{}/api/v1/openapi.json", s.url), None).send();
    assert_eq!(a.status, 200);
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, &a.body).unwrap();
    let mut operations = Route::ALL.len() as u64;
    if database.is_none() {
        // Without a ledger the audit route is off (404 before any token check).
        operations -= 1;
        eprintln!("\n!!! schemathesis skips GET /api/v1/audit: no PostgreSQL for the ledger\n");
    }
    let run = schemathesis::run(&s.url, &schema, dir.path(), database.is_none());
    run.print(&version, database.is_some());
    run.assert_clean(operations);
    drop(s);
    drop(pg);
}
