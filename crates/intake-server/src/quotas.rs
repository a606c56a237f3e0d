//! Each organization's limits, enforced exactly: the sustained rate with its burst and the daily Push API
//! calls when a call arrives ([`Quotas::admit_call`]); the daily items and the item limit when an operation is
//! about to be journaled ([`Quotas::reserve`]).
//!
//! Every decision is a check-and-count under the organization's lock, so however many clients push at once,
//! the number admitted never exceeds a limit. An operation's items are reserved before it is journaled and
//! released if the journal refuses it: nothing is counted that was not accepted, nothing accepted goes
//! uncounted. Daily usage is kept per UTC day (the clock is injected), saved to the catalog every second and
//! at shutdown, and read back at start.
//!
//! The item limit compares the items in the index (counted by the applier at each commit) plus the adds
//! accepted but not yet committed with `maximumItems`. An update of an existing item counts as an add until it
//! is committed, as Coveo counts it; deletes are always accepted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use intake_model::quota::{DAY_MS, LimitKey, Limits, seconds_to_midnight};
use intake_model::{ApiError, ErrorCode};
use intake_store::{Catalog, Clock, DailyUsage, Seq};

/// What an operation adds to the counts: `documents` against the daily item limit (adds and deletes), `adds`
/// against the item limit, `identities` against the daily security identity limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemCounts {
    pub adds: u64,
    pub documents: u64,
    pub identities: u64,
}

impl ItemCounts {
    /// `adds` new items among `documents` items.
    pub fn items(adds: u64, documents: u64) -> ItemCounts {
        ItemCounts { adds, documents, identities: 0 }
    }
}

/// A limit on what an operation carries per UTC day, and how its refusal is answered.
struct DailyKind {
    key: LimitKey,
    code: ErrorCode,
    what: &'static str,
}

const DAILY_ITEMS: DailyKind =
    DailyKind { key: LimitKey::DailyDocuments, code: ErrorCode::TooManyDocumentsDaily, what: "items" };
const DAILY_IDENTITIES: DailyKind =
    DailyKind { key: LimitKey::DailySecurityIdentities, code: ErrorCode::TooManyRequests, what: "security identities" };

pub struct Quotas {
    defaults: Limits,
    catalog: Arc<dyn Catalog>,
    clock: Arc<dyn Clock>,
    organizations: RwLock<HashMap<String, Arc<Mutex<OrgQuota>>>>,
}

/// One organization's limits and what it used of them.
struct OrgQuota {
    organization_id: String,
    limits: Limits,
    usage: DailyUsage,
    /// Usage changed since it was last saved.
    dirty: bool,
    /// Tokens of the rate limit's bucket, and when they were counted.
    tokens: f64,
    tokens_at_ms: i64,
    /// Calls admitted in the current second (for the limits report).
    second: i64,
    calls_this_second: u64,
    items: ItemAccount,
}

/// The item limit's account.
#[derive(Default)]
struct ItemAccount {
    /// Live items in the index at its last commit, and that commit's journal position.
    indexed: u64,
    indexed_at_ms: i64,
    committed_seq: Seq,
    /// Adds admitted and not yet journaled.
    reserved: u64,
    /// Adds journaled and not yet committed, by journal record.
    pending: BTreeMap<Seq, u64>,
    pending_total: u64,
}

impl ItemAccount {
    fn count(&self) -> u64 {
        self.indexed + self.pending_total + self.reserved
    }
}

/// Items admitted for an operation that is being journaled. Dropped without [`Reservation::journaled`] (the
/// journal refused the operation, or the handler failed), it gives its items back.
pub struct Reservation {
    quota: Option<Arc<Mutex<OrgQuota>>>,
    counts: ItemCounts,
}

