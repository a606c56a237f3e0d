//! The storage contract: one suite of tests, run against every backend (as tantivy runs one suite against each
//! `Directory`). A backend opens its stores at one place; opening them again at the same place is a restart,
//! and what was written before must be there. A new backend adds a module at the end that runs the groups of
//! tests of the concerns it implements.

use std::io::{Read, Write};
use std::sync::Arc;

use intake_model::identity::SecurityIdentity;
use intake_model::logs::{LogOperation, LogResult, LogTask};
use intake_model::permissions::IdentityType;
use intake_model::quota::LimitKey;
use intake_model::{FieldType, Privilege, SourceStatus};
use intake_store::{
    ApiKey, BlobStore, Catalog, CatalogStream, CommittedThrough, DailyUsage, Field, FileContainer, IdMatching,
    IdentityStore, ItemLog, Journal, LogEntry, LogQuery, SecurityProvider, StoreError, StoredIdentity,
};

/// Opens a backend's catalog and identity store; each call opens them again, as after a restart.
pub trait CatalogBackend {
    fn catalog(&self) -> Arc<dyn Catalog>;
    fn identities(&self) -> Arc<dyn IdentityStore>;
}

/// Opens a backend's journal, likewise.
pub trait JournalBackend {
    fn journal(&self) -> Arc<dyn Journal>;
}

/// Opens a backend's item log, likewise.
pub trait ItemLogBackend {
    fn item_log(&self) -> Arc<dyn ItemLog>;
}

/// Opens a backend's blob store, likewise.
pub trait BlobBackend {
    fn blobs(&self) -> Arc<dyn BlobStore>;
}

/// The embedded default: SQLite files and local folders in a temporary directory.
struct Embedded(tempfile::TempDir);

impl Embedded {
    fn new() -> Embedded {
        Embedded(tempfile::tempdir().unwrap())
    }
}

impl CatalogBackend for Embedded {
    fn catalog(&self) -> Arc<dyn Catalog> {
        Arc::new(intake_store::SqliteCatalog::open(&self.0.path().join("catalog.sqlite")).unwrap())
    }
    fn identities(&self) -> Arc<dyn IdentityStore> {
        Arc::new(intake_store::SqliteIdentities::open(&self.0.path().join("identities.sqlite")).unwrap())
    }
}

impl ItemLogBackend for Embedded {
    fn item_log(&self) -> Arc<dyn ItemLog> {
        Arc::new(intake_store::SqliteItemLog::open(&self.0.path().join("logs.sqlite")).unwrap())
    }
}

impl BlobBackend for Embedded {
    fn blobs(&self) -> Arc<dyn BlobStore> {
        Arc::new(intake_store::LocalBlobs::open(&self.0.path().join("containers")).unwrap())
    }
}

impl JournalBackend for Embedded {
    fn journal(&self) -> Arc<dyn Journal> {
        Arc::new(intake_store::FileJournal::open(&self.0.path().join("journal")).unwrap())
    }
}

/// The scale-out backend: a database of its own on the test PostgreSQL server and a place of its own on the test
/// S3 server (`INTAKE_TEST_POSTGRES`, `INTAKE_TEST_S3`, else the ones `scripts/test-servers start` runs).
struct Shared {
    database: String,
    blobs: intake_store::S3Location,
    spool: tempfile::TempDir,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            database: intake_store::testing::scratch_database(),
            blobs: intake_store::testing::scratch_blobs(),
            spool: tempfile::tempdir().unwrap(),
        }
    }
}

impl BlobBackend for Shared {
    fn blobs(&self) -> Arc<dyn BlobStore> {
        Arc::new(intake_store::S3Blobs::open(self.blobs.clone(), self.spool.path()).unwrap())
    }
}

impl ItemLogBackend for Shared {
    fn item_log(&self) -> Arc<dyn ItemLog> {
        Arc::new(intake_store::PgItemLog::open(intake_store::Postgres::connect(&self.database).unwrap()))
    }
}

impl Shared {
    /// The journal as node `node` opens it, large records in the test S3 server.
    fn pg_journal(&self, node: &str) -> intake_store::PgJournal {
        let postgres = intake_store::Postgres::connect(&self.database).unwrap();
        intake_store::PgJournal::open(postgres, node, Some(self.journal_objects())).unwrap()
    }

    /// Where the journal's large records go.
    fn journal_objects(&self) -> Arc<dyn BlobStore> {
        Arc::new(intake_store::S3Blobs::open(self.blobs.clone(), self.spool.path()).unwrap().area("journal"))
    }
}

impl JournalBackend for Shared {
    fn journal(&self) -> Arc<dyn Journal> {
        Arc::new(self.pg_journal("node"))
    }
}

impl CatalogBackend for Shared {
    fn catalog(&self) -> Arc<dyn Catalog> {
        Arc::new(intake_store::PgCatalog::open(intake_store::Postgres::connect(&self.database).unwrap()).unwrap())
    }
    fn identities(&self) -> Arc<dyn IdentityStore> {
        Arc::new(intake_store::PgIdentities::open(intake_store::Postgres::connect(&self.database).unwrap()))
    }
}

/// One `#[test]` per contract function named, run on a backend opened by `$open`.
macro_rules! contract {
    ($open:expr; $($test:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            super::$test(&$open);
        }
    )*};
}

/// The catalog's and the identity store's contract.
macro_rules! catalog_contract {
    ($open:expr) => {
        contract!($open; organizations_and_sources_survive_reopen, keys_fields_pausing_and_deletion_survive_reopen, limits_usage_and_rules_survive_reopen, containers_are_pinned_once_and_expire_unless_pinned, providers_are_replaced_whole_and_matched_ignoring_case, identities_are_upserted_by_provider_name_and_type, streams_take_chunks_until_closed_once_and_expire_when_open);
    };
}

/// The journal's contract.
macro_rules! journal_contract {
    ($open:expr) => {
        contract!($open; journal_appends_are_read_back_in_order_after_reopen, concurrent_appends_share_syncs_and_get_distinct_seqs);
    };
}

/// The item log's contract.
macro_rules! item_log_contract {
    ($open:expr) => {
        contract!($open; the_item_log_filters_and_pages, an_operation_applied_again_replaces_its_draft_outcomes,
            the_item_log_shows_only_what_the_index_committed);
    };
}

/// The blob store's contract.
macro_rules! blob_contract {
    ($open:expr) => {
        contract!($open; a_blob_is_replaced_whole_and_an_unfinished_one_leaves_nothing, a_large_blob_is_read_back_whole);
    };
}

