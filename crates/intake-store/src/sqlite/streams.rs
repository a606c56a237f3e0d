//! Stream records in the SQLite catalog.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteCatalog;
use crate::{CatalogStream, StoreError, StreamStore};

/// Step 5 of the catalog's schema: streams of catalog sources and their chunks.
pub(crate) const SCHEMA_V5: &str = "
CREATE TABLE streams (
    stream_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER
);
CREATE INDEX streams_by_source ON streams (organization_id, source_id);
CREATE TABLE stream_chunks (
    stream_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    file_id TEXT NOT NULL,
    PRIMARY KEY (stream_id, position)
);
";

const COLUMNS: &str = "stream_id, organization_id, source_id, opened_at_ms, expires_at_ms, closed_at_ms";

fn read_stream(connection: &Connection, row: &rusqlite::Row) -> rusqlite::Result<CatalogStream> {
    let stream_id: String = row.get(0)?;
    let mut chunks =
        connection.prepare_cached("SELECT file_id FROM stream_chunks WHERE stream_id = ?1 ORDER BY position")?;
    let chunks = chunks.query_map([&stream_id], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(CatalogStream {
        stream_id,
        organization_id: row.get(1)?,
        source_id: row.get(2)?,
        opened_at_ms: row.get(3)?,
        expires_at_ms: row.get(4)?,
        closed_at_ms: row.get(5)?,
        chunks,
    })
}

impl StreamStore for SqliteCatalog {
    fn create_stream(&self, stream: &CatalogStream) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        transaction.execute(
            &format!("INSERT INTO streams ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                stream.stream_id,
                stream.organization_id,
                stream.source_id,
                stream.opened_at_ms,
                stream.expires_at_ms,
                stream.closed_at_ms
            ],
        )?;
        for (position, file_id) in stream.chunks.iter().enumerate() {
            transaction.execute(
                "INSERT INTO stream_chunks (stream_id, position, file_id) VALUES (?1, ?2, ?3)",
                params![stream.stream_id, position as i64, file_id],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn stream(&self, organization_id: &str, stream_id: &str) -> Result<Option<CatalogStream>, StoreError> {
        let connection = self.connection();
        Ok(connection
            .query_row(
                &format!("SELECT {COLUMNS} FROM streams WHERE stream_id = ?1 AND organization_id = ?2"),
                [stream_id, organization_id],
                |row| read_stream(&connection, row),
            )
            .optional()?)
    }

    fn add_chunk(&self, stream_id: &str, file_id: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let open: bool = transaction
            .query_row("SELECT closed_at_ms IS NULL FROM streams WHERE stream_id = ?1", [stream_id], |row| row.get(0))
            .optional()?
            .unwrap_or(false);
        if !open {
            return Ok(false);
        }
        transaction.execute(
            "INSERT INTO stream_chunks (stream_id, position, file_id)
             VALUES (?1, (SELECT COUNT(*) FROM stream_chunks WHERE stream_id = ?1), ?2)",
            params![stream_id, file_id],
        )?;
        transaction.commit()?;
        Ok(true)
    }

    fn close_stream(&self, stream_id: &str, closed_at_ms: i64) -> Result<bool, StoreError> {
        let changed = self.connection().execute(
            "UPDATE streams SET closed_at_ms = ?2 WHERE stream_id = ?1 AND closed_at_ms IS NULL",
            params![stream_id, closed_at_ms],
        )?;
        Ok(changed > 0)
    }

    fn reopen_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        self.connection().execute("UPDATE streams SET closed_at_ms = NULL WHERE stream_id = ?1", [stream_id])?;
        Ok(())
    }

    fn last_load_ms(&self, organization_id: &str, source_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.connection().query_row(
            "SELECT MAX(closed_at_ms) FROM streams WHERE organization_id = ?1 AND source_id = ?2",
            [organization_id, source_id],
            |row| row.get(0),
        )?)
    }

    fn expired_streams(&self, now_ms: i64) -> Result<Vec<CatalogStream>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(&format!("SELECT {COLUMNS} FROM streams WHERE closed_at_ms IS NULL AND expires_at_ms <= ?1"))?;
        let streams = statement.query_map([now_ms], |row| read_stream(&connection, row))?.collect::<Result<_, _>>()?;
        Ok(streams)
    }

    fn forget_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        transaction.execute("DELETE FROM stream_chunks WHERE stream_id = ?1", [stream_id])?;
        transaction.execute("DELETE FROM streams WHERE stream_id = ?1", [stream_id])?;
        transaction.commit()?;
        Ok(())
    }
}
