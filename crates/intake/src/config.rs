//! `intake serve` settings: flags, then `INTAKE_*` environment variables, then the TOML file given with
//! `--config`, then defaults that run with no configuration at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use intake_model::quota::{FaultSpec, LimitKey, Limits};
use intake_server::ServerConfig;
use serde::Deserialize;

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "INTAKE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data folder: catalog, journal, indexes, logs [default: ./intake-data]
    #[arg(long, env = "INTAKE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Master key (a Bearer token valid everywhere); generated on first start when not given
    #[arg(long, env = "INTAKE_MASTER_KEY", hide_env_values = true)]
    master_key: Option<String>,
    /// A TOML file with any of: listen, data_dir, master_key, public_url, commit_interval_ms, queue_delay_cap_minutes, token_lifetime_seconds, trusted_proxies, provisioning_delay_seconds, max_connections, header_timeout_seconds, body_idle_timeout_seconds, body_min_bytes_per_second, body_grace_seconds, log_retention_days, log_max_mb, max_apply_lag_ms, database, blobs, advertise_url, snapshot_interval_seconds, inline_search_items, disk_warning_percent, conversion_timeout_seconds, conversion_max_mb, index_threads, index_memory_mb, [limits], [[faults]] (see docs/operations.md)
    #[arg(long, env = "INTAKE_CONFIG")]
    config: Option<PathBuf>,
    /// The base URL clients reach this server at, when behind a proxy
    #[arg(long, env = "INTAKE_PUBLIC_URL")]
    public_url: Option<String>,
    /// The longest applied operations wait before becoming searchable, in milliseconds; once the applier has caught up it commits at once [default: 250]
    #[arg(long, env = "INTAKE_COMMIT_INTERVAL_MS")]
    commit_interval_ms: Option<u64>,
    /// Wait at most this many minutes before applying a delete-older-than, whatever its queueDelay (for tests)
    #[arg(long, env = "INTAKE_QUEUE_DELAY_CAP_MINUTES")]
    queue_delay_cap_minutes: Option<u32>,
    /// Lifetime of access tokens from /oauth/token, in seconds [default: 3600]
    #[arg(long, env = "INTAKE_TOKEN_LIFETIME_SECONDS")]
    token_lifetime_seconds: Option<u64>,
    /// A proxy (IP or CIDR) whose X-Forwarded-For names the client; repeatable, or comma-separated in the variable
    #[arg(long = "trusted-proxy", env = "INTAKE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<String>,
    /// The first source of a new organization answers SOURCE_DOES_NOT_EXIST for this many seconds (off by default)
    #[arg(long, env = "INTAKE_PROVISIONING_DELAY_SECONDS")]
    provisioning_delay_seconds: Option<u64>,
    /// Open connections at most (lowered to fit the file descriptor limit) [default: 16384]
    #[arg(long, env = "INTAKE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers; also closes idle keep-alive connections [default: 30]
    #[arg(long, env = "INTAKE_HEADER_TIMEOUT_SECONDS")]
    header_timeout_seconds: Option<u64>,
    /// Seconds a request body may send nothing before it is cut with 408 [default: 30]
    #[arg(long, env = "INTAKE_BODY_IDLE_TIMEOUT_SECONDS")]
    body_idle_timeout_seconds: Option<u64>,
    /// The slowest pace of a request body, in bytes per second, after the grace period [default: 1024]
    #[arg(long, env = "INTAKE_BODY_MIN_BYTES_PER_SECOND")]
    body_min_bytes_per_second: Option<u64>,
    /// Seconds a request body may go slower than the minimum pace before it is cut [default: 10]
    #[arg(long, env = "INTAKE_BODY_GRACE_SECONDS")]
    body_grace_seconds: Option<u64>,
    /// Days item log entries are kept [default: 14]
    #[arg(long, env = "INTAKE_LOG_RETENTION_DAYS")]
    log_retention_days: Option<u64>,
    /// The most MiB the item log may take; its oldest entries go first [default: 1024]
    #[arg(long, env = "INTAKE_LOG_MAX_MB")]
    log_max_mb: Option<u64>,
    /// Pushes wait (up to half a second) while the oldest accepted operation not yet applied has waited longer than this, so a sustained stream of pushes cannot leave indexing far behind; 0 turns it off [default: 200]
    #[arg(long, env = "INTAKE_MAX_APPLY_LAG_MS")]
    max_apply_lag_ms: Option<u64>,
    /// A PostgreSQL database shared by the nodes of a cluster, for the catalog (organizations, sources, keys, fields, limits, providers, identities): postgres://user[:password]@host[:port]/database. Unset: the embedded SQLite files in the data directory (see docs/scale-out.md)
    #[arg(long, env = "INTAKE_DATABASE")]
    database: Option<String>,
    /// An S3 bucket shared by the nodes of a cluster for the bytes of file containers: s3://bucket[/prefix][?endpoint=http://host:port&region=…&virtual_hosted=true&presigned=true] (presigned=true: POST /files answers presigned S3 PUT URLs), credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Unset: <data-dir>/containers
    #[arg(long, env = "INTAKE_BLOBS")]
    blobs: Option<String>,
    /// With --database: the URL the other nodes of the cluster reach this node at, to send it the searches of the organizations whose index it owns [default: --public-url, else http://<listen address> with 0.0.0.0 read as 127.0.0.1]
    #[arg(long, env = "INTAKE_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// With --database: the least seconds between two snapshots of an index published to the blob store (the next owner of the index restores the latest and replays the journal after it) [default: 10]
    #[arg(long, env = "INTAKE_SNAPSHOT_INTERVAL_SECONDS")]
    snapshot_interval_seconds: Option<u64>,
    /// Searches of an index of at most this many items (pages of up to 100 results) run on the thread that read the request (faster: no handoff), the others on the blocking pool, so a long search never holds a thread serving other requests; 0 sends every search to the pool [default: 20000]
    #[arg(long, env = "INTAKE_INLINE_SEARCH_ITEMS")]
    inline_search_items: Option<u64>,
    /// /ready warns when the data directory's disk has less than this percent free [default: 10]
    #[arg(long, env = "INTAKE_DISK_WARNING_PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    disk_warning_percent: Option<u8>,
    /// Seconds one document's conversion to text (PDF, Office, e-mail) may take; past it the text so far is kept, with a warning [default: 60]
    #[arg(long, env = "INTAKE_CONVERSION_TIMEOUT_SECONDS")]
    conversion_timeout_seconds: Option<u64>,
    /// MiB one document's compressed parts (archive entries, PDF streams) may expand to while it is converted [default: 256]
    #[arg(long, env = "INTAKE_CONVERSION_MAX_MB")]
    conversion_max_mb: Option<u64>,
}

