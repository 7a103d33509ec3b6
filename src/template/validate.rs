//! Argo's validation rules for resolved metrics, plus the checks Argo only makes at run time.
//!
//! The rules of `ValidateMetric` in Argo's `utils/analysis/factory.go` are kept with their
//! messages; on top, what Argo discovers only when a measurement errors in the cluster — an
//! unparseable condition or duration, a body on a GET, a provider we cannot run — is reported
//! here, before anything runs.

use crate::condition;

use super::argo::{parse_duration, Metric};

/// A problem with one field of a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Field path relative to the metric, JSON-pointer style (`provider/web/body`), or empty.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.into(),
        message: message.into(),
    }
}

/// Validate one resolved metric. Returns every problem found, not only the first.
pub fn metric(m: &Metric) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let count = m.count.unwrap_or(0);
    let failure_limit = m.failure_limit();
    let success_limit = m.consecutive_success_limit();
    let inconclusive_limit = m.inconclusive_limit();

    if success_limit < 0 {
        out.push(problem(
            "consecutiveSuccessLimit",
            "consecutiveSuccessLimit must be >= 0",
        ));
    }
    if failure_limit < -1 {
        out.push(problem(
            "failureLimit",
            "failureLimit must be >= 0, or -1 to be disabled",
        ));
    }
    if success_limit == 0 && failure_limit == -1 {
        out.push(problem(
            "failureLimit",
            "failureLimit and consecutiveSuccessLimit cannot both be disabled",
        ));
    }
    if inconclusive_limit < 0 {
        out.push(problem(
            "inconclusiveLimit",
            "inconclusiveLimit must be >= 0",
        ));
    }
    if m.consecutive_error_limit.is_some_and(|l| l < 0) {
        out.push(problem(
            "consecutiveErrorLimit",
            "consecutiveErrorLimit must be >= 0",
        ));
    }
    if count < 0 {
        out.push(problem("count", "count must be >= 0"));
    }
    if count > 0 {
        if success_limit >= 0 && failure_limit >= 0 {
            if count < failure_limit + success_limit {
                out.push(problem(
                    "count",
                    format!(
                        "count ({count}) must be >= failureLimit + consecutiveSuccessLimit \
                         ({failure_limit} + {success_limit}) if both >= 0"
                    ),
                ));
            }
        } else if success_limit >= 0 && failure_limit < 0 && count < success_limit {
            out.push(problem("count", "count must be >= consecutiveSuccessLimit"));
        }
        if count < inconclusive_limit {
            out.push(problem("count", "count must be >= inconclusiveLimit"));
        }
    }
    if count > 1 && m.interval.is_none() {
        out.push(problem(
            "count",
            "interval must be specified when count > 1",
        ));
    }
    if let Some(i) = &m.interval {
        if let Err(e) = parse_duration(i) {
            out.push(problem("interval", format!("invalid interval string: {e}")));
        }
    }
    if let Some(d) = &m.initial_delay {
        if let Err(e) = parse_duration(d) {
            out.push(problem(
                "initialDelay",
                format!("invalid initialDelay string: {e}"),
            ));
        }
    }
    for (field, cond) in [
        ("successCondition", &m.success_condition),
        ("failureCondition", &m.failure_condition),
    ] {
        if !cond.is_empty() {
            if let Err(e) = condition::compile(cond) {
                out.push(problem(field, format!("does not compile: {e}")));
            }
        }
    }
    provider(m, &mut out);
    out
}

