//! Permissions decided at query time: the identity graph a searcher is resolved in ([`graph`]) and the
//! trimming of search to the items those identities may see ([`trim`]). Nothing here is written into the
//! index, so an identity pushed, changed or disabled changes what users see without re-indexing an item.

pub mod graph;
pub mod trim;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub use graph::{Applied, EVERYONE, IdentityGraph, IdentityRef, Relation, Resolution, identity_key};
pub use trim::{Decision, PermissionTables, Rule, Viewer, VisibleQuery};

/// The live items with this document id (one per source holding it), with their source and permissions.
pub fn item_permissions(
    searcher: &tantivy::Searcher,
    fields: &crate::schema::Fields,
    document_id: &str,
) -> tantivy::Result<Vec<(String, Vec<intake_model::permissions::PermissionLevel>)>> {
    use tantivy::query::TermQuery;
    use tantivy::schema::{IndexRecordOption, Value as _};
    use tantivy::{TantivyDocument, Term};
    let query = TermQuery::new(Term::from_field_text(fields.uri, document_id), IndexRecordOption::Basic);
    let hits = searcher.search(&query, &tantivy::collector::DocSetCollector)?;
    let mut items = Vec::new();
    for address in hits {
        let document: TantivyDocument = searcher.doc(address)?;
        let Some(levels) = document.get_first(fields.permissions).and_then(|v| v.as_bytes()) else {
            continue; // a tombstone: deleted
        };
        let source = document.get_first(fields.source).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        items.push((source, serde_json::from_slice(levels).unwrap_or_default()));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(items)
}

/// Every organization's identity graph, shared by the applier (which changes them) and search (which reads
/// them).
#[derive(Default)]
pub struct IdentityGraphs {
    graphs: RwLock<HashMap<String, Arc<RwLock<IdentityGraph>>>>,
}

impl IdentityGraphs {
    /// The organization's graph (empty until identities are pushed).
    pub fn of(&self, organization_id: &str) -> Arc<RwLock<IdentityGraph>> {
        if let Some(graph) = self.graphs.read().expect("graphs lock").get(organization_id) {
            return graph.clone();
        }
        let mut graphs = self.graphs.write().expect("graphs lock");
        graphs
            .entry(organization_id.to_string())
            .or_insert_with(|| Arc::new(RwLock::new(IdentityGraph::new(organization_id))))
            .clone()
    }

    /// Installs an organization's graph as loaded from the store.
    pub fn install(&self, graph: IdentityGraph, organization_id: &str) {
        self.graphs.write().expect("graphs lock").insert(organization_id.to_string(), Arc::new(RwLock::new(graph)));
    }

    pub fn remove(&self, organization_id: &str) {
        self.graphs.write().expect("graphs lock").remove(organization_id);
    }
}
