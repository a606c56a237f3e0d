//! What the applier tells the rest of the server: the quotas learn how many items each index holds, `/ready`
//! whether applying is stopped and why, `/metrics` how it goes.

use std::time::Duration;

use intake_store::Seq;

/// Told of the applier's progress. Every method has a default that ignores it.
pub trait Observer: Send + Sync {
    /// An index was opened or committed: it holds `live_items` items and every record through `committed_seq`.
    fn indexed(&self, _organization_id: &str, _live_items: u64, _committed_seq: Seq) {}

    /// The journal found at start is applied and committed: search reflects what was accepted before.
    fn replayed(&self) {}

    /// Applying stopped (an index commit or write failed): why, with what to do. Said again on each failure.
    fn failed(&self, _reason: &str) {}

    /// Commits succeed again after [`Observer::failed`].
    fn recovered(&self) {}

    /// A commit made `count` outcomes of this result (`COMPLETED`, `REJECTED`…) visible.
    fn outcomes_committed(&self, _result: &'static str, _count: u64) {}

    /// An operation accepted this many milliseconds ago became searchable.
    fn searchable_after(&self, _elapsed_ms: i64) {}

    /// A read of journal records was applied in this time.
    fn records_applied(&self, _elapsed: Duration) {}

    /// The journal's durable end, how far everything is applied and committed, and the syncs so far.
    fn positions(&self, _durable: Seq, _caught_up: Seq, _syncs: u64) {}

    /// Records through `applied_seq` are handed to the indexes (searchable at their next commit), and whether a
    /// batch is being applied. Told before each [`Observer::positions`].
    fn applied(&self, _applied_seq: Seq, _applying_batch: bool) {}
}
