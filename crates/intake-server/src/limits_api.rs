//! The limits and fault-injection endpoints of the Platform API, under `/rest/organizations/{org}`.
//!
//! `GET …/limits` reports every limit with its value and current usage in the shape of Coveo's limits API
//! (`{"content": {"maximumItems": {"limit", "actualCount", "lastUpdate"}, …}}`), `…/limits/content` one
//! section, `…/limits/{key}` (or `…/limits/content/{key}`) one limit; reading takes ORGANIZATION VIEW.
//! `PUT …/limits/{key}` `{"value": N}` sets one, `DELETE` (or `{"value": null}`) goes back to the server's
//! default. Fault rules: `POST …/faults` → 201 with the rule and its `id`, `GET …/faults`,
//! `DELETE …/faults/{id}`. Changing limits and anything about faults takes the master key.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use intake_model::json::{self, Json as StrictJson};
use intake_model::quota::{FaultSpec, LIMITS_SECTION, LimitKey};
use intake_model::{ApiError, ErrorCode};
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::quotas::{LimitAnswer, LimitsReport};

use crate::context::{OrgCall, read_body_bytes};
use crate::http::HandlerResult;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Limits (also as `…/limits/{section}/{key}`) and fault rules.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(all_limits))
        .routes(routes!(get_limit, set_limit, reset_limit))
        .routes(routes!(get_section_limit, set_section_limit, reset_section_limit))
        .routes(routes!(add_fault, list_faults))
        .routes(routes!(remove_fault))
}

