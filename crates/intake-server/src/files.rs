//! File containers: `POST …/files` makes one and answers a signed `uploadUri` on Intake's own upload endpoint;
//! `PUT uploadUri` stores up to 256 MiB, streamed to disk; `PUT …/documents/batch?fileId=` validates the batch
//! file as a stream and journals it.
//!
//! The upload URL carries its own authority, as an S3 pre-signed URL does: `expires` and an HMAC-SHA256 of
//! organization, container and expiry under the server's secret. Clients send it exactly as received, with
//! exactly the `requiredHeaders`, and no `Authorization`.

use std::io::Write;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use intake_model::batch::{
    BatchError, BatchLayout, BatchReader, BatchSummary, ITEM_BATCH, RawEntry, WINDOW_BYTES, WINDOW_ENTRIES,
};
use intake_model::error::human_size;
use intake_model::{ApiError, ErrorCode, OperationKind, Privilege, QueryParams, limits};
use intake_store::FileContainer;
use rayon::prelude::*;

use crate::context::{OrgCall, SourceCall, unpin_unless_accepted};
use crate::http::{BodyLimit, HandlerResult, require_json, storage_failure, task_failed};
use crate::quotas::ItemCounts;
use crate::signing;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The body these calls ignore (`{}` from the SDKs).
const IGNORED_BODY: BodyLimit = BodyLimit::small("The request body (which this call ignores)");
/// A container lives this long after it is made, as Coveo's do.
pub const CONTAINER_LIFETIME_MS: i64 = 60 * 60 * 1000;
const ENCRYPTION_HEADER: &str = "x-amz-server-side-encryption";

/// `POST …/files` and batches, relative to the Push API's prefix.
pub fn push_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_container)).routes(routes!(push_batch))
}

/// The upload endpoint the `uploadUri`s point at.
pub fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload))
}

