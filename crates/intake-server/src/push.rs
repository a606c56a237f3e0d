//! The Push API's item endpoints, under `/push/v1/organizations/{org}` and the legacy `/v1/organizations/{org}`.
//!
//! Each handler checks everything a client can get wrong, in the order a client would fix it (credentials,
//! organization, source — all in [`SourceCall`] — then parameters, Content-Type, size, body), journals the
//! operation and answers only once it is durable.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use intake_model::item::{Content, ItemContext, parse_item};
use intake_model::{ApiError, CompressionType, OperationKind, QueryParams, SourceStatus, limits};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::{SourceCall, pin_item_container, unpin_unless_accepted};
use crate::http::{BodyLimit, HandlerResult, accepted, require_json, storage_failure};
use crate::state::AppState;

/// Bodies the endpoint ignores are still read (to keep the connection usable) up to this size.
const IGNORED_BODY: BodyLimit = BodyLimit::small("The request body (which this call ignores)");
const ITEM_REQUEST: BodyLimit = BodyLimit {
    what: "The item request",
    bytes: limits::MAX_SINGLE_REQUEST_BYTES,
    advice: "Push large items through a file container ('compressedBinaryDataFileId') and many items as a batch.",
};

/// The item and status routes, relative to the Push API's prefix.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_document, delete_document))
        .routes(routes!(delete_older_than))
        .routes(routes!(set_status))
}

/// Add or update an item.
#[utoipa::path(
    put, path = "/organizations/{org}/sources/{src}/documents", tag = "Items",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id"),
        ("documentId" = String, Query, description = "The item's URI (form-encoded)"),
        ("orderingId" = Option<i64>, Query, description = "Order of the operation; default: epoch milliseconds"),
        ("compressionType" = Option<String>, Query, description = "UNCOMPRESSED, DEFLATE, GZIP, LZMA or ZLIB (default ZLIB)"),
    ),
    request_body(content = DocumentBody, description = "The item", content_type = "application/json"),
    responses((status = 202, description = "Journaled (durable); applied asynchronously", body = crate::http::Accepted), (status = 400, description = "INVALID_JSON: the body is not an item (the message gives the line, column and key)"), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the parameter; DOCUMENT_LIMIT_EXCEEDED"), (status = 413, description = "REQUEST_ENTITY_TOO_LARGE: over 6 MiB; push it through a file container"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE: not application/json"), (status = 429, description = "TOO_MANY_DOCUMENTS_DAILY (with Retry-After)"))
)]
pub async fn put_document(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let document_id = call.query.document_id()?;
    let ordering_id = call.query.ordering_id("orderingId")?;
    let compression = compression_type(&call.query)?;
    require_json(&headers, true)?;
    // Held to the end: the body's share of the memory budget lasts until the operation is journaled.
    let body = state.body_budget.read(&headers, body, ITEM_REQUEST).await?;
    let item = parse_item(&body, ItemContext { document_id: Some(document_id), compression })?;
    let pinned = match &item.content {
        Content::FileContainer { file_id, .. } if pin_item_container(&state, &call.source.organization_id, file_id) => {
            Some(file_id.clone())
        }
        _ => None,
    };
    let accepted = call.journal(&state, ordering_id, OperationKind::AddOrUpdate(Box::new(item))).await;
    unpin_unless_accepted(&state, pinned.as_deref(), accepted)
}

/// Delete an item and, optionally, its children.
#[utoipa::path(
    delete, path = "/organizations/{org}/sources/{src}/documents", tag = "Items",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id"),
        ("documentId" = String, Query, description = "The item's URI"),
        ("deleteChildren" = Option<bool>, Query, description = "Also delete the items whose URI starts with documentId + '/'"),
        ("orderingId" = Option<i64>, Query, description = "Order of the operation"),
    ),
    responses((status = 202, description = "Journaled (durable)", body = crate::http::Accepted), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the parameter"))
)]
pub async fn delete_document(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let document_id = call.query.document_id()?.to_string();
    let delete_children = call.query.boolean("deleteChildren", false)?;
    let ordering_id = call.query.ordering_id("orderingId")?;
    ignore_body(&state, &headers, body).await?;
    call.journal(&state, ordering_id, OperationKind::Delete { document_id, delete_children }).await
}

