//! Load generator for Intake's benchmarks: push-to-searchable latency, end-to-end ingestion of a corpus through
//! single PUTs or as one batch (with the server's memory sampled meanwhile). PUT throughput is measured with wrk
//! and `bench/put.lua`. Prints one JSON object per run; `bench/run.sh` records them.

mod failover;
mod pdf;
mod search;
mod security;
mod stream;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push a corpus, then search it with two-word queries from its titles at many connections: 10 results
    /// with excerpts, 1 result, counting only (or, with --facets, 10 results with three facets against without).
    SearchLoad {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        corpus: String,
        /// Where to write the queries (one per line), for the raw tantivy reference.
        #[arg(long)]
        queries_out: String,
        #[arg(long, default_value_t = 300)]
        queries: usize,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long)]
        facets: bool,
    },
    /// On a cluster of two nodes: index many items on the owner of the organization's index, wait a snapshot
    /// interval, SIGKILL the owner, and time until the other node finds every item.
    Failover {
        #[command(flatten)]
        target: Target,
        /// The other node's base URL.
        #[arg(long)]
        standby_url: String,
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        #[arg(long)]
        owner_pid: u32,
        #[arg(long)]
        owner_data_dir: std::path::PathBuf,
        /// Seconds to wait between the last item searchable and the kill (at least the snapshot interval).
        #[arg(long, default_value_t = 3)]
        settle_seconds: u64,
    },
    /// Convert PDFs with Intake's converter and with pdftotext, alternating: throughput and words found.
    PdfText {
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        files: Vec<std::path::PathBuf>,
    },
    /// PUT every corpus item once, then wait until all are searchable.
    Ingest {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        corpus: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Push the corpus as one batch file (upload, validate, apply) and wait until every item is searchable,
    /// sampling the server's memory throughout.
    Batch {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        corpus: String,
        /// Where to write the batch file (kept, so the same bytes can be hashed for comparison).
        #[arg(long)]
        batch_file: String,
        /// Stop adding corpus items before the batch file would exceed this many bytes.
        #[arg(long, default_value_t = 256 * 1024 * 1024)]
        max_bytes: usize,
        /// The server's process id, for its resident memory.
        #[arg(long)]
        server_pid: u32,
    },
    /// The cost of the limit checks of one item PUT (admit the call, reserve the item, record it journaled),
    /// on two threads at once against one organization, with every limit set and with none.
    LimitChecks {
        #[arg(long, default_value_t = 1_000_000)]
        operations: u64,
    },
    /// Runs a command (a push client), then waits until `count` items are searchable: how long each took.
    UntilSearchable {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        count: u64,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Trimmed search against untrimmed on a corpus with permissions: identities, items, then the same queries
    /// as a user in many groups and with viewAllContent, alternating.
    Trimmed {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        corpus: String,
        #[arg(long, default_value_t = 200)]
        queries: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// An identity batch of many identities (users in groups), from the PUT until the last one is resolvable.
    IdentityBatch {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 100_000)]
        identities: usize,
    },
    /// Resolving a user in many groups in an identity graph of 10,000 users and 1,000 nested groups, in process.
    Resolve {
        #[arg(long, default_value_t = 10_000)]
        samples: usize,
    },
    /// A full load of a corpus in chunks into a catalog source, against the same files as item batches,
    /// alternating on one server, with its peak memory.
    StreamLoad {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        corpus: String,
        #[arg(long, default_value_t = 8)]
        chunks: usize,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// The server's process id, for its resident memory.
        #[arg(long)]
        server_pid: u32,
    },
    /// Partial updates of a numeric field of a loaded catalog until the last value of each item is visible.
    PartialUpdates {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 10_000)]
        items: usize,
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
    },
    /// Time from a 202 to the item being found by search, one item at a time.
    Searchable {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 50)]
        samples: usize,
    },
}

#[derive(Args, Clone)]
struct Target {
    #[arg(long)]
    url: String,
    #[arg(long)]
    key: String,
    #[arg(long, default_value = "default")]
    org: String,
    #[arg(long)]
    source: String,
}

impl Target {
    fn document_url(&self, document_id: &str) -> String {
        format!(
            "{}/push/v1/organizations/{}/sources/{}/documents?documentId={}",
            self.url,
            self.org,
            self.source,
            form(document_id)
        )
    }

