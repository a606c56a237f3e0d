//! The item body (`DocumentBody`): validated into an [`Item`] that the journal stores and the applier indexes.
//!
//! Keys are matched ignoring case. The reserved keys (`data`, `compressedBinaryData`, `permissions`, …) are
//! the model's; every other key is metadata whose value is a string, number, boolean, an array of those, or a
//! dictionary (an object whose values are any of those, as Coveo's dictionary fields). Anything else is answered
//! INVALID_JSON with the key and what was wrong with it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::compression::CompressionType;
use crate::error::{ApiError, ErrorCode};
use crate::json::{Json, JsonPath};
use crate::permissions::{PermissionLevel, parse_permissions};
use crate::{json, limits, query};

/// A validated item, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub document_id: String,
    pub content: Content,
    /// With its leading dot, e.g. `.html`.
    pub file_extension: Option<String>,
    pub parent_id: Option<String>,
    pub permissions: Vec<PermissionLevel>,
    /// Lower-cased keys, in the order they came.
    pub metadata: Vec<(String, MetaValue)>,
}

/// Where the item's data is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Content {
    /// `data`: raw text.
    Text(String),
    /// `compressedBinaryData`, Base64-decoded, still compressed.
    Compressed {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        compression: CompressionType,
    },
    /// `compressedBinaryDataFileId`: raw bytes in a file container.
    FileContainer { file_id: String, compression: CompressionType },
}

/// A metadata value: a primitive, an array of primitives, or a dictionary of those by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MetaValue {
    One(Scalar),
    Many(Vec<Scalar>),
    /// A dictionary field (`{"store1": 5, "store2": [1, 2]}`): its values are never dictionaries themselves.
    Dict(BTreeMap<String, MetaValue>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    /// The value as the text a field query matches (`3`, `true`, `news`).
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Text(s) => serde_json::Value::String(s.clone()),
            Scalar::Integer(i) => (*i).into(),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Scalar::Bool(b) => (*b).into(),
        }
    }
}

impl MetaValue {
    /// The value's primitives; none for a dictionary (its values are by key).
    pub fn scalars(&self) -> &[Scalar] {
        match self {
            MetaValue::One(scalar) => std::slice::from_ref(scalar),
            MetaValue::Many(list) => list,
            MetaValue::Dict(_) => &[],
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MetaValue::One(scalar) => scalar.to_json(),
            MetaValue::Many(list) => list.iter().map(Scalar::to_json).collect(),
            MetaValue::Dict(entries) => entries.iter().map(|(key, value)| (key.clone(), value.to_json())).collect(),
        }
    }

    /// The value as `to_json` wrote it (read back from the index); `None` for `null` or anything else that is not
    /// a metadata value.
    pub fn from_stored(value: &serde_json::Value) -> Option<MetaValue> {
        use serde_json::Value;
        let scalar = |value: &Value| match value {
            Value::String(s) => Some(Scalar::Text(s.clone())),
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::Number(n) => {
                Some(n.as_i64().map_or_else(|| Scalar::Float(n.as_f64().unwrap_or(0.0)), Scalar::Integer))
            }
            _ => None,
        };
        match value {
            Value::Array(items) => Some(MetaValue::Many(items.iter().filter_map(scalar).collect())),
            Value::Object(entries) => Some(MetaValue::Dict(
                entries
                    .iter()
                    .filter_map(|(key, value)| match value {
                        Value::Object(_) => None,
                        value => MetaValue::from_stored(value).map(|v| (key.clone(), v)),
                    })
                    .collect(),
            )),
            value => scalar(value).map(MetaValue::One),
        }
    }

    /// A short name of the value's shape, for messages ("a single value", "an array", "a dictionary").
    pub fn shape(&self) -> &'static str {
        match self {
            MetaValue::One(_) => "a single value",
            MetaValue::Many(_) => "an array",
            MetaValue::Dict(_) => "a dictionary",
        }
    }
}

impl Item {
    /// A metadata value by key, ignoring case.
    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
    }

    /// The first text of a metadata value by key, e.g. `title`.
    pub fn meta_text(&self, key: &str) -> Option<String> {
        self.meta(key).and_then(|v| v.scalars().first()).map(Scalar::to_text)
    }
}

