//! Declared fields: typed (LONG, DOUBLE, DATE…), so comparisons on them are ranges.

use axum::Json;
use axum::body::Body;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use intake_model::ApiError;
use intake_model::field::valid_field_name;
use intake_model::json::Json as StrictJson;
use intake_model::{FieldType, QueryParams};
use intake_store::Field;
use serde::Serialize;
use utoipa::ToSchema;

use super::{no_content, required_text, text};
use crate::context::{OrgCall, read_body};
use crate::http::HandlerResult;
use crate::state::AppState;

/// A field to declare.
#[derive(ToSchema)]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct NewField {
    /// Lower-case letters, digits and underscores, starting with a letter.
    name: String,
    /// `STRING`, `LONG`, `LONG_64`, `DOUBLE` or `DATE`.
    #[schema(rename = "type")]
    field_type: String,
    description: Option<String>,
}

/// A declared field.
#[derive(Serialize, ToSchema)]
pub struct FieldAnswer {
    name: String,
    /// `STRING`, `LONG`, `LONG_64`, `DOUBLE` or `DATE`.
    #[serde(rename = "type")]
    field_type: &'static str,
    description: String,
}

/// One page of declared fields.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldPage {
    items: Vec<FieldAnswer>,
    total_entries: usize,
    total_pages: usize,
}

impl From<&Field> for FieldAnswer {
    fn from(field: &Field) -> FieldAnswer {
        FieldAnswer {
            name: field.name.clone(),
            field_type: field.field_type.as_str(),
            description: field.description.clone(),
        }
    }
}

/// One page of the organization's declared fields.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/indexes/page/fields", tag = "Fields",
    params(("org" = String, Path, description = "Organization id"), ("page" = Option<u32>, Query, description = "Page, from 0"), ("perPage" = Option<u32>, Query, description = "Fields per page (default 100, at most 1000)")),
    responses((status = 200, description = "One page of the declared fields", body = FieldPage), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
)]
pub async fn list_fields(
    State(state): State<AppState>,
    call: OrgCall,
    RawQuery(query): RawQuery,
) -> HandlerResult<Json<FieldPage>> {
    call.require("FIELD", "VIEW", "*")?;
    let query = QueryParams::parse(query.as_deref());
    let page = query.non_negative("page", u32::MAX as u64)?.unwrap_or(0) as usize;
    let per_page = query.non_negative("perPage", 1000)?.unwrap_or(100).max(1) as usize;
    let fields = state.catalog.fields(&call.organization.id);
    Ok(Json(FieldPage {
        items: fields.iter().skip(page * per_page).take(per_page).map(FieldAnswer::from).collect(),
        total_entries: fields.len(),
        total_pages: fields.len().div_ceil(per_page).max(1),
    }))
}

/// Declare fields: `[{name, type, description?}]`.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/indexes/fields/batch/create", tag = "Fields", params(("org" = String, Path, description = "Organization id")),
    request_body(content = Vec<NewField>, description = "The fields to declare", content_type = "application/json"),
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
    state.catalog.upsert_fields(&fields)?;
    Ok(no_content())
}
