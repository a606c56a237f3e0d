//! Which node owns each organization's index: applies the journal's records to it, publishes its snapshots and
//! answers the searches on it.
//!
//! On the embedded backend the one node owns every index ([`SingleNode`]). Nodes sharing a PostgreSQL database
//! hold a lease per organization ([`crate::postgres::PgOwnership`]): renewed while the node lives, taken over by
//! another node once it lapses, each change of owner numbered by an epoch. An owner publishes snapshots of the
//! index to the blob store; the next owner restores the latest one and replays the journal after it, which is
//! kept until every organization's snapshot holds it.

use std::collections::BTreeMap;

use crate::{Seq, StoreError};

/// Who answers for an organization's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Here,
    /// Another live node, reachable at `url`.
    Node { name: String, url: String },
    /// Nobody now: the last owner stopped and no node took the lease over yet.
    Nobody,
}

/// A published snapshot of an organization's index: everything through journal record `seq`, listed by the
/// blob `manifest` (empty: an empty index, as a new organization's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: Seq,
    pub manifest: String,
}

pub trait Ownership: Send + Sync {
    /// Whether several nodes may share the journal: then indexes are owned by lease, snapshotted and handed over.
    fn shared(&self) -> bool;
    /// This node's name.
    fn node(&self) -> &str;
    /// The organizations whose lease this node holds now, with each lease's epoch (the number of the change of
    /// owner that gave it). Only meaningful when [`Ownership::shared`].
    fn owned(&self) -> BTreeMap<String, u64>;
    /// Whether this node holds the organization's lease (always, on a single node).
    fn owns(&self, organization_id: &str) -> bool;
    /// Changes whenever the set of owned organizations (or an epoch) changes.
    fn generation(&self) -> u64;
    /// Who answers for the organization's index.
    fn owner(&self, organization_id: &str) -> Owner;
    /// The latest snapshot published of the organization's index.
    fn snapshot(&self, organization_id: &str) -> Result<Option<Snapshot>, StoreError>;
    /// Records `snapshot` as the organization's latest, if this node still holds the lease of `epoch` (a node
    /// whose lease was taken over publishes nothing): whether it was recorded.
    fn publish(&self, organization_id: &str, epoch: u64, snapshot: &Snapshot) -> Result<bool, StoreError>;
    /// How many leases this node holds beyond its fair share (organizations ÷ live nodes): a node that joined
    /// later takes those once they are given up ([`Ownership::release`]).
    fn surplus(&self) -> usize;
    /// Gives one lease up at once (after its last snapshot), if this node still holds it under `epoch`.
    fn release(&self, organization_id: &str, epoch: u64) -> Result<(), StoreError>;
    /// A new organization: this node takes its lease at once, with an empty index through journal record `seq`
    /// (read before the organization was made, so none of its records can come before it). Searches and pushes
    /// may follow the creation at once, on any node.
    fn claim_new(&self, organization_id: &str, seq: Seq) -> Result<(), StoreError>;
    /// Gives up every lease at once (a node stopping after its last snapshots): others take them over now, not
    /// when they lapse.
    fn resign(&self);
}

/// The embedded backend: one node owns everything and nothing is handed over.
pub struct SingleNode;

impl Ownership for SingleNode {
    fn shared(&self) -> bool {
        false
    }

    fn node(&self) -> &str {
        "local"
    }

    fn owned(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    fn owns(&self, _organization_id: &str) -> bool {
        true
    }

    fn generation(&self) -> u64 {
        0
    }

    fn owner(&self, _organization_id: &str) -> Owner {
        Owner::Here
    }

    fn snapshot(&self, _organization_id: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(None)
    }

    fn publish(&self, _organization_id: &str, _epoch: u64, _snapshot: &Snapshot) -> Result<bool, StoreError> {
        Ok(true)
    }

    fn surplus(&self) -> usize {
        0
    }

    fn release(&self, _organization_id: &str, _epoch: u64) -> Result<(), StoreError> {
        Ok(())
    }

    fn claim_new(&self, _organization_id: &str, _seq: Seq) -> Result<(), StoreError> {
        Ok(())
    }

    fn resign(&self) {}
}
