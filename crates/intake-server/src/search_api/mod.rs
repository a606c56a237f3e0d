//! `POST /rest/search/v2` (and `GET` with query parameters): Coveo's Search API v2, for what was pushed.
//!
//! Parameters come from the query string or a JSON body (the body wins). Every answer is trimmed to what the
//! caller may see: a search token searches as its users, any other key as the anonymous user, and
//! `viewAllContent` (with its privilege) sees everything.

use std::collections::HashSet;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use intake_index::facets;
use intake_index::results::{EXCERPT_CHARS, MAX_EXCERPT_CHARS};
use intake_index::search::{MAX_FIRST_RESULT, MAX_RESULTS_PER_PAGE, SearchHit, SearchRequest, SearchResponse, search};
use intake_index::security::{IdentityRef, Resolution, Viewer};
use intake_index::sort::{SORT_CRITERIA_EXPECTED, SortCriteria};
use intake_index::syntax::Options;
use intake_model::{ApiError, ErrorCode, Privilege, QueryParams};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::http::{BodyLimit, HandlerError, HandlerResult, RequestId, storage_failure, task_failed};
use crate::state::AppState;
use intake_applier::SearchHandle;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const SEARCH_BODY: BodyLimit = BodyLimit {
    what: "The search body",
    bytes: 1024 * 1024,
    advice: "A search body holds options and expressions; each expression is at most 64 KiB (docs/search.md).",
};

mod analytics;
mod more;
mod quickview;

/// `/rest/search/v2` and the endpoints beside it.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(run_search))
        .routes(routes!(crate::search_tokens::issue_search_token))
        .routes(routes!(more::facet_search))
        .routes(routes!(more::query_suggest))
        .routes(routes!(more::plan))
        .routes(routes!(more::fields))
        .routes(routes!(quickview::quickview))
        .routes(routes!(analytics::events))
        .routes(routes!(analytics::validate_events))
        .routes(routes!(analytics::legacy_event))
}

/// Search the items of an organization.
#[utoipa::path(
    method(get, post), path = "/rest/search/v2", tag = "Search",
    params(("organizationId" = Option<String>, Query, description = "Organization id; optional when the server has one organization")),
    request_body(content = SearchQuery, description = "The query (or the same keys in the query string)", content_type = "application/json"),
    responses(
        (status = 200, description = "One page of results", body = SearchAnswer),
        (status = 400, description = "INVALID_JSON (not a JSON object) or INVALID_QUERY_SYNTAX (naming the position, or the limit: 65,536 characters, 64 levels, 1,024 terms)"),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API EXECUTE_QUERY"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "MISSING_PARAMETER (organizationId, with several organizations) or INVALID_PARAMETER"),
    )
)]
pub async fn run_search(
    State(state): State<AppState>,
    request_id: RequestId,
    call: SearchCall,
) -> HandlerResult<Response> {
    let Prepared { organization_id, request, fields_to_include } = prepare(&state, &call.principal, &call.params())?;
    let q = request.q.clone();
    let started = std::time::Instant::now();
    let empty = SearchResponse::empty(&request);
    let response = on_index(&state, &organization_id, request.number_of_results, move |handle| {
        let searcher = handle.reader.searcher();
        search(&handle.index, &searcher, &handle.fields, &handle.permissions, &request)
    })
    .await?
    .unwrap_or(empty);
    let duration = started.elapsed().as_millis() as u64;
    let terms = query_terms(&q);
    let top_score = response.results.iter().map(|hit| hit.score).fold(0.0f32, f32::max);
    let results = response
        .results
        .into_iter()
        .map(|mut hit| {
            if let Some(fields) = &fields_to_include {
                // The hit's `raw` is shared with the cached document: only the fields asked for are copied.
                hit.raw = std::sync::Arc::new(hit.raw.only(fields));
            }
            SearchResult::new(hit, &terms, top_score, &request_id.0)
        })
        .collect();
    let answer = SearchAnswer {
        total_count: response.total_count,
        total_count_filtered: response.total_count_filtered,
        duration,
        index_duration: duration,
        request_duration: duration,
        terms_to_highlight: terms.iter().map(|term| (term.clone(), Value::Array(Vec::new()))).collect(),
        search_uid: request_id.0,
        results,
        headless: HeadlessKeys {
            facets: response.facets,
            group_by_results: response.group_by_results,
            ..HeadlessKeys::default()
        },
    };
    Ok(Json(answer).into_response())
}

