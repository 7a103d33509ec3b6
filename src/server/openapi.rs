//! The API's contract as data: every route the router serves ([`Route::ALL`]), the OpenAPI
//! 3.1 document describing them ([`DOCUMENT`], served at `GET /api/v1/openapi.json`), and the
//! JSON answers for what no route serves (404) or a route does not allow (405).
//!
//! The router is built from [`Route::ALL`] and nothing else, so a route cannot be served
//! without being listed here; `tests/serve_openapi.rs` checks that the document lists
//! exactly these operations, with the access each one has and every status the server's
//! source can answer for each, validates live answers against the document's schemas, and
//! runs schemathesis against a live server.

use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};

use super::error::AppError;
use super::AppState;

/// The OpenAPI 3.1 document of `canary serve` (`src/server/openapi.json`).
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: probes, metrics, the document itself.
    Public,
    /// The judge token (`--token-file`), when one is configured.
    Judge,
    /// The ledger readers' token (`--reader-token-file`) only.
    Reader,
}

/// One operation the router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/v1/judge`.
    Judge,
    /// `GET /api/v1/analyses/{id}`.
    Analysis,
    /// `GET /api/v1/judges`.
    Judges,
    /// `GET /api/v1/budgets/{judge}`.
    Budgets,
    /// `GET /reports/{id}`.
    Report,
    /// `GET /api/v1/audit`.
    Audit,
    /// `GET /api/v1/openapi.json`.
    OpenApi,
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `GET /metrics`.
    Metrics,
}

impl Route {
    /// Every route, in the order the document lists them.
    pub const ALL: [Route; 10] = [
        Route::Judge,
        Route::Analysis,
        Route::Judges,
        Route::Budgets,
        Route::Report,
        Route::Audit,
        Route::OpenApi,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
    ];

    /// Its path, in the router's (and OpenAPI's) `{param}` syntax.
    pub fn path(self) -> &'static str {
        match self {
            Route::Judge => "/api/v1/judge",
            Route::Analysis => "/api/v1/analyses/{id}",
            Route::Judges => "/api/v1/judges",
            Route::Budgets => "/api/v1/budgets/{judge}",
            Route::Report => "/reports/{id}",
            Route::Audit => "/api/v1/audit",
            Route::OpenApi => "/api/v1/openapi.json",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
        }
    }

    /// Its method (a `GET` route also answers `HEAD`, as HTTP requires).
    pub fn method(self) -> Method {
        match self {
            Route::Judge => Method::POST,
            _ => Method::GET,
        }
    }

    /// Who may call it.
    pub fn access(self) -> Access {
        match self {
            Route::Judge | Route::Analysis | Route::Judges | Route::Budgets | Route::Report => {
                Access::Judge
            }
            Route::Audit => Access::Reader,
            Route::OpenApi | Route::Healthz | Route::Readyz | Route::Metrics => Access::Public,
        }
    }

    /// `handler` on this route's method only.
    pub(super) fn on<H, T>(self, handler: H) -> MethodRouter<AppState>
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = if self.method() == Method::POST {
            MethodFilter::POST
        } else {
            MethodFilter::GET
        };
        axum::routing::on(filter, handler)
    }
}

/// `GET /api/v1/openapi.json`: the document, unauthenticated like `/healthz` (it describes
/// the API, it holds no data).
pub(super) async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}

/// The longest part of a request path echoed in a 404.
const ECHO: usize = 200;

/// No route has this path: 404 in the error shape (axum's own answer is an empty body).
pub(super) async fn not_found(req: Request) -> AppError {
    let path = req.uri().path();
    let path = match path.char_indices().nth(ECHO) {
        Some((i, _)) => format!("{}…", &path[..i]),
        None => path.to_string(),
    };
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {path:?}; the routes are listed at /api/v1/openapi.json"),
    )
}

/// The path exists but not with this method: 405 in the error shape (axum still adds the
/// `Allow` header naming the methods it has).
pub(super) async fn method_not_allowed(method: Method) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here: see the Allow header"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_route_once() {
        // A new variant must be added to ALL: this match does not compile without it.
        let position = |r: Route| match r {
            Route::Judge => 0,
            Route::Analysis => 1,
            Route::Judges => 2,
            Route::Budgets => 3,
            Route::Report => 4,
            Route::Audit => 5,
            Route::OpenApi => 6,
            Route::Healthz => 7,
            Route::Readyz => 8,
            Route::Metrics => 9,
        };
        for (i, r) in Route::ALL.iter().enumerate() {
            assert_eq!(position(*r), i, "{r:?}");
        }
        let mut paths: Vec<_> = Route::ALL.iter().map(|r| (r.method(), r.path())).collect();
        paths.dedup();
        assert_eq!(paths.len(), Route::ALL.len());
    }

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["paths"].as_object().map(|p| p.len()),
            Some(Route::ALL.len())
        );
    }
}
