//! Operations as the journal stores them: what a client asked for, validated, with its `orderingId`.

use serde::{Deserialize, Serialize};

use crate::OrderingId;
use crate::identity::IdentityChange;
use crate::item::Item;

/// One accepted operation. The journal holds these in acceptance order; the applier replays them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub organization_id: String,
    pub source_id: String,
    /// The client's `orderingId`, or epoch milliseconds at acceptance.
    pub ordering_id: OrderingId,
    pub request_id: String,
    /// Epoch milliseconds when the edge accepted it.
    pub accepted_at_ms: i64,
    pub kind: OperationKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OperationKind {
    AddOrUpdate(Box<Item>),
    Delete {
        document_id: String,
        delete_children: bool,
    },
    /// Deletes the source's items whose last operation has an `orderingId` below the operation's, once
    /// `queue_delay_minutes` have passed since acceptance.
    DeleteOlderThan {
        queue_delay_minutes: u32,
    },
    /// A batch file in a file container (validated when accepted), read and applied entry by entry.
    Batch {
        file_id: String,
    },
    /// The source was deleted: remove all of its items.
    PurgeSource,
    /// The organization was deleted: remove its whole index.
    PurgeOrganization,
    /// A security identity of a provider (`source_id` is empty: identities belong to providers, not sources).
    Identity {
        provider_id: String,
        change: IdentityChange,
    },
    /// An identity batch file in a file container (validated when accepted), applied whole.
    IdentityBatch {
        provider_id: String,
        file_id: String,
    },
    /// Disables the provider's identities last updated by an operation with an `orderingId` below the
    /// operation's, once `queue_delay_minutes` have passed since acceptance.
    DisableOldIdentities {
        provider_id: String,
        queue_delay_minutes: u32,
    },
    /// A full load of a catalog source (a closed stream): the entries of its chunks, in order, then the deletion
    /// of the source's items the load did not contain; applied and committed as one.
    StreamLoad {
        stream_id: String,
        file_ids: Vec<String>,
    },
    /// A stream update file: `addOrUpdate`, `delete` and `partialUpdate` entries.
    StreamUpdate {
        file_id: String,
    },
    /// A stream merge file: each entry's keys set over the stored item's.
    StreamMerge {
        file_id: String,
    },
}

/// The first byte of every encoded operation; bump it when the encoding changes.
const FORMAT_VERSION: u8 = 1;

impl Operation {
    /// The compact binary form the journal stores.
    pub fn encode(&self) -> Vec<u8> {
        // Sized up front: an item's data is most of the record, and growing the Vec would copy it repeatedly.
        let mut out = Vec::with_capacity(self.data_len() + 4096);
        out.push(FORMAT_VERSION);
        // Serializing plain data to a Vec cannot fail.
        postcard::to_io(self, &mut out).expect("an operation always encodes");
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Operation, String> {
        match bytes.split_first() {
            Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
            Some((version, _)) => Err(format!("unknown operation format version {version}")),
            None => Err("empty operation record".to_string()),
        }
    }

    /// Bytes of item data the operation carries.
    fn data_len(&self) -> usize {
        match &self.kind {
            OperationKind::AddOrUpdate(item) => match &item.content {
                crate::Content::Text(text) => text.len(),
                crate::Content::Compressed { bytes, .. } => bytes.len(),
                crate::Content::FileContainer { .. } => 0,
            },
            _ => 0,
        }
    }
}

/// `statusType` of `POST …/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceStatus {
    Incremental,
    Refresh,
    Rebuild,
    Idle,
}

impl SourceStatus {
    pub const ALLOWED: &'static str = "INCREMENTAL, REFRESH, REBUILD, IDLE";

    pub fn parse(value: &str) -> Option<SourceStatus> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "INCREMENTAL" => SourceStatus::Incremental,
            "REFRESH" => SourceStatus::Refresh,
            "REBUILD" => SourceStatus::Rebuild,
            "IDLE" => SourceStatus::Idle,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Incremental => "INCREMENTAL",
            SourceStatus::Refresh => "REFRESH",
            SourceStatus::Rebuild => "REBUILD",
            SourceStatus::Idle => "IDLE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Content, Item, MetaValue, Scalar};

    #[test]
    fn round_trips_through_the_binary_form() {
        let op = Operation {
            organization_id: "default".into(),
            source_id: "default-abc".into(),
            ordering_id: 42,
            request_id: "r1".into(),
            accepted_at_ms: 1_700_000_000_000,
            kind: OperationKind::AddOrUpdate(Box::new(Item {
                document_id: "file://a".into(),
                content: Content::Compressed { bytes: vec![1, 2, 3], compression: crate::CompressionType::Gzip },
                file_extension: Some(".html".into()),
                parent_id: None,
                permissions: vec![],
                metadata: vec![("rank".into(), MetaValue::One(Scalar::Float(1.5)))],
            })),
        };
        assert_eq!(Operation::decode(&op.encode()).unwrap(), op);
        assert!(Operation::decode(&[9, 1]).unwrap_err().contains("version 9"));
    }
}
