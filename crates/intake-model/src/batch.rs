//! Batch files: `{"addOrUpdate": [item, …], "delete": [{"documentId", "deleteChildren"}, …]}` (keys in any case,
//! as the legacy CLI sends `AddOrUpdate` and `DocumentId`), read as a stream, never whole. The same reader takes
//! the other files of the same form ([`BatchLayout`]): identity batches, and the Stream API's update files (with
//! `partialUpdate`) and merge files.
//!
//! A [`BatchReader`] splits the file into its entries without parsing them: it follows the top-level object
//! byte by byte and finds where each entry ends by tracking strings (searched with `memchr`) and nesting. Each
//! [`RawEntry`] is then parsed on its own with `serde_json::from_slice` — far faster than parsing from a
//! reader, and, in the applier, on every core at once. Memory is one entry (at most [`MAX_ENTRY_BYTES`]) plus
//! a read buffer, whatever the file's size.
//!
//! [`validate`] checks what makes a file unreadable as a batch — not UTF-8, not JSON, a repeated key, an entry
//! without `documentId` — without building the items. [`RawEntry::parse`] builds an entry for the applier; an
//! item whose content is wrong (no data, bad Base64…) comes as an error for that item only. Every message says
//! where: line, column and byte offset in the file.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;
use crate::identity::{IdentityBodyKind, IdentityChange, identity_change};
use crate::item::{Content, Item, ItemContext, item_from_json};
use crate::json::{self, Json, JsonPath};
use crate::stream::{ItemPatch, PartialUpdate, partial_update};

/// How many entries a batch file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub add_or_update: usize,
    pub delete: usize,
    /// Entries of an identity batch: `members`, `mappings` and `deleted`.
    pub identities: usize,
    /// `partialUpdate` entries of a stream update file.
    pub partial_update: usize,
}

/// Why a file is not a readable batch; the message says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub message: String,
    /// The file could not be read (its disk or store failed), which says nothing of its content: reading it
    /// again later may succeed, so it is neither refused nor failed for this.
    pub unreadable: bool,
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
    /// A `partialUpdate` entry of a stream update file (checked whole when the file was accepted).
    PartialUpdate {
        index: usize,
        update: PartialUpdate,
    },
    /// An entry of a stream merge file; as for an add, `document_id` is the entry's even when the rest is invalid.
    Merge {
        index: usize,
        document_id: String,
        patch: Result<ItemPatch, ApiError>,
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

/// The largest entry a batch file may hold: items with more data belong in their own file container.
pub const MAX_ENTRY_BYTES: usize = 32 * 1024 * 1024;

/// Ends the message of an entry without `documentId`.
const MISSING_ID: &str = " has no 'documentId'";

/// How much is read from the file at a time.
const READ_CHUNK: usize = 1 << 20;

/// Checks a batch file's structure without building its items.
pub fn validate(reader: impl Read) -> Result<BatchSummary, BatchError> {
    let mut entries = BatchReader::new(reader);
    for entry in &mut entries {
        entry?.check()?;
    }
    Ok(entries.summary())
}

/// Checks an identity batch file whole: every entry must be a valid identity body. Returns how many there are.
pub fn validate_identities(reader: impl Read) -> Result<usize, BatchError> {
    let mut entries = BatchReader::with_layout(reader, IDENTITY_BATCH);
    for entry in &mut entries {
        entry?.parse_identity()?;
    }
    Ok(entries.summary().identities)
}

/// Which array an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    AddOrUpdate,
    Delete,
    /// An identity batch's `members` (identities with their members), `mappings` (aliases) and `deleted`.
    Members,
    Mappings,
    Deleted,
    /// A stream update file's `partialUpdate`.
    PartialUpdate,
    /// A stream merge file's `addOrUpdate`: items to merge into the stored ones.
    Merge,
}

/// The top-level keys a kind of batch file has, and how to say so.
#[derive(Debug, Clone, Copy)]
pub struct BatchLayout {
    keys: &'static [(&'static str, EntryKind)],
    shape: &'static str,
    names: &'static str,
}

