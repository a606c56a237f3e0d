//! `intake push` against a real `intake serve`: a folder of the Linux kernel documentation, retries against
//! injected faults, an interrupted run resumed, `--dry-run` on bad inputs, and `--full` removing what is gone.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Served, bootstrap, spawn_server};
use serde_json::{Value, json};

struct Setup {
    served: Served,
    data: PathBuf,
    key: String,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("intake-data");
    let served = spawn_server(&data);
    let key = bootstrap(&data)["apiKey"].as_str().unwrap().to_string();
    Setup { served, data, key, _dir: dir }
}

impl Setup {
    fn push_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_intake"));
        command.arg("push").args(args).arg("--data-dir").arg(&self.data);
        command
    }

    fn push(&self, args: &[&str]) -> (bool, String, String) {
        let Output { status, stdout, stderr } = self.push_command(args).output().unwrap();
        (status.success(), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
    }

    /// A Platform or search call with curl; the answer's JSON (null when empty).
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.served.base_url());
        let output = Command::new("curl")
            .args(["-s", "-X", method, &url, "-H", &format!("Authorization: Bearer {}", self.key)])
            .args(["-H", "Content-Type: application/json", "-d", &body.to_string()])
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// Every item's URI, sorted (repeated if an item were indexed twice).
    fn uris(&self) -> Vec<String> {
        let mut uris = Vec::new();
        loop {
            let page = json!({"numberOfResults": 1000, "firstResult": uris.len()});
            let found = self.call("POST", "/rest/search/v2?organizationId=default", page);
            let results = found["results"].as_array().unwrap_or_else(|| panic!("{found}"));
            uris.extend(results.iter().map(|r| r["uri"].as_str().unwrap().to_string()));
            if results.len() < 1000 {
                break;
            }
        }
        uris.sort();
        uris
    }

    fn total(&self, q: &str) -> u64 {
        let found = self.call("POST", "/rest/search/v2?organizationId=default", json!({"q": q}));
        found["totalCount"].as_u64().unwrap()
    }

    fn wait_total(&self, expected: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.uris().len() != expected {
            assert!(Instant::now() < deadline, "{} items, expected {expected}", self.uris().len());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn fault(&self, rule: Value) -> String {
        self.call("POST", "/rest/organizations/default/faults", rule)["id"].as_str().unwrap().to_string()
    }
}

/// A folder of `n` small HTML pages (`page-0.html` …).
fn pages(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let html = format!("<html><head><title>Page {i}</title></head><body><p>walrus number {i}</p></body></html>");
        std::fs::write(dir.join(format!("page-{i}.html")), html).unwrap();
    }
}

fn linux_doc() -> Option<PathBuf> {
    let corpora = std::env::var("INTAKE_TEST_CORPORA").ok()?;
    Some(Path::new(&corpora).join("linux-doc-6.1/usr/share/doc/linux-doc-6.1/html"))
}

