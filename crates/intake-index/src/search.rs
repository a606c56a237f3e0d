//! Search over an organization's index: `q` (free text), `aq` (field expressions), paging, sorting, and
//! results in the shape of Coveo's Search API v2.
//!
//! Every count and every page covers only what the searcher may see: the permission filter
//! ([`crate::security::trim`]) is one more required clause of the query.

use std::ops::Bound;
use std::sync::Arc;

use intake_model::{ApiError, ErrorCode, FieldType};
use serde::Serialize;
use serde_json::{Map, Value};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, EmptyQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, DocAddress, Index, Order, Searcher, TantivyDocument, Term};

use crate::prepare::FieldTypes;
use crate::schema::Fields;
use crate::security::{PermissionTables, Viewer};
use crate::syntax::{self, Expr, Op, SyntaxError};
use intake_model::dates::{parse_date_ms, parse_day};

/// The most results one page may hold, and the deepest page start (bounded memory per query).
pub const MAX_RESULTS_PER_PAGE: usize = 1000;
pub const MAX_FIRST_RESULT: usize = 100_000;
const EXCERPT_CHARS: usize = 200;

/// The most characters of a result's `firstSentences`.
pub const FIRST_SENTENCES_CHARS: usize = 300;
/// The most stored bytes (metadata, text head, title…) one page of results may hold.
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub aq: String,
    pub first_result: usize,
    pub number_of_results: usize,
    pub sort: Sort,
    /// The organization's declared fields: comparisons on numeric and date fields are typed ranges.
    pub field_types: FieldTypes,
    /// Who searches: what they may see.
    pub viewer: Viewer,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Relevancy,
    DateDescending,
    DateAscending,
}

impl Sort {
    /// Coveo's `sortCriteria`: `relevancy`, `date descending`, `date ascending` (`@date` too).
    pub fn parse(text: &str) -> Option<Sort> {
        let folded = text.trim().to_ascii_lowercase().replace('@', "");
        Some(match folded.as_str() {
            "" | "relevancy" | "score" => Sort::Relevancy,
            "date descending" | "datedescending" | "date" => Sort::DateDescending,
            "date ascending" | "dateascending" => Sort::DateAscending,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    pub total_count: usize,
    pub total_count_filtered: usize,
    pub results: Vec<SearchHit>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub title: String,
    pub uri: String,
    pub printable_uri: String,
    pub click_uri: String,
    pub unique_id: String,
    pub excerpt: String,
    pub excerpt_highlights: Vec<Highlight>,
    /// The first sentences of the item's text (at most [`FIRST_SENTENCES_CHARS`] characters).
    pub first_sentences: String,
    pub score: f32,
    pub raw: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Highlight {
    pub offset: usize,
    pub length: usize,
}

/// Runs a search on a searcher (one commit of the index).
pub fn search(
    index: &Index,
    searcher: &Searcher,
    fields: &Fields,
    permissions: &Arc<PermissionTables>,
    request: &SearchRequest,
) -> Result<SearchResponse, ApiError> {
    let builder = QueryBuilder::new(index, fields, &request.field_types);
    let text_query = builder.free_text(&request.q)?;
    let filter = match syntax::parse(&request.aq).map_err(|e| invalid_expression("aq", e))? {
        Some(expr) => builder.expression(&expr, Scope::Advanced)?,
        None => None,
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, Box::new(TermQuery::new(Term::from_field_u64(fields.live, 1), IndexRecordOption::Basic)))];
    if let Some(text) = &text_query {
        clauses.push((Occur::Must, text.box_clone()));
    }
    if let Some(filter) = filter {
        clauses.push((Occur::Must, filter));
    }
    if let Some(visible) = permissions.visible_to(&request.viewer) {
        clauses.push((Occur::Must, Box::new(visible)));
    }
    let query = BooleanQuery::new(clauses);
    let limit = request.number_of_results;
    let offset = request.first_result;
    let total = searcher.search(&query, &Count).map_err(internal)?;
    let addresses: Vec<(f32, DocAddress)> = if limit == 0 {
        Vec::new()
    } else {
        let top = TopDocs::with_limit(limit).and_offset(offset);
        match request.sort {
            Sort::Relevancy => searcher.search(&query, &top).map_err(internal)?,
            Sort::DateDescending | Sort::DateAscending => {
                let order = if request.sort == Sort::DateAscending { Order::Asc } else { Order::Desc };
                let dated: Vec<(DateTime, DocAddress)> =
                    searcher.search(&query, &top.order_by_fast_field("date", order)).map_err(internal)?;
                dated.into_iter().map(|(_, address)| (1.0, address)).collect()
            }
        }
    };
    let snippets = match &text_query {
        Some(text) => Some(SnippetGenerator::create(searcher, text.as_ref(), fields.body).map_err(internal)?),
        None => None,
    }
    .map(|mut generator| {
        generator.set_max_num_chars(EXCERPT_CHARS);
        generator
    });
    let mut results = Vec::with_capacity(addresses.len());
    let mut page_bytes = 0;
    for (score, address) in addresses {
        let doc: TantivyDocument = searcher.doc(address).map_err(internal)?;
        page_bytes += stored_bytes(&doc);
        if page_bytes > MAX_PAGE_BYTES && !results.is_empty() {
            // Items may carry megabytes of metadata: a page stops short rather than hold gigabytes.
            tracing::warn!(results = results.len(), limit = MAX_PAGE_BYTES, "a search page was cut at its size limit");
            break;
        }
        results.push(hit(fields, &doc, score, snippets.as_ref()));
    }
    Ok(SearchResponse { total_count: total, total_count_filtered: total, results })
}

/// What a stored document weighs (its text and byte values).
fn stored_bytes(doc: &TantivyDocument) -> usize {
    doc.field_values()
        .map(|(_, value)| value.as_str().map(str::len).or_else(|| value.as_bytes().map(<[u8]>::len)).unwrap_or(8))
        .sum()
}

fn internal(e: tantivy::TantivyError) -> ApiError {
    ApiError::internal(format!("the search failed: {e}"))
}

/// An expression over one of the limits, or malformed, as the client's error.
fn invalid_expression(parameter: &str, error: SyntaxError) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuerySyntax, format!("'{parameter}' is not valid: {error}."))
}

/// Where a bare word of an expression is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// `q`: the title (boosted) and the body.
    FreeText,
    /// `aq`: the body.
    Advanced,
}