/// Create a file container.
#[utoipa::path(
    post, path = "/organizations/{org}/files", tag = "File containers",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("useVirtualHostedStyleUrl" = Option<bool>, Query, description = "With presigned S3 uploads, a bucket.host URL; else accepted and ignored (the URL is Intake's own)"),
    ),
    responses((status = 201, description = "The container, with where to upload its content", body = ContainerCreated))
)]
pub async fn create_container(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    if !call.principal.holds_on_any(&Privilege::platform("SOURCE", "EDIT", "*")) {
        return Err(call.principal.denied("the privilege PLATFORM SOURCE EDIT on some source").into());
    }
    let org = &call.organization;
    call.refuse_if_paused()?;
    state.quotas.admit_call(&org.id)?;
    let virtual_hosted = call.query.boolean("useVirtualHostedStyleUrl", false)?;
    require_json(&headers, false)?;
    state.body_budget.read(&headers, body, IGNORED_BODY).await?;
    let now = state.clock.now_ms();
    let created = new_container(&state, &org.id, now + CONTAINER_LIFETIME_MS, virtual_hosted)?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Makes a file container of the organization that lives until `expires_at_ms` (a stream's chunks live as long
/// as their stream); its upload URL expires with it, or within [`CONTAINER_LIFETIME_MS`] if sooner. The URL is a
/// presigned PUT to the bucket when the blob store hands them out (`virtual_hosted` addressing if asked), else
/// Intake's own signed upload endpoint.
pub fn new_container(
    state: &AppState,
    organization_id: &str,
    expires_at_ms: i64,
    virtual_hosted: bool,
) -> Result<ContainerCreated, ApiError> {
    let now = state.clock.now_ms();
    let container = FileContainer {
        file_id: uuid::Uuid::new_v4().to_string(),
        organization_id: organization_id.to_string(),
        created_at_ms: now,
        expires_at_ms,
        size: None,
        pinned: false,
    };
    state
        .catalog
        .create_container(&container)
        .map_err(|e| storage_failure("The file container could not be created", e))?;
    let url_expires_ms = expires_at_ms.min(now + CONTAINER_LIFETIME_MS);
    let presigned = state
        .blobs
        .upload_url(
            &container.file_id,
            std::time::Duration::from_millis((url_expires_ms - now).max(1) as u64),
            virtual_hosted,
        )
        .map_err(|e| storage_failure("The file container's upload URL could not be signed", e))?;
    let upload_uri = presigned.unwrap_or_else(|| upload_uri(state, &container, url_expires_ms));
    tracing::info!(organization = organization_id, file_id = container.file_id, "file container created");
    Ok(ContainerCreated {
        upload_uri,
        file_id: container.file_id,
        required_headers: RequiredHeaders { encryption: "AES256", content_type: "application/octet-stream" },
    })
}

/// A new file container: where to upload its content, for how long, and with which headers.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCreated {
    /// Intake's own signed upload URL; it expires with the container (60 minutes).
    pub upload_uri: String,
    /// Names the container in `…/documents/batch?fileId=` and `compressedBinaryDataFileId`.
    pub file_id: String,
    /// Send exactly these with the upload.
    pub required_headers: RequiredHeaders,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RequiredHeaders {
    #[serde(rename = "x-amz-server-side-encryption")]
    encryption: &'static str,
    #[serde(rename = "Content-Type")]
    content_type: &'static str,
}

/// What an upload URL signs: the container, its organization and the URL's expiry.
fn upload_claim(organization_id: &str, file_id: &str, expires_ms: i64) -> String {
    format!("{organization_id}/{file_id}:{expires_ms}")
}

fn upload_uri(state: &AppState, container: &FileContainer, expires_ms: i64) -> String {
    let claim = upload_claim(&container.organization_id, &container.file_id, expires_ms);
    let signature = hex::encode(signing::sign(&state.auth.token_secret, claim.as_bytes()));
    format!(
        "{}/upload/{}/{}?expires={expires_ms}&signature={signature}",
        state.public_base_url, container.organization_id, container.file_id
    )
}

/// Upload to a file container: exactly the required headers, at most 256 MiB, streamed to disk.
#[utoipa::path(
    put, path = "/upload/{org}/{file_id}", tag = "File containers", security(()),
    params(
        ("org" = String, Path, description = "Organization id"),
        ("file_id" = String, Path, description = "The container's fileId"),
        ("expires" = i64, Query, description = "Part of the signed uploadUri"),
        ("signature" = String, Query, description = "Part of the signed uploadUri"),
    ),
    request_body(content = Vec<u8>, description = "The batch file or the item's raw data", content_type = "application/octet-stream"),
    responses((status = 200, description = "Stored"), (status = 403, description = "Bad or expired signature"), (status = 413, description = "Over 256 MiB"), (status = 415, description = "Missing or wrong required header"))
)]
pub async fn upload(
    State(state): State<AppState>,
    Path((org, file_id)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let query = QueryParams::parse(uri.query());
    let expires: i64 = query.get("expires")?.and_then(|e| e.parse().ok()).unwrap_or(0);
    let given = hex::decode(query.get("signature")?.unwrap_or("")).unwrap_or_default();
    let claim = upload_claim(&org, &file_id, expires);
    if !signing::verify(&state.auth.token_secret, claim.as_bytes(), &given) {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "The upload URL's signature does not match: use the uploadUri exactly as POST /files returned it.",
        )
        .into());
    }
    if state.clock.now_ms() >= expires {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "The upload URL expired at {}: create a new file container.",
                intake_model::dates::format_ms(expires)
            ),
        )
        .into());
    }
    check_upload_headers(&headers)?;
    let container =
        state.catalog.container(&file_id).map_err(|e| storage_failure("The file container could not be read", e))?;
    match container {
        None => {
            return Err(ApiError::new(
                ErrorCode::AccessDenied,
                format!("File container '{file_id}' no longer exists: create a new one."),
            )
            .into());
        }
        Some(c) if c.pinned => {
            return Err(ApiError::new(
                ErrorCode::AccessDenied,
                format!("File container '{file_id}' was already handed to a batch or an item; create a new one."),
            )
            .into());
        }
        Some(_) => {}
    }
    let size = store_upload(&state, &headers, body, &file_id).await?;
    state
        .catalog
        .set_container_size(&file_id, size)
        .map_err(|e| storage_failure("The upload could not be recorded", e))?;
    tracing::info!(file_id, size, "file container uploaded");
    Ok(StatusCode::OK.into_response())
}