/// What the request supplies beside the body: a single PUT takes these from the query string, a batch item
/// from its own body.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItemContext<'a> {
    /// The `documentId` query parameter; when absent the body must carry `documentId`.
    pub document_id: Option<&'a str>,
    /// The `compressionType` query parameter; it wins over the body's.
    pub compression: Option<CompressionType>,
}

/// Keys of the model itself (lower case); never metadata. `compressedbinarydataid` is the docs' own
/// misspelling, reserved so it never turns into a field.
pub(crate) const RESERVED: &[&str] = &[
    "data",
    "compressedbinarydata",
    "compressedbinarydatafileid",
    "compressedbinarydataid",
    "compressiontype",
    "documentid",
    "fileextension",
    "orderingid",
    "parentid",
    "permissions",
];

/// Parses and validates a single item body.
pub fn parse_item(body: &[u8], context: ItemContext<'_>) -> Result<Item, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::MissingParameter,
            "Parameter 'documentBody' is missing: the request has no body. Send the item as a JSON object.",
        ));
    }
    let value = json::parse(body).map_err(|e| ApiError::invalid_json(format!("The body is not valid JSON: {e}.")))?;
    item_from_json(value, context, &JsonPath::default())
}

/// Validates one item given as a JSON tree (a single body, or an element of a batch at `at`).
pub fn item_from_json(value: Json, context: ItemContext<'_>, at: &JsonPath) -> Result<Item, ApiError> {
    let Json::Object(entries) = value else {
        return Err(ApiError::invalid_json(format!("The item must be a JSON object, not {}.", value.kind())));
    };
    let mut fields = ItemFields::default();
    let mut metadata = Vec::new();
    for (key, value) in entries {
        let lower = key.to_lowercase();
        if RESERVED.contains(&lower.as_str()) {
            fields.take(&lower, &key, value, at)?;
        } else {
            if let Some(meta) = meta_value(value, &key, at)? {
                metadata.push((lower, meta));
            }
        }
    }
    fields.into_item(context, metadata, at)
}

/// The reserved keys of one body, as found.
#[derive(Default)]
struct ItemFields {
    data: Option<String>,
    compressed: Option<String>,
    file_id: Option<String>,
    compression: Option<CompressionType>,
    document_id: Option<String>,
    file_extension: Option<String>,
    parent_id: Option<String>,
    permissions: Vec<PermissionLevel>,
}

