//! Facets (Coveo's facet API) and legacy `groupBy`: what each one filters, and its values counted over what the
//! searcher may see.
//!
//! A facet's selected values filter the results (OR within the facet, or AND with `resultsMustMatch: allValues`;
//! excluded values are NOT). Each facet's values are counted with every other facet's filter but not its own, so
//! a facet with a selection still shows how many items its other values would add (multi-select counts). Facets
//! without a selection are counted in the same pass as the result count; each facet with one costs one more
//! pass, and automatic ranges one more.

pub mod answer;
pub mod request;
pub mod tally;

use std::sync::Arc;

use intake_model::ApiError;
use serde_json::Value;
use tantivy::Searcher;
use tantivy::collector::{Count, FruitHandle, MultiCollector, MultiFruit};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query};

use crate::prepare::FieldTypes;
use crate::query::QueryBuilder;
pub use request::{FacetKind, FacetRequest, GroupBy, State};
use tally::{Spec, Tallies, Tally};

/// A facet's filter from its selected and excluded values; `None` when it has neither.
pub fn filter(builder: &QueryBuilder<'_>, facet: &FacetRequest) -> Result<Option<Box<dyn Query>>, ApiError> {
    let mut selected: Vec<Box<dyn Query>> = Vec::new();
    let mut excluded: Vec<Box<dyn Query>> = Vec::new();
    let mut all_values = false;
    match &facet.kind {
        FacetKind::Specific(specific) => {
            all_values = specific.all_values;
            for (value, state) in &specific.current {
                let query = builder.value_filter(&facet.field, value)?;
                match state {
                    State::Selected => selected.push(query),
                    State::Excluded => excluded.push(query),
                    State::Idle => {}
                }
            }
        }
        FacetKind::Range(range) => {
            for value in &range.current {
                let query = builder.number_range(&facet.field, value.from, value.to, value.end_inclusive);
                match value.state {
                    State::Selected => selected.push(query),
                    State::Excluded => excluded.push(query),
                    State::Idle => {}
                }
            }
        }
        FacetKind::Hierarchical(hierarchy) => {
            let path = match &hierarchy.selected {
                Some(path) => Some(answer::absolute_path(&hierarchy.base_path, path)),
                None if hierarchy.filter_by_base_path && !hierarchy.base_path.is_empty() => {
                    Some(hierarchy.base_path.clone())
                }
                None => None,
            };
            if let Some(path) = path {
                selected.push(builder.path_filter(
                    &facet.field,
                    &path.join(&hierarchy.delimiter),
                    &hierarchy.delimiter,
                )?);
            }
        }
    }
    Ok(combine(selected, excluded, all_values))
}

fn combine(selected: Vec<Box<dyn Query>>, excluded: Vec<Box<dyn Query>>, all_values: bool) -> Option<Box<dyn Query>> {
    if selected.is_empty() && excluded.is_empty() {
        return None;
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    match (selected.len(), all_values) {
        (0, _) => clauses.push((Occur::Must, Box::new(AllQuery))),
        (_, true) => clauses.extend(selected.into_iter().map(|q| (Occur::Must, q))),
        (_, false) => {
            let any = selected.into_iter().map(|q| (Occur::Should, q)).collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
    }
    clauses.extend(excluded.into_iter().map(|q| (Occur::MustNot, q)));
    Some(Box::new(BooleanQuery::new(clauses)))
}

/// What a tally counts for a facet (ranges: the given ones; automatic ones come from a second pass).
fn spec(facet: &FacetRequest) -> Spec {
    match &facet.kind {
        FacetKind::Specific(_) => Spec::Text { field: facet.field.clone(), delimiter: None },
        FacetKind::Hierarchical(h) => Spec::Text { field: facet.field.clone(), delimiter: Some(h.delimiter.clone()) },
        FacetKind::Range(range) => Spec::Numbers {
            field: facet.field.clone(),
            ranges: range.current.iter().map(|v| (v.from, v.to, v.end_inclusive)).collect(),
        },
    }
}

/// `base` with every facet filter but the one at `skip`: the results (no skip), or what a facet counts.
pub fn narrowed(base: &dyn Query, filters: &[Option<Box<dyn Query>>], skip: Option<usize>) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, base.box_clone())];
    for (i, filter) in filters.iter().enumerate() {
        if let Some(filter) = filter.as_ref().filter(|_| Some(i) != skip) {
            clauses.push((Occur::Must, filter.box_clone()));
        }
    }
    if clauses.len() == 1 {
        return base.box_clone();
    }
    Box::new(BooleanQuery::new(clauses))
}

