//! The durability promise, tested on the real binary: several clients push concurrently, the server is killed
//! with SIGKILL at a random moment, restarted, and every item that got a 202 must be searchable exactly once,
//! and nothing that was never sent may appear. Several rounds on the same data folder. Then the same promise
//! for a large batch: killed right after its 202 and again each time part of it became searchable, it ends
//! applied exactly once, each item logged exactly once, and its container gone.

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const KEY: &str = "crash-test-key";
const CLIENTS: usize = 8;
const ROUNDS: usize = 4;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    /// A failing test must not leave a server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(data_dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--master-key", KEY, "--commit-interval-ms", "100"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("INTAKE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

async fn is_ready(client: &reqwest::Client, server: &Server) -> bool {
    let response = client.get(format!("{}/ready", server.base)).send().await;
    response.is_ok_and(|r| r.status() == 200)
}

async fn wait_ready(client: &reqwest::Client, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !is_ready(client, server).await {
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn source_id(data_dir: &Path) -> String {
    let bootstrap: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("bootstrap.json")).unwrap()).unwrap();
    bootstrap["sourceId"].as_str().unwrap().to_string()
}

/// How many items the organization's index holds (0 while the server is not listening yet).
async fn total(client: &reqwest::Client, server: &Server) -> u64 {
    let search = client
        .post(format!("{}/rest/search/v2?organizationId=default", server.base))
        .bearer_auth(KEY)
        .json(&json!({"numberOfResults": 0}));
    match search.send().await {
        Ok(response) => response.json::<Value>().await.unwrap()["totalCount"].as_u64().unwrap(),
        Err(_) => 0,
    }
}

/// Every URI matching `aq` with how many times it appears (at most 100,000: search pages no deeper).
async fn indexed(client: &reqwest::Client, server: &Server, aq: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut first = 0;
    loop {
        let page: Value = client
            .post(format!("{}/rest/search/v2?organizationId=default", server.base))
            .bearer_auth(KEY)
            .json(&json!({"aq": aq, "numberOfResults": 1000, "firstResult": first}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let results = page["results"].as_array().unwrap();
        for result in results {
            *counts.entry(result["uri"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
        first += results.len();
        if results.is_empty() || first >= page["totalCount"].as_u64().unwrap() as usize {
            return counts;
        }
    }
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
        wait_ready(&client, &server).await;
        let url = format!("{}/push/v1/organizations/default/sources/{}/documents", server.base, source_id(dir.path()));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (client, url, acked, sent) = (client.clone(), url.clone(), acked.clone(), sent.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        let id = format!("file://crash/r{round}/c{c}/{i}");
                        sent.lock().unwrap().insert(id.clone());
                        let body = json!({"data": format!("<p>round {round} client {c} item {i}</p>"), "title": id});
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
    wait_ready(&client, &server).await;
    let counts = indexed(&client, &server, "").await;
    server.child.kill().unwrap();
    let _ = server.child.wait();

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

/// Creates a container, uploads `bytes` to it and pushes it as a batch.
async fn push_batch(client: &reqwest::Client, server: &Server, source_url: &str, bytes: Vec<u8>) {
    let container: Value = client
        .post(format!("{}/push/v1/organizations/default/files", server.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uploaded = client
        .put(container["uploadUri"].as_str().unwrap())
        .header("content-type", "application/octet-stream")
        .header("x-amz-server-side-encryption", "AES256")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let accepted = client
        .put(format!("{source_url}/batch"))
        .query(&[("fileId", container["fileId"].as_str().unwrap())])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202, "{}", accepted.text().await.unwrap());
}

/// How many times each (documentId, operation, result) was logged.
async fn logged(client: &reqwest::Client, server: &Server) -> HashMap<(String, String, String), usize> {
    let mut counts = HashMap::new();
    for page in 0.. {
        let body: Value = client
            .post(format!("{}/logs/v1/organizations/default", server.base))
            .query(&[("perPage", "1000"), ("page", &page.to_string())])
            .bearer_auth(KEY)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for entry in body["documentLogEntries"].as_array().unwrap() {
            let key = ["id", "operation", "result"].map(|k| entry[k].as_str().unwrap().to_string());
            *counts.entry(key.into()).or_insert(0) += 1;
        }
        if !body["hasNextPage"].as_bool().unwrap() {
            break;
        }
    }
    counts
}

/// SIGTERM in the middle of a batch: the server stops at once (it does not finish the batch first),
/// and what it applied is committed: the next start shows at least `seen` items at once.
async fn stop_gracefully(mut server: Server, client: &reqwest::Client, data_dir: &Path, seen: u64) {
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
        first = total(client, &server).await; // 0 until it listens
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
    let client = reqwest::Client::new();
    let mut server = start(dir.path());
    wait_ready(&client, &server).await;
    let source_url =
        format!("{}/push/v1/organizations/default/sources/{}/documents", server.base, source_id(dir.path()));
    for i in 0..DELETED_BY_BATCH {
        let id = format!("file://before/{i}");
        let put = client.put(&source_url).query(&[("documentId", &id)]).bearer_auth(KEY).json(&json!({"data": "x"}));
        assert_eq!(put.send().await.unwrap().status(), 202);
    }
    while total(&client, &server).await < DELETED_BY_BATCH as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    push_batch(&client, &server, &source_url, batch_file()).await;
    server.child.kill().unwrap(); // right after the 202: journaled, not applied
    server.child.wait().unwrap();

    // Each time part of the batch becomes searchable, kill again: the next start must resume after it. The
    // server is ready once the whole batch is applied.
    let mut seen = DELETED_BY_BATCH as u64;
    let mut killed_inside = 0;
    for round in 0.. {
        let server = start(dir.path());
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if is_ready(&client, &server).await {
                break;
            }
            let count = total(&client, &server).await;
            if count > seen {
                seen = count;
                killed_inside += 1;
                break;
            }
            assert!(Instant::now() < deadline, "the batch made no progress in round {round}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if round == 1 {
            stop_gracefully(server, &client, dir.path(), seen).await;
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
    wait_ready(&client, &server).await; // ready once the journal backlog, the batch included, is applied
    let mut counts = HashMap::new();
    for bucket in 0..BUCKETS {
        counts.extend(indexed(&client, &server, &format!("@bucket=={bucket}")).await);
    }
    assert_eq!(total(&client, &server).await, BATCH_ITEMS as u64, "the batch's deletes leave only its own items");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !container_files(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the batch container was never deleted: {:?}", container_files(dir.path()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = logged(&client, &server).await;
    server.child.kill().unwrap();
    let _ = server.child.wait();

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
