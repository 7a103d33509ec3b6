//! Errors of the HTTP API: `{"error": {"code", "message", "field"?}}` with a precise status.

use axum::extract::rejection::PathRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::judging::JudgeError;
use crate::source;

/// An API error.
#[derive(Debug, Clone)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// For a person.
    pub message: String,
    /// The request field at fault, if any.
    pub field: Option<String>,
}

impl AppError {
    /// A 400 naming a field.
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        AppError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            field: field.map(str::to_string),
        }
    }

    /// Any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<JudgeError> for AppError {
    fn from(e: JudgeError) -> Self {
        match e {
            JudgeError::Args(a) => {
                let field = match &a {
                    crate::template::args::ArgError::NotSupplied(n) => Some(format!("args.{n}")),
                    crate::template::args::ArgError::Undeclared { name, .. } => {
                        Some(format!("args.{name}"))
                    }
                    _ => Some("args".into()),
                };
                AppError {
                    status: StatusCode::BAD_REQUEST,
                    code: "bad_args",
                    message: a.to_string(),
                    field,
                }
            }
            JudgeError::Since(message) => AppError {
                status: StatusCode::BAD_REQUEST,
                code: "bad_since",
                message: format!("since: {message}"),
                field: Some("since".into()),
            },
            JudgeError::Data { metric, message } => AppError {
                status: StatusCode::BAD_REQUEST,
                code: "bad_data",
                message: format!("metric {metric}: {message}"),
                field: Some(format!("metrics.{metric}")),
            },
            JudgeError::Source(s) => {
                let (status, code) = match &s {
                    source::Error::Timeout { .. } => {
                        (StatusCode::GATEWAY_TIMEOUT, "prometheus_timeout")
                    }
                    source::Error::Unreachable { .. } => {
                        (StatusCode::SERVICE_UNAVAILABLE, "prometheus_unreachable")
                    }
                    source::Error::Config(_) => {
                        (StatusCode::SERVICE_UNAVAILABLE, "prometheus_not_configured")
                    }
                    _ => (StatusCode::BAD_GATEWAY, "prometheus_error"),
                };
                AppError::new(status, code, s.to_string())
            }
        }
    }
}

impl From<PathRejection> for AppError {
    /// A path parameter that cannot be read (not UTF-8 once percent-decoded): 400 in the
    /// error shape, where axum would answer plain text.
    fn from(e: PathRejection) -> Self {
        AppError::bad_request("bad_path", e.body_text(), None)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        let mut resp = (self.status, Json(json!({ "error": body }))).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}
