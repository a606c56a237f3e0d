//! `intake push PATH…`: pushes folders of documents, JSON Lines of items, or batch files to a Push API source —
//! Intake's or Coveo's — choosing the transport, retrying what can be retried, and reporting what happened.
//!
//! Every operation of a run carries the same `orderingId` (the run's start, in epoch milliseconds), so running
//! it again after an interruption rewrites the same items and loses nothing. `--full` is the rebuild flow:
//! status REBUILD, everything pushed, the items older than the run deleted, status IDLE.
//!
//! A CATALOG source takes the Stream API instead: `--catalog` sends everything as one full load (a stream, a
//! chunk per batch file) that replaces the catalog; `--update` sends update files. Pushing to a catalog source
//! without either is refused, because a full load deletes what it does not contain.

mod items;
mod progress;
mod send;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use intake_client::{Endpoint, PushClient, RetryPolicy, coveo_api_url};
use serde_json::{Value, json};

use crate::connection::ConnectionArgs;
use items::{Content, Filter, Input, Naming};
use progress::Progress;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Files and folders (folders are walked recursively), JSON Lines files (.jsonl), or batch files
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Read every file as JSON Lines of Push API items, each with its documentId
    #[arg(long)]
    jsonl: bool,
    /// Only files matching this glob, on the path under the folder or the file name (repeatable)
    #[arg(long = "include", value_name = "GLOB")]
    include: Vec<String>,
    /// Leave out files matching this glob (repeatable)
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
    /// documentIds are this URI + the path under the folder [default: file:///]
    #[arg(long, value_name = "URI")]
    base_uri: Option<String>,
    /// Metadata on every item, KEY=VALUE (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Largest batch file: bytes, or with KiB, MiB (at most 256 MiB)
    #[arg(long, default_value = "16MiB", value_parser = size)]
    batch_size: usize,
    /// Batches sent at once
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    parallel: u64,
    /// Rebuild: set the source to REBUILD, push everything, delete what this run did not push, set IDLE
    #[arg(long)]
    full: bool,
    /// A CATALOG source's full load through the Stream API: what is pushed replaces the whole catalog
    #[arg(long, conflicts_with_all = ["full", "update"])]
    catalog: bool,
    /// Changes to a loaded CATALOG source through the Stream API (stream/update); files may hold partialUpdate
    #[arg(long, conflicts_with = "full")]
    update: bool,
    /// With --full: minutes before the deletion of older items runs (Coveo's default is 15)
    #[arg(long, default_value_t = 15)]
    queue_delay: u32,
    /// After pushing, wait until every item is processed and list those that failed, from the logs API
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds
    #[arg(long, default_value_t = 600)]
    wait_timeout: u64,
    /// Check every item as the server would, send nothing
    #[arg(long)]
    dry_run: bool,
    /// The orderingId of every operation [default: the run's start, epoch milliseconds]
    #[arg(long)]
    ordering_id: Option<i64>,
    /// Source id [default: the one in bootstrap.json]
    #[arg(long, env = "INTAKE_SOURCE")]
    source: Option<String>,
    /// Push to Coveo's cloud in this region (us, ca, eu, au, hipaa) instead of --url
    #[arg(long)]
    region: Option<String>,
    /// Attempts per call before giving up (429, 5xx and connection errors are retried)
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// No progress output
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `64MiB`, `512KiB`, `1000000`.
fn size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = text.find(|c: char| !c.is_ascii_digit()).map_or((text, ""), |at| text.split_at(at));
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        _ => return Err(format!("'{text}' is not a size: write bytes, or a number of KiB or MiB (64MiB)")),
    };
    let bytes = number.parse::<usize>().map_err(|_| format!("'{text}' is not a size"))? * scale;
    if bytes == 0 || bytes as u64 > intake_model::limits::MAX_CONTAINER_BYTES {
        return Err(format!("'{text}': a batch file holds from 1 byte to 256 MiB"));
    }
    Ok(bytes)
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let filter = Filter::new(&args.include, &args.exclude)?;
    let inputs = items::list(&args.paths, &filter, args.jsonl)?;
    if inputs.is_empty() {
        bail!("nothing to push: no file under {} matches", describe(&args.paths));
    }
    let naming = Naming::new(args.base_uri.as_deref())?;
    if args.dry_run {
        let layout = if args.update { intake_model::batch::STREAM_UPDATE } else { intake_model::batch::ITEM_BATCH };
        return dry_run(&inputs, &naming, &args.metadata, layout);
    }
    let client = connect(&args)?;
    let started = Instant::now();
    let started_ms = now_ms();
    let ordering_id = args.ordering_id.unwrap_or(started_ms);
    let stream = stream_mode(&args, &client).await?;
    let total_bytes = inputs.iter().map(Input::size).sum();
    let endpoint = client.endpoint();
    eprintln!(
        "pushing {} inputs ({:.1} MB) to source {} of {} at {} (orderingId {ordering_id})",
        inputs.len(),
        total_bytes as f64 / 1e6,
        endpoint.source_id,
        endpoint.organization_id,
        endpoint.api_url
    );
    if args.full {
        client.set_status("REBUILD").await.context("setting the source to REBUILD")?;
    }
    let transport = match stream {
        Stream::Load => send::Transport::Chunks(client.open_stream().await.context("opening a stream")?),
        Stream::Update => send::Transport::Updates,
        Stream::None => send::Transport::Batches,
    };
    let progress = Progress::new(total_bytes, args.quiet);
    let plan = send::Plan {
        ordering_id,
        batch_bytes: args.batch_size,
        parallel: args.parallel as usize,
        naming,
        metadata: args.metadata.clone(),
        transport,
    };
    let stream_id = plan.transport.stream_id().map(str::to_string);
    let sent = send::send_all(&client, inputs, plan, &progress).await;
    progress.finish();
    let sent = match (sent, &stream_id) {
        (Err(error), Some(stream_id)) => {
            return Err(error.context(format!(
                "the full load was not closed: stream {stream_id} expires unused in 24 hours and the catalog is unchanged"
            )));
        }
        (sent, _) => sent?,
    };
    if let Some(stream_id) = &stream_id {
        let load = client.close_stream(stream_id).await.context("closing the stream")?;
        println!("Full load accepted (stream {stream_id}, orderingId {load}): it replaces the catalog once applied.");
    }
    if args.full {
        client
            .delete_older_than(ordering_id, Some(args.queue_delay))
            .await
            .context("deleting the items older than this run")?;
        client.set_status("IDLE").await.context("setting the source back to IDLE")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "Pushed {} ({:.1} MB) in {elapsed:.1} s: {}, {}, {} ({} through their own file container); {}.{}",
        count(sent.items, "item", "items"),
        sent.bytes as f64 / 1e6,
        count(sent.batches, "batch", "batches"),
        count(sent.batch_files, "batch file", "batch files"),
        count(sent.single_puts, "single PUT", "single PUTs"),
        sent.containers,
        count(client.retries(), "retry", "retries"),
        if args.full {
            format!(" Items older than orderingId {ordering_id} are deleted in {} min.", args.queue_delay)
        } else {
            String::new()
        }
    );
    if args.wait {
        // Stream operations get their orderingId from the server, at or after the run's start.
        let ours = move |id: i64| if stream == Stream::None { id == ordering_id } else { id >= started_ms };
        wait_for_outcomes(&client, ours, started_ms, sent.items, Duration::from_secs(args.wait_timeout)).await?;
    }
    if sent.skipped > 0 {
        bail!(
            "{} could not be pushed (listed above, \"skipped …\")",
            count(sent.skipped, "file or line", "files or lines")
        );
    }
    Ok(())
}

