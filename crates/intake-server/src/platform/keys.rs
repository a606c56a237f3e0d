//! API keys: privileges, IP rules, expiry; the value is shown once, at creation, and stored as its hash.

use crate::auth::{parse_block, secret_hash};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use intake_model::ApiError;
use intake_model::ErrorCode;
use intake_model::access::parse_privilege;
use intake_model::json::{Json as StrictJson, JsonPath};
use intake_store::ApiKey;
use intake_store::catalog::random_id;
use serde::Serialize;
use utoipa::ToSchema;

use super::{created, no_content, required_text, strings, text};
use crate::context::{OrgCall, read_body};
use crate::http::HandlerResult;
use crate::state::AppState;

/// An API key to create.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct NewApiKey {
    display_name: String,
    description: Option<String>,
    /// `{owner, targetDomain, type?, targetId?}` each; the caller must hold every privilege it grants.
    #[schema(value_type = Vec<Object>)]
    privileges: Vec<serde_json::Value>,
    /// Epoch milliseconds or an ISO 8601 date.
    #[schema(value_type = Option<Object>)]
    expiration_date: Option<serde_json::Value>,
    /// Addresses or CIDR blocks; empty means every address.
    allowed_ips: Option<Vec<String>>,
    denied_ips: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// An API key, as Coveo's Platform API shows it: its value only in the answer that created it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAnswer {
    id: String,
    organization_id: String,
    display_name: String,
    description: String,
    /// `{owner, targetDomain, type?, targetId?}` each.
    #[schema(value_type = Vec<Object>)]
    privileges: Vec<intake_model::Privilege>,
    allowed_ips: Vec<String>,
    denied_ips: Vec<String>,
    enabled: bool,
    /// `ENABLED`, `DISABLED` or `EXPIRED`.
    status: &'static str,
    /// Epoch milliseconds.
    created_date: i64,
    /// Epoch milliseconds; null when it never expires.
    expiration_date: Option<i64>,
    /// The key itself: in the creation's answer only (Intake keeps its SHA-256).
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

fn key_answer(key: &ApiKey, now_ms: i64, value: Option<&str>) -> ApiKeyAnswer {
    let status = match (key.enabled, key.expiration_ms) {
        (false, _) => "DISABLED",
        (true, Some(expiration)) if expiration <= now_ms => "EXPIRED",
        _ => "ENABLED",
    };
    ApiKeyAnswer {
        id: key.id.clone(),
        organization_id: key.organization_id.clone(),
        display_name: key.display_name.clone(),
        description: key.description.clone(),
        privileges: key.privileges.clone(),
        allowed_ips: key.allowed_ips.clone(),
        denied_ips: key.denied_ips.clone(),
        enabled: key.enabled,
        status,
        created_date: key.created_at_ms,
        expiration_date: key.expiration_ms,
        value: value.map(str::to_string),
    }
}

/// Create an API key: its value is in this answer only.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/apikeys", tag = "API keys", params(("org" = String, Path, description = "Organization id")),
    request_body(content = NewApiKey, description = "The key to create", content_type = "application/json"),
    responses((status = 201, description = "The key, with its value (shown this once)", body = ApiKeyAnswer), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: API_KEY CREATE, or a privilege the caller does not hold"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn create_key(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    call.require("API_KEY", "CREATE", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let now = state.clock.now_ms();
    let privileges = match body.get("privileges") {
        None | Some(StrictJson::Null) => Vec::new(),
        Some(StrictJson::Array(items)) => {
            let path = JsonPath::default().key("privileges");
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_privilege(item, &path.index(i)))
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(other) => {
            return Err(
                ApiError::invalid_parameter("privileges", other.kind(), "it must be an array of privileges").into()
            );
        }
    };
    // Nobody hands out more than they have.
    if let Some(extra) = privileges.iter().find(|p| !call.principal.holds(p)) {
        return Err(call
            .principal
            .denied(&format!("the privilege {extra}, so it cannot grant it to a new key"))
            .into());
    }
    let allowed_ips = ip_blocks(&body, "allowedIps")?;
    let denied_ips = ip_blocks(&body, "deniedIps")?;
    let expiration_ms = expiration(&body, now)?;
    let value = format!("xx{}", uuid::Uuid::new_v4());
    let key = ApiKey {
        id: random_id(26),
        organization_id: call.organization.id.clone(),
        display_name: required_text(&body, "displayName")?,
        description: text(&body, "description")?.unwrap_or_default(),
        value_hash: secret_hash(&value),
        privileges,
        allowed_ips,
        denied_ips,
        enabled: true,
        created_at_ms: now,
        expiration_ms,
    };
    state.catalog.create_api_key(&key)?;
    tracing::info!(organization = key.organization_id, key = key.id, "API key created");
    Ok(created(key_answer(&key, now, Some(&value))))
}

