//! File containers, uploads and batches over real HTTP: every error with its message, the 256 MiB boundary,
//! raw container items in every compression, and the container lifecycle.

use crate::common;

use common::{TestServer, assert_error, compress, wait_for};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

async fn push_batch(s: &TestServer, file_id: &str, extra_query: &str) -> Response {
    let url = format!("{}?fileId={file_id}{extra_query}", s.source_url("/documents/batch"));
    s.request(Method::PUT, &url).json(&json!({})).send().await.unwrap()
}

#[tokio::test]
async fn a_container_is_created_uploaded_and_consumed_by_a_batch() {
    let s = TestServer::start().await;
    let legacy = s
        .request(Method::POST, &s.url(&format!("/v1/organizations/{}/files?useVirtualHostedStyleUrl=true", s.org)))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), 201);
    let (uri, file_id) = s.container().await;
    assert!(uri.starts_with(&format!("{}/upload/{}/{file_id}?", s.server.base_url(), s.org)), "{uri}");
    let first = json!({"addOrUpdate": [{"documentId": "file://replaced", "data": "<p>first</p>"}]});
    assert_eq!(s.upload(&uri, first.to_string().into_bytes()).await.status(), 200);
    let batch = json!({
        "AddOrUpdate": [
            {"DocumentId": "file://b/1", "Data": "<p>batch one</p>", "Title": "One", "category": "b"},
            {"documentId": "file://b/2", "compressedBinaryData": "PHA+YmF0Y2ggdHdvPC9wPg==", "compressionType": "UNCOMPRESSED"},
            {"documentId": "file://b/3", "title": "no data here"}
        ],
        "delete": [{"documentId": "file://old", "deleteChildren": true}]
    });
    assert_eq!(
        s.upload(&uri, batch.to_string().into_bytes()).await.status(),
        200,
        "a second upload replaces the first"
    );
    s.put_item("file://old/child", &json!({"data": "<p>old</p>"}), "&orderingId=10").await;
    s.settle().await;
    let response = push_batch(&s, &file_id, "&orderingId=500").await;
    assert_eq!(response.status(), 202);
    s.settle().await;
    assert_eq!(s.uris("").await, ["file://b/1", "file://b/2"]);
    assert_eq!(s.uris("@category==b").await, ["file://b/1"]);
    let failed = s.logs(None, json!({"results": ["ERROR"]})).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["id"], "file://b/3");
    assert!(failed[0]["meta"]["error"].as_str().unwrap().contains("The item at AddOrUpdate[2] has no item data"));
    assert_eq!(s.logs(Some("file://old/child"), json!({"operations": ["DELETE_AND_CHILDREN"]})).await.len(), 1);
    // The batch's orderingId is every item's: an older single push loses.
    s.put_item("file://b/1", &json!({"data": "<p>older</p>"}), "&orderingId=400").await;
    s.settle().await;
    assert_eq!(s.search(json!({"q": "older"})).await["totalCount"], 0);
    // Consumed: gone from disk and from the catalog.
    wait_for(|| async { s.server.state.catalog.container(&file_id).unwrap().is_none() }).await;
    assert_eq!(s.server.state.blobs.total_bytes().unwrap(), 0);
    let again = push_batch(&s, &file_id, "").await;
    assert_error(again, 404, "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3", &[&file_id, "does not exist"]).await;
}

#[tokio::test]
async fn uploads_refuse_wrong_headers_signatures_and_expired_links() {
    let s = TestServer::start().await;
    let (uri, file_id) = s.container().await;
    let put = |content_type: Option<&'static str>, encryption: Option<&'static str>| {
        let mut request = s.client.put(&uri).body("{}");
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        if let Some(value) = encryption {
            request = request.header("x-amz-server-side-encryption", value);
        }
        request.send()
    };
    assert_error(
        put(None, Some("AES256")).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        &["Content-Type header is missing", "application/octet-stream"],
    )
    .await;
    assert_error(
        put(Some("application/json"), Some("AES256")).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        &["'application/json'"],
    )
    .await;
    assert_error(
        put(Some("application/octet-stream"), None).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        &["x-amz-server-side-encryption header is missing"],
    )
    .await;
    assert_error(
        put(Some("application/octet-stream"), Some("aws:kms")).await.unwrap(),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        &["'aws:kms'", "AES256"],
    )
    .await;

    let tampered = uri.replace("signature=", "signature=0");
    let response = s
        .client
        .put(&tampered)
        .header("content-type", "application/octet-stream")
        .header("x-amz-server-side-encryption", "AES256")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "ACCESS_DENIED", &["signature does not match"]).await;
    let other_container = uri.replace(&file_id, "00000000-0000-0000-0000-000000000000");
    let response = s
        .client
        .put(&other_container)
        .header("content-type", "application/octet-stream")
        .header("x-amz-server-side-encryption", "AES256")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "ACCESS_DENIED", &["signature does not match"]).await;

    s.clock.advance_ms(60 * 60 * 1000);
    assert_error(
        s.upload(&uri, b"{}".to_vec()).await,
        403,
        "ACCESS_DENIED",
        &["expired", "create a new file container"],
    )
    .await;
}

