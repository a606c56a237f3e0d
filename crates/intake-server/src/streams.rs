//! The Stream API of catalog sources, under `/push/v1/organizations/{org}/sources/{src}/stream` (and `/v1`).
//!
//! A full load is a stream: `open` makes it (with a first file container), `chunk` adds a container per batch
//! file, `close` checks every uploaded chunk as a batch file, pins them and journals the load as one operation —
//! answered once durable. `update` and `merge` take one container each, checked and journaled like a batch.
//! `deleteolderthan` is the item endpoint's delete-older-than with epoch milliseconds in the path. Only CATALOG
//! sources take these calls; quotas, limits, pausing, privileges and fault rules apply as to every Push call.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use intake_model::batch::{BatchLayout, BatchSummary, ITEM_BATCH, STREAM_MERGE, STREAM_UPDATE};
use intake_model::{ApiError, ErrorCode, OperationKind, OrderingId};
use intake_store::{CatalogStream, Source};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::context::{SourceCall, unpin_unless_accepted};
use crate::files::{RequiredHeaders, claim_container, new_container, validate_batch};
use crate::http::{HandlerResult, RequestId, storage_failure};
use crate::push::{ignore_body, queue_delay};
use crate::quotas::ItemCounts;
use crate::state::AppState;

/// An open stream, and its chunks, are dropped this long after it was opened.
pub const STREAM_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// The stream routes, relative to the Push API's prefix.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_stream))
        .routes(routes!(request_chunk))
        .routes(routes!(close_stream))
        .routes(routes!(update_stream))
        .routes(routes!(merge_stream))
        .routes(routes!(delete_older_than_stream))
}

/// A new stream: its id, and where to upload its first batch file.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamOpened {
    /// Names the stream in `…/stream/{streamId}/chunk` and `…/close`.
    stream_id: String,
    /// The signed URL of the stream's first file container (a chunk like the others; it may stay empty).
    upload_uri: String,
    file_id: String,
    required_headers: RequiredHeaders,
}

/// A stream operation, accepted: its order (a string, as Coveo's `CatalogStreamOutArgs`) and request id.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamAccepted {
    /// The operation's order: epoch milliseconds at acceptance (for `deleteolderthan`, the given ones).
    ordering_id: String,
    /// Also in the `X-Request-ID` header, and in the logs of every item of the operation.
    request_id: String,
}

fn stream_accepted(status: StatusCode, ordering_id: OrderingId, request_id: &RequestId) -> Response {
    let body = StreamAccepted { ordering_id: ordering_id.to_string(), request_id: request_id.0.clone() };
    (status, axum::Json(body)).into_response()
}

/// Refuses stream calls to a source that is not a catalog.
fn require_catalog(source: &Source) -> Result<(), ApiError> {
    if source.source_type.eq_ignore_ascii_case("CATALOG") {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::SourceNotStreamEnabled,
        format!(
            "Source '{}' is a {} source: only CATALOG sources take Stream API calls. Push to it with …/documents \
             or …/documents/batch, or create a CATALOG source for the stream.",
            source.id, source.source_type
        ),
    ))
}

