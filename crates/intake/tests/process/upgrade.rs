//! A data folder written by the previous release opens in this build as it is: every item searchable, every
//! outcome in the logs, keys, fields, limits and fault rules kept, and the SQLite schemas brought to this build's
//! versions. The folder is `fixtures/release-<commit>/`, written by `fixtures/make-release-data.sh` with that
//! release's binary; each release that changes what is stored adds its own.

use crate::common;

use std::path::Path;

use common::{KEY, Server};
use serde_json::json;

/// The releases whose data folders this build must open: (folder under `fixtures/`, its API key file).
const RELEASES: &[&str] = &["release-8d88018"];

fn copy_folder(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_data_folder_of_the_previous_release_opens_with_everything_in_it() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for release in RELEASES {
        let dir = tempfile::tempdir().unwrap();
        copy_folder(&fixtures.join(release), dir.path());
        let release_key = std::fs::read_to_string(fixtures.join(format!("{release}.key"))).unwrap();
        let server = Server::start(dir.path(), &[]);
        server.wait_ready().await;

        // The items, as the release left them: three pushed, one of them deleted, two from a batch.
        let indexed = server.indexed("").await;
        let mut uris: Vec<&str> = indexed.keys().map(String::as_str).collect();
        uris.sort();
        assert_eq!(
            uris,
            ["file://release/1", "file://release/2", "file://release/batch-1", "file://release/batch-2"],
            "{release}"
        );
        let found = server.post_json("/rest/search/v2?organizationId=default", json!({"q": "number2"})).await;
        assert_eq!(found["totalCount"], 1, "{release}: the text is searchable: {found}");
        let ranked = server.post_json("/rest/search/v2?organizationId=default", json!({"aq": "@rank>=2"})).await;
        assert_eq!(ranked["totalCount"], 1, "{release}: the declared LONG field is still typed: {ranked}");

        // Their outcomes in the logs, each once.
        let logged = server.logged().await;
        for (id, operation) in
            [("file://release/1", "ADD"), ("file://release/3", "DELETE"), ("file://release/batch-2", "ADD")]
        {
            let key = (id.to_string(), operation.to_string(), "COMPLETED".to_string());
            assert_eq!(logged.get(&key), Some(&1), "{release}: {key:?} in {logged:?}");
        }

        // The release's API key still pushes; the limit and the fault rule are still set.
        let status = server
            .client
            .put(server.documents_url())
            .query(&[("documentId", "file://after-upgrade")])
            .bearer_auth(release_key.trim())
            .json(&json!({"data": "pushed after the upgrade"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202, "{release}: the release's API key pushes");
        let limit = server
            .client
            .get(format!("{}/rest/organizations/default/limits/maximumItems", server.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(limit.json::<serde_json::Value>().await.unwrap()["limit"], 1000, "{release}");
        let faulted = server
            .client
            .put(format!("{}/push/v1/organizations/default/sources/no-such-source/documents", server.base))
            .query(&[("documentId", "file://x")])
            .bearer_auth(KEY)
            .json(&json!({"data": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(faulted.status(), 503, "{release}: the fault rule fires");
        assert!(faulted.headers().contains_key("x-intake-fault"), "{release}");

        // The schemas are at this build's versions.
        drop(server);
        let catalog = intake_store::sqlite::migrations::schema_version(&dir.path().join("catalog.sqlite")).unwrap();
        let logs = intake_store::sqlite::migrations::schema_version(&dir.path().join("logs.sqlite")).unwrap();
        assert_eq!(
            (catalog, logs),
            (
                intake_store::sqlite::migrations::CATALOG.len() as i64,
                intake_store::sqlite::migrations::ITEM_LOG.len() as i64
            ),
            "{release}"
        );
    }
}
