//! The text of an HTML page in one pass over its bytes, for indexing: what a browser shows as text, less
//! scripts, styles and the other raw-text elements, and (when asked) the elements a caller wants to hear about.
//!
//! HTML's tokenizer switches modes on what the tree builder knows (a `<title>`'s text is RCDATA, a `<script>`'s
//! is script data, `<svg>` content is foreign); as lol_html does, that feedback is simulated with a stack of
//! namespaces instead of building the tree. Open elements are kept by name only, as lol_html's selector stack
//! keeps them: an end tag closes the last open element of its name and every element opened after it, and an
//! end tag that closes nothing is ignored. Extraction used lol_html; this walk gives the same text and title on
//! every page of the kernel's and the JDK's documentation and on a million random documents of tricky markup
//! (`extract/oracle.rs` keeps lol_html as the tests' oracle), 2.6-2.9 times as fast: lol_html is a rewriter, so
//! it re-serialized every text chunk and matched tags through a selector VM (bench/RESULTS.md §33).

use std::hash::Hasher;

use memchr::memchr;
use rustc_hash::{FxHashMap, FxHasher};

/// What a run of text is to the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    /// Text the page shows.
    Data,
    /// `<title>` and `<textarea>` text.
    RcData,
}

/// What the walk tells its caller.
pub(crate) trait Visitor {
    /// Raw text (entities not decoded) of `kind`.
    fn text(&mut self, raw: &str, kind: TextKind);
    /// A text node ended: the next text is a new word.
    fn text_end(&mut self, kind: TextKind);
    /// A start tag (its name in lower case) of an element that may hold content (walks with `track` only);
    /// whether the visitor wants to hear when it closes. `role` reads its `role` attribute.
    fn open(&mut self, name: &str, role: &dyn Fn() -> Option<String>) -> bool;
    /// The latest element [`Visitor::open`] wanted to hear about that is still open closed.
    fn close(&mut self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Html,
    Svg,
    MathMl,
}

/// How text after a start tag is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Data,
    /// Up to the end tag of the element that began it, entities decoded (`<title>`, `<textarea>`).
    RcData,
    /// Up to the end tag of the element that began it, not text (`<style>` and kin).
    RawText,
    /// Up to `</script>`, not text; a `</script>` inside `<!--<script>…-->` does not end it.
    ScriptData,
    /// Everything to the end (`<plaintext>`), not text.
    PlainText,
}

/// One element still open, by name; `heard` when the visitor wants its close.
struct Open<'a> {
    name: &'a str,
    heard: bool,
}

/// Walks `html`, telling `visitor` its text and (with `track`) the elements it wants to hear about.
pub(crate) fn walk(html: &str, track: bool, visitor: &mut dyn Visitor) {
    Walker {
        html,
        bytes: html.as_bytes(),
        at: 0,
        namespaces: vec![Namespace::Html],
        open: Vec::new(),
        open_names: FxHashMap::default(),
        track,
        visitor,
    }
    .run();
}

struct Walker<'a, 'v> {
    html: &'a str,
    bytes: &'a [u8],
    at: usize,
    namespaces: Vec<Namespace>,
    open: Vec<Open<'a>>,
    /// How many elements are open by (a hash of) name: an end tag that closes nothing is known without
    /// searching the open elements (which a page of unclosed elements and stray end tags would make quadratic).
    open_names: FxHashMap<u64, u32>,
    track: bool,
    visitor: &'v mut dyn Visitor,
}

/// A tag as read: its name as written, whether it ends in `/>`, and where its attributes are.
struct Tag<'a> {
    name: &'a str,
    self_closing: bool,
    attributes: &'a str,
}

