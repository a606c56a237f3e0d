//! Operations: `/health`, `/ready`, Prometheus `/metrics`, the OpenAPI document generated from the handlers,
//! and a browsable API reference at `/docs` (self-contained: it works offline).

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The document's frame; its paths come from the handlers as the routers register them (see [`document`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Intake",
        description = "A self-hosted service that speaks the Coveo Push API v1. Every Push API path is also served \
                       under the legacy prefix `/v1` (without `/push`). Authenticate with `Authorization: Bearer <key>`. \
                       Errors are JSON: `{statusCode, errorCode, message, requestId, resolution}` (see docs/errors.md)."
    ),
    components(schemas(ErrorBody)),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// Every error answer (docs/errors.md lists the codes).
#[derive(ToSchema)]
#[allow(dead_code)] // a shape for the document; the envelope writes the real thing
#[schema(example = json!({"statusCode": 412, "errorCode": "MISSING_PARAMETER", "message": "Parameter 'documentId' is missing.", "requestId": "0b5f…", "resolution": "Add the parameter named in the message."}))]
pub struct ErrorBody {
    #[schema(rename = "statusCode")]
    status_code: u16,
    /// A code of the catalog, such as INVALID_JSON.
    #[schema(rename = "errorCode")]
    error_code: String,
    /// What exactly is wrong: the parameter, key, byte offset or item.
    message: String,
    /// Also in the `X-Request-ID` header.
    #[schema(rename = "requestId")]
    request_id: String,
    /// What to do.
    resolution: String,
    /// For the `/oauth/*` endpoints: RFC 6749's error (`invalid_request`, `invalid_client`, …).
    #[schema(nullable = false)]
    error: Option<String>,
    /// For the `/oauth/*` endpoints: the message again, as RFC 6749 names it.
    #[schema(nullable = false)]
    error_description: Option<String>,
}

/// The OpenAPI document of every route, built once from the routers.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = crate::routes().split_for_parts().1;
        finish(&mut document);
        document
    })
}

/// Finishes the document the routers collected: the bearer scheme, and the answers every route shares.
fn finish(document: &mut Document) {
    BearerAuth.modify(document);
    Refusals { prefix: "/push/v1/organizations/{org}/sources/{src}/", refusals: crate::context::SOURCE_CALL_REFUSALS }
        .modify(document);
    Refusals {
        prefix: "/push/v1/organizations/{org}/providers/{provider}/",
        refusals: crate::context::PROVIDER_CALL_REFUSALS,
    }
    .modify(document);
    for prefix in ["/push/v1/organizations/{org}/", "/rest/organizations/{org}", "/logs/v1/organizations/{org}"] {
        Refusals { prefix, refusals: crate::context::ORG_CALL_REFUSALS }.modify(document);
    }
    CommonErrors.modify(document);
}

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    let body = ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))));
    ResponseBuilder::new().description(description).content("application/json", body.build()).build().into()
}

/// The refusals of the request context a route's path implies (`OrgCall`, `SourceCall`): a status the route
/// already documents gets the context's codes added to its description.
struct Refusals {
    prefix: &'static str,
    refusals: &'static [(&'static str, &'static str)],
}

impl Modify for Refusals {
    fn modify(&self, openapi: &mut Document) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with(self.prefix) {
                continue;
            }
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                for (status, description) in self.refusals {
                    match responses.get_mut(*status) {
                        Some(RefOr::T(documented)) if !documented.description.contains(description) => {
                            documented.description = format!("{}; or {description}", documented.description);
                        }
                        Some(_) => {}
                        None => {
                            responses.insert(status.to_string(), error_answer(description));
                        }
                    }
                }
            }
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Answers every route may give besides its own, each with the JSON error body: 401 where a token is needed,
/// 503 when the server is starting, stopping, over its connection cap or out of disk (with `Retry-After`), and
/// the catalog's other 4xx (408, 413, 414, 415, 429, 431 can come from any route).
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut Document) {
        let error = error_answer;
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let public = operation.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &Default::default()));
                let responses = &mut operation.responses.responses;
                if !public {
                    responses
                        .entry("401".into())
                        .or_insert_with(|| error("UNAUTHORIZED (no `Authorization: Bearer …`) or INVALID_TOKEN"));
                }
                responses.entry("4XX".into()).or_insert_with(|| error("Another error of the catalog (docs/errors.md)"));
                responses.entry("503".into()).or_insert_with(|| {
                    error("SERVICE_UNAVAILABLE: starting, stopping, over the connection cap or out of disk; retry after Retry-After")
                });
                // Every error answer, documented by its route or above, has the catalog's body.
                for (status, response) in responses.iter_mut() {
                    let bare = match &*response {
                        RefOr::T(documented) if documented.content.is_empty() => Some(documented.description.clone()),
                        _ => None,
                    };
                    if let (true, Some(description)) = (status.starts_with(['4', '5']), bare) {
                        *response = error(&description);
                    }
                }
            }
        }
    }
}

