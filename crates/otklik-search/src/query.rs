//! Parsing what a user typed into the search box, and rendering it for each backend.

use std::fmt::Write as _;

use crate::exact::{Mode, exact_spans};
use crate::normalize::{Analyzer, is_token, is_token_char, words};

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;

/// The most clauses (distinct words, numbers, addresses and phones) a query may have.
pub const MAX_CLAUSES: usize = 16;

/// The shortest last word that is matched as a prefix, in characters of its stem. A one-letter
/// word at the end is matched whole: a prefix of one letter would match most of the index.
pub const MIN_PREFIX_CHARS: usize = 2;

/// The most index tokens one prefix stands for once a store has looked it up in its vocabulary
/// ([`SearchQuery::expand_prefixes`]): the shortest ones, then in code-point order. Bounds the
/// cost of a short prefix (`за`, `10`) whatever the size of the index; the long tail of rare
/// longer words a two-letter prefix would also match is left out.
pub const MAX_PREFIX_TOKENS: usize = 128;

/// A parsed user query: every clause must match (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The clauses, in the order typed, without duplicates; never empty when built by
    /// [`parse_query`].
    pub clauses: Vec<Clause>,
}

/// One condition of a [`SearchQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Clause {
    /// A word: its stem; `prefix` when it is the last word and the query did not end in a space
    /// (search-as-you-type), then the stem is a prefix.
    Term {
        /// The stem (or the number, or the word as is when it is not stemmed).
        token: String,
        /// Match index tokens that start with `token`, not only `token` itself.
        prefix: bool,
    },
    /// An exact token (ticket/order number digits, hashed e-mail or phone) that must match whole.
    Exact {
        /// The token.
        token: String,
    },
    /// A prefix [`Clause::Term`] after a store looked it up in its vocabulary: the index tokens
    /// it stands for (at most [`MAX_PREFIX_TOKENS`], sorted, each starting with `prefix`). A
    /// store matches any of them exactly, which costs what a few single words cost instead of
    /// reading every posting of every word the prefix starts. Empty: nothing matches.
    Expanded {
        /// The prefix typed.
        prefix: String,
        /// The index tokens it stands for, in code-point order.
        tokens: Vec<String>,
    },
}

impl Clause {
    /// The clause's token.
    pub fn token(&self) -> &str {
        match self {
            Clause::Term { token, .. } | Clause::Exact { token } => token,
            Clause::Expanded { prefix, .. } => prefix,
        }
    }

    /// Whether the clause matches index tokens that merely start with its token.
    pub fn is_prefix(&self) -> bool {
        matches!(self, Clause::Term { prefix: true, .. })
    }

    /// Whether one index token satisfies this clause.
    pub fn matches_token(&self, index_token: &str) -> bool {
        match self {
            Clause::Term {
                token,
                prefix: true,
            } => index_token.starts_with(token.as_str()),
            Clause::Term { token, .. } | Clause::Exact { token } => index_token == token,
            Clause::Expanded { prefix, tokens } => {
                index_token.starts_with(prefix.as_str())
                    && tokens
                        .binary_search_by(|token| token.as_str().cmp(index_token))
                        .is_ok()
            }
        }
    }
}

/// Why a query was refused; the messages are meant for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing to search for: the query is empty or only punctuation.
    #[error("Type a word, a number, an e-mail address or a phone number to search for.")]
    Empty,
    /// The query has more characters than allowed.
    #[error("The search query is too long: use at most {max_chars} characters.")]
    TooLong {
        /// The most characters allowed.
        max_chars: usize,
    },
    /// The query has more distinct words than allowed.
    #[error("The search query has too many words: use at most {max}.")]
    TooManyTerms {
        /// The most clauses allowed.
        max: usize,
    },
}

