//! Every mistake a client can make on the item path, answered with the catalog's status and code and a
//! message that names the culprit — over real HTTP.

use crate::common;

use std::io::Write;

use axum::routing::get;
use base64::Engine;
use common::{TestServer, assert_error, form};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn malformed_bodies_are_invalid_json_naming_the_fault() {
    let s = TestServer::start().await;
    let cases: &[(&str, &[&str])] = &[
        ("not json", &["not valid JSON", "line 1"]),
        (r#"{"data":"x"} {"#, &["trailing characters"]),
        (r#"{"data":"x","title":"a","Title":"b"}"#, &["duplicate key 'Title'", "repeats 'title'"]),
        (
            r#"{"data":"x","permissions":[{"allowAnonymous":true,"ALLOWANONYMOUS":false}]}"#,
            &["duplicate key 'ALLOWANONYMOUS'", "permissions[0]"],
        ),
        (
            r#"{"title":"no data"}"#,
            &["no item data", "'data'", "'compressedBinaryData'", "'compressedBinaryDataFileId'"],
        ),
        (r#"{"data":"x","compressedBinaryData":"eA=="}"#, &["'data' and 'compressedBinaryData'", "exactly one"]),
        (r#"{"data":"x","meta":{"a":{"b":1}}}"#, &["Metadata 'meta.a' is an object inside a dictionary"]),
        (r#"{"data":"x","tags":["a",["b"]]}"#, &["Metadata 'tags' holds an array at index 1"]),
        (r#"{"compressedBinaryData":"not base64!"}"#, &["'compressedBinaryData'", "not Base64", "'!' at offset 10"]),
        (r#"{"data":["x"]}"#, &["'data' must be a string"]),
        (
            r#"{"data":"x","permissions":[{"allowedPermissions":[{"identity":"a","identityType":"Robot"}]}]}"#,
            &["identityType", "'Robot'"],
        ),
    ];
    for (body, words) in cases {
        let url = format!("{}?documentId=file%3A%2F%2Fa", s.source_url("/documents"));
        let response =
            s.request(Method::PUT, &url).header("content-type", "application/json").body(*body).send().await.unwrap();
        assert_error(response, 400, "INVALID_JSON", words).await;
    }
}

#[tokio::test]
async fn missing_parameters_are_named() {
    let s = TestServer::start().await;
    let put = s.request(Method::PUT, &s.source_url("/documents")).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(put, 412, "MISSING_PARAMETER", &["'documentId'"]).await;
    let delete = s.request(Method::DELETE, &s.source_url("/documents?deleteChildren=true")).send().await.unwrap();
    assert_error(delete, 412, "MISSING_PARAMETER", &["'documentId'"]).await;
    let older = s.request(Method::DELETE, &s.source_url("/documents/olderthan?queueDelay=0")).send().await.unwrap();
    assert_error(older, 412, "MISSING_PARAMETER", &["'orderingId'"]).await;
    let status = s.request(Method::POST, &s.source_url("/status")).json(&json!({})).send().await.unwrap();
    assert_error(status, 412, "MISSING_PARAMETER", &["'statusType'"]).await;
    let empty_body = s
        .request(Method::PUT, &s.source_url("/documents?documentId=x"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_error(empty_body, 412, "MISSING_PARAMETER", &["'documentBody'"]).await;
}

#[tokio::test]
async fn invalid_parameters_say_what_would_be_valid() {
    let s = TestServer::start().await;
    let put = |query: &'static str| {
        let url = format!("{}?documentId=file%3A%2F%2Fa&{query}", s.source_url("/documents"));
        s.request(Method::PUT, &url).json(&json!({"data": "x"})).send()
    };
    assert_error(
        put("orderingId=12abc").await.unwrap(),
        412,
        "INVALID_PARAMETER",
        &["'orderingId'", "12abc", "64-bit integer"],
    )
    .await;
    assert_error(put("orderingId=99999999999999999999").await.unwrap(), 412, "INVALID_PARAMETER", &["'orderingId'"])
        .await;
    assert_error(put("orderingId=-5").await.unwrap(), 412, "INVALID_PARAMETER", &["'orderingId'", "-5"]).await;
    assert_error(
        put("compressionType=BZIP2").await.unwrap(),
        412,
        "INVALID_PARAMETER",
        &["'compressionType'", "BZIP2", "UNCOMPRESSED, DEFLATE, GZIP, LZMA, ZLIB"],
    )
    .await;

    let delete = s
        .request(Method::DELETE, &format!("{}?documentId=x&deleteChildren=maybe", s.source_url("/documents")))
        .send()
        .await
        .unwrap();
    assert_error(delete, 412, "INVALID_PARAMETER", &["'deleteChildren'", "maybe", "true or false"]).await;
    for delay in ["-1", "1.5", "soon"] {
        let url = s.source_url(&format!("/documents/olderthan?orderingId=5&queueDelay={delay}"));
        let response = s.request(Method::DELETE, &url).send().await.unwrap();
        assert_error(response, 412, "INVALID_PARAMETER", &["'queueDelay'", delay, "integer from 0"]).await;
    }
    let status = s.request(Method::POST, &s.source_url("/status?statusType=PAUSED")).send().await.unwrap();
    assert_error(status, 412, "INVALID_PARAMETER", &["'statusType'", "PAUSED", "INCREMENTAL, REFRESH, REBUILD, IDLE"])
        .await;
    let long_id = "x".repeat(2001);
    let response = s.put_item(&long_id, &json!({"data": "x"}), "").await;
    assert_error(response, 412, "INVALID_PARAMETER", &["'documentId'", "2001 bytes", "at most 2000"]).await;
    let response = s
        .request(Method::PUT, &format!("{}?documentId=%FF%FE", s.source_url("/documents")))
        .json(&json!({"data": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 412, "INVALID_PARAMETER", &["'documentId'", "UTF-8"]).await;
}

#[tokio::test]
async fn unknown_organizations_and_sources() {
    let s = TestServer::start().await;
    let url = s.url(&format!("/push/v1/organizations/nosuchorg/sources/{}/documents?documentId=x", s.src));
    let response = s.request(Method::PUT, &url).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(response, 404, "ORGANIZATION_NOT_FOUND", &["'nosuchorg'"]).await;
    let url = s.url(&format!("/push/v1/organizations/{}/sources/default-nosuchsource/documents?documentId=x", s.org));
    let response = s.request(Method::PUT, &url).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(response, 412, "SOURCE_DOES_NOT_EXIST", &["'default-nosuchsource'", "'default'"]).await;
    let logs = s.request(Method::POST, &s.url("/logs/v1/organizations/nosuchorg")).send().await.unwrap();
    assert_error(logs, 404, "ORGANIZATION_NOT_FOUND", &["'nosuchorg'"]).await;
}

/// A call refused before its body is read closes its connection, and says so (`Connection: close`), so a client
/// does not send its next request on a connection about to close; a call that read its body keeps it open.
#[tokio::test]
async fn a_body_left_unread_closes_the_connection_and_says_so() {
    let s = TestServer::start().await;
    let connection =
        |response: &reqwest::Response| response.headers().get("connection").map(|v| v.to_str().unwrap().to_string());
    let url = s.url(&format!("/push/v1/organizations/{}/sources/default-nosuchsource/documents?documentId=x", s.org));
    let refused = s.request(Method::PUT, &url).json(&json!({"data": "x".repeat(100_000)})).send().await.unwrap();
    assert_eq!((refused.status().as_u16(), connection(&refused).as_deref()), (412, Some("close")));
    let accepted = s.put_item("file://kept-alive", &json!({"data": "x"}), "").await;
    assert_eq!((accepted.status().as_u16(), connection(&accepted)), (202, None));
    let invalid = s.put_item("file://invalid", &json!({"data": 1}), "").await;
    assert_eq!(
        (invalid.status().as_u16(), connection(&invalid)),
        (400, None),
        "the body was read: the connection stays"
    );
    let no_body = s.request(Method::GET, &s.url("/rest/organizations/nosuchorg")).send().await.unwrap();
    assert_eq!((no_body.status().as_u16(), connection(&no_body)), (404, None));
}

#[tokio::test]
async fn credentials_are_checked_first() {
    let s = TestServer::start().await;
    let url = format!("{}?documentId=x", s.source_url("/documents"));
    let none = s.client.put(&url).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(none, 401, "UNAUTHORIZED", &["no Authorization header"]).await;
    let basic = s
        .client
        .put(&url)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&json!({"data": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "UNAUTHORIZED", &["not of the form 'Bearer <token>'", "the Basic scheme"]).await;
    // A key sent without "Bearer " is never quoted back, not even its start.
    let secret = "intake_s3cr3tkeyvalue0123456789";
    let bare = s.client.put(&url).header("authorization", secret).json(&json!({"data": "x"})).send().await.unwrap();
    let body = assert_error(bare, 401, "UNAUTHORIZED", &["not shown"]).await;
    assert!(!body.to_string().contains("intake_s3"), "{body}");
    let spaced = s.client.put(&url).header("authorization", format!("{secret} x")).json(&json!({"data": "x"})).send();
    let body = assert_error(spaced.await.unwrap(), 401, "UNAUTHORIZED", &["not shown"]).await;
    assert!(!body.to_string().contains("intake_s3"), "{body}");
    let unknown = s.client.put(&url).bearer_auth("not-the-key").json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(unknown, 401, "INVALID_TOKEN", &["not recognized"]).await;
    let search = s.client.post(s.url("/rest/search/v2")).json(&json!({})).send().await.unwrap();
    assert_error(search, 401, "UNAUTHORIZED", &[]).await;
    // Operations endpoints are open.
    assert_eq!(s.client.get(s.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let s = TestServer::start().await;
    let url = format!("{}?documentId=file%3A%2F%2Fbig", s.source_url("/documents"));
    let six_mib = 6 * 1024 * 1024;
    let body = format!(r#"{{"data":"{}"}}"#, "a".repeat(six_mib));
    let response =
        s.request(Method::PUT, &url).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_error(response, 413, "REQUEST_ENTITY_TOO_LARGE", &["6291467 bytes", "6291456 bytes", "6 MiB"]).await;

    let data = format!(r#"{{"data":"{}"}}"#, "a".repeat(5 * 1024 * 1024 + 10));
    let response =
        s.request(Method::PUT, &url).header("content-type", "application/json").body(data).send().await.unwrap();
    assert_error(
        response,
        413,
        "REQUEST_ENTITY_TOO_LARGE",
        &["'data'", "5242890 bytes", "5 MiB", "compressedBinaryDataFileId"],
    )
    .await;

    let encoded = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 4 * 1024 * 1024]);
    let response = s.put_item("file://bin", &json!({"compressedBinaryData": encoded}), "").await;
    assert_error(response, 413, "REQUEST_ENTITY_TOO_LARGE", &["'compressedBinaryData'", "5592408 bytes"]).await;

    // Exactly at the 5 MiB inline limit is accepted.
    let at_limit = format!(r#"{{"data":"{}"}}"#, "a".repeat(5 * 1024 * 1024));
    let response =
        s.request(Method::PUT, &url).header("content-type", "application/json").body(at_limit).send().await.unwrap();
    assert_eq!(response.status(), 202);
}

/// A chunked body with no Content-Length is cut off at the limit, not read to its end.
#[tokio::test]
async fn a_chunked_body_is_refused_at_the_limit() {
    let s = TestServer::start().await;
    let mut stream = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    let head = format!(
        "PUT /push/v1/organizations/{}/sources/{}/documents?documentId=x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        s.org, s.src, s.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    // Send 7 MiB in 1 MiB chunks; the server answers before the end and may close the connection.
    for _ in 0..7 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("REQUEST_ENTITY_TOO_LARGE"), "{answer}");
}

#[tokio::test]
async fn wrong_content_types_are_refused() {
    let s = TestServer::start().await;
    let url = format!("{}?documentId=x", s.source_url("/documents"));
    let text =
        s.request(Method::PUT, &url).header("content-type", "text/plain").body(r#"{"data":"x"}"#).send().await.unwrap();
    assert_error(text, 415, "UNSUPPORTED_MEDIA_TYPE", &["'text/plain'", "application/json"]).await;
    let none = s.request(Method::PUT, &url).body(r#"{"data":"x"}"#).send().await.unwrap();
    assert_error(none, 415, "UNSUPPORTED_MEDIA_TYPE", &["no Content-Type"]).await;
    let form = s
        .request(Method::POST, &s.source_url("/status?statusType=IDLE"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_error(form, 415, "UNSUPPORTED_MEDIA_TYPE", &["application/x-www-form-urlencoded"]).await;
    // A charset is fine; an empty body is fine where none is needed, whatever its Content-Type.
    let charset = s
        .request(Method::PUT, &url)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"data":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(charset.status(), 202);
    let empty = s
        .request(Method::POST, &s.source_url("/status?statusType=IDLE"))
        .header("content-type", "application/json")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 201);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = TestServer::start().await;
    let response = s.request(Method::GET, &s.url("/push/v1/nothing/here")).send().await.unwrap();
    assert_error(response, 404, "NOT_FOUND", &["'/push/v1/nothing/here'"]).await;
    let response = s.request(Method::GET, &s.source_url("/documents")).send().await.unwrap();
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(allow.contains("PUT") && allow.contains("DELETE"), "{allow}");
    assert_error(response, 405, "METHOD_NOT_ALLOWED", &["GET is not allowed", "Allow header"]).await;
}

#[tokio::test]
async fn a_panic_is_a_json_500_with_the_request_id() {
    let s = TestServer::start().await;
    async fn boom() -> &'static str {
        panic!("the test handler exploded")
    }
    let routes = axum::Router::new().route("/boom", get(boom));
    let app = intake_server::wrap(routes, s.server.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let response = s.client.get(format!("http://{addr}/boom")).header("x-request-id", "boom-1").send().await.unwrap();
    let body = assert_error(response, 500, "INTERNAL_SERVER_ERROR", &["internal error", "request id"]).await;
    assert_eq!(body["requestId"], "boom-1");
}

#[tokio::test]
async fn bad_item_data_is_an_error_in_the_logs_and_harms_nothing_else() {
    let s = TestServer::start_with(|config| config.max_item_bytes = 1024 * 1024).await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(b"<p>gzip data</p>").unwrap();
    let gzip = gzip.finish().unwrap();
    let mut bomb = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![b'a'; 3 * 1024 * 1024]).unwrap();
    let bomb = bomb.finish().unwrap();

    let cases = [
        (
            "file://corrupt",
            json!({"compressedBinaryData": b64(&[0x78, 0x9c, 1, 2, 3, 4]), "compressionType": "ZLIB"}),
            "data failed to decompress as ZLIB",
        ),
        (
            "file://mismatch",
            json!({"compressedBinaryData": b64(&gzip)}),
            "compressionType mismatch: the item declares ZLIB but its data is a GZIP stream",
        ),
        (
            "file://bomb",
            json!({"compressedBinaryData": b64(&bomb), "compressionType": "ZLIB"}),
            "expands past the limit of 1048576 bytes",
        ),
        (
            "file://nofile",
            json!({"compressedBinaryDataFileId": "no-such-container"}),
            "file container 'no-such-container' does not exist",
        ),
    ];
    for (id, body, _) in &cases {
        assert_eq!(s.put_item(id, body, "").await.status(), 202);
    }
    assert_eq!(s.put_item("file://fine", &json!({"data": "<p>fine</p>"}), "").await.status(), 202);
    s.settle().await;
    for (id, _, reason) in &cases {
        let entries = s.logs(Some(id), json!({})).await;
        assert_eq!(entries.len(), 1, "{id}: {entries:?}");
        // Data past the size limit breaks a limit (REJECTED); data that does not decode is an ERROR.
        let (result, task) = if *id == "file://bomb" { ("REJECTED", "VALIDATION") } else { ("ERROR", "PROCESSING") };
        assert_eq!(entries[0]["result"], result, "{id}");
        assert_eq!(entries[0]["task"], task, "{id}");
        let error = entries[0]["meta"]["error"].as_str().unwrap();
        assert!(error.contains(reason), "{id}: {error}");
    }
    assert_eq!(s.uris("").await, ["file://fine"]);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_the_security_headers() {
    let s = TestServer::start().await;
    let response = s.put_item("file://a", &json!({"data": "x"}), "").await;
    assert_eq!(response.status(), 202);
    let id = response.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    assert_eq!(response.headers().get("x-content-type-options").unwrap(), "nosniff");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["requestId"], id.as_str());
    assert!(body["orderingId"].as_i64().is_some());
    let _ = form("");
}
