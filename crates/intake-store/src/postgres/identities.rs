//! The identity store on PostgreSQL: one row per identity, its links as JSON, keyed ignoring the case of the
//! provider and the name (as on SQLite, whose columns are `COLLATE NOCASE`).

use std::sync::Arc;

use super::Postgres;
use super::catalog::from_json;
use crate::StoreError;
use crate::security::{IdentityStore, StoredIdentity};

pub struct PgIdentities {
    db: Arc<Postgres>,
}

impl PgIdentities {
    pub fn open(db: Arc<Postgres>) -> PgIdentities {
        PgIdentities { db }
    }

    fn execute(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), StoreError> {
        self.db.run(async {
            self.db.client().await?.execute(statement, params).await?;
            Ok(())
        })
    }
}

impl IdentityStore for PgIdentities {
    fn write(&self, identities: &[StoredIdentity]) -> Result<(), StoreError> {
        if identities.is_empty() {
            return Ok(());
        }
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            let upsert = transaction
                .prepare(
                    "INSERT INTO identities (organization_id, provider_key, name_key, kind, body) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (organization_id, provider_key, name_key, kind) DO UPDATE SET body = excluded.body",
                )
                .await?;
            for identity in identities {
                let body = serde_json::to_string(identity).expect("an identity serializes");
                let (provider, name) = (identity.provider_id.to_lowercase(), identity.name.to_lowercase());
                transaction
                    .execute(&upsert, &[&identity.organization_id, &provider, &name, &identity.kind.as_str(), &body])
                    .await?;
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    fn load(&self, organization_id: &str) -> Result<Vec<StoredIdentity>, StoreError> {
        let rows = self.db.run(async {
            let client = self.db.client().await?;
            Ok::<_, StoreError>(
                client.query("SELECT body FROM identities WHERE organization_id = $1", &[&organization_id]).await?,
            )
        })?;
        rows.iter().map(|row| from_json(row.get(0))).collect()
    }

    fn delete_provider(&self, organization_id: &str, provider_id: &str) -> Result<(), StoreError> {
        let provider = provider_id.to_lowercase();
        self.execute(
            "DELETE FROM identities WHERE organization_id = $1 AND provider_key = $2",
            &[&organization_id, &provider],
        )
    }

    fn delete_organization(&self, organization_id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM identities WHERE organization_id = $1", &[&organization_id])
    }
}