impl<'a> Walker<'a, '_> {
    fn run(&mut self) {
        let mut mode = Mode::Data;
        let mut raw_end: &str = "";
        while self.at < self.bytes.len() {
            match mode {
                Mode::Data => mode = self.data(&mut raw_end),
                Mode::RcData | Mode::RawText | Mode::ScriptData => {
                    self.raw(raw_end, mode);
                    mode = Mode::Data;
                }
                Mode::PlainText => return,
            }
        }
    }

    fn namespace(&self) -> Namespace {
        *self.namespaces.last().expect("the HTML namespace is never left")
    }

    /// Text up to the next markup, then the markup; the mode the next text is read in.
    fn data(&mut self, raw_end: &mut &'a str) -> Mode {
        let start = self.at;
        let mut scan = self.at;
        loop {
            let Some(lt) = memchr(b'<', &self.bytes[scan..]).map(|i| scan + i) else {
                self.text(start, self.bytes.len(), TextKind::Data);
                self.at = self.bytes.len();
                return Mode::Data;
            };
            if let Some(markup) = self.markup_at(lt) {
                self.text(start, lt, TextKind::Data);
                return self.markup(lt, markup, raw_end);
            }
            scan = lt + 1; // a '<' that starts no markup is text
        }
    }

    fn text(&mut self, start: usize, end: usize, kind: TextKind) {
        if end > start {
            self.visitor.text(&self.html[start..end], kind);
            self.visitor.text_end(kind);
        }
    }

    /// What the `<` at `lt` starts, if it starts markup rather than text.
    fn markup_at(&self, lt: usize) -> Option<Markup> {
        let next = *self.bytes.get(lt + 1)?;
        match next {
            b'!' => Some(Markup::Declaration),
            b'?' => Some(Markup::BogusComment),
            b'/' => match self.bytes.get(lt + 2) {
                Some(c) if c.is_ascii_alphabetic() => Some(Markup::EndTag),
                Some(b'>') => Some(Markup::Nothing),
                Some(_) => Some(Markup::BogusComment),
                None => None,
            },
            c if c.is_ascii_alphabetic() => Some(Markup::StartTag),
            _ => None,
        }
    }

    fn markup(&mut self, lt: usize, markup: Markup, raw_end: &mut &'a str) -> Mode {
        match markup {
            Markup::Nothing => self.at = lt + 3,
            Markup::BogusComment => self.skip_to_gt(lt + 2),
            Markup::Declaration => self.declaration(lt),
            Markup::EndTag => {
                if let Some(tag) = self.tag(lt + 2) {
                    self.end_tag(tag.name);
                }
            }
            Markup::StartTag => {
                if let Some(tag) = self.tag(lt + 1) {
                    return self.start_tag(tag, raw_end);
                }
            }
        }
        Mode::Data
    }

    /// Past the next `>` from `from` (or the end).
    fn skip_to_gt(&mut self, from: usize) {
        self.at = memchr(b'>', &self.bytes[from.min(self.bytes.len())..]).map_or(self.bytes.len(), |i| from + i + 1);
    }

    /// `<!--…-->`, `<![CDATA[…]]>` in foreign content (not text), `<!DOCTYPE …>` and other `<!…>`.
    fn declaration(&mut self, lt: usize) {
        let rest = &self.bytes[lt + 2..];
        if rest.starts_with(b"--") {
            self.comment(lt + 4);
        } else if rest.starts_with(b"[CDATA[") && self.namespace() != Namespace::Html {
            let body = lt + 9;
            self.at = memchr::memmem::find(&self.bytes[body..], b"]]>").map_or(self.bytes.len(), |i| body + i + 3);
        } else {
            self.skip_to_gt(lt + 2);
        }
    }

    /// A comment whose text starts at `body`: it ends at `-->` or `--!>`; `<!-->` and `<!--->` end at once.
    fn comment(&mut self, body: usize) {
        let rest = &self.bytes[body.min(self.bytes.len())..];
        if rest.starts_with(b">") {
            self.at = body + 1;
            return;
        }
        if rest.starts_with(b"->") {
            self.at = body + 2;
            return;
        }
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&rest[from..], b"--").map(|i| from + i) {
            match rest.get(i + 2) {
                Some(b'>') => {
                    self.at = body + i + 3;
                    return;
                }
                Some(b'!') if rest.get(i + 3) == Some(&b'>') => {
                    self.at = body + i + 4;
                    return;
                }
                _ => from = i + 1,
            }
        }
        self.at = self.bytes.len();
    }

    /// Reads the tag whose name starts at `name_start`, up to its `>`; `None` when the document ends inside it
    /// (HTML drops such a tag, and the walk is over).
    fn tag(&mut self, name_start: usize) -> Option<Tag<'a>> {
        let tag = self.read_tag(name_start);
        if tag.is_none() {
            self.at = self.bytes.len();
        }
        tag
    }

    fn read_tag(&mut self, name_start: usize) -> Option<Tag<'a>> {
        let bytes = self.bytes;
        let mut i = name_start;
        while i < bytes.len() && !matches!(bytes[i], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>') {
            i += 1;
        }
        let name = &self.html[name_start..i];
        let attributes_start = i;
        let mut self_closing = false;
        loop {
            match *bytes.get(i)? {
                b'>' => break,
                b'/' => {
                    self_closing = bytes.get(i + 1) == Some(&b'>');
                    i += 1;
                }
                b'"' | b'\'' if starts_value(bytes, i) => {
                    let quote = bytes[i];
                    i += 1 + memchr(quote, &bytes[i + 1..])?;
                    i += 1;
                }
                _ => {
                    self_closing = false;
                    i += 1;
                }
            }
        }
        self.at = i + 1;
        Some(Tag { name, self_closing, attributes: &self.html[attributes_start..i] })
    }

    fn start_tag(&mut self, tag: Tag<'a>, raw_end: &mut &'a str) -> Mode {
        let mut buffer = [0u8; NAME_BUFFER];
        let name = lower(tag.name, &mut buffer);
        let namespace = self.namespace();
        let mode = match (name, namespace) {
            ("svg", _) => {
                self.namespaces.push(Namespace::Svg);
                Mode::Data
            }
            ("math", _) => {
                self.namespaces.push(Namespace::MathMl);
                Mode::Data
            }
            (name, Namespace::Html) => html_mode(name),
            (name, _) if leaves_foreign_content(name, &tag) => {
                self.namespaces.pop();
                Mode::Data
            }
            (name, foreign) => {
                if !tag.self_closing && integration_point(name, foreign, &tag) {
                    self.namespaces.push(Namespace::Html);
                }
                Mode::Data
            }
        };
        // lol_html's selector stack sees the element in the namespace its own tag leads to (`<svg/>` is foreign).
        let namespace = self.namespace();
        self.push_open(&tag, name, namespace);
        if matches!(mode, Mode::RcData | Mode::RawText | Mode::ScriptData) {
            *raw_end = tag.name;
        }
        mode
    }

    /// Keeps the element open (by name) as lol_html's selector stack does: void elements, and self-closing ones
    /// in foreign content, hold nothing and are not kept.
    fn push_open(&mut self, tag: &Tag<'a>, lower: &str, namespace: Namespace) {
        if !self.track {
            return;
        }
        let holds_content = if namespace == Namespace::Html { !is_void(lower) } else { !tag.self_closing };
        if !holds_content {
            return;
        }
        let attributes = tag.attributes;
        let heard = self.visitor.open(lower, &|| attribute(attributes, "role"));
        self.open.push(Open { name: tag.name, heard });
        *self.open_names.entry(name_hash(tag.name)).or_default() += 1;
    }

    fn end_tag(&mut self, name: &str) {
        let mut buffer = [0u8; NAME_BUFFER];
        let lower = lower(name, &mut buffer);
        match self.namespace() {
            Namespace::Html => self.leave_integration_point(lower),
            foreign => {
                let own = matches!((foreign, lower), (Namespace::Svg, "svg") | (Namespace::MathMl, "math"));
                if own || lower == "p" || lower == "br" {
                    self.namespaces.pop();
                }
            }
        }
        if !self.track {
            return;
        }
        if !self.open_names.contains_key(&name_hash(name)) {
            return;
        }
        let Some(index) = self.open.iter().rposition(|open| open.name.eq_ignore_ascii_case(name)) else { return };
        for closed in self.open.drain(index..).rev() {
            let hash = name_hash(closed.name);
            if let Some(count) = self.open_names.get_mut(&hash) {
                *count -= 1;
                if *count == 0 {
                    self.open_names.remove(&hash);
                }
            }
            if closed.heard {
                self.visitor.close();
            }
        }
    }

    /// An end tag in HTML content that closes the integration point the content is in goes back to its
    /// foreign namespace.
    fn leave_integration_point(&mut self, lower: &str) {
        let Some(&outer) = self.namespaces.len().checked_sub(2).and_then(|i| self.namespaces.get(i)) else { return };
        let closes = match outer {
            Namespace::Svg => matches!(lower, "desc" | "title" | "foreignobject"),
            Namespace::MathMl => matches!(lower, "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml"),
            Namespace::Html => false,
        };
        if closes {
            self.namespaces.pop();
        }
    }

    /// Text up to the end tag named `end` (ASCII case-insensitive, then whitespace, `/` or `>`); RCDATA text is
    /// reported, raw text and scripts are not.
    fn raw(&mut self, end: &str, mode: Mode) {
        let start = self.at;
        let stop = if mode == Mode::ScriptData { self.script_end(start) } else { self.end_tag_from(start, end) };
        if mode == Mode::RcData {
            self.text(start, stop, TextKind::RcData);
        }
        self.at = stop;
        if stop < self.bytes.len()
            && let Some(tag) = self.tag(stop + 2)
        {
            self.end_tag(tag.name);
        }
    }

    /// Where the first end tag named `end` from `from` starts (its `<`), or the end of the document.
    fn end_tag_from(&self, from: usize, end: &str) -> usize {
        let mut scan = from;
        loop {
            let Some(lt) = memchr::memmem::find(&self.bytes[scan..], b"</").map(|i| scan + i) else {
                return self.bytes.len();
            };
            if self.named_tag_at(lt + 2, end) {
                return lt;
            }
            scan = lt + 2;
        }
    }

    /// Whether a tag named `name` (ASCII case-insensitive) starts at `at`: the name, then whitespace, `/` or `>`.
    fn named_tag_at(&self, at: usize, name: &str) -> bool {
        let name_end = at + name.len();
        self.bytes.get(at..name_end).is_some_and(|found| found.eq_ignore_ascii_case(name.as_bytes()))
            && matches!(self.bytes.get(name_end), Some(b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>'))
    }

    /// Where the script whose text starts at `from` ends (the `<` of its end tag), as HTML's script states have
    /// it: after `<!--` the script is escaped, and inside an escaped `<script>…</script>` (old pages wrote
    /// scripts so: `<!-- document.write("<script>…</script>") -->`) a `</script>` does not end it; `-->` ends
    /// both.
    fn script_end(&self, from: usize) -> usize {
        #[derive(PartialEq)]
        enum Script {
            Data,
            Escaped,
            DoubleEscaped,
        }
        let bytes = self.bytes;
        let mut state = Script::Data;
        let mut dashes = 0;
        let mut at = from;
        while at < bytes.len() {
            if state == Script::Data {
                let Some(lt) = memchr(b'<', &bytes[at..]).map(|i| at + i) else { return bytes.len() };
                if bytes.get(lt + 1) == Some(&b'/') && self.named_tag_at(lt + 2, "script") {
                    return lt;
                }
                if bytes[lt + 1..].starts_with(b"!--") {
                    (state, dashes, at) = (Script::Escaped, 2, lt + 4);
                } else {
                    at = lt + 1;
                }
                continue;
            }
            match bytes[at] {
                b'-' => {
                    dashes += 1;
                    at += 1;
                    continue;
                }
                b'>' if dashes >= 2 => {
                    (state, at) = (Script::Data, at + 1);
                    continue;
                }
                b'<' if state == Script::Escaped => {
                    if bytes.get(at + 1) == Some(&b'/') && self.named_tag_at(at + 2, "script") {
                        return at;
                    }
                    if self.named_tag_at(at + 1, "script") {
                        (state, at) = (Script::DoubleEscaped, at + 8);
                        dashes = 0;
                        continue;
                    }
                }
                b'<' if bytes.get(at + 1) == Some(&b'/') && self.named_tag_at(at + 2, "script") => {
                    (state, at) = (Script::Escaped, at + 9);
                    dashes = 0;
                    continue;
                }
                _ => {}
            }
            dashes = 0;
            at += 1;
        }
        bytes.len()
    }
}

#[derive(Debug, Clone, Copy)]
enum Markup {
    StartTag,
    EndTag,
    /// `<!…>`: a comment, a doctype, CDATA.
    Declaration,
    /// `<?…>` and `</` followed by a non-letter: skipped to the next `>`.
    BogusComment,
    /// `</>`: skipped.
    Nothing,
}

/// A hash of a tag name, the same whatever its case.
fn name_hash(name: &str) -> u64 {
    let mut hasher = FxHasher::default();
    for byte in name.bytes() {
        hasher.write_u8(byte.to_ascii_lowercase());
    }
    hasher.finish()
}

/// Longer tag names than this are none the walk knows (the longest is `annotation-xml`).
const NAME_BUFFER: usize = 16;

/// `name` in ASCII lower case, in `buffer`; a name too long for it is none the walk knows, so empty.
fn lower<'b>(name: &str, buffer: &'b mut [u8; NAME_BUFFER]) -> &'b str {
    let Some(target) = buffer.get_mut(..name.len()) else { return "" };
    target.copy_from_slice(name.as_bytes());
    target.make_ascii_lowercase();
    std::str::from_utf8(target).unwrap_or("")
}

