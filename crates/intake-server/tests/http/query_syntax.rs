//! Coveo's query syntax and request expressions over HTTP: `q` with and without `enableQuerySyntax`, phrases,
//! AND/OR/NOT, NEAR, wildcards, field operators with ranges, lists, relative dates and presence, `cq`/`dq`
//! and the final expression `((q aq) OR dq) cq`, a search token's filter, `sortCriteria`, and the 400s for
//! what Intake does not support (`../shared/spec/search-api.md` §2, §9).

use crate::common;

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

/// Four items with words, declared fields and dates around the test clock's now (2026-01-01T00:00:00Z).
async fn library() -> TestServer {
    let s = TestServer::start().await;
    let fields = json!([
        {"name": "rank", "type": "LONG"},
        {"name": "price", "type": "DOUBLE"},
        {"name": "published", "type": "DATE"},
    ]);
    let url = s.url(&format!("/rest/organizations/{}/indexes/fields/batch/create", s.org));
    assert_eq!(s.request(Method::POST, &url).json(&fields).send().await.unwrap().status(), 204);
    let items = [
        (
            "kernel",
            json!({"title": "Kernel module loading", "author": "Ada Lovelace", "rank": 10, "price": 9.5,
                   "published": "2025-12-25", "tags": ["linux", "boot"], "date": "2025-12-31T12:00:00Z",
                   "data": "The kernel loads a module at boot. Modules extend the kernel."}),
        ),
        (
            "network",
            json!({"title": "Network drivers", "author": "Grace Hopper", "rank": 20, "price": 19.99,
                   "published": "2025-06-01", "tags": ["linux", "net"], "date": "2025-06-01T00:00:00Z",
                   "data": "A driver for the network card. The kernel is far from this sentence, and only at \
                            its very end does it name a module."}),
        ),
        (
            "compiler",
            json!({"title": "Compiler passes", "author": "Grace Hopper", "rank": 30, "published": "2024-01-15",
                   "date": "2024-01-15T00:00:00Z", "data": "Compilers transform code. The compiler computes."}),
        ),
        (
            "cooking",
            json!({"title": "Cooking pasta", "date": "2025-12-30T08:00:00Z",
                   "data": "Boil water, add salt, cook the pasta."}),
        ),
    ];
    for (name, body) in items {
        assert_eq!(s.put_item(&format!("file://q/{name}"), &body, "").await.status(), 202);
    }
    s.settle().await;
    s
}

/// The names of the items a search finds, in the answer's order; asserts the count agrees.
async fn names(s: &TestServer, mut body: Value) -> Vec<String> {
    body["numberOfResults"] = json!(100);
    let found = s.search(body.clone()).await;
    let results = found["results"].as_array().unwrap_or_else(|| panic!("{body}: {found}"));
    let first = body["firstResult"].as_u64().unwrap_or(0) as usize;
    assert_eq!(found["totalCount"], first + results.len(), "{body}");
    results.iter().map(|r| r["uri"].as_str().unwrap().trim_start_matches("file://q/").to_string()).collect()
}

async fn sorted_names(s: &TestServer, body: Value) -> Vec<String> {
    let mut found = names(s, body).await;
    found.sort();
    found
}

