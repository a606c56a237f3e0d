//! The SQLite catalog (`catalog.sqlite`, WAL, synchronous FULL): organizations, sources, keys, fields and
//! settings here; limits and file containers in the sibling modules.
//!
//! Reads on the request path come from an in-memory copy that every write updates; this process is the
//! only writer, so the copy is always current.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use intake_model::{FieldType, SourceStatus};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::cache::{CatalogCache, Snapshot};
use crate::catalog::{ApiKey, Field, Organization, OrganizationStore, Source};

/// The embedded catalog.
pub struct SqliteCatalog {
    connection: Mutex<Connection>,
    cache: CatalogCache,
    /// Each organization's stored security providers, read once and dropped at each change of them: search and
    /// the applier read them on every query and item window.
    pub(super) providers: RwLock<HashMap<String, Vec<crate::security::SecurityProvider>>>,
}

/// Step 1 of the catalog's schema (see [`crate::migrations`]): never edited once released.
pub(crate) const SCHEMA_V1: &str = "
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
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    value_hash TEXT NOT NULL UNIQUE,
    privileges TEXT NOT NULL,
    allowed_ips TEXT NOT NULL,
    denied_ips TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expiration_ms INTEGER
);
CREATE TABLE IF NOT EXISTS fields (
    organization_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    field_type TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (organization_id, name)
);
";

impl SqliteCatalog {
    /// The connection, for the catalog's other tables (file containers).
    pub(crate) fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().expect("catalog lock")
    }

    pub fn open(path: &Path) -> Result<SqliteCatalog, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        super::migrations::migrate(&mut connection, super::migrations::CATALOG, "catalog.sqlite")?;
        let snapshot = load_snapshot(&connection)?;
        Ok(SqliteCatalog {
            connection: Mutex::new(connection),
            cache: CatalogCache::new(snapshot),
            providers: RwLock::default(),
        })
    }
}

