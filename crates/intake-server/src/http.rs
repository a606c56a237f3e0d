//! What every endpoint shares: the request id, JSON error bodies, security headers, and strict body reading.
//!
//! Handlers fail with an [`ApiError`]; it travels in the response's extensions to [`envelope`], the
//! outermost layer, which knows the request id and writes the catalog's JSON body. The envelope also turns
//! any other error answer (an unknown route, a wrong method, a caught panic) into the same JSON, so no
//! client ever sees a body it cannot parse.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use intake_model::error::human_size;
use intake_model::{ApiError, ErrorCode};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::AppState;

/// The id of the request being served, also sent back as `X-Request-ID`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = HandlerError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_else(|| RequestId(new_request_id())))
    }
}

pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An [`ApiError`] as a handler's failure; [`envelope`] renders it.
#[derive(Debug)]
pub struct HandlerError(pub ApiError);

impl From<ApiError> for HandlerError {
    fn from(error: ApiError) -> Self {
        HandlerError(error)
    }
}

/// A storage failure in a handler: 503 on a full disk, 409 on a conflict, else 500 (see [`storage_failure`]).
impl From<intake_store::StoreError> for HandlerError {
    fn from(error: intake_store::StoreError) -> Self {
        HandlerError(storage_failure("The change could not be saved", error))
    }
}

impl IntoResponse for HandlerError {
    fn into_response(self) -> Response {
        let mut response =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response();
        response.extensions_mut().insert(self.0);
        response
    }
}

pub type HandlerResult<T> = Result<T, HandlerError>;

/// The catalog's JSON body for an error.
pub fn error_response(error: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = json!({
        "statusCode": error.status(),
        "errorCode": error.code.as_str(),
        "message": error.message,
        "requestId": request_id,
        "resolution": error.code.entry().resolution,
    });
    if let Some(oauth) = error.code.oauth_error() {
        // OAuth clients read RFC 6749's fields.
        body["error"] = oauth.into();
        body["error_description"] = error.message.clone().into();
    }
    let mut response = (status, Json(body)).into_response();
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if error.code == ErrorCode::RequestTimeout {
        // The rest of a crawling body is not worth waiting for.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Intake's limits on a request's head, checked before anything else (hyper's own sit above them).
pub const MAX_URI_BYTES: usize = 32 * 1024;
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;

/// Refuses a request whose head is over the limits, or that came on a connection past the cap and is not
/// for the operations endpoints.
fn check_head(request: &Request) -> Result<(), ApiError> {
    let uri = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Err(ApiError::new(
            ErrorCode::UriTooLong,
            format!(
                "The URI is {uri} bytes long; the limit is {MAX_URI_BYTES} bytes ({}).",
                human_size(MAX_URI_BYTES as u64)
            ),
        ));
    }
    let headers = request.headers();
    let head: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers.len() > MAX_HEADERS || head > MAX_HEAD_BYTES {
        return Err(ApiError::new(
            ErrorCode::RequestHeaderFieldsTooLarge,
            format!(
                "The request has {} headers, {head} bytes in all; the limits are {MAX_HEADERS} headers and {} in all.",
                headers.len(),
                human_size(MAX_HEAD_BYTES as u64)
            ),
        ));
    }
    if let Some(over) = request.extensions().get::<crate::serve::OverCapacity>()
        && !matches!(request.uri().path(), "/health" | "/ready" | "/metrics")
    {
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!(
                "The server has {} connections open, its limit; this one only answers /health, /ready and /metrics \
                 and is closed after this answer. Retry in a moment, and reuse connections.",
                over.max_connections
            ),
        )
        .with_retry_after(1));
    }
    Ok(())
}

/// Wraps a request's body to learn whether it was read to its end; a request without a body counts as read.
fn track_body(request: Request) -> (Request, Arc<AtomicBool>) {
    let headers = request.headers();
    let declared = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0);
    let read = Arc::new(AtomicBool::new(!declared));
    if !declared {
        return (request, read);
    }
    let (parts, body) = request.into_parts();
    let tracked = TrackedBody { inner: body, read: read.clone() };
    (Request::from_parts(parts, Body::new(tracked)), read)
}

