//! The pipeline from the journal to the indexes and the item log: the stage after the edge (HTTP) has made an
//! operation durable.
//!
//! ```text
//!   journal ──read in order──▶ decode ──▶ prepare (parallel: decompress, extract, build) ──▶ apply (in order)
//!                                                                                               │
//!          release segments ◀── commit (item log first, then every changed index, with its position) ◀┘
//! ```
//!
//! One thread owns every index writer (`pipeline`); batch files are applied window by window (`pipeline::batch`);
//! items are prepared in parallel (`prepare`); file containers, the item log's size and age are kept in
//! bounds by `housekeeping`; when nodes share the journal, each applies only the organizations whose index lease
//! it holds, publishes their snapshots and restores those it takes over (`snapshot`). The applier is given narrow inputs ([`Inputs`]: the journal, catalog, item log,
//! blobs, clock and the registry searches read) and reports what the rest of the server needs (quotas,
//! readiness, metrics) to an [`Observer`].
//!
//! At start the applier resumes after the lowest committed position; records an index already holds are
//! skipped, so after a crash every operation is applied exactly once. A commit that fails is never skipped
//! over: what was applied since the last commit is dropped and applied again from there, with backoff.

mod housekeeping;
mod observer;
mod pipeline;
mod prepare;
mod registry;
mod snapshot;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use intake_index::security::IdentityGraphs;
use intake_store::{BlobStore, Catalog, Clock, IdentityStore, ItemLog, Journal, Ownership};

pub use observer::Observer;
pub use prepare::field_types;
pub use registry::{CommitMarks, IndexRegistry, SearchHandle};

use crate::pipeline::Applier;

/// What the applier reads and writes.
#[derive(Clone)]
pub struct Inputs {
    pub journal: Arc<dyn Journal>,
    pub catalog: Arc<dyn Catalog>,
    pub item_log: Arc<dyn ItemLog>,
    /// The bytes of file containers.
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    /// Where searches find each organization's index; the applier registers each index it opens.
    pub registry: Arc<IndexRegistry>,
    /// What each index's last commit holds: the logs API shows only those outcomes.
    pub commit_marks: Arc<CommitMarks>,
    /// Told of commits, failures and progress.
    pub observer: Arc<dyn Observer>,
    /// Where identity operations are stored (at commits) …
    pub identity_store: Arc<dyn IdentityStore>,
    /// … and the graphs search resolves users in, which the applier changes as it applies them.
    pub identities: Arc<IdentityGraphs>,
    /// Which organizations' indexes this node owns: it applies only their records, and, when nodes share the
    /// journal, publishes their snapshots and takes over those of nodes that stopped.
    pub ownership: Arc<dyn Ownership>,
    /// Where index snapshots are published (the containers' store, another folder or prefix).
    pub snapshots: Arc<dyn BlobStore>,
}

#[derive(Debug, Clone)]
pub struct ApplierConfig {
    /// Where the organization indexes live (one folder each).
    pub index_dir: PathBuf,
    /// Indexing threads per organization index.
    pub threads: usize,
    /// Indexing memory per organization index.
    pub memory_bytes: usize,
    /// How long applied operations wait before a commit makes them searchable.
    pub commit_interval: Duration,
    /// Journal bytes read and prepared at once.
    pub batch_bytes: usize,
    /// The most bytes an item's data may expand to.
    pub max_item_bytes: u64,
    /// The bounds of converting one document to text.
    pub conversion: intake_index::convert::Budget,
    /// Caps every `queueDelay` (tests and CI run the rebuild flow without waiting 15 minutes).
    pub queue_delay_cap_minutes: Option<u32>,
    /// Item log entries older than this are deleted.
    pub log_retention: Duration,
    /// The item log's oldest entries are deleted past this size.
    pub log_max_bytes: u64,
    /// When nodes share the journal: the least time between two snapshots of an index.
    pub snapshot_interval: Duration,
}

/// The running applier thread.
pub struct ApplierHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApplierHandle {
    /// Opens the existing indexes, positions on the journal and starts the applier thread; returns once the
    /// indexes are open (or could not be).
    pub fn start(inputs: Inputs, config: ApplierConfig) -> anyhow::Result<ApplierHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let (opened, opening) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new().name("intake-applier".into()).spawn(move || {
                // Everything this thread starts — tantivy's indexing and merge threads, the rayon pool —
                // inherits its priority: bursts of pushes are accepted at full speed, indexing takes the rest.
                housekeeping::lower_thread_priority();
                match Applier::open(inputs, config, stop) {
                    Ok((applier, reader)) => {
                        let _ = opened.send(Ok(()));
                        applier.run(reader);
                    }
                    Err(error) => {
                        let _ = opened.send(Err(error));
                    }
                }
            })?
        };
        opening.recv().map_err(|_| anyhow::anyhow!("the applier thread stopped while opening"))??;
        Ok(ApplierHandle { stop, thread: Some(thread) })
    }

    /// Stops after committing what was applied.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A handle dropped without [`ApplierHandle::stop`] (a server dropped as it ran) still stops the thread, without
/// waiting for it: the thread lets go of the stores (and a shared database's connections) as it ends.
impl Drop for ApplierHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