/// A Search API call: who calls, its query string, and its JSON body (an object; empty when there is none).
pub struct SearchCall {
    pub principal: Principal,
    pub query: QueryParams,
    pub body: Value,
}

impl SearchCall {
    pub fn params(&self) -> Params<'_> {
        Params { query: &self.query, body: &self.body }
    }
}

impl axum::extract::FromRequest<AppState> for SearchCall {
    type Rejection = HandlerError;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let principal =
            <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await?;
        let query = QueryParams::parse(parts.uri.query());
        let body = read_search_body(state, &parts.headers, body).await?;
        Ok(SearchCall { principal, query, body })
    }
}

/// A search body: a JSON object (empty when there is none).
pub(crate) async fn read_search_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let body = state.body_budget.read_optional_json(headers, body, SEARCH_BODY).await?;
    if !body.is_object() {
        return Err(ApiError::invalid_json(format!(
            "The search body must be a JSON object such as {{\"q\": \"words\"}}; it is {}.",
            json_kind(&body)
        )));
    }
    Ok(body)
}

/// A search request read and authorized: the organization, what to run, and what each result's `raw` keeps.
pub(crate) struct Prepared {
    pub organization_id: String,
    pub request: SearchRequest,
    pub fields_to_include: Option<HashSet<String>>,
}

/// The organization a search call is for (`organizationId`, else the caller's own, else the only one), entered
/// and authorized to search.
pub(crate) fn search_organization(
    state: &AppState,
    principal: &Principal,
    params: &Params<'_>,
) -> Result<String, ApiError> {
    let organization_id = match (params.text("organizationId")?, principal.organization_id()) {
        (Some(id), _) => id,
        (None, Some(own)) => own.to_string(),
        (None, None) => only_organization(state)?,
    };
    principal.enter(&organization_id)?;
    state.organization(&organization_id)?;
    principal.authorize(&organization_id, &Privilege::new("SEARCH_API", "EXECUTE_QUERY", None, "*"))?;
    Ok(organization_id)
}

/// Reads every search parameter (`../shared/spec/search-api.md` §2) for the caller.
pub(crate) fn prepare(state: &AppState, principal: &Principal, params: &Params<'_>) -> Result<Prepared, ApiError> {
    let organization_id = search_organization(state, principal, params)?;
    let viewer = viewer(state, principal, &organization_id, params.flag("viewAllContent")?)?;
    let fields_to_include = params.field_names("fieldsToInclude")?;
    params.text("lq")?; // Accepted: Coveo feeds it to machine learning, which Intake does not have.
    let field_types = intake_applier::field_types(state.catalog.as_ref(), &organization_id);
    let now_ms = state.clock.now_ms();
    let zone = time_zone(params)?;
    let request = SearchRequest {
        q: params.text("q")?.unwrap_or_default(),
        enable_query_syntax: params.flag_or("enableQuerySyntax", true)?,
        syntax: Options {
            wildcards: params.flag("wildcards")?,
            question_mark: params.flag("questionMark")?,
            lowercase_operators: params.flag("lowercaseOperators")?,
        },
        aq: params.text("aq")?.unwrap_or_default(),
        cq: params.text("cq")?.unwrap_or_default(),
        dq: params.text("dq")?.unwrap_or_default(),
        filter: token_filter(principal),
        first_result: params.count("firstResult", MAX_FIRST_RESULT)?.unwrap_or(0),
        number_of_results: params.count("numberOfResults", MAX_RESULTS_PER_PAGE)?.unwrap_or(10),
        sort: match params.text("sortCriteria")? {
            None => SortCriteria::default(),
            Some(raw) if raw.trim().is_empty() => SortCriteria::default(),
            Some(raw) => SortCriteria::parse(&raw)
                .ok_or_else(|| ApiError::invalid_parameter("sortCriteria", &raw, SORT_CRITERIA_EXPECTED))?,
        },
        viewer,
        now_ms,
        zone,
        facets: facets::request::facets(params.json("facets")?.as_ref(), &field_types, (now_ms, zone))?,
        group_by: facets::request::group_by(params.json("groupBy")?.as_ref(), &field_types)?,
        excerpt_length: params.count("excerptLength", MAX_EXCERPT_CHARS)?.filter(|n| *n > 0).unwrap_or(EXCERPT_CHARS),
        field_types,
    };
    let q_syntax = request.enable_query_syntax.then_some(request.syntax);
    let advanced = [("aq", request.aq.as_str()), ("cq", request.cq.as_str()), ("dq", request.dq.as_str())];
    intake_index::query::check_syntax(&request.q, q_syntax, &advanced)?;
    Ok(Prepared { organization_id, request, fields_to_include })
}

