//! The embedded catalog and item log: SQLite files in the data directory, with versioned schemas.

mod catalog;
mod containers;
mod item_log;
mod limits;
pub mod migrations;

pub use catalog::SqliteCatalog;
pub use item_log::SqliteItemLog;
