//! The in-memory copy of the catalog that every backend serves request-path reads from (organizations,
//! sources, API keys, declared fields), and that its writes update. Reads never touch the database, so
//! authenticating a request or resolving a source costs a hash lookup.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::catalog::{ApiKey, Field, Organization, Source};

/// Everything the copy holds, as loaded from a backend.
#[derive(Default)]
pub(crate) struct Snapshot {
    /// Counts the changes made to the copy (see [`CatalogCache::replace_unless_changed`]).
    generation: u64,
    pub organizations: HashMap<String, Organization>,
    /// Keyed by (organization id, source id).
    pub sources: HashMap<(String, String), Source>,
    /// Keyed by the SHA-256 of the key's value.
    pub api_keys: HashMap<String, ApiKey>,
    /// Keyed by (organization id, field name).
    pub fields: HashMap<(String, String), Field>,
}

impl Snapshot {
    pub fn insert_organization(&mut self, organization: Organization) {
        self.organizations.insert(organization.id.clone(), organization);
    }

    pub fn insert_source(&mut self, source: Source) {
        self.sources.insert((source.organization_id.clone(), source.id.clone()), source);
    }

    pub fn insert_api_key(&mut self, key: ApiKey) {
        self.api_keys.insert(key.value_hash.clone(), key);
    }

    pub fn insert_field(&mut self, field: Field) {
        self.fields.insert((field.organization_id.clone(), field.name.clone()), field);
    }
}

/// The copy, shared by readers and the backend's writes.
#[derive(Default)]
pub(crate) struct CatalogCache {
    snapshot: RwLock<Snapshot>,
}

impl CatalogCache {
    pub fn new(snapshot: Snapshot) -> CatalogCache {
        CatalogCache { snapshot: RwLock::new(snapshot) }
    }

    /// How many changes the copy has had: taken before reading a snapshot to replace it with.
    pub fn generation(&self) -> u64 {
        self.read(|s| s.generation)
    }

    /// Replaces the whole copy (another node changed the catalog) with a snapshot read after `seen` was the
    /// generation — unless this node changed the copy since: the snapshot may have been read before that change
    /// committed, and would undo it. False then: read again.
    pub fn replace_unless_changed(&self, mut snapshot: Snapshot, seen: u64) -> bool {
        let mut current = self.snapshot.write().expect("catalog cache lock");
        if current.generation != seen {
            return false;
        }
        snapshot.generation = seen;
        *current = snapshot;
        true
    }

    /// Changes the copy after a write the database accepted.
    pub fn update<T>(&self, change: impl FnOnce(&mut Snapshot) -> T) -> T {
        let mut snapshot = self.snapshot.write().expect("catalog cache lock");
        snapshot.generation += 1;
        change(&mut snapshot)
    }

    fn read<T>(&self, look: impl FnOnce(&Snapshot) -> T) -> T {
        look(&self.snapshot.read().expect("catalog cache lock"))
    }

    pub fn organization(&self, id: &str) -> Option<Organization> {
        self.read(|s| s.organizations.get(id).cloned())
    }

    /// Every organization, by id.
    pub fn organizations(&self) -> Vec<Organization> {
        let mut all: Vec<_> = self.read(|s| s.organizations.values().cloned().collect());
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn set_paused(&self, organization_id: &str, paused: bool) {
        self.update(|s| {
            if let Some(organization) = s.organizations.get_mut(organization_id) {
                organization.paused = paused;
            }
        })
    }

    /// Forgets an organization and everything of it.
    pub fn remove_organization(&self, organization_id: &str) {
        self.update(|s| {
            s.organizations.remove(organization_id);
            s.sources.retain(|(org, _), _| org != organization_id);
            s.api_keys.retain(|_, key| key.organization_id != organization_id);
            s.fields.retain(|(org, _), _| org != organization_id);
        })
    }

    pub fn source(&self, organization_id: &str, source_id: &str) -> Option<Source> {
        self.read(|s| s.sources.get(&(organization_id.to_string(), source_id.to_string())).cloned())
    }

    /// The organization's sources, by name.
    pub fn sources(&self, organization_id: &str) -> Vec<Source> {
        let mut all: Vec<_> =
            self.read(|s| s.sources.values().filter(|s| s.organization_id == organization_id).cloned().collect());
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub fn set_source_status(
        &self,
        organization_id: &str,
        source_id: &str,
        status: intake_model::SourceStatus,
        at_ms: i64,
    ) {
        self.update(|s| {
            if let Some(source) = s.sources.get_mut(&(organization_id.to_string(), source_id.to_string())) {
                source.status = Some(status);
                source.status_updated_at_ms = Some(at_ms);
            }
        })
    }

    pub fn remove_source(&self, organization_id: &str, source_id: &str) {
        self.update(|s| s.sources.remove(&(organization_id.to_string(), source_id.to_string())));
    }

    pub fn api_key_by_hash(&self, value_hash: &str) -> Option<ApiKey> {
        self.read(|s| s.api_keys.get(value_hash).cloned())
    }

    pub fn api_key(&self, organization_id: &str, key_id: &str) -> Option<ApiKey> {
        self.read(|s| s.api_keys.values().find(|k| k.id == key_id && k.organization_id == organization_id).cloned())
    }

    /// The organization's keys, oldest first.
    pub fn api_keys(&self, organization_id: &str) -> Vec<ApiKey> {
        let mut keys: Vec<_> =
            self.read(|s| s.api_keys.values().filter(|k| k.organization_id == organization_id).cloned().collect());
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    /// Enables or disables a key; the key as it now is.
    pub fn set_api_key_enabled(&self, organization_id: &str, key_id: &str, enabled: bool) -> Option<ApiKey> {
        self.update(|s| {
            let key = s.api_keys.values_mut().find(|k| k.id == key_id && k.organization_id == organization_id)?;
            key.enabled = enabled;
            Some(key.clone())
        })
    }

    pub fn remove_api_key(&self, organization_id: &str, key_id: &str) {
        self.update(|s| s.api_keys.retain(|_, k| !(k.id == key_id && k.organization_id == organization_id)));
    }

    /// The organization's declared fields, by name.
    pub fn fields(&self, organization_id: &str) -> Vec<Field> {
        let mut fields: Vec<_> =
            self.read(|s| s.fields.values().filter(|f| f.organization_id == organization_id).cloned().collect());
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        fields
    }

    pub fn field(&self, organization_id: &str, name: &str) -> Option<Field> {
        self.read(|s| s.fields.get(&(organization_id.to_string(), name.to_string())).cloned())
    }
}