#[test]
fn a_folder_of_the_kernel_documentation_is_found_in_search() {
    let Some(html) = linux_doc() else {
        eprintln!("INTAKE_TEST_CORPORA is not set (./run-tests sets it): skipped");
        return;
    };
    let s = setup();
    let folder = html.to_str().unwrap();
    let (ok, out, err) =
        s.push(&[folder, "--include", "*.html", "--exclude", "_static/**", "--meta", "corpus=linux-doc", "--wait"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Pushed 3185 items"), "{out}");
    assert!(out.contains("3185 items processed: 3185 COMPLETED, 0 not."), "{out}");
    // Outcomes are logged just before the commit that makes them searchable.
    s.wait_total(3185);
    let found = s.call(
        "POST",
        "/rest/search/v2?organizationId=default",
        json!({"q": "completely fair scheduler", "aq": "@corpus==linux-doc", "numberOfResults": 5}),
    );
    let first = &found["results"][0];
    assert!(found["totalCount"].as_u64().unwrap() > 5, "{found}");
    assert!(first["uri"].as_str().unwrap().starts_with("file:///"), "{first}");
    let cfs = s.call(
        "POST",
        "/rest/search/v2?organizationId=default",
        json!({"aq": "@uri==\"file:///scheduler/sched-design-CFS.html\""}),
    );
    // The title from <title>, spaces collapsed; the extension; the metadata given with --meta.
    let raw = &cfs["results"][0]["raw"];
    assert_eq!(raw["title"], "CFS Scheduler — The Linux Kernel documentation", "{cfs}");
    assert_eq!((raw["filetype"].as_str(), raw["corpus"].as_str()), (Some("html"), Some("linux-doc")), "{cfs}");
}

#[test]
fn calls_are_retried_through_injected_429_and_503() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    pages(dir.path(), 40);
    s.fault(json!({"status": 503, "count": 2, "route": "*/files"}));
    s.fault(json!({"status": 429, "count": 1, "route": "*/documents/batch", "retryAfter": 1}));
    s.fault(json!({"status": 502, "count": 1, "route": "/upload/*"}));
    let started = Instant::now();
    let (ok, out, err) = s.push(&[dir.path().to_str().unwrap(), "--batch-size", "1MiB"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Pushed 40 items") && out.contains(": 1 batch,") && out.contains("; 4 retries."), "{out}");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was waited");
    for retried in [
        "POST http://127.0.0.1:",
        "answered 503 SERVICE_UNAVAILABLE: Injected by fault rule 1",
        "answered 429 TOO_MANY_REQUESTS: Injected by fault rule 2",
        "; retrying in 1.0 s (attempt 2 of 8)",
        "answered 502 BAD_GATEWAY",
    ] {
        assert!(err.contains(retried), "{retried:?} in {err}");
    }
    s.wait_total(40);
    // A client error is final: no retries, a clear message, a failing exit.
    let (ok, out, err) = s.push(&[dir.path().to_str().unwrap(), "--source", "nope"]);
    assert!(!ok, "{out}");
    assert!(err.contains("412 SOURCE_DOES_NOT_EXIST") && err.contains("Source 'nope' does not exist"), "{err}");
}

#[test]
fn an_interrupted_run_is_resumed_by_running_it_again() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    pages(dir.path(), 400);
    // Half the batch calls fail, so the run is slow and is killed with some batches in and some not.
    let rule = s.fault(json!({"status": 503, "percent": 50, "seed": 3, "route": "*/documents/batch"}));
    let mut run = s
        .push_command(&[
            dir.path().to_str().unwrap(),
            "--batch-size",
            "4KiB",
            "--parallel",
            "1",
            "--max-attempts",
            "1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.uris().is_empty() {
        assert!(Instant::now() < deadline, "no batch got in");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let partial = s.uris().len();
    assert!(partial < 400, "the run was interrupted ({partial} items in)");
    s.call("DELETE", &format!("/rest/organizations/default/faults/{rule}"), Value::Null);
    let (ok, out, err) = s.push(&[dir.path().to_str().unwrap(), "--wait"]);
    assert!(ok, "{out}\n{err}");
    s.wait_total(400);
    let uris = s.uris();
    let mut distinct = uris.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 400, "every page once");
    assert_eq!(s.total("walrus"), 400);
}

#[test]
fn a_dry_run_reports_each_problem_with_its_file_and_sends_nothing() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("items.jsonl");
    std::fs::write(
        &lines,
        concat!(
            "{\"documentId\": \"file:///ok\", \"data\": \"fine\"}\n",
            "{\"data\": \"no id\"}\n",
            "{\"documentId\": \"file:///meta\", \"data\": \"x\", \"tags\": {\"nested\": {\"deeper\": 1}}}\n",
            "not json\n",
            "{\"documentId\": \"file:///both\", \"data\": \"x\", \"compressedBinaryData\": \"eJw=\"}\n",
        ),
    )
    .unwrap();
    let batch = dir.path().join("batch.json");
    std::fs::write(&batch, r#"{"addOrUpdate": [{"documentId": "file:///b1", "data": "x"}, {"documentId": "file:///b2", "title": "no data"}]}"#).unwrap();
    let (ok, out, err) = s.push(&["--dry-run", lines.to_str().unwrap(), batch.to_str().unwrap()]);
    assert!(!ok, "{out}");
    let jsonl = lines.display().to_string();
    for expected in [
        format!("{jsonl}:2: the item has no 'documentId'"),
        format!("{jsonl}:3: INVALID_JSON"),
        format!("{jsonl}:4: not JSON"),
        format!("{jsonl}:5: INVALID_JSON"),
        format!("{}: file:///b2: INVALID_JSON", batch.display()),
    ] {
        assert!(out.contains(&expected), "{expected:?} in\n{out}");
    }
    assert!(!out.contains(":1:"), "the good line passes: {out}");
    assert!(err.contains("5 of 7 items have problems") && err.contains("Nothing was sent"), "{err}");
    let good = dir.path().join("good");
    pages(&good, 3);
    let (ok, out, _) = s.push(&["--dry-run", good.to_str().unwrap()]);
    assert!(ok && out.contains("3 items checked: no problems"), "{out}");
    assert!(s.uris().is_empty(), "nothing was sent");
}

#[test]
fn a_full_run_removes_the_items_no_longer_present() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    pages(dir.path(), 12);
    let folder = dir.path().to_str().unwrap();
    let (ok, out, err) = s.push(&[folder, "--full", "--queue-delay", "0", "--wait"]);
    assert!(ok, "{out}\n{err}");
    s.wait_total(12);
    for gone in [3, 7] {
        std::fs::remove_file(dir.path().join(format!("page-{gone}.html"))).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5)); // a later orderingId
    let (ok, out, err) = s.push(&[folder, "--full", "--queue-delay", "0", "--wait"]);
    assert!(ok, "{out}\n{err}");
    s.wait_total(10);
    let uris = s.uris();
    assert!(!uris.contains(&"file:///page-3.html".to_string()) && uris.contains(&"file:///page-4.html".to_string()));
    let source = s.call(
        "GET",
        &format!("/rest/organizations/default/sources/{}", bootstrap(&s.data)["sourceId"].as_str().unwrap()),
        Value::Null,
    );
    assert_eq!(source["information"]["sourceStatus"]["type"], "IDLE", "{source}");
}

