//! The ordering rules and search, against a real on-disk tantivy index.

use intake_index::search::{SearchRequest, search};
use intake_index::security::Viewer;
use intake_index::{
    BatchProgress, ContainerError, ContainerReader, FieldTypes, ItemTarget, OpInfo, OrgIndex, Outcome, prepare_item,
};
use intake_model::FieldType;
use intake_model::item::{Content, Item, MetaValue, Scalar};
use intake_model::logs::{LogOperation, LogResult};

const SOURCE: &str = "org-src";

struct NoContainers;

impl ContainerReader for NoContainers {
    fn open(&self, _: &str, file_id: &str) -> Result<Box<dyn std::io::Read + Send>, ContainerError> {
        Err(ContainerError::Missing(format!("file container '{file_id}' does not exist")))
    }
}

fn item(id: &str, text: &str, meta: &[(&str, &str)]) -> Item {
    Item {
        document_id: id.to_string(),
        content: Content::Text(text.to_string()),
        file_extension: Some(".html".to_string()),
        parent_id: None,
        permissions: vec![],
        metadata: meta.iter().map(|(k, v)| (k.to_string(), MetaValue::One(Scalar::Text(v.to_string())))).collect(),
    }
}

fn op(ordering_id: i64, seq: u64) -> OpInfo {
    OpInfo { source_id: SOURCE.into(), ordering_id, request_id: format!("req-{seq}"), journal_seq: seq }
}

fn upsert(index: &mut OrgIndex, item: &Item, ordering_id: i64, seq: u64) -> Outcome {
    upsert_typed(index, item, ordering_id, seq, &FieldTypes::new())
}

fn upsert_typed(index: &mut OrgIndex, item: &Item, ordering_id: i64, seq: u64, field_types: &FieldTypes) -> Outcome {
    let target = ItemTarget {
        organization_id: "org",
        source_id: SOURCE,
        source_name: "Docs",
        ordering_id,
        accepted_at_ms: 1_700_000_000_000,
        now_ms: 1_700_000_000_000,
        max_item_bytes: 1 << 20,
        conversion: intake_index::convert::Budget::default(),
        field_types,
        containers: &NoContainers,
        default_provider: "Email Security Provider",
        secured: false,
        identities: None,
        whole_text: false,
    };
    let prepared = prepare_item(item, &target, index.fields());
    index.upsert(prepared, &op(ordering_id, seq)).unwrap()
}

fn find(index: &OrgIndex, q: &str, aq: &str) -> Vec<String> {
    find_typed(index, q, aq, &FieldTypes::new())
}

fn find_typed(index: &OrgIndex, q: &str, aq: &str, field_types: &FieldTypes) -> Vec<String> {
    let request = SearchRequest {
        q: q.into(),
        aq: aq.into(),
        number_of_results: 100,
        field_types: field_types.clone(),
        viewer: Viewer::All,
        ..Default::default()
    };
    let mut uris: Vec<String> = search(index.index(), &index.searcher(), index.fields(), index.permissions(), &request)
        .unwrap()
        .results
        .into_iter()
        .map(|r| r.uri)
        .collect();
    uris.sort();
    uris
}

fn open(dir: &std::path::Path) -> OrgIndex {
    OrgIndex::open(dir, 1, 50_000_000).unwrap()
}

#[test]
fn the_highest_ordering_id_wins_whatever_the_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    assert_eq!(upsert(&mut index, &item("file://a", "<p>newer text</p>", &[]), 20, 1).result, LogResult::Completed);
    let late = upsert(&mut index, &item("file://a", "<p>older text</p>", &[]), 10, 2);
    assert_eq!(late.result, LogResult::Skipped);
    assert!(late.reason.unwrap().contains("higher orderingId (20 > 10)"));
    index.commit().unwrap();
    assert_eq!(find(&index, "newer", ""), ["file://a"]);
    assert!(find(&index, "older", "").is_empty());

    // A delete leaves a tombstone: an older add arriving afterwards still loses, even after a commit.
    let deleted = index.delete("file://a", false, &op(30, 3)).unwrap();
    assert_eq!((deleted[0].operation, deleted[0].result), (LogOperation::Delete, LogResult::Completed));
    index.commit().unwrap();
    assert_eq!(upsert(&mut index, &item("file://a", "<p>zombie</p>", &[]), 25, 4).result, LogResult::Skipped);
    index.commit().unwrap();
    assert!(find(&index, "", "").is_empty());
    let back = upsert(&mut index, &item("file://a", "<p>back</p>", &[]), 31, 5);
    assert_eq!((back.operation, back.result), (LogOperation::Add, LogResult::Completed));
    let again = upsert(&mut index, &item("file://a", "<p>again</p>", &[]), 32, 6);
    assert_eq!(again.operation, LogOperation::Update);
    index.commit().unwrap();
    assert_eq!(find(&index, "again", ""), ["file://a"]);
}

