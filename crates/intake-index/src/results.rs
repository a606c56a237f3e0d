//! One result as Coveo's Search API answers it: the stored item read back into `raw` with the standard fields,
//! `firstSentences`, and a query-biased excerpt computed from a bounded stretch of the stored text.

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tantivy::query::Query;
use tantivy::schema::{Field, Value as _};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Searcher, TantivyDocument};

use crate::schema::Fields;

/// The longest excerpt by default (`excerptLength`), in characters.
pub const EXCERPT_CHARS: usize = 200;
/// The longest `excerptLength` accepted.
pub const MAX_EXCERPT_CHARS: usize = 2_000;
/// The most characters of a result's `firstSentences`.
pub const FIRST_SENTENCES_CHARS: usize = 300;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub title: String,
    pub uri: String,
    pub printable_uri: String,
    pub click_uri: String,
    pub unique_id: String,
    pub excerpt: String,
    pub excerpt_highlights: Vec<Highlight>,
    /// The first sentences of the item's text (at most [`FIRST_SENTENCES_CHARS`] characters).
    pub first_sentences: String,
    pub score: f32,
    pub raw: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Highlight {
    pub offset: usize,
    pub length: usize,
}

/// What a stored document weighs (its text and byte values).
pub fn stored_bytes(doc: &TantivyDocument) -> usize {
    doc.field_values()
        .map(|(_, value)| value.as_str().map(str::len).or_else(|| value.as_bytes().map(<[u8]>::len)).unwrap_or(8))
        .sum()
}

pub fn hit(fields: &Fields, doc: &TantivyDocument, score: f32, excerpts: &Excerpts) -> SearchHit {
    let text = |field: Field| doc.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let uri = text(fields.uri);
    let title = text(fields.title);
    let mut raw: Map<String, Value> = doc
        .get_first(fields.meta)
        .and_then(|v| v.as_bytes())
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    let date_ms = doc.get_first(fields.date).and_then(|v| v.as_datetime()).map(|d| d.into_timestamp_millis());
    let click_uri = raw.get("clickableuri").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| uri.clone());
    let standard = [
        ("uri", Value::from(uri.clone())),
        ("sysuri", Value::from(uri.clone())),
        ("clickableuri", Value::from(click_uri.clone())),
        ("title", Value::from(title.clone())),
        ("systitle", Value::from(title.clone())),
        ("source", Value::from(text(fields.source_name))),
        ("syssource", Value::from(text(fields.source_name))),
        ("sourcetype", Value::from("Push")),
        ("filetype", Value::from(text(fields.filetype))),
        ("sysfiletype", Value::from(text(fields.filetype))),
        ("date", date_ms.map_or(Value::Null, Value::from)),
        ("sysdate", date_ms.map_or(Value::Null, Value::from)),
        ("size", doc.get_first(fields.size).and_then(|v| v.as_u64()).map_or(Value::Null, Value::from)),
        ("indexeddate", doc.get_first(fields.indexed_at).and_then(|v| v.as_i64()).map_or(Value::Null, Value::from)),
        ("collection", Value::from("default")),
    ];
    // The standard fields win over metadata of the same name, as Coveo maps `date` to `@date` (epoch ms).
    for (key, value) in standard {
        raw.insert(key.to_string(), value);
    }
    // Coveo's content ids, which Headless and Atomic read (and warn without): stable hashes of the item's URI.
    let digest = Sha256::digest(uri.as_bytes());
    raw.insert("permanentid".to_string(), Value::from(hex::encode(digest)));
    raw.insert("urihash".to_string(), Value::from(URL_SAFE_NO_PAD.encode(&digest[..12])));
    if let Some(parent) = doc.get_first(fields.parent_id).and_then(|v| v.as_str()) {
        raw.insert("parentid".to_string(), Value::from(parent));
    }
    let (excerpt, excerpt_highlights) = excerpt(doc, fields, excerpts);
    let first_sentences = first_sentences(doc.get_first(fields.text_head).and_then(|v| v.as_str()).unwrap_or(""));
    SearchHit {
        printable_uri: uri.clone(),
        unique_id: format!("42.{}${uri}", text(fields.source)),
        title,
        click_uri,
        uri,
        excerpt,
        excerpt_highlights,
        first_sentences,
        score,
        raw,
    }
}

/// The first two sentences of a text (a sentence ends with `.`, `!` or `?` and a space), within
/// [`FIRST_SENTENCES_CHARS`] characters; a text without such an end is cut at a word.
fn first_sentences(text: &str) -> String {
    let text = text.trim_start();
    let limit = text.char_indices().nth(FIRST_SENTENCES_CHARS).map_or(text.len(), |(i, _)| i);
    let window = &text[..limit];
    let ends: Vec<usize> = window
        .char_indices()
        .filter(|(i, c)| {
            // A sentence's end is ASCII: the next byte starts a character.
            matches!(c, '.' | '!' | '?') && window[i + 1..].chars().next().is_none_or(char::is_whitespace)
        })
        .map(|(i, _)| i + 1)
        .take(2)
        .collect();
    let cut = match ends.last() {
        Some(end) => *end,
        None if limit == text.len() => limit,
        None => window.rfind(char::is_whitespace).unwrap_or(limit),
    };
    window[..cut].trim_end().to_string()
}

