//! A facet's answer from its tally, in the shape Headless reads (`search-api.md` §3.3): `facetId` echoed,
//! `values` that become the next request's `currentValues`, selected and excluded values kept whatever their
//! rank, and automatic ranges placed over the values counted.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Value, json};

use super::request::{
    Algorithm, FacetKind, FacetRequest, GroupBy, GroupSort, Hierarchical, Range, Specific, State, ValueSort,
};
use super::tally::{Numbers, Spec, Tally};
use crate::columns::is_date;
use crate::prepare::FieldTypes;

const DAY_MS: f64 = 86_400_000.0;

/// The answer of a facet whose values (or given ranges) were counted.
pub fn answer(facet: &FacetRequest, tally: &Tally) -> Value {
    match (&facet.kind, tally) {
        (FacetKind::Specific(specific), Tally::Text(counts)) => specific_answer(facet, specific, counts),
        (FacetKind::Hierarchical(hierarchy), Tally::Text(counts)) => hierarchical_answer(facet, hierarchy, counts),
        (FacetKind::Range(range), Tally::Numbers(numbers)) => given_ranges(facet, range, numbers),
        _ => envelope(facet, Vec::new(), false),
    }
}

fn envelope(facet: &FacetRequest, values: Vec<Value>, more: bool) -> Value {
    json!({"facetId": facet.id, "field": facet.field, "moreValuesAvailable": more, "indexScore": 0, "values": values})
}

fn specific_answer(facet: &FacetRequest, specific: &Specific, counts: &HashMap<String, u64>) -> Value {
    let state_of =
        |value: &str| specific.current.iter().find(|(v, _)| v == value).map_or(State::Idle, |(_, state)| *state);
    let value = |value: &str| {
        let count = counts.get(value).copied().unwrap_or(0);
        json!({"value": value, "state": state_of(value).as_str(), "numberOfResults": count})
    };
    if specific.freeze && !specific.current.is_empty() {
        // Headless froze the values it shows: the same ones, in the same order, with fresh counts.
        let values = specific.current.iter().map(|(v, _)| value(v)).collect();
        let more = counts.keys().any(|k| !specific.current.iter().any(|(v, _)| v == k));
        return envelope(facet, values, more);
    }
    let n = facet.number_of_values;
    let mut entries: Vec<(&str, u64)> = counts.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    let more = entries.len() > n;
    let sort = match specific.sort {
        ValueSort::Automatic if !specific.expanded && more => ValueSort::Occurrences,
        ValueSort::Automatic => ValueSort::Alphanumeric { descending: false },
        other => other,
    };
    sort_values(&mut entries, sort);
    entries.truncate(n);
    let mut values: Vec<Value> = entries.iter().map(|(v, _)| value(v)).collect();
    for (kept, state) in &specific.current {
        if *state != State::Idle && !entries.iter().any(|(v, _)| v == kept) {
            values.push(value(kept));
        }
    }
    envelope(facet, values, more)
}

/// Orders (value, count) pairs; ties break alphabetically.
fn sort_values(entries: &mut [(&str, u64)], sort: ValueSort) {
    let alpha = |a: &str, b: &str| a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| a.cmp(b));
    entries.sort_by(|(a, ca), (b, cb)| match sort {
        ValueSort::Automatic | ValueSort::Occurrences => cb.cmp(ca).then_with(|| alpha(a, b)),
        ValueSort::Alphanumeric { descending } => directed(alpha(a, b), descending),
        ValueSort::Natural { descending } => directed(natural_cmp(a, b).then_with(|| alpha(a, b)), descending),
    });
}

fn directed(order: Ordering, descending: bool) -> Ordering {
    if descending { order.reverse() } else { order }
}

