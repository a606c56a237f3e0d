//! PDF: the text of a document's pages in reading order, laid out from the glyphs' positions (pdf-extract on
//! lopdf), and its title, author, page count and creation date.
//!
//! A PDF is a graph of compressed objects that anyone may have written, and the parsers recurse once per level of
//! nesting and inflate streams without a bound. So before a parser sees the document, every stream is inflated into
//! a counter (a flate bomb or a 5 GB-declared stream costs the budget, not memory) and the nesting of its syntax
//! is measured. Extraction then runs on a thread of its own, with a stack deep enough for that nesting and the
//! deadline checked as glyphs come; a panic there (the parsers `unwrap` on some malformed input) is a malformed
//! document, not a crash.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use flate2::{Decompress, FlushDecompress, Status};
use lopdf::{Dictionary, Document, Object, ObjectId};
use pdf_extract::{ColorSpace, ConvertToFmt, MediaBox, OutputDev, OutputError, Path, PlainTextOutput, Transform};

use crate::convert::{Budget, Converted, sniff};

/// The deepest nesting of arrays, dictionaries and procedures the parsers are given. Real documents nest a few
/// levels; the extraction thread's stack is sized for this many.
const MAX_NESTING: usize = 10_000;

/// The extraction thread's stack: room for [`MAX_NESTING`] levels of the parsers' recursion, with a wide margin.
/// Address space reserved, not memory used: the pages a shallow document never touches are never committed.
const STACK_BYTES: usize = 256 * 1024 * 1024;

/// The name of the extraction thread: its panics are reported as the document's warning, not on stderr.
const THREAD_NAME: &str = "intake-pdf";

/// Converts a PDF. `Err` only when the content is not a PDF at all; a PDF that cannot be read (damaged, encrypted
/// with a password, over a bound) is converted to no text, with the reason as a warning.
pub fn convert_pdf(bytes: &[u8], budget: Budget) -> Result<Converted, String> {
    let header = &bytes[..bytes.len().min(1024)];
    if memchr::memmem::find(header, b"%PDF-").is_none() {
        return Err(format!(
            "the item's fileExtension says .pdf but its content is {}, not a PDF document",
            sniff(bytes)
        ));
    }
    let mut converted = Converted { converter: "pdf", ..Converted::default() };
    let deadline = Instant::now() + budget.time;
    let outcome =
        check_streams(bytes, budget.expanded_bytes).and_then(|()| extract_on_own_thread(bytes, budget, deadline));
    match outcome {
        Ok(pdf) => {
            converted.text = pdf.text;
            converted.title = pdf.title;
            converted.author = pdf.author;
            converted.fields.push(("pages", pdf.pages.to_string()));
            converted.fields.extend(pdf.created.map(|date| ("date", date)));
            converted.warning = pdf.problem;
        }
        Err(why) => converted.warning = Some(why),
    }
    if converted.text.trim().is_empty() && converted.warning.is_none() {
        converted.warning = Some("the PDF has no text (a scan, or text drawn as shapes)".to_string());
    }
    Ok(converted)
}

/// What was read of a PDF.
struct Pdf {
    text: String,
    title: Option<String>,
    author: Option<String>,
    pages: usize,
    /// The creation date, RFC 3339.
    created: Option<String>,
    /// Why the text is partial.
    problem: Option<String>,
}

/// Runs the extraction on a thread of its own (see the module's doc), waiting for it.
fn extract_on_own_thread(bytes: &[u8], budget: Budget, deadline: Instant) -> Result<Pdf, String> {
    quiet_panics_of_extraction();
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, move || extract(bytes, budget, deadline))
            .map_err(|error| format!("the PDF could not be converted: no thread for it ({error})"))?;
        thread.join().unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(format!("the PDF is malformed: its parser gave up ({message})"))
        })
    })
}