/// The `--config` file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    master_key: Option<String>,
    public_url: Option<String>,
    commit_interval_ms: Option<u64>,
    queue_delay_cap_minutes: Option<u32>,
    token_lifetime_seconds: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    provisioning_delay_seconds: Option<u64>,
    max_connections: Option<usize>,
    header_timeout_seconds: Option<u64>,
    body_idle_timeout_seconds: Option<u64>,
    body_min_bytes_per_second: Option<u64>,
    body_grace_seconds: Option<u64>,
    log_retention_days: Option<u64>,
    log_max_mb: Option<u64>,
    max_apply_lag_ms: Option<u64>,
    database: Option<String>,
    blobs: Option<String>,
    advertise_url: Option<String>,
    snapshot_interval_seconds: Option<u64>,
    inline_search_items: Option<u64>,
    disk_warning_percent: Option<u8>,
    conversion_timeout_seconds: Option<u64>,
    conversion_max_mb: Option<u64>,
    index_threads: Option<usize>,
    index_memory_mb: Option<usize>,
    /// Default limits of every organization: `[limits]` with `maximumItems = 100000`, …
    limits: Option<toml::Table>,
    /// Fault rules: `[[faults]]` with `organization` and the members of a rule (`status`, `count`, …).
    #[serde(default)]
    faults: Vec<toml::Table>,
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<ServerConfig> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid Intake configuration", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = self.data_dir.or(file.data_dir).unwrap_or_else(crate::default_data_dir);
        let mut config = ServerConfig::new(data_dir);
        if let Some(listen) = self.listen.or(file.listen) {
            config.listen = listen;
        }
        config.master_key = self.master_key.or(file.master_key).filter(|k| !k.trim().is_empty());
        config.public_url = self.public_url.or(file.public_url);
        if let Some(ms) = self.commit_interval_ms.or(file.commit_interval_ms) {
            config.commit_interval = Duration::from_millis(ms.max(1));
        }
        config.queue_delay_cap_minutes = self.queue_delay_cap_minutes.or(file.queue_delay_cap_minutes);
        if let Some(seconds) = self.token_lifetime_seconds.or(file.token_lifetime_seconds) {
            config.token_lifetime = Duration::from_secs(seconds.max(1));
        }
        let proxies = if self.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            self.trusted_proxies
        };
        config.trusted_proxies = proxies
            .iter()
            .map(|p| intake_server::auth::parse_block(p).map_err(|why| anyhow::anyhow!("trusted proxy {why}")))
            .collect::<anyhow::Result<_>>()?;
        config.provisioning_delay =
            self.provisioning_delay_seconds.or(file.provisioning_delay_seconds).map(Duration::from_secs);
        let connections = &mut config.connections;
        if let Some(max) = self.max_connections.or(file.max_connections) {
            connections.max_connections = max.max(1);
        }
        let seconds = |flag: Option<u64>, file: Option<u64>| flag.or(file).map(|s| Duration::from_secs(s.max(1)));
        if let Some(timeout) = seconds(self.header_timeout_seconds, file.header_timeout_seconds) {
            connections.header_timeout = timeout;
        }
        if let Some(timeout) = seconds(self.body_idle_timeout_seconds, file.body_idle_timeout_seconds) {
            connections.body_idle_timeout = timeout;
        }
        if let Some(rate) = self.body_min_bytes_per_second.or(file.body_min_bytes_per_second) {
            connections.body_min_rate = rate.max(1);
        }
        if let Some(grace) = self.body_grace_seconds.or(file.body_grace_seconds) {
            connections.body_grace = Duration::from_secs(grace);
        }
        if let Some(days) = self.log_retention_days.or(file.log_retention_days) {
            config.log_retention = Duration::from_secs(days.max(1) * 24 * 3600);
        }
        if let Some(mb) = self.log_max_mb.or(file.log_max_mb) {
            config.log_max_bytes = mb.max(1) * 1024 * 1024;
        }
        if let Some(ms) = self.max_apply_lag_ms.or(file.max_apply_lag_ms) {
            config.max_apply_lag = Duration::from_millis(ms);
        }
        config.database = self.database.clone().or(file.database);
        if let Some(url) = self.blobs.clone().or(file.blobs) {
            config.blobs = Some(intake_store::S3Location::parse(&url)?);
        }
        config.advertise_url = self.advertise_url.clone().or(file.advertise_url);
        if let Some(seconds) = self.snapshot_interval_seconds.or(file.snapshot_interval_seconds) {
            config.snapshot_interval = Duration::from_secs(seconds);
        }
        if let Some(items) = self.inline_search_items.or(file.inline_search_items) {
            config.inline_search_items = items;
        }
        if let Some(percent) = self.disk_warning_percent.or(file.disk_warning_percent) {
            anyhow::ensure!(percent <= 100, "disk_warning_percent = {percent}: a percentage is 0 to 100");
            config.disk_warning_percent = percent;
        }
        if let Some(seconds) = self.conversion_timeout_seconds.or(file.conversion_timeout_seconds) {
            config.conversion.time = Duration::from_secs(seconds.max(1));
        }
        if let Some(mb) = self.conversion_max_mb.or(file.conversion_max_mb) {
            config.conversion.expanded_bytes = mb.max(1) * 1024 * 1024;
        }
        if let Some(threads) = file.index_threads {
            config.index_threads = threads.max(1);
        }
        if let Some(mb) = file.index_memory_mb {
            config.index_memory_bytes = mb.max(16) * 1024 * 1024;
        }
        config.limits = default_limits(file.limits.unwrap_or_default())?;
        config.faults = file.faults.into_iter().enumerate().map(fault_rule).collect::<anyhow::Result<_>>()?;
        Ok(config)
    }
}

