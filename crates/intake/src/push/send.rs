//! Sending what `intake push` prepared, choosing the transport: a handful of items as single PUTs, anything
//! more packed into batch files (several uploading at once), items too large to send inline through a file
//! container of their own. Files are read and made into items on a blocking thread while earlier batches
//! travel; a bounded channel and a bounded number of batches in flight keep memory to a few batches.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use intake_client::{BatchPacker, PushClient};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::items::{Content, Input, Naming, Prepared, prepare_file, prepare_line};
use super::progress::Progress;

/// At most this many items are sent as single PUTs; more go in batches.
pub const SINGLE_ITEM_LIMIT: usize = 10;

/// How to send.
pub struct Plan {
    pub ordering_id: i64,
    pub batch_bytes: usize,
    /// Batches (or single items) in flight at once.
    pub parallel: usize,
    pub naming: Naming,
    pub metadata: Vec<(String, String)>,
    pub transport: Transport,
}

/// Where batch files go.
pub enum Transport {
    /// `…/documents/batch` of a Push source (a handful of items as single PUTs).
    Batches,
    /// Chunks of the open stream of a catalog's full load.
    Chunks(String),
    /// `…/stream/update` of a loaded catalog.
    Updates,
}

impl Transport {
    /// The stream of a full load.
    pub fn stream_id(&self) -> Option<&str> {
        match self {
            Transport::Chunks(stream_id) => Some(stream_id),
            _ => None,
        }
    }

    /// Sends one batch file as this transport does.
    async fn send(&self, client: &PushClient, file: Bytes, ordering_id: Option<i64>) -> anyhow::Result<()> {
        match self {
            Transport::Batches => client.send_batch(file, ordering_id).await.map(drop)?,
            Transport::Chunks(stream_id) => client.send_chunk(stream_id, file).await?,
            Transport::Updates => client.send_stream_update(file).await.map(drop)?,
        }
        Ok(())
    }
}

/// What was sent.
#[derive(Debug, Default)]
pub struct Sent {
    pub items: u64,
    pub batches: u64,
    pub batch_files: u64,
    pub single_puts: u64,
    pub containers: u64,
    pub bytes: u64,
    /// Files or lines that could not be made into items.
    pub skipped: u64,
}

/// One unit of work the senders finish: how many items and input bytes it carried, for progress.
struct Done {
    items: u64,
    bytes: u64,
}

