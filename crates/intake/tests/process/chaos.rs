//! Crash chaos: clients push every kind of operation (items inline and through file containers, deletes, deletes
//! with children, delete-older-than, batches) while the server is killed (SIGKILL) at random moments, twenty
//! rounds on one data directory. Afterwards no acknowledged operation may be lost or applied twice, and the logs
//! API must agree with the index.
//!
//! Every operation carries an `orderingId` from one increasing counter, so the highest-orderingId-wins rule gives
//! each item one expected state: the effect of its highest acknowledged operation, unless an operation whose
//! answer was lost to a kill (it may or may not have been journaled) came after it. Each client owns a group of
//! items (a parent and its children) and sends one operation at a time, so within a group the journal order is
//! the orderingId order; a delete-older-than touches every group.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{KEY, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLIENTS: usize = 6;
const CHILDREN: usize = 6;
const ROUNDS: usize = 20;

/// What an operation leaves an item as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Added or updated: the item's `version` metadata is the operation's orderingId.
    Present,
    Absent,
}

/// One operation's effect on one item.
#[derive(Debug, Clone, Copy)]
struct Event {
    ordering_id: i64,
    effect: Effect,
    /// Its answer was lost to a kill: it may or may not have been applied.
    uncertain: bool,
}

/// What the clients did to every item, and the delete-older-than operations that touched them all.
#[derive(Default)]
struct History {
    items: BTreeMap<String, Vec<Event>>,
    everything: Vec<Event>,
}

impl History {
    fn record(&mut self, ids: &[String], ordering_id: i64, effect: Effect, uncertain: bool) {
        for id in ids {
            self.items.entry(id.clone()).or_default().push(Event { ordering_id, effect, uncertain });
        }
    }

    /// The states an item may be in: the effect of its highest certain event, or of any uncertain one above it.
    fn possible(&self, id: &str) -> Vec<(Effect, i64)> {
        let events: Vec<Event> =
            self.items.get(id).into_iter().flatten().chain(self.everything.iter()).copied().collect();
        let floor = events.iter().filter(|e| !e.uncertain).max_by_key(|e| e.ordering_id);
        let mut possible: Vec<(Effect, i64)> = match floor {
            Some(event) => vec![(event.effect, event.ordering_id)],
            None => vec![(Effect::Absent, 0)],
        };
        let floor_id = floor.map_or(i64::MIN, |e| e.ordering_id);
        possible.extend(
            events.iter().filter(|e| e.uncertain && e.ordering_id > floor_id).map(|e| (e.effect, e.ordering_id)),
        );
        possible
    }
}

/// One client's group: a parent item and its children.
fn group(client: usize) -> (String, Vec<String>) {
    let parent = format!("file://chaos/g{client}");
    let children = (0..CHILDREN).map(|k| format!("{parent}/{k}")).collect();
    (parent, children)
}

enum Operation {
    Put(String),
    PutFromContainer(String),
    Delete(String),
    DeleteWithChildren,
    Batch(Vec<(String, Effect)>),
    DeleteOlderThan,
}

fn pick(rng: &mut StdRng, client: usize) -> Operation {
    let (parent, children) = group(client);
    let any = |rng: &mut StdRng| {
        let k = rng.random_range(0..=CHILDREN);
        if k == CHILDREN { parent.clone() } else { children[k].clone() }
    };
    // Per mille: a delete-older-than wipes every group, so it is rare enough for items to be there at the end.
    match rng.random_range(0..1000) {
        0..450 => Operation::Put(any(rng)),
        450..520 => Operation::PutFromContainer(any(rng)),
        520..700 => Operation::Delete(any(rng)),
        700..760 => Operation::DeleteWithChildren,
        760..995 => {
            let mut entries: Vec<(String, Effect)> = Vec::new();
            for _ in 0..rng.random_range(1..5) {
                let id = any(rng);
                if !entries.iter().any(|(e, _)| *e == id) {
                    entries.push((id, if rng.random_bool(0.75) { Effect::Present } else { Effect::Absent }));
                }
            }
            Operation::Batch(entries)
        }
        _ => Operation::DeleteOlderThan,
    }
}

fn body(ordering_id: i64) -> Value {
    json!({"data": format!("<p>version {ordering_id}</p>"), "version": ordering_id.to_string()})
}

