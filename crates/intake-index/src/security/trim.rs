//! Permission trimming: which items a searcher may see, decided per query from the items' stored permissions
//! and the searcher's resolved identities, before anything is counted.
//!
//! Each segment's permissions are compiled once (segments never change) into a table: every distinct
//! (source, permission levels) of the segment, interned identity keys, and the model of each document. A query
//! evaluates each distinct model once against the searcher's identities — a bit set over the interned keys —
//! and filters with the resulting documents, so trimming costs one pass over the segment's models and never
//! reads a stored document.
//!
//! The rule, in [`Model::visible`]: items of a public (SHARED) source are visible to everyone. Otherwise the
//! permission levels are read in order; the first level that mentions the searcher (an identity of theirs
//! allowed or denied in one of its sets, or a set allowing anonymous access) decides: the item is visible when
//! every set of that level allows them (or anonymous access) and none denies them. No deciding level: not
//! visible.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use intake_model::permissions::PermissionLevel;
use tantivy::index::SegmentId;
use tantivy::query::{BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::Value as _;
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyDocument, TantivyError};
use tantivy_common::BitSet;

use super::graph::identity_key;
use crate::schema::Fields;

/// Who searches, as trimming sees it. The default is the anonymous user with no public source.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Sees every item (`viewAllContent` with its privilege).
    All,
    /// Sees the items its identities are allowed to see, and every item of `public_sources`.
    Trimmed { keys: HashSet<String>, public_sources: HashSet<String> },
}

impl Default for Viewer {
    fn default() -> Viewer {
        Viewer::Trimmed { keys: HashSet::from([super::EVERYONE.to_string()]), public_sources: HashSet::new() }
    }
}

/// One permission set, its identities interned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SetModel {
    anonymous: bool,
    allowed: Vec<u32>,
    denied: Vec<u32>,
}

/// The permissions of items alike: their source and their levels of sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Model {
    source: u32,
    levels: Vec<Vec<SetModel>>,
}

/// What decided whether a viewer may see an item: the rule, and where in the item's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub visible: bool,
    pub rule: Rule,
    /// The deciding level and set (indexes in the item's permissions).
    pub level: Option<usize>,
    pub set: Option<usize>,
    /// The identity of that set that decided (an index in its allowed or denied list, as the rule says).
    pub identity: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The viewer sees everything (`viewAllContent`).
    ViewAll,
    /// The item's source is public (SHARED).
    PublicSource,
    /// The set denies one of the viewer's identities.
    Denied,
    /// The level mentions the viewer, but this set allows none of their identities.
    NotAllowed,
    /// Every set of the level allows the viewer; this is the first, and the identity it allows (none: anonymous).
    Allowed,
    /// No level mentions the viewer.
    Undecided,
}

impl Decision {
    fn at(visible: bool, rule: Rule, level: usize, set: usize, identity: Option<usize>) -> Decision {
        Decision { visible, rule, level: Some(level), set: Some(set), identity }
    }

    fn plain(visible: bool, rule: Rule) -> Decision {
        Decision { visible, rule, level: None, set: None, identity: None }
    }
}

impl Model {
    fn visible(&self, holds: impl Fn(u32) -> bool, public_source: impl Fn(u32) -> bool) -> bool {
        self.decide(holds, public_source).visible
    }

    /// The rule (see the module's doc): the first level that mentions the viewer decides; a deny wins; every set
    /// must allow.
    fn decide(&self, holds: impl Fn(u32) -> bool, public_source: impl Fn(u32) -> bool) -> Decision {
        if public_source(self.source) {
            return Decision::plain(true, Rule::PublicSource);
        }
        let first_held = |ids: &[u32]| ids.iter().position(|id| holds(*id));
        for (l, level) in self.levels.iter().enumerate() {
            let mentions = |set: &SetModel| {
                set.anonymous || first_held(&set.allowed).is_some() || first_held(&set.denied).is_some()
            };
            if !level.iter().any(mentions) {
                continue;
            }
            if let Some((s, i)) = level.iter().enumerate().find_map(|(s, set)| first_held(&set.denied).map(|i| (s, i)))
            {
                return Decision::at(false, Rule::Denied, l, s, Some(i));
            }
            if let Some(s) = level.iter().position(|set| !set.anonymous && first_held(&set.allowed).is_none()) {
                return Decision::at(false, Rule::NotAllowed, l, s, None);
            }
            let first = &level[0];
            return Decision::at(
                true,
                Rule::Allowed,
                l,
                0,
                if first.anonymous { None } else { first_held(&first.allowed) },
            );
        }
        Decision::plain(false, Rule::Undecided)
    }
}

/// A segment's permissions: each document's model.
struct SegmentTable {
    models: Vec<Model>,
    doc_model: Vec<u32>,
}

