//! Which backend holds what, from the configuration: the embedded SQLite files, journal folder and containers
//! folder in the data directory by default; given `--database postgres://…`, a PostgreSQL database that the nodes
//! of a cluster share (catalog, identities, journal, item log); given `--blobs s3://…`, an S3 bucket for the
//! bytes of file containers.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use intake_store::catalog::random_id;
use intake_store::{
    BlobStore, Catalog, FileJournal, IdentityStore, ItemLog, Journal, LocalBlobs, Ownership, PgCatalog, PgCounters,
    PgIdentities, PgItemLog, PgJournal, PgOwnership, Postgres, S3Blobs, SharedCounters, SingleNode, SqliteCatalog,
    SqliteIdentities, SqliteItemLog,
};

use crate::ServerConfig;

/// Which backends a node runs on, as `/ready` and `/metrics` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Layout {
    /// `sqlite` (embedded) or `postgresql`: the catalog, identities, journal and item log.
    pub database: &'static str,
    /// `local` (`<data-dir>/containers`) or `s3`: the bytes of file containers.
    pub blobs: &'static str,
}

impl Layout {
    pub fn of(config: &ServerConfig) -> Layout {
        Layout {
            database: if config.database.is_some() { "postgresql" } else { "sqlite" },
            blobs: if config.blobs.is_some() { "s3" } else { "local" },
        }
    }
}

/// The stores of one node.
pub struct Stores {
    pub catalog: Arc<dyn Catalog>,
    pub identity_store: Arc<dyn IdentityStore>,
    pub journal: Arc<dyn Journal>,
    pub item_log: Arc<dyn ItemLog>,
    pub blobs: Arc<dyn BlobStore>,
    /// Index snapshots (with a shared database): beside the containers, in their own folder or prefix.
    pub snapshots: Arc<dyn BlobStore>,
    /// The shared database, when there is one: index leases are taken in it once the node listens.
    pub postgres: Option<Arc<Postgres>>,
    /// The quota counters the nodes share, with a shared database.
    pub counters: Option<Arc<dyn SharedCounters>>,
}

/// The blob stores: file containers, index snapshots, and the PostgreSQL journal's large records (with S3 only).
struct Blobs {
    containers: Arc<dyn BlobStore>,
    snapshots: Arc<dyn BlobStore>,
    journal_objects: Option<Arc<dyn BlobStore>>,
}

fn open_blobs(config: &ServerConfig) -> anyhow::Result<Blobs> {
    let data_dir = &config.data_dir;
    Ok(match &config.blobs {
        Some(location) => {
            tracing::info!(bucket = %location.bucket, prefix = %location.prefix, "file containers are in S3");
            let containers = S3Blobs::open(location.clone(), &data_dir.join("spool"))?;
            Blobs {
                snapshots: Arc::new(containers.area("snapshots")),
                journal_objects: Some(Arc::new(containers.area("journal"))),
                containers: Arc::new(containers),
            }
        }
        None => {
            let containers: Arc<dyn BlobStore> = Arc::new(LocalBlobs::open(&data_dir.join("containers"))?);
            let snapshots: Arc<dyn BlobStore> = match &config.database {
                Some(_) => Arc::new(LocalBlobs::open(&data_dir.join("snapshots"))?),
                None => containers.clone(), // one node publishes no snapshots
            };
            Blobs { containers, snapshots, journal_objects: None }
        }
    })
}

/// Opens the stores the configuration names.
pub fn open(config: &ServerConfig) -> anyhow::Result<Stores> {
    let data_dir = &config.data_dir;
    let Blobs { containers: blobs, snapshots, journal_objects } = open_blobs(config)?;
    match &config.database {
        Some(url) => {
            let postgres = Postgres::connect(url)
                .map_err(|e| anyhow::anyhow!("the database {} could not be opened: {e}", redacted(url)))?;
            tracing::info!(database = %redacted(url), "the catalog, journal and item log are in PostgreSQL");
            let node = node_name(data_dir)?;
            Ok(Stores {
                catalog: Arc::new(PgCatalog::open(postgres.clone())?),
                identity_store: Arc::new(PgIdentities::open(postgres.clone())),
                journal: Arc::new(PgJournal::open(postgres.clone(), &node, journal_objects)?),
                item_log: Arc::new(PgItemLog::open(postgres.clone())),
                blobs,
                snapshots,
                counters: Some(Arc::new(PgCounters::open(postgres.clone(), &node)?)),
                postgres: Some(postgres),
            })
        }
        None => Ok(Stores {
            catalog: Arc::new(SqliteCatalog::open(&data_dir.join("catalog.sqlite"))?),
            identity_store: Arc::new(SqliteIdentities::open(&data_dir.join("identities.sqlite"))?),
            journal: Arc::new(FileJournal::open(&data_dir.join("journal"))?),
            item_log: Arc::new(SqliteItemLog::open(&data_dir.join("logs.sqlite"))?),
            blobs,
            snapshots,
            postgres: None,
            counters: None,
        }),
    }
}

/// Who owns which index: this node everything on the embedded backend; leases in the shared database
/// otherwise, taken once the node listens at `addr` (other nodes send it the searches of its indexes).
pub fn ownership(
    config: &ServerConfig,
    postgres: Option<Arc<Postgres>>,
    addr: SocketAddr,
) -> anyhow::Result<Arc<dyn Ownership>> {
    let Some(postgres) = postgres else { return Ok(Arc::new(SingleNode)) };
    let url = advertised_url(config, addr);
    let node = node_name(&config.data_dir)?;
    tracing::info!(node, url, "joining the cluster: index leases are taken in the database");
    Ok(Arc::new(PgOwnership::start(postgres, &node, &url, config.leases)?))
}

/// The URL other nodes reach this one at: as configured, else the public URL, else the listen address (an
/// unspecified one read as loopback).
fn advertised_url(config: &ServerConfig, addr: SocketAddr) -> String {
    if let Some(url) = config.advertise_url.as_ref().or(config.public_url.as_ref()) {
        return url.trim_end_matches('/').to_string();
    }
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    format!("http://{addr}")
}

/// This node's name in the cluster: made on its first start, kept in its data directory (`node-name`).
pub fn node_name(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-name");
    if let Ok(name) = std::fs::read_to_string(&path)
        && !name.trim().is_empty()
    {
        return Ok(name.trim().to_string());
    }
    let name = format!("node-{}", random_id(12));
    std::fs::write(&path, format!("{name}\n"))?;
    Ok(name)
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

    #[test]
    fn a_node_keeps_its_name_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let name = super::node_name(dir.path()).unwrap();
        assert!(name.starts_with("node-"));
        assert_eq!(super::node_name(dir.path()).unwrap(), name);
    }
}
