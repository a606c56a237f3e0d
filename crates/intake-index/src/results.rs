//! One result as Coveo's Search API answers it: the stored item read back into `raw` with the standard fields,
//! `firstSentences`, and its query-biased excerpt ([`crate::excerpt`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use tantivy::DocAddress;
use tantivy::schema::document::{DeserializeError, DocumentDeserialize, DocumentDeserializer};
use tantivy::schema::{Field, OwnedValue, Value as _};

pub use crate::excerpt::{Excerpts, Highlight};
use crate::schema::Fields;

/// The longest excerpt by default (`excerptLength`), in characters.
pub const EXCERPT_CHARS: usize = 200;
/// The longest `excerptLength` accepted.
pub const MAX_EXCERPT_CHARS: usize = 2_000;
/// The most characters of a result's `firstSentences`.
pub const FIRST_SENTENCES_CHARS: usize = 300;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub title: String,
    pub uri: String,
    pub printable_uri: String,
    pub click_uri: String,
    pub unique_id: String,
    pub excerpt: String,
    pub excerpt_highlights: Vec<Highlight>,
    /// The first sentences of the item's text (at most [`FIRST_SENTENCES_CHARS`] characters).
    pub first_sentences: String,
    pub score: f32,
    /// Shared with the cached document it comes from ([`ResultBase`]): copied only by a caller that changes it.
    #[serde(serialize_with = "serialize_shared")]
    pub raw: Arc<Raw>,
}

/// Serializes a shared value as the value itself.
pub fn serialize_shared<T: Serialize, S: serde::Serializer>(value: &Arc<T>, serializer: S) -> Result<S::Ok, S::Error> {
    value.as_ref().serialize(serializer)
}

/// A result's `raw`: the item's fields as a map, and the JSON it serializes to, written once when it is built —
/// so an answer that shows a cached document's `raw` whole copies its bytes instead of escaping every string again.
#[derive(Debug)]
pub struct Raw {
    fields: Map<String, Value>,
    json: Box<RawValue>,
}

impl Raw {
    pub fn new(fields: Map<String, Value>) -> Raw {
        // A map of JSON values always serializes (the default, `null`, only keeps this free of a panic).
        let json = serde_json::value::to_raw_value(&fields).unwrap_or_default();
        Raw { fields, json }
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// Only the fields named in `names` (`fieldsToInclude`).
    pub fn only(&self, names: &HashSet<String>) -> Raw {
        Raw::new(
            self.fields.iter().filter(|(name, _)| names.contains(*name)).map(|(n, v)| (n.clone(), v.clone())).collect(),
        )
    }
}

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

/// What a result shows of an item whatever the query: built once per document read ([`StoredResult::base`]), so
/// a document the cache serves again does not rebuild it.
#[derive(Debug)]
pub struct ResultBase {
    pub title: String,
    pub uri: String,
    pub click_uri: String,
    pub unique_id: String,
    pub first_sentences: String,
    /// The item's metadata with the standard fields and Coveo's content ids.
    pub raw: Arc<Raw>,
}

/// A stored document as a result reads it: its values as they come out of the document store, moved, not copied
/// again into a `TantivyDocument` (whose compact form would copy the 64 KiB text head once more).
pub struct StoredResult {
    values: Vec<(Field, OwnedValue)>,
    base: OnceLock<Arc<ResultBase>>,
}

impl DocumentDeserialize for StoredResult {
    fn deserialize<'de, D: DocumentDeserializer<'de>>(mut deserializer: D) -> Result<StoredResult, DeserializeError> {
        let mut values = Vec::with_capacity(deserializer.size_hint());
        while let Some(value) = deserializer.next_field::<OwnedValue>()? {
            values.push(value);
        }
        Ok(StoredResult { values, base: OnceLock::new() })
    }
}

impl StoredResult {
    /// The values of `field`, in the order they were stored.
    fn get_all(&self, field: Field) -> impl Iterator<Item = &OwnedValue> {
        self.values.iter().filter(move |(f, _)| *f == field).map(|(_, value)| value)
    }

