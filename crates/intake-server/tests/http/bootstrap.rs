//! First start: the default organization, source and a generated master key, written to bootstrap.json
//! (mode 0600); later starts reuse them.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::TestServer;
use intake_store::ManualClock;
use serde_json::{Value, json};

#[tokio::test]
async fn first_start_generates_a_key_that_later_starts_reuse() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let no_key = |config: &mut intake_server::ServerConfig| config.master_key = None;
    let first = TestServer::start_in(dir.clone(), ManualClock::new(common::START_MS), no_key).await;
    let generated = first.server.generated_key.clone().expect("a key is generated on first start");
    assert!(generated.starts_with("intake_") && generated.len() > 40);
    let path = dir.path().join("bootstrap.json");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let bootstrap: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(bootstrap["apiKey"], generated.as_str());
    assert_eq!(bootstrap["organizationId"], "default");
    assert_eq!(bootstrap["baseUrl"], first.server.base_url());
    let source_id = bootstrap["sourceId"].as_str().unwrap().to_string();
    assert!(source_id.starts_with("default-"));
    assert_eq!(first.put_item("file://a", &json!({"data": "x"}), "").await.status(), 202);
    let catalog_stored: Option<String> = first.server.state.catalog.setting("master_key_sha256").unwrap();
    assert!(!catalog_stored.unwrap().contains(&generated), "the key is stored hashed");
    first.server.stop().await;

    let again = TestServer::start_in(dir.clone(), ManualClock::new(common::START_MS), no_key).await;
    assert!(again.server.generated_key.is_none(), "the key is printed only once");
    assert_eq!(again.key, generated);
    assert_eq!(again.src, source_id);
    assert_eq!(again.put_item("file://b", &json!({"data": "x"}), "").await.status(), 202);
    again.server.stop().await;

    // A key given on the command line replaces it, and bootstrap.json follows.
    let given = TestServer::start_in(dir.clone(), ManualClock::new(common::START_MS), |c| {
        c.master_key = Some("new-key".into())
    })
    .await;
    assert_eq!(given.put_item("file://c", &json!({"data": "x"}), "").await.status(), 202);
    let old = given
        .client
        .put(format!("{}?documentId=x", given.source_url("/documents")))
        .bearer_auth(&generated)
        .json(&json!({"data": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let bootstrap: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(bootstrap["apiKey"], "new-key");
}
