//! The embedded catalog and item log: SQLite files in the data directory, with versioned schemas.

mod catalog;
mod containers;
mod identities;
mod item_log;
mod limits;
pub mod migrations;
mod providers;
mod streams;

pub use catalog::SqliteCatalog;
pub use identities::SqliteIdentities;
pub use item_log::SqliteItemLog;
