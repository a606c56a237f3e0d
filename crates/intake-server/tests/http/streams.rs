//! The Stream API of catalog sources over real HTTP: full loads that replace the catalog at once, updates with
//! every partial update operator, merges, delete-older-than, every error with its message, and the expiry of an
//! abandoned stream on the injected clock.

use crate::common;

use common::{TestServer, assert_error, wait_for};
use intake_store::Clock;
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// A catalog source of the test organization, with `price` declared numeric; its id.
async fn catalog_source(s: &TestServer) -> String {
    let url = s.url(&format!("/rest/organizations/{}/sources", s.org));
    let body = json!({"name": "products", "sourceType": "CATALOG", "sourceVisibility": "SHARED"});
    let response = s.request(Method::POST, &url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let fields = s.url(&format!("/rest/organizations/{}/indexes/fields/batch/create", s.org));
    let declared =
        s.request(Method::POST, &fields).json(&json!([{"name": "price", "type": "DOUBLE"}])).send().await.unwrap();
    assert!(declared.status().is_success(), "{}", declared.status());
    created["id"].as_str().unwrap().to_string()
}

fn stream_url(s: &TestServer, src: &str, rest: &str) -> String {
    s.url(&format!("/push/v1/organizations/{}/sources/{src}/stream{rest}", s.org))
}

async fn post(s: &TestServer, url: &str) -> Response {
    s.request(Method::POST, url).json(&json!({})).send().await.unwrap()
}

/// `stream/open`: (streamId, uploadUri of the first container).
async fn open(s: &TestServer, src: &str) -> (String, String) {
    let response = post(s, &stream_url(s, src, "/open")).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    for key in ["streamId", "uploadUri", "fileId", "requiredHeaders"] {
        assert!(body.get(key).is_some(), "open answers {key}: {body}");
    }
    (body["streamId"].as_str().unwrap().to_string(), body["uploadUri"].as_str().unwrap().to_string())
}

/// `stream/{id}/chunk` then the upload of `batch` to it, as the Node SDK does.
async fn chunk(s: &TestServer, src: &str, stream_id: &str, batch: &Value) {
    let response = post(s, &stream_url(s, src, &format!("/{stream_id}/chunk"))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["requiredHeaders"]["x-amz-server-side-encryption"], "AES256");
    let uri = body["uploadUri"].as_str().unwrap();
    assert_eq!(s.upload(uri, batch.to_string().into_bytes()).await.status(), 200);
}

async fn close(s: &TestServer, src: &str, stream_id: &str) -> Response {
    post(s, &stream_url(s, src, &format!("/{stream_id}/close"))).await
}

/// A full load of `chunks`, each a batch file; the close's answer body.
async fn full_load(s: &TestServer, src: &str, chunks: &[Value]) -> Value {
    let (stream_id, _) = open(s, src).await;
    for batch in chunks {
        chunk(s, src, &stream_id, batch).await;
    }
    let response = close(s, src, &stream_id).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["orderingId"].as_str().unwrap().parse::<i64>().is_ok(), "orderingId is a string: {body}");
    assert!(body["requestId"].is_string());
    body
}

/// An update or merge file pushed through a container: the answer.
async fn stream_file(s: &TestServer, src: &str, kind: &str, file: &Value) -> Response {
    let file_id = s.uploaded(file.to_string().into_bytes()).await;
    let url = format!("{}?fileId={file_id}", stream_url(s, src, &format!("/{kind}")));
    s.request(Method::PUT, &url).json(&json!({})).send().await.unwrap()
}

fn product(id: &str, name: &str, price: f64) -> Value {
    json!({"documentId": format!("product://{id}"), "data": format!("<p>{name}</p>"), "title": name, "sku": id, "price": price})
}

/// Every item of the catalog source (named `products`): document id → raw metadata.
async fn catalog(s: &TestServer) -> std::collections::BTreeMap<String, Value> {
    let found = s.search(json!({"aq": "@source==products", "numberOfResults": 1000})).await;
    found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["uri"].as_str().unwrap().to_string(), r["raw"].clone()))
        .collect()
}

