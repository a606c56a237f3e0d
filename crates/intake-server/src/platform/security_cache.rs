//! The security cache, as Coveo's Platform API shows it (what an identity resolves to, a group's members, a
//! provider's identities), and one answer Coveo does not have: **why** a user can or cannot see an item — the
//! chain of identities and the permission level and set that decided.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use intake_index::security::{
    Decision, IdentityGraph, IdentityRef, Relation, Resolution, Rule, identity_key, item_permissions,
};
use intake_model::json::Json as StrictJson;
use intake_model::permissions::{IdentityType, PermissionLevel};
use intake_model::{ApiError, ErrorCode};
use intake_store::{EMAIL_PROVIDER, StoredIdentity};
use serde::Serialize;
use utoipa::ToSchema;

use super::{required_text, text};
use crate::context::{OrgCall, read_body};
use crate::http::{HandlerResult, task_failed};
use crate::search_api::resolve;
use crate::state::AppState;

/// Coveo's `DetailedSecurityCacheMemberModel`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheMember {
    name: String,
    provider: String,
    /// `User`, `Group`, `VirtualGroup` or `Unknown`.
    #[serde(rename = "type")]
    kind: String,
    /// `additionalInfo`, as `[{key, value}]`.
    infos: Vec<Info>,
    /// `UP_TO_DATE`, `DISABLED`, or `UNKNOWN` for an identity only named (as a member, alias or granted identity).
    state: String,
    /// Epoch milliseconds.
    last_update_date: Option<i64>,
    /// `SUCCESS`, or `NONE` for an identity only named.
    last_update_result: String,
    /// How it was reached (parents only): `member of`, `alias of`, `granted to`, `same e-mail address as`.
    #[serde(skip_serializing_if = "Option::is_none")]
    relation: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Info {
    key: String,
    value: String,
}

/// Coveo's `PageModel`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberPage {
    items: Vec<CacheMember>,
    total_entries: usize,
    total_pages: usize,
}

impl CacheMember {
    fn of(identity: &IdentityRef, graph: &IdentityGraph, relation: Option<Relation>) -> CacheMember {
        let stored = graph.get(&identity.provider, &identity.name, identity.kind);
        let (name, provider) = match stored {
            Some(stored) => (stored.name.clone(), stored.provider_id.clone()),
            None => (identity.name.clone(), identity.provider.clone()),
        };
        CacheMember {
            name,
            provider,
            kind: identity.kind.as_str().to_string(),
            infos: stored
                .map(|s| {
                    s.additional_info
                        .iter()
                        .map(|(key, value)| Info { key: key.clone(), value: value.clone() })
                        .collect()
                })
                .unwrap_or_default(),
            state: match stored {
                Some(s) if s.enabled => "UP_TO_DATE",
                Some(_) => "DISABLED",
                None => "UNKNOWN",
            }
            .to_string(),
            last_update_date: stored.map(|s| s.updated_at_ms),
            last_update_result: if stored.is_some() { "SUCCESS" } else { "NONE" }.to_string(),
            relation: relation.map(|r| r.as_str().to_string()),
        }
    }

    fn stored(identity: &StoredIdentity, graph: &IdentityGraph) -> CacheMember {
        CacheMember::of(&IdentityRef::new(&identity.provider_id, &identity.name, identity.kind), graph, None)
    }
}

/// The most identities one page holds.
const MAX_PER_PAGE: usize = 1000;

/// The page of `all` the query asks for (`page` from 0, `perPage` up to 1,000), with the total entries and pages.
fn paged<T>(call: &OrgCall, all: Vec<T>) -> Result<(Vec<T>, usize, usize), ApiError> {
    let per_page = call.query.non_negative("perPage", MAX_PER_PAGE as u64)?.unwrap_or(100).max(1) as usize;
    let page = call.query.non_negative("page", u32::MAX as u64)?.unwrap_or(0) as usize;
    let total_entries = all.len();
    let items = all.into_iter().skip(page.saturating_mul(per_page)).take(per_page).collect();
    Ok((items, total_entries, total_entries.div_ceil(per_page)))
}

