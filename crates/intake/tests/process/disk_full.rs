//! A full disk, for real: the data directory lives on a small tmpfs that the test mounts (it runs as root, as
//! CI does), and fills while items and batches are pushed. What was acknowledged must become searchable exactly
//! once after space returns, with or without a restart; meanwhile the logs API must never report COMPLETED for
//! an item that is not searchable, and the server must say why it stopped.

use crate::common;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

/// A tmpfs mounted on a temporary folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("the mount command");
        assert!(
            output.status.success(),
            "this test mounts a {mib} MiB tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A file that takes disk space until removed.
struct Filler {
    path: PathBuf,
}

impl Filler {
    /// Writes `path` until the disk is full, or `limit` bytes.
    fn fill(path: PathBuf, limit: u64) -> Filler {
        File::create(&path).unwrap();
        let filler = Filler { path };
        filler.grow(limit);
        filler
    }

    /// Takes what the server freed since (its journal released, merged segments deleted): the disk is full again.
    fn top_up(&self) {
        self.grow(u64::MAX);
    }

    fn grow(&self, limit: u64) {
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path).unwrap();
        let mut written = 0u64;
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![7u8; chunk];
            while written + chunk as u64 <= limit && file.write_all(&bytes).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = file.sync_all();
    }

    /// Frees `bytes` of it.
    fn shrink(&self, bytes: u64) {
        let file = std::fs::OpenOptions::new().write(true).open(&self.path).unwrap();
        let length = file.metadata().unwrap().len();
        file.set_len(length.saturating_sub(bytes)).unwrap();
    }

    fn free(self) {
        std::fs::remove_file(&self.path).unwrap();
    }
}

/// A body of about 36 KB, its words its own.
fn item_body(i: usize) -> Value {
    let words: String = (0..4000).map(|w| format!("w{}x{} ", i, w % 97)).collect();
    json!({"data": format!("<p>disk item {i} {words}</p>"), "title": format!("disk item {i}")})
}

/// Pushes items until the server refuses twenty in a row (503, naming the disk); the acknowledged ids.
async fn push_until_full(server: &Server, prefix: &str) -> Vec<String> {
    let mut acked = Vec::new();
    let mut refused_in_a_row = 0;
    for i in 0..5000 {
        let id = format!("file://{prefix}/{i}");
        match server.put_item(&id, &item_body(i)).await {
            Some(202) => {
                acked.push(id);
                refused_in_a_row = 0;
            }
            Some(503) => {
                refused_in_a_row += 1;
                if refused_in_a_row == 20 {
                    return acked;
                }
            }
            other => panic!("{id}: unexpected answer {other:?}"),
        }
    }
    panic!("the disk never filled");
}

