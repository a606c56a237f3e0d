//! The `facets` of a search request (Coveo's facet API, `search-api.md` §2.2) and legacy `groupBy`, read from
//! JSON strictly: a key of the wrong type, a value out of bounds or a facet on a field that cannot hold it is
//! `412 INVALID_PARAMETER` naming the key (`facets[1].numberOfValues`). Unknown keys are accepted.

use intake_model::ApiError;
use intake_model::dates::{Tz, parse_date_ms, parse_date_ms_in, relative_interval_in};
use serde_json::{Map, Value};

use crate::columns::{is_date, is_numeric};
use crate::prepare::FieldTypes;

/// The most facets (or `groupBy` entries) one request may hold.
pub const MAX_FACETS: usize = 100;
/// The most values one facet may ask for or carry in `currentValues`.
pub const MAX_FACET_VALUES: usize = 1_000;
/// The deepest hierarchical path (`basePath`, selected values).
pub const MAX_PATH_DEPTH: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct FacetRequest {
    /// `facetId`, echoed in the answer (Headless matches answers to requests by it); the field when absent.
    pub id: String,
    /// The field, lower-cased, without `@`.
    pub field: String,
    pub number_of_values: usize,
    pub kind: FacetKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FacetKind {
    Specific(Specific),
    Range(Range),
    Hierarchical(Hierarchical),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Idle,
    Selected,
    Excluded,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Selected => "selected",
            State::Excluded => "excluded",
        }
    }
}