#[test]
fn delete_children_removes_by_uri_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    for (i, id) in
        ["file://folder", "file://folder/a.txt", "file://folder/sub/b.txt", "file://folderx/c.txt"].iter().enumerate()
    {
        upsert(&mut index, &item(id, "<p>word</p>", &[]), 10, i as u64 + 1);
    }
    index.commit().unwrap();
    upsert(&mut index, &item("file://folder/new.txt", "<p>word</p>", &[]), 50, 5); // newer than the delete, uncommitted
    let outcomes = index.delete("file://folder", true, &op(20, 6)).unwrap();
    let mut deleted: Vec<_> =
        outcomes.iter().filter(|o| o.result == LogResult::Completed).map(|o| o.document_id.as_str()).collect();
    deleted.sort();
    assert_eq!(deleted, ["file://folder", "file://folder/a.txt", "file://folder/sub/b.txt"]);
    assert!(outcomes.iter().any(|o| o.document_id == "file://folder/new.txt" && o.result == LogResult::Skipped));
    index.commit().unwrap();
    assert_eq!(find(&index, "word", ""), ["file://folder/new.txt", "file://folderx/c.txt"]);
}

#[test]
fn delete_older_than_waits_then_leaves_a_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    upsert(&mut index, &item("file://old", "<p>x</p>", &[]), 100, 1);
    upsert(&mut index, &item("file://new", "<p>x</p>", &[]), 300, 2);
    index.commit().unwrap();
    index.schedule_delete_older_than(1_000, &op(200, 3));
    assert!(index.run_due(999).unwrap().is_empty());
    index.commit().unwrap();
    drop(index);
    // The pending operation survives a restart with the commit.
    let mut index = open(dir.path());
    assert_eq!(index.next_due_ms(), Some(1_000));
    let outcomes = index.run_due(1_000).unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        (outcomes[0].document_id.as_str(), outcomes[0].operation),
        ("file://old", LogOperation::DeleteOlderThan)
    );
    index.commit().unwrap();
    assert_eq!(find(&index, "", ""), ["file://new"]);
    let rejected = upsert(&mut index, &item("file://late", "<p>x</p>", &[]), 150, 4);
    assert_eq!(rejected.result, LogResult::Rejected);
    assert!(rejected.reason.unwrap().contains("watermark 200"));
}

#[test]
fn commits_record_the_journal_position() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut index = open(dir.path());
        upsert(&mut index, &item("file://a", "<p>x</p>", &[]), 1, 7);
        index.advance_to(7);
        index.commit().unwrap();
        upsert(&mut index, &item("file://b", "<p>x</p>", &[]), 1, 8);
        index.advance_to(8); // never committed: lost with the process, replayed from the journal
    }
    let index = open(dir.path());
    assert_eq!(index.state().journal_seq, 7);
    assert_eq!(find(&index, "", ""), ["file://a"]);
}

#[test]
fn a_partly_applied_batch_resumes_where_its_last_commit_left_it() {
    let dir = tempfile::tempdir().unwrap();
    let progress = BatchProgress { journal_seq: 9, entries: 2, outcomes: 2 };
    {
        let mut index = open(dir.path());
        upsert(&mut index, &item("file://a", "<p>x</p>", &[]), 1, 9);
        upsert(&mut index, &item("file://b", "<p>x</p>", &[]), 1, 9);
        index.record_batch_progress(progress);
        index.commit().unwrap();
    }
    let mut index = open(dir.path());
    assert_eq!(index.state().journal_seq, 8, "the batch record itself is not done");
    assert_eq!(index.batch_progress(9), Some(progress));
    assert_eq!(index.batch_progress(10), None);
    assert_eq!(find(&index, "", "").len(), 2);
    index.advance_to(9);
    index.commit().unwrap();
    drop(index);
    let index = open(dir.path());
    assert_eq!((index.state().journal_seq, index.batch_progress(9)), (9, None), "a finished batch leaves no progress");
}

