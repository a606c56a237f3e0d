//! Turning a journaled item into a tantivy document: decode, decompress (capped), extract text, pick the
//! title, date and file type. Pure CPU work with no shared state, so the applier runs it in parallel.

use intake_model::FieldType;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use intake_model::compression;
use intake_model::item::{Content, Item, MetaValue, Scalar};
use intake_model::logs::LogResult;
use intake_model::{OrderingId, limits};
use serde_json::{Map, Value};
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, TantivyDocument};

use crate::convert::Budget;
use crate::extract::{ContentKind, content_kind, extract};
use crate::schema::{
    FACET_STRINGS, Fields, MAX_FACET_VALUE_BYTES, MAX_FACET_VALUES, STANDARD_NUMBERS, TEXT_HEAD_BYTES, item_key,
};
use crate::security::IdentityGraph;
use intake_model::dates::parse_date_ms;
use intake_model::permissions::{PermissionLevel, PermissionSet};

/// Where an item goes and what it is, besides its body.
#[derive(Debug, Clone)]
pub struct ItemTarget<'a> {
    pub organization_id: &'a str,
    pub source_id: &'a str,
    pub source_name: &'a str,
    pub ordering_id: OrderingId,
    /// Epoch milliseconds of acceptance: the item's date when it has none.
    pub accepted_at_ms: i64,
    pub now_ms: i64,
    /// The most bytes the item's data may expand to ([`limits::MAX_ITEM_DECOMPRESSED_BYTES`] by default).
    pub max_item_bytes: u64,
    /// The bounds of converting the item's document to text (time, expanded bytes).
    pub conversion: Budget,
    /// The organization's declared fields: metadata of a numeric or date field is also indexed typed.
    pub field_types: &'a FieldTypes,
    /// Where `compressedBinaryDataFileId` content is read from.
    pub containers: &'a dyn ContainerReader,
    /// The provider of the item's permissions that name none: the source's.
    pub default_provider: &'a str,
    /// The source is not public (SECURED or PRIVATE): an item without permissions is visible to nobody.
    pub secured: bool,
    /// The organization's identities: permissions naming identities never pushed are worth a warning.
    pub identities: Option<&'a IdentityGraph>,
    /// The source is a catalog: its items' whole text is stored, so partial updates and merges can re-index
    /// them from the index alone.
    pub whole_text: bool,
}

/// Opens file containers for items that point at one.
pub trait ContainerReader: Sync {
    /// The bytes of a container of the organization, or why they cannot be read.
    fn open(&self, organization_id: &str, file_id: &str) -> Result<Box<dyn Read + Send>, ContainerError>;
}

/// Why a file container cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerError {
    /// It is not there (never uploaded, expired, another organization's): what points at it fails.
    Missing(String),
    /// The store holding it cannot be read now (S3 or the database unreachable, an I/O error): what points at it
    /// is applied again later, so an outage loses nothing.
    Unavailable(String),
}

impl std::fmt::Display for ContainerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerError::Missing(reason) | ContainerError::Unavailable(reason) => f.write_str(reason),
        }
    }
}

impl std::fmt::Debug for dyn ContainerReader + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContainerReader")
    }
}

/// Declared field types by field name.
pub type FieldTypes = std::collections::HashMap<String, FieldType>;

/// An item ready to be written, or why it cannot be.
#[derive(Debug)]
pub struct PreparedItem {
    pub key: String,
    pub document_id: String,
    pub ordering_id: OrderingId,
    pub document: Result<TantivyDocument, Refusal>,
    /// The file container the item's data came from: deleted once the item is committed.
    pub container: Option<String>,
    /// Indexed, but worth a WARNING in the logs: why.
    pub warning: Option<String>,
    /// Indexed, with something worth saying in its COMPLETED log line (which converter ran).
    pub note: Option<String>,
}