fn extract(bytes: &[u8], budget: Budget, deadline: Instant) -> Result<Pdf, String> {
    let document = Document::load_mem(bytes).map_err(|error| format!("the PDF cannot be read: {error}"))?;
    if document.is_encrypted() && document.encryption_state.is_none() {
        return Err("the PDF is encrypted with a password: its text cannot be read".to_string());
    }
    if document.encryption_state.is_some() {
        // Decrypted as it was loaded: its streams could not be measured before.
        check_decrypted_streams(&document, budget.expanded_bytes)?;
    }
    let info = info(&document);
    let text_of = |key: &[u8]| info.and_then(|info| info.get(key).ok()).and_then(text_string);
    let mut output = Output::new(deadline, budget.expanded_bytes);
    let problem = match pdf_extract::output_doc(&document, &mut output) {
        Ok(()) => unreadable_contents(&document),
        Err(_) if output.over.is_some() => output.over.take(),
        Err(error) => Some(format!("the PDF is damaged; the text before the damage was kept: {error}")),
    };
    Ok(Pdf {
        title: text_of(b"Title"),
        author: text_of(b"Author"),
        created: text_of(b"CreationDate").and_then(|date| pdf_date(&date)),
        pages: document.get_pages().len(),
        text: output.into_text(),
        problem,
    })
}

/// Pages whose content streams the parser could not read (pdf-extract skips them in silence), as a warning.
fn unreadable_contents(document: &Document) -> Option<String> {
    let is_stream = |id: ObjectId| matches!(document.get_object(id), Ok(Object::Stream(_)));
    let readable = |page: ObjectId| match document.get_dictionary(page).and_then(|page| page.get(b"Contents")) {
        Ok(Object::Reference(id)) => is_stream(*id) || matches!(document.get_object(*id), Ok(Object::Array(_))),
        Ok(Object::Array(parts)) => parts.iter().all(|part| part.as_reference().is_ok_and(is_stream)),
        // A page without content is blank, not damaged.
        Err(_) => true,
        Ok(_) => false,
    };
    let pages = document.get_pages();
    let unreadable = pages.values().filter(|page| !readable(**page)).count();
    (unreadable > 0).then(|| {
        format!(
            "the PDF is damaged: the content of {unreadable} of its {} pages cannot be read (a stream's /Length \
             is wrong, or the file is cut short)",
            pages.len()
        )
    })
}

/// The document information dictionary.
fn info(document: &Document) -> Option<&Dictionary> {
    match document.trailer.get(b"Info").ok()? {
        Object::Reference(id) => document.get_dictionary(*id).ok(),
        Object::Dictionary(info) => Some(info),
        _ => None,
    }
}

/// A text string of the information dictionary (PDFDocEncoding or UTF-16), trimmed; `None` when empty.
fn text_string(object: &Object) -> Option<String> {
    let text = lopdf::decode_text_string(object).ok()?;
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!text.is_empty()).then(|| text.to_string())
}

/// A PDF date (`D:YYYYMMDDHHmmSSOHH'mm'`, every part after the year optional) as RFC 3339.
fn pdf_date(date: &str) -> Option<String> {
    let digits = date.strip_prefix("D:").unwrap_or(date);
    let part = |at: usize, len: usize, default: u32| -> Option<u32> {
        match digits.get(at..at + len) {
            Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
            _ => Some(default),
        }
    };
    let year = digits.get(..4)?.parse::<u32>().ok()?;
    let (month, day) = (part(4, 2, 1)?, part(6, 2, 1)?);
    let (hour, minute, second) = (part(8, 2, 0)?, part(10, 2, 0)?, part(12, 2, 0)?);
    let zone = match digits.get(14..15) {
        Some(sign @ ("+" | "-")) => {
            let hours = part(15, 2, 0)?;
            let minutes = digits.get(18..20).and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
            format!("{sign}{hours:02}:{minutes:02}")
        }
        _ => "Z".to_string(),
    };
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 61;
    valid.then(|| format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}"))
}