async fn metric(server: &Server, name: &str) -> u64 {
    let text = server.client.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes that do not fit are refused with a 503, never a 500: a 1 MiB file container, and with `acked`, an item.
/// The server frees space by itself (journal segments released, merged segments deleted), so the disk is topped
/// up before each try; a write that found room is acknowledged truthfully (an item then joins `acked`), and a
/// refusal must come within a few tries.
async fn writes_are_refused(server: &Server, filler: &Filler, mut acked: Option<&mut Vec<String>>) {
    let mut container = None;
    let mut item = acked.is_none().then_some(503);
    for attempt in 0..10 {
        filler.top_up();
        if container != Some(503) {
            container = Some(match server.upload(vec![b'x'; 1 << 20]).await {
                Ok(_) => 201,
                Err(status) => status,
            });
        }
        if let (Some(acked), true) = (acked.as_deref_mut(), item != Some(503)) {
            let id = format!("file://refused/{attempt}");
            item = server.put_item(&id, &item_body(attempt)).await;
            if item == Some(202) {
                acked.push(id);
            }
        }
        for (what, status) in [("a file container", container), ("an item", item)] {
            assert!(matches!(status, Some(503 | 201 | 202)), "{what} on a full disk: {status:?}");
        }
        if container == Some(503) && item == Some(503) {
            return;
        }
    }
    panic!("a full disk never refused a write: the last file container {container:?}, the last item {item:?}");
}

/// While the disk is full: every COMPLETED in the logs is searchable, and until everything acknowledged is
/// searchable, `/ready` comes to say that applying is stopped and why. With `must_stall`, the stall must be seen
/// (a batch of thousands of items cannot be committed on a full disk); items may all have been committed before
/// the disk filled.
async fn while_full_the_server_tells_the_truth(server: &Server, acked: &[String], must_stall: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The logs first: what they call COMPLETED was committed before the search that follows.
        let logged = server.logged().await;
        let searchable = server.indexed("").await;
        for ((id, _, result), _) in logged {
            assert!(
                result != "COMPLETED" || searchable.contains_key(&id),
                "the logs say {id} COMPLETED; it is not searchable"
            );
        }
        let ready = server.client.get(format!("{}/ready", server.base)).send().await.unwrap();
        let status = ready.status();
        let body: Value = ready.json().await.unwrap();
        if body["status"] == "stalled" {
            assert_eq!(status, 503);
            let message = body["message"].as_str().unwrap();
            assert!(message.contains("No space left") || message.contains("full"), "{message}");
            assert!(metric(server, "intake_index_commit_failures_total").await > 0);
            assert_eq!(metric(server, "intake_applier_stalled").await, 1);
            return;
        }
        if !must_stall && acked.iter().all(|id| searchable.contains_key(id)) {
            return;
        }
        assert!(Instant::now() < deadline, "applying never stalled on the full disk: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Once space is back: every acknowledged id is searchable exactly once and logged COMPLETED exactly once.
async fn everything_acknowledged_is_applied_once(server: &Server, acked: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let searchable = server.indexed("").await;
        if acked.iter().all(|id| searchable.contains_key(id)) {
            let twice: Vec<_> = searchable.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "indexed twice: {twice:?}");
            break;
        }
        let missing = acked.iter().filter(|id| !searchable.contains_key(*id)).count();
        assert!(Instant::now() < deadline, "{missing} of {} acknowledged items never became searchable", acked.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.wait_ready().await;
    let logs = server.logged().await;
    let mut completed: HashMap<&str, usize> = HashMap::new();
    for ((id, operation, result), n) in &logs {
        assert_eq!(result, "COMPLETED", "{id} {operation}: {result}");
        *completed.entry(id.as_str()).or_default() += n;
    }
    for id in acked {
        assert_eq!(completed.get(id.as_str()), Some(&1), "{id} is logged {:?} times", completed.get(id.as_str()));
    }
    assert_eq!(metric(server, "intake_applier_stalled").await, 0);
}

/// The disk of the item tests, and the ballast that fills part of it until the disk fills: freeing the ballast
/// gives the server room to apply again what it journaled on a full disk (index segments, merges) without
/// filling it once more.
const ITEMS_DISK_MIB: u64 = 112;
const BALLAST_MIB: u64 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_acknowledged_on_a_full_disk_are_all_applied_once_space_returns() {
    let tmpfs = Tmpfs::mount(ITEMS_DISK_MIB);
    let data = tmpfs.path().join("data");
    // A long commit interval leaves acknowledged items uncommitted when the disk fills, so commits fail.
    let flags = ["--commit-interval-ms", "2000"];
    let server = Server::start(&data, &flags);
    server.wait_ready().await;
    let ballast = Filler::fill(tmpfs.path().join("ballast"), BALLAST_MIB << 20);
    let mut acked = push_until_full(&server, "first").await;
    let filler = Filler::fill(tmpfs.path().join("filler"), u64::MAX);
    assert!(acked.len() > 100, "only {} items fit", acked.len());
    writes_are_refused(&server, &filler, Some(&mut acked)).await;
    while_full_the_server_tells_the_truth(&server, &acked, false).await;

    filler.free();
    ballast.free();
    everything_acknowledged_is_applied_once(&server, &acked).await;
    // And the server goes on: a new item is accepted and found.
    assert_eq!(server.put_item("file://after/1", &item_body(1)).await, Some(202));
    acked.push("file://after/1".into());
    everything_acknowledged_is_applied_once(&server, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_acknowledged_on_a_full_disk_survive_a_restart_while_full() {
    let tmpfs = Tmpfs::mount(ITEMS_DISK_MIB);
    let data = tmpfs.path().join("data");
    let flags = ["--commit-interval-ms", "2000"];
    let mut server = Server::start(&data, &flags);
    server.wait_ready().await;
    let ballast = Filler::fill(tmpfs.path().join("ballast"), BALLAST_MIB << 20);
    let acked = push_until_full(&server, "killed").await;
    let filler = Filler::fill(tmpfs.path().join("filler"), u64::MAX);
    while_full_the_server_tells_the_truth(&server, &acked, false).await;
    server.kill();

    filler.free();
    ballast.free();
    let server = Server::start(&data, &flags);
    server.wait_listening().await;
    everything_acknowledged_is_applied_once(&server, &acked).await;
}

/// A batch of `items` small pages, about 2 KB each.
fn batch(prefix: &str, items: usize) -> (Vec<u8>, Vec<String>) {
    let ids: Vec<String> = (0..items).map(|i| format!("file://{prefix}/{i}")).collect();
    let entries: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"documentId": id, "data": format!("<p>batch page {i} {}</p>", "lorem ipsum ".repeat(150))}))
        .collect();
    (serde_json::to_vec(&json!({"addOrUpdate": entries})).unwrap(), ids)
}

/// Uploads a batch, fills the disk but for a little room for the journal record, pushes the batch: its
/// application cannot commit.
async fn push_batch_onto_a_full_disk(server: &Server, tmpfs: &Tmpfs, prefix: &str) -> (Filler, Vec<String>) {
    let (bytes, ids) = batch(prefix, 4000);
    let file_id = server.upload(bytes).await.unwrap();
    let filler = Filler::fill(tmpfs.path().join("filler"), u64::MAX);
    filler.shrink(256 * 1024);
    assert_eq!(server.push_batch(&file_id).await, 202);
    (filler, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_accepted_on_a_full_disk_is_applied_once_space_returns() {
    let tmpfs = Tmpfs::mount(64);
    let data = tmpfs.path().join("data");
    let server = Server::start(&data, &[]);
    server.wait_ready().await;
    let (filler, ids) = push_batch_onto_a_full_disk(&server, &tmpfs, "batch").await;
    writes_are_refused(&server, &filler, None).await;
    while_full_the_server_tells_the_truth(&server, &ids, true).await;
    filler.free();
    everything_acknowledged_is_applied_once(&server, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_accepted_on_a_full_disk_survives_a_restart_while_full() {
    let tmpfs = Tmpfs::mount(64);
    let data = tmpfs.path().join("data");
    let mut server = Server::start(&data, &[]);
    server.wait_ready().await;
    let (filler, ids) = push_batch_onto_a_full_disk(&server, &tmpfs, "killed-batch").await;
    while_full_the_server_tells_the_truth(&server, &ids, true).await;
    server.kill();
    filler.free();
    let server = Server::start(&data, &[]);
    server.wait_listening().await;
    everything_acknowledged_is_applied_once(&server, &ids).await;
}