mod embedded {
    use super::*;

    catalog_contract!(Embedded::new());
    journal_contract!(Embedded::new());
    item_log_contract!(Embedded::new());
    blob_contract!(Embedded::new());
}

mod postgres {
    use super::*;

    catalog_contract!(Shared::new());
    journal_contract!(Shared::new());
    item_log_contract!(Shared::new());
    blob_contract!(Shared::new());

    /// Two nodes on one database: what one writes, the other sees — at once for what it looks up by key (a
    /// key, a source, an organization made a moment ago), within moments for what it lists or changed.
    #[test]
    fn nodes_see_each_others_writes() {
        let shared = Shared::new();
        let (a, b) = (shared.catalog(), shared.catalog());
        a.create_organization("acme", "Acme", 1).unwrap();
        let source = a.create_source("acme", "docs", "PUSH", "SHARED", 1).unwrap();
        a.create_api_key(&api_key("k1", "hash-1")).unwrap();
        assert!(b.organization("acme").is_some(), "an organization made on another node is found at once");
        assert!(b.source("acme", &source.id).is_some(), "so is a source");
        assert!(b.api_key_by_hash("hash-1").unwrap().enabled, "and a key");
        assert!(b.api_key_by_hash("no such hash").is_none());

        a.set_api_key_enabled("acme", "k1", false).unwrap();
        a.set_paused("acme", true).unwrap();
        a.upsert_fields(&[Field {
            organization_id: "acme".into(),
            name: "rank".into(),
            field_type: FieldType::Long,
            description: String::new(),
        }])
        .unwrap();
        eventually("node b sees the key disabled, the organization paused and the field", || {
            b.api_key_by_hash("hash-1").is_some_and(|k| !k.enabled)
                && b.organization("acme").is_some_and(|o| o.paused)
                && b.field("acme", "rank").is_some()
        });
        b.delete_api_key("acme", "k1").unwrap();
        eventually("node a forgets the key deleted on node b", || a.api_key_by_hash("hash-1").is_none());
    }

    /// Two nodes appending to one journal at once: every record gets its own number, the numbers have no gap,
    /// each node reads the other's records, and records go only once both nodes have applied them.
    #[test]
    fn nodes_share_one_journal_in_order() {
        let shared = Shared::new();
        let (a, b) = (Arc::new(shared.pg_journal("a")), Arc::new(shared.pg_journal("b")));
        let journals: [Arc<dyn Journal>; 2] = [a.clone(), b.clone()];
        let seqs = append_concurrently(&journals, 100);
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        assert_eq!(b.wait_beyond(99, std::time::Duration::from_secs(5)), 100, "b learns a's appends");
        let mut read = Vec::new();
        let mut reader = b.reader(0).unwrap();
        loop {
            let batch = reader.next_batch(1 << 20).unwrap();
            if batch.is_empty() {
                break;
            }
            read.extend(batch.into_iter().map(|(seq, _)| seq));
        }
        assert_eq!(read, (1..=100).collect::<Vec<_>>(), "b reads every record in order");

        b.release_through(40).unwrap();
        a.release_through(100).unwrap();
        let first = b.reader(0).unwrap().next_batch(1 << 20).unwrap()[0].0;
        assert_eq!(first, 41, "records go once every node that reported its position applied them");
    }

    /// A record larger than a row should hold is written to S3 first and its row names it: every node reads it
    /// back whole, in order among small ones; a node without the blob store says which object it lacks; the
    /// object goes with its row.
    #[test]
    fn large_records_are_objects_in_s3_named_in_their_rows() {
        let shared = Shared::new();
        let (a, b) = (shared.pg_journal("a"), shared.pg_journal("b"));
        let large: Vec<u8> = (0..intake_store::PgJournal::LARGE_RECORD + 1).map(|i| (i % 251) as u8).collect();
        let runtime = runtime();
        let records = vec![b"small before".to_vec(), large.clone(), b"small after".to_vec()];
        assert_eq!(runtime.block_on(a.append(records.clone())).unwrap(), 3);
        assert_eq!(runtime.block_on(a.append(vec![large.clone()])).unwrap(), 4);
        let objects = shared.journal_objects();
        assert!(objects.total_bytes().unwrap() >= 2 * large.len() as u64, "both large records are objects");

        assert_eq!(b.wait_beyond(3, std::time::Duration::from_secs(5)), 4);
        let mut reader = b.reader(0).unwrap();
        let mut read = Vec::new();
        loop {
            let batch = reader.next_batch(1 << 20).unwrap();
            if batch.is_empty() {
                break;
            }
            read.extend(batch);
        }
        let expected: Vec<(u64, Vec<u8>)> =
            records.into_iter().chain([large.clone()]).enumerate().map(|(i, r)| (i as u64 + 1, r)).collect();
        assert!(read == expected, "node b reads the four records back whole and in order");

        let postgres = intake_store::Postgres::connect(&shared.database).unwrap();
        let without = intake_store::PgJournal::open(postgres, "c", None).unwrap();
        let error = without.reader(1).unwrap().next_batch(1 << 20).unwrap_err().to_string();
        assert!(error.contains("journal record 2 is the object") && error.contains("--blobs"), "{error}");

        // An object no row names (its node died before the row, or the commit failed) is swept once old enough;
        // those the rows name stay.
        let mut stray = objects.create("stray.record").unwrap();
        stray.write_all(b"a record whose row never committed").unwrap();
        stray.finish().unwrap();
        let day = std::time::Duration::from_secs(24 * 3600);
        assert_eq!(a.sweep_unnamed_objects(day).unwrap(), 0, "too recent to be taken for one");
        assert_eq!(a.sweep_unnamed_objects(std::time::Duration::ZERO).unwrap(), 1);
        assert_eq!(objects.size("stray.record").unwrap(), None);
        let mut listed: Vec<u64> = objects.list().unwrap().iter().map(|blob| blob.size).collect();
        listed.sort();
        assert_eq!(listed, [large.len() as u64; 2], "the named objects stay");
        let mut reader = b.reader(1).unwrap();
        assert!(reader.next_batch(1).unwrap()[0].1 == large, "and read back");

        a.release_through(4).unwrap();
        b.release_through(4).unwrap();
        assert_eq!(objects.total_bytes().unwrap(), 0, "the objects go with their rows");
    }