/// How the run uses the Stream API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    None,
    Load,
    Update,
}

/// The Stream API for `--catalog` and `--update`; a CATALOG source pushed without either is refused, since a
/// full load replaces the whole catalog and an update only applies to a loaded one: the user says which.
async fn stream_mode(args: &PushArgs, client: &PushClient) -> anyhow::Result<Stream> {
    if args.catalog {
        return Ok(Stream::Load);
    }
    if args.update {
        return Ok(Stream::Update);
    }
    if client.source_type().await.as_deref() == Some("CATALOG") {
        bail!(
            "source {} is a CATALOG source: push with --catalog (a full load: what you push replaces the whole \
             catalog) or with --update (changes to some items of the loaded catalog)",
            client.endpoint().source_id
        );
    }
    Ok(Stream::None)
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn describe(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The client: `--region` for Coveo's cloud, else `--url` or bootstrap.json; the source from `--source` or
/// bootstrap.json.
fn connect(args: &PushArgs) -> anyhow::Result<PushClient> {
    let mut connection = args.connection.clone();
    if let Some(region) = &args.region {
        anyhow::ensure!(!connection.has_url(), "give --region or --url, not both");
        let url = coveo_api_url(region)
            .with_context(|| format!("'{region}' is not a Coveo region: use us, ca, eu, au or hipaa"))?;
        connection.set_url(url);
        connection.require_explicit()?;
        anyhow::ensure!(args.source.is_some(), "give --source for Coveo's cloud");
    }
    let server = connection.connect()?;
    let source_id = match &args.source {
        Some(source) => source.clone(),
        None => connection
            .bootstrap()
            .map(|b| b.source_id)
            .context("no source: give --source (or run `intake serve` with this data folder first)")?,
    };
    let endpoint = Endpoint {
        api_url: server.base_url.clone(),
        organization_id: server.organization_id.clone(),
        source_id,
        api_key: server.api_key.clone(),
    };
    let retry = RetryPolicy { max_attempts: args.max_attempts.max(1), ..RetryPolicy::default() };
    Ok(PushClient::new(endpoint)?.with_retry(retry))
}

/// Checks every item as the server would, without sending anything; each problem is reported with its file.
fn dry_run(
    inputs: &[Input],
    naming: &Naming,
    metadata: &[(String, String)],
    layout: intake_model::batch::BatchLayout,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let mut checked = 0;
    for input in inputs {
        let path = input.path().display();
        match input {
            Input::File { path: file, relative, .. } => {
                checked += 1;
                match items::prepare_file(file, relative, naming, metadata) {
                    Ok(item) => problems.extend(check_item(&item).err().map(|why| format!("{path}: {why}"))),
                    Err(error) => problems.push(format!("{error:#}")),
                }
            }
            Input::Jsonl { path: file, .. } => {
                let text = std::fs::File::open(file).with_context(|| format!("{path} cannot be read"))?;
                for (n, line) in std::io::BufRead::lines(std::io::BufReader::new(text)).enumerate() {
                    let line = line.with_context(|| format!("{path}:{} is not readable text", n + 1))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    checked += 1;
                    let place = format!("{path}:{}", n + 1);
                    let problem = items::prepare_line(&line, &place)
                        .and_then(|item| check_item(&item).map_err(|why| anyhow::anyhow!("{place}: {why}")));
                    problems.extend(problem.err().map(|e| format!("{e:#}")));
                }
            }
            Input::Batch { path: file, .. } => {
                let (count, found) = check_batch_file(file, layout)?;
                checked += count;
                problems.extend(found.into_iter().map(|why| format!("{path}: {why}")));
            }
        }
    }
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        println!("{checked} items checked: no problems. Nothing was sent (--dry-run).");
        Ok(())
    } else {
        bail!("{} of {checked} items have problems (listed above). Nothing was sent (--dry-run).", problems.len())
    }
}

/// The server's own parser on the item, as a single PUT would send it.
fn check_item(item: &items::Prepared) -> Result<(), String> {
    let body = match &item.content {
        Content::Entry(entry) => entry.clone(),
        Content::Large { item: fields, .. } => {
            let mut fields = fields.clone();
            fields.insert("compressedBinaryDataFileId".into(), json!("checked-in-a-dry-run"));
            serde_json::to_vec(&Value::Object(fields)).map_err(|e| e.to_string())?
        }
    };
    let context = intake_model::item::ItemContext { document_id: Some(&item.document_id), compression: None };
    intake_model::item::parse_item(&body, context).map(drop).map_err(|e| format!("{}: {}", e.code, e.message))
}

/// Entries of a batch file, and what is wrong with it or its items.
fn check_batch_file(path: &PathBuf, layout: intake_model::batch::BatchLayout) -> anyhow::Result<(usize, Vec<String>)> {
    let file = std::fs::File::open(path).with_context(|| format!("{} cannot be read", path.display()))?;
    let mut problems = Vec::new();
    let mut count = 0;
    for entry in intake_model::batch::BatchReader::with_layout(std::io::BufReader::new(file), layout) {
        count += 1;
        match entry.and_then(|raw| raw.parse()) {
            Ok(intake_model::batch::BatchEntry::AddOrUpdate { document_id, item: Err(error), .. }) => {
                problems.push(format!("{document_id}: {}: {}", error.code, error.message))
            }
            Ok(_) => {}
            Err(error) => {
                problems.push(format!("ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3: {}", error.message));
                break;
            }
        }
    }
    Ok((count, problems))
}

/// Polls the logs API until every operation of the run (its `orderingId`) has an outcome, then lists the items
/// that did not end COMPLETED with their reasons.
async fn wait_for_outcomes(
    client: &PushClient,
    ours: impl Fn(i64) -> bool,
    started_ms: i64,
    items: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let from = items::iso_date(started_ms - 60_000);
    let filters = json!({ "sourcesIds": [client.endpoint().source_id] });
    loop {
        let mut outcomes = std::collections::BTreeMap::<String, (String, String)>::new();
        let mut page = 0;
        loop {
            let to = items::iso_date(now_ms() + 60_000);
            let query = [("from", from.clone()), ("to", to), ("page", page.to_string()), ("perPage", "1000".into())];
            let answer = client.logs(&query, &filters).await.context("reading the logs")?;
            for entry in answer["documentLogEntries"].as_array().into_iter().flatten() {
                // This run's operations; a --full run's (or a full load's) deletion of older items is not one of
                // them, nor the line a stream file logs for itself.
                let ordering = entry["meta"]["orderingId"].as_str().and_then(|id| id.parse().ok());
                if !ordering.is_some_and(&ours)
                    || ["DELETE_OLDER_THAN", "BATCH_FILE"].contains(&entry["operation"].as_str().unwrap_or_default())
                {
                    continue;
                }
                let id = entry["id"].as_str().unwrap_or_default().to_string();
                let result = entry["result"].as_str().unwrap_or_default().to_string();
                let reason = entry["meta"]["error"].as_str().unwrap_or_default().to_string();
                outcomes.insert(id, (result, reason));
            }
            if answer["hasNextPage"] != true {
                break;
            }
            page += 1;
        }
        if outcomes.len() as u64 >= items {
            let failed: Vec<_> = outcomes.iter().filter(|(_, (result, _))| result != "COMPLETED").collect();
            println!(
                "{} items processed: {} COMPLETED, {} not.",
                outcomes.len(),
                outcomes.len() - failed.len(),
                failed.len()
            );
            for (id, (result, reason)) in &failed {
                println!("  {result} {id}: {reason}");
            }
            if !failed.is_empty() {
                bail!("{} failed after being accepted (listed above)", count(failed.len() as u64, "item", "items"));
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("after {} s, {} of {items} items have an outcome in the logs", timeout.as_secs(), outcomes.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
