//! The item log: every item operation's outcome, queryable as Coveo's Logs API answers it.
//!
//! The applier writes a group of entries in one transaction before the index commit that makes them true.
//! Entries are keyed by (journal seq, index within the operation). A query shows only the entries whose
//! operation the organization's index has committed ([`CommittedThrough`]): an outcome is reported once it is
//! true, never before. So entries beyond the commit are drafts: when an operation is applied again (a replay
//! after a crash or a failed commit), its outcomes replace the draft's, which may differ (a delete-older-than
//! runs when it is due, so a replay may run it between other operations), and nothing is logged twice.

use intake_model::logs::{LogOperation, LogResult, LogTask};

use crate::StoreError;

/// One outcome of one operation on one item.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub organization_id: String,
    pub source_id: String,
    pub document_id: String,
    pub operation: LogOperation,
    pub result: LogResult,
    pub task: LogTask,
    /// Why, for anything but COMPLETED.
    pub reason: Option<String>,
    pub request_id: String,
    pub ordering_id: i64,
    pub journal_seq: u64,
    /// The outcome's place among those of its operation (a batch or a delete with children has many).
    pub item_index: u32,
    pub datetime_ms: i64,
}

/// How far an organization's index has committed, which decides the entries a query shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedThrough {
    /// Every operation up to this journal record is committed…
    pub journal_seq: u64,
    /// …except these delete-older-than operations, which had not run (or whose run was not committed).
    pub pending: Vec<u64>,
    /// Of the batch being applied when the commit was made, (its journal record, its outcomes committed).
    pub batch: Option<(u64, u32)>,
}

/// How `documentId` is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMatching {
    Exact,
    Partial,
    /// `*` is any run of characters, `?` any one.
    Wildcard,
}

/// A filter over the log, as the Logs API's query and body give it. Empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub organization_id: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub document_id: Option<(String, IdMatching)>,
    pub source_ids: Vec<String>,
    pub exclude_source_ids: Vec<String>,
    pub operations: Vec<LogOperation>,
    pub exclude_operations: Vec<LogOperation>,
    pub results: Vec<LogResult>,
    pub exclude_results: Vec<LogResult>,
    pub tasks: Vec<LogTask>,
    pub exclude_tasks: Vec<LogTask>,
    pub page: u32,
    pub per_page: u32,
    /// What the organization's index has committed: entries beyond it are not shown.
    pub committed: CommittedThrough,
}

/// Time buckets of an organization's committed outcomes: `buckets` of `bucket_ms` from `from_ms`.
#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    pub organization_id: String,
    pub from_ms: i64,
    pub bucket_ms: i64,
    pub buckets: u32,
    /// What the organization's index has committed: entries beyond it are not counted.
    pub committed: CommittedThrough,
}

/// How many outcomes of one result fell in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityCount {
    /// From 0, the oldest.
    pub bucket: u32,
    pub result: LogResult,
    pub count: u64,
}

/// A stored entry with its row id (the `guid` of the Logs API answer derives from it).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLogEntry {
    pub row_id: i64,
    pub entry: LogEntry,
}

/// The item log of one backend.
pub trait ItemLog: Send + Sync {
    /// Writes entries at once. An operation's entries from its first index on replace those an earlier
    /// attempt at it left (drafts: see the module documentation).
    fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError>;
    /// One page of entries, newest first, and whether another page follows.
    fn query(&self, query: &LogQuery) -> Result<(Vec<StoredLogEntry>, bool), StoreError>;
    /// The committed outcomes counted by time bucket and result (empty buckets left out).
    fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityCount>, StoreError>;
    /// Deletes entries older than `before_ms` (Coveo keeps 14 days); how many went.
    fn prune_before(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// The bytes the log's entries take.
    fn size_bytes(&self) -> Result<u64, StoreError>;
    /// Deletes the oldest entries until the log takes at most `max_bytes`; how many went.
    fn prune_to_size(&self, max_bytes: u64) -> Result<usize, StoreError>;
}
