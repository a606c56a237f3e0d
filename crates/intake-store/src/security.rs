//! Security providers (in the catalog) and the security identities pushed to them (their own store).
//!
//! Identities are written by the applier only, in batches, at its commits; every write is an upsert keyed by
//! (organization, provider, name, type), names compared ignoring case. What an identity resolves to is
//! decided in memory (`intake-index`'s identity graph), loaded from here at start.

use intake_model::identity::SecurityIdentity;
use intake_model::permissions::IdentityType;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The provider every organization has: users known by their e-mail address.
pub const EMAIL_PROVIDER: &str = "Email Security Provider";

/// A security identity provider of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityProvider {
    pub id: String,
    pub organization_id: String,
    pub display_name: String,
    /// `EXPANDED` for Push providers, `EMAIL` for the e-mail provider.
    pub provider_type: String,
    /// The providers this one cascades to (its aliases may point there), by id.
    pub cascading: Vec<String>,
    /// The sources whose items' permissions default to this provider, by id.
    pub sources: Vec<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl SecurityProvider {
    /// The organization's built-in e-mail provider, as it is when nobody changed it.
    pub fn email(organization_id: &str) -> SecurityProvider {
        SecurityProvider {
            id: EMAIL_PROVIDER.to_string(),
            organization_id: organization_id.to_string(),
            display_name: EMAIL_PROVIDER.to_string(),
            provider_type: "EMAIL".to_string(),
            cascading: Vec::new(),
            sources: Vec::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    pub fn cascades_to(&self, provider_id: &str) -> bool {
        self.cascading.iter().any(|id| id.eq_ignore_ascii_case(provider_id))
    }
}

/// Security providers, in the catalog. Ids are matched ignoring case, as Coveo's are.
pub trait ProviderStore: Send + Sync {
    /// Creates or replaces a provider; true when it was created.
    fn put_provider(&self, provider: &SecurityProvider) -> Result<bool, StoreError>;
    /// The organization's stored providers, by id.
    fn stored_providers(&self, organization_id: &str) -> Result<Vec<SecurityProvider>, StoreError>;
    fn delete_provider(&self, organization_id: &str, provider_id: &str) -> Result<bool, StoreError>;

    /// The stored provider (the built-in e-mail provider is not stored unless changed).
    fn stored_provider(
        &self,
        organization_id: &str,
        provider_id: &str,
    ) -> Result<Option<SecurityProvider>, StoreError> {
        let providers = self.stored_providers(organization_id)?;
        Ok(providers.into_iter().find(|p| p.id.eq_ignore_ascii_case(provider_id)))
    }

    /// A provider, the built-in e-mail provider included.
    fn provider(&self, organization_id: &str, provider_id: &str) -> Result<Option<SecurityProvider>, StoreError> {
        match self.stored_provider(organization_id, provider_id)? {
            Some(provider) => Ok(Some(provider)),
            None if provider_id.eq_ignore_ascii_case(EMAIL_PROVIDER) => {
                Ok(Some(SecurityProvider::email(organization_id)))
            }
            None => Ok(None),
        }
    }

    /// The organization's providers, the built-in e-mail provider included, by id.
    fn providers(&self, organization_id: &str) -> Result<Vec<SecurityProvider>, StoreError> {
        let mut providers = self.stored_providers(organization_id)?;
        if !providers.iter().any(|p| p.id.eq_ignore_ascii_case(EMAIL_PROVIDER)) {
            providers.push(SecurityProvider::email(organization_id));
        }
        providers.sort_by_key(|p| p.id.to_lowercase());
        Ok(providers)
    }
}

/// An alias of an identity: an identity of another provider that is the same person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub provider_id: String,
    pub identity: SecurityIdentity,
}

/// A security identity as pushed, with what the last operation on it said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    pub organization_id: String,
    pub provider_id: String,
    pub name: String,
    pub kind: IdentityType,
    pub additional_info: Vec<(String, String)>,
    /// Its members, when it is a group: identities of the same provider.
    pub members: Vec<SecurityIdentity>,
    /// Its granted identities (`wellKnowns`), of the same provider.
    pub well_knowns: Vec<SecurityIdentity>,
    pub aliases: Vec<Alias>,
    /// A disabled identity is kept (and listed) but grants nothing.
    pub enabled: bool,
    /// The `orderingId` of the operation that last changed it: an older operation loses.
    pub ordering_id: i64,
    pub updated_at_ms: i64,
}

/// The identities pushed to an organization's providers.
pub trait IdentityStore: Send + Sync {
    /// Writes identities (each replacing the stored one of the same key), durably, all or none.
    fn write(&self, identities: &[StoredIdentity]) -> Result<(), StoreError>;
    /// Every identity of the organization.
    fn load(&self, organization_id: &str) -> Result<Vec<StoredIdentity>, StoreError>;
    /// Removes every identity of a provider (the provider was deleted).
    fn delete_provider(&self, organization_id: &str, provider_id: &str) -> Result<(), StoreError>;
    /// Removes every identity of the organization.
    fn delete_organization(&self, organization_id: &str) -> Result<(), StoreError>;
}
