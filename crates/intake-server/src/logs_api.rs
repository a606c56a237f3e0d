//! `POST /logs/v1/organizations/{org}` (and `GET`): the item log in the shape of Coveo's Logs API; and
//! `GET /logs/v1/organizations/{org}/activity`: its outcomes counted over the last hour or day (the console's
//! chart), with the journal's backlog.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use intake_model::dates::{format_ms, parse_date_ms};
use intake_model::logs::{LogOperation, LogResult, LogTask};
use intake_model::{ApiError, Privilege, QueryParams};
use intake_store::item_log::{ActivityQuery, IdMatching, LogQuery, StoredLogEntry};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::http::{BodyLimit, HandlerResult, storage_failure, task_failed};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const LOGS_BODY: BodyLimit = BodyLimit::small("The logs filter body");
const DEFAULT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;
const MAX_PER_PAGE: u64 = 1000;

/// `/logs/v1/organizations/{org}`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read_logs)).routes(routes!(activity))
}

/// Item outcomes of an organization, newest first.
#[utoipa::path(
    method(get, post), path = "/logs/v1/organizations/{org}", tag = "Logs",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("from" = Option<String>, Query, description = "Start (ISO 8601); default: 7 days ago"),
        ("to" = Option<String>, Query, description = "End (ISO 8601); default: now"),
        ("documentId" = Option<String>, Query, description = "An item URI"),
        ("documentIdMatching" = Option<String>, Query, description = "EXACT (default), PARTIAL or WILDCARD"),
        ("page" = Option<u32>, Query, description = "Page, from 0"),
        ("perPage" = Option<u32>, Query, description = "Entries per page (default 100, at most 1000)"),
    ),
    request_body(content = serde_json::Value, description = "Filters: sourcesIds, tasks, operations, results, and their exclude* twins", content_type = "application/json"),
    responses(
        (status = 200, description = "One page of outcomes, newest first", body = LogsPage),
        (status = 400, description = "INVALID_JSON: the filters body"),
        (status = 403, description = "ACCESS_DENIED: LOGS VIEW"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "INVALID_PARAMETER: a date, documentIdMatching, page, perPage, or a filter value"),
    )
)]
pub async fn read_logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> HandlerResult<Response> {
    principal.enter(&org)?;
    state.organization(&org)?;
    principal.authorize(&org, &Privilege::platform("LOGS", "VIEW", "*"))?;
    let query = QueryParams::parse(query.as_deref());
    let filters = state.body_budget.read_optional_json(&headers, body, LOGS_BODY).await?;
    let now = state.clock.now_ms();
    let to_ms = time_parameter(&query, "to")?.unwrap_or(now);
    state.index_here(&org)?;
    let log_query = LogQuery {
        organization_id: org.clone(),
        from_ms: time_parameter(&query, "from")?.unwrap_or(to_ms - DEFAULT_WINDOW_MS),
        to_ms,
        document_id: match query.get("documentId")? {
            Some(id) if !id.is_empty() => Some((id.to_string(), id_matching(&query)?)),
            _ => None,
        },
        source_ids: strings(&filters, "sourcesIds")?,
        exclude_source_ids: strings(&filters, "excludeSourceIds")?,
        operations: enums(&filters, "operations", LogOperation::parse, LogOperation::ALL.iter().map(|o| o.as_str()))?,
        exclude_operations: enums(
            &filters,
            "excludeOperations",
            LogOperation::parse,
            LogOperation::ALL.iter().map(|o| o.as_str()),
        )?,
        results: enums(&filters, "results", LogResult::parse, LogResult::ALL.iter().map(|r| r.as_str()))?,
        exclude_results: enums(
            &filters,
            "excludeResults",
            LogResult::parse,
            LogResult::ALL.iter().map(|r| r.as_str()),
        )?,
        tasks: enums(&filters, "tasks", LogTask::parse, LogTask::ALL.iter().map(|t| t.as_str()))?,
        exclude_tasks: enums(&filters, "excludeTasks", LogTask::parse, LogTask::ALL.iter().map(|t| t.as_str()))?,
        page: query.non_negative("page", u32::MAX as u64)?.unwrap_or(0) as u32,
        per_page: query.non_negative("perPage", MAX_PER_PAGE)?.unwrap_or(100).max(1) as u32,
        committed: state.commit_marks.get(&org),
    };
    let item_log = state.item_log.clone();
    let (entries, has_next) = tokio::task::spawn_blocking(move || item_log.query(&log_query))
        .await
        .map_err(task_failed)?
        .map_err(|e| storage_failure("The item log could not be read", e))?;
    let entries = entries.iter().map(LogEntryAnswer::from).collect();
    Ok(Json(LogsPage { document_log_entries: entries, has_next_page: has_next }).into_response())
}