pub async fn send_all(
    client: &PushClient,
    inputs: Vec<Input>,
    plan: Plan,
    progress: &Progress,
) -> anyhow::Result<Sent> {
    // The Stream API takes batch files only.
    let singles = matches!(plan.transport, Transport::Batches)
        && inputs.len() <= SINGLE_ITEM_LIMIT
        && inputs.iter().all(|i| matches!(i, Input::File { .. }));
    let plan = Arc::new(plan);
    let (prepared, mut receive) = mpsc::channel::<Work>(256);
    let producer = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || produce(inputs, &plan, &prepared))
    };
    let in_flight = Arc::new(Semaphore::new(plan.parallel.max(1)));
    let mut tasks: JoinSet<anyhow::Result<Done>> = JoinSet::new();
    let mut packer = Packed::new(plan.batch_bytes);
    let mut sent = Sent::default();
    let mut failure = None;
    while let Some(work) = receive.recv().await {
        if let Some(job) = route(work, singles, &mut packer, &mut sent, progress) {
            sent.count(&job);
            spawn(&mut tasks, &in_flight, client, &plan, job).await;
        }
        if let Some(error) = drain_finished(&mut tasks, progress) {
            failure = Some(error);
            break;
        }
    }
    drop(receive);
    if failure.is_none()
        && let Some(last) = packer.finish()
    {
        let job = Job::Batch(last);
        sent.count(&job);
        spawn(&mut tasks, &in_flight, client, &plan, job).await;
    }
    while let Some(done) = tasks.join_next().await {
        match done.context("a sending task failed")? {
            Ok(done) => progress.advance(done.items, done.bytes),
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    producer.await.context("the file reader failed")?;
    match failure {
        Some(error) => Err(error),
        None => Ok(sent),
    }
}

/// The job a piece of work becomes, if any yet: a batch job only once a batch is full.
fn route(work: Work, singles: bool, packer: &mut Packed, sent: &mut Sent, progress: &Progress) -> Option<Job> {
    match work {
        Work::Item(Prepared { content: Content::Large { item, compressed }, document_id, source_bytes }) => {
            Some(Job::Large { document_id, item, compressed, source_bytes })
        }
        Work::Item(Prepared { content: Content::Entry(entry), document_id, source_bytes }) if singles => {
            Some(Job::Single { document_id, entry, source_bytes })
        }
        Work::Item(Prepared { content: Content::Entry(entry), source_bytes, .. }) => {
            packer.add(&entry, source_bytes).map(Job::Batch)
        }
        Work::BatchFile { bytes, items, source_bytes } => Some(Job::BatchFile { bytes, items, source_bytes }),
        Work::Skipped(why) => {
            progress.println(&format!("skipped {why}"));
            sent.skipped += 1;
            None
        }
    }
}

/// What the reader hands to the sender.
enum Work {
    Item(Prepared),
    BatchFile {
        bytes: Bytes,
        items: u64,
        source_bytes: u64,
    },
    /// A file or line that cannot be pushed, and why.
    Skipped(String),
}

/// Reads every input, in order, into items (on a blocking thread).
/// A file or line that cannot become an item is skipped with its reason; the rest is still pushed.
fn produce(inputs: Vec<Input>, plan: &Plan, out: &mpsc::Sender<Work>) {
    let send = |work: Work| out.blocking_send(work).is_ok();
    for input in inputs {
        let going = match input {
            Input::File { path, relative, .. } => {
                send(match prepare_file(&path, &relative, &plan.naming, &plan.metadata) {
                    Ok(item) => Work::Item(item),
                    Err(error) => Work::Skipped(format!("{error:#}")),
                })
            }
            Input::Jsonl { path, .. } => jsonl_items(&path, &send),
            Input::Batch { path, .. } => {
                let layout = match plan.transport {
                    Transport::Updates => intake_model::batch::STREAM_UPDATE,
                    _ => intake_model::batch::ITEM_BATCH,
                };
                send(batch_file(&path, layout).unwrap_or_else(|e| Work::Skipped(format!("{e:#}"))))
            }
        };
        if !going {
            return; // the sender stopped (a failure)
        }
    }
}

/// Sends a JSON Lines file's items one line at a time; false when the sender stopped.
fn jsonl_items(path: &PathBuf, send: &impl Fn(Work) -> bool) -> bool {
    let file = match std::fs::File::open(path) {
        Ok(file) => std::io::BufReader::new(file),
        Err(error) => return send(Work::Skipped(format!("{} cannot be read: {error}", path.display()))),
    };
    for (n, line) in std::io::BufRead::lines(file).enumerate() {
        let place = format!("{}:{}", path.display(), n + 1);
        let work = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => prepare_line(&line, &place).map_or_else(|e| Work::Skipped(format!("{e:#}")), Work::Item),
            Err(error) => Work::Skipped(format!("{place}: {error}")),
        };
        if !send(work) {
            return false;
        }
    }
    true
}

