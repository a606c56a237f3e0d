//! The `intake` command itself: `explain`, and the generated error page staying equal to the catalog.

use std::process::Command;

use crate::common;

use common::{bootstrap, spawn_server};

fn intake(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_intake")).args(args).output().unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn docs_errors_md_is_the_catalog() {
    let (ok, generated, _) = intake(&["explain", "--markdown"]);
    assert!(ok);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md")).unwrap();
    assert!(
        committed == generated,
        "docs/errors.md is out of date: run `cargo run -p intake -- explain --markdown > docs/errors.md`"
    );
    for entry in intake_model::CATALOG {
        assert!(committed.contains(&format!("## {}", entry.name)), "{} missing", entry.name);
    }
}

#[test]
fn explain_prints_a_row_in_any_case() {
    let (ok, out, _) = intake(&["explain", "source_does_not_exist"]);
    assert!(ok);
    assert!(out.starts_with("SOURCE_DOES_NOT_EXIST (HTTP 412)"), "{out}");
    assert!(out.contains("Resolution:"), "{out}");
    let (ok, _, err) = intake(&["explain", "NO_SUCH_CODE"]);
    assert!(!ok);
    assert!(err.contains("'NO_SUCH_CODE' is not an Intake error code"), "{err}");
    let (ok, list, _) = intake(&["explain"]);
    assert!(ok && list.lines().count() == intake_model::CATALOG.len());
}