    fn get_first(&self, field: Field) -> Option<&OwnedValue> {
        self.get_all(field).next()
    }

    /// What the document weighs (its text and byte values).
    pub fn stored_bytes(&self) -> usize {
        self.values
            .iter()
            .map(|(_, value)| value.as_str().map(str::len).or_else(|| value.as_bytes().map(<[u8]>::len)).unwrap_or(8))
            .sum()
    }

    /// What the document may hold in memory once its results were built: its values, and its [`ResultBase`] —
    /// the metadata parsed again as `raw` and written again as its JSON (each about as large as the stored JSON)
    /// and a few short strings.
    pub fn held_bytes(&self) -> usize {
        let bytes_values: usize = self.values.iter().filter_map(|(_, value)| value.as_bytes()).map(<[u8]>::len).sum();
        self.stored_bytes() + 2 * bytes_values + 1024
    }
}

/// The result for the stored document `doc` found at `address`.
pub fn hit(fields: &Fields, doc: &StoredResult, address: DocAddress, score: f32, excerpts: &Excerpts) -> SearchHit {
    let base = doc.base(fields);
    let (excerpt, excerpt_highlights) = excerpts.excerpt(address, doc.text(fields), doc.marks(fields));
    SearchHit {
        title: base.title.clone(),
        uri: base.uri.clone(),
        printable_uri: base.uri.clone(),
        click_uri: base.click_uri.clone(),
        unique_id: base.unique_id.clone(),
        excerpt,
        excerpt_highlights,
        first_sentences: base.first_sentences.clone(),
        score,
        raw: base.raw.clone(),
    }
}

impl StoredResult {
    /// The stored text (the first value of `text_head`).
    fn text(&self, fields: &Fields) -> &str {
        self.get_first(fields.text_head).and_then(|v| v.as_str()).unwrap_or_default()
    }

    /// The marks stored after the text (see `Fields::text_head`), if any.
    fn marks(&self, fields: &Fields) -> Option<&str> {
        self.get_all(fields.text_head).filter_map(|v| v.as_str()).nth(1)
    }

    /// The query-independent part of the document's results, built on first use.
    pub fn base(&self, fields: &Fields) -> Arc<ResultBase> {
        self.base.get_or_init(|| Arc::new(self.build_base(fields))).clone()
    }

    fn build_base(&self, fields: &Fields) -> ResultBase {
        let text = |field: Field| self.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let uri = text(fields.uri);
        let title = text(fields.title);
        let mut raw: Map<String, Value> = self
            .get_first(fields.meta)
            .and_then(|v| v.as_bytes())
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        let date_ms = self.get_first(fields.date).and_then(|v| v.as_datetime()).map(|d| d.into_timestamp_millis());
        let click_uri =
            raw.get("clickableuri").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| uri.clone());
        let standard = [
            ("uri", Value::from(uri.clone())),
            ("sysuri", Value::from(uri.clone())),
            ("clickableuri", Value::from(click_uri.clone())),
            ("title", Value::from(title.clone())),
            ("systitle", Value::from(title.clone())),
            ("source", Value::from(text(fields.source_name))),
            ("syssource", Value::from(text(fields.source_name))),
            ("sourcetype", Value::from("Push")),
            ("filetype", Value::from(text(fields.filetype))),
            ("sysfiletype", Value::from(text(fields.filetype))),
            ("date", date_ms.map_or(Value::Null, Value::from)),
            ("sysdate", date_ms.map_or(Value::Null, Value::from)),
            ("size", self.get_first(fields.size).and_then(|v| v.as_u64()).map_or(Value::Null, Value::from)),
            (
                "indexeddate",
                self.get_first(fields.indexed_at).and_then(|v| v.as_i64()).map_or(Value::Null, Value::from),
            ),
            ("collection", Value::from("default")),
        ];
        // The standard fields win over metadata of the same name, as Coveo maps `date` to `@date` (epoch ms).
        for (key, value) in standard {
            raw.insert(key.to_string(), value);
        }
        // Coveo's content ids, which Headless and Atomic read (and warn without): stable hashes of the item's URI.
        let digest = Sha256::digest(uri.as_bytes());
        raw.insert("permanentid".to_string(), Value::from(hex::encode(digest)));
        raw.insert("urihash".to_string(), Value::from(URL_SAFE_NO_PAD.encode(&digest[..12])));
        if let Some(parent) = self.get_first(fields.parent_id).and_then(|v| v.as_str()) {
            raw.insert("parentid".to_string(), Value::from(parent));
        }
        ResultBase {
            unique_id: format!("42.{}${uri}", text(fields.source)),
            first_sentences: first_sentences(self.text(fields)),
            title,
            click_uri,
            uri,
            raw: Arc::new(Raw::new(raw)),
        }
    }
}

