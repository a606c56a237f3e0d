//! A real Intake server on a loopback port, with a manual clock, and a client for it.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use intake_server::{RunningServer, ServerConfig};
use intake_store::ManualClock;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const START_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

pub struct TestServer {
    pub server: RunningServer,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub dir: Arc<tempfile::TempDir>,
    pub key: String,
    pub org: String,
    pub src: String,
}

pub fn config(dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(dir.to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.commit_interval = Duration::from_millis(30);
    config.index_threads = 1;
    config.index_memory_bytes = 20_000_000;
    config.master_key = Some("test-master-key".into());
    config.database = test_database(dir);
    if config.database.is_some() {
        config.blobs = Some(test_blobs(dir));
        // Consumed containers go once a snapshot holds them: at once, as the tests expect of one node.
        config.snapshot_interval = Duration::ZERO;
        // A hundred test servers share the 2 cores and one PostgreSQL: a renewal may wait seconds, and a lease
        // that lapsed is taken back only at the next round (tests/http/scale_out.rs tests lapses and take-overs).
        config.leases = intake_store::LeaseTimes { ttl: Duration::from_secs(30), renew: Duration::from_secs(1) };
    }
    config
}

/// With `INTAKE_TEST_BACKEND=postgres`, file containers are in a place of their own on the test S3 server, named in
/// the data folder too.
fn test_blobs(dir: &std::path::Path) -> intake_store::S3Location {
    let named = dir.join("test-blobs-prefix");
    let mut location = intake_store::testing::scratch_blobs();
    match std::fs::read_to_string(&named) {
        Ok(prefix) => location.prefix = prefix,
        Err(_) => std::fs::write(&named, &location.prefix).unwrap(),
    }
    location
}

/// With `INTAKE_TEST_BACKEND=postgres`, the server's catalog, journal and item log are in a database of its own on
/// the test PostgreSQL server, named in the data folder so that a restart finds it again.
fn test_database(dir: &std::path::Path) -> Option<String> {
    if std::env::var("INTAKE_TEST_BACKEND").ok()?.as_str() != "postgres" {
        return None;
    }
    let named = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&named) {
        return Some(url);
    }
    let url = intake_store::testing::scratch_database();
    std::fs::write(&named, &url).unwrap();
    Some(url)
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Self::start_in(dir, ManualClock::new(START_MS), tweak).await
    }

    /// Starts on an existing data folder (a restart).
    pub async fn start_in(
        dir: Arc<tempfile::TempDir>,
        clock: ManualClock,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let mut config = config(dir.path());
        tweak(&mut config);
        let server = intake_server::start(config, Arc::new(clock.clone())).await.unwrap();
        let b = server.bootstrap.clone();
        let server = TestServer {
            key: b.api_key.clone().unwrap(),
            org: b.organization_id.clone(),
            src: b.source_id.clone(),
            server,
            client: reqwest::Client::new(),
            clock,
            dir,
        };
        server.wait_ready().await;
        server
    }

    /// Stops and starts again on the same data folder and clock.
    pub async fn restart(self) -> TestServer {
        let (dir, clock) = (self.dir.clone(), self.clock.clone());
        self.server.stop().await;
        TestServer::start_in(dir, clock, |_| {}).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    /// `/push/v1/organizations/{org}/sources/{src}` + `rest`.
    pub fn source_url(&self, rest: &str) -> String {
        self.url(&format!("/push/v1/organizations/{}/sources/{}{rest}", self.org, self.src))
    }

    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.key)
    }

    /// PUTs an item body under the form-encoded `documentId`, with extra query text.
    pub async fn put_item(&self, id: &str, body: &Value, extra_query: &str) -> Response {
        let url = format!("{}?documentId={}{extra_query}", self.source_url("/documents"), form(id));
        self.request(Method::PUT, &url).json(body).send().await.unwrap()
    }

    pub async fn delete_item(&self, id: &str, extra_query: &str) -> Response {
        let url = format!("{}?documentId={}{extra_query}", self.source_url("/documents"), form(id));
        self.request(Method::DELETE, &url).send().await.unwrap()
    }

    pub async fn search(&self, body: Value) -> Value {
        self.search_in(&self.org, body).await
    }

    /// A search of another organization, with the master key and `viewAllContent` unless the body says
    /// otherwise: most tests are not about permissions.
    pub async fn search_in(&self, organization_id: &str, mut body: Value) -> Value {
        if body.get("viewAllContent").is_none() {
            body["viewAllContent"] = Value::Bool(true);
        }
        let response = self
            .request(Method::POST, &self.url(&format!("/rest/search/v2?organizationId={organization_id}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The URIs matching `aq`, sorted.
    pub async fn uris(&self, aq: &str) -> Vec<String> {
        let body = self.search(json!({ "aq": aq, "numberOfResults": 1000 })).await;
        let mut uris: Vec<String> =
            body["results"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap().to_string()).collect();
        uris.sort();
        uris
    }

    /// Waits until everything journaled so far is applied and committed.
    pub async fn settle(&self) {
        let target = *self.server.state.journal.durable().borrow();
        wait_for(|| async {
            let metrics = self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
            let applied = metrics
                .lines()
                .find_map(|l| l.strip_prefix("intake_journal_applied_seq "))
                .and_then(|v| v.trim().parse::<u64>().ok());
            applied.unwrap_or(0) >= target
        })
        .await;
    }

    /// `POST /files`: (uploadUri, fileId).
    pub async fn container(&self) -> (String, String) {
        let url = self.url(&format!("/push/v1/organizations/{}/files", self.org));
        let response = self.request(Method::POST, &url).json(&json!({})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (body["uploadUri"].as_str().unwrap().to_string(), body["fileId"].as_str().unwrap().to_string())
    }

    /// `PUT uploadUri` with the required headers.
    pub async fn upload(&self, uri: &str, bytes: Vec<u8>) -> Response {
        self.client
            .put(uri)
            .header("content-type", "application/octet-stream")
            .header("x-amz-server-side-encryption", "AES256")
            .body(bytes)
            .send()
            .await
            .unwrap()
    }

    /// Makes a container holding `bytes`; returns its fileId.
    pub async fn uploaded(&self, bytes: Vec<u8>) -> String {
        let (uri, file_id) = self.container().await;
        assert_eq!(self.upload(&uri, bytes).await.status(), StatusCode::OK);
        file_id
    }

    pub async fn wait_ready(&self) {
        wait_for(|| async { self.client.get(self.url("/ready")).send().await.unwrap().status() == StatusCode::OK })
            .await;
    }

    /// Log entries of the organization, optionally filtered by document id (exact).
    pub async fn logs(&self, document_id: Option<&str>, filters: Value) -> Vec<Value> {
        let mut url = self.url(&format!("/logs/v1/organizations/{}?perPage=1000", self.org));
        if let Some(id) = document_id {
            url.push_str(&format!("&documentId={}", form(id)));
        }
        let response = self.request(Method::POST, &url).json(&filters).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["documentLogEntries"].as_array().unwrap().clone()
    }

    /// The value of a new API key of the organization with these privileges (created with the master key).
    pub async fn key_with(&self, privileges: Value) -> String {
        let url = self.url(&format!("/rest/organizations/{}/apikeys", self.org));
        let body = json!({"displayName": "test key", "privileges": privileges});
        let response = self.request(Method::POST, &url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        created["value"].as_str().unwrap().to_string()
    }
}

/// Polls `check` until it holds; fails the test after 30 seconds.
pub async fn wait_for<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    // A liveness bound, not a performance one: the corpus tests apply hundreds of megabytes.
    let deadline = Instant::now() + Duration::from_secs(300);
    while !check().await {
        assert!(Instant::now() < deadline, "condition not reached in 300 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Form-encodes a query value as the SDKs do (space is `+`).
pub fn form(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Asserts an error answer: status, errorCode, request id, and that the message contains each word.
pub async fn assert_error(response: Response, status: u16, code: &str, words: &[&str]) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let request_id =
        response.headers().get("x-request-id").expect("an X-Request-ID header").to_str().unwrap().to_string();
    assert!(response.headers().get("content-type").unwrap().to_str().unwrap().starts_with("application/json"));
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["requestId"], request_id.as_str(), "{body}");
    assert!(body["resolution"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    let message = body["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "message {message:?} should contain {word:?}");
    }
    body
}

/// `data` compressed as the Push API's `compressionType` names it (anything else: as it is).
pub fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    match kind {
        "ZLIB" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "GZIP" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "DEFLATE" => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "LZMA" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "LZMA-ALONE" => {
            let options = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
            let stream = liblzma::stream::Stream::new_lzma_encoder(&options).unwrap();
            let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        _ => data.to_vec(),
    }
}

/// Standard base64, as `compressedBinaryData` carries it.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
