//! Stream records in the PostgreSQL catalog.

use tokio_postgres::Row;

use super::PgCatalog;
use crate::{CatalogStream, StoreError, StreamStore};

const STREAMS: &str = "SELECT s.stream_id, s.organization_id, s.source_id, s.opened_at_ms, s.expires_at_ms,
    s.closed_at_ms, COALESCE((SELECT array_agg(c.file_id ORDER BY c.position) FROM stream_chunks c
    WHERE c.stream_id = s.stream_id), ARRAY[]::TEXT[]) FROM streams s";

fn stream_of(row: &Row) -> CatalogStream {
    CatalogStream {
        stream_id: row.get(0),
        organization_id: row.get(1),
        source_id: row.get(2),
        opened_at_ms: row.get(3),
        expires_at_ms: row.get(4),
        closed_at_ms: row.get(5),
        chunks: row.get(6),
    }
}

impl StreamStore for PgCatalog {
    fn create_stream(&self, stream: &CatalogStream) -> Result<(), StoreError> {
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            transaction
                .execute(
                    "INSERT INTO streams (stream_id, organization_id, source_id, opened_at_ms, expires_at_ms, closed_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &stream.stream_id,
                        &stream.organization_id,
                        &stream.source_id,
                        &stream.opened_at_ms,
                        &stream.expires_at_ms,
                        &stream.closed_at_ms,
                    ],
                )
                .await?;
            for (position, file_id) in stream.chunks.iter().enumerate() {
                transaction
                    .execute(
                        "INSERT INTO stream_chunks (stream_id, position, file_id) VALUES ($1, $2, $3)",
                        &[&stream.stream_id, &(position as i32), file_id],
                    )
                    .await?;
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    fn stream(&self, organization_id: &str, stream_id: &str) -> Result<Option<CatalogStream>, StoreError> {
        let row = self.reading(async |client| {
            Ok(client
                .query_opt(
                    &format!("{STREAMS} WHERE s.stream_id = $1 AND s.organization_id = $2"),
                    &[&stream_id, &organization_id],
                )
                .await?)
        })?;
        Ok(row.as_ref().map(stream_of))
    }

    fn add_chunk(&self, stream_id: &str, file_id: &str) -> Result<bool, StoreError> {
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            // The row lock orders concurrent chunks of one stream and keeps a close from slipping in between.
            let open = transaction
                .query_opt("SELECT closed_at_ms IS NULL FROM streams WHERE stream_id = $1 FOR UPDATE", &[&stream_id])
                .await?
                .is_some_and(|row| row.get::<_, bool>(0));
            if !open {
                return Ok(false);
            }
            transaction
                .execute(
                    "INSERT INTO stream_chunks (stream_id, position, file_id)
                     VALUES ($1, (SELECT COUNT(*) FROM stream_chunks WHERE stream_id = $1), $2)",
                    &[&stream_id, &file_id],
                )
                .await?;
            transaction.commit().await?;
            Ok(true)
        })
    }

    fn close_stream(&self, stream_id: &str, closed_at_ms: i64) -> Result<bool, StoreError> {
        self.reading(async |client| {
            let changed = client
                .execute(
                    "UPDATE streams SET closed_at_ms = $2 WHERE stream_id = $1 AND closed_at_ms IS NULL",
                    &[&stream_id, &closed_at_ms],
                )
                .await?;
            Ok(changed > 0)
        })
    }

    fn reopen_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        self.reading(async |client| {
            client.execute("UPDATE streams SET closed_at_ms = NULL WHERE stream_id = $1", &[&stream_id]).await?;
            Ok(())
        })
    }

    fn last_load_ms(&self, organization_id: &str, source_id: &str) -> Result<Option<i64>, StoreError> {
        self.reading(async |client| {
            let row = client
                .query_one(
                    "SELECT MAX(closed_at_ms) FROM streams WHERE organization_id = $1 AND source_id = $2",
                    &[&organization_id, &source_id],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    fn expired_streams(&self, now_ms: i64) -> Result<Vec<CatalogStream>, StoreError> {
        let rows = self.reading(async |client| {
            Ok(client
                .query(&format!("{STREAMS} WHERE s.closed_at_ms IS NULL AND s.expires_at_ms <= $1"), &[&now_ms])
                .await?)
        })?;
        Ok(rows.iter().map(stream_of).collect())
    }

    fn forget_stream(&self, stream_id: &str) -> Result<(), StoreError> {
        self.reading(async |client| {
            client.execute("DELETE FROM streams WHERE stream_id = $1", &[&stream_id]).await?;
            Ok(())
        })
    }
}