#[tokio::test]
async fn a_full_load_replaces_the_catalog_and_logs_its_fate() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    full_load(
        &s,
        &src,
        &[
            json!({"addOrUpdate": [product("a", "Chair", 10.0), product("b", "Table", 20.0)]}),
            json!({"addOrUpdate": [product("c", "Lamp", 5.0)]}),
        ],
    )
    .await;
    s.settle().await;
    assert_eq!(catalog(&s).await.len(), 3);

    // The second load keeps a (unchanged), changes b, drops c, adds d.
    let second = [
        json!({"addOrUpdate": [product("a", "Chair", 10.0), product("b", "Table", 25.0)]}),
        json!({"addOrUpdate": [product("d", "Sofa", 300.0)]}),
    ];
    full_load(&s, &src, &second).await;
    s.settle().await;
    let items = catalog(&s).await;
    assert_eq!(items.keys().collect::<Vec<_>>(), ["product://a", "product://b", "product://d"]);
    assert_eq!(items["product://b"]["price"], 25.0);
    let deleted = s.logs(Some("product://c"), json!({"operations": ["DELETE_OLDER_THAN"]})).await;
    assert_eq!(deleted.len(), 1, "the item not in the load is deleted: {deleted:?}");
    let files = s
        .logs(None, json!({"tasks": ["STREAMING_EXTENSION"], "operations": ["BATCH_FILE"], "results": ["COMPLETED"]}))
        .await;
    assert_eq!(files.len(), 2, "one line per load: {files:?}");
    let reason =
        files.iter().map(|f| f["meta"]["details"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join(" | ");
    assert!(reason.contains("3 entries applied, 1 items deleted as not in the load"), "{reason}");
    // The item endpoints' source is untouched by a load.
    assert!(s.put_item("file://push", &json!({"data": "push item"}), "").await.status() == 202);
    s.settle().await;
    full_load(&s, &src, &[json!({"addOrUpdate": [product("e", "Stool", 1.0)]})]).await;
    s.settle().await;
    assert_eq!(s.uris("").await.len(), 2, "the push source keeps its item; the catalog holds only e");
}

#[tokio::test]
async fn the_previous_catalog_stays_whole_until_the_new_one_replaces_it() {
    let s = TestServer::start_with(|c| c.commit_interval = std::time::Duration::from_millis(5)).await;
    let src = catalog_source(&s).await;
    let old: Vec<Value> = (0..50).map(|i| product(&format!("old{i}"), "Old", 1.0)).collect();
    full_load(&s, &src, &[json!({"addOrUpdate": old})]).await;
    s.settle().await;
    let chunks: Vec<Value> = (0..4)
        .map(|c| json!({"addOrUpdate": (0..300).map(|i| product(&format!("new{c}-{i}"), "New", 2.0)).collect::<Vec<_>>()}))
        .collect();
    let (stream_id, _) = open(&s, &src).await;
    for batch in &chunks {
        chunk(&s, &src, &stream_id, batch).await;
    }
    assert_eq!(close(&s, &src, &stream_id).await.status(), 200);
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let found = s.search(json!({"aq": "@source==products", "numberOfResults": 0})).await;
        let total = found["totalCount"].as_u64().unwrap();
        seen.insert(total);
        if total == 1200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the load was not applied: {seen:?}");
    }
    assert!(seen.iter().all(|total| [50, 1200].contains(total)), "a half-applied load was visible: {seen:?}");
}