/// Compares runs of digits as numbers and the rest ignoring case: `v2` < `v10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let take = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
                    let mut digits = String::new();
                    while let Some(c) = it.next_if(char::is_ascii_digit) {
                        digits.push(c);
                    }
                    digits.trim_start_matches('0').to_string()
                };
                let (x, y) = (take(&mut a), take(&mut b));
                let order = x.len().cmp(&y.len()).then_with(|| x.cmp(&y));
                if order != Ordering::Equal {
                    return order;
                }
            }
            (Some(x), Some(y)) => {
                let order = x.to_lowercase().cmp(y.to_lowercase());
                if order != Ordering::Equal {
                    return order;
                }
                a.next();
                b.next();
            }
        }
    }
}

/// A selected path as Headless sends it, made to start with the base path.
pub fn absolute_path(base: &[String], path: &[String]) -> Vec<String> {
    if path.starts_with(base) { path.to_vec() } else { base.iter().chain(path).cloned().collect() }
}

fn hierarchical_answer(facet: &FacetRequest, hierarchy: &Hierarchical, counts: &HashMap<String, u64>) -> Value {
    let delimiter = hierarchy.delimiter.as_str();
    let mut children: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
    for (key, count) in counts {
        let (parent, name) = key.rsplit_once(delimiter).unwrap_or(("", key));
        children.entry(parent).or_default().push((name, *count));
    }
    let n = facet.number_of_values;
    let sort = match hierarchy.sort {
        ValueSort::Automatic => ValueSort::Occurrences,
        other => other,
    };
    let node = |path: &[String], state: State, kids: Vec<Value>, more: bool| {
        let key = path.join(delimiter);
        json!({
            "value": path.last(), "state": state.as_str(), "numberOfResults": counts.get(&key).copied().unwrap_or(0),
            "path": path, "children": kids, "isLeafValue": !children.contains_key(key.as_str()),
            "moreValuesAvailable": more,
        })
    };
    // The values under `path`: the first n, and whether there are more.
    let level = |path: &[String]| -> (Vec<Value>, bool) {
        let mut kids = children.get(path.join(delimiter).as_str()).cloned().unwrap_or_default();
        let more = kids.len() > n;
        sort_values(&mut kids, sort);
        kids.truncate(n);
        let values = kids
            .iter()
            .map(|(name, _)| {
                let child: Vec<String> = path.iter().cloned().chain([name.to_string()]).collect();
                node(&child, State::Idle, Vec::new(), false)
            })
            .collect();
        (values, more)
    };
    match &hierarchy.selected {
        None => {
            let (values, more) = level(&hierarchy.base_path);
            envelope(facet, values, more)
        }
        Some(selected) => {
            let path = absolute_path(&hierarchy.base_path, selected);
            let (kids, more) = level(&path);
            let mut current = node(&path, State::Selected, kids, more);
            for depth in (hierarchy.base_path.len() + 1..path.len()).rev() {
                current = node(&path[..depth], State::Idle, vec![current], false);
            }
            envelope(facet, vec![current], false)
        }
    }
}

fn given_ranges(facet: &FacetRequest, range: &Range, numbers: &Numbers) -> Value {
    let mut values: Vec<(f64, Value)> = range
        .current
        .iter()
        .zip(&numbers.counts)
        .map(|(v, count)| {
            let value = json!({"start": v.start, "end": v.end, "endInclusive": v.end_inclusive,
                               "state": v.state.as_str(), "numberOfResults": count});
            (v.from, value)
        })
        .collect();
    if range.descending {
        values.sort_by(|a, b| b.0.total_cmp(&a.0));
    }
    envelope(facet, values.into_iter().map(|(_, v)| v).collect(), false)
}

/// Ranges Intake placed for a facet that asked for automatic ones.
pub struct Generated {
    pub ranges: Vec<GeneratedRange>,
    /// The smallest and largest value counted, when there was one.
    pub domain: Option<(f64, f64)>,
    pub date: bool,
    pub zone: intake_model::dates::Tz,
}

pub struct GeneratedRange {
    pub from: f64,
    pub to: f64,
    pub end_inclusive: bool,
}