#[tokio::test]
async fn a_container_holds_exactly_256_mib() {
    let s = TestServer::start().await;
    let (uri, file_id) = s.container().await;
    let exact = vec![b' '; 256 * MIB];
    assert_eq!(s.upload(&uri, exact).await.status(), 200);
    assert_eq!(s.server.state.catalog.container(&file_id).unwrap().unwrap().size, Some(256 * MIB as u64));
    let over = s.upload(&uri, vec![b' '; 256 * MIB + 1]).await;
    assert_error(over, 413, "REQUEST_ENTITY_TOO_LARGE", &["268435457 bytes", "256 MiB"]).await;
    assert_eq!(
        s.server.state.catalog.container(&file_id).unwrap().unwrap().size,
        Some(256 * MIB as u64),
        "the refused upload changed nothing"
    );

    // Without a Content-Length the body is cut off at the limit, not read to its end.
    let (uri, _) = s.container().await;
    let url = reqwest::Url::parse(&uri).unwrap();
    let mut stream = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    let head = format!(
        "PUT {}?{} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nx-amz-server-side-encryption: AES256\r\nTransfer-Encoding: chunked\r\n\r\n",
        url.path(),
        url.query().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 4 * MIB];
    for _ in 0..80 {
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
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("REQUEST_ENTITY_TOO_LARGE"), "{answer}");
}