impl ItemFields {
    fn take(&mut self, lower: &str, key: &str, value: Json, at: &JsonPath) -> Result<(), ApiError> {
        let path = at.key(key);
        match lower {
            "data" => self.data = Some(string(value, &path)?),
            "compressedbinarydata" => self.compressed = Some(string(value, &path)?),
            "compressedbinarydatafileid" => self.file_id = Some(string(value, &path)?),
            "compressiontype" => {
                let text = string(value, &path)?;
                let parsed = CompressionType::parse(&text).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "compressionType",
                        &text,
                        &format!("allowed values are {}", CompressionType::ALLOWED),
                    )
                })?;
                self.compression = Some(parsed);
            }
            "documentid" => self.document_id = Some(string(value, &path)?),
            "fileextension" => self.file_extension = Some(file_extension(string(value, &path)?)),
            "parentid" => self.parent_id = Some(string(value, &path)?),
            "permissions" => self.permissions = parse_permissions(value, &path)?,
            // `orderingId` and the misspelt `compressedBinaryDataId` are reserved but carry nothing here.
            _ => {}
        }
        Ok(())
    }

    fn into_item(
        self,
        context: ItemContext<'_>,
        metadata: Vec<(String, MetaValue)>,
        at: &JsonPath,
    ) -> Result<Item, ApiError> {
        let document_id = match (context.document_id, self.document_id) {
            (Some(id), _) => id.to_string(),
            (None, Some(id)) => {
                query::check_document_id(&id).map_err(|why| {
                    ApiError::invalid_json(format!("'documentId' in {at} is not a valid document id: {why}."))
                })?;
                id
            }
            (None, None) => {
                return Err(ApiError::invalid_json(format!("{} has no 'documentId'.", subject(at))));
            }
        };
        let compression = context.compression.or(self.compression);
        let content = match (self.data, self.compressed, self.file_id) {
            (Some(data), None, None) => {
                check_inline_size("data", data.len())?;
                Content::Text(data)
            }
            (None, Some(encoded), None) => {
                check_inline_size("compressedBinaryData", encoded.len())?;
                let bytes = decode_base64(&encoded, at)?;
                Content::Compressed { bytes, compression: compression.unwrap_or(CompressionType::DEFAULT) }
            }
            (None, None, Some(file_id)) => {
                Content::FileContainer { file_id, compression: compression.unwrap_or(CompressionType::DEFAULT) }
            }
            (None, None, None) => {
                return Err(ApiError::invalid_json(format!(
                    "{} has no item data: it needs one of 'data' (uncompressed text), 'compressedBinaryData' \
                     (Base64, at most 5 MiB) or 'compressedBinaryDataFileId' (a file container).",
                    subject(at)
                )));
            }
            (data, compressed, file_id) => {
                let present: Vec<&str> = [
                    data.map(|_| "'data'"),
                    compressed.map(|_| "'compressedBinaryData'"),
                    file_id.map(|_| "'compressedBinaryDataFileId'"),
                ]
                .into_iter()
                .flatten()
                .collect();
                return Err(ApiError::invalid_json(format!(
                    "{} has {}: an item takes exactly one of them.",
                    subject(at),
                    present.join(" and ")
                )));
            }
        };
        Ok(Item {
            document_id,
            content,
            file_extension: self.file_extension,
            parent_id: self.parent_id,
            permissions: self.permissions,
            metadata,
        })
    }
}

/// "the item body" for a single PUT, "the item at addOrUpdate[3]" in a batch.
fn describe(at: &JsonPath) -> String {
    if at.is_root() { "the item body".to_string() } else { format!("the item at {at}") }
}

/// [`describe`] at the start of a sentence.
fn subject(at: &JsonPath) -> String {
    let text = describe(at);
    text[..1].to_uppercase() + &text[1..]
}

/// `html` and `.html` both mean `.html`; Coveo documents the dot, clients forget it.
fn file_extension(value: String) -> String {
    if value.starts_with('.') || value.is_empty() { value } else { format!(".{value}") }
}

fn check_inline_size(key: &str, size: usize) -> Result<(), ApiError> {
    if size as u64 > limits::MAX_INLINE_DATA_BYTES {
        return Err(ApiError::too_large(
            &format!("'{key}'"),
            size as u64,
            limits::MAX_INLINE_DATA_BYTES,
            "Push larger items through a file container and 'compressedBinaryDataFileId'.",
        ));
    }
    Ok(())
}

/// Standard Base64, padding optional, line breaks tolerated (some encoders wrap at 76 columns).
fn decode_base64(encoded: &str, at: &JsonPath) -> Result<Vec<u8>, ApiError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact;
    let text = if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = encoded.split_ascii_whitespace().collect::<String>();
        compact.as_str()
    } else {
        encoded
    };
    // Offsets in messages refer to the text as sent, line breaks included.
    let original_offset = |compact_offset: usize| {
        encoded
            .char_indices()
            .filter(|(_, c)| !c.is_ascii_whitespace())
            .nth(compact_offset)
            .map_or(compact_offset, |(i, _)| i)
    };
    LENIENT.decode(text).map_err(|e| {
        let detail = match e {
            base64::DecodeError::InvalidByte(offset, byte) => format!(
                "the character {:?} at offset {} is not in the Base64 alphabet",
                byte as char,
                original_offset(offset)
            ),
            base64::DecodeError::InvalidLength(length) => {
                format!("its length ({length} characters) is not valid Base64")
            }
            base64::DecodeError::InvalidLastSymbol(offset, _) => {
                format!("the last symbol at offset {} is not valid", original_offset(offset))
            }
            base64::DecodeError::InvalidPadding => "its padding is wrong".to_string(),
        };
        ApiError::invalid_json(format!("'compressedBinaryData' of {} is not Base64: {detail}.", describe(at)))
    })
}

