//! Quota counters that the nodes of a cluster share, so that each limit holds exactly across them: a call or an
//! item is admitted by one conditional update in the shared database, never by a node's own count. A node
//! counts on its own only what no limit bounds (to report it), and adds that to the shared usage every second.
//!
//! The embedded backend has one node, whose own counts are exact: it has no shared counters.

use intake_model::quota::Limits;

use crate::{DailyUsage, Seq, StoreError};

/// A rate limit's token bucket: `rate` tokens a second, up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBucket {
    pub rate: u64,
    pub burst: u64,
}

impl RateBucket {
    /// The tokens a bucket holds at `now_ms` that held `tokens` at `at_ms`.
    pub fn refilled(&self, tokens: f64, at_ms: i64, now_ms: i64) -> f64 {
        let elapsed_ms = (now_ms - at_ms).max(0) as f64;
        (tokens + elapsed_ms * self.rate as f64 / 1000.0).min(self.burst as f64)
    }
}

/// What taking one call found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallTaken {
    /// Admitted; with a daily call limit, the day's calls counted now.
    Admitted { calls: Option<u64> },
    /// The bucket holds `tokens`, less than one.
    OverRate { tokens: f64 },
    /// The day's calls are spent: `calls` were made.
    OverDailyCalls { calls: u64 },
}

/// A change to an organization's usage on one UTC day, added to what the nodes counted before (negative when
/// items admitted are given back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageChange {
    pub day: i64,
    pub calls: i64,
    pub documents: i64,
    pub identities: i64,
    pub at_ms: i64,
}

impl UsageChange {
    pub fn is_empty(&self) -> bool {
        self.calls == 0 && self.documents == 0 && self.identities == 0
    }
}

/// The item limit's account of an organization as the cluster keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterItems {
    /// Live items in the index at the owner's last commit, that commit's journal position, and when it was.
    pub indexed: u64,
    pub committed_seq: Seq,
    pub indexed_at_ms: i64,
    /// Adds admitted against the limit (on any node) that the index has not committed yet.
    pub pending: u64,
}

impl ClusterItems {
    pub fn count(&self) -> u64 {
        self.indexed + self.pending
    }
}

/// Counters shared by the nodes of a cluster: each `take_*`/`reserve_*` checks and counts in one step, so
/// however many nodes admit at once, no limit is exceeded and none refuses what the limit allows.
pub trait SharedCounters: Send + Sync {
    /// Takes one call of the organization: a token of the rate bucket (with `rate`) and one of the day's calls
    /// (with `daily_calls`), both or neither.
    fn take_call(
        &self,
        organization_id: &str,
        day: i64,
        now_ms: i64,
        rate: Option<RateBucket>,
        daily_calls: Option<u64>,
    ) -> Result<CallTaken, StoreError>;
    /// Adds an operation's `documents` and `identities` to the day's usage unless one goes over its limit (`None`:
    /// unlimited): `Ok` with the usage after, or `Err` with the usage that refused them.
    #[allow(clippy::too_many_arguments)]
    fn take_daily(
        &self,
        organization_id: &str,
        day: i64,
        now_ms: i64,
        documents: u64,
        identities: u64,
        limits: (Option<u64>, Option<u64>),
    ) -> Result<Result<DailyUsage, DailyUsage>, StoreError>;
    /// Adds changes to the usage of their days (never below zero), all at once.
    fn add_usage(&self, changes: &[(String, UsageChange)]) -> Result<(), StoreError>;
    /// Every organization's usage on `day`.
    fn usage_on(&self, day: i64) -> Result<Vec<(String, DailyUsage)>, StoreError>;
    /// The tokens in the organization's rate bucket at `now_ms` (a full bucket when none was taken).
    fn rate_tokens(&self, organization_id: &str, now_ms: i64, bucket: RateBucket) -> Result<f64, StoreError>;
    /// Fills the organization's rate bucket again (its rate or burst changed).
    fn reset_rate(&self, organization_id: &str) -> Result<(), StoreError>;
    /// Reserves `adds` items against the item limit: `Ok` with the reservation's number, or `Err` with the
    /// account that refused them. The reservation counts until the index commits its journal record.
    fn reserve_items(
        &self,
        organization_id: &str,
        adds: u64,
        limit: u64,
        now_ms: i64,
    ) -> Result<Result<i64, ClusterItems>, StoreError>;
    /// The reserved items were journaled as record `seq`: they count until the index commits it.
    fn items_journaled(&self, reservation: i64, seq: Seq) -> Result<(), StoreError>;
    /// The reserved items were not journaled: they no longer count.
    fn release_items(&self, reservation: i64) -> Result<(), StoreError>;
    /// The owner of the organization's index committed it: `live` items, through journal record `committed_seq`.
    fn indexed(&self, organization_id: &str, live: u64, committed_seq: Seq, now_ms: i64) -> Result<(), StoreError>;
    /// Every organization's item account, or only `organization_id`'s.
    fn item_accounts(&self, organization_id: Option<&str>) -> Result<Vec<(String, ClusterItems)>, StoreError>;
    /// Every organization's overrides of the configured limits (organizations without any are left out).
    fn limit_overrides(&self) -> Result<Vec<(String, Limits)>, StoreError>;
}
