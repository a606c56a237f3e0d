//! The state every handler shares, and the lookups most of them start with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use intake_applier::{CommitMarks, IndexRegistry};
use intake_index::security::IdentityGraphs;
use intake_model::{ApiError, ErrorCode};
use intake_store::{BlobStore, Catalog, Clock, IdentityStore, ItemLog, Journal, Organization, Ownership, Seq, Source};

use crate::auth::AuthSettings;
use crate::faults::Faults;
use crate::http::BodyBudget;
use crate::metrics::Metrics;
use crate::quotas::Quotas;

/// What every handler reaches. Axum clones it for each request: one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The stores, settings and shared parts of a running server.
pub struct Services {
    pub catalog: Arc<dyn Catalog>,
    pub journal: Arc<dyn Journal>,
    pub item_log: Arc<dyn ItemLog>,
    pub indexes: Arc<IndexRegistry>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub body_budget: BodyBudget,
    /// The bytes of file containers.
    pub blobs: Arc<dyn BlobStore>,
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
    /// The security identities pushed (the applier writes them) …
    pub identity_store: Arc<dyn IdentityStore>,
    /// … and each organization's identity graph, which searches resolve users in.
    pub identities: Arc<IdentityGraphs>,
    /// Makes pushes wait while the applier is too far behind.
    pub backpressure: Arc<crate::backpressure::Backpressure>,
    /// Which backends this node runs on.
    pub storage: crate::storage::Layout,
    /// Which organizations' indexes this node owns (all of them on one node) …
    pub ownership: Arc<dyn Ownership>,
    /// … and the client that sends calls reading another node's index on to it.
    pub forwarder: reqwest::Client,
}

impl Services {
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

    /// Whether this node answers for the organization's index (always, on one node); else 503 naming the node
    /// that does. Calls naming their organization in the path or `organizationId` are sent on before they get
    /// here (`forward`); this catches the rest.
    pub fn index_here(&self, organization_id: &str) -> Result<(), ApiError> {
        match self.ownership.owner(organization_id) {
            intake_store::Owner::Here => Ok(()),
            intake_store::Owner::Nobody => Err(crate::forward::taken_over(organization_id)),
            intake_store::Owner::Node { name, url } => Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                format!(
                    "The index of organization '{organization_id}' is on node '{name}' ({url}). Name the organization \
                     in the query string (organizationId={organization_id}) and any node sends the call on, or call \
                     that node."
                ),
            )),
        }
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

/// What the applier reports, delivered: item counts to the quotas, failures to `/ready`, progress to `/metrics`.
pub struct ApplierObserver {
    pub quotas: Arc<Quotas>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub backpressure: Arc<crate::backpressure::Backpressure>,
}

impl intake_applier::Observer for ApplierObserver {
    fn indexed(&self, organization_id: &str, live_items: u64, committed_seq: Seq) {
        self.quotas.indexed(organization_id, live_items, committed_seq);
    }

    fn replayed(&self) {
        self.readiness.set_replayed();
    }

    fn failed(&self, reason: &str) {
        self.metrics.commit_failed();
        self.readiness.set_stalled(Some(reason.to_string()));
    }

    fn recovered(&self) {
        self.readiness.set_stalled(None);
        self.metrics.stalled(false);
    }

    fn outcomes_committed(&self, result: &'static str, count: u64) {
        self.metrics.item_outcomes(result, count);
    }

    fn searchable_after(&self, elapsed_ms: i64) {
        self.metrics.searchable_after(elapsed_ms);
    }

    fn records_applied(&self, elapsed: std::time::Duration) {
        self.metrics.batch_applied(elapsed);
    }

    fn applied(&self, applied_seq: Seq, applying_batch: bool) {
        self.backpressure.applied(applied_seq, applying_batch);
    }

    fn positions(&self, durable: Seq, caught_up: Seq, syncs: u64) {
        self.metrics.journal_syncs(syncs);
        self.metrics.journal_positions(durable, caught_up);
    }
}
