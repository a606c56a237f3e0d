//! The subset of Coveo's Platform API that push clients use: organizations, sources, API keys, fields, and
//! privilege evaluation, under `/rest`.
//!
//! Every organization-scoped call goes through [`OrgCall`]: the caller must belong to the organization (else
//! 401 INVALID_TOKEN, before its existence is revealed), the organization must exist (404), and the handler
//! names the privilege it needs (403 otherwise).

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use intake_model::access::parse_privilege;
use intake_model::field::valid_field_name;
use intake_model::json::{self, Json as StrictJson, JsonPath};
use intake_model::{ApiError, ErrorCode, FieldType, OperationKind, Privilege, QueryParams};
use intake_store::catalog::random_id;
use intake_store::{ApiKey, Field, Organization, Source, StoreError};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, parse_block, secret_hash};
use crate::http::{BodyLimit, HandlerError, HandlerResult, RequestId, require_json};
use crate::state::AppState;

const PLATFORM_BODY: BodyLimit = BodyLimit::small("The request body");

/// Organizations, sources, API keys, fields and privilege evaluation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(get_organization, delete_organization))
        .routes(routes!(pause_organization))
        .routes(routes!(resume_organization))
        .routes(routes!(organization_status))
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, delete_source))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, delete_key))
        .routes(routes!(disable_key))
        .routes(routes!(activate_key))
        .routes(routes!(list_fields))
        .routes(routes!(create_fields))
        .routes(routes!(evaluate_privilege))
}

/// An organization-scoped Platform call: the caller is of this organization, and it exists.
pub struct OrgCall {
    pub principal: Principal,
    pub organization: Organization,
    /// The other path parameters (`src`, `id`).
    pub path: HashMap<String, String>,
    pub query: QueryParams,
    pub request_id: RequestId,
}

impl FromRequestParts<AppState> for OrgCall {
    type Rejection = HandlerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let Path(path) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, format!("The path could not be decoded: {e}.")))?;
        let org = path.get("org").cloned().unwrap_or_default();
        principal.enter(&org)?;
        let organization = state.organization(&org)?;
        let request_id = RequestId::from_request_parts(parts, state).await?;
        let query = QueryParams::parse(parts.uri.query());
        Ok(OrgCall { principal, organization, path, query, request_id })
    }
}

impl OrgCall {
    fn require(&self, domain: &str, kind: &str, target_id: &str) -> Result<(), ApiError> {
        self.principal.authorize(&self.organization.id, &Privilege::platform(domain, kind, target_id))
    }

    /// ORGANIZATION VIEW on this organization.
    pub fn require_view(&self) -> Result<(), ApiError> {
        self.require("ORGANIZATION", "VIEW", &self.organization.id)
    }

    pub fn param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or_default()
    }

    /// Journals an operation on the organization's index (a purge) and waits until it is durable.
    async fn journal(&self, state: &AppState, source_id: &str, kind: OperationKind) -> Result<(), ApiError> {
        let now = state.clock.now_ms();
        let operation = intake_model::Operation {
            organization_id: self.organization.id.clone(),
            source_id: source_id.to_string(),
            ordering_id: now,
            request_id: self.request_id.0.clone(),
            accepted_at_ms: now,
            kind,
        };
        state.journal.append(vec![operation.encode()]).await.map(drop).map_err(|e| {
            ApiError::new(ErrorCode::ServiceUnavailable, format!("The deletion could not be journaled: {e}."))
                .with_retry_after(1)
        })
    }
}

fn storage(error: StoreError) -> ApiError {
    crate::http::storage_failure("The change could not be saved", error)
}

/// A Platform body as a strict JSON tree (an empty body is `{}`).
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<StrictJson, ApiError> {
    let bytes = read_body_bytes(state, headers, body).await?;
    json::parse(&bytes).map_err(|e| ApiError::invalid_json(format!("The body is not valid JSON: {e}.")))
}

/// A Platform body's bytes, after its Content-Type and size are checked (an empty body is `{}`).
pub(crate) async fn read_body_bytes(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    require_json(headers, false)?;
    let bytes = state.body_budget.read(headers, body, PLATFORM_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"{}".to_vec());
    }
    // Platform bodies are small (1 MiB at most): a copy frees the body budget at once.
    Ok(bytes.to_vec())
}

