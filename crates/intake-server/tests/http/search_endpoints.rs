//! The endpoints beside the search that Headless and Atomic call (`../shared/spec/search-api.md` §4): query
//! suggestions, the quickview, fields, the plan, analytics, and CORS preflights — each trimmed to what the caller
//! may see. (Facet value search is in `facets.rs`.)

use crate::common;

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

/// Four public items with titles, and one item in a SECURED source that only its owner may see.
async fn titled() -> TestServer {
    let s = TestServer::start().await;
    for (id, title, text) in [
        ("kernel", "Kernel module loading", "The kernel loads a module at boot."),
        ("network", "Network drivers", "A driver for the network card of the kernel."),
        ("compiler", "Compiler passes", "Compilers transform code."),
        ("cooking", "Cooking pasta", "Boil water & add <b>salt</b>, then cook the pasta."),
    ] {
        let body = json!({"title": title, "data": text, "permissions": [{"allowAnonymous": true}]});
        assert_eq!(s.put_item(&format!("file://e/{id}"), &body, "").await.status(), 202);
    }
    let sources = s.url(&format!("/rest/organizations/{}/sources", s.org));
    let created = s.request(Method::POST, &sources).json(&json!({"name": "secured", "sourceVisibility": "SECURED"}));
    let created: Value = created.send().await.unwrap().json().await.unwrap();
    let hidden = json!({"title": "Kernel secrets", "data": "the kernel's secret plan", "permissions": [
        {"allowAnonymous": false, "allowedPermissions": [{"identity": "boss@example.com", "identityType": "User"}]}]});
    let url = s.url(&format!(
        "/push/v1/organizations/{}/sources/{}/documents?documentId=file://e/secret",
        s.org,
        created["id"].as_str().unwrap()
    ));
    assert_eq!(s.request(Method::PUT, &url).json(&hidden).send().await.unwrap().status(), 202);
    s.settle().await;
    s
}

async fn post(s: &TestServer, path: &str, body: Value) -> reqwest::Response {
    let url = s.url(&format!("{path}?organizationId={}", s.org));
    s.request(Method::POST, &url).json(&body).send().await.unwrap()
}

async fn suggest(s: &TestServer, q: &str) -> Vec<(String, String)> {
    let response = post(s, "/rest/search/v2/querySuggest", json!({"q": q, "count": 5, "searchHub": "default"})).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["responseId"].is_string(), "{answer}");
    answer["completions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["expression"].as_str().unwrap().to_string(), c["highlighted"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn query_suggestions_complete_titles_the_caller_may_see() {
    let s = titled().await;
    assert_eq!(suggest(&s, "ker").await, [("kernel module loading".into(), "{ker}[nel] [module] [loading]".into())]);
    let co: Vec<String> = suggest(&s, "Co").await.into_iter().map(|c| c.0).collect();
    assert_eq!(co, ["compiler passes", "cooking pasta"]);
    assert_eq!(suggest(&s, "module lo").await[0].0, "kernel module loading", "the words of a title, the last begun");
    assert_eq!(suggest(&s, "").await, Vec::<(String, String)>::new(), "nothing typed, nothing suggested");
    assert_eq!(suggest(&s, "zzz").await, Vec::<(String, String)>::new());
    // The secured item's title is never suggested to someone who could not find it.
    let kernel: Vec<String> = suggest(&s, "kernel").await.into_iter().map(|c| c.0).collect();
    assert_eq!(kernel, ["kernel module loading"]);
    assert_eq!(suggest(&s, "kernel s").await, Vec::<(String, String)>::new());
    let bad = post(&s, "/rest/search/v2/querySuggest", json!({"q": "k", "count": 1000})).await;
    assert_error(bad, 412, "INVALID_PARAMETER", &["'count'", "0 to 100"]).await;
}