/// Parses what a user typed.
///
/// Words are normalised and stemmed exactly as [`crate::index_terms`] does; e-mail addresses
/// and phone numbers (in any usual format) become [`Clause::Exact`] with their hashed tokens;
/// `#1042` and `№448812` are the numbers `1042` and `448812`. The last word becomes a prefix
/// when nothing — not even a space or punctuation — follows it and its token has at least
/// [`MIN_PREFIX_CHARS`] characters (so `4488` finds `448812`). Repeated clauses are kept once.
/// Operators and quotes have no meaning: they are separators like any punctuation.
///
/// # Errors
///
/// [`QueryError::TooLong`] above [`MAX_QUERY_CHARS`] characters,
/// [`QueryError::TooManyTerms`] above [`MAX_CLAUSES`] distinct clauses, [`QueryError::Empty`] when
/// nothing searchable is left.
pub fn parse_query(raw: &str) -> Result<SearchQuery, QueryError> {
    if raw.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(QueryError::TooLong {
            max_chars: MAX_QUERY_CHARS,
        });
    }
    let mut analyzer = Analyzer::new();
    let mut clauses = Vec::new();
    let mut last_word_at_end = false;
    let mut terms = |clauses: &mut Vec<Clause>, from: usize, to: usize, last: &mut bool| {
        for range in words(&raw[from..to]) {
            if let Some(word) = analyzer.analyse(&raw[from + range.start..from + range.end]) {
                clauses.push(Clause::Term {
                    token: word.token.into_owned(),
                    prefix: false,
                });
                *last = from + range.end == raw.len();
            }
        }
    };
    let mut pos = 0;
    for span in exact_spans(raw, Mode::Query) {
        terms(&mut clauses, pos, span.range.start, &mut last_word_at_end);
        clauses.push(Clause::Exact { token: span.token });
        last_word_at_end = false;
        pos = span.range.end;
    }
    terms(&mut clauses, pos, raw.len(), &mut last_word_at_end);

    if let Some(Clause::Term { token, prefix }) = clauses.last_mut() {
        *prefix = last_word_at_end && token.chars().count() >= MIN_PREFIX_CHARS;
    }
    let mut unique: Vec<Clause> = Vec::with_capacity(clauses.len().min(MAX_CLAUSES + 1));
    for clause in clauses {
        if !unique.contains(&clause) {
            if unique.len() == MAX_CLAUSES {
                return Err(QueryError::TooManyTerms { max: MAX_CLAUSES });
            }
            unique.push(clause);
        }
    }
    if unique.is_empty() {
        return Err(QueryError::Empty);
    }
    Ok(SearchQuery { clauses: unique })
}

/// Appends a token, keeping only token characters: tokens are alphanumeric by construction,
/// and this makes sure that nothing else reaches a query language even if a caller built a
/// [`SearchQuery`] by hand.
/// Appends `tokens` joined with ` | `, each written by `push`.
fn push_any(out: &mut String, tokens: &[String], mut push: impl FnMut(&mut String, &str)) {
    for (j, token) in tokens.iter().enumerate() {
        if j > 0 {
            out.push_str(" | ");
        }
        push(out, token);
    }
}

fn push_token(out: &mut String, token: &str) {
    debug_assert!(is_token(token), "not a search token: {token:?}");
    out.extend(token.chars().filter(|&c| is_token_char(c)));
}

