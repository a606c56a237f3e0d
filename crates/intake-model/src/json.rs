//! A strict JSON tree: like `serde_json::Value`, but a repeated key is an error at any depth.
//!
//! Coveo matches body keys case-insensitively, so `title` and `Title` in one object are the same key twice.
//! `serde_json::Value` would silently keep the last one; [`parse`] refuses it and says where, for example
//! `duplicate key 'Title' in permissions[0] (keys are case-insensitive: it repeats 'title') at line 1 column 58`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// A JSON value whose objects keep their keys in order and never repeat one (ignoring case).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON type's name, for messages such as "'data' must be a string, not a number".
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The value of `key` in an object, matched ignoring case.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The value as compact JSON text, as a client wrote it (for messages that quote it).
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => write!(f, "{n}"),
            Json::String(s) => f.write_str(&serde_json::to_string(s).map_err(|_| fmt::Error)?),
            Json::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Json::Object(entries) => {
                f.write_char('{')?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{}:{value}", serde_json::to_string(key).map_err(|_| fmt::Error)?)?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Where a value sits in the document, e.g. `permissions[0].allowedPermissions[2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn key(&self, key: &str) -> JsonPath {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.to_string()));
        next
    }

    pub fn index(&self, index: usize) -> JsonPath {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the top-level object");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Parses a whole JSON text strictly: one value, nothing after it but whitespace, no repeated key.
///
/// The error text is serde_json's, which ends with the line and column of the fault.
pub fn parse(bytes: &[u8]) -> Result<Json, serde_json::Error> {
    let path = RefCell::new(JsonPath::default());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { path: &path }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Parses one JSON value from a deserializer strictly; used by streaming batch readers.
pub fn parse_value<'de, D: de::Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
    let path = RefCell::new(JsonPath::default());
    StrictSeed { path: &path }.deserialize(deserializer)
}

/// Parses one value strictly, reporting locations from `path` on (the elements of a streamed batch).
pub struct StrictSeedAt {
    path: JsonPath,
}

impl StrictSeedAt {
    pub fn new(path: JsonPath) -> StrictSeedAt {
        StrictSeedAt { path }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeedAt {
    type Value = Json;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        let path = RefCell::new(self.path);
        StrictSeed { path: &path }.deserialize(deserializer)
    }
}

/// Builds a [`Json`] while tracking the path, so a duplicate key can be reported with its location.
struct StrictSeed<'p> {
    path: &'p RefCell<JsonPath>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Json;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v).map(Json::Number).ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            let here = self.path.borrow().index(items.len());
            let parent = self.path.replace(here);
            let next = seq.next_element_seed(StrictSeed { path: self.path });
            self.path.replace(parent);
            match next? {
                Some(item) => items.push(item),
                None => return Ok(Json::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_lowercase()) {
                return Err(de::Error::custom(duplicate_key_message(&key, &entries, &self.path.borrow())));
            }
            let here = self.path.borrow().key(&key);
            let parent = self.path.replace(here);
            let value = map.next_value_seed(StrictSeed { path: self.path });
            self.path.replace(parent);
            entries.push((key, value?));
        }
        Ok(Json::Object(entries))
    }
}

fn duplicate_key_message(key: &str, earlier: &[(String, Json)], path: &JsonPath) -> String {
    let first = earlier.iter().map(|(k, _)| k.as_str()).find(|k| k.to_lowercase() == key.to_lowercase()).unwrap_or(key);
    let mut message = format!("duplicate key '{key}' in {path}");
    if first != key {
        let _ = write!(message, " (keys are case-insensitive: it repeats '{first}')");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_values() {
        let value = parse(br#"{"b": 1, "a": [true, null, "x"], "c": {"d": 1.5}}"#).unwrap();
        let Json::Object(entries) = &value else { panic!() };
        assert_eq!(entries[0].0, "b");
        assert_eq!(value.get("A"), Some(&Json::Array(vec![Json::Bool(true), Json::Null, Json::String("x".into())])));
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth_ignoring_case() {
        let top = parse(br#"{"title": "a", "Title": "b"}"#).unwrap_err().to_string();
        assert!(top.contains("duplicate key 'Title' in the top-level object"), "{top}");
        assert!(top.contains("repeats 'title'"), "{top}");
        let deep =
            parse(br#"{"permissions": [{"allowAnonymous": true, "ALLOWANONYMOUS": false}]}"#).unwrap_err().to_string();
        assert!(deep.contains("in permissions[0]"), "{deep}");
        assert!(deep.contains("line 1"), "{deep}");
    }

    #[test]
    fn refuses_trailing_garbage() {
        let err = parse(br#"{"a": 1} x"#).unwrap_err().to_string();
        assert!(err.contains("trailing characters"), "{err}");
    }
}
