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

impl LogResult {
    /// What an outcome means and what to do about it (the console explains each log entry with this).
    pub fn explanation(self) -> (&'static str, &'static str) {
        match self {
            LogResult::Completed => (
                "The operation is committed: the item is searchable as pushed (or gone, for a delete).",
                "Nothing to do.",
            ),
            LogResult::Warning => (
                "The item is indexed, but not all of it: its conversion to text stopped (the conversion timeout or \
                 the expansion limit was reached), or a stream entry was applied with a change the message names.",
                "Read the message: split or simplify the file, or raise --conversion-timeout-seconds or \
                 --conversion-max-mb (docs/operations.md).",
            ),
            LogResult::Rejected => (
                "The item was refused before indexing: it breaks a limit (its size, the organization's item count) \
                 or a rule of the source (a partial update or merge of an item that is not there, a field of \
                 another type).",
                "Read the message for the limit or rule; change the item, or raise the limit \
                 (`intake admin limit set`), then push it again.",
            ),
            LogResult::Skipped => (
                "Nothing was done: a newer version of the item (a higher orderingId) is already indexed, or an \
                 identity was unchanged.",
                "Nothing to do, unless this push should have won: send it with a higher orderingId (by default \
                 the time of the request, in milliseconds).",
            ),
            LogResult::Error => (
                "The item could not be indexed: its data is invalid (not the type its field is declared as, a \
                 file container that cannot be read, content that cannot be decoded), or a batch entry is malformed.",
                "Read the message for the field or entry named, fix it in the connector, and push the item again.",
            ),
        }
    }
}

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
