//! Index leases on PostgreSQL: one row per organization in `index_owners` names the node that owns its index,
//! until when, under which epoch, and the latest snapshot the owner published.
//!
//! Every node renews its leases and its row in `cluster_nodes` every [`LeaseTimes::renew`]. A lease not renewed
//! within [`LeaseTimes::ttl`] lapses and any node may take it, bumping the epoch, with one conditional upsert:
//! PostgreSQL decides between nodes claiming together, no consensus of our own. A node takes leases up to its
//! fair share (organizations ÷ live nodes). A node that cannot renew in time (PostgreSQL unreachable) counts its
//! leases lost at the time they would lapse, before anyone else can take them, so two nodes never apply the same
//! organization's records at once; if nobody took one meanwhile, the next renewal gives it back, same epoch.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use super::Postgres;
use crate::StoreError;
use crate::ownership::{Owner, Ownership, Snapshot};

/// How long a lease lasts unrenewed, and how often it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTimes {
    pub ttl: Duration,
    pub renew: Duration,
}

impl Default for LeaseTimes {
    /// A node that dies is replaced within about five seconds; renewing every second survives a few slow calls.
    fn default() -> LeaseTimes {
        LeaseTimes { ttl: Duration::from_secs(5), renew: Duration::from_secs(1) }
    }
}

pub struct PgOwnership {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Postgres>,
    node: String,
    url: String,
    times: LeaseTimes,
    leases: RwLock<Leases>,
    generation: AtomicU64,
    /// Set once the node gave its leases up: it takes none any more.
    resigned: AtomicBool,
}

#[derive(Default)]
struct Leases {
    /// Held by this node: the epoch, and when it lapses unless renewed (counted from before the renewal was sent).
    owned: HashMap<String, (u64, Instant)>,
    /// Held by other nodes: their name and URL, and whether the lease is live.
    others: HashMap<String, (String, String, bool)>,
    /// This node's fair share at the last round: organizations ÷ live nodes, rounded up.
    share: usize,
    /// Since when this node has held more than its share, every round.
    surplus_since: Option<Instant>,
}

impl PgOwnership {
    /// Joins the cluster as `node`, reachable by the other nodes at `url`, and takes its first leases before
    /// returning (a lone node owns every index as soon as it starts).
    pub fn start(db: Arc<Postgres>, node: &str, url: &str, times: LeaseTimes) -> Result<PgOwnership, StoreError> {
        let inner = Arc::new(Inner {
            db: db.clone(),
            node: node.to_string(),
            url: url.to_string(),
            times,
            leases: RwLock::default(),
            generation: AtomicU64::new(1),
            resigned: AtomicBool::new(false),
        });
        db.run(async { inner.round(&inner.db.dedicated().await?).await })?;
        db.spawn(renew(Arc::downgrade(&inner)));
        db.spawn(expire(Arc::downgrade(&inner)));
        Ok(PgOwnership { inner })
    }
}

/// Renews and claims leases every [`LeaseTimes::renew`], as long as the node lives, on a connection of its own:
/// a request path that holds every pooled connection never delays a renewal.
async fn renew(inner: Weak<Inner>) {
    let mut failures = 0u32;
    let mut connection: Option<tokio_postgres::Client> = None;
    loop {
        let Some(every) = inner.upgrade().map(|inner| inner.times.renew) else { return };
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        if connection.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            connection = inner.db.dedicated().await.ok();
        }
        let renewed = match &connection {
            Some(client) => inner.round(client).await,
            None => Err(StoreError::Unavailable("PostgreSQL is unreachable".into())),
        };
        match renewed {
            Ok(()) => failures = 0,
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, "index leases could not be renewed; trying again");
                }
            }
        }
    }
}

