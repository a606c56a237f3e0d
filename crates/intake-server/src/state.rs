//! The state every handler shares, and the lookups most of them start with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use intake_index::schema::Fields;
use intake_model::{ApiError, ErrorCode};
use intake_store::{Catalog, Clock, ItemLog, Journal, Organization, Source};
use tantivy::{Index, IndexReader};

use crate::auth::AuthSettings;
use crate::http::BodyBudget;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub journal: Arc<dyn Journal>,
    pub item_log: Arc<ItemLog>,
    pub indexes: Arc<SearchIndexes>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub body_budget: BodyBudget,
    pub auth: Arc<AuthSettings>,
    /// The first source of a new organization answers SOURCE_DOES_NOT_EXIST for this long (off when None).
    pub provisioning_delay_ms: Option<i64>,
    /// Set once the applier has replayed the journal backlog found at start.
    pub ready: Arc<AtomicBool>,
}

impl AppState {
    /// The organization of the path, or 404 ORGANIZATION_NOT_FOUND.
    pub fn organization(&self, organization_id: &str) -> Result<Organization, ApiError> {
        self.catalog.organization(organization_id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::OrganizationNotFound,
                format!("Organization '{organization_id}' does not exist."),
            )
        })
    }

    /// The source of the path, or 412 SOURCE_DOES_NOT_EXIST (after checking the organization).
    pub fn source(&self, organization_id: &str, source_id: &str) -> Result<Source, ApiError> {
        self.organization(organization_id)?;
        self.catalog
            .source(organization_id, source_id)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::SourceDoesNotExist,
                    format!(
                        "Source '{source_id}' does not exist in organization '{organization_id}'."
                    ),
                )
            })
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
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
        self.handles
            .write()
            .expect("index registry lock")
            .insert(organization_id.to_string(), handle);
    }

    pub fn unregister(&self, organization_id: &str) {
        self.handles
            .write()
            .expect("index registry lock")
            .remove(organization_id);
    }

    pub fn get(&self, organization_id: &str) -> Option<SearchHandle> {
        self.handles
            .read()
            .expect("index registry lock")
            .get(organization_id)
            .cloned()
    }
}