/// An optional string member of a body object.
fn text(body: &StrictJson, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(StrictJson::Null) => Ok(None),
        Some(StrictJson::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(ApiError::invalid_parameter(key, other.kind(), "it must be a string")),
    }
}

fn required_text(body: &StrictJson, key: &str) -> Result<String, ApiError> {
    text(body, key)?.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing_parameter(key))
}

fn strings(body: &StrictJson, key: &str) -> Result<Vec<String>, ApiError> {
    match body.get(key) {
        None | Some(StrictJson::Null) => Ok(Vec::new()),
        Some(StrictJson::Array(items)) => items
            .iter()
            .map(|item| match item {
                StrictJson::String(s) => Ok(s.trim().to_string()),
                other => Err(ApiError::invalid_parameter(key, other.kind(), "it must be an array of strings")),
            })
            .collect(),
        Some(other) => Err(ApiError::invalid_parameter(key, other.kind(), "it must be an array of strings")),
    }
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

// ---- Organizations ----

fn organization_json(organization: &Organization) -> Value {
    json!({
        "id": organization.id,
        "displayName": organization.display_name,
        "type": "PRODUCTION",
        "createdDate": organization.created_at_ms,
        "paused": organization.paused,
        "readOnly": false,
    })
}

/// Create an organization (master key only).
#[utoipa::path(
    post, path = "/rest/organizations", tag = "Organizations",
    request_body(content = serde_json::Value, description = "{id?, displayName}: the id is made from the display name when absent", content_type = "application/json"),
    responses((status = 201, description = "{id, displayName, type, createdDate, paused, readOnly}"), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: only the master key creates organizations"), (status = 409, description = "ALREADY_EXISTS"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn create_organization(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    if !principal.is_master() {
        return Err(principal.denied("the right to create organizations (only the master key has it)").into());
    }
    let body = read_body(&state, &headers, body).await?;
    let display_name = text(&body, "displayName")?.filter(|s| !s.is_empty());
    let id = match text(&body, "id")?.filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => {
            organization_id_from(display_name.as_deref().ok_or_else(|| ApiError::missing_parameter("displayName"))?)
        }
    };
    if !valid_organization_id(&id) {
        return Err(ApiError::invalid_parameter(
            "id",
            &id,
            "an organization id is 1 to 64 lower-case letters, digits and hyphens, starting with a letter or digit",
        )
        .into());
    }
    let organization = state
        .catalog
        .create_organization(&id, display_name.as_deref().unwrap_or(&id), state.clock.now_ms())
        .map_err(storage)?;
    tracing::info!(organization = id, "organization created");
    Ok(created(organization_json(&organization)))
}

fn valid_organization_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `My Org!` → `myorg` + 8 random characters, as Coveo's ids look.
fn organization_id_from(display_name: &str) -> String {
    let slug: String = display_name.to_lowercase().chars().filter(char::is_ascii_alphanumeric).take(40).collect();
    format!("{slug}{}", random_id(8))
}

/// The organizations the caller can see: all for the master key, its own for an API key that may view it.
#[utoipa::path(
    get, path = "/rest/organizations", tag = "Organizations",
    responses((status = 200, description = "The organizations the caller may view: [{id, displayName, type, createdDate, paused, readOnly}]"))
)]
pub async fn list_organizations(State(state): State<AppState>, principal: Principal) -> HandlerResult<Json<Value>> {
    let visible = state
        .catalog
        .organizations()
        .into_iter()
        .filter(|org| principal.organization_id().is_none_or(|own| own == org.id))
        .filter(|org| principal.holds(&Privilege::platform("ORGANIZATION", "VIEW", &org.id)));
    Ok(Json(Value::Array(visible.map(|org| organization_json(&org)).collect())))
}

/// One organization.
#[utoipa::path(
    get, path = "/rest/organizations/{org}", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "{id, displayName, type, createdDate, paused, readOnly}"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn get_organization(call: OrgCall) -> HandlerResult<Json<Value>> {
    call.require("ORGANIZATION", "VIEW", &call.organization.id)?;
    Ok(Json(organization_json(&call.organization)))
}

