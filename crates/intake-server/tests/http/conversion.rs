//! Content conversion over real HTTP: Office and OpenDocument files pushed as they are become searchable by
//! their text, with the converter and its output in the logs; hostile or mislabelled ones end as a WARNING with
//! the reason, indexed by their metadata, the server up.

use crate::common;

use std::io::{Cursor, Write};

use common::{TestServer, b64};
use serde_json::{Value, json};

/// A ZIP archive of `(name, content)` entries, deflated: how Office and OpenDocument files are made.
fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn docx(paragraphs: &[&str], title: &str) -> Vec<u8> {
    let body: String = paragraphs.iter().map(|p| format!("<w:p><w:r><w:t>{p}</w:t></w:r></w:p>")).collect();
    let document = format!(r#"<?xml version="1.0"?><w:document xmlns:w="x"><w:body>{body}</w:body></w:document>"#);
    let core = format!(
        r#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:title>{title}</dc:title><dc:creator>Ada Lovelace</dc:creator></cp:coreProperties>"#
    );
    archive(&[("word/document.xml", document.as_bytes()), ("docProps/core.xml", core.as_bytes())])
}

/// The reason of each WARNING in the logs, by item: a function that fails the test for an item without one.
async fn warning_reasons(s: &TestServer) -> impl Fn(&str) -> String {
    let warnings = s.logs(None, json!({"results": ["WARNING"]})).await;
    move |id: &str| {
        let entry =
            warnings.iter().find(|e| e["id"] == id).unwrap_or_else(|| panic!("no warning for {id}: {warnings:?}"));
        entry["meta"]["error"].as_str().unwrap().to_string()
    }
}

/// Pushes `bytes` as they are (compressedBinaryData, UNCOMPRESSED) with `extension`.
async fn push_binary(s: &TestServer, id: &str, bytes: &[u8], extension: &str, extra: Value) -> u16 {
    let mut body =
        json!({"compressedBinaryData": b64(bytes), "compressionType": "UNCOMPRESSED", "fileExtension": extension});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.put_item(id, &body, "").await.status().as_u16()
}

#[tokio::test]
async fn office_and_opendocument_files_are_found_by_their_text() {
    let s = TestServer::start().await;
    let word = docx(
        &["The quarterly report covers the harbour expansion.", "Second paragraph about tugboats."],
        "Harbour report",
    );
    assert_eq!(push_binary(&s, "file://docs/report.docx", &word, ".docx", json!({})).await, 202);
    let odt = archive(&[(
        "content.xml",
        br#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:p>Minutes of the lighthouse committee</text:p></office:text></office:body></office:document-content>"#,
    )]);
    assert_eq!(push_binary(&s, "file://docs/minutes.odt", &odt, "odt", json!({})).await, 202);
    let mail = "From: Grace Hopper <grace@example.com>\r\nTo: team@example.com\r\nSubject: Compiler review\r\n\
                Date: Tue, 2 Jan 2024 03:04:05 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                The nanosecond wire goes on the desk.\r\n";
    assert_eq!(push_binary(&s, "file://docs/review.eml", mail.as_bytes(), ".eml", json!({})).await, 202);
    let latin1 = b"Recette: cr\xe8me br\xfbl\xe9e \xe0 la vanille".to_vec();
    assert_eq!(push_binary(&s, "file://docs/recette.txt", &latin1, ".txt", json!({})).await, 202);
    s.settle().await;

    let found = s.search(json!({"q": "harbour expansion"})).await;
    assert_eq!(found["totalCount"], 1, "{found}");
    let result = &found["results"][0];
    assert_eq!(result["title"], "Harbour report", "the document's own title");
    assert_eq!(result["raw"]["author"], "Ada Lovelace");
    assert_eq!(s.search(json!({"q": "tugboats"})).await["totalCount"], 1);
    assert_eq!(s.uris("@filetype==docx").await, ["file://docs/report.docx"]);
    assert_eq!(s.search(json!({"q": "lighthouse committee"})).await["totalCount"], 1);
    assert_eq!(s.search(json!({"q": "crème brûlée"})).await["totalCount"], 1, "decoded from its charset");
    let found = s.search(json!({"q": "nanosecond wire"})).await;
    let review = &found["results"][0];
    assert_eq!(
        (review["title"].as_str(), review["raw"]["from"].as_str()),
        (Some("Compiler review"), Some("grace@example.com"))
    );
    assert_eq!(review["raw"]["date"], 1_704_164_645_000i64, "the e-mail's date is the item's");

    let logged = s.logs(Some("file://docs/report.docx"), json!({})).await;
    assert_eq!(logged[0]["result"], "COMPLETED");
    let details = logged[0]["meta"]["details"].as_str().unwrap();
    assert!(details.starts_with("the docx converter produced ") && details.ends_with(" characters"), "{details}");
    let logged = s.logs(Some("file://docs/recette.txt"), json!({})).await;
    assert_eq!(logged[0]["meta"]["details"], "the text was decoded from windows-1252");
}

#[tokio::test]
async fn hostile_and_mislabelled_documents_end_as_warnings_indexed_by_their_metadata() {
    let s = TestServer::start().await;
    // 100 MB of one letter, deflated to about 100 KB: refused by the ratio bound before it is inflated.
    let bomb = archive(&[("word/document.xml", &vec![b'z'; 100 * 1024 * 1024])]);
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    assert_eq!(push_binary(&s, "file://hostile/bomb.docx", &bomb, ".docx", json!({"title": "Bomb title"})).await, 202);
    assert_eq!(
        push_binary(&s, "file://hostile/fake.docx", b"%PDF-1.7\nnot a word file", ".docx", json!({"title": "Fake"}))
            .await,
        202
    );
    assert_eq!(push_binary(&s, "file://hostile/cut.xlsx", &word_prefix(), ".xlsx", json!({"title": "Cut"})).await, 202);
    s.settle().await;

    let reason = warning_reasons(&s).await;
    assert!(reason("file://hostile/bomb.docx").contains("zip bomb"), "{}", reason("file://hostile/bomb.docx"));
    let fake = reason("file://hostile/fake.docx");
    assert!(
        fake.contains(".docx but its content is a PDF document") && fake.contains("indexed as what it is"),
        "{fake}"
    );
    assert!(
        reason("file://hostile/cut.xlsx").contains("the archive cannot be read"),
        "{}",
        reason("file://hostile/cut.xlsx")
    );
    // Found by their metadata; the server is up.
    for (title, id) in [("Bomb title", "file://hostile/bomb.docx"), ("Fake", "file://hostile/fake.docx")] {
        let found = s.search(json!({"q": title})).await;
        assert!(found["results"].as_array().unwrap().iter().any(|r| r["uri"] == id), "{title}: {found}");
    }
}

/// The first half of a Word file: a ZIP archive cut before its central directory.
fn word_prefix() -> Vec<u8> {
    let whole = docx(&["cut short"], "Cut");
    whole[..whole.len() / 2].to_vec()
}

/// An R manual as Debian ships it (`r-doc-pdf`).
fn r_manual(name: &str) -> Vec<u8> {
    std::fs::read(crate::corpora::corpora().join("r-doc-pdf/usr/share/R/doc/manual").join(name)).unwrap()
}

/// A one-page PDF whose content stream is `content`, deflated, with a correct cross-reference table.
fn pdf_with_content(content: &[u8]) -> Vec<u8> {
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(content).unwrap();
    let stream = deflate.finish().unwrap();
    let objects: [Vec<u8>; 5] = [
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        [format!("<< /Length {} /Filter /FlateDecode >>\nstream\n", stream.len()).as_bytes(), &stream, b"\nendstream"]
            .concat(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (n, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", n + 1).as_bytes());
        pdf.extend_from_slice(object);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let trailer = format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
    pdf.extend_from_slice(trailer.as_bytes());
    pdf
}

#[tokio::test]
async fn real_pdfs_are_found_by_a_sentence_from_their_pages() {
    let s = TestServer::start().await;
    let manual = r_manual("R-data.pdf");
    assert_eq!(push_binary(&s, "file://r/R-data.pdf", &manual, ".pdf", json!({})).await, 202);
    // A PDF named as something else is converted as what it is.
    assert_eq!(push_binary(&s, "file://r/R-FAQ.bin", &r_manual("R-FAQ.pdf"), ".bin", json!({})).await, 202);
    s.settle().await;

    let found = s.search(json!({"q": "\"not particularly well suited to manipulations\""})).await;
    assert_eq!(found["totalCount"], 1, "{found}");
    let result = &found["results"][0];
    assert_eq!(result["uri"], "file://r/R-data.pdf");
    // The manual has no title of its own: its file name is the title.
    assert_eq!(result["title"], "R-data.pdf");
    assert_eq!(result["raw"]["pages"], "41");
    assert_eq!(result["raw"]["date"], 1_674_233_367_000i64, "the PDF's creation date is the item's");
    let excerpt = result["excerpt"].as_str().unwrap();
    assert!(excerpt.contains("not particularly well suited"), "the stored text is the converted text: {excerpt}");
    assert_eq!(
        s.search(json!({"q": "\"Brian Ripley is the author of the support for connections\""})).await["totalCount"],
        1
    );
    let logged = s.logs(Some("file://r/R-data.pdf"), json!({})).await;
    assert_eq!(logged[0]["result"], "COMPLETED", "{logged:?}");
    let details = logged[0]["meta"]["details"].as_str().unwrap();
    assert!(details.starts_with("the pdf converter produced ") && details.ends_with(" characters"), "{details}");
    let produced: u64 = details.split(' ').nth(4).unwrap().parse().unwrap();
    assert!(produced > 80_000, "{details}");

    let faq = s.search(json!({"q": "\"R is a system for statistical computation and graphics\""})).await;
    assert_eq!(faq["results"][0]["uri"], "file://r/R-FAQ.bin", "{faq}");
}

#[tokio::test]
async fn hostile_pdfs_end_as_warnings_with_their_reason() {
    let s = TestServer::start_with(|config| config.conversion.expanded_bytes = 16 * 1024 * 1024).await;
    let manual = r_manual("R-intro.pdf");
    let cut = &manual[..manual.len() / 3];
    assert_eq!(push_binary(&s, "file://hostile/cut.pdf", cut, ".pdf", json!({"title": "Cut manual"})).await, 202);
    // 64 MB of spaces in one content stream, deflated to about 64 KB: stopped at the server's 16 MiB budget
    // before a parser sees it.
    let bomb = pdf_with_content(&[b"BT /F1 12 Tf (x) Tj ET".as_slice(), &vec![b' '; 64 * 1024 * 1024]].concat());
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());
    assert_eq!(push_binary(&s, "file://hostile/bomb.pdf", &bomb, ".pdf", json!({"title": "Bomb"})).await, 202);
    let deep = pdf_with_content(&vec![b'['; 2_000_000]);
    assert_eq!(push_binary(&s, "file://hostile/deep.pdf", &deep, ".pdf", json!({"title": "Deep"})).await, 202);
    let word = docx(&["not a PDF"], "Word");
    assert_eq!(push_binary(&s, "file://hostile/word.pdf", &word, ".pdf", json!({})).await, 202);
    s.settle().await;

    let reason = warning_reasons(&s).await;
    let cut = reason("file://hostile/cut.pdf");
    assert!(cut.contains("the PDF"), "{cut}");
    let bomb = reason("file://hostile/bomb.pdf");
    assert!(bomb.contains("streams expand to more than 16777216 bytes"), "{bomb}");
    let deep = reason("file://hostile/deep.pdf");
    assert!(deep.contains("nests arrays or dictionaries more than 10000 deep"), "{deep}");
    let word = reason("file://hostile/word.pdf");
    assert!(word.contains("says .pdf but its content is a ZIP archive, not a PDF document"), "{word}");
    for (title, id) in [("Cut manual", "file://hostile/cut.pdf"), ("Bomb", "file://hostile/bomb.pdf")] {
        let found = s.search(json!({"q": title})).await;
        assert!(found["results"].as_array().unwrap().iter().any(|r| r["uri"] == id), "{title}: {found}");
    }
    assert_eq!(s.search(json!({"q": "\"not a PDF\""})).await["totalCount"], 1, "the Word file's own text");
}

/// Documents written by people, as Debian packages ship them (fetched by `scripts/corpora`): one per converter,
/// each with a phrase from its text.
const DEBIAN_DOCUMENTS: &[(&str, &str, &str)] = &[
    ("aft/usr/share/doc/aft/aft2rtf-doc.rtf", "rtf", "would be very nice to have a dat-file for direct RTF-output"),
    (
        "pscan-chip/usr/share/doc/pscan-chip/README.docx.gz",
        "docx",
        "used to assess motif enrichment on different cell lines",
    ),
    (
        "aprx/usr/share/doc/aprx/aprx-manual.odt",
        "odt",
        "A special-purpose Ham Radio software for UNIX-like environments",
    ),
    ("aprx/usr/share/doc/aprx/aprx-manual-pics.odp", "odp", "Digipeater Tx Interface"),
    (
        "r-cran-officer/usr/lib/R/site-library/officer/doc_examples/example.pptx",
        "pptx",
        "This is an unordered list of paragraphs",
    ),
    ("r-cran-readxl/usr/lib/R/site-library/readxl/extdata/deaths.xlsx", "xlsx", "simply cannot resist writing"),
    ("python-odf-doc/usr/share/doc/python-odf-doc/examples/countrystatistics.ods", "ods", "Population in millions"),
    (
        "docbook-xsl-saxon/usr/share/doc/docbook-xsl-saxon/tdg_examples_permission.eml",
        "eml",
        "writing a testcase for the docbook-xsl Java extensions",
    ),
    ("r-cran-readxl/usr/lib/R/site-library/readxl/NEWS.md", "markdown", "This release contains no user-facing changes"),
    (
        "debian-handbook/usr/share/doc/debian-handbook/html/nb-NO/images/package-lifecycle.pdf.gz",
        "pdf",
        "oppbevarerer alle distribusjoner og alle de",
    ),
];

#[tokio::test]
async fn documents_from_debian_packages_are_found_by_a_sentence_from_their_text() {
    let s = TestServer::start().await;
    for (n, (path, _, _)) in DEBIAN_DOCUMENTS.iter().enumerate() {
        let bytes = std::fs::read(crate::corpora::corpora().join(path)).unwrap();
        // Debian gzips some: pushed as they are, GZIP-compressed, as a connector would.
        let (name, compression) = match path.strip_suffix(".gz") {
            Some(name) => (name, "GZIP"),
            None => (*path, "UNCOMPRESSED"),
        };
        let extension = name.rsplit_once('.').unwrap().1;
        let body = json!({"compressedBinaryData": b64(&bytes), "compressionType": compression, "fileExtension": format!(".{extension}")});
        assert_eq!(s.put_item(&format!("file://debian/{n}/{name}"), &body, "").await.status(), 202, "{path}");
    }
    // An Excel file whose archive is damaged as Debian ships it.
    let damaged = "fonts-sil-taiheritagepro/usr/share/doc/fonts-sil-taiheritagepro/documentation/developer/xSyl_ShortTail.xlsx.gz";
    let bytes = std::fs::read(crate::corpora::corpora().join(damaged)).unwrap();
    let body = json!({"compressedBinaryData": b64(&bytes), "compressionType": "GZIP", "fileExtension": ".xlsx", "title": "Short tail syllables"});
    assert_eq!(s.put_item("file://debian/damaged.xlsx", &body, "").await.status(), 202);
    s.settle().await;

    for (n, (path, converter, phrase)) in DEBIAN_DOCUMENTS.iter().enumerate() {
        let id = format!("file://debian/{n}/{}", path.trim_end_matches(".gz"));
        let found = s.search(json!({"q": format!("\"{phrase}\"")})).await;
        assert_eq!(found["results"][0]["uri"], id.as_str(), "{converter}: {found}");
        let logged = s.logs(Some(&id), json!({})).await;
        let details = logged[0]["meta"]["details"].as_str().unwrap_or_default();
        assert!(details.starts_with(&format!("the {converter} converter produced ")), "{id}: {logged:?}");
    }
    let rtf = s.search(json!({"q": "\"Converting aft-files to rtf-files\""})).await;
    assert_eq!(
        (rtf["results"][0]["title"].as_str(), rtf["results"][0]["raw"]["author"].as_str()),
        (Some("Converting aft-files to rtf-files"), Some("Eva Maria Krause")),
        "the RTF's own title and author"
    );
    let reason = warning_reasons(&s).await;
    let damaged = reason("file://debian/damaged.xlsx");
    assert!(damaged.contains("cannot be read: invalid Zip archive"), "{damaged}");
    assert_eq!(s.uris("@title==\"Short tail syllables\"").await, ["file://debian/damaged.xlsx"]);
}
