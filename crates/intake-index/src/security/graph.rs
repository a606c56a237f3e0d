//! An organization's security identities in memory: who is a member of which group, who is whose alias, who
//! is granted what — and what a user resolves to.
//!
//! Identities are keyed by provider, name and type, provider and name compared ignoring case. Applying an
//! operation follows the Push API's rules: the highest `orderingId` wins, pushing an identity replaces its
//! members (or aliases) and granted identities, disabling keeps it but makes it grant nothing.
//!
//! A user's effective identities are the closure of where they start (a search token's users) over aliases
//! (both ways; across providers only to one the pushing provider cascades to), the same e-mail address in every
//! provider that cascades to the Email Security Provider, group membership (nested, cycles visited once) and
//! granted identities. A disabled identity is dropped and not followed; an identity nobody pushed or named
//! grants nothing, except a user of the Email Security Provider, who is whoever the token says.

use std::collections::{HashMap, HashSet, VecDeque};

use intake_model::identity::{IdentityChange, SecurityIdentity};
use intake_model::permissions::IdentityType;
use intake_store::{Alias, EMAIL_PROVIDER, SecurityProvider, StoredIdentity};

/// The identity every user holds, the anonymous one included (Coveo's `*@*`).
pub const EVERYONE: &str = "*@*";

/// Stands for any type in a match key: an item permission of type `Unknown` names an identity of any type.
const ANY_TYPE: &str = "*";

/// The key of an identity, as item permissions and the graph match it.
pub fn identity_key(provider: &str, name: &str, kind: IdentityType) -> String {
    if name == EVERYONE {
        return EVERYONE.to_string();
    }
    let kind = if kind == IdentityType::Unknown { ANY_TYPE } else { kind.as_str() };
    format!("{}\u{1f}{}\u{1f}{kind}", provider.to_lowercase(), name.to_lowercase())
}

/// An identity as resolution reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityRef {
    pub provider: String,
    pub name: String,
    pub kind: IdentityType,
}

impl IdentityRef {
    pub fn new(provider: &str, name: &str, kind: IdentityType) -> IdentityRef {
        IdentityRef { provider: provider.to_string(), name: name.to_string(), kind }
    }

    fn key(&self) -> String {
        identity_key(&self.provider, &self.name, self.kind)
    }

    fn of(provider: &str, identity: &SecurityIdentity) -> IdentityRef {
        IdentityRef::new(provider, &identity.name, identity.kind)
    }
}

impl std::fmt::Display for IdentityRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} '{}' of '{}'", self.kind.as_str(), self.name, self.provider)
    }
}

/// How resolution reached an identity from the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Where it started (a search token's user).
    Start,
    /// An alias (a mapping pushed to either side).
    Alias,
    /// The same e-mail address, in a provider that cascades to the Email Security Provider.
    SameEmail,
    /// A group it is a member of.
    MemberOf,
    /// A granted identity (`wellKnowns`).
    Granted,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Start => "start",
            Relation::Alias => "alias of",
            Relation::SameEmail => "same e-mail address as",
            Relation::MemberOf => "member of",
            Relation::Granted => "granted to",
        }
    }
}

/// Every identity a user resolves to, with how each was reached.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// In the order reached; each with the index of the identity it was reached from.
    pub reached: Vec<(IdentityRef, Relation, Option<usize>)>,
    /// The keys item permissions are matched against: each identity under its type and under any type, and
    /// [`EVERYONE`].
    pub keys: HashSet<String>,
}

impl Resolution {
    /// The anonymous user: [`EVERYONE`] only.
    pub fn anonymous() -> Resolution {
        Resolution { reached: Vec::new(), keys: HashSet::from([EVERYONE.to_string()]) }
    }

    /// The chain from a start identity to the one at `index`, start first.
    pub fn chain(&self, mut index: usize) -> Vec<(IdentityRef, Relation)> {
        let mut chain = Vec::new();
        loop {
            let (identity, relation, from) = &self.reached[index];
            chain.push((identity.clone(), *relation));
            match from {
                Some(from) => index = *from,
                None => break,
            }
        }
        chain.reverse();
        chain
    }

    /// Where the identity matched by `key` was reached, if it was.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.reached.iter().position(|(identity, _, _)| {
            let own = identity.key();
            own == key || identity_key(&identity.provider, &identity.name, IdentityType::Unknown) == key
        })
    }
}

