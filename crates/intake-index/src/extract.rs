//! Text extraction: what of an item's bytes is worth indexing.
//!
//! HTML is walked once ([`crate::html_text`]): the text of the document without scripts, styles and markup,
//! entities decoded, whitespace collapsed, and the `<title>`; without the page's chrome when it can tell. PDF, Office, OpenDocument and e-mail go
//! through their converter ([`crate::convert`]); other text is taken as it is, decoded from its charset when it is
//! not UTF-8; other binary formats (images, archives) give no text, and the item is found by its title and
//! metadata.

use crate::convert::{self, Budget, Converted};
use crate::html_text::{self, TextKind};

/// The searchable text of an item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The HTML `<title>` or the document's own title, when there is one.
    pub title: Option<String>,
    /// The document's own author (Office and OpenDocument properties).
    pub author: Option<String>,
    pub text: String,
    /// What a converter did, for the logs (`the docx converter produced 1,234 characters`).
    pub note: Option<String>,
    /// Why the text is missing or partial, or what was odd about the content: a WARNING in the logs.
    pub warning: Option<String>,
    /// Fields the document itself carries (an e-mail's `from`, `to`, `date`).
    pub fields: Vec<(&'static str, String)>,
}

/// What the item's bytes are, from its extension or, failing that, its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Html,
    Text,
    Binary,
}

const HTML_EXTENSIONS: &[&str] = &[".html", ".htm", ".xhtml", ".shtml", ".aspx", ".php", ".jsp"];
const BINARY_EXTENSIONS: &[&str] = &[
    ".pdf", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".zip", ".gz", ".tar", ".doc", ".docx", ".xls", ".xlsx", ".ppt",
    ".pptx", ".odt", ".mp3", ".mp4", ".bin", ".exe",
];

pub fn content_kind(bytes: &[u8], file_extension: Option<&str>) -> ContentKind {
    let extension = file_extension.map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some(ext) if HTML_EXTENSIONS.contains(&ext) => ContentKind::Html,
        Some(ext) if BINARY_EXTENSIONS.contains(&ext) => ContentKind::Binary,
        _ if looks_like_html(bytes) => ContentKind::Html,
        _ if looks_binary(bytes) => ContentKind::Binary,
        _ => ContentKind::Text,
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let head = head[start..].to_ascii_lowercase();
    head.starts_with(b"<!doctype html")
        || head.starts_with(b"<html")
        || (head.starts_with(b"<") && contains(&head, b"<body"))
}

fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0) || bytes.starts_with(b"%PDF")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Extracts the searchable text of an item's bytes: a converter when the extension names a format one takes
/// (and the content is that format), or when the content is a PDF whatever its name; else by what the bytes are.
pub fn extract(bytes: &[u8], file_extension: Option<&str>, budget: Budget) -> Extracted {
    let (conversion, mismatch) = match file_extension.and_then(|e| convert::convert_by_extension(bytes, e, budget)) {
        Some(Ok(converted)) => (Some(converted), None),
        Some(Err(why)) => (convert::convert_by_content(bytes, budget), Some(why)),
        None => (convert::convert_by_content(bytes, budget), None),
    };
    let mut extracted = match conversion {
        Some(converted) => Extracted::from(converted),
        None => extract_by_kind(bytes, if mismatch.is_some() { None } else { file_extension }),
    };
    if let Some(why) = mismatch {
        let warning = format!("{why}; it was indexed as what it is");
        extracted.warning = Some(match extracted.warning.take() {
            Some(also) => format!("{warning}; {also}"),
            None => warning,
        });
    }
    extracted
}

impl From<Converted> for Extracted {
    fn from(converted: Converted) -> Extracted {
        let characters = converted.text.chars().count();
        Extracted {
            note: Some(format!("the {} converter produced {characters} characters", converted.converter)),
            title: converted.title,
            author: converted.author,
            text: converted.text,
            warning: converted.warning,
            fields: converted.fields,
        }
    }
}

/// The text of HTML, text in any charset, or nothing (binary formats no converter takes).
fn extract_by_kind(bytes: &[u8], file_extension: Option<&str>) -> Extracted {
    match content_kind(bytes, file_extension) {
        ContentKind::Html => match convert::decode_html(bytes) {
            Some((html, charset)) => Extracted {
                note: Some(format!("the HTML was decoded from {charset}")),
                ..extract_html(html.as_bytes())
            },
            None => extract_html(bytes),
        },
        ContentKind::Text => match convert::decode_text(bytes) {
            Some((text, charset)) => {
                Extracted { text, note: Some(format!("the text was decoded from {charset}")), ..Extracted::default() }
            }
            None => Extracted { text: String::from_utf8_lossy(bytes).into_owned(), ..Extracted::default() },
        },
        ContentKind::Binary => Extracted::default(),
    }
}

