//! Coveo expressions (`q`, `aq`, `cq`, `dq`) as tantivy queries over one searcher.
//!
//! Words and phrases look in the title (boosted) and the body for `q`, in the body for the other expressions;
//! field operators compare whole values ignoring case, or typed ranges on declared numeric and date fields and on
//! `@date`. Wildcards are expanded from the index's own dictionaries, at most [`MAX_EXPANSIONS`] words each, so
//! what they cost is bounded by the index, never by the query.

use std::collections::BTreeSet;
use std::ops::Bound;

use intake_model::dates::{Tz, parse_date_ms_in, parse_day_in, relative_interval_in};
use intake_model::{ApiError, ErrorCode, FieldType};
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, ExistsQuery, Occur, Query, QueryParser, RangeQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DateTime, Index, Searcher, Term};

use crate::prepare::FieldTypes;
use crate::schema::{FACET_STRINGS, Fields, STANDARD_NUMBERS};
use crate::syntax::{self, Expr, Op, Options, SyntaxError};

/// The most words (or field values) one wildcard may stand for.
pub const MAX_EXPANSIONS: usize = 1_024;
/// The longest wildcard pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 256;
/// How far apart (in words, moves counted as tantivy's slop counts them) `q`'s words may be to score as close.
const PROXIMITY_SLOP: u32 = 4;
/// Up to how many plain words `q` gets the closeness score (a long paste is not a phrase).
const MAX_PROXIMITY_WORDS: usize = 8;

/// Standard fields every item has a value for (`@title` alone matches every item).
const ALWAYS_PRESENT: &[&str] =
    &["uri", "sysuri", "title", "systitle", "source", "syssource", "filetype", "sysfiletype", "date", "sysdate"];

/// Where a bare word of an expression is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `q`: the title (boosted) and the body.
    FreeText,
    /// `aq`, `cq`, `dq`: the body.
    Advanced,
}

/// An expression over one of the limits, or malformed, or unsupported, as the client's error.
pub fn invalid_expression(parameter: &str, error: SyntaxError) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuerySyntax, format!("'{parameter}' is not valid: {error}."))
}

/// `q` as an expression: with the query syntax (`Some(options)`) when it parses, else its plain words.
fn free_text_expression(q: &str, syntax: Option<Options>) -> Result<Option<Expr>, ApiError> {
    let parsed = match syntax {
        Some(options) => syntax::parse_with(q, options),
        None => Err(SyntaxError { offset: 0, message: String::new(), kind: syntax::ErrorKind::Malformed }),
    };
    match parsed {
        Ok(expr) => Ok(expr),
        Err(error) if error.is_final() => Err(invalid_expression("q", error)),
        Err(_) => {
            let words = syntax::plain_words(q).map_err(|e| invalid_expression("q", e))?;
            Ok((!words.is_empty()).then(|| Expr::And(words.into_iter().map(Expr::Text).collect())))
        }
    }
}

/// The syntax errors of a search's expressions (`q`, then each `(parameter, text)` of the advanced ones), found
/// without an index, so an organization with nothing indexed yet answers a wrong expression as one with items.
pub fn check_syntax(q: &str, syntax: Option<Options>, advanced: &[(&str, &str)]) -> Result<(), ApiError> {
    free_text_expression(q, syntax)?;
    for (parameter, text) in advanced {
        syntax::parse(text).map_err(|e| invalid_expression(parameter, e))?;
    }
    Ok(())
}

/// Builds tantivy queries from expressions for one searcher of one index.
pub struct QueryBuilder<'a> {
    searcher: &'a Searcher,
    fields: &'a Fields,
    field_types: &'a FieldTypes,
    /// For relative dates (`now-7d`).
    now_ms: i64,
    /// The zone dates without one are read in (`today`, `2024/01/02`).
    zone: Tz,
    /// Phrases over the title (boosted) and the body, for `q`.
    free_text: QueryParser,
    /// Phrases over the body, for words of the other expressions.
    body: QueryParser,
    title: QueryParser,
}