/// Why an item is not indexed: ERROR (its data is unusable) or REJECTED (it breaks a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub result: LogResult,
    pub reason: String,
    /// Not the item's fault: something it needs cannot be read now ([`ContainerError::Unavailable`]), so the
    /// item is applied again later instead of being logged as refused.
    pub retry: bool,
}

impl Refusal {
    fn error(reason: impl Into<String>) -> Refusal {
        Refusal { result: LogResult::Error, reason: reason.into(), retry: false }
    }

    fn rejected(reason: impl Into<String>) -> Refusal {
        Refusal { result: LogResult::Rejected, reason: reason.into(), retry: false }
    }

    fn container(error: ContainerError) -> Refusal {
        match error {
            ContainerError::Missing(reason) => Refusal::error(reason),
            ContainerError::Unavailable(reason) => Refusal { retry: true, ..Refusal::error(reason) },
        }
    }
}

/// Prepares one item; never fails as a whole: an unusable item becomes a [`Refusal`].
pub fn prepare_item(item: &Item, target: &ItemTarget<'_>, fields: &Fields) -> PreparedItem {
    let built = build_document(item, target, fields);
    let (note, conversion_warning) = match &built {
        Ok((_, extracted)) => (extracted.note.clone(), extracted.warning.clone()),
        Err(_) => (None, None),
    };
    let warnings: Vec<String> = conversion_warning.into_iter().chain(permission_warning(item, target)).collect();
    PreparedItem {
        key: item_key(target.source_id, &item.document_id),
        document_id: item.document_id.clone(),
        ordering_id: target.ordering_id,
        document: built.map(|(document, _)| document),
        container: match &item.content {
            Content::FileContainer { file_id, .. } => Some(file_id.clone()),
            _ => None,
        },
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
        note,
    }
}

/// Permissions as indexed: every identity with its provider (the source's when the item names none).
pub fn with_providers(permissions: &[PermissionLevel], default_provider: &str) -> Vec<PermissionLevel> {
    let mut permissions = permissions.to_vec();
    let identities = permissions.iter_mut().flat_map(|level| level.sets.iter_mut()).flat_map(|set| {
        let PermissionSet { allowed, denied, .. } = set;
        allowed.iter_mut().chain(denied.iter_mut())
    });
    for identity in identities {
        identity.security_provider.get_or_insert_with(|| default_provider.to_string());
    }
    permissions
}

/// Why an item's permissions will not do what its pusher probably meant: none in a secured source, or
/// identities nobody pushed (they grant nothing until pushed). In a public (SHARED) source permissions decide
/// nothing, so there is nothing to warn of.
fn permission_warning(item: &Item, target: &ItemTarget<'_>) -> Option<String> {
    if !target.secured {
        return None;
    }
    if item.permissions.is_empty() {
        return Some(format!(
            "the item has no permissions and its source '{}' is not public: only searches with viewAllContent see \
             it. Give it permissions (for everyone: [{{\"allowAnonymous\": true}}]) or make the source SHARED",
            target.source_name
        ));
    }
    let graph = target.identities?;
    let named =
        item.permissions.iter().flat_map(|level| &level.sets).flat_map(|set| set.allowed.iter().chain(&set.denied));
    let unknown = graph.unknown(named.map(|identity| {
        let provider = identity.security_provider.as_deref().unwrap_or(target.default_provider);
        (provider, identity.identity.as_str(), identity.identity_type)
    }));
    if unknown.is_empty() {
        return None;
    }
    const SHOWN: usize = 10;
    let more = if unknown.len() > SHOWN { format!(" and {} more", unknown.len() - SHOWN) } else { String::new() };
    Some(format!(
        "the item's permissions name identities never pushed, which grant nothing until they are: {}{more}",
        unknown[..unknown.len().min(SHOWN)].join(", ")
    ))
}