/// The ranges to count for a range facet with `generateAutomaticRanges` and no `currentValues`, placed from
/// the values of its first tally (`even`: equal widths on round boundaries; `equiprobable`: about as many
/// items in each).
pub fn automatic_ranges(facet: &FacetRequest, tally: &Tally, field_types: &FieldTypes) -> Option<Generated> {
    let FacetKind::Range(range) = &facet.kind else { return None };
    let (Some(algorithm), true, Tally::Numbers(numbers)) = (range.automatic, range.current.is_empty(), tally) else {
        return None;
    };
    let date = is_date(&facet.field, field_types);
    let (Some(min), Some(max)) = (numbers.min, numbers.max) else {
        return Some(Generated { ranges: Vec::new(), domain: None, date, zone: range.zone });
    };
    let integer = date || field_types.get(&facet.field) != Some(&intake_model::FieldType::Double);
    let count = facet.number_of_values;
    let bounds = if min == max {
        vec![min, max]
    } else {
        match algorithm {
            Algorithm::Even if date => local_day_bounds(min, max, count, range.zone),
            Algorithm::Even => even_bounds(min, max, count, integer, date),
            Algorithm::Equiprobable => equiprobable_bounds(&numbers.sample, min, max, count),
        }
    };
    let last = bounds.len().saturating_sub(2);
    let ranges = bounds
        .windows(2)
        .enumerate()
        .map(|(i, pair)| GeneratedRange { from: pair[0], to: pair[1], end_inclusive: i == last })
        .collect();
    Some(Generated { ranges, domain: Some((min, max)), date, zone: range.zone })
}

/// Even date bounds on the zone's midnights rather than UTC's: placed in local time (the zone's offset at `min`;
/// a DST change inside the span moves later bounds by its hour), then taken back to instants.
fn local_day_bounds(min: f64, max: f64, count: usize, zone: intake_model::dates::Tz) -> Vec<f64> {
    let shift = intake_model::dates::utc_offset_ms(min as i64, zone) as f64;
    even_bounds(min + shift, max + shift, count, true, true).into_iter().map(|b| b - shift).collect()
}

/// Boundaries a round step apart (1, 2 or 5 × 10ⁿ; whole days for dates spanning days) covering `[min, max]`.
fn even_bounds(min: f64, max: f64, count: usize, integer: bool, date: bool) -> Vec<f64> {
    let raw = (max - min) / count as f64;
    let mut step = if date && raw >= DAY_MS { nice(raw / DAY_MS) * DAY_MS } else { nice(raw) };
    if integer {
        step = step.max(1.0).ceil();
    }
    let mut from = (min / step).floor() * step;
    let mut bounds = vec![from];
    // Rounding can add a range at each end; the loop cannot run longer than that.
    while from <= max && bounds.len() <= count + 2 {
        from += step;
        bounds.push(from);
    }
    bounds
}

