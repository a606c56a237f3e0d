//! The durability promise, tested on the real binary: several clients push concurrently, the server is killed
//! with SIGKILL at a random moment, restarted, and every item that got a 202 must be searchable exactly once,
//! and nothing that was never sent may appear. Several rounds on the same data folder. Then the same promise
//! for a large batch: killed right after its 202 and again each time part of it became searchable, it ends
//! applied exactly once, each item logged exactly once, and its container gone.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{KEY, Server};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const ROUNDS: usize = 4;

fn start(data_dir: &Path) -> Server {
    Server::start(data_dir, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_item_survives_sigkill_exactly_once() {
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("crash test seed {seed} (set CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let sent: Arc<Mutex<BTreeSet<String>>> = Arc::default();

    for round in 0..ROUNDS {
        let mut server = start(dir.path());
        server.wait_ready().await;
        let url = server.documents_url();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, url, acked, sent) = (client.clone(), url.clone(), acked.clone(), sent.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        let id = format!("file://crash/r{round}/c{c}/{i}");
                        sent.lock().unwrap().insert(id.clone());
                        // A kilobyte of padding: the journal fills a megabyte within a round, so it goes on over
                        // spare segments (files written over, not appended to) before the kill.
                        let padding = "lorem ipsum ".repeat(90);
                        let data = format!("<p>round {round} client {c} item {i}</p><p>{padding}</p>");
                        let body = json!({"data": data, "title": id});
                        let response =
                            client.put(&url).query(&[("documentId", &id)]).bearer_auth(KEY).json(&body).send().await;
                        match response {
                            Ok(r) if r.status() == 202 => {
                                acked.lock().unwrap().insert(id);
                            }
                            Ok(r) => panic!("unexpected status {} for {id}", r.status()),
                            Err(_) => return, // the server died mid-request
                        }
                    }
                })
            })
            .collect();
        let kill_after = Duration::from_millis(rng.random_range(300..1500));
        tokio::time::sleep(kill_after).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for task in clients {
            task.await.unwrap();
        }
        println!("round {round}: killed after {kill_after:?}; {} acknowledged so far", acked.lock().unwrap().len());
    }

    let mut server = start(dir.path());
    server.wait_ready().await;
    let counts = server.indexed("").await;
    server.kill();

    let acked = acked.lock().unwrap();
    let sent = sent.lock().unwrap();
    assert!(acked.len() > 100, "too few items were pushed to test anything ({})", acked.len());
    let missing: Vec<_> = acked.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged items were lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "items indexed more than once: {duplicated:?}");
    let unknown: Vec<_> = counts.keys().filter(|id| !sent.contains(*id)).collect();
    assert!(unknown.is_empty(), "items that were never sent: {unknown:?}");
    println!("{} acknowledged, {} indexed, {} sent", acked.len(), counts.len(), sent.len());
}

/// Enough for several commits while the batch is applied (one a second).
const BATCH_ITEMS: usize = 200_000;
const DELETED_BY_BATCH: usize = 50;
/// Batch items are spread over buckets (a metadata field) so each can be read back through search.
const BUCKETS: usize = 4;

/// A batch adding `BATCH_ITEMS` pages and deleting the `DELETED_BY_BATCH` items pushed before it.
fn batch_file() -> Vec<u8> {
    let add: Vec<Value> = (0..BATCH_ITEMS)
        .map(|i| {
            json!({
                "documentId": format!("file://batch/{i}"),
                "data": format!("<html><title>Batch page {i}</title><body><p>Entry {i} of the crash batch.</p></body></html>"),
                "fileExtension": ".html",
                "bucket": (i % BUCKETS).to_string(),
            })
        })
        .collect();
    let delete: Vec<Value> =
        (0..DELETED_BY_BATCH).map(|i| json!({"documentId": format!("file://before/{i}")})).collect();
    serde_json::to_vec(&json!({"addOrUpdate": add, "delete": delete})).unwrap()
}

/// SIGTERM in the middle of a batch: the server stops at once (it does not finish the batch first),
/// and what it applied is committed: the next start shows at least `seen` items at once.
async fn stop_gracefully(mut server: Server, data_dir: &Path, seen: u64) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the server inside a batch within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "the server exited with {status} after SIGTERM");
    let server = start(data_dir);
    let mut first = 0;
    while first == 0 {
        first = server.total().await; // 0 until it listens
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(first >= seen, "a graceful stop lost committed progress: {first} < {seen}");
    assert!(first < BATCH_ITEMS as u64, "the server finished the whole batch before stopping");
}