#[tokio::test]
async fn every_partial_update_operator_changes_its_field() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    let item = json!({"documentId": "product://p", "data": "<p>Desk</p>", "title": "Desk", "price": 100,
        "tags": ["wood", "office"], "stock": {"paris": 3, "lyon": 0}, "color": "oak"});
    full_load(&s, &src, &[json!({"addOrUpdate": [item, product("q", "Shelf", 40.0)]})]).await;
    s.settle().await;
    let update = json!({"partialUpdate": [
        {"documentId": "product://p", "operator": "fieldValueReplace", "field": "price", "value": 80.5},
        {"documentId": "product://p", "operator": "arrayAppend", "field": "tags", "value": ["sale"]},
        {"documentId": "product://p", "operator": "arrayRemove", "field": "tags", "value": ["office"]},
        {"documentId": "product://p", "operator": "dictionaryPut", "field": "stock", "value": {"lyon": 7, "nice": 1}},
        {"documentId": "product://p", "operator": "dictionaryRemove", "field": "stock", "value": ["paris"]},
        {"documentId": "product://p", "operator": "fieldValueReplace", "field": "color", "value": null},
        {"documentId": "product://missing", "operator": "fieldValueReplace", "field": "price", "value": 1},
        {"documentId": "product://q", "operator": "arrayAppend", "field": "price", "value": [1]},
        {"documentId": "product://q", "operator": "fieldValueReplace", "field": "price", "value": "cheap"},
        {"documentId": "product://q", "operator": "fieldValueReplace", "field": "title", "value": "Bookshelf"}
    ], "addOrUpdate": [product("r", "Rug", 9.0)], "delete": [{"documentId": "product://gone"}]});
    let response = stream_file(&s, &src, "update", &update).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(body["orderingId"].is_string(), "{body}");
    s.settle().await;
    let items = catalog(&s).await;
    let p = &items["product://p"];
    assert_eq!(p["price"], 80.5);
    assert_eq!(p["tags"], json!(["wood", "sale"]));
    assert_eq!(p["stock"], json!({"lyon": 7, "nice": 1}));
    assert!(p.get("color").is_none(), "{p}");
    assert_eq!(items["product://q"]["title"], "Bookshelf");
    assert_eq!(items["product://q"]["price"], 40.0, "refused updates change nothing");
    assert!(items.contains_key("product://r"));
    assert_eq!(s.search(json!({"q": "Bookshelf"})).await["totalCount"], 1, "the new title is searchable");
    assert_eq!(s.search(json!({"q": "Desk"})).await["totalCount"], 1, "the text is kept");
    assert_eq!(s.uris("@price>=80 AND @price<=81").await, ["product://p"], "the typed value is indexed again");

    let rejected = s.logs(None, json!({"results": ["REJECTED"]})).await;
    let reasons: Vec<&str> = rejected.iter().map(|e| e["meta"]["error"].as_str().unwrap_or("")).collect();
    assert_eq!(rejected.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("'product://missing' is not in source") && r.contains("add it first")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("'price' holds a single value, and arrayAppend changes arrays")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("'price' is declared DOUBLE, and \"cheap\" is not one")), "{reasons:?}");
    let file = s.logs(None, json!({"tasks": ["STREAMING_EXTENSION"], "results": ["WARNING"]})).await;
    assert_eq!(file.len(), 1, "the update file's fate: {file:?}");
    assert!(file[0]["meta"]["error"].as_str().unwrap().contains("3 refused"), "{file:?}");
}

