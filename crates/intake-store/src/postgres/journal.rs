//! The journal on PostgreSQL, shared by the nodes of a cluster: one row per record.
//!
//! Appends are grouped as on the embedded journal: the appends waiting when a transaction starts share it, so
//! concurrent clients cost one commit, not one each. A transaction first takes the next sequence numbers from
//! `journal_head`, whose row lock it holds until it commits: groups of different nodes commit one after the
//! other, in the order of their numbers, so every record up to a number known durable is there to read. Each
//! commit notifies `intake_journal` with the new end, so readers on every node follow it — unless no other node
//! listens: a node alone (counted every [`LOOK_EVERY`]) announces nothing, as waking its own listener at every
//! commit cost it 6 % of its single pushes (bench/RESULTS.md §36). Each node also reads the end itself every
//! [`LOOK_EVERY`], so a commit it was not told of (it joined a moment ago, or its listener was reconnecting) is
//! found within that.
//!
//! With a blob store (S3), a record larger than [`PgJournal::LARGE_RECORD`] (256 KiB) is written there first, as an object of its
//! own, and its row holds only the object's name: a 202 still waits for both, the object before the row, so a
//! row never names an object that is not there. Rows stay small, so PostgreSQL's WAL and TOAST carry the many
//! small records and S3 the few large ones. An object goes once its row is deleted; one whose row never
//! committed (the node died between the two, or the commit failed) is swept a day later, once no row names it.
//!
//! A record between [`COMPRESS_FROM`] and [`LARGE_RECORD`] is compressed (LZ4) by the node, on the thread that
//! appends it, and its row says its size before (`raw_bytes`): the single transaction every append waits for
//! then only stores it, where PostgreSQL compressing whole pages in it made 42.7 KB pushes wait on one core.
//!
//! The records a node committed stay in its memory until its reader takes them ([`Recent`], up to
//! [`RECENT_BYTES`]): the node applying what it accepted does not read its own rows back from PostgreSQL, only
//! the records other nodes appended (and any it no longer holds).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Postgres, listener_name};
use crate::catalog::random_id;
use crate::journal::{
    AppendFuture, AppendRequest, DurableEnd, Journal, JournalError, JournalReader, Seq, Waiting, gather, refuse,
};
use crate::{BlobStore, StoreError};