/// Sends one operation; `Some(true)` once acknowledged, `None` if the server died before answering. An answer
/// other than the expected one fails the test.
async fn send(server: &Server, operation: &Operation, ordering_id: i64, client: usize) -> Option<bool> {
    let url = server.documents_url();
    let order = ordering_id.to_string();
    let http = &server.client;
    let request = match operation {
        Operation::Put(id) => {
            http.put(&url).query(&[("documentId", id.as_str()), ("orderingId", &order)]).json(&body(ordering_id))
        }
        Operation::PutFromContainer(id) => {
            let content = format!("<p>version {ordering_id} from a container</p>").into_bytes();
            let file_id = match server.upload(content).await {
                Ok(file_id) => file_id,
                Err(_) => return None,
            };
            let item =
                json!({"compressedBinaryDataFileId": file_id, "compressionType": "UNCOMPRESSED", "version": order});
            http.put(&url).query(&[("documentId", id.as_str()), ("orderingId", &order)]).json(&item)
        }
        Operation::Delete(id) => http.delete(&url).query(&[("documentId", id.as_str()), ("orderingId", &order)]),
        Operation::DeleteWithChildren => {
            let (parent, _) = group(client);
            http.delete(&url).query(&[
                ("documentId", parent.as_str()),
                ("orderingId", &order),
                ("deleteChildren", "true"),
            ])
        }
        Operation::Batch(entries) => {
            let adds: Vec<Value> = entries
                .iter()
                .filter(|(_, effect)| *effect == Effect::Present)
                .map(|(id, _)| json!({"documentId": id, "data": format!("<p>version {ordering_id}</p>"), "version": order}))
                .collect();
            let deletes: Vec<Value> = entries
                .iter()
                .filter(|(_, effect)| *effect == Effect::Absent)
                .map(|(id, _)| json!({"documentId": id}))
                .collect();
            let file = serde_json::to_vec(&json!({"addOrUpdate": adds, "delete": deletes})).unwrap();
            let file_id = match server.upload(file).await {
                Ok(file_id) => file_id,
                Err(_) => return None,
            };
            http.put(format!("{url}/batch")).query(&[("fileId", file_id.as_str()), ("orderingId", &order)])
        }
        Operation::DeleteOlderThan => {
            http.delete(format!("{url}/olderthan")).query(&[("orderingId", order.as_str()), ("queueDelay", "0")])
        }
    };
    match request.bearer_auth(KEY).send().await {
        Ok(response) if response.status() == 202 => Some(true),
        Ok(response) => panic!("unexpected answer {} to an operation", response.status()),
        Err(_) => None,
    }
}

/// The items an operation changes, and how.
fn effects(operation: &Operation, client: usize) -> Vec<(Vec<String>, Effect)> {
    match operation {
        Operation::Put(id) | Operation::PutFromContainer(id) => vec![(vec![id.clone()], Effect::Present)],
        Operation::Delete(id) => vec![(vec![id.clone()], Effect::Absent)],
        Operation::DeleteWithChildren => {
            let (parent, children) = group(client);
            vec![(std::iter::once(parent).chain(children).collect(), Effect::Absent)]
        }
        Operation::Batch(entries) => entries.iter().map(|(id, effect)| (vec![id.clone()], *effect)).collect(),
        Operation::DeleteOlderThan => Vec::new(),
    }
}

/// Each client sends operations until the server dies; every attempt goes into the history.
async fn client(server: Arc<Server>, client: usize, seed: u64, counter: Arc<AtomicI64>, history: Arc<Mutex<History>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        let operation = pick(&mut rng, client);
        let ordering_id = counter.fetch_add(1, Ordering::SeqCst);
        let acknowledged = send(&server, &operation, ordering_id, client).await.is_some();
        let mut history = history.lock().unwrap();
        if matches!(operation, Operation::DeleteOlderThan) {
            history.everything.push(Event { ordering_id, effect: Effect::Absent, uncertain: !acknowledged });
        }
        for (ids, effect) in effects(&operation, client) {
            history.record(&ids, ordering_id, effect, !acknowledged);
        }
        if !acknowledged {
            return;
        }
    }
}

