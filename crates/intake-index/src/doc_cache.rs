//! The stored documents of recent results, shared by every search of the process (as Solr's document cache):
//! reading a result's document decompresses its block of the document store and copies its text head out of
//! it, which is most of what a result costs once its excerpt comes from the postings. An entry is keyed by
//! segment and document, and a segment's stored values never change (a merge writes a new segment; a delete
//! only hides the document), so an entry is never stale: entries of segments merged away just age out. Bounded
//! in bytes, least recently used out first.

use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

use tantivy::index::SegmentId;
use tantivy::{DocAddress, DocId, Searcher};

use crate::results::StoredResult;

/// What the process's cache holds at most: a few thousand typical results (their text heads are what weighs).
pub const DOCUMENT_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// What an entry costs besides its stored values (the key, the map's slot, the value vector).
const ENTRY_OVERHEAD: usize = 256;

/// The process's cache of result documents.
pub static DOCUMENTS: LazyLock<DocumentCache> = LazyLock::new(|| DocumentCache::new(DOCUMENT_CACHE_BYTES));

pub struct DocumentCache {
    entries: Mutex<Entries>,
    limit: usize,
}

struct Entries {
    lru: lru::LruCache<(SegmentId, DocId), Arc<StoredResult>>,
    bytes: usize,
}

impl DocumentCache {
    pub fn new(limit: usize) -> DocumentCache {
        // The count bound is never the one reached first: every entry weighs at least its overhead.
        let count = NonZeroUsize::new(limit / ENTRY_OVERHEAD + 1).expect("at least one");
        DocumentCache { entries: Mutex::new(Entries { lru: lru::LruCache::new(count), bytes: 0 }), limit }
    }

    /// The stored document at `address` of `searcher`, from the cache or read (and kept when it fits in an
    /// eighth of the cache: one huge document does not empty it).
    pub fn get(&self, searcher: &Searcher, address: DocAddress) -> tantivy::Result<Arc<StoredResult>> {
        let key = (searcher.segment_reader(address.segment_ord).segment_id(), address.doc_id);
        if let Some(found) = self.entries.lock().expect("document cache lock").lru.get(&key) {
            return Ok(found.clone());
        }
        let read: Arc<StoredResult> = Arc::new(searcher.doc(address)?);
        let weight = read.held_bytes() + ENTRY_OVERHEAD;
        if weight <= self.limit / 8 {
            let mut entries = self.entries.lock().expect("document cache lock");
            if let Some((_, replaced)) = entries.lru.push(key, read.clone()) {
                entries.bytes -= replaced.held_bytes() + ENTRY_OVERHEAD;
            }
            entries.bytes += weight;
            while entries.bytes > self.limit {
                let Some((_, evicted)) = entries.lru.pop_lru() else { break };
                entries.bytes -= evicted.held_bytes() + ENTRY_OVERHEAD;
            }
        }
        Ok(read)
    }

    /// How many bytes the cache holds (tests and metrics).
    pub fn bytes(&self) -> usize {
        self.entries.lock().expect("document cache lock").bytes
    }
}

#[cfg(test)]
mod tests {
    use tantivy::{Index, TantivyDocument};

    use super::*;
    use crate::schema::{build_schema, register_tokenizers};

    #[test]
    fn documents_are_read_once_and_the_cache_stays_within_its_bytes() {
        let (schema, fields) = build_schema();
        let index = Index::create_in_ram(schema);
        register_tokenizers(&index);
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        for n in 0..40 {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.uri, format!("file://{n}"));
            // Every tenth document is larger than an eighth of the cache.
            doc.add_text(fields.text_head, "x".repeat(if n % 10 == 9 { 20_000 } else { 2_000 }));
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let cache = DocumentCache::new(64 * 1024);
        let address = |doc_id| DocAddress::new(0, doc_id);
        let first = cache.get(&searcher, address(0)).unwrap();
        assert!(Arc::ptr_eq(&first, &cache.get(&searcher, address(0)).unwrap()), "the second read is the cached one");
        let large = cache.get(&searcher, address(9)).unwrap();
        assert!(!Arc::ptr_eq(&large, &cache.get(&searcher, address(9)).unwrap()), "too large to be kept");
        for doc_id in 0..40 {
            let doc = cache.get(&searcher, address(doc_id)).unwrap();
            assert!(doc.stored_bytes() >= 2_000);
            assert!(cache.bytes() <= 64 * 1024, "{} bytes held", cache.bytes());
        }
        assert!(cache.bytes() > 32 * 1024, "the cache is used: {}", cache.bytes());
        // The most recent documents are there; the first ones went first.
        let recent = cache.get(&searcher, address(38)).unwrap();
        assert!(Arc::ptr_eq(&recent, &cache.get(&searcher, address(38)).unwrap()));
        let again = cache.get(&searcher, address(0)).unwrap();
        assert!(!Arc::ptr_eq(&again, &first), "read again: it went out first");
    }
}