const CHANNEL: &str = "intake_journal";
/// At most this many bytes go into one transaction.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// At most this many records come back from one read.
const READ_ROWS: i64 = 1024;
/// A node that has not reported its position for this long no longer holds back the deletion of records.
const POSITION_EXPIRY: &str = "1 hour";
/// With a blob store, records larger than this are objects of their own: a whole document pushed alone (up to
/// Coveo's 5 MB) would otherwise be a large row, with as many bytes of WAL, for every node to read back.
const LARGE_RECORD: usize = 256 * 1024;
/// An object of the journal this old that no row names is deleted: its node died between writing it and
/// committing its row, or the commit failed. Far longer than any append can take (its commit gives up within
/// seconds), so an object whose row is still on its way is never taken for one.
const UNNAMED_OBJECT_AGE: Duration = Duration::from_secs(24 * 3600);
/// How often a node looks for such objects (when it releases records).
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Records from this size up are compressed by the node. PostgreSQL keeps smaller ones as they are too (its
/// TOAST threshold): a 1.5 KB push is not worth the work.
const COMPRESS_FROM: usize = 2 * 1024;
/// At most this many bytes of committed records wait in memory for this node's reader; beyond, it reads them
/// from PostgreSQL. About a second of single pushes, so a reader keeping up never reads its own rows back.
const RECENT_BYTES: usize = 32 * 1024 * 1024;
/// How often a node reads the journal's end itself and counts the nodes listening to it.
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub struct PgJournal {
    db: Arc<Postgres>,
    sender: mpsc::Sender<Staged>,
    end: Arc<DurableEnd>,
    /// The records this node committed that its reader has not taken yet.
    recent: Arc<Recent>,
    /// This node's name among the positions.
    node: String,
    /// Where records larger than [`LARGE_RECORD`] go first; `None`: in their rows.
    bodies: Option<Arc<dyn BlobStore>>,
    /// When this node last looked for objects no row names (`None`: not yet).
    swept_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl PgJournal {
    /// Records larger than this are objects in the blob store, when the journal has one.
    pub const LARGE_RECORD: usize = LARGE_RECORD;

    /// The journal in `db`; `node` names this node's applied position. With `bodies`, large records are objects
    /// there, named in their rows.
    pub fn open(db: Arc<Postgres>, node: &str, bodies: Option<Arc<dyn BlobStore>>) -> Result<PgJournal, StoreError> {
        let last: i64 = db.run(async {
            let client = db.client().await?;
            Ok::<_, StoreError>(client.query_one("SELECT last_seq FROM journal_head", &[]).await?.get(0))
        })?;
        let end = DurableEnd::new(last as Seq);
        let (sender, receiver) = mpsc::channel(4096);
        let recent = Arc::new(Recent::default());
        // Until the first count, as if other nodes listened.
        let announce = Arc::new(AtomicBool::new(true));
        db.spawn(write(Arc::downgrade(&db), receiver, end.clone(), recent.clone(), announce.clone()));
        follow(&db, end.clone(), announce);
        Ok(PgJournal { db, sender, end, recent, node: node.to_string(), bodies, swept_at: Default::default() })
    }

    /// Deletes the journal's objects written more than `age` ago that no row names (see [`UNNAMED_OBJECT_AGE`]);
    /// how many.
    pub fn sweep_unnamed_objects(&self, age: Duration) -> Result<usize, JournalError> {
        let Some(bodies) = &self.bodies else { return Ok(0) };
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let before_ms = now_ms.saturating_sub(age).as_millis() as i64;
        let listed = bodies.list().map_err(|e| unavailable_or(e, JournalError::Read))?;
        let old: Vec<String> =
            listed.into_iter().filter(|blob| blob.written_at_ms <= before_ms).map(|blob| blob.id).collect();
        if old.is_empty() {
            return Ok(0);
        }
        let named: std::collections::HashSet<String> = self
            .db
            .with_client(async |client| {
                let rows = client.query("SELECT object FROM journal WHERE object = ANY($1)", &[&old]).await?;
                Ok(rows.iter().map(|row| row.get(0)).collect())
            })
            .map_err(read_error)?;
        let unnamed: Vec<String> = old.into_iter().filter(|object| !named.contains(object)).collect();
        delete_objects(bodies.as_ref(), &unnamed);
        if !unnamed.is_empty() {
            tracing::info!(objects = unnamed.len(), "journal objects no record names were deleted");
        }
        Ok(unnamed.len())
    }

    /// Sweeps once every [`SWEEP_INTERVAL`]; a failure is only logged (the objects stay until the next one).
    fn sweep_when_due(&self) {
        {
            let mut swept_at = self.swept_at.lock().expect("sweep lock");
            if swept_at.is_some_and(|at| at.elapsed() < SWEEP_INTERVAL) {
                return;
            }
            *swept_at = Some(std::time::Instant::now());
        }
        if let Err(error) = self.sweep_unnamed_objects(UNNAMED_OBJECT_AGE) {
            tracing::warn!(%error, "the journal's objects could not be swept; trying again in an hour");
        }
    }
}

/// An append on its way to the writer: for each record held by an object, the object's name (its record in
/// `request` is then empty); for each record compressed, its compressed body.
struct Staged {
    request: AppendRequest,
    objects: Vec<Option<String>>,
    compressed: Vec<Option<Vec<u8>>>,
}

impl Waiting for Staged {
    fn bytes(&self) -> usize {
        self.request.bytes()
    }

    fn answer(self, result: Result<Seq, JournalError>) {
        self.request.answer(result);
    }
}

impl Staged {
    /// An append whose records held by objects are named by `objects`: the others are compressed here when
    /// worth it (see [`COMPRESS_FROM`]).
    fn new(request: AppendRequest, objects: Vec<Option<String>>) -> Staged {
        let compressed = compress_inline(&request.records, &objects);
        Staged { request, objects, compressed }
    }

    /// An append whose records all go in their rows.
    fn inline(request: AppendRequest) -> Staged {
        let objects = vec![None; request.records.len()];
        Staged::new(request, objects)
    }

    /// Each record's body as its row holds it, and its size before compression when compressed.
    fn bodies(&self) -> impl Iterator<Item = (&[u8], Option<i32>)> {
        self.request.records.iter().zip(&self.compressed).map(|(record, compressed)| match compressed {
            Some(body) => (body.as_slice(), Some(record.len() as i32)),
            None => (record.as_slice(), None),
        })
    }
}

/// The records not held by objects compressed, where worth it.
fn compress_inline(records: &[Vec<u8>], objects: &[Option<String>]) -> Vec<Option<Vec<u8>>> {
    records.iter().zip(objects).map(|(record, object)| if object.is_some() { None } else { compress(record) }).collect()
}

/// `record` compressed, when it is in the sizes compressed and that saves an eighth of it at least.
fn compress(record: &[u8]) -> Option<Vec<u8>> {
    if !(COMPRESS_FROM..=LARGE_RECORD).contains(&record.len()) {
        return None;
    }
    let compressed = lz4_flex::block::compress(record);
    (compressed.len() <= record.len() - record.len() / 8).then_some(compressed)
}

/// The record `seq` from its row's `body`, compressed by a node when `raw_bytes` is given.
fn decompress(seq: i64, body: Vec<u8>, raw_bytes: Option<i32>) -> Result<Vec<u8>, JournalError> {
    let Some(raw_bytes) = raw_bytes else { return Ok(body) };
    // No node compresses a record larger than a row holds: a larger size is damage, not an allocation to make.
    let raw_bytes = usize::try_from(raw_bytes).ok().filter(|&n| n <= LARGE_RECORD).ok_or_else(|| {
        JournalError::Read(format!("journal record {seq} claims {raw_bytes} bytes once decompressed"))
    })?;
    lz4_flex::block::decompress(&body, raw_bytes)
        .ok()
        .filter(|record| record.len() == raw_bytes)
        .ok_or_else(|| JournalError::Read(format!("journal record {seq} does not decompress to its {raw_bytes} bytes")))
}

/// Writes `request`'s large records to `bodies` and compresses the others (on a blocking thread: the blob
/// store's calls wait), then hands the append to the writer; a failure answers it at once.
async fn stage(bodies: Arc<dyn BlobStore>, mut request: AppendRequest, writer: mpsc::Sender<Staged>) {
    let mut records = std::mem::take(&mut request.records);
    let written = tokio::task::spawn_blocking(move || {
        let mut objects = Vec::with_capacity(records.len());
        for record in &mut records {
            if record.len() <= LARGE_RECORD {
                objects.push(None);
                continue;
            }
            let name = format!("{}.record", random_id(24));
            let mut writer = bodies.create(&name)?;
            std::io::Write::write_all(&mut writer, record)?;
            writer.finish()?;
            record.clear();
            objects.push(Some(name));
        }
        let compressed = compress_inline(&records, &objects);
        Ok::<_, StoreError>((records, objects, compressed))
    })
    .await;
    match written {
        Ok(Ok((records, objects, compressed))) => {
            request.records = records;
            if let Err(unsent) = writer.send(Staged { request, objects, compressed }).await {
                unsent.0.answer(Err(JournalError::Closed));
            }
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "a large journal record could not be written to the blob store");
            request.answer(Err(unavailable_or(error, JournalError::Write)));
        }
        Err(panic) => request.answer(Err(JournalError::Write(format!("writing a large record failed: {panic}")))),
    }
}

/// `error` as a journal error: unavailable (a retry may succeed) when the store said so, else `other`.
fn unavailable_or(error: StoreError, other: impl FnOnce(String) -> JournalError) -> JournalError {
    if error.is_unavailable() { JournalError::Unavailable(error.to_string()) } else { other(error.to_string()) }
}

/// The writer's connection of its own and its append statement, made again when lost. One PostgreSQL process
/// takes every commit of the node, so it stays warm: taken from the pool, each commit went to the connection
/// idle longest, another process to wake each time: 12,995 single pushes a second against 14,502 with its own
/// (bench/RESULTS.md §36).
#[derive(Default)]
struct WriterConnection(Option<(tokio_postgres::Client, tokio_postgres::Statement)>);

impl WriterConnection {
    async fn get(
        &mut self,
        db: &Postgres,
    ) -> Result<(&tokio_postgres::Client, &tokio_postgres::Statement), StoreError> {
        if self.0.as_ref().is_none_or(|(client, _)| client.is_closed()) {
            self.0 = None;
            let client = db.dedicated().await?;
            let append = client.prepare(APPEND_GROUP).await?;
            self.0 = Some((client, append));
        }
        let (client, append) = self.0.as_ref().expect("connected just now");
        Ok((client, append))
    }
}

/// The writer: one transaction per group of appends, announced to the other nodes while `announce`.
async fn write(
    db: std::sync::Weak<Postgres>,
    mut receiver: mpsc::Receiver<Staged>,
    end: Arc<DurableEnd>,
    recent: Arc<Recent>,
    announce: Arc<AtomicBool>,
) {
    let mut connection = WriterConnection::default();
    while let Some(first) = receiver.recv().await {
        let mut group = gather(first, &mut receiver, MAX_GROUP_BYTES);
        let Some(db) = db.upgrade() else {
            refuse(group, &JournalError::Closed);
            return;
        };
        match commit_group(&db, &mut connection, &group, announce.load(Ordering::Relaxed)).await {
            Ok(last) => {
                let first = last + 1 - group.iter().map(|r| r.objects.len() as Seq).sum::<Seq>();
                recent.keep(first, &mut group);
                end.synced(last);
                let mut seq = first - 1;
                for staged in group {
                    seq += staged.objects.len() as Seq;
                    staged.answer(Ok(seq));
                }
            }
            Err(error) => {
                // The group's objects stay: a commit whose answer was lost may have written the rows naming them,
                // and a row naming a deleted object would stop every reader. An object left unnamed is only space.
                tracing::error!(%error, "the journal could not append to PostgreSQL");
                refuse(group, &unavailable_or(error, JournalError::Write));
            }
        }
    }
}

/// The records this node committed, in order, until its reader takes them; at most [`RECENT_BYTES`] of them.
/// Those held by objects are not kept: the reader reads them (and any other gap) as it reads other nodes'.
#[derive(Default)]
struct Recent(Mutex<RecentRecords>);

#[derive(Default)]
struct RecentRecords {
    records: VecDeque<(Seq, Vec<u8>)>,
    bytes: usize,
}

impl Recent {
    /// Keeps the records of a group just committed, numbered from `first` (it gives them up), unless they would
    /// take more than [`RECENT_BYTES`]: a reader that far behind reads them from PostgreSQL.
    fn keep(&self, first: Seq, group: &mut [Staged]) {
        let bytes: usize = group.iter().map(Waiting::bytes).sum();
        let mut recent = self.0.lock().expect("recent records lock");
        if recent.bytes + bytes > RECENT_BYTES {
            return;
        }
        let numbered = group.iter_mut().flat_map(|staged| {
            std::mem::take(&mut staged.request.records).into_iter().zip(staged.objects.iter().map(Option::is_some))
        });
        for (seq, (record, in_object)) in (first..).zip(numbered) {
            if !in_object {
                recent.bytes += record.len();
                recent.records.push_back((seq, record));
            }
        }
    }

    /// The records after `after` through `end` while they follow on from it here, until `max_bytes` are reached
    /// (the last may go past them) or [`READ_ROWS`], as a read from PostgreSQL (smaller reads let the applier
    /// report progress more often: 31,850 pushes of 1.5 KB were searchable 6 % sooner than with no bound on
    /// their count); those up to `after` are dropped. Empty when the next record is not here.
    fn take(&self, after: Seq, end: Seq, max_bytes: usize) -> Vec<(Seq, Vec<u8>)> {
        let mut recent = self.0.lock().expect("recent records lock");
        recent.drop_through(after);
        let (mut batch, mut bytes) = (Vec::new(), 0);
        while bytes < max_bytes && batch.len() < READ_ROWS as usize {
            let next = after + 1 + batch.len() as Seq;
            if next > end || recent.records.front().is_none_or(|(seq, _)| *seq != next) {
                break;
            }
            let (seq, record) = recent.records.pop_front().expect("the front record");
            recent.bytes -= record.len();
            bytes += record.len();
            batch.push((seq, record));
        }
        batch
    }

    /// Forgets the records up to `seq`.
    fn forget_through(&self, seq: Seq) {
        self.0.lock().expect("recent records lock").drop_through(seq);
    }
}

impl RecentRecords {
    fn drop_through(&mut self, seq: Seq) {
        while self.records.front().is_some_and(|(kept, _)| *kept <= seq) {
            let (_, record) = self.records.pop_front().expect("the front record");
            self.bytes -= record.len();
        }
    }
}

/// Deletes the objects of records gone; one that cannot be deleted is only space.
fn delete_objects(bodies: &dyn BlobStore, objects: &[String]) {
    for object in objects {
        if let Err(error) = bodies.delete(object) {
            tracing::warn!(%error, object, "the object of a journal record gone could not be deleted");
        }
    }
}

/// Appends a group as one statement, so one round trip and its own transaction: the head moves, the rows go in
/// numbered after it, and the new end is announced to the other nodes at commit when `$6`.
const APPEND_GROUP: &str = "
    WITH head AS (UPDATE journal_head SET last_seq = last_seq + $1 RETURNING last_seq),
         appended AS (
             INSERT INTO journal (seq, body, object, raw_bytes)
             SELECT head.last_seq - $1 + record.n, record.body, record.object, record.raw_bytes
             FROM head, UNNEST($2::BYTEA[], $3::TEXT[], $5::INTEGER[]) WITH ORDINALITY AS record(body, object, raw_bytes, n))
    SELECT last_seq, CASE WHEN $6 THEN pg_notify($4, last_seq::TEXT) END FROM head";

/// Writes a group in one transaction, announced when `announce`; the sequence number of its last record.
async fn commit_group(
    db: &Postgres,
    connection: &mut WriterConnection,
    group: &[Staged],
    announce: bool,
) -> Result<Seq, StoreError> {
    let (bodies, raw_bytes): (Vec<&[u8]>, Vec<Option<i32>>) = group.iter().flat_map(Staged::bodies).unzip();
    let objects: Vec<Option<&str>> = group.iter().flat_map(|s| s.objects.iter().map(Option::as_deref)).collect();
    let count = bodies.len() as i64;
    let (client, append) = connection.get(db).await?;
    let last: i64 =
        client.query_one(append, &[&count, &bodies, &objects, &CHANNEL, &raw_bytes, &announce]).await?.get(0);
    Ok(last as Seq)
}

/// Follows the ends other nodes' commits announce; reads the end itself whenever listening restarts and every
/// [`LOOK_EVERY`], counting the nodes listening as it does (`announce`: whether this node's commits must be).
fn follow(db: &Arc<Postgres>, end: Arc<DurableEnd>, announce: Arc<AtomicBool>) {
    let mut ends = db.notifications(CHANNEL);
    let backend = Arc::downgrade(db);
    db.spawn(async move {
        let mut look = tokio::time::interval_at(tokio::time::Instant::now() + LOOK_EVERY, LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            let announced = tokio::select! {
                announced = ends.recv() => match announced {
                    Some(announced) => announced.and_then(|seq| seq.parse::<Seq>().ok()),
                    None => return,
                },
                _ = look.tick() => None,
            };
            let seq = match announced {
                Some(seq) => seq,
                None => {
                    let Some(db) = backend.upgrade() else { return };
                    match look_around(&db, &announce).await {
                        Ok(seq) => {
                            failing = false;
                            seq
                        }
                        Err(error) => {
                            // Announcing costs little next to a node left waiting for a second each time.
                            announce.store(true, Ordering::Relaxed);
                            if !std::mem::replace(&mut failing, true) {
                                tracing::warn!(%error, "the journal's end could not be read; trying again");
                            }
                            continue;
                        }
                    }
                }
            };
            end.publish(seq);
        }
    });
}

/// Reads the journal's end, and counts the connections listening to it: this node's own and, when there are
/// more, other nodes' — then its commits are announced (`announce`). Briefly wrong while a listener reconnects:
/// the other nodes then find this node's commits by reading the end themselves.
async fn look_around(db: &Postgres, announce: &AtomicBool) -> Result<Seq, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT (SELECT last_seq FROM journal_head),
                    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1)",
            &[&listener_name(CHANNEL)],
        )
        .await?;
    announce.store(row.get::<_, i64>(1) > 1, Ordering::Relaxed);
    Ok(row.get::<_, i64>(0) as Seq)
}