    /// A node reads the records it committed from its memory, not back from PostgreSQL (rows deleted behind
    /// its back are still read there, and not by another node), until it released them.
    #[test]
    fn a_node_reads_its_own_records_from_memory() {
        let shared = Shared::new();
        let (a, b) = (shared.pg_journal("a"), shared.pg_journal("b"));
        assert_eq!(runtime().block_on(a.append(records(0..3))).unwrap(), 3);
        assert_eq!(b.wait_beyond(2, std::time::Duration::from_secs(5)), 3);
        run_sql(&shared.database, "DELETE FROM journal");
        assert!(b.reader(0).unwrap().next_batch(1 << 20).unwrap().is_empty(), "node b reads the rows: gone");
        let mut reader = a.reader(0).unwrap();
        assert_eq!(
            reader.next_batch(1 << 20).unwrap(),
            records(0..3).into_iter().zip(1..).map(|(r, s)| (s, r)).collect::<Vec<_>>()
        );

        assert_eq!(runtime().block_on(a.append(records(3..5))).unwrap(), 5);
        a.release_through(5).unwrap();
        run_sql(&shared.database, "DELETE FROM journal");
        assert!(reader.next_batch(1 << 20).unwrap().is_empty(), "what node a released is no longer kept");
    }

    /// A node alone announces none of its commits; once another node listens, it announces each. A node finds
    /// the commits it was not told of (it joined a moment ago) by reading the journal's end itself.
    #[test]
    fn a_node_alone_announces_nothing_and_nodes_find_what_they_were_not_told() {
        let shared = Shared::new();
        let runtime = runtime();
        let a = shared.pg_journal("a");
        // A listener that is not a node: it hears the announcements without being counted as one.
        let (_listening, announced) = runtime.block_on(listen(&shared.database, "intake_journal"));
        let second = std::time::Duration::from_secs(1);
        std::thread::sleep(second + second / 2);
        assert_eq!(runtime.block_on(a.append(records(0..1))).unwrap(), 1);
        assert!(announced.recv_timeout(second / 2).is_err(), "node a is alone: its commit is not announced");

        let b = shared.pg_journal("b");
        run_sql(
            &shared.database,
            "WITH head AS (UPDATE journal_head SET last_seq = last_seq + 1 RETURNING last_seq)
             INSERT INTO journal (seq, body) SELECT last_seq, 'unannounced' FROM head",
        );
        assert_eq!(b.wait_beyond(1, 3 * second), 2, "node b finds a commit nobody announced");
        assert_eq!(a.wait_beyond(1, 3 * second), 2, "and so does node a");

        std::thread::sleep(second + second / 2);
        assert_eq!(runtime.block_on(a.append(records(1..2))).unwrap(), 3);
        assert_eq!(announced.recv_timeout(second).unwrap(), "3", "with node b listening, node a announces");
        assert_eq!(b.wait_beyond(2, 3 * second), 3);
    }

