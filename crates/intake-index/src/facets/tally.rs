//! Counting facet values over the documents a query matches: one tantivy collector for any number of facets,
//! reading the value columns of each segment (never the stored documents).

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::columns::{NumberColumn, text_column};
use crate::prepare::FieldTypes;

/// How many numbers a tally keeps to place automatic ranges (a uniform sample past that).
pub const SAMPLE_SIZE: usize = 4_096;
/// Dictionaries larger than this count into a map instead of an array.
const DENSE_TERMS: usize = 1 << 20;

/// What to count for one facet.
#[derive(Debug, Clone)]
pub enum Spec {
    /// Each value of a text field; with a delimiter, each path prefix of hierarchical values, once per item.
    Text { field: String, delimiter: Option<String> },
    /// How many items fall in each range `[from, to)` (`to` included when the flag says so), and the spread of
    /// the values (min, max, a sample).
    Numbers { field: String, ranges: Vec<(f64, f64, bool)> },
}

/// What was counted for one facet.
#[derive(Debug, Clone, PartialEq)]
pub enum Tally {
    Text(HashMap<String, u64>),
    Numbers(Numbers),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Numbers {
    pub counts: Vec<u64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Up to [`SAMPLE_SIZE`] of the values, uniformly chosen.
    pub sample: Vec<f64>,
    pub seen: u64,
}

/// Counts the values of every spec over the documents collected.
pub struct Tallies {
    pub specs: Arc<Vec<Spec>>,
    pub field_types: Arc<FieldTypes>,
}

impl Collector for Tallies {
    type Fruit = Vec<Tally>;
    type Child = SegmentTallies;

