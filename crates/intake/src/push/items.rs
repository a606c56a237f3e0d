//! What `intake push` sends: the inputs named on the command line, listed, and each file made into a Push API
//! item — `documentId` a `file://` URI (or one under `--base-uri`), a title, `fileExtension`, `date` from the
//! modification time, metadata from `--meta`, and the content as text, or zlib-compressed when it is binary or
//! over 1 MiB (in a file container of its own when even that is over 5 MiB).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value, json};

/// Inline `data` and `compressedBinaryData` hold at most this much (Coveo: 5 MB); larger content goes into a
/// file container of its own.
pub const MAX_INLINE_BYTES: usize = 5 * 1024 * 1024;

/// Text larger than this is sent compressed: a quarter of the bytes on the wire for a little CPU.
pub const COMPRESS_ABOVE_BYTES: usize = 1024 * 1024;

/// Extensions whose files are binary whatever their bytes look like.
const BINARY_EXTENSIONS: &[&str] = &[
    "pdf", "png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff", "ico", "zip", "gz", "xz", "bz2", "7z", "doc",
    "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "epub", "mp3", "mp4", "wav", "ogg", "woff", "woff2",
];

/// One thing named on the command line, once listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file to make an item of; `relative` is its path under the folder given (or its name).
    File { path: PathBuf, relative: String, size: u64 },
    /// A file of JSON Lines, each a Push API item with its `documentId`.
    Jsonl { path: PathBuf, size: u64 },
    /// A ready batch file (`{"addOrUpdate": […], "delete": […]}`, with `partialUpdate` for `--update`).
    Batch { path: PathBuf, size: u64 },
}

impl Input {
    pub fn size(&self) -> u64 {
        match self {
            Input::File { size, .. } | Input::Jsonl { size, .. } | Input::Batch { size, .. } => *size,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Input::File { path, .. } | Input::Jsonl { path, .. } | Input::Batch { path, .. } => path,
        }
    }
}

/// Which files of a folder are pushed.
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> anyhow::Result<Filter> {
        let set = |patterns: &[String]| -> anyhow::Result<GlobSet> {
            let mut builder = GlobSetBuilder::new();
            for pattern in patterns {
                builder.add(Glob::new(pattern).with_context(|| format!("'{pattern}' is not a glob pattern"))?);
            }
            Ok(builder.build()?)
        };
        Ok(Filter { include: (!include.is_empty()).then(|| set(include)).transpose()?, exclude: set(exclude)? })
    }

    /// Patterns match the path under the folder (`api/java.base/*.html`) or the file name (`*.html`).
    fn keeps(&self, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let matches = |set: &GlobSet| set.is_match(relative) || set.is_match(name);
        self.include.as_ref().is_none_or(matches) && !matches(&self.exclude)
    }
}

/// Lists what the paths name: folders recursively (filtered), files as they are. With `jsonl`, every file is
/// JSON Lines; a `.json` file named directly that holds a batch is sent as a batch.
pub fn list(paths: &[PathBuf], filter: &Filter, jsonl: bool) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).with_context(|| format!("{} cannot be read", path.display()))?;
        if metadata.is_dir() {
            for entry in walkdir::WalkDir::new(path).follow_links(true).sort_by_file_name() {
                let entry = entry.with_context(|| format!("listing {}", path.display()))?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let relative = entry.path().strip_prefix(path).unwrap_or(entry.path());
                let relative = relative.to_string_lossy().replace('\\', "/");
                if filter.keeps(&relative) {
                    let size = entry.metadata()?.len();
                    inputs.push(named(entry.path().to_path_buf(), relative, size, jsonl));
                }
            }
        } else {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let input = named(path.clone(), name, metadata.len(), jsonl);
            let input = match input {
                Input::File { path, size, .. } if is_batch_file(&path)? => Input::Batch { path, size },
                other => other,
            };
            inputs.push(input);
        }
    }
    Ok(inputs)
}

fn named(path: PathBuf, relative: String, size: u64, jsonl: bool) -> Input {
    if jsonl || relative.ends_with(".jsonl") {
        Input::Jsonl { path, size }
    } else {
        Input::File { path, relative, size }
    }
}

/// A `.json` file whose first key is `addOrUpdate`, `delete` or `partialUpdate` (any case).
fn is_batch_file(path: &Path) -> anyhow::Result<bool> {
    if path.extension().is_none_or(|e| !e.eq_ignore_ascii_case("json")) {
        return Ok(false);
    }
    let mut head = vec![0; 256];
    let read = std::fs::File::open(path)?.read(&mut head)?;
    let head = String::from_utf8_lossy(&head[..read]).to_ascii_lowercase();
    let head: String = head.chars().filter(|c| !c.is_whitespace()).collect();
    Ok(["addorupdate", "delete", "partialupdate"].iter().any(|key| head.starts_with(&format!("{{\"{key}\""))))
}

/// How `documentId`s are made: `file:///` + the path under the folder, or `--base-uri` + that path.
pub struct Naming {
    base: url::Url,
}

