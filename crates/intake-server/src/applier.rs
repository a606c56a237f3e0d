//! The applier: reads the journal in order and applies each operation to its organization's index.
//!
//! One thread owns every index writer. A batch of records is decoded, then its items are prepared
//! (decompressed, text extracted) in parallel, then applied in journal order. Every `commit_interval` the
//! outcomes are written to the item log and every changed index is committed with the journal position it
//! now contains; then the journal segments no index needs are released.
//!
//! At start the applier resumes after the lowest committed position; records an index already holds are
//! skipped, so after a crash every operation is applied exactly once. `/ready` turns true once the backlog
//! found at start is applied and committed.
//!
//! A commit that fails (a full disk, say) is never skipped over: the applier drops what it applied since the
//! last commit, reopens the index, and applies the journal again from the last committed position, with
//! backoff, until a commit succeeds. Meanwhile `/ready` says why, and the logs API shows no outcome beyond
//! the last commit: COMPLETED means committed and searchable.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use intake_index::prepare::{FieldTypes, ItemTarget, PreparedItem, prepare_item};
use intake_index::schema::{Fields, build_schema};
use intake_index::{BatchProgress, OpInfo, OrgIndex, Outcome};
use intake_model::batch::{BatchEntry, BatchReader, RawEntry};
use intake_model::item::Item;
use intake_model::logs::{LogOperation, LogResult, LogTask};
use intake_model::{ErrorCode, Operation, OperationKind};
use intake_store::{CommittedThrough, LogEntry, Seq};
use rayon::prelude::*;

use crate::state::{AppState, SearchHandle};

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
    /// Caps every `queueDelay` (tests and CI run the rebuild flow without waiting 15 minutes).
    pub queue_delay_cap_minutes: Option<u32>,
    /// Item log entries older than this are deleted.
    pub log_retention: Duration,
    /// The item log's oldest entries are deleted past this size.
    pub log_max_bytes: u64,
}

/// How often the item log is pruned by age, and checked against its size limit.
const PRUNE_BY_AGE_INTERVAL: Duration = Duration::from_secs(3600);
const PRUNE_BY_SIZE_INTERVAL: Duration = Duration::from_secs(1);
/// An index with nothing to commit still records its position this often, so the journal can be released.
const IDLE_POSITION_INTERVAL: Duration = Duration::from_secs(30);
/// Items prepared at once. Each may expand to the item cap once decompressed, so this bounds the applier's
/// memory; it is a few times the core count, enough to keep every core busy.
const PREPARE_WINDOW: usize = 8;
/// Batch entries are parsed and prepared in windows of this many entries, or of this many bytes of JSON.
pub(crate) const BATCH_WINDOW_ENTRIES: usize = 64;
pub(crate) const BATCH_WINDOW_BYTES: usize = 16 * 1024 * 1024;
/// How often expired file containers are looked for.
const CONTAINER_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How often to commit while a backlog drains (at most; the configured interval when it is longer).
const BACKLOG_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The first wait after a failed commit; it doubles with each failure in a row, up to the longest.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
/// Below this much free space, a failure is reported as the disk being full.
const LOW_DISK_BYTES: u64 = 64 * 1024 * 1024;

pub struct ApplierHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApplierHandle {
    /// Stops after committing what was applied.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub struct Applier {
    state: AppState,
    /// Set when the server shuts down: the applier commits what it applied and ends, even inside a batch.
    stop: Arc<AtomicBool>,
    config: ApplierConfig,
    fields: Fields,
    indexes: HashMap<String, OrgIndex>,
    /// The last record applied (to the writers, maybe not yet committed).
    applied_seq: Seq,
    /// The durable end of the journal when the applier started: the backlog to replay before `/ready`.
    backlog_end: Seq,
    log_entries: Vec<LogEntry>,
    /// Acceptance times of the operations waiting for the next commit (for the searchable-latency metric).
    waiting_since: Vec<i64>,
    first_uncommitted: Option<Instant>,
    /// The last batch read was full: more records were waiting.
    draining_backlog: bool,
    last_full_commit: Instant,
    last_prune: Instant,
    last_prune_by_size: Instant,
    last_sweep: Instant,
    /// The last operation outcomes were logged for, and the index of its next outcome.
    logged: (Seq, u32),
    /// File containers whose content was applied at a journal position: deleted once it is committed.
    consumed: Vec<Consumed>,
    /// The batch file being applied, by organization: commits made meanwhile record how far it got.
    applying_batch: Option<(String, BatchProgress)>,
    /// Containers pinned when the applier started; those the replay does not consume are deleted once it ends.
    pinned_at_start: Vec<String>,
    /// Set when an index failed (a commit, a write, opening it): why. What was applied since the last commit
    /// is dropped and applied again from there, after a wait.
    rewind: Option<String>,
    /// Failures in a row, for the backoff.
    failures: u32,
    /// Outcomes by result since the last commit: counted in `/metrics` once committed.
    uncommitted_results: HashMap<&'static str, u64>,
}

