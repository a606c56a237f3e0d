//! The request context every organization- and source-scoped call starts from, in one place: who calls and
//! whether they may ([`OrgCall`], [`SourceCall`]), the paused check, reading a Platform body, pinning a file
//! container for an item, and the one path by which an operation reaches the journal.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use intake_model::json::{self, Json as StrictJson};
use intake_model::{ApiError, ErrorCode, Operation, OperationKind, OrderingId, Privilege, QueryParams};
use intake_store::{Organization, SecurityProvider, Seq, Source};

use crate::auth::Principal;
use crate::http::{BodyLimit, HandlerError, HandlerResult, RequestId, accepted, require_json};
use crate::quotas::ItemCounts;
use crate::state::AppState;

/// An organization-scoped call: the caller belongs to the organization (else 401 INVALID_TOKEN, before its
/// existence is revealed) and it exists (404); the handler then names the privilege it needs (403).
pub struct OrgCall {
    pub principal: Principal,
    pub organization: Organization,
    /// The other path parameters (`src`, `id`).
    pub path: HashMap<String, String>,
    pub query: QueryParams,
    pub request_id: RequestId,
}

impl FromRequestParts<AppState> for OrgCall {
    type Rejection = HandlerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let Path(path) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, format!("The path could not be decoded: {e}.")))?;
        let org = path.get("org").cloned().unwrap_or_default();
        principal.enter(&org)?;
        let organization = state.organization(&org)?;
        let request_id = RequestId::from_request_parts(parts, state).await?;
        let query = QueryParams::parse(parts.uri.query());
        Ok(OrgCall { principal, organization, path, query, request_id })
    }
}

impl OrgCall {
    /// The PLATFORM privilege `domain kind` on `target_id` in this organization, or 403.
    pub fn require(&self, domain: &str, kind: &str, target_id: &str) -> Result<(), ApiError> {
        self.principal.authorize(&self.organization.id, &Privilege::platform(domain, kind, target_id))
    }

    /// ORGANIZATION VIEW on this organization.
    pub fn require_view(&self) -> Result<(), ApiError> {
        self.require("ORGANIZATION", "VIEW", &self.organization.id)
    }

    pub fn param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or_default()
    }

    /// Refuses push calls while the organization is paused.
    pub fn refuse_if_paused(&self) -> Result<(), ApiError> {
        if self.organization.paused { Err(paused(&self.organization.id)) } else { Ok(()) }
    }

    /// Journals an operation on the organization's index (a purge) and waits until it is durable.
    pub async fn journal(&self, state: &AppState, source_id: &str, kind: OperationKind) -> Result<Seq, ApiError> {
        let now = state.clock.now_ms();
        let operation = Operation {
            organization_id: self.organization.id.clone(),
            source_id: source_id.to_string(),
            ordering_id: now,
            request_id: self.request_id.0.clone(),
            accepted_at_ms: now,
            kind,
        };
        append(state, &operation).await
    }
}

/// What [`OrgCall`] refuses, for the OpenAPI document of every route under an organization's path.
pub const ORG_CALL_REFUSALS: &[(&str, &str)] = &[
    (
        "401",
        "UNAUTHORIZED (no `Authorization: Bearer …`) or INVALID_TOKEN (unknown, expired, or of another organization)",
    ),
    ("403", "ACCESS_DENIED: the key lacks the privilege the message names"),
    ("404", "ORGANIZATION_NOT_FOUND"),
];

/// What [`SourceCall`] refuses besides [`ORG_CALL_REFUSALS`], for the document of every source-scoped Push call.
pub const SOURCE_CALL_REFUSALS: &[(&str, &str)] = &[
    ("400", "ORGANIZATION_IS_PAUSED"),
    ("412", "SOURCE_DOES_NOT_EXIST"),
    ("429", "TOO_MANY_REQUESTS: over the organization's rate or daily calls (with Retry-After)"),
];

/// What every source-scoped Push call starts with, checked in one place and in this order: the caller is
/// authenticated (401) and of this organization (401), the organization exists (404), the caller may edit the
/// source (403), the organization is not paused (400), the source exists (412), the organization's rate and
/// daily calls allow one more (429). Then the decoded query string and the request id.
pub struct SourceCall {
    pub source: Source,
    pub query: QueryParams,
    pub request_id: RequestId,
}