/// `timezone` (an IANA name, as browsers give it: `Europe/Paris`): the zone dates without one are read in and
/// date facets are written in; UTC when absent.
fn time_zone(params: &Params<'_>) -> Result<intake_model::dates::Tz, ApiError> {
    match params.text("timezone")? {
        None => Ok(intake_model::dates::Tz::UTC),
        Some(name) if name.trim().is_empty() => Ok(intake_model::dates::Tz::UTC),
        Some(name) => intake_model::dates::zone(&name).ok_or_else(|| {
            ApiError::invalid_parameter("timezone", &name, "it must be an IANA time zone such as Europe/Paris or UTC")
        }),
    }
}

/// Runs `work`, which reads up to `results` stored items, on the organization's index, a few at a time: each
/// search is bounded (terms, depth, page), so the gate bounds what they hold together, and a burst of heavy ones
/// waits instead of piling up. `None` when the organization has nothing indexed yet; 503 while this node is
/// taking the index over (it would answer with less than the cluster acknowledged).
pub(crate) async fn on_index<R: Send + 'static>(
    state: &AppState,
    organization_id: &str,
    results: usize,
    work: impl FnOnce(&SearchHandle) -> Result<R, ApiError> + Send + 'static,
) -> Result<Option<R>, ApiError> {
    state.index_here(organization_id)?;
    if let Some(through) = state.indexes.catching_up(organization_id) {
        return Err(crate::forward::catching_up(organization_id, through));
    }
    let Some(handle) = state.indexes.get(organization_id) else {
        // With shared leases every index this node owns is opened when its lease is taken: not yet, here.
        if state.ownership.shared() {
            return Err(crate::forward::catching_up(organization_id, *state.journal.durable().borrow()));
        }
        return Ok(None);
    };
    let _permit = state.search_gate.enter().await?;
    let inline = results <= INLINE_MAX_RESULTS && handle.reader.searcher().num_docs() <= state.search_gate.inline_items;
    state.metrics.search_run(inline);
    if inline {
        // A panic here ends this request with a 500 as on the blocking pool (the router's panic layer).
        return work(&handle).map(Some);
    }
    tokio::task::spawn_blocking(move || work(&handle)).await.map_err(task_failed)?.map(Some)
}

/// By default, an index of at most this many items is searched on the request's own thread, for a page of at
/// most [`INLINE_MAX_RESULTS`]: such a search takes a millisecond or a few, less than handing it to a blocking
/// thread and waking the request again costs (measured on linux-doc: 1.5× the searches per second,
/// docs/search.md). A larger index or page is searched on the blocking pool, so a long search never holds a
/// runtime thread; the search gate bounds both.
pub const INLINE_SEARCH_ITEMS: u64 = 20_000;
/// The largest page searched on the request's own thread: each result reads a stored item and cuts its excerpt
/// (2,000 results of linux-doc take tens of milliseconds).
pub const INLINE_MAX_RESULTS: usize = 100;