/// A file container whose content was applied by the operation at `seq`.
struct Consumed {
    seq: Seq,
    organization_id: String,
    file_id: String,
}

impl Applier {
    /// Opens the existing indexes, positions on the journal and starts the applier thread.
    pub fn start(state: AppState, config: ApplierConfig) -> anyhow::Result<ApplierHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let (opened, opening) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new().name("intake-applier".into()).spawn(move || {
                // Everything this thread starts — tantivy's indexing and merge threads, the rayon pool —
                // inherits its priority: bursts of pushes are accepted at full speed, indexing takes the rest.
                lower_thread_priority();
                match Applier::open(state, config, stop) {
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

    /// Opens the existing indexes and positions a reader after the lowest committed journal record.
    fn open(
        state: AppState,
        config: ApplierConfig,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<(Applier, Box<dyn intake_store::JournalReader>)> {
        let mut applier = Applier {
            stop,
            backlog_end: *state.journal.durable().borrow(),
            state,
            fields: build_schema().1,
            config,
            indexes: HashMap::new(),
            applied_seq: 0,
            log_entries: Vec::new(),
            waiting_since: Vec::new(),
            first_uncommitted: None,
            draining_backlog: false,
            last_full_commit: Instant::now(),
            // Due at once (an Instant cannot go before the clock's start, which may be the machine's boot).
            last_prune: Instant::now().checked_sub(PRUNE_BY_AGE_INTERVAL).unwrap_or_else(Instant::now),
            last_prune_by_size: Instant::now().checked_sub(PRUNE_BY_SIZE_INTERVAL).unwrap_or_else(Instant::now),
            last_sweep: Instant::now(),
            logged: (0, 0),
            consumed: Vec::new(),
            applying_batch: None,
            pinned_at_start: Vec::new(),
            rewind: None,
            failures: 0,
            uncommitted_results: HashMap::new(),
        };
        applier.pinned_at_start = applier.state.catalog.pinned_containers()?;
        for organization in applier.state.catalog.organizations() {
            if applier.config.index_dir.join(&organization.id).exists() {
                applier.open_index(&organization.id)?;
            }
        }
        let resume_after = applier.indexes.values().map(OrgIndex::committed_seq).min().unwrap_or(0);
        applier.applied_seq = resume_after;
        let reader = applier.state.journal.reader(resume_after)?;
        tracing::info!(resume_after, backlog_end = applier.backlog_end, "applier starting");
        Ok((applier, reader))
    }

    fn run(mut self, mut reader: Box<dyn intake_store::JournalReader>) {
        while !self.stopping() {
            if let Some(reason) = self.rewind.take() {
                match self.recover(&reason) {
                    Some(resumed) => reader = resumed,
                    None => self.rewind = Some(reason),
                }
                continue;
            }
            let batch = match reader.next_batch(self.config.batch_bytes) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "the applier cannot read the journal; retrying in a second");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let idle = batch.is_empty();
            self.draining_backlog =
                batch.iter().map(|(_, record)| record.len()).sum::<usize>() >= self.config.batch_bytes;
            if !idle {
                self.apply_records(batch);
            }
            if self.rewinding() {
                continue;
            }
            self.run_due_deletes();
            if self.commit_due(idle) {
                self.commit();
            }
            if idle
                && self.applied_seq >= self.backlog_end
                && self.first_uncommitted.is_none()
                && !self.rewinding()
                && !self.state.readiness.is_replayed()
            {
                tracing::info!(applied = self.applied_seq, "journal backlog applied; ready");
                self.delete_unclaimed_containers();
                self.state.readiness.set_replayed();
            }
            self.prune_logs();
            self.sweep_containers();
            self.publish_positions();
            if idle {
                let wait = if self.first_uncommitted.is_some() {
                    self.config.commit_interval / 4
                } else {
                    Duration::from_millis(100)
                };
                self.state.journal.wait_beyond(self.applied_seq, wait);
            }
        }
        if !self.rewinding() {
            self.commit();
        }
        tracing::info!(applied = self.applied_seq, "applier stopped");
    }

    /// An index failed: everything applied since the last commit is dropped. The failure is logged and shown
    /// on `/ready` and `/metrics`; the run loop then waits and applies again from the last commit.
    fn fail(&mut self, reason: String) {
        if self.rewind.is_some() {
            return;
        }
        // Index writers report a failed worker without its cause; the commonest one is worth checking.
        let reason = reason + &self.disk_note();
        self.failures += 1;
        let wait = self.retry_wait();
        tracing::error!(
            reason,
            failures = self.failures,
            committed = self.resume_seq(),
            retry_in_ms = wait.as_millis() as u64,
            "applying stopped; every operation after the last commit stays in the journal and is applied again"
        );
        self.state.metrics.commit_failed();
        self.state.readiness.set_stalled(Some(format!(
            "Applying is stopped: {reason}. Accepted operations are kept in the journal and applied again from the \
             last commit (journal record {}); retrying every {} s or sooner. Free disk space if the reason says so.",
            self.resume_seq(),
            LONGEST_RETRY.as_secs()
        )));
        self.rewind = Some(reason);
    }

    /// "; the disk holding the data directory is full (…)" when it has less than [`LOW_DISK_BYTES`] left.
    fn disk_note(&self) -> String {
        let data_dir = self.config.index_dir.parent().unwrap_or(&self.config.index_dir);
        match intake_store::disk::free_bytes(data_dir) {
            Some(free) if free < LOW_DISK_BYTES => {
                format!("; the disk holding the data directory is full ({} free)", intake_store::disk::readable(free))
            }
            _ => String::new(),
        }
    }

    fn rewinding(&self) -> bool {
        self.rewind.is_some()
    }

    fn retry_wait(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        (FIRST_RETRY * 2u32.pow(doublings)).min(LONGEST_RETRY)
    }

    /// Waits, then reopens every index from its last commit and positions a reader after the lowest one;
    /// `None` (to wait and try again) if an index or the journal cannot be opened yet.
    fn recover(&mut self, reason: &str) -> Option<Box<dyn intake_store::JournalReader>> {
        let deadline = Instant::now() + self.retry_wait();
        while Instant::now() < deadline && !self.stopping() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.stopping() {
            return None;
        }
        let organizations: Vec<String> = self.indexes.keys().cloned().collect();
        for organization_id in organizations {
            // Dropping the writer discards what it held; the folder keeps the last commit.
            drop(self.indexes.remove(&organization_id));
            if let Err(error) = self.open_index(&organization_id) {
                tracing::warn!(organization = organization_id, %error, reason, "the index cannot be reopened yet");
                self.failures += 1;
                return None;
            }
        }
        let committed = self.resume_seq();
        let reader = match self.state.journal.reader(committed) {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%error, "the journal cannot be read yet");
                self.failures += 1;
                return None;
            }
        };
        self.applied_seq = committed;
        self.log_entries.clear();
        self.uncommitted_results.clear();
        self.waiting_since.clear();
        self.first_uncommitted = None;
        self.applying_batch = None;
        self.logged = (0, 0);
        self.consumed.retain(|consumed| consumed.seq <= committed);
        tracing::info!(resume_after = committed, "applying again from the last commit");
        Some(reader)
    }

    /// Decodes journal records, then prepares and applies them window by window: a window's items are prepared
    /// in parallel, so only a window's worth of decompressed data is ever in memory.
    fn apply_records(&mut self, records: Vec<(Seq, Vec<u8>)>) {
        let started = Instant::now();
        let mut operations = records.into_iter().filter_map(|(seq, bytes)| match Operation::decode(&bytes) {
            Ok(operation) => Some((seq, operation)),
            Err(error) => {
                tracing::error!(seq, %error, "skipping a journal record that does not decode");
                None
            }
        });
        loop {
            let window: Vec<(Seq, Operation)> = operations.by_ref().take(PREPARE_WINDOW).collect();
            if window.is_empty() {
                break;
            }
            let items: Vec<Option<&Item>> = window
                .iter()
                .map(|(_, operation)| match &operation.kind {
                    OperationKind::AddOrUpdate(item) => Some(item.as_ref()),
                    _ => None,
                })
                .collect();
            let prepared = self.prepare(&window, &items);
            drop(items);
            for ((seq, operation), prepared) in window.into_iter().zip(prepared) {
                self.apply(seq, operation, prepared);
                if self.applying_batch.is_some() || self.rewinding() {
                    // A batch interrupted by shutdown, or an index failure: what follows is applied again later.
                    return;
                }
            }
        }
        self.state.metrics.batch_applied(started.elapsed());
    }

    /// Prepares items in parallel (decompress, extract text, build the document); `items[i]`, if any, belongs
    /// to `operations[i]`.
    fn prepare(&self, operations: &[(Seq, Operation)], items: &[Option<&Item>]) -> Vec<Option<PreparedItem>> {
        let now_ms = self.state.clock.now_ms();
        let mut declared: HashMap<&str, FieldTypes> = HashMap::new();
        let mut source_names: HashMap<(&str, &str), String> = HashMap::new();
        for (_, operation) in operations {
            let (org, src) = (operation.organization_id.as_str(), operation.source_id.as_str());
            declared.entry(org).or_insert_with(|| field_types(&self.state.catalog, org));
            source_names
                .entry((org, src))
                .or_insert_with(|| self.state.catalog.source(org, src).map_or_else(|| src.to_string(), |s| s.name));
        }
        operations
            .par_iter()
            .zip(items.par_iter())
            .map(|((_, operation), item)| {
                let (org, src) = (operation.organization_id.as_str(), operation.source_id.as_str());
                let target = ItemTarget {
                    organization_id: org,
                    source_id: src,
                    source_name: &source_names[&(org, src)],
                    ordering_id: operation.ordering_id,
                    accepted_at_ms: operation.accepted_at_ms,
                    now_ms,
                    max_item_bytes: self.config.max_item_bytes,
                    field_types: &declared[org],
                    containers: &self.state,
                };
                item.map(|item| prepare_item(item, &target, &self.fields))
            })
            .collect()
    }

    fn apply(&mut self, seq: Seq, operation: Operation, prepared: Option<PreparedItem>) {
        self.applied_seq = seq;
        let organization_id = operation.organization_id.clone();
        if operation.kind == OperationKind::PurgeOrganization {
            self.purge_organization(&organization_id);
            return;
        }
        if self.state.catalog.organization(&organization_id).is_none() {
            // Its organization was deleted after it was journaled: the purge that follows removes it all anyway.
            tracing::debug!(seq, organization = organization_id, "skipping an operation of a deleted organization");
            return;
        }
        let queue_delay_cap = self.config.queue_delay_cap_minutes;
        let index = match self.index_for(&organization_id) {
            Ok(index) => index,
            Err(error) => {
                self.applied_seq = seq - 1; // not applied: with no index to hold a position, this is where to resume
                self.fail(format!("the index of organization '{organization_id}' cannot be opened: {error}"));
                return;
            }
        };
        if seq <= index.state().journal_seq {
            return; // replayed: this index already committed it
        }
        let info = OpInfo {
            source_id: operation.source_id.clone(),
            ordering_id: operation.ordering_id,
            request_id: operation.request_id.clone(),
            journal_seq: seq,
        };
        let container = prepared.as_ref().and_then(|p| p.container.clone());
        let outcomes = match (operation.kind, prepared) {
            (OperationKind::AddOrUpdate(_), Some(prepared)) => index.upsert(prepared, &info).map(|o| vec![o]),
            (OperationKind::Delete { document_id, delete_children }, _) => {
                index.delete(&document_id, delete_children, &info)
            }
            (OperationKind::DeleteOlderThan { queue_delay_minutes }, _) => {
                let minutes = queue_delay_cap.map_or(queue_delay_minutes, |cap| queue_delay_minutes.min(cap));
                index.schedule_delete_older_than(operation.accepted_at_ms + i64::from(minutes) * 60_000, &info);
                Ok(Vec::new())
            }
            (OperationKind::PurgeSource, _) => {
                index.purge_source(&operation.source_id);
                Ok(Vec::new())
            }
            (OperationKind::Batch { file_id }, _) => {
                let resume = index.batch_progress(seq);
                let batch = BatchJob {
                    organization_id: &organization_id,
                    file_id: &file_id,
                    info: &info,
                    accepted_at_ms: operation.accepted_at_ms,
                };
                if !self.apply_batch_file(&batch, resume) {
                    // Interrupted by shutdown (its progress is committed; it resumes at the next start) or by an
                    // index failure (it is applied again from the last commit).
                    return;
                }
                self.consume(seq, &organization_id, file_id);
                Ok(Vec::new())
            }
            (OperationKind::AddOrUpdate(_), None) | (OperationKind::PurgeOrganization, _) => {
                unreachable!("items are always prepared; organization purges are handled above")
            }
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(error) => {
                self.fail(format!("the index of organization '{organization_id}' failed: {error}"));
                return;
            }
        };
        if let Some(file_id) = container {
            self.consume(seq, &organization_id, file_id);
        }
        if let Some(index) = self.indexes.get_mut(&organization_id) {
            index.advance_to(seq);
        }
        if seq > self.backlog_end {
            self.waiting_since.push(operation.accepted_at_ms);
        }
        self.record(&organization_id, outcomes);
    }

    /// Applies a batch file entry by entry, in windows, committing as it goes (so a large batch becomes
    /// searchable progressively, and its log entries never pile up in memory). Each commit records how far the
    /// batch got; after a crash, `resume` skips the entries already committed, so each is applied exactly once.
    /// It was validated when accepted; should it fail to read now (its container vanished), the failure is
    /// logged against the file and what was read stays applied. False when interrupted by shutdown.
    fn apply_batch_file(&mut self, batch: &BatchJob, resume: Option<BatchProgress>) -> bool {
        let reader = match intake_index::ContainerReader::open(&self.state, batch.organization_id, batch.file_id) {
            Ok(reader) => StopAware { inner: reader, stop: self.stop.clone() },
            Err(reason) => {
                self.record_batch_failure(batch, reason);
                return true;
            }
        };
        let seq = batch.info.journal_seq;
        let skip = resume.map_or(0, |progress| progress.entries);
        if let Some(progress) = resume {
            tracing::info!(
                organization = batch.organization_id,
                file_id = batch.file_id,
                entries = skip,
                "resuming a partly applied batch"
            );
            self.logged = (seq, progress.outcomes);
        }
        let start = BatchProgress { journal_seq: seq, entries: 0, outcomes: self.logged_for(seq) };
        self.applying_batch = Some((batch.organization_id.to_string(), start));
        let mut entries = BatchReader::new(reader);
        let mut read_entries = 0;
        let mut failure = None;
        loop {
            let mut window = match entries.next_window(BATCH_WINDOW_ENTRIES, BATCH_WINDOW_BYTES) {
                Ok(window) if window.is_empty() => break,
                Ok(window) => window,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            };
            let first = read_entries;
            read_entries += window.len() as u64;
            if first < skip {
                // Already committed; their own containers, if any, still have to go once the batch is done.
                let fresh = window.split_off(window.len().min((skip - first) as usize));
                for entry in window {
                    if let Some(container) = entry.parse().ok().as_ref().and_then(BatchEntry::container) {
                        self.consume(seq, batch.organization_id, container.to_string());
                    }
                }
                window = fresh;
            }
            self.apply_batch_window(batch, window);
            if self.rewinding() {
                return false;
            }
            self.batch_window_applied(read_entries);
            if self.rewinding() {
                return false;
            }
        }
        if failure.is_some() && self.stopping() {
            self.batch_window_applied(read_entries);
            return false;
        }
        self.applying_batch = None;
        match failure {
            None => tracing::info!(
                organization = batch.organization_id,
                file_id = batch.file_id,
                adds = entries.summary().add_or_update,
                deletes = entries.summary().delete,
                "batch applied"
            ),
            Some(error) => self.record_batch_failure(batch, error.message),
        }
        true
    }

    /// Notes that the first `entries` entries of the batch being applied are applied, and commits if one is due.
    fn batch_window_applied(&mut self, entries: u64) {
        let Some((_, progress)) = &self.applying_batch else {
            return;
        };
        let seq = progress.journal_seq;
        let outcomes = self.logged_for(seq);
        if let Some((_, progress)) = &mut self.applying_batch {
            (progress.entries, progress.outcomes) = (entries, outcomes);
        }
        if self.commit_due(false) {
            self.commit();
        }
    }

    /// How many outcomes the operation at `seq` has logged so far.
    fn logged_for(&self, seq: Seq) -> u32 {
        match self.logged {
            (logged_seq, next) if logged_seq == seq => next,
            _ => 0,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn record_batch_failure(&mut self, batch: &BatchJob, reason: String) {
        let failure = failed(
            batch.info,
            batch.file_id,
            LogOperation::BatchFile,
            format!("the batch file could not be read: {reason}"),
        );
        self.record(batch.organization_id, vec![failure]);
    }

    /// Parses and prepares a window of batch entries in parallel, then applies them in file order, all with the
    /// batch's `orderingId`.
    fn apply_batch_window(&mut self, batch: &BatchJob, raw: Vec<RawEntry>) {
        if raw.is_empty() {
            return;
        }
        let parsed: Vec<_> = raw.par_iter().map(RawEntry::parse).collect();
        drop(raw);
        let mut entries = Vec::with_capacity(parsed.len());
        for entry in parsed {
            match entry {
                Ok(entry) => entries.push(entry),
                // Validated before the 202, so only a container changed on disk gets here.
                Err(error) => self.record_batch_failure(batch, error.message),
            }
        }
        let (organization_id, info) = (batch.organization_id, batch.info);
        // Each entry is prepared as an operation of the batch's source, order and acceptance time.
        let as_operation = Operation {
            organization_id: organization_id.to_string(),
            source_id: info.source_id.clone(),
            ordering_id: info.ordering_id,
            request_id: info.request_id.clone(),
            accepted_at_ms: batch.accepted_at_ms,
            kind: OperationKind::PurgeSource,
        };
        let operations: Vec<(Seq, Operation)> =
            entries.iter().map(|_| (info.journal_seq, as_operation.clone())).collect();
        let items: Vec<Option<&Item>> = entries
            .iter()
            .map(|entry| match entry {
                BatchEntry::AddOrUpdate { item: Ok(item), .. } => Some(item),
                _ => None,
            })
            .collect();
        let prepared = self.prepare(&operations, &items);
        drop(items);
        let (outcomes, containers) = match self.apply_batch_entries(organization_id, info, entries, prepared) {
            Ok(applied) => applied,
            Err(error) => {
                self.fail(format!("the index of organization '{organization_id}' failed: {error}"));
                return;
            }
        };
        for file_id in containers {
            self.consume(info.journal_seq, organization_id, file_id);
        }
        self.record(organization_id, outcomes);
    }

    /// Applies parsed batch entries and their prepared items in file order: their outcomes, and the
    /// containers they consumed.
    fn apply_batch_entries(
        &mut self,
        organization_id: &str,
        info: &OpInfo,
        entries: Vec<BatchEntry>,
        prepared: Vec<Option<PreparedItem>>,
    ) -> Result<(Vec<Outcome>, Vec<String>), intake_index::IndexError> {
        let (mut outcomes, mut containers) = (Vec::new(), Vec::new());
        let Some(index) = self.indexes.get_mut(organization_id) else {
            return Ok((outcomes, containers));
        };
        for (entry, prepared) in entries.into_iter().zip(prepared) {
            match (entry, prepared) {
                (BatchEntry::AddOrUpdate { .. }, Some(prepared)) => {
                    containers.extend(prepared.container.clone());
                    outcomes.push(index.upsert(prepared, info)?);
                }
                (BatchEntry::AddOrUpdate { document_id, item: Err(error), .. }, _) => {
                    // Over a size limit is REJECTED, like any limit; anything else wrong with the item is an ERROR.
                    let result = if error.code == ErrorCode::RequestEntityTooLarge {
                        LogResult::Rejected
                    } else {
                        LogResult::Error
                    };
                    outcomes.push(Outcome { result, ..failed(info, &document_id, LogOperation::Add, error.message) });
                }
                (BatchEntry::Delete { document_id, delete_children, .. }, _) => {
                    outcomes.extend(index.delete(&document_id, delete_children, info)?);
                }
                (BatchEntry::AddOrUpdate { item: Ok(_), .. }, None) => {
                    unreachable!("valid items are prepared")
                }
            }
        }
        Ok((outcomes, containers))
    }

    /// Drops a deleted organization's index and its folder (again on replay: it is idempotent).
    fn purge_organization(&mut self, organization_id: &str) {
        drop(self.indexes.remove(organization_id));
        self.state.indexes.unregister(organization_id);
        self.state.commit_marks.remove(organization_id);
        let dir = self.config.index_dir.join(organization_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(organization = organization_id, "deleted the organization's index"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(organization = organization_id, %error, "the organization's index folder could not be removed")
            }
        }
    }

    fn run_due_deletes(&mut self) {
        let now_ms = self.state.clock.now_ms();
        let due: Vec<String> = self
            .indexes
            .iter()
            .filter(|(_, index)| index.next_due_ms().is_some_and(|due| due <= now_ms))
            .map(|(org, _)| org.clone())
            .collect();
        for organization_id in due {
            let index = self.indexes.get_mut(&organization_id).expect("listed above");
            match index.run_due(now_ms) {
                Ok(outcomes) => self.record(&organization_id, outcomes),
                Err(error) => {
                    self.fail(format!("a delete-older-than of organization '{organization_id}' failed: {error}"));
                    return;
                }
            }
        }
    }

    /// Turns outcomes into item log entries (written at the next commit) and metrics.
    fn record(&mut self, organization_id: &str, outcomes: Vec<Outcome>) {
        if self.first_uncommitted.is_none() {
            self.first_uncommitted = Some(Instant::now());
        }
        let now_ms = self.state.clock.now_ms();
        for outcome in outcomes {
            *self.uncommitted_results.entry(outcome.result.as_str()).or_default() += 1;
            if outcome.result != LogResult::Completed {
                tracing::info!(
                    organization = organization_id,
                    source = outcome.source_id,
                    document = outcome.document_id,
                    result = outcome.result.as_str(),
                    reason = outcome.reason.as_deref().unwrap_or(""),
                    "item not applied"
                );
            }
            // The outcomes of one operation are numbered; applied again, an operation's outcomes replace those
            // of the earlier attempt (the item log's drafts), so each is logged exactly once.
            let item_index = self.logged_for(outcome.journal_seq);
            self.logged = (outcome.journal_seq, item_index + 1);
            self.log_entries.push(LogEntry {
                organization_id: organization_id.to_string(),
                task: task_of(outcome.operation, outcome.result),
                source_id: outcome.source_id,
                document_id: outcome.document_id,
                operation: outcome.operation,
                result: outcome.result,
                reason: outcome.reason,
                request_id: outcome.request_id,
                ordering_id: outcome.ordering_id,
                journal_seq: outcome.journal_seq,
                item_index,
                datetime_ms: now_ms,
            });
        }
    }

    fn commit_due(&self, idle: bool) -> bool {
        let Some(first) = self.first_uncommitted else {
            return self.indexes.values().any(|index| index.is_dirty())
                || (idle && self.last_full_commit.elapsed() >= IDLE_POSITION_INTERVAL && self.any_index_behind());
        };
        // Reading full batches means a backlog: fewer, larger commits index it faster (less merging), and
        // nobody is waiting on a quarter-second visibility while it drains.
        let interval = if self.draining_backlog || self.applying_batch.is_some() {
            self.config.commit_interval.max(BACKLOG_COMMIT_INTERVAL)
        } else {
            self.config.commit_interval
        };
        first.elapsed() >= interval || self.log_entries.len() >= 100_000
    }

    fn any_index_behind(&self) -> bool {
        self.indexes.values().any(|index| index.committed_seq() < self.applied_seq)
    }

    /// Writes the pending log entries, then commits every index that changed (and, now and then, the idle
    /// ones, to move their journal position), then releases the journal behind the lowest position.
    fn commit(&mut self) {
        let started = Instant::now();
        // Outcomes are written first, so a crash right after the index commit loses none; the logs API shows
        // them only once the commit holding them succeeded (see `CommitMarks`).
        if let Err(error) = self.state.item_log.append(&self.log_entries) {
            self.fail(format!("the item log could not be written: {error}"));
            return;
        }
        self.log_entries.clear();
        let touch_idle = self.last_full_commit.elapsed() >= IDLE_POSITION_INTERVAL;
        let mut applied = self.applied_seq;
        let mut failed = None;
        if let Some((organization_id, progress)) = &self.applying_batch {
            // Inside a batch: everything before it is applied, and the batch as far as `progress` says.
            applied = progress.journal_seq - 1;
            if let Some(index) = self.indexes.get_mut(organization_id) {
                index.record_batch_progress(*progress);
            }
        }
        for (organization_id, index) in &mut self.indexes {
            let lagging = touch_idle && index.committed_seq() < applied;
            if !index.is_dirty() && !lagging {
                continue;
            }
            index.advance_to(applied);
            match index.commit() {
                Ok(()) => {
                    self.state.quotas.indexed(organization_id, index.live_items(), index.committed_seq());
                    self.state.commit_marks.set(organization_id, committed_through(index));
                }
                Err(error) => {
                    failed = Some(format!("the index commit of organization '{organization_id}' failed: {error}"));
                    break;
                }
            }
        }
        if let Some(reason) = failed {
            self.fail(reason);
            return;
        }
        self.recovered();
        for (result, count) in self.uncommitted_results.drain() {
            self.state.metrics.item_outcomes(result, count);
        }
        if touch_idle {
            self.last_full_commit = Instant::now();
        }
        let now_ms = self.state.clock.now_ms();
        for accepted_at in self.waiting_since.drain(..) {
            self.state.metrics.searchable_after(now_ms - accepted_at);
        }
        self.first_uncommitted = None;
        let committed = self.caught_up_seq();
        if let Err(error) = self.state.journal.release_through(committed) {
            tracing::warn!(%error, "journal segments could not be released");
        }
        let (done, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.consumed).into_iter().partition(|consumed| consumed.seq <= committed);
        self.consumed = waiting;
        for consumed in done {
            self.delete_container(Some(&consumed.organization_id), &consumed.file_id);
        }
        tracing::debug!(applied, committed, took_ms = started.elapsed().as_millis() as u64, "committed");
    }

    /// A commit succeeded: if applying had stopped, it is running again.
    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(committed = self.caught_up_seq(), failures = self.failures, "index commits succeed again");
            self.failures = 0;
            self.state.readiness.set_stalled(None);
            self.state.metrics.stalled(false);
        }
    }

    /// Where applying resumes after a failure (or a restart): the lowest position an index committed, or,
    /// with no index yet, what was applied.
    fn resume_seq(&self) -> Seq {
        let committed = self.indexes.values().map(OrgIndex::committed_seq).min();
        committed.unwrap_or(self.applied_seq)
    }

    /// The journal position up to which everything applied is committed: an index with nothing uncommitted
    /// holds every record applied so far (those after its own commit do not concern it). Segments up to here
    /// can be released, containers consumed up to here deleted; `/metrics` reports it as applied.
    /// A batch is caught up only once applied whole.
    fn caught_up_seq(&self) -> Seq {
        let behind = |index: &&OrgIndex| index.is_dirty() || index.committed_state().batch.is_some();
        let lowest = self.indexes.values().filter(behind).map(OrgIndex::committed_seq).min();
        let caught_up = lowest.unwrap_or(self.applied_seq).min(self.applied_seq);
        match &self.applying_batch {
            Some((_, progress)) => caught_up.min(progress.journal_seq - 1),
            None => caught_up,
        }
    }

    /// Deletes the container once the operation at `seq` is committed.
    fn consume(&mut self, seq: Seq, organization_id: &str, file_id: String) {
        self.consumed.push(Consumed { seq, organization_id: organization_id.to_string(), file_id });
    }

    fn publish_positions(&self) {
        self.state.metrics.journal_syncs(self.state.journal.sync_count());
        let durable = *self.state.journal.durable().borrow();
        self.state.metrics.journal_positions(durable, self.caught_up_seq());
    }

    /// Deletes a container whose content is committed (or that expired unused). A container consumed by an
    /// operation is deleted only if it belongs to that operation's organization: an item or batch entry that
    /// names another organization's container fails to read it and must never destroy it.
    fn delete_container(&self, owner: Option<&str>, file_id: &str) {
        if let Some(owner) = owner {
            match self.state.catalog.container(file_id) {
                Ok(Some(container)) if container.organization_id == owner => {}
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(file_id, %error, "a file container could not be looked up; it is kept");
                    return;
                }
            }
        }
        if let Err(error) = self.state.blobs.delete(file_id) {
            tracing::warn!(file_id, %error, "a file container could not be deleted");
        }
        if let Err(error) = self.state.catalog.forget_container(file_id) {
            tracing::warn!(file_id, %error, "a file container could not be forgotten");
        }
    }

