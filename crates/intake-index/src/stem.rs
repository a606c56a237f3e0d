//! English stemming with a memo: the same words come back again and again (a page of kernel docs says
//! "the", "device" and "driver" hundreds of times), and the Snowball algorithm costs far more than a lookup.
//! Same output as tantivy's `Stemmer`; a quarter of indexing time was spent re-stemming words.
//!
//! The memo is a direct-mapped table of short words and their stems, in place: a lookup reads one slot, where
//! a map of `String`s read the map's slot, then the key and the stem each from the heap (6 % of a batch's
//! indexing went to those lookups). A word whose slot holds another is stemmed again and takes the slot: the
//! frequent words stay, and the table never grows.

use std::cell::RefCell;
use std::hash::Hasher;

use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHasher;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words (and stems) up to this many bytes are remembered; longer ones are rare, and stemmed each time.
const MEMO_WORD_BYTES: usize = 22;
/// Slots of the memo, a power of two: 3 MB a thread.
const MEMO_SLOTS: usize = 1 << 16;

/// A word and its stem, in place.
#[derive(Clone, Copy)]
struct Slot {
    word_len: u8,
    stem_len: u8,
    word: [u8; MEMO_WORD_BYTES],
    stem: [u8; MEMO_WORD_BYTES],
}

impl Slot {
    const EMPTY: Slot = Slot { word_len: 0, stem_len: 0, word: [0; MEMO_WORD_BYTES], stem: [0; MEMO_WORD_BYTES] };

    fn stem_of(&self, word: &str) -> Option<&str> {
        let remembered = &self.word[..self.word_len as usize];
        // The empty word is never looked up (tokens have text), so an empty slot matches nothing.
        (self.word_len != 0 && remembered == word.as_bytes())
            .then(|| std::str::from_utf8(&self.stem[..self.stem_len as usize]).ok())
            .flatten()
    }

    /// Remembers `word`'s stem here, if both are short enough.
    fn remember(&mut self, word: &str, stem: &str) {
        if word.is_empty() || word.len() > MEMO_WORD_BYTES || stem.len() > MEMO_WORD_BYTES {
            return;
        }
        self.word_len = word.len() as u8;
        self.word[..word.len()].copy_from_slice(word.as_bytes());
        self.stem_len = stem.len() as u8;
        self.stem[..stem.len()].copy_from_slice(stem.as_bytes());
    }
}

fn slot_index(word: &str) -> usize {
    let mut hasher = FxHasher::default();
    hasher.write(word.as_bytes());
    // FxHash's high bits are its best mixed.
    (hasher.finish() >> 32) as usize & (MEMO_SLOTS - 1)
}

thread_local! {
    /// One memo per thread, shared by every analyzer the thread runs: indexing threads keep theirs across
    /// documents, and search threads across queries (a search's snippet generator clones a fresh analyzer, so an
    /// analyzer-owned memo started empty on every query). Stems are a pure function of the word, so sharing is safe.
    static MEMO: RefCell<Box<[Slot]>> = RefCell::new(vec![Slot::EMPTY; MEMO_SLOTS].into_boxed_slice());
}

#[derive(Clone, Default)]
pub struct MemoStemmer;

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter { inner: tokenizer }
    }
}

#[derive(Clone)]
pub struct MemoStemmerFilter<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoStemmerStream { tail: self.inner.token_stream(text), stemmer: Stemmer::create(Algorithm::English) }
    }
}

pub struct MemoStemmerStream<T> {
    tail: T,
    stemmer: Stemmer,
}

impl<T: TokenStream> TokenStream for MemoStemmerStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        MEMO.with_borrow_mut(|memo| {
            let slot = &mut memo[slot_index(&token.text)];
            if let Some(stem) = slot.stem_of(&token.text) {
                token.text.clear();
                token.text.push_str(stem);
                return;
            }
            let stem = self.stemmer.stem(&token.text);
            slot.remember(&token.text, &stem);
            if let std::borrow::Cow::Owned(stem) = stem {
                token.text = stem;
            }
        });
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};

    use super::*;

    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut stream = analyzer.token_stream(text);
        let mut found = Vec::new();
        stream.process(&mut |token| found.push(token.text.clone()));
        found
    }

    #[test]
    fn stems_exactly_as_tantivy_does_including_repeats() {
        let text =
            "Running drivers ran; the drivers' devices were running. Généralement, RUNNING connections connected";
        let mut memo = TextAnalyzer::builder(SimpleTokenizer::default()).filter(LowerCaser).filter(MemoStemmer).build();
        let mut plain = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build();
        let expected = tokens(&mut plain, text);
        assert_eq!(tokens(&mut memo, text), expected);
        assert_eq!(tokens(&mut memo, text), expected, "from the memo the second time");
        assert!(expected.contains(&"run".to_string()) && expected.contains(&"connect".to_string()));
    }

    /// Words longer than a slot holds, and words whose slots are the same, are stemmed as tantivy does every time.
    #[test]
    fn long_words_and_words_sharing_a_slot_are_stemmed_as_tantivy_does() {
        let letters = |mut i: usize| {
            let mut word = String::from("running");
            while i > 0 {
                word.push((b'a' + (i % 26) as u8) as char);
                i /= 26;
            }
            word.push_str("ations");
            word
        };
        let first = "connections";
        let other = (1..).map(letters).find(|word| slot_index(word) == slot_index(first)).unwrap();
        let long = "internationalizations".repeat(2);
        let text = format!("{first} {other} {first} {long} {other} {long} {first}");
        let mut memo = TextAnalyzer::builder(SimpleTokenizer::default()).filter(LowerCaser).filter(MemoStemmer).build();
        let mut plain = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build();
        let expected = tokens(&mut plain, &text);
        assert_eq!(expected[0], "connect");
        assert_eq!(tokens(&mut memo, &text), expected);
        assert_eq!(tokens(&mut memo, &text), expected, "again, from what the memo kept");
    }
}
