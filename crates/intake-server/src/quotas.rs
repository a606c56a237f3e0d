//! Each organization's limits, enforced exactly: the sustained rate with its burst and the daily Push API
//! calls when a call arrives ([`Quotas::admit_call`]); the daily items and the item limit when an operation is
//! about to be journaled ([`Quotas::reserve`]).
//!
//! Every decision is a check-and-count in one step, so however many clients push at once, the number admitted
//! never exceeds a limit. On one node that step is taken under the organization's lock; with nodes sharing a
//! database, every limit that is set is taken from the counters they share ([`SharedCounters`]: one
//! conditional update in PostgreSQL), so it holds exactly across the nodes, and what no limit bounds is counted
//! by each node and added to the shared usage every second (for the limits report). A limit set on one node
//! applies on the others within half a second ([`Quotas::sync`]).
//!
//! An operation's items are reserved before it is journaled and released if the journal refuses it: nothing is
//! counted that was not accepted, nothing accepted goes uncounted. Daily usage is kept per UTC day (the clock is
//! injected), saved to the catalog every second and at shutdown, and read back at start.
//!
//! The item limit compares the items in the index (counted by the applier at each commit) plus the adds
//! accepted but not yet committed with `maximumItems`. An update of an existing item counts as an add until it
//! is committed, as Coveo counts it; deletes are always accepted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use intake_model::quota::{DAY_MS, LimitKey, Limits, seconds_to_midnight};
use intake_model::{ApiError, ErrorCode};
use intake_store::{
    CallTaken, Catalog, Clock, ClusterItems, DailyUsage, RateBucket, Seq, SharedCounters, StoreError, UsageChange,
};

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
    /// With nodes sharing the database: where every limit that is set is counted.
    shared: Option<Arc<dyn SharedCounters>>,
    /// Held while limits are read from the shared database and applied, and while one is set: a read made just
    /// before a limit was set here must not undo it.
    limits_changing: Mutex<()>,
}

/// One organization's limits and what it used of them.
struct OrgQuota {
    organization_id: String,
    limits: Limits,
    /// Today's usage: this node's own count, or with shared counters the cluster's as last read plus what this
    /// node counted since.
    usage: DailyUsage,
    /// Usage changed since it was last saved.
    dirty: bool,
    /// With shared counters: what this node counted (of what no limit bounds) and has not added to them yet.
    unsaved: Vec<UsageChange>,
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
    /// With shared counters: the adds reserved against the limit on every node and not yet committed, as last read.
    cluster_pending: u64,
}

impl ItemAccount {
    fn count(&self) -> u64 {
        self.indexed + self.pending_total + self.reserved + self.cluster_pending
    }

    /// The index committed through `committed_seq` with `live` items: what it committed is no longer pending.
    fn committed(&mut self, live: u64, committed_seq: Seq, at_ms: i64) {
        if committed_seq < self.committed_seq {
            return;
        }
        self.indexed = live;
        self.indexed_at_ms = at_ms;
        self.committed_seq = committed_seq;
        self.pending = self.pending.split_off(&(committed_seq + 1));
        self.pending_total = self.pending.values().sum();
    }

    /// The cluster's account, as read from the shared counters.
    fn adopt(&mut self, cluster: &ClusterItems) {
        self.committed(cluster.indexed, cluster.committed_seq, cluster.indexed_at_ms);
        self.cluster_pending = cluster.pending;
    }
}

/// Items admitted for an operation that is being journaled. Dropped without [`Reservation::journaled`] (the
/// journal refused the operation, or the handler failed), it gives its items back.
pub struct Reservation {
    quota: Option<Arc<Mutex<OrgQuota>>>,
    /// What was counted on this node.
    here: ItemCounts,
    /// Whether what is counted here is added to shared counters later.
    shared: bool,
    /// What was taken from the shared counters.
    taken: Option<SharedTake>,
}