/// How a facet's values are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSort {
    /// By count when the facet is not expanded and has more values than asked, else alphanumeric (Coveo's
    /// default, and Headless' `automatic`).
    Automatic,
    /// By count, most first (`score`, `occurrences`).
    Occurrences,
    Alphanumeric {
        descending: bool,
    },
    /// Numbers inside values compare as numbers (`v2` before `v10`).
    Natural {
        descending: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Specific {
    pub current: Vec<(String, State)>,
    pub freeze: bool,
    pub expanded: bool,
    pub sort: ValueSort,
    /// `resultsMustMatch: allValues`: an item must have every selected value (else any).
    pub all_values: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub date: bool,
    /// The search's time zone: given dates are read, and automatic ones placed and written, in it.
    pub zone: Tz,
    pub current: Vec<RangeValue>,
    /// `generateAutomaticRanges` (used when `currentValues` is empty), with its algorithm.
    pub automatic: Option<Algorithm>,
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Even,
    Equiprobable,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RangeValue {
    /// As the request wrote them (echoed exactly: Headless maps dates back by their string).
    pub start: Value,
    pub end: Value,
    pub from: f64,
    pub to: f64,
    pub end_inclusive: bool,
    pub state: State,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchical {
    pub delimiter: String,
    pub base_path: Vec<String>,
    pub filter_by_base_path: bool,
    /// The path of the selected value, from the top (below `basePath` or not: as Headless sends it).
    pub selected: Option<Vec<String>>,
    pub sort: ValueSort,
}

/// The `facets` array of a request.
/// The `facets` array of a request; `now_ms` places relative dates of range values.
pub fn facets(
    value: Option<&Value>,
    field_types: &FieldTypes,
    (now_ms, zone): (i64, Tz),
) -> Result<Vec<FacetRequest>, ApiError> {
    let items = list(value, "facets", MAX_FACETS)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| facet(&Obj::new(item, format!("facets[{i}]"))?, field_types, (now_ms, zone)))
        .collect()
}

fn facet(obj: &Obj<'_>, field_types: &FieldTypes, now: (i64, Tz)) -> Result<FacetRequest, ApiError> {
    let field = obj.field("field")?;
    let id = match obj.str("facetId")? {
        Some(id) if valid_facet_id(id) => id.to_string(),
        Some(id) => return Err(obj.invalid("facetId", id, "it must be 1 to 60 letters, digits, '-' or '_'")),
        None => field.clone(),
    };
    let kind_name = obj.str("type")?.unwrap_or("specific");
    let default_values = if kind_name == "hierarchical" { 5 } else { 8 };
    let number_of_values = obj.count("numberOfValues", MAX_FACET_VALUES)?.unwrap_or(default_values);
    let kind = match kind_name {
        "specific" => FacetKind::Specific(specific(obj)?),
        "numericalRange" | "dateRange" => {
            let date = kind_name == "dateRange";
            let fits = if date { is_date(&field, field_types) } else { is_numeric(&field, field_types) };
            if !fits || (!date && is_date(&field, field_types)) {
                let wanted = if date {
                    "a dateRange facet needs @date or a field declared DATE"
                } else {
                    "a numericalRange facet needs @size or a field declared LONG, LONG_64 or DOUBLE (dates take a \
                     dateRange facet)"
                };
                return Err(obj.invalid("field", &field, wanted));
            }
            FacetKind::Range(range(obj, date, now)?)
        }
        "hierarchical" => FacetKind::Hierarchical(hierarchical(obj)?),
        other => {
            return Err(obj.invalid("type", other, "it must be specific, numericalRange, dateRange or hierarchical"));
        }
    };
    Ok(FacetRequest { id, field, number_of_values, kind })
}

fn valid_facet_id(id: &str) -> bool {
    (1..=60).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn specific(obj: &Obj<'_>) -> Result<Specific, ApiError> {
    let mut current = Vec::new();
    for (i, value) in obj.list("currentValues", MAX_FACET_VALUES)?.iter().enumerate() {
        let value = obj.child(value, &format!("currentValues[{i}]"))?;
        current.push((value.required_str("value")?.to_string(), value.state()?));
    }
    let all_values = match obj.str("resultsMustMatch")? {
        None | Some("atLeastOneValue") => false,
        Some("allValues") => true,
        Some(other) => return Err(obj.invalid("resultsMustMatch", other, "it must be atLeastOneValue or allValues")),
    };
    Ok(Specific {
        current,
        freeze: obj.bool("freezeCurrentValues")?,
        expanded: obj.bool("isFieldExpanded")?,
        sort: obj.value_sort(ValueSort::Automatic)?,
        all_values,
    })
}

fn range(obj: &Obj<'_>, date: bool, now: (i64, Tz)) -> Result<Range, ApiError> {
    let mut current = Vec::new();
    for (i, value) in obj.list("currentValues", MAX_FACET_VALUES)?.iter().enumerate() {
        let value = obj.child(value, &format!("currentValues[{i}]"))?;
        let bound = |key: &str| -> Result<(Value, f64), ApiError> {
            let raw = value.get(key).cloned().ok_or_else(|| ApiError::missing_parameter(&value.name(key)))?;
            let number = match (&raw, date) {
                (Value::String(text), true) => date_ms(text, now),
                (Value::Number(n), false) => n.as_f64(),
                (Value::String(text), false) => text.trim().parse().ok(),
                (Value::Number(n), true) => n.as_f64(),
                _ => None,
            };
            let expected = if date { "it must be a date such as 2024/01/31@00:00:00" } else { "it must be a number" };
            number
                .filter(|n| n.is_finite())
                .map(|n| (raw.clone(), n))
                .ok_or_else(|| ApiError::invalid_parameter(&value.name(key), &raw.to_string(), expected))
        };
        let (start, from) = bound("start")?;
        let (end, to) = bound("end")?;
        current.push(RangeValue {
            start,
            end,
            from,
            to,
            end_inclusive: value.bool("endInclusive")?,
            state: value.state()?,
        });
    }
    let automatic = match (obj.bool("generateAutomaticRanges")?, obj.str("rangeAlgorithm")?) {
        (false, _) => None,
        (true, None | Some("even")) => Some(Algorithm::Even),
        (true, Some("equiprobable")) => Some(Algorithm::Equiprobable),
        (true, Some(other)) => return Err(obj.invalid("rangeAlgorithm", other, "it must be even or equiprobable")),
    };
    let descending = match obj.str("sortCriteria")? {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(other) => return Err(obj.invalid("sortCriteria", other, "it must be ascending or descending")),
    };
    Ok(Range { date, zone: now.1, current, automatic, descending })
}

/// A date as range facets write it (`2024/01/31@13:00:00` in the search's time zone, ISO 8601, epoch ms, or
/// relative: `now-7d`).
fn date_ms(text: &str, (now_ms, zone): (i64, Tz)) -> Option<f64> {
    relative_interval_in(text, now_ms, zone)
        .map(|(start, _)| start)
        .or_else(|| parse_date_ms_in(text, zone))
        .map(|ms| ms as f64)
}

fn hierarchical(obj: &Obj<'_>) -> Result<Hierarchical, ApiError> {
    let delimiter = obj.str("delimitingCharacter")?.unwrap_or(";");
    if delimiter.is_empty() || delimiter.chars().count() > 8 {
        return Err(obj.invalid("delimitingCharacter", delimiter, "it must be 1 to 8 characters, such as ;"));
    }
    let base_path = obj
        .list("basePath", MAX_PATH_DEPTH)?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| obj.invalid("basePath", "…", "it must be an array of strings"))?;
    // The selected value is the end of the one chain of `children` Headless sends.
    let mut selected = None;
    let mut level = obj.list("currentValues", MAX_FACET_VALUES)?;
    let mut path = Vec::new();
    let mut name = "currentValues".to_string();
    while let Some(node) = level.first() {
        if path.len() == MAX_PATH_DEPTH {
            return Err(obj.invalid(&name, "…", &format!("it nests more than {MAX_PATH_DEPTH} levels")));
        }
        let node = obj.child(node, &format!("{name}[0]"))?;
        path.push(node.required_str("value")?.to_string());
        if node.state()? == State::Selected {
            selected = Some(path.clone());
        }
        name = format!("{name}[0].children");
        level = node.list("children", MAX_FACET_VALUES)?;
    }
    Ok(Hierarchical {
        delimiter: delimiter.to_string(),
        base_path,
        filter_by_base_path: obj.bool_or("filterByBasePath", true)?,
        selected,
        sort: obj.value_sort(ValueSort::Occurrences)?,
    })
}

/// The array at `key` (absent or null is empty), at most `max` long.
fn list<'a>(value: Option<&'a Value>, name: &str, max: usize) -> Result<&'a [Value], ApiError> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) if items.len() <= max => Ok(items),
        Some(Value::Array(items)) => Err(ApiError::invalid_parameter(
            name,
            &format!("{} entries", items.len()),
            &format!("it may hold at most {max} entries"),
        )),
        Some(other) => Err(ApiError::invalid_parameter(name, &other.to_string(), "it must be an array")),
    }
}

