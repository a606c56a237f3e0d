//! A parser for Coveo's query syntax as `q`, `aq`, `cq` and `dq` use it.
//!
//! ```text
//! expr      := and (("OR" | ",") and)*
//! and       := near (["AND"] near)*             juxtaposition means AND
//! near      := unary ("NEAR" [":" N] unary)*      two words (or phrases) at most N words apart (default 10)
//! unary     := ("NOT" | "-") unary | "(" expr ")" | field | name ":" values | word
//! field     := "@" name [op values]             without an operator: the field has a value
//!                                               `name: values` (no `@`, Coveo's older form) is `@name=values`
//! op        := "==" | "=" | "<>" | "!=" | ">" | ">=" | "<" | "<=" | "*="
//! values    := value | "(" value ("," value)* ")"   a value may be a range `a..b`
//! value     := '"' text '"' | bare-text
//! ```
//! Keywords are case-sensitive (`AND`, `OR`, `NOT`, `NEAR`), as in Coveo, unless [`Options::lowercase_operators`];
//! `near:N` (which Headless writes) is always one. Bare words hold wildcards (`*`, `?`) only when the options
//! say so (`q` with `wildcards`/`questionMark`); `*=` always takes them.
//!
//! What Coveo has and Intake does not (`+word`, `~=`, `%=`, `/=`, `$extensions(…)`, `[[nested]]`) is refused with
//! its position and what to write instead ([`ErrorKind::Unsupported`]): never a silent different answer.
//!
//! Every input is bounded before it can cost anything: at most [`MAX_EXPRESSION_CHARS`] characters,
//! [`MAX_DEPTH`] levels of parentheses and `NOT`/`-`, and [`MAX_TERMS`] words, phrases and field values. The
//! parser recurses only on nesting, so the depth limit is also the bound on its stack (and on the recursion
//! of everything that walks an [`Expr`]: the query builder, tantivy's scorers, `Drop`).

use std::fmt;

/// The longest expression accepted, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 65_536;
/// How deep parentheses, `NOT` and `-` may nest.
pub const MAX_DEPTH: usize = 64;
/// How many words, phrases and field values one expression may hold.
pub const MAX_TERMS: usize = 1_024;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Field {
        name: String,
        op: Op,
        values: Vec<String>,
    },
    /// `@name` alone: the item has a value for the field.
    Exists(String),
    /// Two words or phrases at most `distance` words apart, in either order.
    Near {
        left: String,
        right: String,
        distance: u32,
    },
    /// A free-text word or quoted phrase.
    Text(String),
    /// A bare word with `*` (any characters) or `?` (one character), when the options allow them.
    Wildcard(String),
}

/// The distance of a `NEAR` without `:N`.
pub const DEFAULT_NEAR_DISTANCE: u32 = 10;
/// The largest `NEAR:N`.
pub const MAX_NEAR_DISTANCE: u32 = 1_000;

