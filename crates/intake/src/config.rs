//! `intake serve` settings: flags, then `INTAKE_*` environment variables, then the TOML file given with
//! `--config`, then defaults that run with no configuration at all.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
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
    /// A TOML file with any of: listen, data_dir, master_key, public_url, commit_interval_ms, queue_delay_cap_minutes, token_lifetime_seconds, trusted_proxies, provisioning_delay_seconds, index_threads, index_memory_mb
    #[arg(long, env = "INTAKE_CONFIG")]
    config: Option<PathBuf>,
    /// The base URL clients reach this server at, when behind a proxy
    #[arg(long, env = "INTAKE_PUBLIC_URL")]
    public_url: Option<String>,
    /// How long applied operations wait before becoming searchable, in milliseconds [default: 250]
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
    index_threads: Option<usize>,

    index_memory_mb: Option<usize>,
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
        if let Some(threads) = file.index_threads {
            config.index_threads = threads.max(1);
        }
        if let Some(mb) = file.index_memory_mb {
            config.index_memory_bytes = mb.max(16) * 1024 * 1024;
        }
        Ok(config)
    }
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
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/from-file\"\ncommit_interval_ms = 40\nindex_memory_mb = 64\n").unwrap();
        let cli = Cli::parse_from(["intake", "--config", file.to_str().unwrap(), "--data-dir", "/tmp/from-flag"]);
        let config = cli.serve.resolve().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-flag"));
        assert_eq!(config.commit_interval, Duration::from_millis(40));
        assert_eq!(config.index_memory_bytes, 64 * 1024 * 1024);
        let defaults = Cli::parse_from(["intake"]).serve.resolve().unwrap();
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(defaults.data_dir, PathBuf::from("./intake-data"));
        assert!(defaults.master_key.is_none());
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