/// What an element is to the page's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Navigation, sidebars, the page's header and footer: its frame.
    Chrome,
    /// The page's main content.
    Main,
}

/// `<main>` and `role="main"` are the main content; `<nav>`, `<aside>` and the roles `navigation`, `banner`,
/// `contentinfo`, `complementary` and `search` are chrome; so are `<header>` and `<footer>`, except inside the
/// main content (an article's own). Roles count on `<div>`s only (Sphinx and its Read the Docs theme mark their
/// main content and breadcrumbs so).
fn part(tag: &str, role: Option<&str>, in_main: bool) -> Option<Part> {
    match (tag, role.map(|r| r.trim().to_ascii_lowercase()).as_deref()) {
        ("main", _) | (_, Some("main")) => Some(Part::Main),
        ("nav" | "aside", _) | (_, Some("navigation" | "banner" | "contentinfo" | "complementary" | "search")) => {
            Some(Part::Chrome)
        }
        ("header" | "footer", _) if !in_main => Some(Part::Chrome),
        _ => None,
    }
}

/// Extracts the text and title of an HTML document: the page's content, not its chrome.
///
/// The text of the main content when the page marks it (and it holds a fair share of the text), else all the
/// text outside chrome ([`part`] says which is which). A page whose every word is in chrome (or whose markup never closes a chrome element) keeps all its
/// text. docs/search.md says how this was checked on the kernel's and the JDK's pages.
pub fn extract_html(html: &[u8]) -> Extracted {
    content_else_whole(html, extract_html_with)
}

/// The page without its chrome (`extract(html, true)`), or the whole page when that leaves no text.
fn content_else_whole(html: &[u8], extract: impl Fn(&[u8], bool) -> Extracted) -> Extracted {
    let stripped = extract(html, true);
    if stripped.text.is_empty() {
        let whole = extract(html, false);
        if !whole.text.is_empty() {
            return whole;
        }
    }
    stripped
}

fn extract_html_with(html: &[u8], strip_chrome: bool) -> Extracted {
    // Bytes that are not UTF-8 become U+FFFD; checking first is faster than the lossy conversion's own scan.
    let html = match std::str::from_utf8(html) {
        Ok(html) => std::borrow::Cow::Borrowed(html),
        Err(_) => String::from_utf8_lossy(html),
    };
    let mut page = PageText::new(html.len(), strip_chrome, has_title_tag(html.as_bytes()));
    html_text::walk(&html, strip_chrome, &mut page);
    page.finish()
}

/// The text gathered while walking a page: outside chrome, inside the main content, and the title. `<title>`
/// text is RCDATA, as is `<textarea>` text; the title is in `<head>`, before any textarea, so the first RCDATA
/// text is the title when the document has a `<title>` at all. An SVG `<title>` is foreign content (plain
/// data): body text.
struct PageText {
    content: Collapser,
    main: Collapser,
    title: Collapser,
    title_done: bool,
    /// What each open framing element is, innermost last.
    parts: Vec<Part>,
    chrome_depth: u32,
    main_depth: u32,
}

impl PageText {
    fn new(html_len: usize, strip_chrome: bool, has_title: bool) -> PageText {
        PageText {
            content: Collapser::with_capacity(html_len / 2),
            main: Collapser::with_capacity(if strip_chrome { html_len / 2 } else { 0 }),
            title: Collapser::with_capacity(64),
            title_done: !has_title,
            parts: Vec::new(),
            chrome_depth: 0,
            main_depth: 0,
        }
    }

    fn finish(self) -> Extracted {
        let (content, main) = (self.content.finish(), self.main.finish());
        // A <main> holding a sliver of the text (a heading) is not the page's content.
        let text = if main.len() * 4 >= content.len() && !main.is_empty() { main } else { content };
        let title = self.title.finish();
        Extracted { title: (!title.is_empty()).then_some(title), text, ..Extracted::default() }
    }
}