fn page(call: &OrgCall, members: Vec<CacheMember>) -> Result<MemberPage, ApiError> {
    let (items, total_entries, total_pages) = paged(call, members)?;
    Ok(MemberPage { items, total_entries, total_pages })
}

/// `{name, provider?, type?}` (Coveo's `SecurityCacheMemberModel`) as an identity of `provider` by default.
fn member(body: &StrictJson, default_provider: &str) -> Result<IdentityRef, ApiError> {
    let name = required_text(body, "name")?;
    let provider = text(body, "provider")?.filter(|p| !p.is_empty()).unwrap_or_else(|| default_provider.to_string());
    let kind = match text(body, "type")? {
        None => IdentityType::User,
        Some(raw) => IdentityType::parse(&raw).ok_or_else(|| {
            ApiError::invalid_parameter("type", &raw, "allowed values are User, Group, VirtualGroup and Unknown")
        })?,
    };
    Ok(IdentityRef::new(&provider, &name, kind))
}

/// What an identity resolves to: its groups, aliases and granted identities (`recursive=true`: transitively).
#[utoipa::path(
    post, path = "/rest/organizations/{org}/securitycache/entities/{provider}/members/parents", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "The identity's provider"),
           ("recursive" = Option<bool>, Query, description = "Everything it resolves to (default: one step)"),
           ("page" = Option<u32>, Query, description = "From 0"), ("perPage" = Option<u32>, Query, description = "At most 1,000 (default 100)")),
    request_body(content = Object, description = "The identity: {name, type, provider}", content_type = "application/json"),
    responses((status = 200, description = "The identities it resolves to, each with how", body = MemberPage))
)]
pub async fn member_parents(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<MemberPage>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let start = member(&body, call.param("provider"))?;
    let recursive = call.query.boolean("recursive", false)?;
    let resolution = resolve(&state, &call.organization.id, std::slice::from_ref(&start))?;
    let graph = state.identities.of(&call.organization.id);
    let graph = graph.read().expect("identity graph lock");
    let parents = resolution
        .reached
        .iter()
        .filter(|(_, relation, from)| *relation != Relation::Start && (recursive || *from == Some(0)))
        .map(|(identity, relation, _)| CacheMember::of(identity, &graph, Some(*relation)))
        .collect();
    Ok(Json(page(&call, parents)?))
}

/// A group's members (`recursive=true`: and its member groups' members).
#[utoipa::path(
    post, path = "/rest/organizations/{org}/securitycache/entities/{provider}/members/children", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "The group's provider"),
           ("recursive" = Option<bool>, Query, description = "Members of member groups too"),
           ("page" = Option<u32>, Query, description = "From 0"), ("perPage" = Option<u32>, Query, description = "At most 1,000 (default 100)")),
    request_body(content = Object, description = "The group: {name, type}", content_type = "application/json"),
    responses((status = 200, description = "Its members", body = MemberPage))
)]
pub async fn member_children(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<MemberPage>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let group = member(&body, call.param("provider"))?;
    let recursive = call.query.boolean("recursive", false)?;
    let graph = state.identities.of(&call.organization.id);
    let graph = graph.read().expect("identity graph lock");
    let mut seen = std::collections::HashSet::from([identity_key(&group.provider, &group.name, group.kind)]);
    let mut queue = vec![group];
    let mut children = Vec::new();
    while let Some(group) = queue.pop() {
        let Some(stored) = graph.get(&group.provider, &group.name, group.kind) else { continue };
        for member in &stored.members {
            let member = IdentityRef::new(&stored.provider_id, &member.name, member.kind);
            if seen.insert(identity_key(&member.provider, &member.name, member.kind)) {
                children.push(CacheMember::of(&member, &graph, Some(Relation::MemberOf)));
                if recursive {
                    queue.push(member);
                }
            }
        }
    }
    Ok(Json(page(&call, children)?))
}

