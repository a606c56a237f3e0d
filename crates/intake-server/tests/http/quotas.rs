//! Limits (item limit, daily quotas, burst rate) and fault injection, over real HTTP with the injected clock.

use crate::common;

use std::sync::Arc;

use common::{START_MS, TestServer, assert_error, wait_for};
use intake_model::quota::SeededDraws;
use reqwest::{Method, Response};
use serde_json::{Value, json};

const HOUR_MS: i64 = 60 * 60 * 1000;

fn item(n: usize) -> Value {
    json!({ "data": format!("item number {n}"), "title": format!("Item {n}") })
}

async fn set_limit(s: &TestServer, key: &str, value: Value) -> Response {
    let url = s.url(&format!("/rest/organizations/{}/limits/{key}", s.org));
    s.request(Method::PUT, &url).json(&json!({ "value": value })).send().await.unwrap()
}

async fn limits(s: &TestServer) -> Value {
    let url = s.url(&format!("/rest/organizations/{}/limits", s.org));
    let response = s.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn add_fault(s: &TestServer, rule: Value) -> String {
    let url = s.url(&format!("/rest/organizations/{}/faults", s.org));
    let response = s.request(Method::POST, &url).json(&rule).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn faults(s: &TestServer) -> Vec<Value> {
    let url = s.url(&format!("/rest/organizations/{}/faults", s.org));
    s.request(Method::GET, &url).send().await.unwrap().json::<Vec<Value>>().await.unwrap()
}

fn retry_after(response: &Response) -> Option<u64> {
    response.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap())
}

/// A batch of `adds` new items and `deletes` deletes, uploaded to a new container; returns its fileId.
async fn uploaded_batch(s: &TestServer, prefix: &str, adds: usize, deletes: usize) -> String {
    let add: Vec<Value> =
        (0..adds).map(|n| json!({"documentId": format!("{prefix}{n}"), "data": "batch item"})).collect();
    let delete: Vec<Value> = (0..deletes).map(|n| json!({"documentId": format!("{prefix}gone{n}")})).collect();
    s.uploaded(serde_json::to_vec(&json!({"addOrUpdate": add, "delete": delete})).unwrap()).await
}

async fn push_batch(s: &TestServer, file_id: &str) -> Response {
    let url = format!("{}?fileId={file_id}", s.source_url("/documents/batch"));
    s.request(Method::PUT, &url).send().await.unwrap()
}

#[tokio::test]
async fn the_item_limit_counts_the_index_and_pending_adds_and_never_refuses_deletes() {
    let s = TestServer::start().await;
    assert_eq!(set_limit(&s, "maximumItems", json!(3)).await.status(), 200);
    for n in 0..3 {
        assert_eq!(s.put_item(&format!("file://item/{n}"), &item(n), "").await.status(), 202);
    }
    assert_error(
        s.put_item("file://item/3", &item(3), "").await,
        412,
        "DOCUMENT_LIMIT_EXCEEDED",
        &["has 3 items", "1 more would go over its maximumItems limit of 3", "Delete items"],
    )
    .await;
    // Once committed, the items are counted from the index, and no longer as pending: still three.
    wait_for(|| async {
        s.put_item("file://item/3", &item(3), "").await.text().await.unwrap().contains("in the index: 3")
    })
    .await;
    assert_error(s.put_item("file://item/3", &item(3), "").await, 412, "DOCUMENT_LIMIT_EXCEEDED", &["adds pending: 0"])
        .await;
    assert_eq!(limits(&s).await["content"]["maximumItems"]["actualCount"], 3);
    assert_eq!(s.delete_item("file://item/0", "").await.status(), 202);
    wait_for(|| async { limits(&s).await["content"]["maximumItems"]["actualCount"] == 2 }).await;
    // One place left: a batch of two adds is refused whole (and its container can be used again), one fits.
    let two = uploaded_batch(&s, "file://batch/", 2, 0).await;
    assert_error(push_batch(&s, &two).await, 412, "DOCUMENT_LIMIT_EXCEEDED", &["2 more would go over"]).await;
    set_limit(&s, "maximumItems", json!(4)).await;
    assert_eq!(push_batch(&s, &two).await.status(), 202);
    s.settle().await;
    assert_eq!(total(&s).await, 4);
    // Deletes are always accepted, even at the limit; a delete-only batch too.
    assert_eq!(s.delete_item("file://item/1", "").await.status(), 202);
    assert_eq!(push_batch(&s, &uploaded_batch(&s, "file://none/", 0, 3).await).await.status(), 202);
}

#[tokio::test]
async fn daily_limits_refuse_until_midnight_utc_and_survive_restarts() {
    let s = TestServer::start().await;
    set_limit(&s, "pushApiMaximumDailyCalls", json!(3)).await;
    s.clock.advance_ms(HOUR_MS);
    for n in 0..3 {
        assert_eq!(s.put_item(&format!("file://d/{n}"), &item(n), "").await.status(), 202);
    }
    let refused = s.put_item("file://d/3", &item(3), "").await;
    assert_eq!(retry_after(&refused), Some(23 * 3600));
    assert_error(
        refused,
        429,
        "TOO_MANY_REQUESTS",
        &["made 3 Push API calls today (UTC)", "pushApiMaximumDailyCalls limit is 3", "midnight UTC, in 82800 s"],
    )
    .await;
    // File containers are Push API calls too.
    let files = s.request(Method::POST, &s.url(&format!("/push/v1/organizations/{}/files", s.org))).send().await;
    assert_error(files.unwrap(), 429, "TOO_MANY_REQUESTS", &["pushApiMaximumDailyCalls"]).await;
    assert_eq!(
        limits(&s).await["content"]["pushApiMaximumDailyCalls"],
        json!({"limit": 3, "actualCount": 3, "lastUpdate": START_MS + HOUR_MS})
    );

    let s = s.restart().await;
    assert_eq!(s.put_item("file://d/3", &item(3), "").await.status(), 429, "the count survives a restart");
    s.clock.set_ms(START_MS + 24 * HOUR_MS);
    assert_eq!(s.put_item("file://d/3", &item(3), "").await.status(), 202, "a new UTC day starts from zero");
    assert_eq!(limits(&s).await["content"]["pushApiMaximumDailyCalls"]["actualCount"], 1);
}

#[tokio::test]
async fn the_daily_item_limit_counts_adds_deletes_and_batch_entries() {
    let s = TestServer::start().await;
    set_limit(&s, "pushApiMaximumDailyDocumentLimit", json!(5)).await;
    assert_eq!(s.put_item("file://a", &item(0), "").await.status(), 202);
    assert_eq!(s.delete_item("file://a", "").await.status(), 202);
    let batch = uploaded_batch(&s, "file://b/", 2, 2).await;
    let refused = push_batch(&s, &batch).await;
    assert_eq!(retry_after(&refused), Some(24 * 3600));
    assert_error(
        refused,
        429,
        "TOO_MANY_DOCUMENTS_DAILY",
        &["has pushed 2 items today (UTC)", "4 more would go over its pushApiMaximumDailyDocumentLimit of 5"],
    )
    .await;
    assert_eq!(push_batch(&s, &uploaded_batch(&s, "file://c/", 2, 1).await).await.status(), 202);
    assert_error(s.delete_item("file://a", "").await, 429, "TOO_MANY_DOCUMENTS_DAILY", &["has pushed 5 items"]).await;
    let usage = &limits(&s).await["content"];
    assert_eq!(usage["pushApiMaximumDailyDocumentLimit"]["actualCount"], 5);
    assert_eq!(usage["pushApiMaximumDailyCalls"]["actualCount"], 7, "every admitted call counts, refused or not");
    let s = s.restart().await;
    assert_eq!(limits(&s).await["content"]["pushApiMaximumDailyDocumentLimit"]["actualCount"], 5);
}

#[tokio::test]
async fn the_burst_is_admitted_then_the_sustained_rate() {
    let s = TestServer::start().await;
    set_limit(&s, "pushApiRequestsPerSecond", json!(2)).await;
    set_limit(&s, "pushApiBurst", json!(4)).await;
    for n in 0..4 {
        assert_eq!(s.put_item(&format!("file://r/{n}"), &item(n), "").await.status(), 202);
    }
    let refused = s.put_item("file://r/4", &item(4), "").await;
    assert_eq!(retry_after(&refused), Some(1));
    assert_error(
        refused,
        429,
        "TOO_MANY_REQUESTS",
        &["over its Push API rate", "pushApiRequestsPerSecond is 2 with a pushApiBurst of 4", "Retry in 1 s"],
    )
    .await;
    assert_eq!(limits(&s).await["content"]["pushApiBurst"]["actualCount"], 4);
    s.clock.advance_ms(500);
    assert_eq!(s.put_item("file://r/4", &item(4), "").await.status(), 202, "one token after half a second");
    assert_eq!(s.put_item("file://r/5", &item(5), "").await.status(), 429);
    s.clock.advance_ms(10_000);
    for n in 5..9 {
        assert_eq!(
            s.put_item(&format!("file://r/{n}"), &item(n), "").await.status(),
            202,
            "the bucket refills to the burst"
        );
    }
    assert_eq!(s.put_item("file://r/9", &item(9), "").await.status(), 429);
}

#[tokio::test]
async fn limits_are_reported_set_and_reset_by_the_master_key_only() {
    let s = TestServer::start().await;
    let report = limits(&s).await;
    let content = report["content"].as_object().unwrap();
    let keys: Vec<&str> = content.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    for key in [
        "maximumItems",
        "pushApiMaximumDailyCalls",
        "pushApiMaximumDailyDocumentLimit",
        "pushApiMaximumDailySecurityIdentities",
        "pushApiRequestsPerSecond",
        "pushApiBurst",
    ] {
        assert_eq!(content[key]["limit"], Value::Null, "unlimited by default: {key}");
    }
    let set = set_limit(&s, "pushapimaximumdailycalls", json!(1000)).await;
    assert_eq!(set.status(), 200);
    assert_eq!(set.json::<Value>().await.unwrap()["limit"], 1000);
    let section = s.request(Method::GET, &s.url(&format!("/rest/organizations/{}/limits/content", s.org))).send().await;
    assert_eq!(section.unwrap().json::<Value>().await.unwrap()["pushApiMaximumDailyCalls"]["limit"], 1000);
    let one = s.request(
        Method::GET,
        &s.url(&format!("/rest/organizations/{}/limits/content/pushApiMaximumDailyCalls", s.org)),
    );
    assert_eq!(one.send().await.unwrap().json::<Value>().await.unwrap()["limit"], 1000);
    let reset =
        s.request(Method::DELETE, &s.url(&format!("/rest/organizations/{}/limits/pushApiMaximumDailyCalls", s.org)));
    assert_eq!(reset.send().await.unwrap().json::<Value>().await.unwrap()["limit"], Value::Null);

    assert_error(
        set_limit(&s, "maximumItem", json!(1)).await,
        412,
        "INVALID_PARAMETER",
        &["no limit 'maximumItem'", "maximumItems, pushApiMaximumDailyCalls"],
    )
    .await;
    assert_error(
        set_limit(&s, "maximumItems", json!(-1)).await,
        412,
        "INVALID_PARAMETER",
        &["'value'", "'-1'", "whole number"],
    )
    .await;
    assert_error(set_limit(&s, "maximumItems", json!("ten")).await, 412, "INVALID_PARAMETER", &["'value'", "a string"])
        .await;
    let missing =
        s.request(Method::PUT, &s.url(&format!("/rest/organizations/{}/limits/maximumItems", s.org))).json(&json!({}));
    assert_error(missing.send().await.unwrap(), 412, "MISSING_PARAMETER", &["'value'"]).await;
    let section = s.request(Method::GET, &s.url(&format!("/rest/organizations/{}/limits/usageAnalytics", s.org)));
    assert_error(section.send().await.unwrap(), 412, "INVALID_PARAMETER", &["no limit 'usageAnalytics'"]).await;

    // The organization's own push key may read the limits only with ORGANIZATION VIEW, and never change them.
    let key =
        create_key(&s, json!([{"owner": "PLATFORM", "targetDomain": "ORGANIZATION", "type": "VIEW", "targetId": "*"}]))
            .await;
    let url = s.url(&format!("/rest/organizations/{}/limits/maximumItems", s.org));
    assert_eq!(s.client.get(&url).bearer_auth(&key).send().await.unwrap().status(), 200);
    let put = s.client.put(&url).bearer_auth(&key).json(&json!({"value": 1})).send().await.unwrap();
    assert_error(put, 403, "ACCESS_DENIED", &["the right to change limits (only the master key has it)"]).await;
    let faults_url = s.url(&format!("/rest/organizations/{}/faults", s.org));
    let post = s.client.post(&faults_url).bearer_auth(&key).json(&json!({"status": 503, "count": 1})).send().await;
    assert_error(post.unwrap(), 403, "ACCESS_DENIED", &["the right to inject faults"]).await;
    let blind =
        create_key(&s, json!([{"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "EDIT", "targetId": "*"}])).await;
    assert_error(
        s.client.get(&url).bearer_auth(&blind).send().await.unwrap(),
        403,
        "ACCESS_DENIED",
        &["ORGANIZATION VIEW"],
    )
    .await;
}

async fn total(s: &TestServer) -> u64 {
    s.search(json!({})).await["totalCount"].as_u64().unwrap()
}

async fn create_key(s: &TestServer, privileges: Value) -> String {
    let url = s.url(&format!("/rest/organizations/{}/apikeys", s.org));
    let response =
        s.request(Method::POST, &url).json(&json!({"displayName": "k", "privileges": privileges})).send().await;
    response.unwrap().json::<Value>().await.unwrap()["value"].as_str().unwrap().to_string()
}

/// Many clients at once against small limits: exactly the limit is admitted, every refusal is a 429 with
/// Retry-After, and everything admitted is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_are_admitted_exactly_up_to_each_limit() {
    let s = Arc::new(TestServer::start().await);
    set_limit(&s, "pushApiMaximumDailyDocumentLimit", json!(150)).await;
    let (admitted, refused) = hammer(std::slice::from_ref(&s), 16, 20, "file://daily/").await;
    assert_eq!((admitted, refused), (150, 170));
    s.settle().await;
    assert_eq!(total(&s).await, 150, "every admitted item is applied, once");
    assert_eq!(limits(&s).await["content"]["pushApiMaximumDailyDocumentLimit"]["actualCount"], 150);

    set_limit(&s, "pushApiMaximumDailyDocumentLimit", json!(Value::Null)).await;
    set_limit(&s, "maximumItems", json!(230)).await;
    let (admitted, refused) = hammer(std::slice::from_ref(&s), 16, 20, "file://items/").await;
    assert_eq!((admitted, refused), (80, 240), "the item limit: 150 indexed + 80 admitted");
    s.settle().await;
    assert_eq!(total(&s).await, 230);

    set_limit(&s, "maximumItems", json!(Value::Null)).await;
    set_limit(&s, "pushApiRequestsPerSecond", json!(1)).await;
    set_limit(&s, "pushApiBurst", json!(40)).await;
    let (admitted, refused) = hammer(std::slice::from_ref(&s), 16, 20, "file://rate/").await;
    assert_eq!((admitted, refused), (40, 280), "the clock stands still: exactly the burst");
}

/// The limits hold exactly across two nodes sharing a database: clients spread over both are admitted up to each
/// limit and no further — the day's items, the item limit, the burst, the day's calls — and both nodes report
/// the cluster's usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_on_two_nodes_are_admitted_exactly_up_to_each_limit() {
    let (database, blobs) = (intake_store::testing::scratch_database(), intake_store::testing::scratch_blobs());
    let a = Arc::new(crate::scale_out::cluster_node(&database, &blobs, |_| {}).await);
    let b = Arc::new(crate::scale_out::cluster_node(&database, &blobs, |_| {}).await);
    let nodes = [a.clone(), b.clone()];
    // A limit set on one node holds on the others within half a second.
    let reaches_every_node = || tokio::time::sleep(std::time::Duration::from_millis(1200));

    set_limit(&a, "pushApiMaximumDailyDocumentLimit", json!(150)).await;
    reaches_every_node().await;
    assert_eq!(hammer(&nodes, 16, 20, "file://daily/").await, (150, 170));
    for node in &nodes {
        assert_eq!(limits(node).await["content"]["pushApiMaximumDailyDocumentLimit"]["actualCount"], 150);
    }

    set_limit(&b, "pushApiMaximumDailyDocumentLimit", json!(Value::Null)).await;
    set_limit(&b, "maximumItems", json!(230)).await;
    reaches_every_node().await;
    assert_eq!(hammer(&nodes, 16, 20, "file://items/").await, (80, 240), "150 items + 80 admitted");
    for node in &nodes {
        wait_for(|| async { total(node).await == 230 }).await;
    }
    assert_eq!(limits(&a).await["content"]["maximumItems"]["actualCount"], 230);

    set_limit(&a, "maximumItems", json!(Value::Null)).await;
    set_limit(&a, "pushApiRequestsPerSecond", json!(1)).await;
    set_limit(&a, "pushApiBurst", json!(40)).await;
    reaches_every_node().await;
    assert_eq!(hammer(&nodes, 16, 20, "file://rate/").await, (40, 280), "the clocks stand still: exactly the burst");

    set_limit(&a, "pushApiRequestsPerSecond", json!(Value::Null)).await;
    set_limit(&a, "pushApiBurst", json!(Value::Null)).await;
    reaches_every_node().await; // and each node's own count of calls reaches the shared one
    let calls = limits(&b).await["content"]["pushApiMaximumDailyCalls"]["actualCount"].as_u64().unwrap();
    assert_eq!(calls, 320 + 320 + 40, "every call admitted on either node is counted once (refused by the rate: not)");
    set_limit(&b, "pushApiMaximumDailyCalls", json!(calls + 50)).await;
    reaches_every_node().await;
    assert_eq!(hammer(&nodes, 16, 20, "file://calls/").await, (50, 270));
}

/// `clients` tasks each PUT `each` new items at once, client `n` to node `n % nodes.len()`; (admitted, refused) —
/// every refusal checked.
async fn hammer(nodes: &[Arc<TestServer>], clients: usize, each: usize, prefix: &str) -> (usize, usize) {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let s = nodes[client % nodes.len()].clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let (mut admitted, mut refused) = (0, 0);
            for n in 0..each {
                let response = s.put_item(&format!("{prefix}{client}/{n}"), &item(n), "").await;
                match response.status().as_u16() {
                    202 => admitted += 1,
                    429 | 412 => {
                        let status = response.status().as_u16();
                        assert!(status == 412 || retry_after(&response).is_some(), "a 429 has Retry-After");
                        let body: Value = response.json().await.unwrap();
                        assert!(body["errorCode"].as_str().unwrap().len() > 5);
                        refused += 1;
                    }
                    other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
                }
            }
            (admitted, refused)
        }));
    }
    let mut totals = (0, 0);
    for task in tasks {
        let (a, r) = task.await.unwrap();
        totals = (totals.0 + a, totals.1 + r);
    }
    totals
}

