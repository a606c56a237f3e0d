//! A parser for the part of Coveo's query syntax that `q` and `aq` use in practice.
//!
//! ```text
//! expr      := and ("OR" and)*
//! and       := unary (["AND"] unary)*          juxtaposition means AND
//! unary     := ("NOT" | "-") unary | "(" expr ")" | field | word
//! field     := "@" name op values
//! op        := "==" | "=" | "<>" | "!=" | ">" | ">=" | "<" | "<="
//! values    := value | "(" value ("," value)* ")"
//! value     := '"' text '"' | bare-text
//! ```
//! Keywords are case-sensitive (`AND`, `OR`, `NOT`), as in Coveo.
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
    /// A free-text word or quoted phrase.
    Text(String),
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
        })
    }
}

/// A syntax error and the character offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
    /// The expression is over one of the limits (length, depth, terms), not merely malformed.
    pub over_limit: bool,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset)
    }
}

/// Parses an expression; an empty or blank one is `None`.
pub fn parse(input: &str) -> Result<Option<Expr>, SyntaxError> {
    let mut parser = Parser::new(input)?;
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
            over_limit: true,
        });
    }
    Ok(())
}

fn too_many_terms(offset: usize) -> SyntaxError {
    SyntaxError {
        offset,
        message: format!(
            "it has more than {MAX_TERMS} terms (words, phrases and field values), the limit per expression; \
             narrow the query or split it"
        ),
        over_limit: true,
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Open parentheses and negations around the current position.
    depth: usize,
    /// Words, phrases and field values read so far.
    terms: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Parser, SyntaxError> {
        check_length(input)?;
        Ok(Parser { chars: input.chars().collect(), pos: 0, depth: 0, terms: 0 })
    }

    /// Parses `inner` one nesting level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested(&mut self, inner: impl FnOnce(&mut Parser) -> Result<Expr, SyntaxError>) -> Result<Expr, SyntaxError> {
        if self.depth == MAX_DEPTH {
            return Err(SyntaxError {
                offset: self.pos,
                message: format!(
                    "parentheses, NOT and '-' nest more than {MAX_DEPTH} levels deep, the limit; flatten the expression"
                ),
                over_limit: true,
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
        while self.keyword("OR") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut terms = vec![self.unary()?];
        loop {
            self.skip_space();
            if self.at_end() || self.peek() == Some(')') || self.peek_keyword("OR") {
                break;
            }
            self.keyword("AND");
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        self.skip_space();
        if self.keyword("NOT") {
            return self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))));
        }
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
            Some(_) => Ok(Expr::Text(self.value()?)),
        }
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
        self.skip_space();
        let op =
            self.op().ok_or_else(|| self.error(format!("@{name} needs an operator: ==, =, <>, >, >=, < or <=")))?;
        self.skip_space();
        let values = if self.peek() == Some('(') {
            self.pos += 1;
            let mut values = vec![self.value()?];
            loop {
                self.skip_space();
                match self.peek() {
                    Some(',') => {
                        self.pos += 1;
                        values.push(self.value()?);
                    }
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => {
                        return Err(self.error(format!("the value list of @{name} needs ',' or ')'")));
                    }
                }
            }
            values
        } else {
            vec![self.value()?]
        };
        Ok(Expr::Field { name, op, values })
    }

    fn op(&mut self) -> Option<Op> {
        for (text, op) in [
            ("==", Op::Exact),
            ("<>", Op::NotEqual),
            ("!=", Op::NotEqual),
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

    /// A quoted string (with `\"` and `\\` escapes) or a bare run up to a space, `)` or `,`: one term.
    fn value(&mut self) -> Result<String, SyntaxError> {
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
                            over_limit: false,
                        });
                    }
                    Some('"') => {
                        self.pos += 1;
                        return Ok(out);
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
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != ')' && c != ',' && c != '(') {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("a value was expected".to_string()));
        }
        Ok(self.chars[start..self.pos].iter().collect())
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

    fn peek_keyword(&self, word: &str) -> bool {
        self.starts_with(word) && self.chars.get(self.pos + word.len()).is_none_or(|c| c.is_whitespace() || *c == '(')
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
        SyntaxError { offset: self.pos, message, over_limit: false }
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
    fn reports_where_it_went_wrong() {
        assert_eq!(parse(r#"@title=="open"#).unwrap_err().offset, 8);
        assert!(parse("@title").unwrap_err().message.contains("needs an operator"));
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
            assert!(error.over_limit, "{error}");
            let limit = if deep.len() > MAX_EXPRESSION_CHARS { "65536 characters" } else { "64 levels" };
            assert!(error.message.contains(limit), "{error}");
        }
    }

    #[test]
    fn terms_and_length_are_bounded() {
        assert!(parse(&"word ".repeat(MAX_TERMS)).is_ok());
        let error = parse(&"word ".repeat(MAX_TERMS + 1)).unwrap_err();
        assert!(error.over_limit && error.message.contains("1024 terms"), "{error}");
        assert_eq!(error.offset, MAX_TERMS * 5);
        let list = format!("@uri==({})", vec!["x"; 100_000].join(","));
        assert!(parse(&list).unwrap_err().message.contains("over the limit of 65536 characters"));
        let list = format!("@uri==({})", vec!["x"; MAX_TERMS + 1].join(","));
        assert!(parse(&list).unwrap_err().message.contains("1024 terms"));
        assert_eq!(plain_words("a  b\tc").unwrap(), ["a", "b", "c"]);
        assert!(plain_words(&"w ".repeat(MAX_TERMS + 1)).unwrap_err().over_limit);
    }
}
