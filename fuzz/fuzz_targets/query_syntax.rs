//! The expression parser: any text parses or fails with a position, and stays within the limits, with every
//! option on and off.
#![no_main]

use intake_index::syntax::{self, Expr, MAX_DEPTH, MAX_TERMS};
use libfuzzer_sys::fuzz_target;

/// (depth, terms) of an expression.
fn measure(expr: &Expr) -> (usize, usize) {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            items.iter().map(measure).fold((0, 0), |(depth, terms), (d, t)| (depth.max(d), terms + t))
        }
        Expr::Not(inner) => {
            let (depth, terms) = measure(inner);
            (depth + 1, terms)
        }
        Expr::Field { values, .. } => (0, values.len()),
        Expr::Text(_) | Expr::Wildcard(_) => (0, 1),
        Expr::Near { .. } => (0, 2),
        Expr::Exists(_) => (0, 0),
    }
}

fuzz_target!(|text: &str| {
    let all = syntax::Options { wildcards: true, question_mark: true, lowercase_operators: true };
    for options in [syntax::Options::default(), all] {
        if let Ok(Some(expr)) = syntax::parse_with(text, options) {
            let (depth, terms) = measure(&expr);
            assert!(depth <= MAX_DEPTH, "depth {depth}");
            // A NEAR chain counts its middle words twice.
            assert!(terms <= 2 * MAX_TERMS, "{terms} terms");
        }
    }
    let _ = syntax::plain_words(text);
});
