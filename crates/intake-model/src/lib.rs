//! Intake's wire model: the Push API's types, their strict parsing and validation, and the error catalog.
//!
//! Pure: no I/O and no async, so the server, the client (`intake push --dry-run`) and the tests share one
//! definition of what a valid request is. Parsing is liberal where the real clients differ (key case, enum
//! spellings, `+` in query strings) and strict where the contract is (duplicate keys, sizes, types).

pub mod access;
pub mod batch;
pub mod compression;
pub mod dates;
pub mod error;
pub mod field;
pub mod identity;
pub mod item;
pub mod json;
pub mod logs;
pub mod operation;
pub mod permissions;
pub mod query;
pub mod quota;
pub mod stream;

pub use access::Privilege;
pub use compression::CompressionType;
pub use error::{ApiError, CATALOG, ErrorCode};
pub use field::FieldType;
pub use item::{Content, Item, MetaValue, Scalar};
pub use operation::{Operation, OperationKind, SourceStatus};
pub use query::QueryParams;

/// The order of an operation on an item: the highest wins. Coveo defaults it to epoch milliseconds.
pub type OrderingId = i64;

/// Sizes are binary: generous on the byte, never unbounded.
pub mod limits {
    const MIB: u64 = 1024 * 1024;
    /// A single-item (or single identity) request body.
    pub const MAX_SINGLE_REQUEST_BYTES: u64 = 6 * MIB;
    /// Inline `data` or `compressedBinaryData` text of one item.
    pub const MAX_INLINE_DATA_BYTES: u64 = 5 * MIB;
    /// A file container, and an item's data once decompressed.
    pub const MAX_CONTAINER_BYTES: u64 = 256 * MIB;
    /// An item's data once decompressed.
    pub const MAX_ITEM_DECOMPRESSED_BYTES: u64 = 256 * MIB;
    /// A `documentId`.
    pub const MAX_DOCUMENT_ID_BYTES: usize = 2000;
    /// Identities named by one item's permissions (Coveo: 5,000; more is rejected after the 202).
    pub const MAX_PERMISSIONS_PER_ITEM: usize = 5000;
    /// `queueDelay` of delete-older-than, in minutes (one week).
    pub const MAX_QUEUE_DELAY_MINUTES: u64 = 7 * 24 * 60;
    /// Coveo's default `queueDelay`.
    pub const DEFAULT_QUEUE_DELAY_MINUTES: u32 = 15;
}
