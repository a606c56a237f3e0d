//! The PostgreSQL backend, for several Intake nodes sharing one database: the catalog ([`PgCatalog`]) and the
//! security identities ([`PgIdentities`]), with the schema versioned as the SQLite files' are.
//!
//! The PostgreSQL client is asynchronous and the storage traits are not: [`Postgres`] drives its connections
//! on a runtime of its own and a store method waits for its query there ([`crate::bridge`]).

mod catalog;
mod containers;
mod counters;
mod identities;
mod item_log;
mod journal;
mod leases;
mod limits;
pub mod migrations;
mod providers;
mod streams;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

pub use catalog::PgCatalog;
pub use counters::PgCounters;
pub use identities::PgIdentities;
pub use item_log::PgItemLog;
pub use journal::PgJournal;
pub use leases::{LeaseTimes, PgOwnership};

use crate::StoreError;
use crate::bridge::Bridge;

/// How long a call waits for a connection (when all are busy, or PostgreSQL does not answer) before it fails
/// as unavailable.
const CONNECTION_WAIT: Duration = Duration::from_secs(5);
/// Connections per node: enough for the request path and the applier together.
const POOL_SIZE: usize = 16;

/// The tables holding rows of an organization (besides `organizations`), children first, for its deletion.
const ORGANIZATION_TABLES: [&str; 12] = [
    "org_limits",
    "daily_usage",
    "rate_buckets",
    "item_accounts",
    "item_reservations",
    "fault_rules",
    "security_providers",
    "streams",
    "fields",
    "api_keys",
    "sources",
    "index_owners",
];

/// One node's connections to the shared database.
pub struct Postgres {
    bridge: Bridge,
    pool: Pool,
    config: tokio_postgres::Config,
}

impl Postgres {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`) and brings the schema up to date.
    pub fn connect(url: &str) -> Result<Arc<Postgres>, StoreError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Schema(format!("the database URL is not a PostgreSQL URL: {e}")))?;
        config.connect_timeout(CONNECTION_WAIT);
        config.application_name("intake");
        let bridge = Bridge::new("intake-postgres")?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .recycle_timeout(Some(CONNECTION_WAIT))
            .build()
            .map_err(|e| StoreError::Schema(format!("the PostgreSQL connection pool could not be made: {e}")))?;
        let postgres = Arc::new(Postgres { bridge, pool, config });
        postgres.run(migrations::migrate(&postgres))?;
        Ok(postgres)
    }

    /// Runs `future` in this backend's runtime context, waiting for it on the calling thread.
    pub(crate) fn run<F: Future>(&self, future: F) -> F::Output {
        self.bridge.run(future)
    }

    /// Starts `future` on this backend's runtime (a task that outlives the call, such as a listener).
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.bridge.spawn(future);
    }

    /// Runs `work` with a connection from the pool, waiting for it on the calling thread.
    pub(crate) fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.run(async {
            let client = self.client().await?;
            work(&client).await
        })
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL is unreachable: {e}")))
    }

    /// A connection of its own, outside the pool (for work that must not wait behind the request path).
    pub(crate) async fn dedicated(&self) -> Result<tokio_postgres::Client, StoreError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(format!("PostgreSQL is unreachable: {e}")))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The notifications sent on `channel` (`NOTIFY`), as long as the receiver and this backend live:
    /// `Some(payload)` for each, and `None` each time listening (re)starts — notifications may have been
    /// missed before it, so the receiver reads again what it follows. A lost connection is made again. The
    /// connection's `application_name` is [`listener_name`]`(channel)`, so who listens can be counted.
    pub(crate) fn notifications(self: &Arc<Self>, channel: &'static str) -> mpsc::UnboundedReceiver<Option<String>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let backend = Arc::downgrade(self);
        self.spawn(async move {
            let mut failures = 0u32;
            while let Some(postgres) = backend.upgrade() {
                let mut config = postgres.config.clone();
                config.application_name(listener_name(channel));
                drop(postgres);
                if let Err(error) = listen(&config, channel, &sender).await {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(%error, channel, "listening to PostgreSQL failed; trying again");
                    }
                }
                if sender.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.clamp(1, 10)))).await;
            }
        });
        receiver
    }
}

/// The `application_name` of the connections listening on `channel` (as `pg_stat_activity` shows them).
pub(crate) fn listener_name(channel: &str) -> String {
    format!("intake listening on {channel}")
}

/// Listens on `channel` with a connection of its own until it fails or nobody receives.
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    sender: &mpsc::UnboundedSender<Option<String>>,
) -> Result<(), StoreError> {
    let (client, mut connection) =
        config.connect(NoTls).await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL is unreachable: {e}")))?;
    let (received, mut messages) = mpsc::unbounded_channel();
    let driving = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = stream.next().await {
            if let AsyncMessage::Notification(notification) = message
                && received.send(notification.payload().to_string()).is_err()
            {
                return;
            }
        }
    });
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    if sender.send(None).is_err() {
        driving.abort();
        return Ok(());
    }
    while let Some(payload) = messages.recv().await {
        if sender.send(Some(payload)).is_err() {
            break;
        }
    }
    driving.abort();
    Err(StoreError::Unavailable(format!("the connection listening on {channel} closed")))
}

/// Creates an empty database named `intake_<random>` on the server of `admin_url` (a role that may create
/// databases), and returns its URL: a place of its own for one test, benchmark or trial cluster.
pub fn scratch_database(admin_url: &str) -> Result<String, StoreError> {
    let name = format!("intake_{}", crate::catalog::random_id(12));
    Bridge::new("intake-scratch")?.run(async {
        let config: tokio_postgres::Config = admin_url
            .parse()
            .map_err(|e| StoreError::Schema(format!("the database URL is not a PostgreSQL URL: {e}")))?;
        let (client, connection) = config.connect(NoTls).await?;
        let driving = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        drop(client);
        let _ = driving.await;
        Ok::<_, StoreError>(())
    })?;
    let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
    Ok(format!("{base}/{name}"))
}

/// A database error as a store error; a uniqueness violation becomes a [`StoreError::Conflict`] with
/// `conflict`.
pub(crate) fn conflict_or(error: tokio_postgres::Error, conflict: String) -> StoreError {
    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) { StoreError::Conflict(conflict) } else { error.into() }
}

impl StoreError {
    /// PostgreSQL is out of disk space.
    pub(crate) fn postgres_disk_full(error: &tokio_postgres::Error) -> bool {
        error.code() == Some(&SqlState::DISK_FULL)
    }

    /// The database could not be reached, or the connection was lost: a retry may succeed.
    pub(crate) fn postgres_unavailable(error: &tokio_postgres::Error) -> bool {
        match error.code() {
            // No SQLSTATE: the socket failed or closed.
            None => true,
            Some(code) => {
                code.code().starts_with("08")
                    || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code)
            }
        }
    }
}
