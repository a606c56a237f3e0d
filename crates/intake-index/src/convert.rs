//! Content conversion: the searchable text of documents that are neither HTML nor UTF-8 text — Office Open XML
//! (`.docx`, `.xlsx`, `.pptx`), OpenDocument (`.odt`, `.ods`, `.odp`), e-mail (`.eml`), XML, and plain text in
//! another charset.
//!
//! The converter is chosen by the item's `fileExtension` and confirmed by the content's first bytes; a mismatch
//! is a warning naming both, and the content's own type wins. Conversion is bounded: an archive's entries are
//! read within a byte budget and a compression-ratio bound (a zip bomb stops at them, having cost the budget at
//! most), and a document that does not convert (malformed, encrypted, over a bound) is indexed by its metadata,
//! with the reason as a warning. Pure CPU work: the applier runs it in its parallel prepare stage.

use std::io::{Cursor, Read};

use quick_xml::events::Event;

/// What a conversion produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Converted {
    pub title: Option<String>,
    pub author: Option<String>,
    pub text: String,
    /// Which converter ran, for the logs.
    pub converter: &'static str,
    /// Why the text is missing or partial, or what was odd about the content (a WARNING in the logs).
    pub warning: Option<String>,
    /// Fields the document itself carries (an e-mail's `from`, `to`, `date`).
    pub fields: Vec<(&'static str, String)>,
}

/// The bounds of one conversion.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Bytes a document's compressed parts (an archive's entries, a PDF's streams) may expand to, all together.
    pub expanded_bytes: u64,
    /// Entries of an archive looked at, at most.
    pub archive_entries: usize,
    /// The largest uncompressed : compressed ratio of an entry over 1 MiB (text compresses 5–20×; a bomb, 1000×).
    pub max_ratio: u64,
    /// How long one document's conversion may take; past it, the text so far is kept, with a warning.
    pub time: std::time::Duration,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            expanded_bytes: 256 * 1024 * 1024,
            archive_entries: 10_000,
            max_ratio: 200,
            time: std::time::Duration::from_secs(60),
        }
    }
}

/// The document formats converted here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
}

impl Format {
    pub fn from_extension(extension: &str) -> Option<Format> {
        Some(match extension.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "docx" | "docm" | "dotx" => Format::Docx,
            "xlsx" | "xlsm" => Format::Xlsx,
            "pptx" | "pptm" => Format::Pptx,
            "odt" | "ott" => Format::Odt,
            "ods" | "ots" => Format::Ods,
            "odp" | "otp" => Format::Odp,
            _ => return None,
        })
    }

    /// The format of an Office or OpenDocument archive, told by the entries it has.
    fn of_archive(bytes: &[u8]) -> Option<Format> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
        let mut mimetype = String::new();
        if let Ok(entry) = zip.by_name("mimetype") {
            entry.take(128).read_to_string(&mut mimetype).ok()?;
        }
        let has = |name: &str| zip.index_for_name(name).is_some();
        Some(match mimetype.trim() {
            "application/vnd.oasis.opendocument.text" => Format::Odt,
            "application/vnd.oasis.opendocument.spreadsheet" => Format::Ods,
            "application/vnd.oasis.opendocument.presentation" => Format::Odp,
            _ if has("word/document.xml") => Format::Docx,
            _ if has("xl/workbook.xml") => Format::Xlsx,
            _ if has("ppt/presentation.xml") => Format::Pptx,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Odt => "odt",
            Format::Ods => "ods",
            Format::Odp => "odp",
        }
    }
}

/// What the first bytes say the content is, in words for a warning.
pub(crate) fn sniff(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        "a ZIP archive"
    } else if bytes.starts_with(b"%PDF") {
        "a PDF document"
    } else if bytes.starts_with(b"\xD0\xCF\x11\xE0") {
        "a legacy Office (OLE) document"
    } else if bytes.starts_with(b"{\\rtf") {
        "an RTF document"
    } else if bytes.iter().take(8192).any(|b| *b == 0) {
        "binary data"
    } else {
        "text"
    }
}

