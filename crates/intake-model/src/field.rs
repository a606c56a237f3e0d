//! Declared index fields (Coveo's Platform field API): a name and a type. A declared field gives pushed
//! metadata of that name its type in the index, so range and date queries work on it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldType {
    String,
    Long,
    Long64,
    Double,
    Date,
}

impl FieldType {
    pub const ALLOWED: &'static str = "STRING, LONG, LONG_64, DOUBLE, DATE";

    pub fn parse(value: &str) -> Option<FieldType> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "STRING" => FieldType::String,
            "LONG" => FieldType::Long,
            "LONG_64" | "LONG64" => FieldType::Long64,
            "DOUBLE" => FieldType::Double,
            "DATE" => FieldType::Date,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "STRING",
            FieldType::Long => "LONG",
            FieldType::Long64 => "LONG_64",
            FieldType::Double => "DOUBLE",
            FieldType::Date => "DATE",
        }
    }

    /// Whether values of this type are numbers in the index (and so compare by range).
    pub fn is_numeric(self) -> bool {
        !matches!(self, FieldType::String)
    }
}

/// A field name as Coveo accepts it: lower-case letters, digits and underscores, starting with a letter.
pub fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert!(valid_field_name("rank") && valid_field_name("my_field2"));
        assert!(
            !valid_field_name("Rank") && !valid_field_name("2x") && !valid_field_name("a-b") && !valid_field_name("")
        );
        assert_eq!(FieldType::parse("long_64"), Some(FieldType::Long64));
        assert_eq!(FieldType::parse("TEXT"), None);
    }
}