#[tokio::test]
async fn unreadable_batches_are_explained() {
    let s = TestServer::start().await;
    let cases: Vec<(Vec<u8>, &[&str])> = vec![
        (
            b"{\"addOrUpdate\":[{\"documentId\":\"a\",\"data\":\"\xc3\x28\"}]}".to_vec(),
            &["not UTF-8", "0xC3", "byte offset 42"],
        ),
        (
            b"{\"addOrUpdate\":[\n{\"documentId\":\"a\",\"data\":\"x\"},\n{\"documentId\":\"b\" \"data\":\"y\"}]}"
                .to_vec(),
            &["not valid JSON", "line 3, column 19", "byte offset"],
        ),
        (
            br#"{"addOrUpdate":[{"documentId":"a","data":"x"},{"documentId":"b","data":"y","Data":"z"}]}"#.to_vec(),
            &["duplicate key 'Data'", "addOrUpdate[1]"],
        ),
        (
            br#"{"addOrUpdate":[{"documentId":"a","data":"x"},{"documentId":"b","data":"y"},{"data":"z"}]}"#.to_vec(),
            &["addOrUpdate[2] has no 'documentId'"],
        ),
        (br#"[{"documentId":"a","data":"x"}]"#.to_vec(), &["must be a JSON object", "line 1, column 1"]),
        (
            format!(r#"{{"addOrUpdate":[{{"documentId":"a","data":"{}"}}]}}"#, "x".repeat(32 << 20)).into_bytes(),
            &["addOrUpdate[0] is over 32 MiB", "compressedBinaryDataFileId"],
        ),
        (br#"{"addOrUpdate":[{"documentId":"a","data":"x"}]} trailing"#.to_vec(), &["trailing characters"]),
    ];
    for (bytes, words) in cases {
        let file_id = s.uploaded(bytes).await;
        let response = push_batch(&s, &file_id, "").await;
        assert_error(response, 404, "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3", words).await;
    }
    let assert_refused = |response: Response, words: &'static [&'static str]| {
        assert_error(response, 404, "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3", words)
    };
    assert_refused(push_batch(&s, "nope", "").await, &["'nope'", "does not exist"]).await;
    let (_, never) = s.container().await;
    assert_refused(push_batch(&s, &never, "").await, &["never uploaded to"]).await;
    let good = br#"{"addOrUpdate":[{"documentId":"file://ok","data":"x"}]}"#.to_vec();
    let used = s.uploaded(good.clone()).await;
    assert_eq!(push_batch(&s, &used, "").await.status(), 202);
    assert_refused(push_batch(&s, &used, "").await, &["already handed to another batch"]).await;
    let late = s.uploaded(good).await;
    s.clock.advance_ms(60 * 60 * 1000);
    assert_refused(push_batch(&s, &late, "").await, &["expired at"]).await;
    let missing = s.request(Method::PUT, &s.source_url("/documents/batch")).send().await.unwrap();
    assert_error(missing, 412, "MISSING_PARAMETER", &["'fileId'"]).await;
}

#[tokio::test]
async fn another_organizations_container_cannot_be_used() {
    let s = TestServer::start().await;
    s.request(Method::POST, &s.url("/rest/organizations")).json(&json!({"id": "other"})).send().await.unwrap();
    let response = s.request(Method::POST, &s.url("/push/v1/organizations/other/files")).send().await.unwrap();
    let theirs: Value = response.json().await.unwrap();
    let file_id = theirs["fileId"].as_str().unwrap();
    assert_eq!(s.upload(theirs["uploadUri"].as_str().unwrap(), br#"{"addOrUpdate":[]}"#.to_vec()).await.status(), 200);
    assert_error(
        push_batch(&s, file_id, "").await,
        404,
        "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
        &["does not exist"],
    )
    .await;
    s.put_item("file://stolen", &json!({"compressedBinaryDataFileId": file_id, "compressionType": "UNCOMPRESSED"}), "")
        .await;
    s.settle().await;
    let entries = s.logs(Some("file://stolen"), json!({})).await;
    assert!(entries[0]["meta"]["error"].as_str().unwrap().contains("does not exist"), "{entries:?}");
}

#[tokio::test]
async fn container_items_decode_every_compression_and_are_deleted_once_applied() {
    let s = TestServer::start_with(|config| config.max_item_bytes = 4 * MIB as u64).await;
    let html =
        "<html><head><title>From a container</title></head><body><p>quokka habitat</p></body></html>".repeat(100);
    let mut ids = Vec::new();
    for kind in ["UNCOMPRESSED", "ZLIB", "GZIP", "DEFLATE", "LZMA"] {
        let file_id = s.uploaded(compress(kind, html.as_bytes())).await;
        let body = json!({"compressedBinaryDataFileId": file_id, "compressionType": kind, "fileExtension": ".html"});
        assert_eq!(s.put_item(&format!("file://c/{kind}"), &body, "").await.status(), 202);
        ids.push(file_id);
    }
    // In a batch too: raw bytes, per-item compressionType.
    let in_batch = s.uploaded(compress("GZIP", html.as_bytes())).await;
    let batch = json!({"addOrUpdate": [{"documentId": "file://c/batch", "compressedBinaryDataFileId": in_batch, "compressionType": "GZIP"}]});
    let batch_file = s.uploaded(batch.to_string().into_bytes()).await;
    assert_eq!(push_batch(&s, &batch_file, "").await.status(), 202);
    // Past the cap once decompressed: REJECTED, and the bomb costs nothing more.
    let bomb = s.uploaded(compress("ZLIB", &vec![b'a'; 16 * MIB])).await;
    s.put_item("file://c/bomb", &json!({"compressedBinaryDataFileId": bomb}), "").await;
    s.settle().await;
    let found = s.search(json!({"q": "quokka", "numberOfResults": 10})).await;
    assert_eq!(found["totalCount"], 6, "{found}");
    assert!(found["results"].as_array().unwrap().iter().all(|r| r["title"] == "From a container"));
    let rejected = s.logs(Some("file://c/bomb"), json!({})).await;
    assert_eq!(rejected[0]["result"], "REJECTED");
    assert!(rejected[0]["meta"]["error"].as_str().unwrap().contains("expands past the limit of 4194304 bytes"));
    wait_for(|| async { s.server.state.blobs.total_bytes().unwrap() == 0 }).await;
}

#[tokio::test]
async fn unused_containers_expire_and_disk_use_returns_to_nothing() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        s.uploaded(vec![b'x'; MIB]).await;
    }
    assert_eq!(s.server.state.blobs.total_bytes().unwrap(), 3 * MIB as u64);
    s.clock.advance_ms(60 * 60 * 1000);
    wait_for(|| async { s.server.state.blobs.total_bytes().unwrap() == 0 }).await;
}
