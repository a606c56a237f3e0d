//! The applier thread: reads the journal in order and applies each operation to its organization's index.
//!
//! A read of records is decoded, then its items are prepared in parallel, then applied in journal order.
//! Every `commit_interval` the outcomes are written to the item log and every changed index is committed with
//! the journal position it now contains; then the journal segments no index needs are released.
//!
//! A commit that fails (a full disk, say) is never skipped over: the applier drops what it applied since the
//! last commit, reopens the index, and applies the journal again from the last committed position, with
//! backoff, until a commit succeeds. Meanwhile the observer hears why, and the logs API shows no outcome beyond
//! the last commit: COMPLETED means committed and searchable.

mod batch;
mod handover;
mod identities;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use intake_index::prepare::PreparedItem;
use intake_index::schema::{Fields, build_schema};
use intake_index::{BatchProgress, IndexError, OpInfo, OrgIndex, Outcome};
use intake_model::batch::{ITEM_BATCH, STREAM_MERGE, STREAM_UPDATE};
use intake_model::item::Item;
use intake_model::logs::{LogOperation, LogResult, LogTask};
use intake_model::{Operation, OperationKind};
use intake_store::{CommittedThrough, JournalReader, LogEntry, Seq, StoredIdentity};

use crate::housekeeping::Housekeeping;
use crate::prepare::{Origin, prepare};
use crate::registry::SearchHandle;
use crate::snapshot::Snapshots;
use crate::{ApplierConfig, Inputs};

/// An index with nothing to commit still records its position this often, so the journal can be released.
const IDLE_POSITION_INTERVAL: Duration = Duration::from_secs(30);
/// Items prepared at once. Each may expand to the item cap once decompressed, so this bounds the applier's
/// memory; it is a few times the core count, enough to keep every core busy.
const PREPARE_WINDOW: usize = 8;
/// How often to commit while a backlog drains (at most; the configured interval when it is longer).
const BACKLOG_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// The first wait after a failed commit; it doubles with each failure in a row, up to the longest.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
/// Below this much free space, a failure is reported as the disk being full.
const LOW_DISK_BYTES: u64 = 64 * 1024 * 1024;
/// Once caught up, the applier commits at once (near-real-time visibility), but never sooner after the last
/// commit than this, nor than that commit took: under a steady stream of pushes, committing takes at most about
/// half the applier's time and the index does not fill with tiny segments. (Four times what the last commit
/// took gave a p99 of 92–150 ms to a lone pusher who pushes right after a commit; once, 31–64 ms.)
const MIN_COMMIT_GAP: Duration = Duration::from_millis(10);
const COMMIT_GAP_FACTOR: u32 = 1;
/// The longest wait for new records while idle.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// Outcomes held for the next commit at most; more commit at once.
const MAX_PENDING_OUTCOMES: usize = 100_000;

pub(crate) struct Applier {
    inputs: Inputs,
    /// Set when the server shuts down: the applier commits what it applied and ends, even inside a batch.
    stop: Arc<AtomicBool>,
    config: ApplierConfig,
    fields: Fields,
    indexes: HashMap<String, OrgIndex>,
    housekeeping: Housekeeping,
    /// The last record applied (to the writers, maybe not yet committed).
    applied_seq: Seq,
    /// The durable end of the journal when the applier started: the backlog to replay before it is replayed.
    backlog_end: Seq,
    replayed: bool,
    log_entries: Vec<LogEntry>,
    /// Acceptance times of the operations waiting for the next commit (for the searchable-latency metric).
    waiting_since: Vec<i64>,
    first_uncommitted: Option<Instant>,
    /// The last read of the journal was full: more records were waiting.
    draining_backlog: bool,
    last_full_commit: Instant,
    /// When the last commit ended, and how long it took.
    last_commit: (Instant, Duration),
    /// The last operation outcomes were logged for, and the index of its next outcome.
    logged: (Seq, u32),
    /// The batch file being applied, by organization: commits made meanwhile record how far it got.
    applying_batch: Option<(String, BatchProgress)>,
    /// Set when an index failed (a commit, a write, opening it): why. What was applied since the last commit
    /// is dropped and applied again from there, after a wait.
    rewind: Option<String>,
    /// Failures in a row, for the backoff.
    failures: u32,
    /// Outcomes by result since the last commit: reported once committed.
    uncommitted_results: HashMap<&'static str, u64>,
    /// Identities changed since the last commit: written to the identity store before the indexes commit.
    identity_writes: Vec<StoredIdentity>,
    /// How the entries of the stream operation being applied end, for the line logging the file's fate.
    tally: Option<stream::Tally>,
    /// When nodes share the journal: the organizations this node owns (with their lease epochs) as last
    /// followed, the ownership generation that was, and what was published of their indexes.
    owned: BTreeMap<String, u64>,
    ownership_seen: u64,
    snapshots: Snapshots,
    /// When the leases held beyond the fair share were last looked for.
    surplus_checked: Instant,
    /// Tests only: commit nothing, and end without the final commit, as a crash before the first commit would.
    #[cfg(test)]
    pub(crate) crash_on_stop: bool,
}