/// What a parse allows beyond the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `*` in bare words is a wildcard (`wildcards`).
    pub wildcards: bool,
    /// `?` in bare words is a wildcard (`questionMark`).
    pub question_mark: bool,
    /// `and`, `or`, `not` and `near` are operators too (`lowercaseOperators`).
    pub lowercase_operators: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`: the whole value, ignoring case.
    Exact,
    /// `=`: the value's words (on text fields), else as `==`.
    Contains,
    NotEqual,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    /// `*=`: the whole value, with `*` and `?` wildcards, ignoring case.
    Wildcard,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Exact => "==",
            Op::Contains => "=",
            Op::NotEqual => "<>",
            Op::Greater => ">",
            Op::GreaterOrEqual => ">=",
            Op::Less => "<",
            Op::LessOrEqual => "<=",
            Op::Wildcard => "*=",
        })
    }
}

/// A syntax error and the character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not an expression (an unclosed quote, a stray parenthesis).
    Malformed,
    /// Over one of the limits (length, depth, terms).
    OverLimit,
    /// Coveo syntax that Intake does not implement.
    Unsupported,
}

impl SyntaxError {
    /// Whether reading the input as plain words instead would hide the problem from the user.
    pub fn is_final(&self) -> bool {
        self.kind != ErrorKind::Malformed
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset)
    }
}

/// Parses an expression with the default options; an empty or blank one is `None`.
pub fn parse(input: &str) -> Result<Option<Expr>, SyntaxError> {
    parse_with(input, Options::default())
}

/// Parses an expression; an empty or blank one is `None`.
pub fn parse_with(input: &str, options: Options) -> Result<Option<Expr>, SyntaxError> {
    let mut parser = Parser::new(input, options)?;
    parser.skip_space();
    if parser.at_end() {
        return Ok(None);
    }
    let expr = parser.or()?;
    parser.skip_space();
    if !parser.at_end() {
        return Err(parser.error(format!("unexpected '{}'", parser.chars[parser.pos])));
    }
    Ok(Some(expr))
}

/// The words of an expression taken as plain text (for `q` whose syntax does not parse): every
/// whitespace-separated run, within the same limits.
pub fn plain_words(input: &str) -> Result<Vec<String>, SyntaxError> {
    check_length(input)?;
    let mut words = Vec::new();
    let mut offset = 0;
    for word in input.split_whitespace() {
        offset += input[offset..].find(word).unwrap_or(0);
        if words.len() == MAX_TERMS {
            return Err(too_many_terms(input[..offset].chars().count()));
        }
        words.push(word.to_string());
        offset += word.len();
    }
    Ok(words)
}

fn check_length(input: &str) -> Result<(), SyntaxError> {
    // Counting characters is itself bounded by the body limit the input came through.
    let chars = input.chars().count();
    if chars > MAX_EXPRESSION_CHARS {
        return Err(SyntaxError {
            offset: MAX_EXPRESSION_CHARS,
            message: format!(
                "it is {chars} characters long, over the limit of {MAX_EXPRESSION_CHARS} characters per expression"
            ),
            kind: ErrorKind::OverLimit,
        });
    }
    Ok(())
}

/// One side of a `NEAR`: a word or phrase, found at the offset given.
fn near_word((offset, expr): &(usize, Expr)) -> Result<String, SyntaxError> {
    match expr {
        Expr::Text(text) => Ok(text.clone()),
        _ => Err(SyntaxError {
            offset: *offset,
            message: "NEAR joins two words or phrases; write words on both sides of it, or use AND".to_string(),
            kind: ErrorKind::Unsupported,
        }),
    }
}

fn too_many_terms(offset: usize) -> SyntaxError {
    SyntaxError {
        offset,
        message: format!(
            "it has more than {MAX_TERMS} terms (words, phrases and field values), the limit per expression; \
             narrow the query or split it"
        ),
        kind: ErrorKind::OverLimit,
    }
}

struct Parser {
    options: Options,
    chars: Vec<char>,
    pos: usize,
    /// Open parentheses and negations around the current position.
    depth: usize,
    /// Words, phrases and field values read so far.
    terms: usize,
}

impl Parser {
    fn new(input: &str, options: Options) -> Result<Parser, SyntaxError> {
        check_length(input)?;
        Ok(Parser { options, chars: input.chars().collect(), pos: 0, depth: 0, terms: 0 })
    }

    /// Parses `inner` one nesting level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested(&mut self, inner: impl FnOnce(&mut Parser) -> Result<Expr, SyntaxError>) -> Result<Expr, SyntaxError> {
        if self.depth == MAX_DEPTH {
            return Err(SyntaxError {
                offset: self.pos,
                message: format!(
                    "parentheses, NOT and '-' nest more than {MAX_DEPTH} levels deep, the limit; flatten the expression"
                ),
                kind: ErrorKind::OverLimit,
            });
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    /// Counts one more term, refusing to go past [`MAX_TERMS`].
    fn count_term(&mut self) -> Result<(), SyntaxError> {
        if self.terms == MAX_TERMS {
            return Err(too_many_terms(self.pos));
        }
        self.terms += 1;
        Ok(())
    }
    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.and()?];
        while self.keyword("OR") || self.comma() {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    /// A `,` between terms: Coveo's `(a, b)` is `a OR b`.
    fn comma(&mut self) -> bool {
        self.skip_space();
        if self.peek() == Some(',') {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.near()?];
        loop {
            self.skip_space();
            if self.at_end() || matches!(self.peek(), Some(')' | ',')) || self.peek_keyword("OR") {
                break;
            }
            self.keyword("AND");
            terms.push(self.near()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    /// `a NEAR:5 b NEAR c`: each word near the next one (`a` near `b`, and `b` near `c`).
    fn near(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = (self.skip_space_then_pos(), self.unary()?);
        let mut pairs = Vec::new();
        while let Some(distance) = self.near_keyword()? {
            let right = (self.skip_space_then_pos(), self.unary()?);
            pairs.push(Expr::Near { left: near_word(&left)?, right: near_word(&right)?, distance });
            left = right;
        }
        Ok(match pairs.len() {
            0 => left.1,
            1 => pairs.remove(0),
            _ => Expr::And(pairs),
        })
    }

    /// `NEAR`, `NEAR:N` or `near:N`: the distance, if one is here.
    fn near_keyword(&mut self) -> Result<Option<u32>, SyntaxError> {
        self.skip_space();
        let lower_with_colon = self.starts_with("near:");
        let upper = self.starts_with("NEAR") && (self.ends_keyword(4) || self.chars.get(self.pos + 4) == Some(&':'));
        let lower = self.options.lowercase_operators && self.peek_keyword_folded("near");
        if !(lower_with_colon || upper || lower) {
            return Ok(None);
        }
        self.pos += 4;
        if self.peek() != Some(':') {
            return Ok(Some(DEFAULT_NEAR_DISTANCE));
        }
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        match digits.parse::<u32>() {
            Ok(n) if (1..=MAX_NEAR_DISTANCE).contains(&n) => Ok(Some(n)),
            _ => Err(SyntaxError {
                offset: start,
                message: format!("NEAR: needs a distance in words from 1 to {MAX_NEAR_DISTANCE}, such as NEAR:5"),
                kind: ErrorKind::Malformed,
            }),
        }
    }

    fn skip_space_then_pos(&mut self) -> usize {
        self.skip_space();
        self.pos
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        self.skip_space();
        if self.keyword("NOT") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))));
        }
        self.refuse_unsupported()?;
        match self.peek() {
            None => Err(self.error("the expression ends where a term was expected".to_string())),
            Some('-') => {
                self.pos += 1;
                self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))))
            }
            Some('(') => {
                self.pos += 1;
                self.nested(|p| {
                    let inner = p.or()?;
                    p.skip_space();
                    p.expect(')')?;
                    Ok(inner)
                })
            }
            Some('@') => self.field(),
            Some(')') => Err(self.error("')' without a matching '('".to_string())),
            Some(_) => {
                if let Some(name_len) = self.simple_field_name() {
                    return self.simple_field(name_len);
                }
                let (word, quoted) = self.value()?;
                let wild = |c: char| (c == '*' && self.options.wildcards) || (c == '?' && self.options.question_mark);
                Ok(if !quoted && word.chars().any(wild) { Expr::Wildcard(word) } else { Expr::Text(word) })
            }
        }
    }

    /// Coveo syntax Intake does not implement, refused where it starts, with what to write instead.
    fn refuse_unsupported(&self) -> Result<(), SyntaxError> {
        let next = self.chars.get(self.pos + 1).copied();
        let advice = match (self.peek(), next) {
            (Some('+' | '#'), Some(c)) if !c.is_whitespace() => {
                "an exact term without stemming ('+word') is not supported: Intake matches a word's forms; write the \
                 word alone, or as a phrase in quotes"
            }
            (Some('$'), Some(c)) if c.is_alphabetic() => {
                "query extensions ('$name(...)') are not supported; write the expression they stand for"
            }
            (Some('['), Some('[')) => "nested queries ('[[@field] ...]') are not supported; write a field expression",
            _ => return Ok(()),
        };
        Err(SyntaxError { offset: self.pos, message: advice.to_string(), kind: ErrorKind::Unsupported })
    }

    fn field(&mut self) -> Result<Expr, SyntaxError> {
        self.pos += 1; // '@'
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("'@' must be followed by a field name".to_string()));
        }
        let name: String = self.chars[start..self.pos].iter().collect::<String>().to_lowercase();
        let after_name = self.pos;
        self.skip_space();
        for (text, what) in [("~=", "fuzzy"), ("%=", "phonetic"), ("/=", "regular expression")] {
            if self.starts_with(text) {
                return Err(SyntaxError {
                    offset: self.pos,
                    message: format!(
                        "the {what} operator {text} is not supported; use *= with wildcards (@{name}*=\"val*\"), \
                         == or ="
                    ),
                    kind: ErrorKind::Unsupported,
                });
            }
        }
        let Some(op) = self.op() else {
            self.pos = after_name;
            return Ok(Expr::Exists(name));
        };
        let values = self.field_values(&name)?;
        Ok(Expr::Field { name, op, values })
    }

    /// The values after a field's operator: one value, or a list in parentheses.
    fn field_values(&mut self, name: &str) -> Result<Vec<String>, SyntaxError> {
        self.skip_space();
        if self.peek() != Some('(') {
            return Ok(vec![self.value()?.0]);
        }
        self.pos += 1;
        let mut values = vec![self.value()?.0];
        loop {
            self.skip_space();
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    values.push(self.value()?.0);
                }
                Some(')') => {
                    self.pos += 1;
                    return Ok(values);
                }
                _ => return Err(self.error(format!("the value list of @{name} needs ',' or ')'"))),
            }
        }
    }

    /// Coveo's older form `name: value` (a field name without `@`, then `:`), read as `@name=value`; the length of
    /// the name when one starts here. `near:5` stays the operator, and `http://…` (a `:` then `//`) a word.
    fn simple_field_name(&self) -> Option<usize> {
        let name = self.chars[self.pos..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
        let first_is_letter = self.peek().is_some_and(|c| c.is_ascii_alphabetic());
        let colon = self.chars.get(self.pos + name) == Some(&':');
        let url =
            self.chars.get(self.pos + name + 1) == Some(&'/') && self.chars.get(self.pos + name + 2) == Some(&'/');
        let near = self.chars[self.pos..self.pos + name].iter().collect::<String>().eq_ignore_ascii_case("near");
        (first_is_letter && colon && !url && !near).then_some(name)
    }

    /// `name: value` or `name: (a, b)`, the name `name_len` characters long: as `@name=…`.
    fn simple_field(&mut self, name_len: usize) -> Result<Expr, SyntaxError> {
        let name = self.chars[self.pos..self.pos + name_len].iter().collect::<String>().to_lowercase();
        self.pos += name_len + 1; // the name and ':'
        let values = self.field_values(&name)?;
        Ok(Expr::Field { name, op: Op::Contains, values })
    }

    fn op(&mut self) -> Option<Op> {
        for (text, op) in [
            ("==", Op::Exact),
            ("<>", Op::NotEqual),
            ("!=", Op::NotEqual),
            ("*=", Op::Wildcard),
            (">=", Op::GreaterOrEqual),
            ("<=", Op::LessOrEqual),
            ("=", Op::Contains),
            (">", Op::Greater),
            ("<", Op::Less),
        ] {
            if self.starts_with(text) {
                self.pos += text.chars().count();
                return Some(op);
            }
        }
        None
    }

    /// A quoted string (with `\"` and `\\` escapes) or a bare run up to a space, `)` or `,`: one term, and whether
    /// it was quoted.
    fn value(&mut self) -> Result<(String, bool), SyntaxError> {
        self.skip_space();
        self.count_term()?;
        if self.peek() == Some('"') {
            let open = self.pos;
            self.pos += 1;
            let mut out = String::new();
            loop {
                match self.peek() {
                    None => {
                        return Err(SyntaxError {
                            offset: open,
                            message: "the quote opened here is never closed".to_string(),
                            kind: ErrorKind::Malformed,
                        });
                    }
                    Some('"') => {
                        self.pos += 1;
                        return Ok((out, true));
                    }
                    Some('\\') if matches!(self.chars.get(self.pos + 1), Some('"' | '\\')) => {
                        out.push(self.chars[self.pos + 1]);
                        self.pos += 2;
                    }
                    Some(c) => {
                        out.push(c);
                        self.pos += 1;
                    }
                }
            }
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace() && !matches!(c, ')' | ',' | '(')) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("a value was expected".to_string()));
        }
        Ok((self.chars[start..self.pos].iter().collect(), false))
    }

    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        if self.peek_keyword(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// `word` (an upper-case keyword) here, followed by a space or `(`; in lower case too with
    /// `lowercaseOperators`.
    fn peek_keyword(&self, word: &str) -> bool {
        let lower = self.options.lowercase_operators && self.peek_keyword_folded(&word.to_ascii_lowercase());
        lower || (self.starts_with(word) && self.ends_keyword(word.len()))
    }

    fn peek_keyword_folded(&self, lower: &str) -> bool {
        self.starts_with(lower) && self.ends_keyword(lower.len())
    }

    fn ends_keyword(&self, len: usize) -> bool {
        self.chars.get(self.pos + len).is_none_or(|c| c.is_whitespace() || *c == '(')
    }

    fn starts_with(&self, text: &str) -> bool {
        text.chars().enumerate().all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("'{c}' was expected")))
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, message: String) -> SyntaxError {
        SyntaxError { offset: self.pos, message, kind: ErrorKind::Malformed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, op: Op, values: &[&str]) -> Expr {
        Expr::Field { name: name.into(), op, values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn parses_field_expressions_with_and_or_not() {
        assert_eq!(
            parse(r#"@Category==news AND @title=="Hello \"big\" world""#).unwrap().unwrap(),
            Expr::And(vec![
                field("category", Op::Exact, &["news"]),
                field("title", Op::Exact, &["Hello \"big\" world"])
            ])
        );
        assert_eq!(
            parse("(@a==1 OR @b==2) NOT @c<>3 @date>=2024/01/02").unwrap().unwrap(),
            Expr::And(vec![
                Expr::Or(vec![field("a", Op::Exact, &["1"]), field("b", Op::Exact, &["2"])]),
                Expr::Not(Box::new(field("c", Op::NotEqual, &["3"]))),
                field("date", Op::GreaterOrEqual, &["2024/01/02"]),
            ])
        );
        assert_eq!(parse("@tags==(a, \"b c\")").unwrap().unwrap(), field("tags", Op::Exact, &["a", "b c"]));
        assert_eq!(parse("  ").unwrap(), None);
    }

    #[test]
    fn parses_presence_near_ranges_wildcards_and_comma_lists() {
        let text = |t: &str| Expr::Text(t.to_string());
        assert_eq!(
            parse("@author NOT @rank").unwrap().unwrap(),
            Expr::And(vec![Expr::Exists("author".into()), Expr::Not(Box::new(Expr::Exists("rank".into())))])
        );
        assert_eq!(parse("(@author)").unwrap().unwrap(), Expr::Exists("author".into()));
        let near = |l: &str, r: &str, distance| Expr::Near { left: l.into(), right: r.into(), distance };
        assert_eq!(parse("kernel NEAR:5 module").unwrap().unwrap(), near("kernel", "module", 5));
        assert_eq!(parse("kernel near:3 \"loadable module\"").unwrap().unwrap(), near("kernel", "loadable module", 3));
        assert_eq!(
            parse("a NEAR b NEAR:2 c x").unwrap().unwrap(),
            Expr::And(vec![Expr::And(vec![near("a", "b", DEFAULT_NEAR_DISTANCE), near("b", "c", 2)]), text("x")])
        );
        assert_eq!(parse("nearby near").unwrap().unwrap(), Expr::And(vec![text("nearby"), text("near")]));
        assert_eq!(parse("@size==10..20").unwrap().unwrap(), field("size", Op::Exact, &["10..20"]));
        assert_eq!(parse("@title*=\"ker*l?\"").unwrap().unwrap(), field("title", Op::Wildcard, &["ker*l?"]));
        assert_eq!(parse("(a, b)").unwrap().unwrap(), Expr::Or(vec![text("a"), text("b")]));
        assert_eq!(parse("comp*").unwrap().unwrap(), text("comp*"), "no wildcards unless asked");
        let wild = Options { wildcards: true, question_mark: true, ..Options::default() };
        assert_eq!(
            parse_with("comp* \"x*\" c?t", wild).unwrap().unwrap(),
            Expr::And(vec![Expr::Wildcard("comp*".into()), text("x*"), Expr::Wildcard("c?t".into())])
        );
        let lower = Options { lowercase_operators: true, ..Options::default() };
        assert_eq!(parse("a or b").unwrap().unwrap(), Expr::And(vec![text("a"), text("or"), text("b")]));
        assert_eq!(
            parse_with("a or not b", lower).unwrap().unwrap(),
            Expr::Or(vec![text("a"), Expr::Not(Box::new(text("b")))])
        );
    }

    #[test]
    fn reads_the_older_name_colon_form_as_contains() {
        let text = |t: &str| Expr::Text(t.to_string());
        assert_eq!(parse("title:kernel").unwrap().unwrap(), field("title", Op::Contains, &["kernel"]));
        assert_eq!(
            parse(r#"Author: "Grace Hopper" compiler"#).unwrap().unwrap(),
            Expr::And(vec![field("author", Op::Contains, &["Grace Hopper"]), text("compiler")])
        );
        assert_eq!(
            parse("NOT tags: (a, \"b c\") OR x").unwrap().unwrap(),
            Expr::Or(vec![Expr::Not(Box::new(field("tags", Op::Contains, &["a", "b c"]))), text("x")])
        );
        assert_eq!(
            parse("see https://kernel.org").unwrap().unwrap(),
            Expr::And(vec![text("see"), text("https://kernel.org")])
        );
        assert_eq!(
            parse("a near:3 b").unwrap().unwrap(),
            Expr::Near { left: "a".into(), right: "b".into(), distance: 3 }
        );
        assert_eq!(parse("10:30 :x").unwrap().unwrap(), Expr::And(vec![text("10:30"), text(":x")]));
        assert!(parse("title:").unwrap_err().message.contains("a value was expected"));
    }

    #[test]
    fn refuses_what_it_does_not_support_where_it_starts() {
        for (input, offset, words) in [
            ("linux +kernel", 6, "exact term"),
            ("a #b", 2, "exact term"),
            ("@title~=kernl", 6, "fuzzy operator ~="),
            ("@title %= x", 7, "phonetic"),
            ("@title/=\"k.*\"", 6, "regular expression"),
            ("x $qre(expression: a)", 2, "query extensions"),
            ("[[@parent] @a==1]", 0, "nested queries"),
            ("(a b) NEAR c", 0, "NEAR joins two words"),
        ] {
            let error = parse(input).unwrap_err();
            assert_eq!((error.kind, error.offset), (ErrorKind::Unsupported, offset), "{input}: {error}");
            assert!(error.message.contains(words), "{input}: {error}");
        }
        assert_eq!(
            parse("a + b").unwrap().unwrap(),
            Expr::And(vec![Expr::Text("a".into()), Expr::Text("+".into()), Expr::Text("b".into())])
        );
        let error = parse("a NEAR:0 b").unwrap_err();
        assert!(error.message.contains("from 1 to 1000") && error.offset == 7, "{error}");
    }

    #[test]
    fn reports_where_it_went_wrong() {
        assert_eq!(parse(r#"@title=="open"#).unwrap_err().offset, 8);
        assert!(parse("(@a==1").unwrap_err().message.contains("')' was expected"));
        assert!(parse("@a==1)").unwrap_err().message.contains("unexpected ')'"));
        assert!(parse("@==1").unwrap_err().message.contains("field name"));
    }

    #[test]
    fn nesting_is_bounded_by_the_depth_limit() {
        let at_limit = format!("{}@title==a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&at_limit).is_ok());
        for deep in [
            format!("{}@title==a{}", "(".repeat(3000), ")".repeat(3000)),
            "NOT ".repeat(10_000) + "a",
            "-".repeat(100_000) + "a",
            format!("{}a", "(".repeat(MAX_DEPTH + 1)),
            "- NOT ( ".repeat(30) + "a",
        ] {
            let error = parse(&deep).unwrap_err();
            assert_eq!(error.kind, ErrorKind::OverLimit, "{error}");
            let limit = if deep.len() > MAX_EXPRESSION_CHARS { "65536 characters" } else { "64 levels" };
            assert!(error.message.contains(limit), "{error}");
        }
    }

    #[test]
    fn terms_and_length_are_bounded() {
        assert!(parse(&"word ".repeat(MAX_TERMS)).is_ok());
        let error = parse(&"word ".repeat(MAX_TERMS + 1)).unwrap_err();
        assert!(error.kind == ErrorKind::OverLimit && error.message.contains("1024 terms"), "{error}");
        assert_eq!(error.offset, MAX_TERMS * 5);
        let list = format!("@uri==({})", vec!["x"; 100_000].join(","));
        assert!(parse(&list).unwrap_err().message.contains("over the limit of 65536 characters"));
        let list = format!("@uri==({})", vec!["x"; MAX_TERMS + 1].join(","));
        assert!(parse(&list).unwrap_err().message.contains("1024 terms"));
        assert_eq!(plain_words("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(plain_words(&"w ".repeat(MAX_TERMS + 1)).unwrap_err().kind, ErrorKind::OverLimit);
    }
}
