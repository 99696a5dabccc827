//! E-mail addresses and phone numbers found in raw text, turned into hashed exact tokens.
//!
//! The index never holds an address or a number in a form that can be read back, only
//! `e` + 20 hex digits of SHA-256 of the lower-cased address and `p` + 20 hex digits of SHA-256
//! of the normalised number. The same detection runs on texts and on queries, so typing an
//! address or a number in any usual format finds it.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::normalize::is_word_char;

/// Fewest and most digits of a phone number.
const PHONE_DIGITS: Range<usize> = 10..16;

/// Where detection runs: a text being indexed, or a user's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A text being indexed: a solid run of 10–15 digits also counts as a phone number.
    Index,
    /// A query: a solid run of digits stays a number to search for (prefix matching works on it).
    Query,
}

/// An e-mail address or phone number found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExactSpan {
    /// Byte range of the address or number in the text.
    pub range: Range<usize>,
    /// The hashed token (`e…` or `p…`).
    pub token: String,
}

/// The exact token of an e-mail address: `e` + 20 hex digits of SHA-256 of the lower-cased
/// address.
pub fn email_token(address: &str) -> String {
    hashed('e', &address.trim().to_lowercase())
}

/// The exact token of a phone number already normalised to `+` and digits (as
/// `otklik_domain::customer::normalize_phone` returns it): `p` + 20 hex digits of SHA-256.
pub fn phone_token(normalized: &str) -> String {
    hashed('p', normalized)
}

fn hashed(kind: char, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut token = String::with_capacity(21);
    token.push(kind);
    token.push_str(&hex::encode(&digest[..10]));
    token
}

/// All e-mail addresses and phone numbers of `text`, sorted by position, not overlapping (an
/// address wins over a number inside it).
pub(crate) fn exact_spans(text: &str, mode: Mode) -> Vec<ExactSpan> {
    let mut spans = emails(text);
    spans.extend(phones(text, mode));
    if spans.len() > 1 {
        spans.sort_by(|a, b| {
            a.range
                .start
                .cmp(&b.range.start)
                .then(b.range.end.cmp(&a.range.end))
        });
        let mut end = 0;
        spans.retain(|s| {
            let keep = s.range.start >= end;
            if keep {
                end = s.range.end;
            }
            keep
        });
    }
    spans
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// `local@domain.tld` addresses (ASCII only): the local part of letters, digits and `._%+-`,
/// the domain of at least two non-empty labels ending in a top-level domain of two or more
/// letters, not glued to a letter of another script on either side.
fn emails(text: &str) -> Vec<ExactSpan> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (at, _) in text.match_indices('@') {
        let mut start = at;
        while start > 0 && is_local_byte(bytes[start - 1]) {
            start -= 1;
        }
        while start < at && bytes[start] == b'.' {
            start += 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain_byte(bytes[end]) {
            end += 1;
        }
        while end > at + 1 && matches!(bytes[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let local = &text[start..at];
        let domain = &text[at + 1..end];
        let tld = domain.rsplit('.').next().unwrap_or("");
        let valid = !local.is_empty()
            && !glued_before(text, start)
            && !glued_after(text, end)
            && local.len() <= 64
            && end - start <= 254
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty())
            && tld.len() >= 2
            && tld.bytes().all(|b| b.is_ascii_alphabetic());
        if valid {
            found.push(ExactSpan {
                range: start..end,
                token: email_token(&text[start..end]),
            });
        }
    }
    found
}

/// Phone numbers, written the usual ways (`+7 916 123-45-67`, `8 (916) 123-45-67`,
/// `+44 20 7946 0958`, `89161234567`).
///
/// A number is an optional leading `+` or `(`, then groups of digits; between two groups, up to
/// three separators, each a run of white space or one of `-`, `–`, `‑`, `(`, `)`. It has 10–15
/// digits and is not glued to a letter or digit on either side. Where the groups run on (a phone
/// followed by another number), a Russian number (`+7…`, `7…`, `8…`) ends at 11 digits if a
/// group ends there, any other at the longest length allowed. Without a `+`, a number in several
/// groups must start with a one-digit group (`8 916 123 45 67`), an area code in parentheses
/// (`(916) 123-45-67`), or a three-digit group followed by dashes or parentheses
/// (`916 123-45-67`, `123-456-7890`), so that a list of ticket or order numbers is not taken for
/// a phone; a solid run of digits without `+` counts only when indexing (see [`Mode`]).
fn phones(text: &str, mode: Mode) -> Vec<ExactSpan> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let candidate = match bytes[i] {
            b'0'..=b'9' => true,
            b'+' | b'(' => bytes.get(i + 1).is_some_and(u8::is_ascii_digit),
            _ => false,
        };
        if !candidate || glued_before(text, i) {
            i += 1;
            continue;
        }
        match phone_at(text, i, mode) {
            Ok((end, normalized)) => {
                found.push(ExactSpan {
                    range: i..end,
                    token: phone_token(&normalized),
                });
                i = end;
            }
            Err(next) => i = next,
        }
    }
    found
}

