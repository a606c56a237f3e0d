//! Security identity providers: where identities are pushed, which providers they cascade to (aliases may point
//! there), and which sources' item permissions default to them. Every organization has the built-in
//! `Email Security Provider`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use intake_model::json::Json as StrictJson;
use intake_model::{ApiError, ErrorCode};
use intake_store::{EMAIL_PROVIDER, SecurityProvider};
use serde::Serialize;
use utoipa::ToSchema;

use super::{created, no_content, text};
use crate::context::{OrgCall, read_body};
use crate::http::{HandlerResult, storage_failure};
use crate::state::AppState;

/// A provider, as Coveo's Platform API shows it (`SecurityProviderModelWithStatus`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderAnswer {
    id: String,
    name: String,
    display_name: String,
    organization_id: String,
    /// `EXPANDED` (a Push provider) or `EMAIL`.
    #[serde(rename = "type")]
    kind: String,
    node_required: bool,
    case_sensitive: bool,
    /// The providers it cascades to, by id.
    #[schema(value_type = Object)]
    cascading_security_providers: BTreeMap<String, CascadeAnswer>,
    /// The sources whose items' permissions default to it.
    referenced_by: Vec<Reference>,
    statistics: ProviderStatistics,
    current_status: ProviderStatus,
}

#[derive(Serialize, ToSchema)]
pub struct CascadeAnswer {
    id: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct Reference {
    id: String,
    /// `SOURCE`.
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatistics {
    /// Identities pushed to it (enabled or disabled).
    total_number_of_entities: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderStatus {
    /// `IDLE`: pushed identities are applied as they come.
    #[serde(rename = "type")]
    kind: String,
}

/// A provider to create or replace (Coveo's `SecurityProviderModel`; other keys are accepted and ignored).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body
pub struct NewProvider {
    /// The id (taken from the path with PUT).
    id: Option<String>,
    name: Option<String>,
    display_name: Option<String>,
    /// `EXPANDED` (default) for identities pushed through the Push API.
    #[schema(rename = "type")]
    kind: Option<String>,
    /// `{"Email Security Provider": {"id": "Email Security Provider", "name": "Email Security Provider"}}`.
    #[schema(value_type = Option<Object>)]
    cascading_security_providers: Option<serde_json::Value>,
    /// `[{"id": "<source id>", "type": "SOURCE"}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    referenced_by: Option<Vec<serde_json::Value>>,
}

impl ProviderAnswer {
    fn of(provider: &SecurityProvider, state: &AppState) -> ProviderAnswer {
        let graph = state.identities.of(&provider.organization_id);
        let identities = graph
            .read()
            .expect("identity graph lock")
            .identities()
            .filter(|i| i.provider_id.eq_ignore_ascii_case(&provider.id))
            .count();
        ProviderAnswer {
            id: provider.id.clone(),
            name: provider.id.clone(),
            display_name: provider.display_name.clone(),
            organization_id: provider.organization_id.clone(),
            kind: provider.provider_type.clone(),
            node_required: false,
            case_sensitive: false,
            cascading_security_providers: provider
                .cascading
                .iter()
                .map(|id| (id.clone(), CascadeAnswer { id: id.clone(), name: id.clone() }))
                .collect(),
            referenced_by: provider
                .sources
                .iter()
                .map(|id| Reference { id: id.clone(), kind: "SOURCE".into() })
                .collect(),
            statistics: ProviderStatistics { total_number_of_entities: identities },
            current_status: ProviderStatus { kind: "IDLE".into() },
        }
    }
}

/// The organization's security providers (the Email Security Provider included).
#[utoipa::path(
    get, path = "/rest/organizations/{org}/securityproviders", tag = "Security providers",
    params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The providers", body = Vec<ProviderAnswer>))
)]
pub async fn list_providers(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<Vec<ProviderAnswer>>> {
    call.require("SECURITY_PROVIDER", "VIEW", "*")?;
    let providers = state
        .catalog
        .providers(&call.organization.id)
        .map_err(|e| storage_failure("The security providers could not be read", e))?;
    Ok(Json(providers.iter().map(|p| ProviderAnswer::of(p, &state)).collect()))
}

/// Create a provider (its id from the body's `id`, else its `name`).
#[utoipa::path(
    post, path = "/rest/organizations/{org}/securityproviders", tag = "Security providers",
    params(("org" = String, Path, description = "Organization id")),
    request_body(content = NewProvider, description = "The provider", content_type = "application/json"),
    responses((status = 201, description = "Created", body = ProviderAnswer), (status = 400, description = "INVALID_JSON"), (status = 409, description = "ALREADY_EXISTS"), (status = 412, description = "MISSING_PARAMETER (id) or INVALID_PARAMETER, naming the member"))
)]
pub async fn create_provider(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    call.require("SECURITY_PROVIDER", "CREATE", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let id = text(&body, "id")?.or(text(&body, "name")?).filter(|id| !id.is_empty());
    let id = id.ok_or_else(|| ApiError::missing_parameter("id"))?;
    if state.catalog.provider(&call.organization.id, &id).map_err(read_failed)?.is_some() {
        return Err(ApiError::new(
            ErrorCode::AlreadyExists,
            format!("Security provider '{id}' already exists; PUT it to replace it."),
        )
        .into());
    }
    let provider = save(&state, &call, &id, &body)?;
    Ok(created(ProviderAnswer::of(&provider, &state)))
}

/// One provider.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/securityproviders/{provider}", tag = "Security providers",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "Provider id")),
    responses((status = 200, description = "The provider", body = ProviderAnswer), (status = 404, description = "SECURITY_PROVIDER_NOT_FOUND"))
)]
pub async fn get_provider(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<ProviderAnswer>> {
    let id = call.param("provider");
    call.require("SECURITY_PROVIDER", "VIEW", id)?;
    let provider = found(&state, &call, id)?;
    Ok(Json(ProviderAnswer::of(&provider, &state)))
}

/// Create or replace a provider (what the SDKs' `createOrUpdateSecurityProvider` calls).
#[utoipa::path(
    put, path = "/rest/organizations/{org}/securityproviders/{provider}", tag = "Security providers",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "Provider id")),
    request_body(content = NewProvider, description = "The provider", content_type = "application/json"),
    responses((status = 200, description = "Replaced", body = ProviderAnswer), (status = 201, description = "Created", body = ProviderAnswer), (status = 400, description = "INVALID_JSON"), (status = 412, description = "INVALID_PARAMETER, naming the member"))
)]
pub async fn put_provider(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let id = call.param("provider").to_string();
    let exists = state.catalog.provider(&call.organization.id, &id).map_err(read_failed)?.is_some();
    call.require("SECURITY_PROVIDER", if exists { "EDIT" } else { "CREATE" }, if exists { &id } else { "*" })?;
    let body = read_body(&state, &headers, body).await?;
    let provider = save(&state, &call, &id, &body)?;
    let status = if exists { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ProviderAnswer::of(&provider, &state))).into_response())
}

