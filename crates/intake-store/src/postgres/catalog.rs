//! The catalog on PostgreSQL, shared by every node: organizations, sources, keys, fields and settings here;
//! limits, file containers, providers and streams in the sibling modules.
//!
//! Request-path reads come from each node's in-memory copy ([`CatalogCache`]), as on SQLite. Several nodes
//! write, so a copy can go stale: every write that changes what the copy holds sends a notification
//! (`NOTIFY intake_catalog`) in its transaction, and each node listens and reloads its copy when another node
//! wrote — milliseconds after the commit. A lookup that misses (a key or a source made on another node a
//! moment ago) asks the database before answering "unknown".

use intake_model::{FieldType, SourceStatus};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_postgres::{Row, Transaction};

use super::{Postgres, conflict_or};
use crate::StoreError;
use crate::cache::{CatalogCache, Snapshot};
use crate::catalog::{ApiKey, Field, Organization, OrganizationStore, Source, random_id};
use crate::security::SecurityProvider;

const CHANNEL: &str = "intake_catalog";

/// The security providers read so far, by organization, and how many times they were dropped: a list read while
/// a change was being made is not kept (it may predate the change).
#[derive(Default)]
pub(super) struct ProviderCache {
    generation: u64,
    by_organization: HashMap<String, Vec<SecurityProvider>>,
}

impl ProviderCache {
    pub fn get(&self, organization_id: &str) -> Option<Vec<SecurityProvider>> {
        self.by_organization.get(organization_id).cloned()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Keeps a list read when the generation was `seen`, unless something was dropped since.
    pub fn keep(&mut self, organization_id: &str, providers: Vec<SecurityProvider>, seen: u64) {
        if self.generation == seen {
            self.by_organization.insert(organization_id.to_string(), providers);
        }
    }

    pub fn forget(&mut self, organization_id: &str) {
        self.generation += 1;
        self.by_organization.remove(organization_id);
    }

    pub fn clear(&mut self) {
        self.generation += 1;
        self.by_organization.clear();
    }
}

/// The shared catalog, as one node sees it.
pub struct PgCatalog {
    pub(super) db: Arc<Postgres>,
    cache: Arc<CatalogCache>,
    /// Each organization's stored security providers, read once and dropped at each change of them (here or,
    /// through the notification, on another node).
    pub(super) providers: Arc<RwLock<ProviderCache>>,
    /// This node's name in notifications, so it does not reload for its own writes.
    node: String,
}

impl PgCatalog {
    /// The catalog in `db`, loaded, with a listener that keeps the copy current.
    pub fn open(db: Arc<Postgres>) -> Result<PgCatalog, StoreError> {
        let snapshot = db.run(load_snapshot(&db))?;
        let catalog = PgCatalog {
            db,
            cache: Arc::new(CatalogCache::new(snapshot)),
            providers: Arc::default(),
            node: random_id(16),
        };
        catalog.listen();
        Ok(catalog)
    }

    /// Runs `write` in a transaction that tells the other nodes the catalog changed.
    pub(super) fn changing<T>(
        &self,
        write: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            let written = write(&transaction).await?;
            transaction.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &self.node]).await?;
            transaction.commit().await?;
            Ok(written)
        })
    }

    /// Runs `read` on a connection of the pool.
    pub(super) fn reading<T>(
        &self,
        read: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db.with_client(read)
    }

    /// Reloads the copy after each burst of other nodes' writes, and whenever listening (re)starts.
    fn listen(&self) {
        let mut changes = self.db.notifications(CHANNEL);
        let (db, cache, providers, node) =
            (Arc::downgrade(&self.db), self.cache.clone(), self.providers.clone(), self.node.clone());
        self.db.spawn(async move {
            while let Some(first) = changes.recv().await {
                let mut foreign = first.as_deref() != Some(node.as_str());
                while let Ok(more) = changes.try_recv() {
                    foreign |= more.as_deref() != Some(node.as_str());
                }
                let Some(db) = db.upgrade() else { return };
                if foreign && let Err(error) = reload(&db, &cache, &providers).await {
                    tracing::warn!(%error, "the catalog could not be reloaded after another node's change");
                }
            }
        });
    }
}

async fn reload(db: &Postgres, cache: &CatalogCache, providers: &RwLock<ProviderCache>) -> Result<(), StoreError> {
    loop {
        let seen = cache.generation();
        let snapshot = load_snapshot(db).await?;
        if cache.replace_unless_changed(snapshot, seen) {
            break;
        }
    }
    providers.write().expect("providers lock").clear();
    Ok(())
}