/// What applying an identity operation did.
#[derive(Debug)]
pub enum Applied {
    /// The identities as they now are (to be written to the store).
    Changed(Vec<StoredIdentity>),
    /// Not applied, and why (an operation with a higher `orderingId` changed the identity).
    Skipped(String),
}

/// An organization's identities.
#[derive(Debug, Default)]
pub struct IdentityGraph {
    organization_id: String,
    identities: HashMap<String, StoredIdentity>,
    /// Member key → the keys of the groups listing it.
    parents: HashMap<String, HashMap<String, u32>>,
    /// Alias edges, both ways, counted (either side may declare one).
    aliases: HashMap<String, HashMap<String, u32>>,
    /// Identities named as granted identities, counted.
    granted: HashMap<String, u32>,
}

impl IdentityGraph {
    pub fn new(organization_id: &str) -> IdentityGraph {
        IdentityGraph { organization_id: organization_id.to_string(), ..IdentityGraph::default() }
    }

    /// Builds the graph from the stored identities.
    pub fn load(organization_id: &str, identities: Vec<StoredIdentity>) -> IdentityGraph {
        let mut graph = IdentityGraph::new(organization_id);
        for identity in identities {
            graph.replace(identity);
        }
        graph
    }

    pub fn len(&self) -> usize {
        self.identities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    pub fn get(&self, provider: &str, name: &str, kind: IdentityType) -> Option<&StoredIdentity> {
        self.identities.get(&identity_key(provider, name, kind))
    }

    /// Every identity, in no particular order.
    pub fn identities(&self) -> impl Iterator<Item = &StoredIdentity> {
        self.identities.values()
    }

    /// Whether an identity grants anything: it was pushed and is enabled, or named by an identity pushed (a
    /// member, an alias, a granted identity), or it is an Email Security Provider user. `Unknown` matches any
    /// type.
    pub fn is_known(&self, provider: &str, name: &str, kind: IdentityType) -> bool {
        if name == EVERYONE || (provider.eq_ignore_ascii_case(EMAIL_PROVIDER) && kind != IdentityType::Group) {
            return true;
        }
        let kinds: &[IdentityType] = if kind == IdentityType::Unknown {
            &[IdentityType::User, IdentityType::Group, IdentityType::VirtualGroup, IdentityType::Unknown]
        } else {
            &[kind, IdentityType::Unknown]
        };
        kinds.iter().any(|kind| {
            let key = identity_key(provider, name, *kind);
            match self.identities.get(&key) {
                Some(identity) => identity.enabled,
                None => {
                    self.parents.contains_key(&key)
                        || self.aliases.contains_key(&key)
                        || self.granted.contains_key(&key)
                }
            }
        })
    }

    /// Applies one identity operation of `provider`. `cascading` is what the provider cascades to: an alias's
    /// provider defaults to the only one, and must be one of them.
    pub fn apply(
        &mut self,
        provider: &SecurityProvider,
        change: &IdentityChange,
        ordering_id: i64,
        now_ms: i64,
    ) -> Result<Applied, String> {
        let identity = change.identity();
        let key = identity_key(&provider.id, &identity.name, identity.kind);
        if let Some(current) = self.identities.get(&key)
            && current.ordering_id > ordering_id
        {
            return Ok(Applied::Skipped(format!(
                "a later operation (orderingId {}) already changed this identity; this one has orderingId {ordering_id}",
                current.ordering_id
            )));
        }
        let mut next = self.identities.get(&key).cloned().unwrap_or_else(|| StoredIdentity {
            organization_id: self.organization_id.clone(),
            provider_id: provider.id.clone(),
            name: identity.name.clone(),
            kind: identity.kind,
            additional_info: Vec::new(),
            members: Vec::new(),
            well_knowns: Vec::new(),
            aliases: Vec::new(),
            enabled: true,
            ordering_id,
            updated_at_ms: now_ms,
        });
        next.name = identity.name.clone();
        next.additional_info = identity.additional_info.clone();
        next.ordering_id = ordering_id;
        next.updated_at_ms = now_ms;
        match change {
            IdentityChange::Upsert { members, well_knowns, .. } => {
                next.members = members.clone();
                next.well_knowns = well_knowns.clone();
                next.enabled = true;
            }
            IdentityChange::Alias { mappings, well_knowns, .. } => {
                next.aliases = mappings
                    .iter()
                    .map(|mapping| {
                        let provider_id = alias_provider(provider, mapping.provider.as_deref())?;
                        Ok(Alias { provider_id, identity: mapping.identity.clone() })
                    })
                    .collect::<Result<_, String>>()?;
                next.well_knowns = well_knowns.clone();
                next.enabled = true;
            }
            IdentityChange::Disable { .. } => next.enabled = false,
        }
        self.replace(next.clone());
        Ok(Applied::Changed(vec![next]))
    }

    /// Disables the provider's identities last changed by an operation with an `orderingId` below `ordering_id`.
    pub fn disable_older_than(&mut self, provider_id: &str, ordering_id: i64, now_ms: i64) -> Vec<StoredIdentity> {
        let old: Vec<StoredIdentity> = self
            .identities
            .values()
            .filter(|i| i.enabled && i.ordering_id < ordering_id && i.provider_id.eq_ignore_ascii_case(provider_id))
            .cloned()
            .collect();
        old.into_iter()
            .map(|mut identity| {
                identity.enabled = false;
                identity.updated_at_ms = now_ms;
                self.replace(identity.clone());
                identity
            })
            .collect()
    }

    /// Removes a provider's identities (the provider was deleted).
    pub fn remove_provider(&mut self, provider_id: &str) {
        let keys: Vec<String> = self
            .identities
            .iter()
            .filter(|(_, i)| i.provider_id.eq_ignore_ascii_case(provider_id))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            if let Some(old) = self.identities.remove(&key) {
                self.unlink(&key, &old);
            }
        }
    }