impl Applier {
    /// Opens the existing indexes and positions a reader after the lowest committed journal record.
    pub fn open(
        inputs: Inputs,
        config: ApplierConfig,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<(Applier, Box<dyn JournalReader>)> {
        let mut applier = Applier {
            stop,
            backlog_end: *inputs.journal.durable().borrow(),
            housekeeping: Housekeeping::new(&inputs, &config)?,
            inputs,
            fields: build_schema().1,
            config,
            indexes: HashMap::new(),
            applied_seq: 0,
            replayed: false,
            log_entries: Vec::new(),
            waiting_since: Vec::new(),
            first_uncommitted: None,
            draining_backlog: false,
            last_full_commit: Instant::now(),
            last_commit: (Instant::now(), Duration::ZERO),
            logged: (0, 0),
            applying_batch: None,
            rewind: None,
            failures: 0,
            uncommitted_results: HashMap::new(),
            identity_writes: Vec::new(),
            tally: None,
            owned: BTreeMap::new(),
            ownership_seen: 0,
            snapshots: Snapshots::default(),
            surplus_checked: Instant::now(),
            #[cfg(test)]
            crash_on_stop: false,
        };
        if applier.shared() {
            applier.ownership_seen = applier.inputs.ownership.generation();
            for (organization_id, epoch) in applier.inputs.ownership.owned() {
                applier.take_over(&organization_id, epoch)?;
                applier.owned.insert(organization_id, epoch);
            }
        } else {
            for organization in applier.inputs.catalog.organizations() {
                if applier.config.index_dir.join(&organization.id).exists() {
                    applier.open_index(&organization.id)?;
                }
            }
        }
        let resume_after = applier.indexes.values().map(OrgIndex::committed_seq).min().unwrap_or(0);
        applier.applied_seq = resume_after;
        let reader = applier.inputs.journal.reader(resume_after)?;
        tracing::info!(resume_after, backlog_end = applier.backlog_end, "applier starting");
        Ok((applier, reader))
    }

    pub fn run(mut self, mut reader: Box<dyn JournalReader>) {
        while !self.stopping() {
            if let Some(reason) = self.rewind.take() {
                match self.recover(&reason) {
                    Some(resumed) => reader = resumed,
                    None => self.rewind = Some(reason),
                }
                continue;
            }
            if self.ownership_changed() {
                if let Some(resumed) = self.follow_ownership() {
                    reader = resumed;
                }
                if self.rewinding() {
                    continue;
                }
            }
            let idle = match self.apply_next(reader.as_mut()) {
                Some(idle) => idle,
                None => continue,
            };
            if self.rewinding() {
                continue;
            }
            self.run_due_deletes();
            if self.commit_due(idle) {
                self.commit();
            }
            if idle && self.applied_seq >= self.backlog_end && self.first_uncommitted.is_none() {
                self.finish_replay();
            }
            if idle && self.first_uncommitted.is_none() && self.applying_batch.is_none() {
                // Everything read is applied and committed: indexes taken over hold all of it.
                self.inputs.registry.caught_up_through(self.applied_seq);
                self.consolidate_quiet_indexes();
            }
            self.housekeeping.tick();
            if idle {
                self.hand_over_surplus();
            }
            self.publish_positions();
            if idle {
                // New records end the wait at once; the bound is how late a commit or a stop may be noticed.
                let wait = self.until_commit_due().unwrap_or(IDLE_WAIT).min(IDLE_WAIT);
                self.inputs.journal.wait_beyond(self.applied_seq, wait);
            }
        }
        #[cfg(test)]
        if self.crash_on_stop {
            return;
        }
        if !self.rewinding() {
            self.commit();
            // The last snapshots make the next owner's replay short; giving the leases up lets it start now.
            self.publish_snapshots(true);
        }
        self.inputs.ownership.resign();
        tracing::info!(applied = self.applied_seq, "applier stopped");
    }

    /// Reads and applies the next records: whether there were none (idle), or `None` when the journal could
    /// not be read (after a wait).
    fn apply_next(&mut self, reader: &mut dyn JournalReader) -> Option<bool> {
        let records = match reader.next_batch(self.config.batch_bytes) {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(%error, "the applier cannot read the journal; retrying in a second");
                std::thread::sleep(Duration::from_secs(1));
                return None;
            }
        };
        self.draining_backlog =
            records.iter().map(|(_, record)| record.len()).sum::<usize>() >= self.config.batch_bytes;
        let idle = records.is_empty();
        if !idle {
            self.apply_records(records);
        }
        Some(idle)
    }