/// A request body that records when it has been read to its end.
struct TrackedBody {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The outermost layer: assigns the request id, renders errors as JSON, adds headers, counts the request.
pub async fn envelope(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_string);
    request.extensions_mut().insert(RequestId(request_id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let (request, body_read) = track_body(request);

    let mut response = match check_head(&request) {
        Ok(()) => next.run(request).await,
        Err(error) => HandlerError(error).into_response(),
    };

    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        let injected = response.extensions().get::<crate::faults::Injected>().is_some();
        response = replace_body(response, &error, &request_id);
        if !injected {
            log_error(&error, &request_id, &method, &path);
        }
    } else if (response.status().is_client_error() || response.status().is_server_error())
        && !is_json(response.headers())
    {
        let error = unexplained_error(&response, &method, &path);
        response = replace_body(response, &error, &request_id);
        log_error(&error, &request_id, &method, &path);
    }
    let headers = response.headers_mut();
    if !body_read.load(Ordering::Acquire) {
        // Answered before the body was read (a refusal, an injected fault): hyper cannot reuse the connection, so
        // say so, or a client would send its next request on a connection about to close.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_str(&request_id).expect("request ids are visible ASCII"));
    let framable = response.extensions().get::<Framable>().is_some();
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if framable && *name == "x-frame-options" {
            continue;
        }
        // A handler that set its own (a stricter policy for a page) keeps it.
        headers.entry(*name).or_insert(HeaderValue::from_static(value));
    }
    let route = route.unwrap_or_else(|| "unmatched".to_string());
    state.metrics.observe_request(&route, method.as_str(), response.status().as_u16(), started.elapsed());
    response
}

/// Marks an answer that pages of other origins may show in a frame (the quickview): it gets no
/// `X-Frame-Options`, and sets its own `Content-Security-Policy`.
#[derive(Clone, Copy)]
pub struct Framable;

/// Headers Coveo's Swagger declares on every answer.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("x-xss-protection", "0"),
    (
        "content-security-policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
    ),
];

/// Keeps the status and headers that matter (Allow, Retry-After) and writes the JSON body.
fn replace_body(original: Response, error: &ApiError, request_id: &str) -> Response {
    let mut response = error_response(error, request_id);
    for name in [header::ALLOW, header::RETRY_AFTER, HeaderName::from_static("x-intake-fault")] {
        if let Some(value) = original.headers().get(&name) {
            response.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    // CORS headers, so a page on another origin can read why it was refused.
    for (name, value) in original.headers() {
        if name.as_str().starts_with("access-control-") || name == header::VARY {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// An error answer that did not come from a handler: the router's 404 and 405, a panic's 500.
fn unexplained_error(response: &Response, method: &axum::http::Method, path: &str) -> ApiError {
    match response.status() {
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, format!("No endpoint at '{path}'.")),
        // The router adds the `Allow` header after this layer has run.
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on '{path}'; the Allow header lists the methods it accepts."),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::RequestEntityTooLarge, format!("The body of {method} '{path}' is too large."))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("The Content-Type of {method} '{path}' is not accepted."),
        ),
        status if status.is_server_error() => {
            ApiError::internal("Failed to process the request due to an internal error.")
        }
        status => ApiError::new(ErrorCode::InvalidParameter, format!("The request was refused ({status}).")),
    }
}

fn log_error(error: &ApiError, request_id: &str, method: &axum::http::Method, path: &str) {
    if error.status() >= 500 {
        tracing::error!(request_id, %method, path, code = %error.code, message = %error.message, "request failed");
    } else {
        tracing::debug!(request_id, %method, path, code = %error.code, message = %error.message, "request refused");
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"))
}

/// A storage failure as the client's answer. A full disk is `503` with `Retry-After`: it passes once space is
/// freed, and nothing was stored; so is a database that cannot be reached. A conflict is `409 ALREADY_EXISTS`; anything else `500`. `what` names the
/// write, as in "the file container could not be created".
pub fn storage_failure(what: &str, error: intake_store::StoreError) -> ApiError {
    match error {
        intake_store::StoreError::Conflict(message) => ApiError::new(ErrorCode::AlreadyExists, format!("{message}.")),
        error if error.is_disk_full() => ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!("{what}: the server's disk is full ({error}). Nothing was stored; retry once space is freed."),
        )
        .with_retry_after(5),
        error if error.is_unavailable() => ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!("{what}: its storage is unavailable ({error}). Nothing was stored; retry in a few seconds."),
        )
        .with_retry_after(5),
        error => ApiError::internal(format!("{what}: {error}")),
    }
}

/// A panic in a handler: logged with its message, answered 500 INTERNAL_SERVER_ERROR.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "a handler panicked");
    HandlerError(ApiError::internal(
        "Failed to process the request due to an internal error; the server log has the cause under this request id.",
    ))
    .into_response()
}

/// A blocking task of a handler that ended without an answer (it panicked): a 500.
pub fn task_failed(error: tokio::task::JoinError) -> ApiError {
    ApiError::internal(format!("the work of this request stopped unexpectedly: {error}"))
}

/// Checks that a body comes as JSON. An empty body passes when the endpoint does not need one.
pub fn require_json(headers: &HeaderMap, body_expected: bool) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)"));
    let declared_empty = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) == Some("0");
    if !body_expected && declared_empty {
        return Ok(());
    }
    match content_type {
        Some(value) if media_type(value).eq_ignore_ascii_case("application/json") => Ok(()),
        // Clients that send no body often send no Content-Type either.
        None if !body_expected => Ok(()),
        Some(value) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Type '{value}' is not accepted: send the body as 'application/json'."),
        )),
        None => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The request has no Content-Type header: send the body as 'application/json'.",
        )),
    }
}

