//! Query suggestions (`querySuggest`): completions of what someone is typing, taken from the titles of the items
//! they may see — first titles that start with what was typed, then titles holding its words (the last one as a
//! prefix), best match first. Nothing is suggested from an item the searcher could not find.

use std::collections::BTreeSet;
use std::sync::Arc;

use intake_model::ApiError;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery, TermSetQuery};
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::{Index, Searcher, TantivyDocument, Term};

use crate::schema::Fields;
use crate::security::{PermissionTables, Viewer};

/// The most completions one call answers.
pub const MAX_COMPLETIONS: usize = 100;
/// How many dictionary entries one call looks at, at most, for each kind of candidate.
const SCAN_LIMIT: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub expression: String,
    /// Coveo's markup: `{typed}` for what matched what was typed, `[rest]` for the rest.
    pub highlighted: String,
    pub score: f64,
}

/// Up to `count` completions of `typed` for `viewer`.
pub fn complete(
    index: &Index,
    searcher: &Searcher,
    fields: &Fields,
    permissions: &Arc<PermissionTables>,
    viewer: &Viewer,
    typed: &str,
    count: usize,
) -> Result<Vec<Completion>, ApiError> {
    let typed = typed.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let count = count.min(MAX_COMPLETIONS);
    if typed.is_empty() || count == 0 {
        return Ok(Vec::new());
    }
    let visible = |query: Box<dyn Query>| -> Box<dyn Query> {
        let live = TermQuery::new(Term::from_field_u64(fields.live, 1), IndexRecordOption::Basic);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(live)), (Occur::Must, query)];
        if let Some(visible) = permissions.visible_to(viewer) {
            clauses.push((Occur::Must, Box::new(visible)));
        }
        Box::new(BooleanQuery::new(clauses))
    };
    let mut titles: Vec<String> = Vec::new();
    // Whole titles that start with what was typed.
    for title in dictionary_prefix(searcher, fields.title_exact, &typed)? {
        if titles.len() == count {
            break;
        }
        let exact = TermQuery::new(Term::from_field_text(fields.title_exact, &title), IndexRecordOption::Basic);
        if searcher.search(visible(Box::new(exact)).as_ref(), &Count).map_err(internal)? > 0 {
            titles.push(title);
        }
    }
    // Then the titles of the items whose title holds the words, best first.
    let words = if titles.len() < count { title_words(index, searcher, fields, &typed)? } else { None };
    if let Some(words) = words {
        let top = TopDocs::with_limit(count * 3);
        for (_, address) in searcher.search(visible(words).as_ref(), &top).map_err(internal)? {
            let doc: TantivyDocument = searcher.doc(address).map_err(internal)?;
            let title = doc.get_first(fields.title).and_then(|v| v.as_str()).unwrap_or("").to_lowercase();
            if titles.len() < count && !title.is_empty() && !titles.contains(&title) {
                titles.push(title);
            }
        }
    }
    let total = titles.len() as f64;
    Ok(titles
        .into_iter()
        .enumerate()
        .map(|(i, expression)| Completion {
            highlighted: highlighted(&expression, &typed),
            expression,
            score: (total - i as f64) / total,
        })
        .collect())
}

/// The terms of `field` that start with `prefix`, at most [`SCAN_LIMIT`], in order.
fn dictionary_prefix(
    searcher: &Searcher,
    field: tantivy::schema::Field,
    prefix: &str,
) -> Result<Vec<String>, ApiError> {
    let mut found = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(internal)?;
        let mut stream = inverted.terms().range().ge(prefix.as_bytes()).into_stream().map_err(io)?;
        let mut scanned = 0;
        while stream.advance() && scanned < SCAN_LIMIT {
            let Ok(text) = std::str::from_utf8(stream.key()) else { continue };
            if !text.starts_with(prefix) {
                break;
            }
            found.insert(text.to_string());
            scanned += 1;
        }
    }
    Ok(found.into_iter().take(SCAN_LIMIT).collect())
}

/// Items whose title holds every typed word, the last one as the start of a word.
fn title_words(
    index: &Index,
    searcher: &Searcher,
    fields: &Fields,
    typed: &str,
) -> Result<Option<Box<dyn Query>>, ApiError> {
    let mut words: Vec<&str> = typed.split(' ').collect();
    let last = words.pop().unwrap_or("");
    let parser = QueryParser::for_index(index, vec![fields.title]);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in words {
        let clean: String = word.chars().filter(|c| c.is_alphanumeric()).collect();
        if let Ok(query) = parser.parse_query(&clean) {
            clauses.push((Occur::Must, query));
        }
    }
    let prefix: String = last.chars().filter(|c| c.is_alphanumeric()).collect();
    if !prefix.is_empty() {
        let terms: Vec<Term> = dictionary_prefix(searcher, fields.title, &prefix)?
            .iter()
            .map(|text| Term::from_field_text(fields.title, text))
            .collect();
        if terms.is_empty() {
            return Ok(None);
        }
        clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(Box::new(TermSetQuery::new(terms)), 1.0))));
    }
    Ok((!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>))
}

/// `kernel module` for `kern` → `{kern}[el] [module]`: each word's start that a typed word began, in braces.
pub fn highlighted(expression: &str, typed: &str) -> String {
    let typed: Vec<&str> = typed.split(' ').filter(|w| !w.is_empty()).collect();
    let mut out = String::new();
    for (i, word) in expression.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let matched = typed.iter().filter(|t| word.starts_with(**t)).map(|t| t.len()).max().unwrap_or(0);
        if matched > 0 {
            out.push_str(&format!("{{{}}}", &word[..matched]));
        }
        if matched < word.len() {
            out.push_str(&format!("[{}]", &word[matched..]));
        }
    }
    out
}

fn internal(e: tantivy::TantivyError) -> ApiError {
    ApiError::internal(format!("the suggestions failed: {e}"))
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("the suggestions failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_what_was_typed() {
        assert_eq!(highlighted("kernel module loading", "kern"), "{kern}[el] [module] [loading]");
        assert_eq!(highlighted("kernel module", "kernel mod"), "{kernel} {mod}[ule]");
        assert_eq!(highlighted("été chaud", "ét"), "{ét}[é] [chaud]");
    }
}
