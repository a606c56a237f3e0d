//! The catalog: what Intake knows of its tenants and their settings, split by concern — organizations,
//! sources, API keys, declared fields and server settings ([`OrganizationStore`]); limits, daily usage and
//! fault rules ([`LimitStore`]); file containers ([`ContainerStore`]); security providers ([`ProviderStore`]). A backend implements all four
//! ([`Catalog`]); every backend passes the same contract suite (`tests/contract.rs`).

use intake_model::{FieldType, Privilege, SourceStatus};
use rand::Rng;

use crate::security::ProviderStore;
use crate::{ContainerStore, LimitStore, StoreError, StreamStore};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub display_name: String,
    pub created_at_ms: i64,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    /// `PUSH` or `CATALOG`.
    pub source_type: String,
    /// `PRIVATE`, `SECURED` or `SHARED`.
    pub visibility: String,
    pub status: Option<SourceStatus>,
    pub status_updated_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl Organization {
    /// A new, active organization.
    pub fn new(id: &str, display_name: &str, now_ms: i64) -> Organization {
        Organization {
            id: id.to_string(),
            display_name: display_name.to_string(),
            created_at_ms: now_ms,
            paused: false,
        }
    }
}

impl Source {
    /// A new source with a Coveo-style id: `<organization>-<26 random lower-case letters and digits>`.
    pub fn new(organization_id: &str, name: &str, source_type: &str, visibility: &str, now_ms: i64) -> Source {
        Source {
            id: format!("{organization_id}-{}", random_id(26)),
            organization_id: organization_id.to_string(),
            name: name.to_string(),
            source_type: source_type.to_string(),
            visibility: visibility.to_string(),
            status: None,
            status_updated_at_ms: None,
            created_at_ms: now_ms,
        }
    }
}

/// An API key. Its value is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub organization_id: String,
    pub display_name: String,
    pub description: String,
    pub value_hash: String,
    pub privileges: Vec<Privilege>,
    /// CIDR blocks (or single addresses); empty means every address.
    pub allowed_ips: Vec<String>,
    pub denied_ips: Vec<String>,
    pub enabled: bool,
    pub created_at_ms: i64,
    pub expiration_ms: Option<i64>,
}

/// A declared index field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub organization_id: String,
    pub name: String,
    pub field_type: FieldType,
    pub description: String,
}

/// Organizations, their sources, API keys and declared fields, and the server's settings. Reads are served
/// from memory on the request path, so they do not fail; writes are durable when they return.
pub trait OrganizationStore: Send + Sync {
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Creates an organization; [`StoreError::Conflict`] when the id is taken.
    fn create_organization(&self, id: &str, display_name: &str, now_ms: i64) -> Result<Organization, StoreError>;
    fn organization(&self, id: &str) -> Option<Organization>;
    /// Every organization, by id.
    fn organizations(&self) -> Vec<Organization>;
    /// Pauses or resumes an organization; false when it does not exist.
    fn set_paused(&self, organization_id: &str, paused: bool) -> Result<bool, StoreError>;
    /// Deletes an organization with everything the catalog holds of it; false when it does not exist.
    fn delete_organization(&self, organization_id: &str) -> Result<bool, StoreError>;

    /// Creates a source with a Coveo-style id (`<organization>-<26 random lower-case letters and digits>`);
    /// [`StoreError::Conflict`] when the organization has a source of that name.
    fn create_source(
        &self,
        organization_id: &str,
        name: &str,
        source_type: &str,
        visibility: &str,
        now_ms: i64,
    ) -> Result<Source, StoreError>;
    fn source(&self, organization_id: &str, source_id: &str) -> Option<Source>;
    /// The organization's sources, by name.
    fn sources(&self, organization_id: &str) -> Vec<Source>;
    fn set_source_status(
        &self,
        organization_id: &str,
        source_id: &str,
        status: SourceStatus,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Deletes a source; false when it does not exist.
    fn delete_source(&self, organization_id: &str, source_id: &str) -> Result<bool, StoreError>;

    fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// The key whose value hashes to `value_hash`.
    fn api_key_by_hash(&self, value_hash: &str) -> Option<ApiKey>;
    fn api_key(&self, organization_id: &str, key_id: &str) -> Option<ApiKey>;
    /// The organization's keys, oldest first.
    fn api_keys(&self, organization_id: &str) -> Vec<ApiKey>;
    /// Enables or disables a key; the key as it now is, or None when it does not exist.
    fn set_api_key_enabled(
        &self,
        organization_id: &str,
        key_id: &str,
        enabled: bool,
    ) -> Result<Option<ApiKey>, StoreError>;
    fn delete_api_key(&self, organization_id: &str, key_id: &str) -> Result<bool, StoreError>;

    /// Declares fields (a field declared again takes the new type and description).
    fn upsert_fields(&self, fields: &[Field]) -> Result<(), StoreError>;
    /// The organization's declared fields, by name.
    fn fields(&self, organization_id: &str) -> Vec<Field>;
    fn field(&self, organization_id: &str, name: &str) -> Option<Field>;
}

/// The whole catalog of one backend.
pub trait Catalog: OrganizationStore + LimitStore + ContainerStore + ProviderStore + StreamStore {}

impl<T: OrganizationStore + LimitStore + ContainerStore + ProviderStore + StreamStore> Catalog for T {}

/// Lower-case letters and digits, as Coveo's ids look.
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}