#[tokio::test]
async fn counted_fault_rules_fail_the_next_calls_then_go_away() {
    let s = TestServer::start().await;
    let id = add_fault(&s, json!({"status": 503, "count": 2, "route": "*/documents", "method": "PUT"})).await;
    assert_eq!(faults(&s).await[0]["remaining"], 2);
    // Only matching calls: a delete and a file container pass.
    assert_eq!(s.delete_item("file://x", "").await.status(), 202);
    for left in [1, 0] {
        let response = s.put_item("file://x", &item(0), "").await;
        assert_eq!(response.headers()["x-intake-fault"], id.as_str());
        assert_eq!(retry_after(&response), None);
        assert_error(
            response,
            503,
            "SERVICE_UNAVAILABLE",
            &[
                &format!("Injected by fault rule {id} of organization 'default'"),
                "answers 503 to the next 2 matching calls",
                "PUT /push/v1/organizations/default/sources/",
            ],
        )
        .await;
        if left > 0 {
            assert_eq!(faults(&s).await[0]["remaining"], left);
        }
    }
    assert_eq!(s.put_item("file://x", &item(0), "").await.status(), 202);
    assert!(faults(&s).await.is_empty(), "a spent rule is gone");

    // 429 with the chosen Retry-After; 502 and 504 with their codes; injected before authentication.
    add_fault(&s, json!({"status": 429, "count": 1, "retryAfter": 7})).await;
    let throttled = s.put_item("file://x", &item(0), "").await;
    assert_eq!(retry_after(&throttled), Some(7));
    assert_error(throttled, 429, "TOO_MANY_REQUESTS", &["Injected"]).await;
    add_fault(&s, json!({"status": 502, "count": 1, "route": "/push/v1/*/files"})).await;
    let files = s.client.post(s.url("/push/v1/organizations/default/files")).send().await.unwrap();
    assert_error(files, 502, "BAD_GATEWAY", &["Injected", "POST /push/v1/organizations/default/files"]).await;
    add_fault(&s, json!({"status": 504, "count": 1, "route": "documents/batch"})).await;
    assert_error(push_batch(&s, "any").await, 504, "GATEWAY_TIMEOUT", &["Injected"]).await;
    // Rules stay reachable and removable whatever they match.
    let everything = add_fault(&s, json!({"status": 500, "count": 100})).await;
    assert_error(s.put_item("file://x", &item(0), "").await, 500, "INTERNAL_SERVER_ERROR", &["Injected"]).await;
    assert_eq!(faults(&s).await.len(), 1);
    assert_eq!(set_limit(&s, "maximumItems", json!(10)).await.status(), 200);
    let remove = |id: String| {
        let url = s.url(&format!("/rest/organizations/{}/faults/{id}", s.org));
        s.request(Method::DELETE, &url).send()
    };
    assert_eq!(remove(everything.clone()).await.unwrap().status(), 204);
    assert_error(remove(everything).await.unwrap(), 404, "FAULT_RULE_NOT_FOUND", &["has no fault rule"]).await;
    assert_eq!(s.put_item("file://x", &item(0), "").await.status(), 202);
}