impl Reservation {
    /// The operation is durable as journal record `seq`: its adds are pending until the index commits it.
    pub fn journaled(mut self, seq: Seq) {
        let Some(quota) = self.quota.take() else { return };
        let mut quota = quota.lock().expect("quota lock");
        let items = &mut quota.items;
        items.reserved -= self.counts.adds;
        if self.counts.adds > 0 && seq > items.committed_seq {
            *items.pending.entry(seq).or_default() += self.counts.adds;
            items.pending_total += self.counts.adds;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(quota) = self.quota.take() {
            let mut quota = quota.lock().expect("quota lock");
            quota.items.reserved -= self.counts.adds;
            quota.usage.documents = quota.usage.documents.saturating_sub(self.counts.documents);
            quota.usage.identities = quota.usage.identities.saturating_sub(self.counts.identities);
            quota.dirty = true;
        }
    }
}

/// Every limit of an organization (the section `content`, as Coveo's limits API groups them).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LimitsReport {
    /// By limit name.
    pub content: BTreeMap<String, LimitAnswer>,
}

/// One limit and its use.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitAnswer {
    /// Null when unlimited.
    pub limit: Option<u64>,
    pub actual_count: u64,
    /// Epoch milliseconds of the last change of `actualCount`.
    pub last_update: i64,
}

impl Quotas {
    pub fn new(defaults: Limits, catalog: Arc<dyn Catalog>, clock: Arc<dyn Clock>) -> Quotas {
        Quotas { defaults, catalog, clock, organizations: RwLock::default() }
    }

    /// The organization's account, read from the catalog on first use.
    fn organization(&self, organization_id: &str) -> Result<Arc<Mutex<OrgQuota>>, ApiError> {
        if let Some(quota) = self.organizations.read().expect("quotas lock").get(organization_id) {
            return Ok(quota.clone());
        }
        let storage = |e| crate::http::storage_failure("The limits could not be read", e);
        let now = self.clock.now_ms();
        let limits = self.defaults.with(&self.catalog.limit_overrides(organization_id).map_err(storage)?);
        let day = now.div_euclid(DAY_MS);
        let usage = self.catalog.daily_usage(organization_id, day).map_err(storage)?;
        let quota = OrgQuota {
            organization_id: organization_id.to_string(),
            limits,
            usage: usage.unwrap_or(DailyUsage { day, updated_at_ms: now, ..DailyUsage::default() }),
            dirty: false,
            tokens: limits.get(LimitKey::Burst).or(limits.get(LimitKey::RequestsPerSecond)).unwrap_or(0) as f64,
            tokens_at_ms: now,
            second: 0,
            calls_this_second: 0,
            items: ItemAccount::default(),
        };
        let mut organizations = self.organizations.write().expect("quotas lock");
        Ok(organizations.entry(organization_id.to_string()).or_insert_with(|| Arc::new(Mutex::new(quota))).clone())
    }

    /// Admits one Push API call, or refuses it with 429 TOO_MANY_REQUESTS: over the sustained rate and its
    /// burst (`Retry-After`: until a call would be admitted), or over the daily calls (until midnight UTC).
    pub fn admit_call(&self, organization_id: &str) -> Result<(), ApiError> {
        let quota = self.organization(organization_id)?;
        let now = self.clock.now_ms();
        let mut quota = quota.lock().expect("quota lock");
        quota.roll_over(now);
        let rate = quota.rate_wait(now);
        if let Some(wait_ms) = rate {
            return Err(quota.over_rate(wait_ms));
        }
        if let Some(limit) = quota.limits.get(LimitKey::DailyCalls)
            && quota.usage.calls >= limit
        {
            return Err(quota.over_daily_calls(limit, now));
        }
        if quota.limits.get(LimitKey::RequestsPerSecond).is_some() {
            quota.tokens -= 1.0;
        }
        quota.usage.calls += 1;
        quota.touch(now);
        let second = now.div_euclid(1000);
        if quota.second != second {
            quota.second = second;
            quota.calls_this_second = 0;
        }
        quota.calls_this_second += 1;
        Ok(())
    }

