//! The quota counters of a cluster in PostgreSQL: each admission is one conditional update (or one short
//! transaction holding the organization's row), so PostgreSQL decides between nodes admitting at once.

use std::sync::Arc;

use intake_model::quota::{LimitKey, Limits};
use tokio_postgres::Row;

use super::Postgres;
use crate::counters::{CallTaken, ClusterItems, RateBucket, SharedCounters, UsageChange};
use crate::{DailyUsage, Seq, StoreError};

/// A reservation not journaled after this long belongs to a node that stopped before it could say: it no longer
/// counts. (A node's own are dropped as soon as it starts again.)
const ABANDONED_RESERVATION_MS: i64 = 10 * 60 * 1000;

/// Daily usage older than this many days is dropped when usage is added.
const USAGE_DAYS_KEPT: i64 = 31;

pub struct PgCounters {
    db: Arc<Postgres>,
    node: String,
}

impl PgCounters {
    /// The counters of node `node`: reservations it made and never journaled (it stopped meanwhile) are dropped.
    pub fn open(db: Arc<Postgres>, node: &str) -> Result<PgCounters, StoreError> {
        let counters = PgCounters { db, node: node.to_string() };
        counters.db.with_client(async |client| {
            client.execute("DELETE FROM item_reservations WHERE node = $1 AND seq IS NULL", &[&counters.node]).await?;
            Ok(())
        })?;
        Ok(counters)
    }

    /// Runs `work` in a transaction, committed when it admits (`Ok`) and rolled back when it refuses (`Err`).
    fn deciding<T, R>(
        &self,
        work: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<Result<T, R>, StoreError>,
    ) -> Result<Result<T, R>, StoreError> {
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            let decision = work(&transaction).await?;
            match decision {
                Ok(_) => transaction.commit().await?,
                Err(_) => transaction.rollback().await?,
            }
            Ok(decision)
        })
    }
}

fn count(row: &Row, column: usize) -> u64 {
    row.get::<_, i64>(column).max(0) as u64
}