/// Builds tantivy queries from `q` and `aq` for one index.
struct QueryBuilder<'a> {
    fields: &'a Fields,
    field_types: &'a FieldTypes,
    /// Phrases over the title (boosted) and the body, for `q`.
    free_text: QueryParser,
    /// Phrases over the body, for words of `aq`.
    body: QueryParser,
    title: QueryParser,
}

impl<'a> QueryBuilder<'a> {
    fn new(index: &Index, fields: &'a Fields, field_types: &'a FieldTypes) -> QueryBuilder<'a> {
        let mut free_text = QueryParser::for_index(index, vec![fields.title, fields.body]);
        free_text.set_field_boost(fields.title, 2.0);
        QueryBuilder {
            fields,
            field_types,
            free_text,
            body: QueryParser::for_index(index, vec![fields.body]),
            title: QueryParser::for_index(index, vec![fields.title]),
        }
    }

    /// `q`: free text over title and body, in the query syntax; when it does not parse, its words as plain
    /// words. The limits hold either way.
    fn free_text(&self, q: &str) -> Result<Option<Box<dyn Query>>, ApiError> {
        let expr = match syntax::parse(q) {
            Ok(expr) => expr,
            Err(error) if error.over_limit => return Err(invalid_expression("q", error)),
            Err(_) => {
                let words = syntax::plain_words(q).map_err(|e| invalid_expression("q", e))?;
                (!words.is_empty()).then(|| Expr::And(words.into_iter().map(Expr::Text).collect()))
            }
        };
        match expr {
            Some(expr) => self.expression(&expr, Scope::FreeText),
            None => Ok(None),
        }
    }

    /// The query of an expression; `None` when it holds nothing to search for (words that are only
    /// punctuation), so it neither narrows nor empties what it is combined with. Recursion follows the
    /// expression's nesting, which the parser bounds.
    fn expression(&self, expr: &Expr, scope: Scope) -> Result<Option<Box<dyn Query>>, ApiError> {
        let all = |items: &[Expr], occur: Occur| -> Result<Option<Box<dyn Query>>, ApiError> {
            let mut clauses = Vec::with_capacity(items.len());
            for item in items {
                if let Some(query) = self.expression(item, scope)? {
                    clauses.push((occur, query));
                }
            }
            Ok(match clauses.len() {
                0 => None,
                1 => clauses.pop().map(|(_, query)| query),
                _ => Some(Box::new(BooleanQuery::new(clauses))),
            })
        };
        Ok(match expr {
            Expr::And(items) => all(items, Occur::Must)?,
            Expr::Or(items) => all(items, Occur::Should)?,
            Expr::Not(inner) => self.expression(inner, scope)?.map(negate),
            Expr::Text(word) => match scope {
                Scope::FreeText => phrase(&self.free_text, word),
                Scope::Advanced => phrase(&self.body, word),
            },
            Expr::Field { name, op, values } => {
                let mut any: Vec<(Occur, Box<dyn Query>)> = values
                    .iter()
                    .map(|v| Ok((Occur::Should, self.comparison(name, *op, v)?)))
                    .collect::<Result<_, ApiError>>()?;
                let query: Box<dyn Query> =
                    if any.len() == 1 { any.remove(0).1 } else { Box::new(BooleanQuery::new(any)) };
                Some(if *op == Op::NotEqual { negate(query) } else { query })
            }
        })
    }

    /// One `@name op value`.
    fn comparison(&self, name: &str, op: Op, value: &str) -> Result<Box<dyn Query>, ApiError> {
        let fields = self.fields;
        let exact = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        let lower = value.to_lowercase();
        if let Some(field_type) = self.field_types.get(name).copied().filter(|t| t.is_numeric()) {
            return self.typed_comparison(name, field_type, op, value);
        }
        match (name, op) {
            ("date" | "sysdate", _) => {
                let (start, end) = date_interval(name, value)?;
                let term = |ms: i64| Term::from_field_date(fields.date, DateTime::from_timestamp_millis(ms));
                Ok(comparison_range(op, term(start), term(end)))
            }
            (_, Op::Greater | Op::GreaterOrEqual | Op::Less | Op::LessOrEqual) => Err(ApiError::new(
                ErrorCode::InvalidQuerySyntax,
                format!(
                    "'aq' compares @{name} with {op}, but @{name} is not a declared numeric or date field; declare it \
                         (POST /rest/organizations/{{org}}/indexes/fields/batch/create) or use == and <>."
                ),
            )),
            ("uri" | "sysuri", _) => Ok(exact(fields.uri, value)),
            ("title" | "systitle", Op::Contains) => {
                Ok(phrase(&self.title, value).unwrap_or_else(|| Box::new(EmptyQuery)))
            }
            ("title" | "systitle", _) => Ok(exact(fields.title_exact, &lower)),
            ("source" | "syssource", _) => Ok(exact(fields.source_name, &lower)),
            ("filetype" | "sysfiletype", _) => Ok(exact(fields.filetype, lower.trim_start_matches('.'))),
            (meta, _) => {
                let mut term = Term::from_field_json_path(fields.meta_exact, meta, false);
                term.append_type_and_str(&lower);
                Ok(Box::new(TermQuery::new(term, IndexRecordOption::Basic)))
            }
        }
    }
}

