//! The client against a real Intake on loopback: every call, and retries against injected faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use intake_client::{BatchPacker, ClientError, Endpoint, PushClient, RetryPolicy};
use intake_server::{RunningServer, ServerConfig};
use serde_json::{Value, json};

const MASTER: &str = "client-test-key";

struct Setup {
    server: RunningServer,
    client: PushClient,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.master_key = Some(MASTER.into());
    config.commit_interval = Duration::from_millis(30);
    config.index_threads = 1;
    config.index_memory_bytes = 20_000_000;
    let server = intake_server::start(config, Arc::new(intake_store::SystemClock)).await.unwrap();
    let endpoint = Endpoint {
        api_url: server.base_url().to_string(),
        organization_id: server.bootstrap.organization_id.clone(),
        source_id: server.bootstrap.source_id.clone(),
        api_key: MASTER.into(),
    };
    let fast = RetryPolicy { base_delay: Duration::from_millis(20), ..RetryPolicy::default() };
    Setup {
        client: PushClient::new(endpoint).unwrap().with_retry(fast),
        server,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Setup {
    async fn total(&self) -> u64 {
        let url = format!("{}/rest/search/v2?organizationId=default", self.server.base_url());
        let found: Value =
            self.http.post(url).bearer_auth(MASTER).json(&json!({})).send().await.unwrap().json().await.unwrap();
        found["totalCount"].as_u64().unwrap()
    }

    async fn wait_total(&self, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.total().await != expected {
            assert!(Instant::now() < deadline, "never reached {expected} items");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn fault(&self, rule: Value) {
        let url = format!("{}/rest/organizations/default/faults", self.server.base_url());
        let response = self.http.post(url).bearer_auth(MASTER).json(&rule).send().await.unwrap();
        assert_eq!(response.status(), 201);
    }
}

#[tokio::test]
async fn items_batches_deletes_and_status_reach_the_index() {
    let s = setup().await;
    s.client.set_status("REBUILD").await.unwrap();
    s.client
        .add_or_update("file:///one", br#"{"title": "One", "data": "first"}"#.to_vec().into(), Some(1))
        .await
        .unwrap();
    let mut packer = BatchPacker::new(400);
    let mut sent = 0;
    for n in 0..20 {
        let entry = format!(r#"{{"documentId": "file:///batch/{n}", "data": "batch item {n}"}}"#);
        if let Some(full) = packer.push_add(entry.as_bytes()) {
            s.client.send_batch(full, Some(2)).await.unwrap();
            sent += 1;
        }
    }
    s.client.send_batch(packer.finish().unwrap(), Some(2)).await.unwrap();
    assert!(sent >= 2, "several batches");
    s.wait_total(21).await;
    s.client.delete("file:///batch", true, Some(3)).await.unwrap();
    s.wait_total(1).await;
    s.client.delete_older_than(4, Some(0)).await.unwrap();
    s.wait_total(0).await;
    s.client.set_status("IDLE").await.unwrap();
    let logs = s.client.logs(&[("perPage", "1000".into())], &json!({"results": ["COMPLETED"]})).await.unwrap();
    assert!(logs["documentLogEntries"].as_array().unwrap().len() >= 21, "{logs}");
    assert_eq!(s.client.retries(), 0);
}

#[tokio::test]
async fn retries_back_off_on_5xx_and_wait_what_retry_after_says() {
    let s = setup().await;
    s.fault(json!({"status": 503, "count": 2})).await;
    s.client.add_or_update("file:///a", br#"{"data": "a"}"#.to_vec().into(), None).await.unwrap();
    assert_eq!(s.client.retries(), 2);
    s.fault(json!({"status": 429, "count": 1, "retryAfter": 1})).await;
    let started = Instant::now();
    s.client
        .send_batch(br#"{"addOrUpdate": [{"documentId": "file:///b", "data": "b"}]}"#.to_vec().into(), None)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(s.client.retries(), 3);
    // Uploads and batch calls are retried like the rest.
    s.fault(json!({"status": 502, "count": 1, "route": "/upload/*"})).await;
    s.fault(json!({"status": 504, "count": 1, "route": "*/documents/batch"})).await;
    s.client
        .send_batch(br#"{"addOrUpdate": [{"documentId": "file:///c", "data": "c"}]}"#.to_vec().into(), None)
        .await
        .unwrap();
    assert_eq!(s.client.retries(), 5);
    s.wait_total(3).await;
}

#[tokio::test]
async fn other_answers_are_final_and_attempts_run_out() {
    let s = setup().await;
    let wrong = PushClient::new(Endpoint { source_id: "nope".into(), ..s.client.endpoint().clone() }).unwrap();
    let error = wrong.add_or_update("file:///a", br#"{"data": "a"}"#.to_vec().into(), None).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(412), "SOURCE_DOES_NOT_EXIST"));
    assert!(error.to_string().contains("does not exist"), "{error}");
    assert_eq!(wrong.retries(), 0);

    s.fault(json!({"status": 500, "count": 5})).await;
    let three = s.client.clone().with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    });
    let error = three.add_or_update("file:///a", br#"{"data": "a"}"#.to_vec().into(), None).await.unwrap_err();
    assert!(matches!(error, ClientError::GaveUp { attempts: 3, .. }), "{error}");
    assert_eq!(error.code(), "INTERNAL_SERVER_ERROR");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere = PushClient::new(Endpoint { api_url: format!("http://{closed}"), ..s.client.endpoint().clone() })
        .unwrap()
        .with_retry(RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(1), ..RetryPolicy::default() });
    let error = nowhere.set_status("IDLE").await.unwrap_err();
    assert!(
        matches!(&error, ClientError::GaveUp { attempts: 2, last } if matches!(**last, ClientError::Transport { .. })),
        "{error}"
    );
    // HTTPS (Coveo's cloud) is built in: against a server that answers plain HTTP, the TLS handshake fails.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut stream, _)) = plain.accept() {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let tls = PushClient::new(Endpoint { api_url: format!("https://{address}"), ..s.client.endpoint().clone() })
        .unwrap()
        .with_retry(RetryPolicy::never());
    let error = tls.set_status("IDLE").await.unwrap_err();
    let ClientError::GaveUp { last, .. } = error else { panic!("{error}") };
    let detail = format!("{last:?}");
    assert!(detail.contains("InvalidContentType") || detail.contains("CorruptMessage"), "{detail}");
}
