//! The item path end to end over real HTTP: push, apply, search, logs, restart.

use crate::common;

use common::{TestServer, assert_error, b64, compress, form, wait_for};
use intake_model::SourceStatus;
use reqwest::Method;
use serde_json::{Value, json};

const HTML: &str = "<html><head><title>Compressed page</title></head><body><p>zebra crossing</p></body></html>";

#[tokio::test]
async fn an_item_with_metadata_and_permissions_is_searchable() {
    let s = TestServer::start().await;
    let body = json!({
        "title": "Acceptance doc",
        "data": "<html><body><p>hello push api</p><script>var hidden = 1;</script></body></html>",
        "author": "alice",
        "clickableUri": "https://example.com/click/1",
        "fileExtension": ".html",
        "date": "2024-01-02T03:04:05.000Z",
        "category": "news",
        "tags": ["a", "b"],
        "rank": 3,
        "permissions": [{"allowAnonymous": false,
            "allowedPermissions": [{"identityType": "User", "identity": "alice@example.com", "securityProvider": "Email Security Provider"}],
            "deniedPermissions": [{"identityType": "Group", "identity": "contractors"}]}],
        "documentId": "file:///somewhere/else"
    });
    let response = s.put_item("https://example.com/docs/1", &body, "").await;
    assert_eq!(response.status(), 202);
    s.settle().await;
    let found = s.search(json!({"q": "hello"})).await;
    assert_eq!(found["totalCount"], 1);
    let hit = &found["results"][0];
    assert_eq!(hit["uri"], "https://example.com/docs/1", "the query's documentId wins over the body's");
    assert_eq!(hit["title"], "Acceptance doc");
    assert_eq!(hit["clickUri"], "https://example.com/click/1");
    assert_eq!(hit["raw"]["author"], "alice");
    assert_eq!(hit["raw"]["tags"], json!(["a", "b"]));
    assert_eq!(hit["raw"]["rank"], 3);
    assert_eq!(hit["raw"]["filetype"], "html");
    assert_eq!(hit["raw"]["date"], 1_704_164_645_000i64);
    assert!(hit["excerpt"].as_str().unwrap().contains("hello"), "{hit}");
    assert_eq!(s.search(json!({"q": "hidden"})).await["totalCount"], 0, "script text is not indexed");
    assert_eq!(s.uris("@category==news @rank==3 @tags==b").await, ["https://example.com/docs/1"]);
    assert_eq!(s.uris(r#"@author=="ALICE""#).await, ["https://example.com/docs/1"]);
    assert_eq!(s.uris("@date==2024/01/02").await, ["https://example.com/docs/1"]);
    let entries = s.logs(Some("https://example.com/docs/1"), json!({})).await;
    // The test source is SHARED: its permissions decide nothing, so naming identities never pushed is no warning.
    assert_eq!((entries[0]["operation"].as_str(), entries[0]["result"].as_str()), (Some("ADD"), Some("COMPLETED")));
}

#[tokio::test]
async fn all_five_compression_types_decode() {
    let s = TestServer::start().await;
    let kinds = ["UNCOMPRESSED", "ZLIB", "GZIP", "DEFLATE", "LZMA", "LZMA-ALONE"];
    for kind in kinds {
        let declared = kind.split('-').next().unwrap();
        let body = json!({ "compressedBinaryData": b64(&compress(kind, HTML.as_bytes())), "fileExtension": ".html" });
        let response = s.put_item(&format!("file://c/{kind}"), &body, &format!("&compressionType={declared}")).await;
        assert_eq!(response.status(), 202, "{kind}");
    }
    // compressionType in the body, and ZLIB by default with none at all.
    s.put_item(
        "file://c/body-type",
        &json!({"compressedBinaryData": b64(&compress("GZIP", HTML.as_bytes())), "compressionType": "GZip"}),
        "",
    )
    .await;
    s.put_item("file://c/default", &json!({"compressedBinaryData": b64(&compress("ZLIB", HTML.as_bytes()))}), "").await;
    // DEFLATE takes zlib-wrapped streams too.
    s.put_item(
        "file://c/deflate-zlib",
        &json!({"compressedBinaryData": b64(&compress("ZLIB", HTML.as_bytes()))}),
        "&compressionType=DEFLATE",
    )
    .await;
    s.settle().await;
    let found = s.search(json!({"q": "zebra", "numberOfResults": 50})).await;
    assert_eq!(found["totalCount"], kinds.len() + 3, "{found}");
    assert!(found["results"].as_array().unwrap().iter().all(|r| r["title"] == "Compressed page"));
}

#[tokio::test]
async fn document_ids_with_spaces_non_ascii_and_url_specials() {
    let s = TestServer::start().await;
    let ids = [
        "https://example.com/docs/a b/été?x=1&y=2#frag",
        "file:///home/ünïcødé/文档.txt",
        "plain id with spaces",
        "urn:a=b&c=d?e#f+g%20h",
    ];
    for id in ids {
        // Encoded exactly as the Node and Python SDKs do (form encoding, space as '+').
        assert_eq!(s.put_item(id, &json!({"data": format!("<p>item {id}</p>")}), "").await.status(), 202, "{id}");
    }
    s.settle().await;
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(s.uris("").await, expected);
    for id in ids {
        let aq = format!("@uri==\"{}\"", id.replace('"', "\\\""));
        assert_eq!(s.uris(&aq).await, [id], "{aq}");
    }
    assert_eq!(s.delete_item(ids[0], "").await.status(), 202);
    s.settle().await;
    assert_eq!(s.uris("").await.len(), ids.len() - 1);
    // %20 decodes to a space as well as '+'.
    let url = format!("{}?documentId=plain%20id+with%20spaces", s.source_url("/documents"));
    assert_eq!(s.request(Method::DELETE, &url).send().await.unwrap().status(), 202);
    s.settle().await;
    assert_eq!(s.uris("").await.len(), ids.len() - 2);
}

#[tokio::test]
async fn the_highest_ordering_id_wins_over_http() {
    let s = TestServer::start().await;
    s.put_item("file://o", &json!({"data": "<p>second version</p>"}), "&orderingId=200").await;
    s.put_item("file://o", &json!({"data": "<p>first version</p>"}), "&orderingId=100").await;
    s.delete_item("file://o", "&orderingId=150").await;
    s.settle().await;
    assert_eq!(s.search(json!({"q": "second"})).await["totalCount"], 1);
    assert_eq!(s.search(json!({"q": "first"})).await["totalCount"], 0);
    let entries = s.logs(Some("file://o"), json!({"results": ["SKIPPED"]})).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| { e["meta"]["error"].as_str().unwrap().contains("higher orderingId (200") }));
    // A later delete with a higher orderingId wins; an add below it afterwards loses.
    s.delete_item("file://o", "&orderingId=300").await;
    s.put_item("file://o", &json!({"data": "<p>zombie</p>"}), "&orderingId=250").await;
    s.settle().await;
    assert!(s.uris("").await.is_empty());
}

