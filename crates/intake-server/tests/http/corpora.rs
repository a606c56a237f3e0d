//! Real content end to end: the whole Java SE 17 API documentation through batch containers, and items too
//! large for a request (5 MB HTML pages, a 6.5 MB PDF) through `compressedBinaryDataFileId`.
//! The corpora come from Debian packages unpacked by `scripts/corpora` (run by `./run-tests`).

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

/// Batches stay well under the 256 MiB container limit.
const BATCH_BYTES: usize = 160 * 1024 * 1024;

pub(crate) fn corpora() -> PathBuf {
    let dir = std::env::var_os("INTAKE_TEST_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/corpora"));
    assert!(
        dir.join("openjdk-17-doc").is_dir(),
        "the test corpora are missing: run scripts/corpora (./run-tests does)"
    );
    dir
}

fn java_api() -> PathBuf {
    corpora().join("openjdk-17-doc/usr/share/doc/openjdk-17-jre-headless/api")
}

fn html_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            html_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "html") {
            found.push(path);
        }
    }
}

async fn count(s: &TestServer, body: Value) -> u64 {
    s.search(body).await["totalCount"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_java_api_documentation_through_batches() {
    let s = TestServer::start_with(|config| config.index_memory_bytes = 128 * 1024 * 1024).await;
    let root = java_api();
    let mut files = Vec::new();
    html_files(&root, &mut files);
    assert!(files.len() > 10_000, "{} pages", files.len());
    let mut batches = 0;
    let mut large = 0;
    let mut batch = Vec::with_capacity(BATCH_BYTES + 8 * 1024 * 1024);
    let push = |batch: &mut Vec<u8>| {
        batch.extend_from_slice(b"]}");
        std::mem::replace(batch, Vec::with_capacity(BATCH_BYTES + 8 * 1024 * 1024))
    };
    let mut ready = Vec::new();
    for path in &files {
        if batch.is_empty() {
            batch.extend_from_slice(br#"{"addOrUpdate":["#);
        } else {
            batch.push(b',');
        }
        let relative = path.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).unwrap();
        let mut item = json!({
            "documentId": format!("file:///openjdk-17-doc/api/{relative}"),
            "fileExtension": ".html",
            "package": relative.split('/').next().unwrap_or(""),
        });
        // Pages over the 5 MiB of inline data go in their own container, as a careful client sends them.
        if bytes.len() > 5 * 1024 * 1024 {
            item["compressedBinaryDataFileId"] = s.uploaded(bytes).await.into();
            item["compressionType"] = "UNCOMPRESSED".into();
            large += 1;
        } else {
            item["data"] = String::from_utf8_lossy(&bytes).into();
        }
        serde_json::to_writer(&mut batch, &item).unwrap();
        if batch.len() >= BATCH_BYTES {
            ready.push(push(&mut batch));
        }
    }
    ready.push(push(&mut batch));
    for bytes in ready {
        assert!(bytes.len() < 256 * 1024 * 1024);
        let file_id = s.uploaded(bytes).await;
        let url = format!("{}?fileId={file_id}", s.source_url("/documents/batch"));
        let response = s.request(Method::PUT, &url).send().await.unwrap();
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        batches += 1;
    }
    assert!(batches >= 2, "the corpus is larger than one container");
    assert!(large >= 1, "some pages are over 5 MiB");
    s.settle().await;
    let not_completed = s.logs(None, json!({"excludeResults": ["COMPLETED"]})).await;
    assert!(not_completed.is_empty(), "{not_completed:?}");
    assert_eq!(count(&s, json!({})).await, files.len() as u64);
    assert!(count(&s, json!({"q": "StringBuilder"})).await > 10);
    let string_page =
        s.search(json!({"aq": r#"@uri=="file:///openjdk-17-doc/api/java.base/java/lang/String.html""#})).await;
    assert_eq!(string_page["results"][0]["title"].as_str().unwrap(), "String (Java SE 17 & JDK 17)");
    assert!(count(&s, json!({"aq": "@package==java.base"})).await > 1000);
    assert_eq!(s.logs(None, json!({"results": ["ERROR", "REJECTED"]})).await.len(), 0);
}

#[tokio::test]
async fn items_too_large_for_a_request_go_through_containers() {
    let s = TestServer::start().await;
    let index_7 = std::fs::read(java_api().join("index-files/index-7.html")).unwrap();
    let string_uses = std::fs::read(java_api().join("java.base/java/lang/class-use/String.html")).unwrap();
    let manual = std::fs::read(corpora().join("r-doc-pdf/usr/share/R/doc/manual/refman.pdf")).unwrap();
    assert!(index_7.len() > 5_000_000 && string_uses.len() > 5_900_000 && manual.len() > 6_500_000);

    // String.html's 5.97 MB of text is over the 5 MiB of inline data: refused inline.
    let inline = json!({"data": String::from_utf8_lossy(&string_uses), "fileExtension": ".html"});
    assert_error(
        s.put_item("file://jdk/class-use/String.html", &inline, "").await,
        413,
        "REQUEST_ENTITY_TOO_LARGE",
        &["'data'", "compressedBinaryDataFileId"],
    )
    .await;

    let raw = s.uploaded(index_7).await;
    let body = json!({"compressedBinaryDataFileId": raw, "compressionType": "UNCOMPRESSED", "fileExtension": ".html"});
    assert_eq!(s.put_item("file://jdk/index-7.html", &body, "").await.status(), 202);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&string_uses).unwrap();
    let compressed = s.uploaded(gzip.finish().unwrap()).await;
    let body = json!({"compressedBinaryDataFileId": compressed, "compressionType": "GZIP", "fileExtension": ".html"});
    assert_eq!(s.put_item("file://jdk/class-use/String.html", &body, "").await.status(), 202);
    let pdf = s.uploaded(manual).await;
    let body = json!({"compressedBinaryDataFileId": pdf, "compressionType": "UNCOMPRESSED", "fileExtension": ".pdf", "title": "R Reference Manual"});
    assert_eq!(s.put_item("file://r/refman.pdf", &body, "").await.status(), 202);
    s.settle().await;

    let index_page = s.search(json!({"aq": r#"@uri=="file://jdk/index-7.html""#})).await;
    assert_eq!(index_page["results"][0]["title"], "G-Index (Java SE 17 & JDK 17)");
    assert!(index_page["results"][0]["raw"]["size"].as_u64().unwrap() > 5_000_000);
    assert_eq!(count(&s, json!({"q": "getBytes", "aq": r#"@uri=="file://jdk/class-use/String.html""#})).await, 1);
    let manual = s.search(json!({"aq": "@filetype==pdf"})).await;
    assert_eq!(
        (manual["totalCount"].as_u64(), manual["results"][0]["title"].as_str()),
        (Some(1), Some("R Reference Manual"))
    );
    // Its 2,415 pages converted: found by a sentence from the middle of the manual (nclass.Sturges).
    let sturges = json!({"q": "\"Sturges uses Sturges' formula, implicitly basing bin sizes\""});
    assert_eq!(s.search(sturges).await["results"][0]["uri"], "file://r/refman.pdf");
    assert_eq!(s.server.state.blobs.total_bytes().unwrap(), 0, "containers are deleted once applied");
}

/// The text of a real page is its content, not its chrome: a kernel documentation page (Sphinx, the Read the
/// Docs theme: a navigation menu listing every document, breadcrumbs, footer buttons) and a Java SE API page
/// (javadoc: a header with the navigation bar, a footer) are found by their content only, and their excerpt
/// starts with their content.
#[tokio::test]
async fn html_text_is_the_pages_content_not_its_chrome() {
    let s = TestServer::start().await;
    let kernel = corpora().join("linux-doc-6.1/usr/share/doc/linux-doc-6.1/html/process/howto.html");
    let javadoc = java_api().join("java.base/java/util/List.html");
    for (id, path) in [("file://chrome/howto.html", &kernel), ("file://chrome/List.html", &javadoc)] {
        let html = std::fs::read_to_string(path).unwrap();
        let body = json!({"data": html, "fileExtension": ".html"});
        assert_eq!(s.put_item(id, &body, "").await.status(), 202);
    }
    s.settle().await;
    // The breadcrumbs, two entries of the navigation menu, javadoc's navigation bar and footer.
    for chrome in [
        "\"View page source\"",
        "\"Kernel Maintainer Handbook\"",
        "\"Development tools for the kernel\"",
        "\"Skip navigation links\"",
        "\"Report a bug or suggest an enhancement\"",
    ] {
        let found = s.search(json!({"aq": chrome})).await;
        assert_eq!(found["totalCount"], 0, "{chrome} is chrome, not content: {found}");
    }
    let howto = s.search(json!({"q": "\"HOWTO do Linux kernel development\""})).await;
    assert_eq!(howto["results"][0]["uri"], "file://chrome/howto.html", "{howto}");
    let first = howto["results"][0]["firstSentences"].as_str().unwrap();
    assert!(first.starts_with("HOWTO do Linux kernel development"), "{first}");
    let list = s.search(json!({"q": "ordered collection", "aq": "@uri==\"file://chrome/List.html\""})).await;
    let first = list["results"][0]["firstSentences"].as_str().unwrap();
    assert!(first.starts_with("Module java.base Package java.util Interface List<E>"), "{first}");
}
