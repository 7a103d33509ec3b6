//! `canary serve` with its results in a real PostgreSQL (Debian's server, started on a free
//! port): any replica answers any id, a replica killed mid-judgement loses nothing it
//! answered, the database stopped and started mid-run, migrations racing, retention, and bad
//! configuration (a malformed URL, a newer schema, a read-only database).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use canary_engine::store::postgres::{DatabaseUrl, PgStore};
use canary_engine::store::{Retention, StoreError};
use common::judge_data::{shared_prometheus, BASELINE, CANARY};
use common::postgres::Postgres;
use common::serve::{Serve, TOKEN};
use serde_json::{json, Value};

fn body(service: &str) -> Value {
    json!({"judge": "istio-kayenta-compatible", "args": {
        "service": service, "namespace": "prod", "canary_hash": CANARY, "stable_hash": BASELINE}})
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn judge(url: &str) -> (u16, Value) {
    rt().block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{url}/api/v1/judge"))
            .bearer_auth(TOKEN)
            .json(&body("healthy"))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    })
}

fn get(url: &str) -> (u16, String) {
    rt().block_on(async {
        let resp = reqwest::Client::new()
            .get(url)
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    })
}

fn serve_on(database_url: &str, extra: &[&str]) -> Serve {
    let mut args = vec!["--database-url", database_url];
    args.extend_from_slice(extra);
    Serve::start(&shared_prometheus().url, &args)
}

/// Poll `f` until it returns `Some`, or fail after `within`.
fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn any_replica_answers_any_id() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("replicas");
    let a = serve_on(&url, &[]);
    let b = serve_on(&url, &[]);
    for (made, other) in [(&a, &b), (&b, &a)] {
        let (status, v) = judge(&made.url);
        assert_eq!(status, 200, "{v}");
        let id = v["id"].as_str().expect("id");
        let (status, doc) = get(&format!("{}/api/v1/analyses/{id}", other.url));
        assert_eq!(status, 200, "{doc}");
        let stored: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(stored, v, "the other replica serves the very answer");
        let (status, page) = get(&format!("{}/reports/{id}", other.url));
        assert_eq!(status, 200);
        assert!(page.contains("<html") && page.contains(id), "{page}");
    }
    let (status, ready) = get(&format!("{}/readyz", a.url));
    assert_eq!(status, 200, "{ready}");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        ready["results"],
        json!({"store": "postgres", "status": "ok"})
    );
    assert_eq!(
        pg.sql("replicas", "SELECT count(*) FROM canary_judgements"),
        "2"
    );
    let (status, v) = get(&format!("{}/api/v1/analyses/not-an-id", b.url));
    assert_eq!(status, 404, "{v}");
}

#[test]
fn a_replica_killed_mid_judgement_loses_nothing_it_answered() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("killed");
    let a = serve_on(&url, &[]);
    let b = serve_on(&url, &[]);
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, answered) = (a.url.clone(), answered.clone());
            std::thread::spawn(move || {
                rt().block_on(async {
                    let client = reqwest::Client::new();
                    for _ in 0..200 {
                        let sent = client
                            .post(format!("{url}/api/v1/judge"))
                            .bearer_auth(TOKEN)
                            .json(&body("healthy"))
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        let Ok(resp) = sent else { break };
                        if resp.status() != 200 {
                            continue;
                        }
                        // A body cut off by the kill is not an answer.
                        if let Ok(v) = resp.json::<Value>().await {
                            if let Some(id) = v["id"].as_str() {
                                answered.lock().unwrap().push(id.to_string());
                            }
                        }
                    }
                })
            })
        })
        .collect();
    eventually(Duration::from_secs(30), "20 judgements answered", || {
        (answered.lock().unwrap().len() >= 20).then_some(())
    });
    a.signal("KILL");
    for c in clients {
        c.join().unwrap();
    }
    let ids = answered.lock().unwrap().clone();
    assert!(ids.len() >= 20);
    for id in &ids {
        let (status, doc) = get(&format!("{}/api/v1/analyses/{id}", b.url));
        assert_eq!(status, 200, "answered {id} lost after kill -9: {doc}");
    }
    eprintln!(
        "{} answered before kill -9, every one readable on the other replica",
        ids.len()
    );
}

