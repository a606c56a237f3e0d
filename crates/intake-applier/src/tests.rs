//! The pipeline against real parts: a file journal, SQLite catalog and item log, container files and tantivy
//! indexes in a temporary folder, a manual clock. A "crash" ends the applier thread without its final commit.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use intake_index::search::{SearchRequest, search};
use intake_index::security::Viewer;
use intake_model::item::{Content, Item};
use intake_model::logs::{LogOperation, LogResult};
use intake_model::{Operation, OperationKind};
use intake_store::{
    Catalog, FileContainer, FileJournal, LocalBlobs, LogQuery, ManualClock, Seq, SqliteCatalog, SqliteIdentities,
    SqliteItemLog,
};

use super::*;
use crate::pipeline::Applier;

const ORG: &str = "acme";
const START_MS: i64 = 1_800_000_000_000;

#[derive(Default)]
struct Recorder {
    replayed: AtomicBool,
    caught_up: AtomicU64,
    reads_applied: AtomicU64,
    live_items: Mutex<HashMap<String, u64>>,
    failures: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn indexed(&self, organization_id: &str, live_items: u64, _committed_seq: Seq) {
        self.live_items.lock().unwrap().insert(organization_id.to_string(), live_items);
    }
    fn replayed(&self) {
        self.replayed.store(true, Ordering::SeqCst);
    }
    fn failed(&self, reason: &str) {
        self.failures.lock().unwrap().push(reason.to_string());
    }
    fn records_applied(&self, _elapsed: Duration) {
        self.reads_applied.fetch_add(1, Ordering::SeqCst);
    }
    fn positions(&self, _durable: Seq, caught_up: Seq, _syncs: u64) {
        self.caught_up.store(caught_up, Ordering::SeqCst);
    }
}

