//! `intake admin`: the Platform API from the command line — organizations, sources, API keys, fields, limits,
//! fault rules, security providers and identities. Each command is one call; the answer is printed as JSON.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::connection::{Connection, ConnectionArgs};

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Organizations (creating and deleting one takes the master key)
    #[command(subcommand)]
    Org(OrgCommand),
    /// Sources of the organization (--org)
    #[command(subcommand)]
    Source(SourceCommand),
    /// API keys of the organization (--org)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Declared fields of the organization (--org)
    #[command(subcommand)]
    Field(FieldCommand),
    /// Limits of the organization (--org) and their usage; changing them takes the master key
    #[command(subcommand)]
    Limit(LimitCommand),
    /// Fault-injection rules of the organization (--org); master key
    #[command(subcommand)]
    Fault(FaultCommand),
    /// Security identity providers of the organization (--org)
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// What a user resolves to, and why they can or cannot see an item
    #[command(subcommand)]
    Identity(IdentityCommand),
}

#[derive(Subcommand, Debug)]
enum ProviderCommand {
    /// Every provider, the Email Security Provider included
    List,
    Get {
        id: String,
    },
    /// Create or replace a provider (type EXPANDED), cascading to the Email Security Provider unless told
    Create {
        id: String,
        /// A source whose items' permissions default to this provider (repeatable)
        #[arg(long = "source")]
        sources: Vec<String>,
        /// A provider its aliases may point to (repeatable; default: Email Security Provider)
        #[arg(long = "cascade")]
        cascading: Vec<String>,
    },
    /// Delete a provider and its identities
    Delete {
        id: String,
    },
    /// The identities pushed to a provider
    Identities {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum IdentityCommand {
    /// Everything a user resolves to (groups, aliases, granted identities), with how
    Resolve {
        /// The user's name, such as alice@example.com
        user: String,
        /// The user's provider
        #[arg(long, default_value = "Email Security Provider")]
        provider: String,
    },
    /// Why a user can or cannot see an item: the chain of identities, and the level and set that decided
    Explain {
        user: String,
        /// The item's documentId
        document: String,
        #[arg(long, default_value = "Email Security Provider")]
        provider: String,
    },
}

#[derive(Subcommand, Debug)]
enum LimitCommand {
    /// Every limit with its value and usage
    List,
    Get {
        key: String,
    },
    /// Set a limit: maximumItems, pushApiMaximumDailyCalls, pushApiMaximumDailyDocumentLimit,
    /// pushApiMaximumDailySecurityIdentities, pushApiRequestsPerSecond or pushApiBurst
    Set {
        key: String,
        value: u64,
    },
    /// Back to the server's default
    Reset {
        key: String,
    },
}

#[derive(Subcommand, Debug)]
enum FaultCommand {
    /// Add a rule: `--status 503 --count 2`, `--status 500 --percent 10 --seed 7`, or `--throttle-after-idle 900`
    Add {
        /// 429, 500, 502, 503 or 504 (429 for --throttle-after-idle)
        #[arg(long)]
        status: Option<u16>,
        /// Fail the next N matching calls
        #[arg(long)]
        count: Option<u64>,
        /// Fail this percentage of matching calls, drawn from --seed
        #[arg(long)]
        percent: Option<f64>,
        #[arg(long)]
        seed: Option<u64>,
        /// A path pattern, `*` matching anything (e.g. `*/documents/batch`)
        #[arg(long)]
        route: Option<String>,
        /// Only calls with this HTTP method
        #[arg(long)]
        method: Option<String>,
        /// Retry-After seconds of 429 and 503 answers
        #[arg(long)]
        retry_after: Option<u64>,
        /// Throttle (429) the first --count calls after this many seconds without calls
        #[arg(long, value_name = "SECONDS")]
        throttle_after_idle: Option<u64>,
    },
    List,
    Remove {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum OrgCommand {
    List,
    /// Create an organization; its id is derived from the name unless given
    Create {
        display_name: String,
        #[arg(long)]
        id: Option<String>,
    },
    Get {
        org: String,
    },
    Delete {
        org: String,
    },
    /// Refuse push calls until resumed
    Pause {
        org: String,
    },
    Resume {
        org: String,
    },
    Status {
        org: String,
    },
}

#[derive(Subcommand, Debug)]
enum SourceCommand {
    List,
    Create {
        name: String,
        /// PUSH or CATALOG
        #[arg(long, default_value = "PUSH")]
        r#type: String,
        /// PRIVATE, SECURED or SHARED
        #[arg(long, default_value = "SECURED")]
        visibility: String,
    },
    Get {
        id: String,
    },
    /// Delete a source and its items
    Delete {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    List,
    /// Create a key; its value is printed once
    Create {
        display_name: String,
        /// OWNER:DOMAIN[:TYPE[:TARGET]], e.g. PLATFORM:SOURCE:EDIT:* (repeatable)
        #[arg(long = "privilege")]
        privileges: Vec<String>,
        /// Allowed IP or CIDR block (repeatable)
        #[arg(long = "allow-ip")]
        allowed_ips: Vec<String>,
        /// Denied IP or CIDR block (repeatable)
        #[arg(long = "deny-ip")]
        denied_ips: Vec<String>,
        /// Expiration date (ISO 8601 or epoch milliseconds)
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    Get {
        id: String,
    },
    Disable {
        id: String,
    },
    Activate {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum FieldCommand {
    List,
    /// Declare fields as NAME:TYPE (STRING, LONG, LONG_64, DOUBLE, DATE)
    Create {
        #[arg(required = true)]
        fields: Vec<String>,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let server = args.connection.connect()?;
    let answer = dispatch(&server, args.command).await?;
    if !answer.is_null() {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(())
}

async fn dispatch(server: &Connection, command: AdminCommand) -> anyhow::Result<Value> {
    let org = format!("/rest/organizations/{}", server.organization_id);
    let (method, path, body) = match command {
        AdminCommand::Org(command) => match command {
            OrgCommand::List => (Method::GET, "/rest/organizations".to_string(), None),
            OrgCommand::Create { display_name, id } => {
                (Method::POST, "/rest/organizations".to_string(), Some(json!({"id": id, "displayName": display_name})))
            }
            OrgCommand::Get { org } => (Method::GET, format!("/rest/organizations/{org}"), None),
            OrgCommand::Delete { org } => (Method::DELETE, format!("/rest/organizations/{org}"), None),
            OrgCommand::Pause { org } => (Method::POST, format!("/rest/organizations/{org}/pause"), None),
            OrgCommand::Resume { org } => (Method::POST, format!("/rest/organizations/{org}/resume"), None),
            OrgCommand::Status { org } => (Method::GET, format!("/rest/organizations/{org}/status"), None),
        },
        AdminCommand::Source(command) => match command {
            SourceCommand::List => (Method::GET, format!("{org}/sources"), None),
            SourceCommand::Create { name, r#type, visibility } => (
                Method::POST,
                format!("{org}/sources"),
                Some(json!({"name": name, "sourceType": r#type, "sourceVisibility": visibility, "pushEnabled": true})),
            ),
            SourceCommand::Get { id } => (Method::GET, format!("{org}/sources/{id}"), None),
            SourceCommand::Delete { id } => (Method::DELETE, format!("{org}/sources/{id}"), None),
        },
        AdminCommand::Key(command) => match command {
            KeyCommand::List => (Method::GET, format!("{org}/apikeys"), None),
            KeyCommand::Create { display_name, privileges, allowed_ips, denied_ips, expires, description } => {
                let privileges = privileges.iter().map(|p| privilege(p)).collect::<anyhow::Result<Vec<_>>>()?;
                let expiration = expires.map(|e| e.parse::<i64>().map(Value::from).unwrap_or(Value::from(e)));
                let body = json!({
                    "displayName": display_name,
                    "description": description,
                    "privileges": privileges,
                    "allowedIps": allowed_ips,
                    "deniedIps": denied_ips,
                    "expirationDate": expiration,
                });
                (Method::POST, format!("{org}/apikeys"), Some(body))
            }
            KeyCommand::Get { id } => (Method::GET, format!("{org}/apikeys/{id}"), None),
            KeyCommand::Disable { id } => (Method::PUT, format!("{org}/apikeys/{id}/disable"), None),
            KeyCommand::Activate { id } => (Method::PUT, format!("{org}/apikeys/{id}/activate"), None),
            KeyCommand::Delete { id } => (Method::DELETE, format!("{org}/apikeys/{id}"), None),
        },
        AdminCommand::Field(command) => match command {
            FieldCommand::List => (Method::GET, format!("{org}/indexes/page/fields?page=0&perPage=1000"), None),
            FieldCommand::Create { fields } => {
                let fields = fields.iter().map(|f| field(f)).collect::<anyhow::Result<Vec<_>>>()?;
                (Method::POST, format!("{org}/indexes/fields/batch/create"), Some(Value::Array(fields)))
            }
        },
        AdminCommand::Limit(command) => match command {
            LimitCommand::List => (Method::GET, format!("{org}/limits"), None),
            LimitCommand::Get { key } => (Method::GET, format!("{org}/limits/{key}"), None),
            LimitCommand::Set { key, value } => {
                (Method::PUT, format!("{org}/limits/{key}"), Some(json!({"value": value})))
            }
            LimitCommand::Reset { key } => (Method::DELETE, format!("{org}/limits/{key}"), None),
        },
        AdminCommand::Fault(command) => match command {
            FaultCommand::Add { status, count, percent, seed, route, method, retry_after, throttle_after_idle } => {
                let kind = throttle_after_idle.map(|_| "throttleAfterIdle");
                let rule = json!({
                    "kind": kind, "status": status, "count": count, "percent": percent, "seed": seed,
                    "route": route, "method": method, "retryAfter": retry_after, "idleSeconds": throttle_after_idle,
                });
                let rule: serde_json::Map<String, Value> = rule
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (Method::POST, format!("{org}/faults"), Some(Value::Object(rule)))
            }
            FaultCommand::List => (Method::GET, format!("{org}/faults"), None),
            FaultCommand::Remove { id } => (Method::DELETE, format!("{org}/faults/{id}"), None),
        },
        AdminCommand::Provider(command) => match command {
            ProviderCommand::List => (Method::GET, format!("{org}/securityproviders"), None),
            ProviderCommand::Get { id } => (Method::GET, format!("{org}/securityproviders/{}", segment(&id)), None),
            ProviderCommand::Create { id, sources, cascading } => {
                let cascading = if cascading.is_empty() { vec![EMAIL_PROVIDER.to_string()] } else { cascading };
                let body = json!({
                    "name": id, "type": "EXPANDED",
                    "referencedBy": sources.iter().map(|s| json!({"id": s, "type": "SOURCE"})).collect::<Vec<_>>(),
                    "cascadingSecurityProviders": cascading.iter().map(|p| (p.clone(), json!({"id": p, "name": p}))).collect::<serde_json::Map<_, _>>(),
                });
                (Method::PUT, format!("{org}/securityproviders/{}", segment(&id)), Some(body))
            }
            ProviderCommand::Delete { id } => {
                (Method::DELETE, format!("{org}/securityproviders/{}", segment(&id)), None)
            }
            ProviderCommand::Identities { id } => {
                (Method::GET, format!("{org}/securitycache/entities/{}/members?perPage=1000", segment(&id)), None)
            }
        },
        AdminCommand::Identity(command) => match command {
            IdentityCommand::Resolve { user, provider } => (
                Method::POST,
                format!(
                    "{org}/securitycache/entities/{}/members/parents?recursive=true&perPage=1000",
                    segment(&provider)
                ),
                Some(json!({"name": user, "provider": provider, "type": "User"})),
            ),
            IdentityCommand::Explain { user, document, provider } => (
                Method::POST,
                format!("{org}/securitycache/explain"),
                Some(json!({"user": {"name": user, "provider": provider, "type": "User"}, "documentId": document})),
            ),
        },
    };
    server.call(method, &path, body).await
}

const EMAIL_PROVIDER: &str = "Email Security Provider";

/// A path segment, percent-encoded (provider ids have spaces).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `PLATFORM:SOURCE:EDIT:*` → a privilege object; the type and target may be left out (`*` by default).
fn privilege(text: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = text.split(':').collect();
    let [owner, domain, rest @ ..] = parts.as_slice() else {
        anyhow::bail!("'{text}' is not a privilege: write OWNER:DOMAIN[:TYPE[:TARGET]], e.g. PLATFORM:SOURCE:EDIT:*");
    };
    let kind = rest.first().filter(|k| !k.is_empty());
    let target = rest.get(1).map_or("*", |t| t);
    Ok(json!({"owner": owner, "targetDomain": domain, "type": kind, "targetId": target}))
}

/// `rank:LONG` → a field object; the type defaults to STRING.
fn field(text: &str) -> anyhow::Result<Value> {
    let (name, kind) = text.split_once(':').unwrap_or((text, "STRING"));
    if name.is_empty() {
        anyhow::bail!("'{text}' is not a field: write NAME:TYPE, e.g. rank:LONG");
    }
    Ok(json!({"name": name, "type": kind}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_and_fields_from_the_command_line() {
        assert_eq!(
            privilege("PLATFORM:SOURCE:EDIT:src-1").unwrap(),
            json!({"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "EDIT", "targetId": "src-1"})
        );
        assert_eq!(privilege("SEARCH_API:EXECUTE_QUERY").unwrap()["targetId"], "*");
        assert!(privilege("PLATFORM").is_err());
        assert_eq!(field("rank:LONG").unwrap(), json!({"name": "rank", "type": "LONG"}));
        assert_eq!(field("category").unwrap()["type"], "STRING");
    }
}
