//! The shared backends under failure: always on PostgreSQL (a private server, stopped and started by the test),
//! whatever INTAKE_TEST_BACKEND says.

use intake_store::testing::PrivateCluster;
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