/// The words of `text` in that order, in the parser's fields; `None` when `text` has no word to look for.
fn phrase(parser: &QueryParser, text: &str) -> Option<Box<dyn Query>> {
    let query = parser.parse_query(&format!("\"{}\"", text.replace(['"', '\\'], " "))).ok()?;
    let mut terms = 0;
    query.query_terms(&mut |_, _| terms += 1);
    (terms > 0).then_some(query)
}

fn negate(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Must, Box::new(AllQuery) as Box<dyn Query>), (Occur::MustNot, query)]))
}

/// The range a comparison covers, for a value spanning `[lo, hi]` (a whole day, or one number).
fn comparison_range(op: Op, lo: Term, hi: Term) -> Box<dyn Query> {
    let (lower, upper) = match op {
        Op::Exact | Op::Contains | Op::NotEqual => (Bound::Included(lo), Bound::Included(hi)),
        Op::Greater => (Bound::Excluded(hi), Bound::Unbounded),
        Op::GreaterOrEqual => (Bound::Included(lo), Bound::Unbounded),
        Op::Less => (Bound::Unbounded, Bound::Excluded(lo)),
        Op::LessOrEqual => (Bound::Unbounded, Bound::Included(hi)),
    };
    Box::new(RangeQuery::new(lower, upper))
}