impl SearchQuery {
    /// The prefixes a store should look up in its vocabulary before running the query.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.clauses
            .iter()
            .filter(|clause| clause.is_prefix())
            .map(Clause::token)
    }

    /// This query with every prefix clause replaced by the index tokens `lookup` finds for it
    /// (see [`Clause::Expanded`]); `lookup` answers at most [`MAX_PREFIX_TOKENS`] tokens, each
    /// starting with the prefix.
    ///
    /// # Errors
    ///
    /// Whatever `lookup` fails with.
    pub fn expand_prefixes<E>(
        &self,
        mut lookup: impl FnMut(&str) -> Result<Vec<String>, E>,
    ) -> Result<SearchQuery, E> {
        let mut clauses = Vec::with_capacity(self.clauses.len());
        for clause in &self.clauses {
            clauses.push(match clause {
                Clause::Term {
                    token,
                    prefix: true,
                } => {
                    let mut tokens = lookup(token)?;
                    tokens.retain(|found| found.starts_with(token.as_str()) && is_token(found));
                    tokens.sort_unstable();
                    tokens.dedup();
                    tokens.truncate(MAX_PREFIX_TOKENS);
                    Clause::Expanded {
                        prefix: token.clone(),
                        tokens,
                    }
                }
                other => other.clone(),
            });
        }
        Ok(SearchQuery { clauses })
    }

    /// Whether no document can match: a prefix that stands for no index token.
    pub fn matches_nothing(&self) -> bool {
        self.clauses
            .iter()
            .any(|clause| matches!(clause, Clause::Expanded { tokens, .. } if tokens.is_empty()))
    }

    /// The SQLite FTS5 `MATCH` expression: each token double-quoted, a prefix as `"tok"*`, an
    /// expanded prefix as `("a" OR "b")`, joined with `AND` (e.g. `"доставк" AND "448812"*`).
    /// Empty for a query without clauses, which [`parse_query`] never returns.
    pub fn to_fts5(&self) -> String {
        let mut out = String::with_capacity(self.clauses.len() * 16);
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                out.push_str(" AND ");
            }
            if let Clause::Expanded { tokens, .. } = clause {
                out.push('(');
                for (j, token) in tokens.iter().enumerate() {
                    if j > 0 {
                        out.push_str(" OR ");
                    }
                    out.push('"');
                    push_token(&mut out, token);
                    out.push('"');
                }
                out.push(')');
                continue;
            }
            out.push('"');
            push_token(&mut out, clause.token());
            out.push('"');
            if clause.is_prefix() {
                out.push('*');
            }
        }
        out
    }

    /// The PostgreSQL `tsquery` input (read with `::tsquery`, which keeps each token whole):
    /// `tok`, for a prefix `tok:*`, joined with ` & ` (e.g. `доставк & 448812:*`). Empty for a
    /// query without clauses.
    ///
    /// An expanded prefix that found fewer tokens than [`MAX_PREFIX_TOKENS`] stands for every
    /// token with that prefix, so it is `tok:*` again: the same matches, and PostgreSQL estimates
    /// a prefix from its statistics, whereas it adds up a guess for each rare word of an `OR`
    /// and may then walk every ticket for a handful of matches. A capped one is
    /// `(tok:* & (a | b …))`: the same matches as the list, estimated as a prefix.
    pub fn to_tsquery(&self) -> String {
        self.tsquery(false)
    }

    /// [`SearchQuery::to_tsquery`] with each expanded prefix as the `OR` of its tokens
    /// (`(a | b …)`), never `tok:*`: the same matches, for a GIN index scan that intersects the
    /// query with other terms whatever the planner estimates. For a prefix, GIN first gathers
    /// every posting of every token it starts into a bitmap, and only then skips through the
    /// other terms' postings: an agent's «refund:*» with their terms of who may see a ticket
    /// took 43 ms of index scan, «refund» 12.
    pub fn to_tsquery_of_tokens(&self) -> String {
        self.tsquery(true)
    }

    /// The query as PostgreSQL `tsquery` input, with each token written by `spell` (given the
    /// output and a token, which holds only token characters and needs no escaping inside
    /// quotes), for a store that keeps a token under other spellings: `'refund~60'` for the
    /// token «refund» of a document of era 60. Clauses are joined with ` & ` and an expanded
    /// prefix is the `OR` of its tokens' spellings.
    ///
    /// `None` when a prefix stands for more than its tokens: one that was not looked up, or
    /// whose tokens were capped at [`MAX_PREFIX_TOKENS`]. Only a prefix match finds all it
    /// matches, and a prefix match would not know the spelling.
    pub fn to_tsquery_spelled(&self, mut spell: impl FnMut(&mut String, &str)) -> Option<String> {
        let mut out = String::with_capacity(self.clauses.len() * 32);
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                out.push_str(" & ");
            }
            match clause {
                Clause::Expanded { tokens, .. } => {
                    if tokens.is_empty() || tokens.len() >= MAX_PREFIX_TOKENS {
                        return None;
                    }
                    out.push('(');
                    push_any(&mut out, tokens, &mut spell);
                    out.push(')');
                }
                Clause::Term { prefix: true, .. } => return None,
                Clause::Term { token, .. } | Clause::Exact { token } => spell(&mut out, token),
            }
        }
        Some(out)
    }

    fn tsquery(&self, expansions_as_tokens: bool) -> String {
        let mut out = String::with_capacity(self.clauses.len() * 16);
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                out.push_str(" & ");
            }
            if let Clause::Expanded { tokens, .. } = clause
                && expansions_as_tokens
                && !tokens.is_empty()
            {
                out.push('(');
                push_any(&mut out, tokens, push_token);
                out.push(')');
                continue;
            }
            if let Clause::Expanded { prefix, tokens } = clause {
                let capped = tokens.len() >= MAX_PREFIX_TOKENS;
                if capped {
                    out.push('(');
                }
                push_token(&mut out, prefix);
                out.push_str(":*");
                if !capped {
                    continue;
                }
                out.push_str(" & (");
                push_any(&mut out, tokens, push_token);
                out.push_str("))");
                continue;
            }
            push_token(&mut out, clause.token());
            if clause.is_prefix() {
                out.push_str(":*");
            }
        }
        out
    }

    /// Whether a text whose [`crate::index_terms`] are `index_terms` matches: every clause is
    /// satisfied by at least one token. This is the meaning both backends implement; tests use it
    /// as the reference.
    pub fn matches(&self, index_terms: &str) -> bool {
        self.clauses
            .iter()
            .all(|clause| index_terms.split(' ').any(|t| clause.matches_token(t)))
    }
}

