//! Otklik's search text analysis: the only place where language is processed.
//!
//! The full-text index lives inside the primary database (SQLite FTS5, PostgreSQL
//! `tsvector('simple')` with GIN). So that both backends index and query exactly the same
//! tokens — and therefore give the same results — all language work happens once, here, in
//! Rust: word splitting, lower-casing, `ё`→`е`, Snowball stemming by script (Russian for
//! Cyrillic words, English for Latin ones), and exact tokens for numbers, e-mail addresses and
//! phone numbers. The database only ever sees plain lower-case tokens of `[a-z0-9а-я]`
//! separated by single spaces, which any FTS tokenizer keeps whole.
//!
//! - [`index_terms`] turns a text (a message, a subject, a customer's name) into the string to
//!   store in the index column.
//! - [`parse_query`] turns what a user typed into a [`SearchQuery`], refusing abuse with a
//!   [`QueryError`]; [`SearchQuery::to_fts5`] and [`SearchQuery::to_tsquery`] render it for each
//!   backend, and [`SearchQuery::matches`] is the reference semantics both must agree with.
//! - [`snippet`] cuts a short excerpt around the first match, with the matched words marked.
//!
//! How words are split and normalised is described in [`normalize`]; how addresses and phone
//! numbers are found, in [`exact`].
//!
//! This crate is pure computation: no I/O, no async, no database or HTTP crate, and no
//! dependency on any other Otklik crate, so the stores, the app and tools can all share it.

pub mod exact;
pub mod normalize;
mod query;
mod snippet;

pub use exact::{email_token, phone_token};
pub use normalize::{MAX_TOKEN_CHARS, MIN_DIGIT_RUN, is_token};
pub use query::{
    Clause, MAX_CLAUSES, MAX_PREFIX_TOKENS, MAX_QUERY_CHARS, MIN_PREFIX_CHARS, QueryError,
    SUBJECT_WEIGHT, Scorer, SearchQuery, parse_query, rank_order,
};
pub use snippet::{Snippet, snippet};

use exact::{Mode, exact_spans};
use normalize::{Analyzer, words};

/// Tokens for the index: every word normalised and stemmed, plus exact tokens, separated by
/// single spaces.
///
/// Each token matches `[a-z0-9а-я]+` (after `ё`→`е`), so any FTS tokenizer keeps it whole. Words
/// keep their order and repetitions (ranking counts them); runs of three or more digits inside a
/// word are added after that word (`№448812` and `ORD448812` both yield `448812`); e-mail
/// addresses and phone numbers add their hashed exact tokens ([`email_token`], [`phone_token`])
/// at the end. Stop words are kept. An empty or token-less text gives an empty string.
pub fn index_terms(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut analyzer = Analyzer::new();
    for range in words(text) {
        let Some(word) = analyzer.analyse(&text[range]) else {
            continue;
        };
        push(&mut out, &word.token);
        for run in word.digit_runs() {
            push(&mut out, run);
        }
    }
    if text.contains(['@', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        for span in exact_spans(text, Mode::Index) {
            push(&mut out, &span.token);
        }
    }
    out
}

fn push(out: &mut String, token: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
}