    /// The journal found at start is applied and committed: search reflects it.
    fn finish_replay(&mut self) {
        if self.replayed {
            return;
        }
        tracing::info!(applied = self.applied_seq, "journal backlog applied; ready");
        self.housekeeping.delete_unclaimed_containers();
        self.replayed = true;
        self.inputs.observer.replayed();
    }

    /// An index failed: everything applied since the last commit is dropped. The failure is logged and told
    /// to the observer; the run loop then waits and applies again from the last commit.
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
        self.inputs.observer.failed(&format!(
            "Applying is stopped: {reason}. Accepted operations are kept in the journal and applied again from the \
             last commit (journal record {}); retrying every {} s or sooner. Free disk space if the reason says so.",
            self.resume_seq(),
            LONGEST_RETRY.as_secs()
        ));
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
    fn recover(&mut self, reason: &str) -> Option<Box<dyn JournalReader>> {
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
        let reader = match self.inputs.journal.reader(committed) {
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
        self.identity_writes.clear();
        self.waiting_since.clear();
        self.first_uncommitted = None;
        self.applying_batch = None;
        self.tally = None;
        self.logged = (0, 0);
        self.housekeeping.rewind_to(committed);
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
            let items: Vec<Option<(Origin, &Item)>> = window
                .iter()
                .map(|(_, operation)| match &operation.kind {
                    OperationKind::AddOrUpdate(item) => Some((Origin::of(operation), item.as_ref())),
                    _ => None,
                })
                .collect();
            let prepared = prepare(&self.inputs, &self.fields, &self.config, &items);
            drop(items);
            for ((seq, operation), prepared) in window.into_iter().zip(prepared) {
                self.apply(seq, operation, prepared);
                if self.applying_batch.is_some() || self.rewinding() || self.applied_seq < seq {
                    // A batch or a load interrupted by shutdown, or an index failure: what follows is applied again
                    // later.
                    return;
                }
            }
        }
        self.inputs.observer.records_applied(started.elapsed());
    }