    /// The payloads of the notifications on `channel`, heard by a connection of the test's own (as long as the
    /// client returned lives).
    async fn listen(database: &str, channel: &str) -> (tokio_postgres::Client, std::sync::mpsc::Receiver<String>) {
        use futures_util::StreamExt;
        let (client, mut connection) = tokio_postgres::connect(database, tokio_postgres::NoTls).await.unwrap();
        let (heard, payloads) = std::sync::mpsc::channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let tokio_postgres::AsyncMessage::Notification(notification) = message {
                    let _ = heard.send(notification.payload().to_string());
                }
            }
        });
        client.batch_execute(&format!("LISTEN {channel}")).await.unwrap();
        (client, payloads)
    }

    /// A record worth compressing is compressed by the node that appends it, its row saying its size before; a
    /// small one and one that would not shrink are stored as they are. Another node reads all back whole; a row
    /// damaged is an error naming the record, never a wrong record or an allocation of the size it claims.
    #[test]
    fn records_are_compressed_by_their_node_and_read_back_whole() {
        let shared = Shared::new();
        let (a, b) = (shared.pg_journal("a"), shared.pg_journal("b"));
        let page = "<p>a page of a manual, as pushed, many times over</p>".repeat(1000).into_bytes();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..10_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let records = vec![page.clone(), b"a small record".to_vec(), noise.clone()];
        assert_eq!(runtime().block_on(a.append(records.clone())).unwrap(), 3);
        let rows = select_sql(&shared.database, "SELECT seq, octet_length(body), raw_bytes FROM journal ORDER BY seq");
        let stored: Vec<(u64, usize, Option<usize>)> = rows
            .iter()
            .map(|row| {
                let columns: Vec<&str> = row.split('|').collect();
                (columns[0].parse().unwrap(), columns[1].parse().unwrap(), columns[2].parse().ok())
            })
            .collect();
        assert_eq!(stored[0].2, Some(page.len()), "the page is compressed: {stored:?}");
        assert!(stored[0].1 < page.len() / 10, "to a tenth of it at most: {stored:?}");
        assert_eq!(stored[1..], [(2, 14, None), (3, noise.len(), None)], "the others are stored as they are");

        assert_eq!(b.wait_beyond(2, std::time::Duration::from_secs(5)), 3);
        let read: Vec<Vec<u8>> =
            b.reader(0).unwrap().next_batch(1 << 20).unwrap().into_iter().map(|(_, r)| r).collect();
        assert!(read == records, "node b reads the three records back whole");

        run_sql(&shared.database, "UPDATE journal SET raw_bytes = 2000000000 WHERE seq = 1");
        let error = b.reader(0).unwrap().next_batch(1 << 20).unwrap_err().to_string();
        assert!(error.contains("journal record 1 claims 2000000000 bytes"), "{error}");
        run_sql(&shared.database, &format!("UPDATE journal SET raw_bytes = {} WHERE seq = 1", page.len() + 1));
        let error = b.reader(0).unwrap().next_batch(1 << 20).unwrap_err().to_string();
        assert!(error.contains("journal record 1 does not decompress"), "{error}");
    }

    /// A container read again on the node that wrote or read it (a batch: validated, then applied) comes from
    /// its local copy, not a download — multipart uploads included — and never once the object was replaced or
    /// deleted from another node.
    #[test]
    fn containers_are_read_again_from_local_copies_while_unchanged() {
        let shared = Shared::new();
        let node = || intake_store::S3Blobs::open(shared.blobs.clone(), shared.spool.path()).unwrap();
        let (a, b) = (node(), node());
        let write = |blobs: &dyn BlobStore, id: &str, content: &[u8]| {
            let mut writer = blobs.create(id).unwrap();
            writer.write_all(content).unwrap();
            writer.finish().unwrap();
        };
        let read = |blobs: &dyn BlobStore, id: &str| {
            let mut content = Vec::new();
            blobs.open(id).unwrap().read_to_end(&mut content).unwrap();
            content
        };
        let large: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
        write(&a, "batch", b"version 1");
        write(&a, "large", &large);
        assert_eq!((read(&a, "batch"), read(&a, "batch")), (b"version 1".to_vec(), b"version 1".to_vec()));
        assert!(read(&a, "large") == large, "a multipart upload's copy reads back whole");
        assert_eq!(a.downloads(), 0, "what node a wrote, it reads from its copies");
        assert_eq!(read(&b, "batch"), b"version 1");
        assert_eq!(read(&b, "batch"), b"version 1");
        assert_eq!(b.downloads(), 1, "node b downloads once, then reads its copy");

        write(&b, "batch", b"version 2 from node b");
        assert_eq!(read(&a, "batch"), b"version 2 from node b", "a copy of a replaced object is not used");
        assert_eq!(a.downloads(), 1);
        b.delete("large").unwrap();
        assert!(a.open("large").err().is_some_and(|e| e.is_not_found()), "nor one of an object deleted elsewhere");
    }

    /// Index leases: two live nodes share the organizations; when one stops renewing, the other takes its leases
    /// over under a new epoch, and the stopped node can no longer record a snapshot. Journal records stay until
    /// every organization's snapshot holds them.
    #[test]
    fn index_leases_are_shared_taken_over_and_fence_snapshots() {
        use intake_store::{LeaseTimes, Owner, Ownership, PgOwnership, Postgres, Snapshot};
        let shared = Shared::new();
        let catalog = shared.catalog();
        for org in ["a", "b", "c", "d"] {
            catalog.create_organization(org, org, 1).unwrap();
        }
        let times =
            LeaseTimes { ttl: std::time::Duration::from_millis(1500), renew: std::time::Duration::from_millis(300) };
        let start = |node: &str| {
            PgOwnership::start(Postgres::connect(&shared.database).unwrap(), node, &format!("http://{node}"), times)
                .unwrap()
        };
        let one = start("one");
        assert_eq!(one.owned().len(), 4, "a lone node takes every lease at once");
        let two = start("two");
        assert_eq!(two.owner("a"), Owner::Node { name: "one".into(), url: "http://one".into() });
        assert!(two.owned().is_empty(), "leases held and renewed are not taken");

        let epoch = one.owned()["a"];
        let snapshot = Snapshot { seq: 7, manifest: "m7".into() };
        assert!(one.publish("a", epoch, &snapshot).unwrap(), "the owner records its snapshot");
        assert!(!two.publish("a", epoch, &snapshot).unwrap(), "another node cannot");

        let journal = shared.pg_journal("one");
        let runtime = runtime();
        let appended: Vec<u64> = (0..10).map(|i| runtime.block_on(journal.append(vec![vec![i]])).unwrap()).collect();
        journal.release_through(10).unwrap();
        assert_eq!(
            journal.reader(0).unwrap().next_batch(1 << 20).unwrap()[0].0,
            appended[0],
            "nothing goes while organizations have no snapshot"
        );

        eventually("node one sees it holds two leases beyond its share", || one.surplus() == 2);
        let d_epoch = one.owned()["d"];
        one.release("d", d_epoch).unwrap();
        assert!(!one.owned().contains_key("d"), "given up at once");
        eventually("node two takes the lease given up", || two.owned().contains_key("d"));
        assert_eq!(two.owned()["d"], d_epoch + 1);
        assert!(!one.owned().contains_key("d"), "and node one's renewals leave it alone");

        drop(one); // stops renewing, as a node killed would
        eventually("node two takes every lease over once they lapse", || two.owned().len() == 4);
        assert_eq!(two.owned()["a"], epoch + 1, "under a new epoch");
        assert_eq!(two.snapshot("a").unwrap(), Some(snapshot.clone()), "and finds the last snapshot");
        assert!(
            !two.publish("a", epoch, &Snapshot { seq: 9, manifest: "m9".into() }).unwrap(),
            "an old epoch is fenced"
        );
        for org in ["b", "c", "d"] {
            assert!(two.publish(org, two.owned()[org], &Snapshot { seq: 5, manifest: format!("{org}5") }).unwrap());
        }
        assert!(two.publish("a", epoch + 1, &Snapshot { seq: 8, manifest: "m8".into() }).unwrap());
        journal.release_through(10).unwrap();
        assert_eq!(
            journal.reader(0).unwrap().next_batch(1 << 20).unwrap()[0].0,
            appended[5],
            "records go once every organization's snapshot holds them"
        );
        two.resign();
        assert!(two.owned().is_empty());
        let three = start("three");
        assert_eq!(three.owned().len(), 4, "leases given up are taken at once, not when they lapse");
    }

    /// Quota counters shared by two nodes: concurrent reservations stop exactly at the item limit; reserved items
    /// count until the index commits their record, or until they are released; a node that starts again drops what
    /// it reserved and never journaled; the day's usage is checked and counted in one step, and what is given back
    /// never takes it below zero.
    #[test]
    fn shared_counters_admit_exactly_across_nodes() {
        use intake_store::{PgCounters, Postgres, SharedCounters, UsageChange};
        let shared = Shared::new();
        let open = |node: &str| PgCounters::open(Postgres::connect(&shared.database).unwrap(), node).unwrap();
        let (a, b) = (open("a"), open("b"));
        let reserved: Vec<(usize, Option<i64>)> = std::thread::scope(|scope| {
            let nodes = [&a, &b];
            let tries: Vec<_> = (0..8)
                .map(|n| scope.spawn(move || (n % 2, nodes[n % 2].reserve_items("acme", 3, 20, 1).unwrap().ok())))
                .collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let admitted: Vec<(usize, i64)> = reserved.into_iter().filter_map(|(node, id)| Some((node, id?))).collect();
        assert_eq!(admitted.len(), 6, "6 × 3 items fit under 20, the 7th does not");
        let refused = a.reserve_items("acme", 3, 20, 1).unwrap().unwrap_err();
        assert_eq!((refused.indexed, refused.pending), (0, 18));

        a.release_items(admitted[0].1).unwrap();
        b.items_journaled(admitted[1].1, 7).unwrap();
        b.items_journaled(admitted[2].1, 9).unwrap();
        b.indexed("acme", 6, 7, 2).unwrap();
        let account = a.item_accounts(Some("acme")).unwrap()[0].1;
        assert_eq!((account.indexed, account.pending), (6, 12), "one released, one committed: 4 reservations left");

        drop(a);
        let a = open("a"); // started again: what it reserved and never journaled is gone
        let lost = admitted[3..].iter().filter(|(node, _)| *node == 0).count() as u64;
        let account = b.item_accounts(None).unwrap()[0].1;
        assert_eq!(account.pending, 12 - 3 * lost);
        assert_eq!(a.reserve_items("acme", 20, 20, 3).unwrap().unwrap_err().count(), 6 + 12 - 3 * lost);

        let day = 20_000;
        assert_eq!(a.take_daily("acme", day, 5, 4, 0, (Some(5), None)).unwrap().unwrap().documents, 4);
        let over = b.take_daily("acme", day, 6, 2, 0, (Some(5), None)).unwrap().unwrap_err();
        assert_eq!(over.documents, 4, "refused whole, with the usage that refused it");
        assert_eq!(b.take_daily("acme", day, 6, 0, 3, (Some(5), None)).unwrap().unwrap().identities, 3);
        let back = UsageChange { day, documents: -9, calls: 2, at_ms: 7, ..UsageChange::default() };
        a.add_usage(&[("acme".to_string(), back)]).unwrap();
        let usage = b.usage_on(day).unwrap();
        assert_eq!((usage[0].1.documents, usage[0].1.calls, usage[0].1.identities), (0, 2, 3));
    }

    /// Nodes starting together on an empty database: one brings the schema up, the others find it done.
    #[test]
    fn nodes_starting_together_migrate_once() {
        let shared = Shared::new();
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let database = shared.database.clone();
                std::thread::spawn(move || intake_store::Postgres::connect(&database).map(|_| ()))
            })
            .collect();
        for node in nodes {
            node.join().unwrap().unwrap();
        }
    }

    #[test]
    fn a_database_from_a_newer_release_is_refused_with_what_to_do() {
        let shared = Shared::new();
        drop(intake_store::Postgres::connect(&shared.database).unwrap());
        run_sql(&shared.database, "INSERT INTO intake_schema (version, comment) VALUES (99, 'from the future')");
        let error = intake_store::Postgres::connect(&shared.database).err().unwrap().to_string();
        assert!(error.contains("schema version 99") && error.contains("newer release of Intake"), "{error}");
    }

    #[test]
    fn an_unreachable_database_is_unavailable_not_hung() {
        let started = std::time::Instant::now();
        let error = intake_store::Postgres::connect("postgres://postgres@127.0.0.1:1/none").err().unwrap();
        assert!(error.is_unavailable(), "{error}");
        assert!(error.to_string().contains("PostgreSQL is unreachable"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    fn api_key(id: &str, hash: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            organization_id: "acme".into(),
            display_name: id.into(),
            description: String::new(),
            value_hash: hash.into(),
            privileges: vec![],
            allowed_ips: vec![],
            denied_ips: vec![],
            enabled: true,
            created_at_ms: 1,
            expiration_ms: None,
        }
    }

    fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "not within 5 s: {what}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn run_sql(database: &str, sql: &str) {
        let status = std::process::Command::new("psql").args([database, "-qc", sql]).status().unwrap();
        assert!(status.success());
    }

    /// What `sql` selects, a line per row, its columns separated by `|`.
    fn select_sql(database: &str, sql: &str) -> Vec<String> {
        let output = std::process::Command::new("psql").args([database, "-Atqc", sql]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect()
    }
}

fn organizations_and_sources_survive_reopen(backend: &dyn CatalogBackend) {
    let source_id = {
        let catalog = backend.catalog();
        catalog.create_organization("default", "Default", 1).unwrap();
        assert!(matches!(catalog.create_organization("default", "Again", 1), Err(StoreError::Conflict(_))));
        let source = catalog.create_source("default", "main", "PUSH", "SHARED", 2).unwrap();
        assert!(source.id.starts_with("default-") && source.id.len() == "default-".len() + 26);
        catalog.set_source_status("default", &source.id, SourceStatus::Rebuild, 3).unwrap();
        assert!(matches!(catalog.create_source("default", "main", "PUSH", "SHARED", 4), Err(StoreError::Conflict(_))));
        catalog.set_setting("k", "v").unwrap();
        source.id
    };
    let catalog = backend.catalog();
    assert_eq!(catalog.organizations().len(), 1);
    let source = catalog.source("default", &source_id).unwrap();
    assert_eq!((source.status, source.status_updated_at_ms), (Some(SourceStatus::Rebuild), Some(3)));
    assert!(catalog.source("other", &source_id).is_none(), "a source is found only in its organization");
    assert_eq!(catalog.setting("k").unwrap().as_deref(), Some("v"));
    assert!(catalog.delete_source("default", &source_id).unwrap());
    assert!(!catalog.delete_source("default", &source_id).unwrap());
    assert!(backend.catalog().sources("default").is_empty());
}

fn keys_fields_pausing_and_deletion_survive_reopen(backend: &dyn CatalogBackend) {
    let key = ApiKey {
        id: "k1".into(),
        organization_id: "acme".into(),
        display_name: "push".into(),
        description: String::new(),
        value_hash: "hash".into(),
        privileges: vec![Privilege::platform("SOURCE", "EDIT", "*")],
        allowed_ips: vec!["127.0.0.0/8".into()],
        denied_ips: vec![],
        enabled: true,
        created_at_ms: 1,
        expiration_ms: Some(99),
    };
    let rank = |field_type| Field {
        organization_id: "acme".into(),
        name: "rank".into(),
        field_type,
        description: String::new(),
    };
    {
        let catalog = backend.catalog();
        catalog.create_organization("acme", "Acme", 1).unwrap();
        catalog.create_api_key(&key).unwrap();
        catalog.upsert_fields(&[rank(FieldType::Double)]).unwrap();
        catalog.upsert_fields(&[rank(FieldType::Long)]).unwrap();
        assert!(catalog.set_paused("acme", true).unwrap());
        assert!(!catalog.set_paused("nobody", true).unwrap());
        assert!(!catalog.set_api_key_enabled("acme", "k1", false).unwrap().unwrap().enabled);
        assert!(catalog.set_api_key_enabled("other", "k1", true).unwrap().is_none(), "keys are per organization");
    }
    let catalog = backend.catalog();
    assert!(catalog.organization("acme").unwrap().paused);
    let stored = catalog.api_key_by_hash("hash").unwrap();
    assert_eq!((stored.enabled, &stored.privileges, stored.expiration_ms), (false, &key.privileges, Some(99)));
    assert_eq!(catalog.api_keys("acme").len(), 1);
    assert_eq!(catalog.field("acme", "rank").unwrap().field_type, FieldType::Long, "the last declaration wins");
    assert!(catalog.delete_organization("acme").unwrap());
    assert!(catalog.api_key_by_hash("hash").is_none() && catalog.fields("acme").is_empty());
    assert!(!catalog.delete_organization("acme").unwrap());
    assert!(backend.catalog().organization("acme").is_none());
}

fn limits_usage_and_rules_survive_reopen(backend: &dyn CatalogBackend) {
    let rule;
    {
        let catalog = backend.catalog();
        catalog.set_limit("acme", LimitKey::MaximumItems, Some(10), 1).unwrap();
        catalog.set_limit("acme", LimitKey::Burst, Some(3), 1).unwrap();
        catalog.set_limit("acme", LimitKey::Burst, None, 2).unwrap();
        let usage = DailyUsage { day: 20_000, calls: 5, documents: 7, identities: 0, updated_at_ms: 9 };
        catalog.save_daily_usage(&[("acme".into(), usage)]).unwrap();
        rule = catalog.add_fault_rule("acme", r#"{"status":503,"count":2}"#, Some(2), 3).unwrap();
        catalog.set_fault_remaining(rule, 1).unwrap();
    }
    let catalog = backend.catalog();
    let limits = catalog.limit_overrides("acme").unwrap();
    assert_eq!((limits.get(LimitKey::MaximumItems), limits.get(LimitKey::Burst)), (Some(10), None));
    assert_eq!(catalog.daily_usage("acme", 20_000).unwrap().unwrap().documents, 7);
    assert_eq!(catalog.daily_usage("acme", 20_001).unwrap(), None);
    let rules = catalog.fault_rules().unwrap();
    assert_eq!((rules.len(), rules[0].id, rules[0].remaining), (1, rule, Some(1)));
    // Firings taken one at a time, as nodes sharing the catalog count them: none past the count.
    assert_eq!(catalog.take_fault_firing(rule).unwrap(), Some(0));
    assert_eq!(catalog.take_fault_firing(rule).unwrap(), None);
    assert_eq!(catalog.take_fault_firing(rule + 1000).unwrap(), None, "a rule that is gone fires no more");
    assert!(!catalog.delete_fault_rule("other", rule).unwrap());
    assert!(catalog.delete_fault_rule("acme", rule).unwrap());
    assert!(catalog.fault_rules().unwrap().is_empty());
}

fn containers_are_pinned_once_and_expire_unless_pinned(backend: &dyn CatalogBackend) {
    {
        let catalog = backend.catalog();
        for (id, expires) in [("a", 10), ("b", 10), ("c", 100)] {
            let container = FileContainer {
                file_id: id.into(),
                organization_id: "o".into(),
                created_at_ms: 0,
                expires_at_ms: expires,
                size: None,
                pinned: false,
            };
            catalog.create_container(&container).unwrap();
        }
        catalog.set_container_size("a", 5).unwrap();
        assert!(catalog.pin_container("b").unwrap());
        assert!(!catalog.pin_container("b").unwrap(), "pinned once");
    }
    let catalog = backend.catalog();
    assert_eq!(catalog.expired_containers(50).unwrap(), ["a"]);
    assert_eq!(catalog.pinned_containers().unwrap(), ["b"]);
    assert_eq!(catalog.container("a").unwrap().unwrap().size, Some(5));
    catalog.unpin_container("b").unwrap();
    assert_eq!(catalog.expired_containers(50).unwrap().len(), 2);
    catalog.forget_container("a").unwrap();
    assert!(catalog.container("a").unwrap().is_none());
}

fn a_blob_is_replaced_whole_and_an_unfinished_one_leaves_nothing(backend: &dyn BlobBackend) {
    let read = |blobs: &dyn BlobStore, id: &str| {
        let mut text = String::new();
        blobs.open(id).unwrap().read_to_string(&mut text).unwrap();
        text
    };
    {
        let blobs = backend.blobs();
        for content in ["first upload", "second"] {
            let mut writer = blobs.create("f1").unwrap();
            writer.write_all(content.as_bytes()).unwrap();
            assert_eq!(writer.finish().unwrap(), content.len() as u64);
        }
        let mut unfinished = blobs.create("f1").unwrap();
        unfinished.write_all(b"interrupted upload").unwrap();
        assert_eq!(read(blobs.as_ref(), "f1"), "second", "nothing changes before finish");
        let listed = blobs.list().unwrap();
        assert_eq!(listed.iter().map(|b| (b.id.as_str(), b.size)).collect::<Vec<_>>(), [("f1", 6)], "whole blobs only");
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now_ms - listed[0].written_at_ms).abs() < 60_000, "written just now: {listed:?}");
        drop(unfinished);
        let mut never = blobs.create("f2").unwrap();
        never.write_all(b"never finished").unwrap();
        drop(never);
    }
    let blobs = backend.blobs();
    assert_eq!(read(blobs.as_ref(), "f1"), "second");
    assert!(blobs.open("f2").err().is_some_and(|e| e.is_not_found()), "an unfinished blob is not there");
    assert_eq!(blobs.total_bytes().unwrap(), 6, "unfinished blobs take no space");
    blobs.delete("f1").unwrap();
    blobs.delete("f1").unwrap();
    assert!(blobs.open("f1").err().is_some_and(|e| e.is_not_found()));
}