impl OrganizationStore for PgCatalog {
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.reading(async |client| {
            Ok(client.query_opt("SELECT value FROM settings WHERE key = $1", &[&key]).await?.map(|row| row.get(0)))
        })
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.reading(async |client| {
            client
                .execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&key, &value],
                )
                .await?;
            Ok(())
        })
    }

    fn create_organization(&self, id: &str, display_name: &str, now_ms: i64) -> Result<Organization, StoreError> {
        let organization = Organization::new(id, display_name, now_ms);
        self.changing(async |tx| {
            tx.execute(
                "INSERT INTO organizations (id, display_name, created_at_ms) VALUES ($1, $2, $3)",
                &[&id, &display_name, &now_ms],
            )
            .await
            .map_err(|e| conflict_or(e, format!("organization '{id}' already exists")))
        })?;
        self.cache.update(|s| s.insert_organization(organization.clone()));
        Ok(organization)
    }

    fn organization(&self, id: &str) -> Option<Organization> {
        self.cache.organization(id).or_else(|| {
            self.missed("organization", async |client| {
                let row = client.query_opt(&format!("{ORGANIZATIONS} WHERE id = $1"), &[&id]).await?;
                Ok(row.map(|row| organization_of(&row)))
            })
        })
    }

    fn organizations(&self) -> Vec<Organization> {
        self.cache.organizations()
    }

    fn set_paused(&self, organization_id: &str, paused: bool) -> Result<bool, StoreError> {
        let changed = self.changing(async |tx| {
            Ok(tx.execute("UPDATE organizations SET paused = $1 WHERE id = $2", &[&paused, &organization_id]).await?)
        })?;
        self.cache.set_paused(organization_id, paused);
        Ok(changed > 0)
    }

    fn delete_organization(&self, organization_id: &str) -> Result<bool, StoreError> {
        let deleted = self.changing(async |tx| {
            for table in super::ORGANIZATION_TABLES {
                tx.execute(&format!("DELETE FROM {table} WHERE organization_id = $1"), &[&organization_id]).await?;
            }
            Ok(tx.execute("DELETE FROM organizations WHERE id = $1", &[&organization_id]).await?)
        })?;
        self.cache.remove_organization(organization_id);
        self.providers.write().expect("providers lock").forget(organization_id);
        Ok(deleted > 0)
    }

    fn create_source(
        &self,
        organization_id: &str,
        name: &str,
        source_type: &str,
        visibility: &str,
        now_ms: i64,
    ) -> Result<Source, StoreError> {
        let source = Source::new(organization_id, name, source_type, visibility, now_ms);
        self.changing(async |tx| {
            tx.execute(
                "INSERT INTO sources (id, organization_id, name, source_type, visibility, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&source.id, &organization_id, &name, &source_type, &visibility, &now_ms],
            )
            .await
            .map_err(|e| {
                conflict_or(e, format!("a source named '{name}' already exists in organization '{organization_id}'"))
            })
        })?;
        self.cache.update(|s| s.insert_source(source.clone()));
        Ok(source)
    }

    fn source(&self, organization_id: &str, source_id: &str) -> Option<Source> {
        self.cache.source(organization_id, source_id).or_else(|| {
            self.missed("source", async |client| {
                let row = client
                    .query_opt(
                        &format!("{SOURCES} WHERE id = $1 AND organization_id = $2"),
                        &[&source_id, &organization_id],
                    )
                    .await?;
                Ok(row.map(|row| source_of(&row)))
            })
        })
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
        self.changing(async |tx| {
            tx.execute(
                "UPDATE sources SET status = $1, status_updated_at_ms = $2 WHERE id = $3 AND organization_id = $4",
                &[&status.as_str(), &now_ms, &source_id, &organization_id],
            )
            .await?;
            Ok(())
        })?;
        self.cache.set_source_status(organization_id, source_id, status, now_ms);
        Ok(())
    }

    fn delete_source(&self, organization_id: &str, source_id: &str) -> Result<bool, StoreError> {
        let deleted = self.changing(async |tx| {
            Ok(tx
                .execute("DELETE FROM sources WHERE id = $1 AND organization_id = $2", &[&source_id, &organization_id])
                .await?)
        })?;
        self.cache.remove_source(organization_id, source_id);
        Ok(deleted > 0)
    }

    fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.changing(async |tx| {
            tx.execute(
                "INSERT INTO api_keys (id, organization_id, display_name, description, value_hash, privileges,
                 allowed_ips, denied_ips, enabled, created_at_ms, expiration_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &key.id,
                    &key.organization_id,
                    &key.display_name,
                    &key.description,
                    &key.value_hash,
                    &to_json(&key.privileges),
                    &to_json(&key.allowed_ips),
                    &to_json(&key.denied_ips),
                    &key.enabled,
                    &key.created_at_ms,
                    &key.expiration_ms,
                ],
            )
            .await?;
            Ok(())
        })?;
        self.cache.update(|s| s.insert_api_key(key.clone()));
        Ok(())
    }

    fn api_key_by_hash(&self, value_hash: &str) -> Option<ApiKey> {
        self.cache.api_key_by_hash(value_hash).or_else(|| {
            self.missed("API key", async |client| {
                let row = client.query_opt(&format!("{API_KEYS} WHERE value_hash = $1"), &[&value_hash]).await?;
                row.map(|row| api_key_of(&row)).transpose()
            })
        })
    }

    fn api_key(&self, organization_id: &str, key_id: &str) -> Option<ApiKey> {
        self.cache.api_key(organization_id, key_id)
    }

    fn api_keys(&self, organization_id: &str) -> Vec<ApiKey> {
        self.cache.api_keys(organization_id)
    }

    fn set_api_key_enabled(
        &self,
        organization_id: &str,
        key_id: &str,
        enabled: bool,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.changing(async |tx| {
            tx.execute(
                "UPDATE api_keys SET enabled = $1 WHERE id = $2 AND organization_id = $3",
                &[&enabled, &key_id, &organization_id],
            )
            .await?;
            Ok(())
        })?;
        Ok(self.cache.set_api_key_enabled(organization_id, key_id, enabled))
    }

    fn delete_api_key(&self, organization_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let deleted = self.changing(async |tx| {
            Ok(tx
                .execute("DELETE FROM api_keys WHERE id = $1 AND organization_id = $2", &[&key_id, &organization_id])
                .await?)
        })?;
        self.cache.remove_api_key(organization_id, key_id);
        Ok(deleted > 0)
    }

    fn upsert_fields(&self, fields: &[Field]) -> Result<(), StoreError> {
        self.changing(async |tx| {
            let upsert = tx
                .prepare(
                    "INSERT INTO fields (organization_id, name, field_type, description) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (organization_id, name)
                     DO UPDATE SET field_type = excluded.field_type, description = excluded.description",
                )
                .await?;
            for field in fields {
                tx.execute(
                    &upsert,
                    &[&field.organization_id, &field.name, &field.field_type.as_str(), &field.description],
                )
                .await?;
            }
            Ok(())
        })?;
        self.cache.update(|s| fields.iter().for_each(|field| s.insert_field(field.clone())));
        Ok(())
    }

    fn fields(&self, organization_id: &str) -> Vec<Field> {
        self.cache.fields(organization_id)
    }

    fn field(&self, organization_id: &str, name: &str) -> Option<Field> {
        self.cache.field(organization_id, name)
    }
}