    /// Admits an operation's items against the daily item limit (429 TOO_MANY_DOCUMENTS_DAILY), its security
    /// identities against theirs (429 TOO_MANY_REQUESTS) and, for adds, the item limit (412
    /// DOCUMENT_LIMIT_EXCEEDED), and holds them until the operation is journaled.
    pub fn reserve(&self, organization_id: &str, counts: ItemCounts) -> Result<Reservation, ApiError> {
        if counts == ItemCounts::default() {
            return Ok(Reservation { quota: None, counts });
        }
        let handle = self.organization(organization_id)?;
        let now = self.clock.now_ms();
        let mut quota = handle.lock().expect("quota lock");
        quota.roll_over(now);
        let daily = [
            (&DAILY_ITEMS, quota.usage.documents, counts.documents),
            (&DAILY_IDENTITIES, quota.usage.identities, counts.identities),
        ];
        for (kind, used, more) in daily {
            if let Some(limit) = quota.limits.get(kind.key)
                && more > 0
                && used + more > limit
            {
                return Err(quota.over_daily(kind, used, more, limit, now));
            }
        }
        if counts.adds > 0
            && let Some(limit) = quota.limits.get(LimitKey::MaximumItems)
            && quota.items.count() + counts.adds > limit
        {
            return Err(quota.over_items(limit, counts.adds));
        }
        quota.usage.documents += counts.documents;
        quota.usage.identities += counts.identities;
        quota.items.reserved += counts.adds;
        quota.touch(now);
        drop(quota);
        Ok(Reservation { quota: Some(handle), counts })
    }

    /// The applier committed an organization's index: `live` items, through journal record `committed_seq`.
    pub fn indexed(&self, organization_id: &str, live: u64, committed_seq: Seq) {
        let Ok(quota) = self.organization(organization_id) else { return };
        let now = self.clock.now_ms();
        let mut quota = quota.lock().expect("quota lock");
        let items = &mut quota.items;
        items.indexed = live;
        items.indexed_at_ms = now;
        items.committed_seq = items.committed_seq.max(committed_seq);
        let still_pending = items.pending.split_off(&(items.committed_seq + 1));
        items.pending = still_pending;
        items.pending_total = items.pending.values().sum();
    }

    /// Sets (or, with `None`, removes) an organization's own value for a limit; the server's default applies
    /// without one.
    pub fn set_limit(&self, organization_id: &str, key: LimitKey, value: Option<u64>) -> Result<(), ApiError> {
        let now = self.clock.now_ms();
        self.catalog
            .set_limit(organization_id, key, value, now)
            .map_err(|e| crate::http::storage_failure("The limit could not be saved", e))?;
        let quota = self.organization(organization_id)?;
        let mut quota = quota.lock().expect("quota lock");
        let effective = value.or(self.defaults.get(key));
        quota.limits.set(key, effective);
        if matches!(key, LimitKey::Burst | LimitKey::RequestsPerSecond) {
            // A new rate starts with a full bucket.
            quota.tokens = quota.burst() as f64;
            quota.tokens_at_ms = now;
        }
        Ok(())
    }

    /// The limits report of spec §5.3: per section, per key, `{limit, actualCount, lastUpdate}` (`limit` is null
    /// when unlimited).
    pub fn report(&self, organization_id: &str) -> Result<LimitsReport, ApiError> {
        let quota = self.organization(organization_id)?;
        let now = self.clock.now_ms();
        let mut quota = quota.lock().expect("quota lock");
        quota.roll_over(now);
        let mut content = BTreeMap::new();
        for key in LimitKey::ALL {
            let (actual_count, last_update) = quota.usage_of(key, now);
            content.insert(
                key.name().to_string(),
                LimitAnswer { limit: quota.limits.get(key), actual_count, last_update },
            );
        }
        Ok(LimitsReport { content })
    }