fn container_files(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir.join("containers"))
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_applied_exactly_once_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    server.wait_ready().await;
    for i in 0..DELETED_BY_BATCH {
        assert_eq!(server.put_item(&format!("file://before/{i}"), &json!({"data": "x"})).await, Some(202));
    }
    while server.total().await < DELETED_BY_BATCH as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file_id = server.upload(batch_file()).await.unwrap();
    assert_eq!(server.push_batch(&file_id).await, 202);
    server.kill(); // right after the 202: journaled, not applied

    // Each time part of the batch becomes searchable, kill again: the next start must resume after it. The
    // server is ready once the whole batch is applied.
    let mut seen = DELETED_BY_BATCH as u64;
    let mut killed_inside = 0;
    for round in 0.. {
        let server = start(dir.path());
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if server.is_ready().await {
                break;
            }
            let count = server.total().await;
            if count > seen {
                seen = count;
                killed_inside += 1;
                break;
            }
            assert!(Instant::now() < deadline, "the batch made no progress in round {round}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if round == 1 {
            stop_gracefully(server, dir.path(), seen).await;
        } else {
            drop(server); // SIGKILL
        }
        println!("round {round}: stopped with {seen} of {} items searchable", BATCH_ITEMS + DELETED_BY_BATCH);
        if seen >= BATCH_ITEMS as u64 || round == 8 {
            break;
        }
    }
    assert!(killed_inside >= 2, "the batch was applied too fast to be interrupted ({killed_inside} kills inside)");

    let mut server = start(dir.path());
    server.wait_ready().await; // ready once the journal backlog, the batch included, is applied
    let mut counts = HashMap::new();
    for bucket in 0..BUCKETS {
        counts.extend(server.indexed(&format!("@bucket=={bucket}")).await);
    }
    assert_eq!(server.total().await, BATCH_ITEMS as u64, "the batch's deletes leave only its own items");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !container_files(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the batch container was never deleted: {:?}", container_files(dir.path()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = server.logged().await;
    server.kill();

    let missing: Vec<_> =
        (0..BATCH_ITEMS).map(|i| format!("file://batch/{i}")).filter(|id| !counts.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} batch items are missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "items indexed more than once: {:?}", &duplicated[..duplicated.len().min(5)]);

    let once = |id: String, operation: &str| logs.get(&(id, operation.to_string(), "COMPLETED".to_string())).copied();
    let wrong_adds: Vec<_> =
        (0..BATCH_ITEMS).map(|i| format!("file://batch/{i}")).filter(|id| once(id.clone(), "ADD") != Some(1)).collect();
    assert!(
        wrong_adds.is_empty(),
        "{} batch items not logged exactly once, e.g. {:?}",
        wrong_adds.len(),
        &wrong_adds[..wrong_adds.len().min(5)]
    );
    for i in 0..DELETED_BY_BATCH {
        assert_eq!(once(format!("file://before/{i}"), "DELETE"), Some(1), "the delete of file://before/{i}");
    }
    let unexpected: Vec<_> = logs
        .iter()
        .filter(|((id, operation, result), _)| {
            !(result == "COMPLETED"
                && (id.starts_with("file://batch/") && operation == "ADD" || id.starts_with("file://before/")))
        })
        .collect();
    assert!(unexpected.is_empty(), "unexpected log entries: {unexpected:?}");
}

/// Items of the full load in the stream crash test, in chunks.
const LOAD_ITEMS: usize = 40_000;
const LOAD_CHUNKS: usize = 4;

fn catalog_item(i: usize) -> Value {
    json!({"documentId": format!("product://{i}"), "data": format!("<p>Product {i} of the catalog</p>"), "price": 1})
}

/// A stream call of the catalog source: its JSON answer (status checked).
async fn stream_call(server: &Server, source: &str, rest: &str, status: u16) -> Value {
    let url = format!("{}/push/v1/organizations/default/sources/{source}/stream{rest}", server.base);
    let response = server.client.post(url).bearer_auth(KEY).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), status, "{rest}");
    response.json().await.unwrap()
}

/// A full load of `items`, in `LOAD_CHUNKS` chunks.
async fn full_load(server: &Server, source: &str, items: &[Value]) {
    let stream_id = stream_call(server, source, "/open", 201).await["streamId"].as_str().unwrap().to_string();
    for chunk in items.chunks(items.len().div_ceil(LOAD_CHUNKS)) {
        let created = stream_call(server, source, &format!("/{stream_id}/chunk"), 200).await;
        let uploaded = server
            .client
            .put(created["uploadUri"].as_str().unwrap())
            .header("content-type", "application/octet-stream")
            .header("x-amz-server-side-encryption", "AES256")
            .body(serde_json::to_vec(&json!({"addOrUpdate": chunk})).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), 200);
    }
    stream_call(server, source, &format!("/{stream_id}/close"), 200).await;
}

