//! Owner failover on a cluster of two nodes: many items indexed by the owner of the organization's index, a
//! snapshot published, the owner killed (SIGKILL), and the time until the other node answers searches of the
//! organization with every item again (lease lapse, take-over, snapshot download, journal replay).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::security::push_items;
use crate::{Target, client};

/// Items per batch file.
const BATCH: usize = 10_000;

pub async fn failover(
    owner: Target,
    standby_url: String,
    items: usize,
    owner_pid: u32,
    owner_data_dir: std::path::PathBuf,
    settle: Duration,
) -> anyhow::Result<Value> {
    let client = client(4);
    let started = Instant::now();
    for first in (0..items).step_by(BATCH) {
        let entries: Vec<Value> = (first..(first + BATCH).min(items)).map(item).collect();
        push_items(&client, &owner, json!({ "addOrUpdate": entries }).to_string().into_bytes()).await?;
    }
    wait_for_all(&client, &owner, items, Duration::from_secs(900)).await.context("on the owner")?;
    let indexed_s = started.elapsed().as_secs_f64();
    // The owner publishes a snapshot at most every snapshot interval: what the next owner restores.
    tokio::time::sleep(settle).await;
    let index_mb = folder_bytes(&owner_data_dir.join("index")) as f64 / 1e6;

    let killed = Instant::now();
    // SAFETY: kill(2) with a pid and a signal number; no memory is shared.
    if unsafe { libc::kill(owner_pid as i32, libc::SIGKILL) } != 0 {
        bail!("the owner ({owner_pid}) could not be killed: {}", std::io::Error::last_os_error());
    }
    let standby = Target { url: standby_url, ..owner };
    wait_for_all(&client, &standby, items, Duration::from_secs(300)).await.context("on the standby node")?;
    Ok(json!({
        "benchmark": "failover",
        "items": items,
        "indexed_s": indexed_s,
        "owner_index_mb": index_mb,
        "kill_to_searchable_s": killed.elapsed().as_secs_f64(),
    }))
}

/// A small item: a title and a sentence, ~200 bytes.
fn item(n: usize) -> Value {
    json!({
        "documentId": format!("file://failover/{n}"),
        "title": format!("Item {n}"),
        "data": format!("Item {n} of the failover benchmark, word{} word{} word{}.", n % 97, n % 1013, n % 10007),
    })
}

/// Waits until a search on `target` counts every item; a node taking the index over answers 503 meanwhile.
async fn wait_for_all(client: &reqwest::Client, target: &Target, items: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if target.total(client, "").await.is_ok_and(|total| total >= items as u64) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not every item was searchable within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn folder_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => folder_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