impl BatchLayout {
    /// Whether its items are merged into the stored ones (a stream merge file).
    pub fn merges(&self) -> bool {
        self.keys.iter().any(|(_, kind)| *kind == EntryKind::Merge)
    }
}

/// An item batch: `{"addOrUpdate": [...], "delete": [...]}`.
pub const ITEM_BATCH: BatchLayout = BatchLayout {
    keys: &[("addorupdate", EntryKind::AddOrUpdate), ("delete", EntryKind::Delete)],
    shape: r#"{"addOrUpdate": [...], "delete": [...]}"#,
    names: "'addOrUpdate' and 'delete'",
};

/// An identity batch: `{"members": [...], "mappings": [...], "deleted": [...]}`.
pub const IDENTITY_BATCH: BatchLayout = BatchLayout {
    keys: &[("members", EntryKind::Members), ("mappings", EntryKind::Mappings), ("deleted", EntryKind::Deleted)],
    shape: r#"{"members": [...], "mappings": [...], "deleted": [...]}"#,
    names: "'members', 'mappings' and 'deleted'",
};

/// A stream update file: `{"addOrUpdate": [...], "delete": [...], "partialUpdate": [...]}`.
pub const STREAM_UPDATE: BatchLayout = BatchLayout {
    keys: &[
        ("addorupdate", EntryKind::AddOrUpdate),
        ("delete", EntryKind::Delete),
        ("partialupdate", EntryKind::PartialUpdate),
    ],
    shape: r#"{"addOrUpdate": [...], "delete": [...], "partialUpdate": [...]}"#,
    names: "'addOrUpdate', 'delete' and 'partialUpdate'",
};

/// A stream merge file: `{"addOrUpdate": [...], "delete": [...]}`, whose items are merged into the stored ones.
pub const STREAM_MERGE: BatchLayout = BatchLayout {
    keys: &[("addorupdate", EntryKind::Merge), ("delete", EntryKind::Delete)],
    shape: r#"{"addOrUpdate": [...], "delete": [...]}"#,
    names: "'addOrUpdate' and 'delete'",
};

/// Checks a file of `layout` (an item batch, a stream update or merge file) without building its items:
/// the first fault in file order is the one reported.
pub fn validate_layout(reader: impl Read, layout: BatchLayout) -> Result<BatchSummary, BatchError> {
    let mut entries = BatchReader::with_layout(reader, layout);
    for entry in &mut entries {
        entry?.check()?;
    }
    Ok(entries.summary())
}

/// A place in the file: 1-based line and column (in bytes), and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    offset: u64,
    line: u64,
    column: u64,
}

impl BatchError {
    /// A fault of the file's content.
    fn content(message: String) -> BatchError {
        BatchError { message, unreadable: false }
    }

    fn at(message: impl fmt::Display, at: Position) -> BatchError {
        BatchError::content(format!("{message} at line {}, column {} (byte offset {})", at.line, at.column, at.offset))
    }

    fn syntax(message: impl fmt::Display, at: Position) -> BatchError {
        BatchError::at(format!("the batch file is not valid JSON: {message}"), at)
    }

    fn not_utf8(offset: u64, byte: Option<u8>) -> BatchError {
        let message = match byte {
            Some(byte) => {
                format!("the batch file is not UTF-8: the byte 0x{byte:02X} at byte offset {offset} is not valid UTF-8")
            }
            None => format!("the batch file is not UTF-8: it ends inside a character at byte offset {offset}"),
        };
        BatchError::content(message)
    }
}

/// One entry of the file, as its bytes: split from the stream, not parsed yet.
#[derive(Debug)]
pub struct RawEntry {
    pub kind: EntryKind,
    /// Its position in its array.
    pub index: usize,
    /// The array's key as the file spells it (`AddOrUpdate`), for messages.
    key: String,
    bytes: Vec<u8>,
    at: Position,
}

impl RawEntry {
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn path(&self) -> JsonPath {
        JsonPath::default().key(&self.key).index(self.index)
    }

    /// Checks the entry's shape: an object with a non-empty string `documentId` and no repeated key; a partial
    /// update is checked whole.
    pub fn check(&self) -> Result<(), BatchError> {
        if self.kind == EntryKind::PartialUpdate {
            return self.parse().map(drop);
        }
        let seed = ShapeSeed { path: RefCell::new(self.path()), entry: true };
        self.deserialize(seed)
    }

