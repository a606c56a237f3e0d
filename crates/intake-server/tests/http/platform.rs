//! The Platform API and access control end to end: organizations, sources, keys, tokens, fields, pausing,
//! IP rules from real loopback addresses and through a trusted proxy.

use crate::common;

use std::time::Duration;

use common::{TestServer, assert_error, wait_for};
use reqwest::{Method, Response};
use serde_json::{Value, json};

async fn send(s: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut request = s.client.request(method, s.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn ok_json(response: Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
}

fn privilege(domain: &str, kind: &str, target: &str) -> Value {
    json!({"owner": "PLATFORM", "targetDomain": domain, "type": kind, "targetId": target})
}

/// Creates an organization with one source and a key that may push to it; returns (source id, key value).
async fn organization(s: &TestServer, id: &str) -> (String, String) {
    ok_json(send(s, &s.key, Method::POST, "/rest/organizations", Some(json!({"id": id, "displayName": id}))).await)
        .await;
    let source = ok_json(
        send(s, &s.key, Method::POST, &format!("/rest/organizations/{id}/sources"), Some(json!({"name": "docs"})))
            .await,
    )
    .await;
    let source_id = source["id"].as_str().unwrap().to_string();
    let key = ok_json(
        send(
            s,
            &s.key,
            Method::POST,
            &format!("/rest/organizations/{id}/apikeys"),
            Some(json!({"displayName": "pusher", "privileges": [privilege("SOURCE", "EDIT", &source_id), {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY"}, {"owner": "SEARCH_API", "targetDomain": "VIEW_ALL_CONTENT"}]})),
        )
        .await,
    )
    .await;
    (source_id, key["value"].as_str().unwrap().to_string())
}

async fn push(s: &TestServer, token: &str, org: &str, src: &str, id: &str) -> Response {
    let path = format!("/push/v1/organizations/{org}/sources/{src}/documents?documentId={}", common::form(id));
    send(s, token, Method::PUT, &path, Some(json!({"data": format!("<p>{id} payload</p>"), "rank": 5}))).await
}

/// How many items match `aq`, whatever their permissions (these tests are not about them).
async fn count(s: &TestServer, token: &str, org: &str, aq: &str) -> u64 {
    let query = json!({"aq": aq, "viewAllContent": true});
    let body =
        ok_json(send(s, token, Method::POST, &format!("/rest/search/v2?organizationId={org}"), Some(query)).await)
            .await;
    body["totalCount"].as_u64().unwrap()
}

#[tokio::test]
async fn organizations_are_created_listed_paused_resumed_and_deleted() {
    let s = TestServer::start().await;
    let created =
        ok_json(send(&s, &s.key, Method::POST, "/rest/organizations", Some(json!({"displayName": "My Org!"}))).await)
            .await;
    let derived = created["id"].as_str().unwrap();
    assert!(derived.starts_with("myorg") && derived.len() == "myorg".len() + 8, "{derived}");
    let (src, key) = organization(&s, "acme").await;
    let duplicate = send(&s, &s.key, Method::POST, "/rest/organizations", Some(json!({"id": "acme"}))).await;
    assert_error(duplicate, 409, "ALREADY_EXISTS", &["'acme'"]).await;
    let bad = send(&s, &s.key, Method::POST, "/rest/organizations", Some(json!({"id": "Not Valid"}))).await;
    assert_error(bad, 412, "INVALID_PARAMETER", &["'id'", "lower-case"]).await;
    let all = ok_json(send(&s, &s.key, Method::GET, "/rest/organizations", None).await).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "default, My Org!, acme");

    assert_eq!(push(&s, &key, "acme", &src, "file://before").await.status(), 202);
    assert_eq!(send(&s, &s.key, Method::POST, "/rest/organizations/acme/pause", None).await.status(), 204);
    let status = ok_json(send(&s, &s.key, Method::GET, "/rest/organizations/acme/status", None).await).await;
    assert_eq!((status["paused"].as_bool(), status["lifeCycleState"].as_str()), (Some(true), Some("PAUSED")));
    assert_error(
        push(&s, &key, "acme", &src, "file://paused").await,
        400,
        "ORGANIZATION_IS_PAUSED",
        &["'acme'", "resumed"],
    )
    .await;
    s.settle().await;
    assert_eq!(count(&s, &key, "acme", "").await, 1, "search still works while paused");
    assert_eq!(send(&s, &s.key, Method::POST, "/rest/organizations/acme/resume", None).await.status(), 204);
    assert_eq!(push(&s, &key, "acme", &src, "file://after").await.status(), 202);
    s.settle().await;
    assert_eq!(count(&s, &key, "acme", "").await, 2, "nothing of the paused call was applied");

    assert_eq!(send(&s, &s.key, Method::DELETE, "/rest/organizations/acme", None).await.status(), 204);
    s.settle().await;
    assert!(!s.dir.path().join("index/acme").exists(), "the organization's index is removed");
    assert_error(push(&s, &s.key, "acme", &src, "file://gone").await, 404, "ORGANIZATION_NOT_FOUND", &["'acme'"]).await;
    assert_error(push(&s, &key, "acme", &src, "file://gone").await, 401, "INVALID_TOKEN", &[]).await;
}

#[tokio::test]
async fn deleting_a_source_removes_its_items() {
    let s = TestServer::start().await;
    let (src, key) = organization(&s, "acme").await;
    let other = ok_json(
        send(
            &s,
            &s.key,
            Method::POST,
            "/rest/organizations/acme/sources",
            Some(json!({"name": "other", "sourceType": "catalog", "sourceVisibility": "shared"})),
        )
        .await,
    )
    .await;
    assert_eq!((other["sourceType"].as_str(), other["streamEnabled"].as_bool()), (Some("CATALOG"), Some(true)));
    let other_src = other["id"].as_str().unwrap();
    let duplicate =
        send(&s, &s.key, Method::POST, "/rest/organizations/acme/sources", Some(json!({"name": "docs"}))).await;
    assert_error(duplicate, 409, "ALREADY_EXISTS", &["'docs'"]).await;
    for i in 0..3 {
        push(&s, &key, "acme", &src, &format!("file://docs/{i}")).await;
        push(&s, &s.key, "acme", other_src, &format!("file://other/{i}")).await;
    }
    s.settle().await;
    assert_eq!(count(&s, &s.key, "acme", "").await, 6);
    assert_eq!(
        send(&s, &s.key, Method::DELETE, &format!("/rest/organizations/acme/sources/{src}"), None).await.status(),
        204
    );
    wait_for(|| async { count(&s, &s.key, "acme", "").await == 3 }).await;
    assert_error(push(&s, &s.key, "acme", &src, "file://late").await, 412, "SOURCE_DOES_NOT_EXIST", &[&src]).await;
    assert_error(
        send(&s, &s.key, Method::GET, &format!("/rest/organizations/acme/sources/{src}"), None).await,
        412,
        "SOURCE_DOES_NOT_EXIST",
        &[],
    )
    .await;
    let listed = ok_json(send(&s, &s.key, Method::GET, "/rest/organizations/acme/sources", None).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_rotate_and_never_grant_more_than_their_creator() {
    let s = TestServer::start().await;
    let (src, old_key) = organization(&s, "acme").await;
    let keys_path = "/rest/organizations/acme/apikeys";
    let new = ok_json(
        send(
            &s,
            &s.key,
            Method::POST,
            keys_path,
            Some(json!({"displayName": "rotated", "privileges": [privilege("SOURCE", "EDIT", "*")]})),
        )
        .await,
    )
    .await;
    let new_value = new["value"].as_str().unwrap();
    assert!(new_value.starts_with("xx"));
    let listed = ok_json(send(&s, &s.key, Method::GET, keys_path, None).await).await;
    assert!(listed.as_array().unwrap().iter().all(|k| k.get("value").is_none()), "values are shown only at creation");
    let old_id = listed.as_array().unwrap().iter().find(|k| k["displayName"] == "pusher").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(send(&s, &s.key, Method::DELETE, &format!("{keys_path}/{old_id}"), None).await.status(), 204);
    assert_error(push(&s, &old_key, "acme", &src, "file://x").await, 401, "INVALID_TOKEN", &["not recognized"]).await;
    assert_eq!(push(&s, new_value, "acme", &src, "file://x").await.status(), 202);
    assert_error(
        send(&s, &s.key, Method::GET, &format!("{keys_path}/{old_id}"), None).await,
        404,
        "API_KEY_NOT_FOUND",
        &[&old_id],
    )
    .await;

    // A key that may create keys cannot hand out what it does not hold.
    let creator = ok_json(
        send(
            &s,
            &s.key,
            Method::POST,
            keys_path,
            Some(json!({"displayName": "creator", "privileges": [privilege("API_KEY", "CREATE", "*")]})),
        )
        .await,
    )
    .await;
    let creator = creator["value"].as_str().unwrap();
    let escalate = send(
        &s,
        creator,
        Method::POST,
        keys_path,
        Some(json!({"displayName": "sneaky", "privileges": [privilege("SOURCE", "EDIT", "*")]})),
    )
    .await;
    assert_error(escalate, 403, "ACCESS_DENIED", &["'creator'", "PLATFORM SOURCE EDIT", "cannot grant"]).await;
    let modest = send(
        &s,
        creator,
        Method::POST,
        keys_path,
        Some(json!({"displayName": "modest", "privileges": [privilege("API_KEY", "CREATE", "*")]})),
    )
    .await;
    assert_eq!(modest.status(), 201);

    let cases: [(Value, &str, &[&str]); 4] = [
        (json!({"privileges": []}), "MISSING_PARAMETER", &["'displayName'"]),
        (
            json!({"displayName": "x", "allowedIps": ["10.0.0.300"]}),
            "INVALID_PARAMETER",
            &["'allowedIps'", "10.0.0.300"],
        ),
        (
            json!({"displayName": "x", "expirationDate": 1000}),
            "INVALID_PARAMETER",
            &["'expirationDate'", "in the past"],
        ),
        (
            json!({"displayName": "x", "privileges": [{"owner": "PLATFORM"}]}),
            "INVALID_JSON",
            &["'privileges[0]' has no 'targetDomain'"],
        ),
    ];
    for (body, code, words) in cases {
        let status = if code == "INVALID_JSON" { 400 } else { 412 };
        assert_error(send(&s, &s.key, Method::POST, keys_path, Some(body)).await, status, code, words).await;
    }
}

#[tokio::test]
async fn access_tokens_carry_their_keys_privileges_and_expire() {
    let s = TestServer::start_with(|config| config.token_lifetime = Duration::from_secs(600)).await;
    let (src, key) = organization(&s, "acme").await;
    let id = ok_json(send(&s, &s.key, Method::GET, "/rest/organizations/acme/apikeys", None).await).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token: Value = s
        .client
        .post(s.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &key)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((token["token_type"].as_str(), token["expires_in"].as_i64()), (Some("bearer"), Some(600)));
    let access = token["access_token"].as_str().unwrap().to_string();
    assert_eq!(push(&s, &access, "acme", &src, "file://t").await.status(), 202);
    let denied = send(&s, &access, Method::GET, "/rest/organizations/acme/apikeys", None).await;
    assert_error(denied, 403, "ACCESS_DENIED", &["access token of API key 'pusher'", "PLATFORM API_KEY VIEW"]).await;

    // check_token as the Coveo CLI sends it: a multipart form with a `token` field.
    let form = reqwest::multipart::Form::new().text("token", access.clone());
    let checked: Value =
        s.client.post(s.url("/oauth/check_token")).multipart(form).send().await.unwrap().json().await.unwrap();
    assert_eq!((checked["active"].as_bool(), checked["organizationId"].as_str()), (Some(true), Some("acme")));

    s.clock.advance_ms(601_000);
    assert_error(push(&s, &access, "acme", &src, "file://t").await, 401, "INVALID_TOKEN", &["expired"]).await;
    let form = reqwest::multipart::Form::new().text("token", access.clone());
    assert_error(
        s.client.post(s.url("/oauth/check_token")).multipart(form).send().await.unwrap(),
        401,
        "INVALID_TOKEN",
        &["expired"],
    )
    .await;
    let mut tampered = access.clone();
    tampered.push('x');
    assert_error(push(&s, &tampered, "acme", &src, "file://t").await, 401, "INVALID_TOKEN", &["signature"]).await;

    // Errors are RFC 6749's: 400 invalid_request / unsupported_grant_type, 401 invalid_client.
    let token_error = |form: Vec<(&'static str, String)>| {
        let request = s.client.post(s.url("/oauth/token")).form(&form);
        async move { request.send().await.unwrap() }
    };
    let grant = || ("grant_type", "client_credentials".to_string());
    let cases = [
        (
            vec![grant(), ("client_id", id.clone()), ("client_secret", "nope".into())],
            401,
            "INVALID_CLIENT",
            "invalid_client",
            "client credentials",
        ),
        (vec![grant(), ("client_secret", key.clone())], 400, "INVALID_REQUEST", "invalid_request", "'client_id'"),
        (vec![grant(), ("client_id", id.clone())], 400, "INVALID_REQUEST", "invalid_request", "'client_secret'"),
        (
            vec![("client_id", id.clone()), ("client_secret", key.clone())],
            400,
            "INVALID_REQUEST",
            "invalid_request",
            "'grant_type'",
        ),
        (
            vec![grant(), grant(), ("client_id", id.clone()), ("client_secret", key.clone())],
            400,
            "INVALID_REQUEST",
            "invalid_request",
            "given 2 times",
        ),
        (
            vec![("grant_type", "password".into()), ("client_id", id.clone()), ("client_secret", key.clone())],
            400,
            "UNSUPPORTED_GRANT_TYPE",
            "unsupported_grant_type",
            "'password'",
        ),
        (
            vec![grant(), ("client_id", "another".into()), ("client_secret", key.clone())],
            401,
            "INVALID_CLIENT",
            "invalid_client",
            "client credentials",
        ),
    ];
    for (form, status, code, rfc, words) in cases {
        let body = assert_error(token_error(form).await, status, code, &[words]).await;
        assert_eq!(body["error"], rfc, "{body}");
        assert_eq!(body["error_description"], body["message"]);
    }
    // HTTP Basic credentials work too; a disabled key gets no token.
    let basic = s
        .client
        .post(s.url("/oauth/token"))
        .basic_auth(&id, Some(&key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    send(&s, &s.key, Method::PUT, &format!("/rest/organizations/acme/apikeys/{id}/disable"), None).await;
    let disabled = s
        .client
        .post(s.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", id.as_str()), ("client_secret", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_error(disabled, 401, "INVALID_CLIENT", &["disabled"]).await;
}

#[tokio::test]
async fn ip_rules_apply_to_the_real_client_address() {
    let s = TestServer::start().await;
    let body = json!({"displayName": "not from .2", "privileges": [privilege("SOURCE", "EDIT", "*")], "deniedIps": ["127.0.0.2/32"]});
    let key =
        ok_json(send(&s, &s.key, Method::POST, "/rest/organizations/default/apikeys", Some(body)).await).await["value"]
            .as_str()
            .unwrap()
            .to_string();
    let from =
        |ip: &str| reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let url = format!("{}?documentId=x", s.source_url("/documents"));
    let from_2 = from("127.0.0.2").put(&url).bearer_auth(&key).json(&json!({"data": "x"})).send().await.unwrap();
    assert_error(from_2, 401, "INVALID_TOKEN", &["127.0.0.2", "denied"]).await;
    let from_3 = from("127.0.0.3").put(&url).bearer_auth(&key).json(&json!({"data": "x"})).send().await.unwrap();
    assert_eq!(from_3.status(), 202);
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client() {
    let s = TestServer::start_with(|config| config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let body = json!({"displayName": "office", "privileges": [privilege("SOURCE", "EDIT", "*")], "allowedIps": ["203.0.113.0/24"]});
    let key =
        ok_json(send(&s, &s.key, Method::POST, "/rest/organizations/default/apikeys", Some(body)).await).await["value"]
            .as_str()
            .unwrap()
            .to_string();
    let url = format!("{}?documentId=x", s.source_url("/documents"));
    let via = |forwarded: &'static str| {
        s.client.put(&url).bearer_auth(&key).header("x-forwarded-for", forwarded).json(&json!({"data": "x"})).send()
    };
    assert_eq!(via("203.0.113.7").await.unwrap().status(), 202);
    // The last address before the trusted proxy counts, not one the client made up in front of it.
    assert_eq!(via("203.0.113.7, 198.51.100.9").await.unwrap().status(), 401);
    assert_error(
        via("198.51.100.9").await.unwrap(),
        401,
        "INVALID_TOKEN",
        &["198.51.100.9", "not in the allowed list"],
    )
    .await;
}

#[tokio::test]
async fn the_first_source_of_a_new_organization_is_provisioned_after_a_delay() {
    let s = TestServer::start_with(|config| config.provisioning_delay = Some(Duration::from_secs(60))).await;
    let (src, key) = organization(&s, "fresh").await;
    let early = push(&s, &key, "fresh", &src, "file://early").await;
    assert_eq!(early.headers().get("retry-after").unwrap(), "60");
    assert_error(early, 412, "SOURCE_DOES_NOT_EXIST", &["still being provisioned", "60 s"]).await;
    s.clock.advance_ms(60_000);
    assert_eq!(push(&s, &key, "fresh", &src, "file://ready").await.status(), 202);
}

#[tokio::test]
async fn declared_fields_make_metadata_comparable() {
    let s = TestServer::start().await;
    let fields_path = "/rest/organizations/default/indexes";
    let empty =
        ok_json(send(&s, &s.key, Method::GET, &format!("{fields_path}/page/fields?page=0&perPage=1000"), None).await)
            .await;
    assert_eq!(empty, json!({"items": [], "totalEntries": 0, "totalPages": 1}));
    let create = send(
        &s,
        &s.key,
        Method::POST,
        &format!("{fields_path}/fields/batch/create"),
        Some(json!([{"name": "rank", "type": "LONG"}, {"name": "category", "type": "STRING"}])),
    )
    .await;
    assert_eq!(create.status(), 204);
    let page =
        ok_json(send(&s, &s.key, Method::GET, &format!("{fields_path}/page/fields?page=1&perPage=1"), None).await)
            .await;
    assert_eq!(page["items"], json!([{"name": "rank", "type": "LONG", "description": ""}]));
    assert_eq!((page["totalEntries"].as_u64(), page["totalPages"].as_u64()), (Some(2), Some(2)));
    for (name, ty, word) in [("Rank", "LONG", "lower-case"), ("rank2", "TEXT", "STRING, LONG, LONG_64, DOUBLE, DATE")] {
        let bad = send(
            &s,
            &s.key,
            Method::POST,
            &format!("{fields_path}/fields/batch/create"),
            Some(json!([{"name": name, "type": ty}])),
        )
        .await;
        assert_error(bad, 412, "INVALID_PARAMETER", &[word]).await;
    }
    for (id, rank) in [("file://r/2", 2), ("file://r/10", 10), ("file://r/33", 33)] {
        s.put_item(id, &json!({"data": "x", "rank": rank}), "").await;
    }
    s.settle().await;
    assert_eq!(s.uris("@rank>2 @rank<=33").await, ["file://r/10", "file://r/33"]);
}

#[tokio::test]
async fn privileges_are_evaluated_for_the_caller() {
    let s = TestServer::start().await;
    let (src, key) = organization(&s, "acme").await;
    let evaluate = |token: &str, org: &str, target: &str| {
        let body = json!({"organizationId": org, "requestedPrivilege": privilege("SOURCE", "EDIT", target)});
        let request = s.client.post(s.url("/rest/privilege/evaluate")).bearer_auth(token.to_string()).json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["approved"].as_bool().unwrap() }
    };
    assert!(evaluate(&key, "acme", &src).await);
    assert!(!evaluate(&key, "acme", "*").await, "one source does not grant all");
    assert!(!evaluate(&key, "default", &src).await, "another organization");
    assert!(evaluate(&s.key, "acme", "*").await);
}
