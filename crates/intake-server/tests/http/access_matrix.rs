//! The auth matrix: every authenticated route × every kind of credential, asserting status and errorCode.
//! Keys are created through the Platform API with the master key; the injected clock expires keys and tokens.

use crate::common;

use std::time::Duration;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

/// Which rule decides the route beyond authentication.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A privilege of the organization in the path (or in the body/query for search).
    Privilege,
    /// Only the master key; organization-scoped.
    MasterOnly,
    /// A listing filtered by what the caller may see: 200 for every authenticated caller.
    Filtered,
    /// Not organization-scoped and only the master key may do it.
    MasterOnlyGlobal,
    /// Answers for any authenticated caller (it reports what the caller may do).
    AnyCaller,
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    ok: u16,
    rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NoHeader,
    NotBearer,
    UnknownToken,
    ExpiredKey,
    ExpiredToken,
    DisabledKey,
    DeletedKey,
    DeniedIp,
    IpNotAllowed,
    OtherOrganization,
    MissingPrivilege,
    RightPrivilege,
}

const CASES: [Case; 12] = [
    Case::NoHeader,
    Case::NotBearer,
    Case::UnknownToken,
    Case::ExpiredKey,
    Case::ExpiredToken,
    Case::DisabledKey,
    Case::DeletedKey,
    Case::DeniedIp,
    Case::IpNotAllowed,
    Case::OtherOrganization,
    Case::MissingPrivilege,
    Case::RightPrivilege,
];

fn expected(route: &Route, case: Case) -> (u16, &'static str) {
    match case {
        Case::NoHeader | Case::NotBearer => (401, "UNAUTHORIZED"),
        Case::UnknownToken
        | Case::ExpiredKey
        | Case::ExpiredToken
        | Case::DisabledKey
        | Case::DeletedKey
        | Case::DeniedIp
        | Case::IpNotAllowed => (401, "INVALID_TOKEN"),
        Case::OtherOrganization => match route.rule {
            Rule::Filtered | Rule::AnyCaller => (200, ""),
            Rule::MasterOnlyGlobal => (403, "ACCESS_DENIED"),
            Rule::Privilege | Rule::MasterOnly => (401, "INVALID_TOKEN"),
        },
        Case::MissingPrivilege => match route.rule {
            Rule::Filtered | Rule::AnyCaller => (200, ""),
            _ => (403, "ACCESS_DENIED"),
        },
        Case::RightPrivilege => (route.ok, ""),
    }
}