    /// After the startup replay: a container pinned before the start that the replay did not consume belongs to
    /// an operation committed before a crash could delete it, or to one a crash kept from being journaled.
    fn delete_unclaimed_containers(&mut self) {
        for file_id in std::mem::take(&mut self.pinned_at_start) {
            let claimed = self.consumed.iter().any(|consumed| consumed.file_id == file_id);
            let still_there = self.state.catalog.container(&file_id).ok().flatten().is_some();
            if still_there && !claimed {
                tracing::info!(file_id, "deleting a file container left behind by a crash");
                self.delete_container(None, &file_id);
            }
        }
    }

    /// Deletes containers that expired without being handed to a batch or an item.
    fn sweep_containers(&mut self) {
        if self.last_sweep.elapsed() < CONTAINER_SWEEP_INTERVAL {
            return;
        }
        self.last_sweep = Instant::now();
        match self.state.catalog.expired_containers(self.state.clock.now_ms()) {
            Ok(expired) => {
                for file_id in expired {
                    tracing::debug!(file_id, "file container expired");
                    self.delete_container(None, &file_id);
                }
            }
            Err(error) => tracing::warn!(%error, "expired file containers could not be listed"),
        }
    }

    /// Keeps the item log within its retention (hourly) and its size limit (every few seconds).
    fn prune_logs(&mut self) {
        let log = &self.state.item_log;
        if self.last_prune_by_size.elapsed() >= PRUNE_BY_SIZE_INTERVAL {
            self.last_prune_by_size = Instant::now();
            match log.prune_to_size(self.config.log_max_bytes) {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(
                    pruned,
                    limit = intake_store::disk::readable(self.config.log_max_bytes),
                    "pruned the oldest item log entries to keep the log within its size limit"
                ),
                Err(error) => tracing::warn!(%error, "the item log could not be pruned"),
            }
        }
        if self.last_prune.elapsed() < PRUNE_BY_AGE_INTERVAL {
            return;
        }
        self.last_prune = Instant::now();
        let retention = self.config.log_retention;
        match log.prune_before(self.state.clock.now_ms() - retention.as_millis() as i64) {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, retention_hours = retention.as_secs() / 3600, "pruned old item log entries")
            }
            Err(error) => tracing::warn!(%error, "the item log could not be pruned"),
        }
    }

    fn index_for(&mut self, organization_id: &str) -> anyhow::Result<&mut OrgIndex> {
        if !self.indexes.contains_key(organization_id) {
            self.open_index(organization_id)?;
        }
        Ok(self.indexes.get_mut(organization_id).expect("just opened"))
    }

    fn open_index(&mut self, organization_id: &str) -> anyhow::Result<()> {
        let index = OrgIndex::open(
            &self.config.index_dir.join(organization_id),
            self.config.threads,
            self.config.memory_bytes,
        )?;
        let handle = SearchHandle {
            index: index.index().clone(),
            reader: index.reader().clone(),
            fields: index.fields().clone(),
        };
        self.state.indexes.register(organization_id, handle);
        self.state.quotas.indexed(organization_id, index.live_items(), index.committed_seq());
        self.state.commit_marks.set(organization_id, committed_through(&index));
        if let Err(error) = index.collect_garbage() {
            tracing::warn!(organization = organization_id, %error, "unused index files could not be deleted");
        }
        self.indexes.insert(organization_id.to_string(), index);
        Ok(())
    }
}

