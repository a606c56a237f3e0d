//! One organization's index, and the rules for applying operations to it.
//!
//! Per item the operation with the highest `orderingId` wins, whatever the arrival order: every operation
//! compares itself with the item's current `orderingId` (from the last commit, or from the uncommitted
//! `overlay`) and a delete leaves a tombstone so a late, older add still loses. Delete-older-than waits its
//! `queueDelay`, then deletes and raises the source's watermark: later operations below it are rejected.
//!
//! Each commit stores an [`IndexState`] as its payload: the last journal record it contains, the watermarks
//! and the pending delete-older-than operations. Replay after a crash starts right after that record, so every
//! operation is applied exactly once.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Weak};

use intake_model::OrderingId;
use intake_model::logs::{LogOperation, LogResult, LogTask};
use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::prepare::PreparedItem;
use crate::schema::{Fields, build_schema, item_key, register_tokenizers};
use crate::security::PermissionTables;

/// How long an index must have been left unchanged before its segments are merged down ([`OrgIndex::consolidate`]).
pub const QUIET_BEFORE_CONSOLIDATING: std::time::Duration = std::time::Duration::from_secs(2);

/// What a commit records besides the documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexState {
    /// The last journal record whose effects this commit contains.
    pub journal_seq: u64,
    /// Per source, the `orderingId` below which operations are rejected.
    pub watermarks: BTreeMap<String, OrderingId>,
    /// Delete-older-than operations waiting for their `queueDelay`.
    pub pending: Vec<PendingDeleteOlderThan>,
    /// Disabling of old security identities waiting for their `queueDelay` (`source_id` holds the provider).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_pending: Vec<PendingDeleteOlderThan>,
    /// The batch file being applied when the commit was made, if any: replay resumes inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchProgress>,
}

/// How far a batch file's application got: its first `entries` entries are in the commit, and they logged
/// `outcomes` outcomes (so a resumed batch numbers its log entries where it left off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// The journal record of the batch (one after `IndexState::journal_seq`).
    pub journal_seq: u64,
    pub entries: u64,
    pub outcomes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDeleteOlderThan {
    pub source_id: String,
    pub ordering_id: OrderingId,
    pub due_at_ms: i64,
    pub request_id: String,
    pub journal_seq: u64,
}

/// The identity of an operation, carried into its outcomes.
#[derive(Debug, Clone)]
pub struct OpInfo {
    pub source_id: String,
    pub ordering_id: OrderingId,
    pub request_id: String,
    pub journal_seq: u64,
}

/// What happened to one item.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub source_id: String,
    pub document_id: String,
    pub operation: LogOperation,
    pub result: LogResult,
    pub reason: Option<String>,
    pub ordering_id: OrderingId,
    pub request_id: String,
    pub journal_seq: u64,
    /// The pipeline stage to log it under, when not the one its operation and result imply.
    pub task: Option<LogTask>,
}

/// An item as stored, for a change that starts from it (a partial update, a merge).
#[derive(Debug)]
pub enum Stored {
    /// The item's document and the `orderingId` that wrote it.
    Live(TantivyDocument, OrderingId),
    /// Not in the index: never added, deleted, or removed by a delete-older-than.
    Absent,
    /// Changed since the last commit by an operation whose document only the commit will hold: commit first.
    Uncommitted,
}

/// An item's latest known state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemState {
    Live(OrderingId),
    Deleted(OrderingId),
    /// Removed by delete-older-than: the watermark now guards it.
    Gone,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("index state is unreadable: {0}")]
    State(String),
    #[error("index folder error: {0}")]
    Io(#[from] std::io::Error),
    /// What an item needs cannot be read now (its file container's store is unreachable): not the index's
    /// fault, but handled the same way — applied again later from the last commit.
    #[error("{0}")]
    InputUnavailable(String),
}

pub struct OrgIndex {
    index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    /// The compiled permissions of the reader's segments (its warmer).
    permissions: Arc<PermissionTables>,
    fields: Fields,
    state: IndexState,
    /// Item states changed since the last commit, by key.
    overlay: HashMap<String, ItemState>,
    /// Whether anything changed since the last commit.
    dirty: bool,
    /// Documents written by partial updates and merges since the last commit, by key: the next change of the
    /// same item starts from them (the index has them only once committed).
    written: HashMap<String, TantivyDocument>,
    /// The state recorded by the last successful commit.
    committed: IndexState,
    /// The merge [`OrgIndex::consolidate`] started, until it ends (in a mutex only to keep the index `Sync`: it is
    /// polled through `&mut self`).
    consolidating: Option<std::sync::Mutex<tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>>>,
    /// When the index was last committed (or a consolidation ended): what it has been quiet since.
    changed_at: std::time::Instant,
}

