//! Intake's HTTP server: the Push API (under `/push/v1` and the legacy `/v1`), Platform, Search, Logs and
//! operations endpoints; the edge of the data path (the applier, in `intake-applier`, takes it from the journal).
//!
//! [`start`] opens the data folder (catalog, journal, item log, indexes), prepares the default organization
//! on first start, starts the applier and serves HTTP until [`RunningServer::stop`].

pub mod auth;
pub mod backpressure;
pub mod bootstrap;
pub mod console;
pub mod context;
pub mod disk_usage;
pub mod errors_api;
pub mod faults;
pub mod files;
pub mod forward;
pub mod http;
pub mod identities;
pub mod limits_api;
pub mod logs_api;
pub mod metrics;
pub mod oauth;
pub mod ops;
pub mod platform;
pub mod push;
pub mod quotas;
pub mod search_api;
pub mod search_tokens;
pub mod serve;
pub mod signing;
pub mod state;
pub mod storage;
pub mod streams;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use intake_index::security::{IdentityGraph, IdentityGraphs};
use intake_model::quota::{FaultSpec, Limits};
use intake_model::{ApiError, ErrorCode};
use intake_store::{Catalog, Clock, DataDirLock, IdentityStore};
use tokio::sync::oneshot;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::bootstrap::Bootstrap;
use crate::http::{HandlerError, envelope, panic_response};
use crate::state::{AppState, ApplierObserver};
use intake_applier::{ApplierConfig, ApplierHandle, Inputs};

/// Everything `intake serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub master_key: Option<String>,
    /// The base URL clients use, when it differs from the listen address (a proxy).
    pub public_url: Option<String>,
    pub commit_interval: Duration,
    pub index_threads: usize,
    pub index_memory_bytes: usize,
    /// The most bytes an item's data may expand to once decompressed.
    pub max_item_bytes: u64,
    /// The bounds of converting one document to text (PDF, Office, e-mail).
    pub conversion: intake_index::convert::Budget,
    /// When set, every delete-older-than waits at most this many minutes, whatever its `queueDelay`.
    pub queue_delay_cap_minutes: Option<u32>,
    /// How long an access token from `/oauth/token` lives.
    pub token_lifetime: Duration,
    /// Proxies whose `X-Forwarded-For` names the client (for API keys' IP rules).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// When set, the first source of a new organization answers SOURCE_DOES_NOT_EXIST for this long.
    pub provisioning_delay: Option<Duration>,
    /// Every organization's limits, unless it has its own (unlimited by default).
    pub limits: Limits,
    /// Fault rules from the configuration file: (organization, rule).
    pub faults: Vec<(String, FaultSpec)>,
    /// Connection cap, header and body timeouts.
    pub connections: serve::ConnectionLimits,
    /// How long item log entries are kept, and the most bytes the item log may take (oldest go first).
    pub log_retention: Duration,
    pub log_max_bytes: u64,
    /// `/ready` warns when the data directory's disk has less than this share free.
    pub disk_warning_percent: u8,
    /// Pushes wait (up to half a second) while the oldest record journaled and not yet applied has waited
    /// longer than this; zero turns it off. See [`backpressure`].
    pub max_apply_lag: Duration,
    /// The PostgreSQL database of a cluster (`postgres://…`); `None`: the embedded SQLite files.
    pub database: Option<String>,
    /// The S3 bucket (and prefix) of a cluster's file containers; `None`: `<data-dir>/containers`.
    pub blobs: Option<intake_store::S3Location>,
    /// With a database: the URL other nodes reach this one at; `None`: the public URL, else the listen address.
    pub advertise_url: Option<String>,
    /// With a database: how long an index lease lasts unrenewed, and how often it is renewed.
    pub leases: intake_store::LeaseTimes,
    /// With a database: the least time between two snapshots of an index.
    pub snapshot_interval: Duration,
    /// Indexes of at most this many items are searched on the request's own thread, larger ones on the blocking
    /// pool ([`search_api::INLINE_SEARCH_ITEMS`] by default).
    pub inline_search_items: u64,
}

impl ServerConfig {
    /// The defaults of `intake serve` with no configuration, in `data_dir`.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            master_key: None,
            public_url: None,
            commit_interval: Duration::from_millis(250),
            max_apply_lag: Duration::from_millis(200),
            index_threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(8),
            index_memory_bytes: 128 * 1024 * 1024,
            max_item_bytes: intake_model::limits::MAX_ITEM_DECOMPRESSED_BYTES,
            conversion: intake_index::convert::Budget::default(),
            queue_delay_cap_minutes: None,
            token_lifetime: Duration::from_secs(3600),
            trusted_proxies: Vec::new(),
            provisioning_delay: None,
            limits: Limits::default(),
            faults: Vec::new(),
            connections: serve::ConnectionLimits::default(),
            log_retention: Duration::from_secs(14 * 24 * 3600),
            log_max_bytes: 1024 * 1024 * 1024,
            disk_warning_percent: 10,
            database: None,
            blobs: None,
            advertise_url: None,
            leases: intake_store::LeaseTimes::default(),
            snapshot_interval: Duration::from_secs(10),
            inline_search_items: search_api::INLINE_SEARCH_ITEMS,
        }
    }
}