impl FromRequestParts<AppState> for SourceCall {
    type Rejection = HandlerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let call = OrgCall::from_request_parts(parts, state).await?;
        let org = &call.organization.id;
        let src = call.param("src");
        call.principal.authorize(org, &Privilege::platform("SOURCE", "EDIT", src))?;
        call.refuse_if_paused()?;
        let source = state.source(org, src)?;
        state.quotas.admit_call(org)?;
        Ok(SourceCall { source, query: call.query, request_id: call.request_id })
    }
}

impl SourceCall {
    /// Journals one operation on the source and answers `202` once it is durable.
    pub async fn journal(
        &self,
        state: &AppState,
        ordering_id: Option<OrderingId>,
        kind: OperationKind,
    ) -> HandlerResult<Response> {
        let counts = match &kind {
            OperationKind::AddOrUpdate(_) => ItemCounts::items(1, 1),
            OperationKind::Delete { .. } => ItemCounts::items(0, 1),
            _ => ItemCounts::default(),
        };
        self.journal_counted(state, ordering_id, kind, counts).await
    }

    /// Journals an operation whose items are `counts` (a batch's, known once its file is validated), once the
    /// organization's item limits admit them.
    pub async fn journal_counted(
        &self,
        state: &AppState,
        ordering_id: Option<OrderingId>,
        kind: OperationKind,
        counts: ItemCounts,
    ) -> HandlerResult<Response> {
        let ordering_id = self.journal_ordered(state, ordering_id, kind, counts).await?;
        Ok(accepted(StatusCode::ACCEPTED, Some(ordering_id), &self.request_id))
    }

    /// Journals an operation as [`SourceCall::journal_counted`] does, for a caller that answers in its own way:
    /// the operation's `orderingId` once it is durable.
    pub async fn journal_ordered(
        &self,
        state: &AppState,
        ordering_id: Option<OrderingId>,
        kind: OperationKind,
        counts: ItemCounts,
    ) -> Result<OrderingId, HandlerError> {
        let target = (self.source.organization_id.as_str(), self.source.id.as_str());
        journal_accepted(state, target, &self.request_id, ordering_id, kind, counts).await
    }
}

/// Journals an operation on `(organization, source)` once the organization's limits admit its `counts`; its
/// `orderingId` once it is durable.
async fn journal_accepted(
    state: &AppState,
    (organization_id, source_id): (&str, &str),
    request_id: &RequestId,
    ordering_id: Option<OrderingId>,
    kind: OperationKind,
    counts: ItemCounts,
) -> Result<OrderingId, HandlerError> {
    let reservation = state.quotas.reserve(organization_id, counts)?;
    let now = state.clock.now_ms();
    let operation = Operation {
        organization_id: organization_id.to_string(),
        source_id: source_id.to_string(),
        ordering_id: ordering_id.unwrap_or(now),
        request_id: request_id.0.clone(),
        accepted_at_ms: now,
        kind,
    };
    let seq = append(state, &operation).await?;
    reservation.journaled(seq);
    Ok(operation.ordering_id)
}

/// What [`ProviderCall`] refuses besides [`ORG_CALL_REFUSALS`], for the document of every identity call.
pub const PROVIDER_CALL_REFUSALS: &[(&str, &str)] = &[
    ("400", "ORGANIZATION_IS_PAUSED"),
    ("412", "SECURITY_PROVIDER_DOES_NOT_EXIST"),
    (
        "429",
        "TOO_MANY_REQUESTS: over the organization's rate, daily calls or daily security identities (with Retry-After)",
    ),
];

/// What every security identity call starts with, in this order: the caller is authenticated and of this
/// organization (401), the organization exists (404), the caller may edit the provider (403, SECURITY_PROVIDER
/// EDIT), the organization is not paused (400), the provider exists (412), the organization's rate and daily
/// calls allow one more (429).
pub struct ProviderCall {
    pub provider: SecurityProvider,
    pub query: QueryParams,
    pub request_id: RequestId,
}

