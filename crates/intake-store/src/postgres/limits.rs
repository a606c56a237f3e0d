//! Limits, daily usage (one row per organization and UTC day) and fault rules in the PostgreSQL catalog.

use intake_model::quota::{LimitKey, Limits};

use super::PgCatalog;
use crate::{DailyUsage, LimitStore, StoreError, StoredFault};

/// Daily usage older than this many days is dropped when usage is saved.
const USAGE_DAYS_KEPT: i64 = 31;

impl LimitStore for PgCatalog {
    fn limit_overrides(&self, organization_id: &str) -> Result<Limits, StoreError> {
        let rows = self.reading(async |client| {
            Ok(client
                .query("SELECT limit_key, value FROM org_limits WHERE organization_id = $1", &[&organization_id])
                .await?)
        })?;
        let mut limits = Limits::default();
        for row in rows {
            if let Some(key) = LimitKey::parse(row.get(0)) {
                limits.set(key, Some(row.get::<_, i64>(1).max(0) as u64));
            }
        }
        Ok(limits)
    }

    fn set_limit(
        &self,
        organization_id: &str,
        key: LimitKey,
        value: Option<u64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.reading(async |client| {
            match value {
                Some(value) => {
                    let value = value.min(i64::MAX as u64) as i64;
                    client
                        .execute(
                            "INSERT INTO org_limits (organization_id, limit_key, value, updated_at_ms) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (organization_id, limit_key) DO UPDATE SET value = $3, updated_at_ms = $4",
                            &[&organization_id, &key.name(), &value, &now_ms],
                        )
                        .await?
                }
                None => {
                    client
                        .execute(
                            "DELETE FROM org_limits WHERE organization_id = $1 AND limit_key = $2",
                            &[&organization_id, &key.name()],
                        )
                        .await?
                }
            };
            Ok(())
        })
    }

    fn daily_usage(&self, organization_id: &str, day: i64) -> Result<Option<DailyUsage>, StoreError> {
        let row = self.reading(async |client| {
            Ok(client
                .query_opt(
                    "SELECT calls, documents, identities, updated_at_ms FROM daily_usage
                     WHERE organization_id = $1 AND day = $2",
                    &[&organization_id, &day],
                )
                .await?)
        })?;
        Ok(row.map(|row| DailyUsage {
            day,
            calls: row.get::<_, i64>(0) as u64,
            documents: row.get::<_, i64>(1) as u64,
            identities: row.get::<_, i64>(2) as u64,
            updated_at_ms: row.get(3),
        }))
    }

    fn save_daily_usage(&self, rows: &[(String, DailyUsage)]) -> Result<(), StoreError> {
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            let upsert = transaction
                .prepare(
                    "INSERT INTO daily_usage (organization_id, day, calls, documents, identities, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (organization_id, day)
                     DO UPDATE SET calls = $3, documents = $4, identities = $5, updated_at_ms = $6",
                )
                .await?;
            for (organization_id, usage) in rows {
                let counts = [usage.calls as i64, usage.documents as i64, usage.identities as i64];
                transaction
                    .execute(
                        &upsert,
                        &[organization_id, &usage.day, &counts[0], &counts[1], &counts[2], &usage.updated_at_ms],
                    )
                    .await?;
            }
            if let Some(latest) = rows.iter().map(|(_, usage)| usage.day).max() {
                transaction.execute("DELETE FROM daily_usage WHERE day < $1", &[&(latest - USAGE_DAYS_KEPT)]).await?;
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    fn fault_rules(&self) -> Result<Vec<StoredFault>, StoreError> {
        let rows = self.reading(async |client| {
            Ok(client
                .query("SELECT id, organization_id, spec, remaining, created_at_ms FROM fault_rules ORDER BY id", &[])
                .await?)
        })?;
        Ok(rows
            .iter()
            .map(|row| StoredFault {
                id: row.get(0),
                organization_id: row.get(1),
                spec: row.get(2),
                remaining: row.get::<_, Option<i64>>(3).map(|r| r.max(0) as u64),
                created_at_ms: row.get(4),
            })
            .collect())
    }

    fn add_fault_rule(
        &self,
        organization_id: &str,
        spec: &str,
        remaining: Option<u64>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let remaining = remaining.map(|r| r.min(i64::MAX as u64) as i64);
        self.reading(async |client| {
            let row = client
                .query_one(
                    "INSERT INTO fault_rules (organization_id, spec, remaining, created_at_ms) VALUES ($1, $2, $3, $4)
                     RETURNING id",
                    &[&organization_id, &spec, &remaining, &now_ms],
                )
                .await?;
            Ok(row.get(0))
        })
    }

    fn set_fault_remaining(&self, id: i64, remaining: u64) -> Result<(), StoreError> {
        let remaining = remaining.min(i64::MAX as u64) as i64;
        self.reading(async |client| {
            client.execute("UPDATE fault_rules SET remaining = $1 WHERE id = $2", &[&remaining, &id]).await?;
            Ok(())
        })
    }

    fn take_fault_firing(&self, id: i64) -> Result<Option<u64>, StoreError> {
        self.reading(async |client| {
            let row = client
                .query_opt(
                    "UPDATE fault_rules SET remaining = remaining - 1 WHERE id = $1 AND remaining > 0 RETURNING remaining",
                    &[&id],
                )
                .await?;
            Ok(row.map(|row| row.get::<_, i64>(0) as u64))
        })
    }

    fn delete_fault_rule(&self, organization_id: &str, id: i64) -> Result<bool, StoreError> {
        self.reading(async |client| {
            let deleted = client
                .execute("DELETE FROM fault_rules WHERE id = $1 AND organization_id = $2", &[&id, &organization_id])
                .await?;
            Ok(deleted > 0)
        })
    }
}