#[test]
fn wait_lists_the_items_that_failed_after_they_were_accepted() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("items.jsonl");
    let mut text = String::new();
    for n in 0..12 {
        text.push_str(&format!("{{\"documentId\": \"file:///ok/{n}\", \"data\": \"fine {n}\"}}\n"));
    }
    // Accepted with the batch (its structure is sound), refused when applied: the data is not Base64.
    text.push_str("{\"documentId\": \"file:///broken\", \"compressedBinaryData\": \"not base64 at all!\"}\n");
    std::fs::write(&lines, text).unwrap();
    let (ok, out, err) = s.push(&[lines.to_str().unwrap(), "--wait"]);
    assert!(!ok, "{out}");
    assert!(out.contains("Pushed 13 items") && out.contains(": 1 batch,"), "{out}");
    assert!(out.contains("13 items processed: 12 COMPLETED, 1 not."), "{out}");
    assert!(out.contains("  ERROR file:///broken: "), "{out}");
    assert!(err.contains("1 item failed after being accepted"), "{err}");
    s.wait_total(12);
}

#[test]
fn what_cannot_be_pushed_is_skipped_named_and_fails_the_run_after_the_rest() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("items.jsonl");
    let mut text = String::new();
    for n in 0..11 {
        text.push_str(&format!("{{\"documentId\": \"file:///line/{n}\", \"data\": \"fine {n}\"}}\n"));
    }
    text.push_str("{\"data\": \"no id\"}\n");
    std::fs::write(&lines, text).unwrap();
    let (ok, out, err) = s.push(&[lines.to_str().unwrap(), "--quiet"]);
    assert!(!ok, "{out}");
    assert!(out.contains("Pushed 11 items"), "{out}");
    assert!(err.contains(&format!("skipped {}:12: the item has no 'documentId'", lines.display())), "{err}");
    assert!(err.contains("1 file or line could not be pushed"), "{err}");
    s.wait_total(11);
}

/// `intake serve` then `intake push DIR`, in the same folder, with no flags at all.
#[test]
fn push_needs_no_flags_next_to_a_server() {
    let s = setup();
    let folder = tempfile::tempdir().unwrap();
    pages(folder.path(), 3);
    let output = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["push", folder.path().to_str().unwrap()])
        .current_dir(s.data.parent().unwrap())
        .env_remove("INTAKE_URL")
        .env_remove("INTAKE_API_KEY")
        .env_remove("INTAKE_DATA_DIR")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.contains("Pushed 3 items") && out.contains("3 single PUTs"), "{out}");
    s.wait_total(3);
}

