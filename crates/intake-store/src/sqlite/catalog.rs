//! The catalog: organizations, sources and server settings, in SQLite (WAL, synchronous FULL).
//!
//! Reads on the request path come from an in-memory copy that every write updates; this process is the
//! only writer, so the copy is always current.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use intake_model::{FieldType, Privilege, SourceStatus};
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

/// An API key. Its value is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub organization_id: String,
    pub display_name: String,
    pub description: String,
    pub value_hash: String,
    pub privileges: Vec<Privilege>,
    /// CIDR blocks (or single addresses); empty means every address.
    pub allowed_ips: Vec<String>,
    pub denied_ips: Vec<String>,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub expiration_ms: Option<i64>,
}

/// A declared index field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub organization_id: String,
    pub name: String,
    pub field_type: FieldType,
    pub description: String,
}

#[derive(Default)]
struct Snapshot {
    organizations: HashMap<String, Organization>,
    /// Keyed by (organization id, source id).
    sources: HashMap<(String, String), Source>,
    /// Keyed by the SHA-256 of the key's value.
    api_keys: HashMap<String, ApiKey>,
    /// Keyed by (organization id, field name).
    fields: HashMap<(String, String), Field>,
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

impl Catalog {
    /// The connection, for the catalog's other tables (file containers).
    pub(crate) fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().expect("catalog lock")
    }

    pub fn open(path: &Path) -> Result<Catalog, StoreError> {
        let connection = Connection::open(path)?;
        connection.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch(crate::containers::SCHEMA)?;
        connection.execute_batch(crate::quotas::SCHEMA)?;
        let snapshot = load_snapshot(&connection)?;
        Ok(Catalog { connection: Mutex::new(connection), snapshot: RwLock::new(snapshot) })
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        Ok(connection.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| row.get(0)).optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn create_organization(&self, id: &str, display_name: &str, now_ms: i64) -> Result<Organization, StoreError> {
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
            .map_err(|e| StoreError::conflict_or(e, format!("organization '{id}' already exists")))?;
        self.snapshot.write().expect("snapshot lock").organizations.insert(id.to_string(), organization.clone());
        Ok(organization)
    }

    pub fn organization(&self, id: &str) -> Option<Organization> {
        self.snapshot.read().expect("snapshot lock").organizations.get(id).cloned()
    }

    pub fn organizations(&self) -> Vec<Organization> {
        let mut all: Vec<_> = self.snapshot.read().expect("snapshot lock").organizations.values().cloned().collect();
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
            .insert((organization_id.to_string(), source.id.clone()), source.clone());
        Ok(source)
    }

    pub fn source(&self, organization_id: &str, source_id: &str) -> Option<Source> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        snapshot.sources.get(&(organization_id.to_string(), source_id.to_string())).cloned()
    }

    pub fn sources(&self, organization_id: &str) -> Vec<Source> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        let mut all: Vec<_> =
            snapshot.sources.values().filter(|s| s.organization_id == organization_id).cloned().collect();
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
        if let Some(source) = snapshot.sources.get_mut(&(organization_id.to_string(), source_id.to_string())) {
            source.status = Some(status);
            source.status_updated_at_ms = Some(now_ms);
        }
        Ok(())
    }
}