impl OrgIndex {
    /// Opens the index in `dir`, creating it if needed. `memory_bytes` is the writer's indexing budget.
    pub fn open(dir: &Path, threads: usize, memory_bytes: usize) -> Result<OrgIndex, IndexError> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = build_schema();
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(|e| IndexError::State(e.to_string()))?;
        let index = Index::open_or_create(directory, schema)?;
        register_tokenizers(&index);
        let writer = index.writer_with_num_threads(threads.max(1), memory_bytes.max(15_000_000 * threads.max(1)))?;
        // Each new segment's permissions are compiled as the reader meets it (at a commit), not by the first
        // trimmed search over it.
        let permissions = Arc::new(PermissionTables::new(fields.clone()));
        let warmer: Weak<dyn tantivy::Warmer> = Arc::downgrade(&permissions) as Weak<dyn tantivy::Warmer>;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).warmers(vec![warmer]).try_into()?;
        let state = match index.load_metas()?.payload {
            Some(payload) => serde_json::from_str(&payload).map_err(|e| IndexError::State(e.to_string()))?,
            None => IndexState::default(),
        };
        Ok(OrgIndex {
            committed: state.clone(),
            index,
            writer,
            reader,
            permissions,
            fields,
            state,
            overlay: HashMap::new(),
            dirty: false,
            written: HashMap::new(),
            consolidating: None,
            changed_at: std::time::Instant::now(),
        })
    }

    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The state of the last commit plus what was applied since.
    pub fn state(&self) -> &IndexState {
        &self.state
    }

    /// The compiled permissions of the index's segments, which trimmed searches filter with.
    pub fn permissions(&self) -> &Arc<PermissionTables> {
        &self.permissions
    }

    /// The reader search uses; it sees each commit once made.
    pub fn reader(&self) -> &IndexReader {
        &self.reader
    }

    /// A searcher over the last commit.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The journal position of the last successful commit: what survives a crash.
    pub fn committed_seq(&self) -> u64 {
        self.committed.journal_seq
    }

    /// The state the last successful commit recorded (what a restart would find).
    pub fn committed_state(&self) -> &IndexState {
        &self.committed
    }

    /// Deletes the files no commit refers to any more, such as the segments of a commit that failed.
    pub fn collect_garbage(&self) -> Result<(), IndexError> {
        self.writer.garbage_collect_files().wait()?;
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Records that every journal record up to `seq` has been applied (it is committed with the next commit).
    pub fn advance_to(&mut self, seq: u64) {
        if seq > self.state.journal_seq {
            self.state.journal_seq = seq;
            self.dirty = true;
        }
        if self.state.batch.is_some_and(|batch| batch.journal_seq <= seq) {
            self.state.batch = None;
            self.dirty = true;
        }
    }

    /// Records how far the batch at `progress.journal_seq` is applied, for the next commit; every record
    /// before it must be applied.
    pub fn record_batch_progress(&mut self, progress: BatchProgress) {
        self.advance_to(progress.journal_seq - 1);
        self.state.batch = Some(progress);
        self.dirty = true;
    }

    /// How far the batch at `seq` got before the last commit, if it was partly applied.
    pub fn batch_progress(&self, seq: u64) -> Option<BatchProgress> {
        self.state.batch.filter(|batch| batch.journal_seq == seq)
    }

    /// Adds or replaces an item, if no newer operation already decided it. An error is the index's own
    /// failure (its writer stopped, say on a full disk), never the item's: the caller goes back to the last
    /// commit and applies the operation again later.
    pub fn upsert(&mut self, item: PreparedItem, op: &OpInfo) -> Result<Outcome, IndexError> {
        let outcome =
            |operation, result, reason: Option<String>| outcome(op, &item.document_id, operation, result, reason);
        let document = match item.document {
            Ok(document) => document,
            Err(refusal) if refusal.retry => return Err(IndexError::InputUnavailable(refusal.reason)),
            Err(refusal) => {
                return Ok(outcome(LogOperation::Add, refusal.result, Some(refusal.reason)));
            }
        };
        if let Some(rejection) = self.below_watermark(op) {
            return Ok(outcome(LogOperation::Add, LogResult::Rejected, Some(rejection)));
        }
        let current = self.item_state(&item.key);
        if let Some(newer) = newer_than(current, op.ordering_id) {
            return Ok(outcome(LogOperation::Add, LogResult::Skipped, Some(newer)));
        }
        self.writer.delete_term(Term::from_field_text(self.fields.key, &item.key));
        self.writer.add_document(document)?;
        self.written.remove(&item.key);
        self.set_state(item.key, ItemState::Live(op.ordering_id));
        let operation =
            if matches!(current, Some(ItemState::Live(_))) { LogOperation::Update } else { LogOperation::Add };
        Ok(match item.warning {
            Some(warning) => outcome(operation, LogResult::Warning, Some(warning)),
            None => outcome(operation, LogResult::Completed, item.note),
        })
    }

    /// Adds or replaces an item as [`OrgIndex::upsert`] does, and keeps its document for the changes of the item
    /// that may follow before the next commit (in a stream update or merge file).
    pub fn upsert_keeping(&mut self, item: PreparedItem, op: &OpInfo) -> Result<Outcome, IndexError> {
        let kept = item.document.as_ref().ok().map(|document| (item.key.clone(), document.clone()));
        let outcome = self.upsert(item, op)?;
        if let Some((key, document)) = kept
            && matches!(outcome.result, LogResult::Completed | LogResult::Warning)
        {
            self.written.insert(key, document);
        }
        Ok(outcome)
    }

    /// Whether a change starting from the stored item must wait for a commit: the item was written since the
    /// last commit by an operation whose document was not kept.
    pub fn needs_commit(&self, key: &str) -> bool {
        matches!(self.overlay.get(key), Some(ItemState::Live(_))) && !self.written.contains_key(key)
    }

    /// The item as stored now, committed or written since by [`OrgIndex::replace`].
    pub fn stored(&self, key: &str) -> Stored {
        if let Some(document) = self.written.get(key) {
            let ordering_id = match self.overlay.get(key) {
                Some(ItemState::Live(ordering_id)) => *ordering_id,
                _ => return Stored::Absent,
            };
            return Stored::Live(document.clone(), ordering_id);
        }
        if self.overlay.contains_key(key) {
            return match self.overlay[key] {
                ItemState::Live(_) => Stored::Uncommitted,
                ItemState::Deleted(_) | ItemState::Gone => Stored::Absent,
            };
        }
        let searcher = self.reader.searcher();
        match self.committed_address(&searcher, key) {
            Some((address, ItemState::Live(ordering_id))) => match searcher.doc(address) {
                Ok(document) => Stored::Live(document, ordering_id),
                Err(_) => Stored::Absent,
            },
            _ => Stored::Absent,
        }
    }

    /// Writes a changed version of a stored item (a partial update, a merge), if no newer operation decided the
    /// item; later changes of the same item before the next commit start from it.
    pub fn replace(&mut self, key: String, document: TantivyDocument, op: &OpInfo) -> Result<Outcome, IndexError> {
        let document_id = key.split_once('\u{1f}').map_or(key.as_str(), |(_, id)| id).to_string();
        let outcome = |result, reason| outcome(op, &document_id, LogOperation::Update, result, reason);
        if let Some(rejection) = self.below_watermark(op) {
            return Ok(outcome(LogResult::Rejected, Some(rejection)));
        }
        if let Some(newer) = newer_than(self.item_state(&key), op.ordering_id) {
            return Ok(outcome(LogResult::Skipped, Some(newer)));
        }
        self.writer.delete_term(Term::from_field_text(self.fields.key, &key));
        self.writer.add_document(document.clone())?;
        self.written.insert(key.clone(), document);
        self.set_state(key, ItemState::Live(op.ordering_id));
        Ok(outcome(LogResult::Completed, None))
    }

    /// Deletes, now, the items of `op`'s source that operations older than `op` wrote (those a full catalog load
    /// did not contain), and raises the source's watermark to `op`'s `orderingId`.
    pub fn delete_older_now(&mut self, op: &OpInfo) -> Result<Vec<Outcome>, IndexError> {
        let pending = PendingDeleteOlderThan {
            source_id: op.source_id.clone(),
            ordering_id: op.ordering_id,
            due_at_ms: 0,
            request_id: op.request_id.clone(),
            journal_seq: op.journal_seq,
        };
        self.delete_older_than(&pending)
    }

    /// Drops everything applied since the last commit: the index, its state and its caches are as committed.
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        self.writer.rollback()?;
        self.state = self.committed.clone();
        self.overlay.clear();
        self.written.clear();
        self.dirty = false;
        Ok(())
    }

    /// Deletes an item and, with `children`, every item whose URI starts with its URI and `/`. An error is the
    /// index's own failure, as for [`OrgIndex::upsert`].
    pub fn delete(&mut self, document_id: &str, children: bool, op: &OpInfo) -> Result<Vec<Outcome>, IndexError> {
        let operation = if children { LogOperation::DeleteAndChildren } else { LogOperation::Delete };
        if let Some(rejection) = self.below_watermark(op) {
            return Ok(vec![outcome(op, document_id, operation, LogResult::Rejected, Some(rejection))]);
        }
        let key = item_key(&op.source_id, document_id);
        let current = self.item_state(&key);
        let mut outcomes = vec![match newer_than(current, op.ordering_id) {
            Some(newer) => outcome(op, document_id, operation, LogResult::Skipped, Some(newer)),
            None => {
                self.tombstone(&key, document_id, op)?;
                match current {
                    Some(ItemState::Live(_)) => outcome(op, document_id, operation, LogResult::Completed, None),
                    _ => outcome(
                        op,
                        document_id,
                        operation,
                        LogResult::Skipped,
                        Some("the item is not in the index".to_string()),
                    ),
                }
            }
        }];
        if children {
            for (child_key, child_id, state) in self.children_of(&op.source_id, document_id) {
                if let Some(newer) = newer_than(Some(state), op.ordering_id) {
                    if matches!(state, ItemState::Live(_)) {
                        outcomes.push(outcome(op, &child_id, operation, LogResult::Skipped, Some(newer)));
                    }
                    continue;
                }
                self.tombstone(&child_key, &child_id, op)?;
                if matches!(state, ItemState::Live(_)) {
                    outcomes.push(outcome(op, &child_id, operation, LogResult::Completed, None));
                }
            }
        }
        Ok(outcomes)
    }

    /// Queues a delete-older-than until `due_at_ms`.
    pub fn schedule_delete_older_than(&mut self, due_at_ms: i64, op: &OpInfo) {
        self.state.pending.push(PendingDeleteOlderThan {
            source_id: op.source_id.clone(),
            ordering_id: op.ordering_id,
            due_at_ms,
            request_id: op.request_id.clone(),
            journal_seq: op.journal_seq,
        });
        self.dirty = true;
    }

    /// Records that an operation kept outside the documents (a security identity) was applied: the next commit
    /// must record the position past it, so its outcomes show and it is not applied again.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Queues the disabling of a provider's old identities until `due_at_ms` (`op.source_id` is the provider).
    pub fn schedule_identity_disable(&mut self, due_at_ms: i64, op: &OpInfo) {
        self.state.identity_pending.push(PendingDeleteOlderThan {
            source_id: op.source_id.clone(),
            ordering_id: op.ordering_id,
            due_at_ms,
            request_id: op.request_id.clone(),
            journal_seq: op.journal_seq,
        });
        self.dirty = true;
    }

    /// Takes the identity disablings due at `now_ms`: the caller applies them before the next commit.
    pub fn take_due_identity_disables(&mut self, now_ms: i64) -> Vec<PendingDeleteOlderThan> {
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.state.identity_pending).into_iter().partition(|p| p.due_at_ms <= now_ms);
        self.state.identity_pending = waiting;
        if !due.is_empty() {
            self.dirty = true;
        }
        due
    }

    /// When the next pending delete-older-than (of items or identities) is due.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.state.pending.iter().chain(&self.state.identity_pending).map(|p| p.due_at_ms).min()
    }

    /// Applies every pending delete-older-than due at `now_ms`.
    pub fn run_due(&mut self, now_ms: i64) -> Result<Vec<Outcome>, IndexError> {
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.state.pending).into_iter().partition(|p| p.due_at_ms <= now_ms);
        self.state.pending = waiting;
        let mut outcomes = Vec::new();
        for pending in due {
            outcomes.extend(self.delete_older_than(&pending)?);
        }
        Ok(outcomes)
    }

    fn delete_older_than(&mut self, pending: &PendingDeleteOlderThan) -> Result<Vec<Outcome>, IndexError> {
        let op = OpInfo {
            source_id: pending.source_id.clone(),
            ordering_id: pending.ordering_id,
            request_id: pending.request_id.clone(),
            journal_seq: pending.journal_seq,
        };
        let mut outcomes = Vec::new();
        let mut doomed: Vec<(String, String, bool)> = Vec::new(); // key, document id, live
        for (document_id, live) in self.committed_older_than(&pending.source_id, pending.ordering_id)? {
            let key = item_key(&pending.source_id, &document_id);
            // An uncommitted newer operation on the item survives.
            if !self.overlay.contains_key(&key) {
                doomed.push((key, document_id, live));
            }
        }
        let prefix = item_key(&pending.source_id, "");
        for (key, state) in &self.overlay {
            let older = match state {
                ItemState::Live(o) | ItemState::Deleted(o) => *o < pending.ordering_id,
                ItemState::Gone => false,
            };
            if older && key.starts_with(&prefix) {
                doomed.push((key.clone(), key[prefix.len()..].to_string(), matches!(state, ItemState::Live(_))));
            }
        }
        let older = self.older_than(&pending.source_id, pending.ordering_id);
        self.writer.delete_query(Box::new(older))?;
        for (key, document_id, live) in doomed {
            self.set_state(key, ItemState::Gone);
            if live {
                outcomes.push(outcome(&op, &document_id, LogOperation::DeleteOlderThan, LogResult::Completed, None));
            }
        }
        let watermark = self.state.watermarks.entry(pending.source_id.clone()).or_insert(OrderingId::MIN);
        *watermark = (*watermark).max(pending.ordering_id);
        self.dirty = true;
        Ok(outcomes)
    }

    /// Removes every document of a deleted source, and what the index remembered about it.
    pub fn purge_source(&mut self, source_id: &str) {
        self.writer.delete_term(Term::from_field_text(self.fields.source, source_id));
        self.state.watermarks.remove(source_id);
        self.state.pending.retain(|p| p.source_id != source_id);
        let prefix = item_key(source_id, "");
        self.overlay.retain(|key, _| !key.starts_with(&prefix));
        self.dirty = true;
    }

    /// The items of the last commit (tombstones aside).
    pub fn live_items(&self) -> u64 {
        let live = TermQuery::new(Term::from_field_u64(self.fields.live, 1), IndexRecordOption::Basic);
        self.searcher().search(&live, &tantivy::collector::Count).map_or(0, |count| count as u64)
    }

    /// Commits everything applied so far with its [`IndexState`], then makes it searchable.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        self.commit_durably()?;
        self.publish()
    }

    /// Commits everything applied so far with its [`IndexState`]; searches see it once [`OrgIndex::publish`] ran
    /// (a caller that must say what is searchable at the same moment does so between the two).
    pub fn commit_durably(&mut self) -> Result<(), IndexError> {
        let payload = serde_json::to_string(&self.state).expect("index state serializes");
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.committed = self.state.clone();
        self.changed_at = std::time::Instant::now();
        Ok(())
    }

    /// When nothing has changed the index for [`QUIET_BEFORE_CONSOLIDATING`] and no merge of this kind runs:
    /// starts merging its segments of about the same size (tantivy's log levels, from two segments each instead of
    /// the eight the writer's own policy waits for while items keep coming). A search pays for every segment it
    /// walks — per-term dictionary lookups, scorers, collectors — and near-real-time commits leave many small
    /// ones; while pushes arrive the writer's policy keeps merging cheap, and once they stop the index is merged
    /// down to a few segments. Merging segments of similar size keeps each item's rewrites logarithmic. Whether a
    /// merge started; the merged segment is searchable after [`OrgIndex::consolidated`] said so and the next
    /// [`OrgIndex::publish`].
    pub fn consolidate(&mut self) -> bool {
        if self.consolidating.is_some() || self.dirty || self.changed_at.elapsed() < QUIET_BEFORE_CONSOLIDATING {
            return false;
        }
        let Ok(segments) = self.index.searchable_segment_metas() else { return false };
        let mut levels = tantivy::indexer::LogMergePolicy::default();
        levels.set_min_num_segments(2);
        levels.set_min_layer_size(1);
        let Some(candidate) = tantivy::indexer::MergePolicy::compute_merge_candidates(&levels, &segments).pop() else {
            return false;
        };
        self.consolidating = Some(std::sync::Mutex::new(self.writer.merge(&candidate.0)));
        true
    }

    /// Whether the merge [`OrgIndex::consolidate`] started has ended (then [`OrgIndex::publish`] makes its segment
    /// searchable). A merge that fails (the writer's own policy was merging one of the segments, the disk is
    /// full) leaves the segments as they were.
    pub fn consolidated(&mut self) -> bool {
        use std::future::Future as _;
        let Some(merge) = self.consolidating.as_mut().and_then(|merge| merge.get_mut().ok()) else { return false };
        let ended = std::pin::Pin::new(merge).poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        let std::task::Poll::Ready(result) = ended else { return false };
        self.consolidating = None;
        if let Err(error) = result {
            tracing::info!(%error, "a merge of the idle index's segments did not happen");
        }
        // Whatever the outcome, the index was seen idle once: the next try waits for the next quiet spell.
        self.changed_at = std::time::Instant::now();
        true
    }

    /// Makes the last commit searchable.
    pub fn publish(&mut self) -> Result<(), IndexError> {
        self.reader.reload()?;
        self.overlay.clear();
        self.written.clear();
        self.dirty = false;
        Ok(())
    }

    fn below_watermark(&self, op: &OpInfo) -> Option<String> {
        let watermark = *self.state.watermarks.get(&op.source_id)?;
        (op.ordering_id < watermark).then(|| {
            format!(
                "orderingId {} is older than the watermark {watermark} left by a delete-older-than on this source; \
                 operations with a lower orderingId are rejected (use epoch milliseconds, or a higher orderingId)",
                op.ordering_id
            )
        })
    }

    fn tombstone(&mut self, key: &str, document_id: &str, op: &OpInfo) -> Result<(), IndexError> {
        self.writer.delete_term(Term::from_field_text(self.fields.key, key));
        let mut doc = TantivyDocument::default();
        doc.add_text(self.fields.key, key);
        doc.add_text(self.fields.uri, document_id);
        doc.add_text(self.fields.source, &op.source_id);
        doc.add_i64(self.fields.ordering_id, op.ordering_id);
        doc.add_u64(self.fields.live, 0);
        self.writer.add_document(doc)?;
        self.written.remove(key);
        self.set_state(key.to_string(), ItemState::Deleted(op.ordering_id));
        Ok(())
    }

    fn set_state(&mut self, key: String, state: ItemState) {
        self.overlay.insert(key, state);
        self.dirty = true;
    }

    /// The item's state: uncommitted changes first, then the last commit.
    fn item_state(&self, key: &str) -> Option<ItemState> {
        if let Some(state) = self.overlay.get(key) {
            return Some(*state);
        }
        let searcher = self.reader.searcher();
        self.committed_address(&searcher, key).map(|(_, state)| state)
    }

    /// Where the last commit holds the item's document (or tombstone), and its state.
    fn committed_address(&self, searcher: &Searcher, key: &str) -> Option<(DocAddress, ItemState)> {
        let term = Term::from_field_text(self.fields.key, key);
        for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
            let Ok(inverted) = segment.inverted_index(self.fields.key) else {
                continue;
            };
            let Ok(Some(mut postings)) = inverted.read_postings(&term, IndexRecordOption::Basic) else {
                continue;
            };
            let alive = segment.alive_bitset();
            let fast = segment.fast_fields();
            let (Ok(ordering), Ok(live)) = (fast.i64("ordering_id"), fast.u64("live")) else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != tantivy::TERMINATED {
                if alive.is_none_or(|bits| bits.is_alive(doc)) {
                    let ordering_id = ordering.first(doc).unwrap_or(OrderingId::MIN);
                    let state = if live.first(doc) == Some(1) {
                        ItemState::Live(ordering_id)
                    } else {
                        ItemState::Deleted(ordering_id)
                    };
                    return Some((DocAddress::new(segment_ord as u32, doc), state));
                }
                doc = postings.advance();
            }
        }
        None
    }

    /// Items of the source under `document_id/`, committed or not: (key, document id, state).
    fn children_of(&self, source_id: &str, document_id: &str) -> Vec<(String, String, ItemState)> {
        let prefix = item_key(source_id, &format!("{document_id}/"));
        // Every key starting with the prefix sorts in [prefix, prefix with its last byte, '/', bumped to '0').
        let upper = format!("{}0", &prefix[..prefix.len() - 1]);
        let range = RangeQuery::new(
            Bound::Included(Term::from_field_text(self.fields.key, &prefix)),
            Bound::Excluded(Term::from_field_text(self.fields.key, &upper)),
        );
        let mut found: HashMap<String, (String, ItemState)> = HashMap::new();
        let searcher = self.reader.searcher();
        if let Ok(addresses) = searcher.search(&range, &DocSetCollector) {
            for address in addresses {
                if let Some((id, state)) = self.stored_state(&searcher, address) {
                    found.insert(item_key(source_id, &id), (id, state));
                }
            }
        }
        let source_prefix = item_key(source_id, "");
        for (key, state) in &self.overlay {
            if key.starts_with(&prefix) {
                found.insert(key.clone(), (key[source_prefix.len()..].to_string(), *state));
            }
        }
        let mut children: Vec<_> = found.into_iter().map(|(key, (id, state))| (key, id, state)).collect();
        children.sort_by(|a, b| a.1.cmp(&b.1));
        children
    }

    /// (document id, live) of committed documents of a source below an `orderingId`.
    fn committed_older_than(
        &self,
        source_id: &str,
        ordering_id: OrderingId,
    ) -> Result<Vec<(String, bool)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut found = Vec::new();
        for address in searcher.search(&self.older_than(source_id, ordering_id), &DocSetCollector)? {
            if let Some((id, state)) = self.stored_state(&searcher, address) {
                found.push((id, matches!(state, ItemState::Live(_))));
            }
        }
        Ok(found)
    }

    /// The documents of a source whose `orderingId` is below `ordering_id`.
    fn older_than(&self, source_id: &str, ordering_id: OrderingId) -> BooleanQuery {
        let in_source = TermQuery::new(Term::from_field_text(self.fields.source, source_id), IndexRecordOption::Basic);
        let older = RangeQuery::new(
            Bound::Unbounded,
            Bound::Excluded(Term::from_field_i64(self.fields.ordering_id, ordering_id)),
        );
        BooleanQuery::new(vec![(Occur::Must, Box::new(in_source) as Box<dyn Query>), (Occur::Must, Box::new(older))])
    }

    fn stored_state(&self, searcher: &Searcher, address: DocAddress) -> Option<(String, ItemState)> {
        let segment = searcher.segment_reader(address.segment_ord);
        let fast = segment.fast_fields();
        let ordering_id = fast.i64("ordering_id").ok()?.first(address.doc_id)?;
        let live = fast.u64("live").ok()?.first(address.doc_id)? == 1;
        let doc: TantivyDocument = searcher.doc(address).ok()?;
        let id = doc.get_first(self.fields.uri)?.as_str()?.to_string();
        Some((id, if live { ItemState::Live(ordering_id) } else { ItemState::Deleted(ordering_id) }))
    }
}

/// Why an operation at `ordering_id` loses to the item's current state, if it does.
fn newer_than(current: Option<ItemState>, ordering_id: OrderingId) -> Option<String> {
    let (current_id, verb) = match current? {
        ItemState::Live(id) => (id, "added or updated"),
        ItemState::Deleted(id) => (id, "deleted"),
        ItemState::Gone => return None,
    };
    (current_id > ordering_id).then(|| {
        format!("the item was already {verb} by an operation with a higher orderingId ({current_id} > {ordering_id}); the highest orderingId wins")
    })
}

fn outcome(
    op: &OpInfo,
    document_id: &str,
    operation: LogOperation,
    result: LogResult,
    reason: Option<String>,
) -> Outcome {
    Outcome {
        source_id: op.source_id.clone(),
        document_id: document_id.to_string(),
        operation,
        result,
        reason,
        ordering_id: op.ordering_id,
        request_id: op.request_id.clone(),
        journal_seq: op.journal_seq,
        task: None,
    }
}