impl<'a> QueryBuilder<'a> {
    pub fn new(
        index: &Index,
        searcher: &'a Searcher,
        fields: &'a Fields,
        field_types: &'a FieldTypes,
        (now_ms, zone): (i64, Tz),
    ) -> QueryBuilder<'a> {
        let mut free_text = QueryParser::for_index(index, vec![fields.title, fields.body]);
        free_text.set_field_boost(fields.title, 2.0);
        QueryBuilder {
            searcher,
            fields,
            field_types,
            now_ms,
            zone,
            free_text,
            body: QueryParser::for_index(index, vec![fields.body]),
            title: QueryParser::for_index(index, vec![fields.title]),
        }
    }

    /// `q`: free text over title and body. With the query syntax (`Some(options)`) it is an expression, and when
    /// it does not parse its words are taken as plain words; without it, always plain words. Limits and
    /// unsupported syntax are errors either way.
    pub fn free_text(&self, q: &str, syntax: Option<Options>) -> Result<Option<Box<dyn Query>>, ApiError> {
        let Some(expr) = free_text_expression(q, syntax)? else { return Ok(None) };
        let matched = self.expression(&expr, Scope::FreeText, "q")?;
        Ok(match (matched, self.proximity(&expr)) {
            // Every word is required; the words close together also score, so such pages come first.
            (Some(matched), Some(near)) => {
                Some(Box::new(BooleanQuery::new(vec![(Occur::Must, matched), (Occur::Should, near)])))
            }
            (matched, _) => matched,
        })
    }

    /// For plain words (`a b c`, no operators), the same words within [`PROXIMITY_SLOP`] of each other, in title
    /// and body: what ranks a page that has them together above one that mentions them apart.
    fn proximity(&self, expr: &Expr) -> Option<Box<dyn Query>> {
        let Expr::And(items) = expr else { return None };
        let words: Vec<&str> = items
            .iter()
            .map(|item| match item {
                Expr::Text(word) if !word.contains(char::is_whitespace) => Some(word.as_str()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        (2..=MAX_PROXIMITY_WORDS)
            .contains(&words.len())
            .then(|| phrase(&self.free_text, &words.join(" "), Some(PROXIMITY_SLOP)))?
    }

    /// An advanced expression (`aq`, `cq`, `dq`, a token's filter) named `parameter` in errors.
    pub fn advanced(&self, text: &str, parameter: &str) -> Result<Option<Box<dyn Query>>, ApiError> {
        match syntax::parse(text).map_err(|e| invalid_expression(parameter, e))? {
            Some(expr) => self.expression(&expr, Scope::Advanced, parameter),
            None => Ok(None),
        }
    }

    /// The query of an expression; `None` when it holds nothing to search for (words that are only
    /// punctuation), so it neither narrows nor empties what it is combined with. Recursion follows the
    /// expression's nesting, which the parser bounds.
    fn expression(&self, expr: &Expr, scope: Scope, parameter: &str) -> Result<Option<Box<dyn Query>>, ApiError> {
        let all = |items: &[Expr], occur: Occur| -> Result<Option<Box<dyn Query>>, ApiError> {
            let mut clauses = Vec::with_capacity(items.len());
            for item in items {
                if let Some(query) = self.expression(item, scope, parameter)? {
                    clauses.push((occur, query));
                }
            }
            Ok(match clauses.len() {
                0 => None,
                1 => clauses.pop().map(|(_, query)| query),
                _ => Some(Box::new(BooleanQuery::new(clauses))),
            })
        };
        let words = match scope {
            Scope::FreeText => &self.free_text,
            Scope::Advanced => &self.body,
        };
        Ok(match expr {
            Expr::And(items) => all(items, Occur::Must)?,
            Expr::Or(items) => all(items, Occur::Should)?,
            Expr::Not(inner) => self.expression(inner, scope, parameter)?.map(negate),
            Expr::Text(word) => phrase(words, word, None),
            Expr::Near { left, right, distance } => {
                // Either order: tantivy's slop counts a swap as two moves.
                let pair = |a: &str, b: &str| phrase(words, &format!("{a} {b}"), Some(*distance));
                match (pair(left, right), pair(right, left)) {
                    (Some(one), Some(other)) => {
                        Some(Box::new(BooleanQuery::new(vec![(Occur::Should, one), (Occur::Should, other)])))
                    }
                    (one, other) => one.or(other),
                }
            }
            Expr::Wildcard(pattern) => Some(self.wildcard_words(pattern, scope, parameter)?),
            Expr::Exists(name) => Some(self.exists(name)),
            Expr::Field { name, op, values } => {
                let mut any: Vec<(Occur, Box<dyn Query>)> = values
                    .iter()
                    .map(|v| Ok((Occur::Should, self.comparison(name, *op, v, parameter)?)))
                    .collect::<Result<_, ApiError>>()?;
                let query: Box<dyn Query> =
                    if any.len() == 1 { any.remove(0).1 } else { Box::new(BooleanQuery::new(any)) };
                Some(if *op == Op::NotEqual { negate(query) } else { query })
            }
        })
    }

    /// Items whose `field` has `value` (a facet value), ignoring case.
    pub fn value_filter(&self, field: &str, value: &str) -> Result<Box<dyn Query>, ApiError> {
        match self.field_types.get(field).filter(|t| t.is_numeric()) {
            // A declared number as a facet value compares by its text, like an undeclared field.
            Some(_) => Ok(self.text_value(field, value)),
            None => self.comparison(field, Op::Exact, value, "facets"),
        }
    }

    fn text_value(&self, field: &str, value: &str) -> Box<dyn Query> {
        let mut term = Term::from_field_json_path(self.fields.meta_exact, field, false);
        term.append_type_and_str(&value.to_lowercase());
        Box::new(TermQuery::new(term, IndexRecordOption::Basic))
    }

    /// Items with a value of a numeric or date field in `[from, to)` (`to` included when `inclusive`).
    pub fn number_range(&self, field: &str, from: f64, to: f64, inclusive: bool) -> Box<dyn Query> {
        let upper = |term: Term| if inclusive { Bound::Included(term) } else { Bound::Excluded(term) };
        let (lower, upper) = match crate::columns::standard_name(field) {
            "date" => {
                let term =
                    |ms: f64| Term::from_field_date(self.fields.date, DateTime::from_timestamp_millis(ms as i64));
                (Bound::Included(term(from)), upper(term(to)))
            }
            name => {
                let path = if name == "size" { format!("{STANDARD_NUMBERS}.size") } else { name.to_string() };
                let term = |append: &dyn Fn(&mut Term)| {
                    let mut term = Term::from_field_json_path(self.fields.meta_typed, &path, false);
                    append(&mut term);
                    term
                };
                match (name, self.field_types.get(name)) {
                    ("size", _) => (
                        Bound::Included(term(&|t| t.append_type_and_fast_value(from.max(0.0).ceil() as u64))),
                        upper(term(&|t| t.append_type_and_fast_value(to.max(0.0).ceil() as u64))),
                    ),
                    (_, Some(FieldType::Double)) => (
                        Bound::Included(term(&|t| t.append_type_and_fast_value(from))),
                        upper(term(&|t| t.append_type_and_fast_value(to))),
                    ),
                    _ => (
                        Bound::Included(term(&|t| t.append_type_and_fast_value(from.ceil() as i64))),
                        upper(term(&|t| t.append_type_and_fast_value(to.ceil() as i64))),
                    ),
                }
            }
        };
        Box::new(RangeQuery::new(lower, upper))
    }

    /// Items with a hierarchical value at `path` or below it (`path` + delimiter + …), ignoring case.
    pub fn path_filter(&self, field: &str, path: &str, delimiter: &str) -> Result<Box<dyn Query>, ApiError> {
        let exact = path.to_lowercase();
        let below = format!("{exact}{}", delimiter.to_lowercase());
        let matches = |value: &str| value == exact || value.starts_with(&below);
        let terms = self.expand_matching(self.fields.meta_exact, Some(field), &matches, usize::MAX, "facets", path)?;
        Ok(Box::new(TermSetQuery::new(terms)))
    }

    /// `@name` alone: items with a value for it.
    fn exists(&self, name: &str) -> Box<dyn Query> {
        if ALWAYS_PRESENT.contains(&name) {
            return Box::new(AllQuery);
        }
        let typed = self.field_types.get(name).is_some_and(|t| t.is_numeric());
        let path = if typed { format!("meta_typed.{name}") } else { format!("meta_typed.{FACET_STRINGS}.{name}") };
        Box::new(ExistsQuery::new(path, false))
    }

    /// One `@name op value`.
    fn comparison(&self, name: &str, op: Op, value: &str, parameter: &str) -> Result<Box<dyn Query>, ApiError> {
        let fields = self.fields;
        if let Some(field_type) = self.field_types.get(name).copied().filter(|t| t.is_numeric()) {
            return self.typed_comparison(name, field_type, op, value, parameter);
        }
        let exact = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        let lower = value.to_lowercase();
        match (name, op) {
            ("date" | "sysdate", Op::Wildcard) => Err(self.not_for_wildcards(name, parameter)),
            ("date" | "sysdate", _) => {
                let (start, end) = self.date_range(name, value, parameter)?;
                let term = |ms: i64| Term::from_field_date(fields.date, DateTime::from_timestamp_millis(ms));
                Ok(comparison_range(op, term(start), term(end)))
            }
            (_, Op::Greater | Op::GreaterOrEqual | Op::Less | Op::LessOrEqual) => Err(ApiError::new(
                ErrorCode::InvalidQuerySyntax,
                format!(
                    "'{parameter}' compares @{name} with {op}, but @{name} is not a declared numeric or date field; \
                     declare it (POST /rest/organizations/{{org}}/indexes/fields/batch/create) or use == and <>."
                ),
            )),
            ("uri" | "sysuri", Op::Wildcard) => self.wildcard_values(fields.uri, None, value, parameter),
            ("uri" | "sysuri", _) => Ok(exact(fields.uri, value)),
            ("title" | "systitle", Op::Contains) => {
                Ok(phrase(&self.title, value, None).unwrap_or_else(|| Box::new(EmptyQuery)))
            }
            ("title" | "systitle", Op::Wildcard) => self.wildcard_values(fields.title_exact, None, value, parameter),
            ("title" | "systitle", _) => Ok(exact(fields.title_exact, &lower)),
            ("source" | "syssource", Op::Wildcard) => self.wildcard_values(fields.source_name, None, value, parameter),
            ("source" | "syssource", _) => Ok(exact(fields.source_name, &lower)),
            ("filetype" | "sysfiletype", Op::Wildcard) => self.wildcard_values(fields.filetype, None, value, parameter),
            ("filetype" | "sysfiletype", _) => Ok(exact(fields.filetype, lower.trim_start_matches('.'))),
            (meta, Op::Wildcard) => self.wildcard_values(fields.meta_exact, Some(meta), value, parameter),
            (meta, _) => {
                let mut term = Term::from_field_json_path(fields.meta_exact, meta, false);
                term.append_type_and_str(&lower);
                Ok(Box::new(TermQuery::new(term, IndexRecordOption::Basic)))
            }
        }
    }

    fn not_for_wildcards(&self, name: &str, parameter: &str) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidQuerySyntax,
            format!("'{parameter}' uses *= on @{name}, which holds numbers or dates; use ranges (a..b) or >=, <=."),
        )
    }

    /// A comparison on a declared LONG, LONG_64, DOUBLE or DATE field, over its typed values.
    fn typed_comparison(
        &self,
        name: &str,
        field_type: FieldType,
        op: Op,
        value: &str,
        parameter: &str,
    ) -> Result<Box<dyn Query>, ApiError> {
        if op == Op::Wildcard {
            return Err(self.not_for_wildcards(name, parameter));
        }
        let not_a = |kind: &str, value: &str| {
            ApiError::new(
                ErrorCode::InvalidQuerySyntax,
                format!(
                    "'{parameter}' compares @{name} ({}) with '{value}', which is not {kind}.",
                    field_type.as_str()
                ),
            )
        };
        let term = || Term::from_field_json_path(self.fields.meta_typed, name, false);
        let (mut lo, mut hi) = (term(), term());
        let (first, last) = range_ends(value);
        match field_type {
            FieldType::Double => {
                let number = |v: &str| v.trim().parse::<f64>().map_err(|_| not_a("a number", v));
                lo.append_type_and_fast_value(number(first)?);
                hi.append_type_and_fast_value(number(last)?);
            }
            FieldType::Date => {
                let (start, end) = self.date_range(name, value, parameter)?;
                lo.append_type_and_fast_value(start);
                hi.append_type_and_fast_value(end);
            }
            _ => {
                let integer = |v: &str| v.trim().parse::<i64>().map_err(|_| not_a("an integer", v));
                lo.append_type_and_fast_value(integer(first)?);
                hi.append_type_and_fast_value(integer(last)?);
            }
        }
        Ok(comparison_range(op, lo, hi))
    }

    /// The milliseconds a date value covers, inclusive: a day (`2024/01/02`) is the whole day (in the search's
    /// time zone, UTC by default), `now-7d` an instant, `today` a day, and `a..b` from the start of `a` to the end
    /// of `b`.
    fn date_range(&self, name: &str, value: &str, parameter: &str) -> Result<(i64, i64), ApiError> {
        let (first, last) = range_ends(value);
        let interval = |value: &str| {
            if let Some(interval) = relative_interval_in(value, self.now_ms, self.zone) {
                return Ok(interval);
            }
            if let Some((start, next_day)) = parse_day_in(value, self.zone) {
                return Ok((start, next_day - 1));
            }
            parse_date_ms_in(value, self.zone).map(|ms| (ms, ms)).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuerySyntax,
                    format!(
                        "'{parameter}' compares @{name} with '{value}', which is not a date; use 2024/01/02, \
                         2024/01/02@13:00:00, 2024-01-02T03:04:05Z, now-7d, today or a range a..b."
                    ),
                )
            })
        };
        Ok((interval(first)?.0, interval(last)?.1))
    }

    /// A bare word with wildcards: the indexed words it stands for, in the body (and the title, for `q`).
    fn wildcard_words(&self, pattern: &str, scope: Scope, parameter: &str) -> Result<Box<dyn Query>, ApiError> {
        let lower = pattern.to_lowercase();
        let body = self.expand(self.fields.body, None, &lower, parameter)?;
        if scope == Scope::Advanced {
            return Ok(Box::new(ConstScoreQuery::new(Box::new(TermSetQuery::new(body)), 1.0)));
        }
        let title = self.expand(self.fields.title, None, &lower, parameter)?;
        Ok(Box::new(BooleanQuery::new(vec![
            (Occur::Should, Box::new(ConstScoreQuery::new(Box::new(TermSetQuery::new(title)), 2.0)) as Box<dyn Query>),
            (Occur::Should, Box::new(ConstScoreQuery::new(Box::new(TermSetQuery::new(body)), 1.0))),
        ])))
    }

    /// `@name*=pattern`: the field's whole values that match, ignoring case.
    fn wildcard_values(
        &self,
        field: Field,
        json_path: Option<&str>,
        pattern: &str,
        parameter: &str,
    ) -> Result<Box<dyn Query>, ApiError> {
        let terms = self.expand(field, json_path, &pattern.to_lowercase(), parameter)?;
        Ok(Box::new(TermSetQuery::new(terms)))
    }

    /// The terms of `field` (under `json_path`) whose text matches the glob `pattern`, at most
    /// [`MAX_EXPANSIONS`] of them.
    fn expand(
        &self,
        field: Field,
        json_path: Option<&str>,
        pattern: &str,
        parameter: &str,
    ) -> Result<Vec<Term>, ApiError> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.len() > MAX_PATTERN_CHARS {
            return Err(ApiError::new(
                ErrorCode::InvalidQuerySyntax,
                format!("'{parameter}' has a wildcard pattern over {MAX_PATTERN_CHARS} characters; shorten it."),
            ));
        }
        let matches = |text: &str| glob_matches(&chars, text);
        self.expand_matching(field, json_path, &matches, MAX_EXPANSIONS, parameter, pattern)
    }

    /// The terms of `field` (under `json_path`) whose text `matches`, from every segment's dictionary; more than
    /// `limit` of them is an error naming `what`.
    fn expand_matching(
        &self,
        field: Field,
        json_path: Option<&str>,
        matches: &dyn Fn(&str) -> bool,
        limit: usize,
        parameter: &str,
        what: &str,
    ) -> Result<Vec<Term>, ApiError> {
        let make = |text: &str| match json_path {
            Some(path) => {
                let mut term = Term::from_field_json_path(field, path, false);
                term.append_type_and_str(text);
                term
            }
            None => Term::from_field_text(field, text),
        };
        let prefix = make("").serialized_value_bytes().to_vec();
        let mut found: BTreeSet<String> = BTreeSet::new();
        for segment in self.searcher.segment_readers() {
            let inverted = segment.inverted_index(field).map_err(internal)?;
            let mut builder = inverted.terms().range();
            if !prefix.is_empty() {
                builder = builder.ge(&prefix);
                if let Some(end) = prefix_end(&prefix) {
                    builder = builder.lt(end);
                }
            }
            let mut stream = builder.into_stream().map_err(|e| ApiError::internal(e.to_string()))?;
            while stream.advance() {
                let Ok(text) = std::str::from_utf8(&stream.key()[prefix.len()..]) else { continue };
                if found.contains(text) || !matches(text) {
                    continue;
                }
                if found.len() == limit {
                    return Err(ApiError::new(
                        ErrorCode::InvalidQuerySyntax,
                        format!(
                            "'{parameter}' has the wildcard '{what}', which matches more than {limit} indexed \
                             words or values; make it more specific (more letters before the '*')."
                        ),
                    ));
                }
                found.insert(text.to_string());
            }
        }
        Ok(found.iter().map(|text| make(text)).collect())
    }
}

