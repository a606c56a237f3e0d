//! The item log on PostgreSQL: the table of `logs.sqlite`, with the same queries ([`crate::item_log_sql`]).

use std::sync::Arc;

use intake_model::logs::{LogOperation, LogResult, LogTask};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::Postgres;
use crate::StoreError;
use crate::item_log::{ActivityCount, ActivityQuery, ItemLog, LogEntry, LogQuery, StoredLogEntry};
use crate::item_log_sql::{self, Dialect, Param, Statement};

pub struct PgItemLog {
    db: Arc<Postgres>,
}

impl PgItemLog {
    pub fn open(db: Arc<Postgres>) -> PgItemLog {
        PgItemLog { db }
    }

    fn rows(&self, statement: Statement) -> Result<Vec<Row>, StoreError> {
        let params: Vec<Box<dyn ToSql + Sync + Send>> = statement
            .params
            .into_iter()
            .map(|param| -> Box<dyn ToSql + Sync + Send> {
                match param {
                    Param::Text(text) => Box::new(text),
                    Param::Int(int) => Box::new(int),
                }
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        self.db.run(async { Ok(self.db.client().await?.query(&statement.sql, &params).await?) })
    }

    fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.db.run(async { Ok(self.db.client().await?.execute(sql, params).await?) })
    }
}

impl ItemLog for PgItemLog {
    /// Writes entries in one transaction: the drafts an earlier attempt left are deleted, then every entry is
    /// inserted by one statement (its columns as arrays).
    fn append(&self, entries: &[LogEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let text = |f: fn(&LogEntry) -> &str| entries.iter().map(|e| f(e).to_string()).collect::<Vec<String>>();
        let columns = (
            text(|e| &e.organization_id),
            text(|e| &e.source_id),
            text(|e| &e.document_id),
            text(|e| e.operation.as_str()),
            text(|e| e.result.as_str()),
            text(|e| e.task.as_str()),
            entries.iter().map(|e| e.reason.clone()).collect::<Vec<Option<String>>>(),
            text(|e| &e.request_id),
            entries.iter().map(|e| e.ordering_id).collect::<Vec<i64>>(),
            entries.iter().map(|e| e.journal_seq as i64).collect::<Vec<i64>>(),
            entries.iter().map(|e| i64::from(e.item_index)).collect::<Vec<i64>>(),
            entries.iter().map(|e| e.datetime_ms).collect::<Vec<i64>>(),
        );
        // Per journal record, the first entry's index: what an earlier attempt logged from there on is a draft.
        let (mut draft_seqs, mut draft_starts): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
        for entry in entries {
            if draft_seqs.last() != Some(&(entry.journal_seq as i64)) {
                draft_seqs.push(entry.journal_seq as i64);
                draft_starts.push(i64::from(entry.item_index));
            }
        }
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            // One statement for every record (a commit of single pushes has one record per entry).
            let drop_drafts = transaction
                .prepare_cached(
                    "DELETE FROM item_log AS l USING UNNEST($1::BIGINT[], $2::BIGINT[]) AS d(seq, first)
                     WHERE l.journal_seq = d.seq AND l.item_index >= d.first",
                )
                .await?;
            transaction.execute(&drop_drafts, &[&draft_seqs, &draft_starts]).await?;
            let insert = transaction
                .prepare_cached(
                    "INSERT INTO item_log (organization_id, source_id, document_id, operation, result, task, reason,
                     request_id, ordering_id, journal_seq, item_index, datetime_ms)
                     SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                     $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::BIGINT[])
                     ON CONFLICT (journal_seq, item_index) DO UPDATE SET organization_id = excluded.organization_id,
                     source_id = excluded.source_id, document_id = excluded.document_id,
                     operation = excluded.operation, result = excluded.result, task = excluded.task,
                     reason = excluded.reason, request_id = excluded.request_id,
                     ordering_id = excluded.ordering_id, datetime_ms = excluded.datetime_ms",
                )
                .await?;
            transaction
                .execute(
                    &insert,
                    &[
                        &columns.0,
                        &columns.1,
                        &columns.2,
                        &columns.3,
                        &columns.4,
                        &columns.5,
                        &columns.6,
                        &columns.7,
                        &columns.8,
                        &columns.9,
                        &columns.10,
                        &columns.11,
                    ],
                )
                .await?;
            transaction.commit().await?;
            Ok(())
        })
    }

    fn query(&self, query: &LogQuery) -> Result<(Vec<StoredLogEntry>, bool), StoreError> {
        let rows = self.rows(item_log_sql::query(query, Dialect::Postgres))?;
        Ok(item_log_sql::one_page(rows.iter().map(entry_of).collect(), query))
    }

    fn activity(&self, query: &ActivityQuery) -> Result<Vec<ActivityCount>, StoreError> {
        let rows = self.rows(item_log_sql::activity(query, Dialect::Postgres))?;
        Ok(item_log_sql::counts(rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect()))
    }

    fn prune_before(&self, before_ms: i64) -> Result<usize, StoreError> {
        Ok(self.execute("DELETE FROM item_log WHERE datetime_ms < $1", &[&before_ms])? as usize)
    }

    /// The table's size with its indexes, less the share its dead rows take (PostgreSQL reuses their space,
    /// returning it to the disk only on a full vacuum).
    fn size_bytes(&self) -> Result<u64, StoreError> {
        let rows = self.rows(Statement::plain(
            "SELECT pg_total_relation_size('item_log')::FLOAT8 * COALESCE(n_live_tup::FLOAT8
             / NULLIF(n_live_tup + n_dead_tup, 0), 1) FROM pg_stat_user_tables WHERE relname = 'item_log'",
        ))?;
        Ok(rows.first().map_or(0.0, |row| row.get::<_, f64>(0)).max(0.0) as u64)
    }

    /// Deletes the oldest entries in the share the log is over `max_bytes` (and a tenth of it more, so this does
    /// not run at every write); how many went.
    fn prune_to_size(&self, max_bytes: u64) -> Result<usize, StoreError> {
        let used = self.size_bytes()?;
        if used <= max_bytes {
            return Ok(0);
        }
        let rows: i64 = self.rows(Statement::plain("SELECT count(*) FROM item_log"))?[0].get(0);
        let target = max_bytes - max_bytes / 10;
        let doomed = ((rows as f64) * (used - target) as f64 / used as f64).ceil().max(1.0) as i64;
        let pruned = self.execute(
            "DELETE FROM item_log WHERE row_id IN (SELECT row_id FROM item_log ORDER BY row_id LIMIT $1)",
            &[&doomed],
        )?;
        Ok(pruned as usize)
    }
}

fn entry_of(row: &Row) -> StoredLogEntry {
    StoredLogEntry {
        row_id: row.get(0),
        entry: LogEntry {
            organization_id: row.get(1),
            source_id: row.get(2),
            document_id: row.get(3),
            operation: LogOperation::parse(row.get(4)).unwrap_or(LogOperation::Add),
            result: LogResult::parse(row.get(5)).unwrap_or(LogResult::Error),
            task: LogTask::parse(row.get(6)).unwrap_or(LogTask::Indexing),
            reason: row.get(7),
            request_id: row.get(8),
            ordering_id: row.get(9),
            journal_seq: row.get::<_, i64>(10) as u64,
            item_index: row.get::<_, i64>(11) as u32,
            datetime_ms: row.get(12),
        },
    }
}