    /// Builds the entry. A fault in the file's structure (no `documentId`) is an `Err`; a fault in an item's
    /// content is an `Ok` entry whose item is the error, so it costs that item only.
    pub fn parse(&self) -> Result<BatchEntry, BatchError> {
        let path = self.path();
        let value = self.deserialize(json::StrictSeedAt::new(path.clone()))?;
        let located = |message: String| BatchError::at(message, self.at);
        Ok(match self.kind {
            EntryKind::AddOrUpdate => {
                // A missing id is structural: without it the item cannot even be reported.
                let document_id = match value.get("documentId") {
                    Some(Json::String(id)) if !id.trim().is_empty() => id.clone(),
                    _ => return Err(located(format!("{path}{MISSING_ID}"))),
                };
                let item = item_from_json(value, ItemContext::default(), &path);
                BatchEntry::AddOrUpdate { index: self.index, document_id, item }
            }
            EntryKind::Delete => {
                let (document_id, delete_children) = delete_entry(&value, &path).map_err(located)?;
                BatchEntry::Delete { index: self.index, document_id, delete_children }
            }
            EntryKind::PartialUpdate => {
                BatchEntry::PartialUpdate { index: self.index, update: partial_update(value, &path).map_err(located)? }
            }
            EntryKind::Merge => {
                let document_id = match value.get("documentId") {
                    Some(Json::String(id)) if !id.trim().is_empty() => id.clone(),
                    _ => return Err(located(format!("{path}{MISSING_ID}"))),
                };
                BatchEntry::Merge { index: self.index, document_id, patch: ItemPatch::from_json(value, &path) }
            }
            EntryKind::Members | EntryKind::Mappings | EntryKind::Deleted => {
                return Err(located(format!("{path} is an identity, not an item")));
            }
        })
    }

    /// Builds an entry of an identity batch; any fault in it is the file's (an identity batch is applied whole).
    pub fn parse_identity(&self) -> Result<IdentityChange, BatchError> {
        let path = self.path();
        let value = self.deserialize(json::StrictSeedAt::new(path.clone()))?;
        let kind = match self.kind {
            EntryKind::Members => IdentityBodyKind::Members,
            EntryKind::Mappings => IdentityBodyKind::Mappings,
            EntryKind::Deleted => IdentityBodyKind::Deleted,
            EntryKind::AddOrUpdate | EntryKind::Delete | EntryKind::PartialUpdate | EntryKind::Merge => {
                return Err(BatchError::at(format!("{path} is an item, not an identity"), self.at));
            }
        };
        identity_change(value, kind, &path)
            .map_err(|error| BatchError::at(error.message.trim_end_matches('.'), self.at))
    }

    fn deserialize<'a, T: DeserializeSeed<'a>>(&'a self, seed: T) -> Result<T::Value, BatchError> {
        let mut deserializer = serde_json::Deserializer::from_slice(&self.bytes);
        let value = seed.deserialize(&mut deserializer).and_then(|value| deserializer.end().map(|()| value));
        value.map_err(|error| self.explain(&error))
    }

    /// serde_json's error, placed in the whole file rather than in this entry. Bytes that are not UTF-8 are
    /// named first: serde_json's own message for them ("invalid unicode code point") says less.
    fn explain(&self, error: &serde_json::Error) -> BatchError {
        if let Err(utf8) = std::str::from_utf8(&self.bytes) {
            let offset = self.at.offset + utf8.valid_up_to() as u64;
            return BatchError::not_utf8(offset, utf8.error_len().map(|_| self.bytes[utf8.valid_up_to()]));
        }
        let text = error.to_string();
        // serde_json appends " at line L column C"; it is said once, with the byte offset, below.
        let text = text.split(" at line ").next().unwrap_or(&text);
        let (line, column) = (error.line() as u64, error.column() as u64);
        // A missing id is only known at the entry's end; the entry's start is the place to look.
        let whole_entry = text.ends_with(MISSING_ID);
        let at = if line == 0 || whole_entry {
            self.at
        } else {
            let line_start = match line {
                1 => 0,
                _ => memchr::memchr_iter(b'\n', &self.bytes).nth(line as usize - 2).map_or(0, |i| i as u64 + 1),
            };
            Position {
                offset: self.at.offset + line_start + column.saturating_sub(1),
                line: self.at.line + line - 1,
                column: if line == 1 { self.at.column + column.saturating_sub(1) } else { column },
            }
        };
        if error.is_syntax() || error.is_eof() { BatchError::syntax(text, at) } else { BatchError::at(text, at) }
    }
}