    async fn total(&self, client: &reqwest::Client, aq: &str) -> anyhow::Result<u64> {
        let body: Value = client
            .post(format!("{}/rest/search/v2?organizationId={}", self.url, self.org))
            .bearer_auth(&self.key)
            .json(&json!({"aq": aq, "numberOfResults": 0}))
            .send()
            .await?
            .json()
            .await?;
        body["totalCount"].as_u64().context("no totalCount")
    }
}

/// One corpus line as a ready request: the PUT URL and the body (the line itself; its `documentId` is ignored).
struct Request {
    url: String,
    body: bytes::Bytes,
}

fn load(target: &Target, corpus: &str) -> anyhow::Result<Vec<Request>> {
    let text = std::fs::read_to_string(corpus).with_context(|| format!("reading {corpus}"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let item: Value = serde_json::from_str(line)?;
            let id = item["documentId"].as_str().context("an item without documentId")?;
            Ok(Request { url: target.document_url(id), body: bytes::Bytes::from(line.as_bytes().to_vec()) })
        })
        .collect()
}

fn client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(concurrency).tcp_nodelay(true).build().expect("a client")
}

async fn put(client: &reqwest::Client, key: &str, request: &Request) -> anyhow::Result<u16> {
    let response = client
        .put(&request.url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(request.body.clone())
        .send()
        .await?;
    Ok(response.status().as_u16())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn ingest(target: Target, corpus: String, concurrency: usize) -> anyhow::Result<Value> {
    let requests = Arc::new(load(&target, &corpus)?);
    let bytes: usize = requests.iter().map(|r| r.body.len()).sum();
    let client = client(concurrency);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, requests, next, key) = (client.clone(), requests.clone(), next.clone(), target.key.clone());
            tokio::spawn(async move {
                let mut refused = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        return refused;
                    };
                    match put(&client, &key, request).await {
                        Ok(202) => {}
                        Ok(status) => refused.push(format!("{status} {}", request.url)),
                        Err(e) => refused.push(format!("{e} {}", request.url)),
                    }
                }
            })
        })
        .collect();
    let mut refused = Vec::new();
    for worker in workers {
        refused.extend(worker.await?);
    }
    let pushed = started.elapsed().as_secs_f64();
    let expected = (requests.len() - refused.len()) as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while target.total(&client, "").await? < expected {
        if Instant::now() > deadline {
            bail!("items did not all become searchable within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let searchable = started.elapsed().as_secs_f64();
    Ok(json!({
        "benchmark": "ingest",
        "concurrency": concurrency,
        "docs": requests.len(),
        "mb": bytes as f64 / 1e6,
        "refused": refused,
        "all_accepted_s": pushed,
        "all_searchable_s": searchable,
        "docs_per_s": requests.len() as f64 / searchable,
        "mb_per_s": bytes as f64 / 1e6 / searchable,
    }))
}

async fn searchable(target: Target, samples: usize) -> anyhow::Result<Value> {
    let client = client(2);
    let mut latencies = Vec::with_capacity(samples);
    let run = Instant::now().elapsed().as_nanos() ^ std::process::id() as u128;
    for i in 0..samples {
        let id = format!("file://bench/searchable/{run}/{i}");
        let body = json!({"title": format!("latency probe {i}"), "data": "<p>push to searchable probe</p>"});
        let response = client.put(target.document_url(&id)).bearer_auth(&target.key).json(&body).send().await?;
        if response.status() != 202 {
            bail!("probe {i} answered {}", response.status());
        }
        let accepted = Instant::now();
        let aq = format!("@uri==\"{id}\"");
        while target.total(&client, &aq).await? == 0 {
            if accepted.elapsed() > Duration::from_secs(30) {
                bail!("probe {i} never became searchable");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(accepted.elapsed());
    }
    latencies.sort();
    Ok(json!({
        "benchmark": "searchable",
        "samples": samples,
        "p50_ms": percentile(&latencies, 0.50),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    }))
}

/// Inline `data` is at most 5 MiB; larger corpus items belong in their own container and are left out.
const MAX_INLINE_DATA: usize = 5 * 1024 * 1024;

fn inline_data_fits(line: &str) -> anyhow::Result<bool> {
    if line.len() <= MAX_INLINE_DATA {
        return Ok(true);
    }
    let item: Value = serde_json::from_str(line)?;
    Ok(item["data"].as_str().is_some_and(|data| data.len() <= MAX_INLINE_DATA))
}

/// Writes `{"addOrUpdate": [line, line, …]}` from the corpus lines that fit in `max_bytes`; returns the items
/// and the file's size.
fn write_batch_file(corpus: &str, path: &str, max_bytes: usize) -> anyhow::Result<(usize, usize)> {
    let text = std::fs::read_to_string(corpus).with_context(|| format!("reading {corpus}"))?;
    let mut batch = b"{\"addOrUpdate\":[".to_vec();
    let mut items = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if !inline_data_fits(line)? {
            continue;
        }
        if batch.len() + line.len() + 3 > max_bytes {
            break;
        }
        if items > 0 {
            batch.push(b',');
        }
        batch.extend_from_slice(line.as_bytes());
        items += 1;
    }
    batch.extend_from_slice(b"]}");
    std::fs::write(path, &batch).with_context(|| format!("writing {path}"))?;
    Ok((items, batch.len()))
}

/// A process's resident memory in MB, from `/proc/PID/status` (`VmRSS`, `VmHWM` for the peak, `RssAnon`).
fn memory_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field} for {pid}"))?;
    let kb: f64 = line.split_whitespace().nth(1).context("a size")?.parse()?;
    Ok(kb / 1024.0)
}

async fn batch(
    target: Target,
    corpus: String,
    batch_file: String,
    max_bytes: usize,
    pid: u32,
) -> anyhow::Result<Value> {
    let (items, bytes) = write_batch_file(&corpus, &batch_file, max_bytes)?;
    let body = std::fs::read(&batch_file)?;
    let client = client(2);
    let idle_mb = memory_mb(pid, "VmRSS:")?;
    let idle_hwm_mb = memory_mb(pid, "VmHWM:")?;
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak_anon = 0f64;
            while sampling.load(Ordering::Relaxed) {
                peak_anon = peak_anon.max(memory_mb(pid, "RssAnon:").unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak_anon
        })
    };

    let started = Instant::now();
    let file_id = upload(&client, &target, body).await?;
    let upload_s = started.elapsed().as_secs_f64();
    let pushed = Instant::now();
    let accepted = client
        .put(format!(
            "{}/push/v1/organizations/{}/sources/{}/documents/batch?fileId={}",
            target.url, target.org, target.source, file_id
        ))
        .bearer_auth(&target.key)
        .send()
        .await?;
    if accepted.status() != 202 {
        bail!("the batch answered {}: {}", accepted.status(), accepted.text().await?);
    }
    let validate_s = pushed.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(900);
    while target.total(&client, "").await? < items as u64 {
        if Instant::now() > deadline {
            bail!("the batch's items did not all become searchable within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let searchable_s = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let peak_anon_mb = sampler.await?;
    let peak_mb = memory_mb(pid, "VmHWM:")?;
    Ok(json!({
        "benchmark": "batch",
        "docs": items,
        "mb": bytes as f64 / 1e6,
        "upload_s": upload_s,
        "validate_s": validate_s,
        "validate_mb_per_s": bytes as f64 / 1e6 / validate_s,
        "apply_s": searchable_s - upload_s - validate_s,
        "all_searchable_s": searchable_s,
        "docs_per_s": items as f64 / searchable_s,
        "mb_per_s": bytes as f64 / 1e6 / searchable_s,
        "idle_rss_mb": idle_mb,
        "peak_rss_before_mb": idle_hwm_mb,
        "peak_rss_mb": peak_mb,
        "peak_rss_above_idle_mb": peak_mb - idle_mb,
        "peak_anon_sampled_mb": peak_anon_mb,
    }))
}

/// Creates a file container, uploads `body` to it, and returns its fileId.
async fn upload(client: &reqwest::Client, target: &Target, body: Vec<u8>) -> anyhow::Result<String> {
    let container: Value = client
        .post(format!("{}/push/v1/organizations/{}/files", target.url, target.org))
        .bearer_auth(&target.key)
        .send()
        .await?
        .json()
        .await?;
    let upload_uri = container["uploadUri"].as_str().context("no uploadUri")?;
    let uploaded = client
        .put(upload_uri)
        .header("content-type", "application/octet-stream")
        .header("x-amz-server-side-encryption", "AES256")
        .body(body)
        .send()
        .await?;
    if uploaded.status() != 200 {
        bail!("the upload answered {}: {}", uploaded.status(), uploaded.text().await?);
    }
    Ok(container["fileId"].as_str().context("no fileId")?.to_string())
}

async fn until_searchable(target: Target, count: u64, command: Vec<String>) -> anyhow::Result<Value> {
    let client = client(2);
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&command[0]).args(&command[1..]).stdout(std::process::Stdio::null()).status()
    })
    .await??;
    if !status.success() {
        bail!("the push command failed: {status}");
    }
    let command_s = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(900);
    while target.total(&client, "").await? < count {
        if Instant::now() > deadline {
            bail!("the items did not all become searchable within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(
        json!({"benchmark": "push", "docs": count, "command_s": command_s, "all_searchable_s": started.elapsed().as_secs_f64()}),
    )
}

/// Nanoseconds of CPU per item PUT spent in the limit checks, limits on and off, on one thread and on two
/// threads contending for the same organization (the worst case: every request of both cores at once).
fn limit_checks(operations: u64) -> anyhow::Result<Value> {
    use intake_model::quota::{LimitKey, Limits};
    use intake_server::quotas::{ItemCounts, Quotas};

    let dir = tempfile::tempdir()?;
    let catalog = Arc::new(intake_store::SqliteCatalog::open(&dir.path().join("catalog.sqlite"))?);
    let clock: Arc<dyn intake_store::Clock> = Arc::new(intake_store::SystemClock);
    let mut every_limit = Limits::default();
    for key in LimitKey::ALL {
        every_limit.set(key, Some(u64::MAX / 4));
    }
    let mut result = json!({"benchmark": "limit_checks", "operations": operations});
    for threads in [1u64, 2] {
        for (label, limits) in [("off", Limits::default()), ("on", every_limit)] {
            let quotas = Arc::new(Quotas::new(limits, catalog.clone(), clock.clone(), None));
            let started = Instant::now();
            let workers: Vec<_> = (0..threads)
                .map(|worker| {
                    let quotas = quotas.clone();
                    std::thread::spawn(move || -> anyhow::Result<()> {
                        for n in 0..operations / threads {
                            quotas.admit_call("default")?;
                            let reservation = quotas.reserve("default", ItemCounts::items(1, 1))?;
                            let seq = n * threads + worker + 1;
                            reservation.journaled(seq);
                            // The applier commits about every 250 ms: some 5,000 PUTs at 20,000/s.
                            if worker == 0 && n % (5_000 / threads) == 0 {
                                quotas.indexed("default", seq, seq);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker.join().map_err(|_| anyhow::anyhow!("a worker panicked"))??;
            }
            // The threads share the work: wall time × threads / operations is the CPU time of one PUT's checks.
            let cpu_ns = started.elapsed().as_nanos() as f64 * threads as f64 / operations as f64;
            result[format!("ns_per_put_limits_{label}_{threads}_threads")] = json!(cpu_ns);
        }
    }
    Ok(result)
}

/// Form-encodes a query value as the SDKs do.
fn form(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let result = match Cli::parse().command {
        Command::Ingest { target, corpus, concurrency } => ingest(target, corpus, concurrency).await?,
        Command::Searchable { target, samples } => searchable(target, samples).await?,
        Command::LimitChecks { operations } => limit_checks(operations)?,
        Command::UntilSearchable { target, count, command } => until_searchable(target, count, command).await?,
        Command::Batch { target, corpus, batch_file, max_bytes, server_pid } => {
            batch(target, corpus, batch_file, max_bytes, server_pid).await?
        }
        Command::Trimmed { target, corpus, queries, rounds } => {
            security::trimmed(target, corpus, queries, rounds).await?
        }
        Command::IdentityBatch { target, identities } => security::identity_batch(target, identities).await?,
        Command::Resolve { samples } => security::resolve(samples),
        Command::StreamLoad { target, corpus, chunks, rounds, server_pid } => {
            stream::full_load_vs_batches(target, corpus, chunks, rounds, server_pid).await?
        }
        Command::PartialUpdates { target, items, entries } => stream::partial_updates(target, items, entries).await?,
        Command::PdfText { rounds, files } => pdf::pdf_text(files, rounds)?,
        Command::Failover { target, standby_url, items, owner_pid, owner_data_dir, settle_seconds } => {
            let settle = Duration::from_secs(settle_seconds);
            failover::failover(target, standby_url, items, owner_pid, owner_data_dir, settle).await?
        }
        Command::SearchLoad { target, corpus, queries_out, queries, connections, rounds, facets } => {
            search::search_load(target, corpus, queries_out, queries, connections, rounds, facets).await?
        }
    };
    println!("{result}");
    Ok(())
}