/// A blob larger than one part of an upload (a multipart upload on S3), written in small pieces.
fn a_large_blob_is_read_back_whole(backend: &dyn BlobBackend) {
    let content: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let blobs = backend.blobs();
    let mut writer = blobs.create("large").unwrap();
    for piece in content.chunks(64 * 1024) {
        writer.write_all(piece).unwrap();
    }
    assert_eq!(writer.finish().unwrap(), content.len() as u64);
    let mut read = Vec::new();
    backend.blobs().open("large").unwrap().read_to_end(&mut read).unwrap();
    assert!(read == content, "read back {} bytes, not the {} written", read.len(), content.len());
    assert_eq!(blobs.total_bytes().unwrap(), content.len() as u64);
}

fn entry(seq: u64, id: &str, result: LogResult, at: i64) -> LogEntry {
    LogEntry {
        organization_id: "org".into(),
        source_id: "src".into(),
        document_id: id.into(),
        operation: LogOperation::Add,
        result,
        task: LogTask::Indexing,
        reason: None,
        request_id: "r".into(),
        ordering_id: 1,
        journal_seq: seq,
        item_index: 0,
        datetime_ms: at,
    }
}

fn the_item_log_filters_and_pages(backend: &dyn ItemLogBackend) {
    backend
        .item_log()
        .append(&[
            entry(1, "file://a/1", LogResult::Completed, 10),
            entry(2, "file://a/2", LogResult::Error, 20),
            entry(3, "file://b/[x]", LogResult::Completed, 30),
        ])
        .unwrap();
    let log = backend.item_log();
    let committed = CommittedThrough { journal_seq: 3, ..Default::default() };
    let base = LogQuery {
        organization_id: "org".into(),
        from_ms: 0,
        to_ms: 100,
        per_page: 2,
        committed,
        ..Default::default()
    };
    let (page, more) = log.query(&base).unwrap();
    assert_eq!(page.iter().map(|e| e.entry.journal_seq).collect::<Vec<_>>(), [3, 2]);
    assert!(more);
    let (page, more) = log.query(&LogQuery { page: 1, ..base.clone() }).unwrap();
    assert_eq!((page.len(), more, page[0].entry.result), (1, false, LogResult::Completed));
    let errors = log.query(&LogQuery { results: vec![LogResult::Error], ..base.clone() }).unwrap().0;
    assert_eq!(errors.len(), 1);
    let not_errors = log.query(&LogQuery { exclude_results: vec![LogResult::Error], ..base.clone() }).unwrap().0;
    assert_eq!(not_errors.len(), 2);
    let wild = log
        .query(&LogQuery { document_id: Some(("file://b/[x*".into(), IdMatching::Wildcard)), ..base.clone() })
        .unwrap()
        .0;
    assert_eq!(wild.len(), 1);
    let partial =
        log.query(&LogQuery { document_id: Some(("a/".into(), IdMatching::Partial)), ..base.clone() }).unwrap().0;
    assert_eq!(partial.len(), 2);
    let other = log.query(&LogQuery { organization_id: "other".into(), ..base }).unwrap().0;
    assert!(other.is_empty(), "entries are per organization");
}