/// Exactly `Content-Type: application/octet-stream` and `x-amz-server-side-encryption: AES256`.
fn check_upload_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = |name| headers.get(name).map(|v| v.to_str().unwrap_or("(not text)").trim().to_string());
    match value(header::CONTENT_TYPE.as_str()) {
        Some(v) if v.eq_ignore_ascii_case("application/octet-stream") => {}
        Some(v) => {
            return Err(unsupported(&format!(
                "Content-Type is '{v}'; the upload needs 'Content-Type: application/octet-stream'"
            )));
        }
        None => {
            return Err(unsupported(
                "the Content-Type header is missing; the upload needs 'Content-Type: application/octet-stream'",
            ));
        }
    }
    match value(ENCRYPTION_HEADER) {
        Some(v) if v == "AES256" => Ok(()),
        Some(v) => {
            Err(unsupported(&format!("{ENCRYPTION_HEADER} is '{v}'; the upload needs '{ENCRYPTION_HEADER}: AES256'")))
        }
        None => Err(unsupported(&format!(
            "the {ENCRYPTION_HEADER} header is missing; send the requiredHeaders of POST /files: '{ENCRYPTION_HEADER}: AES256'"
        ))),
    }
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, format!("The upload was refused: {what}."))
}

fn too_large(size: u64) -> ApiError {
    let limit = limits::MAX_CONTAINER_BYTES;
    ApiError::new(
        ErrorCode::RequestEntityTooLarge,
        format!(
            "The upload is {size} bytes or more; a file container holds at most {limit} bytes ({}). Split the batch.",
            human_size(limit)
        ),
    )
}

/// Streams the body to the blob store, never past the container limit; the container's content changes only
/// once the whole upload is durable.
async fn store_upload(state: &AppState, headers: &HeaderMap, body: Body, file_id: &str) -> Result<u64, ApiError> {
    let limit = limits::MAX_CONTAINER_BYTES;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(size) = declared.filter(|size| *size > limit) {
        return Err(too_large(size));
    }
    let unavailable = |e: &dyn std::fmt::Display| {
        ApiError::new(ErrorCode::ServiceUnavailable, format!("The upload could not be stored: {e}."))
            .with_retry_after(1)
    };
    // Dropped on any failure below, the writer leaves nothing behind.
    let mut writer = state.blobs.create(file_id).map_err(|e| unavailable(&e))?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            crate::http::body_failure(&e).unwrap_or_else(|| {
                ApiError::new(ErrorCode::InvalidParameter, format!("The upload was interrupted: {e}."))
            })
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(size));
        }
        // Small blocking writes to the page cache (local blobs); the one sync is in `finish`, off the async threads.
        writer.write_all(&chunk).map_err(|e| unavailable(&e))?;
    }
    tokio::task::spawn_blocking(move || writer.finish()).await.map_err(task_failed)?.map_err(|e| unavailable(&e))
}

/// Add, update and delete items with a batch file from a container.
#[utoipa::path(
    put, path = "/organizations/{org}/sources/{src}/documents/batch", tag = "Items",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("src" = String, Path, description = "Source id"),
        ("fileId" = String, Query, description = "The file container holding the batch file"),
        ("orderingId" = Option<i64>, Query, description = "Order of every operation of the batch"),
    ),
    responses((status = 202, description = "Validated and journaled (durable)", body = crate::http::Accepted), (status = 404, description = "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3, with where the batch file is wrong"))
)]
pub async fn push_batch(
    State(state): State<AppState>,
    call: SourceCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    let file_id = call.query.required("fileId")?.to_string();
    let ordering_id = call.query.ordering_id("orderingId")?;
    require_json(&headers, false)?;
    state.body_budget.read(&headers, body, IGNORED_BODY).await?;
    let organization_id = call.source.organization_id.clone();
    let summary =
        claim_container(&state, &organization_id, &file_id, |content| validate_batch(content, ITEM_BATCH)).await?;
    tracing::info!(
        organization = organization_id,
        file_id,
        adds = summary.add_or_update,
        deletes = summary.delete,
        "batch accepted"
    );
    let counts = ItemCounts::items(summary.add_or_update as u64, (summary.add_or_update + summary.delete) as u64);
    let batch = OperationKind::Batch { file_id: file_id.clone() };
    let accepted = call.journal_counted(&state, ordering_id, batch, counts).await;
    unpin_unless_accepted(&state, Some(&file_id), accepted)
}