fn read_error(error: StoreError) -> JournalError {
    unavailable_or(error, JournalError::Read)
}

impl Journal for PgJournal {
    fn append(&self, records: Vec<Vec<u8>>) -> AppendFuture {
        let sender = self.sender.clone();
        let large = self.bodies.clone().filter(|_| records.iter().any(|r| r.len() > LARGE_RECORD));
        let db = self.db.clone();
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            let request = AppendRequest { records, done };
            match large {
                // Staged on the database's runtime, which has blocking threads whatever the caller runs on.
                Some(bodies) => db.spawn(stage(bodies, request, sender)),
                None => sender.send(Staged::inline(request)).await.map_err(|_| JournalError::Closed)?,
            }
            wait.await.map_err(|_| JournalError::Closed)?
        })
    }

    fn reader(&self, after: Seq) -> Result<Box<dyn JournalReader>, JournalError> {
        Ok(Box::new(PgReader {
            db: self.db.clone(),
            durable: self.end.watch(),
            after,
            bodies: self.bodies.clone(),
            recent: self.recent.clone(),
        }))
    }

    fn durable(&self) -> watch::Receiver<Seq> {
        self.end.watch()
    }

    fn wait_beyond(&self, seq: Seq, timeout: Duration) -> Seq {
        self.end.wait_beyond(seq, timeout)
    }

    fn sync_count(&self) -> u64 {
        self.end.sync_count()
    }

    /// Records this node has applied through `seq`: deleted once every node that reported a position within
    /// the last hour has applied them too, and every organization's latest index snapshot holds them.
    fn release_through(&self, seq: Seq) -> Result<(), JournalError> {
        self.recent.forget_through(seq);
        let seq = seq as i64;
        let objects = self
            .db
            .run(async {
                let client = self.db.client().await?;
                client
                    .execute(
                        "INSERT INTO journal_positions (node, seq, updated_at) VALUES ($1, $2, now())
                         ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
                        &[&self.node, &seq],
                    )
                    .await?;
                // A record also stays until the snapshot of every organization's index holds it: the node that
                // takes a lease over restores the snapshot and replays the journal after it.
                let gone = client
                    .query(
                        &format!(
                            "WITH gone AS (
                                 DELETE FROM journal WHERE seq <= LEAST(
                                     (SELECT MIN(seq) FROM journal_positions
                                      WHERE updated_at > now() - interval '{POSITION_EXPIRY}'),
                                     (SELECT MIN(COALESCE(l.snapshot_seq, 0)) FROM organizations o
                                      LEFT JOIN index_owners l ON l.organization_id = o.id))
                                 RETURNING object)
                             SELECT object FROM gone WHERE object IS NOT NULL"
                        ),
                        &[],
                    )
                    .await?;
                Ok(gone.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>())
            })
            .map_err(read_error)?;
        // The rows first, then their objects: a row never names an object that is gone.
        if let Some(bodies) = &self.bodies {
            delete_objects(bodies.as_ref(), &objects);
            self.sweep_when_due();
        }
        Ok(())
    }
}

