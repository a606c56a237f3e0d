//! English stemming with a memo: the same words come back again and again (a page of kernel docs says
//! "the", "device" and "driver" hundreds of times), and the Snowball algorithm costs far more than a hash
//! lookup (FxHash: the words are short and not adversarial in effect, the memo is bounded). Same output as
//! tantivy's `Stemmer`; a quarter of indexing time was spent re-stemming words.

use rust_stemmers::{Algorithm, Stemmer};
use rustc_hash::FxHashMap as HashMap;
use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words remembered per indexing thread before the memo starts over (bounded memory: a few MB).
const MEMO_WORDS: usize = 100_000;

/// A [`TokenFilter`] stemming lower-cased English tokens, remembering each word's stem.
#[derive(Clone, Default)]
pub struct MemoStemmer;

impl TokenFilter for MemoStemmer {
    type Tokenizer<T: Tokenizer> = MemoStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoStemmerFilter<T> {
        MemoStemmerFilter { inner: tokenizer, memo: HashMap::default() }
    }
}

/// Each indexing thread clones its analyzer, so each has its own memo: no locking.
#[derive(Clone)]
pub struct MemoStemmerFilter<T> {
    inner: T,
    memo: HashMap<String, String>,
}

impl<T: Tokenizer> Tokenizer for MemoStemmerFilter<T> {
    type TokenStream<'a> = MemoStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        if self.memo.len() >= MEMO_WORDS {
            self.memo.clear();
        }
        MemoStemmerStream {
            tail: self.inner.token_stream(text),
            stemmer: Stemmer::create(Algorithm::English),
            memo: &mut self.memo,
        }
    }
}

pub struct MemoStemmerStream<'a, T> {
    tail: T,
    stemmer: Stemmer,
    memo: &'a mut HashMap<String, String>,
}

impl<T: TokenStream> TokenStream for MemoStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        match self.memo.get(&token.text) {
            Some(stem) => {
                token.text.clear();
                token.text.push_str(stem);
            }
            None => {
                let stem = self.stemmer.stem(&token.text).into_owned();
                self.memo.insert(std::mem::replace(&mut token.text, stem.clone()), stem);
            }
        }
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