async fn search_error(s: &TestServer, body: Value) -> reqwest::Response {
    let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
    s.request(Method::POST, &url).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn q_speaks_the_query_syntax_unless_it_is_disabled() {
    let s = library().await;
    for (q, expected) in [
        ("kernel OR cooking", vec!["cooking", "kernel", "network"]),
        ("\"kernel loads\"", vec!["kernel"]),
        ("kernel -network", vec!["kernel"]),
        ("kernel NOT network", vec!["kernel"]),
        ("(cooking OR compiler) pasta", vec!["cooking"]),
        ("(pasta, compilers)", vec!["compiler", "cooking"]),
        ("kernel NEAR:3 module", vec!["kernel"]),
        ("module near:3 kernel", vec!["kernel"]),
        ("kernel NEAR module", vec!["kernel"]),
        ("kernel NEAR:40 module", vec!["kernel", "network"]),
        ("kernel @rank>=20", vec!["network"]),
        ("kernel or cooking", vec![]),
    ] {
        assert_eq!(sorted_names(&s, json!({"q": q})).await, expected, "{q}");
    }
    let lower = json!({"q": "kernel or cooking", "lowercaseOperators": true});
    assert_eq!(sorted_names(&s, lower).await, ["cooking", "kernel", "network"]);
    // Headless sends enableQuerySyntax false: the same text is only words, operators included.
    let plain = json!({"q": "kernel OR cooking", "enableQuerySyntax": false});
    assert_eq!(sorted_names(&s, plain).await, Vec::<String>::new(), "no item has the word 'or' with both");
    let plain = json!({"q": "+kernel -network", "enableQuerySyntax": false});
    assert_eq!(sorted_names(&s, plain).await, ["network"], "'-network' is the word network");
}

#[tokio::test]
async fn wildcards_expand_only_when_asked_and_within_a_bound() {
    let s = library().await;
    assert_eq!(sorted_names(&s, json!({"q": "comp*"})).await, Vec::<String>::new(), "'*' is not a wildcard by default");
    assert_eq!(sorted_names(&s, json!({"q": "comp*", "wildcards": true})).await, ["compiler"]);
    assert_eq!(sorted_names(&s, json!({"q": "p?sta", "questionMark": true})).await, ["cooking"]);
    assert_eq!(sorted_names(&s, json!({"q": "\"comp*\"", "wildcards": true})).await, Vec::<String>::new());
    let words: Vec<String> = (0..1100).map(|i| format!("zeta{i:04}")).collect();
    assert_eq!(s.put_item("file://q/many", &json!({"data": words.join(" ")}), "").await.status(), 202);
    s.settle().await;
    assert_eq!(sorted_names(&s, json!({"q": "zeta00*", "wildcards": true})).await, ["many"]);
    let wide = search_error(&s, json!({"q": "zeta*", "wildcards": true})).await;
    assert_error(wide, 400, "INVALID_QUERY_SYNTAX", &["'q'", "zeta*", "more than 1024", "more specific"]).await;
}

#[tokio::test]
async fn field_operators_ranges_lists_dates_and_presence() {
    let s = library().await;
    for (aq, expected) in [
        ("@author==(\"Ada Lovelace\", nobody)", vec!["kernel"]),
        ("@author==\"ada lovelace\"", vec!["kernel"]),
        ("@author<>\"Grace Hopper\"", vec!["cooking", "kernel"]),
        ("@rank>=20", vec!["compiler", "network"]),
        ("@rank==10..20", vec!["kernel", "network"]),
        ("@price<10", vec!["kernel"]),
        ("@price==9..20", vec!["kernel", "network"]),
        ("@published>=2025/01/01", vec!["kernel", "network"]),
        ("@published==2025/06/01..2025/12/31", vec!["kernel", "network"]),
        ("@date>=now-7d", vec!["cooking", "kernel"]),
        ("@date==yesterday", vec!["kernel"]),
        ("@date<today-1y", vec!["compiler"]),
        ("@date==2025/06/01@00:00:00..2025/12/30", vec!["cooking", "network"]),
        ("@price", vec!["kernel", "network"]),
        ("@tags", vec!["kernel", "network"]),
        ("NOT @author", vec!["cooking"]),
        ("@title", vec!["compiler", "cooking", "kernel", "network"]),
        ("@author*=\"grace*\"", vec!["compiler", "network"]),
        ("@title*=\"*PASTA\"", vec!["cooking"]),
        ("@tags*=\"n?t\"", vec!["network"]),
        ("@tags==linux @rank<15", vec!["kernel"]),
        // Coveo's older `name: value` form: `@name=value`.
        ("title: kernel", vec!["kernel"]),
        ("author:\"grace hopper\" NOT title:compiler", vec!["network"]),
        ("tags: (net, boot)", vec!["kernel", "network"]),
    ] {
        assert_eq!(sorted_names(&s, json!({"aq": aq})).await, expected, "{aq}");
    }
    assert_eq!(sorted_names(&s, json!({"q": "title:network"})).await, ["network"]);
    let plain = json!({"q": "title:network", "enableQuerySyntax": false});
    assert_eq!(
        sorted_names(&s, plain).await,
        Vec::<String>::new(),
        "without the syntax: the words title and network, which no item has both of"
    );
}

#[tokio::test]
async fn the_final_expression_is_q_aq_or_dq_and_cq() {
    let s = library().await;
    assert_eq!(sorted_names(&s, json!({"q": "kernel", "cq": "@rank==10"})).await, ["kernel"]);
    assert_eq!(sorted_names(&s, json!({"q": "cooking", "dq": "@rank==30"})).await, ["compiler", "cooking"]);
    let all = json!({"q": "cooking", "dq": "@rank==30", "cq": "@author"});
    assert_eq!(sorted_names(&s, all).await, ["compiler"], "cq applies to the dq side too");
    let with_aq = json!({"q": "kernel", "aq": "@rank>10", "dq": "@title==\"Cooking pasta\""});
    assert_eq!(sorted_names(&s, with_aq).await, ["cooking", "network"]);
    assert_eq!(sorted_names(&s, json!({"dq": "@rank==30", "lq": "anything at all"})).await.len(), 4);
    // The query's words rank; cq and aq only filter.
    let ranked = s.search(json!({"q": "kernel", "cq": "@tags==linux"})).await;
    assert_eq!(ranked["results"][0]["uri"], "file://q/kernel", "{ranked}");

    let bad = search_error(&s, json!({"cq": "@rank>"})).await;
    assert_error(bad, 400, "INVALID_QUERY_SYNTAX", &["'cq'", "at character 6"]).await;
    let bad = search_error(&s, json!({"dq": "(a"})).await;
    assert_error(bad, 400, "INVALID_QUERY_SYNTAX", &["'dq'", "')' was expected"]).await;
}

#[tokio::test]
async fn a_search_tokens_filter_holds_against_dq() {
    let s = library().await;
    let url = s.url(&format!("/rest/search/v2/token?organizationId={}", s.org));
    let claims = json!({"userIds": [{"name": "ann@example.com", "provider": "Email Security Provider", "type": "User"}],
                        "filter": "@author==\"Ada Lovelace\""});
    let response = s.request(Method::POST, &url).json(&claims).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let token = response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let search = |body: Value| {
        let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
        let request = s.client.post(url).bearer_auth(&token).json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for body in [json!({}), json!({"dq": "@rank==30"}), json!({"q": "compiler", "dq": "@title"})] {
        let found = search(body.clone()).await;
        let uris: Vec<&str> = found["results"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
        assert_eq!(uris, ["file://q/kernel"], "{body}: {found}");
        assert_eq!(found["totalCount"], 1, "{body}");
    }
}

#[tokio::test]
async fn sort_criteria_fields_lists_and_missing_values_last() {
    let s = library().await;
    for (sort, expected) in [
        ("@rank descending", vec!["compiler", "network", "kernel", "cooking"]),
        ("@rank ascending", vec!["kernel", "network", "compiler", "cooking"]),
        ("@author ascending, @rank descending", vec!["kernel", "compiler", "network", "cooking"]),
        ("@price descending, @title descending", vec!["network", "kernel", "cooking", "compiler"]),
        ("@title ascending", vec!["compiler", "cooking", "kernel", "network"]),
        ("@published descending", vec!["kernel", "network", "compiler", "cooking"]),
        ("date ascending", vec!["compiler", "network", "cooking", "kernel"]),
        ("DateDescending", vec!["kernel", "cooking", "network", "compiler"]),
        ("@size descending, @title descending", vec!["network", "kernel", "compiler", "cooking"]),
    ] {
        assert_eq!(names(&s, json!({"sortCriteria": sort})).await, expected, "{sort}");
    }
    let page = names(&s, json!({"sortCriteria": "@rank ascending", "firstResult": 1})).await;
    assert_eq!(page, ["network", "compiler", "cooking"], "paging over a field sort");
    assert_eq!(sorted_names(&s, json!({"sortCriteria": "nosort"})).await.len(), 4);
    let relevancy_then_date = names(&s, json!({"q": "kernel", "sortCriteria": "relevancy, date ascending"})).await;
    assert_eq!(relevancy_then_date[0], "kernel");

    for bad in ["@rank upward", "size", "nosort, relevancy", "relevancy descending"] {
        let response = search_error(&s, json!({"sortCriteria": bad})).await;
        assert_error(response, 412, "INVALID_PARAMETER", &["'sortCriteria'", bad, "@field ascending"]).await;
    }
}

#[tokio::test]
async fn unsupported_syntax_is_refused_with_its_position_and_what_to_write() {
    let s = library().await;
    for (body, words) in [
        (json!({"q": "linux +kernel"}), vec!["'q'", "exact term", "at character 6"]),
        (json!({"aq": "@author~=ada"}), vec!["'aq'", "fuzzy operator ~=", "*="]),
        (json!({"aq": "@author/=\"a.*\""}), vec!["'aq'", "regular expression"]),
        (json!({"cq": "$qre(expression: @rank==10, modifier: 100)"}), vec!["'cq'", "query extensions"]),
        (json!({"q": "[[@parent] @rank==1]"}), vec!["'q'", "nested queries"]),
        (json!({"q": "(a b) NEAR:2 c"}), vec!["'q'", "NEAR joins two words"]),
        (json!({"aq": "@rank*=\"1*\""}), vec!["'aq'", "*= on @rank", "ranges"]),
        (json!({"aq": "@date==soon"}), vec!["'aq'", "'soon'", "not a date", "now-7d"]),
        (json!({"aq": "@rank==1..x"}), vec!["'aq'", "'x'", "not an integer"]),
    ] {
        let response = search_error(&s, body.clone()).await;
        assert_error(response, 400, "INVALID_QUERY_SYNTAX", &words).await;
    }
    // The same characters as plain words are fine.
    let plain = json!({"q": "linux +kernel", "enableQuerySyntax": false});
    assert_eq!(sorted_names(&s, plain).await, Vec::<String>::new());
    // A malformed q (an unclosed quote) is read as words rather than refused.
    assert_eq!(sorted_names(&s, json!({"q": "\"kernel loads"})).await, ["kernel"]);
}

#[tokio::test]
async fn words_close_together_rank_first_and_excerpts_take_their_length() {
    let s = TestServer::start().await;
    let filler = "the report covers many other topics in detail ".repeat(6);
    let far = format!("Kernel notes. {filler} Then a module appears. {filler} Kernel again and module again.");
    // The page with the words together is the longer one: by term frequencies alone it would come second.
    let near = format!("Notes. {filler} The kernel module loader explains the kernel module. {filler} {filler}");
    for (id, text) in [("file://p/far", far), ("file://p/near", near)] {
        assert_eq!(s.put_item(id, &json!({"data": text, "title": "Notes"}), "").await.status(), 202);
    }
    s.settle().await;
    let found = s.search(json!({"q": "kernel module"})).await;
    let uris: Vec<&str> = found["results"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["file://p/near", "file://p/far"], "the words together first: {found}");

    let short = s.search(json!({"q": "kernel module", "excerptLength": 40})).await;
    for result in short["results"].as_array().unwrap() {
        let excerpt = result["excerpt"].as_str().unwrap();
        assert!(excerpt.chars().count() <= 40 && !excerpt.is_empty(), "{excerpt}");
    }
    let none = s.search(json!({"excerptLength": 10})).await;
    assert_eq!(none["results"][0]["excerpt"].as_str().unwrap().chars().count(), 10, "without q: the text's start");
    let url = s.url(&format!("/rest/search/v2?organizationId={}", s.org));
    let bad = s.request(Method::POST, &url).json(&json!({"excerptLength": 5000})).send().await.unwrap();
    assert_error(bad, 412, "INVALID_PARAMETER", &["'excerptLength'", "0 to 2000"]).await;
}

/// The excerpt is the passage where the query's words meet, deep in a long page, and its highlights mark the words
/// that index to the query's terms (other forms included: memory for "memories", allocator for "allocation"), not
/// words that only begin alike (memorandum).
#[tokio::test]
async fn excerpts_are_where_the_words_meet_and_highlight_them() {
    let s = TestServer::start().await;
    let filler = "the report covers many other topics in detail. ".repeat(200);
    let text = format!(
        "Memory first. {filler} Memorandum: a Memorandum on runways. {filler} \
         Here the Memory allocator runs allocations of memory, says a memorandum. {filler}"
    );
    assert_eq!(s.put_item("file://p/long", &json!({"data": text, "title": "Notes"}), "").await.status(), 202);
    s.settle().await;
    let found = s.search(json!({"q": "memories allocation"})).await;
    let result = &found["results"][0];
    let excerpt = result["excerpt"].as_str().unwrap();
    assert!(
        excerpt.starts_with("Here the Memory allocator runs allocations of memory, says a memorandum."),
        "{excerpt}"
    );
    assert!(excerpt.chars().count() <= 200, "{excerpt}");
    let marked: Vec<String> = result["excerptHighlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let (offset, length) = (h["offset"].as_u64().unwrap() as usize, h["length"].as_u64().unwrap() as usize);
            excerpt.chars().skip(offset).take(length).collect()
        })
        .collect();
    assert_eq!(marked, ["Memory", "allocator", "allocations", "memory"], "{result}");
}

#[tokio::test]
async fn a_wrong_expression_is_refused_before_anything_is_indexed() {
    let s = TestServer::start().await;
    let bad = search_error(&s, json!({"q": "@title~=kernel"})).await;
    assert_error(bad, 400, "INVALID_QUERY_SYNTAX", &["'q'", "~=", "at character 6"]).await;
    let bad = search_error(&s, json!({"aq": "(a"})).await;
    assert_error(bad, 400, "INVALID_QUERY_SYNTAX", &["'aq'", "')' was expected"]).await;
    assert_eq!(s.search(json!({"q": "(a"})).await["totalCount"], 0, "a malformed q is read as words");
}

#[tokio::test]
async fn dates_without_a_zone_are_read_in_the_searchs_time_zone() {
    // The clock stands at 2026-01-01T00:00:00Z: December 31, 19:00 in New York.
    let s = TestServer::start().await;
    for (id, date) in [("a", "2025-12-31T23:00:00Z"), ("b", "2026-01-01T03:00:00Z"), ("c", "2026-01-01T10:00:00Z")] {
        let body = json!({"title": id, "data": "dated", "date": date});
        assert_eq!(s.put_item(&format!("file://tz/{id}"), &body, "").await.status(), 202);
    }
    s.settle().await;
    let names = |zone: Option<&str>, aq: &str| {
        let mut body = json!({"aq": aq, "sortCriteria": "date ascending"});
        if let Some(zone) = zone {
            body["timezone"] = json!(zone);
        }
        let s = &s;
        async move {
            let found = s.search(body).await;
            found["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(None, "@date=today").await, ["b", "c"]);
    assert_eq!(names(Some("UTC"), "@date=today").await, ["b", "c"]);
    assert_eq!(names(Some("America/New_York"), "@date=today").await, ["a", "b"]);
    assert_eq!(names(Some("America/New_York"), "@date=yesterday").await, Vec::<String>::new());
    assert_eq!(names(None, "@date>=2026/01/01@00:00:00").await, ["b", "c"]);
    assert_eq!(names(Some("America/New_York"), "@date>=2026/01/01@00:00:00").await, ["c"]);
    assert_eq!(names(Some("America/New_York"), "@date>=2026-01-01T00:00:00Z").await, ["b", "c"], "a Z says UTC");
    assert_eq!(names(Some("America/New_York"), "@date=2025/12/31").await, ["a", "b"], "a whole New York day");

    // A date facet's given ranges are read, and its values written, in the zone.
    let facet = |zone: &str| {
        json!({"timezone": zone, "numberOfResults": 0, "facets": [{"facetId": "d", "field": "date", "type": "dateRange",
            "currentValues": [{"start": "2025/12/31@00:00:00", "end": "2026/01/01@00:00:00", "endInclusive": false, "state": "idle"}]},
            {"facetId": "auto", "field": "date", "type": "dateRange", "generateAutomaticRanges": true}]})
    };
    let utc = s.search(facet("UTC")).await;
    assert_eq!(utc["facets"][0]["values"][0]["numberOfResults"], 1, "{utc}");
    let new_york = s.search(facet("America/New_York")).await;
    assert_eq!(new_york["facets"][0]["values"][0]["numberOfResults"], 2, "{new_york}");
    assert_eq!(new_york["facets"][0]["values"][0]["start"], "2025/12/31@00:00:00", "echoed as written");
    assert_eq!(new_york["facets"][1]["domain"]["start"], "2025/12/31@18:00:00", "{new_york}");
    assert_eq!(utc["facets"][1]["domain"]["start"], "2025/12/31@23:00:00", "{utc}");

    let bad = search_error(&s, json!({"q": "dated", "timezone": "Mars/Olympus"})).await;
    assert_error(bad, 412, "INVALID_PARAMETER", &["'timezone'", "Mars/Olympus", "IANA"]).await;
}