/// What the index's last commit holds, as the logs API filters on it.
fn committed_through(index: &OrgIndex) -> CommittedThrough {
    let state = index.committed_state();
    CommittedThrough {
        journal_seq: state.journal_seq,
        pending: state.pending.iter().map(|pending| pending.journal_seq).collect(),
        batch: state.batch.map(|batch| (batch.journal_seq, batch.outcomes)),
    }
}

/// The declared fields of an organization, by name.
pub fn field_types(catalog: &intake_store::Catalog, organization_id: &str) -> FieldTypes {
    catalog.fields(organization_id).into_iter().map(|field| (field.name, field.field_type)).collect()
}

/// Background work yields to the request path: nice 10 on Linux (threads carry their own nice value there).
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory effects; on Linux, `who = 0` names the calling thread.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, 10) != 0 {
            tracing::debug!("could not lower the applier's priority");
        }
    }
}

/// An outcome of failure for one thing of an operation (a batch file, or an entry of it).
fn failed(info: &OpInfo, document_id: &str, operation: LogOperation, reason: String) -> Outcome {
    Outcome {
        source_id: info.source_id.clone(),
        document_id: document_id.to_string(),
        operation,
        result: LogResult::Error,
        reason: Some(reason),
        ordering_id: info.ordering_id,
        request_id: info.request_id.clone(),
        journal_seq: info.journal_seq,
    }
}

/// The pipeline stage an outcome is reported under: errors in the item's data are found while processing it.
fn task_of(operation: LogOperation, result: LogResult) -> LogTask {
    match (operation, result) {
        (LogOperation::Add | LogOperation::Update, LogResult::Error) => LogTask::Processing,
        (_, LogResult::Rejected) => LogTask::Validation,
        _ => LogTask::Indexing,
    }
}

/// The batch being applied.
struct BatchJob<'a> {
    organization_id: &'a str,
    file_id: &'a str,
    info: &'a OpInfo,
    accepted_at_ms: i64,
}

/// A container reader that fails once the applier is asked to stop, so a long batch ends at the next entry.
struct StopAware {
    inner: Box<dyn std::io::Read + Send>,
    stop: Arc<AtomicBool>,
}

impl std::io::Read for StopAware {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Acquire) {
            return Err(std::io::Error::other("the server is shutting down"));
        }
        self.inner.read(buf)
    }
}
