//! Packing items into batch files: `{"addOrUpdate": [item, …], "delete": [{"documentId": …}, …]}`, each at most
//! a given size, written as the items come so a batch is never built twice.

use bytes::Bytes;

/// Builds one batch file at a time; [`BatchPacker::push_add`] says when the current one is full.
pub struct BatchPacker {
    max_bytes: usize,
    adds: Vec<u8>,
    deletes: Vec<u8>,
    items: usize,
}

/// Bytes a batch file has besides its entries: `{"addOrUpdate":[`, `],"delete":[`, `]}`.
const FRAME_BYTES: usize = 32;

impl BatchPacker {
    /// Batches of at most `max_bytes` (a single entry larger than that makes a batch of its own).
    pub fn new(max_bytes: usize) -> BatchPacker {
        BatchPacker { max_bytes, adds: Vec::new(), deletes: Vec::new(), items: 0 }
    }

    /// Adds an `addOrUpdate` entry (a JSON object with `documentId`); returns the full batch to send first
    /// when this entry does not fit in the current one.
    pub fn push_add(&mut self, entry: &[u8]) -> Option<Bytes> {
        let full = self.take_if_over(entry.len());
        append(&mut self.adds, entry);
        self.items += 1;
        full
    }

    /// Adds a `delete` entry for `document_id`.
    pub fn push_delete(&mut self, document_id: &str, delete_children: bool) -> Option<Bytes> {
        let entry =
            serde_json::to_vec(&serde_json::json!({"documentId": document_id, "deleteChildren": delete_children}))
                .expect("JSON serializes");
        let full = self.take_if_over(entry.len());
        append(&mut self.deletes, &entry);
        self.items += 1;
        full
    }

    /// Entries in the current batch.
    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The current batch, if it has anything; the packer starts a new one.
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.items == 0 {
            return None;
        }
        let mut file = Vec::with_capacity(self.adds.len() + self.deletes.len() + FRAME_BYTES);
        file.extend_from_slice(b"{\"addOrUpdate\":[");
        file.append(&mut self.adds);
        file.extend_from_slice(b"],\"delete\":[");
        file.append(&mut self.deletes);
        file.extend_from_slice(b"]}");
        self.items = 0;
        Some(Bytes::from(file))
    }

    fn take_if_over(&mut self, entry: usize) -> Option<Bytes> {
        let size = self.adds.len() + self.deletes.len() + FRAME_BYTES + 1 + entry;
        if self.items > 0 && size > self.max_bytes { self.finish() } else { None }
    }
}

fn append(list: &mut Vec<u8>, entry: &[u8]) {
    if !list.is_empty() {
        list.push(b',');
    }
    list.extend_from_slice(entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_valid_json_and_never_over_the_size() {
        let mut packer = BatchPacker::new(200);
        let mut batches = Vec::new();
        for n in 0..20 {
            let entry = format!(r#"{{"documentId":"file://{n}","data":"some text"}}"#);
            batches.extend(packer.push_add(entry.as_bytes()));
            if n % 5 == 0 {
                batches.extend(packer.push_delete(&format!("file://old/{n}"), false));
            }
        }
        batches.extend(packer.finish());
        assert!(packer.finish().is_none());
        let mut adds = 0;
        let mut deletes = 0;
        for batch in &batches {
            assert!(batch.len() <= 200, "{}", batch.len());
            let value: serde_json::Value = serde_json::from_slice(batch).unwrap();
            adds += value["addOrUpdate"].as_array().unwrap().len();
            deletes += value["delete"].as_array().unwrap().len();
        }
        assert_eq!((adds, deletes), (20, 4));
        assert!(batches.len() > 3);
    }

    #[test]
    fn an_entry_larger_than_a_batch_goes_alone() {
        let mut packer = BatchPacker::new(50);
        assert!(packer.push_add(br#"{"documentId":"a","data":"x"}"#).is_none());
        let big = format!(r#"{{"documentId":"b","data":"{}"}}"#, "y".repeat(100));
        let first = packer.push_add(big.as_bytes()).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&first).unwrap()["addOrUpdate"][0]["documentId"], "a");
        let second = packer.finish().unwrap();
        assert!(second.len() > 100);
    }
}
