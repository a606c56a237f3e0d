//! The per-segment value columns that sorts and facets read, by Coveo field name: `@date` and `@size`, declared
//! numeric and date fields (typed), and the text of any field (`meta_typed.~s.<name>`, see
//! [`crate::schema::FACET_STRINGS`]).

use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, SegmentReader};

use crate::prepare::FieldTypes;
use crate::schema::{FACET_STRINGS, STANDARD_NUMBERS};

/// The standard name a `sys`-prefixed twin stands for (`@sysdate` is `@date`).
pub fn standard_name(name: &str) -> &str {
    match name {
        "sysdate" => "date",
        "syssize" => "size",
        "systitle" => "title",
        "syssource" => "source",
        "sysfiletype" => "filetype",
        "sysuri" => "uri",
        other => other,
    }
}

/// Whether a field's values are numbers (or dates) in the index, so it sorts and ranges by number.
pub fn is_numeric(name: &str, field_types: &FieldTypes) -> bool {
    matches!(standard_name(name), "date" | "size") || field_types.get(name).is_some_and(|t| t.is_numeric())
}

/// Whether a field holds dates (epoch milliseconds).
pub fn is_date(name: &str, field_types: &FieldTypes) -> bool {
    standard_name(name) == "date" || field_types.get(name) == Some(&intake_model::FieldType::Date)
}

/// A numeric column, whatever type the index stored it as; dates are epoch milliseconds.
pub enum NumberColumn {
    I64(Column<i64>),
    U64(Column<u64>),
    F64(Column<f64>),
    Date(Column<tantivy::DateTime>),
}

impl NumberColumn {
    /// The column of a numeric field in a segment; `None` when no item of the segment has a value.
    pub fn open(segment: &SegmentReader, name: &str, field_types: &FieldTypes) -> Option<NumberColumn> {
        let fast = segment.fast_fields();
        let path = match standard_name(name) {
            "date" => return fast.date("date").ok().map(NumberColumn::Date),
            "size" => format!("meta_typed.{STANDARD_NUMBERS}.size"),
            declared if field_types.get(declared).is_some_and(|t| t.is_numeric()) => format!("meta_typed.{declared}"),
            _ => return None,
        };
        if let Some(column) = fast.column_opt::<f64>(&path).ok().flatten() {
            return Some(NumberColumn::F64(column));
        }
        if let Some(column) = fast.column_opt::<i64>(&path).ok().flatten() {
            return Some(NumberColumn::I64(column));
        }
        fast.column_opt::<u64>(&path).ok().flatten().map(NumberColumn::U64)
    }

    pub fn first(&self, doc: DocId) -> Option<f64> {
        match self {
            NumberColumn::I64(c) => c.first(doc).map(|v| v as f64),
            NumberColumn::U64(c) => c.first(doc).map(|v| v as f64),
            NumberColumn::F64(c) => c.first(doc),
            NumberColumn::Date(c) => c.first(doc).map(|d| d.into_timestamp_millis() as f64),
        }
    }

    /// Every value of a document, into `out` (cleared first).
    pub fn values(&self, doc: DocId, out: &mut Vec<f64>) {
        out.clear();
        match self {
            NumberColumn::I64(c) => out.extend(c.values_for_doc(doc).map(|v| v as f64)),
            NumberColumn::U64(c) => out.extend(c.values_for_doc(doc).map(|v| v as f64)),
            NumberColumn::F64(c) => out.extend(c.values_for_doc(doc)),
            NumberColumn::Date(c) => out.extend(c.values_for_doc(doc).map(|d| d.into_timestamp_millis() as f64)),
        }
    }
}

/// The text column of a field in a segment (every scalar value as pushed, and the standard `title`, `source`
/// and `filetype`); `None` when no item of the segment has a value.
pub fn text_column(segment: &SegmentReader, name: &str) -> Option<StrColumn> {
    let path = format!("meta_typed.{FACET_STRINGS}.{}", standard_name(name));
    segment.fast_fields().str(&path).ok().flatten()
}
