//! Batch files: `{"addOrUpdate": [item, …], "delete": [{"documentId", "deleteChildren"}, …]}` (keys in any case,
//! as the legacy CLI sends `AddOrUpdate` and `DocumentId`), read as a stream, never whole.
//!
//! [`validate`] checks what makes a file unreadable as a batch — not UTF-8, not JSON, a repeated key, an entry
//! without `documentId` — without building the items, so a 256 MiB file costs a pass and a little memory.
//! [`read`] yields the entries one by one for the applier; an item whose content is wrong (no data, bad Base64…)
//! comes as an error for that item only.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::io::{self, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;
use crate::item::{Content, Item, ItemContext, item_from_json};
use crate::json::{self, Json, JsonPath};

/// How many entries a batch file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub add_or_update: usize,
    pub delete: usize,
}

/// Why a file is not a readable batch; the message says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub message: String,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One entry of a batch, in file order.
#[derive(Debug)]
pub enum BatchEntry {
    /// `document_id` is the entry's id even when the item itself is invalid.
    AddOrUpdate {
        index: usize,
        document_id: String,
        item: Result<Item, ApiError>,
    },
    Delete {
        index: usize,
        document_id: String,
        delete_children: bool,
    },
}

impl BatchEntry {
    /// The file container holding the item's data, if it has one.
    pub fn container(&self) -> Option<&str> {
        match self {
            BatchEntry::AddOrUpdate {
                item: Ok(Item { content: Content::FileContainer { file_id, .. }, .. }), ..
            } => Some(file_id),
            _ => None,
        }
    }
}

/// Checks a batch file's structure without building its items.
pub fn validate(reader: impl Read) -> Result<BatchSummary, BatchError> {
    run(reader, &mut None)
}

/// Reads a batch file, handing each entry to `sink` as soon as it is parsed.
pub fn read(reader: impl Read, sink: &mut dyn FnMut(BatchEntry)) -> Result<BatchSummary, BatchError> {
    run(reader, &mut Some(sink))
}

type Sink<'s> = Option<&'s mut dyn FnMut(BatchEntry)>;

fn run(reader: impl Read, sink: &mut Sink<'_>) -> Result<BatchSummary, BatchError> {
    let mut tracked = TrackingReader::new(reader);
    let outcome = {
        let mut deserializer = serde_json::Deserializer::from_reader(&mut tracked);
        let summary = TopSeed { sink }.deserialize(&mut deserializer);
        summary.and_then(|summary| deserializer.end().map(|()| summary))
    };
    outcome.map_err(|error| tracked.explain(&error))
}

/// The top-level object: `addOrUpdate` and `delete` arrays, each at most once.
struct TopSeed<'a, 's> {
    sink: &'a mut Sink<'s>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = BatchSummary;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<BatchSummary, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = BatchSummary;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a batch object {"addOrUpdate": [...], "delete": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BatchSummary, A::Error> {
        let mut summary = BatchSummary::default();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let kind = match key.to_lowercase().as_str() {
                "addorupdate" => Kind::AddOrUpdate,
                "delete" => Kind::Delete,
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown key '{key}' at the top level: a batch has 'addOrUpdate' and 'delete'"
                    )));
                }
            };
            if !seen.insert(kind) {
                return Err(de::Error::custom(format!(
                    "duplicate key '{key}' at the top level (keys are case-insensitive)"
                )));
            }
            let count = map.next_value_seed(ArraySeed { kind, key: key.clone(), sink: self.sink })?;
            match kind {
                Kind::AddOrUpdate => summary.add_or_update = count,
                Kind::Delete => summary.delete = count,
            }
        }
        Ok(summary)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    AddOrUpdate,
    Delete,
}

/// One of the arrays; returns how many entries it held.
struct ArraySeed<'a, 's> {
    kind: Kind,
    key: String,
    sink: &'a mut Sink<'s>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of entries for '{}'", self.key)
    }

    fn visit_unit<E>(self) -> Result<usize, E> {
        Ok(0) // "delete": null
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<usize, A::Error> {
        let mut index = 0;
        loop {
            let path = JsonPath::default().key(&self.key).index(index);
            let next = match self.sink {
                None => seq.next_element_seed(ShapeSeed { path: RefCell::new(path.clone()), entry: true })?,
                Some(_) => seq
                    .next_element_seed(json::StrictSeedAt::new(path.clone()))?
                    .map(|value| self.deliver(index, value, &path))
                    .transpose()?,
            };
            if next.is_none() {
                return Ok(index);
            }
            index += 1;
        }
    }
}

