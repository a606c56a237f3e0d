//! Search over an organization's index: Coveo's expression `((q aq) OR dq) cq`, paging, sorting, and results in
//! the shape of Coveo's Search API v2.
//!
//! Every count and every page covers only what the searcher may see: the permission filter
//! ([`crate::security::trim`]) is one more required clause of the query.

use std::sync::Arc;

use intake_model::ApiError;
use serde::Serialize;
use serde_json::Value;
use tantivy::collector::MultiCollector;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{Index, Searcher, TantivyDocument, Term};

use crate::facets::{self, FacetRequest, GroupBy};
use crate::prepare::FieldTypes;
use crate::query::QueryBuilder;
use crate::results::{Excerpts, hit};
use crate::schema::Fields;
use crate::security::{PermissionTables, Viewer};
use crate::sort::{Page, SortCriteria};
use crate::syntax::Options;

/// The most results one page may hold, and the deepest page start (bounded memory per query).
pub const MAX_RESULTS_PER_PAGE: usize = 2000;
pub const MAX_FIRST_RESULT: usize = 100_000;
pub use crate::results::{FIRST_SENTENCES_CHARS, Highlight, SearchHit};
/// The most stored bytes (metadata, text head, title…) one page of results may hold.
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub q: String,
    /// `enableQuerySyntax`: `q` is an expression (operators, phrases, fields), or only words.
    pub enable_query_syntax: bool,
    /// What `q`'s syntax allows beyond the default (`wildcards`, `questionMark`, `lowercaseOperators`).
    pub syntax: Options,
    pub aq: String,
    pub cq: String,
    pub dq: String,
    /// A search token's filter: ANDed with `cq`, so `dq` cannot reach past it.
    pub filter: String,
    pub first_result: usize,
    pub number_of_results: usize,
    pub sort: SortCriteria,
    /// The organization's declared fields: comparisons on numeric and date fields are typed ranges.
    pub field_types: FieldTypes,
    /// Who searches: what they may see.
    pub viewer: Viewer,
    /// Now, for relative dates (`@date>=now-7d`).
    pub now_ms: i64,
    /// `timezone`: the zone dates without one are read in (`today`, `2024/01/02`), and date facets written in.
    pub zone: intake_model::dates::Tz,
    pub facets: Vec<FacetRequest>,
    /// Legacy `groupBy`.
    pub group_by: Vec<GroupBy>,
    /// `excerptLength`: the longest excerpt, in characters.
    pub excerpt_length: usize,
}