impl Reservation {
    /// The operation is durable as journal record `seq`: its adds are pending until the index commits it.
    pub fn journaled(mut self, seq: Seq) {
        if let Some(taken) = self.taken.take() {
            taken.journaled(seq);
        }
        let Some(quota) = self.quota.take() else { return };
        let mut quota = quota.lock().expect("quota lock");
        let items = &mut quota.items;
        items.reserved -= self.here.adds;
        if self.here.adds > 0 && seq > items.committed_seq {
            *items.pending.entry(seq).or_default() += self.here.adds;
            items.pending_total += self.here.adds;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(quota) = self.quota.take() {
            let mut quota = quota.lock().expect("quota lock");
            quota.items.reserved -= self.here.adds;
            let now = quota.usage.updated_at_ms;
            let given_back = UsageChange {
                documents: -(self.here.documents as i64),
                identities: -(self.here.identities as i64),
                ..UsageChange::default()
            };
            quota.count_here(given_back, self.shared, now);
        }
    }
}

/// What an operation took from the shared counters: given back unless journaled.
struct SharedTake {
    counters: Arc<dyn SharedCounters>,
    organization_id: String,
    day: i64,
    /// Counted in the shared usage of `day`.
    documents: u64,
    identities: u64,
    /// The reservation against the item limit.
    items: Option<i64>,
}

impl SharedTake {
    /// What of `counts` is left to count on this node.
    fn left_here(&self, counts: ItemCounts) -> ItemCounts {
        ItemCounts {
            adds: if self.items.is_some() { 0 } else { counts.adds },
            documents: counts.documents - self.documents,
            identities: counts.identities - self.identities,
        }
    }