/// The records after `$1` up to `$2`, at most `$3` of them, until `$4` bytes are reached (the last may go past):
/// the sizes are known without reading the bodies (a record held by an object weighs `$5`, [`LARGE_RECORD`]; a
/// compressed one its size before), so bodies beyond the batch are not sent to be thrown away.
const READ_RECORDS: &str = "
    SELECT seq, body, object, raw_bytes FROM (
        SELECT seq, body, object, raw_bytes, weight, (SUM(weight) OVER (ORDER BY seq))::BIGINT AS through
        FROM (SELECT seq, body, object, raw_bytes,
                     CASE WHEN object IS NULL THEN COALESCE(raw_bytes, octet_length(body))::BIGINT
                          ELSE $5::BIGINT END AS weight
              FROM journal WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3) AS next
    ) AS weighed
    WHERE through - weight < $4 OR through = weight
    ORDER BY seq";

/// Reads records in order up to the durable end.
struct PgReader {
    db: Arc<Postgres>,
    durable: watch::Receiver<Seq>,
    after: Seq,
    bodies: Option<Arc<dyn BlobStore>>,
    recent: Arc<Recent>,
}

impl PgReader {
    /// The record `seq` held by `object`.
    fn read_object(&self, seq: i64, object: &str) -> Result<Vec<u8>, JournalError> {
        let Some(bodies) = &self.bodies else {
            return Err(JournalError::Read(format!(
                "journal record {seq} is the object '{object}' in the cluster's blob store, but this node has none: \
                 start it with the cluster's --blobs s3://…"
            )));
        };
        let mut body = Vec::new();
        bodies
            .open(object)
            .and_then(|mut reader| Ok(reader.read_to_end(&mut body)?))
            .map_err(|error| unavailable_or(error, |e| JournalError::Read(format!("journal record {seq}: {e}"))))?;
        Ok(body)
    }
}