fn string(value: Json, path: &JsonPath) -> Result<String, ApiError> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(ApiError::invalid_json(format!("'{path}' must be a string, not {}.", other.kind()))),
    }
}

/// A metadata value; `null` (alone or in an array) means no value and is dropped.
fn meta_value(value: Json, key: &str, at: &JsonPath) -> Result<Option<MetaValue>, ApiError> {
    meta_from_json(value, &at.key(key), true)
}

/// A metadata value at `path` (of an item, or of a partial update); with `dictionary`, an object is a dictionary
/// of values (not of dictionaries).
pub fn meta_from_json(value: Json, path: &JsonPath, dictionary: bool) -> Result<Option<MetaValue>, ApiError> {
    match value {
        Json::Null => Ok(None),
        Json::Array(items) => {
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Json::Null => {}
                    Json::Array(_) | Json::Object(_) => {
                        return Err(ApiError::invalid_json(format!(
                            "Metadata '{}' holds {} at index {i}: an array value may only hold strings, numbers and booleans.",
                            path,
                            item.kind()
                        )));
                    }
                    scalar => list.extend(scalar_value(scalar)),
                }
            }
            Ok(Some(MetaValue::Many(list)))
        }
        Json::Object(entries) if dictionary => {
            let mut dict = BTreeMap::new();
            for (key, value) in entries {
                if let Some(value) = meta_from_json(value, &path.key(&key), false)? {
                    dict.insert(key, value);
                }
            }
            Ok(Some(MetaValue::Dict(dict)))
        }
        Json::Object(_) => Err(ApiError::invalid_json(format!(
            "Metadata '{path}' is an object inside a dictionary: a dictionary's values are strings, numbers, booleans, \
             or arrays of those."
        ))),
        scalar => Ok(scalar_value(scalar).map(MetaValue::One)),
    }
}

