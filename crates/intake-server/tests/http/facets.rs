//! Facets as Headless and Atomic drive them (`../shared/spec/search-api.md` §2.2, §3.3): specific facets with
//! each state transition (select, exclude, show more, freeze), numeric and date ranges given and automatic,
//! hierarchical paths, legacy `groupBy`, counts trimmed to what the searcher may see, and the 412s.

use crate::common;

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

/// Eight items: authors, file types, tags, a declared LONG and DOUBLE, dates in 2025, and category paths.
async fn shelf() -> TestServer {
    let s = TestServer::start().await;
    let fields = json!([{"name": "rank", "type": "LONG"}, {"name": "price", "type": "DOUBLE"}]);
    let url = s.url(&format!("/rest/organizations/{}/indexes/fields/batch/create", s.org));
    assert_eq!(s.request(Method::POST, &url).json(&fields).send().await.unwrap().status(), 204);
    let items = [
        (
            "a1",
            json!({"author": "Ada", "fileExtension": ".html", "tags": ["linux", "boot"], "rank": 5, "price": 1.5, "date": "2025-01-10T00:00:00Z", "category": "Hardware;Disks;SSD"}),
        ),
        (
            "a2",
            json!({"author": "Ada", "fileExtension": ".txt", "tags": ["linux"], "rank": 15, "price": 2.5, "date": "2025-02-10T00:00:00Z", "category": "Hardware;Disks;HDD"}),
        ),
        (
            "g1",
            json!({"author": "Grace", "fileExtension": ".html", "tags": ["boot"], "rank": 25, "price": 3.5, "date": "2025-03-10T00:00:00Z", "category": "Hardware;Memory"}),
        ),
        (
            "g2",
            json!({"author": "Grace", "fileExtension": ".html", "tags": ["linux", "net"], "rank": 30, "price": 10.0, "date": "2025-04-10T00:00:00Z", "category": "Software;Kernel"}),
        ),
        (
            "g3",
            json!({"author": "Grace", "fileExtension": ".txt", "rank": 8, "date": "2025-05-10T00:00:00Z", "category": "Software"}),
        ),
        (
            "l1",
            json!({"author": "Linus", "fileExtension": ".html", "tags": ["linux", "kernel"], "rank": 12, "price": 4.0, "date": "2025-06-10T00:00:00Z", "category": "Software;Kernel;Drivers"}),
        ),
        (
            "k1",
            json!({"author": "Ken", "fileExtension": ".txt", "tags": ["unix"], "rank": 40, "price": 7.0, "date": "2025-07-10T00:00:00Z"}),
        ),
        ("x1", json!({"fileExtension": ".html", "date": "2025-08-10T00:00:00Z"})),
    ];
    for (id, mut body) in items {
        body["data"] = json!(format!("item {id} of the shelf"));
        body["permissions"] = json!([{"allowAnonymous": true}]);
        assert_eq!(s.put_item(&format!("file://f/{id}"), &body, "").await.status(), 202);
    }
    s.settle().await;
    s
}

/// `(value, count, state)` of a facet answer.
fn values(facet: &Value) -> Vec<(String, u64, String)> {
    facet["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{facet}"))
        .iter()
        .map(|v| {
            let value =
                v["value"].as_str().map(str::to_string).unwrap_or_else(|| format!("{}..{}", v["start"], v["end"]));
            (value, v["numberOfResults"].as_u64().unwrap(), v["state"].as_str().unwrap().to_string())
        })
        .collect()
}

fn idle(value: &str, count: u64) -> (String, u64, String) {
    (value.to_string(), count, "idle".to_string())
}

fn with_state(value: &str, count: u64, state: &str) -> (String, u64, String) {
    (value.to_string(), count, state.to_string())
}

fn uris(found: &Value) -> Vec<String> {
    let mut uris: Vec<String> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap().trim_start_matches("file://f/").to_string())
        .collect();
    uris.sort();
    uris
}

fn specific(id: &str, field: &str, extra: Value) -> Value {
    let mut facet = json!({"facetId": id, "field": field, "type": "specific", "numberOfValues": 8,
                           "sortCriteria": "automatic", "filterFacetCount": true, "injectionDepth": 1000,
                           "resultsMustMatch": "atLeastOneValue", "currentValues": [], "freezeCurrentValues": false,
                           "isFieldExpanded": false, "preventAutoSelect": false});
    for (key, value) in extra.as_object().unwrap() {
        facet[key] = value.clone();
    }
    facet
}