/// The item's document, and what its extraction said (a converter's note and warning).
fn build_document(
    item: &Item,
    target: &ItemTarget<'_>,
    fields: &Fields,
) -> Result<(TantivyDocument, crate::extract::Extracted), Refusal> {
    let identities: usize = item.permissions.iter().map(|level| level.identity_count()).sum();
    if identities > limits::MAX_PERMISSIONS_PER_ITEM {
        return Err(Refusal::rejected(format!(
            "the item's permissions name {identities} identities; an item may name at most {}",
            limits::MAX_PERMISSIONS_PER_ITEM
        )));
    }
    let bytes = item_bytes(item, target)?;
    let extension = item.file_extension.as_deref();
    let kind = content_kind(&bytes, extension);
    let mut extracted = extract(&bytes, extension, target.conversion);
    // What the document says of itself fills the fields the item does not give.
    let mut metadata = item.metadata.clone();
    let own = extracted.author.take().map(|author| ("author", author)).into_iter().chain(extracted.fields.drain(..));
    for (key, value) in own {
        if item.meta(key).is_none() && !metadata.iter().any(|(k, _)| k == key) {
            metadata.push((key.to_string(), MetaValue::One(Scalar::Text(value))));
        }
    }
    let parts = ItemParts {
        document_id: item.document_id.clone(),
        title: extracted.title.take().unwrap_or_else(|| file_name(&item.document_id).to_string()),
        text: std::mem::take(&mut extracted.text),
        filetype: file_type(extension, &item.document_id, kind),
        date_ms: None,
        metadata,
        permissions: with_providers(&item.permissions, target.default_provider),
        parent_id: item.parent_id.clone(),
        file_extension: item.file_extension.clone(),
        size: bytes.len() as u64,
    };
    Ok((parts.document(target, fields), extracted))
}

/// Everything a document is made of, whether it comes from a pushed item or from the index (to be changed by a
/// partial update or a merge).
#[derive(Debug, Clone)]
pub struct ItemParts {
    pub document_id: String,
    /// The title when the metadata has none: the content's own, else the URI's file name.
    pub title: String,
    pub text: String,
    pub filetype: String,
    /// The date when the metadata has none (`None`: the time of acceptance).
    pub date_ms: Option<i64>,
    pub metadata: Vec<(String, MetaValue)>,
    /// With every identity's provider.
    pub permissions: Vec<PermissionLevel>,
    pub parent_id: Option<String>,
    pub file_extension: Option<String>,
    pub size: u64,
}