impl html_text::Visitor for PageText {
    fn text(&mut self, raw: &str, kind: TextKind) {
        match kind {
            TextKind::Data if self.chrome_depth == 0 => {
                self.content.push_html(raw);
                if self.main_depth > 0 {
                    self.main.push_html(raw);
                }
            }
            TextKind::RcData if !self.title_done => self.title.push_html(raw),
            // Later RCDATA (<textarea>) is not body text; scripts and styles never reach here.
            TextKind::Data | TextKind::RcData => {}
        }
    }

    fn text_end(&mut self, kind: TextKind) {
        match kind {
            TextKind::Data => {
                self.content.push_break();
                self.main.push_break();
            }
            TextKind::RcData => self.title_done = true,
        }
    }

    fn open(&mut self, name: &str, role: &dyn Fn() -> Option<String>) -> bool {
        let role = if name == "div" { role() } else { None };
        let Some(part) = part(name, role.as_deref(), self.main_depth > 0) else { return false };
        match part {
            Part::Chrome => self.chrome_depth += 1,
            Part::Main => self.main_depth += 1,
        }
        self.parts.push(part);
        true
    }

    fn close(&mut self) {
        match self.parts.pop() {
            Some(Part::Chrome) => self.chrome_depth -= 1,
            Some(Part::Main) => self.main_depth -= 1,
            None => {}
        }
    }
}