fn ip_blocks(body: &StrictJson, key: &str) -> Result<Vec<String>, ApiError> {
    let blocks = strings(body, key)?;
    for block in &blocks {
        parse_block(block).map_err(|why| ApiError::invalid_parameter(key, block, &why))?;
    }
    Ok(blocks)
}

/// `expirationDate`: epoch milliseconds or a date; it must be in the future.
fn expiration(body: &StrictJson, now: i64) -> Result<Option<i64>, ApiError> {
    let ms = match body.get("expirationDate") {
        None | Some(StrictJson::Null) => return Ok(None),
        Some(StrictJson::Number(n)) => n.as_i64(),
        Some(StrictJson::String(s)) => intake_model::dates::parse_date_ms(s),
        Some(_) => None,
    };
    let shown = body.get("expirationDate").map(ToString::to_string).unwrap_or_default();
    match ms {
        Some(ms) if ms > now => Ok(Some(ms)),
        Some(_) => Err(ApiError::invalid_parameter("expirationDate", &shown, "it is in the past")),
        None => Err(ApiError::invalid_parameter(
            "expirationDate",
            &shown,
            "it must be epoch milliseconds or a date such as 2027-01-01T00:00:00Z",
        )),
    }
}

/// The organization's API keys, without their values.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/apikeys", tag = "API keys", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization's keys, without their values", body = Vec<ApiKeyAnswer>), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn list_keys(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Vec<ApiKeyAnswer>>> {
    call.require("API_KEY", "VIEW", "*")?;
    let now = state.clock.now_ms();
    Ok(Json(state.catalog.api_keys(&call.organization.id).iter().map(|k| key_answer(k, now, None)).collect()))
}

fn find_key(state: &AppState, call: &OrgCall) -> Result<ApiKey, ApiError> {
    let id = call.param("id");
    state.catalog.api_key(&call.organization.id, id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ApiKeyNotFound,
            format!("API key '{id}' does not exist in organization '{}'.", call.organization.id),
        )
    })
}

/// One API key, without its value.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/apikeys/{id}", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, without its value", body = ApiKeyAnswer), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn get_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<ApiKeyAnswer>> {
    call.require("API_KEY", "VIEW", call.param("id"))?;
    Ok(Json(key_answer(&find_key(&state, &call)?, state.clock.now_ms(), None)))
}

/// Disable an API key.
#[utoipa::path(
    put, path = "/rest/organizations/{org}/apikeys/{id}/disable", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, disabled", body = ApiKeyAnswer), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn disable_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<ApiKeyAnswer>> {
    set_key_enabled(&state, &call, false)
}

/// Enable an API key again.
#[utoipa::path(
    put, path = "/rest/organizations/{org}/apikeys/{id}/activate", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, enabled", body = ApiKeyAnswer), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn activate_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<ApiKeyAnswer>> {
    set_key_enabled(&state, &call, true)
}

fn set_key_enabled(state: &AppState, call: &OrgCall, enabled: bool) -> HandlerResult<Json<ApiKeyAnswer>> {
    call.require("API_KEY", "EDIT", call.param("id"))?;
    let key = find_key(state, call)?;
    let key = state.catalog.set_api_key_enabled(&key.organization_id, &key.id, enabled)?.unwrap_or(key);
    tracing::info!(organization = key.organization_id, key = key.id, enabled, "API key changed");
    Ok(Json(key_answer(&key, state.clock.now_ms(), None)))
}

/// Delete an API key.
#[utoipa::path(
    delete, path = "/rest/organizations/{org}/apikeys/{id}", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn delete_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    call.require("API_KEY", "EDIT", call.param("id"))?;
    let key = find_key(&state, &call)?;
    state.catalog.delete_api_key(&key.organization_id, &key.id)?;
    tracing::info!(organization = key.organization_id, key = key.id, "API key deleted");
    Ok(no_content())
}