    /// Puts an identity in place of the one with its key, keeping the reverse links right.
    fn replace(&mut self, identity: StoredIdentity) {
        let key = identity_key(&identity.provider_id, &identity.name, identity.kind);
        if let Some(old) = self.identities.remove(&key) {
            self.unlink(&key, &old);
        }
        for member in &identity.members {
            count(self.parents.entry(IdentityRef::of(&identity.provider_id, member).key()).or_default(), &key, 1);
        }
        for alias in &identity.aliases {
            let other = IdentityRef::of(&alias.provider_id, &alias.identity).key();
            count(self.aliases.entry(other.clone()).or_default(), &key, 1);
            count(self.aliases.entry(key.clone()).or_default(), &other, 1);
        }
        for granted in &identity.well_knowns {
            *self.granted.entry(IdentityRef::of(&identity.provider_id, granted).key()).or_default() += 1;
        }
        self.identities.insert(key, identity);
    }

    fn unlink(&mut self, key: &str, old: &StoredIdentity) {
        for member in &old.members {
            uncount(&mut self.parents, &IdentityRef::of(&old.provider_id, member).key(), key);
        }
        for alias in &old.aliases {
            let other = IdentityRef::of(&alias.provider_id, &alias.identity).key();
            uncount(&mut self.aliases, &other, key);
            uncount(&mut self.aliases, key, &other);
        }
        for granted in &old.well_knowns {
            let granted = IdentityRef::of(&old.provider_id, granted).key();
            if let Some(n) = self.granted.get_mut(&granted) {
                *n -= 1;
                if *n == 0 {
                    self.granted.remove(&granted);
                }
            }
        }
    }

    /// What the users resolve to; `providers` are the organization's (for the e-mail cascade).
    pub fn resolve(&self, users: &[IdentityRef], providers: &[SecurityProvider]) -> Resolution {
        let email_cascaded: Vec<&str> =
            providers.iter().filter(|p| p.cascades_to(EMAIL_PROVIDER)).map(|p| p.id.as_str()).collect();
        let mut resolution = Resolution::anonymous();
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<(IdentityRef, Relation, Option<usize>)> = VecDeque::new();
        for user in users {
            if self.is_known(&user.provider, &user.name, user.kind) {
                queue.push_back((user.clone(), Relation::Start, None));
            }
        }
        while let Some((identity, relation, from)) = queue.pop_front() {
            let key = identity.key();
            if !seen.insert(key.clone()) {
                continue;
            }
            let stored = self.identities.get(&key);
            if stored.is_some_and(|s| !s.enabled) {
                continue;
            }
            let at = resolution.reached.len();
            resolution.keys.insert(key.clone());
            resolution.keys.insert(identity_key(&identity.provider, &identity.name, IdentityType::Unknown));
            let mut next = |target: IdentityRef, relation| queue.push_back((target, relation, Some(at)));
            for (group, _) in self.parents.get(&key).into_iter().flatten() {
                if let Some(group) = self.identities.get(group).filter(|g| g.enabled) {
                    next(IdentityRef::new(&group.provider_id, &group.name, group.kind), Relation::MemberOf);
                }
            }
            for (other, _) in self.aliases.get(&key).into_iter().flatten() {
                if let Some(other) = parse_key(other) {
                    next(other, Relation::Alias);
                }
            }
            for granted in stored.map(|s| s.well_knowns.as_slice()).unwrap_or_default() {
                next(IdentityRef::of(&identity.provider, granted), Relation::Granted);
            }
            if identity.kind == IdentityType::User && identity.name.contains('@') {
                for same in self.same_email(&identity, &email_cascaded) {
                    next(same, Relation::SameEmail);
                }
            }
            resolution.reached.push((identity, relation, from));
        }
        resolution
    }

