//! The PostgreSQL backend, for several Intake nodes sharing one database: the catalog ([`PgCatalog`]) and the
//! security identities ([`PgIdentities`]), with the schema versioned as the SQLite files' are.
//!
//! The storage traits are synchronous (the embedded backend is SQLite), while the PostgreSQL client is
//! asynchronous. [`Postgres`] owns a small runtime of its own that drives the connections; a store method
//! enters that runtime's context and waits for its query on the calling thread ([`Postgres::run`]), which is
//! what a SQLite call costs the caller too. No connection is ever driven by the caller's runtime, so a call
//! works from a server handler, a blocking thread or a plain test alike.

mod catalog;
mod containers;
mod identities;
mod limits;
pub mod migrations;
mod providers;
mod streams;

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

pub use catalog::PgCatalog;
pub use identities::PgIdentities;

use crate::StoreError;

/// How long a call waits for a connection (when all are busy, or PostgreSQL does not answer) before it fails
/// as unavailable.
const CONNECTION_WAIT: Duration = Duration::from_secs(5);
/// Connections per node: enough for the request path and the applier together.
const POOL_SIZE: usize = 16;

/// The tables holding rows of an organization (besides `organizations`), children first, for its deletion.
const ORGANIZATION_TABLES: [&str; 8] =
    ["org_limits", "daily_usage", "fault_rules", "security_providers", "streams", "fields", "api_keys", "sources"];

/// One node's connections to the shared database.
pub struct Postgres {
    /// `Some` until dropped: a runtime may not be dropped (blocking) inside another runtime, so it is shut
    /// down in the background instead.
    runtime: Option<tokio::runtime::Runtime>,
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("intake-postgres")
            .enable_all()
            .build()?;
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
        let postgres = Arc::new(Postgres { runtime: Some(runtime), pool, config });
        postgres.run(migrations::migrate(&postgres))?;
        Ok(postgres)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives as long as the connections")
    }

    /// Runs `future` in this backend's runtime context, waiting for it on the calling thread.
    pub(crate) fn run<F: Future>(&self, future: F) -> F::Output {
        let _context = self.runtime().enter();
        block_on(future)
    }

    /// Starts `future` on this backend's runtime (a task that outlives the call, such as a listener).
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.runtime().spawn(future);
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL is unreachable: {e}")))
    }

    /// A connection of its own, outside the pool (for LISTEN), with the task that drives it.
    pub(crate) async fn dedicated(
        &self,
    ) -> Result<
        (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
        StoreError,
    > {
        self.config.connect(NoTls).await.map_err(|e| StoreError::Unavailable(format!("PostgreSQL is unreachable: {e}")))
    }
}

/// Creates an empty database named `intake_<random>` on the server of `admin_url` (a role that may create
/// databases), and returns its URL: a place of its own for one test, benchmark or trial cluster.
pub fn scratch_database(admin_url: &str) -> Result<String, StoreError> {
    let name = format!("intake_{}", crate::catalog::random_id(12));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let created = {
        let _context = runtime.enter();
        block_on(async {
            let config: tokio_postgres::Config = admin_url
                .parse()
                .map_err(|e| StoreError::Schema(format!("the database URL is not a PostgreSQL URL: {e}")))?;
            let (client, connection) = config.connect(NoTls).await?;
            let driving = tokio::spawn(connection);
            client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
            drop(client);
            let _ = driving.await;
            Ok::<_, StoreError>(())
        })
    };
    runtime.shutdown_background();
    created?;
    let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
    Ok(format!("{base}/{name}"))
}

/// For tests and benchmarks of this repository: the test PostgreSQL server.
#[doc(hidden)]
pub mod testing {
    /// The admin URL of the test server: `INTAKE_TEST_POSTGRES`, else the server `scripts/test-servers start`
    /// runs (starting it if it does not run).
    pub fn admin_url() -> String {
        if let Ok(url) = std::env::var("INTAKE_TEST_POSTGRES") {
            return url;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-servers");
        let output = std::process::Command::new(script).arg("start").output().expect("scripts/test-servers runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        match printed.lines().find_map(|line| line.strip_prefix("INTAKE_TEST_POSTGRES=")) {
            Some(url) => url.to_string(),
            None => panic!(
                "scripts/test-servers start did not start PostgreSQL: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// A new empty database on the test server.
    pub fn scratch_database() -> String {
        super::scratch_database(&admin_url()).expect("a scratch database on the test PostgreSQL server")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Polls `future` to completion on this thread, parking between wake-ups. The connections it waits on are
/// driven by the backend's runtime, so nothing here needs the caller to be (or not to be) in a runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
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
