//! The Push API's security identity endpoints, under `/push/v1/organizations/{org}/providers/{provider}` (and
//! the legacy `/v1`): an identity with its members, an alias, disabling one or the old ones, and identity batch
//! files. Each is checked whole ([`ProviderCall`], then the body), journaled, and answered once durable; the
//! applier applies it (highest `orderingId` wins) and logs each identity's fate under the provider.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use intake_model::batch::validate_identities;
use intake_model::identity::{IdentityBodyKind, parse_identity_body};
use intake_model::{ApiError, OperationKind, limits};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::{ProviderCall, unpin_unless_accepted};
use crate::files::claim_container;
use crate::http::{BodyLimit, HandlerResult, require_json};
use crate::state::AppState;

const IDENTITY_REQUEST: BodyLimit = BodyLimit {
    what: "The security identity request",
    bytes: limits::MAX_SINGLE_REQUEST_BYTES,
    advice: "Push many identities (or a group with very many members) as an identity batch through a file container.",
};
const IGNORED_BODY: BodyLimit = BodyLimit::small("The request body (which this call ignores)");

/// The identity routes, relative to the Push API's prefix.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_identity, disable_identity))
        .routes(routes!(put_alias))
        .routes(routes!(put_identity_batch))
        .routes(routes!(disable_old_identities))
}

