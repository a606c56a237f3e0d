//! Privilege evaluation: whether the caller holds a privilege in an organization.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use intake_model::ApiError;
use intake_model::access::parse_privilege;
use intake_model::json::JsonPath;
use serde::Serialize;
use utoipa::ToSchema;

use super::required_text;
use crate::auth::Principal;
use crate::context::read_body;
use crate::http::HandlerResult;
use crate::state::AppState;

/// `{organizationId, requestedPrivilege}` → `{approved}`: whether the caller holds the privilege there.
#[utoipa::path(
    post, path = "/rest/privilege/evaluate", tag = "Privileges",
    request_body(content = PrivilegeQuestion, description = "The privilege to evaluate, in an organization", content_type = "application/json"),
    responses((status = 200, description = "Whether the caller holds the privilege in that organization", body = PrivilegeEvaluation), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn evaluate_privilege(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<PrivilegeEvaluation>> {
    let body = read_body(&state, &headers, body).await?;
    let organization_id = required_text(&body, "organizationId")?;
    let requested = body.get("requestedPrivilege").ok_or_else(|| ApiError::missing_parameter("requestedPrivilege"))?;
    let privilege = parse_privilege(requested, &JsonPath::default().key("requestedPrivilege"))?;
    let approved = principal.organization_id().is_none_or(|own| own == organization_id) && principal.holds(&privilege);
    Ok(Json(PrivilegeEvaluation { approved }))
}

/// A privilege to evaluate.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct PrivilegeQuestion {
    organization_id: String,
    /// `{owner, targetDomain, type?, targetId?}`.
    #[schema(value_type = Object)]
    requested_privilege: serde_json::Value,
}

/// The answer of a privilege evaluation.
#[derive(Serialize, ToSchema)]
pub struct PrivilegeEvaluation {
    /// Whether the caller holds the privilege.
    approved: bool,
}