fn an_operation_applied_again_replaces_its_draft_outcomes(backend: &dyn ItemLogBackend) {
    let log = backend.item_log();
    let outcome = |index, id: &str| LogEntry { item_index: index, ..entry(7, id, LogResult::Completed, 10) };
    // A delete with children, first applied when the parent had children 4 and 5 (then a crash before the
    // commit), then again when it had 1, 4 and 5: the second attempt's outcomes are the truth.
    log.append(&[outcome(0, "p"), outcome(1, "p/4"), outcome(2, "p/5")]).unwrap();
    log.append(&[outcome(0, "p"), outcome(1, "p/1"), outcome(2, "p/4"), outcome(3, "p/5")]).unwrap();
    // A batch resumed after its first two outcomes: only those from the third on are replaced.
    let batch = |index, id: &str| LogEntry { item_index: index, ..entry(9, id, LogResult::Completed, 10) };
    log.append(&[batch(0, "b/0"), batch(1, "b/1"), batch(2, "b/draft"), batch(3, "b/draft2")]).unwrap();
    // Applied again in one append with another record's outcomes, whose own drafts go too.
    let single = |index, id: &str| LogEntry { item_index: index, ..entry(11, id, LogResult::Completed, 10) };
    log.append(&[single(0, "c/draft"), single(1, "c/draft2")]).unwrap();
    log.append(&[batch(2, "b/2"), single(0, "c/0")]).unwrap();
    let committed = CommittedThrough { journal_seq: 11, ..Default::default() };
    let query = LogQuery { organization_id: "org".into(), to_ms: 100, per_page: 100, committed, ..Default::default() };
    let mut logged: Vec<(u64, u32, String)> = backend
        .item_log()
        .query(&query)
        .unwrap()
        .0
        .into_iter()
        .map(|e| (e.entry.journal_seq, e.entry.item_index, e.entry.document_id))
        .collect();
    logged.sort();
    let expected: Vec<(u64, u32, String)> = [
        (7, 0, "p"),
        (7, 1, "p/1"),
        (7, 2, "p/4"),
        (7, 3, "p/5"),
        (9, 0, "b/0"),
        (9, 1, "b/1"),
        (9, 2, "b/2"),
        (11, 0, "c/0"),
    ]
    .into_iter()
    .map(|(seq, index, id)| (seq, index, id.to_string()))
    .collect();
    assert_eq!(logged, expected);
}