/// The milliseconds a date value covers, inclusive: a day (`2024/01/02`) is the whole UTC day.
fn date_interval(name: &str, value: &str) -> Result<(i64, i64), ApiError> {
    if let Some((start, next_day)) = parse_day(value) {
        return Ok((start, next_day - 1));
    }
    let ms = parse_date_ms(value).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuerySyntax,
            format!("'aq' compares @{name} with '{value}', which is not a date; use 2024/01/02, 2024-01-02 or 2024-01-02T03:04:05Z."),
        )
    })?;
    Ok((ms, ms))
}

impl QueryBuilder<'_> {
    /// A comparison on a declared LONG, LONG_64, DOUBLE or DATE field, over its typed values.
    fn typed_comparison(
        &self,
        name: &str,
        field_type: FieldType,
        op: Op,
        value: &str,
    ) -> Result<Box<dyn Query>, ApiError> {
        let not_a = |kind: &str| {
            ApiError::new(
                ErrorCode::InvalidQuerySyntax,
                format!("'aq' compares @{name} ({}) with '{value}', which is not {kind}.", field_type.as_str()),
            )
        };
        let term = || Term::from_field_json_path(self.fields.meta_typed, name, false);
        let (mut lo, mut hi) = (term(), term());
        match field_type {
            FieldType::Double => {
                let v: f64 = value.trim().parse().map_err(|_| not_a("a number"))?;
                lo.append_type_and_fast_value(v);
                hi.append_type_and_fast_value(v);
            }
            FieldType::Date => {
                let (start, end) = date_interval(name, value)?;
                lo.append_type_and_fast_value(start);
                hi.append_type_and_fast_value(end);
            }
            _ => {
                let v: i64 = value.trim().parse().map_err(|_| not_a("an integer"))?;
                lo.append_type_and_fast_value(v);
                hi.append_type_and_fast_value(v);
            }
        }
        Ok(comparison_range(op, lo, hi))
    }
}

fn hit(fields: &Fields, doc: &TantivyDocument, score: f32, snippets: Option<&SnippetGenerator>) -> SearchHit {
    let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let uri = text(fields.uri);
    let title = text(fields.title);
    let mut raw: Map<String, Value> = doc
        .get_first(fields.meta)
        .and_then(|v| v.as_bytes())
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    let date_ms = doc.get_first(fields.date).and_then(|v| v.as_datetime()).map(|d| d.into_timestamp_millis());
    let click_uri = raw.get("clickableuri").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| uri.clone());
    let standard = [
        ("uri", Value::from(uri.clone())),
        ("sysuri", Value::from(uri.clone())),
        ("clickableuri", Value::from(click_uri.clone())),
        ("title", Value::from(title.clone())),
        ("systitle", Value::from(title.clone())),
        ("source", Value::from(text(fields.source_name))),
        ("syssource", Value::from(text(fields.source_name))),
        ("sourcetype", Value::from("Push")),
        ("filetype", Value::from(text(fields.filetype))),
        ("sysfiletype", Value::from(text(fields.filetype))),
        ("date", date_ms.map_or(Value::Null, Value::from)),
        ("sysdate", date_ms.map_or(Value::Null, Value::from)),
        ("size", doc.get_first(fields.size).and_then(|v| v.as_u64()).map_or(Value::Null, Value::from)),
        ("indexeddate", doc.get_first(fields.indexed_at).and_then(|v| v.as_i64()).map_or(Value::Null, Value::from)),
    ];
    // The standard fields win over metadata of the same name, as Coveo maps `date` to `@date` (epoch ms).
    for (key, value) in standard {
        raw.insert(key.to_string(), value);
    }
    if let Some(parent) = doc.get_first(fields.parent_id).and_then(|v| v.as_str()) {
        raw.insert("parentid".to_string(), Value::from(parent));
    }
    let (excerpt, excerpt_highlights) = excerpt(doc, fields, snippets);
    let first_sentences = first_sentences(doc.get_first(fields.text_head).and_then(|v| v.as_str()).unwrap_or(""));
    SearchHit {
        printable_uri: uri.clone(),
        unique_id: format!("42.{}${uri}", text(fields.source)),
        title,
        click_uri,
        uri,
        excerpt,
        excerpt_highlights,
        first_sentences,
        score,
        raw,
    }
}

