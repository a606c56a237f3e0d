//! Intake's storage, behind one trait per concern so the embedded default and the scale-out backends
//! (PostgreSQL, S3) are interchangeable and pass the same contract suite (`tests/contract.rs`):
//!
//! | concern | trait | embedded backend |
//! |---|---|---|
//! | organizations, sources, keys, fields, settings | [`OrganizationStore`] | [`SqliteCatalog`] |
//! | limits, daily usage, fault rules | [`LimitStore`] | [`SqliteCatalog`] |
//! | file container records | [`ContainerStore`] | [`SqliteCatalog`] |
//! | security providers | [`ProviderStore`] | [`SqliteCatalog`] |
//! | streams of catalog sources | [`StreamStore`] | [`SqliteCatalog`] |
//! | security identities | [`IdentityStore`] | [`SqliteIdentities`] |
//! | container bytes | [`BlobStore`] | [`LocalBlobs`] |
//! | item outcomes | [`ItemLog`] | [`SqliteItemLog`] |
//! | accepted operations | [`Journal`] | [`FileJournal`] |
//!
//! [`Catalog`] is the first five together. The SQLite files carry versioned schemas ([`sqlite::migrations`]).
//!
//! For several nodes sharing their state, [`postgres`] implements the catalog ([`PgCatalog`]), the identity
//! store ([`PgIdentities`]), the journal ([`PgJournal`]) and the item log ([`PgItemLog`]) on PostgreSQL, with a
//! versioned schema too, and [`s3`] the blob store on S3-compatible object storage ([`S3Blobs`]). Which node
//! owns each organization's index is [`Ownership`]: the one node on the embedded backend, leases in PostgreSQL
//! ([`PgOwnership`]) when nodes share it; their limits are counted in [`SharedCounters`] ([`PgCounters`]).

mod bridge;
mod cache;
pub mod catalog;
pub mod clock;
pub mod containers;
pub mod counters;
pub mod disk;
pub mod item_log;
mod item_log_sql;
pub mod journal;
pub mod limits;
pub mod local;
pub mod lock;
pub mod ownership;
pub mod postgres;
pub mod s3;
pub mod security;
pub mod sqlite;
pub mod streams;
#[doc(hidden)]
pub mod testing;

pub use catalog::{ApiKey, Catalog, Field, Organization, OrganizationStore, Source};
pub use clock::{Clock, ManualClock, SystemClock};
pub use containers::{BlobInfo, BlobStore, BlobWriter, ContainerStore, FileContainer};
pub use counters::{CallTaken, ClusterItems, RateBucket, SharedCounters, UsageChange};
pub use item_log::{
    ActivityCount, ActivityQuery, CommittedThrough, IdMatching, ItemLog, LogEntry, LogQuery, StoredLogEntry,
};
pub use journal::{AppendFuture, Journal, JournalError, JournalReader, Seq};
pub use limits::{DailyUsage, LimitStore, StoredFault};
pub use local::{FileJournal, LocalBlobs};
pub use lock::{DataDirLock, LockError};
pub use ownership::{Owner, Ownership, SingleNode, Snapshot};
pub use postgres::{LeaseTimes, PgCatalog, PgCounters, PgIdentities, PgItemLog, PgJournal, PgOwnership, Postgres};
pub use s3::{S3Blobs, S3Location};
pub use security::{Alias, EMAIL_PROVIDER, IdentityStore, ProviderStore, SecurityProvider, StoredIdentity};
pub use sqlite::{SqliteCatalog, SqliteIdentities, SqliteItemLog};
pub use streams::{CatalogStream, StreamStore};

/// A storage failure, or a write that conflicts with what is stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Schema(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("PostgreSQL error: {}", postgres_detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A shared store (PostgreSQL) cannot be reached: nothing was written, a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
}

/// What PostgreSQL said, not only that it said something ("db error").
fn postgres_detail(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{error}: {db}"),
        None => error.to_string(),
    }
}

impl StoreError {
    /// The storage is full (no space left, or over a quota): the write may succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            StoreError::Io(e) => is_disk_full(e),
            StoreError::Postgres(e) => StoreError::postgres_disk_full(e),
            _ => false,
        }
    }

    /// A shared store could not be reached or lost the connection: the write may succeed once it is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(e) => StoreError::postgres_unavailable(e),
            // A reader of a store failing halfway says so by the error it carries.
            StoreError::Io(e) => {
                e.get_ref().and_then(|inner| inner.downcast_ref::<StoreError>()).is_some_and(StoreError::is_unavailable)
            }
            _ => false,
        }
    }

    /// What was asked for is not there (a blob, say).
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
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
