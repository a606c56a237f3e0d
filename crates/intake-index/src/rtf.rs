//! RTF: the text of a Rich Text Format document. Control words are read, not shown; the groups that are not text
//! (font, colour and style tables, pictures, embedded objects' data, field instructions, anything marked `\*` that
//! is not known) are skipped; text is decoded from the document's code page (`\ansicpg`, `\'hh`) and Unicode
//! escapes (`\uN`, with the `\ucN` fallback characters skipped); the `\info` group's title and author become the
//! item's. A scan over the bytes with an explicit group stack: no recursion, memory bounded by the budget.

use std::time::Instant;

use encoding_rs::{Encoding, WINDOWS_1252};

use crate::convert::{Budget, Converted, sniff};

/// The deepest group nesting read; real documents nest a few dozen levels.
const MAX_DEPTH: usize = 10_000;

/// Destinations whose text is not the document's (tables, pictures, data, instructions, metadata kept apart).
const SKIPPED: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "listtable",
    "listoverridetable",
    "revtbl",
    "rsidtbl",
    "generator",
    "pict",
    "objdata",
    "objclass",
    "fldinst",
    "themedata",
    "colorschememapping",
    "datastore",
    "latentstyles",
    "xmlnstbl",
    "filetbl",
    "bkmkstart",
    "bkmkend",
    "sp",
    "nonshppict",
    "pgdsctbl",
    "listtext",
    "pntext",
    "pntxta",
    "pntxtb",
    "mmathPr",
    "xe",
    "tc",
    "private",
    "userprops",
    "docvar",
    "wgrffmtfilter",
    "defchp",
    "defpap",
];

/// Where the text of the current group goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Body,
    Title,
    Author,
    /// Read for its control words only (`\info`), or not at all.
    Nowhere,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    destination: Destination,
    /// Characters that follow a `\uN` as its fallback for readers without Unicode (`\ucN`, 1 by default).
    fallback: u32,
}