/// Converts a document of `format`; `None` when its content is not that format at all (the caller then treats the
/// bytes by what they are, with `mismatch` as the warning).
pub fn convert(bytes: &[u8], format: Format, budget: Budget) -> Result<Converted, String> {
    let found = sniff(bytes);
    if found != "a ZIP archive" {
        return Err(format!(
            "the item's fileExtension says .{} but its content is {found}, not a ZIP archive",
            format.name()
        ));
    }
    let mut archive = Archive::open(bytes, budget)?;
    let mut converted = Converted { converter: format.name(), ..Converted::default() };
    let text = match format {
        Format::Docx => {
            archive.text_of(&["word/document.xml", "word/footnotes.xml", "word/endnotes.xml"], Dialect::Ooxml)
        }
        Format::Pptx => {
            let mut slides = archive.names_matching("ppt/slides/slide", ".xml");
            slides.extend(archive.names_matching("ppt/notesSlides/notesSlide", ".xml"));
            archive.text_of_owned(&slides, Dialect::Ooxml)
        }
        Format::Xlsx => {
            let mut names = vec!["xl/workbook.xml".to_string(), "xl/sharedStrings.xml".to_string()];
            names.extend(archive.names_matching("xl/worksheets/sheet", ".xml"));
            archive.text_of_owned(&names, Dialect::Spreadsheet)
        }
        Format::Odt | Format::Ods | Format::Odp => archive.text_of(&["content.xml"], Dialect::Odf),
    };
    converted.text = text;
    let (title, author) = match format {
        Format::Odt | Format::Ods | Format::Odp => archive.properties("meta.xml"),
        _ => archive.properties("docProps/core.xml"),
    };
    (converted.title, converted.author) = (title, author);
    converted.warning = archive.problem.take();
    if converted.text.trim().is_empty() && converted.warning.is_none() {
        converted.warning = Some(format!("the {} document has no text", format.name()));
    }
    Ok(converted)
}

/// Converts by the item's `fileExtension`; `None` when no converter takes that extension.
pub fn convert_by_extension(bytes: &[u8], extension: &str, budget: Budget) -> Option<Result<Converted, String>> {
    let extension = extension.trim_start_matches('.').to_ascii_lowercase();
    Some(match extension.as_str() {
        "eml" => convert_mail(bytes, budget),
        "xml" => convert_xml(bytes),
        "md" | "markdown" | "mdown" | "mkd" => convert_markdown(bytes),
        "pdf" => crate::pdf::convert_pdf(bytes, budget),
        "rtf" => crate::rtf::convert_rtf(bytes, budget),
        other => convert(bytes, Format::from_extension(other)?, budget),
    })
}

/// Converts by what the content is, whatever its name says: a PDF, an RTF document, or an Office or OpenDocument
/// file told by the entries of its archive. `None` for anything else.
pub fn convert_by_content(bytes: &[u8], budget: Budget) -> Option<Converted> {
    match sniff(bytes) {
        "a PDF document" => crate::pdf::convert_pdf(bytes, budget).ok(),
        "an RTF document" => crate::rtf::convert_rtf(bytes, budget).ok(),
        "a ZIP archive" => convert(bytes, Format::of_archive(bytes)?, budget).ok(),
        _ => None,
    }
}

/// Which XML vocabulary an entry uses: where its text is, and what ends a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// WordprocessingML and DrawingML: text in `t` elements, paragraphs `p`.
    Ooxml,
    /// SpreadsheetML: shared strings and inline strings in `t`, cell values in `v`, sheet names as attributes.
    Spreadsheet,
    /// OpenDocument: every text node of the body; paragraphs and headings `p` and `h`.
    Odf,
    /// Any XML: every text node.
    Plain,
}

/// An archive being read within its budget; the first problem met is kept for the warning.
struct Archive<'a> {
    zip: zip::ZipArchive<Cursor<&'a [u8]>>,
    budget: Budget,
    read: u64,
    problem: Option<String>,
}