/// Add or update a security identity, with its members and granted identities.
#[utoipa::path(
    put, path = "/organizations/{org}/providers/{provider}/permissions", tag = "Security identities",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("provider" = String, Path, description = "Security identity provider id"),
        ("orderingId" = Option<i64>, Query, description = "Order of the operation; default: epoch milliseconds"),
    ),
    request_body(content = IdentityBody, description = "The identity", content_type = "application/json"),
    responses((status = 202, description = "Journaled (durable); applied asynchronously", body = crate::http::Accepted), (status = 400, description = "INVALID_JSON, naming the key"), (status = 412, description = "INVALID_PARAMETER (orderingId)"), (status = 413, description = "REQUEST_ENTITY_TOO_LARGE: over 6 MiB"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn put_identity(
    State(state): State<AppState>,
    call: ProviderCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    journal_body(&state, &call, &headers, body, IdentityBodyKind::Members).await
}

/// Disable a security identity (it stays listed, granting nothing).
#[utoipa::path(
    delete, path = "/organizations/{org}/providers/{provider}/permissions", tag = "Security identities",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("provider" = String, Path, description = "Security identity provider id"),
        ("orderingId" = Option<i64>, Query, description = "Order of the operation"),
    ),
    request_body(content = BaseIdentityBody, description = "The identity", content_type = "application/json"),
    responses((status = 202, description = "Journaled (durable)", body = crate::http::Accepted), (status = 400, description = "INVALID_JSON, naming the key"), (status = 412, description = "INVALID_PARAMETER (orderingId)"), (status = 413, description = "REQUEST_ENTITY_TOO_LARGE"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn disable_identity(
    State(state): State<AppState>,
    call: ProviderCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    journal_body(&state, &call, &headers, body, IdentityBodyKind::Deleted).await
}

/// Add or update an alias: the identity is the same person as identities of providers this one cascades to.
#[utoipa::path(
    put, path = "/organizations/{org}/providers/{provider}/mappings", tag = "Security identities",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("provider" = String, Path, description = "Security identity provider id"),
        ("orderingId" = Option<i64>, Query, description = "Order of the operation"),
    ),
    request_body(content = MappedIdentityBody, description = "The identity and its aliases", content_type = "application/json"),
    responses((status = 202, description = "Journaled (durable)", body = crate::http::Accepted), (status = 400, description = "INVALID_JSON, naming the key"), (status = 412, description = "INVALID_PARAMETER (orderingId)"), (status = 413, description = "REQUEST_ENTITY_TOO_LARGE"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn put_alias(
    State(state): State<AppState>,
    call: ProviderCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    journal_body(&state, &call, &headers, body, IdentityBodyKind::Mappings).await
}

/// Add, update and disable identities with an identity batch file from a file container.
#[utoipa::path(
    put, path = "/organizations/{org}/providers/{provider}/permissions/batch", tag = "Security identities",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("provider" = String, Path, description = "Security identity provider id"),
        ("fileId" = String, Query, description = "The file container holding {members, mappings, deleted}"),
        ("orderingId" = Option<i64>, Query, description = "Order of every operation of the batch"),
    ),
    responses((status = 202, description = "Validated and journaled (durable)", body = crate::http::Accepted), (status = 404, description = "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3, with where the file is wrong"), (status = 412, description = "MISSING_PARAMETER (fileId) or INVALID_PARAMETER"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn put_identity_batch(
    State(state): State<AppState>,
    call: ProviderCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let file_id = call.query.required("fileId")?.to_string();
    let ordering_id = call.query.ordering_id("orderingId")?;
    require_json(&headers, false)?;
    state.body_budget.read(&headers, body, IGNORED_BODY).await?;
    let organization_id = call.provider.organization_id.clone();
    let identities = claim_container(&state, &organization_id, &file_id, validate_identities).await?;
    tracing::info!(
        organization = organization_id,
        provider = call.provider.id,
        file_id,
        identities,
        "identity batch accepted"
    );
    let batch = OperationKind::IdentityBatch { provider_id: call.provider.id.clone(), file_id: file_id.clone() };
    let accepted = call.journal(&state, ordering_id, batch, identities as u64).await;
    unpin_unless_accepted(&state, Some(&file_id), accepted)
}

/// Disable the provider's identities last updated by an operation older than `orderingId`, after `queueDelay`.
#[utoipa::path(
    delete, path = "/organizations/{org}/providers/{provider}/permissions/olderthan", tag = "Security identities",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("provider" = String, Path, description = "Security identity provider id"),
        ("orderingId" = i64, Query, description = "Identities last updated by an operation with a strictly lower orderingId are disabled"),
        ("queueDelay" = Option<u32>, Query, description = "Minutes to wait first (default 15)"),
    ),
    responses((status = 202, description = "Journaled (durable)", body = crate::http::Accepted), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the parameter"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn disable_old_identities(
    State(state): State<AppState>,
    call: ProviderCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let ordering_id = call.query.ordering_id("orderingId")?.ok_or_else(|| ApiError::missing_parameter("orderingId"))?;
    let queue_delay_minutes = call
        .query
        .non_negative("queueDelay", limits::MAX_QUEUE_DELAY_MINUTES)?
        .map_or(limits::DEFAULT_QUEUE_DELAY_MINUTES, |minutes| minutes as u32);
    require_json(&headers, false)?;
    state.body_budget.read(&headers, body, IGNORED_BODY).await?;
    let kind = OperationKind::DisableOldIdentities { provider_id: call.provider.id.clone(), queue_delay_minutes };
    call.journal(&state, Some(ordering_id), kind, 0).await
}

/// Reads, checks and journals a single-identity body.
async fn journal_body(
    state: &AppState,
    call: &ProviderCall,
    headers: &HeaderMap,
    body: Body,
    kind: IdentityBodyKind,
) -> HandlerResult<Response> {
    let ordering_id = call.query.ordering_id("orderingId")?;
    require_json(headers, true)?;
    let body = state.body_budget.read(headers, body, IDENTITY_REQUEST).await?;
    let change = parse_identity_body(&body, kind)?;
    drop(body);
    let operation = OperationKind::Identity { provider_id: call.provider.id.clone(), change };
    call.journal(state, ordering_id, operation, 1).await
}

/// `{identity: {name, type, additionalInfo}, members: [identity], wellKnowns: [identity]}`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body
pub struct IdentityBody {
    #[schema(value_type = Object)]
    identity: serde_json::Value,
    #[schema(value_type = Option<Vec<Object>>)]
    members: Option<Vec<serde_json::Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    well_knowns: Option<Vec<serde_json::Value>>,
}

/// `{identity: {name, type, additionalInfo}, mappings: [{name, type, additionalInfo, provider}], wellKnowns}`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct MappedIdentityBody {
    #[schema(value_type = Object)]
    identity: serde_json::Value,
    #[schema(value_type = Option<Vec<Object>>)]
    mappings: Option<Vec<serde_json::Value>>,
    #[schema(value_type = Option<Vec<Object>>)]
    well_knowns: Option<Vec<serde_json::Value>>,
}

/// `{identity: {name, type, additionalInfo}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct BaseIdentityBody {
    #[schema(value_type = Object)]
    identity: serde_json::Value,
}