/// Whether the document has a `<title` tag anywhere (ASCII case-insensitive).
fn has_title_tag(html: &[u8]) -> bool {
    memchr::memmem::find_iter(html, b"<").any(|at| {
        html.get(at + 1..at + 6).is_some_and(|name| name.eq_ignore_ascii_case(b"title"))
            && html.get(at + 6).is_none_or(|next| matches!(next, b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/'))
    })
}

/// Builds text with runs of whitespace collapsed to one space, decoding HTML entities on the way.
struct Collapser {
    out: String,
    pending_space: bool,
}

impl Collapser {
    fn with_capacity(capacity: usize) -> Collapser {
        Collapser { out: String::with_capacity(capacity), pending_space: false }
    }

    fn push_html(&mut self, raw: &str) {
        if raw.contains('&') {
            self.push(&html_escape::decode_html_entities(raw));
        } else {
            self.push(raw);
        }
    }

    /// Appends `text`'s words, each run of whitespace (as `char::is_whitespace` has it) made one space. Scans
    /// bytes and copies words separated by single spaces at once: splitting by `char` and copying word by word
    /// took an eighth of the extraction's time.
    fn push(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let spaces_start = at;
            while let Some((true, len)) = char_class(text, at) {
                at += len;
            }
            self.pending_space |= at > spaces_start;
            let run_start = at;
            loop {
                while let Some((false, len)) = char_class(text, at) {
                    at += len;
                }
                // One space between two words stays in the run.
                if bytes.get(at) == Some(&b' ') && matches!(char_class(text, at + 1), Some((false, _))) {
                    at += 1;
                } else {
                    break;
                }
            }
            self.push_words(&text[run_start..at]);
        }
    }

    /// Appends words already separated by single spaces.
    fn push_words(&mut self, words: &str) {
        if words.is_empty() {
            return;
        }
        if self.pending_space && !self.out.is_empty() {
            self.out.push(' ');
        }
        self.pending_space = false;
        self.out.push_str(words);
    }

    /// The end of a text node: the next text is a new word.
    fn push_break(&mut self) {
        self.pending_space = true;
    }

    fn finish(self) -> String {
        self.out
    }
}

/// Whether the char at byte `at` of `text` is whitespace (as `char::is_whitespace` has it), and its length; `None`
/// at the end.
#[inline(always)]
fn char_class(text: &str, at: usize) -> Option<(bool, usize)> {
    match *text.as_bytes().get(at)? {
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => Some((true, 1)),
        byte if byte < 0x80 => Some((false, 1)),
        _ => text[at..].chars().next().map(|c| (c.is_whitespace(), c.len_utf8())),
    }
}

#[cfg(test)]
mod oracle;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_text_and_title_without_scripts_or_styles() {
        let html = br#"<!DOCTYPE html><html><head><title> Caf&eacute;   guide </title>
            <style>body { color: red }</style><script>var x = "<b>not text</b>";</script></head>
            <body><h1>Hello&nbsp;world</h1><p>Fish &amp; chips</p><table><tr><td>a</td><td>b</td></tr></table>
            <noscript>enable js</noscript></body></html>"#;
        let extracted = extract_html(html);
        assert_eq!(extracted.title.as_deref(), Some("Café guide"));
        assert_eq!(extracted.text, "Hello world Fish & chips a b");
    }

    #[test]
    fn the_text_is_the_content_not_the_chrome() {
        let html = br#"<html><body><header><nav>Home Docs</nav></header><div role="navigation">crumbs</div>
            <div role="main"><article><header><h1>Title</h1></header><p>The content.</p><aside>see also</aside></article></div>
            <footer><div role="navigation">Next page</div></footer></body></html>"#;
        assert_eq!(extract_html(html).text, "Title The content.", "the main content, its own header included");
        let html = br#"<html><body><nav>menu</nav><div role="complementary">toc</div><aside>more</aside><div><p>words</p></div>
            <footer>foot</footer></body></html>"#;
        assert_eq!(extract_html(html).text, "words", "without a main, everything but the chrome");
        let html = b"<html><body><main><h1>Heading</h1></main><p>a long body of text outside the main element</p></body></html>";
        assert_eq!(extract_html(html).text, "Heading a long body of text outside the main element", "a sliver of main");
        let html = b"<html><body><nav><p>only navigation, never closed";
        assert_eq!(extract_html(html).text, "only navigation, never closed", "all chrome: the whole text");
    }

    #[test]
    fn only_the_first_title_is_the_title() {
        let html =
            b"<html><head><title>Page</title></head><body><svg><title>icon</title></svg><p>text</p></body></html>";
        assert_eq!(extract_html(html).title.as_deref(), Some("Page"));
    }

    #[test]
    fn a_textarea_is_not_the_title() {
        let html = b"<html><body><textarea>typed</textarea><p>text</p></body></html>";
        assert_eq!(extract_html(html).title, None);
        let html = b"<html><head><TITLE lang=en>Page</TITLE></head><body><textarea>typed</textarea></body></html>";
        assert_eq!(extract_html(html).title.as_deref(), Some("Page"));
    }

    /// The byte scanner makes the words `str::split(char::is_whitespace)` made, ASCII or not.
    #[test]
    fn whitespace_runs_collapse_to_one_space_as_char_is_whitespace_says() {
        // The collapser as it was, splitting by char.
        let by_chars = |pieces: &[&str]| {
            let (mut out, mut pending_space) = (String::new(), false);
            for piece in pieces {
                for (i, word) in piece.split(char::is_whitespace).enumerate() {
                    pending_space |= i > 0;
                    if !word.is_empty() {
                        if pending_space && !out.is_empty() {
                            out.push(' ');
                        }
                        pending_space = false;
                        out.push_str(word);
                    }
                }
            }
            out
        };
        let cases: &[&[&str]] = &[
            &["  Hello \t\n world  "],
            &["a\u{a0}b\u{3000}c\u{2028}d\u{85}e\u{b}f\u{c}g"],
            &["caf\u{e9} na\u{ef}ve \u{1f600}", "  next"],
            &["split wo", "rd", " and\u{2009}thin"],
            &["", "   ", "x"],
            &["\u{200b}zero-width is not space\u{feff}"],
            &["one two  three \u{a0}four \tfive", " six seven ", "eight"],
            &["a ", "b", " c ", " ", "d\u{e9} \u{e9}e"],
        ];
        for pieces in cases {
            let mut collapser = Collapser::with_capacity(0);
            for piece in *pieces {
                collapser.push(piece);
            }
            assert_eq!(collapser.finish(), by_chars(pieces), "{pieces:?}");
        }
    }

    #[test]
    fn survives_broken_markup() {
        let extracted = extract_html(b"<p>unclosed <b>bold <i>text</p></div></span> tail &bogus; <");
        assert!(extracted.text.starts_with("unclosed bold text tail &bogus;"), "{}", extracted.text);
    }

    #[test]
    fn chooses_by_extension_then_content() {
        assert_eq!(content_kind(b"plain", Some(".HTML")), ContentKind::Html);
        assert_eq!(content_kind(b"  <!doctype html><p>x", None), ContentKind::Html);
        assert_eq!(content_kind(b"%PDF-1.7 ...", None), ContentKind::Binary);
        assert_eq!(content_kind(b"just words", Some(".txt")), ContentKind::Text);
        assert_eq!(extract(b"PNG", Some(".png"), Budget::default()), Extracted::default());
    }
}