fn the_item_log_shows_only_what_the_index_committed(backend: &dyn ItemLogBackend) {
    let log = backend.item_log();
    let batch_entry = |index| LogEntry { item_index: index, ..entry(5, "file://batch", LogResult::Completed, 10) };
    log.append(&[
        entry(1, "file://1", LogResult::Completed, 10),
        entry(2, "file://older-than", LogResult::Completed, 10),
        entry(3, "file://3", LogResult::Completed, 10),
        batch_entry(0),
        batch_entry(1),
        batch_entry(2),
    ])
    .unwrap();
    let seqs = |committed: CommittedThrough| -> Vec<(u64, u32)> {
        let query =
            LogQuery { organization_id: "org".into(), to_ms: 100, per_page: 100, committed, ..Default::default() };
        let mut seqs: Vec<_> =
            log.query(&query).unwrap().0.iter().map(|e| (e.entry.journal_seq, e.entry.item_index)).collect();
        seqs.sort();
        seqs
    };
    assert_eq!(seqs(CommittedThrough::default()), []);
    assert_eq!(seqs(CommittedThrough { journal_seq: 3, pending: vec![2], batch: None }), [(1, 0), (3, 0)]);
    assert_eq!(
        seqs(CommittedThrough { journal_seq: 4, pending: vec![], batch: Some((5, 2)) }),
        [(1, 0), (2, 0), (3, 0), (5, 0), (5, 1)]
    );
}