/// A query, as Coveo's Search API v2 takes it (every key may be in the query string instead).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the strict parser reads the body (it refuses repeated keys)
pub struct SearchQuery {
    /// Free text (the basic expression), in the query syntax unless `enableQuerySyntax` is false (docs/search.md).
    q: Option<String>,
    /// Whether `q` is read in the query syntax (operators, phrases, fields); default true.
    enable_query_syntax: Option<bool>,
    /// `*` in `q`'s words is a wildcard; default false.
    wildcards: Option<bool>,
    /// `?` in `q`'s words is a wildcard; default false.
    question_mark: Option<bool>,
    /// `and`, `or`, `not`, `near` are operators in `q` too; default false.
    lowercase_operators: Option<bool>,
    /// The advanced expression: field operators, AND/OR/NOT, parentheses. The final expression is
    /// `((q aq) OR dq) cq`.
    aq: Option<String>,
    /// The constant expression (a filter, ANDed last).
    cq: Option<String>,
    /// The disjunction expression (ORed with `q aq`).
    dq: Option<String>,
    /// The large expression: accepted, not used (Coveo feeds it to machine learning).
    lq: Option<String>,
    /// From 0, at most 100,000.
    first_result: Option<u32>,
    /// At most 2,000 (default 10).
    number_of_results: Option<u32>,
    /// `relevancy`, `nosort`, `date ascending|descending`, `@field ascending|descending`, or a comma list of them.
    sort_criteria: Option<String>,
    /// The fields each result's `raw` holds (`@` optional); all of them when absent or empty.
    fields_to_include: Option<Vec<String>>,
    /// The longest excerpt, in characters: 1 to 2,000 (default 200).
    excerpt_length: Option<u32>,
    /// Facets to count (Coveo's facet API: specific, numericalRange, dateRange, hierarchical); at most 100.
    #[schema(value_type = Option<Vec<Object>>)]
    facets: Option<Vec<Value>>,
    /// Legacy facets of older Coveo UIs; at most 100.
    #[schema(value_type = Option<Vec<Object>>)]
    group_by: Option<Vec<Value>>,
    /// An IANA time zone (`Europe/Paris`; Headless sends the browser's): dates without a zone in the expressions
    /// and facets, `today` and `yesterday`, are read in it, and date facet values written in it. UTC by default.
    timezone: Option<String>,
    /// Needed with the master key when the server has several organizations.
    organization_id: Option<String>,
    /// See every item, whatever its permissions (needs SEARCH_API VIEW_ALL_CONTENT).
    view_all_content: Option<bool>,
}

/// One page of results, as Coveo's Search API v2 answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchAnswer {
    total_count: usize,
    total_count_filtered: usize,
    /// Milliseconds.
    duration: u64,
    /// Milliseconds.
    index_duration: u64,
    /// Milliseconds.
    request_duration: u64,
    /// The request id.
    search_uid: String,
    /// The words of `q`, each with its forms (none yet): Headless highlights them.
    #[schema(value_type = Object)]
    terms_to_highlight: serde_json::Map<String, Value>,
    results: Vec<SearchResult>,
    #[serde(flatten)]
    headless: HeadlessKeys,
}

/// The keys Coveo's UI kit (Headless, Atomic) reads on every answer, with what Intake has for them: arrays it
/// iterates and objects it reads must be there, or a page fails (`../shared/spec/search-api.md` §3.1).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadlessKeys {
    pipeline: &'static str,
    api_version: u8,
    index: &'static str,
    split_test_run: &'static str,
    #[schema(value_type = Vec<Object>)]
    facets: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    triggers: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    query_corrections: Vec<Value>,
    #[schema(value_type = Object)]
    phrases_to_highlight: serde_json::Map<String, Value>,
    #[schema(value_type = Vec<Object>)]
    group_by_results: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    category_facets: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    suggested_facets: Vec<Value>,
    #[schema(value_type = Vec<String>)]
    refined_keywords: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    warnings: Vec<Value>,
    #[schema(value_type = Object)]
    extended_results: serde_json::Map<String, Value>,
    #[schema(value_type = Object)]
    generate_automatic_facets: Value,
    #[schema(value_type = Object)]
    question_answer: Value,
}