impl Naming {
    pub fn new(base_uri: Option<&str>) -> anyhow::Result<Naming> {
        let base = base_uri.unwrap_or("file:///");
        let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
        Ok(Naming { base: url::Url::parse(&base).with_context(|| format!("--base-uri '{base}' is not a URI"))? })
    }

    pub fn document_id(&self, relative: &str) -> anyhow::Result<String> {
        let escaped: String = relative.split('/').map(escape_segment).collect::<Vec<_>>().join("/");
        Ok(self.base.join(&escaped).with_context(|| format!("no URI for '{relative}'"))?.to_string())
    }
}

/// Escapes what `Url::join` would read as syntax (`?`, `#`, `%`, `:` in a first segment).
fn escape_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for c in segment.chars() {
        match c {
            '?' | '#' | '%' | ':' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            _ => out.push(c),
        }
    }
    out
}

/// An item ready to send.
pub struct Prepared {
    pub document_id: String,
    pub content: Content,
    /// Bytes read for it (the file, or the JSON line), for progress.
    pub source_bytes: u64,
}

pub enum Content {
    /// The batch entry: the item's JSON with its `documentId`.
    Entry(Vec<u8>),
    /// Content too large to send inline: zlib bytes for a container of its own, and the item that will
    /// point at it (`compressedBinaryDataFileId`) once the container exists.
    Large { item: Map<String, Value>, compressed: Vec<u8> },
}

/// Makes an item of a file.
pub fn prepare_file(
    path: &Path,
    relative: &str,
    naming: &Naming,
    metadata: &[(String, String)],
) -> anyhow::Result<Prepared> {
    let file = std::fs::metadata(path).with_context(|| format!("{} cannot be read", path.display()))?;
    anyhow::ensure!(
        file.len() <= intake_model::limits::MAX_ITEM_DECOMPRESSED_BYTES,
        "{} is {} bytes: an item holds at most 256 MiB",
        path.display(),
        file.len()
    );
    let bytes = std::fs::read(path).with_context(|| format!("{} cannot be read", path.display()))?;
    let modified = file.modified().ok();
    let document_id = naming.document_id(relative)?;
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let mut item = Map::new();
    item.insert("documentId".into(), json!(document_id));
    if let Some(extension) = &extension {
        item.insert("fileExtension".into(), json!(format!(".{extension}")));
    }
    if let Some(modified) = modified.and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok()) {
        item.insert("date".into(), json!(iso_date(modified.as_millis() as i64)));
    }
    for (key, value) in metadata {
        item.insert(key.clone(), json!(value));
    }
    let binary = extension.as_deref().is_some_and(|e| BINARY_EXTENSIONS.contains(&e)) || looks_binary(&bytes);
    let text = if binary { None } else { std::str::from_utf8(&bytes).ok() };
    item.insert("title".into(), json!(title(text, name)));
    let source_bytes = bytes.len() as u64;
    let large = match text {
        Some(text) if text.len() <= COMPRESS_ABOVE_BYTES => {
            item.insert("data".into(), json!(text));
            None
        }
        _ => compressed_content(&bytes, &mut item)?,
    };
    let content = match large {
        None => Content::Entry(serde_json::to_vec(&Value::Object(item))?),
        Some(compressed) => Content::Large { item, compressed },
    };
    Ok(Prepared { document_id, content, source_bytes })
}

/// Binary or large content, zlib-compressed: inline as Base64 when that fits, otherwise for a container.
fn compressed_content(bytes: &[u8], item: &mut Map<String, Value>) -> anyhow::Result<Option<Vec<u8>>> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    let compressed = encoder.finish()?;
    item.insert("compressionType".into(), json!("ZLIB"));
    if compressed.len().div_ceil(3) * 4 <= MAX_INLINE_BYTES {
        item.insert(
            "compressedBinaryData".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(&compressed)),
        );
        return Ok(None);
    }
    Ok(Some(compressed))
}

/// NUL bytes in the first 8 KiB: not text.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

/// The HTML `<title>`, else the first `<h1>` or Markdown `# ` heading, else the file name.
fn title(text: Option<&str>, name: &str) -> String {
    let found = text.and_then(|text| {
        let head = &text[..floor_char_boundary(text, 256 * 1024)];
        element_text(head, "title").or_else(|| element_text(head, "h1")).or_else(|| markdown_heading(head))
    });
    found.filter(|t| !t.is_empty()).unwrap_or_else(|| name.to_string())
}

fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The text of the first `<tag …>…</tag>`, tags inside removed, entities decoded, spaces collapsed.
fn element_text(html: &str, tag: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let open = lower
        .find(&format!("<{tag}"))
        .filter(|at| lower[at + tag.len() + 1..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()))?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find(&format!("</{tag}"))?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = html_escape::decode_html_entities(&text);
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn markdown_heading(text: &str) -> Option<String> {
    text.lines().find_map(|line| line.strip_prefix("# ")).map(|t| t.trim().to_string())
}

/// `2026-11-25T19:23:25.000Z`.
pub fn iso_date(ms: i64) -> String {
    intake_model::dates::format_ms(ms)
}

/// Makes a JSON Lines line into a batch entry: it must be an object with a `documentId`.
pub fn prepare_line(line: &str, place: &str) -> anyhow::Result<Prepared> {
    let item: Value = serde_json::from_str(line).with_context(|| format!("{place}: not JSON"))?;
    let document_id = item
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("documentId")))
        .and_then(|(_, v)| v.as_str())
        .filter(|id| !id.trim().is_empty())
        .with_context(|| format!("{place}: the item has no 'documentId'"))?
        .to_string();
    let content = Content::Entry(line.as_bytes().to_vec());
    Ok(Prepared { document_id, content, source_bytes: line.len() as u64 + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_content_or_the_name() {
        let html = "<html><head><TITLE>Kernel &amp; you</TITLE></head><body><h1>Other</h1></body></html>";
        assert_eq!(title(Some(html), "a.html"), "Kernel & you");
        assert_eq!(title(Some("<body><h1 class=x>The <b>heading</b></h1></body>"), "b.html"), "The heading");
        assert_eq!(title(Some("intro\n# Read me\ntext"), "README.md"), "Read me");
        assert_eq!(title(Some("plain text"), "notes.txt"), "notes.txt");
        assert_eq!(title(None, "manual.pdf"), "manual.pdf");
        assert_eq!(title(Some("<textarea>x</textarea><title>T</title>"), "c.html"), "T");
    }

    #[test]
    fn document_ids_are_uris_under_the_base() {
        let naming = Naming::new(None).unwrap();
        assert_eq!(naming.document_id("api/a b.html").unwrap(), "file:///api/a%20b.html");
        assert_eq!(naming.document_id("what?#.html").unwrap(), "file:///what%3F%23.html");
        let naming = Naming::new(Some("https://docs.example.com/kernel")).unwrap();
        assert_eq!(naming.document_id("x/y.html").unwrap(), "https://docs.example.com/kernel/x/y.html");
    }

    #[test]
    fn filters_match_the_relative_path_or_the_name() {
        let filter = Filter::new(&["*.html".into()], &["_static/**".into()]).unwrap();
        assert!(filter.keeps("a/b.html"));
        assert!(!filter.keeps("_static/x.html"));
        assert!(!filter.keeps("a/b.css"));
        assert!(Filter::new(&["[".into()], &[]).is_err());
    }

    #[test]
    fn binary_and_large_files_are_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let naming = Naming::new(None).unwrap();
        let pdf = dir.path().join("m.pdf");
        std::fs::write(&pdf, b"%PDF-1.4 \x00\x01 binary").unwrap();
        let Content::Entry(entry) = prepare_file(&pdf, "m.pdf", &naming, &[]).unwrap().content else { panic!() };
        let item: Value = serde_json::from_slice(&entry).unwrap();
        assert_eq!(item["compressionType"], "ZLIB");
        assert!(item["compressedBinaryData"].is_string() && item["data"].is_null());
        assert_eq!((item["title"].as_str(), item["fileExtension"].as_str()), (Some("m.pdf"), Some(".pdf")));
        // Text over 1 MiB goes compressed, inline while that fits; content that does not fit goes to a container.
        let medium = dir.path().join("medium.html");
        std::fs::write(&medium, format!("<title>M</title>{}", "<p>walrus</p>".repeat(100_000))).unwrap();
        let Content::Entry(entry) = prepare_file(&medium, "medium.html", &naming, &[]).unwrap().content else {
            panic!()
        };
        let item: Value = serde_json::from_slice(&entry).unwrap();
        assert_eq!((item["title"].as_str(), item["compressionType"].as_str()), (Some("M"), Some("ZLIB")));
        assert!(item["data"].is_null() && item["compressedBinaryData"].as_str().unwrap().len() < 100_000);
        let text = dir.path().join("big.txt");
        std::fs::write(&text, "all work and no play ".repeat(300_000)).unwrap();
        let Content::Entry(entry) = prepare_file(&text, "big.txt", &naming, &[]).unwrap().content else { panic!() };
        let item: Value = serde_json::from_slice(&entry).unwrap();
        assert!(item["compressedBinaryData"].as_str().unwrap().len() < MAX_INLINE_BYTES);
        let noise = dir.path().join("noise.bin");
        let mut state = 88172645463325252u64;
        let bytes: Vec<u8> = (0..6_000_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(&noise, bytes).unwrap();
        let prepared = prepare_file(&noise, "noise.bin", &naming, &[("team".into(), "docs".into())]).unwrap();
        let Content::Large { item, compressed } = prepared.content else { panic!("a container item") };
        assert_eq!((item["team"].as_str(), item["compressionType"].as_str()), (Some("docs"), Some("ZLIB")));
        assert!(item.get("compressedBinaryData").is_none() && compressed.len() > MAX_INLINE_BYTES);
    }
}