#[test]
fn aq_matches_fields_exactly_and_combines() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    upsert(
        &mut index,
        &item(
            "file://1",
            "<title>Kernel Guide</title><p>memory pages</p>",
            &[("category", "News"), ("author", "Alice B")],
        ),
        1,
        1,
    );
    upsert(&mut index, &item("file://2", "<p>memory</p>", &[("category", "sports"), ("title", "Other")]), 1, 2);
    index.commit().unwrap();
    assert_eq!(find(&index, "", "@category==news"), ["file://1"]);
    assert_eq!(find(&index, "", r#"@author=="alice b""#), ["file://1"]);
    assert_eq!(find(&index, "", r#"@title=="Kernel Guide" AND @filetype==html"#), ["file://1"]);
    assert_eq!(find(&index, "", "@source==docs @uri==file://2"), ["file://2"]);
    assert_eq!(find(&index, "memory", "@category<>news"), ["file://2"]);
    assert_eq!(find(&index, "", "@category==(news,sports)"), ["file://1", "file://2"]);
    assert_eq!(find(&index, "", "@date==2023/11/14"), ["file://1", "file://2"]);
    assert!(find(&index, "", "@date>2023/11/14").is_empty());
    assert_eq!(find(&index, "page", ""), ["file://1"], "stemming: page matches pages");
}

#[test]
fn huge_titles_and_metadata_values_are_indexed_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    let long = "word ".repeat(40_000); // 200 KB: longer than a single tantivy term may be
    let huge = item("file://huge", &format!("<p>{long} needle</p>"), &[("title", &long), ("category", &long)]);
    assert_eq!(upsert(&mut index, &huge, 1, 1).result, LogResult::Completed);
    upsert(&mut index, &item("file://small", "<p>needle</p>", &[]), 1, 2);
    index.commit().unwrap();
    assert_eq!(find(&index, "needle", ""), ["file://huge", "file://small"]);
}

#[test]
fn declared_fields_compare_as_numbers_and_dates() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    let types: FieldTypes = [("rank", FieldType::Long), ("price", FieldType::Double), ("published", FieldType::Date)]
        .map(|(k, v)| (k.to_string(), v))
        .into();
    let items = [
        ("file://a", "2", "9.5", "2024-01-05T10:00:00Z"),
        ("file://b", "10", "19.99", "2024-02-01"),
        ("file://c", "not a number", "0.5", "2023-12-31T23:59:59Z"),
    ];
    for (i, (id, rank, price, published)) in items.iter().enumerate() {
        let item = item(id, "<p>x</p>", &[("rank", rank), ("price", price), ("published", published)]);
        assert_eq!(upsert_typed(&mut index, &item, 1, i as u64 + 1, &types).result, LogResult::Completed);
    }
    index.commit().unwrap();
    let find = |aq: &str| find_typed(&index, "", aq, &types);
    // As numbers, 10 > 2 (as text, "10" < "2").
    assert_eq!(find("@rank>2"), ["file://b"]);
    assert_eq!(find("@rank>=2"), ["file://a", "file://b"]);
    assert_eq!(find("@rank==10"), ["file://b"]);
    assert_eq!(find("@price<10"), ["file://a", "file://c"]);
    assert_eq!(find("@price>=9.5 @price<=19.99"), ["file://a", "file://b"]);
    assert_eq!(find("@published>=2024/01/01"), ["file://a", "file://b"]);
    assert_eq!(find("@published==2024/01/05"), ["file://a"]);
    assert_eq!(find("@published<2024-01-05T10:00:00Z"), ["file://c"]);
    // Undeclared fields still match as text; ranges on them are explained.
    assert_eq!(find_typed(&index, "", "@rank==10", &FieldTypes::new()), ["file://b"]);
    let request =
        SearchRequest { aq: "@rank>2".into(), number_of_results: 10, viewer: Viewer::All, ..Default::default() };
    let err = search(index.index(), &index.searcher(), index.fields(), index.permissions(), &request).unwrap_err();
    assert!(err.message.contains("not a declared numeric or date field"), "{}", err.message);
    let request = SearchRequest {
        aq: "@rank>two".into(),
        number_of_results: 10,
        field_types: types.clone(),
        ..Default::default()
    };
    let err = search(index.index(), &index.searcher(), index.fields(), index.permissions(), &request).unwrap_err();
    assert!(err.message.contains("not an integer"), "{}", err.message);
}

#[test]
fn a_page_stops_short_of_holding_too_many_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = open(dir.path());
    let notes = "n".repeat(20 * 1024 * 1024);
    for i in 0..4 {
        upsert(&mut index, &item(&format!("file://heavy/{i}"), "<p>heavy</p>", &[("notes", &notes)]), 10, i + 1);
    }
    index.commit().unwrap();
    let request = SearchRequest { q: "heavy".into(), number_of_results: 10, viewer: Viewer::All, ..Default::default() };
    let response = search(index.index(), &index.searcher(), index.fields(), index.permissions(), &request).unwrap();
    assert_eq!(response.total_count, 4);
    assert_eq!(response.results.len(), 3, "three items of 20 MiB fit in a 64 MiB page, not four");
}
