//! File containers: a record in the catalog for each (owner, expiry, upload state), and the bytes in a
//! [`BlobStore`].
//!
//! An upload is streamed to a [`BlobWriter`] and becomes the container's content only when finished, whole
//! and durable, so a second upload replaces the first whole and a crash never leaves half a container. A
//! container handed to a batch or an item is `pinned`: expiry leaves it alone until the applier has committed
//! its content and deletes it.

use std::io::{Read, Write};

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContainer {
    pub file_id: String,
    pub organization_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Bytes uploaded; `None` until the first upload.
    pub size: Option<u64>,
    /// Handed to a batch or an item: kept until applied, whatever its expiry.
    pub pinned: bool,
}

/// The file container records.
pub trait ContainerStore: Send + Sync {
    fn create_container(&self, container: &FileContainer) -> Result<(), StoreError>;
    fn container(&self, file_id: &str) -> Result<Option<FileContainer>, StoreError>;
    /// Records that the container holds `size` bytes (an upload finished).
    fn set_container_size(&self, file_id: &str, size: u64) -> Result<(), StoreError>;
    /// Keeps the container past its expiry; true when this call pinned it (it was not pinned).
    fn pin_container(&self, file_id: &str) -> Result<bool, StoreError>;
    fn unpin_container(&self, file_id: &str) -> Result<(), StoreError>;
    /// Every pinned container.
    fn pinned_containers(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes the record (the bytes are the blob store's).
    fn forget_container(&self, file_id: &str) -> Result<(), StoreError>;
    /// Unpinned containers past their expiry.
    fn expired_containers(&self, now_ms: i64) -> Result<Vec<String>, StoreError>;
}

/// A blob as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub id: String,
    pub size: u64,
    /// When its content was written (milliseconds since the epoch, by the store's clock).
    pub written_at_ms: i64,
}

/// Where the bytes of file containers live: written once as a stream, read as a stream, deleted. No path or
/// other detail of the backend leaks out.
pub trait BlobStore: Send + Sync {
    /// A writer of `id`'s content; nothing changes under `id` until [`BlobWriter::finish`].
    fn create(&self, id: &str) -> Result<Box<dyn BlobWriter>, StoreError>;
    /// `id`'s content; an error of kind `NotFound` ([`StoreError::is_not_found`]) when there is none.
    fn open(&self, id: &str) -> Result<Box<dyn Read + Send>, StoreError>;
    /// Deletes `id`'s content; nothing when there is none.
    fn delete(&self, id: &str) -> Result<(), StoreError>;
    /// Every blob whole (not those being written), for the sweeps of blobs nothing names.
    fn list(&self) -> Result<Vec<BlobInfo>, StoreError>;

    /// Bytes held by every blob.
    fn total_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.list()?.iter().map(|blob| blob.size).sum())
    }

    /// A URL that uploads `id`'s content straight to the store (a presigned PUT) for `expires_in`, when the store
    /// hands them out; `virtual_hosted` asks for `bucket.host/key` addressing. `None`: uploads go through Intake.
    fn upload_url(
        &self,
        _id: &str,
        _expires_in: std::time::Duration,
        _virtual_hosted: bool,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// The size of `id`'s content, `None` when there is none (for content uploaded by [`BlobStore::upload_url`],
    /// which Intake did not see).
    fn size(&self, id: &str) -> Result<Option<u64>, StoreError>;
}

/// Content being written. Dropped without [`BlobWriter::finish`], it is discarded.
pub trait BlobWriter: Write + Send {
    /// Makes what was written the blob's content, durably and whole (replacing any before); its size.
    fn finish(self: Box<Self>) -> Result<u64, StoreError>;
}
