//! Security identities and permission-trimmed search over real HTTP: providers, identity pushes (single,
//! alias, disable, batch, disable-older-than), search tokens, and who sees what — a matrix of permission
//! models, and a property test against a reference evaluator written here, apart from the server's.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error, form};

const PROVIDER: &str = "Corp Provider";
const EMAIL: &str = "Email Security Provider";

/// A SECURED source whose items' permissions default to [`PROVIDER`], which cascades to the e-mail provider.
async fn secured_source(s: &TestServer, org: &str) -> String {
    let created = s
        .request(Method::POST, &s.url(&format!("/rest/organizations/{org}/sources")))
        .json(&json!({"name": "secured", "sourceVisibility": "SECURED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let source: Value = created.json().await.unwrap();
    let source_id = source["id"].as_str().unwrap().to_string();
    let provider = json!({
        "name": PROVIDER, "type": "EXPANDED", "nodeRequired": false,
        "referencedBy": [{"id": source_id, "type": "SOURCE"}],
        "cascadingSecurityProviders": {EMAIL: {"id": EMAIL, "name": EMAIL, "type": "EMAIL"}}
    });
    let url = s.url(&format!("/rest/organizations/{org}/securityproviders/{}", form(PROVIDER).replace('+', "%20")));
    let response = s.request(Method::PUT, &url).json(&provider).send().await.unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    source_id
}

fn provider_url(s: &TestServer, org: &str, rest: &str) -> String {
    s.url(&format!("/push/v1/organizations/{org}/providers/{}{rest}", PROVIDER.replace(' ', "%20")))
}

fn identity(name: &str, kind: &str) -> Value {
    json!({"name": name, "type": kind, "additionalInfo": {}})
}

/// `PUT …/permissions`: a group (or user) with members and granted identities; 202 expected.
async fn put_identity(s: &TestServer, org: &str, body: Value, ordering: Option<i64>) {
    let query = ordering.map_or(String::new(), |o| format!("?orderingId={o}"));
    let response = s
        .request(Method::PUT, &provider_url(s, org, &format!("/permissions{query}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
}

async fn group(s: &TestServer, org: &str, name: &str, members: &[(&str, &str)]) {
    let members: Vec<Value> = members.iter().map(|(name, kind)| identity(name, kind)).collect();
    put_identity(s, org, json!({"identity": identity(name, "GROUP"), "members": members, "wellKnowns": []}), None)
        .await;
}

/// Pushes an item with `permissions` to `source`.
async fn item(s: &TestServer, org: &str, source: &str, id: &str, permissions: Value) {
    let url = s.url(&format!("/push/v1/organizations/{org}/sources/{source}/documents?documentId={}", form(id)));
    let body = json!({"data": format!("secret document {id}"), "permissions": permissions});
    let response = s.request(Method::PUT, &url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
}

/// A search token for an e-mail user, issued with the master key.
async fn token(s: &TestServer, org: &str, user: &str) -> String {
    let url = s.url(&format!("/rest/search/v2/token?organizationId={org}"));
    let body = json!({"userIds": [{"name": user, "provider": EMAIL, "type": "User"}]});
    let response = s.request(Method::POST, &url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

/// What a bearer (a search token, or a key searching as the anonymous user) finds, sorted; asserts that the
/// counts agree with the results.
async fn visible(s: &TestServer, org: &str, bearer: &str) -> Vec<String> {
    let url = s.url(&format!("/rest/search/v2?organizationId={org}"));
    let response = s.client.post(url).bearer_auth(bearer).json(&json!({"numberOfResults": 1000})).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let body: Value = response.json().await.unwrap();
    let mut uris: Vec<String> =
        body["results"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap().to_string()).collect();
    uris.sort();
    assert_eq!(body["totalCount"], uris.len(), "totalCount counts only what the searcher may see");
    uris
}

fn allow(identities: &[(&str, &str)]) -> Value {
    json!([{"allowAnonymous": false,
            "allowedPermissions": identities.iter().map(|(i, t)| json!({"identity": i, "identityType": t})).collect::<Vec<_>>()}])
}

#[tokio::test]
async fn a_permission_matrix_decides_who_sees_what() {
    let s = TestServer::start().await;
    let org = s.org.clone();
    let src = secured_source(&s, &org).await;
    group(
        &s,
        &org,
        "eng",
        &[("alice@example.com", "USER"), ("bob@example.com", "USER"), ("frank@example.com", "USER")],
    )
    .await;
    group(&s, &org, "staff", &[("eng", "GROUP")]).await;
    group(&s, &org, "contractors", &[("carol@example.com", "USER"), ("dave@example.com", "USER")]).await;
    group(&s, &org, "eng2", &[("dave@example.com", "USER")]).await;
    group(&s, &org, "cycle-a", &[("cycle-b", "GROUP"), ("carol@example.com", "USER")]).await;
    group(&s, &org, "cycle-b", &[("cycle-a", "GROUP")]).await;
    // An alias: the corp user `asmith` is alice.smith@example.com.
    let alias = json!({"identity": identity("asmith", "USER"),
        "mappings": [{"name": "alice.smith@example.com", "type": "USER", "additionalInfo": {}, "provider": EMAIL}], "wellKnowns": []});
    let response = s.request(Method::PUT, &provider_url(&s, &org, "/mappings")).json(&alias).send().await.unwrap();
    assert_eq!(response.status(), 202);
    // A granted identity.
    put_identity(
        &s,
        &org,
        json!({"identity": identity("erin@example.com", "USER"), "members": [],
        "wellKnowns": [identity("all-employees", "VIRTUAL_GROUP")]}),
        None,
    )
    .await;

    let set = |allowed: Value, denied: Value, anonymous: bool| json!({"allowAnonymous": anonymous, "allowedPermissions": allowed, "deniedPermissions": denied});
    let who = |name: &str, kind: &str| json!([{"identity": name, "identityType": kind}]);
    item(&s, &org, &src, "file://public", json!([{"allowAnonymous": true}])).await;
    item(&s, &org, &src, "file://eng", allow(&[("eng", "Group")])).await;
    item(&s, &org, &src, "file://staff", allow(&[("staff", "Group")])).await;
    item(
        &s,
        &org,
        &src,
        "file://staff-not-bob",
        json!([set(who("staff", "Group"), who("bob@example.com", "User"), false)]),
    )
    .await;
    item(
        &s,
        &org,
        &src,
        "file://eng-and-contractors",
        json!([set(who("eng2", "Group"), json!([]), false), set(who("contractors", "Group"), json!([]), false)]),
    )
    .await;
    item(
        &s,
        &org,
        &src,
        "file://levels-deny-first",
        json!([
        {"name": "L1", "permissionSets": [set(json!([]), who("bob@example.com", "User"), false)]},
        {"name": "L2", "permissionSets": [set(who("eng", "Group"), json!([]), false)]}]),
    )
    .await;
    item(
        &s,
        &org,
        &src,
        "file://levels-allow-first",
        json!([
        {"name": "L1", "permissionSets": [set(who("alice@example.com", "User"), json!([]), false)]},
        {"name": "L2", "permissionSets": [set(json!([]), who("alice@example.com", "User"), false)]}]),
    )
    .await;
    item(&s, &org, &src, "file://alias", allow(&[("asmith", "User")])).await;
    item(&s, &org, &src, "file://granted", allow(&[("all-employees", "VirtualGroup")])).await;
    item(&s, &org, &src, "file://cycle", allow(&[("cycle-b", "Group")])).await;
    item(
        &s,
        &org,
        &src,
        "file://email-user",
        json!([set(
            json!([{"identity": "bob@example.com", "identityType": "User", "securityProvider": EMAIL}]),
            json!([]),
            false
        )]),
    )
    .await;
    item(&s, &org, &src, "file://ghosts", allow(&[("ghosts", "Group")])).await;
    item(&s, &org, &src, "file://everyone", allow(&[("*@*", "User")])).await;
    item(&s, &org, &src, "file://no-permissions", json!([])).await;
    s.settle().await;

    let sees = |user: &'static str| {
        let s = &s;
        let org = org.clone();
        async move { visible(s, &org, &token(s, &org, user).await).await }
    };
    let with_public = |mut uris: Vec<&str>| {
        uris.extend(["file://public", "file://everyone"]);
        uris.sort();
        uris.into_iter().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(
        sees("alice@example.com").await,
        with_public(vec![
            "file://eng",
            "file://staff",
            "file://staff-not-bob",
            "file://levels-deny-first",
            "file://levels-allow-first"
        ])
    );
    assert_eq!(sees("bob@example.com").await, with_public(vec!["file://eng", "file://staff", "file://email-user"]));
    assert_eq!(sees("dave@example.com").await, with_public(vec!["file://eng-and-contractors"]));
    assert_eq!(sees("carol@example.com").await, with_public(vec!["file://cycle"]), "nested groups with a cycle");
    assert_eq!(sees("alice.smith@example.com").await, with_public(vec!["file://alias"]));
    assert_eq!(sees("erin@example.com").await, with_public(vec!["file://granted"]));
    assert_eq!(sees("mallory@example.com").await, with_public(vec![]));
    assert_eq!(visible(&s, &org, &s.key).await, with_public(vec![]), "a plain key searches as the anonymous user");
    let all = s.search(json!({"numberOfResults": 1000})).await["totalCount"].as_u64().unwrap();
    assert_eq!(all, 14, "viewAllContent (the master key holds it) sees every item");

    // An item naming an identity nobody pushed: a WARNING saying so, and nothing granted …
    let logs = s.logs(Some("file://ghosts"), json!({})).await;
    assert_eq!(logs[0]["result"], "WARNING", "{logs:?}");
    let reason = logs[0]["meta"]["error"].as_str().unwrap();
    assert!(reason.contains("never pushed") && reason.contains("Group 'ghosts' of 'Corp Provider'"), "{reason}");
    let logs = s.logs(Some("file://no-permissions"), json!({})).await;
    assert!(logs[0]["meta"]["error"].as_str().unwrap().contains("has no permissions"), "{logs:?}");
    // … until it is pushed: identity updates change what users see without re-pushing items.
    group(&s, &org, "ghosts", &[("mallory@example.com", "USER")]).await;
    // Disabling an identity takes what it granted away.
    let disable = json!({"identity": identity("frank@example.com", "USER")});
    assert_eq!(
        s.request(Method::DELETE, &provider_url(&s, &org, "/permissions"))
            .json(&disable)
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    s.settle().await;
    assert_eq!(sees("mallory@example.com").await, with_public(vec!["file://ghosts"]));
    assert_eq!(sees("frank@example.com").await, with_public(vec![]), "a disabled identity grants nothing");
    let logs = s.logs(Some("frank@example.com"), json!({})).await;
    assert_eq!((logs[0]["operation"].as_str(), logs[0]["result"].as_str()), (Some("DELETE"), Some("COMPLETED")));
    assert_eq!(logs[0]["sourceId"], PROVIDER, "identities are logged under their provider");

    // The security cache: what alice resolves to, a group's members, one identity, a provider's identities.
    let cache = |rest: &str| s.url(&format!("/rest/organizations/{org}/securitycache{rest}"));
    let alice = json!({"name": "alice@example.com", "type": "User"});
    let parents = post(&s, &cache(&format!("/entities/{EMAIL}/members/parents?recursive=true")), alice.clone()).await;
    let names: Vec<&str> = parents["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"eng") && names.contains(&"staff"), "{parents}");
    let direct = post(&s, &cache(&format!("/entities/{EMAIL}/members/parents")), alice.clone()).await;
    assert_eq!(direct["items"][0]["relation"], "same e-mail address as", "{direct}");
    let children = post(
        &s,
        &cache("/entities/Corp%20Provider/members/children?recursive=true"),
        json!({"name": "staff", "type": "Group"}),
    )
    .await;
    assert_eq!(children["totalEntries"], 4, "eng and its three members: {children}");
    let frank =
        post(&s, &cache("/entities/Corp%20Provider/entity"), json!({"name": "frank@example.com", "type": "User"}))
            .await;
    assert_eq!(frank["state"], "DISABLED");
    let listed: Value = s
        .request(Method::GET, &cache("/entities/Corp%20Provider/members?perPage=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shape =
        (listed["items"].as_array().unwrap().len(), listed["totalEntries"].as_u64(), listed["totalPages"].as_u64());
    assert_eq!(shape, (2, Some(10), Some(5)), "ten identities pushed, two a page: {listed}");

    // Why alice sees the staff item: the chain from her e-mail identity to the group that allows it.
    let why = post(&s, &cache("/explain"), json!({"user": alice, "documentId": "file://staff"})).await;
    let item = &why["items"][0];
    assert_eq!((item["visible"].as_bool(), item["rule"].as_str()), (Some(true), Some("ALLOWED")), "{why}");
    let chain: Vec<(&str, &str)> = item["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["relation"].as_str().unwrap()))
        .collect();
    assert_eq!(
        chain,
        [
            ("alice@example.com", "start"),
            ("alice@example.com", "same e-mail address as"),
            ("eng", "member of"),
            ("staff", "member of")
        ]
    );
    let why = post(
        &s,
        &cache("/explain"),
        json!({"user": {"name": "bob@example.com"}, "documentId": "file://levels-deny-first"}),
    )
    .await;
    let item = &why["items"][0];
    assert_eq!(
        (item["visible"].as_bool(), item["rule"].as_str(), item["level"].as_str()),
        (Some(false), Some("DENIED"), Some("L1")),
        "{why}"
    );
    assert!(item["explanation"].as_str().unwrap().contains("denies User 'bob@example.com'"), "{why}");
    let why =
        post(&s, &cache("/explain"), json!({"user": {"name": "carol@example.com"}, "documentId": "file://eng"})).await;
    assert_eq!(why["items"][0]["rule"], "UNDECIDED", "{why}");
    let missing = s
        .request(Method::POST, &cache("/explain"))
        .json(&json!({"user": alice, "documentId": "file://nope"}))
        .send()
        .await
        .unwrap();
    assert_error(missing, 404, "NOT_FOUND", &["'file://nope'"]).await;
}

async fn post(s: &TestServer, url: &str, body: Value) -> Value {
    let response = s.request(Method::POST, url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

#[tokio::test]
async fn identity_updates_follow_ordering_and_old_identities_are_disabled() {
    let s = TestServer::start_with(|config| config.queue_delay_cap_minutes = Some(0)).await;
    let org = s.org.clone();
    let src = secured_source(&s, &org).await;
    item(&s, &org, &src, "file://team", allow(&[("team", "Group")])).await;
    let team = |members: &[&str]| {
        let members: Vec<Value> = members.iter().map(|m| identity(m, "USER")).collect();
        json!({"identity": identity("team", "GROUP"), "members": members})
    };
    put_identity(&s, &org, team(&["alice@example.com"]), Some(200)).await;
    put_identity(&s, &org, team(&["bob@example.com"]), Some(100)).await; // older: loses
    s.settle().await;
    let alice = token(&s, &org, "alice@example.com").await;
    let bob = token(&s, &org, "bob@example.com").await;
    assert_eq!(visible(&s, &org, &alice).await, ["file://team"]);
    assert!(visible(&s, &org, &bob).await.is_empty(), "the older push did not replace the members");
    let logs = s.logs(Some("team"), json!({})).await;
    let results: Vec<&str> = logs.iter().map(|l| l["result"].as_str().unwrap()).collect();
    assert!(results.contains(&"SKIPPED") && results.contains(&"COMPLETED"), "{logs:?}");

    // Identities last updated before orderingId 300 are disabled (queueDelay capped to 0 here).
    let url = provider_url(&s, &org, "/permissions/olderthan?orderingId=300&queueDelay=0");
    assert_eq!(s.request(Method::DELETE, &url).send().await.unwrap().status(), 202);
    s.settle().await;
    wait_until_empty(&s, &org, &alice).await;
    put_identity(&s, &org, team(&["bob@example.com"]), Some(400)).await;
    s.settle().await;
    assert_eq!(visible(&s, &org, &bob).await, ["file://team"], "pushed again after the disabling, it is enabled");
}

async fn wait_until_empty(s: &TestServer, org: &str, bearer: &str) {
    crate::common::wait_for(|| async { visible(s, org, bearer).await.is_empty() }).await;
}

#[tokio::test]
async fn an_identity_batch_goes_through_a_file_container_and_its_faults_are_placed() {
    let s = TestServer::start().await;
    let org = s.org.clone();
    let src = secured_source(&s, &org).await;
    item(&s, &org, &src, "file://readers", allow(&[("readers", "Group")])).await;
    let batch = json!({
        "members": [{"identity": identity("readers", "GROUP"), "members": [identity("ann@example.com", "USER"), identity("ben@example.com", "USER")]}],
        "mappings": [],
        "deleted": [{"identity": identity("ben@example.com", "USER")}]
    });
    let file_id = s.uploaded(serde_json::to_vec(&batch).unwrap()).await;
    let url = provider_url(&s, &org, &format!("/permissions/batch?fileId={file_id}"));
    let response = s.request(Method::PUT, &url).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    s.settle().await;
    assert_eq!(visible(&s, &org, &token(&s, &org, "ann@example.com").await).await, ["file://readers"]);
    assert!(visible(&s, &org, &token(&s, &org, "ben@example.com").await).await.is_empty(), "deleted in the batch");

    let broken = br#"{"members": [{"identity": {"name": "x", "type": "ROBOT"}}]}"#.to_vec();
    let file_id = s.uploaded(broken).await;
    let url = provider_url(&s, &org, &format!("/permissions/batch?fileId={file_id}"));
    let response = s.request(Method::PUT, &url).json(&json!({})).send().await.unwrap();
    assert_error(
        response,
        404,
        "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
        &["members[0].identity.type", "ROBOT", "line 1"],
    )
    .await;
}

#[tokio::test]
async fn identity_calls_refuse_what_is_wrong_with_the_catalog_code() {
    let s = TestServer::start().await;
    let org = s.org.clone();
    secured_source(&s, &org).await;
    let url = s.url(&format!("/push/v1/organizations/{org}/providers/Nobody/permissions"));
    let body = json!({"identity": identity("a", "USER")});
    let response = s.request(Method::PUT, &url).json(&body).send().await.unwrap();
    assert_error(response, 412, "SECURITY_PROVIDER_DOES_NOT_EXIST", &["'Nobody'", "securityproviders"]).await;
    let response = s
        .request(Method::PUT, &provider_url(&s, &org, "/permissions"))
        .json(&json!({"identity": {"type": "USER"}}))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "INVALID_JSON", &["'identity' has no 'name'"]).await;
    let response = s
        .request(Method::PUT, &provider_url(&s, &org, "/mappings"))
        .json(&json!({"identity": identity("a", "USER"), "members": []}))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "INVALID_JSON", &["'members' is not a key"]).await;
    let response = s.request(Method::DELETE, &provider_url(&s, &org, "/permissions/olderthan")).send().await.unwrap();
    assert_error(response, 412, "MISSING_PARAMETER", &["orderingId"]).await;

    // A key that may push items but not identities.
    let key =
        create_key(&s, &org, json!([{"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "EDIT", "targetId": "*"}]))
            .await;
    let response =
        s.client.put(provider_url(&s, &org, "/permissions")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_error(response, 403, "ACCESS_DENIED", &["SECURITY_PROVIDER EDIT"]).await;

    // The daily identity limit.
    let limit = s.url(&format!("/rest/organizations/{org}/limits/pushApiMaximumDailySecurityIdentities"));
    assert!(s.request(Method::PUT, &limit).json(&json!({"value": 1})).send().await.unwrap().status().is_success());
    assert_eq!(
        s.request(Method::PUT, &provider_url(&s, &org, "/permissions")).json(&body).send().await.unwrap().status(),
        202
    );
    let response = s.request(Method::PUT, &provider_url(&s, &org, "/permissions")).json(&body).send().await.unwrap();
    assert_error(response, 429, "TOO_MANY_REQUESTS", &["security identities"]).await;

    // A paused organization.
    let pause = s.url(&format!("/rest/organizations/{org}/pause"));
    assert_eq!(s.request(Method::POST, &pause).send().await.unwrap().status(), 204);
    let response = s.request(Method::PUT, &provider_url(&s, &org, "/permissions")).json(&body).send().await.unwrap();
    assert_error(response, 400, "ORGANIZATION_IS_PAUSED", &["paused"]).await;
}

async fn create_key(s: &TestServer, org: &str, privileges: Value) -> String {
    let url = s.url(&format!("/rest/organizations/{org}/apikeys"));
    let response = s
        .request(Method::POST, &url)
        .json(&json!({"displayName": "k", "privileges": privileges}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["value"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn search_tokens_are_signed_expire_and_stay_in_their_organization() {
    let s = TestServer::start().await;
    let org = s.org.clone();
    let src = secured_source(&s, &org).await;
    group(&s, &org, "eng", &[("alice@example.com", "USER")]).await;
    item(&s, &org, &src, "file://eng", allow(&[("eng", "Group")])).await;
    // Another organization with the same identities and an item alice may see there.
    let other = s
        .request(Method::POST, &s.url("/rest/organizations"))
        .json(&json!({"displayName": "Globex"}))
        .send()
        .await
        .unwrap();
    let other: Value = other.json().await.unwrap();
    let globex = other["id"].as_str().unwrap().to_string();
    let globex_src = secured_source(&s, &globex).await;
    group(&s, &globex, "eng", &[("alice@example.com", "USER")]).await;
    item(&s, &globex, &globex_src, "file://globex-secret", allow(&[("eng", "Group")])).await;
    s.settle().await;

    let alice = token(&s, &org, "alice@example.com").await;
    assert_eq!(visible(&s, &org, &alice).await, ["file://eng"]);
    let url = s.url(&format!("/rest/search/v2?organizationId={globex}"));
    let response = s.client.post(&url).bearer_auth(&alice).json(&json!({})).send().await.unwrap();
    assert_error(response, 401, "INVALID_TOKEN", &[&org, &globex]).await;
    let push = s.url(&format!("/push/v1/organizations/{org}/sources/{src}/documents?documentId=file://x"));
    let response = s.client.put(&push).bearer_auth(&alice).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(response, 403, "ACCESS_DENIED", &["search token"]).await;
    let response = s
        .client
        .post(s.url(&format!("/rest/search/v2?organizationId={org}")))
        .bearer_auth(&alice)
        .json(&json!({"viewAllContent": true}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "ACCESS_DENIED", &["VIEW_ALL_CONTENT"]).await;

    // Forged: the payload changed (another organization), the signature kept.
    let parts: Vec<&str> = alice.split('.').collect();
    let forged = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    let response = s
        .client
        .post(s.url(&format!("/rest/search/v2?organizationId={org}")))
        .bearer_auth(&forged)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "INVALID_SEARCH_TOKEN", &["signature"]).await;
    // Expired: tokens last 24 hours by default.
    s.clock.advance_ms(24 * 3600 * 1000 + 1000);
    let response = s
        .client
        .post(s.url(&format!("/rest/search/v2?organizationId={org}")))
        .bearer_auth(&alice)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "INVALID_SEARCH_TOKEN", &["expired"]).await;

    // Issuing needs the impersonation privilege, and validFor has bounds.
    let key = create_key(&s, &org, json!([{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}])).await;
    let token_url = s.url(&format!("/rest/search/v2/token?organizationId={org}"));
    let body = json!({"userIds": [{"name": "alice@example.com", "provider": EMAIL}]});
    let response = s.client.post(&token_url).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_error(response, 403, "ACCESS_DENIED", &["IMPERSONATE"]).await;
    let response = s
        .request(Method::POST, &token_url)
        .json(&json!({"userIds": [{"name": "a"}], "validFor": 1000}))
        .send()
        .await
        .unwrap();
    assert_error(response, 412, "INVALID_PARAMETER", &["validFor", "900000"]).await;
    let response = s.request(Method::POST, &token_url).json(&json!({"userIds": []})).send().await.unwrap();
    assert_error(response, 400, "INVALID_JSON", &["userIds"]).await;
    // A key with the privilege issues tokens; disabling the key ends them.
    let issuer = create_key(
        &s,
        &org,
        json!([{"owner": "SEARCH_API", "targetDomain": "IMPERSONATE_SEARCH_API", "type": "ENABLE"}]),
    )
    .await;
    let response = s.client.post(&token_url).bearer_auth(&issuer).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let issued = response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    assert_eq!(visible(&s, &org, &issued).await, ["file://eng"]);
}

#[tokio::test]
async fn providers_are_created_listed_replaced_and_deleted_with_their_identities() {
    let s = TestServer::start().await;
    let org = s.org.clone();
    let list = |s: &TestServer| {
        s.request(Method::GET, &s.url(&format!("/rest/organizations/{}/securityproviders", s.org))).send()
    };
    let providers: Value = list(&s).await.unwrap().json().await.unwrap();
    assert_eq!(providers[0]["id"], EMAIL, "every organization has the e-mail provider: {providers}");
    let src = secured_source(&s, &org).await;
    let url = s.url(&format!("/rest/organizations/{org}/securityproviders/Corp%20Provider"));
    let got: Value = s.request(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!((got["type"].as_str(), got["referencedBy"][0]["id"].as_str()), (Some("EXPANDED"), Some(src.as_str())));
    assert!(got["cascadingSecurityProviders"][EMAIL].is_object(), "{got}");
    let replaced =
        s.request(Method::PUT, &url).json(&json!({"name": PROVIDER, "displayName": "Corp"})).send().await.unwrap();
    assert_eq!(replaced.status(), 200);
    let unknown = s
        .request(Method::PUT, &url)
        .json(&json!({"referencedBy": [{"id": "nope", "type": "SOURCE"}]}))
        .send()
        .await
        .unwrap();
    assert_error(unknown, 412, "INVALID_PARAMETER", &["'nope' does not exist"]).await;
    let missing = s
        .request(Method::GET, &s.url(&format!("/rest/organizations/{org}/securityproviders/nope")))
        .send()
        .await
        .unwrap();
    assert_error(missing, 404, "SECURITY_PROVIDER_NOT_FOUND", &["'nope'"]).await;
    group(&s, &org, "eng", &[("alice@example.com", "USER")]).await;
    s.settle().await;
    let got: Value = s.request(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["statistics"]["totalNumberOfEntities"], 1);
    assert_eq!(s.request(Method::DELETE, &url).send().await.unwrap().status(), 204);
    let gone = s
        .request(Method::PUT, &provider_url(&s, &org, "/permissions"))
        .json(&json!({"identity": identity("a", "USER")}))
        .send()
        .await
        .unwrap();
    assert_error(gone, 412, "SECURITY_PROVIDER_DOES_NOT_EXIST", &[PROVIDER]).await;
    let email = s
        .request(
            Method::DELETE,
            &s.url(&format!("/rest/organizations/{org}/securityproviders/Email%20Security%20Provider")),
        )
        .send()
        .await
        .unwrap();
    assert_error(email, 412, "INVALID_PARAMETER", &["built in"]).await;
}

#[tokio::test]
async fn identities_survive_a_restart() {
    let s = TestServer::start().await;
    let org = s.org.clone();
    let src = secured_source(&s, &org).await;
    group(&s, &org, "eng", &[("alice@example.com", "USER")]).await;
    item(&s, &org, &src, "file://eng", allow(&[("eng", "Group")])).await;
    s.settle().await;
    let s = s.restart().await;
    assert_eq!(visible(&s, &org, &token(&s, &org, "alice@example.com").await).await, ["file://eng"]);
}
