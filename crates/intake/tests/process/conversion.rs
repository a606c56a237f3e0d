//! Hostile documents against the real binary: compression bombs inside a PDF and a Word file, a PDF nested a
//! million deep and one declaring a 5 GB stream, an RTF document of unclosed groups. Each ends as a WARNING with
//! its reason, the server stays up and ready, and its memory stays far below what the documents declare.

use crate::common;

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use common::Server;
use lopdf::{Document, Object, Stream, dictionary};
use serde_json::json;

/// `size` bytes of spaces, deflated without ever holding them: a stream that expands about a thousandfold.
fn deflated_spaces(size: usize) -> Vec<u8> {
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..size / chunk.len() {
        deflate.write_all(&chunk).unwrap();
    }
    deflate.finish().unwrap()
}

/// A one-page PDF whose content stream is `stream` as it is, with `filter` (or none) and its `/Length` as given.
fn pdf(stream: Vec<u8>, filter: Option<&str>, length: Option<i64>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages = doc.new_object_id();
    let mut content = Stream::new(dictionary! {}, stream);
    if let Some(filter) = filter {
        content.dict.set("Filter", Object::Name(filter.as_bytes().to_vec()));
    }
    if let Some(length) = length {
        content.dict.set("Length", length);
    }
    let content = doc.add_object(content);
    let page = doc.add_object(dictionary! { "Type" => "Page", "Parent" => pages, "Contents" => content });
    doc.objects.insert(
        pages,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages });
    doc.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

/// A Word file whose document part is `size` bytes of one letter.
fn word_bomb(size: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    zip.start_file("word/document.xml", options).unwrap();
    let chunk = vec![b'z'; 1024 * 1024];
    for _ in 0..size / chunk.len() {
        zip.write_all(&chunk).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_end_as_warnings_with_the_server_up_and_its_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.wait_ready().await;
    let gib = 1024 * 1024 * 1024;
    let documents: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("bomb.pdf", ".pdf", pdf(deflated_spaces(gib), Some("FlateDecode"), None), "streams expand to more than"),
        ("deep.pdf", ".pdf", pdf(vec![b'['; 1_000_000], None, None), "more than 10000 deep"),
        ("lying.pdf", ".pdf", pdf(b"BT ET".to_vec(), None, Some(5 * gib as i64)), "cannot be read"),
        ("bomb.docx", ".docx", word_bomb(gib), "declares 1073741824 bytes, over what is left of the budget"),
        ("groups.rtf", ".rtf", [b"{\\rtf1 ".as_slice(), &vec![b'{'; 2_000_000]].concat(), "nests groups"),
    ];
    for (name, extension, bytes, _) in &documents {
        assert!(bytes.len() < 4 * 1024 * 1024, "{name}: {} bytes", bytes.len());
        let body = json!({
            "compressedBinaryData": base64::engine::general_purpose::STANDARD.encode(bytes),
            "compressionType": "UNCOMPRESSED", "fileExtension": extension, "title": format!("Hostile {name}"),
        });
        assert_eq!(server.put_item(&format!("file://hostile/{name}"), &body).await, Some(202), "{name}");
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let warnings = loop {
        let path = "/logs/v1/organizations/default?perPage=100&from=2000-01-01T00:00:00Z";
        let logs = server.post_json(path, json!({"results": ["WARNING"]})).await;
        let entries = logs["documentLogEntries"].as_array().cloned().unwrap_or_default();
        if entries.len() >= documents.len() || Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (name, _, _, reason) in &documents {
        let id = format!("file://hostile/{name}");
        let entry = warnings.iter().find(|e| e["id"] == id.as_str()).unwrap_or_else(|| panic!("{id}: {warnings:?}"));
        let error = entry["meta"]["error"].as_str().unwrap();
        assert!(error.contains(reason), "{id}: {error}");
    }
    assert!(server.alive() && server.is_ready().await, "the server is up and ready");
    // Idle, the server holds about 60 MB; the documents declare gigabytes.
    let peak_mib = server.peak_rss_kib() / 1024;
    println!("the server's peak memory: {peak_mib} MiB");
    assert!(peak_mib < 512, "peak memory {peak_mib} MiB");
}