impl OrganizationStore for SqliteCatalog {
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        Ok(connection.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| row.get(0)).optional()?)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn create_organization(&self, id: &str, display_name: &str, now_ms: i64) -> Result<Organization, StoreError> {
        let organization = Organization::new(id, display_name, now_ms);
        let connection = self.connection.lock().expect("catalog lock");
        connection
            .execute(
                "INSERT INTO organizations (id, display_name, created_at_ms) VALUES (?1, ?2, ?3)",
                params![organization.id, organization.display_name, now_ms],
            )
            .map_err(|e| StoreError::conflict_or(e, format!("organization '{id}' already exists")))?;
        self.cache.update(|s| s.insert_organization(organization.clone()));
        Ok(organization)
    }

    fn organization(&self, id: &str) -> Option<Organization> {
        self.cache.organization(id)
    }

    fn organizations(&self) -> Vec<Organization> {
        self.cache.organizations()
    }

    /// Creates a source with a Coveo-style id: `<organization>-<26 random lower-case letters and digits>`.
    fn create_source(
        &self,
        organization_id: &str,
        name: &str,
        source_type: &str,
        visibility: &str,
        now_ms: i64,
    ) -> Result<Source, StoreError> {
        let source = Source::new(organization_id, name, source_type, visibility, now_ms);
        let connection = self.connection.lock().expect("catalog lock");
        connection
            .execute(
                "INSERT INTO sources (id, organization_id, name, source_type, visibility, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![source.id, source.organization_id, source.name, source.source_type, source.visibility, now_ms],
            )
            .map_err(|e| StoreError::conflict_or(e, format!("a source named '{name}' already exists in organization '{organization_id}'")))?;
        self.cache.update(|s| s.insert_source(source.clone()));
        Ok(source)
    }

    fn source(&self, organization_id: &str, source_id: &str) -> Option<Source> {
        self.cache.source(organization_id, source_id)
    }

    fn sources(&self, organization_id: &str) -> Vec<Source> {
        self.cache.sources(organization_id)
    }

    fn set_source_status(
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
        self.cache.set_source_status(organization_id, source_id, status, now_ms);
        Ok(())
    }

    /// Pauses or resumes an organization; returns false when it does not exist.
    fn set_paused(&self, organization_id: &str, paused: bool) -> Result<bool, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        let changed = connection
            .execute("UPDATE organizations SET paused = ?1 WHERE id = ?2", params![paused as i64, organization_id])?;
        self.cache.set_paused(organization_id, paused);
        Ok(changed > 0)
    }

    /// Deletes an organization with its sources, keys and fields; returns false when it does not exist.
    fn delete_organization(&self, organization_id: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.lock().expect("catalog lock");
        let transaction = connection.transaction()?;
        for table in super::limits::ORGANIZATION_TABLES.into_iter().chain([
            "security_providers",
            "streams",
            "fields",
            "api_keys",
            "sources",
        ]) {
            transaction.execute(&format!("DELETE FROM {table} WHERE organization_id = ?1"), [organization_id])?;
        }
        transaction.execute("DELETE FROM stream_chunks WHERE stream_id NOT IN (SELECT stream_id FROM streams)", [])?;
        let deleted = transaction.execute("DELETE FROM organizations WHERE id = ?1", [organization_id])?;
        transaction.commit()?;
        self.cache.remove_organization(organization_id);
        self.providers.write().expect("providers lock").remove(organization_id);
        Ok(deleted > 0)
    }

    /// Deletes a source; returns false when it does not exist.
    fn delete_source(&self, organization_id: &str, source_id: &str) -> Result<bool, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        let deleted = connection
            .execute("DELETE FROM sources WHERE id = ?1 AND organization_id = ?2", [source_id, organization_id])?;
        self.cache.remove_source(organization_id, source_id);
        Ok(deleted > 0)
    }

    fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        connection.execute(
            "INSERT INTO api_keys (id, organization_id, display_name, description, value_hash, privileges, allowed_ips,
             denied_ips, enabled, created_at_ms, expiration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                key.id,
                key.organization_id,
                key.display_name,
                key.description,
                key.value_hash,
                to_json(&key.privileges),
                to_json(&key.allowed_ips),
                to_json(&key.denied_ips),
                key.enabled as i64,
                key.created_at_ms,
                key.expiration_ms
            ],
        )?;
        self.cache.update(|s| s.insert_api_key(key.clone()));
        Ok(())
    }

    /// The key whose value hashes to `value_hash`.
    fn api_key_by_hash(&self, value_hash: &str) -> Option<ApiKey> {
        self.cache.api_key_by_hash(value_hash)
    }

    fn api_key(&self, organization_id: &str, key_id: &str) -> Option<ApiKey> {
        self.cache.api_key(organization_id, key_id)
    }

    fn api_keys(&self, organization_id: &str) -> Vec<ApiKey> {
        self.cache.api_keys(organization_id)
    }

    /// Enables or disables a key; returns the key as it now is, or None when it does not exist.
    fn set_api_key_enabled(
        &self,
        organization_id: &str,
        key_id: &str,
        enabled: bool,
    ) -> Result<Option<ApiKey>, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        connection.execute(
            "UPDATE api_keys SET enabled = ?1 WHERE id = ?2 AND organization_id = ?3",
            params![enabled as i64, key_id, organization_id],
        )?;
        Ok(self.cache.set_api_key_enabled(organization_id, key_id, enabled))
    }

    fn delete_api_key(&self, organization_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        let deleted = connection
            .execute("DELETE FROM api_keys WHERE id = ?1 AND organization_id = ?2", [key_id, organization_id])?;
        self.cache.remove_api_key(organization_id, key_id);
        Ok(deleted > 0)
    }

    /// Declares fields (a field declared again takes the new type and description).
    fn upsert_fields(&self, fields: &[Field]) -> Result<(), StoreError> {
        let mut connection = self.connection.lock().expect("catalog lock");
        let transaction = connection.transaction()?;
        for field in fields {
            transaction.execute(
                "INSERT INTO fields (organization_id, name, field_type, description) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(organization_id, name) DO UPDATE SET field_type = excluded.field_type, description = excluded.description",
                params![field.organization_id, field.name, field.field_type.as_str(), field.description],
            )?;
        }
        transaction.commit()?;
        self.cache.update(|s| fields.iter().for_each(|field| s.insert_field(field.clone())));
        Ok(())
    }

    /// The declared fields of an organization, by name.
    fn fields(&self, organization_id: &str) -> Vec<Field> {
        self.cache.fields(organization_id)
    }

    fn field(&self, organization_id: &str, name: &str) -> Option<Field> {
        self.cache.field(organization_id, name)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn load_snapshot(connection: &Connection) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot::default();
    let mut statement = connection.prepare("SELECT id, display_name, created_at_ms, paused FROM organizations")?;
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
        snapshot.insert_organization(organization);
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
            status: row.get::<_, Option<String>>(5)?.as_deref().and_then(SourceStatus::parse),
            status_updated_at_ms: row.get(6)?,
            created_at_ms: row.get(7)?,
        })
    })?;
    for source in sources {
        let source = source?;
        snapshot.insert_source(source);
    }
    let mut statement = connection.prepare(
        "SELECT id, organization_id, display_name, description, value_hash, privileges, allowed_ips, denied_ips,
         enabled, created_at_ms, expiration_ms FROM api_keys",
    )?;
    let keys = statement.query_map([], |row| {
        Ok(ApiKey {
            id: row.get(0)?,
            organization_id: row.get(1)?,
            display_name: row.get(2)?,
            description: row.get(3)?,
            value_hash: row.get(4)?,
            privileges: from_json(&row.get::<_, String>(5)?)?,
            allowed_ips: from_json(&row.get::<_, String>(6)?)?,
            denied_ips: from_json(&row.get::<_, String>(7)?)?,
            enabled: row.get::<_, i64>(8)? != 0,
            created_at_ms: row.get(9)?,
            expiration_ms: row.get(10)?,
        })
    })?;
    for key in keys {
        let key = key?;
        snapshot.insert_api_key(key);
    }
    let mut statement = connection.prepare("SELECT organization_id, name, field_type, description FROM fields")?;
    let fields = statement.query_map([], |row| {
        Ok(Field {
            organization_id: row.get(0)?,
            name: row.get(1)?,
            field_type: FieldType::parse(&row.get::<_, String>(2)?).unwrap_or(FieldType::String),
            description: row.get(3)?,
        })
    })?;
    for field in fields {
        let field = field?;
        snapshot.insert_field(field);
    }
    Ok(snapshot)
}