/// A data folder with one organization and one source, and the applier's inputs over it.
struct Harness {
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    clock: ManualClock,
    source: String,
    inputs: Inputs,
    recorder: Arc<Recorder>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(&dir.path().join("catalog.sqlite")).unwrap());
        catalog.create_organization(ORG, "Acme", START_MS).unwrap();
        let source = catalog.create_source(ORG, "Docs", "PUSH", "SHARED", START_MS).unwrap().id;
        let mut harness = Harness {
            runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            clock: ManualClock::new(START_MS),
            source,
            recorder: Arc::default(),
            inputs: Harness::inputs(dir.path(), catalog, ManualClock::new(START_MS), Arc::default()),
            dir,
        };
        harness.inputs.clock = Arc::new(harness.clock.clone());
        harness.inputs.observer = harness.recorder.clone();
        harness
    }

    /// The inputs over the data folder, the identity graphs loaded from the store as the server loads them.
    fn inputs(dir: &std::path::Path, catalog: Arc<dyn Catalog>, clock: ManualClock, observer: Arc<Recorder>) -> Inputs {
        let identity_store: Arc<dyn intake_store::IdentityStore> =
            Arc::new(SqliteIdentities::open(&dir.join("identities.sqlite")).unwrap());
        let graphs = intake_index::security::IdentityGraphs::default();
        let stored = identity_store.load(ORG).unwrap();
        graphs.install(intake_index::security::IdentityGraph::load(ORG, stored), ORG);
        Inputs {
            journal: Arc::new(FileJournal::open(&dir.join("journal")).unwrap()),
            catalog,
            item_log: Arc::new(SqliteItemLog::open(&dir.join("logs.sqlite")).unwrap()),
            blobs: Arc::new(LocalBlobs::open(&dir.join("containers")).unwrap()),
            clock: Arc::new(clock),
            registry: Arc::default(),
            commit_marks: Arc::default(),
            observer,
            identity_store: identity_store.clone(),
            identities: Arc::new(graphs),
            ownership: Arc::new(intake_store::SingleNode),
            snapshots: Arc::new(LocalBlobs::open(&dir.join("snapshots")).unwrap()),
        }
    }

    /// The same data folder as after a restart: the journal, logs and registries opened again.
    fn restart(&mut self) {
        self.recorder = Arc::default();
        self.inputs =
            Harness::inputs(self.dir.path(), self.inputs.catalog.clone(), self.clock.clone(), self.recorder.clone());
    }

    fn config(&self, commit_interval: Duration) -> ApplierConfig {
        ApplierConfig {
            index_dir: self.dir.path().join("index"),
            threads: 1,
            memory_bytes: 15_000_000,
            commit_interval,
            batch_bytes: 16 << 20,
            max_item_bytes: 1 << 20,
            conversion: intake_index::convert::Budget::default(),
            queue_delay_cap_minutes: None,
            log_retention: Duration::from_secs(14 * 86_400),
            log_max_bytes: 1 << 30,
            snapshot_interval: Duration::from_secs(10),
        }
    }

    fn start(&self) -> ApplierHandle {
        ApplierHandle::start(self.inputs.clone(), self.config(Duration::from_millis(20))).unwrap()
    }

    /// Journals an operation on the source, as the edge does, and returns its position.
    fn push(&self, ordering_id: i64, kind: OperationKind) -> Seq {
        let operation = Operation {
            organization_id: ORG.into(),
            source_id: self.source.clone(),
            ordering_id,
            request_id: format!("request-{ordering_id}"),
            accepted_at_ms: self.clock.now_ms(),
            kind,
        };
        self.runtime.block_on(self.inputs.journal.append(vec![operation.encode()])).unwrap()
    }

    fn add(&self, ordering_id: i64, id: &str, text: &str) -> Seq {
        self.push(ordering_id, OperationKind::AddOrUpdate(Box::new(item(id, text))))
    }

    /// Waits until everything through `seq` is committed.
    fn wait_committed(&self, seq: Seq) {
        wait_until(|| self.recorder.caught_up.load(Ordering::SeqCst) >= seq, "the journal to be committed");
    }

    /// Every outcome in the item log, oldest first, as (document, operation, result).
    fn outcomes(&self) -> Vec<(String, LogOperation, LogResult)> {
        let query = LogQuery {
            organization_id: ORG.into(),
            from_ms: 0,
            to_ms: i64::MAX,
            per_page: 10_000,
            committed: self.inputs.commit_marks.get(ORG),
            ..LogQuery::default()
        };
        let (mut entries, _) = self.inputs.item_log.query(&query).unwrap();
        entries.sort_by_key(|stored| (stored.entry.journal_seq, stored.entry.item_index));
        entries.into_iter().map(|s| (s.entry.document_id, s.entry.operation, s.entry.result)).collect()
    }

    /// The items a search finds, sorted.
    fn find(&self, q: &str) -> Vec<String> {
        let handle = self.inputs.registry.get(ORG).expect("the organization's index is registered");
        let request = SearchRequest { q: q.into(), number_of_results: 1000, viewer: Viewer::All, ..Default::default() };
        let searcher = handle.reader.searcher();
        let found = search(&handle.index, &searcher, &handle.fields, &handle.permissions, &request).unwrap();
        let mut uris: Vec<String> = found.results.into_iter().map(|r| r.uri).collect();
        uris.sort();
        uris
    }

    /// How many items a search finds.
    fn count(&self, q: &str) -> usize {
        let handle = self.inputs.registry.get(ORG).expect("the organization's index is registered");
        let request = SearchRequest { q: q.into(), number_of_results: 0, viewer: Viewer::All, ..Default::default() };
        let searcher = handle.reader.searcher();
        search(&handle.index, &searcher, &handle.fields, &handle.permissions, &request).unwrap().total_count
    }

    /// An uploaded file container of the organization holding `content`.
    /// Pushes an item whose data is the container `file_id`.
    fn push_from_container(&self, ordering_id: i64, file_id: &str, uri: &str) -> Seq {
        let compression = intake_model::compression::CompressionType::Uncompressed;
        let file_item =
            Item { content: Content::FileContainer { file_id: file_id.into(), compression }, ..item(uri, "") };
        self.push(ordering_id, OperationKind::AddOrUpdate(Box::new(file_item)))
    }

    /// Waits until applying stopped because the container `file_id` cannot be read now.
    fn wait_stopped_on(&self, file_id: &str) {
        let reason = format!("'{file_id}' cannot be read now");
        wait_until(|| self.recorder.failures.lock().unwrap().iter().any(|f| f.contains(&reason)), &reason);
    }

    fn container(&self, file_id: &str, content: &[u8]) {
        let catalog = &self.inputs.catalog;
        let now = self.clock.now_ms();
        let container = FileContainer {
            file_id: file_id.into(),
            organization_id: ORG.into(),
            created_at_ms: now,
            expires_at_ms: now + 3_600_000,
            size: None,
            pinned: false,
        };
        catalog.create_container(&container).unwrap();
        let mut writer = self.inputs.blobs.create(file_id).unwrap();
        writer.write_all(content).unwrap();
        writer.finish().unwrap();
        catalog.set_container_size(file_id, content.len() as u64).unwrap();
        assert!(catalog.pin_container(file_id).unwrap());
    }
}