    /// The user under the same name in the Email Security Provider and in every provider cascading to it (for
    /// names that are e-mail addresses).
    fn same_email(&self, user: &IdentityRef, email_cascaded: &[&str]) -> Vec<IdentityRef> {
        let is_email = user.provider.eq_ignore_ascii_case(EMAIL_PROVIDER);
        if !is_email && !email_cascaded.iter().any(|p| p.eq_ignore_ascii_case(&user.provider)) {
            return Vec::new();
        }
        std::iter::once(EMAIL_PROVIDER)
            .chain(email_cascaded.iter().copied())
            .filter(|provider| !provider.eq_ignore_ascii_case(&user.provider))
            .filter(|provider| self.is_known(provider, &user.name, IdentityType::User))
            .map(|provider| IdentityRef::new(provider, &user.name, IdentityType::User))
            .collect()
    }

    /// Identities of an item's permissions that grant nothing (never pushed nor named), as `Type 'name' of
    /// 'provider'`.
    pub fn unknown<'a>(&self, identities: impl Iterator<Item = (&'a str, &'a str, IdentityType)>) -> Vec<String> {
        let mut unknown: Vec<String> = identities
            .filter(|(provider, name, kind)| !self.is_known(provider, name, *kind))
            .map(|(provider, name, kind)| IdentityRef::new(provider, name, kind).to_string())
            .collect();
        unknown.sort();
        unknown.dedup();
        unknown
    }
}

/// The provider an alias points to: the one named (which `provider` must cascade to), or the only one it
/// cascades to.
fn alias_provider(provider: &SecurityProvider, named: Option<&str>) -> Result<String, String> {
    match named {
        Some(named) if provider.cascades_to(named) => {
            Ok(provider.cascading.iter().find(|id| id.eq_ignore_ascii_case(named)).cloned().unwrap_or_default())
        }
        Some(named) => Err(format!(
            "an alias points to provider '{named}', but provider '{}' does not cascade to it (it cascades to {}); \
             add it to the provider's cascadingSecurityProviders",
            provider.id,
            listed(&provider.cascading)
        )),
        None => match provider.cascading.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(format!(
                "provider '{}' cascades to no provider, so its identities cannot have aliases; add the alias's \
                 provider to its cascadingSecurityProviders",
                provider.id
            )),
            several => Err(format!(
                "an alias names no provider, and provider '{}' cascades to several ({}): say which in the \
                 mapping's 'provider'",
                provider.id,
                listed(several)
            )),
        },
    }
}

fn listed(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(", ")
    }
}

fn count(counts: &mut HashMap<String, u32>, key: &str, by: u32) {
    *counts.entry(key.to_string()).or_default() += by;
}

fn uncount(map: &mut HashMap<String, HashMap<String, u32>>, key: &str, other: &str) {
    if let Some(counts) = map.get_mut(key) {
        if let Some(n) = counts.get_mut(other) {
            *n -= 1;
            if *n == 0 {
                counts.remove(other);
            }
        }
        if counts.is_empty() {
            map.remove(key);
        }
    }
}

/// The identity a key names (names and providers lower-cased, as keys hold them).
fn parse_key(key: &str) -> Option<IdentityRef> {
    let mut parts = key.split('\u{1f}');
    let (provider, name, kind) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = if kind == ANY_TYPE { IdentityType::Unknown } else { IdentityType::parse(kind)? };
    Some(IdentityRef::new(provider, name, kind))
}
