//! The vocabulary of the item log, as in Coveo's Logs API: what was done to an item and how it ended.

use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $wire:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),* }
            }

            /// Parses the wire spelling, ignoring case.
            pub fn parse(value: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(value))
            }
        }
    };
}

wire_enum!(
    /// What was asked of the item.
    LogOperation {
        Add => "ADD",
        AddByReference => "ADD_BY_REFERENCE",
        BatchFile => "BATCH_FILE",
        Delete => "DELETE",
        DeleteAndChildren => "DELETE_AND_CHILDREN",
        DeleteOlderThan => "DELETE_OLDER_THAN",
        Update => "UPDATE",
    }
);

wire_enum!(
    /// How it ended.
    LogResult {
        Completed => "COMPLETED",
        Error => "ERROR",
        Rejected => "REJECTED",
        Skipped => "SKIPPED",
        Warning => "WARNING",
    }
);

wire_enum!(
    /// The pipeline stage that decided it.
    LogTask {
        Consuming => "CONSUMING",
        ConsumingBatch => "CONSUMING_BATCH",
        Crawling => "CRAWLING",
        StreamingExtension => "STREAMING_EXTENSION",
        Extension => "EXTENSION",
        Indexing => "INDEXING",
        Mapping => "MAPPING",
        Processing => "PROCESSING",
        Streaming => "STREAMING",
        StreamingBatch => "STREAMING_BATCH",
        Preindexing => "PREINDEXING",
        Validation => "VALIDATION",
    }
);