fn internal(e: tantivy::TantivyError) -> ApiError {
    ApiError::internal(format!("the search failed: {e}"))
}

/// The first key after every key starting with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` one character. Iterative, with
/// one backtracking point: time is at most the product of the two lengths, and the pattern is bounded.
pub fn glob_matches(pattern: &[char], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// `a..b` as its two ends; any other value is both.
fn range_ends(value: &str) -> (&str, &str) {
    value.split_once("..").filter(|(a, b)| !a.is_empty() && !b.is_empty()).unwrap_or((value, value))
}

/// The words of `text` in that order (at most `slop` words apart, for NEAR), in the parser's fields; `None` when
/// `text` has no word to look for.
fn phrase(parser: &QueryParser, text: &str, slop: Option<u32>) -> Option<Box<dyn Query>> {
    let slop = slop.map(|n| format!("~{n}")).unwrap_or_default();
    let query = parser.parse_query(&format!("\"{}\"{slop}", text.replace(['"', '\\'], " "))).ok()?;
    let mut terms = 0;
    query.query_terms(&mut |_, _| terms += 1);
    (terms > 0).then_some(query)
}

pub fn negate(query: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Must, Box::new(AllQuery) as Box<dyn Query>), (Occur::MustNot, query)]))
}

/// The range a comparison covers, for a value spanning `[lo, hi]` (a whole day, one number, or a range).
fn comparison_range(op: Op, lo: Term, hi: Term) -> Box<dyn Query> {
    let (lower, upper) = match op {
        Op::Exact | Op::Contains | Op::NotEqual | Op::Wildcard => (Bound::Included(lo), Bound::Included(hi)),
        Op::Greater => (Bound::Excluded(hi), Bound::Unbounded),
        Op::GreaterOrEqual => (Bound::Included(lo), Bound::Unbounded),
        Op::Less => (Bound::Unbounded, Bound::Excluded(lo)),
        Op::LessOrEqual => (Bound::Unbounded, Bound::Included(hi)),
    };
    Box::new(RangeQuery::new(lower, upper))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_values() {
        let glob = |p: &str, t: &str| glob_matches(&p.chars().collect::<Vec<_>>(), t);
        assert!(glob("kern*", "kernel") && glob("*nel", "kernel") && glob("k?rnel", "kernel") && glob("*", ""));
        assert!(glob("*e*e*", "kernel-module") && glob("a*b*c", "aXbYbZc"));
        assert!(!glob("kern", "kernel") && !glob("k?", "kernel") && !glob("*x*", "kernel"));
        assert!(glob("é*", "école"));
        let long = "a".repeat(10_000);
        assert!(!glob(&format!("{}b", "*a".repeat(100)), &long), "bounded by the product of the lengths");
    }

    #[test]
    fn ranges_and_prefix_ends() {
        assert_eq!(range_ends("10..20"), ("10", "20"));
        assert_eq!(range_ends("2024/01/01..now"), ("2024/01/01", "now"));
        assert_eq!(range_ends("v1.."), ("v1..", "v1.."));
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