/// A server that is accepting requests.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub bootstrap: Bootstrap,
    /// Set when this start generated the master key (first start without `--master-key`).
    pub generated_key: Option<String>,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<()>,
    applier: Option<ApplierHandle>,
    saving_usage: tokio::task::JoinHandle<()>,
    /// Released last, once nothing writes to the data directory any more.
    _lock: DataDirLock,
}

impl RunningServer {
    pub fn base_url(&self) -> &str {
        &self.bootstrap.base_url
    }

    /// Stops accepting requests, finishes those in flight, commits what was applied.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.serving).await;
        if let Some(applier) = self.applier.take() {
            let _ = tokio::task::spawn_blocking(move || applier.stop()).await;
        }
        self.saving_usage.abort();
        let quotas = self.state.quotas.clone();
        let _ = tokio::task::spawn_blocking(move || quotas.save()).await;
    }

    /// Waits until the server stops by itself (it never does) or the task fails.
    pub async fn wait(&mut self) {
        let _ = (&mut self.serving).await;
    }
}

/// Opens the data folder and starts serving.
pub async fn start(config: ServerConfig, clock: Arc<dyn Clock>) -> anyhow::Result<RunningServer> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir)?;
    let lock = DataDirLock::acquire(data_dir, &format!("listening on {}", config.listen))?;
    let storage::Stores { catalog, identity_store, journal, item_log, blobs, snapshots, postgres, counters } =
        storage::open(&config)?;
    let identities = Arc::new(load_identities(catalog.as_ref(), identity_store.as_ref())?);
    let prepared = bootstrap::prepare(catalog.as_ref(), data_dir, config.master_key.as_deref(), clock.now_ms())?;

    let listener = serve::bind(config.listen)?;
    let addr = listener.local_addr()?;
    let base_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let bootstrap = Bootstrap { base_url: base_url.trim_end_matches('/').to_string(), ..prepared.bootstrap };
    bootstrap::write_bootstrap(data_dir, &bootstrap)?;
    let ownership = storage::ownership(&config, postgres, addr)?;

    let token_secret = bootstrap::token_secret(catalog.as_ref())?;
    let quotas = Arc::new(quotas::Quotas::new(config.limits, catalog.clone(), clock.clone(), counters));
    let shared = config.database.is_some();
    let faults = Arc::new(faults::Faults::load(catalog.clone(), clock.clone(), &config.faults, shared)?);
    let state = AppState::new(state::Services {
        catalog,
        journal,
        item_log,
        indexes: Arc::default(),
        clock,
        metrics: Arc::new(metrics::Metrics::default()),
        body_budget: http::BodyBudget::new(http::BODY_BUDGET_BYTES),
        blobs,
        public_base_url: bootstrap.base_url.clone().into(),
        auth: Arc::new(auth::AuthSettings {
            master_key_hash: prepared.master_key_hash,
            token_secret,
            token_lifetime_ms: config.token_lifetime.as_millis() as i64,
            trusted_proxies: config.trusted_proxies.clone(),
        }),
        provisioning_delay_ms: config.provisioning_delay.map(|d| d.as_millis() as i64),
        quotas,
        faults,
        search_gate: search_api::SearchGate::new(config.inline_search_items),
        disk_usage: Arc::new(disk_usage::DiskUsage::new(data_dir, config.disk_warning_percent)),
        readiness: Arc::default(),
        commit_marks: Arc::default(),
        identity_store,
        identities,
        backpressure: Arc::new(backpressure::Backpressure::new(config.max_apply_lag)),
        storage: storage::Layout::of(&config),
        ownership,
        forwarder: reqwest::Client::builder().build()?,
    });
    state.metrics.storage(state.storage);
    let applier = ApplierHandle::start(
        applier_inputs(&state, snapshots),
        ApplierConfig {
            index_dir: data_dir.join("index"),
            threads: config.index_threads,
            memory_bytes: config.index_memory_bytes,
            commit_interval: config.commit_interval,
            batch_bytes: 16 * 1024 * 1024,
            max_item_bytes: config.max_item_bytes,
            conversion: config.conversion,
            queue_delay_cap_minutes: config.queue_delay_cap_minutes,
            log_retention: config.log_retention,
            log_max_bytes: config.log_max_bytes,
            snapshot_interval: config.snapshot_interval,
        },
    )?;

    let app = router(state.clone());
    let (shutdown, signal) = oneshot::channel::<()>();
    let connections = config.connections.clone().fitted_to_descriptors();
    let serving = tokio::spawn(serve::serve(listener, app, connections, state.metrics.clone(), async move {
        let _ = signal.await;
    }));
    let saving_usage =
        tokio::spawn(save_usage_every_second(state.quotas.clone(), shared.then(|| state.faults.clone())));

    tracing::info!(%addr, "Intake is listening");
    Ok(RunningServer {
        addr,
        bootstrap,
        generated_key: prepared.new_key,
        state,
        shutdown: Some(shutdown),
        serving,
        applier: Some(applier),
        saving_usage,
        _lock: lock,
    })
}

