//! Stream API benchmarks (catalog sources): a full load of a corpus in several chunks until searchable, against
//! the same files pushed as item batches to a push source of the same server, alternating within one run; and
//! many partial updates of a numeric field until the last value of each item is visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{Target, client, inline_data_fits, memory_mb, upload};

/// Splits the corpus lines that fit inline into `chunks` batch files of about equal size.
fn chunk_files(corpus: &str, chunks: usize) -> anyhow::Result<(Vec<Vec<u8>>, usize)> {
    let text = std::fs::read_to_string(corpus).with_context(|| format!("reading {corpus}"))?;
    let mut lines = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if inline_data_fits(line)? {
            lines.push(line);
        }
    }
    let per_chunk = lines.len().div_ceil(chunks.max(1));
    let files = lines
        .chunks(per_chunk)
        .map(|lines| format!("{{\"addOrUpdate\":[{}]}}", lines.join(",")).into_bytes())
        .collect();
    Ok((files, lines.len()))
}

/// Creates a source of `source_type` (SHARED, so the master key's search sees it all); its id.
async fn create_source(
    client: &reqwest::Client,
    target: &Target,
    name: &str,
    source_type: &str,
) -> anyhow::Result<String> {
    let url = format!("{}/rest/organizations/{}/sources", target.url, target.org);
    let body = json!({"name": name, "sourceType": source_type, "sourceVisibility": "SHARED"});
    let created: Value = client.post(url).bearer_auth(&target.key).json(&body).send().await?.json().await?;
    Ok(created["id"].as_str().context("no source id")?.to_string())
}

async fn stream_call(client: &reqwest::Client, target: &Target, source: &str, rest: &str) -> anyhow::Result<Value> {
    let url = format!("{}/push/v1/organizations/{}/sources/{source}/stream{rest}", target.url, target.org);
    let response = client.post(url).bearer_auth(&target.key).json(&json!({})).send().await?;
    if !response.status().is_success() {
        bail!("stream{rest} answered {}: {}", response.status(), response.text().await?);
    }
    Ok(response.json().await?)
}

/// Uploads `body` to a stream chunk's uploadUri.
async fn upload_chunk(client: &reqwest::Client, chunk: &Value, body: Vec<u8>) -> anyhow::Result<()> {
    let uploaded = client
        .put(chunk["uploadUri"].as_str().context("no uploadUri")?)
        .header("content-type", "application/octet-stream")
        .header("x-amz-server-side-encryption", "AES256")
        .body(body)
        .send()
        .await?;
    if uploaded.status() != 200 {
        bail!("the chunk upload answered {}", uploaded.status());
    }
    Ok(())
}