    fn journaled(mut self, seq: Seq) {
        (self.documents, self.identities) = (0, 0);
        if let Some(reservation) = self.items.take()
            && let Err(error) = self.counters.items_journaled(reservation, seq)
        {
            // It counts as reserved until a node no longer running it is noticed: an over-count, never an under-count.
            tracing::warn!(%error, organization = self.organization_id, "an item reservation could not be marked journaled");
        }
    }
}

impl Drop for SharedTake {
    fn drop(&mut self) {
        if self.documents + self.identities > 0 {
            let change = UsageChange {
                day: self.day,
                documents: -(self.documents as i64),
                identities: -(self.identities as i64),
                ..UsageChange::default()
            };
            if let Err(error) = self.counters.add_usage(&[(self.organization_id.clone(), change)]) {
                tracing::warn!(%error, organization = self.organization_id, "daily usage given back could not be saved");
            }
        }
        if let Some(reservation) = self.items.take()
            && let Err(error) = self.counters.release_items(reservation)
        {
            tracing::warn!(%error, organization = self.organization_id, "an item reservation could not be released");
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

fn storage(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| crate::http::storage_failure(what, e)
}

impl Quotas {
    pub fn new(
        defaults: Limits,
        catalog: Arc<dyn Catalog>,
        clock: Arc<dyn Clock>,
        shared: Option<Arc<dyn SharedCounters>>,
    ) -> Quotas {
        Quotas { defaults, catalog, clock, organizations: RwLock::default(), shared, limits_changing: Mutex::default() }
    }

    /// The organization's account, read from the catalog on first use.
    fn organization(&self, organization_id: &str) -> Result<Arc<Mutex<OrgQuota>>, ApiError> {
        if let Some(quota) = self.organizations.read().expect("quotas lock").get(organization_id) {
            return Ok(quota.clone());
        }
        let read = storage("The limits could not be read");
        let now = self.clock.now_ms();
        let limits = self.defaults.with(&self.catalog.limit_overrides(organization_id).map_err(&read)?);
        let day = now.div_euclid(DAY_MS);
        let usage = self.catalog.daily_usage(organization_id, day).map_err(&read)?;
        let quota = OrgQuota {
            organization_id: organization_id.to_string(),
            limits,
            usage: usage.unwrap_or(DailyUsage { day, updated_at_ms: now, ..DailyUsage::default() }),
            dirty: false,
            unsaved: Vec::new(),
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
        let handle = self.organization(organization_id)?;
        let now = self.clock.now_ms();
        let (limits, day) = handle.lock().expect("quota lock").today(now);
        let counted_shared = match &self.shared {
            Some(counters) if limits.limits_calls() => take_call(counters.as_ref(), &handle, limits, day, now)?,
            _ => false,
        };
        let mut quota = handle.lock().expect("quota lock");
        quota.roll_over(now);
        if self.shared.is_none() {
            quota.admit_here(now)?;
        }
        if !counted_shared {
            quota.count_here(UsageChange { calls: 1, ..UsageChange::default() }, self.shared.is_some(), now);
        }
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
        let shared = self.shared.is_some();
        if counts == ItemCounts::default() {
            return Ok(Reservation { quota: None, here: counts, shared, taken: None });
        }
        let handle = self.organization(organization_id)?;
        let now = self.clock.now_ms();
        let taken = match &self.shared {
            Some(counters) => Some(take_items(counters, &handle, counts, now)?),
            None => None,
        };
        let here = taken.as_ref().map_or(counts, |taken| taken.left_here(counts));
        let mut quota = handle.lock().expect("quota lock");
        quota.roll_over(now);
        if let Some(refusal) = quota.daily_refusal(here.documents, here.identities, now) {
            return Err(refusal);
        }
        if let Some(refusal) = quota.item_refusal(here.adds) {
            return Err(refusal);
        }
        let change = UsageChange {
            documents: here.documents as i64,
            identities: here.identities as i64,
            ..UsageChange::default()
        };
        quota.count_here(change, shared, now);
        quota.items.reserved += here.adds;
        drop(quota);
        Ok(Reservation { quota: Some(handle), here, shared, taken })
    }

    /// The applier committed an organization's index: `live` items, through journal record `committed_seq`.
    pub fn indexed(&self, organization_id: &str, live: u64, committed_seq: Seq) {
        let Ok(quota) = self.organization(organization_id) else { return };
        let now = self.clock.now_ms();
        quota.lock().expect("quota lock").items.committed(live, committed_seq, now);
        if let Some(counters) = &self.shared
            && let Err(error) = counters.indexed(organization_id, live, committed_seq, now)
        {
            tracing::warn!(%error, organization = organization_id, "the item count could not be shared; next commit");
        }
    }

    /// Sets (or, with `None`, removes) an organization's own value for a limit; the server's default applies
    /// without one.
    pub fn set_limit(&self, organization_id: &str, key: LimitKey, value: Option<u64>) -> Result<(), ApiError> {
        let now = self.clock.now_ms();
        let _changing = self.limits_changing.lock().expect("limits lock");
        self.catalog.set_limit(organization_id, key, value, now).map_err(storage("The limit could not be saved"))?;
        let rate_changed = matches!(key, LimitKey::Burst | LimitKey::RequestsPerSecond);
        if let Some(counters) = &self.shared
            && rate_changed
        {
            counters.reset_rate(organization_id).map_err(storage("The rate limit could not be reset"))?;
        }
        let quota = self.organization(organization_id)?;
        let mut quota = quota.lock().expect("quota lock");
        let effective = value.or(self.defaults.get(key));
        quota.limits.set(key, effective);
        if rate_changed {
            // A new rate starts with a full bucket.
            quota.tokens = quota.burst() as f64;
            quota.tokens_at_ms = now;
        }
        Ok(())
    }

    /// The limits report of spec §5.3: per section, per key, `{limit, actualCount, lastUpdate}` (`limit` is null
    /// when unlimited). With shared counters, read from them now: the usage of every node.
    pub fn report(&self, organization_id: &str) -> Result<LimitsReport, ApiError> {
        let handle = self.organization(organization_id)?;
        let now = self.clock.now_ms();
        if let Some(counters) = &self.shared {
            self.refresh(counters.as_ref(), &handle, now).map_err(storage("The limits could not be read"))?;
        }
        let mut quota = handle.lock().expect("quota lock");
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

    /// Reads one organization's limits, usage, item account and rate bucket from the shared counters.
    fn refresh(&self, counters: &dyn SharedCounters, handle: &Mutex<OrgQuota>, now: i64) -> Result<(), StoreError> {
        let _changing = self.limits_changing.lock().expect("limits lock");
        let (organization_id, day) = {
            let mut quota = handle.lock().expect("quota lock");
            quota.roll_over(now);
            (quota.organization_id.clone(), quota.usage.day)
        };
        let limits = self.defaults.with(&self.catalog.limit_overrides(&organization_id)?);
        let usage = self.catalog.daily_usage(&organization_id, day)?;
        let items = counters.item_accounts(Some(&organization_id))?;
        let mut quota = handle.lock().expect("quota lock");
        quota.limits = limits;
        quota.adopt(usage.unwrap_or(DailyUsage { day, ..DailyUsage::default() }));
        if let Some((_, items)) = items.first() {
            quota.items.adopt(items);
        }
        if let Some(bucket) = quota.bucket() {
            drop(quota);
            let tokens = counters.rate_tokens(&organization_id, now, bucket)?;
            let mut quota = handle.lock().expect("quota lock");
            (quota.tokens, quota.tokens_at_ms) = (tokens, now);
        }
        Ok(())
    }

    /// With shared counters: takes in the limits set on other nodes, and every node's usage and item account.
    pub fn sync(&self) {
        let Some(counters) = &self.shared else { return };
        let _changing = self.limits_changing.lock().expect("limits lock");
        let now = self.clock.now_ms();
        let day = now.div_euclid(DAY_MS);
        let read = (counters.limit_overrides(), counters.usage_on(day), counters.item_accounts(None));
        let (Ok(overrides), Ok(usage), Ok(items)) = read else {
            return tracing::debug!("the shared limits could not be read; next time");
        };
        let (overrides, usage, items): (HashMap<_, _>, HashMap<_, _>, HashMap<_, _>) =
            (overrides.into_iter().collect(), usage.into_iter().collect(), items.into_iter().collect());
        let handles: Vec<_> = self.organizations.read().expect("quotas lock").values().cloned().collect();
        for handle in handles {
            let mut quota = handle.lock().expect("quota lock");
            quota.roll_over(now);
            let organization_id = quota.organization_id.clone();
            quota.limits = self.defaults.with(&overrides.get(&organization_id).copied().unwrap_or_default());
            quota.adopt(usage.get(&organization_id).copied().unwrap_or(DailyUsage { day, ..DailyUsage::default() }));
            if let Some(items) = items.get(&organization_id) {
                quota.items.adopt(items);
            }
        }
    }

    /// Saves the usage that changed since the last save: to the catalog, or with shared counters, what this node
    /// counted added to theirs.
    pub fn save(&self) {
        let handles: Vec<_> = self.organizations.read().expect("quotas lock").values().cloned().collect();
        match &self.shared {
            Some(counters) => self.add_to_shared(counters.as_ref(), &handles),
            None => self.save_to_catalog(&handles),
        }
    }

    fn save_to_catalog(&self, handles: &[Arc<Mutex<OrgQuota>>]) {
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

    fn add_to_shared(&self, counters: &dyn SharedCounters, handles: &[Arc<Mutex<OrgQuota>>]) {
        let mut changes = Vec::new();
        for handle in handles {
            let mut quota = handle.lock().expect("quota lock");
            let organization_id = quota.organization_id.clone();
            changes.extend(quota.unsaved.drain(..).map(|change| (organization_id.clone(), change)));
        }
        if changes.is_empty() {
            return;
        }
        if let Err(error) = counters.add_usage(&changes) {
            tracing::error!(%error, "daily usage could not be added to the shared counters; retrying in a second");
            for (organization_id, change) in changes {
                if let Some(handle) = self.organizations.read().expect("quotas lock").get(&organization_id) {
                    handle.lock().expect("quota lock").unsaved_change(change);
                }
            }
        }
    }

    /// Forgets a deleted organization's account.
    pub fn forget(&self, organization_id: &str) {
        self.organizations.write().expect("quotas lock").remove(organization_id);
    }
}

/// Takes one call from the shared counters (the organization's rate and daily calls are limited); whether the
/// day's calls were counted there.
fn take_call(
    counters: &dyn SharedCounters,
    handle: &Mutex<OrgQuota>,
    limits: Limits,
    day: i64,
    now: i64,
) -> Result<bool, ApiError> {
    let organization_id = handle.lock().expect("quota lock").organization_id.clone();
    let rate = limits.get(LimitKey::RequestsPerSecond).map(|rate| RateBucket { rate, burst: burst(&limits) });
    let daily_calls = limits.get(LimitKey::DailyCalls);
    let taken = counters
        .take_call(&organization_id, day, now, rate, daily_calls)
        .map_err(storage("The organization's rate and daily calls could not be counted"))?;
    let mut quota = handle.lock().expect("quota lock");
    match taken {
        CallTaken::Admitted { calls } => {
            if let Some(calls) = calls {
                quota.adopt_calls(calls, now);
            }
            Ok(calls.is_some())
        }
        CallTaken::OverRate { tokens } => {
            let rate = rate.map_or(0, |bucket| bucket.rate);
            let wait_ms = if rate == 0 { i64::MAX / 2 } else { ((1.0 - tokens) * 1000.0 / rate as f64).ceil() as i64 };
            Err(quota.over_rate(wait_ms))
        }
        CallTaken::OverDailyCalls { calls } => {
            quota.adopt_calls(calls, now);
            Err(quota.over_daily_calls(daily_calls.unwrap_or(calls), now))
        }
    }
}

/// Takes what limits bound of an operation's counts from the shared counters: its documents and identities
/// against the daily limits, its adds against the item limit.
fn take_items(
    counters: &Arc<dyn SharedCounters>,
    handle: &Mutex<OrgQuota>,
    counts: ItemCounts,
    now: i64,
) -> Result<SharedTake, ApiError> {
    let (limits, day, organization_id) = {
        let mut quota = handle.lock().expect("quota lock");
        let (limits, day) = quota.today(now);
        (limits, day, quota.organization_id.clone())
    };
    let bounded = |key, count| if limits.get(key).is_some() { count } else { 0 };
    let documents = bounded(LimitKey::DailyDocuments, counts.documents);
    let identities = bounded(LimitKey::DailySecurityIdentities, counts.identities);
    let mut taken =
        SharedTake { counters: counters.clone(), organization_id, day, documents: 0, identities: 0, items: None };
    if documents + identities > 0 {
        let daily_limits = (limits.get(LimitKey::DailyDocuments), limits.get(LimitKey::DailySecurityIdentities));
        let decision = counters
            .take_daily(&taken.organization_id, day, now, documents, identities, daily_limits)
            .map_err(storage("The daily limits could not be counted"))?;
        let mut quota = handle.lock().expect("quota lock");
        match decision {
            Ok(usage) => {
                quota.adopt(usage);
                (taken.documents, taken.identities) = (documents, identities);
            }
            Err(usage) => {
                quota.adopt(usage);
                let (used_documents, used_identities) = (usage.documents, usage.identities);
                return Err(quota.shared_daily_refusal(
                    (used_documents, documents),
                    (used_identities, identities),
                    now,
                ));
            }
        }
    }
    if counts.adds > 0
        && let Some(limit) = limits.get(LimitKey::MaximumItems)
    {
        let decision = counters
            .reserve_items(&taken.organization_id, counts.adds, limit, now)
            .map_err(storage("The item limit could not be counted"))?;
        match decision {
            Ok(reservation) => taken.items = Some(reservation),
            Err(account) => {
                let mut quota = handle.lock().expect("quota lock");
                quota.items.adopt(&account);
                return Err(quota.over_items(limit, counts.adds, account.indexed, account.pending));
            }
        }
    }
    Ok(taken)
}

fn burst(limits: &Limits) -> u64 {
    let rate = limits.get(LimitKey::RequestsPerSecond).unwrap_or(0);
    limits.get(LimitKey::Burst).unwrap_or(rate).max(1)
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

    /// The limits in force and today's number.
    fn today(&mut self, now: i64) -> (Limits, i64) {
        self.roll_over(now);
        (self.limits, self.usage.day)
    }

    fn touch(&mut self, now: i64) {
        self.usage.updated_at_ms = now;
        self.dirty = true;
    }

    /// Counts `change` on this node; with shared counters, keeps it to add to theirs.
    fn count_here(&mut self, change: UsageChange, shared: bool, now: i64) {
        if change.is_empty() {
            return;
        }
        let usage = &mut self.usage;
        usage.calls = usage.calls.saturating_add_signed(change.calls);
        usage.documents = usage.documents.saturating_add_signed(change.documents);
        usage.identities = usage.identities.saturating_add_signed(change.identities);
        self.touch(now);
        if shared {
            self.unsaved_change(UsageChange { day: self.usage.day, at_ms: now, ..change });
        }
    }

    /// Keeps a change to add to the shared counters.
    fn unsaved_change(&mut self, change: UsageChange) {
        match self.unsaved.iter_mut().find(|unsaved| unsaved.day == change.day) {
            Some(unsaved) => {
                unsaved.calls += change.calls;
                unsaved.documents += change.documents;
                unsaved.identities += change.identities;
                unsaved.at_ms = unsaved.at_ms.max(change.at_ms);
            }
            None => self.unsaved.push(change),
        }
    }

    /// Today's usage as the shared counters hold it, plus what this node counted and has not added to them.
    fn adopt(&mut self, cluster: DailyUsage) {
        if cluster.day != self.usage.day {
            return;
        }
        let mut usage = cluster;
        if let Some(unsaved) = self.unsaved.iter().find(|unsaved| unsaved.day == cluster.day) {
            usage.calls = usage.calls.saturating_add_signed(unsaved.calls);
            usage.documents = usage.documents.saturating_add_signed(unsaved.documents);
            usage.identities = usage.identities.saturating_add_signed(unsaved.identities);
            usage.updated_at_ms = usage.updated_at_ms.max(unsaved.at_ms);
        }
        self.usage = usage;
    }

    /// The day's calls as the shared counters counted them.
    fn adopt_calls(&mut self, calls: u64, now: i64) {
        let day = self.usage.day;
        let unsaved = self.unsaved.iter().find(|unsaved| unsaved.day == day).map_or(0, |unsaved| unsaved.calls);
        self.usage.calls = calls.saturating_add_signed(unsaved);
        self.usage.updated_at_ms = self.usage.updated_at_ms.max(now);
    }

    /// Checks the rate and the daily calls on this node and takes a token.
    fn admit_here(&mut self, now: i64) -> Result<(), ApiError> {
        if let Some(wait_ms) = self.rate_wait(now) {
            return Err(self.over_rate(wait_ms));
        }
        if let Some(limit) = self.limits.get(LimitKey::DailyCalls)
            && self.usage.calls >= limit
        {
            return Err(self.over_daily_calls(limit, now));
        }
        if self.limits.get(LimitKey::RequestsPerSecond).is_some() {
            self.tokens -= 1.0;
        }
        Ok(())
    }

    /// Why `documents` items and `identities` security identities more go over a daily limit, if they do.
    fn daily_refusal(&self, documents: u64, identities: u64, now: i64) -> Option<ApiError> {
        let daily =
            [(&DAILY_ITEMS, self.usage.documents, documents), (&DAILY_IDENTITIES, self.usage.identities, identities)];
        daily.into_iter().find_map(|(kind, used, more)| {
            let limit = self.limits.get(kind.key)?;
            (more > 0 && used + more > limit).then(|| self.over_daily(kind, used, more, limit, now))
        })
    }

    /// The refusal of the shared counters, which counted `(used, more)` documents and identities.
    fn shared_daily_refusal(&self, documents: (u64, u64), identities: (u64, u64), now: i64) -> ApiError {
        let daily = [(&DAILY_ITEMS, documents), (&DAILY_IDENTITIES, identities)];
        let refused = daily.into_iter().find_map(|(kind, (used, more))| {
            let limit = self.limits.get(kind.key)?;
            (more > 0 && used + more > limit).then(|| self.over_daily(kind, used, more, limit, now))
        });
        // Only when a limit was raised between the count and this answer.
        refused.unwrap_or_else(|| {
            ApiError::new(
                ErrorCode::TooManyRequests,
                "The organization's daily limits changed during this call: retry it.",
            )
            .with_retry_after(1)
        })
    }

    /// Why `adds` more items go over the item limit, if they do.
    fn item_refusal(&self, adds: u64) -> Option<ApiError> {
        let limit = self.limits.get(LimitKey::MaximumItems)?;
        let items = &self.items;
        (adds > 0 && items.count() + adds > limit)
            .then(|| self.over_items(limit, adds, items.indexed, items.count() - items.indexed))
    }

    fn bucket(&self) -> Option<RateBucket> {
        Some(RateBucket { rate: self.limits.get(LimitKey::RequestsPerSecond)?, burst: self.burst() })
    }

    fn burst(&self) -> u64 {
        burst(&self.limits)
    }

    /// Refills the bucket; `Some(ms)` until a token is there when the bucket is empty.
    fn rate_wait(&mut self, now: i64) -> Option<i64> {
        let bucket = self.bucket()?;
        self.tokens = bucket.refilled(self.tokens, self.tokens_at_ms, now);
        self.tokens_at_ms = now;
        if self.tokens >= 1.0 {
            return None;
        }
        if bucket.rate == 0 {
            return Some(i64::MAX / 2);
        }
        Some(((1.0 - self.tokens) * 1000.0 / bucket.rate as f64).ceil() as i64)
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

    /// The refusal of `adds` more items where `indexed` are in the index and `pending` adds are not yet committed.
    fn over_items(&self, limit: u64, adds: u64, indexed: u64, pending: u64) -> ApiError {
        ApiError::new(
            ErrorCode::DocumentLimitExceeded,
            format!(
                "Organization '{}' has {} items (in the index: {}, adds pending: {}); {adds} more would go over its \
                 maximumItems limit of {limit}. Delete items (deletes are always accepted) or raise the limit.",
                self.organization_id,
                indexed + pending,
                indexed,
                pending
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
        (Quotas::new(defaults, catalog, Arc::new(clock.clone()), None), clock, dir)
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