impl Default for HeadlessKeys {
    fn default() -> HeadlessKeys {
        HeadlessKeys {
            pipeline: "default",
            api_version: 2,
            index: "intake",
            split_test_run: "",
            facets: Vec::new(),
            triggers: Vec::new(),
            query_corrections: Vec::new(),
            phrases_to_highlight: serde_json::Map::new(),
            group_by_results: Vec::new(),
            category_facets: Vec::new(),
            suggested_facets: Vec::new(),
            refined_keywords: Vec::new(),
            warnings: Vec::new(),
            extended_results: serde_json::Map::new(),
            generate_automatic_facets: serde_json::json!({"facets": []}),
            question_answer: serde_json::json!({
                "answerFound": false, "question": "", "answerSnippet": "", "score": 0, "relatedQuestions": [],
                "documentId": {"contentIdKey": "", "contentIdValue": ""},
            }),
        }
    }
}

/// One result, with every key of Coveo's result object (`search-api.md` §3.2).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    title: String,
    title_highlights: Vec<ExcerptHighlight>,
    uri: String,
    printable_uri: String,
    printable_uri_highlights: Vec<ExcerptHighlight>,
    click_uri: String,
    unique_id: String,
    /// The same as `uniqueId`.
    primaryid: String,
    /// The passage where the query's words are, else the start of the item's text.
    excerpt: String,
    excerpt_highlights: Vec<ExcerptHighlight>,
    /// The first two sentences of the item's text.
    first_sentences: String,
    first_sentences_highlights: Vec<ExcerptHighlight>,
    #[schema(value_type = Option<String>)]
    summary: Option<String>,
    summary_highlights: Vec<ExcerptHighlight>,
    flags: &'static str,
    /// The quickview (`/rest/search/v2/html`) shows the item's stored text.
    has_html_version: bool,
    has_mobile_html_version: bool,
    score: f32,
    /// The score as a percentage of the page's best.
    percent_score: f32,
    #[schema(value_type = Option<Object>)]
    ranking_info: Option<Value>,
    rating: u8,
    is_top_result: bool,
    is_recommendation: bool,
    is_user_action_view: bool,
    absent_terms: Vec<String>,
    #[schema(value_type = Option<Object>)]
    parent_result: Option<Value>,
    #[schema(value_type = Vec<Object>)]
    child_results: Vec<Value>,
    total_number_of_child_results: u32,
    search_uid: String,
    /// The item's metadata and the standard fields (`uri`, `source`, `date`, …).
    #[schema(value_type = Object)]
    #[serde(serialize_with = "intake_index::results::serialize_shared")]
    raw: std::sync::Arc<intake_index::results::Raw>,
}

#[derive(Serialize, ToSchema)]
pub struct ExcerptHighlight {
    offset: usize,
    length: usize,
}

impl SearchResult {
    fn new(hit: SearchHit, terms: &[String], top_score: f32, search_uid: &str) -> SearchResult {
        let highlights = |ranges: Vec<intake_index::search::Highlight>| {
            ranges.into_iter().map(|h| ExcerptHighlight { offset: h.offset, length: h.length }).collect()
        };
        SearchResult {
            title_highlights: word_highlights(&hit.title, terms),
            title: hit.title,
            uri: hit.uri,
            printable_uri_highlights: Vec::new(),
            printable_uri: hit.printable_uri,
            click_uri: hit.click_uri,
            primaryid: hit.unique_id.clone(),
            unique_id: hit.unique_id,
            excerpt: hit.excerpt,
            excerpt_highlights: highlights(hit.excerpt_highlights),
            first_sentences_highlights: word_highlights(&hit.first_sentences, terms),
            first_sentences: hit.first_sentences,
            summary: None,
            summary_highlights: Vec::new(),
            flags: "",
            has_html_version: true,
            has_mobile_html_version: false,
            percent_score: if top_score > 0.0 { (hit.score / top_score * 100.0).min(100.0) } else { 0.0 },
            score: hit.score,
            ranking_info: None,
            rating: 3,
            is_top_result: false,
            is_recommendation: false,
            is_user_action_view: false,
            absent_terms: Vec::new(),
            parent_result: None,
            child_results: Vec::new(),
            total_number_of_child_results: 0,
            search_uid: search_uid.to_string(),
            raw: hit.raw,
        }
    }
}

/// The words of `q` worth highlighting: runs of letters and digits, lowercased, without the query syntax's
/// operators; each once, at most 64.
pub(crate) fn query_terms(q: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in q.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !matches!(word.as_str(), "and" | "or" | "not" | "near") && !terms.contains(&word) && terms.len() < 64 {
            terms.push(word);
        }
    }
    terms
}