/// Whether the character before byte `i` belongs to a word (an address or number glued to a
/// word is not one: the word splitter would see them as one word).
fn glued_before(text: &str, i: usize) -> bool {
    text[..i].chars().next_back().is_some_and(is_word_char)
}

/// Whether the character at byte `i` belongs to a word.
fn glued_after(text: &str, i: usize) -> bool {
    text[i..].chars().next().is_some_and(is_word_char)
}

/// Where a separator between digit groups that starts at byte `i` ends, and whether it holds a
/// dash or a parenthesis; `None` when there is no separator at `i`.
fn separator_end(text: &str, mut i: usize) -> Option<(usize, bool)> {
    let mut parts = 0;
    let mut marked = false;
    while parts < 3 {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        if c.is_whitespace() {
            i += c.len_utf8();
            while let Some(w) = text[i..].chars().next().filter(|w| w.is_whitespace()) {
                i += w.len_utf8();
            }
        } else if matches!(c, '-' | '–' | '‑' | '(' | ')') {
            i += c.len_utf8();
            marked = true;
        } else {
            break;
        }
        parts += 1;
    }
    (parts > 0).then_some((i, marked))
}

/// The end of one group of digits in a phone number, and what was read up to it.
#[derive(Debug, Clone, Copy, Default)]
struct GroupEnd {
    /// Byte offset just after the group.
    end: usize,
    /// Digits from the start of the number up to here.
    digits: usize,
    /// Whether a dash or parenthesis separated any two groups up to here.
    marked: bool,
}