#[tokio::test]
async fn specific_facets_count_select_exclude_show_more_and_freeze() {
    let s = shelf().await;
    let both = |author_extra: Value| {
        json!({"numberOfResults": 20, "facets": [specific("author-facet", "author", author_extra),
                                                   specific("filetype-facet", "filetype", json!({}))]})
    };
    let found = s.search(both(json!({}))).await;
    assert_eq!(found["totalCount"], 8);
    let author = &found["facets"][0];
    assert_eq!((author["facetId"].as_str(), author["field"].as_str()), (Some("author-facet"), Some("author")));
    assert_eq!(author["moreValuesAvailable"], false);
    assert_eq!(values(author), [idle("Ada", 2), idle("Grace", 3), idle("Ken", 1), idle("Linus", 1)], "all fit: A→Z");
    assert_eq!(values(&found["facets"][1]), [idle("html", 5), idle("txt", 3)]);

    // Select: the results narrow, the facet still counts its other values, the other facet counts the results.
    let selected =
        json!({"currentValues": [{"value": "Grace", "state": "selected"}, {"value": "Ada", "state": "idle"}]});
    let found = s.search(both(selected)).await;
    assert_eq!(uris(&found), ["g1", "g2", "g3"]);
    assert_eq!(found["totalCount"], 3);
    let author = values(&found["facets"][0]);
    assert!(author.contains(&with_state("Grace", 3, "selected")) && author.contains(&idle("Ada", 2)), "{author:?}");
    assert_eq!(values(&found["facets"][1]), [idle("html", 2), idle("txt", 1)], "counted over Grace's items");

    // Two selected values are either (OR)…
    let two =
        json!({"currentValues": [{"value": "Grace", "state": "selected"}, {"value": "Ken", "state": "selected"}]});
    assert_eq!(uris(&s.search(both(two)).await), ["g1", "g2", "g3", "k1"]);
    // …an excluded one is NOT, and keeps its state and count.
    let excluded = json!({"currentValues": [{"value": "Grace", "state": "excluded"}]});
    let found = s.search(both(excluded)).await;
    assert_eq!(uris(&found), ["a1", "a2", "k1", "l1", "x1"]);
    assert!(values(&found["facets"][0]).contains(&with_state("Grace", 3, "excluded")));

    // Fewer values than there are: the most frequent first, and more available; "show more" expands (A→Z).
    let found = s.search(both(json!({"numberOfValues": 2}))).await;
    assert_eq!(values(&found["facets"][0]), [idle("Grace", 3), idle("Ada", 2)]);
    assert_eq!(found["facets"][0]["moreValuesAvailable"], true);
    let more = s.search(both(json!({"numberOfValues": 4, "isFieldExpanded": true}))).await;
    assert_eq!(values(&more["facets"][0]).len(), 4);
    assert_eq!(more["facets"][0]["moreValuesAvailable"], false);
    // A selected value past numberOfValues is still answered.
    let past = json!({"numberOfValues": 1, "currentValues": [{"value": "Ken", "state": "selected"}]});
    let found = s.search(both(past)).await;
    assert_eq!(values(&found["facets"][0]), [idle("Grace", 3), with_state("Ken", 1, "selected")]);

    // Frozen (after a click): the same values in the same order, whatever the counts.
    let frozen = json!({"freezeCurrentValues": true, "currentValues": [
        {"value": "Ken", "state": "selected"}, {"value": "Ada", "state": "idle"}, {"value": "Nobody", "state": "idle"}]});
    let found = s.search(both(frozen)).await;
    assert_eq!(values(&found["facets"][0]), [with_state("Ken", 1, "selected"), idle("Ada", 2), idle("Nobody", 0)]);
    assert_eq!(found["facets"][0]["moreValuesAvailable"], true, "Grace and Linus were left out");

    // Sort criteria, string and object forms; allValues makes selections AND.
    let sorted = |sort: Value| both(json!({"sortCriteria": sort}));
    let found = s.search(sorted(json!("occurrences"))).await;
    assert_eq!(values(&found["facets"][0])[0], idle("Grace", 3));
    let found = s.search(sorted(json!({"type": "alphanumeric", "order": "descending"}))).await;
    assert_eq!(values(&found["facets"][0])[0], idle("Linus", 1));
    let tags = |must: &str| {
        json!({"facets": [specific("tags", "tags", json!({"resultsMustMatch": must, "currentValues": [
            {"value": "linux", "state": "selected"}, {"value": "boot", "state": "selected"}]}))]})
    };
    assert_eq!(uris(&s.search(tags("allValues")).await), ["a1"]);
    assert_eq!(uris(&s.search(tags("atLeastOneValue")).await), ["a1", "a2", "g1", "g2", "l1"]);
}