/// The first two sentences of a text (a sentence ends with `.`, `!` or `?` and a space), within
/// [`FIRST_SENTENCES_CHARS`] characters; a text without such an end is cut at a word.
fn first_sentences(text: &str) -> String {
    let text = text.trim_start();
    let limit = text.char_indices().nth(FIRST_SENTENCES_CHARS).map_or(text.len(), |(i, _)| i);
    let window = &text[..limit];
    let ends: Vec<usize> = window
        .char_indices()
        .filter(|(i, c)| {
            // A sentence's end is ASCII: the next byte starts a character.
            matches!(c, '.' | '!' | '?') && window[i + 1..].chars().next().is_none_or(char::is_whitespace)
        })
        .map(|(i, _)| i + 1)
        .take(2)
        .collect();
    let cut = match ends.last() {
        Some(end) => *end,
        None if limit == text.len() => limit,
        None => window.rfind(char::is_whitespace).unwrap_or(limit),
    };
    window[..cut].trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentences_are_two_sentences_or_a_cut_at_a_word() {
        assert_eq!(first_sentences("One. Two! Three? Four."), "One. Two!");
        assert_eq!(first_sentences("  v1.2 is out. It is faster."), "v1.2 is out. It is faster.");
        assert_eq!(first_sentences("no end at all"), "no end at all");
        assert_eq!(first_sentences("Café ’quoted’ © 2022. Zoë’s “text”! More."), "Café ’quoted’ © 2022. Zoë’s “text”!");
        let wide = "é".repeat(400);
        assert_eq!(first_sentences(&wide).chars().count(), FIRST_SENTENCES_CHARS, "cut at a character");
        let long = "word ".repeat(100);
        let cut = first_sentences(&long);
        assert!(cut.len() <= FIRST_SENTENCES_CHARS && cut.ends_with("word"), "{cut}");
    }

    #[test]
    fn raw_is_written_as_its_fields_serialize() {
        let fields: Map<String, Value> =
            serde_json::from_str(r#"{"title":"Tab\there \"quoted\"","size":12,"tags":["a","é"],"none":null}"#).unwrap();
        let raw = Raw::new(fields.clone());
        assert_eq!(serde_json::to_string(&raw).unwrap(), serde_json::to_string(&fields).unwrap());
        let inside = serde_json::to_value(serde_json::json!({"raw": serde_json::to_value(&raw).unwrap()})).unwrap();
        assert_eq!(inside["raw"]["tags"][1], "é");
        let names: HashSet<String> = ["size".to_string(), "tags".to_string(), "absent".to_string()].into();
        let only = raw.only(&names);
        assert_eq!(serde_json::to_string(&only).unwrap(), r#"{"size":12,"tags":["a","é"]}"#);
        assert_eq!(only.fields().len(), 2);
    }
}
