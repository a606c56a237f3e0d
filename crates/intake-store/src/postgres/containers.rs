//! File container records in the PostgreSQL catalog.

use super::PgCatalog;
use crate::{ContainerStore, FileContainer, StoreError};

impl ContainerStore for PgCatalog {
    fn create_container(&self, container: &FileContainer) -> Result<(), StoreError> {
        self.reading(async |client| {
            client
                .execute(
                    "INSERT INTO file_containers (file_id, organization_id, created_at_ms, expires_at_ms)
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &container.file_id,
                        &container.organization_id,
                        &container.created_at_ms,
                        &container.expires_at_ms,
                    ],
                )
                .await?;
            Ok(())
        })
    }

    fn container(&self, file_id: &str) -> Result<Option<FileContainer>, StoreError> {
        let row = self.reading(async |client| {
            Ok(client
                .query_opt(
                    "SELECT file_id, organization_id, created_at_ms, expires_at_ms, size, pinned FROM file_containers
                     WHERE file_id = $1",
                    &[&file_id],
                )
                .await?)
        })?;
        Ok(row.map(|row| FileContainer {
            file_id: row.get(0),
            organization_id: row.get(1),
            created_at_ms: row.get(2),
            expires_at_ms: row.get(3),
            size: row.get::<_, Option<i64>>(4).map(|s| s as u64),
            pinned: row.get(5),
        }))
    }

    fn set_container_size(&self, file_id: &str, size: u64) -> Result<(), StoreError> {
        let size = size as i64;
        self.reading(async |client| {
            client.execute("UPDATE file_containers SET size = $1 WHERE file_id = $2", &[&size, &file_id]).await?;
            Ok(())
        })
    }

    fn pin_container(&self, file_id: &str) -> Result<bool, StoreError> {
        self.reading(async |client| {
            let changed = client
                .execute("UPDATE file_containers SET pinned = TRUE WHERE file_id = $1 AND NOT pinned", &[&file_id])
                .await?;
            Ok(changed > 0)
        })
    }

    fn unpin_container(&self, file_id: &str) -> Result<(), StoreError> {
        self.reading(async |client| {
            client.execute("UPDATE file_containers SET pinned = FALSE WHERE file_id = $1", &[&file_id]).await?;
            Ok(())
        })
    }

    fn pinned_containers(&self) -> Result<Vec<String>, StoreError> {
        self.file_ids("SELECT file_id FROM file_containers WHERE pinned", &[])
    }

    fn forget_container(&self, file_id: &str) -> Result<(), StoreError> {
        self.reading(async |client| {
            client.execute("DELETE FROM file_containers WHERE file_id = $1", &[&file_id]).await?;
            Ok(())
        })
    }

    fn expired_containers(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.file_ids("SELECT file_id FROM file_containers WHERE expires_at_ms <= $1 AND NOT pinned", &[&now_ms])
    }
}

impl PgCatalog {
    fn file_ids(
        &self,
        query: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<String>, StoreError> {
        let rows = self.reading(async |client| Ok(client.query(query, params).await?))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}