#[test]
fn the_database_stopped_and_started_mid_run() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("restarts");
    let s = serve_on(&url, &[]);
    let (status, before) = judge(&s.url);
    assert_eq!(status, 200, "{before}");

    pg.stop();
    let (status, v) = judge(&s.url);
    assert_eq!(
        status, 503,
        "a result that cannot be kept is not a 200: {v}"
    );
    assert_eq!(v["error"]["code"], "database_unavailable", "{v}");
    let (status, ready) = eventually(Duration::from_secs(15), "/readyz says 503", || {
        let r = get(&format!("{}/readyz", s.url));
        (r.0 == 503).then_some(r)
    });
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(status, 503);
    assert_eq!(ready["prometheus"], "ok", "{ready}");
    assert!(
        ready["results"]["status"]
            .as_str()
            .is_some_and(|s| s.contains("database unavailable")),
        "{ready}"
    );
    assert!(
        !ready.to_string().contains("pw-not-to-be-logged"),
        "{ready}"
    );

    pg.start_server();
    let (_, after) = eventually(Duration::from_secs(15), "judging again", || {
        let r = judge(&s.url);
        (r.0 == 200).then_some(r)
    });
    for v in [&before, &after] {
        let id = v["id"].as_str().unwrap();
        let (status, doc) = get(&format!("{}/api/v1/analyses/{id}", s.url));
        assert_eq!(status, 200, "{doc}");
    }
}

#[test]
fn migrations_racing_run_once() {
    let Some(pg) = Postgres::start() else { return };
    let url: DatabaseUrl = pg.database("racing").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opened = rt.block_on(async {
        let opens = (0..8).map(|_| PgStore::open(&url, 2, Retention::default()));
        futures_util::future::join_all(opens).await
    });
    for o in &opened {
        assert!(o.is_ok(), "{:?}", o.as_ref().err());
    }
    assert_eq!(
        pg.sql(
            "racing",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM canary_schema_migrations"
        ),
        "1,2"
    );
}

#[test]
fn a_newer_schema_is_refused_at_start() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("newer");
    let rt = rt();
    let parsed: DatabaseUrl = url.parse().unwrap();
    rt.block_on(PgStore::open(&parsed, 1, Retention::default()))
        .map_err(|e| e.to_string())
        .unwrap();
    pg.sql(
        "newer",
        "INSERT INTO canary_schema_migrations (version, name) VALUES (7, 'from the future')",
    );
    match rt.block_on(PgStore::open(&parsed, 1, Retention::default())) {
        Err(StoreError::NewerSchema { found: 7, known: 2 }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    let (code, _, stderr) = common::canary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--prometheus",
        &shared_prometheus().url,
        "--database-url",
        &url,
    ]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("version 7"), "{stderr}");
    assert!(stderr.contains("upgrade canary-engine"), "{stderr}");
    assert!(!stderr.contains("pw-not-to-be-logged"), "{stderr}");
}

#[test]
fn a_read_only_database_answers_503() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("readonly");
    let parsed: DatabaseUrl = url.parse().unwrap();
    rt().block_on(PgStore::open(&parsed, 1, Retention::default()))
        .map_err(|e| e.to_string())
        .unwrap();
    pg.sql(
        "postgres",
        "ALTER DATABASE readonly SET default_transaction_read_only = on",
    );
    let s = serve_on(&url, &[]);
    let (status, v) = judge(&s.url);
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "database_read_only", "{v}");
    let (status, ready) = get(&format!("{}/readyz", s.url));
    assert_eq!(status, 503, "{ready}");
    assert!(ready.contains("read-only"), "{ready}");
    let (status, v) = get(&format!("{}/healthz", s.url));
    assert_eq!(status, 200, "still alive: {v}");
}

#[test]
fn retention_by_count_and_by_age() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("retention");
    let s = serve_on(&url, &["--keep-results", "2", "--prune-interval", "200ms"]);
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let (status, v) = judge(&s.url);
            assert_eq!(status, 200, "{v}");
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    eventually(Duration::from_secs(10), "only the newest 2 kept", || {
        (pg.sql("retention", "SELECT count(*) FROM canary_judgements") == "2").then_some(())
    });
    for (i, id) in ids.iter().enumerate() {
        let (status, _) = get(&format!("{}/api/v1/analyses/{id}", s.url));
        assert_eq!(status, if i < 2 { 404 } else { 200 }, "result {i}");
    }
    drop(s);

    let s = serve_on(&url, &["--keep-for", "2s", "--prune-interval", "200ms"]);
    let (status, v) = judge(&s.url);
    assert_eq!(status, 200, "{v}");
    let id = v["id"].as_str().unwrap();
    assert_eq!(get(&format!("{}/api/v1/analyses/{id}", s.url)).0, 200);
    eventually(Duration::from_secs(10), "expired and deleted", || {
        let gone = get(&format!("{}/api/v1/analyses/{id}", s.url)).0 == 404;
        let deleted = pg.sql("retention", "SELECT count(*) FROM canary_judgements") == "0";
        (gone && deleted).then_some(())
    });
}