    /// Saves the usage that changed since the last save.
    pub fn save(&self) {
        let handles: Vec<_> = self.organizations.read().expect("quotas lock").values().cloned().collect();
        let mut rows = Vec::new();
        for handle in handles {
            let mut quota = handle.lock().expect("quota lock");
            if quota.dirty {
                quota.dirty = false;
                rows.push((quota.organization_id.clone(), quota.usage));
            }
        }
        if rows.is_empty() {
            return;
        }
        if let Err(error) = self.catalog.save_daily_usage(&rows) {
            tracing::error!(%error, "daily usage could not be saved; retrying in a second");
            for (organization_id, _) in rows {
                if let Some(handle) = self.organizations.read().expect("quotas lock").get(&organization_id) {
                    handle.lock().expect("quota lock").dirty = true;
                }
            }
        }
    }

    /// Forgets a deleted organization's account.
    pub fn forget(&self, organization_id: &str) {
        self.organizations.write().expect("quotas lock").remove(organization_id);
    }
}

impl OrgQuota {
    /// A new UTC day starts from zero.
    fn roll_over(&mut self, now: i64) {
        let day = now.div_euclid(DAY_MS);
        if day != self.usage.day {
            self.usage = DailyUsage { day, updated_at_ms: now, ..DailyUsage::default() };
            self.dirty = true;
        }
    }

    fn touch(&mut self, now: i64) {
        self.usage.updated_at_ms = now;
        self.dirty = true;
    }

    fn burst(&self) -> u64 {
        let rate = self.limits.get(LimitKey::RequestsPerSecond).unwrap_or(0);
        self.limits.get(LimitKey::Burst).unwrap_or(rate).max(1)
    }

    /// Refills the bucket; `Some(ms)` until a token is there when the bucket is empty.
    fn rate_wait(&mut self, now: i64) -> Option<i64> {
        let rate = self.limits.get(LimitKey::RequestsPerSecond)? as f64;
        let elapsed_ms = (now - self.tokens_at_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed_ms * rate / 1000.0).min(self.burst() as f64);
        self.tokens_at_ms = now;
        if self.tokens >= 1.0 {
            return None;
        }
        if rate <= 0.0 {
            return Some(i64::MAX / 2);
        }
        Some(((1.0 - self.tokens) * 1000.0 / rate).ceil() as i64)
    }