impl ItemParts {
    /// The parts of a stored document (of a catalog source, whose whole text is stored).
    pub fn from_document(doc: &TantivyDocument, fields: &Fields) -> ItemParts {
        use tantivy::schema::Value as _;
        let text = |field| doc.get_first(field).and_then(|v| v.as_str()).map(str::to_string);
        let metadata = doc
            .get_first(fields.meta)
            .and_then(|v| v.as_bytes())
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(bytes).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|(key, value)| MetaValue::from_stored(value).map(|v| (key.clone(), v)))
            .collect();
        let permissions = doc
            .get_first(fields.permissions)
            .and_then(|v| v.as_bytes())
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        ItemParts {
            document_id: text(fields.uri).unwrap_or_default(),
            title: text(fields.title).unwrap_or_default(),
            text: text(fields.text_head).unwrap_or_default(),
            filetype: text(fields.filetype).unwrap_or_default(),
            date_ms: doc.get_first(fields.date).and_then(|v| v.as_datetime()).map(|d| d.into_timestamp_millis()),
            metadata,
            permissions,
            parent_id: text(fields.parent_id),
            file_extension: text(fields.file_extension),
            size: doc.get_first(fields.size).and_then(|v| v.as_u64()).unwrap_or(0),
        }
    }

    /// The metadata value of `key`.
    fn meta_text(&self, key: &str) -> Option<String> {
        let value = self.metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)?;
        value.scalars().first().map(Scalar::to_text)
    }

    /// Why a value of a declared numeric or date field is not of its type, if one is not.
    pub fn mistyped(&self, field: &str, field_types: &FieldTypes) -> Option<String> {
        let field_type = *field_types.get(field).filter(|t| t.is_numeric())?;
        let value = self.metadata.iter().find(|(k, _)| k == field).map(|(_, v)| v)?;
        let scalars: Vec<&Scalar> = match value {
            MetaValue::Dict(dict) => dict.values().flat_map(MetaValue::scalars).collect(),
            other => other.scalars().iter().collect(),
        };
        let bad = scalars.into_iter().find(|scalar| typed_scalar(scalar, field_type).is_none())?;
        Some(format!("the field '{field}' is declared {}, and {} is not one", field_type.as_str(), bad.to_json()))
    }

    /// The document, for `target` (its source, orderingId and time).
    pub fn document(self, target: &ItemTarget<'_>, fields: &Fields) -> TantivyDocument {
        let title = self.meta_text("title").unwrap_or(self.title.clone());
        let date_ms =
            self.meta_text("date").and_then(|d| parse_date_ms(&d)).or(self.date_ms).unwrap_or(target.accepted_at_ms);
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.key, item_key(target.source_id, &self.document_id));
        doc.add_text(fields.uri, &self.document_id);
        doc.add_text(fields.source, target.source_id);
        doc.add_text(fields.source_name, target.source_name);
        doc.add_i64(fields.ordering_id, target.ordering_id);
        doc.add_u64(fields.live, 1);
        doc.add_text(fields.title_exact, &title);
        let title_text = title.clone();
        doc.add_text(fields.title, title);
        let stored = if target.whole_text { &self.text } else { head(&self.text, TEXT_HEAD_BYTES) };
        doc.add_text(fields.text_head, stored);
        doc.add_text(fields.text_head, crate::excerpt::marks(stored));
        doc.add_text(fields.filetype, &self.filetype);
        doc.add_date(fields.date, DateTime::from_timestamp_millis(date_ms));
        doc.add_bytes(
            fields.meta,
            &serde_json::to_vec(&typed_metadata(&self.metadata)).expect("JSON values serialize"),
        );
        doc.add_object(fields.meta_exact, exact_metadata(&self.metadata));
        let mut typed = typed_values(&self.metadata, target.field_types);
        let standard = [("title", title_text.as_str()), ("source", target.source_name), ("filetype", &self.filetype)];
        typed.insert(FACET_STRINGS.to_string(), facet_strings(&self.metadata, &standard));
        typed.insert(
            STANDARD_NUMBERS.to_string(),
            OwnedValue::Object(vec![("size".to_string(), OwnedValue::U64(self.size))]),
        );
        doc.add_object(fields.meta_typed, typed);
        doc.add_bytes(fields.permissions, &serde_json::to_vec(&self.permissions).expect("permissions serialize"));
        if let Some(parent) = &self.parent_id {
            doc.add_text(fields.parent_id, parent);
        }
        if let Some(extension) = &self.file_extension {
            doc.add_text(fields.file_extension, extension);
        }
        doc.add_u64(fields.size, self.size);
        doc.add_i64(fields.indexed_at, target.now_ms);
        doc.add_text(fields.body, self.text);
        doc
    }
}

