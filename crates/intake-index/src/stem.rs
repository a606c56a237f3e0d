//! English stemming with a memo: the same words come back again and again (a page of kernel docs says
//! "the", "device" and "driver" hundreds of times), and the Snowball algorithm costs far more than a hash
//! lookup (FxHash: the words are short and not adversarial in effect, the memo is bounded). Same output as
//! tantivy's `Stemmer`; a quarter of indexing time was spent re-stemming words.

use std::cell::RefCell;

use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap as HashMap;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words remembered per thread before the memo starts over (bounded memory: a few MB per thread).
const MEMO_WORDS: usize = 100_000;

thread_local! {
    /// One memo per thread, shared by every analyzer the thread runs: indexing threads keep theirs across
    /// documents, and search threads across queries (a search's snippet generator clones a fresh analyzer, so an
    /// analyzer-owned memo started empty on every query). Stems are a pure function of the word, so sharing is safe.
    static MEMO: RefCell<HashMap<String, String>> = RefCell::new(HashMap::default());
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
        MEMO.with_borrow_mut(|memo| {
            if memo.len() >= MEMO_WORDS {
                memo.clear();
            }
        });
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
        MEMO.with_borrow_mut(|memo| match memo.get(&token.text) {
            Some(stem) => {
                token.text.clear();
                token.text.push_str(stem);
            }
            None => {
                let stem = self.stemmer.stem(&token.text).into_owned();
                memo.insert(std::mem::replace(&mut token.text, stem.clone()), stem);
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
}