fn provider(m: &Metric, out: &mut Vec<FieldProblem>) {
    let p = &m.provider;
    let mut names: Vec<&str> = Vec::new();
    if p.prometheus.is_some() {
        names.push("prometheus");
    }
    if p.web.is_some() {
        names.push("web");
    }
    names.extend(p.other.keys().map(String::as_str));
    match names.len() {
        0 => {
            out.push(problem("provider", "no provider specified"));
            return;
        }
        1 => {}
        _ => {
            out.push(problem(
                "provider",
                format!("multiple providers specified ({})", names.join(", ")),
            ));
            return;
        }
    }
    if let Some(other) = p.other.keys().next() {
        out.push(problem(
            &format!("provider/{other}"),
            format!(
                "provider {other:?} is not supported by canary-engine \
                 (supported: prometheus, web)"
            ),
        ));
    }
    if let Some(prom) = &p.prometheus {
        if prom.query.trim().is_empty() {
            out.push(problem("provider/prometheus/query", "query is empty"));
        }
        if prom.timeout.is_some_and(|t| t < 0) {
            out.push(problem(
                "provider/prometheus/timeout",
                "prometheus timeout should not be negative",
            ));
        }
        if !prom.address.is_empty() {
            match url::Url::parse(&prom.address) {
                Ok(u) if u.has_host() => {}
                _ => out.push(problem(
                    "provider/prometheus/address",
                    "prometheus address is not in url format",
                )),
            }
        }
        if let Some(r) = &prom.range_query {
            for (field, expr) in [("start", &r.start), ("end", &r.end)] {
                if let Err(e) = condition::eval_time(expr) {
                    out.push(problem(
                        &format!("provider/prometheus/rangeQuery/{field}"),
                        format!("failed to parse rangeQuery.{field} as time: {e}"),
                    ));
                }
            }
            if let Err(e) = parse_duration(&r.step) {
                out.push(problem(
                    "provider/prometheus/rangeQuery/step",
                    format!("failed to parse rangeQuery.step as duration: {e}"),
                ));
            }
        }
        auth(
            &prom.authentication,
            "provider/prometheus/authentication",
            out,
        );
    }
    if let Some(web) = &p.web {
        let method = web.method.as_deref().unwrap_or("GET");
        if !matches!(method, "GET" | "POST" | "PUT") {
            out.push(problem(
                "provider/web/method",
                format!("method {method:?} is not one of GET, POST, PUT"),
            ));
        }
        if !web.body.is_empty() && web.json_body.is_some() {
            out.push(problem(
                "provider/web/body",
                "use either Body or JSONBody; both cannot exists for WebMetric payload",
            ));
        } else if (!web.body.is_empty() || web.json_body.is_some()) && method == "GET" {
            out.push(problem(
                "provider/web/method",
                "Body/JSONBody can only be used with POST or PUT WebMetric Method types",
            ));
        }
        match url::Url::parse(&web.url) {
            Ok(u) if u.has_host() => {}
            _ => out.push(problem(
                "provider/web/url",
                format!("{:?} is not an absolute URL", web.url),
            )),
        }
        if let Err(e) = condition::JsonPath::parse(&web.json_path) {
            out.push(problem("provider/web/jsonPath", e.to_string()));
        }
        auth(&web.authentication, "provider/web/authentication", out);
    }
}

fn auth(a: &super::argo::Authentication, at: &str, out: &mut Vec<FieldProblem>) {
    if let Some(b) = &a.basic_auth {
        if b.username.is_empty() && !b.password.is_empty() {
            out.push(problem(
                &format!("{at}/basicAuth/username"),
                "missing mandatory parameter in metric for basic auth setup: username",
            ));
        } else if !b.username.is_empty() && b.password.is_empty() {
            out.push(problem(
                &format!("{at}/basicAuth/password"),
                "missing mandatory parameter in metric for basic auth setup: password",
            ));
        }
    }
    for (name, v) in [("sigv4", &a.sigv4), ("oauth2", &a.oauth2)] {
        if v.as_ref()
            .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        {
            out.push(problem(
                &format!("{at}/{name}"),
                format!(
                    "{name} authentication is not supported by canary-engine; use basic auth \
                     or the engine's --prometheus-bearer-token-file"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(json: serde_json::Value) -> Vec<FieldProblem> {
        metric(&serde_json::from_value(json).unwrap())
    }

    fn prom() -> serde_json::Value {
        serde_json::json!({"prometheus": {"query": "up"}})
    }

    #[test]
    fn argo_rules() {
        assert_eq!(
            m(serde_json::json!({"name": "a", "provider": prom()})),
            vec![]
        );
        let p = m(serde_json::json!({"name": "a", "count": 3, "provider": prom()}));
        assert_eq!(p[0].message, "interval must be specified when count > 1");
        let p = m(
            serde_json::json!({"name": "a", "count": 2, "interval": "1m",
            "failureLimit": 2, "consecutiveSuccessLimit": 1, "provider": prom()}),
        );
        assert!(
            p[0].message
                .starts_with("count (2) must be >= failureLimit"),
            "{p:?}"
        );
        let p = m(serde_json::json!({"name": "a", "failureLimit": -1, "provider": prom()}));
        assert!(p[0].message.contains("cannot both be disabled"), "{p:?}");
        let p = m(serde_json::json!({"name": "a", "interval": "often", "provider": prom()}));
        assert_eq!(p[0].field, "interval");
    }

    #[test]
    fn providers() {
        let p = m(serde_json::json!({"name": "a", "provider": {}}));
        assert_eq!(p[0].message, "no provider specified");
        let p = m(serde_json::json!({"name": "a", "provider":
            {"prometheus": {"query": "up"}, "web": {"url": "http://x"}}}));
        assert!(p[0].message.starts_with("multiple providers"), "{p:?}");
        let p = m(serde_json::json!({"name": "a", "provider": {"datadog": {"query": "x"}}}));
        assert!(p[0].message.contains("not supported"), "{p:?}");
        let p = m(serde_json::json!({"name": "a", "provider":
            {"web": {"url": "http://x", "body": "{}"}}}));
        assert!(p[0].message.contains("POST or PUT"), "{p:?}");
    }

    #[test]
    fn conditions_must_compile() {
        let p =
            m(serde_json::json!({"name": "a", "successCondition": "result >", "provider": prom()}));
        assert_eq!(p[0].field, "successCondition");
    }
}