impl<'a> Archive<'a> {
    fn open(bytes: &'a [u8], budget: Budget) -> Result<Archive<'a>, String> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("the archive cannot be read: {e}"))?;
        if zip.len() > budget.archive_entries {
            return Err(format!(
                "the archive has {} entries, more than the {} allowed",
                zip.len(),
                budget.archive_entries
            ));
        }
        Ok(Archive { zip, budget, read: 0, problem: None })
    }

    fn note(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    /// Entry names `prefix` + anything + `suffix`, in natural order (slide2 before slide10).
    fn names_matching(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .zip
            .file_names()
            .filter_map(Result::ok)
            .filter(|name| name.starts_with(prefix) && name.ends_with(suffix))
            .map(|name| name.into_owned())
            .collect();
        let number = |name: &str| name[prefix.len()..name.len() - suffix.len()].parse::<u64>().unwrap_or(u64::MAX);
        names.sort_by_key(|name| (number(name), name.clone()));
        names
    }

    fn text_of(&mut self, names: &[&str], dialect: Dialect) -> String {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        self.text_of_owned(&names, dialect)
    }

    fn text_of_owned(&mut self, names: &[String], dialect: Dialect) -> String {
        let mut text = String::new();
        for name in names {
            if let Some(xml) = self.entry(name) {
                xml_text(&xml, dialect, &mut text).unwrap_or_else(|why| self.note(format!("{name}: {why}")));
            }
        }
        text
    }

    /// An entry's bytes, if it is there and within the budget.
    fn entry(&mut self, name: &str) -> Option<Vec<u8>> {
        let (bytes, problem) = self.read_entry(name);
        if let Some(problem) = problem {
            self.note(problem);
        }
        bytes
    }

    /// An entry's bytes (what could be read of them), and what went wrong.
    fn read_entry(&mut self, name: &str) -> (Option<Vec<u8>>, Option<String>) {
        let remaining = self.budget.expanded_bytes.saturating_sub(self.read);
        let max_ratio = self.budget.max_ratio;
        let mut file = match self.zip.by_name(name) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return (None, None),
            Err(error) => return (None, Some(format!("the entry {name} cannot be read: {error}"))),
        };
        if file.encrypted() {
            return (None, Some(format!("the entry {name} is encrypted")));
        }
        let (size, compressed) = (file.size(), file.compressed_size().max(1));
        if size > remaining {
            let why =
                format!("the entry {name} declares {size} bytes, over what is left of the budget ({remaining} bytes)");
            return (None, Some(why));
        }
        if size > 1024 * 1024 && size / compressed > max_ratio {
            let ratio = size / compressed;
            let why = format!(
                "the entry {name} would expand {ratio}× ({compressed} bytes to {size}): a zip bomb, not a document"
            );
            return (None, Some(why));
        }
        // The declared size may lie: never read past it, nor past the budget.
        let mut bytes = Vec::with_capacity(size as usize);
        let read = (&mut file).take(size.min(remaining)).read_to_end(&mut bytes);
        drop(file);
        self.read += bytes.len() as u64;
        (Some(bytes), read.err().map(|error| format!("the entry {name} is damaged: {error}")))
    }

    /// The document's title and author from its properties entry.
    fn properties(&mut self, name: &str) -> (Option<String>, Option<String>) {
        let Some(xml) = self.entry(name) else {
            return (None, None);
        };
        let mut reader = quick_xml::Reader::from_reader(&xml[..]);
        let (mut title, mut author, mut inside) = (None, None, None);
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf) {
                Ok(Event::Start(start)) => {
                    inside = match start.local_name().into_inner() {
                        "title" => Some(true),
                        "creator" | "initial-creator" => Some(false),
                        _ => None,
                    };
                }
                Ok(Event::Text(text)) => {
                    let value = text.xml10_content().trim().to_string();
                    match inside {
                        Some(true) if !value.is_empty() => title = title.or(Some(value)),
                        Some(false) if !value.is_empty() => author = author.or(Some(value)),
                        _ => {}
                    }
                }
                Ok(Event::End(_)) => inside = None,
                Ok(Event::Eof) | Err(_) => break,
                _ => {}
            }
            buf.clear();
        }
        (title, author)
    }
}

