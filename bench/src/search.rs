//! Search throughput and latency (issue 14's figures): a corpus pushed as batches, then two-word queries from its
//! titles at many connections, with 10 results (and their excerpts), 1 result and counting only; and, with
//! facets asked, the same 10-result queries with three facets against without, alternating rounds. The queries
//! are written out so the raw tantivy reference (bench/search_reference.py) runs the very same ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use crate::security::{BATCH_BYTES, close_batch, push_items, queries, wait_for_items};
use crate::{Target, client, inline_data_fits, percentile};

/// One way of asking: the search body's extra keys.
struct Setting {
    name: &'static str,
    body: Value,
}

pub async fn search_load(
    target: Target,
    corpus: String,
    queries_out: String,
    query_count: usize,
    connections: usize,
    rounds: usize,
    with_facets: bool,
) -> anyhow::Result<Value> {
    let http = client(connections);
    let pages = push_corpus(&http, &target, &corpus).await?;
    // Searched in its steady state: Intake merges a quiet index's segments two seconds after its last commit
    // (the reference index is searched as its writer left it, in two segments).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let titles: Vec<String> = pages.iter().map(|(_, title)| title.clone()).collect();
    let ranking = known_items(&http, &target, &pages, &format!("{queries_out}.known"), 200).await?;
    let queries = Arc::new(queries(&titles, query_count, &mut StdRng::seed_from_u64(14)));
    std::fs::write(&queries_out, queries.join("\n")).with_context(|| format!("writing {queries_out}"))?;
    let settings = if with_facets {
        let facets = json!([
            {"facetId": "section", "field": "section", "type": "specific", "numberOfValues": 8, "sortCriteria": "automatic"},
            {"facetId": "filetype", "field": "filetype", "type": "specific", "numberOfValues": 8},
            {"facetId": "size", "field": "size", "type": "numericalRange", "generateAutomaticRanges": true,
             "numberOfValues": 8, "rangeAlgorithm": "equiprobable", "currentValues": []},
        ]);
        vec![
            Setting { name: "10 results", body: json!({"numberOfResults": 10}) },
            Setting { name: "10 results, 3 facets", body: json!({"numberOfResults": 10, "facets": facets}) },
        ]
    } else {
        vec![
            Setting { name: "10 results", body: json!({"numberOfResults": 10}) },
            Setting { name: "1 result", body: json!({"numberOfResults": 1}) },
            Setting { name: "count only", body: json!({"numberOfResults": 0}) },
        ]
    };
    // A warm-up pass of each, then rounds that alternate which setting goes first.
    let mut took: Vec<Vec<Duration>> = vec![Vec::new(); settings.len()];
    let mut wall: Vec<Duration> = vec![Duration::ZERO; settings.len()];
    let mut hits: Vec<u64> = vec![0; settings.len()];
    for round in 0..=rounds {
        let mut order: Vec<usize> = (0..settings.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let pass = run_pass(&http, &target, &queries, &settings[i].body, connections).await?;
            if round > 0 {
                took[i].extend(pass.latencies);
                wall[i] += pass.wall;
                hits[i] += pass.hits;
            }
        }
    }
    let measured: Vec<Value> = settings
        .iter()
        .enumerate()
        .map(|(i, setting)| {
            took[i].sort();
            json!({
                "setting": setting.name,
                "queries_per_s": took[i].len() as f64 / wall[i].as_secs_f64(),
                "p50_ms": percentile(&took[i], 0.5),
                "p99_ms": percentile(&took[i], 0.99),
                "mean_total_count": hits[i] as f64 / took[i].len().max(1) as f64,
            })
        })
        .collect();
    Ok(json!({
        "benchmark": if with_facets { "search-facets" } else { "search" },
        "corpus": corpus,
        "items": pages.len(),
        "queries": queries.len(),
        "connections": connections,
        "rounds": rounds,
        "settings": measured,
        "known_items": ranking,
    }))
}

