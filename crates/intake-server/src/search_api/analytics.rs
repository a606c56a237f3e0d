//! Coveo's usage analytics endpoints, answered so that a search page with analytics on never shows an error for
//! them. Intake records nothing: the answers are what the clients read, and the events are dropped
//! (docs/search.md says so). Browsers send some of these as beacons, which carry no `Authorization` header, so
//! these endpoints take any caller — they neither store nor reveal anything.

use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

use crate::http::{BodyLimit, HandlerError, RequestId};
use crate::state::AppState;

const EVENTS: BodyLimit = BodyLimit {
    what: "The analytics events",
    bytes: 1024 * 1024,
    advice: "Intake records no analytics; turn them off in the page (analytics: {enabled: false}).",
};

/// The events of an analytics call, read and dropped, so the connection stays open for the page's next call (a
/// body left unread makes the envelope close it).
pub struct Dropped;

impl axum::extract::FromRequest<AppState> for Dropped {
    type Rejection = HandlerError;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        state.body_budget.read(&parts.headers, body, EVENTS).await?;
        Ok(Dropped)
    }
}

/// Coveo's Event Protocol (Headless' default analytics mode): the events are accepted and dropped.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/events/v1", tag = "Search",
    params(("org" = String, Path, description = "Organization id")),
    responses(
        (status = 200, description = "Accepted and not recorded: Intake keeps no analytics", body = Object),
        (status = 413, description = "REQUEST_ENTITY_TOO_LARGE: more than 1 MiB of events"),
    ),
)]
pub async fn events(Path(_org): Path<String>, _events: Dropped) -> Json<Value> {
    Json(json!({"events": []}))
}

/// The Event Protocol's validation endpoint: every event is valid, none is recorded.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/events/v1/validate", tag = "Search",
    params(("org" = String, Path, description = "Organization id")),
    responses(
        (status = 200, description = "Valid, and not recorded", body = Object),
        (status = 413, description = "REQUEST_ENTITY_TOO_LARGE: more than 1 MiB of events"),
    ),
)]
pub async fn validate_events(Path(_org): Path<String>, _events: Dropped) -> Json<Value> {
    Json(json!({"valid": true, "events": []}))
}

/// Coveo's legacy usage analytics (`/rest/v15/analytics/search`, `click`, `custom`, `view`, `collect`, …):
/// answered with the identifiers clients read, recorded nowhere.
#[utoipa::path(
    post, path = "/rest/v15/analytics/{event}", tag = "Search",
    params(("event" = String, Path, description = "search, searches, click, custom, view or collect")),
    responses(
        (status = 200, description = "Accepted and not recorded", body = Object),
        (status = 413, description = "REQUEST_ENTITY_TOO_LARGE: more than 1 MiB of events"),
    ),
)]
pub async fn legacy_event(Path(event): Path<String>, request_id: RequestId, _events: Dropped) -> Json<Value> {
    let visit = json!({"visitId": request_id.0, "visitorId": request_id.0});
    Json(match event.as_str() {
        "search" => json!({"searchEventUid": request_id.0, "visitId": request_id.0, "visitorId": request_id.0,
                           "clientId": request_id.0}),
        "searches" => json!({"searchEventResponses": [], "visitId": request_id.0, "visitorId": request_id.0}),
        _ => visit,
    })
}
