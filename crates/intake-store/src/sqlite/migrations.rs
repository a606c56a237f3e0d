//! Versioned schemas of the SQLite files, with `rusqlite_migration` (the version is SQLite's `user_version`).
//!
//! Each file's schema is a list of steps, applied in order and atomically by [`migrate`]; a step is never
//! edited once released — a change is a new step at the end. The steps that existed before versioning create
//! their tables `IF NOT EXISTS`, so a data directory from a release before it is brought to the current
//! version without change. A file newer than this build (written by a later release) is refused, not guessed
//! at.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations, SchemaVersion};

use crate::StoreError;

/// `catalog.sqlite`: organizations, sources, keys, fields and settings (1); file containers (2); limits, daily
/// usage and fault rules (3); security providers (4); streams of catalog sources (5) — the order they came in.
pub const CATALOG: &[M<'static>] = &[
    M::up(super::catalog::SCHEMA_V1).comment("organizations, sources, API keys, fields, settings"),
    M::up(super::containers::SCHEMA_V2).comment("file containers"),
    M::up(super::limits::SCHEMA_V3).comment("limit overrides, daily usage, fault rules"),
    M::up(super::providers::SCHEMA_V4).comment("security providers"),
    M::up(super::streams::SCHEMA_V5).comment("streams of catalog sources"),
];

/// `identities.sqlite`: security identities.
pub const IDENTITIES: &[M<'static>] = &[M::up(super::identities::SCHEMA_V1).comment("security identities")];

/// `logs.sqlite`: the item log.
pub const ITEM_LOG: &[M<'static>] = &[M::up(super::item_log::SCHEMA_V1).comment("item log")];

/// Brings `connection`'s schema to the last of `steps`; `file` names it in errors.
pub(crate) fn migrate(connection: &mut Connection, steps: &'static [M<'static>], file: &str) -> Result<(), StoreError> {
    let migrations = Migrations::from_slice(steps);
    let latest = steps.len();
    let current = match migrations.current_version(connection).map_err(|e| failed(file, e))? {
        SchemaVersion::Outside(version) => {
            return Err(StoreError::Schema(format!(
                "{file} has schema version {version}, but this build knows versions up to {latest}: it was written \
                 by a newer release of Intake. Run that release, or restore a backup made for this one"
            )));
        }
        SchemaVersion::Inside(version) => version.get(),
        SchemaVersion::NoneSet => 0,
    };
    if current < latest {
        tracing::info!(file, from = current, to = latest, "migrating the schema");
        migrations.to_latest(connection).map_err(|e| failed(file, e))?;
    }
    Ok(())
}

fn failed(file: &str, error: rusqlite_migration::Error) -> StoreError {
    StoreError::Schema(format!("the schema of {file} could not be brought up to date: {error}"))
}

/// The schema version of a SQLite file (its `user_version`).
pub fn schema_version(path: &std::path::Path) -> Result<i64, StoreError> {
    let connection = Connection::open(path)?;
    Ok(connection.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_of_steps_is_valid() {
        Migrations::from_slice(CATALOG).validate().unwrap();
        Migrations::from_slice(ITEM_LOG).validate().unwrap();
        Migrations::from_slice(IDENTITIES).validate().unwrap();
    }

    #[test]
    fn a_file_from_a_newer_release_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let mut connection = Connection::open(dir.path().join("catalog.sqlite")).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        let error = migrate(&mut connection, CATALOG, "catalog.sqlite").unwrap_err().to_string();
        assert!(error.contains("catalog.sqlite has schema version 99"), "{error}");
        assert!(error.contains("knows versions up to 5") && error.contains("newer release"), "{error}");
    }
}