/// Where the reader is in the top-level object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `{`.
    Start,
    /// After `{`: a key or `}`.
    FirstKey,
    /// After `,` at the top level: a key.
    Key,
    /// Inside an array, before its first entry: an entry or `]`.
    FirstEntry,
    /// After `,` inside an array: an entry.
    Entry,
    /// After an entry: `,` or `]`.
    AfterEntry,
    /// After an array (or null): `,` or `}`.
    AfterArray,
    /// After the closing `}`: only whitespace.
    End,
    /// Finished, or failed.
    Done,
}

/// Batch entries are validated, parsed and prepared in windows of this many entries, or of this many bytes of
/// JSON: enough to keep every core busy, little enough to bound memory.
pub const WINDOW_ENTRIES: usize = 64;
pub const WINDOW_BYTES: usize = 16 * 1024 * 1024;

/// Splits a batch file into [`RawEntry`]s, checking the top-level structure as it goes.
pub struct BatchReader<R> {
    reader: R,
    layout: BatchLayout,
    buf: Vec<u8>,
    /// The next byte to look at, in `buf`.
    pos: usize,
    /// The file offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// The line at `pos`, and the file offset where it starts.
    line: u64,
    line_start: u64,
    state: State,
    /// The array being read, with its key as spelled in the file.
    array: Option<(EntryKind, String)>,
    seen: HashSet<EntryKind>,
    next_index: usize,
    summary: BatchSummary,
    /// A fault found while filling a window, reported after the window's entries.
    deferred: Option<BatchError>,
}

impl<R: Read> BatchReader<R> {
    /// A reader of an item batch.
    pub fn new(reader: R) -> BatchReader<R> {
        BatchReader::with_layout(reader, ITEM_BATCH)
    }

    pub fn with_layout(reader: R, layout: BatchLayout) -> BatchReader<R> {
        BatchReader {
            reader,
            layout,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            base: 0,
            eof: false,
            line: 1,
            line_start: 0,
            state: State::Start,
            array: None,
            seen: HashSet::new(),
            next_index: 0,
            summary: BatchSummary::default(),
            deferred: None,
        }
    }

    /// The next entries, in file order, up to `max_entries` of them or until they reach `max_bytes` of JSON;
    /// empty at the end of the file. A fault comes after the entries before it, from the next call.
    pub fn next_window(&mut self, max_entries: usize, max_bytes: usize) -> Result<Vec<RawEntry>, BatchError> {
        if let Some(fault) = self.deferred.take() {
            return Err(fault);
        }
        let mut window = Vec::new();
        let mut bytes = 0;
        while window.len() < max_entries && bytes < max_bytes {
            match self.next() {
                Some(Ok(entry)) => {
                    bytes += entry.len();
                    window.push(entry);
                }
                Some(Err(fault)) if window.is_empty() => return Err(fault),
                Some(Err(fault)) => {
                    self.deferred = Some(fault);
                    break;
                }
                None => break,
            }
        }
        Ok(window)
    }

    /// How many entries of each kind were read so far (all of them once the reader is exhausted).
    pub fn summary(&self) -> BatchSummary {
        self.summary
    }

    fn here(&self) -> Position {
        let offset = self.base + self.pos as u64;
        Position { offset, line: self.line, column: offset - self.line_start + 1 }
    }

    /// Moves past `n` bytes, keeping the line count.
    fn advance(&mut self, n: usize) {
        let passed = &self.buf[self.pos..self.pos + n];
        if let Some(last) = memchr::memrchr(b'\n', passed) {
            self.line += memchr::memchr_iter(b'\n', passed).count() as u64;
            self.line_start = self.base + (self.pos + last) as u64 + 1;
        }
        self.pos += n;
    }

