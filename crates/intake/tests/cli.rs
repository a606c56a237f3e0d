//! The `intake` command itself: `explain`, and the generated error page staying equal to the catalog.

use std::process::Command;

fn intake(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn docs_errors_md_is_the_catalog() {
    let (ok, generated, _) = intake(&["explain", "--markdown"]);
    assert!(ok);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md"))
            .unwrap();
    assert!(
        committed == generated,
        "docs/errors.md is out of date: run `cargo run -p intake -- explain --markdown > docs/errors.md`"
    );
    for entry in intake_model::CATALOG {
        assert!(
            committed.contains(&format!("## {}", entry.name)),
            "{} missing",
            entry.name
        );
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
    assert!(
        err.contains("'NO_SUCH_CODE' is not an Intake error code"),
        "{err}"
    );
    let (ok, list, _) = intake(&["explain"]);
    assert!(ok && list.lines().count() == intake_model::CATALOG.len());
}