/// One identity.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/securitycache/entities/{provider}/entity", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "The identity's provider")),
    request_body(content = Object, description = "The identity: {name, type}", content_type = "application/json"),
    responses((status = 200, description = "The identity", body = CacheMember), (status = 404, description = "NOT_FOUND: no such identity"))
)]
pub async fn one_member(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<CacheMember>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let identity = member(&body, call.param("provider"))?;
    let graph = state.identities.of(&call.organization.id);
    let graph = graph.read().expect("identity graph lock");
    if graph.get(&identity.provider, &identity.name, identity.kind).is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, format!("No identity {identity} was pushed.")).into());
    }
    Ok(Json(CacheMember::of(&identity, &graph, None)))
}

/// The identities pushed to a provider.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/securitycache/entities/{provider}/members", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id"), ("provider" = String, Path, description = "Provider id"),
           ("page" = Option<u32>, Query, description = "From 0"), ("perPage" = Option<u32>, Query, description = "At most 1,000 (default 100)")),
    responses((status = 200, description = "Its identities, by name", body = MemberPage))
)]
pub async fn provider_members(State(state): State<AppState>, call: OrgCall) -> HandlerResult<Json<MemberPage>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let provider = call.param("provider");
    let graph = state.identities.of(&call.organization.id);
    let graph = graph.read().expect("identity graph lock");
    let mut identities: Vec<&StoredIdentity> =
        graph.identities().filter(|i| i.provider_id.eq_ignore_ascii_case(provider)).collect();
    identities.sort_by_key(|i| (i.name.to_lowercase(), i.kind.as_str()));
    let members = identities.into_iter().map(|i| CacheMember::stored(i, &graph)).collect();
    Ok(Json(page(&call, members)?))
}

/// Why a user can or cannot see an item.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    document_id: String,
    user: String,
    /// One per source holding the document id.
    items: Vec<ItemExplanation>,
    /// Everything the user resolves to.
    identities: Vec<CacheMember>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemExplanation {
    source_id: String,
    visible: bool,
    /// The decision in one sentence.
    explanation: String,
    /// `PUBLIC_SOURCE`, `ALLOWED`, `DENIED`, `NOT_ALLOWED` or `UNDECIDED`.
    rule: String,
    /// The deciding level's name (or index) and set index.
    level: Option<String>,
    set: Option<usize>,
    /// How the user holds the deciding identity, start first.
    chain: Vec<ChainLink>,
}

#[derive(Serialize, ToSchema)]
pub struct ChainLink {
    name: String,
    provider: String,
    #[serde(rename = "type")]
    kind: String,
    /// How it was reached from the one before.
    relation: String,
}

/// Explain why a user can or cannot see an item: the identities it resolves to, the level and set that decided.
#[utoipa::path(
    post, path = "/rest/organizations/{org}/securitycache/explain", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id")),
    request_body(content = Object, description = "{\"user\": {name, provider (default: Email Security Provider), type}, \"documentId\": \"…\"}", content_type = "application/json"),
    responses((status = 200, description = "The decision for each item with that id, and why", body = Explanation), (status = 404, description = "NOT_FOUND: no item with that id"))
)]
pub async fn explain(
    State(state): State<AppState>,
    call: OrgCall,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Json<Explanation>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let body = read_body(&state, &headers, body).await?;
    let document_id = required_text(&body, "documentId")?;
    let user = member(body.get("user").ok_or_else(|| ApiError::missing_parameter("user"))?, EMAIL_PROVIDER)?;
    let org = call.organization.id.clone();
    let resolution = resolve(&state, &org, std::slice::from_ref(&user))?;
    let viewer = crate::search_api::trimmed_viewer(&state, &org, resolution.keys.clone());
    let items = match state.indexes.get(&org) {
        Some(handle) => {
            let id = document_id.clone();
            let searcher = handle.reader.searcher();
            tokio::task::spawn_blocking(move || {
                item_permissions(&searcher, &handle.fields, &id).map(|items| (items, handle))
            })
            .await
            .map_err(task_failed)?
            .map_err(|e| ApiError::new(ErrorCode::InternalServerError, format!("The item could not be read: {e}.")))?
        }
        None => return Err(not_indexed(&document_id).into()),
    };
    let (items, handle) = items;
    if items.is_empty() {
        return Err(not_indexed(&document_id).into());
    }
    let graph = state.identities.of(&org);
    let graph = graph.read().expect("identity graph lock");
    let explained = items
        .iter()
        .map(|(source, levels)| {
            let decision = handle.permissions.decide(&viewer, source, levels);
            explain_item(&user, &document_id, source, levels, decision, &resolution)
        })
        .collect();
    let identities = resolution
        .reached
        .iter()
        .map(|(identity, relation, _)| CacheMember::of(identity, &graph, Some(*relation)))
        .collect();
    Ok(Json(Explanation { document_id, user: user.to_string(), items: explained, identities }))
}