    fn apply(&mut self, seq: Seq, operation: Operation, prepared: Option<PreparedItem>) {
        self.applied_seq = seq;
        let organization_id = operation.organization_id.clone();
        if operation.kind == OperationKind::PurgeOrganization {
            self.purge_organization(&organization_id);
            return;
        }
        if self.inputs.catalog.organization(&organization_id).is_none() {
            // Its organization was deleted after it was journaled: the purge that follows removes it all anyway.
            tracing::debug!(seq, organization = organization_id, "skipping an operation of a deleted organization");
            return;
        }
        if self.shared() && !self.owned.contains_key(&organization_id) {
            return; // another node owns this index: it applies the operation
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
            // Identities are logged under their provider, as items under their source.
            source_id: match &operation.kind {
                OperationKind::Identity { provider_id, .. }
                | OperationKind::IdentityBatch { provider_id, .. }
                | OperationKind::DisableOldIdentities { provider_id, .. } => provider_id.clone(),
                _ => operation.source_id.clone(),
            },
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
            (OperationKind::DisableOldIdentities { queue_delay_minutes, .. }, _) => {
                let minutes = queue_delay_cap.map_or(queue_delay_minutes, |cap| queue_delay_minutes.min(cap));
                index.schedule_identity_disable(operation.accepted_at_ms + i64::from(minutes) * 60_000, &info);
                Ok(Vec::new())
            }
            (OperationKind::Identity { change, .. }, _) => {
                index.touch();
                Ok(self.apply_identity(&organization_id, &change, &info))
            }
            (OperationKind::IdentityBatch { file_id, .. }, _) => {
                index.touch();
                let outcomes = self.apply_identity_batch(&organization_id, &file_id, &info);
                if self.rewinding() {
                    return;
                }
                self.housekeeping.consume(seq, &organization_id, file_id);
                Ok(outcomes)
            }
            (OperationKind::StreamLoad { stream_id, file_ids }, _) => {
                let load = stream::LoadJob {
                    organization_id: &organization_id,
                    stream_id: &stream_id,
                    file_ids: &file_ids,
                    info: &info,
                    accepted_at_ms: operation.accepted_at_ms,
                };
                if !self.apply_stream_load(&load) {
                    return;
                }
                for file_id in file_ids {
                    self.housekeeping.consume(seq, &organization_id, file_id);
                }
                Ok(Vec::new())
            }
            (
                kind @ (OperationKind::Batch { .. }
                | OperationKind::StreamUpdate { .. }
                | OperationKind::StreamMerge { .. }),
                _,
            ) => {
                let (file_id, layout, stream) = match kind {
                    OperationKind::StreamUpdate { file_id } => (file_id, STREAM_UPDATE, true),
                    OperationKind::StreamMerge { file_id } => (file_id, STREAM_MERGE, true),
                    OperationKind::Batch { file_id } => (file_id, ITEM_BATCH, false),
                    _ => unreachable!("matched above"),
                };
                let resume = index.batch_progress(seq);
                let batch = batch::BatchJob {
                    organization_id: &organization_id,
                    file_id: &file_id,
                    info: &info,
                    accepted_at_ms: operation.accepted_at_ms,
                    layout,
                    stream,
                };
                if !self.apply_batch_file(&batch, resume) {
                    // Interrupted by shutdown (its progress is committed; it resumes at the next start) or by an
                    // index failure (it is applied again from the last commit).
                    return;
                }
                self.housekeeping.consume(seq, &organization_id, file_id);
                Ok(Vec::new())
            }
            (OperationKind::AddOrUpdate(_), None) | (OperationKind::PurgeOrganization, _) => {
                unreachable!("items are always prepared; organization purges are handled above")
            }
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(error) => {
                self.fail(index_failure(&organization_id, &error));
                return;
            }
        };
        if let Some(file_id) = container {
            self.housekeeping.consume(seq, &organization_id, file_id);
        }
        if let Some(index) = self.indexes.get_mut(&organization_id) {
            index.advance_to(seq);
        }
        if seq > self.backlog_end {
            self.waiting_since.push(operation.accepted_at_ms);
        }
        self.record(&organization_id, outcomes);
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

    /// Drops a deleted organization's index and its folder (again on replay: it is idempotent).
    fn purge_organization(&mut self, organization_id: &str) {
        drop(self.indexes.remove(organization_id));
        self.inputs.registry.unregister(organization_id);
        self.inputs.identities.remove(organization_id);
        self.identity_writes.retain(|identity| identity.organization_id != organization_id);
        if let Err(error) = self.inputs.identity_store.delete_organization(organization_id) {
            tracing::error!(organization = organization_id, %error, "the organization's identities could not be deleted");
        }
        self.inputs.commit_marks.remove(organization_id);
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
        let now_ms = self.inputs.clock.now_ms();
        let due: Vec<String> = self
            .indexes
            .iter()
            .filter(|(_, index)| index.next_due_ms().is_some_and(|due| due <= now_ms))
            .map(|(org, _)| org.clone())
            .collect();
        for organization_id in due {
            let index = self.indexes.get_mut(&organization_id).expect("listed above");
            let identity_disables = index.take_due_identity_disables(now_ms);
            match index.run_due(now_ms) {
                Ok(outcomes) => self.record(&organization_id, outcomes),
                Err(error) => {
                    self.fail(format!("a delete-older-than of organization '{organization_id}' failed: {error}"));
                    return;
                }
            }
            for pending in identity_disables {
                let info = OpInfo {
                    source_id: pending.source_id,
                    ordering_id: pending.ordering_id,
                    request_id: pending.request_id,
                    journal_seq: pending.journal_seq,
                };
                let outcomes = self.disable_old_identities(&organization_id, &info);
                self.record(&organization_id, outcomes);
            }
        }
    }

    /// Turns outcomes into item log entries (written at the next commit).
    fn record(&mut self, organization_id: &str, outcomes: Vec<Outcome>) {
        if self.first_uncommitted.is_none() {
            self.first_uncommitted = Some(Instant::now());
        }
        let now_ms = self.inputs.clock.now_ms();
        for outcome in outcomes {
            if let Some(tally) = self.tally.as_mut().filter(|tally| tally.seq == outcome.journal_seq) {
                tally.count(&outcome);
            }
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
                task: outcome.task.unwrap_or_else(|| task_of(outcome.operation, outcome.result)),
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

    /// Whether to commit now. `idle`: the last read found nothing more in the journal (the applier has caught
    /// up), so what was applied is committed as soon as the commit gap allows; otherwise the commit interval
    /// is the ceiling.
    fn commit_due(&self, idle: bool) -> bool {
        #[cfg(test)]
        if self.crash_on_stop {
            return false; // the run dies before its first commit
        }
        let Some(first) = self.first_uncommitted else {
            return self.indexes.values().any(|index| index.is_dirty())
                || (idle && self.last_full_commit.elapsed() >= IDLE_POSITION_INTERVAL && self.any_index_behind());
        };
        let caught_up = idle && !self.draining_backlog && self.applying_batch.is_none();
        (caught_up && self.last_commit.0.elapsed() >= self.commit_gap())
            || first.elapsed() >= self.commit_interval()
            || self.log_entries.len() >= MAX_PENDING_OUTCOMES
    }

    /// The longest time applied operations wait for a commit. Reading full batches means a backlog: fewer,
    /// larger commits index it faster (less merging), and nobody is waiting on quick visibility while it drains.
    fn commit_interval(&self) -> Duration {
        if self.draining_backlog || self.applying_batch.is_some() {
            self.config.commit_interval.max(BACKLOG_COMMIT_INTERVAL)
        } else {
            self.config.commit_interval
        }
    }

    /// How long an idle applier may wait for new records before a commit may be due; `None` with nothing to
    /// commit.
    fn until_commit_due(&self) -> Option<Duration> {
        let first = self.first_uncommitted?;
        let by_interval = self.commit_interval().saturating_sub(first.elapsed());
        let by_gap = self.commit_gap().saturating_sub(self.last_commit.0.elapsed());
        Some(by_interval.min(by_gap))
    }

    /// The least time between commits of a caught-up applier.
    fn commit_gap(&self) -> Duration {
        (self.last_commit.1 * COMMIT_GAP_FACTOR).max(MIN_COMMIT_GAP)
    }

    fn any_index_behind(&self) -> bool {
        self.indexes.values().any(|index| index.committed_seq() < self.applied_seq)
    }

    /// Writes the pending log entries, then commits every index that changed (and, now and then, the idle
    /// ones, to move their journal position), then releases the journal behind the lowest position.
    fn commit(&mut self) {
        let touch_idle = self.last_full_commit.elapsed() >= IDLE_POSITION_INTERVAL;
        self.commit_touching(touch_idle);
    }

    /// [`Applier::commit`]; with `touch_idle`, indexes behind are committed at the applied position too.
    fn commit_touching(&mut self, touch_idle: bool) {
        let started = Instant::now();
        // Identities and outcomes are written first, so a crash right after the index commit loses none; the
        // logs API shows outcomes only once the commit holding them succeeded (see `CommitMarks`).
        if let Err(error) = self.inputs.identity_store.write(&self.identity_writes) {
            self.fail(format!("the identity store could not be written: {error}"));
            return;
        }
        self.identity_writes.clear();
        if let Err(error) = self.inputs.item_log.append(&self.log_entries) {
            self.fail(format!("the item log could not be written: {error}"));
            return;
        }
        self.log_entries.clear();
        let applied = self.commit_indexes(touch_idle);
        if self.rewinding() {
            return;
        }
        self.inputs.registry.caught_up_through(applied);
        self.recovered();
        let observer = &self.inputs.observer;
        for (result, count) in self.uncommitted_results.drain() {
            observer.outcomes_committed(result, count);
        }
        if touch_idle {
            self.last_full_commit = Instant::now();
        }
        let now_ms = self.inputs.clock.now_ms();
        for accepted_at in self.waiting_since.drain(..) {
            observer.searchable_after(now_ms - accepted_at);
        }
        self.first_uncommitted = None;
        let committed = self.caught_up_seq();
        if let Err(error) = self.inputs.journal.release_through(committed) {
            tracing::warn!(%error, "journal segments could not be released");
        }
        self.housekeeping.committed_through(committed);
        self.publish_snapshots(false);
        self.last_commit = (Instant::now(), started.elapsed());
        tracing::debug!(applied, committed, took_ms = started.elapsed().as_millis() as u64, "committed");
    }

    /// Commits every index that changed (and, with `touch_idle`, those behind), each with the position it
    /// holds; returns that position. A failure stops at the failing index and rewinds.
    fn commit_indexes(&mut self, touch_idle: bool) -> Seq {
        let mut applied = self.applied_seq;
        if let Some((organization_id, progress)) = &self.applying_batch {
            // Inside a batch: everything before it is applied, and the batch as far as `progress` says.
            applied = progress.journal_seq - 1;
            if let Some(index) = self.indexes.get_mut(organization_id) {
                index.record_batch_progress(*progress);
            }
        }
        let mut failed = None;
        for (organization_id, index) in &mut self.indexes {
            let lagging = touch_idle && index.committed_seq() < applied;
            if !index.is_dirty() && !lagging {
                continue;
            }
            index.advance_to(applied);
            // Searches and the Logs API see the commit at the same moment: the marks change with the reader.
            let committed = index.commit_durably().and_then(|()| {
                self.inputs.commit_marks.publish(organization_id, || index.publish().map(|()| committed_through(index)))
            });
            if let Err(error) = committed {
                failed = Some(format!("the index commit of organization '{organization_id}' failed: {error}"));
                break;
            }
            self.inputs.observer.indexed(organization_id, index.live_items(), index.committed_seq());
        }
        if let Some(reason) = failed {
            self.fail(reason);
        }
        applied
    }

    /// Merges down the segments of indexes left unchanged for a while ([`OrgIndex::consolidate`]), and makes a
    /// merge that ended searchable, with the commit marks as a commit does.
    fn consolidate_quiet_indexes(&mut self) {
        let Applier { indexes, inputs, .. } = self;
        for (organization_id, index) in indexes.iter_mut() {
            if index.consolidated() && !index.is_dirty() {
                let published =
                    inputs.commit_marks.publish(organization_id, || index.publish().map(|()| committed_through(index)));
                if let Err(error) = published {
                    tracing::warn!(organization = organization_id, %error, "a merged index could not be reopened");
                }
            }
            index.consolidate();
        }
    }

    /// A commit succeeded: if applying had stopped, it is running again.
    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(committed = self.caught_up_seq(), failures = self.failures, "index commits succeed again");
            self.failures = 0;
            self.inputs.observer.recovered();
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
    /// can be released, containers consumed up to here deleted; the observer hears it as applied.
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

    fn publish_positions(&self) {
        let journal = &self.inputs.journal;
        let durable = *journal.durable().borrow();
        self.inputs.observer.applied(self.applied_seq, self.applying_batch.is_some());
        self.inputs.observer.positions(durable, self.caught_up_seq(), journal.sync_count());
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
            permissions: index.permissions().clone(),
        };
        self.inputs.registry.register(organization_id, handle);
        self.inputs.observer.indexed(organization_id, index.live_items(), index.committed_seq());
        self.inputs.commit_marks.set(organization_id, committed_through(&index));
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

/// Why applying stopped when an operation failed on `organization_id`'s index: the index's own failure, or an
/// input it needed that cannot be read now (said as it is: the index did not fail).
fn index_failure(organization_id: &str, error: &IndexError) -> String {
    match error {
        IndexError::InputUnavailable(reason) => reason.clone(),
        other => format!("the index of organization '{organization_id}' failed: {other}"),
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
        task: None,
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
