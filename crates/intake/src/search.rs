//! `intake search`: queries a running server, found through `<data-dir>/bootstrap.json` unless told.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Free-text query (words are ANDed)
    query: Option<String>,
    /// Advanced query, e.g. '@category==news'
    #[arg(long)]
    aq: Option<String>,
    /// Number of results
    #[arg(short = 'n', long, default_value_t = 10)]
    number: usize,
    /// Organization [default: the one in bootstrap.json]
    #[arg(long)]
    org: Option<String>,
    /// Server base URL [default: the one in bootstrap.json]
    #[arg(long, env = "INTAKE_URL")]
    url: Option<String>,
    /// API key [default: the master key in bootstrap.json]
    #[arg(long, env = "INTAKE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Data folder holding bootstrap.json
    #[arg(long, env = "INTAKE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print the raw JSON answer
    #[arg(long)]
    json: bool,
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    let bootstrap = intake_server::bootstrap::read_bootstrap(&data_dir);
    let url = args
        .url
        .clone()
        .or_else(|| bootstrap.as_ref().map(|b| b.base_url.clone()))
        .with_context(|| {
            format!(
                "no server address: give --url, or start `intake serve` with --data-dir {} first",
                data_dir.display()
            )
        })?;
    let key = args
        .api_key
        .clone()
        .or_else(|| bootstrap.as_ref().and_then(|b| b.api_key.clone()))
        .context("no API key: give --api-key")?;
    let org = args
        .org
        .clone()
        .or_else(|| bootstrap.as_ref().map(|b| b.organization_id.clone()))
        .unwrap_or_else(|| "default".into());

    let response = reqwest::Client::new()
        .post(format!("{}/rest/search/v2?organizationId={org}", url.trim_end_matches('/')))
        .bearer_auth(key)
        .json(&json!({ "q": args.query.clone().unwrap_or_default(), "aq": args.aq.clone().unwrap_or_default(), "numberOfResults": args.number }))
        .send()
        .await
        .with_context(|| format!("cannot reach Intake at {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        anyhow::bail!(
            "{} {}: {}",
            status.as_u16(),
            body["errorCode"].as_str().unwrap_or(""),
            body["message"].as_str().unwrap_or("")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let total = body["totalCount"].as_u64().unwrap_or(0);
    println!("{total} result{}", if total == 1 { "" } else { "s" });
    for result in body["results"].as_array().into_iter().flatten() {
        println!();
        println!("{}", result["title"].as_str().unwrap_or(""));
        println!("  {}", result["uri"].as_str().unwrap_or(""));
        let excerpt = result["excerpt"].as_str().unwrap_or("");
        if !excerpt.is_empty() {
            println!("  {excerpt}");
        }
    }
    Ok(())
}
