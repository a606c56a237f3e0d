//! The journal on PostgreSQL, shared by the nodes of a cluster: one row per record.
//!
//! Appends are grouped as on the embedded journal: the appends waiting when a transaction starts share it, so
//! concurrent clients cost one commit, not one each. A transaction first takes the next sequence numbers from
//! `journal_head`, whose row lock it holds until it commits: groups of different nodes commit one after the
//! other, in the order of their numbers, so every record up to a number known durable is there to read. Each
//! commit notifies `intake_journal` with the new end, so readers on every node follow it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Postgres;
use crate::StoreError;
use crate::journal::{
    AppendFuture, AppendRequest, DurableEnd, Journal, JournalError, JournalReader, Seq, gather, refuse,
};

const CHANNEL: &str = "intake_journal";
/// At most this many bytes go into one transaction.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// At most this many records come back from one read.
const READ_ROWS: i64 = 1024;
/// A node that has not reported its position for this long no longer holds back the deletion of records.
const POSITION_EXPIRY: &str = "1 hour";

pub struct PgJournal {
    db: Arc<Postgres>,
    sender: mpsc::Sender<AppendRequest>,
    end: Arc<DurableEnd>,
    /// This node's name among the positions.
    node: String,
}

impl PgJournal {
    /// The journal in `db`; `node` names this node's applied position.
    pub fn open(db: Arc<Postgres>, node: &str) -> Result<PgJournal, StoreError> {
        let last: i64 = db.run(async {
            let client = db.client().await?;
            Ok::<_, StoreError>(client.query_one("SELECT last_seq FROM journal_head", &[]).await?.get(0))
        })?;
        let end = DurableEnd::new(last as Seq);
        let (sender, receiver) = mpsc::channel(4096);
        db.spawn(write(Arc::downgrade(&db), receiver, end.clone()));
        follow(&db, end.clone());
        Ok(PgJournal { db, sender, end, node: node.to_string() })
    }
}

/// The writer: one transaction per group of appends.
async fn write(db: std::sync::Weak<Postgres>, mut receiver: mpsc::Receiver<AppendRequest>, end: Arc<DurableEnd>) {
    while let Some(first) = receiver.recv().await {
        let group = gather(first, &mut receiver, MAX_GROUP_BYTES);
        let Some(db) = db.upgrade() else {
            refuse(group, &JournalError::Closed);
            return;
        };
        match commit_group(&db, &group).await {
            Ok(last) => {
                end.synced(last);
                let mut seq = last - group.iter().map(|r| r.records.len() as Seq).sum::<Seq>();
                for request in group {
                    seq += request.records.len() as Seq;
                    let _ = request.done.send(Ok(seq));
                }
            }
            Err(error) => {
                tracing::error!(%error, "the journal could not append to PostgreSQL");
                let error = if error.is_unavailable() {
                    JournalError::Unavailable(error.to_string())
                } else {
                    JournalError::Write(error.to_string())
                };
                refuse(group, &error);
            }
        }
    }
}

/// Writes a group in one transaction; the sequence number of its last record.
async fn commit_group(db: &Postgres, group: &[AppendRequest]) -> Result<Seq, StoreError> {
    let records: Vec<&[u8]> = group.iter().flat_map(|r| r.records.iter().map(Vec::as_slice)).collect();
    let count = records.len() as i64;
    let mut client = db.client().await?;
    let transaction = client.transaction().await?;
    let last: i64 = transaction
        .query_one("UPDATE journal_head SET last_seq = last_seq + $1 RETURNING last_seq", &[&count])
        .await?
        .get(0);
    let seqs: Vec<i64> = (last - count + 1..=last).collect();
    transaction
        .execute("INSERT INTO journal (seq, body) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])", &[&seqs, &records])
        .await?;
    transaction.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &last.to_string()]).await?;
    transaction.commit().await?;
    Ok(last as Seq)
}

/// Follows the ends other nodes' commits announce (and reads the end again whenever listening restarts).
fn follow(db: &Arc<Postgres>, end: Arc<DurableEnd>) {
    let mut ends = db.notifications(CHANNEL);
    let backend = Arc::downgrade(db);
    db.spawn(async move {
        while let Some(announced) = ends.recv().await {
            let seq = match announced.and_then(|seq| seq.parse::<Seq>().ok()) {
                Some(seq) => seq,
                None => {
                    let Some(db) = backend.upgrade() else { return };
                    match read_end(&db).await {
                        Ok(seq) => seq,
                        Err(error) => {
                            tracing::warn!(%error, "the journal's end could not be read");
                            continue;
                        }
                    }
                }
            };
            end.publish(seq);
        }
    });
}

async fn read_end(db: &Postgres) -> Result<Seq, StoreError> {
    let client = db.client().await?;
    Ok(client.query_one("SELECT last_seq FROM journal_head", &[]).await?.get::<_, i64>(0) as Seq)
}

fn read_error(error: StoreError) -> JournalError {
    if error.is_unavailable() {
        JournalError::Unavailable(error.to_string())
    } else {
        JournalError::Read(error.to_string())
    }
}

impl Journal for PgJournal {
    fn append(&self, records: Vec<Vec<u8>>) -> AppendFuture {
        AppendRequest::send(self.sender.clone(), records)
    }

    fn reader(&self, after: Seq) -> Result<Box<dyn JournalReader>, JournalError> {
        Ok(Box::new(PgReader { db: self.db.clone(), durable: self.end.watch(), after }))
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
        let seq = seq as i64;
        self.db
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
                client
                    .execute(
                        &format!(
                            "DELETE FROM journal WHERE seq <= LEAST(
                                 (SELECT MIN(seq) FROM journal_positions
                                  WHERE updated_at > now() - interval '{POSITION_EXPIRY}'),
                                 (SELECT MIN(COALESCE(l.snapshot_seq, 0)) FROM organizations o
                                  LEFT JOIN index_owners l ON l.organization_id = o.id))"
                        ),
                        &[],
                    )
                    .await?;
                Ok(())
            })
            .map_err(read_error)
    }
}

/// Reads records in order up to the durable end.
struct PgReader {
    db: Arc<Postgres>,
    durable: watch::Receiver<Seq>,
    after: Seq,
}

impl JournalReader for PgReader {
    fn next_batch(&mut self, max_bytes: usize) -> Result<Vec<(Seq, Vec<u8>)>, JournalError> {
        let end = *self.durable.borrow();
        if end <= self.after {
            return Ok(Vec::new());
        }
        let (after, end) = (self.after as i64, end as i64);
        let rows = self
            .db
            .run(async {
                let client = self.db.client().await?;
                Ok::<_, StoreError>(
                    client
                        .query(
                            "SELECT seq, body FROM journal WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                            &[&after, &end, &READ_ROWS],
                        )
                        .await?,
                )
            })
            .map_err(read_error)?;
        let mut batch = Vec::new();
        let mut bytes = 0;
        for row in rows {
            let (seq, body): (i64, Vec<u8>) = (row.get(0), row.get(1));
            if !batch.is_empty() && bytes + body.len() > max_bytes {
                break;
            }
            bytes += body.len();
            batch.push((seq as Seq, body));
        }
        if let Some((last, _)) = batch.last() {
            self.after = *last;
        }
        Ok(batch)
    }
}