    fn over_rate(&self, wait_ms: i64) -> ApiError {
        let seconds = ((wait_ms + 999) / 1000).max(1) as u64;
        ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "Organization '{}' is over its Push API rate: pushApiRequestsPerSecond is {} with a pushApiBurst of {}. \
                 Retry in {seconds} s (Retry-After).",
                self.organization_id,
                self.limits.get(LimitKey::RequestsPerSecond).unwrap_or(0),
                self.burst()
            ),
        )
        .with_retry_after(seconds)
    }

    fn over_daily_calls(&self, limit: u64, now: i64) -> ApiError {
        let seconds = seconds_to_midnight(now);
        ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "Organization '{}' made {} Push API calls today (UTC): its pushApiMaximumDailyCalls limit is {limit}. \
                 The count starts again at midnight UTC, in {seconds} s (Retry-After).",
                self.organization_id, self.usage.calls
            ),
        )
        .with_retry_after(seconds)
    }

    fn over_daily(&self, kind: &DailyKind, used: u64, more: u64, limit: u64, now: i64) -> ApiError {
        let seconds = seconds_to_midnight(now);
        ApiError::new(
            kind.code,
            format!(
                "Organization '{}' has pushed {used} {what} today (UTC); {more} more would go over its {key} of \
                 {limit}. The count starts again at midnight UTC, in {seconds} s (Retry-After).",
                self.organization_id,
                what = kind.what,
                key = kind.key.name()
            ),
        )
        .with_retry_after(seconds)
    }

    fn over_items(&self, limit: u64, adds: u64) -> ApiError {
        let items = &self.items;
        ApiError::new(
            ErrorCode::DocumentLimitExceeded,
            format!(
                "Organization '{}' has {} items (in the index: {}, adds pending: {}); {adds} more would go over its \
                 maximumItems limit of {limit}. Delete items (deletes are always accepted) or raise the limit.",
                self.organization_id,
                items.count(),
                items.indexed,
                items.pending_total + items.reserved
            ),
        )
    }

    /// What is used of a limit now, and when that last changed.
    fn usage_of(&mut self, key: LimitKey, now: i64) -> (u64, i64) {
        let usage = &self.usage;
        match key {
            LimitKey::MaximumItems => (self.items.count(), self.items.indexed_at_ms),
            LimitKey::DailyCalls => (usage.calls, usage.updated_at_ms),
            LimitKey::DailyDocuments => (usage.documents, usage.updated_at_ms),
            LimitKey::DailySecurityIdentities => (usage.identities, usage.updated_at_ms),
            LimitKey::RequestsPerSecond => {
                let calls = if self.second == now.div_euclid(1000) { self.calls_this_second } else { 0 };
                (calls, usage.updated_at_ms)
            }
            LimitKey::Burst => {
                self.rate_wait(now);
                let used = if self.limits.get(LimitKey::RequestsPerSecond).is_some() {
                    (self.burst() as f64 - self.tokens).max(0.0).floor() as u64
                } else {
                    0
                };
                (used, self.tokens_at_ms)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use intake_store::ManualClock;

    use super::*;

    fn quotas(limits: &[(LimitKey, u64)]) -> (Quotas, ManualClock, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(intake_store::SqliteCatalog::open(&dir.path().join("catalog.sqlite")).unwrap());
        let clock = ManualClock::new(20_000 * DAY_MS + 1_000);
        let mut defaults = Limits::default();
        for (key, value) in limits {
            defaults.set(*key, Some(*value));
        }
        (Quotas::new(defaults, catalog, Arc::new(clock.clone())), clock, dir)
    }

    /// The security identity endpoints are not there yet; the limit they will reserve against already holds.
    #[test]
    fn security_identities_are_counted_per_day_and_given_back_when_not_journaled() {
        let (quotas, clock, _dir) = quotas(&[(LimitKey::DailySecurityIdentities, 10)]);
        let identities = |n| ItemCounts { identities: n, ..ItemCounts::default() };
        quotas.reserve("acme", identities(6)).unwrap().journaled(1);
        let refused = quotas.reserve("acme", identities(5)).err().unwrap();
        assert_eq!((refused.code, refused.retry_after), (ErrorCode::TooManyRequests, Some(86_399)));
        assert!(refused.message.contains("has pushed 6 security identities today (UTC); 5 more would go over"));
        drop(quotas.reserve("acme", identities(4)).unwrap()); // the journal refused it: given back
        quotas.reserve("acme", identities(4)).unwrap().journaled(2);
        assert!(quotas.reserve("acme", identities(1)).is_err());
        let report = quotas.report("acme").unwrap();
        assert_eq!(report.content["pushApiMaximumDailySecurityIdentities"].actual_count, 10);
        clock.advance_ms(DAY_MS);
        quotas.reserve("acme", identities(10)).unwrap().journaled(3);
    }

    #[test]
    fn pending_adds_are_released_by_the_commit_that_contains_them() {
        let (quotas, _clock, _dir) = quotas(&[(LimitKey::MaximumItems, 3)]);
        for seq in 1..=3 {
            quotas.reserve("acme", ItemCounts::items(1, 1)).unwrap().journaled(seq);
        }
        assert_eq!(
            quotas.reserve("acme", ItemCounts::items(1, 1)).err().unwrap().code,
            ErrorCode::DocumentLimitExceeded
        );
        // Records 1 and 2 committed, one of them replacing an item: 1 live item, 1 pending add.
        quotas.indexed("acme", 1, 2);
        quotas.reserve("acme", ItemCounts::items(1, 1)).unwrap().journaled(4);
        assert!(quotas.reserve("acme", ItemCounts::items(1, 1)).is_err());
        // An add whose record the index already committed is not counted twice.
        quotas.indexed("acme", 2, 5);
        quotas.reserve("acme", ItemCounts::items(1, 1)).unwrap().journaled(5);
        let report = quotas.report("acme").unwrap();
        assert_eq!(report.content["maximumItems"].actual_count, 2);
    }
}