/// Where the query's words are in `text`, as whole words: offsets and lengths in characters.
fn word_highlights(text: &str, terms: &[String]) -> Vec<ExcerptHighlight> {
    let mut highlights = Vec::new();
    let (mut offset, mut counted) = (0, 0);
    for word in intake_index::excerpt::words(text, 0) {
        let letters = &text[word.clone()];
        // `terms` are lowercase: an ASCII word compares without a lowercased copy.
        let matches = if letters.is_ascii() {
            terms.iter().any(|term| term.eq_ignore_ascii_case(letters))
        } else {
            terms.contains(&letters.to_lowercase())
        };
        if matches {
            offset += text[counted..word.start].chars().count();
            counted = word.start;
            highlights.push(ExcerptHighlight { offset, length: letters.chars().count() });
        }
    }
    highlights
}

/// What a JSON value is, for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How many searches run at once; the others wait, up to [`SEARCH_QUEUE_WAIT`], then get a 503.
#[derive(Clone)]
pub struct SearchGate {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    size: usize,
    /// Indexes of at most this many items are searched on the request's thread ([`INLINE_SEARCH_ITEMS`]).
    inline_items: u64,
}

const SEARCH_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl SearchGate {
    /// As many searches at once as there are cores (at least two); those of an index of at most `inline_items`
    /// items on the request's own thread.
    pub fn new(inline_items: u64) -> SearchGate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        SearchGate { slots: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)), size: cores, inline_items }
    }

    async fn enter(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let busy = || {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!(
                    "Every search slot stayed busy for {} s (searches run {} at a time); retry in a moment.",
                    SEARCH_QUEUE_WAIT.as_secs(),
                    self.size
                ),
            )
            .with_retry_after(1)
        };
        match tokio::time::timeout(SEARCH_QUEUE_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(busy()),
        }
    }
}

/// Without `organizationId`, a server with a single organization searches that one.
fn only_organization(state: &AppState) -> Result<String, ApiError> {
    let organizations = state.catalog.organizations();
    match organizations.as_slice() {
        [only] => Ok(only.id.clone()),
        _ => Err(ApiError::missing_parameter("organizationId")),
    }
}

/// Who searches: everything with `viewAllContent` (which needs SEARCH_API VIEW_ALL_CONTENT, and is never a
/// search token's); a search token's users, resolved in the organization's identities; anyone else as the
/// anonymous user. Items of public (SHARED) sources are everyone's.
pub fn viewer(
    state: &AppState,
    principal: &Principal,
    organization_id: &str,
    view_all_content: bool,
) -> Result<Viewer, ApiError> {
    if view_all_content {
        if let Principal::SearchToken(_) = principal {
            return Err(principal.denied("the privilege SEARCH_API VIEW_ALL_CONTENT (viewAllContent)"));
        }
        principal.authorize(organization_id, &Privilege::new("SEARCH_API", "VIEW_ALL_CONTENT", None, "*"))?;
        return Ok(Viewer::All);
    }
    let keys = match principal {
        Principal::SearchToken(claims) => resolve(state, organization_id, &claims.users())?.keys,
        _ => Resolution::anonymous().keys,
    };
    Ok(trimmed_viewer(state, organization_id, keys))
}

/// A viewer holding `keys`, who also sees the organization's public (SHARED) sources.
pub fn trimmed_viewer(state: &AppState, organization_id: &str, keys: HashSet<String>) -> Viewer {
    let public_sources = state
        .catalog
        .sources(organization_id)
        .into_iter()
        .filter(|source| source.visibility.eq_ignore_ascii_case("SHARED"))
        .map(|source| source.id)
        .collect();
    Viewer::Trimmed { keys, public_sources }
}

/// What users resolve to in an organization's identities.
pub fn resolve(state: &AppState, organization_id: &str, users: &[IdentityRef]) -> Result<Resolution, ApiError> {
    let providers = state
        .catalog
        .providers(organization_id)
        .map_err(|e| storage_failure("The security providers could not be read", e))?;
    let graph = state.identities.of(organization_id);
    let graph = graph.read().expect("identity graph lock");
    Ok(graph.resolve(users, &providers))
}

