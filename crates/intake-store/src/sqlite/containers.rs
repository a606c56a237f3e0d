//! File container records in the SQLite catalog.

use rusqlite::{OptionalExtension, params};

use super::SqliteCatalog;
use crate::{ContainerStore, FileContainer, StoreError};

/// Step 2 of the catalog's schema: file containers.
pub(crate) const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS file_containers (
    file_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    size INTEGER,
    pinned INTEGER NOT NULL DEFAULT 0
);
";

impl ContainerStore for SqliteCatalog {
    fn create_container(&self, container: &FileContainer) -> Result<(), StoreError> {
        self.connection().execute(
            "INSERT INTO file_containers (file_id, organization_id, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![container.file_id, container.organization_id, container.created_at_ms, container.expires_at_ms],
        )?;
        Ok(())
    }

    fn container(&self, file_id: &str) -> Result<Option<FileContainer>, StoreError> {
        let connection = self.connection();
        Ok(connection
            .query_row(
                "SELECT file_id, organization_id, created_at_ms, expires_at_ms, size, pinned FROM file_containers WHERE file_id = ?1",
                [file_id],
                |row| {
                    Ok(FileContainer {
                        file_id: row.get(0)?,
                        organization_id: row.get(1)?,
                        created_at_ms: row.get(2)?,
                        expires_at_ms: row.get(3)?,
                        size: row.get::<_, Option<i64>>(4)?.map(|s| s as u64),
                        pinned: row.get::<_, i64>(5)? != 0,
                    })
                },
            )
            .optional()?)
    }

    fn set_container_size(&self, file_id: &str, size: u64) -> Result<(), StoreError> {
        self.connection()
            .execute("UPDATE file_containers SET size = ?1 WHERE file_id = ?2", params![size as i64, file_id])?;
        Ok(())
    }

    /// Pins a container for a batch or an item; false when it was already pinned.
    fn pin_container(&self, file_id: &str) -> Result<bool, StoreError> {
        let changed = self
            .connection()
            .execute("UPDATE file_containers SET pinned = 1 WHERE file_id = ?1 AND pinned = 0", [file_id])?;
        Ok(changed > 0)
    }

    /// Lets a container expire again: its batch or item was not accepted after all.
    fn unpin_container(&self, file_id: &str) -> Result<(), StoreError> {
        self.connection().execute("UPDATE file_containers SET pinned = 0 WHERE file_id = ?1", [file_id])?;
        Ok(())
    }

    /// Every pinned container: at startup, those a replay of the journal does not consume were left behind
    /// by a crash (after their content was committed, or before their operation was journaled).
    fn pinned_containers(&self) -> Result<Vec<String>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT file_id FROM file_containers WHERE pinned = 1")?;
        let ids = statement.query_map([], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    fn forget_container(&self, file_id: &str) -> Result<(), StoreError> {
        self.connection().execute("DELETE FROM file_containers WHERE file_id = ?1", [file_id])?;
        Ok(())
    }

    /// Unpinned containers past their expiry.
    fn expired_containers(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let connection = self.connection();
        let mut statement =
            connection.prepare("SELECT file_id FROM file_containers WHERE expires_at_ms <= ?1 AND pinned = 0")?;
        let ids = statement.query_map([now_ms], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }
}