/// The item's data, decompressed within the per-item cap.
fn item_bytes(item: &Item, target: &ItemTarget<'_>) -> Result<Vec<u8>, Refusal> {
    let cap = target.max_item_bytes;
    match &item.content {
        Content::Text(text) => Ok(text.as_bytes().to_vec()),
        Content::Compressed { bytes, compression } => {
            compression::decompress(bytes, *compression, cap).map_err(decode_refusal)
        }
        Content::FileContainer { file_id, compression } => {
            let opened = target.containers.open(target.organization_id, file_id).map_err(Refusal::container)?;
            // A failure of the reading (its disk or store), not of the data: the item is applied again later.
            let unreadable = |e: &dyn std::fmt::Display| Refusal {
                retry: true,
                ..Refusal::error(format!("file container '{file_id}' cannot be read now: {e}"))
            };
            let failed = Arc::new(AtomicBool::new(false));
            let mut reader = ReadFailures { inner: opened, failed: failed.clone() };
            // The first bytes tell the stream's real compression; they are read again through the decoder.
            let mut head = [0u8; 16];
            let mut filled = 0;
            while filled < head.len() {
                match reader.read(&mut head[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return Err(unreadable(&e)),
                }
            }
            let head = &head[..filled];
            let stream = head.chain(reader);
            let decoder = compression::decoder(*compression, head, stream).map_err(decode_refusal)?;
            compression::read_capped(decoder, *compression, cap)
                .map_err(|e| if failed.load(Ordering::Relaxed) { unreadable(&e) } else { decode_refusal(e) })
        }
    }
}

/// A reader that notes whether it failed, so that a decoder's error can be told from one of the reading below it.
struct ReadFailures {
    inner: Box<dyn Read + Send>,
    failed: Arc<AtomicBool>,
}

impl Read for ReadFailures {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf);
        if let Err(error) = &read
            && error.kind() != std::io::ErrorKind::Interrupted
        {
            self.failed.store(true, Ordering::Relaxed);
        }
        read
    }
}

/// Data past the size limit is REJECTED (a limit); data that does not decode is an ERROR.
fn decode_refusal(error: compression::DecodeError) -> Refusal {
    match error {
        compression::DecodeError::TooLarge { .. } => Refusal::rejected(error.to_string()),
        other => Refusal::error(other.to_string()),
    }
}

/// The start of `text`, at most `max` bytes, cut on a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The last path segment of a URI, as a title of last resort.
fn file_name(document_id: &str) -> &str {
    let path = document_id.split(['?', '#']).next().unwrap_or(document_id).trim_end_matches('/');
    path.rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or(document_id)
}

/// Coveo's `@filetype`: the extension without its dot, else what the content is.
fn file_type(extension: Option<&str>, document_id: &str, kind: ContentKind) -> String {
    let from_name = || {
        let name = file_name(document_id);
        name.rsplit_once('.')
            .map(|(_, ext)| ext)
            .filter(|ext| !ext.is_empty() && ext.len() <= 8 && ext.chars().all(char::is_alphanumeric))
    };
    match extension.map(|e| e.trim_start_matches('.')).filter(|e| !e.is_empty()).or_else(from_name) {
        Some(ext) => ext.to_ascii_lowercase(),
        None => match kind {
            ContentKind::Html => "html",
            ContentKind::Text => "txt",
            ContentKind::Binary => "binary",
        }
        .to_string(),
    }
}

fn typed_metadata(metadata: &[(String, MetaValue)]) -> Map<String, Value> {
    metadata.iter().map(|(key, value)| (key.clone(), value.to_json())).collect()
}

/// Metadata of declared numeric and date fields as numbers (dates as epoch ms); values that are not of the
/// field's type are left out of the typed index (they still match as text). Dictionaries are not typed.
fn typed_values(
    metadata: &[(String, MetaValue)],
    field_types: &FieldTypes,
) -> std::collections::BTreeMap<String, tantivy::schema::OwnedValue> {
    use tantivy::schema::OwnedValue;
    let mut typed = std::collections::BTreeMap::new();
    for (key, value) in metadata {
        let Some(field_type) = field_types.get(key).filter(|t| t.is_numeric()) else {
            continue;
        };
        let numbers: Vec<OwnedValue> =
            value.scalars().iter().filter_map(|scalar| typed_scalar(scalar, *field_type)).collect();
        match numbers.len() {
            0 => {}
            1 => {
                typed.insert(key.clone(), numbers.into_iter().next().expect("one value"));
            }
            _ => {
                typed.insert(key.clone(), OwnedValue::Array(numbers));
            }
        }
    }
    typed
}

