//! Which backend holds what, from the configuration: the embedded SQLite files in the data directory by default,
//! or, given `--database postgres://…`, a PostgreSQL database that the nodes of a cluster share.

use std::sync::Arc;

use intake_store::{Catalog, IdentityStore, PgCatalog, PgIdentities, Postgres, SqliteCatalog, SqliteIdentities};

use crate::ServerConfig;

/// The catalog and the identity store.
pub fn open_catalog(config: &ServerConfig) -> anyhow::Result<(Arc<dyn Catalog>, Arc<dyn IdentityStore>)> {
    match &config.database {
        Some(url) => {
            let postgres = Postgres::connect(url)
                .map_err(|e| anyhow::anyhow!("the database {} could not be opened: {e}", redacted(url)))?;
            tracing::info!(database = %redacted(url), "the catalog is in PostgreSQL");
            Ok((Arc::new(PgCatalog::open(postgres.clone())?), Arc::new(PgIdentities::open(postgres))))
        }
        None => Ok((
            Arc::new(SqliteCatalog::open(&config.data_dir.join("catalog.sqlite"))?),
            Arc::new(SqliteIdentities::open(&config.data_dir.join("identities.sqlite"))?),
        )),
    }
}

/// A database URL fit for a log or an error: its password replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_never_reaches_a_log() {
        assert_eq!(super::redacted("postgres://app:s3cret@db:5432/intake"), "postgres://app:***@db:5432/intake");
        assert_eq!(super::redacted("postgres://app@db/intake"), "postgres://app@db/intake");
        assert_eq!(super::redacted("not a url"), "not a url");
    }
}