/// Every privilege the routes need, for the "right privilege" key.
fn all_privileges() -> Value {
    let platform =
        |domain: &str, kind: &str| json!({"owner": "PLATFORM", "targetDomain": domain, "type": kind, "targetId": "*"});
    json!([
        platform("SOURCE", "EDIT"), platform("SOURCE", "CREATE"), platform("API_KEY", "CREATE"), platform("API_KEY", "EDIT"),
        platform("FIELD", "CREATE"), platform("FIELD", "EDIT"), platform("ORGANIZATION", "EDIT"), platform("LOGS", "VIEW"),
        {"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "targetId": "*"}
    ])
}

struct Credentials {
    full: String,
    none: String,
    expired: String,
    disabled: String,
    deleted: String,
    denied_ip: String,
    not_allowed_ip: String,
    other_org: String,
    expired_token: String,
}

async fn create_key(s: &TestServer, org: &str, body: Value) -> (String, String) {
    let response = s
        .request(Method::POST, &s.url(&format!("/rest/organizations/{org}/apikeys")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let key: Value = response.json().await.unwrap();
    (key["id"].as_str().unwrap().to_string(), key["value"].as_str().unwrap().to_string())
}

async fn master(s: &TestServer, method: Method, path: &str, body: Value) -> Value {
    let response = s.request(method, &s.url(path)).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

async fn credentials(s: &TestServer) -> Credentials {
    master(s, Method::POST, "/rest/organizations", json!({"id": "globex", "displayName": "Globex"})).await;
    let in_a_minute = common::START_MS + 60_000;
    let (full_id, full) = create_key(s, "acme", json!({"displayName": "full", "privileges": all_privileges()})).await;
    let (_, none) = create_key(s, "acme", json!({"displayName": "none"})).await;
    let (_, expired) = create_key(
        s,
        "acme",
        json!({"displayName": "expired", "privileges": all_privileges(), "expirationDate": in_a_minute}),
    )
    .await;
    let (disabled_id, disabled) =
        create_key(s, "acme", json!({"displayName": "disabled", "privileges": all_privileges()})).await;
    let (deleted_id, deleted) =
        create_key(s, "acme", json!({"displayName": "deleted", "privileges": all_privileges()})).await;
    let (_, denied_ip) = create_key(s, "acme", json!({"displayName": "denied", "privileges": all_privileges(), "allowedIps": ["127.0.0.0/8"], "deniedIps": ["127.0.0.1"]})).await;
    let (_, not_allowed_ip) = create_key(
        s,
        "acme",
        json!({"displayName": "elsewhere", "privileges": all_privileges(), "allowedIps": ["10.0.0.0/8"]}),
    )
    .await;
    let (_, other_org) =
        create_key(s, "globex", json!({"displayName": "globex full", "privileges": all_privileges()})).await;
    let token: Value = s
        .client
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", full_id.as_str()),
            ("client_secret", full.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expired_token = token["access_token"].as_str().unwrap().to_string();
    master(s, Method::PUT, &format!("/rest/organizations/acme/apikeys/{disabled_id}/disable"), json!({})).await;
    let response = s
        .request(Method::DELETE, &s.url(&format!("/rest/organizations/acme/apikeys/{deleted_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // Past the expired key's date and the token's one-minute lifetime.
    s.clock.advance_ms(120_000);
    Credentials { full, none, expired, disabled, deleted, denied_ip, not_allowed_ip, other_org, expired_token }
}

fn routes(src: &str, doomed_src: &str, victim_key: &str) -> Vec<Route> {
    let push = format!("/push/v1/organizations/acme/sources/{src}");
    let route =
        |method: Method, path: String, body: Option<Value>, ok: u16, rule: Rule| Route { method, path, body, ok, rule };
    vec![
        route(
            Method::PUT,
            format!("{push}/documents?documentId=file%3A%2F%2Fm"),
            Some(json!({"data": "x"})),
            202,
            Rule::Privilege,
        ),
        route(Method::DELETE, format!("{push}/documents?documentId=file%3A%2F%2Fm"), None, 202, Rule::Privilege),
        route(
            Method::DELETE,
            format!("{push}/documents/olderthan?orderingId=1&queueDelay=0"),
            None,
            202,
            Rule::Privilege,
        ),
        route(Method::POST, format!("{push}/status?statusType=IDLE"), Some(json!({})), 201, Rule::Privilege),
        route(
            Method::PUT,
            format!("/v1/organizations/acme/sources/{src}/documents?documentId=legacy"),
            Some(json!({"data": "x"})),
            202,
            Rule::Privilege,
        ),
        route(Method::POST, "/rest/search/v2?organizationId=acme".into(), Some(json!({})), 200, Rule::Privilege),
        route(Method::POST, "/logs/v1/organizations/acme".into(), Some(json!({})), 200, Rule::Privilege),
        route(Method::GET, "/rest/organizations".into(), None, 200, Rule::Filtered),
        route(
            Method::POST,
            "/rest/organizations".into(),
            Some(json!({"displayName": "Made in the matrix"})),
            201,
            Rule::MasterOnlyGlobal,
        ),
        route(Method::GET, "/rest/organizations/acme".into(), None, 200, Rule::Privilege),
        route(Method::GET, "/rest/organizations/acme/status".into(), None, 200, Rule::Privilege),
        route(Method::GET, "/rest/organizations/acme/sources".into(), None, 200, Rule::Privilege),
        route(
            Method::POST,
            "/rest/organizations/acme/sources".into(),
            Some(json!({"name": "matrix", "sourceType": "PUSH"})),
            201,
            Rule::Privilege,
        ),
        route(Method::GET, format!("/rest/organizations/acme/sources/{src}"), None, 200, Rule::Privilege),
        route(Method::DELETE, format!("/rest/organizations/acme/sources/{doomed_src}"), None, 204, Rule::Privilege),
        route(Method::GET, "/rest/organizations/acme/apikeys".into(), None, 200, Rule::Privilege),
        route(
            Method::POST,
            "/rest/organizations/acme/apikeys".into(),
            Some(json!({"displayName": "made in the matrix"})),
            201,
            Rule::Privilege,
        ),
        route(Method::GET, format!("/rest/organizations/acme/apikeys/{victim_key}"), None, 200, Rule::Privilege),
        route(
            Method::PUT,
            format!("/rest/organizations/acme/apikeys/{victim_key}/disable"),
            Some(json!({})),
            200,
            Rule::Privilege,
        ),
        route(
            Method::PUT,
            format!("/rest/organizations/acme/apikeys/{victim_key}/activate"),
            Some(json!({})),
            200,
            Rule::Privilege,
        ),
        route(Method::DELETE, format!("/rest/organizations/acme/apikeys/{victim_key}"), None, 204, Rule::Privilege),
        route(
            Method::GET,
            "/rest/organizations/acme/indexes/page/fields?page=0&perPage=10".into(),
            None,
            200,
            Rule::Privilege,
        ),
        route(
            Method::POST,
            "/rest/organizations/acme/indexes/fields/batch/create".into(),
            Some(json!([{"name": "rank", "type": "LONG"}])),
            204,
            Rule::Privilege,
        ),
        route(
            Method::POST,
            "/rest/privilege/evaluate".into(),
            Some(
                json!({"organizationId": "acme", "requestedPrivilege": {"owner": "PLATFORM", "targetDomain": "SOURCE", "type": "EDIT", "targetId": "*"}}),
            ),
            200,
            Rule::AnyCaller,
        ),
        route(Method::GET, "/rest/organizations/acme/limits".into(), None, 200, Rule::Privilege),
        route(Method::GET, "/rest/organizations/acme/limits/content/pushApiBurst".into(), None, 200, Rule::Privilege),
        route(
            Method::PUT,
            "/rest/organizations/acme/limits/maximumItems".into(),
            Some(json!({"value": 1000})),
            200,
            Rule::MasterOnly,
        ),
        // A rule that matches no path, so the routes after it are not disturbed; its id is 1, the first rule.
        route(
            Method::POST,
            "/rest/organizations/acme/faults".into(),
            Some(json!({"status": 503, "count": 1, "route": "/nowhere"})),
            201,
            Rule::MasterOnly,
        ),
        route(Method::GET, "/rest/organizations/acme/faults".into(), None, 200, Rule::MasterOnly),
        route(Method::DELETE, "/rest/organizations/acme/faults/1".into(), None, 204, Rule::MasterOnly),
        route(Method::POST, "/rest/organizations/acme/pause".into(), Some(json!({})), 204, Rule::Privilege),
        route(Method::POST, "/rest/organizations/acme/resume".into(), Some(json!({})), 204, Rule::Privilege),
        route(Method::DELETE, "/rest/organizations/acme".into(), None, 204, Rule::MasterOnly),
    ]
}

#[tokio::test]
async fn every_route_answers_every_credential_as_documented() {
    let s = TestServer::start_with(|config| config.token_lifetime = Duration::from_secs(60)).await;
    master(&s, Method::POST, "/rest/organizations", json!({"id": "acme", "displayName": "Acme"})).await;
    let src = master(&s, Method::POST, "/rest/organizations/acme/sources", json!({"name": "docs"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let doomed = master(&s, Method::POST, "/rest/organizations/acme/sources", json!({"name": "doomed"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (victim, _) = create_key(&s, "acme", json!({"displayName": "victim"})).await;
    let keys = credentials(&s).await;
    let mut checked = 0;
    for route in routes(&src, &doomed, &victim) {
        for case in CASES {
            let mut request = s.client.request(route.method.clone(), s.url(&route.path));
            request = match case {
                Case::NoHeader => request,
                Case::NotBearer => request.header("authorization", format!("Basic {}", keys.full)),
                Case::UnknownToken => request.bearer_auth("xx00000000-0000-0000-0000-000000000000"),
                Case::ExpiredKey => request.bearer_auth(&keys.expired),
                Case::ExpiredToken => request.bearer_auth(&keys.expired_token),
                Case::DisabledKey => request.bearer_auth(&keys.disabled),
                Case::DeletedKey => request.bearer_auth(&keys.deleted),
                Case::DeniedIp => request.bearer_auth(&keys.denied_ip),
                Case::IpNotAllowed => request.bearer_auth(&keys.not_allowed_ip),
                Case::OtherOrganization => request.bearer_auth(&keys.other_org),
                Case::MissingPrivilege => request.bearer_auth(&keys.none),
                Case::RightPrivilege if matches!(route.rule, Rule::MasterOnly | Rule::MasterOnlyGlobal) => {
                    request.bearer_auth(&s.key)
                }
                Case::RightPrivilege => request.bearer_auth(&keys.full),
            };
            if let Some(body) = &route.body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let (status, code) = expected(&route, case);
            let what = format!("{} {} with {case:?}", route.method, route.path);
            assert_eq!(response.status().as_u16(), status, "{what}: {:?}", response.text().await);
            assert!(response.headers().contains_key("x-request-id"), "{what}");
            if !code.is_empty() {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["errorCode"], code, "{what}: {body}");
                assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 33 * 12);
}