/// Inflates every stream of the file into a counter and measures the nesting the parsers will meet: the
/// document's own syntax, and the streams that are syntax too (content and object streams; not images or fonts,
/// whose bytes are data). Over the budget or too deep is the reason the PDF is not converted.
fn check_streams(bytes: &[u8], budget: u64) -> Result<(), String> {
    let mut expanded = Expanded { total: 0, budget, inflater: Decompress::new(true), buffer: vec![0; 64 * 1024] };
    let mut syntax_from = 0;
    let mut nesting = Nesting::default();
    for at in memchr::memmem::find_iter(bytes, b"stream") {
        let payload = match bytes.get(at + 6..) {
            Some([b'\r', b'\n', ..]) => at + 8,
            Some([b'\n' | b'\r', ..]) => at + 7,
            _ => continue,
        };
        if at < syntax_from || bytes[..at].ends_with(b"end") {
            continue;
        }
        nesting.scan(&bytes[syntax_from..at])?;
        syntax_from = memchr::memmem::find(&bytes[payload..], b"endstream").map_or(bytes.len(), |end| payload + end);
        let stored = &bytes[payload..syntax_from];
        if expanded.inflate(&bytes[payload..])? > 0 {
            continue;
        }
        if lzw_compressed(&bytes[..at]) {
            expanded.lzw(stored)?;
        } else if looks_like_syntax(stored) {
            // A stream stored as it is (no filter) is parsed as it is: measured as syntax when it reads as syntax.
            Nesting::default().scan(stored)?;
        }
    }
    nesting.scan(&bytes[syntax_from.min(bytes.len())..])
}

/// Whether the dictionary of the stream whose `stream` keyword ends `before` names the LZW filter: the text from
/// its object's `obj` keyword (in the last 64 KiB) on.
fn lzw_compressed(before: &[u8]) -> bool {
    let window = &before[before.len().saturating_sub(64 * 1024)..];
    let dictionary = memchr::memmem::rfind(window, b"obj").map_or(window, |at| &window[at..]);
    memchr::memmem::find(dictionary, b"LZWDecode").is_some()
}

/// The streams of a decrypted document, measured as [`check_streams`] measures a file's.
fn check_decrypted_streams(document: &Document, budget: u64) -> Result<(), String> {
    let mut expanded = Expanded { total: 0, budget, inflater: Decompress::new(true), buffer: vec![0; 64 * 1024] };
    for object in document.objects.values() {
        if let Object::Stream(stream) = object {
            expanded.inflate(&stream.content)?;
        }
    }
    Ok(())
}

/// Streams inflated so far, into a buffer that is overwritten: only their size and nesting are kept.
struct Expanded {
    total: u64,
    budget: u64,
    inflater: Decompress,
    buffer: Vec<u8>,
}

impl Expanded {
    /// Inflates the zlib stream at the start of `data`, if there is one, to its end or the budget's; the bytes it
    /// expanded to (0: not zlib).
    fn inflate(&mut self, data: &[u8]) -> Result<u64, String> {
        self.inflater.reset(true);
        let mut nesting = Nesting::default();
        let mut syntax = None;
        loop {
            let (read, written) = (self.inflater.total_in(), self.inflater.total_out());
            let input = data.get(read as usize..).unwrap_or_default();
            let status = self.inflater.decompress(input, &mut self.buffer, FlushDecompress::None);
            let produced = (self.inflater.total_out() - written) as usize;
            let chunk = &self.buffer[..produced];
            // Whether the stream is syntax is told by its first bytes: text, or data.
            if *syntax.get_or_insert_with(|| looks_like_syntax(chunk)) {
                nesting.scan(chunk)?;
            }
            self.count(produced as u64)?;
            let progressed = self.inflater.total_in() > read || produced > 0;
            match status {
                Ok(Status::Ok | Status::BufError) if progressed => {}
                // Not zlib (an image's own compression, a false `stream` keyword), damaged, or done.
                _ => return Ok(self.inflater.total_out()),
            }
        }
    }

    /// Decodes an LZW stream (as lopdf does: most significant bit first, the code size switching early) into the
    /// counter: LZW expands up to about 2,700 times, so it is measured like deflate.
    fn lzw(&mut self, data: &[u8]) -> Result<(), String> {
        let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        let (mut read, mut nesting, mut syntax) = (0, Nesting::default(), None);
        loop {
            let result = decoder.decode_bytes(data.get(read..).unwrap_or_default(), &mut self.buffer);
            read += result.consumed_in;
            let chunk = &self.buffer[..result.consumed_out];
            if *syntax.get_or_insert_with(|| looks_like_syntax(chunk)) {
                nesting.scan(chunk)?;
            }
            self.count(result.consumed_out as u64)?;
            let progressed = result.consumed_in > 0 || result.consumed_out > 0;
            if !matches!(result.status, Ok(weezl::LzwStatus::Ok)) || !progressed {
                return Ok(());
            }
        }
    }