fn not_indexed(document_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("No item '{document_id}' is in the index (it was never pushed, is deleted, or is not applied yet)."),
    )
}

fn explain_item(
    user: &IdentityRef,
    document_id: &str,
    source: &str,
    levels: &[PermissionLevel],
    decision: Decision,
    resolution: &Resolution,
) -> ItemExplanation {
    let level_name = |l: usize| levels[l].name.clone().unwrap_or_else(|| format!("#{l}"));
    let (level, set) = (decision.level.map_or_else(String::new, level_name), decision.set.unwrap_or(0));
    let identity = |denied: bool| {
        let (l, s, i) = (decision.level?, decision.set?, decision.identity?);
        let set = &levels[l].sets[s];
        let identity = if denied { &set.denied[i] } else { &set.allowed[i] };
        let provider = identity.security_provider.clone().unwrap_or_default();
        Some(IdentityRef::new(&provider, &identity.identity, identity.identity_type))
    };
    let first = format!("the first permission level that mentions them ({level})");
    let (rule, reason, decider) = match decision.rule {
        Rule::ViewAll => ("VIEW_ALL", "they see everything".to_string(), None),
        Rule::PublicSource => ("PUBLIC_SOURCE", format!("it is in source '{source}', which is public (SHARED)"), None),
        Rule::Denied => {
            let denied = identity(true);
            let who = denied.as_ref().map_or_else(|| "them".to_string(), ToString::to_string);
            ("DENIED", format!("{first} denies {who} in set #{set}, and they hold it"), denied)
        }
        Rule::NotAllowed => (
            "NOT_ALLOWED",
            format!("{first} does not allow them in set #{set} (every set of a level must allow)"),
            None,
        ),
        Rule::Allowed => {
            let allowed = identity(false);
            let how =
                allowed.as_ref().map_or_else(|| "anonymous access".to_string(), |a| format!("{a}, which they hold"));
            (
                "ALLOWED",
                format!("{first} allows them in every set — set #{set} through {how} — and denies them in none"),
                allowed,
            )
        }
        Rule::Undecided => {
            ("UNDECIDED", "no permission level mentions them or any identity they hold".to_string(), None)
        }
    };
    let who = if user.provider.eq_ignore_ascii_case(EMAIL_PROVIDER) {
        user.name.clone()
    } else {
        format!("{} (of '{}')", user.name, user.provider)
    };
    let sentence =
        format!("{who} {} '{document_id}': {reason}", if decision.visible { "can see" } else { "cannot see" });
    let chain = decider
        .and_then(|d| resolution.position(&identity_key(&d.provider, &d.name, d.kind)))
        .map(|at| {
            resolution
                .chain(at)
                .into_iter()
                .map(|(identity, relation)| ChainLink {
                    name: identity.name,
                    provider: identity.provider,
                    kind: identity.kind.as_str().to_string(),
                    relation: relation.as_str().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    ItemExplanation {
        source_id: source.to_string(),
        visible: decision.visible,
        explanation: format!("{sentence}."),
        rule: rule.to_string(),
        level: decision.level.map(level_name),
        set: decision.set,
        chain,
    }
}

/// An item's permissions, as Coveo's Content Browser shows them (`DocumentPermissionModel`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemPermissions {
    document_id: String,
    /// The sources holding the id (an id may be pushed to several).
    source_ids: Vec<String>,
    /// `VALID`, or `WARNING` when an identity it names was never pushed.
    state: String,
    permission_levels: Vec<LevelView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LevelView {
    name: String,
    permission_sets: Vec<SetView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetView {
    name: String,
    anonymous_allowed: bool,
    permissions: Vec<PermissionView>,
}

/// Coveo's `SinglePermissionModel`.
#[derive(Serialize, ToSchema, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PermissionView {
    identity: String,
    /// `USER`, `GROUP`, `VIRTUAL_GROUP` or `UNKNOWN`.
    identity_type: String,
    security_provider: String,
    allowed: bool,
    /// `VALID`, or `UNKNOWN` for an identity never pushed (it grants nothing).
    state: String,
}

/// Coveo's `SinglePermissionPageModel`: the users an item's permissions come to, groups expanded.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePage {
    items: Vec<PermissionView>,
    total_entries: usize,
    total_pages: usize,
    anonymous_allowed: bool,
}

fn wire_type(kind: IdentityType) -> &'static str {
    match kind {
        IdentityType::User => "USER",
        IdentityType::Group => "GROUP",
        IdentityType::VirtualGroup => "VIRTUAL_GROUP",
        IdentityType::Unknown => "UNKNOWN",
    }
}

fn permission_view(
    identity: &intake_model::permissions::PermissionIdentity,
    allowed: bool,
    graph: &IdentityGraph,
) -> PermissionView {
    let provider = identity.security_provider.clone().unwrap_or_default();
    let known = graph.is_known(&provider, &identity.identity, identity.identity_type);
    PermissionView {
        identity: identity.identity.clone(),
        identity_type: wire_type(identity.identity_type).to_string(),
        security_provider: provider,
        allowed,
        state: if known { "VALID" } else { "UNKNOWN" }.to_string(),
    }
}

/// The stored permissions of the items with the path's document id (sent encoded twice, as the Content
/// Browser does, or once).
async fn stored_permissions(
    state: &AppState,
    call: &OrgCall,
) -> Result<(String, Vec<(String, Vec<PermissionLevel>)>), ApiError> {
    let raw = call.param("document");
    let document_id = if raw.contains('%') {
        intake_model::query::decode(raw).unwrap_or_else(|_| raw.to_string())
    } else {
        raw.to_string()
    };
    let handle = state.indexes.get(&call.organization.id).ok_or_else(|| not_indexed(&document_id))?;
    let id = document_id.clone();
    let searcher = handle.reader.searcher();
    let items = tokio::task::spawn_blocking(move || item_permissions(&searcher, &handle.fields, &id))
        .await
        .map_err(task_failed)?
        .map_err(|e| ApiError::new(ErrorCode::InternalServerError, format!("The item could not be read: {e}.")))?;
    if items.is_empty() {
        return Err(not_indexed(&document_id));
    }
    Ok((document_id, items))
}

/// An item's permission levels and sets, each identity with whether it is known.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/indexes/{index}/documents/{document}/permissions", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id"), ("index" = String, Path, description = "Any index id (an organization has one index)"),
           ("document" = String, Path, description = "The item's documentId, URI-encoded (twice, as Coveo's clients do, or once)")),
    responses((status = 200, description = "Its permissions", body = ItemPermissions), (status = 404, description = "NOT_FOUND: no item with that id"))
)]
pub async fn item_permission_levels(
    State(state): State<AppState>,
    call: OrgCall,
) -> HandlerResult<Json<ItemPermissions>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let (document_id, items) = stored_permissions(&state, &call).await?;
    let graph = state.identities.of(&call.organization.id);
    let graph = graph.read().expect("identity graph lock");
    let mut levels = Vec::new();
    for (_, item_levels) in &items {
        for (l, level) in item_levels.iter().enumerate() {
            let permission_sets = level
                .sets
                .iter()
                .enumerate()
                .map(|(s, set)| SetView {
                    name: format!("set #{s}"),
                    anonymous_allowed: set.allow_anonymous,
                    permissions: set
                        .allowed
                        .iter()
                        .map(|i| permission_view(i, true, &graph))
                        .chain(set.denied.iter().map(|i| permission_view(i, false, &graph)))
                        .collect(),
                })
                .collect();
            levels.push(LevelView { name: level.name.clone().unwrap_or_else(|| format!("#{l}")), permission_sets });
        }
    }
    let unknown =
        levels.iter().flat_map(|l| &l.permission_sets).flat_map(|s| &s.permissions).any(|p| p.state != "VALID");
    Ok(Json(ItemPermissions {
        document_id,
        source_ids: items.iter().map(|(source, _)| source.clone()).collect(),
        state: if unknown { "WARNING" } else { "VALID" }.to_string(),
        permission_levels: levels,
    }))
}

