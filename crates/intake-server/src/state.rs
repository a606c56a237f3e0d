//! The state every handler shares, and the lookups most of them start with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use intake_index::schema::Fields;
use intake_model::{ApiError, ErrorCode};
use intake_store::{Catalog, Clock, CommittedThrough, ItemLog, Journal, LocalBlobs, Organization, Source};
use tantivy::{Index, IndexReader};

use crate::auth::AuthSettings;
use crate::faults::Faults;
use crate::http::BodyBudget;
use crate::metrics::Metrics;
use crate::quotas::Quotas;

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub journal: Arc<dyn Journal>,
    pub item_log: Arc<ItemLog>,
    pub indexes: Arc<SearchIndexes>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub body_budget: BodyBudget,
    /// The bytes of file containers.
    pub blobs: Arc<LocalBlobs>,
    /// The base URL clients reach this server at (upload URLs start with it).
    pub public_base_url: Arc<str>,
    pub auth: Arc<AuthSettings>,
    /// Each organization's limits and usage.
    pub quotas: Arc<Quotas>,
    /// Fault-injection rules.
    pub faults: Arc<Faults>,
    /// The first source of a new organization answers SOURCE_DOES_NOT_EXIST for this long (off when None).
    pub provisioning_delay_ms: Option<i64>,
    /// What the data directory takes, part by part.
    pub disk_usage: Arc<crate::disk_usage::DiskUsage>,
    /// Bounds how many searches run at once.
    pub search_gate: crate::search_api::SearchGate,
    /// Whether search reflects what was accepted, and why not.
    pub readiness: Arc<Readiness>,
    /// What each organization's index has committed: the logs API shows only those outcomes.
    pub commit_marks: Arc<CommitMarks>,
}

impl AppState {
    /// The organization of the path, or 404 ORGANIZATION_NOT_FOUND.
    pub fn organization(&self, organization_id: &str) -> Result<Organization, ApiError> {
        self.catalog.organization(organization_id).ok_or_else(|| {
            ApiError::new(ErrorCode::OrganizationNotFound, format!("Organization '{organization_id}' does not exist."))
        })
    }

    /// The source of the path, or 412 SOURCE_DOES_NOT_EXIST (after checking the organization). The first source
    /// of an organization is not there until the provisioning delay has passed, when one is configured.
    pub fn source(&self, organization_id: &str, source_id: &str) -> Result<Source, ApiError> {
        self.organization(organization_id)?;
        let source = self.catalog.source(organization_id, source_id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::SourceDoesNotExist,
                format!("Source '{source_id}' does not exist in organization '{organization_id}'."),
            )
        })?;
        if let Some(ready_at) = self.provisioning_ends_at(&source) {
            let wait_seconds = (ready_at - self.clock.now_ms() + 999) / 1000;
            if wait_seconds > 0 {
                return Err(ApiError::new(
                    ErrorCode::SourceDoesNotExist,
                    format!(
                        "Source '{source_id}' is still being provisioned (the first source of a new organization); retry in {wait_seconds} s."
                    ),
                )
                .with_retry_after(wait_seconds as u64));
            }
        }
        Ok(source)
    }

    /// When the source becomes usable, if it is the first of its organization and a delay is configured.
    fn provisioning_ends_at(&self, source: &Source) -> Option<i64> {
        let delay = self.provisioning_delay_ms?;
        let sources = self.catalog.sources(&source.organization_id);
        let first = sources.iter().min_by_key(|s| (s.created_at_ms, s.id.as_str()))?;
        (first.id == source.id).then_some(source.created_at_ms + delay)
    }

    pub fn is_ready(&self) -> bool {
        self.readiness.is_ready()
    }
}

/// Why the server may not reflect what it accepted: the journal found at start is still being replayed, or
/// index commits are failing (a full disk, say) and being retried.
#[derive(Default)]
pub struct Readiness {
    replayed: AtomicBool,
    stalled: RwLock<Option<String>>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.replayed.load(Ordering::Acquire) && self.stalled().is_none()
    }

    pub fn is_replayed(&self) -> bool {
        self.replayed.load(Ordering::Acquire)
    }

    pub fn set_replayed(&self) {
        self.replayed.store(true, Ordering::Release);
    }

    /// Why applying is stopped, while it is.
    pub fn stalled(&self) -> Option<String> {
        self.stalled.read().expect("readiness lock").clone()
    }

    pub fn set_stalled(&self, reason: Option<String>) {
        *self.stalled.write().expect("readiness lock") = reason;
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

/// What search needs of an organization's index: cheap clones of the index and its reader.
#[derive(Clone)]
pub struct SearchHandle {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
}

/// The searchable indexes, by organization. The applier owns the writers and registers each index here.
#[derive(Default)]
pub struct SearchIndexes {
    handles: RwLock<HashMap<String, SearchHandle>>,
}

impl SearchIndexes {
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

impl intake_index::ContainerReader for AppState {
    /// An uploaded container of the organization, for an item that points at it.
    fn open(&self, organization_id: &str, file_id: &str) -> Result<Box<dyn std::io::Read + Send>, String> {
        let missing = || format!("file container '{file_id}' does not exist or has expired");
        let container = self.catalog.container(file_id).map_err(|e| e.to_string())?.ok_or_else(missing)?;
        if container.organization_id != organization_id {
            return Err(missing());
        }
        if container.size.is_none() {
            return Err(format!("file container '{file_id}' was never uploaded to"));
        }
        let file = self.blobs.open_blob(file_id).map_err(|_| missing())?;
        Ok(Box::new(std::io::BufReader::with_capacity(256 * 1024, file)))
    }
}