#[tokio::test]
async fn numeric_ranges_given_and_automatic() {
    let s = shelf().await;
    let given = json!({"facets": [{"facetId": "rank", "field": "rank", "type": "numericalRange", "currentValues": [
        {"start": 0, "end": 10, "endInclusive": false, "state": "idle"},
        {"start": 10, "end": 20, "endInclusive": false, "state": "selected"},
        {"start": 20, "end": 40, "endInclusive": true, "state": "idle"}]}]});
    let found = s.search(given).await;
    assert_eq!(uris(&found), ["a2", "l1"], "12 and 15");
    let facet = &found["facets"][0];
    assert_eq!(facet["facetId"], "rank");
    assert_eq!(values(facet), [idle("0..10", 2), with_state("10..20", 2, "selected"), idle("20..40", 3)]);
    assert_eq!(facet["values"][2]["endInclusive"], true);

    let automatic = |algorithm: &str| {
        json!({"facets": [{"facetId": "rank", "field": "@rank", "type": "numericalRange", "numberOfValues": 4,
                           "generateAutomaticRanges": true, "rangeAlgorithm": algorithm, "currentValues": [],
                           "sortCriteria": "ascending"}]})
    };
    let even = s.search(automatic("even")).await;
    assert_eq!(
        values(&even["facets"][0]),
        [idle("0..10", 2), idle("10..20", 2), idle("20..30", 1), idle("30..40", 1), idle("40..50", 1)],
        "round bounds 10 apart covering 5 to 40"
    );
    assert_eq!(even["facets"][0]["domain"], json!({"start": 5, "end": 40}));
    let equal = s.search(automatic("equiprobable")).await;
    assert_eq!(values(&equal["facets"][0]), [idle("5..8", 1), idle("8..15", 2), idle("15..30", 2), idle("30..40", 2)]);
    assert_eq!(equal["facets"][0]["values"][3]["endInclusive"], true, "the last range holds the largest value");

    // A DOUBLE field, descending, and @size.
    let prices = json!({"facets": [{"field": "price", "type": "numericalRange", "sortCriteria": "descending",
        "currentValues": [{"start": 0, "end": 5, "state": "idle"}, {"start": 5, "end": 10.5, "state": "idle"}]}]});
    let found = s.search(prices).await;
    assert_eq!(found["facets"][0]["facetId"], "price", "facetId defaults to the field");
    assert_eq!(values(&found["facets"][0]), [idle("5..10.5", 2), idle("0..5", 4)]);
    let sizes = json!({"facets": [{"field": "size", "type": "numericalRange", "generateAutomaticRanges": true}]});
    let found = s.search(sizes).await;
    let total: u64 = values(&found["facets"][0]).iter().map(|v| v.1).sum();
    assert_eq!(total, 8, "every item has a size: {found}");
}

#[tokio::test]
async fn date_ranges_echo_their_strings_and_place_automatic_ones() {
    let s = shelf().await;
    let request = json!({"facets": [{"facetId": "when", "field": "date", "type": "dateRange", "currentValues": [
        {"start": "2025/01/01@00:00:00", "end": "2025/03/31@23:59:59", "endInclusive": true, "state": "selected"},
        {"start": "2025/04/01@00:00:00", "end": "2025/12/31@23:59:59", "endInclusive": true, "state": "idle"}]}]});
    let found = s.search(request).await;
    assert_eq!(uris(&found), ["a1", "a2", "g1"]);
    let facet = &found["facets"][0];
    assert_eq!(facet["values"][0]["start"], "2025/01/01@00:00:00", "echoed exactly");
    assert_eq!(facet["values"][1]["end"], "2025/12/31@23:59:59");
    assert_eq!(values(facet).iter().map(|v| v.1).collect::<Vec<_>>(), [3, 5]);

    let automatic = json!({"facets": [{"facetId": "when", "field": "date", "type": "dateRange", "numberOfValues": 4,
                                       "generateAutomaticRanges": true, "currentValues": []}]});
    let found = s.search(automatic).await;
    let facet = &found["facets"][0];
    let counts: Vec<u64> = values(facet).iter().map(|v| v.1).collect();
    assert_eq!(counts.iter().sum::<u64>(), 8, "{facet}");
    assert!(counts.len() >= 2, "{facet}");
    for value in facet["values"].as_array().unwrap() {
        let start = value["start"].as_str().unwrap();
        assert!(start.len() == 19 && &start[4..5] == "/" && &start[10..11] == "@", "{start}");
    }
    assert_eq!(facet["domain"], json!({"start": "2025/01/10@00:00:00", "end": "2025/08/10@00:00:00"}));
    // The strings Headless sends back select what they say.
    let first = &facet["values"][0];
    let select = json!({"facets": [{"facetId": "when", "field": "date", "type": "dateRange", "currentValues": [
        {"start": first["start"], "end": first["end"], "endInclusive": first["endInclusive"], "state": "selected"}]}]});
    assert_eq!(s.search(select).await["totalCount"], counts[0]);
}