/// Every scalar metadata value as text in its original case, and the standard `title`, `source` and `filetype`
/// (which win over metadata of the same name): the columns facets count and string sorts read. A value is cut
/// at [`MAX_FACET_VALUE_BYTES`], a field keeps its first [`MAX_FACET_VALUES`] values; dictionaries are left out.
fn facet_strings(metadata: &[(String, MetaValue)], standard: &[(&str, &str)]) -> OwnedValue {
    let mut strings: std::collections::BTreeMap<String, OwnedValue> = std::collections::BTreeMap::new();
    for (key, value) in metadata {
        let texts: Vec<OwnedValue> = match value {
            MetaValue::Dict(_) => continue,
            other => other
                .scalars()
                .iter()
                .take(MAX_FACET_VALUES)
                .map(|scalar| OwnedValue::Str(head(&scalar.to_text(), MAX_FACET_VALUE_BYTES).to_string()))
                .collect(),
        };
        if !texts.is_empty() {
            strings.insert(key.clone(), OwnedValue::Array(texts));
        }
    }
    for (key, value) in standard {
        strings.insert(key.to_string(), OwnedValue::Str(head(value, MAX_FACET_VALUE_BYTES).to_string()));
    }
    OwnedValue::Object(strings.into_iter().collect())
}

/// A metadata value as the declared type wants it.
pub fn typed_scalar(scalar: &Scalar, field_type: FieldType) -> Option<tantivy::schema::OwnedValue> {
    use tantivy::schema::OwnedValue;
    match (field_type, scalar) {
        (FieldType::Long | FieldType::Long64, Scalar::Integer(i)) => Some(OwnedValue::I64(*i)),
        (FieldType::Long | FieldType::Long64, Scalar::Float(f)) if f.fract() == 0.0 => Some(OwnedValue::I64(*f as i64)),
        (FieldType::Long | FieldType::Long64, Scalar::Text(t)) => t.trim().parse().ok().map(OwnedValue::I64),
        (FieldType::Double, Scalar::Integer(i)) => Some(OwnedValue::F64(*i as f64)),
        (FieldType::Double, Scalar::Float(f)) => Some(OwnedValue::F64(*f)),
        (FieldType::Double, Scalar::Text(t)) => t.trim().parse().ok().map(OwnedValue::F64),
        (FieldType::Date, Scalar::Integer(i)) => Some(OwnedValue::I64(*i)),
        (FieldType::Date, Scalar::Text(t)) => parse_date_ms(t).map(OwnedValue::I64),
        _ => None,
    }
}

/// Every metadata value as lower-cased text, so `@rank==3` and `@flag==true` match like strings; a dictionary's
/// values under their keys (`field.key`).
fn exact_metadata(metadata: &[(String, MetaValue)]) -> std::collections::BTreeMap<String, tantivy::schema::OwnedValue> {
    fn texts(value: &MetaValue) -> Value {
        match value {
            MetaValue::One(s) => Value::Array(vec![Value::String(s.to_text())]),
            MetaValue::Many(list) => list.iter().map(|s| Value::String(s.to_text())).collect(),
            MetaValue::Dict(dict) => dict.iter().map(|(key, value)| (key.clone(), texts(value))).collect(),
        }
    }
    metadata.iter().map(|(key, value)| (key.clone(), texts(value).into())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_cut_on_a_character_boundary() {
        assert_eq!(head("abc", 10), "abc");
        assert_eq!(head("aé", 2), "a");
        assert_eq!(head("aéb", 3), "aé");
    }

    #[test]
    fn names_and_types_come_from_the_uri_when_missing() {
        assert_eq!(file_name("file:///docs/a/guide.html?x=1#top"), "guide.html");
        assert_eq!(file_name("https://example.com/"), "example.com");
        assert_eq!(file_type(None, "file:///docs/guide.PDF", ContentKind::Binary), "pdf");
        assert_eq!(file_type(Some(".HTM"), "x", ContentKind::Html), "htm");
        assert_eq!(file_type(None, "urn:item:42", ContentKind::Text), "txt");
    }
}
