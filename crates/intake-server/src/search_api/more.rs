//! The Search API endpoints beside the search itself that Headless and Atomic call (`search-api.md` §4):
//! facet value search (`/facet`), query suggestions (`/querySuggest`), the query plan (`/plan`) and the fields
//! (`/fields`). Each is authorized and trimmed as a search is.

use std::collections::HashMap;

use axum::Json;

use axum::extract::{RawQuery, State};

use intake_index::facets::request::{MAX_FACET_VALUES, MAX_PATH_DEPTH};
use intake_index::query::glob_matches;
use intake_index::search::facet_values;
use intake_index::suggest::{MAX_COMPLETIONS, complete};
use intake_model::{ApiError, QueryParams};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{Params, Prepared, SearchCall, on_index, prepare, search_organization};
use crate::auth::Principal;
use crate::http::{HandlerResult, RequestId};
use crate::state::AppState;

/// A facet's values that match what is typed in its search box.
#[utoipa::path(
    post, path = "/rest/search/v2/facet", tag = "Search",
    params(("organizationId" = Option<String>, Query, description = "Organization id; optional when the server has one organization")),
    request_body(content = FacetSearchRequest, description = "The facet, the typed text as a wildcard pattern, and the search it narrows", content_type = "application/json"),
    responses(
        (status = 200, description = "The matching values, most frequent first", body = FacetSearchAnswer),
        (status = 400, description = "INVALID_JSON, or INVALID_QUERY_SYNTAX in the search context"),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API EXECUTE_QUERY"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "MISSING_PARAMETER (field) or INVALID_PARAMETER (naming the key)"),
    )
)]
pub async fn facet_search(State(state): State<AppState>, call: SearchCall) -> HandlerResult<Json<FacetSearchAnswer>> {
    let ask = FacetSearch::read(&call.body)?;
    let context = call.body.get("searchContext").filter(|v| !v.is_null()).cloned().unwrap_or(Value::Object(Map::new()));
    if !context.is_object() {
        return Err(
            ApiError::invalid_parameter("searchContext", &context.to_string(), "it must be a search request").into()
        );
    }
    let params = Params { query: &call.query, body: &context };
    let Prepared { organization_id, request, .. } = prepare(&state, &call.principal, &params)?;
    let (field, delimiter) = (ask.field.clone(), ask.delimiter.clone());
    let counts = on_index(&state, &organization_id, 0, move |handle| {
        let searcher = handle.reader.searcher();
        facet_values(
            &handle.index,
            &searcher,
            &handle.fields,
            &handle.permissions,
            &request,
            &field,
            delimiter.as_deref(),
        )
    })
    .await?
    .unwrap_or_default();
    Ok(Json(ask.answer(&counts)))
}