    /// Adds `produced` bytes to the total; over the budget is the reason the PDF is not converted.
    fn count(&mut self, produced: u64) -> Result<(), String> {
        self.total += produced;
        if self.total > self.budget {
            return Err(format!(
                "the PDF's streams expand to more than {} bytes, the conversion budget: a compression bomb, \
                 or a document too large to convert",
                self.budget
            ));
        }
        Ok(())
    }
}

/// Whether a stream's first inflated bytes read as PDF syntax (content, object streams) rather than data.
fn looks_like_syntax(head: &[u8]) -> bool {
    let head = &head[..head.len().min(1024)];
    let text = head.iter().filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()).count();
    !head.is_empty() && text * 100 >= head.len() * 95
}

/// The depth of brackets met so far (`[`, `<<`, `{`; a hex string's `<` counts too and closes at once).
#[derive(Default)]
struct Nesting {
    depth: usize,
}

impl Nesting {
    fn scan(&mut self, bytes: &[u8]) -> Result<(), String> {
        for byte in bytes {
            match byte {
                b'[' | b'<' | b'{' => {
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        return Err(format!(
                            "the PDF nests arrays or dictionaries more than {MAX_NESTING} deep: a document \
                             made to crash parsers, not one to read"
                        ));
                    }
                }
                b']' | b'>' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The text being written by pdf-extract's plain-text layout, shared with [`Output`], which measures it.
#[derive(Clone, Default)]
struct SharedText(Rc<RefCell<String>>);

impl ConvertToFmt for SharedText {
    type Writer = SharedText;
    fn convert(self) -> SharedText {
        self
    }
}

impl std::fmt::Write for SharedText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.borrow_mut().push_str(text);
        Ok(())
    }
}

/// pdf-extract's plain-text layout (words and lines from the glyphs' positions), stopped at the deadline or when
/// the text outgrows the budget.
struct Output {
    layout: PlainTextOutput<SharedText>,
    text: SharedText,
    deadline: Instant,
    max_bytes: u64,
    /// Calls since the clock was last read (reading it for each glyph costs a few percent).
    calls: u32,
    /// The bound that stopped the extraction, said for the warning.
    over: Option<String>,
}

impl Output {
    fn new(deadline: Instant, max_bytes: u64) -> Output {
        let text = SharedText::default();
        Output { layout: PlainTextOutput::new(text.clone()), text, deadline, max_bytes, calls: 0, over: None }
    }

    fn into_text(self) -> String {
        drop(self.layout);
        Rc::try_unwrap(self.text.0).map(RefCell::into_inner).unwrap_or_else(|shared| shared.borrow().clone())
    }

    /// An error that stops the extraction once a bound is passed.
    fn within_bounds(&mut self) -> Result<(), OutputError> {
        self.calls += 1;
        if self.calls < 256 {
            return Ok(());
        }
        self.calls = 0;
        let over = if Instant::now() > self.deadline {
            "the PDF took longer to convert than the conversion budget allows; the text before was kept"
        } else if self.text.0.borrow().len() as u64 > self.max_bytes {
            "the PDF's text is larger than the conversion budget; the text before was kept"
        } else {
            return Ok(());
        };
        self.over = Some(over.to_string());
        Err(OutputError::IoError(std::io::Error::other(over)))
    }
}

impl OutputDev for Output {
    fn begin_page(
        &mut self,
        page: u32,
        media_box: &MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        self.within_bounds()?;
        self.layout.begin_page(page, media_box, art_box)
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        self.layout.end_page()
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        self.within_bounds()?;
        self.layout.output_character(trm, width, spacing, font_size, char)
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.layout.begin_word()
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        self.layout.end_word()
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        self.layout.end_line()
    }

    // Drawing without text still counts against the deadline.
    fn stroke(&mut self, _: &Transform, _: &ColorSpace, _: &[f64], _: &Path) -> Result<(), OutputError> {
        self.within_bounds()
    }