/// Open a stream for a full load of a catalog source.
#[utoipa::path(
    post, path = "/organizations/{org}/sources/{src}/stream/open", tag = "Stream",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id (a CATALOG source)"),
    ),
    responses((status = 201, description = "The stream, with its first file container", body = StreamOpened), (status = 400, description = "SOURCE_NOT_STREAM_ENABLED: not a CATALOG source"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn open_stream(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    require_catalog(&call.source)?;
    ignore_body(&state, &headers, body).await?;
    let now = state.clock.now_ms();
    let expires_at_ms = now + STREAM_LIFETIME_MS;
    let first = new_container(&state, &call.source.organization_id, expires_at_ms, false)?;
    let stream = CatalogStream {
        stream_id: uuid::Uuid::new_v4().to_string(),
        organization_id: call.source.organization_id.clone(),
        source_id: call.source.id.clone(),
        opened_at_ms: now,
        expires_at_ms,
        closed_at_ms: None,
        chunks: vec![first.file_id.clone()],
    };
    state.catalog.create_stream(&stream).map_err(|e| storage_failure("The stream could not be opened", e))?;
    tracing::info!(source = stream.source_id, stream_id = stream.stream_id, "stream opened");
    let opened = StreamOpened {
        stream_id: stream.stream_id,
        upload_uri: first.upload_uri,
        file_id: first.file_id,
        required_headers: first.required_headers,
    };
    Ok((StatusCode::CREATED, axum::Json(opened)).into_response())
}

/// The open stream named in the path, or why it cannot take more.
fn open_stream_of(state: &AppState, call: &SourceCall, stream_id: &str) -> Result<CatalogStream, ApiError> {
    let source = &call.source;
    let stream = state
        .catalog
        .stream(&source.organization_id, stream_id)
        .map_err(|e| storage_failure("The stream could not be read", e))?
        .filter(|stream| stream.source_id == source.id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::StreamNotFound,
                format!(
                    "Stream '{stream_id}' does not exist on source '{}' (an open stream lives 24 hours; an expired \
                     one is deleted with its chunks). Open a new stream and upload the catalog again.",
                    source.id
                ),
            )
        })?;
    if stream.closed_at_ms.is_some() {
        return Err(ApiError::new(
            ErrorCode::StreamClosed,
            format!(
                "Stream '{stream_id}' of source '{}' is already closed: its full load was accepted. Open a new stream \
                 for another full load, or change items with stream/update or stream/merge.",
                source.id
            ),
        ));
    }
    if state.clock.now_ms() >= stream.expires_at_ms {
        return Err(ApiError::new(
            ErrorCode::StreamNotFound,
            format!(
                "Stream '{stream_id}' of source '{}' expired at {} (an open stream lives 24 hours) and its chunks are \
                 deleted. Open a new stream and upload the catalog again.",
                source.id,
                intake_model::dates::format_ms(stream.expires_at_ms)
            ),
        ));
    }
    Ok(stream)
}

