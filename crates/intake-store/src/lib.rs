//! Intake's storage: the catalog (organizations, sources, settings), the journal of accepted operations,
//! and the item log, behind small types so the embedded default (SQLite + local files) and the scale-out
//! parts (PostgreSQL, S3) can pass the same tests.

pub mod catalog;
pub mod clock;
pub mod containers;
pub mod disk;
pub mod item_log;
pub mod journal;
pub mod lock;
pub mod quotas;

pub use catalog::{ApiKey, Catalog, Field, Organization, Source};
pub use clock::{Clock, ManualClock, SystemClock};
pub use containers::{FileContainer, LocalBlobs};
pub use item_log::{CommittedThrough, ItemLog, LogEntry, LogQuery};
pub use journal::{FileJournal, Journal, JournalError, JournalReader, Seq};
pub use lock::{DataDirLock, LockError};
pub use quotas::{DailyUsage, StoredFault};

/// A storage failure, or a write that conflicts with what is stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// The storage is full (no space left, or over a quota): the write may succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            StoreError::Io(e) => is_disk_full(e),
            _ => false,
        }
    }

    /// A uniqueness violation becomes a [`StoreError::Conflict`] with `message`; anything else stays as it is.
    pub(crate) fn conflict_or(error: rusqlite::Error, message: String) -> StoreError {
        match &error {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(message)
            }
            _ => StoreError::Sqlite(error),
        }
    }
}

/// Whether an I/O error means the disk (or the user's quota) is full: ENOSPC or EDQUOT.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}
