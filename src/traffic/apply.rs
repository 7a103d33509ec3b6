//! Applying a VirtualService change through the Kubernetes API (the `kube` crate).
//!
//! Read, compute the desired object with a pure function, write it back carrying the
//! `resourceVersion` we read (optimistic concurrency). On 409 Conflict someone else changed
//! the object: read again, recompute, retry. 429, 5xx, timeouts and connection errors are
//! retried with backoff until the deadline; 404 and 403 are not. After a write, the object is
//! read back and the change verified.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;
use tokio::time::Instant;

use super::TrafficError;

/// Which VirtualService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServiceRef {
    /// Namespace of the VirtualService.
    pub namespace: String,
    /// Name of the VirtualService.
    pub name: String,
    /// `networking.istio.io` version: `v1` (default), `v1beta1` or `v1alpha3`.
    pub version: String,
}

/// Why the Kubernetes API call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// The VirtualService does not exist.
    #[error("VirtualService {0} not found")]
    NotFound(String),
    /// Not allowed (RBAC).
    #[error("not allowed to {action} VirtualService {name}: {message}")]
    Forbidden {
        /// get or update.
        action: &'static str,
        /// namespace/name.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// The change itself is impossible (route or destination problems).
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    /// Retries ran out before the deadline.
    #[error("gave up after {attempts} attempts in {seconds:.1} s: {last}")]
    Deadline {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        seconds: f64,
        /// The last failure.
        last: String,
    },
    /// Another API error.
    #[error("Kubernetes API error {code}: {message}")]
    Api {
        /// HTTP status.
        code: u16,
        /// What the API server said (its Status message).
        message: String,
    },
    /// Read back after writing, the object is not what was written.
    #[error("VirtualService {0} did not keep the change (read back differs)")]
    NotVerified(String),
}

/// Talks to one VirtualService.
#[derive(Clone)]
pub struct Applier {
    api: Api<DynamicObject>,
    /// The VirtualService.
    pub target: VirtualServiceRef,
    /// Give up retrying after this long.
    pub deadline: Duration,
    /// Each API call may take this long.
    pub call_timeout: Duration,
}

enum Failure {
    Retry(String),
    Conflict,
    Fatal(ApplyError),
}

impl Applier {
    /// An applier for `target` through `client`.
    pub fn new(client: kube::Client, target: VirtualServiceRef) -> Self {
        let gvk = GroupVersionKind::gvk("networking.istio.io", &target.version, "VirtualService");
        let ar = ApiResource::from_gvk(&gvk);
        Applier {
            api: Api::namespaced_with(client, &target.namespace, &ar),
            target,
            deadline: Duration::from_secs(60),
            call_timeout: Duration::from_secs(10),
        }
    }

    fn label(&self) -> String {
        format!("{}/{}", self.target.namespace, self.target.name)
    }

    fn classify(&self, action: &'static str, e: kube::Error) -> Failure {
        match e {
            kube::Error::Api(s) => match s.code {
                404 => Failure::Fatal(ApplyError::NotFound(self.label())),
                403 | 401 => Failure::Fatal(ApplyError::Forbidden {
                    action,
                    name: self.label(),
                    message: s.message.clone(),
                }),
                409 => Failure::Conflict,
                429 | 500..=599 => Failure::Retry(format!("HTTP {}: {}", s.code, s.message)),
                code => Failure::Fatal(ApplyError::Api {
                    code,
                    message: s.message.clone(),
                }),
            },
            other => Failure::Retry(other.to_string()),
        }
    }

    async fn call<T>(
        &self,
        action: &'static str,
        f: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.call_timeout, f).await {
            Err(_) => Err(Failure::Retry(format!(
                "no answer within {} ms",
                self.call_timeout.as_millis()
            ))),
            Ok(Err(e)) => Err(self.classify(action, e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Read the object as JSON (retrying transient failures until the deadline).
    pub async fn get(&self) -> Result<Value, ApplyError> {
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.call("get", self.api.get(&self.target.name)).await {
                Ok(o) => {
                    return serde_json::to_value(o).map_err(|e| ApplyError::Api {
                        code: 0,
                        message: e.to_string(),
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(why)) => {
                    if start.elapsed() >= self.deadline {
                        return Err(ApplyError::Deadline {
                            attempts,
                            seconds: start.elapsed().as_secs_f64(),
                            last: why,
                        });
                    }
                    tracing::warn!(virtual_service = %self.label(), error = %why, "read failed; retrying");
                    backoff(attempts).await;
                }
                Err(Failure::Conflict) => backoff(attempts).await,
            }
        }
    }

    /// Apply `change` (computed from a fresh read each attempt; `None` means nothing to do)
    /// and verify it by reading back. Returns the object as written.
    pub async fn update<F>(&self, change: F) -> Result<Value, ApplyError>
    where
        F: Fn(&Value) -> Result<Option<Value>, TrafficError>,
    {
        let start = Instant::now();
        let mut attempts = 0;
        let mut last = String::new();
        while start.elapsed() < self.deadline || attempts == 0 {
            attempts += 1;
            let current = self.get().await?;
            let Some(desired) = change(&current)? else {
                return Ok(current);
            };
            let obj: DynamicObject =
                serde_json::from_value(desired.clone()).map_err(|e| ApplyError::Api {
                    code: 0,
                    message: format!("cannot encode the VirtualService: {e}"),
                })?;
            match self
                .call(
                    "update",
                    self.api.replace(&self.target.name, &write_params(), &obj),
                )
                .await
            {
                Ok(_) => {
                    let back = self.get().await?;
                    return match change(&back)? {
                        None => Ok(back),
                        Some(_) => Err(ApplyError::NotVerified(self.label())),
                    };
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Conflict) => {
                    last = "409 Conflict: the object changed since it was read".into();
                    tracing::info!(virtual_service = %self.label(), "conflict: re-reading and retrying");
                }
                Err(Failure::Retry(why)) => {
                    tracing::warn!(virtual_service = %self.label(), error = %why, "update failed; retrying");
                    last = why;
                    backoff(attempts).await;
                }
            }
        }
        Err(ApplyError::Deadline {
            attempts,
            seconds: start.elapsed().as_secs_f64(),
            last,
        })
    }
}

/// The field manager our writes are recorded under in `managedFields`.
pub const FIELD_MANAGER: &str = "canary-engine";

fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// 100 ms, 200 ms, 400 ms … capped at 2 s.
async fn backoff(attempt: u32) {
    let ms = 100u64 << attempt.min(5).saturating_sub(1);
    tokio::time::sleep(Duration::from_millis(ms.min(2000))).await;
}
