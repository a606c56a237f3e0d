//! The Stream API's operations on catalog sources.
//!
//! A **full load** (a closed stream) is applied whole and committed as one: what was applied before it is
//! committed first, then its chunks' entries are applied, then the source's items it did not contain are
//! deleted — and only the next commit makes all of it searchable, so the previous catalog stays searchable until
//! the new one replaces it at once. Interrupted (shutdown, an unreadable chunk), the load is rolled back whole.
//!
//! **Update** and **merge** files are applied like batches (progressively, resumable), with two kinds of entry
//! that start from the stored item: a partial update changes one metadata field; a merge sets an entry's keys
//! over the stored item's. Each starts from the item's document as the index holds it (catalog items keep their
//! whole text), or as a change since the last commit left it.

use intake_index::prepare::{ContainerError, ContainerReader, ItemParts, prepare_item, with_providers};
use intake_index::schema::item_key;
use intake_index::{IndexError, OpInfo, OrgIndex, Outcome, Stored};
use intake_model::batch::{BatchEntry, BatchReader, ITEM_BATCH, WINDOW_BYTES, WINDOW_ENTRIES};
use intake_model::item::Item;
use intake_model::logs::{LogOperation, LogResult, LogTask};
use intake_model::stream::{ItemPatch, PartialUpdate};
use intake_store::Seq;

use super::batch::{BatchJob, StopAware};
use super::{Applier, failed, index_failure};
use crate::prepare::Rebuild;

/// Outcomes of a load held in memory at most: more are written to the item log as drafts (shown only once the
/// load is committed).
const LOAD_OUTCOMES_IN_MEMORY: usize = 10_000;

/// A full load to apply.
pub(super) struct LoadJob<'a> {
    pub organization_id: &'a str,
    pub stream_id: &'a str,
    pub file_ids: &'a [String],
    pub info: &'a OpInfo,
    pub accepted_at_ms: i64,
}

/// How the entries of a stream operation ended, for the line that logs the file's fate.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub seq: Seq,
    applied: u64,
    deleted: u64,
    skipped: u64,
    refused: u64,
}

impl Tally {
    pub fn of(seq: Seq) -> Tally {
        Tally { seq, ..Tally::default() }
    }

    pub fn count(&mut self, outcome: &Outcome) {
        match (outcome.operation, outcome.result) {
            (LogOperation::BatchFile, _) => {}
            (LogOperation::DeleteOlderThan, LogResult::Completed) => self.deleted += 1,
            (_, LogResult::Completed | LogResult::Warning) => self.applied += 1,
            (_, LogResult::Skipped) => self.skipped += 1,
            (_, LogResult::Error | LogResult::Rejected) => self.refused += 1,
        }
    }

    /// The file's own outcome: COMPLETED, or WARNING when some of its entries were refused.
    fn outcome(&self, info: &OpInfo, document_id: &str, what: String) -> Outcome {
        let mut summary = format!("{what}: {} entries applied", self.applied);
        if self.deleted > 0 {
            summary += &format!(", {} items deleted as not in the load", self.deleted);
        }
        if self.skipped > 0 {
            summary += &format!(", {} skipped (a newer operation had decided them)", self.skipped);
        }
        let result = if self.refused > 0 {
            summary += &format!(
                ", {} refused (REJECTED or ERROR: their own log entries say why; the rest was applied)",
                self.refused
            );
            LogResult::Warning
        } else {
            LogResult::Completed
        };
        Outcome {
            result,
            reason: Some(summary),
            task: Some(LogTask::StreamingExtension),
            ..failed(info, document_id, LogOperation::BatchFile, String::new())
        }
    }
}