/// Every item in the index, with its `version`.
async fn index_state(server: &Server) -> HashMap<String, i64> {
    let page = server.post_json("/rest/search/v2?organizationId=default", json!({"numberOfResults": 1000})).await;
    let mut state = HashMap::new();
    for result in page["results"].as_array().unwrap() {
        let uri = result["uri"].as_str().unwrap().to_string();
        let version = result["raw"]["version"].as_str().unwrap().parse().unwrap();
        assert!(state.insert(uri.clone(), version).is_none(), "{uri} is in the index twice");
    }
    state
}

/// Every log entry: (documentId, operation, result, orderingId).
async fn log_entries(server: &Server) -> Vec<(String, String, String, i64)> {
    let mut entries = Vec::new();
    for page in 0.. {
        let path = format!("/logs/v1/organizations/default?perPage=1000&page={page}&from=2000-01-01T00:00:00Z");
        let body = server.post_json(&path, json!({})).await;
        for entry in body["documentLogEntries"].as_array().unwrap() {
            let text = |k: &str| entry[k].as_str().unwrap().to_string();
            let ordering_id = entry["meta"]["orderingId"].as_str().unwrap().parse().unwrap();
            entries.push((text("id"), text("operation"), text("result"), ordering_id));
        }
        if !body["hasNextPage"].as_bool().unwrap() {
            return entries;
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice() {
    let seed: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    println!("chaos seed {seed} (set CHAOS_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let counter = Arc::new(AtomicI64::new(1_000));
    let history: Arc<Mutex<History>> = Arc::default();
    for round in 0..ROUNDS {
        let server = Arc::new(Server::start(dir.path(), &["--commit-interval-ms", "100"]));
        server.wait_ready().await;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| tokio::spawn(client(server.clone(), c, rng.random(), counter.clone(), history.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        // SIGKILL, wherever the server is: in a request, a sync, an apply or a commit.
        let pid = server.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
        for task in clients {
            task.await.unwrap();
        }
        drop(server);
        println!("round {round}: {} operations so far", counter.load(Ordering::SeqCst) - 1_000);
    }

    let server = Server::start(dir.path(), &[]);
    server.wait_ready().await;
    let index = index_state(&server).await;
    let logs = log_entries(&server).await;
    let history = history.lock().unwrap();
    assert!(counter.load(Ordering::SeqCst) - 1_000 > 200, "too few operations to test anything");

    // Nothing lost, nothing resurrected: each item is in a state its history allows.
    for id in history.items.keys() {
        let actual = match index.get(id) {
            Some(version) => (Effect::Present, *version),
            None => (Effect::Absent, 0),
        };
        let possible = history.possible(id);
        let allowed = possible.iter().any(|(effect, ordering_id)| match actual.0 {
            Effect::Present => *effect == Effect::Present && *ordering_id == actual.1,
            Effect::Absent => *effect == Effect::Absent,
        });
        assert!(allowed, "{id} is {actual:?}; its history allows only {possible:?}");
    }
    let unknown: Vec<_> = index.keys().filter(|id| !history.items.contains_key(*id)).collect();
    assert!(unknown.is_empty(), "items nobody pushed: {unknown:?}");

    // Nothing applied twice: no outcome is logged twice.
    let mut seen = HashMap::new();
    for entry in &logs {
        *seen.entry(entry.clone()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "logged more than once: {twice:?}");

    // The logs agree with the index: an item's last COMPLETED outcome says whether (and which version) it is.
    let mut last: HashMap<&str, (i64, &str)> = HashMap::new();
    for (id, operation, result, ordering_id) in &logs {
        if result == "COMPLETED" && last.get(id.as_str()).is_none_or(|(o, _)| ordering_id > o) {
            last.insert(id, (*ordering_id, operation));
        }
    }
    for (id, (ordering_id, operation)) in &last {
        let added = matches!(*operation, "ADD" | "UPDATE");
        match index.get(*id) {
            Some(version) => assert!(
                added && version == ordering_id,
                "{id}: index has {version}, logs say {operation} {ordering_id}"
            ),
            None => assert!(!added, "{id} is not in the index; the logs say {operation} {ordering_id} COMPLETED"),
        }
    }
    for (id, version) in &index {
        assert!(
            last.contains_key(id.as_str()),
            "{id} (version {version}) is in the index without a COMPLETED log entry"
        );
    }
    println!(
        "{} operations; {} items in the index; {} log entries",
        counter.load(Ordering::SeqCst) - 1_000,
        index.len(),
        logs.len()
    );
}