#[test]
fn a_malformed_database_url_names_the_flag_and_hides_the_password() {
    for bad in [
        "postgres://canary:s3cret-pw@db:notaport/results",
        "postgres://canary:s3cret-pw@db:5432/results?sslmode=sometimes",
    ] {
        let (code, _, stderr) = common::canary(&[
            "serve",
            "--prometheus",
            "http://127.0.0.1:9",
            "--database-url",
            bad,
        ]);
        assert_eq!(code, 64, "{bad}: {stderr}");
        assert!(stderr.contains("--database-url"), "{stderr}");
        assert!(!stderr.contains("s3cret-pw"), "{stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["serve", "--help"])
        .env("CANARY_DATABASE_URL", "postgres://u:s3cret-pw@h/db")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--database-url"), "{help}");
    assert!(
        !help.contains("s3cret-pw"),
        "--help shows env values: {help}"
    );
}

fn get_as(url: &str, token: Option<&str>) -> (u16, Value) {
    rt().block_on(async {
        let mut req = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(20));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    })
}

#[test]
fn the_ledger_api_is_read_only_and_for_its_readers_only() {
    use canary_engine::audit::{Entry, Ledger};
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("ledgerapi");
    rt().block_on(async {
        let ledger = Ledger::open(&url).await.map_err(|e| e.to_string()).unwrap();
        for (promotion, event) in [
            ("shop/checkout", "deployment.started"),
            ("shop/cart", "deployment.started"),
            ("shop/checkout", "deployment.promoted"),
        ] {
            let e = Entry::new(promotion, json!({"event": event}));
            ledger.append(&e).await.map_err(|e| e.to_string()).unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let reader_file = dir.path().join("reader");
    std::fs::write(&reader_file, "reader-token-42\n").unwrap();
    let reader = Some("reader-token-42");
    let s = Serve::start(
        &shared_prometheus().url,
        &[
            "--audit-url",
            &url,
            "--reader-token-file",
            reader_file.to_str().unwrap(),
        ],
    );
    let api = format!("{}/api/v1/audit", s.url);
    let (status, v) = get_as(&api, None);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{v}"
    );
    let (status, v) = get_as(&api, Some(TOKEN));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let judged = rt().block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/judge", s.url))
            .bearer_auth("reader-token-42")
            .json(&body("healthy"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(judged, 403, "the readers' token cannot judge");

    let (status, page) = get_as(&format!("{api}?limit=2"), reader);
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{page}");
    assert_eq!(entries[0]["event"], "deployment.created");
    let after = page["next_after"].as_i64().expect("a next page");
    let (_, rest) = get_as(&format!("{api}?limit=100&after={after}"), reader);
    let rest = rest["entries"].as_array().unwrap().clone();
    assert!(
        rest.iter().any(|e| e["event"] == "deployment.promoted"),
        "{rest:?}"
    );
    let (_, only) = get_as(
        &format!("{api}?promotion=checkout&event=deployment.promoted"),
        reader,
    );
    assert_eq!(only["entries"].as_array().unwrap().len(), 1, "{only}");
    let (status, v) = get_as(&format!("{api}?limit=0"), reader);
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("limit")),
        "{v}"
    );

    // Every read is in the ledger, and the chain still holds.
    assert_eq!(
        pg.sql(
            "ledgerapi",
            "SELECT count(*) FROM canary_audit WHERE event = 'audit.accessed'"
        ),
        "3"
    );
    let (code, out, err) = common::canary(&["audit", &url, "--verify"]);
    assert_eq!(code, 0, "{out}{err}");

    let plain = serve_on(&pg.database("noledger"), &[]);
    let (status, v) = get_as(&format!("{}/api/v1/audit", plain.url), reader);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("audit_disabled")),
        "{v}"
    );
}
