//! Intake's index: a tantivy index per organization, the rules that apply journaled operations to it
//! (highest `orderingId` wins, tombstones, delete-older-than watermarks), HTML text extraction, and search
//! with Coveo's query syntax, facets and sorts, trimmed to what the searcher's security identities may see.

pub mod columns;
pub mod convert;
pub mod doc_cache;
pub mod excerpt;
pub mod extract;
pub mod facets;
mod html_text;
pub mod org_index;
pub mod pdf;
pub mod prepare;
pub mod query;
pub mod results;
pub mod rtf;
pub mod schema;
pub mod search;
pub mod security;
pub mod sort;
pub mod stem;
pub mod suggest;
pub mod syntax;

pub use org_index::{BatchProgress, IndexError, IndexState, OpInfo, OrgIndex, Outcome, Stored};
pub use prepare::{ContainerError, ContainerReader, FieldTypes, ItemParts, ItemTarget, PreparedItem, prepare_item};
pub use search::{SearchRequest, SearchResponse, search};
pub use sort::SortCriteria;