impl ArraySeed<'_, '_> {
    /// Turns a parsed entry into a [`BatchEntry`] for the sink; a delete without a usable id fails the file.
    fn deliver<E: de::Error>(&mut self, index: usize, value: Json, path: &JsonPath) -> Result<(), E> {
        let sink = self.sink.as_mut().expect("reading with a sink");
        match self.kind {
            Kind::AddOrUpdate => {
                // A missing id is structural: without it the item cannot even be reported.
                let document_id = match value.get("documentId") {
                    Some(Json::String(id)) if !id.trim().is_empty() => id.clone(),
                    _ => return Err(E::custom(format!("{path} has no 'documentId'"))),
                };
                let item = item_from_json(value, ItemContext::default(), path);
                sink(BatchEntry::AddOrUpdate { index, document_id, item });
            }
            Kind::Delete => {
                let (document_id, delete_children) = delete_entry(&value, path).map_err(E::custom)?;
                sink(BatchEntry::Delete { index, document_id, delete_children });
            }
        }
        Ok(())
    }
}

fn delete_entry(value: &Json, path: &JsonPath) -> Result<(String, bool), String> {
    let document_id = match value.get("documentId") {
        Some(Json::String(id)) if !id.trim().is_empty() => id.clone(),
        _ => return Err(format!("{path} has no 'documentId'")),
    };
    let delete_children = match value.get("deleteChildren") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return Err(format!("'{path}.deleteChildren' must be a boolean, not {}", other.kind()));
        }
    };
    Ok((document_id, delete_children))
}

/// Walks a value without keeping it: repeated keys (ignoring case) are refused at any depth, and an entry
/// (the elements of the arrays) must be an object with a non-empty string `documentId`.
struct ShapeSeed {
    path: RefCell<JsonPath>,
    entry: bool,
}

impl<'de> DeserializeSeed<'de> for ShapeSeed {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.entry {
            return Err(de::Error::custom(format!("{} must be an object, not an array", self.path.borrow())));
        }
        let mut index = 0;
        while seq
            .next_element_seed(ShapeSeed { path: RefCell::new(self.path.borrow().index(index)), entry: false })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut has_id = false;
        while let Some(key) = map.next_key::<String>()? {
            let lower = key.to_lowercase();
            if !seen.insert(lower.clone()) {
                return Err(de::Error::custom(format!(
                    "duplicate key '{key}' in {} (keys are case-insensitive)",
                    self.path.borrow()
                )));
            }
            if self.entry && lower == "documentid" {
                has_id = map.next_value_seed(DocumentIdSeed)?;
                continue;
            }
            map.next_value_seed(ShapeSeed { path: RefCell::new(self.path.borrow().key(&key)), entry: false })?;
        }
        if self.entry && !has_id {
            return Err(de::Error::custom(format!("{} has no 'documentId'", self.path.borrow())));
        }
        Ok(())
    }
}

impl ShapeSeed {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.entry {
            return Err(E::custom(format!("{} must be an object with a 'documentId'", self.path.borrow())));
        }
        Ok(())
    }
}

/// Whether a `documentId` value is a non-empty string.
struct DocumentIdSeed;

impl<'de> DeserializeSeed<'de> for DocumentIdSeed {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentIdSeed {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a document id string")
    }

    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(!v.trim().is_empty())
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
}

/// Counts bytes, remembers where lines start (to turn serde_json's line and column into a byte offset), and
/// checks UTF-8 as the bytes go by, remembering the offset of the first invalid byte.
struct TrackingReader<R> {
    inner: R,
    offset: u64,
    line_starts: Vec<u64>,
    /// Bytes of a UTF-8 sequence cut by the end of the last read.
    carry: Vec<u8>,
    invalid_utf8_at: Option<(u64, u8)>,
}

impl<R: Read> TrackingReader<R> {
    fn new(inner: R) -> Self {
        TrackingReader { inner, offset: 0, line_starts: vec![0], carry: Vec::new(), invalid_utf8_at: None }
    }

    fn check_utf8(&mut self, chunk: &[u8]) {
        let start = self.offset - self.carry.len() as u64;
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        match std::str::from_utf8(&bytes) {
            Ok(_) => {}
            Err(e) => match e.error_len() {
                Some(_) => self.invalid_utf8_at = Some((start + e.valid_up_to() as u64, bytes[e.valid_up_to()])),
                None => self.carry = bytes[e.valid_up_to()..].to_vec(),
            },
        }
    }

    /// The message for a failed parse, with the place it failed.
    fn explain(&self, error: &serde_json::Error) -> BatchError {
        if let Some((offset, byte)) = self.invalid_utf8_at {
            return BatchError {
                message: format!(
                    "the batch file is not UTF-8: the byte 0x{byte:02X} at byte offset {offset} is not valid UTF-8"
                ),
            };
        }
        if error.is_eof() && self.offset == 0 {
            return BatchError { message: "the batch file is empty".to_string() };
        }
        let (line, column) = (error.line(), error.column());
        let offset = self.line_starts.get(line.saturating_sub(1)).map(|start| start + column.saturating_sub(1) as u64);
        // serde_json appends " at line L column C" to its messages; say it once, with the byte offset.
        let text = error.to_string();
        let text = text.split(" at line ").next().unwrap_or(&text).to_string();
        let kind = if error.is_syntax() || error.is_eof() { "the batch file is not valid JSON: " } else { "" };
        let place = match offset {
            Some(offset) => format!(" at line {line}, column {column} (byte offset {offset})"),
            None => format!(" at line {line}, column {column}"),
        };
        BatchError { message: format!("{kind}{text}{place}") }
    }
}

