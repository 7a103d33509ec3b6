//! Deploy policies: before `canary promote` changes any weight it can ask a policy engine
//! (OPA's data API) whether the deploy may go ahead, given the error budgets of the
//! promotion's SLOs. The shipped policy is `policies/deploy-gate.rego`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

/// What to do when the policy engine cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailMode {
    /// Do not deploy (the default: a gate nobody can ask is closed).
    Closed,
    /// Deploy anyway, recording `policy.bypassed`.
    Open,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The deploy may go ahead.
    pub allow: bool,
    /// Why not (or, when allowed under an exception, what was excused).
    pub deny: Vec<String>,
    /// The exception that allowed a denied deploy, if any.
    pub exception: Option<Value>,
}

/// Why the policy engine could not be asked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("policy engine {url}: {message}")]
pub struct PolicyError {
    /// Where it was asked.
    pub url: String,
    /// What went wrong.
    pub message: String,
}

#[derive(Deserialize)]
struct Answer {
    result: Option<Value>,
}

/// Ask the OPA data API at `url` (e.g. `http://opa:8181/v1/data/canary/deploy`) about
/// `input`; the document there must have `allow` (bool) and may have `deny` (strings) and
/// `exception`.
pub async fn ask(url: &str, input: &Value, timeout: Duration) -> Result<Verdict, PolicyError> {
    let fail = |message: String| PolicyError {
        url: url.to_string(),
        message,
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let resp = client
        .post(url)
        .json(&json!({ "input": input }))
        .send()
        .await
        .map_err(|e| fail(format!("unreachable: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(fail(format!(
            "HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        )));
    }
    let answer: Answer = resp
        .json()
        .await
        .map_err(|e| fail(format!("not an OPA data API answer: {e}")))?;
    let Some(result) = answer.result else {
        return Err(fail(
            "no policy document at this path (OPA answered without `result`): check the URL \
             and that the policy is loaded"
                .into(),
        ));
    };
    let allow = result
        .get("allow")
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            fail(format!(
                "the policy's answer has no boolean `allow`: {result}"
            ))
        })?;
    let deny = result
        .get("deny")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Verdict {
        allow,
        deny,
        exception: result.get("exception").filter(|e| !e.is_null()).cloned(),
    })
}
