//! For the tests and benchmarks of this repository: places of their own on the test servers that
//! `scripts/test-servers` runs (PostgreSQL and an S3 server).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::S3Location;

/// A setting of the test servers (`INTAKE_TEST_POSTGRES`, `INTAKE_TEST_S3`): from the environment, else from
/// what `scripts/test-servers start` prints (it starts them when they do not run).
pub fn setting(name: &str) -> String {
    if let Ok(value) = std::env::var(name) {
        return value;
    }
    static STARTED: OnceLock<HashMap<String, String>> = OnceLock::new();
    let printed = STARTED.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-servers");
        let output = std::process::Command::new(script).arg("start").output().expect("scripts/test-servers runs");
        assert!(
            output.status.success(),
            "scripts/test-servers start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.lines().filter_map(|line| line.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    });
    printed.get(name).cloned().unwrap_or_else(|| panic!("scripts/test-servers start printed no {name}"))
}

/// A new empty database on the test PostgreSQL server.
pub fn scratch_database() -> String {
    crate::postgres::scratch_database(&setting("INTAKE_TEST_POSTGRES"))
        .expect("a scratch database on the test PostgreSQL server")
}

/// A new empty place (a prefix of the bucket `intake-test`) on the test S3 server.
pub fn scratch_blobs() -> S3Location {
    S3Location {
        bucket: "intake-test".into(),
        prefix: format!("t-{}", crate::catalog::random_id(12)),
        endpoint: Some(setting("INTAKE_TEST_S3")),
        region: "us-east-1".into(),
        virtual_hosted: false,
        credentials: Some(("intake-test".into(), "intake-test-secret".into())),
    }
}