    fn fill(&mut self, _: &Transform, _: &ColorSpace, _: &[f64], _: &Path) -> Result<(), OutputError> {
        self.within_bounds()
    }
}

/// Extraction panics are the document's warning: the default hook would also print them, with a backtrace
/// hint, on the server's stderr. Other threads' panics are printed as before.
fn quiet_panics_of_extraction() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(THREAD_NAME) {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lopdf::{Stream, dictionary};
    use std::time::Duration;

    /// A one-page PDF in Helvetica showing `content`'s text operators, with an information dictionary;
    /// `change` may add to the document and the page before it is written.
    pub(crate) fn pdf(content: &[u8], change: impl FnOnce(&mut Document, &mut Dictionary)) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding",
        });
        let mut content = Stream::new(Dictionary::new(), content.to_vec());
        content.compress().unwrap();
        let content_id = doc.add_object(content);
        let mut page = dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        };
        change(&mut doc, &mut page);
        let page_id = doc.add_object(page);
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        let info_id = doc.add_object(dictionary! {
            "Title" => Object::string_literal("Notes on Shipping"),
            "Author" => Object::string_literal("Ada Lovelace"),
            "CreationDate" => Object::string_literal("D:20230120101500+01'00'"),
        });
        doc.trailer.set("Root", catalog_id);
        doc.trailer.set("Info", info_id);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    const LINES: &[u8] = b"BT /F1 12 Tf 72 720 Td (Parcels leave the depot at dawn.) Tj 0 -16 Td \
                           (Every crate is weighed twice.) Tj ET";

    fn converted(bytes: &[u8], budget: Budget) -> Converted {
        convert_pdf(bytes, budget).unwrap()
    }

    #[test]
    fn a_page_of_text_with_its_title_author_page_count_and_date() {
        let converted = converted(&pdf(LINES, |_, _| {}), Budget::default());
        assert_eq!(converted.warning, None);
        assert!(converted.text.contains("Parcels leave the depot at dawn."), "{:?}", converted.text);
        assert!(converted.text.contains("Every crate is weighed twice."), "{:?}", converted.text);
        assert_eq!(converted.title.as_deref(), Some("Notes on Shipping"));
        assert_eq!(converted.author.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            converted.fields,
            vec![("pages", "1".to_string()), ("date", "2023-01-20T10:15:00+01:00".to_string())]
        );
    }

    #[test]
    fn pdf_dates() {
        assert_eq!(pdf_date("D:2023").as_deref(), Some("2023-01-01T00:00:00Z"));
        assert_eq!(pdf_date("D:20231231235959Z").as_deref(), Some("2023-12-31T23:59:59Z"));
        assert_eq!(pdf_date("D:20230120101500-05'30'").as_deref(), Some("2023-01-20T10:15:00-05:30"));
        assert_eq!(pdf_date("D:20231320"), None);
        assert_eq!(pdf_date("yesterday"), None);
    }

    #[test]
    fn content_that_is_not_a_pdf_is_a_mismatch() {
        let error = convert_pdf(b"PK\x03\x04 a zip", Budget::default()).unwrap_err();
        assert!(error.contains("says .pdf but its content is a ZIP archive"), "{error}");
    }

    #[test]
    fn a_truncated_pdf_is_a_warning() {
        let whole = pdf(LINES, |_, _| {});
        for cut in [whole.len() / 2, 40, 9] {
            let converted = converted(&whole[..cut], Budget::default());
            let warning = converted.warning.expect("a warning");
            assert!(warning.contains("the PDF"), "{warning}");
        }
    }

    #[test]
    fn a_page_tree_that_contains_itself_ends() {
        let mut doc = Document::load_mem(&pdf(LINES, |_, _| {})).unwrap();
        // The pages node (object 1) becomes one of its own kids.
        let pages = doc.get_dictionary_mut((1, 0)).unwrap();
        pages.get_mut(b"Kids").unwrap().as_array_mut().unwrap().push(Object::Reference((1, 0)));
        let mut looped = Vec::new();
        doc.save_to(&mut looped).unwrap();
        let converted = converted(&looped, Budget::default());
        assert!(converted.text.contains("Parcels leave the depot at dawn."), "{converted:?}");
    }

    #[test]
    fn a_form_that_draws_itself_is_a_warning_not_a_stack_overflow() {
        let bytes = pdf(b"BT /F1 12 Tf 72 720 Td (Before the form.) Tj ET /Fm1 Do", |doc, page| {
            let form_id = doc.new_object_id();
            let form = Stream::new(
                dictionary! {
                    "Type" => "XObject", "Subtype" => "Form",
                    "BBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
                    "Resources" => dictionary! { "XObject" => dictionary! { "Fm1" => form_id } },
                },
                b"/Fm1 Do".to_vec(),
            );
            doc.objects.insert(form_id, Object::Stream(form));
            let mut resources = page.get(b"Resources").unwrap().as_dict().unwrap().clone();
            resources.set("XObject", dictionary! { "Fm1" => form_id });
            page.set("Resources", resources);
        });
        let converted = converted(&bytes, Budget::default());
        let warning = converted.warning.expect("a warning");
        assert!(warning.contains("forms nest more than 16 deep"), "{warning}");
    }

    #[test]
    fn an_encrypted_pdf_is_a_warning() {
        let mut doc = Document::load_mem(&pdf(LINES, |_, _| {})).unwrap();
        doc.trailer
            .set("ID", vec![Object::string_literal("0123456789abcdef"), Object::string_literal("0123456789abcdef")]);
        let version = lopdf::EncryptionVersion::V2 {
            document: &doc,
            owner_password: "owner",
            user_password: "secret",
            key_length: 128,
            permissions: lopdf::Permissions::all(),
        };
        let state = lopdf::EncryptionState::try_from(version).unwrap();
        doc.encrypt(&state).unwrap();
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let converted = converted(&bytes, Budget::default());
        assert_eq!(converted.text, "");
        assert_eq!(converted.warning.as_deref(), Some("the PDF is encrypted with a password: its text cannot be read"));
    }

    #[test]
    fn a_flate_bomb_stops_at_the_budget() {
        let zeros = vec![b' '; 64 * 1024 * 1024];
        let bytes = pdf(&[LINES, &zeros[..]].concat(), |_, _| {});
        assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
        let small = Budget { expanded_bytes: 16 * 1024 * 1024, ..Budget::default() };
        let converted = converted(&bytes, small);
        let warning = converted.warning.expect("a warning");
        assert!(warning.contains("streams expand to more than 16777216 bytes"), "{warning}");
        assert_eq!(converted.text, "");
    }

    #[test]
    fn a_stream_that_declares_five_gigabytes_is_read_for_what_it_is() {
        let lying = pdf(LINES, |doc, page| {
            let content = page.get(b"Contents").unwrap().as_reference().unwrap();
            let stream = doc.get_object_mut(content).unwrap().as_stream_mut().unwrap();
            stream.dict.set("Length", 5_368_709_120_i64);
        });
        assert!(memchr::memmem::find(&lying, b"/Length 5368709120").is_some());
        let converted = converted(&lying, Budget::default());
        // Nothing is allocated for the length: the stream is unreadable, and the warning says so.
        assert_eq!(converted.text, "");
        assert_eq!(
            converted.warning.as_deref(),
            Some(
                "the PDF is damaged: the content of 1 of its 1 pages cannot be read (a stream's /Length is wrong, \
                 or the file is cut short)"
            )
        );
        assert_eq!(converted.title.as_deref(), Some("Notes on Shipping"));
    }

    /// `bytes` with the first `from` replaced by `to`.
    fn replace_once(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = memchr::memmem::find(bytes, from).expect("the bytes to replace");
        [&bytes[..at], to, &bytes[at + from.len()..]].concat()
    }

    #[test]
    fn nesting_made_to_crash_parsers_is_refused_before_parsing() {
        let deep = [b"BT /F1 12 Tf (x) Tj ET ".as_slice(), &vec![b'['; 1_000_000]].concat();
        let converted = converted(&pdf(&deep, |_, _| {}), Budget::default());
        let warning = converted.warning.expect("a warning");
        assert!(warning.contains("nests arrays or dictionaries more than 10000 deep"), "{warning}");
    }

    #[test]
    fn nesting_just_within_the_bound_fits_the_threads_stack() {
        let depth = MAX_NESTING - 10;
        let nested = |open: u8, close: u8| [vec![open; depth], vec![close; depth]].concat();
        let content = [LINES, b" ", &nested(b'[', b']')[..], b" pop"].concat();
        let bytes = pdf(&content, |_, page| {
            let deep = String::from_utf8(nested(b'[', b']')).unwrap();
            page.set("Annotation", Object::string_literal(deep));
        });
        // The string becomes arrays as deep, in the document's own syntax (outside any stream), offsets unchanged.
        let deep = nested(b'[', b']');
        let raw = replace_once(&bytes, &[b"(", &deep[..], b")"].concat(), &[b" ", &deep[..], b" "].concat());
        let converted = converted(&raw, Budget::default());
        assert!(converted.text.contains("Parcels leave the depot at dawn."), "{converted:?}");
    }

    /// The page's content stream replaced by `stored`, with `filter` (none: stored as it is).
    fn stored_as(stored: Vec<u8>, filter: Option<&str>) -> impl FnOnce(&mut Document, &mut Dictionary) {
        move |doc, page| {
            let content = page.get(b"Contents").unwrap().as_reference().unwrap();
            let mut stream = Stream::new(Dictionary::new(), stored);
            if let Some(filter) = filter {
                stream.dict.set("Filter", Object::Name(filter.as_bytes().to_vec()));
            }
            doc.objects.insert(content, Object::Stream(stream));
        }
    }

    /// LZW as PDF writers encode it (most significant bit first, the code size switching early).
    fn lzw(data: &[u8]) -> Vec<u8> {
        let mut encoder = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
        encoder.encode(data).unwrap()
    }

    /// ASCII85 without line breaks, as the ASCII85Decode filter reads it.
    fn ascii85(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            let mut n = u32::from_be_bytes(word);
            let mut digits = [0u8; 5];
            for digit in digits.iter_mut().rev() {
                *digit = (n % 85) as u8 + b'!';
                n /= 85;
            }
            out.extend_from_slice(&digits[..chunk.len() + 1]);
        }
        out.extend_from_slice(b"~>");
        out
    }

    #[test]
    fn nesting_is_refused_however_the_content_is_stored() {
        let deep = [LINES, b" ", &vec![b'['; 1_000_000][..]].concat();
        let cases = [
            ("stored as it is, measured before parsing", stored_as(deep.clone(), None), "more than 10000 deep"),
            ("LZW, measured as it is decoded", stored_as(lzw(&deep), Some("LZWDecode")), "more than 10000 deep"),
            ("ASCII85, measured by pdf-extract", stored_as(ascii85(&deep), Some("ASCII85Decode")), "nests arrays"),
        ];
        for (how, change, reason) in cases {
            let converted = converted(&pdf(b"", change), Budget::default());
            let warning = converted.warning.unwrap_or_default();
            assert!(warning.contains(reason), "{how}: {warning}");
        }
    }

    #[test]
    fn an_lzw_bomb_stops_at_the_budget() {
        let spaces = vec![b' '; 64 * 1024 * 1024];
        let stored = lzw(&[LINES, &spaces[..]].concat());
        assert!(stored.len() < 1024 * 1024, "{} bytes", stored.len());
        let small = Budget { expanded_bytes: 16 * 1024 * 1024, ..Budget::default() };
        let converted = converted(&pdf(b"", stored_as(stored, Some("LZWDecode"))), small);
        let warning = converted.warning.expect("a warning");
        assert!(warning.contains("streams expand to more than 16777216 bytes"), "{warning}");
    }

    #[test]
    fn the_time_budget_keeps_the_text_so_far() {
        let mut many = Vec::new();
        many.extend_from_slice(b"BT /F1 12 Tf 72 720 Td ");
        for _ in 0..5_000 {
            many.extend_from_slice(b"(Parcels leave the depot at dawn.) Tj 0 -1 Td ");
        }
        many.extend_from_slice(b"ET");
        let none = Budget { time: Duration::ZERO, ..Budget::default() };
        let converted = converted(&pdf(&many, |_, _| {}), none);
        let warning = converted.warning.expect("a warning");
        assert!(warning.contains("took longer to convert than the conversion budget allows"), "{warning}");
        assert!(converted.text.len() < 5_000 * 30, "{} bytes", converted.text.len());
    }
}