impl<R: Read> Read for TrackingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.invalid_utf8_at.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        }
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        for (i, byte) in chunk.iter().enumerate() {
            if *byte == b'\n' {
                self.line_starts.push(self.offset + i as u64 + 1);
            }
        }
        self.check_utf8(chunk);
        self.offset += n as u64;
        if n == 0 && !self.carry.is_empty() {
            self.invalid_utf8_at = Some((self.offset - self.carry.len() as u64, self.carry[0]));
        }
        if self.invalid_utf8_at.is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &[u8]) -> Result<BatchSummary, String> {
        validate(text).map_err(|e| e.message)
    }

    fn entries(text: &[u8]) -> (Vec<BatchEntry>, Result<BatchSummary, BatchError>) {
        let mut got = Vec::new();
        let result = read(text, &mut |entry| got.push(entry));
        (got, result)
    }

    #[test]
    fn counts_entries_in_any_key_case() {
        let text = br#"{"AddOrUpdate":[{"DocumentId":"file://a","Data":"x"},{"documentId":"file://b","data":"y"}],
                        "delete":[{"documentId":"file://c","deleteChildren":true}]}"#;
        assert_eq!(check(text).unwrap(), BatchSummary { add_or_update: 2, delete: 1 });
        let (got, result) = entries(text);
        assert_eq!(result.unwrap(), BatchSummary { add_or_update: 2, delete: 1 });
        assert!(
            matches!(&got[1], BatchEntry::AddOrUpdate { index: 1, item: Ok(item), .. } if item.document_id == "file://b")
        );
        assert!(
            matches!(&got[2], BatchEntry::Delete { index: 0, document_id, delete_children: true } if document_id == "file://c")
        );
        assert_eq!(check(br#"{"delete":null}"#).unwrap(), BatchSummary::default());
    }

    #[test]
    fn pinpoints_each_structural_fault() {
        let cases: [(&[u8], &str); 8] = [
            (b"{\"addOrUpdate\":[{\"documentId\":\"a\",\"data\":\"\xff\"}]}", "not UTF-8: the byte 0xFF at byte offset 42"),
            (b"{\"addOrUpdate\":[\n{\"documentId\":\"a\" \"data\":\"x\"}]}", "not valid JSON: expected `,` or `}` at line 2, column 19 (byte offset 35)"),
            (br#"{"addOrUpdate":[{"documentId":"a","data":"x"},{"documentId":"b","title":"t","Title":"u","data":"x"}]}"#, "duplicate key 'Title' in addOrUpdate[1]"),
            (br#"{"addOrUpdate":[{"documentId":"a","data":"x"},{"data":"x"}]}"#, "addOrUpdate[1] has no 'documentId'"),
            (br#"{"delete":[{"deleteChildren":true}]}"#, "delete[0] has no 'documentId'"),
            (br#"{"addOrUpdates":[]}"#, "unknown key 'addOrUpdates' at the top level"),
            (br#"{"addOrUpdate":[],"ADDORUPDATE":[]}"#, "duplicate key 'ADDORUPDATE' at the top level"),
            (b"", "the batch file is empty"),
        ];
        for (text, expected) in cases {
            let message = check(text).unwrap_err();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        }
        // The reading pass refuses the same faults.
        assert!(
            entries(br#"{"addOrUpdate":[{"data":"x"}]}"#)
                .1
                .unwrap_err()
                .message
                .contains("addOrUpdate[0] has no 'documentId'")
        );
        let (_, result) = entries(br#"{"addOrUpdate":[{"documentId":"a","t":1,"T":2,"data":"x"}]}"#);
        assert!(result.unwrap_err().message.contains("duplicate key 'T' in addOrUpdate[0]"));
    }

    #[test]
    fn a_bad_item_is_an_error_for_that_item_only() {
        let (got, result) =
            entries(br#"{"addOrUpdate":[{"documentId":"a","title":"no data"},{"documentId":"b","data":"ok"}]}"#);
        assert_eq!(result.unwrap().add_or_update, 2);
        assert!(
            matches!(&got[0], BatchEntry::AddOrUpdate { document_id, item: Err(e), .. } if e.message.contains("has no item data") && document_id == "a")
        );
        assert!(matches!(&got[1], BatchEntry::AddOrUpdate { item: Ok(_), .. }));
    }

    #[test]
    fn utf8_split_across_reads_is_fine() {
        // A reader that hands out one byte at a time splits every multi-byte character.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let text = r#"{"addOrUpdate":[{"documentId":"file://été/文档","data":"ü"}]}"#;
        assert_eq!(validate(Trickle(text.as_bytes())).unwrap().add_or_update, 1);
        let truncated = &text.as_bytes()[..text.find('文').unwrap() + 1];
        assert!(validate(Trickle(truncated)).unwrap_err().message.contains("not UTF-8"));
    }
}