/// Delete an organization, its sources, keys, fields and index (master key only).
#[utoipa::path(
    delete, path = "/rest/organizations/{org}", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 204, description = "Deleted with its sources, keys, fields and index"), (status = 403, description = "ACCESS_DENIED: only the master key deletes organizations"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn delete_organization(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    if !call.principal.is_master() {
        return Err(call.principal.denied("the right to delete organizations (only the master key has it)").into());
    }
    let id = call.organization.id.clone();
    state.catalog.delete_organization(&id).map_err(storage)?;
    state.quotas.forget(&id);
    state.faults.forget(&id);
    call.journal(&state, "", OperationKind::PurgeOrganization).await?;
    tracing::info!(organization = id, "organization deleted");
    Ok(no_content())
}

/// Pause an organization: push calls are refused until it is resumed.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/pause", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 204, description = "Paused: push calls answer ORGANIZATION_IS_PAUSED"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn pause_organization(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    set_paused(&state, &call, true)
}

/// Resume a paused organization.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/resume", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 204, description = "Resumed"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn resume_organization(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    set_paused(&state, &call, false)
}

fn set_paused(state: &AppState, call: &OrgCall, paused: bool) -> HandlerResult<Response> {
    call.require("ORGANIZATION", "EDIT", &call.organization.id)?;
    state.catalog.set_paused(&call.organization.id, paused).map_err(storage)?;
    tracing::info!(organization = call.organization.id, paused, "organization pause state changed");
    Ok(no_content())
}

/// An organization's status, as Coveo's status endpoint reports it.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/status", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "{status, lifeCycleState, pauseState, paused, resumable, readOnly, errorCodes}"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn organization_status(call: OrgCall) -> HandlerResult<Json<Value>> {
    call.require("ORGANIZATION", "VIEW", &call.organization.id)?;
    let state = if call.organization.paused { "PAUSED" } else { "ACTIVE" };
    Ok(Json(json!({
        "status": "HEALTHY",
        "lifeCycleState": state,
        "pauseState": state,
        "paused": call.organization.paused,
        "resumable": call.organization.paused,
        "readOnly": false,
        "errorCodes": [],
    })))
}

// ---- Sources ----

fn source_json(source: &Source) -> Value {
    json!({
        "id": source.id,
        "name": source.name,
        "organizationId": source.organization_id,
        "sourceType": source.source_type,
        "sourceVisibility": source.visibility,
        "pushEnabled": true,
        "streamEnabled": source.source_type == "CATALOG",
        "createdDate": source.created_at_ms,
        "information": { "sourceStatus": { "type": source.status.map_or("IDLE", |s| s.as_str()) } },
    })
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
    request_body(content = serde_json::Value, description = "{name, sourceType: PUSH | CATALOG, sourceVisibility: PRIVATE | SECURED | SHARED}", content_type = "application/json"),
    responses((status = 201, description = "The source: {id, name, organizationId, sourceType, sourceVisibility, pushEnabled, streamEnabled, createdDate, information}"), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 409, description = "ALREADY_EXISTS: a source of that name exists"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
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
    let source = state
        .catalog
        .create_source(&call.organization.id, &name, &source_type, &visibility, state.clock.now_ms())
        .map_err(storage)?;
    tracing::info!(organization = call.organization.id, source = source.id, "source created");
    Ok(created(source_json(&source)))
}

/// The sources the caller may view (403 when it may view none).
#[utoipa::path(
    get, path = "/rest/organizations/{org}/sources", tag = "Sources", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization's sources"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn list_sources(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Value>> {
    let org = &call.organization.id;
    let may_view = |id: &str| call.principal.holds(&Privilege::platform("SOURCE", "VIEW", id));
    let sources: Vec<Source> = state.catalog.sources(org).into_iter().filter(|s| may_view(&s.id)).collect();
    if sources.is_empty() && !may_view("*") {
        call.require("SOURCE", "VIEW", "*")?;
    }
    Ok(Json(Value::Array(sources.iter().map(source_json).collect())))
}