/// 1, 2 or 5 times a power of ten, at least `x`.
fn nice(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    let fraction = x / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Boundaries at the sample's quantiles, so each range holds about as many values.
fn equiprobable_bounds(sample: &[f64], min: f64, max: f64, count: usize) -> Vec<f64> {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut bounds = vec![min];
    for i in 1..count {
        if let Some(value) = sorted.get(i * sorted.len() / count) {
            bounds.push(*value);
        }
    }
    bounds.push(max);
    bounds.dedup();
    bounds
}

/// The answer of a facet whose automatic ranges were counted.
pub fn generated_range_answer(facet: &FacetRequest, generated: &Generated, counted: &Tally) -> Value {
    let Tally::Numbers(numbers) = counted else { return envelope(facet, Vec::new(), false) };
    let format = |v: f64| format_bound(v, generated.date.then_some(generated.zone));
    let mut values: Vec<Value> = generated
        .ranges
        .iter()
        .zip(&numbers.counts)
        .filter(|(_, count)| **count > 0)
        .map(|(r, count)| {
            json!({"start": format(r.from), "end": format(r.to), "endInclusive": r.end_inclusive,
                   "state": "idle", "numberOfResults": count})
        })
        .collect();
    if matches!(&facet.kind, FacetKind::Range(range) if range.descending) {
        values.reverse();
    }
    let mut answer = envelope(facet, values, false);
    if let Some((min, max)) = generated.domain {
        answer["domain"] = json!({"start": format(min), "end": format(max)});
    }
    answer
}

/// A range bound as Coveo writes it: `2024/01/31@13:00:00` for dates (in the search's time zone), an integer
/// when it is one.
fn format_bound(value: f64, date_zone: Option<intake_model::dates::Tz>) -> Value {
    if let Some(zone) = date_zone {
        return Value::String(intake_model::dates::format_coveo_ms_in(value as i64, zone));
    }
    if value.fract() == 0.0 && value.abs() < 9.0e15 { json!(value as i64) } else { json!(value) }
}

impl GroupBy {
    /// What to count for this group.
    pub fn spec(&self) -> Spec {
        if self.ranges.is_empty() {
            Spec::Text { field: self.name.clone(), delimiter: None }
        } else {
            Spec::Numbers { field: self.name.clone(), ranges: self.ranges.iter().map(|r| (r.1, r.2, r.3)).collect() }
        }
    }

    /// `groupByResults[i]`: the values and their counts over the results.
    pub fn answer(&self, tally: &Tally) -> Value {
        let value = |value: &str, count: u64| {
            json!({"value": value, "lookupValue": value, "numberOfResults": count, "score": count,
                   "valueType": "Standard", "computedFieldResults": []})
        };
        let values: Vec<Value> = match tally {
            Tally::Numbers(numbers) => {
                self.ranges.iter().zip(&numbers.counts).map(|(range, count)| value(&range.0, *count)).collect()
            }
            Tally::Text(counts) => {
                let mut entries: Vec<(&str, u64)> = counts
                    .iter()
                    .filter(|(k, _)| self.allowed.is_empty() || self.allowed.iter().any(|glob| glob.matches(k)))
                    .map(|(k, c)| (k.as_str(), *c))
                    .collect();
                sort_values(
                    &mut entries,
                    match self.sort {
                        GroupSort::Occurrences => ValueSort::Occurrences,
                        GroupSort::Alphabetical { descending } => ValueSort::Alphanumeric { descending },
                    },
                );
                entries.truncate(self.max_values);
                entries.iter().map(|(v, c)| value(v, *c)).collect()
            }
        };
        json!({"field": self.field, "values": values, "globalComputedFieldResults": []})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut values = vec!["v10", "v2", "V1", "v02b", "a"];
        values.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(values, ["a", "V1", "v2", "v02b", "v10"]);
    }

    #[test]
    fn even_ranges_are_round_and_cover_the_values() {
        assert_eq!(even_bounds(3.0, 97.0, 5, true, false), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(even_bounds(0.1, 0.9, 4, false, false), [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let days = even_bounds(0.0, 9.5 * DAY_MS, 5, true, true);
        assert_eq!(days.iter().map(|b| b / DAY_MS).collect::<Vec<_>>(), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        // In New York (UTC-5 in January) the same days start at 05:00 UTC.
        let zone = intake_model::dates::zone("America/New_York").unwrap();
        let january = 1_767_225_600_000.0; // 2026-01-01T00:00:00Z
        let local = local_day_bounds(january, january + 9.5 * DAY_MS, 5, zone);
        let hour = 3_600_000.0;
        assert!(local.iter().all(|b| (b - 5.0 * hour).rem_euclid(DAY_MS) == 0.0), "{local:?}");
        assert!(local[0] <= january && *local.last().unwrap() >= january + 9.5 * DAY_MS);
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(70.0), 100.0);
    }

    #[test]
    fn equiprobable_ranges_split_at_quantiles() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(equiprobable_bounds(&sample, 1.0, 100.0, 4), [1.0, 26.0, 51.0, 76.0, 100.0]);
        assert_eq!(equiprobable_bounds(&[5.0; 10], 5.0, 5.0, 4), [5.0]);
    }
}
