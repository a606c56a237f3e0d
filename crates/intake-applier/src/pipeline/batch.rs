//! Batch files: applied entry by entry, in windows, committing as they go (so a large batch becomes searchable
//! progressively, and its log entries never pile up in memory). Each commit records how far the batch got;
//! after a crash the entries already committed are skipped, so each is applied exactly once. Stream update and
//! merge files are applied the same way (their own entries in [`super::stream`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use intake_index::prepare::{ContainerError, ContainerReader, PreparedItem};
use intake_index::{BatchProgress, OpInfo, Outcome};
use intake_model::ErrorCode;
use intake_model::batch::{BatchEntry, BatchLayout, BatchReader, RawEntry, WINDOW_BYTES, WINDOW_ENTRIES};
use intake_model::item::Item;
use intake_model::logs::{LogOperation, LogResult};

use super::stream::{StreamChanges, Tally, stored_keys};
use super::{Applier, failed, index_failure};
use crate::prepare::{Origin, Rebuild, prepare};

/// The batch being applied.
pub(super) struct BatchJob<'a> {
    pub organization_id: &'a str,
    pub file_id: &'a str,
    pub info: &'a OpInfo,
    pub accepted_at_ms: i64,
    /// What the file is: an item batch, a stream update or merge file.
    pub layout: BatchLayout,
    /// A stream's file: the documents of its items are kept for the changes that follow them before a commit.
    pub stream: bool,
}

impl BatchJob<'_> {
    /// Where each of its items comes from: the batch's source, order and acceptance time.
    fn origin(&self) -> Origin<'_> {
        Origin {
            organization_id: self.organization_id,
            source_id: &self.info.source_id,
            ordering_id: self.info.ordering_id,
            accepted_at_ms: self.accepted_at_ms,
        }
    }
}