/// Tries to read a phone number starting at byte `start`; returns its end and its normalised
/// form, or where to look for the next number: after the first group of digits, since a number
/// never starts inside one.
fn phone_at(text: &str, start: usize, mode: Mode) -> Result<(usize, String), usize> {
    let bytes = text.as_bytes();
    let plus = bytes[start] == b'+';
    let paren = bytes[start] == b'(';
    let mut i = if plus || paren { start + 1 } else { start };
    let mut digits = String::with_capacity(PHONE_DIGITS.end);
    let mut groups = [GroupEnd::default(); PHONE_DIGITS.end];
    let mut count = 0;
    let mut first_group_end = i;
    let mut marked = false;
    loop {
        let group_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if count == 0 {
            first_group_end = i;
        }
        if digits.len() + (i - group_start) >= PHONE_DIGITS.end {
            break;
        }
        digits.push_str(&text[group_start..i]);
        groups[count] = GroupEnd {
            end: i,
            digits: digits.len(),
            marked,
        };
        count += 1;
        match separator_end(text, i) {
            Some((next, separator_marked)) if bytes.get(next).is_some_and(u8::is_ascii_digit) => {
                marked |= separator_marked;
                i = next;
            }
            _ => break,
        }
    }
    let groups = &groups[..count];
    let valid = |g: &&GroupEnd| PHONE_DIGITS.contains(&g.digits) && !glued_after(text, g.end);
    let russian = if plus {
        digits.starts_with('7')
    } else {
        digits.starts_with(['7', '8'])
    };
    let chosen = groups
        .iter()
        .position(|g| russian && g.digits == 11 && valid(&g))
        .or_else(|| groups.iter().rposition(|g| valid(&g)));
    let Some(last) = chosen else {
        return Err(first_group_end);
    };
    let group = groups[last];
    let first_group = groups[0].digits;
    let accepted = plus
        || if last == 0 {
            mode == Mode::Index && !paren
        } else {
            first_group == 1 || paren || (first_group == 3 && group.marked)
        };
    if !accepted {
        return Err(first_group_end);
    }
    let digits = &digits[..group.digits];
    let normalized = if !plus && digits.len() == 11 && digits.starts_with('8') {
        format!("+7{}", &digits[1..])
    } else {
        format!("+{digits}")
    };
    Ok((group.end, normalized))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone_tokens(text: &str, mode: Mode) -> Vec<String> {
        phones(text, mode).into_iter().map(|s| s.token).collect()
    }

    #[test]
    fn a_russian_number_written_in_usual_ways_gives_one_token() {
        let expected = phone_token("+79161234567");
        for written in [
            "+7 916 123-45-67",
            "8 (916) 123-45-67",
            "+7 (916) 123 45 67",
            "8-916-123-45-67",
            "8 916 123 45 67",
            "+79161234567",
        ] {
            assert_eq!(
                phone_tokens(&format!("тел. {written}, звоните"), Mode::Query),
                std::slice::from_ref(&expected),
                "{written}"
            );
        }
    }

    #[test]
    fn a_british_number_is_found_with_its_country_code() {
        assert_eq!(
            phone_tokens("call +44 20 7946 0958 today", Mode::Query),
            [phone_token("+442079460958")]
        );
    }

    #[test]
    fn a_number_running_on_after_a_phone_is_not_part_of_it() {
        let expected = phone_token("+79161234567");
        for text in [
            "+7 916 123-45-67 2 раза звонил",
            "8 916 123 45 67 1042",
            "заказ 1042 8 916 123-45-67",
            "заказ 1042\n8 916 123-45-67",
            "заказ 12 8 916 123-45-67",
            "8 916 123-45-67-89-01-23",
        ] {
            assert_eq!(
                phone_tokens(text, Mode::Index),
                std::slice::from_ref(&expected),
                "{text}"
            );
        }
    }

    #[test]
    fn a_solid_run_of_digits_is_a_phone_only_when_indexing() {
        assert_eq!(
            phone_tokens("89161234567", Mode::Index),
            [phone_token("+79161234567")]
        );
        assert!(phone_tokens("89161234567", Mode::Query).is_empty());
    }

    #[test]
    fn lists_of_order_numbers_and_short_or_long_numbers_are_not_phones() {
        for text in [
            "448812 448813",
            "1042 1043 1044",
            "123-45-67",
            "1234567890123456",
            "12 34 56 78 90 12",
            "020 7946 0958",
            "id89161234567",
            "89161234567abc",
        ] {
            assert!(phone_tokens(text, Mode::Index).is_empty(), "{text}");
        }
    }

    #[test]
    fn e_mail_addresses_are_found_inside_text_and_hashed_lower_cased() {
        let spans = emails("Пишите: <Ivan.Petrov+shop@Mail.RU>, спасибо.");
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].token, email_token("ivan.petrov+shop@mail.ru"));
        assert_eq!(spans[0].token.len(), 21);
        assert!(spans[0].token.starts_with('e'));
    }

    #[test]
    fn things_that_only_look_like_addresses_are_ignored() {
        for text in [
            "@mail.ru",
            "ivan@",
            "ivan@localhost",
            "ivan@mail.r",
            "a@b..ru",
            "x@1.23",
        ] {
            assert!(emails(text).is_empty(), "{text}");
        }
        assert_eq!(emails("ivan@mail.ru.").len(), 1);
    }

    #[test]
    fn an_address_made_of_digits_is_not_also_a_phone() {
        let spans = exact_spans("89161234567@mail.ru", Mode::Index);
        assert_eq!(spans.len(), 1);
        assert!(spans[0].token.starts_with('e'));
    }
}
