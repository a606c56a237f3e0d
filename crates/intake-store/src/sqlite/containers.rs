//! File containers: a row in the catalog for each (owner, expiry, upload state) and the bytes in a folder.
//!
//! An upload is written to a temporary file, synced, then renamed over the container's file, so a second
//! upload replaces the first whole and a crash never leaves half a container. A container handed to a batch or
//! an item is `pinned`: expiry leaves it alone until the applier has committed its content and deletes it.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use crate::{Catalog, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContainer {
    pub file_id: String,
    pub organization_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Bytes uploaded; `None` until the first upload.
    pub size: Option<u64>,
    /// Handed to a batch or an item: kept until applied, whatever its expiry.
    pub pinned: bool,
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS file_containers (
    file_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    size INTEGER,
    pinned INTEGER NOT NULL DEFAULT 0
);
";

impl Catalog {
    pub fn create_container(&self, container: &FileContainer) -> Result<(), StoreError> {
        self.connection().execute(
            "INSERT INTO file_containers (file_id, organization_id, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![container.file_id, container.organization_id, container.created_at_ms, container.expires_at_ms],
        )?;
        Ok(())
    }

    pub fn container(&self, file_id: &str) -> Result<Option<FileContainer>, StoreError> {
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

    pub fn set_container_size(&self, file_id: &str, size: u64) -> Result<(), StoreError> {
        self.connection()
            .execute("UPDATE file_containers SET size = ?1 WHERE file_id = ?2", params![size as i64, file_id])?;
        Ok(())
    }

    /// Pins a container for a batch or an item; false when it was already pinned.
    pub fn pin_container(&self, file_id: &str) -> Result<bool, StoreError> {
        let changed = self
            .connection()
            .execute("UPDATE file_containers SET pinned = 1 WHERE file_id = ?1 AND pinned = 0", [file_id])?;
        Ok(changed > 0)
    }

    /// Lets a container expire again: its batch or item was not accepted after all.
    pub fn unpin_container(&self, file_id: &str) -> Result<(), StoreError> {
        self.connection().execute("UPDATE file_containers SET pinned = 0 WHERE file_id = ?1", [file_id])?;
        Ok(())
    }

    /// Every pinned container: at startup, those a replay of the journal does not consume were left behind
    /// by a crash (after their content was committed, or before their operation was journaled).
    pub fn pinned_containers(&self) -> Result<Vec<String>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT file_id FROM file_containers WHERE pinned = 1")?;
        let ids = statement.query_map([], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    pub fn forget_container(&self, file_id: &str) -> Result<(), StoreError> {
        self.connection().execute("DELETE FROM file_containers WHERE file_id = ?1", [file_id])?;
        Ok(())
    }

    /// Unpinned containers past their expiry.
    pub fn expired_containers(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let connection = self.connection();
        let mut statement =
            connection.prepare("SELECT file_id FROM file_containers WHERE expires_at_ms <= ?1 AND pinned = 0")?;
        let ids = statement.query_map([now_ms], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }
}

/// The folder holding container bytes, one file per container.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    dir: PathBuf,
}

impl LocalBlobs {
    pub fn open(dir: &Path) -> io::Result<LocalBlobs> {
        fs::create_dir_all(dir)?;
        // Leftovers of uploads a crash interrupted.
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "part") {
                let _ = fs::remove_file(path);
            }
        }
        Ok(LocalBlobs { dir: dir.to_path_buf() })
    }

    fn path(&self, file_id: &str) -> PathBuf {
        self.dir.join(file_id)
    }

    /// A fresh temporary file for an upload of `file_id`.
    pub fn temporary(&self, file_id: &str) -> PathBuf {
        self.dir.join(format!("{file_id}.{}.part", uuid_like()))
    }

    /// Makes a finished, synced temporary file the container's content, atomically.
    pub fn publish(&self, temporary: &Path, file_id: &str) -> io::Result<()> {
        fs::rename(temporary, self.path(file_id))?;
        File::open(&self.dir)?.sync_all()
    }

    pub fn open_blob(&self, file_id: &str) -> io::Result<File> {
        File::open(self.path(file_id))
    }

    pub fn delete(&self, file_id: &str) -> io::Result<()> {
        match fs::remove_file(self.path(file_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Bytes held by every container (for the disk-use checks).
    pub fn total_bytes(&self) -> io::Result<u64> {
        let mut total = 0;
        for entry in fs::read_dir(&self.dir)? {
            total += entry?.metadata()?.len();
        }
        Ok(total)
    }
}

fn uuid_like() -> String {
    crate::catalog::random_id(12)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn containers_are_pinned_once_and_expire_unless_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
        for (id, expires) in [("a", 10), ("b", 10), ("c", 100)] {
            let container = FileContainer {
                file_id: id.into(),
                organization_id: "o".into(),
                created_at_ms: 0,
                expires_at_ms: expires,
                size: None,
                pinned: false,
            };
            catalog.create_container(&container).unwrap();
        }
        catalog.set_container_size("a", 5).unwrap();
        assert!(catalog.pin_container("b").unwrap());
        assert!(!catalog.pin_container("b").unwrap(), "pinned once");
        assert_eq!(catalog.expired_containers(50).unwrap(), ["a"]);
        assert_eq!(catalog.container("a").unwrap().unwrap().size, Some(5));
        catalog.forget_container("a").unwrap();
        assert!(catalog.container("a").unwrap().is_none());
    }

    #[test]
    fn an_upload_replaces_the_content_whole() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        for content in [&b"first upload"[..], b"second"] {
            let temporary = blobs.temporary("f1");
            let mut file = File::create(&temporary).unwrap();
            file.write_all(content).unwrap();
            file.sync_all().unwrap();
            blobs.publish(&temporary, "f1").unwrap();
        }
        let mut text = String::new();
        blobs.open_blob("f1").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "second");
        std::fs::write(dir.path().join("f2.x.part"), b"interrupted").unwrap();
        let blobs = LocalBlobs::open(dir.path()).unwrap();
        assert_eq!(blobs.total_bytes().unwrap(), 6, "interrupted uploads are cleaned up at open");
        blobs.delete("f1").unwrap();
        blobs.delete("f1").unwrap();
    }
}