#[tokio::test]
async fn hierarchical_facets_walk_paths() {
    let s = shelf().await;
    let facet = |current: Value, base: Value| {
        json!({"facets": [{"facetId": "cat", "field": "category", "type": "hierarchical", "delimitingCharacter": ";",
                           "numberOfValues": 5, "sortCriteria": "occurrences", "basePath": base,
                           "filterByBasePath": true, "currentValues": current}]})
    };
    let found = s.search(facet(json!([]), json!([]))).await;
    assert_eq!(values(&found["facets"][0]), [idle("Hardware", 3), idle("Software", 3)]);
    assert_eq!(found["facets"][0]["values"][0]["path"], json!(["Hardware"]));
    assert_eq!(found["facets"][0]["values"][0]["isLeafValue"], false);

    let selected = json!([{"value": "Hardware", "state": "selected", "children": [], "retrieveChildren": true, "retrieveCount": 5}]);
    let found = s.search(facet(selected, json!([]))).await;
    assert_eq!(uris(&found), ["a1", "a2", "g1"]);
    let top = &found["facets"][0]["values"][0];
    assert_eq!(
        (top["value"].as_str(), top["state"].as_str(), top["numberOfResults"].as_u64()),
        (Some("Hardware"), Some("selected"), Some(3))
    );
    assert_eq!(
        values(top.get("children").map(|c| json!({"values": c})).as_ref().unwrap()),
        [idle("Disks", 2), idle("Memory", 1)]
    );
    assert_eq!(top["children"][0]["path"], json!(["Hardware", "Disks"]));
    assert_eq!(top["children"][1]["isLeafValue"], true);

    let deeper = json!([{"value": "Hardware", "state": "idle", "children": [{"value": "Disks", "state": "selected", "children": []}]}]);
    let found = s.search(facet(deeper, json!([]))).await;
    assert_eq!(uris(&found), ["a1", "a2"]);
    let disks = &found["facets"][0]["values"][0]["children"][0];
    assert_eq!((disks["value"].as_str(), disks["state"].as_str()), (Some("Disks"), Some("selected")));
    assert_eq!(values(&json!({"values": disks["children"]})), [idle("HDD", 1), idle("SSD", 1)]);

    let based = s.search(facet(json!([]), json!(["Software"]))).await;
    assert_eq!(uris(&based), ["g2", "g3", "l1"], "filterByBasePath");
    assert_eq!(values(&based["facets"][0]), [idle("Kernel", 2)]);
    assert_eq!(based["facets"][0]["values"][0]["path"], json!(["Software", "Kernel"]));
}