#[tokio::test]
async fn partial_updates_of_one_item_in_one_file_build_on_each_other() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    full_load(&s, &src, &[json!({"addOrUpdate": [product("p", "Pen", 1.0)]})]).await;
    s.settle().await;
    // Pushed through the item endpoint just before: the update must start from it, not from the last commit.
    s.put_item("product://p", &json!({"data": "<p>Pen</p>", "sku": "p", "tags": ["blue"]}), "").await;
    let steps: Vec<Value> = (0..20)
        .map(|i| json!({"documentId": "product://p", "operator": "arrayAppend", "field": "tags", "value": [format!("t{i}")]}))
        .collect();
    let added = json!({"addOrUpdate": [product("n", "Notebook", 3.0)], "partialUpdate": [
        {"documentId": "product://n", "operator": "arrayAppend", "field": "tags", "value": ["new"]}]});
    let mut file = added.clone();
    file["partialUpdate"].as_array_mut().unwrap().extend(steps);
    // Sent on the source of the item endpoint: the catalog source is the one in the path.
    let url = s.url(&format!("/push/v1/organizations/{}/sources/{src}/documents?documentId=product%3A%2F%2Fp", s.org));
    assert_eq!(
        s.request(Method::PUT, &url)
            .json(&json!({"data": "<p>Pen</p>", "sku": "p", "tags": ["blue"]}))
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(stream_file(&s, &src, "update", &file).await.status(), 202);
    s.settle().await;
    let items = catalog(&s).await;
    let tags = items["product://p"]["tags"].as_array().unwrap().clone();
    assert_eq!(tags.len(), 21, "{tags:?}");
    assert_eq!(tags[0], "blue");
    assert_eq!(items["product://n"]["tags"], json!(["new"]), "an item added earlier in the file is updated");
}

#[tokio::test]
async fn a_merge_sets_the_keys_it_names_and_keeps_the_rest() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    let item = json!({"documentId": "product://m", "data": "<p>Mug of coffee</p>", "title": "Mug", "price": 4, "color": "white"});
    full_load(&s, &src, &[json!({"addOrUpdate": [item]})]).await;
    s.settle().await;
    let merge = json!({"addOrUpdate": [
        {"documentId": "product://m", "price": 5, "color": null, "material": "stoneware"},
        {"documentId": "product://new", "data": "<p>Brand new teapot</p>", "title": "Teapot"},
        {"documentId": "product://nothing", "price": 1}
    ]});
    assert_eq!(stream_file(&s, &src, "merge", &merge).await.status(), 202);
    s.settle().await;
    let items = catalog(&s).await;
    let m = &items["product://m"];
    assert_eq!(
        (m["price"].clone(), m["material"].clone(), m["title"].clone()),
        (json!(5), json!("stoneware"), json!("Mug"))
    );
    assert!(m.get("color").is_none(), "null removes a key: {m}");
    assert_eq!(s.search(json!({"q": "coffee"})).await["totalCount"], 1, "the stored text is kept");
    assert!(items.contains_key("product://new"), "an entry with data adds its item");
    let rejected = s.logs(Some("product://nothing"), json!({"results": ["REJECTED"]})).await;
    assert!(
        rejected[0]["meta"]["error"].as_str().unwrap().contains("a merge without data changes an existing item"),
        "{rejected:?}"
    );
}

#[tokio::test]
async fn stream_delete_older_than_deletes_after_the_queue_delay() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    full_load(&s, &src, &[json!({"addOrUpdate": [product("a", "A", 1.0), product("b", "B", 1.0)]})]).await;
    s.settle().await;
    s.clock.advance_ms(60_000);
    let cut = s.clock.now_ms();
    let update = json!({"addOrUpdate": [product("b", "B again", 2.0)]});
    s.clock.advance_ms(1_000);
    assert_eq!(stream_file(&s, &src, "update", &update).await.status(), 202);
    let response =
        post(&s, &format!("{}?queueDelay=1", stream_url(&s, &src, &format!("/deleteolderthan/{cut}")))).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.json::<Value>().await.unwrap()["orderingId"], cut.to_string());
    s.settle().await;
    assert_eq!(catalog(&s).await.len(), 2, "not before the queue delay");
    s.clock.advance_ms(61_000);
    wait_for(|| async { catalog(&s).await.len() == 1 }).await;
    assert!(catalog(&s).await.contains_key("product://b"));
}