/// Starts the server again and again, killing it at a random moment each time, until `done` holds once it is
/// ready; `allowed` checks what search shows at every moment in between.
async fn kill_until_applied<D, A>(dir: &Path, rng: &mut rand::rngs::StdRng, done: D, allowed: A)
where
    D: AsyncFn(&Server) -> bool,
    A: AsyncFn(&Server) -> Result<(), String>,
{
    for round in 0..6 {
        let server = start(dir);
        server.wait_listening().await;
        let kill_at = Instant::now() + Duration::from_millis(rng.random_range(100..1500));
        while Instant::now() < kill_at && !server.is_ready().await {
            allowed(&server).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        allowed(&server).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        let ready = server.is_ready().await && done(&server).await;
        drop(server); // SIGKILL
        println!("round {round}: killed (applied: {ready})");
        if ready {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_load_and_an_update_are_applied_once_across_sigkills() {
    let seed: u64 = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("stream crash test seed {seed} (set CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    server.wait_ready().await;
    let created = server
        .post_json(
            "/rest/organizations/default/sources",
            json!({"name": "catalog", "sourceType": "CATALOG", "sourceVisibility": "SHARED"}),
        )
        .await;
    let source = created["id"].as_str().unwrap().to_string();
    let old: Vec<Value> = (0..100).map(|i| catalog_item(LOAD_ITEMS + i)).collect();
    full_load(&server, &source, &old).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.total().await < 100 {
        assert!(Instant::now() < deadline, "the first load was not applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let items: Vec<Value> = (0..LOAD_ITEMS).map(catalog_item).collect();
    full_load(&server, &source, &items).await;
    server.kill(); // right after the close: journaled, not applied

    // The old catalog or the new one, whole, at every moment; never both, never half.
    let whole = async |server: &Server| match server.total().await {
        0 | 100 => Ok(()),
        n if n == LOAD_ITEMS as u64 => Ok(()),
        n => Err(format!("{n} items searchable: a partial load")),
    };
    let loaded = async |server: &Server| server.total().await == LOAD_ITEMS as u64;
    kill_until_applied(dir.path(), &mut rng, loaded, whole).await;

    // An update of every item's price, killed right after its 202 and then at random moments.
    let mut server = start(dir.path());
    server.wait_ready().await;
    let update: Vec<Value> = (0..LOAD_ITEMS)
        .map(|i| json!({"documentId": format!("product://{i}"), "operator": "fieldValueReplace", "field": "price", "value": 7}))
        .collect();
    let file_id = server.upload(serde_json::to_vec(&json!({"partialUpdate": update})).unwrap()).await.unwrap();
    let url = format!("{}/push/v1/organizations/default/sources/{source}/stream/update", server.base);
    let accepted = server.client.put(url).query(&[("fileId", &file_id)]).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    server.kill();
    let updated = async |server: &Server| {
        let found = server
            .post_json("/rest/search/v2?organizationId=default", json!({"aq": "@price==7", "numberOfResults": 0}))
            .await;
        found["totalCount"].as_u64() == Some(LOAD_ITEMS as u64)
    };
    let still_whole = async |server: &Server| match server.total().await {
        0 => Ok(()),
        n if n == LOAD_ITEMS as u64 => Ok(()),
        n => Err(format!("{n} items searchable during the update")),
    };
    kill_until_applied(dir.path(), &mut rng, updated, still_whole).await;

    let mut server = start(dir.path());
    server.wait_ready().await;
    assert!(updated(&server).await, "every item has the updated price");
    let counts = server.indexed("@source==catalog").await;
    let logs = server.logged().await;
    server.kill();
    assert_eq!(counts.len(), LOAD_ITEMS);
    assert!(counts.values().all(|n| *n == 1), "an item is indexed twice");
    for i in (0..LOAD_ITEMS).step_by(97) {
        let id = format!("product://{i}");
        let count = |operation: &str| logs.get(&(id.clone(), operation.to_string(), "COMPLETED".to_string())).copied();
        assert_eq!((count("ADD"), count("UPDATE")), (Some(1), Some(1)), "{id} is logged once per operation: {logs:?}");
    }
    let deleted =
        logs.iter().filter(|((_, operation, _), _)| operation == "DELETE_OLDER_THAN").map(|(_, n)| n).sum::<usize>();
    assert_eq!(deleted, 100, "the old catalog's items are deleted once each");
}