/// The passage around the query's words, or the start of the text when there is no `q`.
fn excerpt(doc: &TantivyDocument, fields: &Fields, excerpts: &Excerpts) -> (String, Vec<Highlight>) {
    let text = doc.get_first(fields.text_head).and_then(|v| v.as_str()).unwrap_or_default();
    if let Some(found) = excerpts.passage(text) {
        return found;
    }
    let cut = text.char_indices().nth(excerpts.chars).map_or(text.len(), |(i, _)| i);
    (text[..cut].to_string(), Vec::new())
}

/// Query-biased excerpts at a bounded cost per result. The stored text (up to 64 KiB) is not tokenized whole: the
/// query's indexed forms are found in it with one Aho-Corasick pass, the stretch where most of them meet is taken
/// (the excerpt's length and a little more), and only that stretch goes through tantivy's snippet generator, which
/// marks the words that really index to the query's terms. Tokenizing (and stemming) is most of an excerpt's cost,
/// so the stretch is as short as the excerpt allows.
pub struct Excerpts {
    /// `None` for a search without words.
    generator: Option<SnippetGenerator>,
    /// The longest excerpt, in characters.
    chars: usize,
    /// Where the query's words may be: each term's [`needle`], matched ignoring ASCII case.
    needles: Option<AhoCorasick>,
}

/// The most matches looked at to choose where the excerpt is.
const MAX_MATCHES: usize = 256;
/// What the snippet generator reads beyond the excerpt's length, so that it sees the word the excerpt ends on.
const WINDOW_SLACK: usize = 32;

impl Excerpts {
    pub fn new(searcher: &Searcher, query: &dyn Query, fields: &Fields, chars: usize) -> tantivy::Result<Excerpts> {
        let mut generator = SnippetGenerator::create(searcher, query, fields.body)?;
        generator.set_max_num_chars(chars);
        let mut needles: Vec<&str> = Vec::new();
        let mut terms: Vec<String> = Vec::new();
        query.query_terms(&mut |term, _| {
            if let Some(text) = term.value().as_str().filter(|t| term.field() == fields.body && !t.is_empty()) {
                terms.push(text.to_string());
            }
        });
        needles.extend(terms.iter().map(|term| needle(term)));
        needles.sort_unstable();
        needles.dedup();
        let needles = (!needles.is_empty())
            // The automaton's own choice: a DFA for up to 100 needles (a query's few words: built in microseconds
            // and scanned ~10 % faster end to end than the contiguous NFA, measured on linux-doc), an NFA beyond.
            .then(|| AhoCorasick::builder().ascii_case_insensitive(true).build(needles).ok())
            .flatten();
        Ok(Excerpts { generator: Some(generator), chars, needles })
    }

    /// Excerpts of a search without words: the start of each text.
    pub fn without_query(chars: usize) -> Excerpts {
        Excerpts { generator: None, chars, needles: None }
    }

    /// The best passage of `text` with its highlights (offsets in characters), if the query's words are there.
    fn passage(&self, text: &str) -> Option<(String, Vec<Highlight>)> {
        let generator = self.generator.as_ref()?;
        let window = match &self.needles {
            Some(needles) => window(text, needles, self.chars)?,
            None => text,
        };
        let snippet = generator.snippet(window);
        let fragment = snippet.fragment();
        let trimmed = fragment.trim();
        if trimmed.is_empty() {
            return None;
        }
        let lead = fragment.len() - fragment.trim_start().len();
        let highlights = snippet
            .highlighted()
            .iter()
            .map(|range| Highlight {
                offset: fragment[lead..range.start].chars().count(),
                length: fragment[range.clone()].chars().count(),
            })
            .collect();
        Some((trimmed.to_string(), highlights))
    }
}

/// What a term is looked for as in the text: its stem, which begins most words it comes from ("modul": module,
/// modules), less a final `i` or `e` that the stemmer may have put in place of the word's own ending ("memori":
/// memory; "hope": hoping). A needle only says where to look; the snippet generator marks the real words.
fn needle(term: &str) -> &str {
    match term.strip_suffix(['i', 'e']) {
        Some(shorter) if shorter.len() >= 3 => shorter,
        _ => term,
    }
}