/// Delete the items whose last operation is older than `orderingId`, after `queueDelay` minutes.
#[utoipa::path(
    delete, path = "/organizations/{org}/sources/{src}/documents/olderthan", tag = "Items",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id"),
        ("orderingId" = i64, Query, description = "Items last updated by an operation with a strictly lower orderingId are deleted"),
        ("queueDelay" = Option<u32>, Query, description = "Minutes to wait before deleting (default 15)"),
    ),
    responses((status = 202, description = "Journaled (durable)", body = crate::http::Accepted), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER, naming the parameter"))
)]
pub async fn delete_older_than(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let ordering_id = call.query.ordering_id("orderingId")?.ok_or_else(|| ApiError::missing_parameter("orderingId"))?;
    let queue_delay_minutes = queue_delay(&call.query)?;
    ignore_body(&state, &headers, body).await?;
    call.journal(&state, Some(ordering_id), OperationKind::DeleteOlderThan { queue_delay_minutes }).await
}

/// Set the status of a Push source (an activity); answered 201 with a JSON body, which the Node SDK parses.
#[utoipa::path(
    post, path = "/organizations/{org}/sources/{src}/status", tag = "Sources",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id"),
        ("statusType" = String, Query, description = "INCREMENTAL, REFRESH, REBUILD or IDLE"),
    ),
    responses((status = 201, description = "Status set", body = crate::http::Accepted), (status = 412, description = "MISSING_PARAMETER or INVALID_PARAMETER: statusType must be REBUILD, REFRESH, INCREMENTAL or IDLE"))
)]
pub async fn set_status(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let raw = call.query.required("statusType")?;
    let status = SourceStatus::parse(raw).ok_or_else(|| {
        ApiError::invalid_parameter("statusType", raw, &format!("allowed values are {}", SourceStatus::ALLOWED))
    })?;
    ignore_body(&state, &headers, body).await?;
    let source = &call.source;
    state
        .catalog
        .set_source_status(&source.organization_id, &source.id, status, state.clock.now_ms())
        .map_err(|e| storage_failure("The source status could not be saved", e))?;
    tracing::info!(source = source.id, status = status.as_str(), request_id = call.request_id.0, "source status set");
    Ok(accepted(StatusCode::CREATED, None, &call.request_id))
}

fn compression_type(query: &QueryParams) -> Result<Option<CompressionType>, ApiError> {
    match query.get("compressionType")? {
        None | Some("") => Ok(None),
        Some(raw) => CompressionType::parse(raw).map(Some).ok_or_else(|| {
            ApiError::invalid_parameter(
                "compressionType",
                raw,
                &format!("allowed values are {}", CompressionType::ALLOWED),
            )
        }),
    }
}

/// `queueDelay` of a delete-older-than, in minutes (Coveo's default when absent).
pub fn queue_delay(query: &QueryParams) -> Result<u32, ApiError> {
    Ok(query
        .non_negative("queueDelay", limits::MAX_QUEUE_DELAY_MINUTES)?
        .map_or(limits::DEFAULT_QUEUE_DELAY_MINUTES, |minutes| minutes as u32))
}

/// Bodies of calls that need none (`{}` from the Node SDK) are read and ignored, but must still be JSON.
pub async fn ignore_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    require_json(headers, false)?;
    state.body_budget.read(headers, body, IGNORED_BODY).await.map(drop)
}

/// An item, as the Push API takes it (Coveo's DocumentBody): its content in at most one of `data`,
/// `compressedBinaryData` and `compressedBinaryDataFileId`; every other key is metadata (a string, a number, a
/// boolean, or an array of them).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct DocumentBody {
    /// The item's text or HTML.
    data: Option<String>,
    /// The item's bytes, compressed as `compressionType` says, in base64.
    compressed_binary_data: Option<String>,
    /// A file container holding the item's bytes, compressed as `compressionType` says.
    compressed_binary_data_file_id: Option<String>,
    /// `UNCOMPRESSED`, `DEFLATE`, `GZIP`, `LZMA` or `ZLIB` (default `ZLIB`).
    compression_type: Option<String>,
    /// Such as `.html`, `.txt`, `.pdf`.
    file_extension: Option<String>,
    /// The `documentId` of the item's parent.
    parent_id: Option<String>,
    /// Permission sets: `[{allowAnonymous?, allowedPermissions?, deniedPermissions?}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    permissions: Option<Vec<serde_json::Value>>,
    title: Option<String>,
    /// ISO 8601 (or epoch milliseconds, as a number).
    date: Option<String>,
    clickable_uri: Option<String>,
    author: Option<String>,
}