/// Delete a provider and the identities pushed to it.
#[utoipa::path(
    delete, path = "/rest/organizations/{org}/securityproviders/{provider}", tag = "Security providers",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "Provider id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "SECURITY_PROVIDER_NOT_FOUND"), (status = 412, description = "INVALID_PARAMETER: the Email Security Provider is built in"))
)]
pub async fn delete_provider(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Response> {
    let id = call.param("provider");
    call.require("SECURITY_PROVIDER", "EDIT", id)?;
    let org = &call.organization.id;
    let provider = found(&state, &call, id)?;
    if provider.id.eq_ignore_ascii_case(EMAIL_PROVIDER) {
        return Err(ApiError::invalid_parameter(
            "provider",
            id,
            "the Email Security Provider is built in and cannot be deleted",
        )
        .into());
    }
    state
        .catalog
        .delete_provider(org, &provider.id)
        .map_err(|e| storage_failure("The provider could not be deleted", e))?;
    state
        .identity_store
        .delete_provider(org, &provider.id)
        .map_err(|e| storage_failure("The provider's identities could not be deleted", e))?;
    state.identities.of(org).write().expect("identity graph lock").remove_provider(&provider.id);
    tracing::info!(organization = org, provider = provider.id, "security provider deleted");
    Ok(no_content())
}

fn found(state: &AppState, call: &OrgCall, id: &str) -> Result<SecurityProvider, ApiError> {
    state.catalog.provider(&call.organization.id, id).map_err(read_failed)?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::SecurityProviderNotFound,
            format!("Security provider '{id}' does not exist in organization '{}'.", call.organization.id),
        )
    })
}

