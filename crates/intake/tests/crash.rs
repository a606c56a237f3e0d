//! The durability promise, tested on the real binary: several clients push concurrently, the server is killed
//! with SIGKILL at a random moment, restarted, and every item that got a 202 must be searchable exactly once,
//! and nothing that was never sent may appear. Several rounds on the same data folder.

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

async fn wait_ready(client: &reqwest::Client, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.get(format!("{}/ready", server.base)).send().await;
        if response.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn source_id(data_dir: &Path) -> String {
    let bootstrap: Value =
        serde_json::from_str(&std::fs::read_to_string(data_dir.join("bootstrap.json")).unwrap()).unwrap();
    bootstrap["sourceId"].as_str().unwrap().to_string()
}

/// Every URI in the index with how many times it appears.
async fn indexed(client: &reqwest::Client, server: &Server) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut first = 0;
    loop {
        let page: Value = client
            .post(format!("{}/rest/search/v2?organizationId=default", server.base))
            .bearer_auth(KEY)
            .json(&json!({"numberOfResults": 1000, "firstResult": first}))
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
    let counts = indexed(&client, &server).await;
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