/// The users (and identities without members) an item's permissions come to, groups expanded to their
/// members; `includedEntities` is `ALL`, `ALLOWED` or `DENIED`.
#[utoipa::path(
    get, path = "/rest/organizations/{org}/indexes/{index}/documents/{document}/permissions/effective", tag = "Security cache",
    params(("org" = String, Path, description = "Organization id"), ("index" = String, Path, description = "Any index id"),
           ("document" = String, Path, description = "The item's documentId, URI-encoded"),
           ("includedEntities" = Option<String>, Query, description = "ALL (default), ALLOWED or DENIED"),
           ("page" = Option<u32>, Query, description = "From 0"), ("perPage" = Option<u32>, Query, description = "At most 1,000 (default 100)")),
    responses((status = 200, description = "The expanded identities", body = EffectivePage), (status = 404, description = "NOT_FOUND: no item with that id"))
)]
pub async fn item_effective_permissions(
    State(state): State<AppState>,
    call: OrgCall,
) -> HandlerResult<Json<EffectivePage>> {
    call.require("SECURITY_CACHE", "VIEW", "*")?;
    let included = call.query.get("includedEntities")?.unwrap_or("ALL").to_ascii_uppercase();
    if !["ALL", "ALLOWED", "DENIED"].contains(&included.as_str()) {
        return Err(ApiError::invalid_parameter(
            "includedEntities",
            &included,
            "allowed values are ALL, ALLOWED and DENIED",
        )
        .into());
    }
    let (_, items) = stored_permissions(&state, &call).await?;
    let graph = state.identities.of(&call.organization.id);
    let graph = graph.read().expect("identity graph lock");
    let mut seen = std::collections::HashSet::new();
    let mut effective = Vec::new();
    let mut anonymous_allowed = false;
    for set in items.iter().flat_map(|(_, levels)| levels).flat_map(|level| &level.sets) {
        anonymous_allowed |= set.allow_anonymous;
        let listed = set.allowed.iter().map(|i| (i, true)).chain(set.denied.iter().map(|i| (i, false)));
        for (identity, allowed) in listed {
            if (included == "ALLOWED" && !allowed) || (included == "DENIED" && allowed) {
                continue;
            }
            let provider = identity.security_provider.clone().unwrap_or_default();
            for leaf in expand(&graph, IdentityRef::new(&provider, &identity.identity, identity.identity_type)) {
                if seen.insert((identity_key(&leaf.provider, &leaf.name, leaf.kind), allowed)) {
                    let known = graph.is_known(&leaf.provider, &leaf.name, leaf.kind);
                    effective.push(PermissionView {
                        identity: leaf.name,
                        identity_type: wire_type(leaf.kind).to_string(),
                        security_provider: leaf.provider,
                        allowed,
                        state: if known { "VALID" } else { "UNKNOWN" }.to_string(),
                    });
                }
            }
        }
    }
    let (items, total_entries, total_pages) = paged(&call, effective)?;
    Ok(Json(EffectivePage { items, total_entries, total_pages, anonymous_allowed }))
}

/// A group's members down to identities with no members of their own (users, mostly); anything else as it is.
fn expand(graph: &IdentityGraph, identity: IdentityRef) -> Vec<IdentityRef> {
    let mut seen = std::collections::HashSet::new();
    let (mut queue, mut leaves) = (vec![identity], Vec::new());
    while let Some(identity) = queue.pop() {
        if !seen.insert(identity_key(&identity.provider, &identity.name, identity.kind)) {
            continue;
        }
        match graph.get(&identity.provider, &identity.name, identity.kind).filter(|g| !g.members.is_empty()) {
            Some(group) => {
                queue.extend(group.members.iter().map(|m| IdentityRef::new(&group.provider_id, &m.name, m.kind)))
            }
            None => leaves.push(identity),
        }
    }
    leaves
}
