//! The subset of Coveo's Platform API that push clients use: organizations, sources, API keys, fields,
//! security providers and privilege evaluation, under `/rest`.
//!
//! Every organization-scoped call goes through [`OrgCall`](crate::context::OrgCall): the caller must belong to the organization (else
//! 401 INVALID_TOKEN, before its existence is revealed), the organization must exist (404), and the handler
//! names the privilege it needs (403 otherwise).

mod fields;
mod keys;
mod organizations;
mod privileges;
mod providers;
mod security_cache;
mod sources;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use intake_model::ApiError;
use intake_model::json::Json as StrictJson;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use fields::*;
use keys::*;
use organizations::*;
use privileges::*;
use providers::*;
use security_cache::*;
use sources::*;

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
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, put_provider, delete_provider))
        .routes(routes!(member_parents))
        .routes(routes!(member_children))
        .routes(routes!(one_member))
        .routes(routes!(provider_members))
        .routes(routes!(explain))
        .routes(routes!(item_permission_levels))
        .routes(routes!(item_effective_permissions))
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

fn created(body: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
