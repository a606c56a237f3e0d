//! Prometheus metrics: requests by route and status, journal lag, items applied by result, apply latency
//! and the time from acceptance to searchable.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabels {
    part: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageLabels {
    database: String,
    blobs: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThreadLabels {
    thread: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<RouteLabels>,
    journal_durable: Gauge,
    journal_applied: Gauge,
    journal_lag: Gauge,
    journal_syncs: Counter,
    journal_syncs_seen: std::sync::atomic::AtomicU64,
    items: Family<ResultLabels, Counter>,
    apply_seconds: Histogram,
    searchable_seconds: Histogram,
    commit_failures: Counter,
    applier_stalled: Gauge,
    connections_open: Gauge,
    connections_over_capacity: Counter,
    connections_refused: Counter,
    data_bytes: Family<PartLabels, Gauge>,
    disk_free: Gauge,
    disk_total: Gauge,
    storage: Family<StorageLabels, Gauge>,
    index_leases: Gauge,
    searches: Family<ThreadLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("intake");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let request_seconds: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency by route", request_seconds.clone());
        let journal_durable: Gauge = Gauge::default();
        registry.register(
            "journal_durable_seq",
            "Sequence number of the last durable journal record",
            journal_durable.clone(),
        );
        let journal_applied: Gauge = Gauge::default();
        registry.register(
            "journal_applied_seq",
            "Sequence number of the last journal record applied and committed",
            journal_applied.clone(),
        );
        let journal_lag: Gauge = Gauge::default();
        registry.register(
            "journal_lag_records",
            "Durable journal records not yet applied and committed",
            journal_lag.clone(),
        );
        let journal_syncs = Counter::default();
        registry.register(
            "journal_syncs",
            "fdatasync calls that made journal records durable (fewer than records: group commit)",
            journal_syncs.clone(),
        );
        let items = Family::<ResultLabels, Counter>::default();
        registry.register(
            "items_applied",
            "Item outcomes by result (COMPLETED, ERROR, REJECTED, SKIPPED)",
            items.clone(),
        );
        let apply_seconds = latency_histogram();
        registry.register(
            "apply_batch_duration_seconds",
            "Time to apply and commit one batch of journal records",
            apply_seconds.clone(),
        );
        let searchable_seconds = latency_histogram();
        registry.register(
            "accept_to_searchable_seconds",
            "Time from an operation's acceptance to its commit (searchable)",
            searchable_seconds.clone(),
        );
        let commit_failures = Counter::default();
        registry.register(
            "index_commit_failures",
            "Failed index commits (or index writes); each is retried from the last commit",
            commit_failures.clone(),
        );
        let applier_stalled: Gauge = Gauge::default();
        registry.register(
            "applier_stalled",
            "1 while applying is stopped by a failing index or item log (a full disk, say), else 0",
            applier_stalled.clone(),
        );
        let connections_open: Gauge = Gauge::default();
        registry.register("connections_open", "HTTP connections open", connections_open.clone());
        let connections_over_capacity = Counter::default();
        registry.register(
            "connections_over_capacity",
            "Connections accepted past the cap, answered only on /health, /ready and /metrics",
            connections_over_capacity.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at once: the cap and its headroom were reached",
            connections_refused.clone(),
        );
        let data_bytes = Family::<PartLabels, Gauge>::default();
        registry.register(
            "data_bytes",
            "Bytes the data directory takes, by part (journal, index, logs, catalog, containers)",
            data_bytes.clone(),
        );
        let disk_free: Gauge = Gauge::default();
        registry.register("disk_free_bytes", "Bytes free on the data directory's disk", disk_free.clone());
        let disk_total: Gauge = Gauge::default();
        registry.register("disk_total_bytes", "Size of the data directory's disk", disk_total.clone());
        let storage = Family::<StorageLabels, Gauge>::default();
        registry.register(
            "storage_info",
            "1, labelled with the backends this node runs on: database (sqlite, postgresql) and blobs (local, s3)",
            storage.clone(),
        );
        let index_leases: Gauge = Gauge::default();
        registry.register(
            "index_leases",
            "Index leases this node holds in the shared database (organizations whose index it owns); 0 on one node",
            index_leases.clone(),
        );
        let searches = Family::<ThreadLabels, Counter>::default();
        registry.register(
            "searches",
            "Searches run, by thread: the request's own (an index of few items) or the blocking pool",
            searches.clone(),
        );
        Metrics {
            searches,
            index_leases,
            storage,
            data_bytes,
            disk_free,
            disk_total,
            connections_open,
            connections_over_capacity,
            connections_refused,
            commit_failures,
            applier_stalled,
            registry,
            requests,
            request_seconds,
            journal_durable,
            journal_applied,
            journal_lag,
            journal_syncs,
            journal_syncs_seen: Default::default(),
            items,
            apply_seconds,
            searchable_seconds,
        }
    }
}

impl Metrics {
    /// Says which backends this node runs on.
    pub fn storage(&self, layout: crate::storage::Layout) {
        let labels = StorageLabels { database: layout.database.to_string(), blobs: layout.blobs.to_string() };
        self.storage.get_or_create(&labels).set(1);
    }

    pub fn leases(&self, held: usize) {
        self.index_leases.set(held as i64);
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { route: route.to_string(), method: method.to_string(), status: status.to_string() };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&RouteLabels { route: route.to_string() }).observe(elapsed.as_secs_f64());
    }

    pub fn journal_positions(&self, durable: u64, applied: u64) {
        self.journal_durable.set(durable as i64);
        self.journal_applied.set(applied as i64);
        self.journal_lag.set(durable.saturating_sub(applied) as i64);
    }

    /// The last durable and applied journal records, as last reported.
    pub fn journal_positions_now(&self) -> (u64, u64) {
        (self.journal_durable.get().max(0) as u64, self.journal_applied.get().max(0) as u64)
    }

    /// Brings the sync counter up to the journal's own count.
    pub fn journal_syncs(&self, total: u64) {
        let seen = self.journal_syncs_seen.swap(total, std::sync::atomic::Ordering::Relaxed);
        self.journal_syncs.inc_by(total.saturating_sub(seen));
    }

    pub fn item_outcomes(&self, result: &str, count: u64) {
        self.items.get_or_create(&ResultLabels { result: result.to_string() }).inc_by(count);
    }

    /// An index commit or write failed: applying stops until one succeeds.
    pub fn commit_failed(&self) {
        self.commit_failures.inc();
        self.applier_stalled.set(1);
    }

    pub fn data_bytes(&self, part: &str, bytes: u64) {
        self.data_bytes.get_or_create(&PartLabels { part: part.to_string() }).set(bytes as i64);
    }

    pub fn disk(&self, free: u64, total: u64) {
        self.disk_free.set(free as i64);
        self.disk_total.set(total as i64);
    }

    pub fn connection_opened(&self, over_capacity: bool) {
        self.connections_open.inc();
        if over_capacity {
            self.connections_over_capacity.inc();
        }
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn stalled(&self, stalled: bool) {
        self.applier_stalled.set(i64::from(stalled));
    }

    pub fn batch_applied(&self, elapsed: Duration) {
        self.apply_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a search, run on the request's own thread (`inline`) or on the blocking pool.
    pub fn search_run(&self, inline: bool) {
        self.searches.get_or_create(&ThreadLabels { thread: if inline { "request" } else { "blocking" } }).inc();
    }

    pub fn searchable_after(&self, elapsed_ms: i64) {
        self.searchable_seconds.observe(elapsed_ms.max(0) as f64 / 1000.0);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