/// One limit, named by its section and key.
#[utoipa::path(get, path = "/rest/organizations/{org}/limits/{section}/{key}", tag = "Limits", params(("org" = String, Path, description = "Organization id"), ("section" = String, Path, description = "`content`, the section of every Intake limit"), ("key" = String, Path, description = "A limit such as `maximumItems`")),
    responses((status = 200, description = "The limit", body = LimitOrSection), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: no such section or limit, or a value that is not a whole number (a rate or burst of 0 included)")))]
pub async fn get_section_limit(state: State<AppState>, call: OrgCall) -> HandlerResult<Json<LimitOrSection>> {
    get_limit(state, call).await
}

/// Sets one limit, named by its section and key.
#[utoipa::path(put, path = "/rest/organizations/{org}/limits/{section}/{key}", tag = "Limits", params(("org" = String, Path, description = "Organization id"), ("section" = String, Path, description = "`content`, the section of every Intake limit"), ("key" = String, Path, description = "A limit such as `maximumItems`")),
    request_body(content = LimitValue, description = "The organization's own value, or null to go back to the default", content_type = "application/json"),
    responses((status = 200, description = "The limit", body = LimitOrSection), (status = 400, description = "INVALID_JSON"), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: no such section or limit, or a value that is not a whole number (a rate or burst of 0 included)")))]
pub async fn set_section_limit(
    state: State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<LimitOrSection>> {
    set_limit(state, call, headers, body).await
}

/// Resets one limit, named by its section and key.
#[utoipa::path(delete, path = "/rest/organizations/{org}/limits/{section}/{key}", tag = "Limits", params(("org" = String, Path, description = "Organization id"), ("section" = String, Path, description = "`content`, the section of every Intake limit"), ("key" = String, Path, description = "A limit such as `maximumItems`")),
    responses((status = 200, description = "The limit, back to the server's default", body = LimitOrSection), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: no such section or limit, or a value that is not a whole number (a rate or burst of 0 included)")))]
pub async fn reset_section_limit(state: State<AppState>, call: OrgCall) -> HandlerResult<Json<LimitOrSection>> {
    reset_limit(state, call).await
}

/// Every limit of the organization, with its usage.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/limits", tag = "Limits", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "Every limit with its use", body = LimitsReport), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn all_limits(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<LimitsReport>> {
    call.require_view()?;
    Ok(Json(state.quotas.report(&call.organization.id)?))
}

/// A section (`content`) or one limit.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/limits/{name}", tag = "Limits", params(("org" = String, Path, description = "Organization id"), ("name" = String, Path, description = "`content` (the section), or a limit such as `maximumItems` or `pushApiRequestsPerSecond`")),
    responses((status = 200, description = "The section, or one limit", body = LimitOrSection), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: no such section or limit, or a value that is not a whole number (a rate or burst of 0 included)"))
)]
pub async fn get_limit(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<LimitOrSection>> {
    call.require_view()?;
    let report = state.quotas.report(&call.organization.id)?;
    Ok(Json(match limit_named(&call)? {
        None => LimitOrSection::Section(report.content),
        Some(key) => LimitOrSection::Limit(one_limit(report, key)),
    }))
}

/// `{"value": N}` sets the organization's own value; `{"value": null}` removes it.
#[utoipa::path(
    put, path = "/rest/organizations/{org}/limits/{name}", tag = "Limits", params(("org" = String, Path, description = "Organization id"), ("name" = String, Path, description = "`content` (the section), or a limit such as `maximumItems` or `pushApiRequestsPerSecond`")),
    request_body(content = LimitValue, description = "The organization's own value, or null to go back to the default", content_type = "application/json"),
    responses((status = 200, description = "The limit", body = LimitOrSection), (status = 400, description = "INVALID_JSON"), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: no such section or limit, or a value that is not a whole number (a rate or burst of 0 included)"))
)]
pub async fn set_limit(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<LimitOrSection>> {
    require_master(&call, "the right to change limits")?;
    let key = limit_named(&call)?.ok_or_else(|| {
        ApiError::invalid_parameter("limitKey", LIMITS_SECTION, &format!("name one limit: {}", LimitKey::names()))
    })?;
    let bytes = read_body_bytes(&state, &headers, body).await?;
    let body = json::parse(&bytes).map_err(|e| ApiError::invalid_json(format!("The body is not valid JSON: {e}.")))?;
    let value = match body.get("value") {
        None => return Err(ApiError::missing_parameter("value").into()),
        Some(StrictJson::Null) => None,
        Some(StrictJson::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            let shown = match other {
                StrictJson::Number(n) => n.to_string(),
                other => other.kind().to_string(),
            };
            return Err(ApiError::invalid_parameter("value", &shown, "it must be a whole number ≥ 0, or null").into());
        }
    };
    if let Some(value) = value {
        key.check(value).map_err(|why| ApiError::invalid_parameter("value", &value.to_string(), &why))?;
    }
    state.quotas.set_limit(&call.organization.id, key, value)?;
    tracing::info!(organization = call.organization.id, limit = key.name(), ?value, "limit set");
    let report = state.quotas.report(&call.organization.id)?;
    Ok(Json(LimitOrSection::Limit(one_limit(report, key))))
}

/// Back to the server's default.
#[utoipa::path(
    delete, path = "/rest/organizations/{org}/limits/{name}", tag = "Limits", params(("org" = String, Path, description = "Organization id"), ("name" = String, Path, description = "`content` (the section), or a limit such as `maximumItems` or `pushApiRequestsPerSecond`")),
    responses((status = 200, description = "The limit, back to the server's default", body = LimitOrSection), (status = 403, description = "ACCESS_DENIED: ORGANIZATION VIEW to read; only the master key changes limits"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: no such section or limit, or a value that is not a whole number (a rate or burst of 0 included)"))
)]
pub async fn reset_limit(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<LimitOrSection>> {
    require_master(&call, "the right to change limits")?;
    let key =
        limit_named(&call)?.ok_or_else(|| ApiError::invalid_parameter("limitKey", LIMITS_SECTION, "name one limit"))?;
    state.quotas.set_limit(&call.organization.id, key, None)?;
    let report = state.quotas.report(&call.organization.id)?;
    Ok(Json(LimitOrSection::Limit(one_limit(report, key))))
}

/// A limit's new value.
#[derive(ToSchema)]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct LimitValue {
    /// A whole number (at least 1 for a rate or burst), or null to go back to the server's default.
    value: Option<u64>,
}

/// What a limits path answers: one limit, or the whole section.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LimitOrSection {
    Limit(LimitAnswer),
    /// By limit name.
    Section(BTreeMap<String, LimitAnswer>),
}

fn one_limit(mut report: LimitsReport, key: LimitKey) -> LimitAnswer {
    report.content.remove(key.name()).expect("the report has every limit")
}

/// The limit a path names: `None` for the section itself, 404 for an unknown section or key.
fn limit_named(call: &OrgCall) -> Result<Option<LimitKey>, ApiError> {
    let (section, key) = match (call.path.get("name"), call.path.get("section"), call.path.get("key")) {
        (Some(name), _, _) if name.eq_ignore_ascii_case(LIMITS_SECTION) => return Ok(None),
        (Some(name), _, _) => (LIMITS_SECTION, name.as_str()),
        (None, Some(section), Some(key)) => (section.as_str(), key.as_str()),
        _ => return Ok(None),
    };
    if !section.eq_ignore_ascii_case(LIMITS_SECTION) {
        return Err(unknown_limit(&format!(
            "There is no limits section '{section}': Intake's limits are in '{LIMITS_SECTION}'"
        )));
    }
    LimitKey::parse(key)
        .map(Some)
        .ok_or_else(|| unknown_limit(&format!("There is no limit '{key}': the limits are {}", LimitKey::names())))
}

fn unknown_limit(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, format!("{message}."))
}

fn require_master(call: &OrgCall, what: &str) -> Result<(), ApiError> {
    if call.principal.is_master() {
        Ok(())
    } else {
        Err(call.principal.denied(&format!("{what} (only the master key has it)")))
    }
}

/// Add a fault rule.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/faults", tag = "Fault injection", params(("org" = String, Path, description = "Organization id")),
    request_body(content = serde_json::Value, description = "A fault rule: {status, count? | percent?, route?, methods?, retryAfterSeconds?, …} (docs/limits-and-faults.md)", content_type = "application/json"),
    responses((status = 201, description = "The rule as it was added, with its id, status, source, createdDate and fired", body = Object), (status = 400, description = "INVALID_JSON: not a fault rule"), (status = 403, description = "ACCESS_DENIED: only the master key injects faults"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER"))
)]
pub async fn add_fault(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    require_master(&call, "the right to inject faults")?;
    let bytes = read_body_bytes(&state, &headers, body).await?;
    json::parse(&bytes).map_err(|e| ApiError::invalid_json(format!("The body is not valid JSON: {e}.")))?;
    let spec: FaultSpec = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_json(format!("The fault rule is not valid: {e}.")))?;
    let rule = state.faults.add(&call.organization.id, spec)?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// The organization's fault rules.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/faults", tag = "Fault injection", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization's rules: each as it was added, with id, status, source (api or configuration), createdDate, fired and, for a counted rule, remaining", body = Vec<Object>), (status = 403, description = "ACCESS_DENIED: only the master key"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn list_faults(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Vec<Value>>> {
    require_master(&call, "the right to inject faults")?;
    Ok(Json(state.faults.list(&call.organization.id)))
}

/// Remove a fault rule.
#[utoipa::path(
    delete, path = "/rest/organizations/{org}/faults/{id}", tag = "Fault injection", params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Removed"), (status = 403, description = "ACCESS_DENIED: only the master key"), (status = 404, description = "ORGANIZATION_NOT_FOUND or FAULT_RULE_NOT_FOUND"))
)]
pub async fn remove_fault(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    require_master(&call, "the right to inject faults")?;
    let id = call.param("id");
    if !state.faults.remove(&call.organization.id, id)? {
        return Err(ApiError::new(
            ErrorCode::FaultRuleNotFound,
            format!("Organization '{}' has no fault rule '{id}'.", call.organization.id),
        )
        .into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