/// The compiled permissions of an index's segments, and the identity keys they name. It is the index reader's
/// warmer: each new segment is compiled when the reader first sees it (at a commit or when the index opens).
pub struct PermissionTables {
    fields: Fields,
    interned: RwLock<HashMap<String, u32>>,
    segments: Mutex<HashMap<SegmentId, Arc<SegmentTable>>>,
    /// What a viewer (by fingerprint) may see of a segment: a searcher's next query — or the count and the page
    /// of the same query — reuses it. Bounded by [`VISIBLE_CACHE_BYTES`].
    visible: Mutex<VisibleCache>,
}

/// The most bytes of cached visible-document sets (a bit per document of each segment and viewer).
const VISIBLE_CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct VisibleCache {
    sets: HashMap<(SegmentId, u64), Arc<BitSet>>,
    bytes: usize,
}

impl VisibleCache {
    fn get(&self, key: &(SegmentId, u64)) -> Option<Arc<BitSet>> {
        self.sets.get(key).cloned()
    }

    /// Keeps a set; when over the bound, the cache starts afresh (cheaper than tracking use, and a viewer's
    /// sets are rebuilt on its next query).
    fn put(&mut self, key: (SegmentId, u64), set: Arc<BitSet>) {
        let bytes = set.max_value() as usize / 8 + 64;
        if self.bytes + bytes > VISIBLE_CACHE_BYTES {
            self.sets.clear();
            self.bytes = 0;
        }
        self.bytes += bytes;
        self.sets.insert(key, set);
    }

    fn retain(&mut self, live: &[SegmentId]) {
        self.sets.retain(|(segment, _), _| live.contains(segment));
        self.bytes = self.sets.values().map(|set| set.max_value() as usize / 8 + 64).sum();
    }
}

impl PermissionTables {
    pub fn new(fields: Fields) -> PermissionTables {
        PermissionTables { fields, interned: RwLock::default(), segments: Mutex::default(), visible: Mutex::default() }
    }

    fn intern(&self, key: &str) -> u32 {
        if let Some(id) = self.interned.read().expect("interner lock").get(key) {
            return *id;
        }
        let mut interned = self.interned.write().expect("interner lock");
        let next = interned.len() as u32;
        *interned.entry(key.to_string()).or_insert(next)
    }

    fn source_key(source_id: &str) -> String {
        format!("\u{1e}source\u{1e}{source_id}")
    }

    /// The searcher's identities as a bit set over the interned keys (keys no item names are left out).
    fn compile(&self, viewer: &Viewer) -> Option<CompiledViewer> {
        let Viewer::Trimmed { keys, public_sources } = viewer else { return None };
        let interned = self.interned.read().expect("interner lock");
        let mut held = BitSet::with_max_value(interned.len() as u32 + 1);
        let ids = keys
            .iter()
            .map(String::as_str)
            .map(str::to_owned)
            .chain(public_sources.iter().map(|source| Self::source_key(source)));
        let mut public = HashSet::new();
        for (i, key) in ids.enumerate() {
            if let Some(id) = interned.get(&key) {
                if i >= keys.len() {
                    public.insert(*id);
                } else {
                    held.insert(*id);
                }
            }
        }
        Some(CompiledViewer { held, public })
    }

    /// The table of a segment, compiled on first use from its stored permissions.
    fn table(&self, segment: &SegmentReader) -> tantivy::Result<Arc<SegmentTable>> {
        if let Some(table) = self.segments.lock().expect("tables lock").get(&segment.segment_id()) {
            return Ok(table.clone());
        }
        let table = Arc::new(self.build(&self.fields, segment)?);
        self.segments.lock().expect("tables lock").insert(segment.segment_id(), table.clone());
        Ok(table)
    }

    fn build(&self, fields: &Fields, segment: &SegmentReader) -> tantivy::Result<SegmentTable> {
        let store = segment.get_store_reader(64)?;
        let mut ids: HashMap<Model, u32> = HashMap::new();
        let mut models = Vec::new();
        let mut doc_model = Vec::with_capacity(segment.max_doc() as usize);
        for doc in 0..segment.max_doc() {
            let document: TantivyDocument = store.get(doc)?;
            let source = document.get_first(fields.source).and_then(|v| v.as_str()).unwrap_or_default();
            let levels: Vec<PermissionLevel> = document
                .get_first(fields.permissions)
                .and_then(|v| v.as_bytes())
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or_default();
            let model = self.model(source, &levels);
            let next = models.len() as u32;
            let id = *ids.entry(model.clone()).or_insert_with(|| {
                models.push(model);
                next
            });
            doc_model.push(id);
        }
        Ok(SegmentTable { models, doc_model })
    }