/// Converts an RTF document. `Err` only when the content is not RTF at all.
pub fn convert_rtf(bytes: &[u8], budget: Budget) -> Result<Converted, String> {
    if !bytes.starts_with(b"{\\rtf") {
        return Err(format!(
            "the item's fileExtension says .rtf but its content is {}, not an RTF document",
            sniff(bytes)
        ));
    }
    let mut reader = Reader::new(bytes, budget);
    let problem = reader.read().err();
    let mut converted = Converted { converter: "rtf", ..Converted::default() };
    reader.flush();
    let [body, title, author] = reader.out.map(|text| text.trim().to_string());
    converted.text = body;
    converted.title = (!title.is_empty()).then_some(title);
    converted.author = (!author.is_empty()).then_some(author);
    converted.warning = problem;
    if converted.text.is_empty() && converted.warning.is_none() {
        converted.warning = Some("the RTF document has no text".to_string());
    }
    Ok(converted)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    groups: Vec<Group>,
    encoding: &'static Encoding,
    /// Bytes of the code page not yet decoded (a double-byte character's bytes come as two `\'hh`).
    pending: Vec<u8>,
    /// Fallback characters still to skip after a `\uN`.
    skip: u32,
    /// Nothing but `\*` read since the group opened: its first control word names its destination.
    fresh: bool,
    /// The group's destination is marked `\*`: skipped unless known.
    ignorable: bool,
    /// Body, title, author.
    out: [String; 3],
    budget: Budget,
    deadline: Instant,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], budget: Budget) -> Reader<'a> {
        Reader {
            bytes,
            at: 0,
            groups: vec![Group { destination: Destination::Body, fallback: 1 }],
            encoding: WINDOWS_1252,
            pending: Vec::new(),
            skip: 0,
            fresh: false,
            ignorable: false,
            out: Default::default(),
            deadline: Instant::now() + budget.time,
            budget,
        }
    }

    fn group(&self) -> Group {
        *self.groups.last().expect("the document's group")
    }

    /// Reads to the end, or to the first bound or damage met (the text so far is kept).
    fn read(&mut self) -> Result<(), String> {
        let mut steps = 0u32;
        while let Some(&byte) = self.bytes.get(self.at) {
            self.at += 1;
            match byte {
                b'{' => self.open()?,
                b'}' => self.close(),
                b'\\' => self.control(),
                b'\r' | b'\n' => {}
                _ => self.text_byte(byte),
            }
            steps += 1;
            if steps.is_multiple_of(4096) {
                self.within_bounds()?;
            }
        }
        Ok(())
    }

    fn within_bounds(&self) -> Result<(), String> {
        if Instant::now() > self.deadline {
            return Err("the RTF document took longer to convert than the conversion budget allows; the text \
                        before was kept"
                .to_string());
        }
        if self.out[0].len() as u64 > self.budget.expanded_bytes {
            return Err(
                "the RTF document's text is larger than the conversion budget; the text before was kept".to_string()
            );
        }
        Ok(())
    }

    fn open(&mut self) -> Result<(), String> {
        if self.groups.len() >= MAX_DEPTH {
            return Err(format!("the RTF document nests groups more than {MAX_DEPTH} deep; the text before was kept"));
        }
        self.flush();
        self.groups.push(self.group());
        self.fresh = true;
        Ok(())
    }

    fn close(&mut self) {
        self.flush();
        self.skip = 0;
        (self.fresh, self.ignorable) = (false, false);
        // The document's own group is never closed: text after a stray `}` is still text.
        if self.groups.len() > 1 {
            self.groups.pop();
        }
    }

    /// A control word (`\par`, `\u8364`, `\ansicpg1251`) or symbol (`\'e9`, `\{`, `\~`), after its backslash.
    fn control(&mut self) {
        let Some(&first) = self.bytes.get(self.at) else { return };
        if !first.is_ascii_alphabetic() {
            self.at += 1;
            return self.symbol(first);
        }
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_alphabetic) && self.at - start < 32 {
            self.at += 1;
        }
        let word = std::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default().to_string();
        let number_start = self.at;
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) && self.at - number_start < 11 {
            self.at += 1;
        }
        let parameter = std::str::from_utf8(&self.bytes[number_start..self.at]).ok().and_then(|n| n.parse().ok());
        // One space ends a control word and belongs to it.
        if self.bytes.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        self.word(&word, parameter);
    }

    fn symbol(&mut self, symbol: u8) {
        if symbol != b'*' {
            self.fresh = false;
        }
        match symbol {
            b'\'' => {
                let hex = self.bytes.get(self.at..self.at + 2).and_then(|h| std::str::from_utf8(h).ok());
                if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    self.at += 2;
                    self.text_byte(byte);
                }
            }
            b'*' => self.ignorable = true,
            b'~' => self.text_char(' '),
            b'_' => self.text_char('-'),
            b'{' | b'}' | b'\\' => self.text_byte(symbol),
            // A line break written as a backslash and a newline is a paragraph.
            b'\r' | b'\n' => self.text_char('\n'),
            // `\-` (an optional hyphen) and the rest show nothing.
            _ => {}
        }
    }

    fn word(&mut self, word: &str, parameter: Option<i64>) {
        if std::mem::take(&mut self.fresh) {
            let destination = match word {
                "title" => Some(Destination::Title),
                "author" => Some(Destination::Author),
                "info" => Some(Destination::Nowhere),
                _ if SKIPPED.contains(&word) || self.ignorable => Some(Destination::Nowhere),
                _ => None,
            };
            if let Some(destination) = destination {
                self.flush();
                self.groups.last_mut().expect("a group").destination = destination;
            }
        }
        self.ignorable = false;
        match word {
            "par" | "line" | "sect" | "page" | "row" => self.text_char('\n'),
            "tab" | "cell" => self.text_char('\t'),
            "emdash" => self.text_char('—'),
            "endash" => self.text_char('–'),
            "bullet" => self.text_char('•'),
            "lquote" => self.text_char('‘'),
            "rquote" => self.text_char('’'),
            "ldblquote" => self.text_char('“'),
            "rdblquote" => self.text_char('”'),
            "u" => {
                if let Some(code) = parameter {
                    let code = if code < 0 { code + 65_536 } else { code };
                    self.text_char(u32::try_from(code).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}'));
                    self.skip = self.group().fallback;
                }
            }
            "uc" => self.groups.last_mut().expect("a group").fallback = parameter.unwrap_or(1).clamp(0, 8) as u32,
            "ansicpg" => {
                let code_page = parameter.and_then(|n| u16::try_from(n).ok()).and_then(codepage::to_encoding);
                self.encoding = code_page.unwrap_or(WINDOWS_1252);
            }
            "bin" => {
                // Binary data of the given length follows: never text.
                let length = usize::try_from(parameter.unwrap_or(0)).unwrap_or(0);
                self.at = self.at.saturating_add(length).min(self.bytes.len());
            }
            _ => {}
        }
    }

    fn text_byte(&mut self, byte: u8) {
        self.fresh = false;
        if self.take_fallback() {
            return;
        }
        if self.group().destination != Destination::Nowhere {
            self.pending.push(byte);
        }
    }

    fn text_char(&mut self, c: char) {
        self.fresh = false;
        if c != '\n' && c != '\t' && self.take_fallback() {
            return;
        }
        self.flush();
        let destination = self.group().destination;
        if let Some(out) = self.output(destination) {
            out.push(c);
        }
    }

    /// Whether this character is a `\uN`'s fallback, skipped.
    fn take_fallback(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        false
    }

    fn output(&mut self, destination: Destination) -> Option<&mut String> {
        match destination {
            Destination::Body => Some(&mut self.out[0]),
            Destination::Title => Some(&mut self.out[1]),
            Destination::Author => Some(&mut self.out[2]),
            Destination::Nowhere => None,
        }
    }

    /// Decodes the code-page bytes gathered so far into the current destination.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (text, _) = self.encoding.decode_without_bom_handling(&self.pending);
        let text = text.into_owned();
        self.pending.clear();
        let destination = self.group().destination;
        if let Some(out) = self.output(destination) {
            out.push_str(&text);
        }
    }
}