/// Appends the text of an XML entry to `out`, a line per paragraph; an error is where the XML broke (the text
/// before it is kept).
fn xml_text(xml: &[u8], dialect: Dialect, out: &mut String) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    // The innermost element's local name decides whether its text is content (OOXML keeps text in `t`).
    let mut in_text = false;
    let mut in_body = dialect != Dialect::Odf;
    let every_text = matches!(dialect, Dialect::Odf | Dialect::Plain);
    let mut shared_string_cell = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let name = start.local_name().into_inner();
                match (dialect, name) {
                    (Dialect::Odf, "body") => in_body = true,
                    (Dialect::Ooxml | Dialect::Spreadsheet, "t") => in_text = true,
                    (Dialect::Spreadsheet, "c") => {
                        shared_string_cell =
                            start.attributes().flatten().any(|a| a.key.as_ref() == "t" && a.value.as_ref() == "s");
                    }
                    (Dialect::Spreadsheet, "v") => in_text = !shared_string_cell,
                    (Dialect::Spreadsheet, "sheet") => {
                        if let Some(sheet) = start.attributes().flatten().find(|a| a.key.as_ref() == "name") {
                            push_line(out, &sheet.value);
                        }
                    }
                    (_, "tab") => out.push('\t'),
                    (_, "br" | "line-break") => out.push('\n'),
                    (Dialect::Odf, "s") => out.push(' '),
                    _ => {}
                }
            }
            Event::End(end) => match end.local_name().into_inner() {
                "t" | "v" => in_text = false,
                "p" | "h" | "si" | "c" | "table-cell" => end_line(out),
                "body" if dialect == Dialect::Odf => in_body = false,
                _ => {}
            },
            Event::Text(text) if in_body && (in_text || every_text) => out.push_str(&text.xml10_content()),
            Event::CData(data) if in_body && (in_text || every_text) => {
                out.push_str(data.as_ref());
            }
            Event::GeneralRef(reference) if in_body && (in_text || every_text) => {
                if let Ok(Some(c)) = reference.resolve_char_ref() {
                    out.push(c);
                } else if let Some(text) = quick_xml::escape::resolve_predefined_entity(&reference.xml10_content()) {
                    out.push_str(text);
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

fn end_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn push_line(out: &mut String, line: &str) {
    end_line(out);
    out.push_str(line);
    out.push('\n');
}

/// An e-mail (`.eml`, `message/rfc822`): its subject (the title), sender, recipients and date as fields, the text
/// of its body parts (HTML parts without markup), and the text of its attachments that convert (PDF, Office,
/// OpenDocument, RTF, text), by their name or their content, within what is left of the budget.
pub fn convert_mail(bytes: &[u8], budget: Budget) -> Result<Converted, String> {
    let message = mail_parser::MessageParser::default()
        .parse(bytes)
        .filter(|message| message.subject().is_some() || message.from().is_some() || message.date().is_some())
        .ok_or_else(|| {
            format!("the item's fileExtension says .eml but its content is {}, not an e-mail message", sniff(bytes))
        })?;
    let mut converted = Converted { converter: "eml", ..Converted::default() };
    converted.title = message.subject().map(str::to_string);
    let addresses = |address: Option<&mail_parser::Address>| -> Vec<String> {
        address.into_iter().flat_map(|a| a.iter()).filter_map(|a| a.address().map(str::to_string)).collect()
    };
    let from = addresses(message.from());
    converted.author = from.first().cloned();
    let to = addresses(message.to());
    converted.fields = [("from", from), ("to", to)]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(key, values)| (key, values.join(", ")))
        .collect();
    if let Some(date) = message.date() {
        converted.fields.push(("date", date.to_rfc3339()));
    }
    let (mut left, started) = (budget.expanded_bytes, std::time::Instant::now());
    for part in message.text_bodies() {
        let text = part.text_contents().unwrap_or_default();
        let text =
            if part.is_text_html() { crate::extract::extract_html(text.as_bytes()).text } else { text.to_string() };
        push_within(&mut converted.text, &text, &mut left);
    }
    for attachment in message.attachments() {
        let name = mail_parser::MimeHeaders::attachment_name(attachment).unwrap_or("");
        let contents = attachment.contents();
        if contents.len() as u64 > left {
            converted.warning.get_or_insert(format!("the attachment '{name}' is over what is left of the budget"));
            continue;
        }
        let extension = name.rsplit_once('.').map(|(_, extension)| extension).unwrap_or("");
        let left_of_budget =
            Budget { expanded_bytes: left, time: budget.time.saturating_sub(started.elapsed()), ..budget };
        // Attached messages are not converted again: mail-parser reads the parts of nested messages itself.
        let by_extension = (!extension.eq_ignore_ascii_case("eml"))
            .then(|| convert_by_extension(contents, extension, left_of_budget))
            .flatten()
            .and_then(Result::ok);
        let text = by_extension
            .or_else(|| convert_by_content(contents, left_of_budget))
            .map(|converted| converted.text)
            .or_else(|| attachment.is_text().then(|| attachment.text_contents().map(str::to_string)).flatten());
        if let Some(text) = text {
            push_within(&mut converted.text, &text, &mut left);
        }
    }
    if converted.text.trim().is_empty() && converted.title.is_none() {
        converted.warning.get_or_insert("the e-mail has no text".to_string());
    }
    Ok(converted)
}

/// Appends a part's text on its own lines, within what is left of the budget.
fn push_within(out: &mut String, text: &str, left: &mut u64) {
    let mut cut = text.len().min(*left as usize);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    end_line(out);
    out.push_str(&text[..cut]);
    *left -= cut as u64;
}

/// The text of an XML document, without its markup.
pub fn convert_xml(bytes: &[u8]) -> Result<Converted, String> {
    let found = sniff(bytes);
    if found != "text" {
        return Err(format!("the item's fileExtension says .xml but its content is {found}"));
    }
    let mut converted = Converted { converter: "xml", ..Converted::default() };
    if let Err(why) = xml_text(bytes, Dialect::Plain, &mut converted.text) {
        converted.warning = Some(why);
    }
    Ok(converted)
}

/// Markdown: its text without the markup (emphasis, links' targets, fences, table pipes), HTML blocks without
/// their tags, a line per block; the first level-one heading is the title.
pub fn convert_markdown(bytes: &[u8]) -> Result<Converted, String> {
    use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
    let found = sniff(bytes);
    if found != "text" {
        return Err(format!("the item's fileExtension says .md but its content is {found}"));
    }
    let text = match decode_text(bytes) {
        Some((text, _)) => text,
        None => String::from_utf8_lossy(bytes).into_owned(),
    };
    let mut converted = Converted { converter: "markdown", ..Converted::default() };
    let (out, mut title, mut in_title) = (&mut converted.text, String::new(), false);
    let options = Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(&text, options) {
        match event {
            Event::Text(text) | Event::Code(text) => {
                if in_title {
                    title.push_str(&text);
                }
                out.push_str(&text);
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                let text = crate::extract::extract_html(html.as_bytes()).text;
                if !text.is_empty() {
                    out.push_str(&text);
                    out.push(' ');
                }
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Heading { level: HeadingLevel::H1, .. }) if title.is_empty() => in_title = true,
            Event::End(TagEnd::TableCell) => out.push('\t'),
            Event::End(end) => {
                in_title &= !matches!(end, TagEnd::Heading(_));
                if matches!(
                    end,
                    TagEnd::Paragraph
                        | TagEnd::Heading(_)
                        | TagEnd::Item
                        | TagEnd::CodeBlock
                        | TagEnd::TableHead
                        | TagEnd::TableRow
                        | TagEnd::BlockQuote(_)
                ) {
                    end_line(out);
                }
            }
            _ => {}
        }
    }
    let title = title.trim();
    converted.title = (!title.is_empty()).then(|| title.to_string());
    Ok(converted)
}

/// HTML that is not UTF-8, decoded: from the charset its `<meta>` declares in its first 1,024 bytes (as browsers
/// look for it), else as [`decode_text`] detects it. `None` when it already is UTF-8.
pub fn decode_html(bytes: &[u8]) -> Option<(String, &'static str)> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let declared = head.find("charset=").and_then(|at| {
        let label: String = head[at + 8..]
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
            .collect();
        encoding_rs::Encoding::for_label(label.as_bytes())
    });
    match declared {
        // A page that declares UTF-8 but is not: its bytes are replaced where broken, as a browser shows them.
        Some(encoding) => {
            let (text, _, _) = encoding.decode(bytes);
            Some((text.into_owned(), encoding.name()))
        }
        None => decode_text(bytes),
    }
}

