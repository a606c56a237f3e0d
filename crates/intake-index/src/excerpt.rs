//! Query-biased excerpts from what the index already knows. The postings hold where each of the query's words is
//! in an item (their positions, in words); the stored text holds, beside the text, where every
//! [`MARK_STRIDE`]-th word starts ([`marks`]). So a result's excerpt costs a few postings reads and a scan of a
//! few hundred bytes: the place where most of the query's words meet is found among their positions, turned into
//! a byte offset from the nearest mark, and only the excerpt's own stretch of text is read — no re-tokenizing, no
//! stemming, no scan of the whole stored text. The highlighted words are exactly those the index matched.

use std::cell::OnceCell;
use std::ops::Range;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tantivy::index::InvertedIndexReader;
use tantivy::postings::{Postings, TermInfo};
use tantivy::query::Query;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocSet, Searcher, Term};

use crate::schema::Fields;

/// Every this many words of the stored text, where the word starts is kept.
pub const MARK_STRIDE: usize = 64;
/// The most query words an excerpt looks for.
const MAX_TERMS: usize = 64;

/// A highlighted stretch of an excerpt, in characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Highlight {
    pub offset: usize,
    pub length: usize,
}

/// The words of `text` from byte `from` on (which must begin a character), as tantivy's `SimpleTokenizer` cuts
/// them — runs of alphanumeric characters — so the n-th word of a text is the word at position n of the index.
#[inline]
pub fn words(text: &str, from: usize) -> Words<'_> {
    Words { text, at: from }
}

pub struct Words<'t> {
    text: &'t str,
    at: usize,
}

impl Words<'_> {
    /// Moves on over the characters that are (`word`) or are not alphanumeric. ASCII, most of any text, is told
    /// by its byte alone.
    #[inline]
    fn skip(&mut self, word: bool) {
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.at) {
            let (alphanumeric, width) = if byte < 0x80 {
                (byte.is_ascii_alphanumeric(), 1)
            } else {
                // `at` always begins a character: it moves by whole characters.
                self.text[self.at..].chars().next().map_or((false, 1), |c| (c.is_alphanumeric(), c.len_utf8()))
            };
            if alphanumeric != word {
                return;
            }
            self.at += width;
        }
    }
}

impl Iterator for Words<'_> {
    type Item = Range<usize>;

    #[inline]
    fn next(&mut self) -> Option<Range<usize>> {
        self.skip(false);
        let start = self.at;
        self.skip(true);
        (self.at > start).then_some(start..self.at)
    }
}

/// The marks of `text`, stored beside it: how many words it has, then where every [`MARK_STRIDE`]-th word starts
/// (u32 little-endian), as unpadded base64 (a stored text value).
pub fn marks(text: &str) -> String {
    let (count, starts) = mark_starts(text);
    let mut bytes = Vec::with_capacity(4 * (starts.len() + 1));
    bytes.extend_from_slice(&count.to_le_bytes());
    for start in starts {
        bytes.extend_from_slice(&start.to_le_bytes());
    }
    STANDARD_NO_PAD.encode(bytes)
}

/// The number of words of `text` and the starts of every [`MARK_STRIDE`]-th one.
fn mark_starts(text: &str) -> (u32, Vec<u32>) {
    let mut starts = Vec::new();
    let mut count = 0u32;
    for (n, word) in words(text, 0).enumerate() {
        if n % MARK_STRIDE == 0 {
            starts.push(word.start as u32);
        }
        count = n as u32 + 1;
    }
    (count, starts)
}

/// Marks read back, checked against the text they were written for (else computed again).
struct Marks {
    count: u32,
    starts: Vec<u32>,
}

impl Marks {
    fn of(text: &str, stored: Option<&str>) -> Marks {
        stored.and_then(|stored| Marks::decode(text, stored)).unwrap_or_else(|| {
            // An item indexed before marks were stored: found by scanning the text once.
            let (count, starts) = mark_starts(text);
            Marks { count, starts }
        })
    }

    fn decode(text: &str, stored: &str) -> Option<Marks> {
        let bytes = STANDARD_NO_PAD.decode(stored).ok()?;
        let mut values = bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let count = values.next()?;
        let starts: Vec<u32> = values.collect();
        let fits = |start: &u32| text.is_char_boundary(*start as usize) && (*start as usize) < text.len();
        (starts.len() == (count as usize).div_ceil(MARK_STRIDE) && starts.iter().all(fits))
            .then_some(Marks { count, starts })
    }

    /// The byte range of the word at `position` (one of the text's words).
    fn word(&self, text: &str, position: u32) -> Option<Range<usize>> {
        let mark = position as usize / MARK_STRIDE;
        let from = *self.starts.get(mark)? as usize;
        words(text, from).nth(position as usize % MARK_STRIDE)
    }

