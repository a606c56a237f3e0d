//! The evaluator: `q`, `aq`, `cq`, `dq` and `sortCriteria` (the input's first five lines) run against a small real
//! index, with wildcards on when `q` has a `*`.
#![no_main]

use std::sync::OnceLock;

use intake_index::search::{SearchRequest, search};
use intake_index::{ContainerError, ContainerReader, FieldTypes, ItemTarget, OpInfo, OrgIndex, prepare_item};
use intake_model::FieldType;
use intake_model::item::{Content, Item, MetaValue, Scalar};
use libfuzzer_sys::fuzz_target;

struct NoContainers;

impl ContainerReader for NoContainers {
    fn open(&self, _: &str, file_id: &str) -> Result<Box<dyn std::io::Read + Send>, ContainerError> {
        Err(ContainerError::Missing(format!("no container {file_id}")))
    }
}

struct Fixture {
    index: OrgIndex,
    field_types: FieldTypes,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OrgIndex::open(dir.path(), 1, 20_000_000).unwrap();
        let field_types: FieldTypes = [
            ("rank".to_string(), FieldType::Long),
            ("price".to_string(), FieldType::Double),
            ("due".to_string(), FieldType::Date),
        ]
        .into_iter()
        .collect();
        for i in 0..20i64 {
            let meta = |k: &str, v: String| (k.to_string(), MetaValue::One(Scalar::Text(v)));
            let item = Item {
                document_id: format!("file://fuzz/{i}"),
                content: Content::Text(format!("<title>Page {i}</title><p>alpha beta {} gamma</p>", i * 7)),
                file_extension: Some(".html".into()),
                parent_id: None,
                permissions: vec![],
                metadata: vec![
                    meta("category", format!("c{}", i % 3)),
                    meta("rank", i.to_string()),
                    meta("price", format!("{}.5", i)),
                    meta("due", format!("2024-01-{:02}", i + 1)),
                ]
                .into_iter()
                .collect(),
            };
            let target = ItemTarget {
                organization_id: "org",
                source_id: "src",
                source_name: "Docs",
                ordering_id: i,
                accepted_at_ms: 1_700_000_000_000,
                now_ms: 1_700_000_000_000,
                max_item_bytes: 1 << 20,
                conversion: intake_index::convert::Budget::default(),
                field_types: &field_types,
                containers: &NoContainers,
                default_provider: "Email Security Provider",
                secured: i % 2 == 0,
                identities: None,
                whole_text: i % 3 == 0,
            };
            let prepared = prepare_item(&item, &target, index.fields());
            let op =
                OpInfo { source_id: "src".into(), ordering_id: i, request_id: "r".into(), journal_seq: i as u64 + 1 };
            index.upsert(prepared, &op).unwrap();
        }
        index.commit().unwrap();
        Fixture { index, field_types, _dir: dir }
    })
}

fuzz_target!(|input: &str| {
    let mut lines = input.splitn(5, '\n');
    let mut next = || lines.next().unwrap_or("").to_string();
    let (q, aq, cq, dq, sort) = (next(), next(), next(), next(), next());
    let fixture = fixture();
    let wildcards = q.contains('*');
    let request = SearchRequest {
        syntax: intake_index::syntax::Options { wildcards, question_mark: wildcards, lowercase_operators: wildcards },
        q,
        aq,
        cq,
        dq,
        sort: intake_index::SortCriteria::parse(&sort).unwrap_or_default(),
        number_of_results: 5,
        field_types: fixture.field_types.clone(),
        now_ms: 1_700_000_000_000,
        ..Default::default()
    };
    let index = &fixture.index;
    // The anonymous viewer (the default): the permission filter runs on every query.
    let _ = search(index.index(), &index.searcher(), index.fields(), index.permissions(), &request);
});
