//! Hostile input over real HTTP: what an attacker with a key, or an unlucky client, sends. Each test failed
//! before its fix; each asserts the status, the error code, the words of the message, and that the server is
//! still up and right afterwards.

use crate::common;

use common::{TestServer, assert_error, form};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn search_error(s: &TestServer, body: Value) -> reqwest::Response {
    s.request(Method::POST, &s.url(&format!("/rest/search/v2?organizationId={}", s.org)))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn assert_still_serving(s: &TestServer) {
    assert_eq!(s.client.get(s.url("/health")).send().await.unwrap().status(), StatusCode::OK);
    let found = s.search(json!({"q": "survivor"})).await;
    assert_eq!(found["totalCount"], 1, "{found}");
}

#[tokio::test]
async fn deep_or_huge_queries_are_refused_naming_the_limit() {
    let s = TestServer::start().await;
    assert_eq!(s.put_item("file://survivor", &json!({"data": "<p>survivor</p>"}), "").await.status(), 202);
    s.settle().await;
    let parens = |n: usize, inner: &str| format!("{}{inner}{}", "(".repeat(n), ")".repeat(n));
    let cases: Vec<(&str, String, &str)> = vec![
        ("aq", parens(3000, "@title==a"), "64 levels"),
        ("aq", "NOT ".repeat(10_000) + "@title==a", "64 levels"),
        ("aq", "-".repeat(100_000) + "@title==a", "65536 characters"),
        ("aq", "-".repeat(65) + "@title==a", "64 levels"),
        ("q", parens(100_000, "a"), "65536 characters"),
        ("q", parens(5_000, "a"), "64 levels"),
        ("q", "NOT ".repeat(50_000) + "a", "65536 characters"),
        ("q", "NOT ".repeat(100) + "a", "64 levels"),
        ("q", "word ".repeat(100_000), "65536 characters"),
        ("q", "word ".repeat(1_025), "1024 terms"),
        ("aq", format!("@uri==({})", vec!["x"; 100_000].join(",")), "65536 characters"),
        ("aq", format!("@uri==({})", vec!["x"; 1_025].join(",")), "1024 terms"),
    ];
    for (parameter, expression, limit) in &cases {
        let response = search_error(&s, json!({ *parameter: expression })).await;
        let quoted = format!("'{parameter}'");
        assert_error(response, 400, "INVALID_QUERY_SYNTAX", &[&quoted, limit]).await;
    }
    // The GET form takes the same path.
    let url = s.url(&format!("/rest/search/v2?organizationId={}&aq={}", s.org, form(&parens(5000, "@title==a"))));
    assert_error(s.request(Method::GET, &url).send().await.unwrap(), 400, "INVALID_QUERY_SYNTAX", &["64 levels"]).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn queries_at_the_limits_are_answered() {
    let s = TestServer::start().await;
    assert_eq!(s.put_item("file://survivor", &json!({"data": "<p>survivor</p>"}), "").await.status(), 202);
    s.settle().await;
    let deep = format!("{}@title==survivor{}", "(".repeat(64), ")".repeat(64));
    assert_eq!(s.search(json!({"aq": deep})).await["totalCount"], 1);
    let many = "survivor ".repeat(1024);
    assert_eq!(s.search(json!({"q": many})).await["totalCount"], 1);
    let list = format!(
        "@uri==({})",
        (0..1023).map(|i| format!("file://{i}")).chain(["file://survivor".into()]).collect::<Vec<_>>().join(",")
    );
    assert_eq!(s.search(json!({"aq": list})).await["totalCount"], 1);
    // What does not parse as syntax is taken as words, within the same limits.
    assert_eq!(s.search(json!({"q": "survivor ((( \""})).await["totalCount"], 1);
    assert_eq!(s.search(json!({"q": "survivor -"})).await["totalCount"], 1, "punctuation neither narrows nor empties");
    assert_eq!(s.search(json!({"q": "*"})).await["totalCount"], 1);
}

#[tokio::test]
async fn a_search_body_must_be_an_object() {
    let s = TestServer::start().await;
    assert_eq!(s.put_item("file://survivor", &json!({"data": "<p>survivor</p>"}), "").await.status(), 202);
    s.settle().await;
    for (body, kind) in [(json!([1, 2]), "an array"), (json!("q"), "a string"), (json!(7), "a number")] {
        assert_error(search_error(&s, body).await, 400, "INVALID_JSON", &["JSON object", kind]).await;
    }
    assert_still_serving(&s).await;
}

/// An item that names another organization's file container fails in its own logs, and the container stays
/// its owner's: checked when the item is pushed and again when it is applied.
#[tokio::test]
async fn an_item_cannot_consume_another_organizations_container() {
    let s = TestServer::start().await;
    let master = |method: Method, path: &str, body: Value| {
        let request = s.request(method, &s.url(path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.unwrap_or(Value::Null)
        }
    };
    master(Method::POST, "/rest/organizations", json!({"id": "globex", "displayName": "Globex"})).await;
    let victim_source = master(Method::POST, "/rest/organizations/globex/sources", json!({"name": "docs"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Globex makes and fills a container with a batch.
    let created = master(Method::POST, "/push/v1/organizations/globex/files", json!({})).await;
    let (uri, file_id) = (created["uploadUri"].as_str().unwrap(), created["fileId"].as_str().unwrap().to_string());
    let batch = json!({"addOrUpdate": [{"documentId": "file://globex/1", "data": "<p>globex private</p>"}]});
    assert_eq!(s.upload(uri, batch.to_string().into_bytes()).await.status(), 200);

    // The default organization pushes an item naming it: accepted as Coveo does, then an ERROR in its logs.
    let response = s
        .put_item(
            "file://thief",
            &json!({"compressedBinaryDataFileId": file_id, "compressionType": "UNCOMPRESSED"}),
            "",
        )
        .await;
    assert_eq!(response.status(), 202);
    s.settle().await;
    let logs = s.logs(Some("file://thief"), json!({})).await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["result"], "ERROR");
    assert!(logs[0]["meta"]["error"].as_str().unwrap().contains("does not exist"), "{logs:?}");

    // The container is still Globex's, and its batch goes through.
    let url = s.url(&format!("/push/v1/organizations/globex/sources/{victim_source}/documents/batch?fileId={file_id}"));
    let response = s.request(Method::PUT, &url).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    s.settle().await;
    let found = s.search_in("globex", json!({"q": "private"})).await;
    assert_eq!(found["totalCount"], 1, "{found}");
}

#[tokio::test]
async fn ambiguous_or_padded_parameters_are_refused_naming_them() {
    let s = TestServer::start().await;
    let twice = format!("{}?documentId=file%3A%2F%2Fa&documentId=file%3A%2F%2Fb", s.source_url("/documents"));
    let response = s.request(Method::PUT, &twice).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(response, 412, "INVALID_PARAMETER", &["'documentId' is given 2 times"]).await;
    for padded in ["%205", "5%20", "%2B5"] {
        let response = s.put_item("file://a", &json!({"data": "x"}), &format!("&orderingId={padded}")).await;
        assert_error(response, 412, "INVALID_PARAMETER", &["'orderingId'", "integer"]).await;
    }
    assert_eq!(s.put_item("file://a", &json!({"data": "x"}), "&orderingId=5").await.status(), 202);
}

#[tokio::test]
async fn refusals_speak_of_what_was_sent() {
    let s = TestServer::start().await;
    // An oversized search or API key body is not told to use file containers.
    let huge = json!({"q": "x".repeat(2 * 1024 * 1024)});
    let body =
        assert_error(search_error(&s, huge.clone()).await, 413, "REQUEST_ENTITY_TOO_LARGE", &["The search body"]).await;
    assert!(!body["message"].as_str().unwrap().contains("container"), "{body}");
    let url = s.url(&format!("/rest/organizations/{}/apikeys", s.org));
    let response = s.request(Method::POST, &url).json(&huge).send().await.unwrap();
    let body = assert_error(response, 413, "REQUEST_ENTITY_TOO_LARGE", &["The request body"]).await;
    assert!(!body["message"].as_str().unwrap().contains("container"), "{body}");
    // A bad expirationDate is quoted as JSON, not as Rust's debug form.
    let response =
        s.request(Method::POST, &url).json(&json!({"displayName": "k", "expirationDate": "tomorrow"})).send();
    let body =
        assert_error(response.await.unwrap(), 412, "INVALID_PARAMETER", &["'\"tomorrow\"'", "epoch milliseconds"])
            .await;
    assert!(!body["message"].as_str().unwrap().contains("String("), "{body}");
    // A rate of 0 would mean nothing: refused, with what to do instead.
    let limit = s.url(&format!("/rest/organizations/{}/limits/content/pushApiRequestsPerSecond", s.org));
    let response = s.request(Method::PUT, &limit).json(&json!({"value": 0})).send().await.unwrap();
    assert_error(response, 412, "INVALID_PARAMETER", &["at least 1", "pause the organization"]).await;
    // An over-long URI and oversized headers get the JSON error too.
    let long = s.url(&format!("/rest/search/v2?q={}", "a".repeat(40_000)));
    assert_error(s.request(Method::GET, &long).send().await.unwrap(), 414, "URI_TOO_LONG", &["32 KiB"]).await;
    let mut request = s.request(Method::GET, &s.url("/rest/search/v2"));
    for i in 0..120 {
        request = request.header(format!("x-extra-{i}"), "v");
    }
    assert_error(
        request.send().await.unwrap(),
        431,
        "REQUEST_HEADER_FIELDS_TOO_LARGE",
        &["123 headers", "100 headers"],
    )
    .await;
}