#[tokio::test]
async fn delete_children_deletes_by_uri_prefix() {
    let s = TestServer::start().await;
    for id in
        ["file://folder", "file://folder/file1.txt", "file://folder/subfolder/file2.txt", "file://folder2/keep.txt"]
    {
        s.put_item(id, &json!({"data": "x"}), "").await;
    }
    s.settle().await;
    assert_eq!(s.delete_item("file://folder", "&deleteChildren=true").await.status(), 202);
    s.settle().await;
    assert_eq!(s.uris("").await, ["file://folder2/keep.txt"]);
    let entries = s.logs(None, json!({"operations": ["DELETE_AND_CHILDREN"], "results": ["COMPLETED"]})).await;
    assert_eq!(entries.len(), 3, "{entries:?}");
}

#[tokio::test]
async fn delete_older_than_waits_for_the_queue_delay_then_rejects_older_items() {
    let s = TestServer::start().await;
    s.put_item("file://old", &json!({"data": "x"}), "&orderingId=1000").await;
    s.put_item("file://new", &json!({"data": "x"}), "&orderingId=3000").await;
    let response =
        s.request(Method::DELETE, &s.source_url("/documents/olderthan?orderingId=2000")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    s.settle().await;
    assert_eq!(s.uris("").await.len(), 2, "nothing happens before queueDelay (15 minutes by default)");
    s.clock.advance_ms(14 * 60_000);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(s.uris("").await.len(), 2);
    s.clock.advance_ms(60_000);
    wait_for(|| async { s.uris("").await == ["file://new"] }).await;
    // Once a search shows the delete, the Logs API shows its outcome: they see the commit at the same moment.
    let deleted = s.logs(Some("file://old"), json!({"operations": ["DELETE_OLDER_THAN"]})).await;
    assert_eq!(deleted[0]["result"], "COMPLETED");

    s.put_item("file://late", &json!({"data": "x"}), "&orderingId=1500").await;
    s.settle().await;
    let rejected = s.logs(Some("file://late"), json!({})).await;
    assert_eq!(rejected[0]["result"], "REJECTED");
    assert!(rejected[0]["meta"]["error"].as_str().unwrap().contains("older than the watermark 2000"), "{rejected:?}");
    assert_eq!(s.uris("").await, ["file://new"]);

    // queueDelay=0 applies at once.
    let url = s.source_url("/documents/olderthan?orderingId=5000&queueDelay=0");
    assert_eq!(s.request(Method::DELETE, &url).send().await.unwrap().status(), 202);
    wait_for(|| async { s.uris("").await.is_empty() }).await;
}

#[tokio::test]
async fn source_status_is_set_with_a_json_answer() {
    let s = TestServer::start().await;
    for status in ["REBUILD", "refresh", "IDLE"] {
        let response = s
            .request(Method::POST, &s.source_url(&format!("/status?statusType={status}")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("the Node SDK parses this body");
        assert!(body.is_object());
    }
    let source = s.server.state.catalog.source(&s.org, &s.src).unwrap();
    assert_eq!(source.status, Some(SourceStatus::Idle));
}

#[tokio::test]
async fn the_legacy_v1_prefix_serves_the_same_endpoints() {
    let s = TestServer::start().await;
    let base = s.url(&format!("/v1/organizations/{}/sources/{}", s.org, s.src));
    let put = s
        .request(Method::PUT, &format!("{base}/documents?documentId=file%3A%2F%2Flegacy"))
        .json(&json!({"Data": "legacy text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 202);
    let status = s
        .request(Method::POST, &format!("{base}/status?statusType=IDLE"))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 201);
    s.settle().await;
    assert_eq!(s.uris("").await, ["file://legacy"]);
    let older = s
        .request(Method::DELETE, &format!("{base}/documents/olderthan?orderingId=99999999999999&queueDelay=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(older.status(), 202);
    wait_for(|| async { s.uris("").await.is_empty() }).await;
}

#[tokio::test]
async fn search_pages_sorts_and_explains_bad_queries() {
    let s = TestServer::start().await;
    for i in 0..25 {
        let body = json!({"data": format!("<p>common word {i}</p>"), "date": format!("2024-01-{:02}T00:00:00Z", i + 1), "parity": if i % 2 == 0 { "even" } else { "odd" }});
        s.put_item(&format!("file://p/{i:02}"), &body, "").await;
    }
    s.settle().await;
    let page = s.search(json!({"q": "common", "numberOfResults": 10, "firstResult": 20})).await;
    assert_eq!(page["totalCount"], 25);
    assert_eq!(page["results"].as_array().unwrap().len(), 5);
    let newest = s.search(json!({"sortCriteria": "date descending", "numberOfResults": 1})).await;
    assert_eq!(newest["results"][0]["uri"], "file://p/24");
    let oldest = s.search(json!({"sortCriteria": "date ascending", "numberOfResults": 1})).await;
    assert_eq!(oldest["results"][0]["uri"], "file://p/00");
    let evens = s.search(json!({"aq": "@parity==even AND @date>=2024/01/20", "numberOfResults": 100})).await;
    assert_eq!(evens["totalCount"], 3, "files 20, 22 and 24");
    // GET with query parameters works too.
    let url = s.url(&format!("/rest/search/v2?organizationId={}&q=common&numberOfResults=2", s.org));
    let get: Value = s.request(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!(get["results"].as_array().unwrap().len(), 2);

    let bad =
        s.request(Method::POST, &s.url("/rest/search/v2")).json(&json!({"aq": "@parity==(even"})).send().await.unwrap();
    assert_error(bad, 400, "INVALID_QUERY_SYNTAX", &["'aq'", "at character"]).await;
    let too_many = s
        .request(Method::POST, &s.url("/rest/search/v2"))
        .json(&json!({"numberOfResults": 5000}))
        .send()
        .await
        .unwrap();
    assert_error(too_many, 412, "INVALID_PARAMETER", &["'numberOfResults'", "5000", "0 to 2000"]).await;
    let range =
        s.request(Method::POST, &s.url("/rest/search/v2")).json(&json!({"aq": "@parity>3"})).send().await.unwrap();
    assert_error(range, 400, "INVALID_QUERY_SYNTAX", &["@parity", "not a declared numeric or date field"]).await;
    let not_json = s
        .request(Method::POST, &s.url("/rest/search/v2"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_error(not_json, 400, "INVALID_JSON", &["search body"]).await;
    let unknown =
        s.request(Method::POST, &s.url("/rest/search/v2?organizationId=nope")).json(&json!({})).send().await.unwrap();
    assert_error(unknown, 404, "ORGANIZATION_NOT_FOUND", &["'nope'"]).await;
}

#[tokio::test]
async fn logs_filter_page_and_match_ids() {
    let s = TestServer::start().await;
    for i in 0..5 {
        s.put_item(&format!("file://logs/item{i}"), &json!({"data": "x"}), "").await;
    }
    s.put_item("file://logs/broken", &json!({"compressedBinaryData": "AAAA", "compressionType": "GZIP"}), "").await;
    s.settle().await;
    let errors = s.logs(None, json!({"results": ["ERROR"]})).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["id"], "file://logs/broken");
    assert_eq!(s.logs(None, json!({"excludeResults": ["ERROR"]})).await.len(), 5);
    let url =
        s.url(&format!("/logs/v1/organizations/{}?documentId=item&documentIdMatching=PARTIAL&perPage=2&page=0", s.org));
    let page: Value = s
        .request(Method::POST, &url)
        .json(&json!({"sourcesIds": [s.src.clone()]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["documentLogEntries"].as_array().unwrap().len(), 2);
    assert_eq!(page["hasNextPage"], true);
    let url = s.url(&format!(
        "/logs/v1/organizations/{}?documentId={}&documentIdMatching=WILDCARD",
        s.org,
        form("file://logs/item*")
    ));
    let wild: Value = s.request(Method::POST, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!(wild["documentLogEntries"].as_array().unwrap().len(), 5);
    let bad = s
        .request(Method::POST, &s.url(&format!("/logs/v1/organizations/{}", s.org)))
        .json(&json!({"results": ["FINE"]}))
        .send()
        .await
        .unwrap();
    assert_error(bad, 400, "INVALID_JSON", &["'results'", "'FINE'", "COMPLETED"]).await;
    let from = s.url(&format!("/logs/v1/organizations/{}?from=yesterday", s.org));
    assert_error(
        s.request(Method::POST, &from).send().await.unwrap(),
        412,
        "INVALID_PARAMETER",
        &["'from'", "yesterday"],
    )
    .await;
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let s = TestServer::start().await;
    let (key, src) = (s.key.clone(), s.src.clone());
    for i in 0..20 {
        s.put_item(&format!("file://r/{i}"), &json!({"data": format!("<p>restart {i}</p>")}), "").await;
    }
    // Stop right after the last 202: what was journaled but not yet committed is replayed at start.
    let s = s.restart().await;
    assert_eq!((s.key.as_str(), s.src.as_str()), (key.as_str(), src.as_str()));
    s.settle().await;
    assert_eq!(s.search(json!({"q": "restart"})).await["totalCount"], 20);
    assert_eq!(s.logs(None, json!({"results": ["COMPLETED"]})).await.len(), 20, "each operation logged exactly once");
    s.delete_item("file://r/0", "").await;
    let s = s.restart().await;
    s.settle().await;
    assert_eq!(s.search(json!({"q": "restart"})).await["totalCount"], 19);
}

/// A document of megabytes pushed alone (on PostgreSQL + S3 its journal record is an object written before its
/// row) is replayed whole after a restart right after its 202, with small ones around it.
#[tokio::test]
async fn a_document_of_megabytes_pushed_alone_is_replayed_whole() {
    let s = TestServer::start().await;
    let filler = "<p>lorem ipsum dolor sit amet consectetur</p>".repeat(60_000); // 2.7 MB
    let large = json!({"data": format!("<html><body><p>firstword</p>{filler}<p>lastword</p></body></html>")});
    s.put_item("file://large/before", &json!({"data": "<p>small neighbour</p>"}), "").await;
    assert_eq!(s.put_item("file://large/1", &large, "").await.status(), 202);
    s.put_item("file://large/after", &json!({"data": "<p>small neighbour</p>"}), "").await;
    let s = s.restart().await;
    s.settle().await;
    assert_eq!(s.uris("firstword lastword").await, ["file://large/1"], "the whole document, first to last word");
    assert_eq!(s.search(json!({"q": "neighbour"})).await["totalCount"], 2);
    let entries = s.logs(Some("file://large/1"), json!({})).await;
    assert_eq!((entries.len(), entries[0]["result"].as_str()), (1, Some("COMPLETED")));
}

#[tokio::test]
async fn operations_endpoints() {
    let s = TestServer::start().await;
    s.put_item("file://m", &json!({"data": "x"}), "").await;
    s.settle().await;
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "intake_http_requests_total",
        "intake_journal_lag_records",
        "intake_items_applied_total{result=\"COMPLETED\"} 1",
        "intake_accept_to_searchable_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    assert!(metrics.contains("route=\"/push/v1/organizations/{org}/sources/{src}/documents\""), "{metrics}");
    let openapi: Value = s.client.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(openapi["paths"]["/push/v1/organizations/{org}/sources/{src}/documents"]["put"].is_object());
    assert!(openapi["paths"]["/rest/search/v2"]["post"].is_object());
    let docs = s.client.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("/openapi.json"));
    let ready: Value = s.client.get(s.url("/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let shared = std::env::var("INTAKE_TEST_BACKEND").is_ok_and(|b| b == "postgres");
    let (database, blobs) = if shared { ("postgresql", "s3") } else { ("sqlite", "local") };
    assert_eq!(ready["storage"], json!({"database": database, "blobs": blobs}), "{ready}");
    let info = format!("intake_storage_info{{database=\"{database}\",blobs=\"{blobs}\"}} 1");
    assert!(metrics.contains(&info), "{info} missing from\n{metrics}");
}