/// The results' count and every facet's and group's answer.
pub struct Counted {
    pub total: usize,
    pub facets: Vec<Value>,
    pub group_by: Vec<Value>,
}

/// What a search asks to count beside its results: facets (each with its filter, if values are selected) and groups.
pub struct Asked<'a> {
    pub facets: &'a [FacetRequest],
    pub filters: &'a [Option<Box<dyn Query>>],
    pub group_by: &'a [GroupBy],
    pub field_types: Arc<FieldTypes>,
}

/// What the search's single pass counts: the results, the facets without a filter of their own, and the groups.
pub struct FirstPass {
    total: FruitHandle<usize>,
    tallies: FruitHandle<Vec<Tally>>,
    /// The facets counted in it, by their place in the request.
    unfiltered: Vec<usize>,
}

impl FirstPass {
    /// Adds the counts to `collectors`, which run over the results (`base` with every facet filter).
    pub fn add(collectors: &mut MultiCollector<'_>, asked: &Asked<'_>) -> FirstPass {
        let unfiltered: Vec<usize> = (0..asked.facets.len()).filter(|i| asked.filters[*i].is_none()).collect();
        let mut specs: Vec<Spec> = unfiltered.iter().map(|i| spec(&asked.facets[*i])).collect();
        specs.extend(asked.group_by.iter().map(GroupBy::spec));
        let tallies = Tallies { specs: Arc::new(specs), field_types: asked.field_types.clone() };
        FirstPass { total: collectors.add_collector(Count), tallies: collectors.add_collector(tallies), unfiltered }
    }
}

/// The results' count and every facet's and group's answer: those of the first pass from its `fruits`, and each
/// facet with a filter of its own in a pass of its own (what `base` finds with the other facets' filters).
pub fn count(
    searcher: &Searcher,
    base: &dyn Query,
    asked: &Asked<'_>,
    first: FirstPass,
    fruits: &mut MultiFruit,
) -> Result<Counted, ApiError> {
    let total = first.total.extract(fruits);
    let mut main = first.tallies.extract(fruits);
    let groups = main.split_off(first.unfiltered.len());
    let mut tallied: Vec<Option<Tally>> = vec![None; asked.facets.len()];
    for (i, tally) in first.unfiltered.into_iter().zip(main) {
        tallied[i] = Some(tally);
    }
    let mut answers = Vec::with_capacity(asked.facets.len());
    for (i, facet) in asked.facets.iter().enumerate() {
        let once = |spec: Spec| -> Result<Tally, ApiError> {
            let query = narrowed(base, asked.filters, asked.filters[i].as_ref().map(|_| i));
            let tallies = Tallies { specs: Arc::new(vec![spec]), field_types: asked.field_types.clone() };
            let mut fruit = searcher.search(query.as_ref(), &tallies).map_err(internal)?;
            Ok(fruit.pop().expect("one tally per spec"))
        };
        let tally = match tallied[i].take() {
            Some(tally) => tally,
            None => once(spec(facet))?,
        };
        let answer = match answer::automatic_ranges(facet, &tally, asked.field_types.as_ref()) {
            // Automatic ranges are counted exactly over the same items, once placed.
            Some(generated) => {
                let ranges = generated.ranges.iter().map(|r| (r.from, r.to, r.end_inclusive)).collect();
                let counted = once(Spec::Numbers { field: facet.field.clone(), ranges })?;
                answer::generated_range_answer(facet, &generated, &counted)
            }
            None => answer::answer(facet, &tally),
        };
        answers.push(answer);
    }
    let group_by = asked.group_by.iter().zip(&groups).map(|(group, tally)| group.answer(tally)).collect();
    Ok(Counted { total, facets: answers, group_by })
}

fn internal(e: tantivy::TantivyError) -> ApiError {
    ApiError::internal(format!("the facets could not be counted: {e}"))
}