fn as_i64(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

fn usage(day: i64, row: Option<&Row>) -> DailyUsage {
    match row {
        Some(row) => DailyUsage {
            day,
            calls: count(row, 0),
            documents: count(row, 1),
            identities: count(row, 2),
            updated_at_ms: row.get(3),
        },
        None => DailyUsage { day, ..DailyUsage::default() },
    }
}

const USAGE_COLUMNS: &str = "calls, documents, identities, updated_at_ms";

async fn read_usage(
    client: &tokio_postgres::Client,
    organization_id: &str,
    day: i64,
) -> Result<DailyUsage, StoreError> {
    let row = client
        .query_opt(
            &format!("SELECT {USAGE_COLUMNS} FROM daily_usage WHERE organization_id = $1 AND day = $2"),
            &[&organization_id, &day],
        )
        .await?;
    Ok(usage(day, row.as_ref()))
}

/// The bucket's tokens refilled to `$2` (now) at `$3` tokens a second, up to `$4`.
const REFILLED: &str = "LEAST($4::float8, b.tokens + GREATEST($2 - b.at_ms, 0) * $3::float8 / 1000.0)";

impl SharedCounters for PgCounters {
    fn take_call(
        &self,
        organization_id: &str,
        day: i64,
        now_ms: i64,
        rate: Option<RateBucket>,
        daily_calls: Option<u64>,
    ) -> Result<CallTaken, StoreError> {
        let decision = self.deciding(async |tx| {
            if let Some(bucket) = rate {
                let (rate, burst) = (bucket.rate as f64, bucket.burst as f64);
                let token = tx
                    .query_opt(
                        &format!(
                            "INSERT INTO rate_buckets AS b (organization_id, tokens, at_ms) VALUES ($1, $4::float8 - 1, $2)
                             ON CONFLICT (organization_id) DO UPDATE
                             SET tokens = {REFILLED} - 1, at_ms = GREATEST(b.at_ms, $2)
                             WHERE {REFILLED} >= 1
                             RETURNING tokens"
                        ),
                        &[&organization_id, &now_ms, &rate, &burst],
                    )
                    .await?;
                if token.is_none() {
                    let row = tx
                        .query_one(
                            &format!("SELECT {REFILLED} FROM rate_buckets AS b WHERE organization_id = $1"),
                            &[&organization_id, &now_ms, &rate, &burst],
                        )
                        .await?;
                    return Ok(Err(CallTaken::OverRate { tokens: row.get(0) }));
                }
            }
            let Some(limit) = daily_calls else { return Ok(Ok(CallTaken::Admitted { calls: None })) };
            let calls = tx
                .query_opt(
                    "INSERT INTO daily_usage AS u (organization_id, day, calls, documents, identities, updated_at_ms)
                     SELECT $1::text, $2::bigint, 1, 0, 0, $3::bigint WHERE $4::bigint >= 1
                     ON CONFLICT (organization_id, day) DO UPDATE
                     SET calls = u.calls + 1, updated_at_ms = GREATEST(u.updated_at_ms, $3)
                     WHERE u.calls + 1 <= $4
                     RETURNING calls",
                    &[&organization_id, &day, &now_ms, &as_i64(limit)],
                )
                .await?;
            Ok(match calls {
                Some(row) => Ok(CallTaken::Admitted { calls: Some(count(&row, 0)) }),
                None => {
                    Err(CallTaken::OverDailyCalls { calls: read_usage(tx.client(), organization_id, day).await?.calls })
                }
            })
        })?;
        Ok(decision.unwrap_or_else(|refused| refused))
    }

    fn take_daily(
        &self,
        organization_id: &str,
        day: i64,
        now_ms: i64,
        documents: u64,
        identities: u64,
        (documents_limit, identities_limit): (Option<u64>, Option<u64>),
    ) -> Result<Result<DailyUsage, DailyUsage>, StoreError> {
        let (documents, identities) = (as_i64(documents), as_i64(identities));
        let limits = (documents_limit.map(as_i64), identities_limit.map(as_i64));
        self.db.with_client(async |client| {
            // A count of zero is never refused, even when the day's usage is already over a lowered limit.
            let row = client
                .query_opt(
                    &format!(
                        "INSERT INTO daily_usage AS u (organization_id, day, calls, documents, identities, updated_at_ms)
                         SELECT $1::text, $2::bigint, 0, $3::bigint, $4::bigint, $5::bigint
                         WHERE ($3 = 0 OR $6::bigint IS NULL OR $3 <= $6) AND ($4 = 0 OR $7::bigint IS NULL OR $4 <= $7)
                         ON CONFLICT (organization_id, day) DO UPDATE
                         SET documents = u.documents + $3, identities = u.identities + $4,
                             updated_at_ms = GREATEST(u.updated_at_ms, $5)
                         WHERE ($3 = 0 OR $6::bigint IS NULL OR u.documents + $3 <= $6)
                           AND ($4 = 0 OR $7::bigint IS NULL OR u.identities + $4 <= $7)
                         RETURNING {USAGE_COLUMNS}"
                    ),
                    &[&organization_id, &day, &documents, &identities, &now_ms, &limits.0, &limits.1],
                )
                .await?;
            Ok(match row {
                Some(row) => Ok(usage(day, Some(&row))),
                None => Err(read_usage(client, organization_id, day).await?),
            })
        })
    }

    fn add_usage(&self, changes: &[(String, UsageChange)]) -> Result<(), StoreError> {
        self.db.run(async {
            let mut client = self.db.client().await?;
            let transaction = client.transaction().await?;
            let add = transaction
                .prepare(
                    "INSERT INTO daily_usage AS u (organization_id, day, calls, documents, identities, updated_at_ms)
                     VALUES ($1, $2, GREATEST($3::bigint, 0), GREATEST($4::bigint, 0), GREATEST($5::bigint, 0), $6)
                     ON CONFLICT (organization_id, day) DO UPDATE
                     SET calls = GREATEST(u.calls + $3, 0), documents = GREATEST(u.documents + $4, 0),
                         identities = GREATEST(u.identities + $5, 0), updated_at_ms = GREATEST(u.updated_at_ms, $6)",
                )
                .await?;
            for (organization_id, change) in changes {
                let values = [change.calls, change.documents, change.identities];
                transaction
                    .execute(&add, &[organization_id, &change.day, &values[0], &values[1], &values[2], &change.at_ms])
                    .await?;
            }
            if let Some(latest) = changes.iter().map(|(_, change)| change.day).max() {
                transaction.execute("DELETE FROM daily_usage WHERE day < $1", &[&(latest - USAGE_DAYS_KEPT)]).await?;
            }
            transaction.commit().await?;
            Ok(())
        })
    }

    fn usage_on(&self, day: i64) -> Result<Vec<(String, DailyUsage)>, StoreError> {
        let rows = self.db.with_client(async |client| {
            Ok(client
                .query(&format!("SELECT {USAGE_COLUMNS}, organization_id FROM daily_usage WHERE day = $1"), &[&day])
                .await?)
        })?;
        Ok(rows.iter().map(|row| (row.get(4), usage(day, Some(row)))).collect())
    }

    fn rate_tokens(&self, organization_id: &str, now_ms: i64, bucket: RateBucket) -> Result<f64, StoreError> {
        let row = self.db.with_client(async |client| {
            Ok(client
                .query_opt("SELECT tokens, at_ms FROM rate_buckets WHERE organization_id = $1", &[&organization_id])
                .await?)
        })?;
        Ok(match row {
            Some(row) => bucket.refilled(row.get(0), row.get(1), now_ms),
            None => bucket.burst as f64,
        })
    }

    fn reset_rate(&self, organization_id: &str) -> Result<(), StoreError> {
        self.db.with_client(async |client| {
            client.execute("DELETE FROM rate_buckets WHERE organization_id = $1", &[&organization_id]).await?;
            Ok(())
        })
    }

    fn reserve_items(
        &self,
        organization_id: &str,
        adds: u64,
        limit: u64,
        now_ms: i64,
    ) -> Result<Result<i64, ClusterItems>, StoreError> {
        self.deciding(async |tx| {
            // The account's row lock orders the nodes reserving for one organization.
            tx.execute(
                "INSERT INTO item_accounts (organization_id, indexed, committed_seq, indexed_at_ms)
                 VALUES ($1, 0, 0, $2) ON CONFLICT (organization_id) DO NOTHING",
                &[&organization_id, &now_ms],
            )
            .await?;
            tx.execute("SELECT 1 FROM item_accounts WHERE organization_id = $1 FOR UPDATE", &[&organization_id])
                .await?;
            let row = tx
                .query_one(&format!("{ACCOUNT} WHERE a.organization_id = $1 GROUP BY 1, 2, 3, 4"), &[&organization_id])
                .await?;
            let (_, account) = cluster_items(&row);
            if account.count() + adds > limit {
                return Ok(Err(account));
            }
            let row = tx
                .query_one(
                    "INSERT INTO item_reservations (organization_id, node, adds, made_at_ms) VALUES ($1, $2, $3, $4)
                     RETURNING id",
                    &[&organization_id, &self.node, &as_i64(adds), &now_ms],
                )
                .await?;
            Ok(Ok(row.get(0)))
        })
    }

    fn items_journaled(&self, reservation: i64, seq: Seq) -> Result<(), StoreError> {
        self.db.with_client(async |client| {
            client
                .execute("UPDATE item_reservations SET seq = $2 WHERE id = $1", &[&reservation, &(seq as i64)])
                .await?;
            Ok(())
        })
    }

    fn release_items(&self, reservation: i64) -> Result<(), StoreError> {
        self.db.with_client(async |client| {
            client.execute("DELETE FROM item_reservations WHERE id = $1", &[&reservation]).await?;
            Ok(())
        })
    }

    fn indexed(&self, organization_id: &str, live: u64, committed_seq: Seq, now_ms: i64) -> Result<(), StoreError> {
        let (live, committed_seq) = (as_i64(live), committed_seq as i64);
        self.db.with_client(async |client| {
            // A late report of an earlier commit (an owner that lost the lease) does not undo a later one.
            client
                .execute(
                    "INSERT INTO item_accounts AS a (organization_id, indexed, committed_seq, indexed_at_ms)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (organization_id) DO UPDATE
                     SET indexed = $2, committed_seq = $3, indexed_at_ms = $4 WHERE a.committed_seq <= $3",
                    &[&organization_id, &live, &committed_seq, &now_ms],
                )
                .await?;
            client
                .execute(
                    "DELETE FROM item_reservations WHERE organization_id = $1
                     AND (seq <= $2 OR (seq IS NULL AND made_at_ms < $3))",
                    &[&organization_id, &committed_seq, &(now_ms - ABANDONED_RESERVATION_MS)],
                )
                .await?;
            Ok(())
        })
    }

    fn item_accounts(&self, organization_id: Option<&str>) -> Result<Vec<(String, ClusterItems)>, StoreError> {
        let rows = self.db.with_client(async |client| {
            let query = format!("{ACCOUNT} WHERE $1::text IS NULL OR a.organization_id = $1 GROUP BY 1, 2, 3, 4");
            Ok(client.query(&query, &[&organization_id]).await?)
        })?;
        Ok(rows.iter().map(cluster_items).collect())
    }

    fn limit_overrides(&self) -> Result<Vec<(String, Limits)>, StoreError> {
        let rows = self.db.with_client(async |client| {
            Ok(client.query("SELECT organization_id, limit_key, value FROM org_limits ORDER BY 1", &[]).await?)
        })?;
        let mut overrides: Vec<(String, Limits)> = Vec::new();
        for row in rows {
            let organization_id: String = row.get(0);
            let Some(key) = LimitKey::parse(row.get(1)) else { continue };
            if overrides.last().is_none_or(|(last, _)| *last != organization_id) {
                overrides.push((organization_id, Limits::default()));
            }
            let limits = &mut overrides.last_mut().expect("just pushed").1;
            limits.set(key, Some(count(&row, 2)));
        }
        Ok(overrides)
    }
}

/// An organization's item account with the adds reserved and not yet committed.
const ACCOUNT: &str = "SELECT a.organization_id, a.indexed, a.committed_seq, a.indexed_at_ms,
    COALESCE(SUM(r.adds) FILTER (WHERE r.seq IS NULL OR r.seq > a.committed_seq), 0)::bigint
    FROM item_accounts a LEFT JOIN item_reservations r ON r.organization_id = a.organization_id";

fn cluster_items(row: &Row) -> (String, ClusterItems) {
    let account = ClusterItems {
        indexed: count(row, 1),
        committed_seq: count(row, 2),
        indexed_at_ms: row.get(3),
        pending: count(row, 4),
    };
    (row.get(0), account)
}
