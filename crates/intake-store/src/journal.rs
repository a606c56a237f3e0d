//! The journal: the durable, ordered log of accepted operations.
//!
//! [`Journal::append`] resolves only once its records are durable. Appends that arrive while a sync is in
//! progress wait for the next one and share it (group commit), so sixty-four concurrent clients cost one
//! sync, not sixty-four. Records up to a position every index has committed may be reclaimed
//! ([`Journal::release_through`]).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

/// Position of a record in the journal; the first record is 1, 0 means "nothing".
pub type Seq = u64;

/// What an append resolves to: the sequence number of its last record.
pub type AppendFuture = Pin<Box<dyn Future<Output = Result<Seq, JournalError>> + Send>>;

#[derive(Debug, thiserror::Error, Clone)]
pub enum JournalError {
    #[error("the journal could not write to disk: {0}")]
    Write(String),
    #[error("the journal is closed")]
    Closed,
    #[error("the journal could not be read: {0}")]
    Read(String),
}

/// A durable, ordered log of opaque records.
pub trait Journal: Send + Sync + 'static {
    /// Appends records in order; resolves once they are durable.
    fn append(&self, records: Vec<Vec<u8>>) -> AppendFuture;
    /// A reader positioned after `after`.
    fn reader(&self, after: Seq) -> Result<Box<dyn JournalReader>, JournalError>;
    /// The last durable sequence number, updated after every sync.
    fn durable(&self) -> watch::Receiver<Seq>;
    /// Blocks until a record after `seq` is durable or `timeout` passes; returns the durable end.
    fn wait_beyond(&self, seq: Seq, timeout: Duration) -> Seq;
    /// How many syncs made records durable since the journal was opened (fewer than appends: group commit).
    fn sync_count(&self) -> u64;
    /// Records up to `seq` are no longer needed; their storage may be reclaimed.
    fn release_through(&self, seq: Seq) -> Result<(), JournalError>;
}

/// Reads records in order, never past the durable end.
pub trait JournalReader: Send {
    /// Up to `max_bytes` of records (at least one if any is durable).
    fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<(Seq, Vec<u8>)>, JournalError>;
}
