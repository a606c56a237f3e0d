//! Organizations: create (master key), list, read, delete (master key), pause, resume, status.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use intake_model::ApiError;
use intake_model::{OperationKind, Privilege};
use intake_store::Organization;
use intake_store::catalog::random_id;
use serde::Serialize;
use utoipa::ToSchema;

use super::{created, no_content, text};
use crate::auth::Principal;
use crate::context::{OrgCall, read_body};
use crate::http::HandlerResult;
use crate::state::AppState;

/// An organization to create.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct NewOrganization {
    /// Made from the display name when absent.
    id: Option<String>,
    display_name: String,
}

/// An organization, as Coveo's Platform API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationAnswer {
    id: String,
    display_name: String,
    /// Always `PRODUCTION`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Epoch milliseconds.
    created_date: i64,
    paused: bool,
    read_only: bool,
}

impl From<&Organization> for OrganizationAnswer {
    fn from(organization: &Organization) -> OrganizationAnswer {
        OrganizationAnswer {
            id: organization.id.clone(),
            display_name: organization.display_name.clone(),
            kind: "PRODUCTION",
            created_date: organization.created_at_ms,
            paused: organization.paused,
            read_only: false,
        }
    }
}

/// An organization's status, as Coveo's status endpoint reports it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationStatus {
    /// Always `HEALTHY`.
    status: &'static str,
    /// `ACTIVE` or `PAUSED`.
    life_cycle_state: &'static str,
    /// `ACTIVE` or `PAUSED`.
    pause_state: &'static str,
    paused: bool,
    resumable: bool,
    read_only: bool,
    error_codes: Vec<String>,
}

/// Create an organization (master key only).
#[utoipa::path(
    post, path = "/rest/organizations", tag = "Organizations",
    request_body(content = NewOrganization, description = "The organization to create", content_type = "application/json"),
    responses((status = 201, description = "The organization", body = OrganizationAnswer), (status = 400, description = "INVALID_JSON: the body is not a JSON object of the shape shown, or repeats a key"), (status = 403, description = "ACCESS_DENIED: only the master key creates organizations"), (status = 409, description = "ALREADY_EXISTS"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the member"))
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
    // Read before the organization exists: none of its operations can be journaled before this position.
    let journal_end = *state.journal.durable().borrow();
    let organization =
        state.catalog.create_organization(&id, display_name.as_deref().unwrap_or(&id), state.clock.now_ms())?;
    tracing::info!(organization = id, "organization created");
    match state.ownership.claim_new(&id, journal_end) {
        Ok(()) => index_opened(&state, &id).await,
        // Another node takes the lease within a lease renewal and applies the journal from its start.
        Err(error) => {
            tracing::warn!(organization = id, %error, "the new organization's index lease could not be taken")
        }
    }
    Ok(created(OrganizationAnswer::from(&organization)))
}

/// With shared leases, waits (a moment, at most [`INDEX_OPENING`]) until the applier opened the new organization's
/// empty index, so that a search right after the answer finds it rather than a 503.
async fn index_opened(state: &AppState, organization_id: &str) {
    if !state.ownership.shared() {
        return;
    }
    let deadline = tokio::time::Instant::now() + INDEX_OPENING;
    while state.indexes.get(organization_id).is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// How long creating an organization waits for its index to open (with shared leases).
const INDEX_OPENING: std::time::Duration = std::time::Duration::from_secs(5);

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
    responses((status = 200, description = "The organizations the caller may view", body = Vec<OrganizationAnswer>))
)]
pub async fn list_organizations(
    State(state): State<AppState>,
    principal: Principal,
) -> HandlerResult<Json<Vec<OrganizationAnswer>>> {
    let visible = state
        .catalog
        .organizations()
        .into_iter()
        .filter(|org| principal.organization_id().is_none_or(|own| own == org.id))
        .filter(|org| principal.holds(&Privilege::platform("ORGANIZATION", "VIEW", &org.id)));
    Ok(Json(visible.map(|org| OrganizationAnswer::from(&org)).collect()))
}

/// One organization.
#[utoipa::path(
    get, path = "/rest/organizations/{org}", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization", body = OrganizationAnswer), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn get_organization(call: OrgCall) -> HandlerResult<Json<OrganizationAnswer>> {
    call.require("ORGANIZATION", "VIEW", &call.organization.id)?;
    Ok(Json(OrganizationAnswer::from(&call.organization)))
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
    state.catalog.delete_organization(&id)?;
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
    state.catalog.set_paused(&call.organization.id, paused)?;
    tracing::info!(organization = call.organization.id, paused, "organization pause state changed");
    Ok(no_content())
}

/// An organization's status, as Coveo's status endpoint reports it.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/status", tag = "Organizations", params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization's status", body = OrganizationStatus), (status = 403, description = "ACCESS_DENIED: the key lacks the privilege the message names"), (status = 404, description = "ORGANIZATION_NOT_FOUND"))
)]
pub async fn organization_status(call: OrgCall) -> HandlerResult<Json<OrganizationStatus>> {
    call.require("ORGANIZATION", "VIEW", &call.organization.id)?;
    let state = if call.organization.paused { "PAUSED" } else { "ACTIVE" };
    Ok(Json(OrganizationStatus {
        status: "HEALTHY",
        life_cycle_state: state,
        pause_state: state,
        paused: call.organization.paused,
        resumable: call.organization.paused,
        read_only: false,
        error_codes: Vec::new(),
    }))
}