impl JournalReader for PgReader {
    fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<(Seq, Vec<u8>)>, JournalError> {
        let end = *self.durable.borrow();
        if end <= self.after {
            return Ok(Vec::new());
        }
        let kept = self.recent.take(self.after, end, max_bytes);
        if let Some((last, _)) = kept.last() {
            self.after = *last;
            return Ok(kept);
        }
        let (after, end) = (self.after as i64, end as i64);
        let rows = self
            .db
            .run(async {
                let client = self.db.client().await?;
                let read = client.prepare_cached(READ_RECORDS).await?;
                Ok::<_, StoreError>(
                    client
                        .query(&read, &[&after, &end, &READ_ROWS, &(max_bytes as i64), &(LARGE_RECORD as i64)])
                        .await?,
                )
            })
            .map_err(read_error)?;
        let mut batch = Vec::new();
        let mut bytes = 0;
        for row in rows {
            let (seq, body, object, raw_bytes): (i64, Vec<u8>, Option<String>, Option<i32>) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            // The query weighed a record held by an object as the threshold; its body may weigh more.
            if !batch.is_empty() && bytes >= max_bytes {
                break;
            }
            let body = match object {
                Some(object) => self.read_object(seq, &object)?,
                None => decompress(seq, body, raw_bytes)?,
            };
            bytes += body.len();
            batch.push((seq as Seq, body));
        }
        if let Some((last, _)) = batch.last() {
            self.after = *last;
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(records: &[&[u8]], objects: &[bool]) -> Staged {
        let (done, _) = oneshot::channel();
        let records = records.iter().map(|r| r.to_vec()).collect();
        let objects = objects.iter().map(|&in_object| in_object.then(|| "an.object".to_string())).collect();
        Staged::new(AppendRequest { records, done }, objects)
    }

    fn seqs(batch: &[(Seq, Vec<u8>)]) -> Vec<Seq> {
        batch.iter().map(|(seq, _)| *seq).collect()
    }

    /// A node's reader takes what the node committed in order, up to the durable end and about `max_bytes` at a
    /// time; a record held by an object, one before the reader's position or one past a gap is not taken.
    #[test]
    fn the_records_a_node_committed_are_taken_in_order_until_a_gap() {
        let recent = Recent::default();
        let mut group = [staged(&[b"one", b"two"], &[false, false]), staged(&[b"", b"four"], &[true, false])];
        recent.keep(1, &mut group);
        assert!(group.iter().all(|staged| staged.request.records.is_empty()), "the records were moved, not copied");
        recent.keep(7, &mut [staged(&[b"seven"], &[false])]);

        assert_eq!(recent.take(0, 1, 1 << 20), [(1, b"one".to_vec())], "not past the durable end");
        assert_eq!(seqs(&recent.take(1, 9, 1)), [2], "the last record taken may go past max_bytes");
        assert!(recent.take(2, 9, 1 << 20).is_empty(), "record 3 is an object: read from PostgreSQL");
        assert_eq!(recent.take(3, 9, 1 << 20), [(4, b"four".to_vec())], "the run stops at the gap before 7");
        assert!(recent.take(5, 9, 1 << 20).is_empty(), "record 6 was another node's");
        assert_eq!(seqs(&recent.take(6, 9, 1 << 20)), [7]);
        assert_eq!(recent.0.lock().unwrap().bytes, 0);
    }

    /// Records go once the reader is past them or the node released them; a group that would take more than
    /// [`RECENT_BYTES`] is not kept (its records stay with the caller, read back from PostgreSQL later).
    #[test]
    fn records_are_kept_within_a_bound_and_forgotten_once_released() {
        let recent = Recent::default();
        recent.keep(1, &mut [staged(&[b"one", b"two", b"three"], &[false; 3])]);
        recent.forget_through(2);
        assert_eq!(seqs(&recent.take(2, 3, 1 << 20)), [3]);
        recent.keep(4, &mut [staged(&[b"four"], &[false])]);
        assert!(recent.take(9, 9, 1 << 20).is_empty());
        assert!(recent.0.lock().unwrap().records.is_empty(), "a reader past them drops them");

        let large = vec![0; RECENT_BYTES / 2 + 1];
        recent.keep(10, &mut [staged(&[&large], &[false])]);
        let mut too_many = [staged(&[&large], &[false])];
        recent.keep(11, &mut too_many);
        assert_eq!(too_many[0].request.records.len(), 1, "over the bound: not kept");
        assert_eq!(seqs(&recent.take(9, 11, 1 << 30)), [10]);

        let many: Vec<&[u8]> = vec![b"small"; READ_ROWS as usize + 1];
        recent.keep(12, &mut [staged(&many, &vec![false; many.len()])]);
        assert_eq!(recent.take(11, 12 + READ_ROWS as Seq, 1 << 30).len(), READ_ROWS as usize, "as many as a read");
    }
}
