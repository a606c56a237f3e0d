//! A property test of permission trimming: random identity graphs (users, nested groups with cycles, aliases,
//! granted identities, disabled identities) and random permission models on a few hundred items, pushed over
//! HTTP; for every user, the trimmed search answer must equal what a reference evaluator — written here, from
//! the rules in `docs/security.md`, sharing no code with the server — says, item by item.

use std::collections::{BTreeSet, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, form};

const PROVIDER: &str = "Corp";
const EMAIL: &str = "Email Security Provider";
const USERS: usize = 24;
const GROUPS: usize = 12;
const GRANTED: usize = 3;
const ITEMS: usize = 300;

/// An identity as the reference sees it: (provider, name), names unique across types.
type Id = (String, String);

fn corp(name: &str) -> Id {
    (PROVIDER.to_string(), name.to_string())
}

fn email(name: &str) -> Id {
    (EMAIL.to_string(), name.to_string())
}

fn user_name(i: usize) -> String {
    format!("u{i}@example.com")
}

/// The identities of the world, as pushed.
#[derive(Default)]
struct World {
    /// Group (corp) → its members (corp users or groups).
    members: HashMap<String, Vec<String>>,
    /// Corp user → granted identities (corp virtual groups).
    granted: HashMap<String, Vec<String>>,
    /// Corp alias user → the e-mail user it is.
    aliases: HashMap<String, String>,
    disabled: HashSet<String>,
}

impl World {
    fn random(rng: &mut StdRng) -> World {
        let mut world = World::default();
        for g in 0..GROUPS {
            let mut members = Vec::new();
            for _ in 0..rng.random_range(0..5) {
                members.push(user_name(rng.random_range(0..USERS)));
            }
            for _ in 0..rng.random_range(0..3) {
                // Any group, itself and earlier ones included: cycles happen.
                members.push(format!("g{}", rng.random_range(0..GROUPS)));
            }
            world.members.insert(format!("g{g}"), members);
        }
        for u in 0..USERS {
            if rng.random_bool(0.3) {
                world.granted.insert(user_name(u), vec![format!("vg{}", rng.random_range(0..GRANTED))]);
            }
            if rng.random_bool(0.2) {
                world.aliases.insert(format!("alias{u}"), user_name(rng.random_range(0..USERS)));
            }
        }
        for _ in 0..3 {
            world.disabled.insert(format!("g{}", rng.random_range(0..GROUPS)));
            world.disabled.insert(user_name(rng.random_range(0..USERS)));
        }
        world
    }

    /// Whether Corp knows a user: it was pushed (with granted identities, or as an alias) or is listed as a
    /// member. A user Corp never heard of grants nothing.
    fn known(&self, name: &str) -> bool {
        self.granted.contains_key(name)
            || self.aliases.contains_key(name)
            || self.members.values().any(|m| m.iter().any(|n| n == name))
    }

    /// The reference resolution of an e-mail user: its e-mail identity, the corp user of the same address
    /// (Corp cascades to the e-mail provider) if Corp knows it, and every corp alias of it, then —
    /// transitively — the enabled groups listing any of them and the identities granted to them. Disabled
    /// identities are dropped.
    fn resolve(&self, user: &str) -> HashSet<Id> {
        let mut held = HashSet::from([email(user), ("*".into(), "*@*".into())]);
        let mut corp_names: Vec<String> = if self.known(user) { vec![user.to_string()] } else { Vec::new() };
        corp_names.extend(self.aliases.iter().filter(|(_, target)| *target == user).map(|(alias, _)| alias.clone()));
        let mut queue: Vec<String> = corp_names.into_iter().filter(|name| !self.disabled.contains(name)).collect();
        let mut seen = HashSet::new();
        while let Some(name) = queue.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            held.insert(corp(&name));
            for granted in self.granted.get(&name).into_iter().flatten() {
                held.insert(corp(granted));
            }
            for (group, members) in &self.members {
                if members.contains(&name) && !self.disabled.contains(group) {
                    queue.push(group.clone());
                }
            }
        }
        held
    }
}