/// How much a subject match weighs against a message match in [`SearchQuery::score`].
pub const SUBJECT_WEIGHT: f64 = 4.0;

/// BM25's term-frequency saturation and length normalisation.
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Typical document lengths, in tokens, that normalisation compares against (fixed, so a
/// document's score depends on itself and the query only).
const TYPICAL_SUBJECT_TOKENS: f64 = 8.0;
const TYPICAL_BODY_TOKENS: f64 = 300.0;
/// A customer's name and identities.
const TYPICAL_RECORD_TOKENS: f64 = 8.0;

/// BM25's weight of a clause found `weight` times (already length-normalised).
fn saturated(weight: f64) -> f64 {
    weight * (K1 + 1.0) / (weight + K1)
}

impl SearchQuery {
    /// How well a matching document answers the query; see [`Scorer::score`]. A caller scoring
    /// many documents makes one [`Self::scorer`] instead.
    pub fn score(&self, subject_terms: &str, body_terms: &str) -> f64 {
        self.scorer().score(subject_terms, body_terms)
    }

    /// How well a short record answers the query; see [`Scorer::score_record`].
    pub fn score_record(&self, terms: &str) -> f64 {
        self.scorer().score_record(terms)
    }

    /// Scores documents against this query, with each clause's substring searcher built once: a
    /// search scores hundreds of documents, and building the searchers for each one cost about
    /// as much as the searching.
    pub fn scorer(&self) -> Scorer<'_> {
        Scorer {
            clauses: self
                .clauses
                .iter()
                .map(|clause| {
                    let needle = clause.token().as_bytes();
                    (
                        clause,
                        (!needle.is_empty()).then(|| memchr::memmem::Finder::new(needle)),
                    )
                })
                .collect(),
            double_space: memchr::memmem::Finder::new(b"  "),
        }
    }
}

/// A [`SearchQuery`] ready to score many documents (see [`SearchQuery::scorer`]).
#[derive(Debug)]
pub struct Scorer<'q> {
    /// Each clause with the searcher for its token (none for an empty token).
    clauses: Vec<(&'q Clause, Option<memchr::memmem::Finder<'q>>)>,
    double_space: memchr::memmem::Finder<'static>,
}