#[tokio::test]
async fn every_stream_mistake_is_answered_with_its_code_and_what_to_do() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    let push = s.src.clone();
    assert_error(
        post(&s, &stream_url(&s, &push, "/open")).await,
        400,
        "SOURCE_NOT_STREAM_ENABLED",
        &[&push, "PUSH", "CATALOG"],
    )
    .await;
    let update = json!({"addOrUpdate": [product("a", "A", 1.0)]});
    assert_error(stream_file(&s, &src, "update", &update).await, 412, "FULL_LOAD_REQUIRED", &[&src, "stream/open"])
        .await;
    assert_error(
        post(&s, &stream_url(&s, &src, "/no-such-stream/chunk")).await,
        404,
        "STREAM_NOT_FOUND",
        &["no-such-stream", "Open a new stream"],
    )
    .await;
    assert_error(close(&s, &src, "no-such-stream").await, 404, "STREAM_NOT_FOUND", &["no-such-stream"]).await;

    // A chunk requested but never uploaded: the close names it and says what to do.
    let (stream_id, _) = open(&s, &src).await;
    chunk(&s, &src, &stream_id, &json!({"addOrUpdate": [product("a", "A", 1.0)]})).await;
    assert_eq!(post(&s, &stream_url(&s, &src, &format!("/{stream_id}/chunk"))).await.status(), 200);
    let body = assert_error(
        close(&s, &src, &stream_id).await,
        404,
        "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
        &[&stream_id, "chunk 3 of 3", "never uploaded", "an empty batch {} will do"],
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains(&stream_id));
    // A malformed chunk is pinpointed.
    let (bad, _) = open(&s, &src).await;
    let response = post(&s, &stream_url(&s, &src, &format!("/{bad}/chunk"))).await;
    let uri = response.json::<Value>().await.unwrap()["uploadUri"].as_str().unwrap().to_string();
    s.upload(&uri, b"{\"addOrUpdate\": [{\"documentId\": \"product://x\", \"data\": \"x\"},]}".to_vec()).await;
    assert_error(
        close(&s, &src, &bad).await,
        404,
        "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
        &["chunk 2 of 2", "trailing comma", "line 1"],
    )
    .await;

    // Closed: no chunk, no second close.
    let (done, first_uri) = open(&s, &src).await;
    assert_eq!(
        s.upload(&first_uri, json!({"addOrUpdate": [product("z", "Z", 1.0)]}).to_string().into_bytes()).await.status(),
        200,
        "the open container is a chunk too (pushapi-cli uploads there)"
    );
    assert_eq!(close(&s, &src, &done).await.status(), 200);
    assert_error(close(&s, &src, &done).await, 412, "STREAM_CLOSED", &[&done, "already closed"]).await;
    assert_error(post(&s, &stream_url(&s, &src, &format!("/{done}/chunk"))).await, 412, "STREAM_CLOSED", &[&done])
        .await;
    s.settle().await;
    assert_eq!(catalog(&s).await.keys().collect::<Vec<_>>(), ["product://z"]);

    // Now loaded: a malformed partial update is refused whole, with its place.
    let bad_update = json!({"partialUpdate": [{"documentId": "product://z", "operator": "increment", "field": "price", "value": 1}]});
    assert_error(
        stream_file(&s, &src, "update", &bad_update).await,
        404,
        "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
        &["'partialUpdate[0].operator' is 'increment'", "fieldValueReplace", "line 1"],
    )
    .await;
    let missing = s.request(Method::PUT, &stream_url(&s, &src, "/update")).json(&json!({})).send().await.unwrap();
    assert_error(missing, 412, "MISSING_PARAMETER", &["fileId"]).await;
    let epoch = post(&s, &stream_url(&s, &src, "/deleteolderthan/yesterday")).await;
    assert_error(epoch, 412, "INVALID_PARAMETER", &["epochMilliseconds", "yesterday"]).await;

    // Paused: refused like every push call.
    let pause = s.request(Method::POST, &s.url(&format!("/rest/organizations/{}/pause", s.org))).send().await.unwrap();
    assert!(pause.status().is_success());
    assert_error(post(&s, &stream_url(&s, &src, "/open")).await, 400, "ORGANIZATION_IS_PAUSED", &[]).await;
}