/// One permission set of an item, in the reference's terms.
#[derive(Clone)]
struct Set {
    anonymous: bool,
    allowed: Vec<Id>,
    denied: Vec<Id>,
}

/// The reference rule: the first level that mentions the user (an identity of theirs allowed or denied, or
/// anonymous access) decides — allowed by every set and denied by none; no level decides: not visible.
fn reference_visible(levels: &[Vec<Set>], held: &HashSet<Id>) -> bool {
    let has = |id: &Id| held.contains(id) || (id.1 == "*@*" && held.contains(&("*".into(), "*@*".into())));
    for level in levels {
        let mentioned =
            level.iter().any(|set| set.anonymous || set.allowed.iter().any(has) || set.denied.iter().any(has));
        if mentioned {
            let allowed_by_all = level.iter().all(|set| set.anonymous || set.allowed.iter().any(has));
            let denied_by_one = level.iter().any(|set| set.denied.iter().any(has));
            return allowed_by_all && !denied_by_one;
        }
    }
    false
}

fn random_identity(rng: &mut StdRng) -> (Id, &'static str) {
    match rng.random_range(0..10) {
        0..=2 => (corp(&format!("g{}", rng.random_range(0..GROUPS))), "Group"),
        3 => (corp(&format!("vg{}", rng.random_range(0..GRANTED))), "VirtualGroup"),
        4 => (corp(&format!("alias{}", rng.random_range(0..USERS))), "User"),
        5 => (email(&user_name(rng.random_range(0..USERS))), "User"),
        6 if rng.random_bool(0.2) => (email("*@*"), "User"),
        _ => (corp(&user_name(rng.random_range(0..USERS))), "User"),
    }
}

fn random_levels(rng: &mut StdRng) -> Vec<Vec<Set>> {
    (0..rng.random_range(1..=2))
        .map(|_| {
            (0..rng.random_range(1..=2))
                .map(|_| Set {
                    anonymous: rng.random_bool(0.08),
                    allowed: (0..rng.random_range(0..=3)).map(|_| random_identity(rng).0).collect(),
                    denied: (0..rng.random_range(0..=1)).map(|_| random_identity(rng).0).collect(),
                })
                .collect()
        })
        .collect()
}

fn wire_identity(id: &Id) -> Value {
    let kind = if id.1.starts_with('g') {
        "Group"
    } else if id.1.starts_with("vg") {
        "VirtualGroup"
    } else {
        "User"
    };
    json!({"identity": id.1, "identityType": kind, "securityProvider": id.0})
}

fn wire_levels(levels: &[Vec<Set>]) -> Value {
    let sets = |level: &[Set]| -> Vec<Value> {
        level
            .iter()
            .map(|set| {
                json!({"allowAnonymous": set.anonymous,
                       "allowedPermissions": set.allowed.iter().map(wire_identity).collect::<Vec<_>>(),
                       "deniedPermissions": set.denied.iter().map(wire_identity).collect::<Vec<_>>()})
            })
            .collect()
    };
    json!(
        levels
            .iter()
            .enumerate()
            .map(|(i, level)| json!({"name": format!("L{i}"), "permissionSets": sets(level)}))
            .collect::<Vec<_>>()
    )
}

fn identity(name: &str) -> Value {
    let kind = if name.starts_with('g') {
        "GROUP"
    } else if name.starts_with("vg") {
        "VIRTUAL_GROUP"
    } else {
        "USER"
    };
    json!({"name": name, "type": kind, "additionalInfo": {}})
}