fn scalar_value(value: Json) -> Option<Scalar> {
    match value {
        Json::String(s) => Some(Scalar::Text(s)),
        Json::Bool(b) => Some(Scalar::Bool(b)),
        Json::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Scalar::Integer(i),
            // Beyond i64 (a u64) keep the exact digits rather than round through f64.
            (None, _) if n.is_u64() => Scalar::Text(n.to_string()),
            (None, Some(f)) => Scalar::Float(f),
            (None, None) => Scalar::Text(n.to_string()),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::IdentityType;

    fn single(body: &str) -> Result<Item, ApiError> {
        parse_item(body.as_bytes(), ItemContext { document_id: Some("file://a"), compression: None })
    }

    #[test]
    fn parses_the_node_sdk_body() {
        let item = single(
            r#"{"permanentid":"eb95","title":"Acceptance doc","data":"<html><body>hello push api</body></html>",
            "author":"alice","clickableUri":"https://example.com/click/1","fileExtension":".html",
            "date":"2024-01-02T03:04:05.000Z","category":"news","tags":["a","b"],"rank":3,
            "permissions":[{"allowAnonymous":false,
              "allowedPermissions":[{"identityType":"User","identity":"alice@example.com","securityProvider":"Email Security Provider"}],
              "deniedPermissions":[{"identityType":"Group","identity":"contractors","securityProvider":"acceptance-provider"}]}],
            "documentId":"file:///cwd/other"}"#,
        )
        .unwrap();
        assert_eq!(item.document_id, "file://a", "the query's documentId wins");
        assert_eq!(item.content, Content::Text("<html><body>hello push api</body></html>".into()));
        assert_eq!(
            item.meta("clickableuri"),
            Some(&MetaValue::One(Scalar::Text("https://example.com/click/1".into())))
        );
        assert_eq!(item.meta("rank"), Some(&MetaValue::One(Scalar::Integer(3))));
        assert_eq!(item.meta("tags").unwrap().scalars().len(), 2);
        assert_eq!(item.permissions.len(), 1);
        assert_eq!(item.permissions[0].sets[0].allowed[0].identity_type, IdentityType::User);
        assert!(item.meta("documentid").is_none() && item.meta("data").is_none());
    }

    #[test]
    fn an_object_is_a_dictionary_field() {
        let item = single(r#"{"data":"x","price":{"store1":5,"store2":[1.5,null],"gone":null}}"#).unwrap();
        let MetaValue::Dict(dict) = item.meta("price").unwrap() else { panic!("not a dictionary") };
        assert_eq!(dict.get("store1"), Some(&MetaValue::One(Scalar::Integer(5))));
        assert_eq!(dict.get("store2"), Some(&MetaValue::Many(vec![Scalar::Float(1.5)])));
        assert!(!dict.contains_key("gone"));
        let stored = item.meta("price").unwrap().to_json();
        assert_eq!(MetaValue::from_stored(&stored).as_ref(), item.meta("price"));
    }

    #[test]
    fn reserved_keys_match_any_case() {
        let item = single(r#"{"Data":"x","FileExtension":"txt","ParentId":"file://p"}"#).unwrap();
        assert_eq!(item.content, Content::Text("x".into()));
        assert_eq!(item.file_extension.as_deref(), Some(".txt"));
        assert_eq!(item.parent_id.as_deref(), Some("file://p"));
    }

    #[test]
    fn decodes_compressed_binary_data() {
        let item = single(r#"{"compressedBinaryData":"aGVsbG8=","compressionType":"UNCOMPRESSED"}"#).unwrap();
        assert_eq!(
            item.content,
            Content::Compressed { bytes: b"hello".to_vec(), compression: CompressionType::Uncompressed }
        );
        let item = single(r#"{"compressedBinaryData":"aGVs\nbG8"}"#).unwrap();
        assert_eq!(item.content, Content::Compressed { bytes: b"hello".to_vec(), compression: CompressionType::Zlib });
    }

    #[test]
    fn explains_each_body_mistake() {
        let cases = [
            (r#"{"title":"a"}"#, "has no item data"),
            (r#"{"data":"a","compressedBinaryData":"aGk="}"#, "has 'data' and 'compressedBinaryData'"),
            (r#"{"data":"a","meta":{"x":{"y":1}}}"#, "Metadata 'meta.x' is an object inside a dictionary"),
            (r#"{"data":"a","meta":[1,[2]]}"#, "Metadata 'meta' holds an array at index 1"),
            (r#"{"compressedBinaryData":"***"}"#, "is not Base64: the character '*' at offset 0"),
            (r#"{"data":5}"#, "'data' must be a string, not a number"),
            (r#"{"data":"a","title":"x","TITLE":"y"}"#, "duplicate key 'TITLE'"),
            (r#"["data"]"#, "must be a JSON object, not an array"),
            (r#"{"data":"a"} trailing"#, "trailing characters"),
        ];
        for (body, expected) in cases {
            let err = single(body).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidJson, "{body}");
            assert!(err.message.contains(expected), "{body}: {}", err.message);
        }
    }

    #[test]
    fn unknown_compression_type_is_an_invalid_parameter() {
        let err = single(r#"{"compressedBinaryData":"aGk=","compressionType":"BZIP2"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParameter);
        assert!(err.message.contains("UNCOMPRESSED, DEFLATE, GZIP, LZMA, ZLIB"), "{}", err.message);
    }

    #[test]
    fn inline_data_is_limited_to_5_mib() {
        let at_limit = format!(r#"{{"data":"{}"}}"#, "a".repeat(5 * 1024 * 1024));
        assert!(single(&at_limit).is_ok());
        let over = format!(r#"{{"data":"{}"}}"#, "a".repeat(5 * 1024 * 1024 + 1));
        let err = single(&over).unwrap_err();
        assert_eq!(err.code, ErrorCode::RequestEntityTooLarge);
        assert!(err.message.contains("5242881") && err.message.contains("5 MiB"), "{}", err.message);
    }

    #[test]
    fn batch_items_need_their_own_document_id() {
        let value = json::parse(br#"{"data":"x"}"#).unwrap();
        let err = item_from_json(value, ItemContext::default(), &JsonPath::default().key("addOrUpdate").index(3))
            .unwrap_err();
        assert!(err.message.contains("addOrUpdate[3] has no 'documentId'"), "{}", err.message);
    }
}
