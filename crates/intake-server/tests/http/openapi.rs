//! `/openapi.json` and the routes are one: every documented operation is served, and every route is documented.
//!
//! Routes are registered only through `utoipa_axum::routes!`, which takes them from the handlers' own
//! annotations; the source check below keeps it that way (a plain `.route(` would serve a path the document does
//! not list). The black-box check calls every documented operation and expects anything but the router's own
//! 404 or 405.

use crate::common;

use common::TestServer;
use reqwest::Method;
use serde_json::Value;

#[test]
fn every_route_is_registered_through_the_documented_handlers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in walkdir::WalkDir::new(&src) {
        let path = entry.unwrap().into_path();
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let plain_router = code.replace("OpenApiRouter::new()", "").contains("Router::new()");
            assert!(
                !code.contains(".route(") && !code.contains(".route_service(") && !plain_router,
                "{}:{}: a route that is not documented; register it with utoipa_axum::routes! on an annotated handler",
                path.display(),
                number + 1
            );
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_as_documented() {
    let s = TestServer::start().await;
    let document: Value = s.client.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 34, "{} paths documented", paths.len());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{org}", &s.org)
            .replace("{src}", &s.src)
            .replace("{id}", "no-such-id")
            .replace("{file_id}", "no-such-file")
            .replace("{name}", "maximumItems")
            .replace("{section}", "content")
            .replace("{key}", "maximumItems")
            .replace("{file}", "app.js");
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            operations += 1;
            // Without credentials: a real route answers 401 (or, if public, anything it documents); the router's
            // fallback would answer 404 NOT_FOUND and a wrong method 405.
            let response = s.client.request(method.clone(), s.url(&concrete)).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(body["errorCode"], "NOT_FOUND", "{method} {path} is documented but not served");
            assert_ne!(status, 405, "{method} {path} is documented but not served with this method");
            let responses = operation["responses"].as_object().unwrap();
            let documented =
                responses.contains_key(&status.to_string()) || responses.contains_key(&format!("{}XX", status / 100));
            assert!(documented, "{method} {path} answered {status}, which it does not document: {responses:?}");
            assert!(
                operation["summary"].is_string() || operation["description"].is_string(),
                "{method} {path} says nothing"
            );
        }
    }
    assert!(operations >= 48, "{operations} operations documented");
    // The legacy prefix serves the Push API too.
    let legacy = s.client.put(s.url(&format!("/v1/organizations/{}/sources/{}/documents", s.org, s.src))).send();
    assert_eq!(legacy.await.unwrap().status(), 401);
}
