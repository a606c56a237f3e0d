//! The Search API v2 as Coveo's UI kit reads it: every key Headless and Atomic read on an answer and on a result
//! (`../shared/spec/search-api.md` §3), with what Intake has for them.

use crate::common;

use common::TestServer;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_answer_has_every_key_headless_reads() {
    let s = TestServer::start().await;
    let crane = "<html><head><title>Harbour crane manual</title></head><body><p>The harbour crane lifts forty \
                 tons. Check its cables daily! Never lift people.</p></body></html>";
    let boat = "<html><head><title>Boats</title></head><body><p>A boat moored by the crane, with cables, \
                and a long story about the sea, the wind, the tides and the gulls.</p></body></html>";
    for (id, html) in [("https://example.com/crane", crane), ("https://example.com/boat", boat)] {
        let body = json!({"data": html, "fileExtension": ".html"});
        assert_eq!(s.put_item(id, &body, "").await.status(), 202);
    }
    s.settle().await;

    let found = s.search(json!({"q": "Crane AND cables"})).await;
    assert_eq!((found["totalCount"].as_u64(), found["totalCountFiltered"].as_u64()), (Some(2), Some(2)), "{found}");
    for key in [
        "facets",
        "triggers",
        "queryCorrections",
        "groupByResults",
        "categoryFacets",
        "suggestedFacets",
        "refinedKeywords",
        "warnings",
    ] {
        assert_eq!(found[key], json!([]), "{key}");
    }
    assert_eq!(found["termsToHighlight"], json!({"crane": [], "cables": []}), "the operator is not a term");
    assert_eq!(found["phrasesToHighlight"], json!({}));
    assert_eq!(found["extendedResults"], json!({}));
    assert_eq!(found["generateAutomaticFacets"], json!({"facets": []}));
    assert_eq!(found["questionAnswer"]["answerFound"], false);
    assert_eq!((found["apiVersion"].as_u64(), found["splitTestRun"].as_str()), (Some(2), Some("")));
    assert!(found["pipeline"].is_string() && found["requestDuration"].is_u64());
    let search_uid = found["searchUid"].as_str().unwrap();
    assert!(!search_uid.is_empty());

    let hit = &found["results"][0];
    assert_eq!(hit["uri"], "https://example.com/crane", "{found}");
    assert_eq!(hit["titleHighlights"], json!([{"offset": 8, "length": 5}]), "'crane' in 'Harbour crane manual'");
    assert_eq!(hit["firstSentences"], "The harbour crane lifts forty tons. Check its cables daily!");
    assert_eq!(hit["firstSentencesHighlights"], json!([{"offset": 12, "length": 5}, {"offset": 46, "length": 6}]));
    assert_eq!(hit["percentScore"], 100.0);
    let second = found["results"][1]["percentScore"].as_f64().unwrap();
    assert!(second > 0.0 && second < 100.0, "{second}");
    assert_eq!((hit["searchUid"].as_str(), hit["primaryid"].as_str()), (Some(search_uid), hit["uniqueId"].as_str()));
    assert_eq!((hit["rating"].as_u64(), hit["hasHtmlVersion"].as_bool()), (Some(3), Some(true)));
    assert_eq!((hit["childResults"].clone(), hit["totalNumberOfChildResults"].as_u64()), (json!([]), Some(0)));
    for key in ["summary", "rankingInfo", "parentResult"] {
        assert!(hit[key].is_null(), "{key}");
    }
    for key in ["isTopResult", "isRecommendation", "isUserActionView"] {
        assert_eq!(hit[key], false, "{key}");
    }
    assert!(hit["raw"].is_object() && hit["flags"].is_string() && hit["absentTerms"].is_array());
    // The content ids Headless and Atomic read: stable hashes of the URI.
    let permanent = hit["raw"]["permanentid"].as_str().unwrap();
    assert!(permanent.len() == 64 && permanent.bytes().all(|b| b.is_ascii_hexdigit()), "{permanent}");
    assert_eq!(
        (hit["raw"]["urihash"].as_str().map(str::len), hit["raw"]["collection"].as_str()),
        (Some(16), Some("default"))
    );
    let again = s.search(json!({"q": "crane"})).await;
    let same = again["results"].as_array().unwrap().iter().find(|r| r["uri"] == hit["uri"]).unwrap();
    assert_eq!(same["raw"]["permanentid"], hit["raw"]["permanentid"]);
    assert_ne!(found["results"][1]["raw"]["permanentid"], hit["raw"]["permanentid"]);
}