/// Text that is not UTF-8: its charset detected (or as declared), decoded. `None` when it already is UTF-8.
pub fn decode_text(bytes: &[u8]) -> Option<(String, &'static str)> {
    if std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return Some((text.into_owned(), encoding.name()));
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    // Not UTF-8 (checked above), so the guess is among the legacy charsets.
    let encoding = detector.guess(None, chardetng::Utf8Detection::Deny);
    let (text, _, _) = encoding.decode(bytes);
    Some((text.into_owned(), encoding.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A ZIP archive of `(name, content)` entries, deflated.
    pub(crate) fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_word_document_gives_its_paragraphs_title_and_author() {
        let document = br#"<?xml version="1.0"?><w:document xmlns:w="w"><w:body>
            <w:p><w:r><w:t>Fish &amp; chips</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve"> are good</w:t></w:r></w:p>
            <w:p><w:r><w:instrText>PAGE</w:instrText><w:t>Second paragraph</w:t></w:r></w:p></w:body></w:document>"#;
        let core = br#"<cp:coreProperties xmlns:cp="c" xmlns:dc="d"><dc:title>Menu</dc:title><dc:creator>Alice</dc:creator></cp:coreProperties>"#;
        let bytes = archive(&[("word/document.xml", document), ("docProps/core.xml", core)]);
        let converted = convert(&bytes, Format::Docx, Budget::default()).unwrap();
        assert_eq!(converted.text, "Fish & chips\t are good\nSecond paragraph\n");
        assert_eq!((converted.title.as_deref(), converted.author.as_deref()), (Some("Menu"), Some("Alice")));
        assert_eq!((converted.converter, converted.warning), ("docx", None));
    }

    #[test]
    fn a_spreadsheet_gives_sheet_names_strings_and_numbers() {
        let workbook = br#"<workbook><sheets><sheet name="Budget 2024" sheetId="1"/></sheets></workbook>"#;
        let strings = br#"<sst><si><t>Rent</t></si><si><t>Coffee</t></si></sst>"#;
        let sheet = br#"<worksheet><sheetData><row><c r="A1" t="s"><v>0</v></c><c r="B1"><v>1200.5</v></c></row></sheetData></worksheet>"#;
        let bytes = archive(&[
            ("xl/workbook.xml", workbook),
            ("xl/sharedStrings.xml", strings),
            ("xl/worksheets/sheet1.xml", sheet),
        ]);
        let converted = convert(&bytes, Format::Xlsx, Budget::default()).unwrap();
        assert_eq!(converted.text, "Budget 2024\nRent\nCoffee\n1200.5\n");
    }

    #[test]
    fn slides_come_in_order_with_their_notes() {
        let slide = |text: &str| format!(r#"<p:sld><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>"#).into_bytes();
        let (two, ten, note) = (slide("second slide"), slide("tenth slide"), slide("speaker note"));
        let bytes = archive(&[
            ("ppt/slides/slide10.xml", &ten),
            ("ppt/slides/slide2.xml", &two),
            ("ppt/notesSlides/notesSlide2.xml", &note),
        ]);
        let converted = convert(&bytes, Format::Pptx, Budget::default()).unwrap();
        assert_eq!(converted.text, "second slide\ntenth slide\nspeaker note\n");
    }

    #[test]
    fn an_opendocument_gives_its_body_text() {
        let content = br#"<office:document-content xmlns:office="o" xmlns:text="t"><office:automatic-styles><style>not text</style></office:automatic-styles>
            <office:body><office:text><text:h>Title line</text:h><text:p>One<text:s/>two <text:span>three</text:span></text:p></office:text></office:body></office:document-content>"#;
        let meta = br#"<office:document-meta><office:meta><dc:title>Notes</dc:title><meta:initial-creator>Bob</meta:initial-creator></office:meta></office:document-meta>"#;
        let bytes = archive(&[("content.xml", content), ("meta.xml", meta)]);
        let converted = convert(&bytes, Format::Odt, Budget::default()).unwrap();
        assert_eq!(converted.text, "Title line\nOne two three\n");
        assert_eq!((converted.title.as_deref(), converted.author.as_deref()), (Some("Notes"), Some("Bob")));
    }

    #[test]
    fn a_zip_bomb_stops_at_the_ratio_bound_with_the_reason() {
        let zeros = vec![b'a'; 50 * 1024 * 1024];
        let bytes = archive(&[("word/document.xml", &zeros)]);
        assert!(bytes.len() < 200 * 1024, "{} bytes", bytes.len());
        let converted = convert(&bytes, Format::Docx, Budget::default()).unwrap();
        let warning = converted.warning.unwrap();
        assert!(warning.contains("word/document.xml would expand") && warning.contains("zip bomb"), "{warning}");
        assert!(converted.text.is_empty());
        let small = Budget { expanded_bytes: 1000, ..Budget::default() };
        let bytes = archive(&[("word/document.xml", &[b'b'; 5000])]);
        let warning = convert(&bytes, Format::Docx, small).unwrap().warning.unwrap();
        assert!(warning.contains("declares 5000 bytes, over what is left of the budget (1000 bytes)"), "{warning}");
    }

    #[test]
    fn malformed_and_mislabelled_documents_say_why() {
        let error = convert(b"%PDF-1.7 not a zip", Format::Docx, Budget::default()).unwrap_err();
        assert!(error.contains(".docx but its content is a PDF document"), "{error}");
        let error = convert(b"PK\x03\x04 truncated", Format::Odt, Budget::default()).unwrap_err();
        assert!(error.contains("the archive cannot be read"), "{error}");
        let bytes = archive(&[("word/document.xml", b"<w:document><w:p><w:t>kept</w:t></w:p><w:p></w:document>")]);
        let converted = convert(&bytes, Format::Docx, Budget::default()).unwrap();
        assert_eq!(converted.text, "kept\n");
        assert!(converted.warning.unwrap().contains("word/document.xml: not well-formed XML"));
    }

    #[test]
    fn an_email_gives_its_headers_as_fields_and_the_text_of_its_parts() {
        use base64::Engine as _;
        let word = archive(&[(
            "word/document.xml",
            b"<w:document><w:p><w:t>Attached minutes of the board</w:t></w:p></w:document>",
        )]);
        let encoded = {
            use std::fmt::Write as _;
            let mut text = String::new();
            for chunk in word.chunks(57) {
                let _ = writeln!(text, "{}", base64::engine::general_purpose::STANDARD.encode(chunk));
            }
            text
        };
        let mail = format!(
            "From: Alice Martin <alice@example.com>\r\nTo: bob@example.com, carol@example.com\r\nSubject: Board meeting\r\n\
             Date: Tue, 2 Jan 2024 03:04:05 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the <b>agenda</b> below.</p>\r\n\
             --b\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=\"minutes.docx\"\r\n\
             Content-Disposition: attachment; filename=\"minutes.docx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}--b--\r\n"
        );
        let converted = convert_by_extension(mail.as_bytes(), ".eml", Budget::default()).unwrap().unwrap();
        assert_eq!(converted.title.as_deref(), Some("Board meeting"));
        assert_eq!(converted.author.as_deref(), Some("alice@example.com"));
        assert!(converted.text.contains("See the agenda below."), "{}", converted.text);
        assert!(converted.text.contains("Attached minutes of the board"), "{}", converted.text);
        let field = |key| converted.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(field("to"), Some("bob@example.com, carol@example.com"));
        assert_eq!(field("date"), Some("2024-01-02T03:04:05Z"));
        let error = convert_by_extension(b"\x00\x01binary", "eml", Budget::default()).unwrap().unwrap_err();
        assert!(error.contains(".eml but its content is binary data"), "{error}");
    }

    #[test]
    fn xml_gives_its_text_without_markup() {
        let converted = convert_by_extension(
            br#"<?xml version="1.0"?><book><title>Rust &amp; you</title><para>Chapter <em>one</em></para></book>"#,
            "xml",
            Budget::default(),
        )
        .unwrap()
        .unwrap();
        assert!(converted.text.contains("Rust & you") && converted.text.contains("Chapter one"), "{}", converted.text);
        assert!(convert_by_extension(b"x", ".png", Budget::default()).is_none());
    }

    #[test]
    fn html_is_decoded_from_the_charset_it_declares() {
        let page =
            b"<html><head><meta charset=\"iso-8859-15\"><title>Caf\xe9</title></head><body>Prix: 5 \xa4</body></html>";
        let (html, charset) = decode_html(page).unwrap();
        assert_eq!(charset, "ISO-8859-15");
        assert!(html.contains("Café") && html.contains("5 €"), "{html}");
        let http_equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\"><p>\xcf\xf0\xe8\xe2\xe5\xf2</p>";
        assert!(decode_html(http_equiv).unwrap().0.contains("Привет"));
        assert_eq!(decode_html("<p>déjà</p>".as_bytes()), None, "UTF-8 stays as it is");
    }

    #[test]
    fn text_in_another_charset_is_decoded() {
        assert_eq!(decode_text("déjà vu".as_bytes()), None, "UTF-8 stays as it is");
        let latin1 = b"Caf\xe9 cr\xe8me br\xfbl\xe9e, d\xe9j\xe0 servie \xe0 la fran\xe7aise";
        let (text, charset) = decode_text(latin1).unwrap();
        assert_eq!(text, "Café crème brûlée, déjà servie à la française");
        assert_eq!(charset, "windows-1252");
        let utf16 = [0xFF, 0xFE, b'h', 0, b'i', 0];
        assert_eq!(decode_text(&utf16), Some(("hi".to_string(), "UTF-16LE")));
    }

    #[test]
    fn markdown_without_its_markup() {
        let markdown = "# Release *notes*\n\nThe **harbour** [crane](https://example.com/crane) is `ready`.\n\n\
                        | Ship | Berth |\n| --- | --- |\n| Aurora | 4 |\n\n- first\n- second\n\n\
                        ```rust\nlet cargo = 1;\n```\n\n<div class=\"note\">Mind <b>the gap</b></div>\n";
        let converted = convert_by_extension(markdown.as_bytes(), ".md", Budget::default()).unwrap().unwrap();
        assert_eq!(converted.converter, "markdown");
        assert_eq!(converted.title.as_deref(), Some("Release notes"));
        assert_eq!(
            converted.text,
            "Release notes\nThe harbour crane is ready.\nShip\tBerth\t\nAurora\t4\t\nfirst\nsecond\n\
             let cargo = 1;\nMind the gap "
        );
        assert!(!converted.text.contains("https://"), "link targets are not text");
    }

    #[test]
    fn an_e_mail_s_pdf_and_rtf_attachments_are_converted_by_name_or_content() {
        use base64::Engine;
        let pdf = crate::pdf::tests::pdf(b"BT /F1 12 Tf 72 720 Td (Invoice for the harbour crane.) Tj ET", |_, _| {});
        let pdf = base64::engine::general_purpose::STANDARD.encode(pdf);
        let mail = format!(
            "From: a@example.com\r\nSubject: Papers\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
             See attached.\r\n--b\r\nContent-Type: application/pdf\r\n\
             Content-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {pdf}\r\n--b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"minutes.bin\"\r\n\r\n\
             {{\\rtf1 Minutes of the {{\\b dock}} meeting.}}\r\n--b--\r\n"
        );
        let converted = convert_mail(mail.as_bytes(), Budget::default()).unwrap();
        assert!(converted.text.contains("See attached."), "{}", converted.text);
        assert!(converted.text.contains("Invoice for the harbour crane."), "by its name: {}", converted.text);
        assert!(converted.text.contains("Minutes of the dock meeting."), "by its content: {}", converted.text);
    }
}
