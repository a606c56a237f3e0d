//! The tantivy schema of an organization's index.
//!
//! One tantivy document per item, keyed by `key` = source id + U+001F + document id. A deleted item leaves a
//! tombstone (`live` = 0, no text) holding its `orderingId`, so an older add that arrives later still loses.

use tantivy::schema::{
    FAST, INDEXED, IndexRecordOption, JsonObjectOptions, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};

use crate::stem::MemoStemmer;
use tantivy::{Index, schema::Field};

/// Exact-match fields compare whole values, ignoring case (Coveo's `@field==value`).
pub const EXACT_TOKENIZER: &str = "raw_lower";
/// Full text: English stemming, as the raw reference indexes it.
pub const TEXT_TOKENIZER: &str = "en_stem";

/// How much of an item's text is stored for excerpts.
pub const TEXT_HEAD_BYTES: usize = 64 * 1024;

/// Under `meta_typed`: every scalar metadata value and the standard `title`, `source` and `filetype` as text in
/// their original case (`meta_typed.~s.author`), the columns that facets count and string sorts read. The `~`
/// keeps them apart from declared fields, whose names start with a letter.
pub const FACET_STRINGS: &str = "~s";
/// Under `meta_typed`: the standard numbers (`size`), for sorts and range facets.
pub const STANDARD_NUMBERS: &str = "~n";
/// The longest facet value kept, in bytes (longer values are cut at a character).
pub const MAX_FACET_VALUE_BYTES: usize = 4096;
/// The most values of one field an item contributes to facets.
pub const MAX_FACET_VALUES: usize = 256;

/// Handles of every field.
#[derive(Debug, Clone)]
pub struct Fields {
    pub key: Field,
    pub uri: Field,
    pub source: Field,
    pub source_name: Field,
    pub ordering_id: Field,
    pub live: Field,
    pub title: Field,
    pub title_exact: Field,
    /// The item's whole text, indexed, not stored.
    pub body: Field,
    /// The first [`TEXT_HEAD_BYTES`] of the text, stored for excerpts (a result never loads a whole book); and,
    /// as its second value, the text's word marks ([`crate::excerpt::marks`]), which place an excerpt without
    /// reading the text whole. Items indexed before marks were stored have only the text.
    pub text_head: Field,
    pub filetype: Field,
    pub date: Field,
    /// Metadata as given (typed JSON), stored as bytes for `raw`.
    pub meta: Field,
    /// Metadata values as lower-cased text under lower-cased keys, for field queries.
    pub meta_exact: Field,
    /// Metadata of declared numeric and date fields, typed (dates as epoch ms), for range queries; and under
    /// [`FACET_STRINGS`] and [`STANDARD_NUMBERS`] the columns of facets and sorts. Fast only, not indexed.
    pub meta_typed: Field,
    /// Permission levels as JSON, stored for permission-trimmed search.
    pub permissions: Field,
    pub parent_id: Field,
    pub file_extension: Field,
    pub size: Field,
    pub indexed_at: Field,
}

pub fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let exact = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(EXACT_TOKENIZER).set_index_option(IndexRecordOption::Basic),
    );
    let full_text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        uri: builder.add_text_field("uri", STRING | STORED),
        source: builder.add_text_field("source", STRING | STORED | FAST),
        source_name: builder.add_text_field("source_name", exact.clone().set_stored()),
        ordering_id: builder.add_i64_field("ordering_id", INDEXED | FAST | STORED),
        live: builder.add_u64_field("live", INDEXED | FAST),
        title: builder.add_text_field("title", full_text.clone().set_stored()),
        title_exact: builder.add_text_field("title_exact", exact.clone()),
        body: builder.add_text_field("body", full_text),
        text_head: builder.add_text_field("text_head", STORED),
        filetype: builder.add_text_field("filetype", exact.clone().set_stored()),
        date: builder.add_date_field("date", INDEXED | FAST | STORED),
        meta: builder.add_bytes_field("meta", STORED),
        meta_exact: builder.add_json_field(
            "meta_exact",
            JsonObjectOptions::default().set_indexing_options(
                TextFieldIndexing::default().set_tokenizer(EXACT_TOKENIZER).set_index_option(IndexRecordOption::Basic),
            ),
        ),
        meta_typed: builder.add_json_field("meta_typed", JsonObjectOptions::default().set_fast(None)),
        permissions: builder.add_bytes_field("permissions", STORED),
        parent_id: builder.add_text_field("parent_id", STRING | STORED),
        file_extension: builder.add_text_field("file_extension", STORED),
        size: builder.add_u64_field("size", STORED),
        indexed_at: builder.add_i64_field("indexed_at", STORED),
    };
    (builder.build(), fields)
}

/// Registers the tokenizers the schema names.
pub fn register_tokenizers(index: &Index) {
    index
        .tokenizers()
        .register(EXACT_TOKENIZER, TextAnalyzer::builder(RawTokenizer::default()).filter(LowerCaser).build());
    // tantivy's own `en_stem`, with the stemmer remembering the words it has seen.
    index.tokenizers().register(
        TEXT_TOKENIZER,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(MemoStemmer)
            .build(),
    );
}

/// The unique key of an item in an organization's index.
pub fn item_key(source_id: &str, document_id: &str) -> String {
    format!("{source_id}\u{1f}{document_id}")
}