/// What the applier is given of the server's state.
fn applier_inputs(state: &AppState, snapshots: Arc<dyn intake_store::BlobStore>) -> Inputs {
    Inputs {
        journal: state.journal.clone(),
        catalog: state.catalog.clone(),
        item_log: state.item_log.clone(),
        blobs: state.blobs.clone(),
        clock: state.clock.clone(),
        registry: state.indexes.clone(),
        commit_marks: state.commit_marks.clone(),
        observer: Arc::new(ApplierObserver {
            quotas: state.quotas.clone(),
            metrics: state.metrics.clone(),
            readiness: state.readiness.clone(),
            backpressure: state.backpressure.clone(),
        }),
        identity_store: state.identity_store.clone(),
        identities: state.identities.clone(),
        ownership: state.ownership.clone(),
        snapshots,
    }
}

/// Every organization's identity graph, from the identity store.
fn load_identities(catalog: &dyn Catalog, store: &dyn IdentityStore) -> anyhow::Result<IdentityGraphs> {
    let graphs = IdentityGraphs::default();
    for organization in catalog.organizations() {
        let identities = store.load(&organization.id)?;
        if !identities.is_empty() {
            tracing::info!(organization = organization.id, identities = identities.len(), "security identities loaded");
            graphs.install(IdentityGraph::load(&organization.id, identities), &organization.id);
        }
    }
    Ok(graphs)
}

/// Daily usage reaches the catalog within a second (and at shutdown): a crash forgets at most that second. With a
/// shared catalog, the fault rules, limits and usage of the other nodes are taken in every half second.
async fn save_usage_every_second(quotas: Arc<quotas::Quotas>, shared_faults: Option<Arc<faults::Faults>>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    for tick in 0u64.. {
        ticks.tick().await;
        let (quotas, faults) = (quotas.clone(), shared_faults.clone());
        let _ = tokio::task::spawn_blocking(move || {
            if tick % 2 == 0 {
                quotas.save();
            }
            if let Some(faults) = faults {
                faults.sync();
                quotas.sync();
            }
        })
        .await;
    }
}

/// Every route, with the OpenAPI document its handlers' annotations describe: a route exists only through a
/// documented handler (`routes!`), so the document cannot miss one.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ops::ApiDoc::openapi())
        .nest("/push/v1", push_api())
        .merge(platform::routes())
        .merge(limits_api::routes())
        .merge(files::upload_routes())
        .merge(oauth::routes())
        .merge(search_api::routes())
        .merge(logs_api::routes())
        .merge(ops::routes())
        .merge(errors_api::routes())
        .merge(console::routes())
}

/// The Push API's routes, relative to its prefix.
fn push_api() -> OpenApiRouter<AppState> {
    push::routes().merge(files::push_routes()).merge(identities::routes()).merge(streams::routes())
}

/// Every route, wrapped in the panic catcher and the envelope. The Push API is served under its legacy prefix
/// `/v1` too (the document says so once, in its description).
pub fn router(state: AppState) -> Router {
    let (routes, _) = routes().split_for_parts();
    let (legacy, _) = push_api().split_for_parts();
    wrap(routes.nest("/v1", legacy), state)
}

/// Adds what every route shares: the 404 fallback, the panic catcher, the envelope, and CORS.
pub fn wrap(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(state.clone(), forward::to_owner))
        .layer(middleware::from_fn_with_state(state.clone(), faults::inject))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(cors())
        .layer(middleware::from_fn_with_state(state.clone(), envelope))
        .with_state(state)
}

/// Browser pages (a Coveo Atomic or Headless page on another origin) may call any endpoint: credentials travel
/// in the `Authorization` header, never in cookies, so any origin may be allowed without one page acting for
/// another. Preflights are answered here, before authentication (inside the envelope: they carry a request id).
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS])
        // Not `*`: a wildcard does not cover `Authorization`, which every search page sends.
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static("x-request-id"), axum::http::header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}

async fn unknown_route(uri: axum::http::Uri) -> HandlerError {
    HandlerError(ApiError::new(
        ErrorCode::NotFound,
        format!(
            "No endpoint at '{}'. Push API paths start with /push/v1/organizations/{{org}}; see /docs.",
            uri.path()
        ),
    ))
}
