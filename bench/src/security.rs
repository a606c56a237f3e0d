//! Security benchmarks: trimmed search against untrimmed on a corpus whose items carry permissions, an identity
//! batch until resolvable, and resolving a user in many groups.
//!
//! The world is seeded and the same for all three: 10,000 users, 1,000 groups nested 3 deep (10 top groups,
//! each holding 9 middle groups, each holding 10 leaf groups; users are members of 1 to 5 leaves), and a user,
//! `focus@example.com`, in 20 leaves under 20 different middle groups: 50 groups in all.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use intake_index::security::{IdentityGraph, IdentityRef};
use intake_model::identity::{IdentityChange, SecurityIdentity};
use intake_model::permissions::IdentityType;
use intake_store::{EMAIL_PROVIDER, SecurityProvider};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::{Target, client, inline_data_fits, percentile, upload};

const PROVIDER: &str = "Bench Provider";
const FOCUS: &str = "focus@example.com";
const USERS: usize = 10_000;
const TOPS: usize = 10;
const MIDS_PER_TOP: usize = 9;
const LEAVES_PER_MID: usize = 10;
/// The most bytes of item JSON per batch file (a container holds 256 MiB).
pub(crate) const BATCH_BYTES: usize = 200 * 1024 * 1024;

/// Members of a group: `(name, type)`.
type Members = Vec<(String, &'static str)>;

/// The groups, each with its members.
struct World {
    groups: Vec<(String, Members)>,
}

fn top(t: usize) -> String {
    format!("top-{t}")
}

fn mid(t: usize, m: usize) -> String {
    format!("mid-{t}-{m}")
}

fn leaf(t: usize, m: usize, l: usize) -> String {
    format!("leaf-{t}-{m}-{l}")
}

fn user(u: usize) -> String {
    format!("u{u}@example.com")
}

impl World {
    fn new(rng: &mut StdRng) -> World {
        let mut leaves: Vec<((usize, usize, usize), Members)> = Vec::new();
        for t in 0..TOPS {
            for m in 0..MIDS_PER_TOP {
                for l in 0..LEAVES_PER_MID {
                    leaves.push(((t, m, l), Vec::new()));
                }
            }
        }
        for u in 0..USERS {
            for _ in 0..rng.random_range(1..=5) {
                let index = rng.random_range(0..leaves.len());
                leaves[index].1.push((user(u), "USER"));
            }
        }
        // The focus user: 20 leaves under 20 different middle groups, 2 per top group.
        for t in 0..TOPS {
            for m in 0..2 {
                let index = (t * MIDS_PER_TOP + m) * LEAVES_PER_MID;
                leaves[index].1.push((FOCUS.to_string(), "USER"));
            }
        }
        let mut groups = Vec::new();
        for t in 0..TOPS {
            groups.push((top(t), (0..MIDS_PER_TOP).map(|m| (mid(t, m), "GROUP")).collect()));
            for m in 0..MIDS_PER_TOP {
                groups.push((mid(t, m), (0..LEAVES_PER_MID).map(|l| (leaf(t, m, l), "GROUP")).collect()));
            }
        }
        groups.extend(leaves.into_iter().map(|((t, m, l), members)| (leaf(t, m, l), members)));
        World { groups }
    }

    fn names(&self) -> Vec<&str> {
        self.groups.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// The identity batch file that pushes every group with its members.
    fn batch(&self) -> Vec<u8> {
        let members: Vec<Value> = self
            .groups
            .iter()
            .map(|(name, members)| {
                json!({"identity": {"name": name, "type": "GROUP"},
                       "members": members.iter().map(|(name, kind)| json!({"name": name, "type": kind})).collect::<Vec<_>>()})
            })
            .collect();
        serde_json::to_vec(&json!({"members": members})).expect("JSON")
    }
}

/// Random permissions: 1 to 20 groups allowed, 0 to 2 groups or users denied.
fn permissions(rng: &mut StdRng, groups: &[&str]) -> Value {
    let allowed: Vec<Value> = (0..rng.random_range(1..=20))
        .map(|_| json!({"identity": groups.choose(rng).unwrap(), "identityType": "Group"}))
        .collect();
    let denied: Vec<Value> = (0..rng.random_range(0..=2))
        .map(|_| {
            if rng.random_bool(0.5) {
                json!({"identity": groups.choose(rng).unwrap(), "identityType": "Group"})
            } else {
                json!({"identity": user(rng.random_range(0..USERS)), "identityType": "User"})
            }
        })
        .collect();
    json!([{"allowAnonymous": false, "allowedPermissions": allowed, "deniedPermissions": denied}])
}

/// A SECURED source and the provider its items' permissions default to; the target's source becomes it.
async fn secured(client: &reqwest::Client, target: &Target) -> anyhow::Result<Target> {
    let created: Value = client
        .post(format!("{}/rest/organizations/{}/sources", target.url, target.org))
        .bearer_auth(&target.key)
        .json(&json!({"name": "secured", "sourceVisibility": "SECURED"}))
        .send()
        .await?
        .json()
        .await?;
    let source = created["id"].as_str().context("no source id")?.to_string();
    let provider = json!({"name": PROVIDER, "type": "EXPANDED", "referencedBy": [{"id": source, "type": "SOURCE"}],
        "cascadingSecurityProviders": {EMAIL_PROVIDER: {"id": EMAIL_PROVIDER, "name": EMAIL_PROVIDER}}});
    let response = client
        .put(format!(
            "{}/rest/organizations/{}/securityproviders/{}",
            target.url,
            target.org,
            PROVIDER.replace(' ', "%20")
        ))
        .bearer_auth(&target.key)
        .json(&provider)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("creating the provider answered {}: {}", response.status(), response.text().await?);
    }
    Ok(Target { source, ..target.clone() })
}

async fn push_identities(client: &reqwest::Client, target: &Target, batch: Vec<u8>) -> anyhow::Result<()> {
    let file_id = upload(client, target, batch).await?;
    let response = client
        .put(format!(
            "{}/push/v1/organizations/{}/providers/{}/permissions/batch?fileId={file_id}",
            target.url,
            target.org,
            PROVIDER.replace(' ', "%20")
        ))
        .bearer_auth(&target.key)
        .send()
        .await?;
    if response.status() != 202 {
        bail!("the identity batch answered {}: {}", response.status(), response.text().await?);
    }
    Ok(())
}

pub(crate) async fn push_items(client: &reqwest::Client, target: &Target, body: Vec<u8>) -> anyhow::Result<()> {
    let file_id = upload(client, target, body).await?;
    let response = client
        .put(format!(
            "{}/push/v1/organizations/{}/sources/{}/documents/batch?fileId={file_id}",
            target.url, target.org, target.source
        ))
        .bearer_auth(&target.key)
        .send()
        .await?;
    if response.status() != 202 {
        bail!("the batch answered {}: {}", response.status(), response.text().await?);
    }
    Ok(())
}

/// A search as `bearer`: its total count and how long the answer took.
pub(crate) async fn timed_search(
    client: &reqwest::Client,
    target: &Target,
    bearer: &str,
    body: &Value,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let response = client
        .post(format!("{}/rest/search/v2?organizationId={}", target.url, target.org))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await?;
    if response.status() != 200 {
        bail!("a search answered {}: {}", response.status(), response.text().await?);
    }
    let answer: Value = response.json().await?;
    Ok((answer["totalCount"].as_u64().context("no totalCount")?, started.elapsed()))
}

async fn search_token(client: &reqwest::Client, target: &Target, name: &str) -> anyhow::Result<String> {
    let answer: Value = client
        .post(format!("{}/rest/search/v2/token?organizationId={}", target.url, target.org))
        .bearer_auth(&target.key)
        .json(&json!({"userIds": [{"name": name, "provider": EMAIL_PROVIDER}]}))
        .send()
        .await?
        .json()
        .await?;
    Ok(answer["token"].as_str().context("no token")?.to_string())
}

/// Waits until `count` items are searchable with viewAllContent.
pub(crate) async fn wait_for_items(client: &reqwest::Client, target: &Target, count: u64) -> anyhow::Result<()> {
    let everything = json!({"numberOfResults": 0, "viewAllContent": true});
    let deadline = Instant::now() + Duration::from_secs(900);
    while timed_search(client, target, &target.key, &everything).await?.0 < count {
        if Instant::now() > deadline {
            bail!("the items did not all become searchable within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Two words of a title (letters only, 4 or more), for queries that find something.
pub(crate) fn queries(titles: &[String], count: usize, rng: &mut StdRng) -> Vec<String> {
    let mut queries = BTreeSet::new();
    let mut attempts = 0;
    while queries.len() < count && attempts < count * 100 {
        attempts += 1;
        let title = titles.choose(rng).unwrap();
        let words: Vec<&str> = title.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() >= 4).collect();
        if words.len() >= 2 {
            let first = rng.random_range(0..words.len() - 1);
            queries.insert(format!("{} {}", words[first], words[first + 1]).to_lowercase());
        }
    }
    queries.into_iter().collect()
}

pub async fn trimmed(target: Target, corpus: String, query_count: usize, rounds: usize) -> anyhow::Result<Value> {
    let mut rng = StdRng::seed_from_u64(11);
    let client = client(4);
    let target = secured(&client, &target).await?;
    let world = World::new(&mut rng);
    push_identities(&client, &target, world.batch()).await?;
    let names = world.names();
    let text = std::fs::read_to_string(&corpus).with_context(|| format!("reading {corpus}"))?;
    let (mut items, mut titles, mut batch) = (0u64, Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if !inline_data_fits(line)? {
            continue;
        }
        let mut item: Value = serde_json::from_str(line)?;
        titles.push(item["title"].as_str().unwrap_or_default().to_string());
        item["permissions"] = permissions(&mut rng, &names);
        let entry = serde_json::to_vec(&item)?;
        if batch.len() + entry.len() + 32 > BATCH_BYTES {
            push_items(&client, &target, close_batch(&mut batch)).await?;
        }
        batch.extend_from_slice(if batch.is_empty() { b"{\"addOrUpdate\":[" } else { b"," });
        batch.extend_from_slice(&entry);
        items += 1;
    }
    push_items(&client, &target, close_batch(&mut batch)).await?;
    wait_for_items(&client, &target, items).await?;
    let token = search_token(&client, &target, FOCUS).await?;
    let queries = queries(&titles, query_count, &mut rng);
    let (mut untrimmed, mut trimmed) = (Vec::new(), Vec::new());
    let (mut untrimmed_found, mut trimmed_found) = (0u64, 0u64);
    for round in 0..rounds {
        for (i, q) in queries.iter().enumerate() {
            let all = json!({"q": q, "numberOfResults": 10, "viewAllContent": true});
            let mine = json!({"q": q, "numberOfResults": 10});
            // Alternate which goes first, so neither always meets the warmer cache.
            let ((all_count, all_took), (mine_count, mine_took)) = if i % 2 == 0 {
                let a = timed_search(&client, &target, &target.key, &all).await?;
                (a, timed_search(&client, &target, &token, &mine).await?)
            } else {
                let m = timed_search(&client, &target, &token, &mine).await?;
                (timed_search(&client, &target, &target.key, &all).await?, m)
            };
            if mine_count > all_count {
                bail!("the trimmed search of '{q}' found {mine_count}, more than everything ({all_count})");
            }
            if round > 0 {
                // Round 0 warms up: the first trimmed search of a segment compiles its permissions.
                untrimmed.push(all_took);
                trimmed.push(mine_took);
                untrimmed_found += all_count;
                trimmed_found += mine_count;
            }
        }
    }
    untrimmed.sort();
    trimmed.sort();
    // Another user's first query: nothing of theirs is cached (each segment's permissions are compiled already).
    let other = search_token(&client, &target, &user(1)).await?;
    let (_, cold) = timed_search(&client, &target, &other, &json!({"q": queries[0], "numberOfResults": 10})).await?;
    Ok(json!({
        "benchmark": "trimmed-search",
        "docs": items,
        "users": USERS,
        "groups": world.groups.len(),
        "user_groups": 50,
        "queries": queries.len(),
        "measured_rounds": rounds.saturating_sub(1),
        "untrimmed_p50_ms": percentile(&untrimmed, 0.5),
        "untrimmed_p99_ms": percentile(&untrimmed, 0.99),
        "trimmed_p50_ms": percentile(&trimmed, 0.5),
        "trimmed_p99_ms": percentile(&trimmed, 0.99),
        "p99_ratio": percentile(&trimmed, 0.99) / percentile(&untrimmed, 0.99),
        "other_user_first_query_ms": cold.as_secs_f64() * 1000.0,
        "visible_share": trimmed_found as f64 / untrimmed_found.max(1) as f64,
    }))
}

pub(crate) fn close_batch(batch: &mut Vec<u8>) -> Vec<u8> {
    batch.extend_from_slice(b"]}");
    std::mem::take(batch)
}

pub async fn identity_batch(target: Target, identities: usize) -> anyhow::Result<Value> {
    let client = client(2);
    let target = secured(&client, &target).await?;
    let groups = identities / 100;
    let last_group = format!("g{}", groups - 1);
    let probe = json!({"data": "probe", "permissions": [{"allowedPermissions": [{"identity": last_group, "identityType": "Group"}]}]});
    let response = client
        .put(format!(
            "{}/push/v1/organizations/{}/sources/{}/documents?documentId=file://probe",
            target.url, target.org, target.source
        ))
        .bearer_auth(&target.key)
        .json(&probe)
        .send()
        .await?;
    if response.status() != 202 {
        bail!("the probe answered {}", response.status());
    }
    wait_for_items(&client, &target, 1).await?;
    // `groups` groups of 100 users each, then the users themselves: `identities` entries in all.
    let mut members: Vec<Value> = (0..groups)
        .map(|g| {
            let users: Vec<Value> =
                (g * 100..(g + 1) * 100).map(|u| json!({"name": user(u), "type": "USER"})).collect();
            json!({"identity": {"name": format!("g{g}"), "type": "GROUP"}, "members": users})
        })
        .collect();
    members.extend((0..identities - groups).map(|u| json!({"identity": {"name": user(u), "type": "USER"}})));
    let batch = serde_json::to_vec(&json!({"members": members}))?;
    let bytes = batch.len();
    let last_user = user(identities - 1);
    let token = search_token(&client, &target, &last_user).await?;
    let started = Instant::now();
    push_identities(&client, &target, batch).await?;
    let accepted_s = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    while timed_search(&client, &target, &token, &json!({"numberOfResults": 0})).await?.0 < 1 {
        if Instant::now() > deadline {
            bail!("the identities were not resolvable within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resolvable_s = started.elapsed().as_secs_f64();
    Ok(json!({
        "benchmark": "identity-batch",
        "identities": identities,
        "mb": bytes as f64 / 1e6,
        "upload_excluded": true,
        "accepted_s": accepted_s,
        "resolvable_s": resolvable_s,
        "identities_per_s": identities as f64 / resolvable_s,
    }))
}

pub fn resolve(samples: usize) -> Value {
    let mut rng = StdRng::seed_from_u64(11);
    let world = World::new(&mut rng);
    let provider = SecurityProvider {
        id: PROVIDER.into(),
        organization_id: "bench".into(),
        display_name: PROVIDER.into(),
        provider_type: "EXPANDED".into(),
        cascading: vec![EMAIL_PROVIDER.into()],
        sources: vec![],
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    let mut graph = IdentityGraph::new("bench");
    let identity = |name: &str, kind: &str| SecurityIdentity {
        name: name.to_string(),
        kind: IdentityType::parse(kind).expect("a type"),
        additional_info: vec![],
    };
    for (name, members) in &world.groups {
        let change = IdentityChange::Upsert {
            identity: identity(name, "GROUP"),
            members: members.iter().map(|(name, kind)| identity(name, kind)).collect(),
            well_knowns: vec![],
        };
        graph.apply(&provider, &change, 1, 0).expect("applies");
    }
    let providers = [provider];
    let focus = [IdentityRef::new(EMAIL_PROVIDER, FOCUS, IdentityType::User)];
    let groups =
        graph.resolve(&focus, &providers).reached.iter().filter(|(i, _, _)| i.kind == IdentityType::Group).count();
    let mut took = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let resolution = graph.resolve(&focus, &providers);
        took.push(started.elapsed());
        std::hint::black_box(resolution);
    }
    took.sort();
    json!({
        "benchmark": "resolve",
        "users": USERS,
        "groups": world.groups.len(),
        "user_groups": groups,
        "samples": samples,
        "p50_us": percentile(&took, 0.5) * 1000.0,
        "p99_us": percentile(&took, 0.99) * 1000.0,
    })
}
