//! How the client subcommands (`search`, `admin`) reach a server: flags, then `INTAKE_*` variables, then the
//! `bootstrap.json` that `intake serve` wrote in the data folder.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Server base URL [default: the one in bootstrap.json]
    #[arg(long, alias = "base-url", env = "INTAKE_URL", global = true)]
    url: Option<String>,
    /// API key or access token [default: the master key in bootstrap.json]
    #[arg(long, env = "INTAKE_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// Organization [default: the one in bootstrap.json]
    #[arg(long, global = true)]
    org: Option<String>,
    /// Data folder holding bootstrap.json
    #[arg(long, env = "INTAKE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

/// A server to talk to, with the credentials to do it.
pub struct Connection {
    pub base_url: String,
    pub api_key: String,
    pub organization_id: String,
    http: reqwest::Client,
}

impl ConnectionArgs {
    pub fn has_url(&self) -> bool {
        self.url.is_some()
    }

    pub fn set_url(&mut self, url: &str) {
        self.url = Some(url.to_string());
    }

    /// What `intake serve` wrote in the data folder, if it did.
    pub fn bootstrap(&self) -> Option<intake_server::bootstrap::Bootstrap> {
        intake_server::bootstrap::read_bootstrap(&self.data_dir.clone().unwrap_or_else(crate::default_data_dir))
    }

    /// For a server other than the local one (Coveo's cloud): the key and organization must be given.
    pub fn require_explicit(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.api_key.is_some(), "give --api-key (or INTAKE_API_KEY) for this server");
        anyhow::ensure!(self.org.is_some(), "give --org for this server");
        Ok(())
    }

    pub fn connect(&self) -> anyhow::Result<Connection> {
        let data_dir = self.data_dir.clone().unwrap_or_else(crate::default_data_dir);
        let bootstrap = intake_server::bootstrap::read_bootstrap(&data_dir);
        let base_url =
            self.url.clone().or_else(|| bootstrap.as_ref().map(|b| b.base_url.clone())).with_context(|| {
                format!(
                    "no server address: give --url, or start `intake serve` with --data-dir {} first",
                    data_dir.display()
                )
            })?;
        let api_key = self
            .api_key
            .clone()
            .or_else(|| bootstrap.as_ref().and_then(|b| b.api_key.clone()))
            .context("no API key: give --api-key")?;
        let organization_id = self
            .org
            .clone()
            .or_else(|| bootstrap.as_ref().map(|b| b.organization_id.clone()))
            .unwrap_or_else(|| "default".into());
        Ok(Connection {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            organization_id,
            http: reqwest::Client::new(),
        })
    }
}

impl Connection {
    /// Calls the server; a non-2xx answer becomes an error naming its code and message.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url)).bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("cannot reach Intake at {}", self.base_url))?;
        let status = response.status();
        let text = response.text().await?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).context("the server's answer is not JSON")?
        };
        if !status.is_success() {
            anyhow::bail!(
                "{} {}: {}",
                status.as_u16(),
                body["errorCode"].as_str().unwrap_or(""),
                body["message"].as_str().unwrap_or(&text)
            );
        }
        Ok(body)
    }
}
