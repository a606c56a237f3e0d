//! The console's files (served with a strict policy, gzip and revalidation; written so that nothing an item holds
//! can run), and the two endpoints it reads that other tools may too: the error catalog and the activity chart.

use crate::common::{START_MS, TestServer, assert_error};

use std::io::Read;

use intake_server::console::ASSETS;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_gzip_and_revalidation() {
    let s = TestServer::start().await;
    let page = s.client.get(s.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.text().await.unwrap().contains(r#"<script type="module" src="/console/app.js">"#));

    for asset in ASSETS.iter() {
        let path = if asset.name == "index.html" { "/".to_string() } else { format!("/console/{}", asset.name) };
        let plain = s.client.get(s.url(&path)).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert_eq!(plain.headers()["content-type"], asset.content_type, "{path}");
        let etag = plain.headers()["etag"].clone();
        assert_eq!(plain.bytes().await.unwrap(), asset.bytes, "{path}");

        let zipped = s.client.get(s.url(&path)).header("accept-encoding", "br, gzip;q=0.8").send().await.unwrap();
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{path}");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..]).read_to_end(&mut unzipped).unwrap();
        assert_eq!(unzipped, asset.bytes, "{path}");
        let refused = s.client.get(s.url(&path)).header("accept-encoding", "gzip;q=0").send().await.unwrap();
        assert!(refused.headers().get("content-encoding").is_none(), "{path}: gzip;q=0 refuses gzip");

        let again = s.client.get(s.url(&path)).header("if-none-match", etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = s.client.get(s.url("/console/nope.js")).send().await.unwrap();
    assert_error(missing, 404, "NOT_FOUND", &["'nope.js'", "console"]).await;
}

#[test]
fn the_console_never_writes_markup_or_reaches_another_origin() {
    for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        let code = std::str::from_utf8(asset.bytes).unwrap();
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!code.contains(sink), "{} uses {sink}: values must become text nodes", asset.name);
        }
        for line in code.lines().filter(|l| l.contains("http://") || l.contains("https://")) {
            assert!(line.contains("http://www.w3.org/2000/svg"), "{}: a request to another origin: {line}", asset.name);
        }
        assert!(
            code.contains("sessionStorage") || !code.contains("localStorage"),
            "{}: keys stay in the tab",
            asset.name
        );
        assert!(!code.contains("document.cookie"), "{}: no cookie", asset.name);
    }
}

#[tokio::test]
async fn the_error_catalog_explains_and_reproduces_every_code() {
    let s = TestServer::start().await;
    let catalog: Value = s.client.get(s.url("/errors")).send().await.unwrap().json().await.unwrap();
    let codes = catalog["codes"].as_array().unwrap();
    assert_eq!(codes.len(), intake_model::error::CATALOG.len());
    for code in codes {
        let name = code["errorCode"].as_str().unwrap();
        for key in ["meaning", "cause", "resolution"] {
            assert!(!code[key].as_str().unwrap().is_empty(), "{name}: {key}");
        }
        assert!(!code["reproduce"]["commands"].as_array().unwrap().is_empty(), "{name} has no reproduction");
    }
    let denied = codes.iter().find(|c| c["errorCode"] == "ACCESS_DENIED").unwrap();
    assert_eq!(denied["status"], 403);
    assert_eq!(denied["reproduce"]["section"], "ACCESS_DENIED");
    let gateway = codes.iter().find(|c| c["errorCode"] == "GATEWAY_TIMEOUT").unwrap();
    assert!(gateway["reproduce"]["commands"][0].as_str().unwrap().contains("intake admin fault add"), "{gateway}");
    assert!(catalog["setup"][0].as_str().unwrap().contains("intake serve"));
    let results: Vec<&str> =
        catalog["logResults"].as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["COMPLETED", "ERROR", "REJECTED", "SKIPPED", "WARNING"]);
}

#[tokio::test]
async fn activity_counts_committed_outcomes_per_minute_and_quarter_hour() {
    let s = TestServer::start().await;
    let activity = |window: &str| {
        let url = s.url(&format!("/logs/v1/organizations/{}/activity?window={window}", s.org));
        s.request(Method::GET, &url).send()
    };
    for i in 0..4 {
        assert_eq!(s.put_item(&format!("file://a/{i}"), &json!({"data": "x"}), "").await.status(), 202);
    }
    s.settle().await;

    let hour: Value = activity("hour").await.unwrap().json().await.unwrap();
    assert_eq!((hour["window"].as_str(), hour["bucketMs"].as_i64()), (Some("hour"), Some(60_000)));
    let buckets = hour["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    // The window ends with the current minute's bucket: the clock stands at START_MS.
    assert_eq!(hour["to"], intake_model::dates::format_ms(START_MS + 60_000));
    assert_eq!(buckets[59]["start"], intake_model::dates::format_ms(START_MS));
    assert_eq!(buckets[59]["counts"]["COMPLETED"], 4);
    assert_eq!(hour["totals"], json!({"COMPLETED": 4}));
    assert_eq!(hour["journal"]["backlog"], 0);
    assert!(hour["journal"]["committedSeq"].as_u64().unwrap() >= 4, "{hour}");

    let day: Value = activity("DAY").await.unwrap().json().await.unwrap();
    assert_eq!((day["buckets"].as_array().unwrap().len(), day["bucketMs"].as_i64()), (96, Some(900_000)));
    assert_eq!(day["totals"]["COMPLETED"], 4);

    // Outcomes older than the window are not counted.
    s.clock.advance_ms(2 * 3600 * 1000);
    let later: Value = activity("hour").await.unwrap().json().await.unwrap();
    assert_eq!(later["totals"], json!({}));

    assert_error(activity("week").await.unwrap(), 412, "INVALID_PARAMETER", &["'window'", "hour and day"]).await;
    let key = s.key_with(json!([{"owner": "SEARCH_API", "targetDomain": "EXECUTE_QUERY", "targetId": "*"}])).await;
    let url = s.url(&format!("/logs/v1/organizations/{}/activity", s.org));
    let denied = s.client.get(url).bearer_auth(key).send().await.unwrap();
    assert_error(denied, 403, "ACCESS_DENIED", &["LOGS"]).await;
}
