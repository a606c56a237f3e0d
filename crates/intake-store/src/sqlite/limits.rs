//! Limits, daily usage (one row per organization and UTC day) and fault rules in the SQLite catalog.

use intake_model::quota::{LimitKey, Limits};
use rusqlite::{OptionalExtension, params};

use super::SqliteCatalog;
use crate::{DailyUsage, LimitStore, StoreError, StoredFault};

/// Step 3 of the catalog's schema: limits, daily usage, fault rules.
pub(crate) const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS org_limits (
    organization_id TEXT NOT NULL,
    limit_key TEXT NOT NULL,
    value INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (organization_id, limit_key)
);
CREATE TABLE IF NOT EXISTS daily_usage (
    organization_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    documents INTEGER NOT NULL,
    identities INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (organization_id, day)
);
CREATE TABLE IF NOT EXISTS fault_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    remaining INTEGER,
    created_at_ms INTEGER NOT NULL
);
";

/// The tables holding rows of an organization, for its deletion.
pub(crate) const ORGANIZATION_TABLES: [&str; 3] = ["org_limits", "daily_usage", "fault_rules"];

/// Daily usage older than this many days is dropped when usage is saved.
const USAGE_DAYS_KEPT: i64 = 31;

impl LimitStore for SqliteCatalog {
    /// The limits set on the organization (unset ones are `None`: the server's defaults apply).
    fn limit_overrides(&self, organization_id: &str) -> Result<Limits, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT limit_key, value FROM org_limits WHERE organization_id = ?1")?;
        let rows =
            statement.query_map([organization_id], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
        let mut limits = Limits::default();
        for row in rows {
            let (key, value) = row?;
            if let Some(key) = LimitKey::parse(&key) {
                limits.set(key, Some(value.max(0) as u64));
            }
        }
        Ok(limits)
    }

    /// Sets one limit of the organization, or removes the override (`None`).
    fn set_limit(
        &self,
        organization_id: &str,
        key: LimitKey,
        value: Option<u64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let connection = self.connection();
        match value {
            Some(value) => connection.execute(
                "INSERT INTO org_limits (organization_id, limit_key, value, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (organization_id, limit_key) DO UPDATE SET value = ?3, updated_at_ms = ?4",
                params![organization_id, key.name(), value.min(i64::MAX as u64) as i64, now_ms],
            )?,
            None => connection.execute(
                "DELETE FROM org_limits WHERE organization_id = ?1 AND limit_key = ?2",
                params![organization_id, key.name()],
            )?,
        };
        Ok(())
    }

    /// The organization's usage on `day`, if it used anything.
    fn daily_usage(&self, organization_id: &str, day: i64) -> Result<Option<DailyUsage>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT calls, documents, identities, updated_at_ms FROM daily_usage WHERE organization_id = ?1 AND day = ?2",
                params![organization_id, day],
                |row| {
                    Ok(DailyUsage {
                        day,
                        calls: row.get::<_, i64>(0)? as u64,
                        documents: row.get::<_, i64>(1)? as u64,
                        identities: row.get::<_, i64>(2)? as u64,
                        updated_at_ms: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Saves usage rows in one transaction, and drops rows over a month old.
    fn save_daily_usage(&self, rows: &[(String, DailyUsage)]) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        for (organization_id, usage) in rows {
            transaction.execute(
                "INSERT INTO daily_usage (organization_id, day, calls, documents, identities, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (organization_id, day) DO UPDATE SET calls = ?3, documents = ?4, identities = ?5, updated_at_ms = ?6",
                params![
                    organization_id,
                    usage.day,
                    usage.calls as i64,
                    usage.documents as i64,
                    usage.identities as i64,
                    usage.updated_at_ms
                ],
            )?;
        }
        if let Some(latest) = rows.iter().map(|(_, usage)| usage.day).max() {
            transaction.execute("DELETE FROM daily_usage WHERE day < ?1", [latest - USAGE_DAYS_KEPT])?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn fault_rules(&self) -> Result<Vec<StoredFault>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT id, organization_id, spec, remaining, created_at_ms FROM fault_rules ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            Ok(StoredFault {
                id: row.get(0)?,
                organization_id: row.get(1)?,
                spec: row.get(2)?,
                remaining: row.get::<_, Option<i64>>(3)?.map(|r| r.max(0) as u64),
                created_at_ms: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a new rule; returns its id.
    fn add_fault_rule(
        &self,
        organization_id: &str,
        spec: &str,
        remaining: Option<u64>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let connection = self.connection();
        connection.execute(
            "INSERT INTO fault_rules (organization_id, spec, remaining, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![organization_id, spec, remaining.map(|r| r as i64), now_ms],
        )?;
        Ok(connection.last_insert_rowid())
    }

    fn set_fault_remaining(&self, id: i64, remaining: u64) -> Result<(), StoreError> {
        self.connection()
            .execute("UPDATE fault_rules SET remaining = ?1 WHERE id = ?2", params![remaining as i64, id])?;
        Ok(())
    }

    fn take_fault_firing(&self, id: i64) -> Result<Option<u64>, StoreError> {
        let left: Option<i64> = self
            .connection()
            .query_row(
                "UPDATE fault_rules SET remaining = remaining - 1 WHERE id = ?1 AND remaining > 0 RETURNING remaining",
                params![id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(left.map(|left| left as u64))
    }

    /// Removes a rule; false when the organization has no rule with that id.
    fn delete_fault_rule(&self, organization_id: &str, id: i64) -> Result<bool, StoreError> {
        let deleted = self
            .connection()
            .execute("DELETE FROM fault_rules WHERE id = ?1 AND organization_id = ?2", params![id, organization_id])?;
        Ok(deleted > 0)
    }
}
