//! The parallel stage: items are decompressed, their text extracted and their documents built on every core,
//! a window at a time, before they are applied in journal order.

use std::collections::HashMap;

use intake_index::convert::Budget;
use intake_index::prepare::{ContainerError, ContainerReader, FieldTypes, ItemTarget, PreparedItem, prepare_item};
use intake_index::schema::Fields;
use intake_model::item::Item;
use intake_model::{Operation, OrderingId};
use intake_store::{Catalog, EMAIL_PROVIDER, StoreError};
use rayon::prelude::*;

use crate::{ApplierConfig, Inputs};

/// Where an item comes from: the operation that carries it (for a batch entry, the batch's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub organization_id: &'a str,
    pub source_id: &'a str,
    pub ordering_id: OrderingId,
    /// Epoch milliseconds of acceptance.
    pub accepted_at_ms: i64,
}

impl<'a> Origin<'a> {
    pub fn of(operation: &'a Operation) -> Origin<'a> {
        Origin {
            organization_id: &operation.organization_id,
            source_id: &operation.source_id,
            ordering_id: operation.ordering_id,
            accepted_at_ms: operation.accepted_at_ms,
        }
    }
}

/// Prepares items in parallel; the result has one entry per entry of `items`, `None` where it has no item.
pub(crate) fn prepare(
    inputs: &Inputs,
    fields: &Fields,
    config: &ApplierConfig,
    items: &[Option<(Origin, &Item)>],
) -> Vec<Option<PreparedItem>> {
    let now_ms = inputs.clock.now_ms();
    let mut declared: HashMap<&str, FieldTypes> = HashMap::new();
    let mut graphs = HashMap::new();
    let mut sources: HashMap<(&str, &str), SourceFacts> = HashMap::new();
    for (origin, _) in items.iter().flatten() {
        let (org, src) = (origin.organization_id, origin.source_id);
        declared.entry(org).or_insert_with(|| field_types(inputs.catalog.as_ref(), org));
        graphs.entry(org).or_insert_with(|| inputs.identities.of(org));
        sources.entry((org, src)).or_insert_with(|| SourceFacts::of(inputs.catalog.as_ref(), org, src));
    }
    let graphs: HashMap<&str, _> =
        graphs.iter().map(|(org, graph)| (*org, graph.read().expect("identity graph lock"))).collect();
    items
        .par_iter()
        .map(|work| {
            let (origin, item) = work.as_ref()?;
            let (org, src) = (origin.organization_id, origin.source_id);
            let source = &sources[&(org, src)];
            let target = ItemTarget {
                organization_id: org,
                source_id: src,
                source_name: &source.name,
                ordering_id: origin.ordering_id,
                accepted_at_ms: origin.accepted_at_ms,
                now_ms,
                max_item_bytes: config.max_item_bytes,
                conversion: config.conversion,
                field_types: &declared[org],
                containers: inputs,
                default_provider: &source.provider,
                secured: source.secured,
                identities: Some(&*graphs[org]),
                whole_text: source.catalog,
            };
            Some(prepare_item(item, &target, fields))
        })
        .collect()
}

/// What building an item's document sequentially needs (a partial update, a merge): the facts of its source
/// and the organization's declared fields, looked up once for many items.
pub(crate) struct Rebuild<'a> {
    inputs: &'a Inputs,
    origin: Origin<'a>,
    source: SourceFacts,
    field_types: FieldTypes,
    now_ms: i64,
    max_item_bytes: u64,
    conversion: Budget,
}

impl<'a> Rebuild<'a> {
    pub fn new(inputs: &'a Inputs, origin: Origin<'a>, config: &ApplierConfig) -> Rebuild<'a> {
        let catalog = inputs.catalog.as_ref();
        Rebuild {
            source: SourceFacts::of(catalog, origin.organization_id, origin.source_id),
            field_types: field_types(catalog, origin.organization_id),
            now_ms: inputs.clock.now_ms(),
            inputs,
            origin,
            max_item_bytes: config.max_item_bytes,
            conversion: config.conversion,
        }
    }

    /// The target of the origin's items.
    pub fn target(&self) -> ItemTarget<'_> {
        ItemTarget {
            organization_id: self.origin.organization_id,
            source_id: self.origin.source_id,
            source_name: &self.source.name,
            ordering_id: self.origin.ordering_id,
            accepted_at_ms: self.origin.accepted_at_ms,
            now_ms: self.now_ms,
            max_item_bytes: self.max_item_bytes,
            conversion: self.conversion,
            field_types: &self.field_types,
            containers: self.inputs,
            default_provider: &self.source.provider,
            secured: self.source.secured,
            identities: None,
            whole_text: self.source.catalog,
        }
    }
}

/// What preparing an item needs to know of its source.
struct SourceFacts {
    name: String,
    /// The provider its items' permissions default to: the first provider that references the source, or the
    /// Email Security Provider.
    provider: String,
    secured: bool,
    /// A CATALOG source: its items' whole text is stored (see [`ItemTarget::whole_text`]).
    catalog: bool,
}

impl SourceFacts {
    fn of(catalog: &dyn Catalog, organization_id: &str, source_id: &str) -> SourceFacts {
        let source = catalog.source(organization_id, source_id);
        let providers = catalog.providers(organization_id).unwrap_or_default();
        let provider = providers
            .into_iter()
            .find(|provider| provider.sources.iter().any(|s| s == source_id))
            .map_or_else(|| EMAIL_PROVIDER.to_string(), |provider| provider.id);
        SourceFacts {
            name: source.as_ref().map_or_else(|| source_id.to_string(), |s| s.name.clone()),
            provider,
            secured: source.as_ref().is_some_and(|s| !s.visibility.eq_ignore_ascii_case("SHARED")),
            catalog: source.is_some_and(|s| s.source_type.eq_ignore_ascii_case("CATALOG")),
        }
    }
}

/// The declared fields of an organization, by name.
pub fn field_types(catalog: &dyn Catalog, organization_id: &str) -> FieldTypes {
    catalog.fields(organization_id).into_iter().map(|field| (field.name, field.field_type)).collect()
}

impl ContainerReader for Inputs {
    /// An uploaded container of the organization, for an item or a batch that points at it. A store that cannot
    /// be read now (the database or S3 unreachable, an I/O error) is [`ContainerError::Unavailable`]: only a
    /// container that is not there fails what points at it.
    fn open(&self, organization_id: &str, file_id: &str) -> Result<Box<dyn std::io::Read + Send>, ContainerError> {
        let missing = || ContainerError::Missing(format!("file container '{file_id}' does not exist or has expired"));
        let unavailable =
            |e: StoreError| ContainerError::Unavailable(format!("file container '{file_id}' cannot be read now: {e}"));
        let container = self.catalog.container(file_id).map_err(unavailable)?.ok_or_else(missing)?;
        if container.organization_id != organization_id {
            return Err(missing());
        }
        if container.size.is_none() {
            return Err(ContainerError::Missing(format!("file container '{file_id}' was never uploaded to")));
        }
        let content =
            self.blobs.open(file_id).map_err(|e| if e.is_not_found() { missing() } else { unavailable(e) })?;
        Ok(Box::new(std::io::BufReader::with_capacity(256 * 1024, content)))
    }
}
