//! What the server's limits and fault rules keep across restarts: each organization's limit overrides, its
//! usage of the daily limits (one record per organization and UTC day), and its fault rules.

use intake_model::quota::{LimitKey, Limits};

use crate::StoreError;

/// An organization's usage of its daily limits on one UTC day (`day` = epoch milliseconds / 86,400,000).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyUsage {
    pub day: i64,
    pub calls: u64,
    pub documents: u64,
    pub identities: u64,
    pub updated_at_ms: i64,
}

/// A fault rule as stored: its author's JSON, and how many firings a counted rule has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFault {
    pub id: i64,
    pub organization_id: String,
    pub spec: String,
    pub remaining: Option<u64>,
    pub created_at_ms: i64,
}

/// Limits, daily usage and fault rules.
pub trait LimitStore: Send + Sync {
    /// The organization's overrides of the configured limits (unset keys are `None`).
    fn limit_overrides(&self, organization_id: &str) -> Result<Limits, StoreError>;
    /// Overrides one limit (`None` removes the override).
    fn set_limit(
        &self,
        organization_id: &str,
        key: LimitKey,
        value: Option<u64>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The organization's usage on `day`, if any was saved.
    fn daily_usage(&self, organization_id: &str, day: i64) -> Result<Option<DailyUsage>, StoreError>;
    /// Saves usage (by organization), all at once; usage of long past days may be dropped.
    fn save_daily_usage(&self, rows: &[(String, DailyUsage)]) -> Result<(), StoreError>;
    /// Every fault rule, oldest first.
    fn fault_rules(&self) -> Result<Vec<StoredFault>, StoreError>;
    /// Adds a rule; its id.
    fn add_fault_rule(
        &self,
        organization_id: &str,
        spec: &str,
        remaining: Option<u64>,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    fn set_fault_remaining(&self, id: i64, remaining: u64) -> Result<(), StoreError>;
    /// Counts one firing of a counted rule, atomically for every node sharing the store: what it leaves, or
    /// `None` when the rule is spent or gone (another node took its last firing).
    fn take_fault_firing(&self, id: i64) -> Result<Option<u64>, StoreError>;
    /// Removes a rule; false when the organization has no rule with that id.
    fn delete_fault_rule(&self, organization_id: &str, id: i64) -> Result<bool, StoreError>;
}