impl Applier {
    /// Applies a full load; false when it was interrupted by shutdown or an index failure, and nothing of it
    /// stays (it is applied again, whole, from the journal).
    pub(super) fn apply_stream_load(&mut self, load: &LoadJob) -> bool {
        let seq = load.info.journal_seq;
        // Everything before the load is committed first, so the load alone can be dropped.
        self.applied_seq = seq - 1;
        if self.first_uncommitted.is_some() || self.indexes.values().any(OrgIndex::is_dirty) {
            self.commit();
            if self.rewinding() {
                return false;
            }
        }
        self.applied_seq = seq;
        self.logged = (seq, 0);
        self.tally = Some(Tally::of(seq));
        let chunks = load.file_ids.len();
        for (number, file_id) in load.file_ids.iter().enumerate() {
            let batch = BatchJob {
                organization_id: load.organization_id,
                file_id,
                info: load.info,
                accepted_at_ms: load.accepted_at_ms,
                layout: ITEM_BATCH,
                // A load's documents are not kept: nothing in it starts from a stored item, and it may be large.
                stream: false,
            };
            if let Err(reason) = self.apply_load_chunk(&batch) {
                if self.rewinding() {
                    return false;
                }
                self.drop_load(load.organization_id, seq);
                if self.stopping() || self.rewinding() {
                    return false;
                }
                self.applied_seq = seq;
                let reason = format!(
                    "chunk {} of {chunks} (file container '{file_id}') could not be read: {reason}; nothing of the \
                     load was applied and the catalog is as it was: load it again in a new stream",
                    number + 1
                );
                let failure = Outcome {
                    task: Some(LogTask::StreamingExtension),
                    ..failed(load.info, load.stream_id, LogOperation::BatchFile, reason)
                };
                self.tally = None;
                self.record(load.organization_id, vec![failure]);
                return true;
            }
        }
        let Some(index) = self.indexes.get_mut(load.organization_id) else {
            return true;
        };
        match index.delete_older_now(load.info) {
            Ok(outcomes) => self.record(load.organization_id, outcomes),
            Err(error) => {
                self.fail(index_failure(load.organization_id, &error));
                return false;
            }
        }
        let tally = self.tally.take().unwrap_or_default();
        let what = format!("full load of stream '{}' ({chunks} chunks)", load.stream_id);
        let summary = tally.outcome(load.info, load.stream_id, what);
        tracing::info!(
            organization = load.organization_id,
            stream_id = load.stream_id,
            summary = summary.reason.as_deref().unwrap_or(""),
            "full load applied"
        );
        self.record(load.organization_id, vec![summary]);
        true
    }

    /// Applies one chunk of a load, without committing; its outcomes beyond a bound go to the item log as
    /// drafts. An error is why the chunk could not be read (or the applier is stopping or rewinding).
    fn apply_load_chunk(&mut self, batch: &BatchJob) -> Result<(), String> {
        let reader = match self.inputs.open(batch.organization_id, batch.file_id) {
            Ok(reader) => reader,
            Err(ContainerError::Missing(reason)) => return Err(reason),
            Err(ContainerError::Unavailable(reason)) => {
                self.fail(reason.clone()); // the load is applied again from the last commit
                return Err(reason);
            }
        };
        let mut entries = BatchReader::with_layout(StopAware { inner: reader, stop: self.stop.clone() }, batch.layout);
        loop {
            let window = match entries.next_window(WINDOW_ENTRIES, WINDOW_BYTES) {
                Ok(window) => window,
                Err(error) if error.unreadable && !self.stopping() => {
                    self.fail(error.message.clone()); // the load is applied again from the last commit
                    return Err(error.message);
                }
                Err(error) => return Err(error.message),
            };
            if window.is_empty() {
                break;
            }
            self.apply_batch_window(batch, window);
            if self.rewinding() {
                return Err("the index failed".to_string());
            }
            if self.log_entries.len() >= LOAD_OUTCOMES_IN_MEMORY {
                if let Err(error) = self.inputs.item_log.append(&self.log_entries) {
                    self.fail(format!("the item log could not be written: {error}"));
                    return Err("the item log failed".to_string());
                }
                self.log_entries.clear();
            }
        }
        if self.stopping() { Err("the server is shutting down".to_string()) } else { Ok(()) }
    }

    /// Drops what a load applied: the index goes back to the commit made before it.
    fn drop_load(&mut self, organization_id: &str, seq: Seq) {
        if let Some(index) = self.indexes.get_mut(organization_id)
            && let Err(error) = index.rollback()
        {
            self.fail(format!("the index of organization '{organization_id}' could not drop a load: {error}"));
            return;
        }
        self.log_entries.clear();
        self.uncommitted_results.clear();
        self.waiting_since.clear();
        self.first_uncommitted = None;
        self.housekeeping.rewind_to(seq - 1);
        self.logged = (seq, 0);
        self.tally = None;
        self.applied_seq = seq - 1;
        tracing::info!(organization = organization_id, seq, "a full load was dropped before its commit");
    }

    /// Logs the fate of a stream update or merge file once applied.
    pub(super) fn record_stream_file(&mut self, batch: &BatchJob, what: &str) {
        let tally = self.tally.take().unwrap_or_default();
        let summary = tally.outcome(batch.info, batch.file_id, format!("{what} file '{}'", batch.file_id));
        self.record(batch.organization_id, vec![summary]);
    }
}

/// Applies the sequential entries of a stream file (partial updates, merges) against `index`.
pub(super) struct StreamChanges<'a> {
    pub rebuild: Rebuild<'a>,
    pub fields: &'a intake_index::schema::Fields,
}