fn item(id: &str, text: &str) -> Item {
    Item {
        document_id: id.to_string(),
        content: Content::Text(text.to_string()),
        file_extension: Some(".txt".to_string()),
        parent_id: None,
        permissions: vec![],
        metadata: Default::default(),
    }
}

fn wait_until(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn outcome(document: &str, operation: LogOperation, result: LogResult) -> (String, LogOperation, LogResult) {
    (document.to_string(), operation, result)
}

#[test]
fn the_highest_ordering_id_wins_and_every_outcome_is_logged_once_committed() {
    let harness = Harness::new();
    let applier = harness.start();
    harness.add(20, "file://a", "newer words");
    harness.add(10, "file://a", "older words");
    harness.add(5, "file://b", "bravo");
    let last = harness.push(30, OperationKind::Delete { document_id: "file://b".into(), delete_children: false });
    harness.wait_committed(last);
    use LogOperation::*;
    use LogResult::*;
    assert_eq!(
        harness.outcomes(),
        [
            outcome("file://a", Add, Completed),
            outcome("file://a", Add, Skipped),
            outcome("file://b", Add, Completed),
            outcome("file://b", Delete, Completed)
        ]
    );
    assert_eq!(harness.find("newer"), ["file://a"]);
    assert!(harness.find("older").is_empty());
    assert!(harness.find("bravo").is_empty());
    assert!(harness.recorder.replayed.load(Ordering::SeqCst));
    assert_eq!(harness.recorder.live_items.lock().unwrap()[ORG], 1);
    applier.stop();
}

#[test]
fn delete_older_than_waits_for_its_queue_delay_then_removes_only_older_items() {
    let harness = Harness::new();
    let applier = harness.start();
    harness.add(10, "file://old", "stale");
    harness.add(30, "file://new", "fresh");
    let scheduled = harness.push(20, OperationKind::DeleteOlderThan { queue_delay_minutes: 15 });
    harness.wait_committed(scheduled);
    assert_eq!(harness.find(""), ["file://new", "file://old"], "nothing is deleted before the delay");

    harness.clock.advance_ms(15 * 60_000);
    wait_until(|| harness.find("").len() == 1, "the delete-older-than to run");
    assert_eq!(harness.find(""), ["file://new"]);
    wait_until(|| harness.outcomes().len() == 3, "the delete to be logged");
    assert_eq!(harness.outcomes()[2], outcome("file://old", LogOperation::DeleteOlderThan, LogResult::Completed));
    applier.stop();
}

#[test]
fn a_batch_file_is_applied_in_file_order_and_its_container_deleted_once_committed() {
    let harness = Harness::new();
    let applier = harness.start();
    harness.add(1, "file://gone", "to be deleted");
    // More entries than a window, so the batch is applied (and may be committed) in several steps.
    let mut entries: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"documentId":"file://doc-{i:03}","data":"entry number{i} of the batch"}}"#))
        .collect();
    entries.push(r#"{"documentId":"file://doc-000","data":"rewritten later in the same file"}"#.into());
    let body = format!(r#"{{"addOrUpdate":[{}],"delete":[{{"documentId":"file://gone"}}]}}"#, entries.join(","));
    harness.container("batch-1", body.as_bytes());
    let seq = harness.push(50, OperationKind::Batch { file_id: "batch-1".into() });
    harness.wait_committed(seq);

    let outcomes = harness.outcomes();
    assert_eq!(outcomes.len(), 1 + 301 + 1);
    assert_eq!(outcomes[1], outcome("file://doc-000", LogOperation::Add, LogResult::Completed));
    assert_eq!(outcomes[301], outcome("file://doc-000", LogOperation::Update, LogResult::Completed));
    assert_eq!(outcomes[302], outcome("file://gone", LogOperation::Delete, LogResult::Completed));
    assert_eq!(harness.find("rewritten"), ["file://doc-000"]);
    assert_eq!(harness.find("number299"), ["file://doc-299"]);
    assert_eq!(harness.find("").len(), 300);
    wait_until(|| harness.inputs.catalog.container("batch-1").unwrap().is_none(), "the container to be deleted");
    assert!(harness.inputs.blobs.open("batch-1").err().is_some_and(|e| e.is_not_found()), "its bytes are gone too");
    applier.stop();
}

/// A container whose store cannot be read now (here its folder is replaced by a file: an I/O error other than
/// "not found", as S3 or the database unreachable are) stops applying instead of failing what points at it, an
/// item's container as a batch file; once readable, each is applied and its outcome logged once.
#[test]
fn a_container_that_cannot_be_read_now_is_applied_later_not_failed() {
    let harness = Harness::new();
    let applier = harness.start();
    let containers = harness.dir.path().join("containers");
    let away = harness.dir.path().join("containers-away");
    let unreadable = |broken: bool| {
        if broken {
            std::fs::rename(&containers, &away).unwrap();
            std::fs::write(&containers, b"not a folder").unwrap();
        } else {
            std::fs::remove_file(&containers).unwrap();
            std::fs::rename(&away, &containers).unwrap();
        }
    };

    harness.container("item-1", b"words of the item");
    unreadable(true);
    let single = harness.push_from_container(1, "item-1", "file://from-container");
    harness.wait_stopped_on("item-1");
    assert!(harness.outcomes().is_empty(), "nothing is logged as failed");
    unreadable(false);
    harness.wait_committed(single);
    assert_eq!(harness.outcomes(), [outcome("file://from-container", LogOperation::Add, LogResult::Completed)]);

    harness.container("batch-1", br#"{"addOrUpdate":[{"documentId":"file://in-batch","data":"a batch entry"}]}"#);
    unreadable(true);
    let batch = harness.push(2, OperationKind::Batch { file_id: "batch-1".into() });
    harness.wait_stopped_on("batch-1");
    assert_eq!(harness.outcomes().len(), 1, "the batch is not logged as failed");
    assert!(harness.recorder.caught_up.load(Ordering::SeqCst) < batch);
    unreadable(false);
    harness.wait_committed(batch);
    assert_eq!(harness.outcomes()[1..], [outcome("file://in-batch", LogOperation::Add, LogResult::Completed)]);
    assert_eq!(
        (harness.find("words"), harness.find("entry")),
        (vec!["file://from-container".to_string()], vec!["file://in-batch".to_string()])
    );
    applier.stop();
}

/// A store whose reads break halfway (as a download does when S3 goes away mid-object, or a disk fails) stops
/// applying as one that cannot be opened does: nothing is logged as failed — neither the item reading its
/// container nor the batch whose reading broke — and each is applied once the store reads again.
#[test]
fn a_container_whose_reading_breaks_halfway_is_applied_later_not_failed() {
    let mut harness = Harness::new();
    let broken = Arc::new(AtomicBool::new(true));
    let blobs = LocalBlobs::open(&harness.dir.path().join("containers")).unwrap();
    harness.inputs.blobs = Arc::new(BreakingBlobs { inner: blobs, broken: broken.clone() });
    let applier = harness.start();

    harness.container("item-1", "words of the item ".repeat(10).as_bytes());
    let single = harness.push_from_container(1, "item-1", "file://from-container");
    harness.wait_stopped_on("item-1");
    assert!(harness.outcomes().is_empty(), "nothing is logged as failed");
    broken.store(false, Ordering::SeqCst);
    harness.wait_committed(single);
    assert_eq!(harness.outcomes(), [outcome("file://from-container", LogOperation::Add, LogResult::Completed)]);

    broken.store(true, Ordering::SeqCst);
    let entries: Vec<String> =
        (0..3).map(|i| format!(r#"{{"documentId":"file://in-batch/{i}","data":"a batch entry"}}"#)).collect();
    harness.container("batch-1", format!(r#"{{"addOrUpdate":[{}]}}"#, entries.join(",")).as_bytes());
    let batch = harness.push(2, OperationKind::Batch { file_id: "batch-1".into() });
    harness.wait_stopped_on("batch-1");
    assert_eq!(harness.outcomes().len(), 1, "the batch is not logged as failed");
    assert!(harness.recorder.caught_up.load(Ordering::SeqCst) < batch);
    broken.store(false, Ordering::SeqCst);
    harness.wait_committed(batch);
    let applied: Vec<_> =
        (0..3).map(|i| outcome(&format!("file://in-batch/{i}"), LogOperation::Add, LogResult::Completed)).collect();
    assert_eq!(harness.outcomes()[1..], applied, "each entry applied and logged once");
    assert_eq!(harness.find("entry").len(), 3);
    applier.stop();
}

/// Blobs whose readers fail after their first bytes while `broken` is set.
struct BreakingBlobs {
    inner: LocalBlobs,
    broken: Arc<AtomicBool>,
}

impl intake_store::BlobStore for BreakingBlobs {
    fn create(&self, id: &str) -> Result<Box<dyn intake_store::BlobWriter>, intake_store::StoreError> {
        self.inner.create(id)
    }

    fn open(&self, id: &str) -> Result<Box<dyn std::io::Read + Send>, intake_store::StoreError> {
        Ok(Box::new(BreakingRead { inner: self.inner.open(id)?, broken: self.broken.clone(), left: 20 }))
    }

    fn delete(&self, id: &str) -> Result<(), intake_store::StoreError> {
        self.inner.delete(id)
    }

    fn list(&self) -> Result<Vec<intake_store::BlobInfo>, intake_store::StoreError> {
        self.inner.list()
    }

    fn size(&self, id: &str) -> Result<Option<u64>, intake_store::StoreError> {
        self.inner.size(id)
    }
}

/// Hands out `left` bytes, then fails while `broken` is set (as a connection reset mid-download).
struct BreakingRead {
    inner: Box<dyn std::io::Read + Send>,
    broken: Arc<AtomicBool>,
    left: usize,
}

impl std::io::Read for BreakingRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 && self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the store went away"));
        }
        let len = if self.broken.load(Ordering::SeqCst) { buf.len().min(self.left) } else { buf.len() };
        let n = self.inner.read(&mut buf[..len])?;
        self.left = self.left.saturating_sub(n);
        Ok(n)
    }
}

#[test]
fn after_a_crash_every_operation_is_applied_exactly_once() {
    let mut harness = Harness::new();
    // A first run commits five items.
    let applier = harness.start();
    let mut last = 0;
    for i in 0..5 {
        last = harness.add(i + 1, &format!("file://{i}"), "first run");
    }
    harness.wait_committed(last);
    applier.stop();

    // A second run applies five more and an update, then dies before committing them.
    harness.restart();
    for i in 5..10 {
        harness.add(i + 1, &format!("file://{i}"), "second run");
    }
    harness.add(100, "file://0", "updated in the second run");
    let stop = Arc::new(AtomicBool::new(false));
    let (mut applier, reader) =
        Applier::open(harness.inputs.clone(), harness.config(Duration::from_secs(3600)), stop.clone()).unwrap();
    applier.crash_on_stop = true;
    let thread = std::thread::spawn(move || applier.run(reader));
    wait_until(|| harness.recorder.reads_applied.load(Ordering::SeqCst) >= 1, "the second run to apply");
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    assert_eq!(harness.outcomes().len(), 5, "nothing of the second run was committed");

    // The third run applies the second run's operations again, each once.
    harness.restart();
    let applier = harness.start();
    wait_until(|| harness.recorder.replayed.load(Ordering::SeqCst), "the replay");
    let outcomes = harness.outcomes();
    assert_eq!(outcomes.len(), 11, "{outcomes:?}");
    assert_eq!(outcomes[10], outcome("file://0", LogOperation::Update, LogResult::Completed));
    assert_eq!(harness.find("").len(), 10);
    assert_eq!(harness.find("updated"), ["file://0"]);
    assert_eq!(harness.find("first"), ["file://1", "file://2", "file://3", "file://4"]);
    assert!(harness.recorder.failures.lock().unwrap().is_empty());
    applier.stop();
}

#[test]
fn a_caught_up_applier_commits_at_once_not_when_the_interval_runs_out() {
    let harness = Harness::new();
    // An interval no test waits for: only the commit of a caught-up applier can make the item searchable.
    let applier = ApplierHandle::start(harness.inputs.clone(), harness.config(Duration::from_secs(3600))).unwrap();
    let seq = harness.add(1, "file://lone", "a lone push");
    harness.wait_committed(seq);
    assert_eq!(harness.find("lone"), ["file://lone"]);
    // And again for the next one, right after a commit: the gap delays it, the interval does not.
    let seq = harness.add(2, "file://next", "the next push");
    harness.wait_committed(seq);
    assert_eq!(harness.find("next"), ["file://next"]);
    applier.stop();
}

/// An item log whose writes fail while `broken` is set (a full disk, a database gone).
struct BreakableLog {
    inner: SqliteItemLog,
    broken: AtomicBool,
}

impl intake_store::ItemLog for BreakableLog {
    fn append(&self, entries: &[intake_store::LogEntry]) -> Result<(), intake_store::StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(intake_store::StoreError::Unavailable("the log's disk is gone".into()));
        }
        self.inner.append(entries)
    }
    fn query(&self, query: &LogQuery) -> Result<(Vec<intake_store::StoredLogEntry>, bool), intake_store::StoreError> {
        self.inner.query(query)
    }
    fn activity(
        &self,
        query: &intake_store::ActivityQuery,
    ) -> Result<Vec<intake_store::ActivityCount>, intake_store::StoreError> {
        self.inner.activity(query)
    }
    fn prune_before(&self, before_ms: i64) -> Result<usize, intake_store::StoreError> {
        self.inner.prune_before(before_ms)
    }
    fn size_bytes(&self) -> Result<u64, intake_store::StoreError> {
        self.inner.size_bytes()
    }
    fn prune_to_size(&self, max_bytes: u64) -> Result<usize, intake_store::StoreError> {
        self.inner.prune_to_size(max_bytes)
    }
}

/// The index commits only once the outcomes it holds are written: while the item log fails nothing is committed
/// (a commit without its outcomes would lose them), and once it works again every operation is, with its outcome.
#[test]
fn nothing_is_committed_while_its_outcomes_cannot_be_written() {
    let mut harness = Harness::new();
    let log = Arc::new(BreakableLog {
        inner: SqliteItemLog::open(&harness.dir.path().join("logs.sqlite")).unwrap(),
        broken: AtomicBool::new(true),
    });
    harness.inputs.item_log = log.clone();
    let applier = harness.start();
    let seq = harness.add(1, "file://held", "held back");
    let failures = || harness.recorder.failures.lock().unwrap().clone();
    wait_until(|| !failures().is_empty(), "the failed write to be told");
    assert!(failures()[0].contains("the item log could not be written: the log's disk is gone"), "{:?}", failures());
    assert!(harness.recorder.caught_up.load(Ordering::SeqCst) < seq);
    let searchable = || harness.inputs.registry.get(ORG).is_some() && !harness.find("held").is_empty();
    assert!(!searchable(), "committed without its outcome");

    log.broken.store(false, Ordering::SeqCst);
    harness.wait_committed(seq);
    assert_eq!(harness.find("held"), ["file://held"]);
    assert_eq!(harness.outcomes(), [outcome("file://held", LogOperation::Add, LogResult::Completed)]);
    applier.stop();
}

#[test]
fn identities_survive_a_crash_applied_exactly_once() {
    use intake_index::security::IdentityRef;
    use intake_model::identity::{IdentityChange, SecurityIdentity};
    use intake_model::permissions::IdentityType;

    let mut harness = Harness::new();
    let provider = intake_store::SecurityProvider {
        id: "Corp".into(),
        organization_id: ORG.into(),
        display_name: "Corp".into(),
        provider_type: "EXPANDED".into(),
        cascading: vec![intake_store::EMAIL_PROVIDER.into()],
        sources: vec![harness.source.clone()],
        created_at_ms: START_MS,
        updated_at_ms: START_MS,
    };
    harness.inputs.catalog.put_provider(&provider).unwrap();
    let identity = |name: &str, kind| SecurityIdentity { name: name.into(), kind, additional_info: vec![] };
    let team = |member: &str| IdentityChange::Upsert {
        identity: identity("team", IdentityType::Group),
        members: vec![identity(member, IdentityType::User)],
        well_knowns: vec![],
    };
    let push = |harness: &Harness, ordering_id, change| {
        harness.push(ordering_id, OperationKind::Identity { provider_id: "Corp".into(), change })
    };
    // A first run commits the group with alice.
    let applier = harness.start();
    let seq = push(&harness, 10, team("alice@example.com"));
    harness.wait_committed(seq);
    applier.stop();

    // A second run replaces the members and disables carol, then dies before committing.
    harness.restart();
    push(&harness, 20, team("bob@example.com"));
    push(&harness, 30, IdentityChange::Disable { identity: identity("carol@example.com", IdentityType::User) });
    let stop = Arc::new(AtomicBool::new(false));
    let (mut applier, reader) =
        Applier::open(harness.inputs.clone(), harness.config(Duration::from_secs(3600)), stop.clone()).unwrap();
    applier.crash_on_stop = true;
    let thread = std::thread::spawn(move || applier.run(reader));
    wait_until(|| harness.recorder.reads_applied.load(Ordering::SeqCst) >= 1, "the second run to apply");
    stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();

    // The third run starts from the stored identities, as the server does, and applies the rest once.
    harness.restart();
    let applier = harness.start();
    wait_until(|| harness.recorder.replayed.load(Ordering::SeqCst), "the replay");
    let outcomes = harness.outcomes();
    assert_eq!(
        outcomes,
        [
            outcome("team", LogOperation::Add, LogResult::Completed),
            outcome("team", LogOperation::Update, LogResult::Completed),
            outcome("carol@example.com", LogOperation::Delete, LogResult::Completed),
        ]
    );
    let stored = harness.inputs.identity_store.load(ORG).unwrap();
    let team = stored.iter().find(|i| i.name == "team").unwrap();
    assert_eq!((team.members[0].name.as_str(), team.ordering_id), ("bob@example.com", 20));
    assert!(!stored.iter().find(|i| i.name == "carol@example.com").unwrap().enabled);
    let graph = harness.inputs.identities.of(ORG);
    let bob = graph
        .read()
        .unwrap()
        .resolve(&[IdentityRef::new(intake_store::EMAIL_PROVIDER, "bob@example.com", IdentityType::User)], &[provider]);
    assert!(bob.reached.iter().any(|(identity, _, _)| identity.name == "team"), "{bob:?}");
    applier.stop();
}

/// A chunk of a full load: `count` items from `first`.
fn load_chunk(first: usize, count: usize) -> Vec<u8> {
    let entries: Vec<String> = (first..first + count)
        .map(|i| format!(r#"{{"documentId":"file://new-{i:05}","data":"catalog entry {i} of the load"}}"#))
        .collect();
    format!(r#"{{"addOrUpdate":[{}]}}"#, entries.join(",")).into_bytes()
}

#[test]
fn a_full_load_is_committed_whole_or_not_at_all_and_applied_once() {
    const CHUNKS: usize = 4;
    const PER_CHUNK: usize = 1500;
    let mut harness = Harness::new();
    let applier = harness.start();
    let mut last = 0;
    for i in 0..5 {
        last = harness.add(10, &format!("file://old-{i}"), "the previous catalog");
    }
    harness.wait_committed(last);
    applier.stop();
    let file_ids: Vec<String> = (0..CHUNKS).map(|c| format!("chunk-{c}")).collect();
    for (c, file_id) in file_ids.iter().enumerate() {
        harness.container(file_id, &load_chunk(c * PER_CHUNK, PER_CHUNK));
    }
    harness.push(100, OperationKind::StreamLoad { stream_id: "stream-1".into(), file_ids: file_ids.clone() });
    let after = harness.add(200, "file://after", "pushed after the load");

    // Stopped (or crashed) at some moment of the load: what was committed is the old catalog or the new one.
    for (crash, after_ms) in [(true, 300), (false, 5), (false, 40), (false, 80)] {
        harness.restart();
        let stop = Arc::new(AtomicBool::new(false));
        let (mut applier, reader) =
            Applier::open(harness.inputs.clone(), harness.config(Duration::from_millis(5)), stop.clone()).unwrap();
        applier.crash_on_stop = crash;
        let thread = std::thread::spawn(move || applier.run(reader));
        std::thread::sleep(Duration::from_millis(after_ms));
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
        let found = harness.count("");
        assert!(
            [5, CHUNKS * PER_CHUNK, CHUNKS * PER_CHUNK + 1].contains(&found),
            "a partial load was committed: {found}"
        );
        println!("stopped after {after_ms} ms (crash: {crash}) with {found} items committed");
    }

    harness.restart();
    let applier = harness.start();
    harness.wait_committed(after);
    assert_eq!(harness.count(""), CHUNKS * PER_CHUNK + 1, "the load replaced the old items; the later push stays");
    assert!(harness.find("previous").is_empty());
    let outcomes = harness.outcomes();
    let count = |operation, result| outcomes.iter().filter(|(_, o, r)| *o == operation && *r == result).count();
    assert_eq!(count(LogOperation::Add, LogResult::Completed), 5 + CHUNKS * PER_CHUNK + 1, "each item logged once");
    assert_eq!(count(LogOperation::DeleteOlderThan, LogResult::Completed), 5);
    assert_eq!(count(LogOperation::BatchFile, LogResult::Completed), 1);
    for file_id in &file_ids {
        wait_until(|| harness.inputs.catalog.container(file_id).unwrap().is_none(), "the chunks to be deleted");
    }
    applier.stop();
}

/// Items committed one by one leave a segment each; once the index has been quiet for a while, its segments of
/// about the same size are merged down and the searcher walks fewer, with every item still found once.
#[test]
fn a_quiet_index_is_merged_down_to_fewer_segments() {
    let harness = Harness::new();
    let applier = harness.start();
    for n in 1..=6 {
        let seq = harness.add(n, &format!("file://item/{n}"), &format!("common word{n}"));
        harness.wait_committed(seq);
    }
    let segments = || {
        let handle = harness.inputs.registry.get(ORG).expect("the organization's index is registered");
        handle.reader.searcher().segment_readers().len()
    };
    assert!(segments() > 1, "a segment per commit");
    wait_until(|| segments() == 1, "the quiet index to be merged down");
    let expected: Vec<String> = (1..=6).map(|n| format!("file://item/{n}")).collect();
    assert_eq!(harness.find("common"), expected);
    assert_eq!(harness.find("word4"), ["file://item/4"]);
    // Pushes after the merge are applied and found as before.
    let seq = harness.add(7, "file://item/7", "common word7");
    harness.wait_committed(seq);
    assert_eq!(harness.count("common"), 7);
    applier.stop();
}
