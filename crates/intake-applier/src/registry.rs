//! What the applier publishes for the readers: each organization's searchable index, and what its last
//! commit holds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use intake_index::schema::Fields;
use intake_index::security::PermissionTables;
use intake_store::CommittedThrough;
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
#[derive(Default)]
pub struct IndexRegistry {
    handles: RwLock<HashMap<String, SearchHandle>>,
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

    pub fn remove(&self, organization_id: &str) {
        self.marks.write().expect("commit marks lock").remove(organization_id);
    }

    /// What the organization's index committed; nothing when it has no index yet.
    pub fn get(&self, organization_id: &str) -> CommittedThrough {
        self.marks.read().expect("commit marks lock").get(organization_id).cloned().unwrap_or_default()
    }
}
