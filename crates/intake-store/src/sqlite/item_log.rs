//! The item log in SQLite (`logs.sqlite`): one row per outcome, keyed by (journal seq, index within the
//! operation), with indexes by time and by document.

use std::path::Path;
use std::sync::Mutex;

use intake_model::logs::{LogOperation, LogResult, LogTask};
use rusqlite::{Connection, params, params_from_iter};

use crate::StoreError;
use crate::item_log::{ActivityCount, ActivityQuery, ItemLog, LogEntry, LogQuery, StoredLogEntry};
use crate::item_log_sql::{self, Dialect, Param};

/// The embedded item log.
pub struct SqliteItemLog {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

/// Step 1 of the item log's schema (see [`crate::migrations`]).
pub(crate) const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS item_log (
    row_id INTEGER PRIMARY KEY,
    organization_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    document_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    result TEXT NOT NULL,
    task TEXT NOT NULL,
    reason TEXT,
    request_id TEXT NOT NULL,
    ordering_id INTEGER NOT NULL,
    journal_seq INTEGER NOT NULL,
    item_index INTEGER NOT NULL,
    datetime_ms INTEGER NOT NULL,
    UNIQUE (journal_seq, item_index)
);
CREATE INDEX IF NOT EXISTS item_log_by_time ON item_log (organization_id, datetime_ms);
CREATE INDEX IF NOT EXISTS item_log_by_document ON item_log (organization_id, document_id);
";

impl SqliteItemLog {
    /// Opens the log. Synchronous NORMAL: a process crash loses nothing; an OS crash may lose the last
    /// entries, which the journal does not replay — the index itself is never affected.
    pub fn open(path: &Path) -> Result<SqliteItemLog, StoreError> {
        let mut writer = Connection::open(path)?;
        // Incremental auto-vacuum lets pruning give space back to the disk (set before the first table; an
        // older log without it is converted once).
        writer.execute_batch("PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
        super::migrations::migrate(&mut writer, super::migrations::ITEM_LOG, "logs.sqlite")?;
        let auto_vacuum: i64 = writer.query_row("PRAGMA auto_vacuum", [], |row| row.get(0))?;
        if auto_vacuum == 0 {
            tracing::info!(log = %path.display(), "converting the item log so that pruning returns space to the disk");
            if let Err(error) = writer.execute_batch("VACUUM") {
                tracing::warn!(%error, "the item log could not be converted; pruning will reuse its space instead");
            }
        }
        let reader = Connection::open(path)?;
        Ok(SqliteItemLog { writer: Mutex::new(writer), reader: Mutex::new(reader) })
    }
}

impl ItemLog for SqliteItemLog {
    /// Writes entries in one transaction. An operation's entries from its first index on replace those an
    /// earlier attempt at it left (drafts: see the module documentation).
    fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut connection = self.writer.lock().expect("item log lock");
        let transaction = connection.transaction()?;
        {
            let mut drop_draft =
                transaction.prepare_cached("DELETE FROM item_log WHERE journal_seq = ?1 AND item_index >= ?2")?;
            let mut previous = None;
            for e in entries {
                if previous != Some(e.journal_seq) {
                    drop_draft.execute(params![e.journal_seq as i64, e.item_index])?;
                    previous = Some(e.journal_seq);
                }
            }
            let mut insert = transaction.prepare_cached(
                "INSERT OR REPLACE INTO item_log (organization_id, source_id, document_id, operation, result, task, reason,
                 request_id, ordering_id, journal_seq, item_index, datetime_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for e in entries {
                insert.execute(params![
                    e.organization_id,
                    e.source_id,
                    e.document_id,
                    e.operation.as_str(),
                    e.result.as_str(),
                    e.task.as_str(),
                    e.reason,
                    e.request_id,
                    e.ordering_id,
                    e.journal_seq as i64,
                    e.item_index,
                    e.datetime_ms
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// One page of entries, newest first, and whether another page follows.
    fn query(&self, query: &LogQuery) -> Result<(Vec<StoredLogEntry>, bool), StoreError> {
        let statement = item_log_sql::query(query, Dialect::Sqlite);
        let connection = self.reader.lock().expect("item log lock");
        let mut prepared = connection.prepare_cached(&statement.sql)?;
        let rows = prepared.query_map(params_from_iter(statement.params.into_iter().map(value)), |row| {
            let text = |i: usize| row.get::<_, String>(i);
            Ok(StoredLogEntry {
                row_id: row.get(0)?,
                entry: LogEntry {
                    organization_id: text(1)?,
                    source_id: text(2)?,
                    document_id: text(3)?,
                    operation: LogOperation::parse(&text(4)?).unwrap_or(LogOperation::Add),
                    result: LogResult::parse(&text(5)?).unwrap_or(LogResult::Error),
                    task: LogTask::parse(&text(6)?).unwrap_or(LogTask::Indexing),
                    reason: row.get(7)?,
                    request_id: text(8)?,
                    ordering_id: row.get(9)?,
                    journal_seq: row.get::<_, i64>(10)? as u64,
                    item_index: row.get(11)?,
                    datetime_ms: row.get(12)?,
                },
            })
        })?;
        Ok(item_log_sql::one_page(rows.collect::<Result<Vec<_>, _>>()?, query))
    }

    fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityCount>, StoreError> {
        let statement = item_log_sql::activity(query, Dialect::Sqlite);
        let connection = self.reader.lock().expect("item log lock");
        let mut prepared = connection.prepare_cached(&statement.sql)?;
        let rows = prepared.query_map(params_from_iter(statement.params.into_iter().map(value)), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
        })?;
        Ok(item_log_sql::counts(rows.collect::<Result<Vec<_>, _>>()?))
    }

    /// Deletes entries older than `before_ms` (Coveo keeps 14 days).
    fn prune_before(&self, before_ms: i64) -> Result<usize, StoreError> {
        let connection = self.writer.lock().expect("item log lock");
        let pruned = connection.execute("DELETE FROM item_log WHERE datetime_ms < ?1", [before_ms])?;
        give_back_space(&connection);
        Ok(pruned)
    }

    /// The bytes the log's entries and indexes take (its pages in use).
    fn size_bytes(&self) -> Result<u64, StoreError> {
        let connection = self.writer.lock().expect("item log lock");
        used_bytes(&connection)
    }

    /// Deletes the oldest entries until the log takes at most `max_bytes`, leaving a tenth of it free so this
    /// does not run at every write; returns how many went.
    fn prune_to_size(&self, max_bytes: u64) -> Result<usize, StoreError> {
        let connection = self.writer.lock().expect("item log lock");
        let mut pruned = 0;
        loop {
            let used = used_bytes(&connection)?;
            if used <= max_bytes {
                break;
            }
            let rows: i64 = connection.query_row("SELECT count(*) FROM item_log", [], |row| row.get(0))?;
            if rows == 0 {
                break;
            }
            let target = max_bytes - max_bytes / 10;
            let doomed = ((rows as f64) * (used - target) as f64 / used as f64).ceil().max(1.0) as i64;
            pruned += connection.execute(
                "DELETE FROM item_log WHERE row_id IN (SELECT row_id FROM item_log ORDER BY row_id LIMIT ?1)",
                [doomed],
            )?;
            give_back_space(&connection);
        }
        Ok(pruned)
    }
}

fn used_bytes(connection: &Connection) -> Result<u64, StoreError> {
    let pragma = |name: &str| connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0));
    let pages = pragma("page_count")? - pragma("freelist_count")?;
    Ok((pages.max(0) * pragma("page_size")?) as u64)
}

/// Returns freed pages to the disk (with incremental auto-vacuum; a no-op otherwise) and trims the WAL. Each
/// step of `incremental_vacuum` frees one page, so every row is read.
fn give_back_space(connection: &Connection) {
    let vacuum = || -> rusqlite::Result<()> {
        let mut statement = connection.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = statement.query([])?;
        while rows.next()?.is_some() {}
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    };
    if let Err(error) = vacuum() {
        tracing::debug!(%error, "the item log's free pages could not be returned to the disk");
    }
}

fn value(param: Param) -> rusqlite::types::Value {
    match param {
        Param::Text(text) => text.into(),
        Param::Int(int) => int.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_log::CommittedThrough;

    fn entry(seq: u64, id: &str, result: LogResult, at: i64) -> LogEntry {
        LogEntry {
            organization_id: "org".into(),
            source_id: "src".into(),
            document_id: id.into(),
            operation: LogOperation::Add,
            result,
            task: LogTask::Indexing,
            reason: None,
            request_id: "r".into(),
            ordering_id: 1,
            journal_seq: seq,
            item_index: 0,
            datetime_ms: at,
        }
    }

    #[test]
    fn pruning_by_size_keeps_the_newest_entries_and_returns_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.sqlite");
        let log = SqliteItemLog::open(&path).unwrap();
        for batch in 0..20u64 {
            let entries: Vec<LogEntry> = (0..500)
                .map(|i| entry(batch * 500 + i + 1, &format!("file://{batch}/{i}"), LogResult::Completed, 10))
                .collect();
            log.append(&entries).unwrap();
        }
        let full = log.size_bytes().unwrap();
        let limit = full / 4;
        let pruned = log.prune_to_size(limit).unwrap();
        assert!(pruned > 5000, "{pruned}");
        assert!(log.size_bytes().unwrap() <= limit);
        let file = std::fs::metadata(&path).unwrap().len();
        assert!(file <= limit + 64 * 1024, "the file kept its pages: {file} > {limit} (was {full})");
        let committed = CommittedThrough { journal_seq: u64::MAX >> 1, ..Default::default() };
        let query =
            LogQuery { organization_id: "org".into(), to_ms: 100, per_page: 1, committed, ..Default::default() };
        let newest = &log.query(&query).unwrap().0[0];
        assert_eq!(newest.entry.journal_seq, 10_000, "the newest entry stays");
    }

    #[test]
    fn activity_counts_committed_outcomes_by_bucket_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteItemLog::open(&dir.path().join("logs.sqlite")).unwrap();
        let entries = [
            entry(1, "a", LogResult::Completed, 1_000),
            entry(2, "b", LogResult::Completed, 1_999),
            entry(3, "c", LogResult::Rejected, 2_000),
            entry(4, "d", LogResult::Completed, 2_500),
            entry(5, "e", LogResult::Completed, 9_000),
        ];
        log.append(&entries).unwrap();
        let committed = CommittedThrough { journal_seq: 3, ..Default::default() };
        let query =
            ActivityQuery { organization_id: "org".into(), from_ms: 1_000, bucket_ms: 1_000, buckets: 3, committed };
        let mut counts = log.activity(&query).unwrap();
        counts.sort_by_key(|c| (c.bucket, c.result.as_str()));
        assert_eq!(
            counts,
            vec![
                ActivityCount { bucket: 0, result: LogResult::Completed, count: 2 },
                ActivityCount { bucket: 1, result: LogResult::Rejected, count: 1 },
            ],
            "entry 4 is not committed, entry 5 is past the window"
        );
    }
}
