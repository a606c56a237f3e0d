//! Streams of catalog sources (the Stream API's full loads): a record per stream with its chunks, the file
//! containers its batch files are uploaded to. A stream is open until closed (its load is then journaled) or
//! until it expires, when its chunks are deleted with it.

use crate::StoreError;

/// One stream of a catalog source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogStream {
    pub stream_id: String,
    pub organization_id: String,
    pub source_id: String,
    pub opened_at_ms: i64,
    /// An open stream is forgotten, with its chunks, at this time.
    pub expires_at_ms: i64,
    /// When it was closed; `None` while open.
    pub closed_at_ms: Option<i64>,
    /// Its file containers in upload order: the one `open` made, then one per `chunk`.
    pub chunks: Vec<String>,
}

/// The stream records.
pub trait StreamStore: Send + Sync {
    fn create_stream(&self, stream: &CatalogStream) -> Result<(), StoreError>;
    /// A stream of the organization, open or closed.
    fn stream(&self, organization_id: &str, stream_id: &str) -> Result<Option<CatalogStream>, StoreError>;
    /// Appends a chunk to an open stream; false when the stream is not open (closed, or gone).
    fn add_chunk(&self, stream_id: &str, file_id: &str) -> Result<bool, StoreError>;
    /// Closes an open stream at `closed_at_ms`; false when it was not open (closed by another call).
    fn close_stream(&self, stream_id: &str, closed_at_ms: i64) -> Result<bool, StoreError>;
    /// Opens a stream again whose close was not accepted after all (its load could not be journaled).
    fn reopen_stream(&self, stream_id: &str) -> Result<(), StoreError>;
    /// When the source's last full load was accepted (its last stream closed); `None` if none ever was.
    fn last_load_ms(&self, organization_id: &str, source_id: &str) -> Result<Option<i64>, StoreError>;
    /// Open streams past their expiry.
    fn expired_streams(&self, now_ms: i64) -> Result<Vec<CatalogStream>, StoreError>;
    /// Deletes the record of a stream and of its chunks (the containers are the container store's).
    fn forget_stream(&self, stream_id: &str) -> Result<(), StoreError>;
}