/// Waits until `aq` finds `count` items; fails after 15 minutes.
async fn wait_total(client: &reqwest::Client, target: &Target, aq: &str, count: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    while target.total(client, aq).await? < count {
        if Instant::now() > deadline {
            bail!("{aq}: not {count} items within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Samples the server's anonymous resident memory every 20 ms while it runs; the peak, once stopped.
struct Sampler {
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<f64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0f64;
            while flag.load(Ordering::Relaxed) {
                peak = peak.max(memory_mb(pid, "VmRSS:").unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        });
        Sampler { running, task }
    }

    async fn peak(self) -> anyhow::Result<f64> {
        self.running.store(false, Ordering::Relaxed);
        Ok(self.task.await?)
    }
}

/// The CPU time the process has used, in clock ticks (`utime + stime` of `/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(") ").context("a stat line")?.1.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

/// Waits until the server has been idle for a second (background merges of the previous phase done), at most
/// 30 s: each phase starts from a quiet server, whatever the previous one left running.
async fn wait_idle(pid: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet = 0;
    let mut last = cpu_ticks(pid)?;
    while quiet < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = cpu_ticks(pid)?;
        // Under 2% of a core (the clock ticks 100 times a second): idle.
        quiet = if now - last == 0 { quiet + 1 } else { 0 };
        last = now;
    }
    Ok(())
}

/// One full load of `files` as a stream into a new catalog source, until all `items` are searchable: the
/// source, and the seconds it took.
async fn full_load(
    client: &reqwest::Client,
    target: &Target,
    files: &[Vec<u8>],
    items: usize,
    name: &str,
) -> anyhow::Result<(String, f64)> {
    let source = create_source(client, target, name, "CATALOG").await?;
    let started = Instant::now();
    let stream_id =
        stream_call(client, target, &source, "/open").await?["streamId"].as_str().context("no streamId")?.to_string();
    for file in files {
        let chunk = stream_call(client, target, &source, &format!("/{stream_id}/chunk")).await?;
        upload_chunk(client, &chunk, file.clone()).await?;
    }
    stream_call(client, target, &source, &format!("/{stream_id}/close")).await?;
    wait_total(client, target, &format!("@source=={name}"), items as u64).await?;
    Ok((source, started.elapsed().as_secs_f64()))
}

/// The same files as item batches to a new push source, until all `items` are searchable: seconds.
async fn batches(
    client: &reqwest::Client,
    target: &Target,
    files: &[Vec<u8>],
    items: usize,
    name: &str,
) -> anyhow::Result<f64> {
    let source = create_source(client, target, name, "PUSH").await?;
    let started = Instant::now();
    for file in files {
        let file_id = upload(client, target, file.clone()).await?;
        let url = format!(
            "{}/push/v1/organizations/{}/sources/{source}/documents/batch?fileId={file_id}",
            target.url, target.org
        );
        let accepted = client.put(url).bearer_auth(&target.key).send().await?;
        if accepted.status() != 202 {
            bail!("the batch answered {}: {}", accepted.status(), accepted.text().await?);
        }
    }
    wait_total(client, target, &format!("@source=={name}"), items as u64).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A full load of the corpus in `chunks` chunks against the same files as item batches, alternating `rounds`
/// times on one server (each round into new sources, each phase once the server is idle): the ratio of their times, and the server's peak memory
/// during each load above its memory just before that load (the allocator keeps what earlier rounds freed, so
/// later rounds start higher).
pub async fn full_load_vs_batches(
    target: Target,
    corpus: String,
    chunks: usize,
    rounds: usize,
    pid: u32,
) -> anyhow::Result<Value> {
    let (files, items) = chunk_files(&corpus, chunks)?;
    let bytes: usize = files.iter().map(Vec::len).sum();
    let client = client(2);
    let idle_mb = memory_mb(pid, "VmRSS:")?;
    let (mut load_s, mut batch_s, mut before_mb, mut peak_mb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        wait_idle(pid).await?;
        before_mb.push(memory_mb(pid, "VmRSS:")?);
        let sampler = Sampler::start(pid);
        load_s.push(full_load(&client, &target, &files, items, &format!("catalog{round}")).await?.1);
        peak_mb.push(sampler.peak().await?);
        wait_idle(pid).await?;
        batch_s.push(batches(&client, &target, &files, items, &format!("push{round}")).await?);
    }
    let above: Vec<f64> = peak_mb.iter().zip(&before_mb).map(|(peak, before)| peak - before).collect();
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (load, batch) = (median(load_s.clone()), median(batch_s.clone()));
    Ok(json!({
        "benchmark": "stream_full_load",
        "docs": items,
        "mb": bytes as f64 / 1e6,
        "chunks": files.len(),
        "full_load_s": load_s,
        "batches_s": batch_s,
        "full_load_median_s": load,
        "batches_median_s": batch,
        "ratio_batches_over_load": batch / load,
        "idle_rss_mb": idle_mb,
        "rss_before_each_load_mb": before_mb,
        "peak_rss_during_each_load_mb": peak_mb,
        "peak_rss_above_idle_first_load_mb": above[0],
        "peak_rss_above_before_each_load_mb": above,
    }))
}

/// `entries` partial updates (fieldValueReplace of a numeric field) spread over `items` items of a loaded
/// catalog, from the update's 202 until every item shows its last value.
pub async fn partial_updates(target: Target, items: usize, entries: usize) -> anyhow::Result<Value> {
    let client = client(2);
    let url = format!("{}/rest/organizations/{}/indexes/fields/batch/create", target.url, target.org);
    client.post(url).bearer_auth(&target.key).json(&json!([{"name": "stock", "type": "LONG"}])).send().await?;
    let products: Vec<Value> = (0..items)
        .map(|i| json!({"documentId": format!("product://{i}"), "data": format!("<p>Product {i}, a thing to sell</p>"), "title": format!("Product {i}"), "stock": 0}))
        .collect();
    let file = serde_json::to_vec(&json!({"addOrUpdate": products}))?;
    let (source, _) = full_load(&client, &target, &[file], items, "updates").await?;
    let rounds = entries.div_ceil(items) as i64;
    let updates: Vec<Value> = (0..entries)
        .map(|j| json!({"documentId": format!("product://{}", j % items), "operator": "fieldValueReplace", "field": "stock", "value": (j / items) as i64 + 1}))
        .collect();
    let body = serde_json::to_vec(&json!({"partialUpdate": updates}))?;
    let bytes = body.len();
    let started = Instant::now();
    let file_id = upload(&client, &target, body).await?;
    let url =
        format!("{}/push/v1/organizations/{}/sources/{source}/stream/update?fileId={file_id}", target.url, target.org);
    let accepted = client.put(url).bearer_auth(&target.key).send().await?;
    if accepted.status() != 202 {
        bail!("the update answered {}: {}", accepted.status(), accepted.text().await?);
    }
    let accepted_s = started.elapsed().as_secs_f64();
    wait_total(&client, &target, &format!("@stock=={rounds}"), items as u64).await?;
    let visible_s = started.elapsed().as_secs_f64();
    Ok(json!({
        "benchmark": "stream_partial_updates",
        "items": items,
        "entries": entries,
        "mb": bytes as f64 / 1e6,
        "upload_and_accept_s": accepted_s,
        "accepted_to_visible_s": visible_s - accepted_s,
        "entries_per_s_after_accept": entries as f64 / (visible_s - accepted_s),
        "entries_per_s_end_to_end": entries as f64 / visible_s,
    }))
}