/// `[limits]`: each key a limit of the limits API, each value a whole number.
fn default_limits(table: toml::Table) -> anyhow::Result<Limits> {
    let mut limits = Limits::default();
    for (name, value) in table {
        let key = LimitKey::parse(&name)
            .with_context(|| format!("[limits] has '{name}', which is not a limit: use {}", LimitKey::names()))?;
        let value = value
            .as_integer()
            .and_then(|v| u64::try_from(v).ok())
            .with_context(|| format!("[limits] {name} = {value}: a limit is a whole number ≥ 0"))?;
        key.check(value).map_err(|why| anyhow::anyhow!("[limits] {name} = {value}: {why}"))?;
        limits.set(key, Some(value));
    }
    Ok(limits)
}

/// A `[[faults]]` entry: the organization it applies to, and the rule as the API takes it.
fn fault_rule((n, mut table): (usize, toml::Table)) -> anyhow::Result<(String, FaultSpec)> {
    let context = || format!("[[faults]] number {}", n + 1);
    let organization = match table.remove("organization") {
        Some(toml::Value::String(org)) => org,
        _ => anyhow::bail!("{} has no organization = \"…\"", context()),
    };
    let spec: FaultSpec = toml::Value::Table(table).try_into().with_context(context)?;
    spec.check().map_err(|why| anyhow::anyhow!("{}: {why}", context()))?;
    Ok((organization, spec))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("intake.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/from-file\"\ncommit_interval_ms = 40\nindex_memory_mb = 64\nmax_apply_lag_ms = 900\ninline_search_items = 0\n").unwrap();
        let cli = Cli::parse_from(["intake", "--config", file.to_str().unwrap(), "--data-dir", "/tmp/from-flag"]);
        let config = cli.serve.resolve().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-flag"));
        assert_eq!(config.commit_interval, Duration::from_millis(40));
        assert_eq!(config.index_memory_bytes, 64 * 1024 * 1024);
        assert_eq!(config.max_apply_lag, Duration::from_millis(900));
        assert_eq!(config.inline_search_items, 0);
        let off = Cli::parse_from(["intake", "--max-apply-lag-ms", "0"]).serve.resolve().unwrap();
        assert_eq!(off.max_apply_lag, Duration::ZERO);
        let defaults = Cli::parse_from(["intake"]).serve.resolve().unwrap();
        assert_eq!(defaults.max_apply_lag, Duration::from_millis(200));
        assert_eq!(defaults.inline_search_items, 20_000);
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(defaults.data_dir, PathBuf::from("./intake-data"));
        assert!(defaults.master_key.is_none());
    }

    #[test]
    fn limits_and_fault_rules_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("intake.toml");
        let text = "[limits]\nmaximumItems = 100\npushApiRequestsPerSecond = 5\n\n\
                    [[faults]]\norganization = \"default\"\nstatus = 503\ncount = 2\nroute = \"*/documents\"\n\n\
                    [[faults]]\norganization = \"default\"\nkind = \"throttleAfterIdle\"\nidleSeconds = 60\n";
        std::fs::write(&file, text).unwrap();
        let config = Cli::parse_from(["intake", "--config", file.to_str().unwrap()]).serve.resolve().unwrap();
        assert_eq!(config.limits.get(LimitKey::MaximumItems), Some(100));
        assert_eq!(config.limits.get(LimitKey::RequestsPerSecond), Some(5));
        assert_eq!(config.limits.get(LimitKey::Burst), None);
        assert_eq!(config.faults.len(), 2);
        assert_eq!((config.faults[0].0.as_str(), config.faults[0].1.status), ("default", Some(503)));
        assert_eq!(config.faults[1].1.idle_seconds, Some(60));
        for (bad, words) in [
            ("[limits]\nmaximumItem = 1\n", "'maximumItem', which is not a limit"),
            ("[limits]\nmaximumItems = -1\n", "whole number"),
            ("[[faults]]\nstatus = 503\ncount = 1\n", "has no organization"),
            ("[[faults]]\norganization = \"o\"\nstatus = 404\ncount = 1\n", "'status' is 404"),
            ("[[faults]]\norganization = \"o\"\nstatuss = 503\n", "statuss"),
        ] {
            std::fs::write(&file, bad).unwrap();
            let error = Cli::parse_from(["intake", "--config", file.to_str().unwrap()]).serve.resolve().unwrap_err();
            assert!(format!("{error:#}").contains(words), "{bad}: {error:#}");
        }
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("intake.toml");
        std::fs::write(&file, "listen_addr = \"127.0.0.1:1\"\n").unwrap();
        let error = Cli::parse_from(["intake", "--config", file.to_str().unwrap()]).serve.resolve().unwrap_err();
        assert!(format!("{error:#}").contains("listen_addr"), "{error:#}");
    }
}
