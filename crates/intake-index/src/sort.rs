//! `sortCriteria`: `relevancy`, `date ascending|descending`, `@field ascending|descending`, `nosort`, and comma
//! lists of them, each criterion breaking the ties of the one before.
//!
//! A field sorts by the column the index keeps for it: `@date` and `@size`, declared numeric and date fields by
//! their typed values, any other field by its text (the first value, ignoring case). Items without a value come
//! last, whichever the direction.

use std::cmp::Ordering;

use tantivy::collector::{FruitHandle, MultiCollector, MultiFruit, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::{DocAddress, DocId, Order, Score, SegmentReader};

use crate::columns::{NumberColumn, is_numeric, text_column};
use crate::prepare::FieldTypes;

/// The most criteria one `sortCriteria` may list.
pub const MAX_CRITERIA: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    Relevancy,
    /// The index's own order (cheapest: no score, no column).
    NoSort,
    Date(Order),
    Field {
        name: String,
        order: Order,
    },
}

/// What `sortCriteria` asks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCriteria(pub Vec<Criterion>);

impl Default for SortCriteria {
    fn default() -> SortCriteria {
        SortCriteria(vec![Criterion::Relevancy])
    }
}

/// What `sortCriteria` accepts, for errors.
pub const SORT_CRITERIA_EXPECTED: &str = "it must be relevancy, nosort, date ascending, date descending, \
     @field ascending or @field descending, or a comma list of them (at most 8) such as \
     \"@rank descending, relevancy\"";

impl SortCriteria {
    /// Coveo's spellings, ignoring case: `relevancy` (or `score`, `qre`), `nosort` (alone), `date descending`
    /// (also `datedescending`, `date` alone), `@date ascending`, `@author ascending` (`@author` alone ascends).
    pub fn parse(text: &str) -> Option<SortCriteria> {
        let criteria: Vec<Criterion> = text.split(',').map(criterion).collect::<Option<_>>()?;
        let valid = !criteria.is_empty()
            && criteria.len() <= MAX_CRITERIA
            && (criteria.len() == 1 || !criteria.contains(&Criterion::NoSort));
        valid.then_some(SortCriteria(criteria))
    }
}

fn criterion(text: &str) -> Option<Criterion> {
    let folded = text.trim().to_lowercase();
    let mut words = folded.split_whitespace();
    let (name, order) = (words.next().unwrap_or(""), words.next());
    if words.next().is_some() {
        return None;
    }
    let order = match order {
        None => None,
        Some("ascending") => Some(Order::Asc),
        Some("descending") => Some(Order::Desc),
        Some(_) => return None,
    };
    Some(match (name, order) {
        ("relevancy" | "score" | "qre", None) => Criterion::Relevancy,
        ("nosort", None) => Criterion::NoSort,
        ("datedescending", None) => Criterion::Date(Order::Desc),
        ("dateascending", None) => Criterion::Date(Order::Asc),
        ("date" | "@date" | "@sysdate", order) => Criterion::Date(order.unwrap_or(Order::Desc)),
        (field, order) => {
            let name = field.strip_prefix('@')?;
            let valid = name.chars().next().is_some_and(char::is_alphabetic)
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !valid {
                return None;
            }
            Criterion::Field { name: name.to_string(), order: order.unwrap_or(Order::Asc) }
        }
    })
}

/// One page of a search's matches in the order of its criteria, collected in the search's single pass beside the
/// counts (one walk of the postings, not two).
pub enum Page {
    Scored(FruitHandle<Vec<(Score, DocAddress)>>),
    Dated(FruitHandle<Vec<(tantivy::DateTime, DocAddress)>>),
    Unsorted(FruitHandle<Vec<(u8, DocAddress)>>),
    Ranked(FruitHandle<Vec<(Ranked, DocAddress)>>),
}

impl Page {
    /// Adds the page from `offset`, `limit` long, to `collectors`.
    pub fn add(
        collectors: &mut MultiCollector<'_>,
        criteria: &SortCriteria,
        field_types: &FieldTypes,
        offset: usize,
        limit: usize,
    ) -> Page {
        let top = TopDocs::with_limit(limit).and_offset(offset);
        match criteria.0.as_slice() {
            [Criterion::Relevancy] => Page::Scored(collectors.add_collector(top)),
            [Criterion::Date(order)] => {
                Page::Dated(collectors.add_collector(top.order_by_fast_field("date", order.clone())))
            }
            // Equal keys keep the index's order.
            [Criterion::NoSort] => {
                Page::Unsorted(collectors.add_collector(top.custom_score(|_: &SegmentReader| |_: DocId| 0u8)))
            }
            _ => {
                let criteria = criteria.0.clone();
                let field_types = field_types.clone();
                Page::Ranked(collectors.add_collector(top.tweak_score(move |segment: &SegmentReader| {
                    let keys: Vec<(Key, bool)> = criteria
                        .iter()
                        .map(|criterion| (Key::open(segment, criterion, &field_types), ascending(criterion)))
                        .collect();
                    move |doc: DocId, score: Score| Ranked {
                        values: keys.iter().map(|(key, ascending)| (key.value(doc, score), *ascending)).collect(),
                        score,
                    }
                })))
            }
        }
    }

