//! Three `intake serve` processes on one PostgreSQL database and one S3 bucket (the test servers of
//! scripts/test-servers): the owner of the index is killed with SIGKILL while pushes go on, and another node takes
//! its lease over, restores its latest snapshot and replays the journal after it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_owner_killed_during_pushes_is_replaced_and_nothing_acknowledged_is_lost() {
    let database = intake_store::testing::scratch_database();
    let blobs = intake_store::testing::scratch_blobs();
    let blobs_url = format!(
        "s3://{}/{}?endpoint={}&region={}",
        blobs.bucket,
        blobs.prefix,
        blobs.endpoint.as_deref().unwrap(),
        blobs.region
    );
    let (key_id, secret) = blobs.credentials.clone().unwrap();
    let env = [("AWS_ACCESS_KEY_ID", key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", secret.as_str())];
    let flags = ["--database", &database, "--blobs", &blobs_url, "--snapshot-interval-seconds", "1"];
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Server> = Vec::new();
    for dir in &dirs {
        let node = Server::start_with_env(dir.path(), &flags, &env);
        node.wait_ready().await;
        nodes.push(node);
    }
    let bases: Vec<String> = nodes.iter().map(|node| node.base.clone()).collect();
    let owner = owner_of(&bases).await.expect("a node takes the lease");

    // Pushes to every node; those the killed node never answered are not acknowledged.
    let mut acknowledged = Vec::new();
    for i in 0..300 {
        let id = format!("file://before/{i}");
        if nodes[i % 3].put_item(&id, &json!({"title": "before", "data": "text"})).await == Some(202) {
            acknowledged.push(id);
        }
    }
    let survivors: Vec<usize> = (0..3).filter(|&i| i != owner).collect();
    // What the owner shows just before it dies: no node may answer with less afterwards (503 until it can).
    let seen = searchable(&nodes[owner]).await.expect("the owner answers");
    let killed_at = Instant::now();
    nodes[owner].kill();
    for i in 0..100 {
        let id = format!("file://after/{i}");
        let node = &nodes[survivors[i % 2]];
        assert_eq!(node.put_item(&id, &json!({"title": "after", "data": "text"})).await, Some(202));
        acknowledged.push(id);
    }

    let expected: HashMap<String, usize> = acknowledged.iter().map(|id| (id.clone(), 1)).collect();
    let deadline = killed_at + Duration::from_secs(60);
    let mut taken_over = None;
    for &survivor in &survivors {
        loop {
            let found = searchable(&nodes[survivor]).await;
            if let Some(found) = &found {
                let lost: Vec<&String> = seen.keys().filter(|id| !found.contains_key(*id)).collect();
                assert!(lost.is_empty(), "node {survivor} answered without items searchable before the kill: {lost:?}");
            }
            if found.as_ref() == Some(&expected) {
                taken_over.get_or_insert(killed_at.elapsed());
                break;
            }
            assert!(Instant::now() < deadline, "node {survivor} did not find every acknowledged item once: {found:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let taken_over = taken_over.unwrap();
    eprintln!("index searchable again on another node {} ms after the owner's SIGKILL", taken_over.as_millis());
    let survivors: Vec<String> = survivors.iter().map(|&i| bases[i].clone()).collect();
    assert!(owner_of(&survivors).await.is_some(), "a surviving node holds the lease");
}

/// Which node holds the index lease of `default`, from `/ready` (waiting for one to).
async fn owner_of(bases: &[String]) -> Option<usize> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        for (i, base) in bases.iter().enumerate() {
            let ready: serde_json::Value =
                client.get(format!("{base}/ready")).send().await.unwrap().json().await.unwrap();
            if ready["cluster"]["leases"].as_array().is_some_and(|leases| leases.contains(&json!("default"))) {
                return Some(i);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Every URI the node finds, with how many times; `None` while it cannot search (503 during the take-over).
async fn searchable(node: &Server) -> Option<HashMap<String, usize>> {
    let search = node
        .client
        .post(format!("{}/rest/search/v2?organizationId=default", node.base))
        .bearer_auth(KEY)
        .json(&json!({"aq": "@uri", "numberOfResults": 1000}));
    let response = search.send().await.ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    let mut found = HashMap::new();
    for result in body["results"].as_array()? {
        *found.entry(result["uri"].as_str()?.to_string()).or_insert(0) += 1;
    }
    Some(found)
}
