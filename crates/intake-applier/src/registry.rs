//! What the applier publishes for the readers: each organization's searchable index, and what its last
//! commit holds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use intake_index::schema::Fields;
use intake_index::security::PermissionTables;
use intake_store::{CommittedThrough, Seq};
use tantivy::{Index, IndexReader};

/// What search needs of an organization's index: cheap clones of the index and its reader.
#[derive(Clone)]
pub struct SearchHandle {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    /// The compiled permissions of the index's segments.
    pub permissions: Arc<PermissionTables>,
}

/// The searchable indexes, by organization. The applier owns the writers and registers each index here.
///
/// An index this node took over from another (restored from a snapshot, or kept from an earlier lease) holds less
/// than the cluster acknowledged until it has applied the journal again: it is marked catching up, through the
/// journal position it must commit, and searches are answered 503 until then rather than with an older state.
#[derive(Default)]
pub struct IndexRegistry {
    handles: RwLock<HashMap<String, SearchHandle>>,
    catching_up: RwLock<HashMap<String, Seq>>,
}

impl IndexRegistry {
    pub fn register(&self, organization_id: &str, handle: SearchHandle) {
        self.handles.write().expect("index registry lock").insert(organization_id.to_string(), handle);
    }

    pub fn unregister(&self, organization_id: &str) {
        self.handles.write().expect("index registry lock").remove(organization_id);
    }

    pub fn get(&self, organization_id: &str) -> Option<SearchHandle> {
        self.handles.read().expect("index registry lock").get(organization_id).cloned()
    }

    /// The organization's index answers searches only once it committed through journal record `seq`.
    pub fn catch_up(&self, organization_id: &str, seq: Seq) {
        self.catching_up.write().expect("index registry lock").insert(organization_id.to_string(), seq);
    }

    /// Every index committed what was applied through `seq`: those that had that far to catch up have.
    pub fn caught_up_through(&self, seq: Seq) {
        let mut catching_up = self.catching_up.write().expect("index registry lock");
        if !catching_up.is_empty() {
            catching_up.retain(|_, through| *through > seq);
        }
    }

    /// The organization's index holds everything acknowledged (a new organization's, empty).
    pub fn caught_up(&self, organization_id: &str) {
        self.catching_up.write().expect("index registry lock").remove(organization_id);
    }

    /// The journal position the organization's index is catching up to, if it is.
    pub fn catching_up(&self, organization_id: &str) -> Option<Seq> {
        self.catching_up.read().expect("index registry lock").get(organization_id).copied()
    }

    /// The index is no longer this node's: it neither answers nor catches up here.
    pub fn forget(&self, organization_id: &str) {
        self.unregister(organization_id);
        self.caught_up(organization_id);
    }
}

/// Per organization, the state its index's last commit recorded.
#[derive(Default)]
pub struct CommitMarks {
    marks: RwLock<HashMap<String, CommittedThrough>>,
}

impl CommitMarks {
    pub fn set(&self, organization_id: &str, committed: CommittedThrough) {
        self.marks.write().expect("commit marks lock").insert(organization_id.to_string(), committed);
    }

    /// Runs `publish` (which makes a commit searchable and says what it holds) while the marks are locked, so a
    /// Logs API query made after a search that saw the commit finds its marks, and none finds them before.
    pub fn publish<E>(
        &self,
        organization_id: &str,
        publish: impl FnOnce() -> Result<CommittedThrough, E>,
    ) -> Result<(), E> {
        let mut marks = self.marks.write().expect("commit marks lock");
        marks.insert(organization_id.to_string(), publish()?);
        Ok(())
    }

    pub fn remove(&self, organization_id: &str) {
        self.marks.write().expect("commit marks lock").remove(organization_id);
    }

    /// What the organization's index committed; nothing when it has no index yet.
    pub fn get(&self, organization_id: &str) -> CommittedThrough {
        self.marks.read().expect("commit marks lock").get(organization_id).cloned().unwrap_or_default()
    }
}
