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
    /// Search as this user (an e-mail address, or a user of --provider): only what they may see
    #[arg(long = "as", conflicts_with = "all")]
    as_user: Option<String>,
    /// The provider of --as
    #[arg(long, default_value = "Email Security Provider", requires = "as_user")]
    provider: String,
    /// Every item, whatever its permissions (viewAllContent; the key needs SEARCH_API VIEW_ALL_CONTENT)
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// Without `--as` or `--all`, the key searches as the anonymous user: public items only.
pub async fn run(args: SearchArgs) -> anyhow::Result<()> {
    let mut server = args.connection.connect()?;
    let mut request = json!({ "q": args.query.clone().unwrap_or_default(), "aq": args.aq.clone().unwrap_or_default(), "numberOfResults": args.number });
    if args.all {
        request["viewAllContent"] = json!(true);
    }
    if let Some(user) = &args.as_user {
        // A search token for the user (the key needs the impersonation privilege), then search with it.
        let path = format!("/rest/search/v2/token?organizationId={}", server.organization_id);
        let ask = json!({"userIds": [{"name": user, "provider": args.provider, "type": "User"}]});
        let answer = server.call(reqwest::Method::POST, &path, Some(ask)).await?;
        let token = answer["token"].as_str().ok_or_else(|| anyhow::anyhow!("the server answered no search token"))?;
        server.api_key = token.to_string();
    }
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