impl Catalog {
    /// Pauses or resumes an organization; returns false when it does not exist.
    pub fn set_paused(&self, organization_id: &str, paused: bool) -> Result<bool, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        let changed = connection
            .execute("UPDATE organizations SET paused = ?1 WHERE id = ?2", params![paused as i64, organization_id])?;
        if let Some(organization) = self.snapshot.write().expect("snapshot lock").organizations.get_mut(organization_id)
        {
            organization.paused = paused;
        }
        Ok(changed > 0)
    }

    /// Deletes an organization with its sources, keys and fields; returns false when it does not exist.
    pub fn delete_organization(&self, organization_id: &str) -> Result<bool, StoreError> {
        let mut connection = self.connection.lock().expect("catalog lock");
        let transaction = connection.transaction()?;
        for table in crate::quotas::ORGANIZATION_TABLES.into_iter().chain(["fields", "api_keys", "sources"]) {
            transaction.execute(&format!("DELETE FROM {table} WHERE organization_id = ?1"), [organization_id])?;
        }
        let deleted = transaction.execute("DELETE FROM organizations WHERE id = ?1", [organization_id])?;
        transaction.commit()?;
        let mut snapshot = self.snapshot.write().expect("snapshot lock");
        snapshot.organizations.remove(organization_id);
        snapshot.sources.retain(|(org, _), _| org != organization_id);
        snapshot.api_keys.retain(|_, key| key.organization_id != organization_id);
        snapshot.fields.retain(|(org, _), _| org != organization_id);
        Ok(deleted > 0)
    }

    /// Deletes a source; returns false when it does not exist.
    pub fn delete_source(&self, organization_id: &str, source_id: &str) -> Result<bool, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        let deleted = connection
            .execute("DELETE FROM sources WHERE id = ?1 AND organization_id = ?2", [source_id, organization_id])?;
        self.snapshot
            .write()
            .expect("snapshot lock")
            .sources
            .remove(&(organization_id.to_string(), source_id.to_string()));
        Ok(deleted > 0)
    }

    pub fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
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
        self.snapshot.write().expect("snapshot lock").api_keys.insert(key.value_hash.clone(), key.clone());
        Ok(())
    }

    /// The key whose value hashes to `value_hash`.
    pub fn api_key_by_hash(&self, value_hash: &str) -> Option<ApiKey> {
        self.snapshot.read().expect("snapshot lock").api_keys.get(value_hash).cloned()
    }

    pub fn api_key(&self, organization_id: &str, key_id: &str) -> Option<ApiKey> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        snapshot.api_keys.values().find(|k| k.id == key_id && k.organization_id == organization_id).cloned()
    }

    pub fn api_keys(&self, organization_id: &str) -> Vec<ApiKey> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        let mut keys: Vec<_> =
            snapshot.api_keys.values().filter(|k| k.organization_id == organization_id).cloned().collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    /// Enables or disables a key; returns the key as it now is, or None when it does not exist.
    pub fn set_api_key_enabled(
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
        let mut snapshot = self.snapshot.write().expect("snapshot lock");
        let key = snapshot.api_keys.values_mut().find(|k| k.id == key_id && k.organization_id == organization_id);
        Ok(key.map(|key| {
            key.enabled = enabled;
            key.clone()
        }))
    }

    pub fn delete_api_key(&self, organization_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let connection = self.connection.lock().expect("catalog lock");
        let deleted = connection
            .execute("DELETE FROM api_keys WHERE id = ?1 AND organization_id = ?2", [key_id, organization_id])?;
        self.snapshot
            .write()
            .expect("snapshot lock")
            .api_keys
            .retain(|_, k| !(k.id == key_id && k.organization_id == organization_id));
        Ok(deleted > 0)
    }

    /// Declares fields (a field declared again takes the new type and description).
    pub fn upsert_fields(&self, fields: &[Field]) -> Result<(), StoreError> {
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
        let mut snapshot = self.snapshot.write().expect("snapshot lock");
        for field in fields {
            snapshot.fields.insert((field.organization_id.clone(), field.name.clone()), field.clone());
        }
        Ok(())
    }

    /// The declared fields of an organization, by name.
    pub fn fields(&self, organization_id: &str) -> Vec<Field> {
        let snapshot = self.snapshot.read().expect("snapshot lock");
        let mut fields: Vec<_> =
            snapshot.fields.values().filter(|f| f.organization_id == organization_id).cloned().collect();
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        fields
    }

    pub fn field(&self, organization_id: &str, name: &str) -> Option<Field> {
        self.snapshot
            .read()
            .expect("snapshot lock")
            .fields
            .get(&(organization_id.to_string(), name.to_string()))
            .cloned()
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
        snapshot.organizations.insert(organization.id.clone(), organization);
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
        snapshot.sources.insert((source.organization_id.clone(), source.id.clone()), source);
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
        snapshot.api_keys.insert(key.value_hash.clone(), key);
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
        snapshot.fields.insert((field.organization_id.clone(), field.name.clone()), field);
    }
    Ok(snapshot)
}

/// Lower-case letters and digits, as Coveo's ids look.
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
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
            catalog.create_organization("default", "Default", 1).unwrap();
            let source = catalog.create_source("default", "main", "PUSH", "SHARED", 2).unwrap();
            assert!(source.id.starts_with("default-") && source.id.len() == "default-".len() + 26);
            catalog.set_source_status("default", &source.id, SourceStatus::Rebuild, 3).unwrap();
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

    #[test]
    fn keys_fields_pausing_and_deletion_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let key = ApiKey {
            id: "k1".into(),
            organization_id: "acme".into(),
            display_name: "push".into(),
            description: String::new(),
            value_hash: "hash".into(),
            privileges: vec![Privilege::platform("SOURCE", "EDIT", "*")],
            allowed_ips: vec!["127.0.0.0/8".into()],
            denied_ips: vec![],
            enabled: true,
            created_at_ms: 1,
            expiration_ms: Some(99),
        };
        {
            let catalog = Catalog::open(&path).unwrap();
            catalog.create_organization("acme", "Acme", 1).unwrap();
            catalog.create_api_key(&key).unwrap();
            catalog
                .upsert_fields(&[Field {
                    organization_id: "acme".into(),
                    name: "rank".into(),
                    field_type: FieldType::Long,
                    description: String::new(),
                }])
                .unwrap();
            assert!(catalog.set_paused("acme", true).unwrap());
            assert!(!catalog.set_api_key_enabled("acme", "k1", false).unwrap().unwrap().enabled);
        }
        let catalog = Catalog::open(&path).unwrap();
        assert!(catalog.organization("acme").unwrap().paused);
        let stored = catalog.api_key_by_hash("hash").unwrap();
        assert_eq!(
            (stored.enabled, stored.privileges.clone(), stored.expiration_ms),
            (false, key.privileges.clone(), Some(99))
        );
        assert_eq!(catalog.field("acme", "rank").unwrap().field_type, FieldType::Long);
        assert!(catalog.delete_organization("acme").unwrap());
        assert!(catalog.api_key_by_hash("hash").is_none() && catalog.fields("acme").is_empty());
        assert!(!catalog.delete_organization("acme").unwrap());
    }
}