/// A search token's filter, which the search ANDs with `cq` (so neither `aq` nor `dq` reach past it).
fn token_filter(principal: &Principal) -> String {
    match principal {
        Principal::SearchToken(claims) => claims.filter.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// A search parameter from the JSON body, else from the query string.
pub struct Params<'a> {
    pub query: &'a QueryParams,
    pub body: &'a Value,
}

impl Params<'_> {
    pub(crate) fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.body.get(name) {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Null) | None => Ok(self.query.get(name)?.map(str::to_string)),
            Some(other) => Err(ApiError::invalid_parameter(name, &other.to_string(), "it must be a string")),
        }
    }

    /// A list of field names (a JSON array of strings, or in the query string a JSON array or a comma list), each
    /// without its `@`, lower-cased; `None` when absent or empty.
    pub(crate) fn field_names(&self, name: &str) -> Result<Option<HashSet<String>>, ApiError> {
        const MAX_NAMES: usize = 1_000;
        let expected = "it must be an array of at most 1,000 field names such as [\"@author\", \"filetype\"]";
        let names: Vec<String> = match self.body.get(name) {
            Some(Value::Array(items)) => {
                items.iter().map(|item| item.as_str().map(str::to_string)).collect::<Option<_>>().ok_or_else(|| {
                    ApiError::invalid_parameter(name, &Value::Array(items.clone()).to_string(), expected)
                })?
            }
            Some(Value::Null) | None => match self.query.get(name)? {
                Some(text) if text.trim_start().starts_with('[') => {
                    serde_json::from_str(text).map_err(|_| ApiError::invalid_parameter(name, text, expected))?
                }
                Some(text) => text.split(',').map(str::to_string).collect(),
                None => Vec::new(),
            },
            Some(other) => return Err(ApiError::invalid_parameter(name, &other.to_string(), expected)),
        };
        if names.len() > MAX_NAMES {
            return Err(ApiError::invalid_parameter(name, &format!("{} names", names.len()), expected));
        }
        let names: HashSet<String> =
            names.iter().map(|n| n.trim().trim_start_matches('@').to_lowercase()).filter(|n| !n.is_empty()).collect();
        Ok((!names.is_empty()).then_some(names))
    }

    /// A JSON value from the body, else from the query string as JSON text.
    pub(crate) fn json(&self, name: &str) -> Result<Option<Value>, ApiError> {
        match self.body.get(name) {
            Some(Value::Null) | None => match self.query.get(name)? {
                Some(text) => serde_json::from_str(text)
                    .map(Some)
                    .map_err(|e| ApiError::invalid_parameter(name, text, &format!("it must be JSON ({e})"))),
                None => Ok(None),
            },
            Some(value) => Ok(Some(value.clone())),
        }
    }

    pub(crate) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        self.flag_or(name, false)
    }

    pub(crate) fn flag_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.body.get(name) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Null) | None => self.query.boolean(name, default),
            Some(other) => Err(ApiError::invalid_parameter(name, &other.to_string(), "it must be true or false")),
        }
    }

    pub(crate) fn count(&self, name: &str, max: usize) -> Result<Option<usize>, ApiError> {
        let expected = format!("it must be an integer from 0 to {max}");
        let value = match self.body.get(name) {
            Some(Value::Number(n)) => {
                n.as_u64().ok_or_else(|| ApiError::invalid_parameter(name, &n.to_string(), &expected))?
            }
            Some(Value::Null) | None => match self.query.non_negative(name, max as u64)? {
                Some(n) => n,
                None => return Ok(None),
            },
            Some(other) => {
                return Err(ApiError::invalid_parameter(name, &other.to_string(), &expected));
            }
        };
        if value as usize > max {
            return Err(ApiError::invalid_parameter(name, &value.to_string(), &expected));
        }
        Ok(Some(value as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_are_whole_words_in_characters() {
        let terms = query_terms("Café crane");
        let found = word_highlights("Le CAFÉ, la crane — cranes, CRANE", &terms);
        let found: Vec<(usize, usize)> = found.iter().map(|h| (h.offset, h.length)).collect();
        assert_eq!(found, [(3, 4), (12, 5), (28, 5)]);
    }
}