/// Counts a lease lost as soon as it would lapse, whether or not a renewal is under way.
async fn expire(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(inner) = inner.upgrade() else { return };
        let now = Instant::now();
        let mut leases = inner.leases.write().expect("lease lock");
        let before = leases.owned.len();
        leases.owned.retain(|organization_id, (_, until)| {
            let live = *until > now;
            if !live {
                tracing::warn!(organization = organization_id, "an index lease lapsed unrenewed; its index stops here");
            }
            live
        });
        if leases.owned.len() != before {
            inner.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Inner {
    /// One round: says this node is alive, renews its leases, claims its share of the free ones, and reads who
    /// owns the rest.
    async fn round(&self, client: &tokio_postgres::Client) -> Result<(), StoreError> {
        if self.resigned.load(Ordering::Acquire) {
            return Ok(());
        }
        let sent = Instant::now();
        let ttl = self.times.ttl.as_millis() as i64;
        client
            .execute(
                "INSERT INTO cluster_nodes (node, url, seen_at) VALUES ($1, $2, now())
                 ON CONFLICT (node) DO UPDATE SET url = excluded.url, seen_at = excluded.seen_at",
                &[&self.node, &self.url],
            )
            .await?;
        let renewed = client
            .query(
                "UPDATE index_owners SET expires_at = now() + $2::bigint * interval '1 millisecond', url = $3 WHERE node = $1
                 RETURNING organization_id, epoch",
                &[&self.node, &ttl, &self.url],
            )
            .await?;
        let mut owned: HashMap<String, u64> =
            renewed.iter().map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64)).collect();
        let share: i64 = client
            .query_one(
                "SELECT CEIL((SELECT COUNT(*) FROM organizations)::numeric
                             / GREATEST(1, (SELECT COUNT(*) FROM cluster_nodes WHERE seen_at > now() - $1::bigint * interval '1 millisecond')))::bigint",
                &[&ttl],
            )
            .await?
            .get(0);
        let wanted = (share - owned.len() as i64).max(0);
        if wanted > 0 {
            let free = client
                .query(
                    "SELECT o.id FROM organizations o LEFT JOIN index_owners l ON l.organization_id = o.id
                     WHERE l.organization_id IS NULL OR l.expires_at < now() ORDER BY o.id LIMIT $1",
                    &[&wanted],
                )
                .await?;
            for row in free {
                let organization_id: String = row.get(0);
                let claimed = client
                    .query_opt(
                        "INSERT INTO index_owners (organization_id, node, url, epoch, expires_at)
                         VALUES ($1, $2, $3, 1, now() + $4::bigint * interval '1 millisecond')
                         ON CONFLICT (organization_id) DO UPDATE
                         SET node = excluded.node, url = excluded.url, epoch = index_owners.epoch + 1,
                             expires_at = excluded.expires_at
                         WHERE index_owners.expires_at < now()
                         RETURNING epoch",
                        &[&organization_id, &self.node, &self.url, &ttl],
                    )
                    .await?;
                if let Some(row) = claimed {
                    let epoch = row.get::<_, i64>(0) as u64;
                    tracing::info!(organization = organization_id, epoch, "took the index lease");
                    owned.insert(organization_id, epoch);
                }
            }
        }
        let others = client
            .query(
                "SELECT organization_id, node, url, expires_at > now() FROM index_owners WHERE node <> $1",
                &[&self.node],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
            .collect();
        self.install(owned, others, share.max(0) as usize, sent + self.times.ttl);
        Ok(())
    }

    /// Replaces what this node knows of the leases; a change of the owned set (or an epoch) is a new generation.
    fn install(
        &self,
        owned: HashMap<String, u64>,
        others: HashMap<String, (String, String, bool)>,
        share: usize,
        until: Instant,
    ) {
        // `until`: when the leases renewed by this round lapse (counted from the round's start).
        let mut leases = self.leases.write().expect("lease lock");
        if self.resigned.load(Ordering::Acquire) {
            return;
        }
        let mut owned: HashMap<String, (u64, Instant)> =
            owned.into_iter().map(|(org, epoch)| (org, (epoch, until))).collect();
        // A new organization's lease claimed while this round ran (it lasts past the round's): the round could
        // not see it.
        for (org, held) in &leases.owned {
            if held.1 > until && !owned.contains_key(org) {
                owned.insert(org.clone(), *held);
            }
        }
        let changed = owned.len() != leases.owned.len()
            || owned.iter().any(|(org, (epoch, _))| leases.owned.get(org).is_none_or(|(held, _)| held != epoch));
        leases.owned = owned;
        leases.others = others;
        leases.share = share;
        if leases.owned.len() <= share.max(1) {
            leases.surplus_since = None;
        } else if leases.surplus_since.is_none() {
            leases.surplus_since = Some(Instant::now());
        }
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Ownership for PgOwnership {
    fn shared(&self) -> bool {
        true
    }

    fn node(&self) -> &str {
        &self.inner.node
    }

    fn owned(&self) -> BTreeMap<String, u64> {
        let leases = self.inner.leases.read().expect("lease lock");
        leases.owned.iter().map(|(org, (epoch, _))| (org.clone(), *epoch)).collect()
    }

    fn owns(&self, organization_id: &str) -> bool {
        let leases = self.inner.leases.read().expect("lease lock");
        leases.owned.get(organization_id).is_some_and(|(_, until)| *until > Instant::now())
    }

    fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    fn owner(&self, organization_id: &str) -> Owner {
        if self.owns(organization_id) {
            return Owner::Here;
        }
        let leases = self.inner.leases.read().expect("lease lock");
        match leases.others.get(organization_id) {
            Some((name, url, true)) => Owner::Node { name: name.clone(), url: url.clone() },
            _ => Owner::Nobody,
        }
    }

    fn snapshot(&self, organization_id: &str) -> Result<Option<Snapshot>, StoreError> {
        let db = &self.inner.db;
        db.run(async {
            let row = db
                .client()
                .await?
                .query_opt(
                    "SELECT snapshot_seq, snapshot FROM index_owners WHERE organization_id = $1 AND snapshot IS NOT NULL",
                    &[&organization_id],
                )
                .await?;
            Ok(row.map(|row| Snapshot { seq: row.get::<_, i64>(0) as u64, manifest: row.get(1) }))
        })
    }

    fn publish(&self, organization_id: &str, epoch: u64, snapshot: &Snapshot) -> Result<bool, StoreError> {
        let db = &self.inner.db;
        db.run(async {
            let updated = db
                .client()
                .await?
                .execute(
                    "UPDATE index_owners SET snapshot_seq = $4, snapshot = $5
                     WHERE organization_id = $1 AND node = $2 AND epoch = $3 AND snapshot_seq <= $4",
                    &[&organization_id, &self.inner.node, &(epoch as i64), &(snapshot.seq as i64), &snapshot.manifest],
                )
                .await?;
            Ok(updated == 1)
        })
    }

    /// Only a surplus seen at every round for longer than a lease: a node that stopped a moment ago still looks
    /// alive for up to a lease's length (its heartbeat), and giving leases up to it would leave them to nobody.
    fn surplus(&self) -> usize {
        let leases = self.inner.leases.read().expect("lease lock");
        let settled = self.inner.times.ttl + self.inner.times.renew;
        match leases.surplus_since {
            Some(since) if since.elapsed() > settled => leases.owned.len().saturating_sub(leases.share.max(1)),
            _ => 0,
        }
    }

    fn release(&self, organization_id: &str, epoch: u64) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner.leases.write().expect("lease lock").owned.remove(organization_id);
        inner.generation.fetch_add(1, Ordering::AcqRel);
        inner.db.run(async {
            inner
                .db
                .client()
                .await?
                .execute(
                    // No node's name: this node's renewals leave it alone, any node may claim it.
                    "UPDATE index_owners SET node = '', expires_at = now() - interval '1 second'
                     WHERE organization_id = $1 AND node = $2 AND epoch = $3",
                    &[&organization_id, &inner.node, &(epoch as i64)],
                )
                .await?;
            tracing::info!(organization = organization_id, epoch, "gave an index lease up to a node with fewer");
            Ok(())
        })
    }

    fn claim_new(&self, organization_id: &str, seq: crate::Seq) -> Result<(), StoreError> {
        let inner = &self.inner;
        let sent = Instant::now();
        let claimed = inner.db.run(async {
            inner
                .db
                .client()
                .await?
                .query_opt(
                    "INSERT INTO index_owners (organization_id, node, url, epoch, expires_at, snapshot_seq, snapshot)
                     VALUES ($1, $2, $3, 1, now() + $4::bigint * interval '1 millisecond', $5, '')
                     ON CONFLICT (organization_id) DO NOTHING RETURNING epoch",
                    &[&organization_id, &inner.node, &inner.url, &(inner.times.ttl.as_millis() as i64), &(seq as i64)],
                )
                .await
                .map_err(StoreError::from)
        })?;
        if claimed.is_some() && !inner.resigned.load(Ordering::Acquire) {
            let mut leases = inner.leases.write().expect("lease lock");
            leases.owned.insert(organization_id.to_string(), (1, sent + inner.times.ttl));
            inner.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(organization = organization_id, "took the new organization's index lease");
        }
        Ok(())
    }

    fn resign(&self) {
        let inner = &self.inner;
        inner.resigned.store(true, Ordering::Release);
        inner.leases.write().expect("lease lock").owned.clear();
        inner.generation.fetch_add(1, Ordering::AcqRel);
        let resigned = inner.db.run(async {
            let client = inner.db.client().await?;
            client
                .execute(
                    "UPDATE index_owners SET expires_at = now() - interval '1 second' WHERE node = $1",
                    &[&inner.node],
                )
                .await?;
            client.execute("DELETE FROM cluster_nodes WHERE node = $1", &[&inner.node]).await?;
            Ok::<_, StoreError>(())
        });
        if let Err(error) = resigned {
            tracing::warn!(%error, "index leases could not be given up; they lapse by themselves");
        }
    }
}