/// A search of an index of few items runs on the request's own thread, of a larger one (`inline_search_items` sets
/// the bound) or for a page of over 100 results on the blocking pool: the same answer either way, and `/metrics`
/// counts where each ran.
#[tokio::test]
async fn a_search_answers_the_same_on_the_request_thread_and_on_the_blocking_pool() {
    let inline = TestServer::start().await;
    let pooled = TestServer::start_with(|config| config.inline_search_items = 1).await;
    let pages = [
        ("https://example.com/crane", "<title>Harbour crane</title><p>The crane lifts forty tons by its cables.</p>"),
        ("https://example.com/boat", "<title>Boats</title><p>A boat moored by the crane, far from the cables.</p>"),
    ];
    let mut answers = Vec::new();
    for s in [&inline, &pooled] {
        for (id, html) in pages {
            let body = json!({"data": html, "fileExtension": ".html"});
            assert_eq!(s.put_item(id, &body, "").await.status(), 202);
        }
        s.settle().await;
        let found = s.search(json!({"q": "crane cables", "facets": [{"field": "filetype", "facetId": "ft"}]})).await;
        assert_eq!(found["totalCount"], 2, "{found}");
        let shown = |r: &serde_json::Value| (r["uri"].clone(), r["excerpt"].clone(), r["excerptHighlights"].clone());
        answers.push((
            found["results"].as_array().unwrap().iter().map(shown).collect::<Vec<_>>(),
            found["facets"].clone(),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    let searches = |s: &TestServer| {
        let url = s.url("/metrics");
        let client = s.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let counted = searches(&inline).await;
    assert!(counted.contains("intake_searches_total{thread=\"request\"} 1"), "{counted}");
    assert!(!counted.contains("thread=\"blocking\""), "{counted}");
    // A page larger than the inline bound goes to the pool whatever the index.
    assert_eq!(
        inline.search(json!({"q": "crane", "numberOfResults": 101})).await["results"].as_array().unwrap().len(),
        2
    );
    let counted = searches(&inline).await;
    assert!(counted.contains("intake_searches_total{thread=\"blocking\"} 1"), "{counted}");
    let counted = searches(&pooled).await;
    assert!(counted.contains("intake_searches_total{thread=\"blocking\"} 1"), "{counted}");
    assert!(!counted.contains("thread=\"request\""), "{counted}");
}

#[tokio::test]
async fn fields_to_include_trims_raw_to_the_fields_asked() {
    let s = TestServer::start().await;
    let body = json!({"data": "the harbour crane", "author": "Ada", "category": "cranes", "rank": 3});
    assert_eq!(s.put_item("https://example.com/crane", &body, "").await.status(), 202);
    s.settle().await;

    let found = s.search(json!({"q": "crane", "fieldsToInclude": ["@author", "RANK", "uri", "absent"]})).await;
    assert_eq!(found["results"][0]["raw"], json!({"author": "Ada", "rank": 3, "uri": "https://example.com/crane"}));
    let everything = s.search(json!({"q": "crane", "fieldsToInclude": []})).await;
    assert_eq!(everything["results"][0]["raw"]["category"], "cranes", "an empty list asks for every field");
    let path = format!(
        "/rest/search/v2?organizationId={}&viewAllContent=true&q=crane&fieldsToInclude=category,%40author",
        s.org
    );
    let from_query: serde_json::Value =
        s.request(Method::GET, &s.url(&path)).send().await.unwrap().json().await.unwrap();
    assert_eq!(from_query["results"][0]["raw"], json!({"author": "Ada", "category": "cranes"}));

    let search = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
    let refused =
        s.request(Method::POST, &search).json(&json!({"fieldsToInclude": ["author", 3]})).send().await.unwrap();
    common::assert_error(refused, 412, "INVALID_PARAMETER", &["fieldsToInclude", "array of at most 1,000 field names"])
        .await;
}