/// The first two sentences of a text (a sentence ends with `.`, `!` or `?` and a space), within
/// [`FIRST_SENTENCES_CHARS`] characters; a text without such an end is cut at a word.
fn first_sentences(text: &str) -> String {
    let text = text.trim_start();
    let limit = text.char_indices().nth(FIRST_SENTENCES_CHARS).map_or(text.len(), |(i, _)| i);
    let window = &text[..limit];
    let ends: Vec<usize> = window
        .char_indices()
        .filter(|(i, c)| {
            // A sentence's end is ASCII: the next byte starts a character.
            matches!(c, '.' | '!' | '?') && window[i + 1..].chars().next().is_none_or(char::is_whitespace)
        })
        .map(|(i, _)| i + 1)
        .take(2)
        .collect();
    let cut = match ends.last() {
        Some(end) => *end,
        None if limit == text.len() => limit,
        None => window.rfind(char::is_whitespace).unwrap_or(limit),
    };
    window[..cut].trim_end().to_string()
}

/// The passage around the query's words, or the start of the text when there is no `q`.
fn excerpt(doc: &TantivyDocument, fields: &Fields, snippets: Option<&SnippetGenerator>) -> (String, Vec<Highlight>) {
    let text = doc.get_first(fields.text_head).and_then(|v| v.as_str()).unwrap_or_default();
    if let Some(generator) = snippets {
        let snippet = generator.snippet(text);
        if !snippet.fragment().is_empty() {
            let fragment = snippet.fragment();
            let highlights = snippet
                .highlighted()
                .iter()
                .map(|range| Highlight {
                    offset: fragment[..range.start].chars().count(),
                    length: fragment[range.clone()].chars().count(),
                })
                .collect();
            return (fragment.to_string(), highlights);
        }
    }
    let cut = text.char_indices().nth(EXCERPT_CHARS).map_or(text.len(), |(i, _)| i);
    (text[..cut].to_string(), Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_criteria_spellings() {
        assert_eq!(Sort::parse("Date Descending"), Some(Sort::DateDescending));
        assert_eq!(Sort::parse("@date ascending"), Some(Sort::DateAscending));
        assert_eq!(Sort::parse("relevancy"), Some(Sort::Relevancy));
        assert_eq!(Sort::parse("size"), None);
    }

    #[test]
    fn first_sentences_are_two_sentences_or_a_cut_at_a_word() {
        assert_eq!(first_sentences("One. Two! Three? Four."), "One. Two!");
        assert_eq!(first_sentences("  v1.2 is out. It is faster."), "v1.2 is out. It is faster.");
        assert_eq!(first_sentences("no end at all"), "no end at all");
        assert_eq!(first_sentences("Café ’quoted’ © 2022. Zoë’s “text”! More."), "Café ’quoted’ © 2022. Zoë’s “text”!");
        let wide = "é".repeat(400);
        assert_eq!(first_sentences(&wide).chars().count(), FIRST_SENTENCES_CHARS, "cut at a character");
        let long = "word ".repeat(100);
        let cut = first_sentences(&long);
        assert!(cut.len() <= FIRST_SENTENCES_CHARS && cut.ends_with("word"), "{cut}");
    }
}