    /// The last mark at or before byte `at`: its word's position and start.
    fn before(&self, at: usize) -> (u32, usize) {
        let mark = self.starts.partition_point(|start| *start as usize <= at).saturating_sub(1);
        ((mark * MARK_STRIDE) as u32, self.starts.get(mark).map_or(0, |start| *start as usize))
    }
}

/// The query's words in the body field, and for each segment (looked up when a result first comes from it) the
/// postings information of each.
pub struct Excerpts {
    /// The longest excerpt, in characters.
    chars: usize,
    terms: Vec<Term>,
    segments: Vec<OnceCell<Option<SegmentTerms>>>,
    /// Where the postings are: the searcher and the body field (`None` without words to look for).
    postings: Option<(Searcher, Field)>,
}

struct SegmentTerms {
    index: Arc<InvertedIndexReader>,
    infos: Vec<Option<TermInfo>>,
}

impl Excerpts {
    pub fn new(searcher: &Searcher, query: &dyn Query, fields: &Fields, chars: usize) -> Excerpts {
        let mut terms: Vec<Term> = Vec::new();
        query.query_terms(&mut |term, _| {
            let words = term.value().as_str().is_some_and(|t| !t.is_empty());
            if term.field() == fields.body && words && !terms.contains(term) && terms.len() < MAX_TERMS {
                terms.push(term.clone());
            }
        });
        Excerpts {
            chars,
            segments: (0..searcher.segment_readers().len()).map(|_| OnceCell::new()).collect(),
            postings: (!terms.is_empty()).then(|| (searcher.clone(), fields.body)),
            terms,
        }
    }

    /// Excerpts of a search without words: the start of each text.
    pub fn without_query(chars: usize) -> Excerpts {
        Excerpts { chars, terms: Vec::new(), segments: Vec::new(), postings: None }
    }

    /// The excerpt of the item at `address` whose stored text is `text` (with its stored `marks`): the passage
    /// where the query's words meet with their highlights, else the start of the text.
    pub fn excerpt(&self, address: DocAddress, text: &str, marks: Option<&str>) -> (String, Vec<Highlight>) {
        self.passage(address, text, marks).unwrap_or_else(|| {
            let cut = text.char_indices().nth(self.chars).map_or(text.len(), |(i, _)| i);
            (text[..cut].to_string(), Vec::new())
        })
    }

    fn passage(&self, address: DocAddress, text: &str, stored_marks: Option<&str>) -> Option<(String, Vec<Highlight>)> {
        if self.terms.is_empty() || text.is_empty() {
            return None;
        }
        let marks = Marks::of(text, stored_marks);
        let places = self.places(address, marks.count)?;
        let span = (self.chars * 2 / 3 / 6).max(2) as u32;
        let best = meeting(&places, span);
        let best = marks.word(text, best)?.start;
        let start = window_start(text, best, self.chars);
        let limit = text[start..].char_indices().nth(self.chars).map_or(text.len(), |(i, _)| start + i);
        let (mark_position, mark_start) = marks.before(start);
        let mut cut = start;
        let mut highlighted: Vec<Range<usize>> = Vec::new();
        for (position, word) in (mark_position..).zip(words(text, mark_start)) {
            if word.end > limit {
                break;
            }
            if word.start < start {
                continue;
            }
            cut = word.end;
            if places.binary_search_by_key(&position, |(p, _)| *p).is_ok() {
                highlighted.push(word);
            }
        }
        let passage = text[start..cut].trim();
        if highlighted.is_empty() || passage.is_empty() {
            return None;
        }
        let lead = start + (text[start..cut].len() - text[start..cut].trim_start().len());
        let highlights = highlighted
            .into_iter()
            .map(|word| Highlight {
                offset: text[lead..word.start].chars().count(),
                length: text[word].chars().count(),
            })
            .collect();
        Some((passage.to_string(), highlights))
    }

    /// Where the query's words are in the item at `address`, within its first `words` words: (position, which
    /// word), by position; `None` when none of them is there.
    fn places(&self, address: DocAddress, words: u32) -> Option<Vec<(u32, usize)>> {
        let segment = self.segment(address.segment_ord as usize)?;
        let mut places = Vec::new();
        let mut positions = Vec::new();
        for (term, info) in segment.infos.iter().enumerate() {
            let Some(info) = info else { continue };
            let mut postings =
                segment.index.read_postings_from_terminfo(info, IndexRecordOption::WithFreqsAndPositions).ok()?;
            // A fresh postings list stands on its first item, which may come after the one looked for.
            if postings.doc() > address.doc_id || postings.seek(address.doc_id) != address.doc_id {
                continue;
            }
            positions.clear();
            postings.positions(&mut positions);
            places.extend(positions.iter().take_while(|p| **p < words).map(|p| (*p, term)));
        }
        places.sort_unstable();
        (!places.is_empty()).then_some(places)
    }