impl PgCatalog {
    /// Looks up what the copy does not hold, in case another node made it since the copy was loaded. The
    /// lookup cannot fail the caller: an unreachable database answers "unknown", and says so in the log.
    fn missed<T>(
        &self,
        what: &str,
        look: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<Option<T>, StoreError>,
    ) -> Option<T> {
        match self.reading(look) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "a {what} missing from the catalog's copy could not be looked up");
                None
            }
        }
    }
}

const ORGANIZATIONS: &str = "SELECT id, display_name, created_at_ms, paused FROM organizations";
const SOURCES: &str = "SELECT id, organization_id, name, source_type, visibility, status, status_updated_at_ms, created_at_ms FROM sources";
const API_KEYS: &str = "SELECT id, organization_id, display_name, description, value_hash, privileges, allowed_ips,
    denied_ips, enabled, created_at_ms, expiration_ms FROM api_keys";
const FIELDS: &str = "SELECT organization_id, name, field_type, description FROM fields";

fn organization_of(row: &Row) -> Organization {
    Organization { id: row.get(0), display_name: row.get(1), created_at_ms: row.get(2), paused: row.get(3) }
}

fn source_of(row: &Row) -> Source {
    Source {
        id: row.get(0),
        organization_id: row.get(1),
        name: row.get(2),
        source_type: row.get(3),
        visibility: row.get(4),
        status: row.get::<_, Option<String>>(5).as_deref().and_then(SourceStatus::parse),
        status_updated_at_ms: row.get(6),
        created_at_ms: row.get(7),
    }
}

fn api_key_of(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.get(0),
        organization_id: row.get(1),
        display_name: row.get(2),
        description: row.get(3),
        value_hash: row.get(4),
        privileges: from_json(row.get(5))?,
        allowed_ips: from_json(row.get(6))?,
        denied_ips: from_json(row.get(7))?,
        enabled: row.get(8),
        created_at_ms: row.get(9),
        expiration_ms: row.get(10),
    })
}

fn field_of(row: &Row) -> Field {
    Field {
        organization_id: row.get(0),
        name: row.get(1),
        field_type: FieldType::parse(row.get(2)).unwrap_or(FieldType::String),
        description: row.get(3),
    }
}

async fn load_snapshot(db: &Postgres) -> Result<Snapshot, StoreError> {
    let client = db.client().await?;
    let mut snapshot = Snapshot::default();
    for row in client.query(ORGANIZATIONS, &[]).await? {
        snapshot.insert_organization(organization_of(&row));
    }
    for row in client.query(SOURCES, &[]).await? {
        snapshot.insert_source(source_of(&row));
    }
    for row in client.query(API_KEYS, &[]).await? {
        snapshot.insert_api_key(api_key_of(&row)?);
    }
    for row in client.query(FIELDS, &[]).await? {
        snapshot.insert_field(field_of(&row));
    }
    Ok(snapshot)
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Schema(format!("a stored value does not decode: {e}")))
}