/// Known-item search: for `count` pages (a fixed sample), the words of the page's own title (before the site's
/// suffix, ` — The Linux Kernel documentation`, ` (Java SE 17 & JDK 17)`), and where the page comes in the
/// results: success at 1 and the mean reciprocal rank within 10. The queries and the pages they should find are
/// written to `out` (`documentId<TAB>query`), for the reference to run the same.
async fn known_items(
    http: &reqwest::Client,
    target: &Target,
    pages: &[(String, String)],
    out: &str,
    count: usize,
) -> anyhow::Result<Value> {
    let step = (pages.len() / count).max(1);
    let sample: Vec<(&String, String)> = pages
        .iter()
        .step_by(step)
        .filter_map(|(id, title)| {
            let own = title.split(" — ").next().unwrap_or(title).split(" (").next().unwrap_or(title);
            let words: String = own.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
            let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
            (!words.is_empty()).then_some((id, words))
        })
        .take(count)
        .collect();
    let lines: Vec<String> = sample.iter().map(|(id, q)| format!("{id}\t{q}")).collect();
    std::fs::write(out, lines.join("\n")).with_context(|| format!("writing {out}"))?;
    let url = format!("{}/rest/search/v2?organizationId={}", target.url, target.org);
    let (mut first, mut reciprocal) = (0usize, 0f64);
    for (id, q) in &sample {
        let body = json!({"q": q, "enableQuerySyntax": false, "numberOfResults": 10, "viewAllContent": true,
                          "fieldsToInclude": ["uri"]});
        let answer: Value = http.post(&url).bearer_auth(&target.key).json(&body).send().await?.json().await?;
        let results = answer["results"].as_array().context("no results")?;
        if let Some(rank) = results.iter().position(|r| r["uri"].as_str() == Some(id.as_str())) {
            first += usize::from(rank == 0);
            reciprocal += 1.0 / (rank + 1) as f64;
        }
    }
    let n = sample.len().max(1) as f64;
    Ok(json!({"queries": sample.len(), "success_at_1": first as f64 / n, "mrr_at_10": reciprocal / n}))
}

/// Pushes every corpus item that fits inline as batches, waits until all are searchable; their ids and titles.
async fn push_corpus(http: &reqwest::Client, target: &Target, corpus: &str) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(corpus).with_context(|| format!("reading {corpus}"))?;
    let (mut titles, mut batch) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if !inline_data_fits(line)? {
            continue;
        }
        let item: Value = serde_json::from_str(line)?;
        let id = item["documentId"].as_str().unwrap_or_default().to_string();
        titles.push((id, item["title"].as_str().unwrap_or_default().to_string()));
        if batch.len() + line.len() + 32 > BATCH_BYTES {
            push_items(http, target, close_batch(&mut batch)).await?;
        }
        batch.extend_from_slice(if batch.is_empty() { b"{\"addOrUpdate\":[" } else { b"," });
        batch.extend_from_slice(line.as_bytes());
    }
    push_items(http, target, close_batch(&mut batch)).await?;
    wait_for_items(http, target, titles.len() as u64).await?;
    Ok(titles)
}

struct Pass {
    latencies: Vec<Duration>,
    wall: Duration,
    hits: u64,
}

/// Every query once, `connections` at a time.
#[derive(serde::Deserialize)]
struct Counted {
    #[serde(rename = "totalCount")]
    total_count: u64,
}

async fn run_pass(
    http: &reqwest::Client,
    target: &Target,
    queries: &Arc<Vec<String>>,
    extra: &Value,
    connections: usize,
) -> anyhow::Result<Pass> {
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/rest/search/v2?organizationId={}", target.url, target.org);
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (http, queries, next, url, key, extra) =
                (http.clone(), queries.clone(), next.clone(), url.clone(), target.key.clone(), extra.clone());
            tokio::spawn(async move {
                let mut out: Vec<(Duration, u64)> = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(q) = queries.get(i) else { return anyhow::Ok(out) };
                    let mut body = extra.clone();
                    body["q"] = json!(q);
                    body["viewAllContent"] = json!(true);
                    let began = Instant::now();
                    let response = http.post(&url).bearer_auth(&key).json(&body).send().await?;
                    if response.status() != 200 {
                        bail!("'{q}' answered {}: {}", response.status(), response.text().await?);
                    }
                    // Only the count is read (the rest skipped, not built into values): the loader shares the
                    // server's cores, and the reference parses nothing.
                    let answer: Counted = response.json().await?;
                    out.push((began.elapsed(), answer.total_count));
                }
            })
        })
        .collect();
    let mut pass = Pass { latencies: Vec::new(), wall: Duration::ZERO, hits: 0 };
    for worker in workers {
        for (took, hits) in worker.await?? {
            pass.latencies.push(took);
            pass.hits += hits;
        }
    }
    pass.wall = started.elapsed();
    Ok(pass)
}