    fn segment(&self, ord: usize) -> Option<&SegmentTerms> {
        let (searcher, body) = self.postings.as_ref()?;
        self.segments
            .get(ord)?
            .get_or_init(|| {
                let index = searcher.segment_reader(ord as u32).inverted_index(*body).ok()?;
                let infos = self.terms.iter().map(|term| index.get_term_info(term).ok().flatten()).collect();
                Some(SegmentTerms { index, infos })
            })
            .as_ref()
    }
}

/// The first position from which the most different words of `places` (sorted) are within `span` words.
fn meeting(places: &[(u32, usize)], span: u32) -> u32 {
    let kinds = places.iter().map(|(_, term)| term + 1).max().unwrap_or(0);
    let mut counts = vec![0u32; kinds];
    let (mut distinct, mut end) = (0, 0);
    let (mut best, mut best_distinct) = (places[0].0, 0);
    for (i, &(position, _)) in places.iter().enumerate() {
        while end < places.len() && places[end].0 < position.saturating_add(span) {
            let count = &mut counts[places[end].1];
            distinct += usize::from(*count == 0);
            *count += 1;
            end += 1;
        }
        if distinct > best_distinct {
            (best, best_distinct) = (position, distinct);
        }
        let count = &mut counts[places[i].1];
        *count -= 1;
        distinct -= usize::from(*count == 0);
    }
    best
}

/// Where an excerpt of `chars` around the word at byte `best` starts: a quarter of an excerpt before it, from the
/// start of the sentence the word is in when one begins there, never inside a word.
fn window_start(text: &str, best: usize, chars: usize) -> usize {
    let mut start = best.saturating_sub(chars / 4);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    if let Some(end) = sentence_end(&text[start..best]) {
        start += end;
    } else if text[..start].ends_with(char::is_alphanumeric) {
        start += text[start..].find(|c: char| !c.is_alphanumeric()).unwrap_or(0);
        start = start.min(best);
    }
    start
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
    use tantivy::tokenizer::{SimpleTokenizer, TokenStream, Tokenizer};

    use super::*;

    #[test]
    fn words_are_the_simple_tokenizers_words() {
        let text = "Hello, wörld! naïve_café 42x — 日本語 テキスト; Zoë’s “text” a\u{0301}b x\u{200b}y ＡＢＣ end";
        let mut tokenizer = SimpleTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut expected = Vec::new();
        while stream.advance() {
            expected.push(stream.token().offset_from..stream.token().offset_to);
        }
        assert_eq!(words(text, 0).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn marks_find_every_word_by_its_position() {
        let text: String = (0..1000).map(|n| format!("w{n}é, ")).collect();
        let stored = marks(&text);
        let marks = Marks::of(&text, Some(&stored));
        assert_eq!(marks.count, 1000);
        assert_eq!(marks.starts.len(), 1000usize.div_ceil(MARK_STRIDE));
        for position in [0u32, 1, 63, 64, 65, 500, 999] {
            let word = marks.word(&text, position).unwrap();
            assert_eq!(&text[word], format!("w{position}é"));
        }
        assert!(marks.word(&text, 1000).is_none());
        let (position, start) = marks.before(text.find("w130é").unwrap() + 2);
        assert_eq!((position, &text[start..start + 4]), (128, "w128"));
        // Marks of another text are not trusted: they are computed again.
        let other = "short text";
        assert_eq!(Marks::of(other, Some(&stored)).count, 2);
        assert_eq!(Marks::of(other, Some("not base64 !")).count, 2);
    }

    #[test]
    fn the_meeting_place_holds_the_most_different_words() {
        let places = [(3, 0), (40, 0), (90, 1), (93, 0), (200, 1)];
        assert_eq!(meeting(&places, 10), 90, "both words within ten words");
        assert_eq!(meeting(&places, 2), 3, "none meet: the first");
        assert_eq!(meeting(&[(7, 0)], 20), 7);
    }

    #[test]
    fn a_window_starts_at_a_sentence_or_a_word() {
        let text = "Wordy preamble; the kernel is a module";
        assert_eq!(&text[window_start(text, text.find("kernel").unwrap(), 40)..], "; the kernel is a module");
        let text = "Preamble. The kernel is a module";
        assert_eq!(&text[window_start(text, text.find("kernel").unwrap(), 40)..], " The kernel is a module");
        let text = "ééééééééé kernel";
        assert!(text.is_char_boundary(window_start(text, text.find("kernel").unwrap(), 9)));
    }
}