/// A JSON object of the request and its name in errors (`facets[0]`).
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    pub fn new(value: &'a Value, path: String) -> Result<Obj<'a>, ApiError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(ApiError::invalid_parameter(&path, &other.to_string(), "it must be an object")),
        }
    }

    fn child(&self, value: &'a Value, key: &str) -> Result<Obj<'a>, ApiError> {
        Obj::new(value, self.name(key))
    }

    pub fn name(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn invalid(&self, key: &str, value: &str, expected: &str) -> ApiError {
        ApiError::invalid_parameter(&self.name(key), value, expected)
    }

    pub fn str(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(key, &other.to_string(), "it must be a string")),
        }
    }

    fn required_str(&self, key: &str) -> Result<&'a str, ApiError> {
        self.str(key)?.ok_or_else(|| ApiError::missing_parameter(&self.name(key)))
    }

    /// A field name: required, `@` optional, lower-cased.
    pub fn field(&self, key: &str) -> Result<String, ApiError> {
        let raw = self.required_str(key)?;
        let name = raw.trim().trim_start_matches('@').to_lowercase();
        let valid = name.chars().next().is_some_and(char::is_alphabetic)
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !valid {
            return Err(self.invalid(key, raw, "it must be a field name such as author or @author"));
        }
        Ok(name)
    }

    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        self.bool_or(key, false)
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.invalid(key, &other.to_string(), "it must be true or false")),
        }
    }

    pub fn count(&self, key: &str, max: usize) -> Result<Option<usize>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=max as u64).contains(&n)) => {
                Ok(n.as_u64().map(|n| n as usize))
            }
            Some(other) => {
                Err(self.invalid(key, &other.to_string(), &format!("it must be an integer from 1 to {max}")))
            }
        }
    }

    pub fn list(&self, key: &str, max: usize) -> Result<&'a [Value], ApiError> {
        list(self.get(key), &self.name(key), max)
    }

    fn state(&self) -> Result<State, ApiError> {
        match self.str("state")? {
            None | Some("idle") => Ok(State::Idle),
            Some("selected") => Ok(State::Selected),
            Some("excluded") => Ok(State::Excluded),
            Some(other) => Err(self.invalid("state", other, "it must be idle, selected or excluded")),
        }
    }

    /// `sortCriteria` as a string or Headless' `{type, order}`.
    fn value_sort(&self, default: ValueSort) -> Result<ValueSort, ApiError> {
        let expected = "it must be automatic, score, occurrences, alphanumeric, alphanumericDescending, \
                        alphanumericNatural, alphanumericNaturalDescending, or {\"type\": …, \"order\": \
                        \"ascending\"|\"descending\"}";
        let (kind, descending) = match self.get("sortCriteria") {
            None => return Ok(default),
            Some(Value::String(s)) => match s.strip_suffix("Descending") {
                Some(kind) => (kind.to_string(), true),
                None => (s.clone(), false),
            },
            Some(Value::Object(map)) => {
                let kind = map.get("type").and_then(Value::as_str).unwrap_or("").to_string();
                let descending = match map.get("order").and_then(Value::as_str) {
                    None | Some("ascending") => false,
                    Some("descending") => true,
                    Some(other) => return Err(self.invalid("sortCriteria.order", other, expected)),
                };
                (kind, descending)
            }
            Some(other) => return Err(self.invalid("sortCriteria", &other.to_string(), expected)),
        };
        Ok(match kind.as_str() {
            "automatic" => ValueSort::Automatic,
            "score" | "occurrences" => ValueSort::Occurrences,
            "alphanumeric" => ValueSort::Alphanumeric { descending },
            "alphanumericNatural" => ValueSort::Natural { descending },
            other => return Err(self.invalid("sortCriteria", other, expected)),
        })
    }
}