/// Windows code pages by number, as `\ansicpg` names them.
mod codepage {
    use encoding_rs::Encoding;

    pub fn to_encoding(code_page: u16) -> Option<&'static Encoding> {
        let label = match code_page {
            874 => "windows-874",
            932 => "shift_jis",
            936 => "gbk",
            949 => "euc-kr",
            950 => "big5",
            1250..=1258 => return Encoding::for_label(format!("windows-{code_page}").as_bytes()),
            10000 => "macintosh",
            20866 => "koi8-r",
            28591 => "iso-8859-1",
            65001 => "utf-8",
            _ => return None,
        };
        Encoding::for_label(label.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(rtf: &str) -> Converted {
        convert_rtf(rtf.as_bytes(), Budget::default()).unwrap()
    }

    #[test]
    fn text_title_and_author_without_tables_or_control_words() {
        let converted = convert(
            r#"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Helvetica;}}{\colortbl;\red0\green0\blue0;}
{\*\generator Riched20 10.0}{\info{\title Harbour notes}{\author Ada Lovelace}}
\viewkind4\uc1\pard\f0\fs20 Caf\'e9 au lait, {\b bold} and {\i italic}.\par
Price: 5\u8364?\tab net\par
{\field{\*\fldinst HYPERLINK "https://example.com"}{\fldrslt the harbour site}}\par
{\pict\wmetafile8\picw100 0a0b0c0d0e0f}\line Last\~line\_end \{braces\} \\ done}"#,
        );
        assert_eq!(converted.warning, None);
        assert_eq!(
            converted.text,
            "Café au lait, bold and italic.\nPrice: 5€\tnet\nthe harbour site\n\nLast line-end {braces} \\ done"
        );
        assert_eq!(converted.title.as_deref(), Some("Harbour notes"));
        assert_eq!(converted.author.as_deref(), Some("Ada Lovelace"));
    }

    #[test]
    fn code_pages_and_unicode_fallbacks() {
        let cyrillic = convert(r"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2, \u1084\'ec\u1080\'e8\u1088\'f0}");
        assert_eq!(cyrillic.text, "Привет, мир");
        let japanese = convert(r"{\rtf1\ansi\ansicpg932 \'82\'a0\'82\'a2{\uc2\u12358\'82\'a4}}");
        assert_eq!(japanese.text, "あいう");
    }

    #[test]
    fn binary_data_is_skipped_by_its_length() {
        // Six bytes that would close and open groups, were they read.
        let rtf = b"{\\rtf1 before {\\*\\objdata \\bin6 }}{{\x00\x01}after}";
        assert_eq!(convert_rtf(rtf, Budget::default()).unwrap().text, "before after");
    }

    #[test]
    fn hostile_and_mislabelled_documents() {
        let deep = format!("{{\\rtf1 start {}", "{".repeat(100_000));
        let converted = convert(&deep);
        assert_eq!(converted.text, "start");
        assert!(converted.warning.unwrap().contains("nests groups more than 10000 deep"));
        let error = convert_rtf(b"%PDF-1.7", Budget::default()).unwrap_err();
        assert!(error.contains("says .rtf but its content is a PDF document"), "{error}");
        // Cut anywhere, stray closing braces, a control word at the very end: text, no panic.
        let whole = r"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 Some \b text\b0}}} after \'e9\u";
        for cut in 5..whole.len() {
            let _ = convert(&whole[..cut]);
        }
        assert_eq!(convert(whole).text, "Some text after é");
    }
}