impl Scorer<'_> {
    /// How well a matching document answers the query; higher is better. BM25F over the subject
    /// (weighing [`SUBJECT_WEIGHT`] times a message) and the messages, without the inverse
    /// document frequency: every candidate contains every clause, and counting the documents
    /// that contain a common word means reading all of them, which is what made ranking cost
    /// grow with the number of matches. Computed here, once, so both backends rank alike.
    pub fn score(&self, subject_terms: &str, body_terms: &str) -> f64 {
        let clauses = self.clauses.len();
        let mut subject = vec![0_u32; clauses];
        let mut body = vec![0_u32; clauses];
        let subject_len = self.count_matches(subject_terms, &mut subject);
        let body_len = self.count_matches(body_terms, &mut body);
        let subject_norm = 1.0 - B + B * f64::from(subject_len) / TYPICAL_SUBJECT_TOKENS;
        let body_norm = 1.0 - B + B * f64::from(body_len) / TYPICAL_BODY_TOKENS;
        subject
            .iter()
            .zip(&body)
            .map(|(&in_subject, &in_body)| {
                saturated(
                    SUBJECT_WEIGHT * f64::from(in_subject) / subject_norm
                        + f64::from(in_body) / body_norm,
                )
            })
            .sum()
    }

    /// How well a short record — a customer's name and identities — answers the query; higher
    /// is better. BM25 over its one field, without inverse document frequencies, as
    /// [`Self::score`]: computed here so both backends rank customers alike (bm25() and
    /// ts_rank weigh a record's length differently).
    pub fn score_record(&self, terms: &str) -> f64 {
        let mut counts = vec![0_u32; self.clauses.len()];
        let tokens = self.count_matches(terms, &mut counts);
        let norm = 1.0 - B + B * f64::from(tokens) / TYPICAL_RECORD_TOKENS;
        counts
            .iter()
            .map(|&found| saturated(f64::from(found) / norm))
            .sum()
    }

    /// Counts, per clause, the tokens of `terms` it matches; returns the number of tokens.
    ///
    /// Index terms are single-space separated ([`crate::index_terms`]), so each clause's
    /// occurrences are found with a vectorised substring search and the tokens counted by their
    /// spaces, instead of splitting every token out and comparing it with every clause: a search
    /// ranks the terms of hundreds of documents, and splitting them was the biggest part of the
    /// server's work for a common word. Terms in any other shape take the plain path.
    fn count_matches(&self, terms: &str, counts: &mut [u32]) -> u32 {
        if !self.is_single_spaced(terms) {
            return self.count_matches_token_by_token(terms, counts);
        }
        for ((clause, finder), count) in self.clauses.iter().zip(counts.iter_mut()) {
            *count = count_clause(clause, finder.as_ref(), terms);
        }
        let spaces = memchr::memchr_iter(b' ', terms.as_bytes()).count();
        u32::try_from(spaces + 1).unwrap_or(u32::MAX)
    }

    /// [`Self::count_matches`] for terms of any shape, a token at a time.
    fn count_matches_token_by_token(&self, terms: &str, counts: &mut [u32]) -> u32 {
        let mut tokens = 0_u32;
        for token in terms.split(' ').filter(|token| !token.is_empty()) {
            tokens = tokens.saturating_add(1);
            for ((clause, _), count) in self.clauses.iter().zip(counts.iter_mut()) {
                if clause.matches_token(token) {
                    *count += 1;
                }
            }
        }
        tokens
    }

    /// Whether `terms` is non-empty tokens separated by single spaces.
    fn is_single_spaced(&self, terms: &str) -> bool {
        !terms.is_empty()
            && !terms.starts_with(' ')
            && !terms.ends_with(' ')
            && self.double_space.find(terms.as_bytes()).is_none()
    }
}

/// How many tokens of single-spaced `terms` satisfy `clause`. An occurrence of the clause's
/// token counts only where a token starts (and, unless it is a prefix, where one ends). Skipping
/// past an occurrence that does not start a token never hides one that does: an occurrence
/// overlapping it would start inside a token.
fn count_clause(clause: &Clause, finder: Option<&memchr::memmem::Finder<'_>>, terms: &str) -> u32 {
    let bytes = terms.as_bytes();
    let starts_token = |at: usize| at == 0 || bytes[at - 1] == b' ';
    let token_end =
        |from: usize| memchr::memchr(b' ', &bytes[from..]).map_or(bytes.len(), |n| from + n);
    let Some(finder) = finder else {
        // An empty token: parsed queries never have one (see MIN_PREFIX_CHARS); counted plainly
        // all the same.
        let matching = terms.split(' ').filter(|token| clause.matches_token(token));
        return u32::try_from(matching.count()).unwrap_or(u32::MAX);
    };
    let needle = finder.needle();
    let mut count = 0_u32;
    for at in finder.find_iter(bytes).filter(|&at| starts_token(at)) {
        let matched = match clause {
            Clause::Term { prefix: true, .. } => true,
            Clause::Term { .. } | Clause::Exact { .. } => token_end(at) == at + needle.len(),
            Clause::Expanded { .. } => clause.matches_token(&terms[at..token_end(at)]),
        };
        if matched {
            count = count.saturating_add(1);
        }
    }
    count
}

