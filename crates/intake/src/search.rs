//! `intake search`: queries a running server.

use clap::Args;
use serde_json::json;

use crate::connection::ConnectionArgs;

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
    /// Print the raw JSON answer
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let server = args.connection.connect()?;
    let request = json!({ "q": args.query.clone().unwrap_or_default(), "aq": args.aq.clone().unwrap_or_default(), "numberOfResults": args.number });
    let path = format!("/rest/search/v2?organizationId={}", server.organization_id);
    let body = server.call(reqwest::Method::POST, &path, Some(request)).await?;
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