#[tokio::test]
async fn the_quickview_shows_the_text_with_the_words_marked_and_nothing_runs() {
    let s = titled().await;
    let found = s.search(json!({"q": "pasta", "viewAllContent": false})).await;
    let hit = &found["results"][0];
    assert_eq!(hit["hasHtmlVersion"], true);
    let unique_id = hit["uniqueId"].as_str().unwrap();

    // Headless' iframe: GET with the token in the query string, no Authorization header.
    let url = s.url(&format!(
        "/rest/search/v2/html?organizationId={}&uniqueId={}&q=pasta&access_token={}&enableNavigation=false",
        s.org,
        common::form(unique_id),
        s.key
    ));
    let response = s.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>Cooking pasta</title>"), "{html}");
    assert!(html.contains("&amp; add &lt;b&gt;salt&lt;/b&gt;"), "markup in the text is text: {html}");
    assert!(html.contains("cook the <span class=\"coveo-highlight\">pasta</span>."), "{html}");

    // POST with a form body, as Coveo's JavaScript UI sends it.
    let url = s.url(&format!("/rest/search/v2/html?organizationId={}", s.org));
    let form = format!("uniqueId={}&q=water&requestedOutputSize=20", common::form(unique_id));
    let response = s
        .request(Method::POST, &url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Boil <span class=\"coveo-highlight\">water</span> &amp; add") && !html.contains("salt"),
        "{html}"
    );

    // The secured item: its uniqueId opens nothing for the anonymous user; the master key's viewAllContent is
    // not implied here either.
    let all = s.search(json!({"q": "secret"})).await;
    let secret_id = all["results"][0]["uniqueId"].as_str().unwrap().to_string();
    let url = s.url(&format!("/rest/search/v2/html?organizationId={}&uniqueId={}", s.org, common::form(&secret_id)));
    let hidden = s.request(Method::GET, &url).send().await.unwrap();
    assert_error(hidden, 404, "ITEM_NOT_FOUND", &[&secret_id, "may see"]).await;
    // With viewAllContent (and its privilege, as the console asks) it opens.
    let url = s.url(&format!(
        "/rest/search/v2/html?organizationId={}&uniqueId={}&viewAllContent=true",
        s.org,
        common::form(&secret_id)
    ));
    let opened = s.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(opened.status(), 200);
    let html = opened.text().await.unwrap();
    assert!(html.contains("<title>Kernel secrets</title>") && html.contains("secret plan"), "{html}");

    let url = s.url(&format!("/rest/search/v2/html?organizationId={}", s.org));
    assert_error(s.request(Method::GET, &url).send().await.unwrap(), 412, "MISSING_PARAMETER", &["'uniqueId'"]).await;
    let url = s.url(&format!("/rest/search/v2/html?organizationId={}&uniqueId=nope", s.org));
    assert_error(s.request(Method::GET, &url).send().await.unwrap(), 412, "INVALID_PARAMETER", &["'uniqueId'", "42."])
        .await;
    let url = s.url(&format!("/rest/search/v2/html?organizationId={}&uniqueId=x&access_token=wrong", s.org));
    assert_error(s.client.get(url).send().await.unwrap(), 401, "INVALID_TOKEN", &[]).await;
    let url = s.url(&format!("/rest/search/v2/html?organizationId={}&uniqueId=x", s.org));
    assert_error(s.client.get(url).send().await.unwrap(), 401, "UNAUTHORIZED", &["Authorization"]).await;
}

#[tokio::test]
async fn fields_plan_and_analytics_answer_what_clients_read() {
    let s = titled().await;
    let declare = s.url(&format!("/rest/organizations/{}/indexes/fields/batch/create", s.org));
    let fields = json!([{"name": "rank", "type": "LONG"}]);
    assert_eq!(s.request(Method::POST, &declare).json(&fields).send().await.unwrap().status(), 204);
    let url = s.url(&format!("/rest/search/v2/fields?organizationId={}", s.org));
    let answer: Value = s.request(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    let fields = answer["fields"].as_array().unwrap();
    let find = |name: &str| fields.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name}: {answer}"));
    assert_eq!(find("@date")["fieldType"], "Date");
    assert_eq!(
        (find("@rank")["fieldType"].as_str(), find("@rank")["fieldSourceType"].as_str()),
        (Some("Long"), Some("Custom"))
    );

    let plan: Value =
        post(&s, "/rest/search/v2/plan", json!({"q": "kernel", "aq": "@rank>1"})).await.json().await.unwrap();
    assert_eq!(plan["parsedInput"]["basicExpression"], "kernel");
    assert_eq!(plan["preprocessingOutput"]["triggers"], json!([]));
    let bad = post(&s, "/rest/search/v2/plan", json!({"aq": "(a"})).await;
    assert_error(bad, 400, "INVALID_QUERY_SYNTAX", &["'aq'"]).await;

    // Analytics are answered (beacons carry no Authorization header) and recorded nowhere.
    let events = s.client.post(s.url(&format!("/rest/organizations/{}/events/v1", s.org))).json(&json!([{"meta": {}}]));
    let events = events.send().await.unwrap();
    assert_eq!(events.status(), 200);
    assert!(events.headers().get("connection").is_none(), "the events were read: the connection stays open");
    assert_eq!(events.json::<Value>().await.unwrap(), json!({"events": []}));
    let valid = s.client.post(s.url(&format!("/rest/organizations/{}/events/v1/validate", s.org))).json(&json!([]));
    assert_eq!(valid.send().await.unwrap().json::<Value>().await.unwrap()["valid"], true);
    let legacy = s.client.post(s.url("/rest/v15/analytics/search")).json(&json!({"queryText": "kernel"}));
    let legacy: Value = legacy.send().await.unwrap().json().await.unwrap();
    assert!(legacy["searchEventUid"].is_string() && legacy["visitorId"].is_string(), "{legacy}");
}

#[tokio::test]
async fn browser_pages_on_other_origins_pass_cors() {
    let s = titled().await;
    let preflight = s
        .client
        .request(Method::OPTIONS, s.url("/rest/search/v2?organizationId=x"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(headers["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert!(headers.contains_key("x-request-id"), "preflights carry a request id too");

    let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
    let search =
        s.request(Method::POST, &url).header("origin", "http://localhost:3000").json(&json!({})).send().await.unwrap();
    assert_eq!(search.headers()["access-control-allow-origin"], "*");
    assert!(search.headers()["access-control-expose-headers"].to_str().unwrap().contains("x-request-id"));
    // Errors too, so a page can read why.
    let denied = s.client.post(url).header("origin", "http://localhost:3000").json(&json!({})).send().await.unwrap();
    assert_eq!(
        (denied.status().as_u16(), denied.headers()["access-control-allow-origin"].to_str().unwrap()),
        (401, "*")
    );
}
