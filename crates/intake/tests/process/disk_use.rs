//! The disk a load takes is bounded by what the operator sets: the item log by age and size, the journal by
//! what the index has not committed yet; `/metrics` and `/ready` say what each part takes.

use crate::common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

fn batch(items: usize) -> Vec<u8> {
    let entries: Vec<Value> = (0..items)
        .map(|i| json!({"documentId": format!("file://use/{i}"), "data": format!("<p>page {i} {}</p>", "words ".repeat(300))}))
        .collect();
    serde_json::to_vec(&json!({"addOrUpdate": entries})).unwrap()
}

/// Bytes of the journal's files whose name ends with `suffix`.
fn journal_bytes(data_dir: &std::path::Path, suffix: &str) -> u64 {
    let files = std::fs::read_dir(data_dir.join("journal")).unwrap().map(|entry| entry.unwrap());
    let named = files.filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix));
    named.map(|entry| entry.metadata().unwrap().len()).sum()
}

async fn metric(server: &Server, line_start: &str) -> u64 {
    let text = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_log_and_the_journal_stay_within_their_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--log-max-mb", "1", "--disk-warning-percent", "100"]);
    server.wait_ready().await;
    // 12,000 outcomes take about 3 MiB of log; 24 MB of journal.
    for round in 0..3 {
        let file_id = server.upload(batch(4000)).await.unwrap();
        assert_eq!(server.push_batch(&file_id).await, 202, "round {round}");
    }
    // 24 MB of items through the journal: more than a segment.
    for i in 0..240 {
        let body = json!({"data": format!("<p>{i} {}</p>", "journal ".repeat(12_500))});
        assert_eq!(server.put_item(&format!("file://journal/{i}"), &body).await, Some(202));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.total().await < 4240 || !server.is_ready().await {
        assert!(Instant::now() < deadline, "the batches were not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Within a few seconds of the last commit, the log is pruned to its limit and the journal released: the
    // segment being written holds records, and at most two spares of 16 MiB are kept to be written over (a
    // segment may end a little past 16 MiB: it ends after the group that fills it). The server measures at most
    // once a second.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let logs = metric(&server, "intake_data_bytes{part=\"logs\"} ").await;
        let journal = metric(&server, "intake_data_bytes{part=\"journal\"} ").await;
        let segments = journal_bytes(dir.path(), ".log");
        if logs <= 1024 * 1024 + 256 * 1024 && segments <= 17 * 1024 * 1024 && journal <= 49 * 1024 * 1024 {
            break;
        }
        assert!(Instant::now() < deadline, "logs take {logs} bytes, the journal {journal} ({segments} in segments)");
    }
    let logged: usize = server.logged().await.values().sum();
    assert!(logged > 0 && logged < 12_000, "{logged} entries kept");
    // /ready reports each part, the disk's room, and warns under the threshold (100% here: always).
    let ready: Value = server.client.get(format!("{}/ready", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    for part in ["journal", "index", "logs", "catalog", "containers"] {
        assert!(ready["disk"]["bytes"][part].is_u64(), "{ready}");
    }
    assert!(ready["disk"]["bytes"]["index"].as_u64().unwrap() > 0, "{ready}");
    assert!(ready["disk"]["freeBytes"].as_u64().unwrap() > 0);
    assert!(ready["disk"]["warning"].as_str().unwrap().contains("under 100%"), "{ready}");
}
