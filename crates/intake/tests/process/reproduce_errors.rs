//! docs/reproduce-errors.md tells the truth: every command on the page runs, in order, against a real
//! `intake serve` (with `curl` and the `intake` binary on the PATH, as a reader would), and its answer matches
//! the one shown — status line, headers, and each member of the JSON body, where `…` stands for anything.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{bootstrap, spawn_server};
use intake_model::quota::wildcard_matches;
use serde_json::Value;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/reproduce-errors.md");

/// The errors of the troubleshooting list the page must reproduce (its section titles).
const SITUATIONS: [&str; 14] = [
    "INVALID_JSON",
    "ORGANIZATION_IS_PAUSED",
    "UNAUTHORIZED",
    "INVALID_TOKEN",
    "ACCESS_DENIED",
    "ERROR_DESERIALIZING_BATCH_DOCUMENT_FROM_S3",
    "DOCUMENT_LIMIT_EXCEEDED",
    "INVALID_PARAMETER",
    "MISSING_PARAMETER",
    "SOURCE_DOES_NOT_EXIST",
    "413 REQUEST_ENTITY_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "TOO_MANY_REQUESTS",
    "5XX",
];

/// A fenced block: its info string (`sh`, `sh setup`, `http`, `json`) and text.
struct Block {
    info: String,
    text: String,
    section: String,
}

fn blocks(page: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for line in page.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block { info: info.trim().to_string(), text: String::new(), section: section.clone() })
            }
            (Some(_), Some(_)) => blocks.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {
                if let Some(title) = line.strip_prefix("## ") {
                    section = title.trim().to_string();
                }
            }
        }
    }
    assert!(open.is_none(), "an unclosed block on the page");
    blocks
}

fn run(script: &str, dir: &Path, env: &[(&str, String)]) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_intake")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{script}\nfailed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The last HTTP answer `curl -i` printed: status line, headers (names in lower case), body.
fn last_answer(output: &str) -> (String, Vec<(String, String)>, String) {
    let start = output.rfind("HTTP/1.1 ").unwrap_or_else(|| panic!("no HTTP answer in {output}"));
    let answer = &output[start..];
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().trim().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, body.trim().to_string())
}

fn matches(expected: &str, actual: &str) -> bool {
    wildcard_matches(expected, actual, '…')
}

fn check_http(expected: &str, output: &str, what: &str) {
    let (status, headers, body) = last_answer(output);
    let (head, expected_body) = expected.split_once("\n\n").unwrap_or((expected, ""));
    let mut lines = head.lines();
    assert_eq!(status, lines.next().unwrap().trim(), "{what}: status\n{output}");
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        let found = headers.iter().find(|(n, _)| n == name.trim()).map(|(_, v)| v.as_str());
        assert!(
            found.is_some_and(|v| matches(value.trim(), v)),
            "{what}: header {name} should be {value}, is {found:?}"
        );
    }
    if expected_body.trim().is_empty() {
        return;
    }
    let expected: Value = serde_json::from_str(expected_body).unwrap_or_else(|e| panic!("{what}: shown body: {e}"));
    let actual: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: answered body {body}: {e}"));
    for (key, shown) in expected.as_object().unwrap() {
        let answered = &actual[key];
        let same = match (shown, answered) {
            (Value::String(shown), Value::String(answered)) => matches(shown, answered),
            _ => shown == answered,
        };
        assert!(same, "{what}: {key} is shown as {shown} but answered {answered}");
    }
}

fn check_text(expected: &str, output: &str, what: &str) {
    let normalize = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(matches(&normalize(expected), &normalize(output)), "{what}: shown\n{expected}\nanswered\n{output}");
}

#[test]
fn every_command_on_the_page_gives_the_answer_shown() {
    let page = std::fs::read_to_string(PAGE).unwrap();
    let blocks = blocks(&page);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("intake-data");
    let served = spawn_server(&data);
    let bootstrap = bootstrap(&data);
    let (url, source) = (served.base_url(), bootstrap["sourceId"].as_str().unwrap().to_string());
    let env = [
        ("INTAKE_URL", url.clone()),
        ("INTAKE_API_KEY", bootstrap["apiKey"].as_str().unwrap().to_string()),
        ("ORG", "default".to_string()),
        ("SOURCE", source.clone()),
        ("ITEMS", format!("{url}/push/v1/organizations/default/sources/{source}/documents")),
    ];
    let mut covered = Vec::new();
    let mut pending: Option<(String, &Block)> = None;
    for block in &blocks {
        match block.info.as_str() {
            "sh setup" => {}
            "sh" => {
                assert!(pending.is_none(), "in {}: a command without its answer", block.section);
                pending = Some((run(&block.text, dir.path(), &env), block));
            }
            "http" | "json" => {
                let (output, command) = pending.take().expect("an answer without a command");
                let what = format!("## {}: {}", command.section, command.text.lines().last().unwrap_or_default());
                if block.info == "http" {
                    check_http(&block.text, &output, &what);
                } else {
                    check_text(&block.text, &output, &what);
                }
                covered.push(command.section.clone());
            }
            other => panic!("a block of unknown kind '{other}'"),
        }
    }
    assert!(pending.is_none(), "the last command has no answer");
    for situation in SITUATIONS {
        assert!(covered.iter().any(|s| s == situation), "the page does not reproduce {situation}");
    }
    assert!(covered.len() >= 18, "{covered:?}");
}