impl FromRequestParts<AppState> for ProviderCall {
    type Rejection = HandlerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let call = OrgCall::from_request_parts(parts, state).await?;
        let org = &call.organization.id;
        let provider_id = call.param("provider");
        call.principal.authorize(org, &Privilege::platform("SECURITY_PROVIDER", "EDIT", provider_id))?;
        call.refuse_if_paused()?;
        let provider = state
            .catalog
            .provider(org, provider_id)
            .map_err(|e| crate::http::storage_failure("The security provider could not be read", e))?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::SecurityProviderDoesNotExist,
                    format!(
                        "Security provider '{provider_id}' does not exist in organization '{org}'. Create it first \
                         (PUT /rest/organizations/{org}/securityproviders/{provider_id}, or intake admin provider create)."
                    ),
                )
            })?;
        state.quotas.admit_call(org)?;
        Ok(ProviderCall { provider, query: call.query, request_id: call.request_id })
    }
}

impl ProviderCall {
    /// Journals an identity operation of `identities` identities, answering `202` once it is durable.
    pub async fn journal(
        &self,
        state: &AppState,
        ordering_id: Option<OrderingId>,
        kind: OperationKind,
        identities: u64,
    ) -> HandlerResult<Response> {
        let counts = ItemCounts { identities, ..ItemCounts::default() };
        let target = (self.provider.organization_id.as_str(), "");
        let ordering_id = journal_accepted(state, target, &self.request_id, ordering_id, kind, counts).await?;
        Ok(accepted(StatusCode::ACCEPTED, Some(ordering_id), &self.request_id))
    }
}

/// The one way an operation reaches the journal: it resolves once the operation is durable (then, and only
/// then, may the call answer 2xx), or fails with 503 and nothing stored.
async fn append(state: &AppState, operation: &Operation) -> Result<Seq, ApiError> {
    state.backpressure.admit(state.readiness.stalled().is_some()).await;
    let seq = state.journal.append(vec![operation.encode()]).await.map_err(|e| {
        ApiError::new(ErrorCode::ServiceUnavailable, format!("The operation was not accepted: {e}. Retry later."))
            .with_retry_after(1)
    })?;
    state.backpressure.journaled(seq);
    Ok(seq)
}

/// ORGANIZATION_IS_PAUSED for `organization_id`.
pub fn paused(organization_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::OrganizationIsPaused,
        format!("Organization '{organization_id}' is paused: push calls are refused until it is resumed."),
    )
}

const PLATFORM_BODY: BodyLimit = BodyLimit::small("The request body");

/// A Platform body's bytes, after its Content-Type and size are checked (an empty body is `{}`).
pub async fn read_body_bytes(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    require_json(headers, false)?;
    let bytes = state.body_budget.read(headers, body, PLATFORM_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"{}".to_vec());
    }
    // Platform bodies are small (1 MiB at most): a copy frees the body budget at once.
    Ok(bytes.to_vec())
}

/// A Platform body as a strict JSON tree (an empty body is `{}`).
pub async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<StrictJson, ApiError> {
    let bytes = read_body_bytes(state, headers, body).await?;
    json::parse(&bytes).map_err(|e| ApiError::invalid_json(format!("The body is not valid JSON: {e}.")))
}

/// Keeps an item's container past its expiry until the item is applied; true when this call pinned it. Only a
/// container of the item's own organization is pinned. One that is not there (or is another organization's)
/// is not an error here: the item ends ERROR in the logs, naming it, as Coveo reports it after the 202.
pub fn pin_item_container(state: &AppState, organization_id: &str, file_id: &str) -> bool {
    let owned = state.catalog.container(file_id).ok().flatten().is_some_and(|c| c.organization_id == organization_id);
    owned && state.catalog.pin_container(file_id).unwrap_or(false)
}

/// Lets a container pinned for an operation expire again if the operation was not accepted after all.
pub fn unpin_unless_accepted(
    state: &AppState,
    pinned: Option<&str>,
    accepted: HandlerResult<Response>,
) -> HandlerResult<Response> {
    if let (Err(_), Some(file_id)) = (&accepted, pinned)
        && let Err(error) = state.catalog.unpin_container(file_id)
    {
        tracing::warn!(file_id, %error, "a file container could not be unpinned");
    }
    accepted
}