    /// Reads more of the file, dropping what is before `pos`; false at the end of the file.
    fn fill(&mut self) -> Result<bool, BatchError> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos);
        self.base += self.pos as u64;
        self.pos = 0;
        let had = self.buf.len();
        self.buf.resize(had + READ_CHUNK, 0);
        let read = loop {
            match self.reader.read(&mut self.buf[had..]) {
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = read.map_err(|error| {
            self.buf.truncate(had);
            // A decoder's "invalid data" is the content's fault; any other failure is the reading's.
            let unreadable = error.kind() != std::io::ErrorKind::InvalidData;
            BatchError { message: format!("the batch file could not be read: {error}"), unreadable }
        })?;
        self.buf.truncate(had + n);
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The next byte that is not whitespace (not consumed); `None` at the end of the file.
    fn peek_token(&mut self) -> Result<Option<u8>, BatchError> {
        loop {
            while let Some(&byte) = self.buf.get(self.pos) {
                if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(byte));
                }
                self.advance(1);
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The next token, which must be one of `expected`; it is consumed. `inside` names what an EOF interrupts.
    fn expect(&mut self, expected: &[u8], what: &str, inside: &str) -> Result<u8, BatchError> {
        match self.peek_token()? {
            Some(byte) if expected.contains(&byte) => {
                self.advance(1);
                Ok(byte)
            }
            Some(_) => Err(BatchError::syntax(format!("expected {what}"), self.here())),
            None => Err(BatchError::syntax(format!("EOF while parsing {inside}"), self.here())),
        }
    }

    /// Reads a top-level key and the colon after it; returns which array it opens.
    fn key(&mut self) -> Result<(EntryKind, String), BatchError> {
        let at = self.here();
        let end = self.scan_value(1024)?.ok_or_else(|| BatchError::at("a top-level key is too long", at))?;
        let key: String = serde_json::from_slice(&self.buf[self.pos..end])
            .map_err(|_| BatchError::syntax("expected a key string", at))?;
        self.advance(end - self.pos);
        let lower = key.to_lowercase();
        let Some(&(_, kind)) = self.layout.keys.iter().find(|(name, _)| *name == lower) else {
            return Err(BatchError::at(
                format!("unknown key '{key}' at the top level: a batch has {}", self.layout.names),
                at,
            ));
        };
        if !self.seen.insert(kind) {
            return Err(BatchError::at(
                format!("duplicate key '{key}' at the top level (keys are case-insensitive)"),
                at,
            ));
        }
        self.expect(b":", "`:`", "an object")?;
        Ok((kind, key))
    }

    /// After a key: `[` opens its array, `null` stands for an empty one.
    fn array_start(&mut self, kind: EntryKind, key: String) -> Result<(), BatchError> {
        let at = self.here();
        match self.peek_token()? {
            Some(b'[') => {
                self.advance(1);
                self.array = Some((kind, key));
                self.next_index = 0;
                self.state = State::FirstEntry;
                Ok(())
            }
            Some(b'n') => {
                let end = self.scan_value(16)?.unwrap_or(self.pos);
                if &self.buf[self.pos..end] != b"null" {
                    return Err(BatchError::syntax("expected `[` or null", at));
                }
                self.advance(end - self.pos);
                self.state = State::AfterArray;
                Ok(())
            }
            Some(_) => Err(BatchError::at(format!("'{key}' must be an array of entries (or null)"), at)),
            None => Err(BatchError::syntax("EOF while parsing an object", at)),
        }
    }

    /// Finds the end (exclusive, in `buf`) of the value starting at `pos`, reading more as needed; `None` once
    /// it is longer than `limit`. Strings are skipped with `memchr`; nesting is counted, not checked (the
    /// entry's own parse checks it). At the end of the file, the end of what there is.
    fn scan_value(&mut self, limit: usize) -> Result<Option<usize>, BatchError> {
        let mut i = 0; // relative to pos: `fill` moves the buffer
        let mut depth = 0usize;
        let mut in_string = false;
        loop {
            if i > limit {
                return Ok(None);
            }
            let at = self.pos + i;
            if at >= self.buf.len() || (in_string && self.buf[at] == b'\\' && at + 1 >= self.buf.len()) {
                if !self.fill()? {
                    return Ok(Some(self.buf.len()));
                }
                continue;
            }
            if in_string {
                match memchr::memchr2(b'"', b'\\', &self.buf[at..]) {
                    Some(k) if self.buf[at + k] == b'\\' => i += k + 2,
                    Some(k) => {
                        i += k + 1;
                        in_string = false;
                        if depth == 0 {
                            return Ok(Some(self.pos + i));
                        }
                    }
                    None => i = self.buf.len() - self.pos,
                }
                continue;
            }
            match self.buf[at] {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return Ok(Some(at)),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(Some(at + 1));
                    }
                }
                b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Ok(Some(at)),
                _ => {}
            }
            i += 1;
        }
    }

    /// Cuts the entry starting at `pos` out of the stream.
    fn entry(&mut self) -> Result<RawEntry, BatchError> {
        let (kind, key) = self.array.clone().expect("inside an array");
        let at = self.here();
        let index = self.next_index;
        let too_large = || {
            BatchError::at(
                format!(
                    "{} is over {} MiB; a batch entry holds at most that much JSON: put large data in its own \
                     file container (compressedBinaryDataFileId)",
                    JsonPath::default().key(&key).index(index),
                    MAX_ENTRY_BYTES / (1024 * 1024)
                ),
                at,
            )
        };
        let end = self.scan_value(MAX_ENTRY_BYTES)?.ok_or_else(too_large)?;
        // UTF-8 is checked by the entry's parse, which reads every string (see `RawEntry::explain`).
        let bytes = self.buf[self.pos..end].to_vec();
        self.advance(end - self.pos);
        let entry = RawEntry { kind, index, key, bytes, at };
        if self.eof && self.pos == self.buf.len() {
            // The file ends inside the entry: its own parse says where and how.
            return Err(entry
                .deserialize(std::marker::PhantomData::<IgnoredAny>)
                .err()
                .unwrap_or_else(|| BatchError::syntax("EOF while parsing a list", self.here())));
        }
        self.next_index += 1;
        match kind {
            EntryKind::AddOrUpdate | EntryKind::Merge => self.summary.add_or_update += 1,
            EntryKind::Delete => self.summary.delete += 1,
            EntryKind::PartialUpdate => self.summary.partial_update += 1,
            EntryKind::Members | EntryKind::Mappings | EntryKind::Deleted => self.summary.identities += 1,
        }
        self.state = State::AfterEntry;
        Ok(entry)
    }

    /// Moves through the top-level structure to the next entry, or to the end.
    fn step(&mut self) -> Result<Option<RawEntry>, BatchError> {
        loop {
            match self.state {
                State::Start => match self.peek_token()? {
                    Some(b'{') => {
                        self.advance(1);
                        self.state = State::FirstKey;
                    }
                    Some(_) => {
                        return Err(BatchError::at(
                            format!("the batch file must be a JSON object {}", self.layout.shape),
                            self.here(),
                        ));
                    }
                    None if self.base + self.pos as u64 == 0 => {
                        return Err(BatchError::content("the batch file is empty".to_string()));
                    }
                    None => return Err(BatchError::syntax("EOF while parsing a value", self.here())),
                },
                State::FirstKey | State::Key => match self.peek_token()? {
                    Some(b'"') => {
                        let (kind, key) = self.key()?;
                        self.array_start(kind, key)?;
                    }
                    Some(b'}') if self.state == State::FirstKey => {
                        self.advance(1);
                        self.state = State::End;
                    }
                    Some(b'}') => return Err(BatchError::syntax("trailing comma", self.here())),
                    Some(_) => return Err(BatchError::syntax("expected a key string", self.here())),
                    None => return Err(BatchError::syntax("EOF while parsing an object", self.here())),
                },
                State::FirstEntry | State::Entry => match self.peek_token()? {
                    Some(b']') if self.state == State::FirstEntry => {
                        self.advance(1);
                        self.state = State::AfterArray;
                    }
                    Some(b']') => return Err(BatchError::syntax("trailing comma", self.here())),
                    Some(_) => return self.entry().map(Some),
                    None => return Err(BatchError::syntax("EOF while parsing a list", self.here())),
                },
                State::AfterEntry => {
                    if self.expect(b",]", "`,` or `]`", "a list")? == b',' {
                        self.state = State::Entry;
                    } else {
                        self.state = State::AfterArray;
                    }
                }
                State::AfterArray => {
                    if self.expect(b",}", "`,` or `}`", "an object")? == b',' {
                        self.state = State::Key;
                    } else {
                        self.state = State::End;
                    }
                }
                State::End => match self.peek_token()? {
                    None => {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    Some(_) => return Err(BatchError::syntax("trailing characters", self.here())),
                },
                State::Done => return Ok(None),
            }
        }
    }
}

impl<R: Read> Iterator for BatchReader<R> {
    type Item = Result<RawEntry, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.step();
        if next.is_err() {
            self.state = State::Done;
        }
        next.transpose()
    }
}