#[tokio::test]
async fn bad_fault_rules_are_refused_with_the_reason() {
    let s = TestServer::start().await;
    let url = s.url(&format!("/rest/organizations/{}/faults", s.org));
    for (rule, words) in [
        (json!({"status": 404, "count": 1}), "'status' is 404"),
        (json!({"status": 503}), "give 'count'"),
        (json!({"status": 503, "count": 1, "percent": 5}), "not both"),
        (json!({"status": 503, "count": 1, "routes": "x"}), "unknown field `routes`"),
        (json!({"status": "503", "count": 1}), "invalid type: string"),
    ] {
        let response = s.request(Method::POST, &url).json(&rule).send().await.unwrap();
        assert_error(response, 400, "INVALID_JSON", &["The fault rule is not valid", words]).await;
    }
    assert!(faults(&s).await.is_empty());
}

#[tokio::test]
async fn percentage_rules_are_reproducible_from_their_seed() {
    let s = TestServer::start().await;
    add_fault(&s, json!({"status": 503, "percent": 30, "seed": 42})).await;
    let mut draws = SeededDraws::new(42);
    let expected: Vec<bool> = (0..60).map(|_| draws.next_percent() < 30.0).collect();
    let mut seen = Vec::new();
    for n in 0..60 {
        seen.push(s.put_item(&format!("file://p/{n}"), &item(n), "").await.status() == 503);
    }
    assert_eq!(seen, expected);
    let failed = seen.iter().filter(|f| **f).count();
    assert!((8..=30).contains(&failed), "{failed}");
    assert_eq!(faults(&s).await[0]["fired"], failed);
}