impl Default for SearchRequest {
    fn default() -> SearchRequest {
        SearchRequest {
            q: String::new(),
            enable_query_syntax: true,
            syntax: Options::default(),
            aq: String::new(),
            cq: String::new(),
            dq: String::new(),
            filter: String::new(),
            first_result: 0,
            number_of_results: 10,
            sort: SortCriteria::default(),
            field_types: FieldTypes::default(),
            viewer: Viewer::default(),
            now_ms: 0,
            zone: intake_model::dates::Tz::UTC,
            facets: Vec::new(),
            group_by: Vec::new(),
            excerpt_length: crate::results::EXCERPT_CHARS,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub total_count: usize,
    pub total_count_filtered: usize,
    pub results: Vec<SearchHit>,
    /// One answer per requested facet, in the request's order.
    pub facets: Vec<Value>,
    pub group_by_results: Vec<Value>,
}

impl SearchResponse {
    /// The answer where nothing was indexed yet: no results, each facet with only the values it holds.
    pub fn empty(request: &SearchRequest) -> SearchResponse {
        let no_values = |facet: &FacetRequest| match facet.kind {
            facets::FacetKind::Range(_) => facets::tally::Tally::Numbers(facets::tally::Numbers {
                counts: vec![0; facet_range_count(facet)],
                ..Default::default()
            }),
            _ => facets::tally::Tally::Text(Default::default()),
        };
        SearchResponse {
            total_count: 0,
            total_count_filtered: 0,
            results: Vec::new(),
            facets: request.facets.iter().map(|facet| facets::answer::answer(facet, &no_values(facet))).collect(),
            group_by_results: request
                .group_by
                .iter()
                .map(|group| group.answer(&facets::tally::Tally::Text(Default::default())))
                .collect(),
        }
    }
}

fn facet_range_count(facet: &FacetRequest) -> usize {
    match &facet.kind {
        facets::FacetKind::Range(range) => range.current.len(),
        _ => 0,
    }
}

/// Runs a search on a searcher (one commit of the index).
pub fn search(
    index: &Index,
    searcher: &Searcher,
    fields: &Fields,
    permissions: &Arc<PermissionTables>,
    request: &SearchRequest,
) -> Result<SearchResponse, ApiError> {
    let builder = QueryBuilder::new(index, searcher, fields, &request.field_types, (request.now_ms, request.zone));
    let query_syntax = request.enable_query_syntax.then_some(request.syntax);
    let text_query = builder.free_text(&request.q, query_syntax)?;
    let base = base_query(&builder, text_query.as_deref(), fields, permissions, request)?;
    let filters: Vec<Option<Box<dyn Query>>> =
        request.facets.iter().map(|facet| facets::filter(&builder, facet)).collect::<Result<_, _>>()?;
    let query = facets::narrowed(&base, &filters, None);
    let asked = facets::Asked {
        facets: &request.facets,
        filters: &filters,
        group_by: &request.group_by,
        field_types: Arc::new(request.field_types.clone()),
    };
    // One pass over the results counts them (and the facets it can) and collects the page.
    let mut collectors = MultiCollector::new();
    let first = facets::FirstPass::add(&mut collectors, &asked);
    let (offset, limit) = (request.first_result, request.number_of_results);
    let page = (limit > 0).then(|| Page::add(&mut collectors, &request.sort, &request.field_types, offset, limit));
    let mut fruits = searcher.search(query.as_ref(), &collectors).map_err(internal)?;
    let counted = facets::count(searcher, &base, &asked, first, &mut fruits)?;
    let total = counted.total;
    let addresses = page.map(|page| page.take(&mut fruits)).unwrap_or_default();
    let excerpts = match &text_query {
        Some(text) => Excerpts::new(searcher, text.as_ref(), fields, request.excerpt_length),
        None => Excerpts::without_query(request.excerpt_length),
    };
    let mut results = Vec::with_capacity(addresses.len());
    let mut page_bytes = 0;
    for (score, address) in addresses {
        let doc = crate::doc_cache::DOCUMENTS.get(searcher, address).map_err(internal)?;
        page_bytes += doc.stored_bytes();
        if page_bytes > MAX_PAGE_BYTES && !results.is_empty() {
            // Items may carry megabytes of metadata: a page stops short rather than hold gigabytes.
            tracing::warn!(results = results.len(), limit = MAX_PAGE_BYTES, "a search page was cut at its size limit");
            break;
        }
        results.push(hit(fields, &doc, address, score, &excerpts));
    }
    Ok(SearchResponse {
        total_count: total,
        total_count_filtered: total,
        results,
        facets: counted.facets,
        group_by_results: counted.group_by,
    })
}

/// The title and stored text of the live item under `key`, if `viewer` may see it (a result's quickview).
pub fn quickview_item(
    searcher: &Searcher,
    fields: &Fields,
    permissions: &Arc<PermissionTables>,
    viewer: &Viewer,
    key: &str,
) -> Result<Option<(String, String)>, ApiError> {
    let term = |field: Field, text: &str| TermQuery::new(Term::from_field_text(field, text), IndexRecordOption::Basic);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Must, Box::new(term(fields.key, key))),
        (Occur::Must, Box::new(TermQuery::new(Term::from_field_u64(fields.live, 1), IndexRecordOption::Basic))),
    ];
    if let Some(visible) = permissions.visible_to(viewer) {
        clauses.push((Occur::Must, Box::new(visible)));
    }
    let top = tantivy::collector::TopDocs::with_limit(1);
    let Some((_, address)) = searcher.search(&BooleanQuery::new(clauses), &top).map_err(internal)?.pop() else {
        return Ok(None);
    };
    let doc: TantivyDocument = searcher.doc(address).map_err(internal)?;
    let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    Ok(Some((text(fields.title), text(fields.text_head))))
}