/// Checks that `file_id` is a container of the organization with an uploaded file that `validate` accepts
/// (read off the async threads), and pins it for the operation about to be journaled. Every refusal is
/// ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3 saying why.
pub async fn claim_container<T: Send + 'static>(
    state: &AppState,
    organization_id: &str,
    file_id: &str,
    validate: impl FnOnce(Box<dyn std::io::Read + Send>) -> Result<T, BatchError> + Send + 'static,
) -> Result<T, ApiError> {
    let unreadable = |why: String| {
        ApiError::new(ErrorCode::ErrorDeserializingBatchDocumentFromS3, format!("File container '{file_id}': {why}."))
    };
    let container = state
        .catalog
        .container(file_id)
        .map_err(|e| storage_failure("The file container could not be read", e))?
        .filter(|c| c.organization_id == organization_id)
        .ok_or_else(|| {
            unreadable("it does not exist (it expired, was already used, or belongs to another organization)".into())
        })?;
    if container.pinned {
        return Err(unreadable("it was already handed to another batch or item".into()));
    }
    if state.clock.now_ms() >= container.expires_at_ms {
        return Err(unreadable(format!("it expired at {}", intake_model::dates::format_ms(container.expires_at_ms))));
    }
    if container.size.is_none() && !uploaded_straight_to_store(state, file_id)? {
        return Err(unreadable("it was never uploaded to: PUT the batch file to its uploadUri first".into()));
    }
    let blobs = state.blobs.clone();
    let id = file_id.to_string();
    // A store that cannot be read now (when opened, or halfway through) is a 503 to retry, not a fault of the
    // file.
    let checked = tokio::task::spawn_blocking(move || match blobs.open(&id) {
        Ok(content) => match validate(content) {
            Err(error) if error.unreadable => Err(intake_store::StoreError::Unavailable(error.message)),
            checked => Ok(checked.map_err(|e| e.message)),
        },
        Err(error) if error.is_unavailable() => Err(error),
        Err(error) => Ok(Err(error.to_string())),
    })
    .await
    .map_err(task_failed)?
    .map_err(|e| storage_failure("The file container could not be read", e))?
    .map_err(unreadable)?;
    if !state.catalog.pin_container(file_id).map_err(|e| storage_failure("The batch could not be accepted", e))? {
        return Err(unreadable("it was already handed to another batch or item".into()));
    }
    Ok(checked)
}

/// Whether content was uploaded to the container by a presigned URL, straight to the store (Intake did not see
/// it): its size is recorded then, and content over the upload limit refused as an upload through Intake is.
fn uploaded_straight_to_store(state: &AppState, file_id: &str) -> Result<bool, ApiError> {
    let size = state.blobs.size(file_id).map_err(|e| storage_failure("The file container could not be read", e))?;
    let Some(size) = size else { return Ok(false) };
    if size > limits::MAX_CONTAINER_BYTES {
        return Err(too_large(size));
    }
    state
        .catalog
        .set_container_size(file_id, size)
        .map_err(|e| storage_failure("The file container could not be read", e))?;
    Ok(true)
}

/// Checks the structure of a batch file (or of another file of the same form, as `layout` says): split here, its
/// entries checked on every core; the first fault in file order is the one reported.
pub fn validate_batch(content: impl std::io::Read, layout: BatchLayout) -> Result<BatchSummary, BatchError> {
    let mut entries = BatchReader::with_layout(content, layout);
    loop {
        let window = entries.next_window(WINDOW_ENTRIES, WINDOW_BYTES)?;
        if window.is_empty() {
            return Ok(entries.summary());
        }
        if let Some(Err(fault)) = window.par_iter().map(RawEntry::check).find_first(Result::is_err) {
            return Err(fault);
        }
    }
}