fn read_failed(error: intake_store::StoreError) -> ApiError {
    storage_failure("The security providers could not be read", error)
}

/// Stores the provider `id` as `body` describes it.
fn save(state: &AppState, call: &OrgCall, id: &str, body: &StrictJson) -> Result<SecurityProvider, ApiError> {
    if !matches!(body, StrictJson::Object(_)) {
        return Err(ApiError::invalid_json("The body must be a JSON object (a SecurityProviderModel)."));
    }
    if id.trim().is_empty() || id.len() > 255 {
        return Err(ApiError::invalid_parameter("provider", id, "a provider id is 1 to 255 characters"));
    }
    let org = &call.organization.id;
    let now = state.clock.now_ms();
    let existing = state.catalog.provider(org, id).map_err(read_failed)?;
    let provider = SecurityProvider {
        id: existing.as_ref().map_or_else(|| id.to_string(), |p| p.id.clone()),
        organization_id: org.clone(),
        display_name: text(body, "displayName")?
            .or(text(body, "name")?)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.to_string()),
        provider_type: text(body, "type")?
            .filter(|t| !t.is_empty())
            .map_or_else(|| "EXPANDED".to_string(), |t| t.to_ascii_uppercase()),
        cascading: cascading(body)?,
        sources: referenced_sources(state, org, body)?,
        created_at_ms: existing.as_ref().map_or(now, |p| p.created_at_ms),
        updated_at_ms: now,
    };
    state.catalog.put_provider(&provider).map_err(|e| storage_failure("The provider could not be saved", e))?;
    tracing::info!(organization = org, provider = provider.id, "security provider saved");
    Ok(provider)
}

/// `cascadingSecurityProviders`: `{key: {id?, name?}}`, each naming a provider by its id, else its name, else
/// the key.
fn cascading(body: &StrictJson) -> Result<Vec<String>, ApiError> {
    let entries = match body.get("cascadingSecurityProviders") {
        None | Some(StrictJson::Null) => return Ok(Vec::new()),
        Some(StrictJson::Object(entries)) => entries,
        Some(other) => {
            return Err(ApiError::invalid_parameter(
                "cascadingSecurityProviders",
                other.kind(),
                "it must be an object of providers",
            ));
        }
    };
    entries
        .iter()
        .map(|(key, value)| {
            let named = text(value, "id")?.or(text(value, "name")?).filter(|id| !id.is_empty());
            Ok(named.unwrap_or_else(|| key.clone()))
        })
        .collect()
}

/// `referencedBy`: the sources (`type: SOURCE`) whose items' permissions default to the provider; each must
/// exist.
fn referenced_sources(state: &AppState, organization_id: &str, body: &StrictJson) -> Result<Vec<String>, ApiError> {
    let references = match body.get("referencedBy") {
        None | Some(StrictJson::Null) => return Ok(Vec::new()),
        Some(StrictJson::Array(references)) => references,
        Some(other) => {
            return Err(ApiError::invalid_parameter("referencedBy", other.kind(), "it must be an array of {id, type}"));
        }
    };
    let mut sources = Vec::new();
    for reference in references {
        let kind = text(reference, "type")?.unwrap_or_else(|| "SOURCE".to_string());
        if !kind.eq_ignore_ascii_case("SOURCE") {
            continue;
        }
        let id = text(reference, "id")?
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ApiError::missing_parameter("referencedBy[].id"))?;
        if state.catalog.source(organization_id, &id).is_none() {
            return Err(ApiError::invalid_parameter(
                "referencedBy",
                &id,
                &format!("source '{id}' does not exist in organization '{organization_id}'"),
            ));
        }
        sources.push(id);
    }
    Ok(sources)
}