/// The stretch of `text` for an excerpt of `chars`: from a little before the first place where the most different
/// needles meet, to an excerpt's length further (in bytes, as the snippet generator counts),
/// cut at characters; `None` when no needle is in the text.
fn window<'t>(text: &'t str, needles: &AhoCorasick, chars: usize) -> Option<&'t str> {
    // Where the words meet: within two thirds of an excerpt, so that with the quarter before they fit in one. The
    // scan stops at the first such place holding every needle (most pages have one early); else it reads up to
    // MAX_MATCHES matches.
    let span = (chars * 2 / 3).max(16);
    let mut matches: Vec<(usize, usize)> = Vec::new();
    for found in needles.find_iter(text).take(MAX_MATCHES) {
        matches.push((found.start(), found.pattern().as_usize()));
        let near = matches.iter().rev().take_while(|(s, _)| *s + span > found.start());
        let mut patterns: Vec<usize> = near.map(|(_, p)| *p).collect();
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.len() == needles.patterns_len() {
            break;
        }
    }
    let (mut best, mut best_distinct) = (matches.first()?.0, 0);
    for (i, (start, _)) in matches.iter().enumerate() {
        let mut seen: Vec<usize> =
            matches[i..].iter().take_while(|(s, _)| *s < start + span).map(|(_, p)| *p).collect();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() > best_distinct {
            (best, best_distinct) = (*start, seen.len());
        }
        if best_distinct == needles.patterns_len() {
            break; // every word of the query together: no place can be better
        }
    }
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    // The generator cuts its passages from the window's start: a quarter of an excerpt of context before the
    // words keeps the stretch where they meet inside the first one.
    let mut start = floor(best.saturating_sub(chars / 4));
    if let Some(end) = sentence_end(&text[start..best]) {
        start += end; // the sentence the words are in, from its start
    } else if text[..start].ends_with(char::is_alphanumeric) {
        // Not from the middle of a word: from the next one (`best` itself begins a match).
        start += text[start..].find(|c: char| !c.is_alphanumeric()).unwrap_or(0);
        start = start.min(best);
    }
    Some(&text[start..floor(start + chars + WINDOW_SLACK)])
}

/// Where the last sentence of `text` that ends in it ends (`.`, `!` or `?` before a space, or a line break).
fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (1..bytes.len()).rev().find(|&i| {
        bytes[i - 1] == b'\n' || (matches!(bytes[i - 1], b'.' | b'!' | b'?') && bytes[i].is_ascii_whitespace())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_where_most_query_words_meet() {
        let needles = AhoCorasick::builder().ascii_case_insensitive(true).build(["kernel", "modul"]).unwrap();
        let text = format!(
            "{}kernel here. {} The Kernel loads a Module. {}",
            "x ".repeat(2000),
            "y ".repeat(2000),
            "z ".repeat(2000)
        );
        let chosen = window(&text, &needles, 200).unwrap();
        assert!(chosen.len() <= 200 + WINDOW_SLACK, "{}", chosen.len());
        assert!(chosen.contains("The Kernel loads a Module"), "both words meet there, not at the first 'kernel'");
        assert!(window(&"é".repeat(5000), &needles, 200).is_none());
        let accents = format!("{}kernel{}", "é".repeat(500), "é".repeat(1000));
        assert!(window(&accents, &needles, 200).unwrap().contains("kernel"), "cut at characters");
        let short = window(&text, &needles, 20).unwrap();
        assert!(short.len() <= 20 + WINDOW_SLACK && short.contains("Kernel"), "{short}");
        let words = window("Wordy preamble; the kernel is a module", &needles, 40).unwrap();
        assert!(words.starts_with("; the kernel"), "from a word's end, not its middle: {words}");
        let sentence = window("Preamble. The kernel is a module", &needles, 40).unwrap();
        assert!(sentence.starts_with(" The kernel"), "from the sentence's start: {sentence}");
    }

    #[test]
    fn needles_find_the_words_a_stem_does_not_begin() {
        assert_eq!(needle("memori"), "memor", "memory");
        assert_eq!(needle("hope"), "hop", "hoping");
        assert_eq!(needle("modul"), "modul");
        assert_eq!(needle("use"), "use", "too short to shorten");
    }

    #[test]
    fn first_sentences_are_two_sentences_or_a_cut_at_a_word() {
        assert_eq!(first_sentences("One. Two! Three? Four."), "One. Two!");
        assert_eq!(first_sentences("  v1.2 is out. It is faster."), "v1.2 is out. It is faster.");
        assert_eq!(first_sentences("no end at all"), "no end at all");
        assert_eq!(first_sentences("Café ’quoted’ © 2022. Zoë’s “text”! More."), "Café ’quoted’ © 2022. Zoë’s “text”!");
        let wide = "é".repeat(400);
        assert_eq!(first_sentences(&wide).chars().count(), FIRST_SENTENCES_CHARS, "cut at a character");
        let long = "word ".repeat(100);
        let cut = first_sentences(&long);
        assert!(cut.len() <= FIRST_SENTENCES_CHARS && cut.ends_with("word"), "{cut}");
    }
}