#[tokio::test]
async fn an_abandoned_stream_expires_with_its_chunks() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    let (stream_id, _) = open(&s, &src).await;
    chunk(&s, &src, &stream_id, &json!({"addOrUpdate": [product("a", "A", 1.0)]})).await;
    let stored = || s.server.state.blobs.total_bytes().unwrap();
    assert!(stored() >= 1);
    s.clock.advance_ms(23 * 3600 * 1000);
    assert_eq!(
        post(&s, &stream_url(&s, &src, &format!("/{stream_id}/chunk"))).await.status(),
        200,
        "alive for 24 hours"
    );
    s.clock.advance_ms(3600 * 1000);
    assert_error(close(&s, &src, &stream_id).await, 404, "STREAM_NOT_FOUND", &[&stream_id]).await;
    wait_for(|| async { stored() == 0 }).await;
    // The stream is forgotten just after its chunks are deleted (in that order, so a crash leaks no chunk).
    let forgotten = || async { close(&s, &src, &stream_id).await.text().await.unwrap().contains("does not exist") };
    wait_for(forgotten).await;
    assert_error(close(&s, &src, &stream_id).await, 404, "STREAM_NOT_FOUND", &["does not exist"]).await;
}

#[tokio::test]
async fn quotas_privileges_and_faults_apply_to_stream_calls() {
    let s = TestServer::start().await;
    let src = catalog_source(&s).await;
    let org = s.org.clone();
    // A key that may only view: refused before anything is created.
    let keys = s.url(&format!("/rest/organizations/{org}/apikeys"));
    let viewer = json!({"displayName": "viewer", "privileges": [{"owner": "PLATFORM", "targetDomain": "ORGANIZATION", "type": "VIEW", "targetId": "*"}]});
    let key: Value = s.request(Method::POST, &keys).json(&viewer).send().await.unwrap().json().await.unwrap();
    let denied = s
        .client
        .post(stream_url(&s, &src, "/open"))
        .bearer_auth(key["value"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(denied, 403, "ACCESS_DENIED", &["SOURCE", "EDIT"]).await;
    // A fault rule on the stream routes answers in their place, then lets them through.
    let faults = s.url(&format!("/rest/organizations/{org}/faults"));
    let rule = json!({"status": 429, "count": 1, "retryAfter": 3, "route": "*/stream/*"});
    assert_eq!(s.request(Method::POST, &faults).json(&rule).send().await.unwrap().status(), 201);
    let throttled = post(&s, &stream_url(&s, &src, "/open")).await;
    assert_eq!(throttled.headers().get("retry-after").unwrap(), "3");
    assert_error(throttled, 429, "TOO_MANY_REQUESTS", &["fault rule"]).await;
    // The daily document limit counts a load's items, refused whole at the close.
    let limit = s.url(&format!("/rest/organizations/{org}/limits/pushApiMaximumDailyDocumentLimit"));
    assert!(s.request(Method::PUT, &limit).json(&json!({"value": 3})).send().await.unwrap().status().is_success());
    let (stream_id, _) = open(&s, &src).await;
    let four: Vec<Value> = (0..4).map(|i| product(&format!("p{i}"), "P", 1.0)).collect();
    chunk(&s, &src, &stream_id, &json!({"addOrUpdate": four})).await;
    assert_error(
        close(&s, &src, &stream_id).await,
        429,
        "TOO_MANY_DOCUMENTS_DAILY",
        &["pushApiMaximumDailyDocumentLimit"],
    )
    .await;
    // Refused, the stream stays open and its chunks usable: with the limit raised, the same close goes through.
    assert!(s.request(Method::PUT, &limit).json(&json!({"value": 100})).send().await.unwrap().status().is_success());
    assert_eq!(close(&s, &src, &stream_id).await.status(), 200);
    s.settle().await;
    assert_eq!(catalog(&s).await.len(), 4);
}