/// The live items the request's expression matches that its viewer may see (before facet filters).
fn base_query(
    builder: &QueryBuilder<'_>,
    text_query: Option<&dyn Query>,
    fields: &Fields,
    permissions: &Arc<PermissionTables>,
    request: &SearchRequest,
) -> Result<BooleanQuery, ApiError> {
    let query = matching(builder, text_query, request)?;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (Occur::Must, Box::new(TermQuery::new(Term::from_field_u64(fields.live, 1), IndexRecordOption::Basic))),
        (Occur::Must, query),
    ];
    if let Some(visible) = permissions.visible_to(&request.viewer) {
        clauses.push((Occur::Must, Box::new(visible)));
    }
    Ok(BooleanQuery::new(clauses))
}

/// How many items have each value of `field` (each path prefix, with a delimiter) among what `request` finds,
/// its facets' filters applied except those on `field` itself: what a facet's search box looks through.
pub fn facet_values(
    index: &Index,
    searcher: &Searcher,
    fields: &Fields,
    permissions: &Arc<PermissionTables>,
    request: &SearchRequest,
    field: &str,
    delimiter: Option<&str>,
) -> Result<std::collections::HashMap<String, u64>, ApiError> {
    let builder = QueryBuilder::new(index, searcher, fields, &request.field_types, (request.now_ms, request.zone));
    let text_query = builder.free_text(&request.q, request.enable_query_syntax.then_some(request.syntax))?;
    let base = base_query(&builder, text_query.as_deref(), fields, permissions, request)?;
    let filters: Vec<Option<Box<dyn Query>>> = request
        .facets
        .iter()
        .map(|facet| if facet.field == field { Ok(None) } else { facets::filter(&builder, facet) })
        .collect::<Result<_, _>>()?;
    let spec = facets::tally::Spec::Text { field: field.to_string(), delimiter: delimiter.map(str::to_string) };
    let tallies =
        facets::tally::Tallies { specs: Arc::new(vec![spec]), field_types: Arc::new(request.field_types.clone()) };
    let query = facets::narrowed(&base, &filters, None);
    let mut fruit = searcher.search(query.as_ref(), &tallies).map_err(internal)?;
    match fruit.pop() {
        Some(facets::tally::Tally::Text(counts)) => Ok(counts),
        _ => Ok(Default::default()),
    }
}

/// Coveo's final expression, `((q aq) OR dq) cq`, with a search token's filter ANDed to `cq`. `q` alone scores;
/// the other expressions filter. Empty parts drop out; all of them empty is every item.
fn matching(
    builder: &QueryBuilder<'_>,
    text_query: Option<&dyn Query>,
    request: &SearchRequest,
) -> Result<Box<dyn Query>, ApiError> {
    let filter = |query: Box<dyn Query>| -> Box<dyn Query> { Box::new(ConstScoreQuery::new(query, 0.0)) };
    let and = |parts: Vec<Box<dyn Query>>| -> Option<Box<dyn Query>> {
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(Box::new(BooleanQuery::new(parts.into_iter().map(|q| (Occur::Must, q)).collect()))),
        }
    };
    let aq = builder.advanced(&request.aq, "aq")?.map(filter);
    let basic = and(text_query.map(|q| q.box_clone()).into_iter().chain(aq).collect());
    let dq = builder.advanced(&request.dq, "dq")?;
    let matched: Option<Box<dyn Query>> = match (basic, dq) {
        (Some(basic), Some(dq)) => Some(Box::new(BooleanQuery::new(vec![(Occur::Should, basic), (Occur::Should, dq)]))),
        // An empty basic expression is every item, and every item OR dq is every item.
        (basic, _) => basic,
    };
    let cq = builder.advanced(&request.cq, "cq")?.map(filter);
    let token_filter = builder.advanced(&request.filter, "the search token's filter")?.map(filter);
    let constant = cq.into_iter().chain(token_filter);
    Ok(and(matched.into_iter().chain(constant).collect()).unwrap_or_else(|| Box::new(AllQuery)))
}

fn internal(e: tantivy::TantivyError) -> ApiError {
    ApiError::internal(format!("the search failed: {e}"))
}
