//! Security providers in the PostgreSQL catalog, keyed by their lower-cased id (ids match ignoring case).

use super::PgCatalog;
use super::catalog::from_json;
use crate::StoreError;
use crate::security::{ProviderStore, SecurityProvider};

impl ProviderStore for PgCatalog {
    fn put_provider(&self, provider: &SecurityProvider) -> Result<bool, StoreError> {
        let body = serde_json::to_string(provider).expect("a provider serializes");
        let key = provider.id.to_lowercase();
        let created = self.changing(async |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM security_providers WHERE organization_id = $1 AND id_key = $2",
                    &[&provider.organization_id, &key],
                )
                .await?;
            tx.execute(
                "INSERT INTO security_providers (organization_id, id_key, body) VALUES ($1, $2, $3)",
                &[&provider.organization_id, &key, &body],
            )
            .await?;
            Ok(deleted == 0)
        })?;
        self.providers.write().expect("providers lock").forget(&provider.organization_id);
        Ok(created)
    }

    fn stored_providers(&self, organization_id: &str) -> Result<Vec<SecurityProvider>, StoreError> {
        let seen = {
            let cache = self.providers.read().expect("providers lock");
            if let Some(providers) = cache.get(organization_id) {
                return Ok(providers);
            }
            cache.generation()
        };
        let rows = self.reading(async |client| {
            Ok(client
                .query(
                    "SELECT body FROM security_providers WHERE organization_id = $1 ORDER BY id_key",
                    &[&organization_id],
                )
                .await?)
        })?;
        let providers: Vec<SecurityProvider> =
            rows.iter().map(|row| from_json(row.get(0))).collect::<Result<_, _>>()?;
        self.providers.write().expect("providers lock").keep(organization_id, providers.clone(), seen);
        Ok(providers)
    }

    fn delete_provider(&self, organization_id: &str, provider_id: &str) -> Result<bool, StoreError> {
        let key = provider_id.to_lowercase();
        let deleted = self.changing(async |tx| {
            Ok(tx
                .execute(
                    "DELETE FROM security_providers WHERE organization_id = $1 AND id_key = $2",
                    &[&organization_id, &key],
                )
                .await?)
        })?;
        self.providers.write().expect("providers lock").forget(organization_id);
        Ok(deleted > 0)
    }
}
