//! The shared backends under failure: always on PostgreSQL or S3 (private servers, stopped and started by the
//! test), whatever INTAKE_TEST_BACKEND says.

use intake_store::testing::{PrivateCluster, PrivateS3};
use serde_json::json;

use crate::common::*;

/// PostgreSQL stopped during pushes: each push is refused with 503 and Retry-After (nothing half-stored), reads
/// served from memory keep working, and once PostgreSQL is back the node resumes by itself; every acknowledged
/// item is searchable, none twice.
#[tokio::test]
async fn pushes_are_refused_while_postgres_is_down_and_resume_by_themselves() {
    let cluster = PrivateCluster::start();
    let database = intake_store::postgres::scratch_database(&cluster.url()).unwrap();
    let s = TestServer::start_with(|config| {
        config.database = Some(database);
        config.blobs = None;
    })
    .await;
    let mut acknowledged = Vec::new();
    for i in 0..10 {
        let id = format!("file://before/{i}");
        let response = s.put_item(&id, &json!({"title": "before", "data": "text"}), "").await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        acknowledged.push(id);
    }
    s.settle().await;
    let ready: serde_json::Value = s.client.get(s.url("/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["storage"], json!({"database": "postgresql", "blobs": "local"}), "{ready}");

    cluster.stop();
    for i in 0..3 {
        let refused = s.put_item(&format!("file://during/{i}"), &json!({"title": "during", "data": "text"}), "").await;
        assert!(refused.headers().get("retry-after").is_some(), "a Retry-After header");
        assert_error(refused, 503, "SERVICE_UNAVAILABLE", &["not accepted", "unavailable"]).await;
    }
    let health = s.client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "the process stays up");

    cluster.resume();
    let mut resumed = false;
    for attempt in 0..100 {
        let id = format!("file://after/{attempt}");
        if s.put_item(&id, &json!({"title": "after", "data": "text"}), "").await.status() == 202 {
            acknowledged.push(id);
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resumed, "pushes are accepted again within 10 s of PostgreSQL's return");
    for i in 0..5 {
        let id = format!("file://later/{i}");
        assert_eq!(s.put_item(&id, &json!({"title": "later", "data": "text"}), "").await.status(), 202);
        acknowledged.push(id);
    }
    s.settle().await;
    acknowledged.sort();
    assert_eq!(s.uris("@uri").await, acknowledged, "every acknowledged item, once; none refused");
}

/// S3 stopped: uploads and batches are refused with 503 and Retry-After (not as a fault of the file), single
/// pushes and searches go on, and batches accepted just before are applied once S3 is back — none logged as
/// failed, every acknowledged item searchable once.
#[tokio::test]
async fn batches_wait_for_s3_and_nothing_accepted_is_lost() {
    let s3 = PrivateS3::start();
    let s = TestServer::start_with(|config| config.blobs = Some(s3.location())).await;
    let batch = |name: &str| {
        let items: Vec<_> =
            (0..3).map(|i| json!({"documentId": format!("file://{name}/{i}"), "data": "batched"})).collect();
        json!({"addOrUpdate": items}).to_string().into_bytes()
    };
    let push_batch = |file_id: String| {
        let url = format!("{}?fileId={file_id}", s.source_url("/documents/batch"));
        s.request(reqwest::Method::PUT, &url).send()
    };
    let mut acknowledged = Vec::new();
    let mut held_back = Vec::new();
    for name in ["just-before-a", "just-before-b", "just-before-c", "held-back"] {
        let file_id = s.uploaded(batch(name)).await;
        if name == "held-back" {
            held_back.push(file_id);
            continue;
        }
        assert_eq!(push_batch(file_id).await.unwrap().status(), 202);
        acknowledged.extend((0..3).map(|i| format!("file://{name}/{i}")));
    }
    s3.stop(); // right after the 202s: the applier may not have read those batches yet

    let (upload_uri, _) = s.container().await;
    let refused = s.upload(&upload_uri, batch("during")).await;
    assert!(refused.headers().get("retry-after").is_some(), "a Retry-After header");
    assert_error(refused, 503, "SERVICE_UNAVAILABLE", &["The upload could not be stored"]).await;
    let refused = push_batch(held_back[0].clone()).await.unwrap();
    assert!(refused.headers().get("retry-after").is_some(), "a Retry-After header");
    assert_error(refused, 503, "SERVICE_UNAVAILABLE", &["file container could not be read", "unavailable"]).await;
    assert_eq!(s.put_item("file://single", &json!({"data": "pushed alone"}), "").await.status(), 202);
    acknowledged.push("file://single".to_string());

    s3.resume();
    let mut accepted = None;
    for _ in 0..100 {
        let response = push_batch(held_back[0].clone()).await.unwrap();
        if response.status() != 503 {
            accepted = Some(response.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        accepted,
        Some(reqwest::StatusCode::ACCEPTED),
        "the batch refused during the outage is accepted after it"
    );
    acknowledged.extend((0..3).map(|i| format!("file://held-back/{i}")));
    s.settle().await;
    acknowledged.sort();
    assert_eq!(s.uris("@uri").await, acknowledged, "every acknowledged item, once");
    let failed = s.logs(None, json!({"results": ["ERROR"]})).await;
    assert!(failed.is_empty(), "nothing logged as failed: {failed:?}");
}

/// With `--blobs s3://…?presigned=true`, `POST /files` hands out a presigned S3 PUT URL: a batch uploaded to it with
/// curl goes straight to the bucket and is then applied; a URL whose signature was tampered with is refused by S3;
/// `useVirtualHostedStyleUrl=true` gives a virtual-hosted URL (the bucket in the host, not the path).
#[tokio::test]
async fn presigned_uploads_go_straight_to_s3_and_a_tampered_signature_is_refused() {
    let mut blobs = intake_store::testing::scratch_blobs();
    blobs.presigned_uploads = true;
    let endpoint = blobs.endpoint.clone().unwrap();
    let s = TestServer::start_with(|config| config.blobs = Some(blobs)).await;
    let (upload_uri, file_id) = s.container().await;
    assert!(upload_uri.starts_with(&format!("{endpoint}/intake-test/")), "{upload_uri}");
    assert!(upload_uri.contains("X-Amz-Signature="), "a SigV4 presigned URL: {upload_uri}");

    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.json");
    let items: Vec<_> =
        (0..3).map(|i| json!({"documentId": format!("file://presigned/{i}"), "data": "uploaded to S3"})).collect();
    std::fs::write(&batch, json!({"addOrUpdate": items}).to_string()).unwrap();
    let curl = |url: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/stderr", "-w", "%{http_code}", "-X", "PUT", "--upload-file"])
            .arg(&batch)
            .args(["-H", "x-amz-server-side-encryption: AES256", "-H", "Content-Type: application/octet-stream", url])
            .output()
            .unwrap();
        (String::from_utf8_lossy(&output.stdout).to_string(), String::from_utf8_lossy(&output.stderr).to_string())
    };
    let signature_at = upload_uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = upload_uri.clone();
    let flipped = if &tampered[signature_at..signature_at + 1] == "0" { "1" } else { "0" };
    tampered.replace_range(signature_at..signature_at + 1, flipped);
    let (status, body) = curl(&tampered);
    assert_eq!(status, "403", "a tampered signature is refused by S3: {body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");

    let (status, body) = curl(&upload_uri);
    assert_eq!(status, "200", "{body}");
    let url = format!("{}?fileId={file_id}", s.source_url("/documents/batch"));
    let pushed = s.request(reqwest::Method::PUT, &url).send().await.unwrap();
    assert_eq!(pushed.status(), 202, "{}", pushed.text().await.unwrap());
    s.settle().await;
    assert_eq!(s.uris("@uri").await, ["file://presigned/0", "file://presigned/1", "file://presigned/2"]);

    let url = s.url(&format!("/push/v1/organizations/{}/files?useVirtualHostedStyleUrl=true", s.org));
    let created: serde_json::Value =
        s.request(reqwest::Method::POST, &url).json(&json!({})).send().await.unwrap().json().await.unwrap();
    // With an endpoint of its own, a virtual-hosted URL takes the endpoint as the bucket's host (on AWS it is
    // bucket.s3.region.amazonaws.com): the bucket is no longer in the path.
    let virtual_hosted = created["uploadUri"].as_str().unwrap();
    assert!(virtual_hosted.starts_with(&endpoint) && !virtual_hosted.contains("/intake-test/"), "{created}");
}

/// Three nodes on one database and one bucket: pushes spread over the nodes are searchable from every node (a
/// search reaching a node that does not own the index is sent on to the owner, and so are the logs API's calls);
/// exactly one node owns the index. When the owner stops, another takes the lease over, restores the snapshot
/// and replays the journal after it: every acknowledged item searchable from every node, none twice.
#[tokio::test]
async fn three_nodes_share_pushes_and_searches_and_hand_an_index_over() {
    let (database, blobs) = (intake_store::testing::scratch_database(), intake_store::testing::scratch_blobs());
    let node = || {
        cluster_node(&database, &blobs, |config| {
            config.snapshot_interval = std::time::Duration::ZERO; // every commit is snapshotted
            config.leases = intake_store::LeaseTimes {
                ttl: std::time::Duration::from_secs(2),
                renew: std::time::Duration::from_millis(300),
            };
        })
    };
    let mut nodes = vec![node().await, node().await, node().await];
    let mut acknowledged = Vec::new();
    push_spread(&nodes, "spread", 30, &mut acknowledged).await;
    for node in &nodes {
        eventually_searchable(node, &acknowledged).await;
    }
    let parts = roles(&nodes).await;
    let owner = parts.iter().position(|(role, _)| role == "owner").expect("one node owns the index");
    assert_eq!(parts[owner].1, vec!["default".to_string()], "{parts:?}");
    assert_eq!(parts.iter().filter(|(role, _)| role == "standby").count(), 2, "{parts:?}");
    let metrics = nodes[owner].client.get(nodes[owner].url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("intake_index_leases 1"), "the owner counts its lease");

    let standby = (owner + 1) % 3;
    let logged = nodes[standby].logs(None, json!({})).await;
    assert_eq!(logged.len(), 30, "the logs API is answered by the owner, from any node: {logged:?}");

    nodes.remove(owner).server.stop().await;
    push_spread(&nodes, "after-handover", 10, &mut acknowledged).await;
    for node in &nodes {
        eventually_searchable(node, &acknowledged).await;
    }
    let parts = roles(&nodes).await;
    assert_eq!(parts.iter().filter(|(role, _)| role == "owner").count(), 1, "one node took the lease: {parts:?}");
}

/// A node of a cluster on `database` and `blobs`, with more settings from `tweak`.
pub async fn cluster_node(
    database: &str,
    blobs: &intake_store::S3Location,
    tweak: impl FnOnce(&mut intake_server::ServerConfig),
) -> TestServer {
    TestServer::start_with(|config| {
        config.database = Some(database.to_string());
        config.blobs = Some(blobs.clone());
        config.leases = intake_store::LeaseTimes::default(); // not the single-node suite's long leases
        tweak(config);
    })
    .await
}

/// Pushes `count` items named `file://<prefix>/<n>` to the nodes in turn; each is acknowledged (202). `acknowledged`
/// gets them, sorted.
async fn push_spread(nodes: &[TestServer], prefix: &str, count: usize, acknowledged: &mut Vec<String>) {
    for i in 0..count {
        let id = format!("file://{prefix}/{i}");
        let response = nodes[i % nodes.len()].put_item(&id, &json!({"title": prefix, "data": "text"}), "").await;
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        acknowledged.push(id);
    }
    acknowledged.sort();
}

/// Waits until a search on `node` finds exactly `uris` (sorted), each once.
async fn eventually_searchable(node: &TestServer, uris: &[String]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let body = json!({"aq": "@uri", "numberOfResults": 1000, "viewAllContent": true});
        let response = node
            .request(reqwest::Method::POST, &node.url(&format!("/rest/search/v2?organizationId={}", node.org)))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let found: Vec<String> = if status == 200 {
            let body: serde_json::Value = response.json().await.unwrap();
            let mut found: Vec<String> =
                body["results"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap().to_string()).collect();
            found.sort();
            found
        } else {
            assert_eq!(status, 503, "a search answers, or 503 while the index is taken over");
            Vec::new()
        };
        if found == uris {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "not within 30 s on {}: {found:?}", node.url(""));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Each node's role and leases, from `/ready`.
async fn roles(nodes: &[TestServer]) -> Vec<(String, Vec<String>)> {
    let mut roles = Vec::new();
    for node in nodes {
        let ready: serde_json::Value = node.client.get(node.url("/ready")).send().await.unwrap().json().await.unwrap();
        let leases = ready["cluster"]["leases"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string());
        roles.push((ready["cluster"]["role"].as_str().unwrap().to_string(), leases.collect()));
    }
    roles
}

/// Fault rules on two nodes sharing a database: a rule added on one node fires on the other within a second, a
/// counted rule's "next N calls" counts the calls of both nodes (exactly N injected in all), and a rule removed on
/// one node stops firing on the other.
#[tokio::test]
async fn fault_rules_apply_across_nodes_and_count_exactly() {
    let (database, blobs) = (intake_store::testing::scratch_database(), intake_store::testing::scratch_blobs());
    let (a, b) = (cluster_node(&database, &blobs, |_| {}).await, cluster_node(&database, &blobs, |_| {}).await);
    let faults_url = |s: &TestServer| s.url(&format!("/rest/organizations/{}/faults", s.org));
    let rule = json!({"status": 503, "count": 5, "route": "*/documents", "method": "PUT"});
    let added = a.request(reqwest::Method::POST, &faults_url(&a)).json(&rule).send().await.unwrap();
    assert_eq!(added.status(), 201);
    let id = added.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut injected = 0;
    loop {
        let response = b.put_item("file://fault/b", &json!({"data": "text"}), "").await;
        if response.headers().get("x-intake-fault").is_some() {
            injected += 1;
            break;
        }
        assert!(std::time::Instant::now() < deadline, "node b takes in node a's rule within the sync");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = json!({"data": "text"});
    let ids: Vec<String> = (0..20).map(|i| format!("file://fault/{i}")).collect();
    let calls = ids.iter().enumerate().map(|(i, id)| [&a, &b][i % 2].put_item(id, &body, ""));
    for response in futures_util::future::join_all(calls).await {
        injected += u32::from(response.headers().get("x-intake-fault").is_some());
    }
    assert_eq!(injected, 5, "a counted rule fires exactly its count across both nodes");

    let again = a.request(reqwest::Method::POST, &faults_url(&a)).json(&json!({"status": 502, "count": 1000})).send();
    let again_id = again.await.unwrap().json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await; // node b takes it in
    let removed = b.request(reqwest::Method::DELETE, &format!("{}/{again_id}", faults_url(&b))).send().await.unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let response = a.put_item("file://fault/after", &json!({"data": "text"}), "").await;
    assert_eq!(response.status(), 202, "a rule removed on node b no longer fires on node a ({id} was spent)");
}

/// A node that joins a cluster takes its share of the leases: the first node, holding both organizations' leases,
/// gives one up (after its last snapshot) and the newcomer takes it; searches of either organization work from
/// either node.
#[tokio::test]
async fn a_node_that_joins_takes_its_share_of_the_leases() {
    let (database, blobs) = (intake_store::testing::scratch_database(), intake_store::testing::scratch_blobs());
    let a = cluster_node(&database, &blobs, |_| {}).await;
    let created = a.request(reqwest::Method::POST, &a.url("/rest/organizations")).json(&json!({"id": "second"}));
    assert_eq!(created.send().await.unwrap().status(), 201);
    let url = a.url("/rest/search/v2?organizationId=second");
    let search = a.request(reqwest::Method::POST, &url).json(&json!({})).send().await.unwrap();
    assert_eq!(search.status(), 200, "a new organization's index is open once it is created");
    let mut acknowledged = Vec::new();
    push_spread(std::slice::from_ref(&a), "before-join", 5, &mut acknowledged).await;
    eventually_searchable(&a, &acknowledged).await;
    assert_eq!(roles(std::slice::from_ref(&a)).await[0].1, ["default", "second"], "the first node holds both");

    let b = cluster_node(&database, &blobs, |_| {}).await;
    let nodes = [a, b];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let parts = roles(&nodes).await;
        if parts.iter().all(|(_, leases)| leases.len() == 1) {
            assert_eq!(parts[0].1, ["default"], "{parts:?}");
            assert_eq!(parts[1].1, ["second"], "{parts:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the leases were not shared within 20 s: {parts:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for node in &nodes {
        eventually_searchable(node, &acknowledged).await;
        // Until each node's next lease round, a node may still see the moved lease as nobody's (503, retry).
        let url = node.url("/rest/search/v2?organizationId=second");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let response = node.request(reqwest::Method::POST, &url).json(&json!({})).send().await.unwrap();
            if response.status() == 200 {
                let second: serde_json::Value = response.json().await.unwrap();
                assert_eq!(second["totalCount"], 0, "the moved organization's index answers: {second}");
                break;
            }
            assert_eq!(response.status(), 503);
            assert!(std::time::Instant::now() < deadline, "the moved organization's index did not answer");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
