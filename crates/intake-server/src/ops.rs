//! Operations: `/health`, `/ready`, Prometheus `/metrics`, the OpenAPI document generated from the handlers,
//! and a browsable API reference at `/docs` (self-contained: it works offline).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde_json::json;
use utoipa::OpenApi;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Intake",
        description = "A self-hosted service that speaks the Coveo Push API v1. Every Push API path is also served \
                       under the legacy prefix `/v1` (without `/push`). Authenticate with `Authorization: Bearer <key>`. \
                       Errors are JSON: `{statusCode, errorCode, message, requestId, resolution}` (see docs/errors.md)."
    ),
    paths(
        crate::push::put_document,
        crate::push::delete_document,
        crate::push::delete_older_than,
        crate::push::set_status,
        crate::files::create_container,
        crate::files::upload,
        crate::files::push_batch,
        crate::search_api::run_search,
        crate::logs_api::read_logs,
        health,
        ready,
        metrics,
    ),
    modifiers(&BearerAuth, &CommonErrors),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Answers every route may give besides its own: any 4xx of the catalog (docs/errors.md), and 503 when the
/// server is starting, stopping, over its connection cap or out of disk (with `Retry-After`).
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::ResponseBuilder;
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("4XX".into()).or_insert_with(|| {
                    ResponseBuilder::new().description("The catalog's JSON error; see docs/errors.md").build().into()
                });
                responses.entry("503".into()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("SERVICE_UNAVAILABLE: starting, stopping, over the connection cap or out of disk; retry after Retry-After")
                        .build()
                        .into()
                });
            }
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(reference_page))
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "Operations", security(()), responses((status = 200, description = "Up")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The journal backlog found at start is applied and index commits succeed: search reflects what was accepted.
/// The answer also carries the data directory's use per part and its disk's free space, with a warning when
/// that runs low.
#[utoipa::path(get, path = "/ready", tag = "Operations", security(()), responses((status = 200, description = "Ready"), (status = 503, description = "Still replaying the journal, or index commits are failing (the message says why)")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = &state.readiness;
    let disk = crate::disk_usage::report(state.disk_usage.clone(), state.metrics.clone()).await;
    let (status, message) = match readiness.stalled() {
        Some(reason) => ("stalled", reason),
        None if !readiness.is_replayed() => ("replaying", "The journal backlog is being applied.".to_string()),
        None => return Json(json!({ "status": "ready", "disk": disk })).into_response(),
    };
    let body = json!({ "status": status, "message": message, "disk": disk });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Operations", security(()), responses((status = 200, description = "Metrics")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    crate::disk_usage::refresh(state.disk_usage.clone(), state.metrics.clone()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn reference_page() -> Html<&'static str> {
    Html(include_str!("reference.html"))
}
