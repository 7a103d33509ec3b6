//! Flags that say how to reach Prometheus, shared by every command that queries it.

use std::path::PathBuf;

use clap::Args;

use crate::source::PrometheusConfig;

use super::CliError;

/// How to reach Prometheus (or Thanos, Mimir, Cortex).
#[derive(Debug, Clone, Args)]
pub struct PrometheusArgs {
    /// Prometheus base URL, used by metrics that set no `address` (falls back to Argo's
    /// ARGO_ROLLOUTS_PROMETHEUS_ADDRESS).
    #[arg(long = "prometheus", env = "CANARY_PROMETHEUS_URL", value_name = "URL")]
    pub url: Option<String>,
    /// File holding a bearer token sent with every query.
    #[arg(long, env = "CANARY_PROMETHEUS_BEARER_TOKEN_FILE", value_name = "FILE")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// Basic auth as USER:PASSWORD (prefer the environment variable to keep it out of `ps`).
    #[arg(
        long,
        env = "CANARY_PROMETHEUS_BASIC_AUTH",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    pub prometheus_basic_auth: Option<String>,
    /// Tenant for Mimir/Cortex/Thanos, sent as `X-Scope-OrgID`.
    #[arg(long, env = "CANARY_PROMETHEUS_TENANT", value_name = "TENANT")]
    pub prometheus_tenant: Option<String>,
    /// Extra header on every query, as NAME=VALUE (repeatable).
    #[arg(long = "prometheus-header", value_name = "NAME=VALUE")]
    pub prometheus_headers: Vec<String>,
    /// Skip TLS certificate verification (testing only).
    #[arg(long, env = "CANARY_PROMETHEUS_INSECURE")]
    pub prometheus_insecure: bool,
    /// Extra CA certificate (PEM) to trust for Prometheus.
    #[arg(long, env = "CANARY_PROMETHEUS_CA_FILE", value_name = "FILE")]
    pub prometheus_ca_file: Option<PathBuf>,
    /// Queries sent to Prometheus at once, at most; more wait (within their timeout) so a
    /// burst of judgements cannot flood Prometheus. 0: no limit.
    #[arg(long, env = "CANARY_PROMETHEUS_MAX_IN_FLIGHT", default_value_t = 64)]
    pub prometheus_max_in_flight: usize,
    /// The largest Prometheus answer read, in MiB; a larger one (a query matching every
    /// series, a proxy's error page gone wrong) is an error, not held in memory.
    #[arg(long, env = "CANARY_PROMETHEUS_MAX_ANSWER_MIB", default_value_t = 16)]
    pub prometheus_max_answer_mib: usize,
}

impl PrometheusArgs {
    /// The source configuration these flags describe.
    pub fn config(&self) -> Result<PrometheusConfig, CliError> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p)
                .map_err(|e| CliError::usage(format!("cannot read {what} {}: {e}", p.display())))
        };
        let mut headers = Vec::new();
        for h in &self.prometheus_headers {
            let (k, v) = h.split_once('=').ok_or_else(|| {
                CliError::usage(format!("--prometheus-header {h:?} is not NAME=VALUE"))
            })?;
            headers.push((k.trim().to_string(), v.to_string()));
        }
        if let Some(t) = &self.prometheus_tenant {
            headers.push(("X-Scope-OrgID".into(), t.clone()));
        }
        let basic_auth = match &self.prometheus_basic_auth {
            None => None,
            Some(s) => {
                let (u, p) = s.split_once(':').ok_or_else(|| {
                    CliError::usage("--prometheus-basic-auth must be USER:PASSWORD")
                })?;
                Some((u.to_string(), p.to_string()))
            }
        };
        let bearer_token = match &self.prometheus_bearer_token_file {
            None => None,
            Some(p) => Some(
                String::from_utf8(read(p, "bearer token file")?)
                    .map_err(|_| CliError::usage("bearer token file is not UTF-8"))?
                    .trim()
                    .to_string(),
            ),
        };
        // Argo's controller reads its default address from this variable; honour it too, so
        // a pipeline configured for Argo needs nothing more.
        let url = self
            .url
            .clone()
            .or_else(|| std::env::var("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS").ok())
            .filter(|u| !u.is_empty());
        if let Some(u) = &url {
            match url::Url::parse(u) {
                Ok(parsed) if parsed.has_host() => {}
                _ => return Err(CliError::usage(format!("--prometheus {u:?} is not a URL"))),
            }
        }
        Ok(PrometheusConfig {
            url,
            bearer_token,
            basic_auth,
            headers,
            insecure: self.prometheus_insecure,
            max_in_flight: self.prometheus_max_in_flight,
            max_answer_bytes: Some(self.prometheus_max_answer_mib.max(1) << 20),
            ca_pem: match &self.prometheus_ca_file {
                None => None,
                Some(p) => Some(read(p, "CA file")?),
            },
        })
    }
}