    fn model(&self, source: &str, levels: &[PermissionLevel]) -> Model {
        let interned = |identities: &[intake_model::permissions::PermissionIdentity]| {
            identities
                .iter()
                .map(|i| {
                    let provider = i.security_provider.as_deref().unwrap_or_default();
                    self.intern(&identity_key(provider, &i.identity, i.identity_type))
                })
                .collect()
        };
        Model {
            source: self.intern(&Self::source_key(source)),
            levels: levels
                .iter()
                .map(|level| {
                    level
                        .sets
                        .iter()
                        .map(|set| SetModel {
                            anonymous: set.allow_anonymous,
                            allowed: interned(&set.allowed),
                            denied: interned(&set.denied),
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// Forgets the tables of segments the searcher no longer has (merged away).
    pub fn retain(&self, live: &[SegmentId]) {
        self.segments.lock().expect("tables lock").retain(|id, _| live.contains(id));
        self.visible.lock().expect("visible cache lock").retain(live);
    }

    /// A query matching the items `viewer` may see; `None` when it sees everything.
    pub fn visible_to(self: &Arc<Self>, viewer: &Viewer) -> Option<VisibleQuery> {
        match viewer {
            Viewer::All => None,
            Viewer::Trimmed { keys, public_sources } => Some(VisibleQuery {
                tables: self.clone(),
                viewer: Arc::new(viewer.clone()),
                fingerprint: fingerprint(keys, public_sources),
            }),
        }
    }

    /// Why `viewer` may or may not see an item with these permissions in `source`.
    pub fn decide(&self, viewer: &Viewer, source: &str, levels: &[PermissionLevel]) -> Decision {
        // The model first: it interns the keys the viewer is compiled against.
        let model = self.model(source, levels);
        match self.compile(viewer) {
            None => Decision::plain(true, Rule::ViewAll),
            Some(viewer) => model.decide(|id| viewer.holds(id), |id| viewer.public.contains(&id)),
        }
    }
}

struct CompiledViewer {
    held: BitSet,
    public: HashSet<u32>,
}

impl CompiledViewer {
    /// Whether the viewer holds an interned key (keys interned after it was compiled: no).
    fn holds(&self, id: u32) -> bool {
        id < self.held.max_value() && self.held.contains(id)
    }

    fn visible_docs(&self, table: &SegmentTable, max_doc: DocId) -> BitSet {
        let visible: Vec<bool> = table
            .models
            .iter()
            .map(|model| model.visible(|id| self.holds(id), |id| self.public.contains(&id)))
            .collect();
        let mut docs = BitSet::with_max_value(max_doc);
        for (doc, model) in table.doc_model.iter().enumerate() {
            if visible[*model as usize] {
                docs.insert(doc as DocId);
            }
        }
        docs
    }
}

/// Matches the documents a viewer may see (score 0: it filters, it does not rank).
#[derive(Clone)]
pub struct VisibleQuery {
    tables: Arc<PermissionTables>,
    viewer: Arc<Viewer>,
    /// Identifies the viewer's identities and public sources in the cache of visible sets.
    fingerprint: u64,
}

impl tantivy::Warmer for PermissionTables {
    /// Compiles the searcher's new segments. A segment that cannot be read now is left to the first search
    /// that meets it (which reports the error): a reader reload must not fail for it.
    fn warm(&self, searcher: &tantivy::Searcher) -> tantivy::Result<()> {
        for segment in searcher.segment_readers() {
            if let Err(error) = self.table(segment) {
                tracing::warn!(%error, "a segment's permissions could not be compiled ahead of search");
            }
        }
        Ok(())
    }

    /// Forgets the segments no live searcher holds.
    fn garbage_collect(&self, live_generations: &[&tantivy::SearcherGeneration]) {
        let live: Vec<SegmentId> =
            live_generations.iter().flat_map(|generation| generation.segments().keys().copied()).collect();
        self.retain(&live);
    }
}

/// A hash of a viewer's identities and public sources, in a stable order.
fn fingerprint(keys: &HashSet<String>, public_sources: &HashSet<String>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort();
    let mut sources: Vec<&String> = public_sources.iter().collect();
    sources.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (keys, sources).hash(&mut hasher);
    hasher.finish()
}

impl std::fmt::Debug for VisibleQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisibleQuery")
    }
}

impl Query for VisibleQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for VisibleQuery {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let key = (reader.segment_id(), self.fingerprint);
        let cached = self.tables.visible.lock().expect("visible cache lock").get(&key);
        let docs = match cached {
            Some(docs) => docs,
            None => {
                // The segment's table first: compiling it interns the keys its items name, which the viewer is
                // then compiled against.
                let table = self.tables.table(reader)?;
                let docs = Arc::new(match self.tables.compile(&self.viewer) {
                    Some(viewer) => viewer.visible_docs(&table, reader.max_doc()),
                    None => BitSet::with_max_value_and_full(reader.max_doc()),
                });
                self.tables.visible.lock().expect("visible cache lock").put(key, docs.clone());
                docs
            }
        };
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(BitSet::clone(&docs)), 0.0)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("visible to the searcher", 0.0))
        } else {
            Err(TantivyError::InvalidArgument("the searcher may not see this item".to_string()))
        }
    }
}