/// Whether the quote at `i` opens an attribute value (it follows `=` and optional whitespace).
fn starts_value(bytes: &[u8], i: usize) -> bool {
    bytes[..i].iter().rev().find(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')) == Some(&b'=')
}

/// How the text after an HTML start tag named `name` is read.
fn html_mode(name: &str) -> Mode {
    match name {
        "title" | "textarea" => Mode::RcData,
        "plaintext" => Mode::PlainText,
        "script" => Mode::ScriptData,
        "style" | "iframe" | "xmp" | "noembed" | "noframes" | "noscript" => Mode::RawText,
        _ => Mode::Data,
    }
}

/// HTML's elements that end foreign content where they start (`<font>` with `color`, `face` or `size`).
fn leaves_foreign_content(name: &str, tag: &Tag<'_>) -> bool {
    match name {
        "b" | "big" | "blockquote" | "body" | "br" | "center" | "code" | "dd" | "div" | "dl" | "dt" | "em"
        | "embed" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "head" | "hr" | "i" | "img" | "li" | "listing"
        | "menu" | "meta" | "nobr" | "ol" | "p" | "pre" | "ruby" | "s" | "small" | "span" | "strong" | "strike"
        | "sub" | "sup" | "table" | "tt" | "u" | "ul" | "var" => true,
        "font" => ["color", "face", "size"].iter().any(|a| attribute(tag.attributes, a).is_some()),
        _ => false,
    }
}

/// Foreign elements whose content is HTML again.
fn integration_point(name: &str, namespace: Namespace, tag: &Tag<'_>) -> bool {
    match namespace {
        Namespace::Svg => matches!(name, "desc" | "title" | "foreignobject"),
        Namespace::MathMl => {
            matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
                || name == "annotation-xml"
                    && attribute(tag.attributes, "encoding").is_some_and(|encoding| {
                        encoding.eq_ignore_ascii_case("text/html")
                            || encoding.eq_ignore_ascii_case("application/xhtml+xml")
                    })
        }
        Namespace::Html => false,
    }
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// The value of the attribute `wanted` (ASCII case-insensitive) in a tag's attribute text, entities decoded;
/// the first one when repeated, as HTML has it.
fn attribute(attributes: &str, wanted: &str) -> Option<String> {
    let bytes = attributes.as_bytes();
    let space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        // A name may begin with '='; it ends at whitespace, '/', '>' or a later '='.
        i += usize::from(i < bytes.len() && bytes[i] == b'=');
        while i < bytes.len() && !space(bytes[i]) && !matches!(bytes[i], b'/' | b'=') {
            i += 1;
        }
        let name = &attributes[name_start..i];
        while i < bytes.len() && space(bytes[i]) {
            i += 1;
        }
        let mut value = "";
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && space(bytes[i]) {
                i += 1;
            }
            let value_start;
            match bytes.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    value_start = i + 1;
                    i = memchr(quote, &bytes[value_start..]).map_or(bytes.len(), |j| value_start + j);
                    value = &attributes[value_start..i];
                    i += 1;
                }
                _ => {
                    value_start = i;
                    while i < bytes.len() && !space(bytes[i]) {
                        i += 1;
                    }
                    value = &attributes[value_start..i];
                }
            }
        }
        if !name.is_empty() && name.eq_ignore_ascii_case(wanted) {
            return Some(html_escape::decode_html_entities(value).into_owned());
        }
        if name.is_empty() && i == name_start {
            i += 1; // nothing consumed: never loop in place
        }
    }
    None
}