/// A legacy `groupBy` entry (older Coveo JavaScript UIs): a field's values and their counts over the results.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    /// As the request wrote it (`@filetype`), echoed in the answer.
    pub field: String,
    /// Lower-cased, without `@`.
    pub name: String,
    pub max_values: usize,
    pub sort: GroupSort,
    /// `allowedValues`: only values matching one of these (with `*` and `?`), ignoring case.
    pub allowed: Vec<Glob>,
    /// `rangeValues`: (label, from, to, end inclusive).
    pub ranges: Vec<(String, f64, f64, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSort {
    Occurrences,
    Alphabetical { descending: bool },
}

/// A value pattern with `*` and `?`, ignoring case.
#[derive(Debug, Clone, PartialEq)]
pub struct Glob(Vec<char>);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.to_lowercase().chars().collect())
    }

    pub fn matches(&self, text: &str) -> bool {
        crate::query::glob_matches(&self.0, &text.to_lowercase())
    }
}

/// The `groupBy` array of a request.
pub fn group_by(value: Option<&Value>, field_types: &FieldTypes) -> Result<Vec<GroupBy>, ApiError> {
    let items = list(value, "groupBy", MAX_FACETS)?;
    items.iter().enumerate().map(|(i, item)| group(&Obj::new(item, format!("groupBy[{i}]"))?, field_types)).collect()
}

fn group(obj: &Obj<'_>, field_types: &FieldTypes) -> Result<GroupBy, ApiError> {
    let name = obj.field("field")?;
    if !obj.list("computedFields", MAX_FACET_VALUES)?.is_empty() {
        return Err(obj.invalid(
            "computedFields",
            "…",
            "computed fields (sums, averages, minimums of a field per group) are not supported by Intake; ask for \
             the groups' values and counts only",
        ));
    }
    let sort = match obj.str("sortCriteria")?.map(str::to_ascii_lowercase).as_deref() {
        None
        | Some("occurrences" | "score" | "nosort" | "chisquare" | "computedfieldascending")
        | Some("computedfielddescending") => GroupSort::Occurrences,
        Some("alphaascending") => GroupSort::Alphabetical { descending: false },
        Some("alphadescending") => GroupSort::Alphabetical { descending: true },
        Some(other) => {
            return Err(obj.invalid(
                "sortCriteria",
                other,
                "it must be occurrences, score, alphaAscending or alphaDescending",
            ));
        }
    };
    let allowed = obj
        .list("allowedValues", MAX_FACET_VALUES)?
        .iter()
        .map(|v| v.as_str().map(Glob::new))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| obj.invalid("allowedValues", "…", "it must be an array of strings"))?;
    let mut ranges = Vec::new();
    for (i, range) in obj.list("rangeValues", MAX_FACET_VALUES)?.iter().enumerate() {
        let range = obj.child(range, &format!("rangeValues[{i}]"))?;
        if !is_numeric(&name, field_types) {
            return Err(obj.invalid("field", &name, "rangeValues need @date, @size or a declared numeric field"));
        }
        let bound = |key: &str| -> Result<f64, ApiError> {
            let raw = range.get(key).ok_or_else(|| ApiError::missing_parameter(&range.name(key)))?;
            let number = match raw {
                Value::Number(n) => n.as_f64(),
                Value::String(text) => text.trim().parse().ok().or_else(|| parse_date_ms(text).map(|ms| ms as f64)),
                _ => None,
            };
            number.ok_or_else(|| range.invalid(key, &raw.to_string(), "it must be a number or a date"))
        };
        let (from, to) = (bound("from")?, bound("to")?);
        let label = range.str("label")?.map(str::to_string).unwrap_or_else(|| format!("{from}..{to}"));
        ranges.push((label, from, to, range.bool("endInclusive")?));
    }
    Ok(GroupBy {
        field: obj.str("field")?.unwrap_or_default().to_string(),
        name,
        max_values: obj.count("maximumNumberOfValues", MAX_FACET_VALUES)?.unwrap_or(10),
        sort,
        allowed,
        ranges,
    })
}