/// Request another chunk (file container) of an open stream.
#[utoipa::path(
    post, path = "/organizations/{org}/sources/{src}/stream/{stream_id}/chunk", tag = "Stream",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id (a CATALOG source)"),
        ("stream_id" = String, Path, description = "The stream's id, from stream/open"),
    ),
    responses((status = 200, description = "A new file container of the stream", body = crate::files::ContainerCreated), (status = 400, description = "SOURCE_NOT_STREAM_ENABLED"), (status = 404, description = "STREAM_NOT_FOUND: unknown or expired"), (status = 412, description = "STREAM_CLOSED"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn request_chunk(
    State(state): State<AppState>,
    call: SourceCall,
    path: axum::extract::Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let (_, _, stream_id) = path.0;
    require_catalog(&call.source)?;
    ignore_body(&state, &headers, body).await?;
    let stream = open_stream_of(&state, &call, &stream_id)?;
    let chunk = new_container(&state, &stream.organization_id, stream.expires_at_ms, false)?;
    let added = state
        .catalog
        .add_chunk(&stream_id, &chunk.file_id)
        .map_err(|e| storage_failure("The chunk could not be added", e))?;
    if !added {
        // Closed (or expired) between the look-up and now: say so as the look-up would.
        open_stream_of(&state, &call, &stream_id)?;
    }
    tracing::info!(stream_id, file_id = chunk.file_id, chunk = stream.chunks.len() + 1, "stream chunk requested");
    Ok((StatusCode::OK, axum::Json(chunk)).into_response())
}

/// Close a stream: its chunks are checked, and the full load is journaled.
#[utoipa::path(
    post, path = "/organizations/{org}/sources/{src}/stream/{stream_id}/close", tag = "Stream",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id (a CATALOG source)"),
        ("stream_id" = String, Path, description = "The stream's id, from stream/open"),
    ),
    responses((status = 200, description = "The full load is journaled (durable): it replaces the catalog once applied", body = StreamAccepted), (status = 400, description = "SOURCE_NOT_STREAM_ENABLED"), (status = 404, description = "STREAM_NOT_FOUND, or ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3 naming the chunk and where it is wrong"), (status = 412, description = "STREAM_CLOSED; DOCUMENT_LIMIT_EXCEEDED"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn close_stream(
    State(state): State<AppState>,
    call: SourceCall,
    path: axum::extract::Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let (_, _, stream_id) = path.0;
    require_catalog(&call.source)?;
    ignore_body(&state, &headers, body).await?;
    let stream = open_stream_of(&state, &call, &stream_id)?;
    let (file_ids, summary) = claim_chunks(&state, &stream).await?;
    let ordering_id = match load_ordering_id(&state, &call.source) {
        Ok(ordering_id) => ordering_id,
        Err(error) => {
            release(&state, &file_ids);
            return Err(error.into());
        }
    };
    let closed = state
        .catalog
        .close_stream(&stream_id, ordering_id)
        .map_err(|e| storage_failure("The stream could not be closed", e));
    if !matches!(closed, Ok(true)) {
        release(&state, &file_ids);
        closed?;
        return Err(open_stream_of(&state, &call, &stream_id)
            .err()
            .unwrap_or_else(|| {
                ApiError::new(ErrorCode::StreamClosed, format!("Stream '{stream_id}' was closed by another call."))
            })
            .into());
    }
    let counts = ItemCounts::items(summary.add_or_update as u64, (summary.add_or_update + summary.delete) as u64);
    let load = OperationKind::StreamLoad { stream_id: stream_id.clone(), file_ids: file_ids.clone() };
    match call.journal_ordered(&state, Some(ordering_id), load, counts).await {
        Ok(ordering_id) => {
            tracing::info!(
                source = stream.source_id,
                stream_id,
                chunks = file_ids.len(),
                items = summary.add_or_update,
                "stream closed: full load accepted"
            );
            Ok(stream_accepted(StatusCode::OK, ordering_id, &call.request_id))
        }
        Err(error) => {
            if let Err(e) = state.catalog.reopen_stream(&stream_id) {
                tracing::warn!(stream_id, error = %e, "a stream whose load was refused could not be reopened");
            }
            release(&state, &file_ids);
            Err(error)
        }
    }
}

/// The `orderingId` of a new full load: the time, but always above the source's previous load's, because a load
/// deletes the items that operations before it wrote (two loads in one millisecond must still be ordered).
fn load_ordering_id(state: &AppState, source: &Source) -> Result<OrderingId, ApiError> {
    let last = state
        .catalog
        .last_load_ms(&source.organization_id, &source.id)
        .map_err(|e| storage_failure("The source's streams could not be read", e))?;
    Ok(state.clock.now_ms().max(last.map_or(OrderingId::MIN, |last| last + 1)))
}

/// Checks and pins every uploaded chunk of the stream, in order; the first's container may stay empty (the
/// SDKs upload to chunks only), every other must have been uploaded. Nothing stays pinned on a refusal.
async fn claim_chunks(state: &AppState, stream: &CatalogStream) -> Result<(Vec<String>, BatchSummary), ApiError> {
    let mut claimed = Vec::new();
    let mut total = BatchSummary::default();
    let count = stream.chunks.len();
    for (number, file_id) in stream.chunks.iter().enumerate() {
        let uploaded = state.catalog.container(file_id).ok().flatten().is_some_and(|c| c.size.is_some());
        if number == 0 && !uploaded {
            continue;
        }
        let organization_id = &stream.organization_id;
        match claim_container(state, organization_id, file_id, |content| validate_batch(content, ITEM_BATCH)).await {
            Ok(summary) => {
                claimed.push(file_id.clone());
                total.add_or_update += summary.add_or_update;
                total.delete += summary.delete;
            }
            Err(error) => {
                release(state, &claimed);
                let advice = if uploaded {
                    String::new()
                } else {
                    " Upload the chunk's batch file (an empty batch {} will do) before closing the stream.".to_string()
                };
                return Err(ApiError::new(
                    error.code,
                    format!(
                        "Stream '{}', chunk {} of {count}: {}{advice}",
                        stream.stream_id,
                        number + 1,
                        error.message
                    ),
                ));
            }
        }
    }
    Ok((claimed, total))
}

/// Lets pinned containers expire again: what they were pinned for was not accepted.
fn release(state: &AppState, file_ids: &[String]) {
    for file_id in file_ids {
        if let Err(error) = state.catalog.unpin_container(file_id) {
            tracing::warn!(file_id, %error, "a file container could not be unpinned");
        }
    }
}

/// Update items of a loaded catalog: `addOrUpdate`, `delete` and `partialUpdate` entries, from a file container.
#[utoipa::path(
    put, path = "/organizations/{org}/sources/{src}/stream/update", tag = "Stream",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id (a loaded CATALOG source)"),
        ("fileId" = String, Query, description = "The file container holding the update file"),
        ("shard" = Option<String>, Query, description = "Accepted for compatibility (Coveo's experimental shard); ignored"),
    ),
    responses((status = 202, description = "Validated and journaled (durable)", body = StreamAccepted), (status = 400, description = "SOURCE_NOT_STREAM_ENABLED"), (status = 404, description = "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3, with where the file is wrong"), (status = 412, description = "FULL_LOAD_REQUIRED; MISSING_PARAMETER; DOCUMENT_LIMIT_EXCEEDED"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn update_stream(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    stream_file(state, call, headers, body, STREAM_UPDATE).await
}

/// Merge items into those of a loaded catalog (a shallow merge: each entry's keys replace the stored item's).
#[utoipa::path(
    put, path = "/organizations/{org}/sources/{src}/stream/merge", tag = "Stream",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id (a loaded CATALOG source)"),
        ("fileId" = String, Query, description = "The file container holding the merge file"),
    ),
    responses((status = 202, description = "Validated and journaled (durable)", body = StreamAccepted), (status = 400, description = "SOURCE_NOT_STREAM_ENABLED"), (status = 404, description = "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3, with where the file is wrong"), (status = 412, description = "FULL_LOAD_REQUIRED; MISSING_PARAMETER; DOCUMENT_LIMIT_EXCEEDED"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn merge_stream(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    stream_file(state, call, headers, body, STREAM_MERGE).await
}

/// An update or merge file: checked whole, pinned, journaled.
async fn stream_file(
    state: AppState,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
    layout: BatchLayout,
) -> HandlerResult<Response> {
    require_catalog(&call.source)?;
    let file_id = call.query.required("fileId")?.to_string();
    ignore_body(&state, &headers, body).await?;
    let source = &call.source;
    let loaded = state
        .catalog
        .last_load_ms(&source.organization_id, &source.id)
        .map_err(|e| storage_failure("The source's streams could not be read", e))?;
    if loaded.is_none() {
        return Err(ApiError::new(
            ErrorCode::FullLoadRequired,
            format!(
                "Catalog source '{}' has no full load yet, and updates apply to a loaded catalog: load the whole \
                 catalog first (stream/open, upload each chunk, stream/{{streamId}}/close), then send updates.",
                source.id
            ),
        )
        .into());
    }
    let summary =
        claim_container(&state, &source.organization_id, &file_id, move |content| validate_batch(content, layout))
            .await?;
    let documents = summary.add_or_update + summary.delete + summary.partial_update;
    let counts = ItemCounts::items(summary.add_or_update as u64, documents as u64);
    let kind = if layout.merges() {
        OperationKind::StreamMerge { file_id: file_id.clone() }
    } else {
        OperationKind::StreamUpdate { file_id: file_id.clone() }
    };
    let accepted = call
        .journal_ordered(&state, None, kind, counts)
        .await
        .map(|ordering_id| stream_accepted(StatusCode::ACCEPTED, ordering_id, &call.request_id));
    if accepted.is_ok() {
        tracing::info!(
            source = source.id,
            file_id,
            entries = documents,
            merge = layout.merges(),
            "stream file accepted"
        );
    }
    unpin_unless_accepted(&state, Some(&file_id), accepted)
}

/// Delete the catalog's items last changed before a time, after `queueDelay` minutes.
#[utoipa::path(
    post, path = "/organizations/{org}/sources/{src}/stream/deleteolderthan/{epoch_milliseconds}", tag = "Stream",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id (a CATALOG source)"),
        ("epoch_milliseconds" = String, Path, description = "Items last changed by an operation with a lower orderingId (by default, acceptance time in epoch milliseconds) are deleted"),
        ("queueDelay" = Option<u32>, Query, description = "Minutes to wait before deleting (default 15)"),
    ),
    responses((status = 201, description = "Journaled (durable)", body = StreamAccepted), (status = 400, description = "SOURCE_NOT_STREAM_ENABLED"), (status = 412, description = "INVALID_PARAMETER: epochMilliseconds or queueDelay"), (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"))
)]
pub async fn delete_older_than_stream(
    State(state): State<AppState>,
    call: SourceCall,
    path: axum::extract::Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let (_, _, epoch) = path.0;
    require_catalog(&call.source)?;
    let ordering_id: OrderingId = epoch.trim().parse().map_err(|_| {
        ApiError::invalid_parameter("epochMilliseconds", &epoch, "it must be epoch milliseconds, a 64-bit integer")
    })?;
    let queue_delay_minutes = queue_delay(&call.query)?;
    ignore_body(&state, &headers, body).await?;
    let kind = OperationKind::DeleteOlderThan { queue_delay_minutes };
    let ordering_id = call.journal_ordered(&state, Some(ordering_id), kind, ItemCounts::default()).await?;
    Ok(stream_accepted(StatusCode::CREATED, ordering_id, &call.request_id))
}