    fn for_segment(&self, _: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentTallies> {
        let tallies = self.specs.iter().map(|spec| SegmentTally::open(segment, spec, &self.field_types)).collect();
        Ok(SegmentTallies { tallies, buffer: Vec::new() })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Tally>>) -> tantivy::Result<Vec<Tally>> {
        let mut merged: Vec<Tally> = self.specs.iter().map(Tally::empty).collect();
        for fruit in fruits {
            for (into, tally) in merged.iter_mut().zip(fruit) {
                into.merge(tally);
            }
        }
        Ok(merged)
    }
}

impl Tally {
    fn empty(spec: &Spec) -> Tally {
        match spec {
            Spec::Text { .. } => Tally::Text(HashMap::new()),
            Spec::Numbers { ranges, .. } => {
                Tally::Numbers(Numbers { counts: vec![0; ranges.len()], ..Numbers::default() })
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        match (self, other) {
            (Tally::Text(into), Tally::Text(from)) => {
                for (value, count) in from {
                    *into.entry(value).or_default() += count;
                }
            }
            (Tally::Numbers(into), Tally::Numbers(from)) => {
                for (a, b) in into.counts.iter_mut().zip(&from.counts) {
                    *a += b;
                }
                into.min = min_of(into.min, from.min);
                into.max = max_of(into.max, from.max);
                into.seen += from.seen;
                into.sample.extend(from.sample);
                if into.sample.len() > SAMPLE_SIZE {
                    // Every k-th value keeps the sample's spread.
                    let step = into.sample.len().div_ceil(SAMPLE_SIZE);
                    into.sample = into.sample.iter().step_by(step).copied().collect();
                }
            }
            _ => {}
        }
    }
}

fn min_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

pub struct SegmentTallies {
    tallies: Vec<SegmentTally>,
    buffer: Vec<f64>,
}

impl SegmentCollector for SegmentTallies {
    type Fruit = Vec<Tally>;

    fn collect(&mut self, doc: DocId, _: Score) {
        for tally in &mut self.tallies {
            tally.collect(doc, &mut self.buffer);
        }
    }

    fn harvest(self) -> Vec<Tally> {
        self.tallies.into_iter().map(SegmentTally::harvest).collect()
    }
}

enum SegmentTally {
    Text {
        column: Option<StrColumn>,
        counts: Counter,
        delimiter: Option<String>,
        items_with_many: HashMap<String, u64>,
    },
    Numbers {
        column: Option<NumberColumn>,
        ranges: Vec<(f64, f64, bool)>,
        numbers: Numbers,
    },
}

/// Counts by term ordinal.
enum Counter {
    Dense(Vec<u32>),
    Sparse(HashMap<u64, u32>),
}

impl Counter {
    fn add(&mut self, ord: u64) {
        match self {
            Counter::Dense(counts) => counts[ord as usize] += 1,
            Counter::Sparse(counts) => *counts.entry(ord).or_default() += 1,
        }
    }

    /// (ordinal, count) with a count, by ordinal.
    fn counted(self) -> Vec<(u64, u64)> {
        match self {
            Counter::Dense(counts) => counts
                .into_iter()
                .enumerate()
                .filter(|(_, count)| *count > 0)
                .map(|(ord, count)| (ord as u64, count as u64))
                .collect(),
            Counter::Sparse(counts) => {
                let mut counted: Vec<(u64, u64)> = counts.into_iter().map(|(o, c)| (o, c as u64)).collect();
                counted.sort_unstable();
                counted
            }
        }
    }
}

impl SegmentTally {
    fn open(segment: &SegmentReader, spec: &Spec, field_types: &FieldTypes) -> SegmentTally {
        match spec {
            Spec::Text { field, delimiter } => {
                let column = text_column(segment, field);
                let terms = column.as_ref().map_or(0, |c| c.num_terms());
                let counts =
                    if terms <= DENSE_TERMS { Counter::Dense(vec![0; terms]) } else { Counter::Sparse(HashMap::new()) };
                SegmentTally::Text { column, counts, delimiter: delimiter.clone(), items_with_many: HashMap::new() }
            }
            Spec::Numbers { field, ranges } => SegmentTally::Numbers {
                column: NumberColumn::open(segment, field, field_types),
                ranges: ranges.clone(),
                numbers: Numbers { counts: vec![0; ranges.len()], ..Numbers::default() },
            },
        }
    }

    fn collect(&mut self, doc: DocId, buffer: &mut Vec<f64>) {
        match self {
            SegmentTally::Text { column: Some(column), counts, delimiter, items_with_many } => {
                let mut ords = column.term_ords(doc);
                let Some(first) = ords.next() else { return };
                let Some(second) = ords.next() else {
                    counts.add(first);
                    return;
                };
                match delimiter {
                    None => {
                        counts.add(first);
                        counts.add(second);
                        ords.for_each(|ord| counts.add(ord));
                    }
                    // An item with several paths counts once per prefix they share.
                    Some(delimiter) => {
                        let mut prefixes: Vec<String> = Vec::new();
                        for ord in [first, second].into_iter().chain(column.term_ords(doc).skip(2)) {
                            let mut text = String::new();
                            if column.ord_to_str(ord, &mut text).unwrap_or(false) {
                                prefixes.extend(path_prefixes(&text, delimiter));
                            }
                        }
                        prefixes.sort_unstable();
                        prefixes.dedup();
                        for prefix in prefixes {
                            *items_with_many.entry(prefix).or_default() += 1;
                        }
                    }
                }
            }
            SegmentTally::Text { column: None, .. } => {}
            SegmentTally::Numbers { column: Some(column), ranges, numbers } => {
                column.values(doc, buffer);
                if buffer.is_empty() {
                    return;
                }
                for (count, (from, to, inclusive)) in numbers.counts.iter_mut().zip(ranges.iter()) {
                    if buffer.iter().any(|v| *v >= *from && (*v < *to || (*inclusive && *v == *to))) {
                        *count += 1;
                    }
                }
                for value in buffer.iter().copied() {
                    numbers.min = min_of(numbers.min, Some(value));
                    numbers.max = max_of(numbers.max, Some(value));
                    numbers.seen += 1;
                    if numbers.sample.len() < SAMPLE_SIZE {
                        numbers.sample.push(value);
                    } else {
                        // Reservoir sampling, with a hash of the position as the random draw.
                        let slot = (splitmix(numbers.seen) % numbers.seen) as usize;
                        if slot < SAMPLE_SIZE {
                            numbers.sample[slot] = value;
                        }
                    }
                }
            }
            SegmentTally::Numbers { column: None, .. } => {}
        }
    }

    fn harvest(self) -> Tally {
        match self {
            SegmentTally::Text { column, counts, delimiter, mut items_with_many } => {
                let Some(column) = column else { return Tally::Text(items_with_many) };
                let counted = counts.counted();
                let mut values: HashMap<String, u64> = HashMap::with_capacity(counted.len());
                let mut next = counted.iter().map(|(_, count)| *count);
                let _ = column.dictionary().sorted_ords_to_term_cb(counted.iter().map(|(ord, _)| *ord), |bytes| {
                    let count = next.next().unwrap_or(0);
                    let text = String::from_utf8_lossy(bytes);
                    match &delimiter {
                        None => *values.entry(text.into_owned()).or_default() += count,
                        Some(delimiter) => {
                            for prefix in path_prefixes(&text, delimiter) {
                                *values.entry(prefix).or_default() += count;
                            }
                        }
                    }
                    Ok(())
                });
                for (prefix, count) in items_with_many.drain() {
                    *values.entry(prefix).or_default() += count;
                }
                Tally::Text(values)
            }
            SegmentTally::Numbers { numbers, .. } => Tally::Numbers(numbers),
        }
    }
}

/// `a;b;c` → `a`, `a;b`, `a;b;c` (the delimiter as given).
pub fn path_prefixes(path: &str, delimiter: &str) -> Vec<String> {
    let mut prefixes = Vec::new();
    let mut end = 0;
    for part in path.split(delimiter) {
        end += part.len();
        prefixes.push(path[..end].to_string());
        end += delimiter.len();
    }
    prefixes
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_a_path() {
        assert_eq!(path_prefixes("a;b;c", ";"), ["a", "a;b", "a;b;c"]);
        assert_eq!(path_prefixes("one", "|"), ["one"]);
        assert_eq!(path_prefixes("a::b", "::"), ["a", "a::b"]);
    }
}