    /// The page's matches, each with its relevancy score (1.0 when it was not computed).
    pub fn take(self, fruits: &mut MultiFruit) -> Vec<(Score, DocAddress)> {
        let unscored = |addresses: Vec<DocAddress>| addresses.into_iter().map(|address| (1.0, address)).collect();
        match self {
            Page::Scored(handle) => handle.extract(fruits),
            Page::Dated(handle) => unscored(handle.extract(fruits).into_iter().map(|(_, a)| a).collect()),
            Page::Unsorted(handle) => unscored(handle.extract(fruits).into_iter().map(|(_, a)| a).collect()),
            Page::Ranked(handle) => {
                handle.extract(fruits).into_iter().map(|(ranked, address)| (ranked.score, address)).collect()
            }
        }
    }
}

fn ascending(criterion: &Criterion) -> bool {
    matches!(criterion, Criterion::Date(Order::Asc) | Criterion::Field { order: Order::Asc, .. })
}

/// Where one criterion's value comes from, in one segment.
enum Key {
    Score,
    Constant,
    Number(NumberColumn),
    Text(StrColumn),
}

impl Key {
    fn open(segment: &SegmentReader, criterion: &Criterion, field_types: &FieldTypes) -> Key {
        let field = match criterion {
            Criterion::Relevancy => return Key::Score,
            Criterion::NoSort => return Key::Constant,
            Criterion::Date(_) => "date",
            Criterion::Field { name, .. } => name.as_str(),
        };
        let column = if is_numeric(field, field_types) {
            NumberColumn::open(segment, field, field_types).map(Key::Number)
        } else {
            text_column(segment, field).map(Key::Text)
        };
        column.unwrap_or(Key::Constant)
    }

    fn value(&self, doc: DocId, score: Score) -> SortValue {
        match self {
            Key::Score => SortValue::Number(score as f64),
            Key::Constant => SortValue::Missing,
            Key::Number(column) => column.first(doc).map_or(SortValue::Missing, SortValue::Number),
            Key::Text(column) => {
                let mut text = String::new();
                match column.term_ords(doc).next() {
                    Some(ord) if column.ord_to_str(ord, &mut text).unwrap_or(false) => {
                        SortValue::Text(text.to_lowercase())
                    }
                    _ => SortValue::Missing,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Missing,
    Number(f64),
    Text(String),
}

/// A document's sort key: greater is earlier in the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Each criterion's value and whether it ascends.
    values: Vec<(SortValue, bool)>,
    score: f32,
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<Ordering> {
        for ((mine, ascending), (theirs, _)) in self.values.iter().zip(&other.values) {
            let order = match (mine, theirs) {
                (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
                // A missing value is last in both directions.
                (SortValue::Missing, _) => Ordering::Less,
                (_, SortValue::Missing) => Ordering::Greater,
                (SortValue::Number(a), SortValue::Number(b)) => directed(a.total_cmp(b), *ascending),
                (SortValue::Text(a), SortValue::Text(b)) => directed(a.cmp(b), *ascending),
                (SortValue::Number(_), SortValue::Text(_)) => Ordering::Greater,
                (SortValue::Text(_), SortValue::Number(_)) => Ordering::Less,
            };
            if order != Ordering::Equal {
                return Some(order);
            }
        }
        Some(Ordering::Equal)
    }
}

/// Greater is earlier: an ascending criterion puts the smaller value first.
fn directed(order: Ordering, ascending: bool) -> Ordering {
    if ascending { order.reverse() } else { order }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_lists() {
        let parse = |text: &str| SortCriteria::parse(text).map(|c| c.0);
        assert_eq!(parse("Relevancy"), Some(vec![Criterion::Relevancy]));
        assert_eq!(parse("DateDescending"), Some(vec![Criterion::Date(Order::Desc)]));
        assert_eq!(parse("@date ascending"), Some(vec![Criterion::Date(Order::Asc)]));
        assert_eq!(parse("nosort"), Some(vec![Criterion::NoSort]));
        assert_eq!(
            parse("@Rank descending, relevancy"),
            Some(vec![Criterion::Field { name: "rank".into(), order: Order::Desc }, Criterion::Relevancy])
        );
        assert_eq!(parse("@author"), Some(vec![Criterion::Field { name: "author".into(), order: Order::Asc }]));
        for bad in ["size", "@", "@a-b ascending", "relevancy descending", "nosort, relevancy", "@a upward", "", " , "]
        {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse(&["relevancy"; MAX_CRITERIA + 1].join(",")), None);
    }

    #[test]
    fn missing_values_are_last_both_ways() {
        let ranked = |value: SortValue, ascending| Ranked { values: vec![(value, ascending)], score: 0.0 };
        for ascending in [true, false] {
            assert!(ranked(SortValue::Number(1.0), ascending) > ranked(SortValue::Missing, ascending));
            assert!(ranked(SortValue::Text("a".into()), ascending) > ranked(SortValue::Missing, ascending));
        }
        assert!(ranked(SortValue::Number(1.0), true) > ranked(SortValue::Number(2.0), true));
        assert!(ranked(SortValue::Number(2.0), false) > ranked(SortValue::Number(1.0), false));
    }
}