/// Files whose content is over 5 MiB even compressed (the R reference manual, a 6.5 MB PDF) go through a file
/// container of their own, among few files or many.
#[test]
fn large_files_go_through_their_own_container() {
    let Ok(corpora) = std::env::var("INTAKE_TEST_CORPORA") else {
        eprintln!("INTAKE_TEST_CORPORA is not set (./run-tests sets it): skipped");
        return;
    };
    let manual = Path::new(&corpora).join("r-doc-pdf/usr/share/R/doc/manual/refman.pdf");
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&manual, dir.path().join("refman.pdf")).unwrap();
    pages(dir.path(), 2);
    let (ok, out, err) = s.push(&[dir.path().to_str().unwrap(), "--wait"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("Pushed 3 items") && out.contains("3 single PUTs (1 through their own file container)"),
        "{out}"
    );
    pages(dir.path(), 12);
    let (ok, out, err) = s.push(&[dir.path().to_str().unwrap(), "--wait"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("Pushed 13 items") && out.contains(": 1 batch,") && out.contains("(1 through their own"),
        "{out}"
    );
    s.wait_total(13);
    let found = s.call("POST", "/rest/search/v2?organizationId=default", json!({"aq": "@uri==\"file:///refman.pdf\""}));
    assert_eq!(found["results"][0]["uri"], "file:///refman.pdf", "{found}");
    assert_eq!(found["results"][0]["raw"]["size"], std::fs::metadata(&manual).unwrap().len(), "{found}");
}

#[test]
fn a_catalog_source_takes_full_loads_and_updates_and_refuses_a_plain_push() {
    let s = setup();
    let created = s.call(
        "POST",
        "/rest/organizations/default/sources",
        json!({"name": "shop", "sourceType": "CATALOG", "sourceVisibility": "SHARED"}),
    );
    let source = created["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    pages(&first, 30);
    let (ok, _, err) = s.push(&["--source", &source, first.to_str().unwrap()]);
    assert!(!ok && err.contains("is a CATALOG source: push with --catalog") && err.contains("--update"), "{err}");

    let (ok, out, err) =
        s.push(&["--source", &source, "--catalog", "--batch-size", "4KiB", "--wait", first.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Full load accepted (stream "), "{out}");
    assert!(out.contains("30 items processed: 30 COMPLETED"), "{out}");
    assert_eq!(s.uris().len(), 30);

    // A smaller catalog replaces the first whole.
    let second = dir.path().join("second");
    pages(&second, 10);
    let (ok, out, err) =
        s.push(&["--source", &source, "--catalog", "--base-uri", "file:///second/", second.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    s.wait_total(10);
    assert!(s.uris().iter().all(|uri| uri.starts_with("file:///second/")), "{:?}", s.uris());

    // An update file with a partial update.
    let uri = s.uris()[0].clone();
    let update = dir.path().join("update.json");
    let file = json!({"partialUpdate": [{"documentId": uri, "operator": "fieldValueReplace", "field": "flavour", "value": "pistachio"}]});
    std::fs::write(&update, file.to_string()).unwrap();
    let (ok, out, err) = s.push(&["--source", &source, "--update", "--wait", update.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    let found = s.call("POST", "/rest/search/v2?organizationId=default", json!({"aq": "@flavour==pistachio"}));
    assert_eq!(found["results"][0]["uri"], uri.as_str(), "{found} {out}");
}

#[test]
fn office_files_and_emails_in_a_folder_are_pushed_as_they_are_and_found_by_their_text() {
    use std::io::Write;
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("office");
    std::fs::create_dir_all(&folder).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("word/document.xml", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(
        b"<w:document><w:body><w:p><w:r><w:t>The albatross migration survey</w:t></w:r></w:p></w:body></w:document>",
    )
    .unwrap();
    std::fs::write(folder.join("survey.docx"), zip.finish().unwrap().into_inner()).unwrap();
    let mail = "From: Ann <ann@example.com>\r\nSubject: Field notes\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nPetrels seen at dawn.\r\n";
    std::fs::write(folder.join("notes.eml"), mail).unwrap();
    let (ok, out, err) = s.push(&["--wait", folder.to_str().unwrap()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("2 items processed: 2 COMPLETED"), "{out}");
    assert_eq!(s.total("albatross migration"), 1, "the docx was converted by the server");
    assert_eq!(s.total("petrels dawn"), 1, "the e-mail was converted by the server");
}