/// `/health`, `/ready`, `/metrics`, `/openapi.json`, `/docs`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .routes(routes!(reference_page))
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "Operations", security(()), responses((status = 200, description = "Up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(serde::Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Whether search reflects what was accepted, and why not; the data directory's use and its disk's space.
#[derive(serde::Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `replaying` or `stalled`.
    status: &'static str,
    /// Why not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// `{bytes: {<part>: n}, free, total, warning?}`.
    #[schema(value_type = Object)]
    disk: serde_json::Value,
    /// Which backends this node runs on.
    storage: crate::storage::Layout,
    /// This node's part in a cluster.
    cluster: Cluster,
}

/// Which indexes a node owns.
#[derive(serde::Serialize, ToSchema)]
pub struct Cluster {
    /// The node's name (kept in its data directory).
    node: String,
    /// `single` (the embedded backend: this node owns every index), `owner` (it holds index leases in the shared
    /// database) or `standby` (it holds none: it accepts every call and sends searches on to the owners).
    role: &'static str,
    /// The organizations whose index lease this node holds (with a shared database).
    leases: Vec<String>,
}

impl Cluster {
    fn of(ownership: &dyn intake_store::Ownership) -> Cluster {
        let leases: Vec<String> = ownership.owned().into_keys().collect();
        let role = match (ownership.shared(), leases.is_empty()) {
            (false, _) => "single",
            (true, false) => "owner",
            (true, true) => "standby",
        };
        Cluster { node: ownership.node().to_string(), role, leases }
    }
}

/// The journal backlog found at start is applied and index commits succeed: search reflects what was accepted.
/// The answer also carries the data directory's use per part and its disk's free space, with a warning when
/// that runs low.
#[utoipa::path(get, path = "/ready", tag = "Operations", security(()), responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Still replaying the journal, or index commits are failing (the message says why)", body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = &state.readiness;
    let disk = crate::disk_usage::report(state.disk_usage.clone(), state.metrics.clone()).await;
    let (status, message) = match readiness.stalled() {
        Some(reason) => ("stalled", reason),
        None if !readiness.is_replayed() => ("replaying", "The journal backlog is being applied.".to_string()),
        None => {
            let cluster = Cluster::of(state.ownership.as_ref());
            return Json(Readiness { status: "ready", message: None, disk, storage: state.storage, cluster })
                .into_response();
        }
    };
    let cluster = Cluster::of(state.ownership.as_ref());
    let readiness = Readiness { status, message: Some(message), disk, storage: state.storage, cluster };
    (StatusCode::SERVICE_UNAVAILABLE, Json(readiness)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "Operations", security(()), responses((status = 200, description = "Metrics", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    crate::disk_usage::refresh(state.disk_usage.clone(), state.metrics.clone()).await;
    state.metrics.leases(state.ownership.owned().len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "Operations", security(()), responses((status = 200, description = "The OpenAPI 3.1 document of every route", content_type = "application/json")))]
pub async fn openapi() -> Json<&'static Document> {
    Json(document())
}

/// A browsable reference of this document (self-contained: it works offline).
#[utoipa::path(get, path = "/docs", tag = "Operations", security(()), responses((status = 200, description = "An HTML page", content_type = "text/html")))]
pub async fn reference_page() -> Html<&'static str> {
    Html(include_str!("reference.html"))
}