/// The windows of the activity chart: (name, bucket length, buckets).
const WINDOWS: [(&str, i64, u32); 2] = [("hour", 60_000, 60), ("day", 15 * 60_000, 96)];

/// Item outcomes over the last hour (by minute) or day (by quarter hour), as committed, and the journal's
/// backlog: what the console's overview charts.
#[utoipa::path(
    get, path = "/logs/v1/organizations/{org}/activity", tag = "Logs",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("window" = Option<String>, Query, description = "`hour` (default: 60 buckets of a minute) or `day` (96 of 15 minutes)"),
    ),
    responses(
        (status = 200, description = "Outcomes per bucket and result, oldest bucket first", body = Activity),
        (status = 403, description = "ACCESS_DENIED: LOGS VIEW"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "INVALID_PARAMETER: window"),
    )
)]
pub async fn activity(
    State(state): State<AppState>,
    principal: Principal,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> HandlerResult<Json<Activity>> {
    principal.enter(&org)?;
    state.organization(&org)?;
    principal.authorize(&org, &Privilege::platform("LOGS", "VIEW", "*"))?;
    let query = QueryParams::parse(query.as_deref());
    let window = query.get("window")?.filter(|w| !w.is_empty()).unwrap_or("hour");
    let (name, bucket_ms, buckets) = WINDOWS
        .into_iter()
        .find(|(name, ..)| name.eq_ignore_ascii_case(window))
        .ok_or_else(|| ApiError::invalid_parameter("window", window, "allowed values are hour and day"))?;
    // Buckets end on a boundary, the current one included.
    let to_ms = (state.clock.now_ms().div_euclid(bucket_ms) + 1) * bucket_ms;
    let from_ms = to_ms - bucket_ms * i64::from(buckets);
    state.index_here(&org)?;
    let committed = state.commit_marks.get(&org);
    let committed_seq = committed.journal_seq;
    let activity_query = ActivityQuery { organization_id: org, from_ms, bucket_ms, buckets, committed };
    let item_log = state.item_log.clone();
    let counts = tokio::task::spawn_blocking(move || item_log.activity(&activity_query))
        .await
        .map_err(task_failed)?
        .map_err(|e| storage_failure("The item log could not be read", e))?;
    let mut answer: Vec<ActivityBucket> = (0..i64::from(buckets))
        .map(|i| ActivityBucket { start: format_ms(from_ms + i * bucket_ms), counts: Default::default() })
        .collect();
    let mut totals = std::collections::BTreeMap::new();
    for count in counts {
        if let Some(bucket) = answer.get_mut(count.bucket as usize) {
            *bucket.counts.entry(count.result.as_str()).or_default() += count.count;
            *totals.entry(count.result.as_str()).or_default() += count.count;
        }
    }
    let (durable_seq, applied_seq) = state.metrics.journal_positions_now();
    Ok(Json(Activity {
        window: name,
        from: format_ms(from_ms),
        to: format_ms(to_ms),
        bucket_ms,
        buckets: answer,
        totals,
        journal: JournalPosition {
            durable_seq,
            applied_seq,
            backlog: durable_seq.saturating_sub(applied_seq),
            committed_seq,
        },
    }))
}

/// Outcomes over a window.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// `hour` or `day`.
    window: &'static str,
    from: String,
    to: String,
    bucket_ms: i64,
    /// Oldest first.
    buckets: Vec<ActivityBucket>,
    /// By result, over the window.
    totals: std::collections::BTreeMap<&'static str, u64>,
    journal: JournalPosition,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityBucket {
    /// ISO 8601, UTC.
    start: String,
    /// By result (`COMPLETED`, `WARNING`, `REJECTED`, `SKIPPED`, `ERROR`); results without outcomes left out.
    counts: std::collections::BTreeMap<&'static str, u64>,
}

/// Where the journal stands: accepted operations not yet applied are the backlog.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalPosition {
    /// The last record made durable (every organization's).
    durable_seq: u64,
    /// The last record the applier has applied.
    applied_seq: u64,
    /// Records durable and not yet applied.
    backlog: u64,
    /// Every operation of this organization up to this record is committed to its index.
    committed_seq: u64,
}

