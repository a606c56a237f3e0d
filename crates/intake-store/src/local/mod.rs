//! The embedded journal and blob store: files in the data directory.

mod blobs;
mod journal;
mod spares;

pub use blobs::LocalBlobs;
pub use journal::FileJournal;
