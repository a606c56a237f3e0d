//! Nodes sharing a database answer for every organization: a call that reads an organization's index (search,
//! the logs API, the security cache's views) reaching a node that does not own that index is sent on, once, to
//! the node that does, and its answer returned as it came. Only the owner's index and item-log marks are
//! current: answering from a copy would show what a commit already made searchable as missing.
//!
//! The organization comes from the path (`/rest/organizations/{org}/…`, `/logs/v1/organizations/{org}…`) or,
//! for the Search API, from `organizationId` in the query string, which Headless and Atomic always send. A
//! search that names its organization only through its key is answered where it lands, by the owner or with
//! a 503 naming the node to call (see `search_api::on_index`).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use intake_model::{ApiError, ErrorCode};
use intake_store::Owner;

use crate::http::{HandlerError, RequestId, X_REQUEST_ID};
use crate::state::AppState;

/// Set on a call sent on to the owner: it is answered there, never sent on again.
pub const X_FORWARDED_BY: HeaderName = HeaderName::from_static("x-intake-forwarded-by");
/// Calls that read an index carry small bodies (queries, forms); a larger one is answered where it lands.
const MAX_FORWARDED_BODY: usize = 4 * 1024 * 1024;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// Headers that describe one connection, not the call.
const HOP_BY_HOP: [HeaderName; 5] =
    [header::CONNECTION, header::HOST, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::UPGRADE];

/// The middleware: sends an index-reading call on to its organization's owner when that is another node.
pub async fn to_owner(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.ownership.shared() || request.headers().contains_key(&X_FORWARDED_BY) {
        return next.run(request).await;
    }
    let Some(organization_id) =
        index_organization(request.uri()).filter(|org| state.catalog.organization(org).is_some())
    else {
        return next.run(request).await; // not a call on an index, or the handler says the organization is unknown
    };
    match state.ownership.owner(&organization_id) {
        Owner::Here => next.run(request).await,
        Owner::Nobody => HandlerError(taken_over(&organization_id)).into_response(),
        Owner::Node { name, url } => match forward(&state, request, &url).await {
            Ok(response) => response,
            Err(error) => HandlerError(unreachable_owner(&organization_id, &name, &url, &error)).into_response(),
        },
    }
}

/// The organization whose index the call reads, if it is one of those calls.
fn index_organization(uri: &axum::http::Uri) -> Option<String> {
    let path = uri.path();
    if path.starts_with("/rest/search/") {
        return url::form_urlencoded::parse(uri.query()?.as_bytes())
            .find(|(key, _)| key == "organizationId")
            .map(|(_, value)| value.into_owned())
            .filter(|value| !value.is_empty());
    }
    let (organization_id, rest) = match path.strip_prefix("/logs/v1/organizations/") {
        Some(rest) => (rest.split('/').next()?, ""),
        None => path.strip_prefix("/rest/organizations/")?.split_once('/')?,
    };
    let reads_index = path.starts_with("/logs/") || rest.starts_with("indexes/") || rest.starts_with("securitycache/");
    (reads_index && !organization_id.is_empty()).then(|| organization_id.to_string())
}

/// Sends the call to `base` (the owner's URL) and returns its answer.
async fn forward(state: &AppState, request: Request, base: &str) -> Result<Response, String> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_FORWARDED_BODY)
        .await
        .map_err(|e| format!("the call's body could not be read to send it on: {e}"))?;
    let target = format!("{}{}", base.trim_end_matches('/'), parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut headers = end_to_end(&parts.headers);
    headers.insert(X_FORWARDED_BY, HeaderValue::from_str(state.ownership.node()).map_err(|e| e.to_string())?);
    if let Some(RequestId(id)) = parts.extensions.get::<RequestId>()
        && let Ok(id) = HeaderValue::from_str(id)
    {
        headers.insert(X_REQUEST_ID.clone(), id);
    }
    let answer = state
        .forwarder
        .request(parts.method, &target)
        .headers(headers)
        .body(body)
        .timeout(FORWARD_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let headers = end_to_end(answer.headers());
    let body: Bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    for name in HOP_BY_HOP {
        kept.remove(name);
    }
    kept
}

/// No node holds the organization's lease right now: its owner stopped and another takes it over.
pub fn taken_over(organization_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        format!(
            "The index of organization '{organization_id}' is being taken over by another node (the node that held \
             it stopped); nothing accepted is lost. Retry in a few seconds."
        ),
    )
    .with_retry_after(1)
}

/// This node holds the organization's lease but its index does not yet hold every operation acknowledged up to
/// journal record `through` (it was just taken over: restored, then the journal applied again).
pub fn catching_up(organization_id: &str, through: intake_store::Seq) -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        format!(
            "The index of organization '{organization_id}' was just taken over by this node and is applying the \
             journal again (through record {through}); it answers once everything acknowledged is searchable. Retry \
             in a second."
        ),
    )
    .with_retry_after(1)
}

fn unreachable_owner(organization_id: &str, node: &str, url: &str, error: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        format!(
            "The index of organization '{organization_id}' is on node '{node}' ({url}), which did not answer: {error}. \
             If that node stopped, another takes the index over within seconds; retry."
        ),
    )
    .with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::index_organization;

    #[test]
    fn the_organization_of_an_index_reading_call() {
        let org = |uri: &str| index_organization(&uri.parse().unwrap());
        assert_eq!(org("/rest/search/v2?organizationId=acme&x=1").as_deref(), Some("acme"));
        assert_eq!(org("/rest/search/v2/html?uniqueId=u&organizationId=a%20b").as_deref(), Some("a b"));
        assert_eq!(org("/rest/search/v2"), None);
        assert_eq!(org("/logs/v1/organizations/acme").as_deref(), Some("acme"));
        assert_eq!(org("/logs/v1/organizations/acme/activity").as_deref(), Some("acme"));
        assert_eq!(org("/rest/organizations/acme/securitycache/explain").as_deref(), Some("acme"));
        assert_eq!(org("/rest/organizations/acme/indexes/i/documents/d/permissions").as_deref(), Some("acme"));
        assert_eq!(org("/rest/organizations/acme/sources"), None, "the catalog is answered by any node");
        assert_eq!(org("/push/v1/organizations/acme/sources/s/documents"), None);
    }
}