impl StreamChanges<'_> {
    /// A partial update of a stored item: REJECTED when the item is not there or the field has another shape.
    pub fn partial_update(
        &self,
        index: &mut OrgIndex,
        update: &PartialUpdate,
        info: &OpInfo,
    ) -> Result<Outcome, IndexError> {
        let refused = |reason: String| Outcome {
            result: LogResult::Rejected,
            ..failed(info, &update.document_id, LogOperation::Update, reason)
        };
        let key = item_key(&info.source_id, &update.document_id);
        let mut parts = match self.stored_parts(index, &key) {
            Ok(parts) => parts,
            Err(why) => {
                return Ok(refused(format!(
                    "{why}: a partial update ({} of '{}') changes an existing item; add it first (addOrUpdate)",
                    update.operator.as_str(),
                    update.field
                )));
            }
        };
        if let Err(why) = update.apply(&mut parts.metadata) {
            return Ok(refused(why));
        }
        let target = self.rebuild.target();
        if let Some(why) = parts.mistyped(&update.field, target.field_types) {
            return Ok(refused(why));
        }
        index.replace(key, parts.document(&target, self.fields), info)
    }

    /// A merge of an entry into the stored item; an entry with data for an item not there adds it.
    pub fn merge(&self, index: &mut OrgIndex, patch: &ItemPatch, info: &OpInfo) -> Result<Outcome, IndexError> {
        let key = item_key(&info.source_id, &patch.document_id);
        let target = self.rebuild.target();
        let stored = self.stored_parts(index, &key);
        let Some(content) = &patch.content else {
            let mut parts = match stored {
                Ok(parts) => parts,
                Err(why) => {
                    let reason = format!(
                        "{why}: a merge without data changes an existing item; add it first (addOrUpdate), or give \
                         the entry its data"
                    );
                    return Ok(Outcome {
                        result: LogResult::Rejected,
                        ..failed(info, &patch.document_id, LogOperation::Update, reason)
                    });
                }
            };
            patch.merge_into(&mut parts.metadata);
            let mistyped = patch.metadata.iter().find_map(|(field, _)| parts.mistyped(field, target.field_types));
            if let Some(why) = mistyped {
                return Ok(Outcome {
                    result: LogResult::Rejected,
                    ..failed(info, &patch.document_id, LogOperation::Update, why)
                });
            }
            parts.file_extension = patch.file_extension.clone().or(parts.file_extension);
            parts.parent_id = patch.parent_id.clone().or(parts.parent_id);
            if let Some(permissions) = &patch.permissions {
                parts.permissions = with_providers(permissions, target.default_provider);
            }
            return index.replace(key, parts.document(&target, self.fields), info);
        };
        // New data: the item is prepared again from it, with the merged metadata.
        let (metadata, file_extension, parent_id, permissions) = match stored {
            Ok(mut parts) => {
                patch.merge_into(&mut parts.metadata);
                (parts.metadata, parts.file_extension, parts.parent_id, parts.permissions)
            }
            Err(_) => {
                let mut metadata = Vec::new();
                patch.merge_into(&mut metadata);
                (metadata, None, None, Vec::new())
            }
        };
        let item = Item {
            document_id: patch.document_id.clone(),
            content: content.clone(),
            file_extension: patch.file_extension.clone().or(file_extension),
            parent_id: patch.parent_id.clone().or(parent_id),
            permissions: patch.permissions.clone().unwrap_or(permissions),
            metadata,
        };
        index.upsert_keeping(prepare_item(&item, &target, self.fields), info)
    }

    /// The stored item's parts, or why there are none.
    fn stored_parts(&self, index: &OrgIndex, key: &str) -> Result<ItemParts, String> {
        let source = &self.rebuild.target().source_name.to_string();
        let document_id = key.split_once('\u{1f}').map_or(key, |(_, id)| id);
        match index.stored(key) {
            Stored::Live(document, _) => Ok(ItemParts::from_document(&document, self.fields)),
            Stored::Absent => Err(format!("the item '{document_id}' is not in source '{source}'")),
            // Entries are checked for this before they are applied (see `needs_commit`): only a defect gets here.
            Stored::Uncommitted => Err(format!("the item '{document_id}' changed since the last commit")),
        }
    }
}

/// The keys of a window's entries that start from the stored item.
pub(super) fn stored_keys(source_id: &str, entries: &[BatchEntry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|entry| match entry {
            BatchEntry::PartialUpdate { update, .. } => Some(item_key(source_id, &update.document_id)),
            BatchEntry::Merge { document_id, .. } => Some(item_key(source_id, document_id)),
            _ => None,
        })
        .collect()
}
