//! The SQLite identity store (`identities.sqlite`, WAL, synchronous FULL): one row per identity, its links as
//! JSON. Its own file, so the applier's large identity writes never hold the catalog's lock.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use crate::StoreError;
use crate::security::{IdentityStore, StoredIdentity};

/// Step 1 of the identity store's schema.
pub(crate) const SCHEMA_V1: &str = "
CREATE TABLE identities (
    organization_id TEXT NOT NULL,
    provider_id TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (organization_id, provider_id, name, kind)
);
";

pub struct SqliteIdentities {
    connection: Mutex<Connection>,
}

impl SqliteIdentities {
    pub fn open(path: &Path) -> Result<SqliteIdentities, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
        super::migrations::migrate(&mut connection, super::migrations::IDENTITIES, "identities.sqlite")?;
        Ok(SqliteIdentities { connection: Mutex::new(connection) })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().expect("identity store lock")
    }
}

impl IdentityStore for SqliteIdentities {
    fn write(&self, identities: &[StoredIdentity]) -> Result<(), StoreError> {
        if identities.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        {
            let mut upsert = transaction.prepare_cached(
                "INSERT INTO identities (organization_id, provider_id, name, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (organization_id, provider_id, name, kind) DO UPDATE SET body = excluded.body",
            )?;
            for identity in identities {
                let body = serde_json::to_string(identity).expect("an identity serializes");
                upsert.execute(params![
                    identity.organization_id,
                    identity.provider_id,
                    identity.name,
                    identity.kind.as_str(),
                    body
                ])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    fn load(&self, organization_id: &str) -> Result<Vec<StoredIdentity>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT body FROM identities WHERE organization_id = ?1")?;
        let bodies = statement.query_map([organization_id], |row| row.get::<_, String>(0))?;
        bodies
            .map(|body| {
                serde_json::from_str(&body?)
                    .map_err(|e| StoreError::Schema(format!("a stored identity does not decode: {e}")))
            })
            .collect()
    }

    fn delete_provider(&self, organization_id: &str, provider_id: &str) -> Result<(), StoreError> {
        self.connection().execute(
            "DELETE FROM identities WHERE organization_id = ?1 AND provider_id = ?2",
            params![organization_id, provider_id],
        )?;
        Ok(())
    }

    fn delete_organization(&self, organization_id: &str) -> Result<(), StoreError> {
        self.connection().execute("DELETE FROM identities WHERE organization_id = ?1", [organization_id])?;
        Ok(())
    }
}