/// Orders scored candidates best first: by score, then the greatest key (both backends use the
/// ticket or customer id, UUIDv7, so the newest first), the order both backends return search
/// results in. The key is the id alone, not the time of the last update: the candidates are then
/// ranked from the search index alone, without reading each candidate's ticket.
pub fn rank_order<K: Ord>(a: &(f64, K), b: &(f64, K)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1))
}

impl std::fmt::Display for SearchQuery {
    /// A readable form for logs: `доставк 448812*`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            if let Clause::Exact { .. } = clause {
                f.write_char('=')?;
            }
            f.write_str(clause.token())?;
            if let Clause::Expanded { tokens, .. } = clause {
                write!(f, "*[{}]", tokens.len())?;
            }
            if clause.is_prefix() {
                f.write_char('*')?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod score_tests {
    use super::*;
    use proptest::prelude::*;

    fn query(text: &str) -> SearchQuery {
        parse_query(text).unwrap()
    }

    #[test]
    fn a_subject_match_outranks_a_message_match_and_more_mentions_rank_higher() {
        let q = query("заказ ");
        let in_subject = q.score("1 где мо заказ", "здравств");
        let in_body = q.score("1 вопрос", "здравств мо заказ не пришел");
        let twice = q.score("1 вопрос", "заказ заказ не пришел");
        assert!(in_subject > in_body, "{in_subject} vs {in_body}");
        assert!(twice > in_body, "{twice} vs {in_body}");
    }

    #[test]
    fn prefixes_count_every_token_they_start_and_shorter_documents_rank_higher() {
        let q = query("дост");
        assert!(q.score("1 x", "доставк достаточн") > q.score("1 x", "доставк"));
        let short = q.score("1 x", "доставк");
        let long = q.score("1 x", &format!("доставк {}", "слово ".repeat(400)));
        assert!(short > long);
    }

    #[test]
    fn an_expanded_prefix_matches_and_scores_only_the_tokens_it_stands_for() {
        let typed = query("ксилофон дост");
        let expanded = typed
            .expand_prefixes(|prefix| {
                assert_eq!(prefix, "дост");
                Ok::<_, ()>(vec!["доставк".into(), "достав".into(), "заказ".into()])
            })
            .unwrap();
        assert_eq!(
            expanded.clauses[1],
            Clause::Expanded {
                prefix: "дост".into(),
                tokens: vec!["достав".into(), "доставк".into()],
            },
            "sorted, and a token that does not start with the prefix is dropped"
        );
        assert_eq!(
            expanded.to_fts5(),
            r#""ксилофон" AND ("достав" OR "доставк")"#
        );
        assert_eq!(
            expanded.to_tsquery(),
            "ксилофон & дост:*",
            "a complete expansion is the prefix again"
        );
        assert_eq!(
            expanded.to_tsquery_of_tokens(),
            "ксилофон & (достав | доставк)",
            "for an index scan, the tokens it stands for"
        );
        assert_eq!(typed.to_tsquery_of_tokens(), "ксилофон & дост:*");
        assert!(expanded.matches("ксилофон доставк"));
        assert!(!expanded.matches("ксилофон достаточн"));
        assert!(typed.matches("ксилофон достаточн"));
        assert_eq!(
            expanded.score("1", "ксилофон доставк достаточн"),
            typed.score("1", "ксилофон доставк друг"),
            "the same length, one prefix match"
        );
        assert!(!expanded.matches_nothing());
        let nothing = typed.expand_prefixes(|_| Ok::<_, ()>(vec![])).unwrap();
        assert!(nothing.matches_nothing());
        assert_eq!(typed.expand_prefixes(|_| Err("down")).unwrap_err(), "down");
    }

    #[test]
    fn a_spelled_query_spells_every_token_and_refuses_a_prefix_it_cannot_list() {
        let typed = query("ксилофон №418147 дост");
        let expanded = typed
            .expand_prefixes(|_| Ok::<_, ()>(vec!["доставк".into(), "достав".into()]))
            .unwrap();
        let era = |out: &mut String, token: &str| {
            out.push_str(&format!("('{token}~6' | '{token}~5')"));
        };
        assert_eq!(
            expanded.to_tsquery_spelled(era).as_deref(),
            Some(
                "('ксилофон~6' | 'ксилофон~5') & ('418147~6' | '418147~5') \
                 & (('достав~6' | 'достав~5') | ('доставк~6' | 'доставк~5'))"
            )
        );
        assert_eq!(
            typed.to_tsquery_spelled(era),
            None,
            "a prefix not looked up"
        );
        let many: Vec<String> = (0..MAX_PREFIX_TOKENS)
            .map(|n| format!("дост{n:03}"))
            .collect();
        let capped = query("дост")
            .expand_prefixes(|_| Ok::<_, ()>(many.clone()))
            .unwrap();
        assert_eq!(capped.to_tsquery_spelled(era), None, "a capped prefix");
    }

    #[test]
    fn an_expansion_keeps_at_most_the_bound_of_tokens() {
        let many: Vec<String> = (0..MAX_PREFIX_TOKENS + 50)
            .map(|n| format!("дост{n:03}"))
            .collect();
        let expanded = query("дост")
            .expand_prefixes(|_| Ok::<_, ()>(many.clone()))
            .unwrap();
        let Clause::Expanded { tokens, .. } = &expanded.clauses[0] else {
            panic!("not expanded: {expanded:?}");
        };
        assert_eq!(tokens.len(), MAX_PREFIX_TOKENS);
        let tsquery = expanded.to_tsquery();
        assert!(
            tsquery.starts_with("(дост:* & (дост000 | дост001 | "),
            "{tsquery}"
        );
        assert!(tsquery.ends_with(&format!("| дост{:03}))", MAX_PREFIX_TOKENS - 1)));
    }

    fn clause_strategy() -> impl Strategy<Value = Clause> {
        let token = "[abя]{0,3}";
        prop_oneof![
            (token, any::<bool>()).prop_map(|(token, prefix)| Clause::Term { token, prefix }),
            token.prop_map(|token| Clause::Exact { token }),
            (token, proptest::collection::vec("[abя]{0,4}", 0..4)).prop_map(
                |(prefix, mut tokens)| {
                    tokens.retain(|token: &String| token.starts_with(&prefix));
                    tokens.sort();
                    tokens.dedup();
                    Clause::Expanded { prefix, tokens }
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn counting_by_substring_search_agrees_with_counting_token_by_token(
            clauses in proptest::collection::vec(clause_strategy(), 1..4),
            terms in "[abя ]{0,40}",
        ) {
            let query = SearchQuery { clauses };
            let mut fast = vec![0; query.clauses.len()];
            let mut plain = vec![0; query.clauses.len()];
            let scorer = query.scorer();
            let fast_tokens = scorer.count_matches(&terms, &mut fast);
            let plain_tokens = scorer.count_matches_token_by_token(&terms, &mut plain);
            prop_assert_eq!((fast_tokens, fast), (plain_tokens, plain), "terms {:?}", terms);
        }
    }

    #[test]
    fn a_whole_word_clause_counts_only_whole_tokens_even_inside_longer_ones() {
        let query = SearchQuery {
            clauses: vec![
                Clause::Term {
                    token: "ab".into(),
                    prefix: false,
                },
                Clause::Term {
                    token: "ab".into(),
                    prefix: true,
                },
            ],
        };
        let mut counts = vec![0; 2];
        assert_eq!(
            query.scorer().count_matches("abab ab cab ab", &mut counts),
            4
        );
        assert_eq!(counts, vec![2, 3]);
    }

    #[test]
    fn a_shorter_record_and_more_mentions_rank_a_record_higher() {
        let q = query("иван ");
        let score = |record: &str| q.score_record(&crate::index_terms(record));
        let short = score("Иван");
        let long = score("Иван Александрович Петров-Водкин");
        let twice = score("Иван, Иван Петров-Водкин");
        assert!(short > long, "{short} vs {long}");
        assert!(twice > long, "{twice} vs {long}");
        assert!(score("Пётр").abs() < f64::EPSILON);
    }

    #[test]
    fn ranking_is_by_score_then_the_greatest_id() {
        let mut hits = vec![(1.0, 5), (2.0, 1), (1.0, 7), (1.0, 2)];
        hits.sort_by(rank_order);
        assert_eq!(hits, vec![(2.0, 1), (1.0, 7), (1.0, 5), (1.0, 2)]);
    }
}