/// One source.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/sources/{src}", tag = "Sources", params(("org" = String, Path, description = "Organization id"), ("src" = String, Path, description = "Source id")),
    responses((status = 200, description = "The source"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "SOURCE_DOES_NOT_EXIST"))
)]
pub async fn get_source(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Value>> {
    let src = call.param("src");
    call.require("SOURCE", "VIEW", src)?;
    Ok(Json(source_json(&state.source(&call.organization.id, src)?)))
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
    state.catalog.delete_source(&call.organization.id, &src).map_err(storage)?;
    call.journal(&state, &src, OperationKind::PurgeSource).await?;
    tracing::info!(organization = call.organization.id, source = src, "source deleted");
    Ok(no_content())
}

// ---- API keys ----

fn key_json(key: &ApiKey, now_ms: i64, value: Option<&str>) -> Value {
    let status = match (key.enabled, key.expiration_ms) {
        (false, _) => "DISABLED",
        (true, Some(expiration)) if expiration <= now_ms => "EXPIRED",
        _ => "ENABLED",
    };
    let mut body = json!({
        "id": key.id,
        "organizationId": key.organization_id,
        "displayName": key.display_name,
        "description": key.description,
        "privileges": key.privileges,
        "allowedIps": key.allowed_ips,
        "deniedIps": key.denied_ips,
        "enabled": key.enabled,
        "status": status,
        "createdDate": key.created_at_ms,
        "expirationDate": key.expiration_ms,
    });
    if let Some(value) = value {
        body["value"] = value.into();
    }
    body
}

/// Create an API key: its value is in this answer only.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/apikeys", tag = "API keys", params(("org" = String, Path, description = "Organization id")),
    request_body(content = serde_json::Value, description = "{displayName, privileges: [{owner, targetDomain, type?, targetId?}], expirationDate?, allowedIps?, deniedIps?, enabled?}", content_type = "application/json"),
    responses((status = 201, description = "The key, with its value (shown this once)"), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: API_KEY CREATE, or a privilege the caller does not hold"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
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
    state.catalog.create_api_key(&key).map_err(storage)?;
    tracing::info!(organization = key.organization_id, key = key.id, "API key created");
    Ok(created(key_json(&key, now, Some(&value))))
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
    responses((status = 200, description = "The organization's keys, without their values"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn list_keys(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Value>> {
    call.require("API_KEY", "VIEW", "*")?;
    let now = state.clock.now_ms();
    Ok(Json(Value::Array(
        state.catalog.api_keys(&call.organization.id).iter().map(|k| key_json(k, now, None)).collect(),
    )))
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
    responses((status = 200, description = "The key, without its value"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn get_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Value>> {
    call.require("API_KEY", "VIEW", call.param("id"))?;
    Ok(Json(key_json(&find_key(&state, &call)?, state.clock.now_ms(), None)))
}

/// Disable an API key.
#[utoipa::path(
    put, path = "/rest/organizations/{org}/apikeys/{id}/disable", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, disabled"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn disable_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Value>> {
    set_key_enabled(&state, &call, false)
}

/// Enable an API key again.
#[utoipa::path(
    put, path = "/rest/organizations/{org}/apikeys/{id}/activate", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key, enabled"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn activate_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Value>> {
    set_key_enabled(&state, &call, true)
}

fn set_key_enabled(state: &AppState, call: &OrgCall, enabled: bool) -> HandlerResult<Json<Value>> {
    call.require("API_KEY", "EDIT", call.param("id"))?;
    let key = find_key(state, call)?;
    let key =
        state.catalog.set_api_key_enabled(&key.organization_id, &key.id, enabled).map_err(storage)?.unwrap_or(key);
    tracing::info!(organization = key.organization_id, key = key.id, enabled, "API key changed");
    Ok(Json(key_json(&key, state.clock.now_ms(), None)))
}

/// Delete an API key.
#[utoipa::path(
    delete, path = "/rest/organizations/{org}/apikeys/{id}", tag = "API keys", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND or API_KEY_NOT_FOUND"))
)]
pub async fn delete_key(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    call.require("API_KEY", "EDIT", call.param("id"))?;
    let key = find_key(&state, &call)?;
    state.catalog.delete_api_key(&key.organization_id, &key.id).map_err(storage)?;
    tracing::info!(organization = key.organization_id, key = key.id, "API key deleted");
    Ok(no_content())
}

// ---- Fields ----

fn field_json(field: &Field) -> Value {
    json!({ "name": field.name, "type": field.field_type.as_str(), "description": field.description })
}

/// One page of the organization's declared fields.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/indexes/page/fields", tag = "Fields",
    params(("org" = String, Path, description = "Organization id"), ("page" = Option<u32>, Query, description = "Page, from 0"), ("perPage" = Option<u32>, Query, description = "Fields per page (default 100, at most 1000)")),
    responses((status = 200, description = "{items: [{name, type, description}], totalEntries, totalPages}"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn list_fields(
    State(state): State<AppState>,
    call: OrgCall,
    RawQuery(query): RawQuery,
) -> HandlerResult<Json<Value>> {
    call.require("FIELD", "VIEW", "*")?;
    let query = QueryParams::parse(query.as_deref());
    let page = query.non_negative("page", u32::MAX as u64)?.unwrap_or(0) as usize;
    let per_page = query.non_negative("perPage", 1000)?.unwrap_or(100).max(1) as usize;
    let fields = state.catalog.fields(&call.organization.id);
    let items: Vec<Value> = fields.iter().skip(page * per_page).take(per_page).map(field_json).collect();
    Ok(Json(json!({
        "items": items,
        "totalEntries": fields.len(),
        "totalPages": fields.len().div_ceil(per_page).max(1),
    })))
}

/// Declare fields: `[{name, type, description?}]`.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/indexes/fields/batch/create", tag = "Fields", params(("org" = String, Path, description = "Organization id")),
    request_body(content = serde_json::Value, description = "[{name, type: STRING | LONG | LONG_64 | DOUBLE | DATE, description?}]", content_type = "application/json"),
    responses((status = 204, description = "Declared (or redeclared)"), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn create_fields(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    call.require("FIELD", "CREATE", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let StrictJson::Array(items) = body else {
        return Err(ApiError::invalid_json(
            "The body must be an array of fields: [{\"name\": \"rank\", \"type\": \"LONG\"}].",
        )
        .into());
    };
    let mut fields = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = required_text(item, "name")?;
        if !valid_field_name(&name) {
            return Err(ApiError::invalid_parameter(
                &format!("[{i}].name"),
                &name,
                "a field name is lower-case letters, digits and underscores, starting with a letter",
            )
            .into());
        }
        let raw_type = text(item, "type")?.unwrap_or_else(|| "STRING".to_string());
        let field_type = FieldType::parse(&raw_type).ok_or_else(|| {
            ApiError::invalid_parameter(
                &format!("[{i}].type"),
                &raw_type,
                &format!("allowed values are {}", FieldType::ALLOWED),
            )
        })?;
        let description = text(item, "description")?.unwrap_or_default();
        fields.push(Field { organization_id: call.organization.id.clone(), name, field_type, description });
    }
    state.catalog.upsert_fields(&fields).map_err(storage)?;
    Ok(no_content())
}

// ---- Privileges ----

/// `{organizationId, requestedPrivilege}` → `{approved}`: whether the caller holds the privilege there.
#[utoipa::path(
    post, path = "/rest/privilege/evaluate", tag = "Privileges",
    request_body(content = serde_json::Value, description = "{organizationId, requestedPrivilege: {owner, targetDomain, type?, targetId?}}", content_type = "application/json"),
    responses((status = 200, description = "{approved}: whether the caller holds the privilege in that organization"), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn evaluate_privilege(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<Value>> {
    let body = read_body(&state, &headers, body).await?;
    let organization_id = required_text(&body, "organizationId")?;
    let requested = body.get("requestedPrivilege").ok_or_else(|| ApiError::missing_parameter("requestedPrivilege"))?;
    let privilege = parse_privilege(requested, &JsonPath::default().key("requestedPrivilege"))?;
    let approved = principal.organization_id().is_none_or(|own| own == organization_id) && principal.holds(&privilege);
    Ok(Json(json!({ "approved": approved })))
}