fn delete_entry(value: &Json, path: &JsonPath) -> Result<(String, bool), String> {
    let document_id = match value.get("documentId") {
        Some(Json::String(id)) if !id.trim().is_empty() => id.clone(),
        _ => return Err(format!("{path}{MISSING_ID}")),
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
            return Err(de::Error::custom(format!("{}{MISSING_ID}", self.path.borrow())));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &[u8]) -> Result<BatchSummary, String> {
        validate(text).map_err(|e| e.message)
    }

    /// Every entry parsed, and how reading ended.
    fn entries(text: &[u8]) -> (Vec<BatchEntry>, Result<BatchSummary, BatchError>) {
        let mut reader = BatchReader::new(text);
        let mut got = Vec::new();
        for entry in &mut reader {
            match entry.and_then(|raw| raw.parse()) {
                Ok(entry) => got.push(entry),
                Err(error) => return (got, Err(error)),
            }
        }
        (got, Ok(reader.summary()))
    }

    #[test]
    fn counts_entries_in_any_key_case() {
        let text = br#"{"AddOrUpdate":[{"DocumentId":"file://a","Data":"x"},{"documentId":"file://b","data":"y"}],
                        "delete":[{"documentId":"file://c","deleteChildren":true}]}"#;
        assert_eq!(
            check(text).unwrap(),
            BatchSummary { add_or_update: 2, delete: 1, identities: 0, partial_update: 0 }
        );
        let (got, result) = entries(text);
        assert_eq!(result.unwrap(), BatchSummary { add_or_update: 2, delete: 1, identities: 0, partial_update: 0 });
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
            (br#"{"addOrUpdate":[{"documentId":"a","data":"x"},{"data":"x"}]}"#, "addOrUpdate[1] has no 'documentId' at line 1, column 47 (byte offset 46)"),
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
    fn pinpoints_faults_of_the_top_level_and_of_pretty_printed_files() {
        let cases: [(&[u8], &str); 9] = [
            (
                br#"{"addOrUpdate":[{"documentId":"a","data":"x"},]}"#,
                "not valid JSON: trailing comma at line 1, column 47 (byte offset 46)",
            ),
            (br#"{"delete":[],}"#, "not valid JSON: trailing comma at line 1, column 14"),
            (br#"{"delete":[]} x"#, "not valid JSON: trailing characters at line 1, column 15"),
            (br#"{"delete":[] "addOrUpdate":[]}"#, "not valid JSON: expected `,` or `}` at line 1, column 14"),
            (br#"{"delete" []}"#, "not valid JSON: expected `:` at line 1, column 11"),
            (br#"{"delete":{}}"#, "'delete' must be an array of entries (or null) at line 1, column 11"),
            (br#"[{"documentId":"a"}]"#, "must be a JSON object"),
            (br#"{"delete":[{"documentId":"a"}"#, "not valid JSON: EOF while parsing a list at line 1, column 30"),
            (
                b"{\n  \"delete\": [\n    {\"documentId\": \"a\"},\n    {\"documentId\": \"b\" \"x\": 1}\n  ]\n}",
                "not valid JSON: expected `,` or `}` at line 4, column 24 (byte offset 64)",
            ),
        ];
        for (text, expected) in cases {
            let message = check(text).unwrap_err();
            assert!(message.contains(expected), "{message:?} should contain {expected:?}");
        }
        assert_eq!(check(br#" { "delete" : null , "addOrUpdate" : [ ] } "#).unwrap(), BatchSummary::default());
        let nested = b"{\"addOrUpdate\":[{\"documentId\":\"a\",\"tags\":[\"ok\",\"\xc3\x28\"],\"data\":\"x\"}]}";
        assert!(check(nested).unwrap_err().contains("not UTF-8: the byte 0xC3 at byte offset 48"));
        assert!(
            check(br#"{"addOrUpdate":[{"documentId":"a","data":"x\"]}"#)
                .unwrap_err()
                .contains("EOF while parsing a string")
        );
        assert_eq!(check(br#"{"addOrUpdate":[{"documentId":"a","data":"x\\\"]}"}]}"#).unwrap().add_or_update, 1);
    }

    #[test]
    fn windows_end_at_their_limits_and_a_fault_comes_after_the_entries_before_it() {
        let text = br#"{"delete":[{"documentId":"a"},{"documentId":"b"},{"documentId":"c"}] "x"}"#;
        let mut reader = BatchReader::new(&text[..]);
        assert_eq!(reader.next_window(2, usize::MAX).unwrap().len(), 2);
        assert_eq!(reader.next_window(2, usize::MAX).unwrap().len(), 1, "the entry before the fault");
        assert!(reader.next_window(2, usize::MAX).unwrap_err().message.contains("expected `,` or `}`"));
        let mut reader = BatchReader::new(&text[..]);
        assert_eq!(reader.next_window(10, 1).unwrap().len(), 1, "one entry reaches the byte limit");
    }

    #[test]
    fn an_entry_over_the_limit_is_refused_without_holding_more() {
        let data = "x".repeat(MAX_ENTRY_BYTES);
        let text =
            format!(r#"{{"addOrUpdate":[{{"documentId":"a","data":"ok"}},{{"documentId":"b","data":"{data}"}}]}}"#);
        let message = check(text.as_bytes()).unwrap_err();
        assert!(message.contains("addOrUpdate[1] is over 32 MiB"), "{message}");
        assert!(message.contains("compressedBinaryDataFileId"), "{message}");
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
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let text = r#"{"addOrUpdate":[{"documentId":"file://été/文档","data":"ü \"q\" \\"}]}"#;
        assert_eq!(validate(Trickle(text.as_bytes())).unwrap().add_or_update, 1);
        let entry = BatchReader::new(Trickle(text.as_bytes())).next().unwrap().unwrap().parse().unwrap();
        assert!(
            matches!(entry, BatchEntry::AddOrUpdate { item: Ok(item), .. } if item.content == Content::Text(r#"ü "q" \"#.into()))
        );
        let truncated = &text.as_bytes()[..text.find('文').unwrap() + 1];
        assert!(validate(Trickle(truncated)).unwrap_err().message.contains("not UTF-8"));
    }

    /// A file whose reading fails halfway (its disk or store) is not a faulty file: the error says it could not be
    /// read, so callers retry instead of refusing it; a decoder's invalid data is the content's fault.
    #[test]
    fn a_failed_read_is_told_from_a_faulty_file() {
        let text = br#"{"addOrUpdate":[{"documentId":"a","data":"x"}]}"#;
        let failing = |kind| text[..20].chain(FailingRead(kind));
        let error = validate(failing(std::io::ErrorKind::ConnectionReset)).unwrap_err();
        assert!(error.unreadable && error.message.contains("could not be read: the store went away"), "{error:?}");
        let error = validate(failing(std::io::ErrorKind::InvalidData)).unwrap_err();
        assert!(!error.unreadable, "{error:?}");
        assert!(!validate(&b"{"[..]).unwrap_err().unreadable, "a truncated file is the content's fault");
    }

    struct FailingRead(std::io::ErrorKind);

    impl Read for FailingRead {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(self.0, "the store went away"))
        }
    }
}