/// `application/json; charset=utf-8` → `application/json`.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// What a request body is, the most bytes it may have, and what to do instead when it has more.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    pub what: &'static str,
    pub bytes: u64,
    pub advice: &'static str,
}

impl BodyLimit {
    /// A body for options or small settings (1 MiB), whose advice is to send less.
    pub const fn small(what: &'static str) -> BodyLimit {
        BodyLimit { what, bytes: 1024 * 1024, advice: "Send a smaller body." }
    }
}

/// How many request-body bytes may be held in memory at once, across all requests.
pub const BODY_BUDGET_BYTES: usize = 512 * 1024 * 1024;

/// Bounds the memory held by request bodies: a request reserves its body's size before reading it and keeps the
/// reservation until it is answered. When the budget is spent, new requests wait for it instead of failing.
#[derive(Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget(Arc::new(Semaphore::new(bytes / 1024)))
    }

    /// Reads a body of at most `limit` bytes; a larger one is refused before it is read whole (413).
    pub async fn read(&self, headers: &HeaderMap, body: Body, rule: BodyLimit) -> Result<ReadBody, ApiError> {
        let BodyLimit { what, bytes: limit, advice } = rule;
        let declared =
            headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if let Some(size) = declared.filter(|size| *size > limit) {
            return Err(ApiError::too_large(what, size, limit, advice));
        }
        // A chunked body reserves the whole limit: its size is only known once read.
        let kib = declared.unwrap_or(limit).div_ceil(1024).max(1) as u32;
        let reservation = self.0.clone().acquire_many_owned(kib).await.map_err(|_| {
            ApiError::new(ErrorCode::ServiceUnavailable, "The server is shutting down.").with_retry_after(1)
        })?;
        match axum::body::to_bytes(body, limit as usize).await {
            Ok(bytes) => Ok(ReadBody { bytes, _reservation: reservation }),
            Err(error) if is_length_limit(&error) => Err(ApiError::new(
                ErrorCode::RequestEntityTooLarge,
                format!(
                    "{what} is over the limit of {limit} bytes ({}); it was refused after {limit} bytes. {advice}",
                    human_size(limit)
                ),
            )),
            Err(error) => Err(body_failure(&error).unwrap_or_else(|| {
                ApiError::new(ErrorCode::InvalidJson, format!("The request body could not be read: {error}."))
            })),
        }
    }
}

impl BodyBudget {
    /// A JSON body that may be left out (an empty body means `{}`), as search and logs take their options.
    pub async fn read_optional_json(
        &self,
        headers: &HeaderMap,
        body: Body,
        rule: BodyLimit,
    ) -> Result<serde_json::Value, ApiError> {
        require_json(headers, false)?;
        let what = rule.what;
        let bytes = self.read(headers, body, rule).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_json(format!("{what} is not valid JSON: {e}.")))
    }
}

/// A request body read into memory, holding its share of the [`BodyBudget`] until dropped.
pub struct ReadBody {
    bytes: Bytes,
    _reservation: OwnedSemaphorePermit,
}

impl std::ops::Deref for ReadBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The error of a body that came too slowly (408), if that is what `error` is.
pub fn body_failure(error: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(slow) = current.downcast_ref::<crate::serve::BodyTooSlow>() {
            return Some(ApiError::new(ErrorCode::RequestTimeout, slow.to_string()));
        }
        source = current.source();
    }
    None
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.to_string().contains("length limit exceeded") {
            return true;
        }
        source = current.source();
    }
    false
}

/// The common success answer of an accepted operation (clients may parse it; a JSON object always parses).
pub fn accepted(status: StatusCode, ordering_id: Option<i64>, request_id: &RequestId) -> Response {
    (status, Json(Accepted { ordering_id, request_id: request_id.0.clone() })).into_response()
}

/// What a Push API write answers once the operation is durable.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The operation's order: the `orderingId` given, or the time of acceptance in epoch milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering_id: Option<i64>,
    /// Also in the `X-Request-ID` header, and in the logs of every item of the operation.
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn content_type_rules() {
        assert!(require_json(&headers(&[("content-type", "application/json; charset=utf-8")]), true).is_ok());
        assert!(require_json(&headers(&[("content-type", "Application/JSON")]), true).is_ok());
        let err = require_json(&headers(&[("content-type", "text/plain")]), true).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedMediaType);
        assert!(err.message.contains("'text/plain'"));
        assert!(require_json(&headers(&[]), true).is_err());
        assert!(require_json(&headers(&[]), false).is_ok());
        assert!(require_json(&headers(&[("content-type", "text/plain"), ("content-length", "0")]), false).is_ok());
    }
}
