//! The journal: the durable, ordered log of accepted operations.
//!
//! [`Journal::append`] resolves only once its records are durable. Appends that arrive while a sync is in
//! progress wait for the next one and share it (group commit), so sixty-four concurrent clients cost one
//! sync, not sixty-four. Records up to a position every index has committed may be reclaimed
//! ([`Journal::release_through`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

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
    #[error("the journal's database is unavailable: {0}")]
    Unavailable(String),
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
    /// The next records until `max_bytes` are reached (the last one may go past them; at least one if any is
    /// durable): a batch that reached them says more may be waiting.
    fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<(Seq, Vec<u8>)>, JournalError>;
}

/// One append waiting for its group's sync.
pub(crate) struct AppendRequest {
    pub records: Vec<Vec<u8>>,
    pub done: oneshot::Sender<Result<Seq, JournalError>>,
}

impl AppendRequest {
    /// Sends an append to a journal's writer and waits for its answer.
    pub fn send(sender: tokio::sync::mpsc::Sender<AppendRequest>, records: Vec<Vec<u8>>) -> AppendFuture {
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            sender.send(AppendRequest { records, done }).await.map_err(|_| JournalError::Closed)?;
            wait.await.map_err(|_| JournalError::Closed)?
        })
    }
}

/// An append waiting in a writer's queue: what it weighs, and how it is answered.
pub(crate) trait Waiting {
    fn bytes(&self) -> usize;
    fn answer(self, result: Result<Seq, JournalError>);
}

impl Waiting for AppendRequest {
    fn bytes(&self) -> usize {
        self.records.iter().map(Vec::len).sum()
    }

    fn answer(self, result: Result<Seq, JournalError>) {
        let _ = self.done.send(result);
    }
}

/// `first` and the appends already waiting behind it, up to `max_bytes`: what one sync makes durable.
pub(crate) fn gather<W: Waiting>(first: W, receiver: &mut tokio::sync::mpsc::Receiver<W>, max_bytes: usize) -> Vec<W> {
    let mut bytes = first.bytes();
    let mut group = vec![first];
    while bytes < max_bytes {
        match receiver.try_recv() {
            Ok(next) => {
                bytes += next.bytes();
                group.push(next);
            }
            Err(_) => break,
        }
    }
    group
}

/// Answers every append of a group with the same failure.
pub(crate) fn refuse<W: Waiting>(group: Vec<W>, error: &JournalError) {
    for request in group {
        request.answer(Err(error.clone()));
    }
}

/// The durable end of a journal, for async watchers and for threads that wait without a runtime, and the
/// syncs that moved it. It only moves forward.
pub(crate) struct DurableEnd {
    seq: Mutex<Seq>,
    advanced: Condvar,
    syncs: AtomicU64,
    watch: watch::Sender<Seq>,
}

impl DurableEnd {
    pub fn new(seq: Seq) -> Arc<DurableEnd> {
        Arc::new(DurableEnd {
            seq: Mutex::new(seq),
            advanced: Condvar::new(),
            syncs: AtomicU64::new(0),
            watch: watch::Sender::new(seq),
        })
    }

    /// Records up to `seq` are durable.
    pub fn publish(&self, seq: Seq) {
        let mut end = self.seq.lock().expect("durable end lock");
        if seq > *end {
            *end = seq;
            self.watch.send_replace(seq);
            self.advanced.notify_all();
        }
    }

    /// A sync of this process made records up to `seq` durable.
    pub fn synced(&self, seq: Seq) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.publish(seq);
    }

    pub fn watch(&self) -> watch::Receiver<Seq> {
        self.watch.subscribe()
    }

    pub fn wait_beyond(&self, seq: Seq, timeout: Duration) -> Seq {
        let guard = self.seq.lock().expect("durable end lock");
        let (guard, _) = self.advanced.wait_timeout_while(guard, timeout, |end| *end <= seq).expect("durable end lock");
        *guard
    }

    pub fn sync_count(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}
