//! Sources of an organization: PUSH and CATALOG, with their visibility and status.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use intake_model::ApiError;
use intake_model::json::Json as StrictJson;
use intake_model::{OperationKind, Privilege};
use intake_store::Source;
use serde::Serialize;
use utoipa::ToSchema;

use super::{created, no_content, required_text, text};
use crate::context::{OrgCall, read_body};
use crate::http::HandlerResult;
use crate::state::AppState;

/// A source to create.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct NewSource {
    /// Unique in the organization; at most 255 characters.
    name: String,
    /// `PUSH` (default) or `CATALOG`, any case.
    source_type: Option<String>,
    /// `PRIVATE`, `SECURED` (default) or `SHARED`, any case.
    source_visibility: Option<String>,
}

/// A source, as Coveo's Platform API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceAnswer {
    id: String,
    name: String,
    organization_id: String,
    /// `PUSH` or `CATALOG`.
    source_type: String,
    /// `PRIVATE`, `SECURED` or `SHARED`.
    source_visibility: String,
    push_enabled: bool,
    /// True for a `CATALOG` source.
    stream_enabled: bool,
    /// Epoch milliseconds.
    created_date: i64,
    information: SourceInformation,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceInformation {
    source_status: SourceStatusAnswer,
}

#[derive(Serialize, ToSchema)]
pub struct SourceStatusAnswer {
    /// `IDLE`, or the status set by the Push API's `…/status` (`REBUILD`, `REFRESH`, `INCREMENTAL`).
    #[serde(rename = "type")]
    kind: String,
}

impl From<&Source> for SourceAnswer {
    fn from(source: &Source) -> SourceAnswer {
        SourceAnswer {
            id: source.id.clone(),
            name: source.name.clone(),
            organization_id: source.organization_id.clone(),
            source_type: source.source_type.clone(),
            source_visibility: source.visibility.clone(),
            push_enabled: true,
            stream_enabled: source.source_type == "CATALOG",
            created_date: source.created_at_ms,
            information: SourceInformation {
                source_status: SourceStatusAnswer { kind: source.status.map_or("IDLE", |s| s.as_str()).to_string() },
            },
        }
    }
}

const SOURCE_TYPES: &[&str] = &["PUSH", "CATALOG"];
const VISIBILITIES: &[&str] = &["PRIVATE", "SECURED", "SHARED"];

/// One of `allowed`, any case; absent means `default`.
fn choice(body: &StrictJson, key: &str, allowed: &[&str], default: &str) -> Result<String, ApiError> {
    match text(body, key)? {
        None => Ok(default.to_string()),
        Some(value) => {
            allowed.iter().find(|a| a.eq_ignore_ascii_case(&value)).map(|a| a.to_string()).ok_or_else(|| {
                ApiError::invalid_parameter(key, &value, &format!("allowed values are {}", allowed.join(", ")))
            })
        }
    }
}

/// Create a source (PUSH or CATALOG).
#[utoipa::path(
    post, path = "/rest/organizations/{org}/sources", tag = "Sources", params(("org" = String, Path, description = "Organization id")),
    request_body(content = NewSource, description = "The source to create", content_type = "application/json"),
    responses((status = 201, description = "The source", body = SourceAnswer), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 409, description = "ALREADY_EXISTS: a source of that name exists"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn create_source(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    call.require("SOURCE", "CREATE", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let name = required_text(&body, "name")?;
    if name.chars().count() > 255 {
        return Err(ApiError::invalid_parameter("name", &name, "a source name is at most 255 characters").into());
    }
    let source_type = choice(&body, "sourceType", SOURCE_TYPES, "PUSH")?;
    let visibility = choice(&body, "sourceVisibility", VISIBILITIES, "SECURED")?;
    let source =
        state.catalog.create_source(&call.organization.id, &name, &source_type, &visibility, state.clock.now_ms())?;
    tracing::info!(organization = call.organization.id, source = source.id, "source created");
    Ok(created(SourceAnswer::from(&source)))
}

/// The sources the caller may view (403 when it may view none).
#[utoipa::path(
    get, path = "/rest/organizations/{org}/sources", tag = "Sources", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization's sources", body = Vec<SourceAnswer>), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn list_sources(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Vec<SourceAnswer>>> {
    let org = &call.organization.id;
    let may_view = |id: &str| call.principal.holds(&Privilege::platform("SOURCE", "VIEW", id));
    let sources: Vec<Source> = state.catalog.sources(org).into_iter().filter(|s| may_view(&s.id)).collect();
    if sources.is_empty() && !may_view("*") {
        call.require("SOURCE", "VIEW", "*")?;
    }
    Ok(Json(sources.iter().map(SourceAnswer::from).collect()))
}

/// One source.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/sources/{src}", tag = "Sources", params(("org" = String, Path, description = "Organization id"), ("src" = String, Path, description = "Source id")),
    responses((status = 200, description = "The source", body = SourceAnswer), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "SOURCE_DOES_NOT_EXIST"))
)]
pub async fn get_source(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<SourceAnswer>> {
    let src = call.param("src");
    call.require("SOURCE", "VIEW", src)?;
    Ok(Json(SourceAnswer::from(&state.source(&call.organization.id, src)?)))
}

/// Delete a source; its items leave the index shortly after.
#[utoipa::path(
    delete, path = "/rest/organizations/{org}/sources/{src}", tag = "Sources", params(("org" = String, Path, description = "Organization id"), ("src" = String, Path, description = "Source id")),
    responses((status = 204, description = "Deleted with its items"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "SOURCE_DOES_NOT_EXIST"))
)]
pub async fn delete_source(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    let src = call.param("src").to_string();
    call.require("SOURCE", "EDIT", &src)?;
    state.source(&call.organization.id, &src)?;
    state.catalog.delete_source(&call.organization.id, &src)?;
    call.journal(&state, &src, OperationKind::PurgeSource).await?;
    tracing::info!(organization = call.organization.id, source = src, "source deleted");
    Ok(no_content())
}