fn records(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range.map(|i| format!("record {i}").into_bytes()).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn journal_appends_are_read_back_in_order_after_reopen(backend: &dyn JournalBackend) {
    let runtime = runtime();
    {
        let journal = backend.journal();
        assert_eq!(runtime.block_on(journal.append(records(0..3))).unwrap(), 3);
        assert_eq!(runtime.block_on(journal.append(records(3..4))).unwrap(), 4);
    }
    let journal = backend.journal();
    assert_eq!(*journal.durable().borrow(), 4);
    let mut reader = journal.reader(1).unwrap();
    let batch = reader.next_batch(1 << 20).unwrap();
    assert_eq!(batch.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(batch[2].1, b"record 3");
    assert!(reader.next_batch(1 << 20).unwrap().is_empty());
    runtime.block_on(journal.append(records(4..5))).unwrap();
    assert_eq!(journal.wait_beyond(4, std::time::Duration::from_secs(5)), 5);
    assert_eq!(reader.next_batch(1 << 20).unwrap()[0].0, 5);

    // A read stops once its bytes are reached (records of 8 bytes here), so a full one says more may wait.
    let mut reader = journal.reader(0).unwrap();
    let seqs = |batch: Vec<(u64, Vec<u8>)>| batch.into_iter().map(|(seq, _)| seq).collect::<Vec<_>>();
    assert_eq!(seqs(reader.next_batch(17).unwrap()), [1, 2, 3]);
    assert_eq!(seqs(reader.next_batch(1).unwrap()), [4], "one record, larger than asked for");
    assert_eq!(seqs(reader.next_batch(16).unwrap()), [5]);
}

/// Appends `count` records at once, spread over `journals`; the sequence numbers they got, sorted.
fn append_concurrently(journals: &[Arc<dyn Journal>], count: usize) -> Vec<u64> {
    let mut seqs = runtime().block_on(async {
        let tasks: Vec<_> = (0..count)
            .map(|i| {
                let journal = journals[i % journals.len()].clone();
                tokio::spawn(async move { journal.append(vec![vec![i as u8; 100]]).await.unwrap() })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap());
        }
        seqs
    });
    seqs.sort();
    seqs
}

fn concurrent_appends_share_syncs_and_get_distinct_seqs(backend: &dyn JournalBackend) {
    let journal = backend.journal();
    let seqs = append_concurrently(std::slice::from_ref(&journal), 200);
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let syncs = journal.sync_count();
    assert!(syncs < 200, "200 concurrent appends took {syncs} syncs: no group commit");
}

fn providers_are_replaced_whole_and_matched_ignoring_case(backend: &dyn CatalogBackend) {
    let mut provider = SecurityProvider {
        id: "Corp Provider".into(),
        organization_id: "acme".into(),
        display_name: "Corp".into(),
        provider_type: "EXPANDED".into(),
        cascading: vec![intake_store::EMAIL_PROVIDER.into()],
        sources: vec!["acme-src".into()],
        created_at_ms: 1,
        updated_at_ms: 1,
    };
    {
        let catalog = backend.catalog();
        assert!(catalog.put_provider(&provider).unwrap(), "created");
        provider.sources.clear();
        assert!(!catalog.put_provider(&provider).unwrap(), "replaced");
    }
    let catalog = backend.catalog();
    assert_eq!(catalog.provider("acme", "corp provider").unwrap(), Some(provider.clone()));
    assert!(catalog.provider("other", "Corp Provider").unwrap().is_none(), "found only in its organization");
    let ids: Vec<String> = catalog.providers("acme").unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["Corp Provider", intake_store::EMAIL_PROVIDER], "the e-mail provider is always there");
    assert!(catalog.delete_provider("acme", "CORP PROVIDER").unwrap());
    assert!(!catalog.delete_provider("acme", "Corp Provider").unwrap());
}

fn identities_are_upserted_by_provider_name_and_type(backend: &dyn CatalogBackend) {
    let user = |name: &str| SecurityIdentity { name: name.into(), kind: IdentityType::User, additional_info: vec![] };
    let group = |name: &str, members: Vec<SecurityIdentity>, ordering_id| StoredIdentity {
        organization_id: "acme".into(),
        provider_id: "P".into(),
        name: name.into(),
        kind: IdentityType::Group,
        additional_info: vec![("dn".into(), "cn=x".into())],
        members,
        well_knowns: vec![],
        aliases: vec![],
        enabled: true,
        ordering_id,
        updated_at_ms: ordering_id,
    };
    {
        let store = backend.identities();
        store.write(&[group("Team", vec![user("alice")], 1), group("Other", vec![], 1)]).unwrap();
        store.write(&[group("team", vec![user("bob")], 2)]).unwrap();
        let mut as_user = group("team", vec![], 3);
        as_user.kind = IdentityType::User;
        store.write(&[as_user]).unwrap();
    }
    let store = backend.identities();
    let mut all = store.load("acme").unwrap();
    all.sort_by_key(|i| (i.name.to_lowercase(), i.kind.as_str()));
    let summary: Vec<(String, &str, i64)> =
        all.iter().map(|i| (i.name.clone(), i.kind.as_str(), i.ordering_id)).collect();
    assert_eq!(summary, [("Other".into(), "Group", 1), ("team".into(), "Group", 2), ("team".into(), "User", 3)]);
    assert_eq!(all[1].members, vec![user("bob")], "the newer write replaced the members");
    assert!(store.load("other").unwrap().is_empty());
    store.delete_provider("acme", "p").unwrap();
    assert!(store.load("acme").unwrap().is_empty());
}

fn streams_take_chunks_until_closed_once_and_expire_when_open(backend: &dyn CatalogBackend) {
    let stream = |id: &str, expires_at_ms| CatalogStream {
        stream_id: id.into(),
        organization_id: "o".into(),
        source_id: "s".into(),
        opened_at_ms: 0,
        expires_at_ms,
        closed_at_ms: None,
        chunks: vec![format!("{id}-0")],
    };
    {
        let catalog = backend.catalog();
        catalog.create_stream(&stream("a", 100)).unwrap();
        catalog.create_stream(&stream("b", 10)).unwrap();
        assert!(catalog.add_chunk("a", "a-1").unwrap());
        assert!(catalog.add_chunk("a", "a-2").unwrap());
        assert_eq!(catalog.last_load_ms("o", "s").unwrap(), None);
    }
    let catalog = backend.catalog();
    let a = catalog.stream("o", "a").unwrap().unwrap();
    assert_eq!(a.chunks, ["a-0", "a-1", "a-2"], "chunks in upload order");
    assert!(catalog.stream("other", "a").unwrap().is_none(), "a stream is found only in its organization");
    assert!(catalog.close_stream("a", 50).unwrap());
    assert!(!catalog.close_stream("a", 51).unwrap(), "closed once");
    assert!(!catalog.add_chunk("a", "a-3").unwrap(), "no chunk after close");
    assert_eq!(catalog.stream("o", "a").unwrap().unwrap().closed_at_ms, Some(50));
    assert_eq!(catalog.last_load_ms("o", "s").unwrap(), Some(50));
    let expired: Vec<String> = catalog.expired_streams(200).unwrap().into_iter().map(|s| s.stream_id).collect();
    assert_eq!(expired, ["b"], "only open streams expire");
    catalog.reopen_stream("a").unwrap();
    assert_eq!(catalog.last_load_ms("o", "s").unwrap(), None);
    catalog.forget_stream("b").unwrap();
    assert!(backend.catalog().stream("o", "b").unwrap().is_none());
}