/// A ready batch file, checked as the server will check it.
fn batch_file(path: &PathBuf, layout: intake_model::batch::BatchLayout) -> anyhow::Result<Work> {
    let bytes = std::fs::read(path).with_context(|| format!("{} cannot be read", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= intake_model::limits::MAX_CONTAINER_BYTES,
        "{} is {} bytes: a batch file holds at most 256 MiB; split it, or push it as JSON Lines with --jsonl",
        path.display(),
        bytes.len()
    );
    let summary = intake_model::batch::validate_layout(&bytes[..], layout)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
    let source_bytes = bytes.len() as u64;
    let items = (summary.add_or_update + summary.delete + summary.partial_update) as u64;
    Ok(Work::BatchFile { bytes: bytes.into(), items, source_bytes })
}

/// The batch being packed, with what it holds.
struct Packed {
    packer: BatchPacker,
    items: u64,
    bytes: u64,
}

/// A full batch: its file, its items, the input bytes they came from.
struct Batch {
    file: Bytes,
    items: u64,
    source_bytes: u64,
}

impl Packed {
    fn new(max_bytes: usize) -> Packed {
        Packed { packer: BatchPacker::new(max_bytes), items: 0, bytes: 0 }
    }

    /// Adds an item's batch entry; returns the previous batch when this one did not fit in it.
    fn add(&mut self, entry: &[u8], source_bytes: u64) -> Option<Batch> {
        let full = self.packer.push_add(entry).map(|file| self.take(file));
        self.items += 1;
        self.bytes += source_bytes;
        full
    }

    fn finish(&mut self) -> Option<Batch> {
        self.packer.finish().map(|file| self.take(file))
    }

    fn take(&mut self, file: Bytes) -> Batch {
        let batch = Batch { file, items: self.items, source_bytes: self.bytes };
        (self.items, self.bytes) = (0, 0);
        batch
    }
}

enum Job {
    Single { document_id: String, entry: Vec<u8>, source_bytes: u64 },
    Large { document_id: String, item: serde_json::Map<String, Value>, compressed: Vec<u8>, source_bytes: u64 },
    Batch(Batch),
    BatchFile { bytes: Bytes, items: u64, source_bytes: u64 },
}

impl Sent {
    fn count(&mut self, job: &Job) {
        match job {
            Job::Single { source_bytes, .. } => {
                self.single_puts += 1;
                self.items += 1;
                self.bytes += source_bytes;
            }
            Job::Large { source_bytes, .. } => {
                self.containers += 1;
                self.single_puts += 1;
                self.items += 1;
                self.bytes += source_bytes;
            }
            Job::Batch(batch) => {
                self.batches += 1;
                self.items += batch.items;
                self.bytes += batch.source_bytes;
            }
            Job::BatchFile { items, source_bytes, .. } => {
                self.batch_files += 1;
                self.items += items;
                self.bytes += source_bytes;
            }
        }
    }
}

/// Starts a job once fewer than `parallel` are in flight.
async fn spawn(
    tasks: &mut JoinSet<anyhow::Result<Done>>,
    in_flight: &Arc<Semaphore>,
    client: &PushClient,
    plan: &Arc<Plan>,
    job: Job,
) {
    let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
    let (client, plan) = (client.clone(), plan.clone());
    tasks.spawn(async move {
        let done = run(&client, &plan, job).await;
        drop(permit);
        done
    });
}

async fn run(client: &PushClient, plan: &Plan, job: Job) -> anyhow::Result<Done> {
    let ordering_id = Some(plan.ordering_id);
    Ok(match job {
        Job::Single { document_id, entry, source_bytes } => {
            client
                .add_or_update(&document_id, entry.into(), ordering_id)
                .await
                .with_context(|| format!("pushing {document_id}"))?;
            Done { items: 1, bytes: source_bytes }
        }
        Job::Large { document_id, mut item, compressed, source_bytes } => {
            let container = client.create_container().await?;
            client.upload(&container, compressed.into()).await.with_context(|| format!("uploading {document_id}"))?;
            item.insert("compressedBinaryDataFileId".into(), json!(container.file_id));
            if matches!(plan.transport, Transport::Batches) {
                let body = serde_json::to_vec(&Value::Object(item))?;
                client
                    .add_or_update(&document_id, body.into(), ordering_id)
                    .await
                    .with_context(|| format!("pushing {document_id}"))?;
            } else {
                // The Stream API takes batch files only: the item goes alone in one.
                item.insert("documentId".into(), json!(document_id));
                let file = serde_json::to_vec(&json!({"addOrUpdate": [Value::Object(item)]}))?;
                plan.transport
                    .send(client, file.into(), ordering_id)
                    .await
                    .with_context(|| format!("pushing {document_id}"))?;
            }
            Done { items: 1, bytes: source_bytes }
        }
        Job::Batch(batch) => {
            plan.transport.send(client, batch.file, ordering_id).await.context("sending a batch")?;
            Done { items: batch.items, bytes: batch.source_bytes }
        }
        Job::BatchFile { bytes, items, source_bytes } => {
            plan.transport.send(client, bytes, ordering_id).await.context("sending a batch file")?;
            Done { items, bytes: source_bytes }
        }
    })
}

/// Counts the jobs already finished; the first failure, if any.
fn drain_finished(tasks: &mut JoinSet<anyhow::Result<Done>>, progress: &Progress) -> Option<anyhow::Error> {
    while let Some(done) = tasks.try_join_next() {
        match done {
            Ok(Ok(done)) => progress.advance(done.items, done.bytes),
            Ok(Err(error)) => return Some(error),
            Err(panic) => return Some(anyhow::anyhow!("a sending task failed: {panic}")),
        }
    }
    None
}