#[tokio::test]
async fn legacy_group_by_counts_values_of_the_results() {
    let s = shelf().await;
    let found = s
        .search(json!({"q": "shelf", "groupBy": [
            {"field": "@author", "maximumNumberOfValues": 2, "sortCriteria": "occurrences", "injectionDepth": 1000},
            {"field": "@author", "allowedValues": ["l*", "K?n"], "sortCriteria": "AlphaDescending"},
            {"field": "@rank", "rangeValues": [{"from": 0, "to": 10, "label": "low"}, {"from": 10, "to": 50, "label": "high", "endInclusive": true}]},
        ]}))
        .await;
    let groups = found["groupByResults"].as_array().unwrap();
    let pairs = |group: &Value| -> Vec<(String, u64)> {
        group["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["value"].as_str().unwrap().to_string(), v["numberOfResults"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(groups[0]["field"], "@author");
    assert_eq!(pairs(&groups[0]), [("Grace".into(), 3), ("Ada".into(), 2)]);
    assert_eq!(pairs(&groups[1]), [("Linus".into(), 1), ("Ken".into(), 1)]);
    assert_eq!(pairs(&groups[2]), [("low".into(), 2), ("high".into(), 5)]);
    assert_eq!(groups[0]["values"][0]["valueType"], "Standard");
}

#[tokio::test]
async fn facet_counts_cover_only_what_the_searcher_may_see() {
    let s = shelf().await;
    // A SECURED source (the test's own is SHARED: its items are everyone's) with an item for one user only.
    let sources = s.url(&format!("/rest/organizations/{}/sources", s.org));
    let created = s.request(Method::POST, &sources).json(&json!({"name": "secured", "sourceVisibility": "SECURED"}));
    let created: Value = created.send().await.unwrap().json().await.unwrap();
    let hidden = json!({"data": "hidden", "author": "Grace", "permissions": [{"allowAnonymous": false,
        "allowedPermissions": [{"identity": "boss@example.com", "identityType": "User"}]}]});
    let url = s.url(&format!(
        "/push/v1/organizations/{}/sources/{}/documents?documentId=file://f/hidden",
        s.org,
        created["id"].as_str().unwrap()
    ));
    assert_eq!(s.request(Method::PUT, &url).json(&hidden).send().await.unwrap().status(), 202);
    s.settle().await;
    let request = json!({"facets": [specific("author", "author", json!({}))], "groupBy": [{"field": "@author"}]});
    let everything = s.search(request.clone()).await;
    assert!(values(&everything["facets"][0]).contains(&idle("Grace", 4)), "viewAllContent sees the hidden item");
    let mut anonymous = request;
    anonymous["viewAllContent"] = json!(false);
    let found = s.search(anonymous).await;
    assert_eq!(found["totalCount"], 8);
    assert!(values(&found["facets"][0]).contains(&idle("Grace", 3)), "{found}");
    assert_eq!(found["groupByResults"][0]["values"][0]["numberOfResults"], 3);
}

#[tokio::test]
async fn bad_facets_are_refused_naming_the_key() {
    let s = shelf().await;
    for (facets, words) in [
        (json!({"field": "author", "type": "pie"}), vec!["'facets[0].type'", "'pie'", "specific, numericalRange"]),
        (json!({"field": "author", "type": "numericalRange"}), vec!["'facets[0].field'", "'author'", "LONG"]),
        (json!({"field": "rank", "type": "dateRange"}), vec!["'facets[0].field'", "declared DATE"]),
        (json!({"field": "author", "numberOfValues": 0}), vec!["'facets[0].numberOfValues'", "from 1 to 1000"]),
        (json!({"field": "author", "facetId": "a b"}), vec!["'facets[0].facetId'", "60 letters"]),
        (json!({"field": "a-b"}), vec!["'facets[0].field'", "field name"]),
        (
            json!({"field": "author", "currentValues": [{"value": "Ada", "state": "chosen"}]}),
            vec!["'facets[0].currentValues[0].state'", "'chosen'"],
        ),
        (
            json!({"field": "rank", "type": "numericalRange", "currentValues": [{"start": "x", "end": 3}]}),
            vec!["'facets[0].currentValues[0].start'", "a number"],
        ),
        (json!({"field": "author", "sortCriteria": "random"}), vec!["'facets[0].sortCriteria'", "alphanumeric"]),
        (json!("author"), vec!["'facets[0]'", "an object"]),
    ] {
        let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
        let response = s.request(Method::POST, &url).json(&json!({"facets": [facets]})).send().await.unwrap();
        assert_error(response, 412, "INVALID_PARAMETER", &words).await;
    }
    let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
    let missing = s.request(Method::POST, &url).json(&json!({"facets": [{"type": "specific"}]})).send().await.unwrap();
    assert_error(missing, 412, "MISSING_PARAMETER", &["'facets[0].field'"]).await;
    let computed =
        json!({"groupBy": [{"field": "@author", "computedFields": [{"field": "@rank", "operation": "sum"}]}]});
    let response = s.request(Method::POST, &url).json(&computed).send().await.unwrap();
    assert_error(response, 412, "INVALID_PARAMETER", &["'groupBy[0].computedFields'", "not supported"]).await;
    let many = json!({"facets": vec![json!({"field": "author"}); 101]});
    let response = s.request(Method::POST, &url).json(&many).send().await.unwrap();
    assert_error(response, 412, "INVALID_PARAMETER", &["'facets'", "101 entries", "at most 100"]).await;
}

#[tokio::test]
async fn facet_search_finds_values_within_the_search_context() {
    let s = shelf().await;
    let url = s.url(&format!("/rest/search/v2/facet?organizationId={}", s.org));
    let search = |body: Value| {
        let request = s.request(Method::POST, &url).json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let answer: Value = response.json().await.unwrap();
            let values: Vec<(String, String, u64)> = answer["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    let display = v["displayValue"].as_str().unwrap().to_string();
                    (display, v["rawValue"].as_str().unwrap().to_string(), v["count"].as_u64().unwrap())
                })
                .collect();
            (values, answer)
        }
    };
    let pair = |display: &str, raw: &str, count| (display.to_string(), raw.to_string(), count);
    let (values, answer) = search(json!({"field": "author", "query": "*A*", "numberOfValues": 10, "type": "specific",
                                         "ignoreValues": [], "captions": {"Ada": "Ada L."}, "searchContext": {"q": ""}})).await;
    assert_eq!(values, [pair("Grace", "Grace", 3), pair("Ada L.", "Ada", 2)]);
    assert_eq!(answer["moreValuesAvailable"], false);
    let (values, _) = search(json!({"field": "author", "query": "*a*", "ignoreValues": ["Grace"]})).await;
    assert_eq!(values, [pair("Ada", "Ada", 2)]);
    let (values, answer) = search(json!({"field": "author", "query": "*", "numberOfValues": 1})).await;
    assert_eq!((values.len(), answer["moreValuesAvailable"].as_bool()), (1, Some(true)));
    // Within the search: its expression and its other facets narrow the counts; its facet on the same field does not.
    let context = json!({"aq": "@filetype==txt", "facets": [specific("author", "author", json!({"currentValues": [
        {"value": "Grace", "state": "selected"}]}))]});
    let (values, _) = search(json!({"field": "author", "query": "*", "searchContext": context})).await;
    assert_eq!(values, [pair("Ada", "Ada", 1), pair("Grace", "Grace", 1), pair("Ken", "Ken", 1)]);
    let context = json!({"facets": [specific("filetype", "filetype", json!({"currentValues": [
        {"value": "txt", "state": "selected"}]}))]});
    let (values, _) =
        search(json!({"field": "author", "query": "*", "searchContext": context, "sortCriteria": "alphanumeric"}))
            .await;
    assert_eq!(values, [pair("Ada", "Ada", 1), pair("Grace", "Grace", 1), pair("Ken", "Ken", 1)]);

    // Hierarchical: the last part matches, with the path above it.
    let (values, answer) = search(json!({"field": "category", "type": "hierarchical", "query": "*k*",
                                         "delimitingCharacter": ";", "basePath": [], "ignorePaths": []}))
    .await;
    assert_eq!(values, [pair("Disks", "Disks", 2), pair("Kernel", "Kernel", 2)]);
    assert_eq!(answer["values"][0]["path"], json!(["Hardware"]));
    let (values, _) =
        search(json!({"field": "category", "type": "hierarchical", "query": "*k*", "basePath": ["Software"],
                                    "ignorePaths": [["Hardware", "Disks"]]}))
        .await;
    assert_eq!(values, [pair("Kernel", "Kernel", 2)]);

    let bad = s.request(Method::POST, &url).json(&json!({"query": "*"})).send().await.unwrap();
    assert_error(bad, 412, "MISSING_PARAMETER", &["'facet search.field'"]).await;
    let bad = s.request(Method::POST, &url).json(&json!({"field": "author", "type": "pie"})).send().await.unwrap();
    assert_error(bad, 412, "INVALID_PARAMETER", &["'facet search.type'", "'pie'"]).await;
}

#[tokio::test]
async fn facets_in_a_get_query_string_are_json() {
    let s = shelf().await;
    let facets = common::form(r#"[{"facetId":"a","field":"author","numberOfValues":1}]"#);
    let url = s.url(&format!("/rest/search/v2?organizationId={}&viewAllContent=true&facets={facets}", s.org));
    let found: Value = s.request(Method::GET, &url).send().await.unwrap().json().await.unwrap();
    assert_eq!(values(&found["facets"][0]), [idle("Grace", 3)], "{found}");
    let url = s.url(&format!("/rest/search/v2?organizationId={}&facets=%5Bnot", s.org));
    let bad = s.request(Method::GET, &url).send().await.unwrap();
    assert_error(bad, 412, "INVALID_PARAMETER", &["'facets'", "it must be JSON"]).await;
}