/// PUTs a JSON body with curl, as a shell user would; returns the HTTP status.
fn curl_put(url: &str, key: &str, body: &str) -> String {
    let output = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", url, "-H", "Content-Type: application/json"])
        .args(["-H", &format!("Authorization: Bearer {key}"), "-d", body])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `intake serve` prints the key once, and `intake search` finds a pushed item through bootstrap.json.
#[test]
fn serve_then_search_with_no_flags_but_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let served = spawn_server(dir.path());
    let (port, banner) = (served.port, &served.banner);
    let bootstrap = bootstrap(dir.path());
    let key = bootstrap["apiKey"].as_str().unwrap();
    assert!(banner.contains(&format!("Master key:     {key}   (shown once")), "{banner}");

    let url = format!(
        "http://127.0.0.1:{port}/push/v1/organizations/default/sources/{}/documents?documentId=file%3A%2F%2Fcli.html",
        bootstrap["sourceId"].as_str().unwrap()
    );
    assert_eq!(curl_put(&url, key, r#"{"title":"CLI page","data":"<p>walrus sighting</p>"}"#), "202");
    let data_dir = dir.path().to_str().unwrap();
    let mut found = String::new();
    for _ in 0..100 {
        let (ok, out, err) = intake(&["search", "--data-dir", data_dir, "walrus"]);
        assert!(ok, "{err}");
        found = out;
        if found.starts_with("1 result") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        found.starts_with("1 result") && found.contains("CLI page") && found.contains("file://cli.html"),
        "{found}"
    );
    let (ok, _, err) = intake(&["search", "--data-dir", data_dir, "--aq", "@title==(", "x"]);
    assert!(!ok && err.contains("INVALID_QUERY_SYNTAX"), "{err}");
    drop(served);
}

/// `intake admin` drives the Platform API: an organization, a source, a key that can push and search.
#[test]
fn admin_creates_an_organization_a_source_and_a_working_key() {
    let dir = tempfile::tempdir().unwrap();
    let served = spawn_server(dir.path());
    let port = served.port;
    let data_dir = dir.path().to_str().unwrap();
    let admin = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["admin", "--data-dir", data_dir];
        all.extend_from_slice(args);
        let (ok, out, err) = intake(&all);
        assert!(ok, "intake {all:?}: {err}");
        if out.trim().is_empty() { serde_json::Value::Null } else { serde_json::from_str(&out).unwrap() }
    };
    assert_eq!(admin(&["org", "create", "Test Org", "--id", "testorg"])["id"], "testorg");
    let source = admin(&["--org", "testorg", "source", "create", "docs", "--visibility", "SHARED"]);
    let source_id = source["id"].as_str().unwrap();
    let key = admin(&[
        "--org",
        "testorg",
        "key",
        "create",
        "pusher",
        "--privilege",
        &format!("PLATFORM:SOURCE:EDIT:{source_id}"),
        "--privilege",
        "SEARCH_API:EXECUTE_QUERY",
    ]);
    let value = key["value"].as_str().unwrap();
    assert_eq!(admin(&["--org", "testorg", "field", "create", "rank:LONG"]), serde_json::Value::Null);
    assert_eq!(admin(&["--org", "testorg", "field", "list"])["items"][0]["type"], "LONG");
    assert_eq!(admin(&["org", "pause", "testorg"]), serde_json::Value::Null);
    assert_eq!(admin(&["org", "status", "testorg"])["paused"], true);
    admin(&["org", "resume", "testorg"]);

    let url = format!(
        "http://127.0.0.1:{port}/push/v1/organizations/testorg/sources/{source_id}/documents?documentId=file%3A%2F%2Fa"
    );
    assert_eq!(curl_put(&url, value, r#"{"data":"<p>otter</p>","rank":7}"#), "202");
    let mut found = String::new();
    for _ in 0..100 {
        let (ok, out, err) = intake(&[
            "search",
            "--data-dir",
            data_dir,
            "--org",
            "testorg",
            "--api-key",
            value,
            "--aq",
            "@rank>5",
            "otter",
        ]);
        assert!(ok, "{err}");
        found = out;
        if found.starts_with("1 result") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(found.starts_with("1 result"), "{found}");
    // The key cannot manage keys, and the command says why.
    let (ok, _, err) =
        intake(&["admin", "--data-dir", data_dir, "--org", "testorg", "--api-key", value, "key", "list"]);
    assert!(!ok && err.contains("403 ACCESS_DENIED") && err.contains("API_KEY VIEW"), "{err}");
    drop(served);
}

/// `intake admin provider|identity` and `intake search --as`: a provider, a group pushed to it, an item only
/// the group may see, then who sees it and why.
#[test]
fn providers_identities_and_searching_as_a_user_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let served = spawn_server(dir.path());
    let data_dir = dir.path().to_str().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--data-dir", data_dir];
        all.extend_from_slice(args);
        let (ok, out, err) = intake(&all);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let source: serde_json::Value =
        serde_json::from_str(&admin(&["source", "create", "secured", "--visibility", "SECURED"])).unwrap();
    let source = source["id"].as_str().unwrap();
    let provider: serde_json::Value =
        serde_json::from_str(&admin(&["provider", "create", "Corp Directory", "--source", source])).unwrap();
    assert_eq!(provider["cascadingSecurityProviders"]["Email Security Provider"]["id"], "Email Security Provider");
    let key = bootstrap(dir.path())["apiKey"].as_str().unwrap().to_string();
    let base = format!("http://127.0.0.1:{}/push/v1/organizations/default", served.port);
    let group =
        r#"{"identity":{"name":"auditors","type":"GROUP"},"members":[{"name":"ann@example.com","type":"USER"}]}"#;
    assert_eq!(curl_put(&format!("{base}/providers/Corp%20Directory/permissions"), &key, group), "202");
    let item = r#"{"data":"<p>quarterly ledger</p>","permissions":[{"allowedPermissions":[{"identity":"auditors","identityType":"Group"}]}]}"#;
    assert_eq!(
        curl_put(&format!("{base}/sources/{source}/documents?documentId=file%3A%2F%2Fledger"), &key, item),
        "202"
    );

    let mut found = String::new();
    for _ in 0..100 {
        let (ok, out, err) = intake(&["search", "--data-dir", data_dir, "--as", "ann@example.com", "ledger"]);
        assert!(ok, "{err}");
        found = out;
        if found.starts_with("1 result") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(found.starts_with("1 result") && found.contains("file://ledger"), "{found}");
    let (_, anonymous, _) = intake(&["search", "--data-dir", data_dir, "ledger"]);
    assert!(anonymous.starts_with("0 results"), "the master key alone searches as the anonymous user: {anonymous}");
    let (_, everything, _) = intake(&["search", "--data-dir", data_dir, "--all", "ledger"]);
    assert!(everything.starts_with("1 result"), "{everything}");

    let resolved: serde_json::Value =
        serde_json::from_str(&admin(&["identity", "resolve", "ann@example.com"])).unwrap();
    let names: Vec<&str> = resolved["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"auditors"), "{resolved}");
    let why: serde_json::Value =
        serde_json::from_str(&admin(&["identity", "explain", "ann@example.com", "file://ledger"])).unwrap();
    let explanation = why["items"][0]["explanation"].as_str().unwrap();
    assert!(explanation.starts_with("ann@example.com can see 'file://ledger'"), "{explanation}");
    let why: serde_json::Value =
        serde_json::from_str(&admin(&["identity", "explain", "bo@example.com", "file://ledger"])).unwrap();
    assert_eq!(why["items"][0]["rule"], "UNDECIDED", "{why}");
    drop(served);
}
