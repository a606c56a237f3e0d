//! Security providers in the SQLite catalog.

use rusqlite::params;

use super::SqliteCatalog;
use crate::StoreError;
use crate::security::{ProviderStore, SecurityProvider};

/// Step 4 of the catalog's schema: security providers (ids unique ignoring case).
pub(crate) const SCHEMA_V4: &str = "
CREATE TABLE security_providers (
    organization_id TEXT NOT NULL,
    id TEXT NOT NULL COLLATE NOCASE,
    body TEXT NOT NULL,
    PRIMARY KEY (organization_id, id)
);
";

impl ProviderStore for SqliteCatalog {
    fn put_provider(&self, provider: &SecurityProvider) -> Result<bool, StoreError> {
        let body = serde_json::to_string(provider).expect("a provider serializes");
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        let deleted = transaction.execute(
            "DELETE FROM security_providers WHERE organization_id = ?1 AND id = ?2",
            params![provider.organization_id, provider.id],
        )?;
        transaction.execute(
            "INSERT INTO security_providers (organization_id, id, body) VALUES (?1, ?2, ?3)",
            params![provider.organization_id, provider.id, body],
        )?;
        transaction.commit()?;
        self.providers.write().expect("providers lock").remove(&provider.organization_id);
        Ok(deleted == 0)
    }

    fn stored_providers(&self, organization_id: &str) -> Result<Vec<SecurityProvider>, StoreError> {
        if let Some(providers) = self.providers.read().expect("providers lock").get(organization_id) {
            return Ok(providers.clone());
        }
        // The connection stays locked until the cache holds what was read: a write (which drops the cache under
        // the same lock) cannot slip in between and leave a stale copy.
        let connection = self.connection();
        let mut statement =
            connection.prepare("SELECT body FROM security_providers WHERE organization_id = ?1 ORDER BY id")?;
        let bodies = statement.query_map([organization_id], |row| row.get::<_, String>(0))?;
        let providers: Vec<SecurityProvider> = bodies.map(|body| decode(&body?)).collect::<Result<_, _>>()?;
        self.providers.write().expect("providers lock").insert(organization_id.to_string(), providers.clone());
        Ok(providers)
    }

    fn delete_provider(&self, organization_id: &str, provider_id: &str) -> Result<bool, StoreError> {
        let connection = self.connection();
        let deleted = connection.execute(
            "DELETE FROM security_providers WHERE organization_id = ?1 AND id = ?2",
            params![organization_id, provider_id],
        )?;
        self.providers.write().expect("providers lock").remove(organization_id);
        Ok(deleted > 0)
    }
}

fn decode(body: &str) -> Result<SecurityProvider, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Schema(format!("a stored security provider does not decode: {e}")))
}