/// One page of the item log, as Coveo's Logs API answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogsPage {
    document_log_entries: Vec<LogEntryAnswer>,
    has_next_page: bool,
}

/// One outcome of one operation on one item.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntryAnswer {
    /// When the outcome was recorded (ISO 8601, UTC).
    datetime: String,
    guid: String,
    /// The item's `documentId`.
    id: String,
    meta: LogMeta,
    /// `ADD`, `UPDATE`, `DELETE`, `DELETE_OLDER_THAN`, `BATCH_FILE`…
    operation: &'static str,
    organization_id: String,
    request_id: String,
    resource_id: String,
    /// `COMPLETED`, `WARNING`, `REJECTED`, `SKIPPED` or `ERROR`.
    result: &'static str,
    source_id: String,
    /// `STREAMING_EXTENSION`, `PROCESSING`, `INDEXING`…
    task: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogMeta {
    ordering_id: String,
    journal_seq: u64,
    /// Why, for anything but COMPLETED.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What was done, for a COMPLETED entry that says more (a stream file's counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<String>,
}

impl From<&StoredLogEntry> for LogEntryAnswer {
    fn from(stored: &StoredLogEntry) -> LogEntryAnswer {
        let e = &stored.entry;
        LogEntryAnswer {
            datetime: format_ms(e.datetime_ms),
            guid: format!("00000000-0000-4000-8000-{:012x}", stored.row_id),
            id: e.document_id.clone(),
            meta: LogMeta {
                ordering_id: e.ordering_id.to_string(),
                journal_seq: e.journal_seq,
                error: e.reason.clone().filter(|_| e.result != LogResult::Completed),
                details: e.reason.clone().filter(|_| e.result == LogResult::Completed),
            },
            operation: e.operation.as_str(),
            organization_id: e.organization_id.clone(),
            request_id: e.request_id.clone(),
            resource_id: e.source_id.clone(),
            result: e.result.as_str(),
            source_id: e.source_id.clone(),
            task: e.task.as_str(),
        }
    }
}

fn time_parameter(query: &QueryParams, name: &str) -> Result<Option<i64>, ApiError> {
    match query.get(name)? {
        None | Some("") => Ok(None),
        Some(raw) => parse_date_ms(raw).map(Some).ok_or_else(|| {
            ApiError::invalid_parameter(name, raw, "it must be a date and time, such as 2024-01-02T03:04:05Z")
        }),
    }
}

fn id_matching(query: &QueryParams) -> Result<IdMatching, ApiError> {
    match query.get("documentIdMatching")?.map(str::to_ascii_uppercase).as_deref() {
        None | Some("") | Some("EXACT") => Ok(IdMatching::Exact),
        Some("PARTIAL") => Ok(IdMatching::Partial),
        Some("WILDCARD") => Ok(IdMatching::Wildcard),
        Some(other) => Err(ApiError::invalid_parameter(
            "documentIdMatching",
            other,
            "allowed values are EXACT, PARTIAL and WILDCARD",
        )),
    }
}

fn strings(filters: &Value, key: &str) -> Result<Vec<String>, ApiError> {
    match filters.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().map(|item| item.as_str().map(str::to_string).ok_or_else(|| not_a_string_list(key))).collect()
        }
        Some(_) => Err(not_a_string_list(key)),
    }
}

fn enums<T>(
    filters: &Value,
    key: &str,
    parse: fn(&str) -> Option<T>,
    allowed: impl Iterator<Item = &'static str>,
) -> Result<Vec<T>, ApiError> {
    let allowed: Vec<&str> = allowed.collect();
    strings(filters, key)?
        .into_iter()
        .map(|raw| {
            parse(&raw).ok_or_else(|| {
                ApiError::invalid_json(format!("'{key}' holds '{raw}'; allowed values are {}.", allowed.join(", ")))
            })
        })
        .collect()
}

fn not_a_string_list(key: &str) -> ApiError {
    ApiError::invalid_json(format!("'{key}' must be an array of strings."))
}
