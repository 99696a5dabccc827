//! Short excerpts of a text around what a query matched, for result lists.

use std::ops::Range;

use crate::exact::{Mode, exact_spans};
use crate::normalize::{Analyzer, words};
use crate::query::{Clause, SearchQuery};

/// The marker put where an excerpt was cut.
const ELLIPSIS: &str = "…";

/// A short excerpt with the matched words marked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snippet {
    /// The excerpt: white space collapsed to single spaces, `…` where the text was cut.
    pub text: String,
    /// Byte ranges in `text` of the matched words (or addresses and phone numbers), in order,
    /// not overlapping, each on character boundaries.
    pub highlights: Vec<Range<usize>>,
}

/// A short excerpt of `text` around the first match of `query`, at most `max_chars` characters.
///
/// Runs of white space (including line breaks) become single spaces. When the text is longer
/// than `max_chars`, the excerpt starts about a third of the budget before the first match and
/// is cut at spaces where possible, with `…` (counted in the budget) on each cut side. Matching
/// follows the index: a word is marked when one of its tokens satisfies a clause, so «доставки»
/// is marked for the query «доставка»; an e-mail address or phone number is marked whole for its
/// exact clause. Without any match, the excerpt is the start of the text.
pub fn snippet(text: &str, query: &SearchQuery, max_chars: usize) -> Snippet {
    let collapsed = collapse_whitespace(text);
    let highlights = find_highlights(&collapsed, query);
    cut(collapsed, highlights, max_chars)
}

fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for part in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// Byte ranges of the matched words, addresses and numbers of `text`, sorted and merged.
fn find_highlights(text: &str, query: &SearchQuery) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let terms: Vec<&Clause> = query
        .clauses
        .iter()
        .filter(|c| matches!(c, Clause::Term { .. } | Clause::Expanded { .. }))
        .collect();
    if !terms.is_empty() {
        let mut analyzer = Analyzer::new();
        for range in words(text) {
            let Some(word) = analyzer.analyse(&text[range.clone()]) else {
                continue;
            };
            let hit = terms.iter().any(|clause| {
                clause.matches_token(&word.token)
                    || word.digit_runs().any(|run| clause.matches_token(run))
            });
            if hit {
                found.push(range);
            }
        }
    }
    if query.clauses.len() > terms.len() {
        for span in exact_spans(text, Mode::Index) {
            if query
                .clauses
                .iter()
                .any(|c| matches!(c, Clause::Exact { token } if *token == span.token))
            {
                found.push(span.range);
            }
        }
        found.sort_by_key(|r| r.start);
    }
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
    for range in found {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// The byte offset `n` characters after `from` (or the end).
fn forward_chars(text: &str, from: usize, n: usize) -> usize {
    text[from..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| from + i)
}

/// The byte offset `n` characters before `from` (or the start).
fn back_chars(text: &str, from: usize, n: usize) -> usize {
    text[..from]
        .char_indices()
        .rev()
        .take(n)
        .last()
        .map_or(from, |(i, _)| i)
}

fn cut(text: String, highlights: Vec<Range<usize>>, max_chars: usize) -> Snippet {
    if max_chars == 0 {
        return Snippet::default();
    }
    if text.chars().nth(max_chars).is_none() {
        return Snippet { text, highlights };
    }
    let len = text.len();
    let bytes = text.as_bytes();
    let anchor = highlights.first().cloned();
    let (anchor_start, anchor_end) = anchor.as_ref().map_or((0, 0), |a| (a.start, a.end));
    // Characters taken by one ellipsis; there is no room for them in a tiny budget.
    let ell = usize::from(max_chars >= 3);

    // Context before the first match: a third of the budget, none in a tiny one.
    let context = if max_chars >= 12 { max_chars / 3 } else { 0 };
    let mut start = back_chars(&text, anchor_start, context);
    let body = max_chars - ell - if start > 0 { ell } else { 0 };
    let mut end = forward_chars(&text, start, body);
    if end == len {
        // The tail fits: use the whole budget, ending at the end of the text.
        start = back_chars(&text, len, max_chars - ell);
    }

    // Start at a word: after the next space, unless that would skip the first match.
    if start > 0
        && bytes[start - 1] != b' '
        && start != anchor_start
        && let Some(space) = text[start..end].find(' ')
    {
        let next = start + space + 1;
        if anchor.is_none() || next <= anchor_start {
            start = next;
        }
    }
    // End at a word: before the last space, unless that would cut the first match off.
    if end < len
        && bytes[end] != b' '
        && bytes[end - 1] != b' '
        && let Some(space) = text[start..end].rfind(' ')
    {
        let last = start + space;
        if last > start && last >= anchor_end {
            end = last;
        }
    }
    while start < end && bytes[start] == b' ' {
        start += 1;
    }
    while end > start && bytes[end - 1] == b' ' {
        end -= 1;
    }

    let lead = if start > 0 && ell == 1 { ELLIPSIS } else { "" };
    let tail = if end < len && ell == 1 { ELLIPSIS } else { "" };
    let mut out = String::with_capacity(lead.len() + (end - start) + tail.len());
    out.push_str(lead);
    out.push_str(&text[start..end]);
    out.push_str(tail);
    let shift = lead.len();
    let highlights = highlights
        .into_iter()
        .filter(|h| h.start < end && h.end > start)
        .map(|h| h.start.max(start) - start + shift..h.end.min(end) - start + shift)
        .collect();
    debug_assert!(out.chars().count() <= max_chars);
    Snippet {
        text: out,
        highlights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_runs_become_single_spaces() {
        assert_eq!(collapse_whitespace("  a \n\n b\t c  "), "a b c");
    }

    #[test]
    fn character_offsets_move_over_multi_byte_letters() {
        let text = "ёжик";
        assert_eq!(forward_chars(text, 0, 2), 4);
        assert_eq!(forward_chars(text, 0, 9), text.len());
        assert_eq!(back_chars(text, text.len(), 1), 6);
        assert_eq!(back_chars(text, 4, 9), 0);
    }
}