impl Applier {
    /// Applies a batch file from `resume` on. It was validated when accepted; should it be gone now (its
    /// container vanished), the failure is logged against the file and what was read stays applied. False when
    /// interrupted by shutdown, an index failure, or a container that cannot be read now (it is applied again
    /// from the last commit, as after an index failure).
    pub(super) fn apply_batch_file(&mut self, batch: &BatchJob, resume: Option<BatchProgress>) -> bool {
        let reader = match self.inputs.open(batch.organization_id, batch.file_id) {
            Ok(reader) => StopAware { inner: reader, stop: self.stop.clone() },
            Err(ContainerError::Missing(reason)) => {
                self.record_batch_failure(batch, reason);
                return true;
            }
            Err(ContainerError::Unavailable(reason)) => {
                self.fail(reason);
                return false;
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
        if batch.stream {
            self.tally = Some(Tally::of(seq));
        }
        let mut entries = BatchReader::with_layout(reader, batch.layout);
        let mut read_entries = 0;
        let mut failure = None;
        loop {
            let mut window = match entries.next_window(WINDOW_ENTRIES, WINDOW_BYTES) {
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
                        self.housekeeping.consume(seq, batch.organization_id, container.to_string());
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
        if let Some(error) = failure.as_ref().filter(|error| error.unreadable) {
            self.fail(format!("the batch file '{}' cannot be read now: {}", batch.file_id, error.message));
            return false; // applied again from the last commit
        }
        self.applying_batch = None;
        match failure {
            None => tracing::info!(
                organization = batch.organization_id,
                file_id = batch.file_id,
                adds = entries.summary().add_or_update,
                deletes = entries.summary().delete,
                partial_updates = entries.summary().partial_update,
                "batch applied"
            ),
            Some(error) => self.record_batch_failure(batch, error.message),
        }
        if batch.stream {
            let what = if batch.layout.merges() { "merge" } else { "update" };
            self.record_stream_file(batch, what);
        }
        true
    }

    /// Notes that the first `entries` entries of the batch being applied are applied, and commits if one is due.
    fn batch_window_applied(&mut self, entries: u64) {
        let Some((_, progress)) = &self.applying_batch else {
            return;
        };
        let outcomes = self.logged_for(progress.journal_seq);
        if let Some((_, progress)) = &mut self.applying_batch {
            (progress.entries, progress.outcomes) = (entries, outcomes);
        }
        if self.commit_due(false) {
            self.commit();
        }
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
    pub(super) fn apply_batch_window(&mut self, batch: &BatchJob, raw: Vec<RawEntry>) {
        if raw.is_empty() {
            return;
        }
        let parsed: Vec<_> = {
            use rayon::prelude::*;
            raw.par_iter().map(RawEntry::parse).collect()
        };
        drop(raw);
        let mut entries = Vec::with_capacity(parsed.len());
        for entry in parsed {
            match entry {
                Ok(entry) => entries.push(entry),
                // Validated before the 202, so only a container changed on disk gets here.
                Err(error) => self.record_batch_failure(batch, error.message),
            }
        }
        if self.commit_before(batch, &entries) {
            return;
        }
        let origin = batch.origin();
        let items: Vec<Option<(Origin, &Item)>> = entries
            .iter()
            .map(|entry| match entry {
                BatchEntry::AddOrUpdate { item: Ok(item), .. } => Some((origin, item)),
                _ => None,
            })
            .collect();
        let prepared = prepare(&self.inputs, &self.fields, &self.config, &items);
        drop(items);
        let (organization_id, info) = (batch.organization_id, batch.info);
        let (outcomes, containers) = match self.apply_batch_entries(batch, entries, prepared) {
            Ok(applied) => applied,
            Err(error) => {
                self.fail(index_failure(organization_id, &error));
                return;
            }
        };
        for file_id in containers {
            self.housekeeping.consume(info.journal_seq, organization_id, file_id);
        }
        self.record(organization_id, outcomes);
    }

    /// Commits first when an entry of the window starts from a stored item that changed since the last commit
    /// without its document being kept; true when that commit failed.
    fn commit_before(&mut self, batch: &BatchJob, entries: &[BatchEntry]) -> bool {
        let Some(index) = self.indexes.get(batch.organization_id) else {
            return false;
        };
        if stored_keys(&batch.info.source_id, entries).iter().any(|key| index.needs_commit(key)) {
            self.commit();
        }
        self.rewinding()
    }

    /// Applies parsed batch entries and their prepared items in file order: their outcomes, and the
    /// containers they consumed.
    fn apply_batch_entries(
        &mut self,
        batch: &BatchJob,
        entries: Vec<BatchEntry>,
        prepared: Vec<Option<PreparedItem>>,
    ) -> Result<(Vec<Outcome>, Vec<String>), intake_index::IndexError> {
        let (organization_id, info) = (batch.organization_id, batch.info);
        let (mut outcomes, mut containers) = (Vec::new(), Vec::new());
        let changes = batch.stream.then(|| StreamChanges {
            rebuild: Rebuild::new(&self.inputs, batch.origin(), &self.config),
            fields: &self.fields,
        });
        let Some(index) = self.indexes.get_mut(organization_id) else {
            return Ok((outcomes, containers));
        };
        for (entry, prepared) in entries.into_iter().zip(prepared) {
            match (entry, prepared) {
                (BatchEntry::AddOrUpdate { .. }, Some(prepared)) => {
                    containers.extend(prepared.container.clone());
                    let outcome = if batch.stream {
                        index.upsert_keeping(prepared, info)?
                    } else {
                        index.upsert(prepared, info)?
                    };
                    outcomes.push(outcome);
                }
                (BatchEntry::PartialUpdate { update, .. }, _) => outcomes.push(match &changes {
                    Some(changes) => changes.partial_update(index, &update, info)?,
                    None => failed(info, &update.document_id, LogOperation::Update, not_a_stream()),
                }),
                (BatchEntry::Merge { patch: Ok(patch), .. }, _) => {
                    if let Some(intake_model::Content::FileContainer { file_id, .. }) = &patch.content {
                        containers.push(file_id.clone());
                    }
                    outcomes.push(match &changes {
                        Some(changes) => changes.merge(index, &patch, info)?,
                        None => failed(info, &patch.document_id, LogOperation::Update, not_a_stream()),
                    });
                }
                (BatchEntry::Merge { document_id, patch: Err(error), .. }, _) => {
                    outcomes.push(failed(info, &document_id, LogOperation::Update, error.message));
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
}

/// Only stream files have partial updates and merges (their layouts are the only ones with such entries).
fn not_a_stream() -> String {
    "partial updates and merges are only applied from a stream update or merge file".to_string()
}

/// A container reader that fails once the applier is asked to stop, so a long batch ends at the next entry.
pub(super) struct StopAware {
    pub inner: Box<dyn std::io::Read + Send>,
    pub stop: Arc<AtomicBool>,
}

impl std::io::Read for StopAware {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Acquire) {
            return Err(std::io::Error::other("the server is shutting down"));
        }
        self.inner.read(buf)
    }
}
