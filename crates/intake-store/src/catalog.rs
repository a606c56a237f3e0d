//! The catalog: organizations, sources and server settings, in SQLite (WAL, synchronous FULL).
//!
//! Reads on the request path come from an in-memory copy that every write updates; this process is the
//! only writer, so the copy is always current.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use intake_model::SourceStatus;
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub display_name: String,
    pub created_at_ms: i64,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    /// `PUSH` or `CATALOG`.
    pub source_type: String,
    /// `PRIVATE`, `SECURED` or `SHARED`.
    pub visibility: String,
    pub status: Option<SourceStatus>,
    pub status_updated_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

#[derive(Default)]
struct Snapshot {
    organizations: HashMap<String, Organization>,
    /// Keyed by (organization id, source id).
    sources: HashMap<(String, String), Source>,
}

pub struct Catalog {
    connection: Mutex<Connection>,
    snapshot: RwLock<Snapshot>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    source_type TEXT NOT NULL,
    visibility TEXT NOT NULL,
    status TEXT,
    status_updated_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (organization_id, name)
);
";

impl Catalog {
    pub fn open(path: &Path) -> Result<Catalog, StoreError> {
        let connection = Connection::open(path)?;
        connection.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        )?;
        connection.execute_batch(SCHEMA)?;
        let snapshot = load_snapshot(&connection)?;
        Ok(Catalog {
            connection: Mutex::new(connection),
            snapshot: RwLock::new(snapshot),
        })
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        Ok(connection
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn create_organization(
        &self,
        id: &str,
        display_name: &str,
        now_ms: i64,
    ) -> Result<Organization, StoreError> {
        let organization = Organization {
            id: id.to_string(),
            display_name: display_name.to_string(),
            created_at_ms: now_ms,
            paused: false,
        };
        let connection = self.connection.lock().expect("catalog lock");
        connection
            .execute(
                "INSERT INTO organizations (id, display_name, created_at_ms) VALUES (?1, ?2, ?3)",
                params![organization.id, organization.display_name, now_ms],
            )
            .map_err(|e| {
                StoreError::conflict_or(e, format!("organization '{id}' already exists"))
            })?;
        self.snapshot
            .write()
            .expect("snapshot lock")
            .organizations
            .insert(id.to_string(), organization.clone());
        Ok(organization)
    }

    pub fn organization(&self, id: &str) -> Option<Organization> {
        self.snapshot
            .read()
            .expect("snapshot lock")
            .organizations
            .get(id)
            .cloned()
    }

    pub fn organizations(&self) -> Vec<Organization> {
        let mut all: Vec<_> = self
            .snapshot
            .read()
            .expect("snapshot lock")
            .organizations
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Creates a source with a Coveo-style id: `<organization>-<26 random lower-case letters and digits>`.
    pub fn create_source(
        &self,
        organization_id: &str,
        name: &str,
        source_type: &str,
        visibility: &str,
        now_ms: i64,
    ) -> Result<Source, StoreError> {
        let source = Source {
            id: format!("{organization_id}-{}", random_id(26)),
            organization_id: organization_id.to_string(),
            name: name.to_string(),
            source_type: source_type.to_string(),
            visibility: visibility.to_string(),
            status: None,
            status_updated_at_ms: None,
            created_at_ms: now_ms,
        };
        let connection = self.connection.lock().expect("catalog lock");
        connection
            .execute(
                "INSERT INTO sources (id, organization_id, name, source_type, visibility, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![source.id, source.organization_id, source.name, source.source_type, source.visibility, now_ms],
            )
            .map_err(|e| StoreError::conflict_or(e, format!("a source named '{name}' already exists in organization '{organization_id}'")))?;
        self.snapshot
            .write()
            .expect("snapshot lock")
            .sources
            .insert(
                (organization_id.to_string(), source.id.clone()),
                source.clone(),
            );
        Ok(source)
    }

    pub fn source(&self, organization_id: &str, source_id: &str) -> Option<Source> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        snapshot
            .sources
            .get(&(organization_id.to_string(), source_id.to_string()))
            .cloned()
    }

    pub fn sources(&self, organization_id: &str) -> Vec<Source> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        let mut all: Vec<_> = snapshot
            .sources
            .values()
            .filter(|s| s.organization_id == organization_id)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn set_source_status(
        &self,
        organization_id: &str,
        source_id: &str,
        status: SourceStatus,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        connection.execute(
            "UPDATE sources SET status = ?1, status_updated_at_ms = ?2 WHERE id = ?3 AND organization_id = ?4",
            params![status.as_str(), now_ms, source_id, organization_id],
        )?;
        let mut snapshot = self.snapshot.write().expect("snapshot lock");
        if let Some(source) = snapshot
            .sources
            .get_mut(&(organization_id.to_string(), source_id.to_string()))
        {
            source.status = Some(status);
            source.status_updated_at_ms = Some(now_ms);
        }
        Ok(())
    }
}

fn load_snapshot(connection: &Connection) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot::default();
    let mut statement =
        connection.prepare("SELECT id, display_name, created_at_ms, paused FROM organizations")?;
    let organizations = statement.query_map([], |row| {
        Ok(Organization {
            id: row.get(0)?,
            display_name: row.get(1)?,
            created_at_ms: row.get(2)?,
            paused: row.get::<_, i64>(3)? != 0,
        })
    })?;
    for organization in organizations {
        let organization = organization?;
        snapshot
            .organizations
            .insert(organization.id.clone(), organization);
    }
    let mut statement = connection.prepare(
        "SELECT id, organization_id, name, source_type, visibility, status, status_updated_at_ms, created_at_ms FROM sources",
    )?;
    let sources = statement.query_map([], |row| {
        Ok(Source {
            id: row.get(0)?,
            organization_id: row.get(1)?,
            name: row.get(2)?,
            source_type: row.get(3)?,
            visibility: row.get(4)?,
            status: row
                .get::<_, Option<String>>(5)?
                .as_deref()
                .and_then(SourceStatus::parse),
            status_updated_at_ms: row.get(6)?,
            created_at_ms: row.get(7)?,
        })
    })?;
    for source in sources {
        let source = source?;
        snapshot
            .sources
            .insert((source.organization_id.clone(), source.id.clone()), source);
    }
    Ok(snapshot)
}

/// Lower-case letters and digits, as Coveo's ids look.
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organizations_and_sources_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let source_id = {
            let catalog = Catalog::open(&path).unwrap();
            catalog
                .create_organization("default", "Default", 1)
                .unwrap();
            let source = catalog
                .create_source("default", "main", "PUSH", "SHARED", 2)
                .unwrap();
            assert!(source.id.starts_with("default-") && source.id.len() == "default-".len() + 26);
            catalog
                .set_source_status("default", &source.id, SourceStatus::Rebuild, 3)
                .unwrap();
            assert!(matches!(
                catalog.create_source("default", "main", "PUSH", "SHARED", 4),
                Err(StoreError::Conflict(_))
            ));
            catalog.set_setting("k", "v").unwrap();
            source.id
        };
        let catalog = Catalog::open(&path).unwrap();
        assert_eq!(catalog.organizations().len(), 1);
        let source = catalog.source("default", &source_id).unwrap();
        assert_eq!(source.status, Some(SourceStatus::Rebuild));
        assert!(catalog.source("other", &source_id).is_none());
        assert_eq!(catalog.setting("k").unwrap().as_deref(), Some("v"));
    }
}