/// Pushes the world's identities as one identity batch, then disables the disabled ones one by one.
async fn push_world(s: &TestServer, world: &World) {
    let members: Vec<Value> = world
        .members
        .iter()
        .map(|(group, members)| json!({"identity": identity(group), "members": members.iter().map(|m| identity(m)).collect::<Vec<_>>()}))
        .chain(world.granted.iter().map(|(user, granted)| {
            json!({"identity": identity(user), "members": [], "wellKnowns": granted.iter().map(|g| identity(g)).collect::<Vec<_>>()})
        }))
        .collect();
    let mappings: Vec<Value> = world
        .aliases
        .iter()
        .map(|(alias, target)| json!({"identity": identity(alias), "mappings": [{"name": target, "type": "USER", "provider": EMAIL}]}))
        .collect();
    let batch = json!({"members": members, "mappings": mappings, "deleted": []});
    let file_id = s.uploaded(serde_json::to_vec(&batch).unwrap()).await;
    let url =
        s.url(&format!("/push/v1/organizations/{}/providers/{PROVIDER}/permissions/batch?fileId={file_id}", s.org));
    let response = s.request(Method::PUT, &url).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    for name in &world.disabled {
        let url = s.url(&format!("/push/v1/organizations/{}/providers/{PROVIDER}/permissions", s.org));
        let response = s.request(Method::DELETE, &url).json(&json!({"identity": identity(name)})).send().await.unwrap();
        assert_eq!(response.status(), 202);
    }
}

async fn searched_as(s: &TestServer, user: &str) -> BTreeSet<String> {
    let url = s.url(&format!("/rest/search/v2/token?organizationId={}", s.org));
    let response = s
        .request(Method::POST, &url)
        .json(&json!({"userIds": [{"name": user, "provider": EMAIL}]}))
        .send()
        .await
        .unwrap();
    let token = response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
    let body: Value = s
        .client
        .post(url)
        .bearer_auth(token)
        .json(&json!({"numberOfResults": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let found: BTreeSet<String> =
        body["results"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap().to_string()).collect();
    assert_eq!(body["totalCount"], found.len());
    found
}

#[tokio::test]
async fn trimmed_search_equals_the_reference_evaluator_on_random_worlds() {
    for seed in [7_u64, 2026] {
        let mut rng = StdRng::seed_from_u64(seed);
        let s = TestServer::start().await;
        let source = {
            let url = s.url(&format!("/rest/organizations/{}/sources", s.org));
            let body: Value = s
                .request(Method::POST, &url)
                .json(&json!({"name": "secured"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["id"].as_str().unwrap().to_string()
        };
        let url = s.url(&format!("/rest/organizations/{}/securityproviders/{PROVIDER}", s.org));
        let provider = json!({"referencedBy": [{"id": source, "type": "SOURCE"}], "cascadingSecurityProviders": {EMAIL: {"name": EMAIL}}});
        assert_eq!(s.request(Method::PUT, &url).json(&provider).send().await.unwrap().status(), 201);
        let world = World::random(&mut rng);
        push_world(&s, &world).await;
        let mut items = Vec::new();
        for i in 0..ITEMS {
            let levels = random_levels(&mut rng);
            let id = format!("file://item/{i}");
            let url =
                s.url(&format!("/push/v1/organizations/{}/sources/{source}/documents?documentId={}", s.org, form(&id)));
            let body = json!({"data": format!("item {i}"), "permissions": wire_levels(&levels)});
            assert_eq!(s.request(Method::PUT, &url).json(&body).send().await.unwrap().status(), 202);
            items.push((id, levels));
        }
        s.settle().await;
        let mut decided = 0;
        for u in 0..USERS {
            let user = user_name(u);
            let held = world.resolve(&user);
            let expected: BTreeSet<String> =
                items.iter().filter(|(_, levels)| reference_visible(levels, &held)).map(|(id, _)| id.clone()).collect();
            let found = searched_as(&s, &user).await;
            let differs: Vec<&String> = expected.symmetric_difference(&found).collect();
            if !differs.is_empty() {
                let (_, levels) = items.iter().find(|(id, _)| id == differs[0]).unwrap();
                eprintln!(
                    "the user holds {held:?}\nthe first disputed item has {}\nthe reference shows it: {}",
                    wire_levels(levels),
                    expected.contains(differs[0])
                );
                eprintln!(
                    "the world: members {:?}\ngranted {:?}\naliases {:?}\ndisabled {:?}",
                    world.members, world.granted, world.aliases, world.disabled
                );
            }
            assert!(differs.is_empty(), "seed {seed}, {user}: the server and the reference disagree on {differs:?}");
            decided += expected.len();
        }
        assert!(
            decided > USERS * 5 && decided < USERS * ITEMS / 2,
            "seed {seed}: a world worth testing ({decided} visible)"
        );
    }
}