/// A facet search request (`RestFacetSearchRequest`).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json; the handler reads the JSON itself
pub struct FacetSearchRequest {
    /// The facet's field (`@` optional).
    field: String,
    /// `specific` (default) or `hierarchical`.
    r#type: Option<String>,
    /// What was typed, as a pattern with `*` and `?` (Headless sends `*text*`); default `*`.
    query: Option<String>,
    /// At most 1,000 (default 10).
    number_of_values: Option<u32>,
    /// Values to leave out (those already selected or excluded).
    ignore_values: Option<Vec<String>>,
    /// Hierarchical paths to leave out.
    ignore_paths: Option<Vec<Vec<String>>>,
    /// Hierarchical: only values below this path.
    base_path: Option<Vec<String>>,
    /// Hierarchical: the path separator (default `;`).
    delimiting_character: Option<String>,
    /// Display names by raw value.
    #[schema(value_type = Option<Object>)]
    captions: Option<Value>,
    /// The search whose results the values are counted over (its facets on the same field are not applied).
    #[schema(value_type = Option<Object>)]
    search_context: Option<Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacetSearchAnswer {
    values: Vec<FacetSearchValue>,
    more_values_available: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FacetSearchValue {
    display_value: String,
    raw_value: String,
    count: u64,
    /// Hierarchical: the path above the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Vec<String>>,
}

/// What a facet search asks.
struct FacetSearch {
    field: String,
    /// Set for a hierarchical facet.
    delimiter: Option<String>,
    pattern: Vec<char>,
    number_of_values: usize,
    ignore_values: Vec<String>,
    ignore_paths: Vec<Vec<String>>,
    base_path: Vec<String>,
    captions: HashMap<String, String>,
    alphanumeric: bool,
}

impl FacetSearch {
    fn read(body: &Value) -> Result<FacetSearch, ApiError> {
        let obj = intake_index::facets::request::Obj::new(body, "facet search".to_string())?;
        let field = obj.field("field")?;
        let hierarchical = match obj.str("type")? {
            None | Some("specific") => false,
            Some("hierarchical") => true,
            Some(other) => return Err(obj.invalid("type", other, "it must be specific or hierarchical")),
        };
        let strings = |key: &str, max: usize| -> Result<Vec<String>, ApiError> {
            obj.list(key, max)?
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| obj.invalid(key, "…", "it must be an array of strings"))
        };
        let ignore_paths = obj
            .list("ignorePaths", MAX_FACET_VALUES)?
            .iter()
            .map(|path| {
                path.as_array()
                    .filter(|parts| parts.len() <= MAX_PATH_DEPTH)
                    .and_then(|parts| parts.iter().map(|p| p.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| obj.invalid("ignorePaths", "…", "it must be an array of paths (arrays of strings)"))?;
        let captions = match obj.get("captions") {
            Some(Value::Object(map)) => {
                map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
            }
            Some(other) => return Err(obj.invalid("captions", &other.to_string(), "it must be an object")),
            None => HashMap::new(),
        };
        let pattern = obj.str("query")?.map(str::trim).filter(|q| !q.is_empty()).unwrap_or("*");
        if pattern.chars().count() > intake_index::query::MAX_PATTERN_CHARS {
            return Err(obj.invalid("query", pattern, "it must be at most 256 characters"));
        }
        Ok(FacetSearch {
            field,
            delimiter: hierarchical.then(|| obj.str("delimitingCharacter").ok().flatten().unwrap_or(";").to_string()),
            pattern: pattern.to_lowercase().chars().collect(),
            number_of_values: obj.count("numberOfValues", MAX_FACET_VALUES)?.unwrap_or(10),
            ignore_values: strings("ignoreValues", MAX_FACET_VALUES)?,
            ignore_paths,
            base_path: strings("basePath", MAX_PATH_DEPTH)?,
            captions,
            alphanumeric: matches!(obj.str("sortCriteria")?, Some("alphanumeric")),
        })
    }

    /// The values (or paths' last parts) matching the pattern, most frequent first unless asked A→Z.
    fn answer(&self, counts: &HashMap<String, u64>) -> FacetSearchAnswer {
        let mut found: Vec<(Vec<String>, String, u64)> = counts
            .iter()
            .filter_map(|(key, count)| {
                let (path, value) = match &self.delimiter {
                    None => (Vec::new(), key.clone()),
                    Some(delimiter) => {
                        let mut parts: Vec<String> = key.split(delimiter.as_str()).map(str::to_string).collect();
                        let value = parts.pop()?;
                        (parts, value)
                    }
                };
                let full: Vec<String> = path.iter().cloned().chain([value.clone()]).collect();
                let keep = glob_matches(&self.pattern, &value.to_lowercase())
                    && !self.ignore_values.contains(&value)
                    && !self.ignore_paths.contains(&full)
                    && full.len() > self.base_path.len()
                    && full.starts_with(&self.base_path);
                keep.then_some((path, value, *count))
            })
            .collect();
        found.sort_by(|a, b| {
            let alpha = a.1.to_lowercase().cmp(&b.1.to_lowercase()).then_with(|| a.0.cmp(&b.0));
            if self.alphanumeric { alpha } else { b.2.cmp(&a.2).then(alpha) }
        });
        let more = found.len() > self.number_of_values;
        found.truncate(self.number_of_values);
        let values = found
            .into_iter()
            .map(|(path, value, count)| FacetSearchValue {
                display_value: self.captions.get(&value).cloned().unwrap_or_else(|| value.clone()),
                raw_value: value,
                count,
                path: self.delimiter.is_some().then_some(path),
            })
            .collect();
        FacetSearchAnswer { values, more_values_available: more }
    }
}

/// Completions of what is typed in a search box, from the titles of what the caller may see.
#[utoipa::path(
    post, path = "/rest/search/v2/querySuggest", tag = "Search",
    params(("organizationId" = Option<String>, Query, description = "Organization id; optional when the server has one organization")),
    request_body(content = QuerySuggestRequest, description = "What was typed", content_type = "application/json"),
    responses(
        (status = 200, description = "Completions, best first", body = QuerySuggestAnswer),
        (status = 400, description = "INVALID_JSON"),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API EXECUTE_QUERY"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "INVALID_PARAMETER (count out of bounds, naming it)"),
    )
)]
pub async fn query_suggest(
    State(state): State<AppState>,
    request_id: RequestId,
    call: SearchCall,
) -> HandlerResult<Json<QuerySuggestAnswer>> {
    let params = call.params();
    let organization_id = search_organization(&state, &call.principal, &params)?;
    let viewer = super::viewer(&state, &call.principal, &organization_id, false)?;
    let typed = params.text("q")?.unwrap_or_default();
    let count = params.count("count", MAX_COMPLETIONS)?.unwrap_or(5);
    let completions = on_index(&state, &organization_id, 0, move |handle| {
        let searcher = handle.reader.searcher();
        complete(&handle.index, &searcher, &handle.fields, &handle.permissions, &viewer, &typed, count)
    })
    .await?
    .unwrap_or_default();
    let completions = completions
        .into_iter()
        .enumerate()
        .map(|(i, c)| Completion {
            executable_confidence: c.score,
            expression: c.expression,
            score: c.score,
            highlighted: c.highlighted,
            object_id: format!("{}-{i}", request_id.0),
        })
        .collect();
    Ok(Json(QuerySuggestAnswer { completions, response_id: request_id.0 }))
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // the shape for /openapi.json
pub struct QuerySuggestRequest {
    /// What was typed.
    q: Option<String>,
    /// How many completions, at most 100 (default 5).
    count: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuerySuggestAnswer {
    completions: Vec<Completion>,
    response_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    expression: String,
    score: f64,
    /// `{matched}` and `[not matched]` parts, as Coveo marks them.
    highlighted: String,
    executable_confidence: f64,
    object_id: String,
}

/// The query plan: what a search would run (Headless' standalone search box reads it before redirecting).
#[utoipa::path(
    post, path = "/rest/search/v2/plan", tag = "Search",
    params(("organizationId" = Option<String>, Query, description = "Organization id; optional when the server has one organization")),
    request_body(content = super::SearchQuery, description = "A search request", content_type = "application/json"),
    responses(
        (status = 200, description = "The plan: no query pipeline rules apply, the expression is as given", body = PlanAnswer),
        (status = 400, description = "INVALID_JSON or INVALID_QUERY_SYNTAX"),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API EXECUTE_QUERY"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "INVALID_PARAMETER or MISSING_PARAMETER"),
    )
)]
pub async fn plan(State(state): State<AppState>, call: SearchCall) -> HandlerResult<Json<PlanAnswer>> {
    let params = call.params();
    let Prepared { request, .. } = prepare(&state, &call.principal, &params)?;
    // The plan says whether the search would run: its expressions must parse as the search would read them.
    for (name, text) in [("aq", &request.aq), ("cq", &request.cq), ("dq", &request.dq)] {
        intake_index::syntax::parse(text).map_err(|e| intake_index::query::invalid_expression(name, e))?;
    }
    if request.enable_query_syntax {
        match intake_index::syntax::parse_with(&request.q, request.syntax) {
            Err(error) if error.is_final() => return Err(intake_index::query::invalid_expression("q", error).into()),
            _ => {}
        }
    }
    let lq = params.text("lq")?.unwrap_or_default();
    let output = serde_json::json!({"triggers": [], "query": {"q": request.q, "aq": request.aq, "cq": request.cq, "dq": request.dq, "lq": lq}});
    Ok(Json(PlanAnswer {
        preprocessing_output: output,
        parsed_input: serde_json::json!({"basicExpression": request.q, "largeExpression": lq}),
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanAnswer {
    #[schema(value_type = Object)]
    preprocessing_output: Value,
    #[schema(value_type = Object)]
    parsed_input: Value,
}

/// The fields a search can use: the standard ones and the organization's declared fields.
#[utoipa::path(
    get, path = "/rest/search/v2/fields", tag = "Search",
    params(("organizationId" = Option<String>, Query, description = "Organization id; optional when the server has one organization")),
    responses(
        (status = 200, description = "The fields", body = FieldsAnswer),
        (status = 403, description = "ACCESS_DENIED: SEARCH_API EXECUTE_QUERY"),
        (status = 404, description = "ORGANIZATION_NOT_FOUND"),
        (status = 412, description = "MISSING_PARAMETER (organizationId, with several organizations)"),
    )
)]
pub async fn fields(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(query): RawQuery,
) -> HandlerResult<Json<FieldsAnswer>> {
    let query = QueryParams::parse(query.as_deref());
    let empty = Value::Object(Map::new());
    let organization_id = search_organization(&state, &principal, &Params { query: &query, body: &empty })?;
    let standard = [
        ("uri", "String"),
        ("title", "String"),
        ("source", "String"),
        ("filetype", "String"),
        ("date", "Date"),
        ("size", "Long"),
    ];
    let declared = intake_applier::field_types(state.catalog.as_ref(), &organization_id);
    let mut declared: Vec<(String, &'static str)> = declared
        .into_iter()
        .map(|(name, kind)| {
            let kind = match kind {
                intake_model::FieldType::String => "String",
                intake_model::FieldType::Long => "Long",
                intake_model::FieldType::Long64 => "Long64",
                intake_model::FieldType::Double => "Double",
                intake_model::FieldType::Date => "Date",
            };
            (name, kind)
        })
        .collect();
    declared.sort();
    let fields = standard
        .iter()
        .map(|(name, kind)| (name.to_string(), *kind, "Standard"))
        .chain(declared.into_iter().map(|(name, kind)| (name, kind, "Custom")))
        .map(|(name, kind, source)| FieldInfo {
            name: format!("@{name}"),
            description: String::new(),
            default_value: String::new(),
            field_type: kind,
            field_source_type: source,
            include_in_query: true,
            include_in_results: true,
            group_by_field: true,
            split_group_by_field: false,
            sort_by_field: true,
        })
        .collect();
    Ok(Json(FieldsAnswer { fields }))
}

#[derive(Serialize, ToSchema)]
pub struct FieldsAnswer {
    fields: Vec<FieldInfo>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    name: String,
    description: String,
    default_value: String,
    field_type: &'static str,
    field_source_type: &'static str,
    include_in_query: bool,
    include_in_results: bool,
    group_by_field: bool,
    split_group_by_field: bool,
    sort_by_field: bool,
}