#[tokio::test]
async fn throttling_after_inactivity_answers_429_to_the_first_calls() {
    let s = TestServer::start().await;
    add_fault(&s, json!({"kind": "throttleAfterIdle", "idleSeconds": 60, "count": 2, "retryAfter": 3})).await;
    assert_eq!(s.put_item("file://t", &item(0), "").await.status(), 202, "not idle yet");
    s.clock.advance_ms(61_000);
    for _ in 0..2 {
        let response = s.put_item("file://t", &item(0), "").await;
        assert_eq!(retry_after(&response), Some(3));
        assert_error(
            response,
            429,
            "TOO_MANY_REQUESTS",
            &["the first 2 calls after 60 s without calls (throttleAfterIdle)"],
        )
        .await;
    }
    assert_eq!(s.put_item("file://t", &item(0), "").await.status(), 202);
    s.clock.advance_ms(59_000);
    assert_eq!(s.put_item("file://t", &item(0), "").await.status(), 202, "59 s is not idle");
    s.clock.advance_ms(60_000);
    assert_eq!(s.put_item("file://t", &item(0), "").await.status(), 429);
}

#[tokio::test]
async fn rules_survive_restarts_and_come_from_the_configuration() {
    let s = TestServer::start().await;
    let id = add_fault(&s, json!({"status": 500, "count": 3, "route": "*/documents"})).await;
    assert_eq!(s.put_item("file://r", &item(0), "").await.status(), 500);
    let (dir, clock) = (s.dir.clone(), s.clock.clone());
    s.server.stop().await;
    let s = TestServer::start_in(dir, clock, |config| {
        let rule = serde_json::from_value(json!({"status": 503, "count": 1, "route": "*/files"})).unwrap();
        config.faults = vec![("default".into(), rule)];
    })
    .await;
    let rules = faults(&s).await;
    assert_eq!(rules.len(), 2);
    assert_eq!((rules[0]["id"].as_str(), &rules[0]["remaining"]), (Some(id.as_str()), &json!(2)));
    assert_eq!((rules[1]["id"].as_str(), rules[1]["source"].as_str()), (Some("config-1"), Some("configuration")));
    let files = s.request(Method::POST, &s.url("/push/v1/organizations/default/files")).send().await.unwrap();
    assert_error(files, 503, "SERVICE_UNAVAILABLE", &["Injected by fault rule config-1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counted_rule_fails_exactly_its_count_under_concurrency() {
    let s = Arc::new(TestServer::start().await);
    add_fault(&s, json!({"status": 503, "count": 5})).await;
    let calls: Vec<_> = (0..40)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move { s.put_item(&format!("file://c/{n}"), &item(n), "").await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 35, "{statuses:?}");
    assert!(faults(&s).await.is_empty());
}
