//! Limits on what we agree to parse, and the checks that enforce them.
//!
//! mail-parser 0.11 has no limits of its own, and two of its costs are worth knowing:
//! - every MIME part costs about 175 bytes of memory, so 25 MB of empty parts (`--b\n\n`
//!   repeated) takes 650 MB and seconds of CPU;
//! - nested `message/rfc822` parts become nested `Message` values that are dropped
//!   recursively: a 3 MB mail nesting 100,000 of them overflows the stack and aborts the
//!   process (no panic to catch).
//!
//! So before parsing, [`precheck`] does a cheap scan that over-counts what the parser would
//! build (part delimiters of every declared boundary, `Content-Type` fields, and the same again
//! inside base64/quoted-printable bodies the parser would decode as nested messages). After
//! parsing, [`check_structure`] counts the real parts and depth. [`DismantleOnDrop`] takes the
//! parsed tree apart iteratively, as a second line of defence for the stack.

use std::collections::HashSet;

use aho_corasick::AhoCorasick;
use mail_parser::{Message, PartType, parsers::MessageStream};
use memchr::memmem;

/// mail-parser decodes an encoded `message/rfc822` body and parses it as a nested message
/// this many levels deep (its `MAX_NESTED_ENCODED`); the pre-scan follows it as far.
const MAX_ENCODED_NESTING: usize = 3;
/// How far to look for the end of a boundary value.
const MAX_BOUNDARY_SEARCH: usize = 1000;

/// How much we agree to parse. A message over a limit is refused with a [`ParseError`] and
/// quarantined with its raw bytes, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Size of the raw message. Default 25 MiB: what Gmail and Outlook accept, about 18 MiB of
    /// attachments once base64-encoded.
    pub max_message_bytes: usize,
    /// MIME parts, counting containers and nested messages. Default 500: real mail rarely has
    /// more than a few dozen.
    pub max_parts: usize,
    /// Nesting of multiparts and attached messages (a plain mail is depth 1, a text part in
    /// `multipart/mixed` depth 2). Default 20: a forwarded message with attachments is about 5.
    pub max_depth: usize,
    /// The header block of the message and of each part. Default 256 KiB: long `Received`
    /// and `References` chains stay far below.
    pub max_header_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_message_bytes: 25 * 1024 * 1024,
            max_parts: 500,
            max_depth: 20,
            max_header_bytes: 256 * 1024,
        }
    }
}

/// Why a message was not parsed. The text is the quarantine reason shown to an admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("the message has more MIME parts than the limit of {limit} (counted at least {found})")]
    TooManyParts { found: usize, limit: usize },
    #[error("the message nests MIME parts {depth} levels deep, over the limit of {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error("a header block is at least {size} bytes, over the limit of {limit} bytes")]
    HeadersTooLarge { size: usize, limit: usize },
    #[error("not an email: {0}")]
    NotAnEmail(String),
}

/// Checks size, the top header block and an over-count of parts before anything is parsed.
pub(crate) fn precheck(raw: &[u8], limits: &ParseLimits) -> Result<(), ParseError> {
    if raw.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            limit: limits.max_message_bytes,
        });
    }
    let header_bytes = header_block_len(raw, limits.max_header_bytes);
    if header_bytes > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge {
            size: header_bytes,
            limit: limits.max_header_bytes,
        });
    }
    let mut tally = Tally::default();
    scan(raw, 0, limits, &mut tally)
}

/// Length of the header block (up to the first empty line), reading at most `limit + 1` bytes.
fn header_block_len(raw: &[u8], limit: usize) -> usize {
    let window = &raw[..raw.len().min(limit.saturating_add(1))];
    let mut line_start = 0;
    for newline in memchr::memchr_iter(b'\n', window) {
        let line = &window[line_start..newline];
        if line.is_empty() || line == b"\r" {
            return line_start;
        }
        line_start = newline + 1;
    }
    window.len()
}

/// Upper bounds on what the parser will build, summed over the encoded bodies it would parse.
#[derive(Default)]
struct Tally {
    delimiters: usize,
    content_types: usize,
}

/// A region of `bytes` that the parser may decode and parse as a nested message.
struct EncodedBody {
    body_start: usize,
    quoted_printable: bool,
}

fn scan(
    bytes: &[u8],
    level: usize,
    limits: &ParseLimits,
    tally: &mut Tally,
) -> Result<(), ParseError> {
    let too_many = |found| ParseError::TooManyParts {
        found,
        limit: limits.max_parts,
    };
    let mut boundaries: HashSet<&[u8]> = HashSet::new();
    // A boundary we cannot read literally (RFC 2231 continuation, encoded word, escapes):
    // then any `--` may be a delimiter.
    let mut unknown_boundary = false;
    // Field names are matched case-insensitively, as the parser does; searching a lowercase
    // copy with memchr's memmem keeps the scan fast even in unoptimised test builds.
    let lower = bytes.to_ascii_lowercase();

    for start in memmem::find_iter(&lower, b"content-type") {
        if field_value(&bytes[start + b"content-type".len()..]).is_some() {
            tally.content_types += 1;
            if tally.content_types > limits.max_parts {
                return Err(too_many(tally.content_types));
            }
        }
    }

    for start in memmem::find_iter(&lower, b"boundary") {
        match boundary_value(&bytes[start + b"boundary".len()..]) {
            BoundaryValue::Literal(value) => {
                boundaries.insert(value);
                if boundaries.len() > limits.max_parts {
                    return Err(too_many(boundaries.len()));
                }
            }
            BoundaryValue::Unreadable => unknown_boundary = true,
            BoundaryValue::NotADeclaration => {}
        }
    }

    let mut encoded_bodies: Vec<EncodedBody> = Vec::new();
    let mut blank_lines = BlankLines::default();
    for start in memmem::find_iter(&lower, b"content-transfer-encoding") {
        let name_end = start + b"content-transfer-encoding".len();
        let Some(value) = field_value(&bytes[name_end..]) else {
            continue;
        };
        let token_len = value
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or(value.len());
        let token = &value[..token_len];
        let quoted_printable = token.eq_ignore_ascii_case(b"quoted-printable");
        if !(quoted_printable || token.eq_ignore_ascii_case(b"base64")) {
            continue;
        }
        let Some(body_start) = blank_lines.body_after(bytes, name_end) else {
            continue;
        };
        if encoded_bodies
            .last()
            .is_none_or(|last| last.body_start != body_start)
        {
            encoded_bodies.push(EncodedBody {
                body_start,
                quoted_printable,
            });
        }
    }
    drop(lower);

    let delimiters = Delimiters::new(&boundaries, unknown_boundary);
    tally.delimiters += delimiters.count(
        bytes,
        limits.max_parts + 1 - tally.delimiters.min(limits.max_parts),
    );
    if tally.delimiters > limits.max_parts {
        return Err(too_many(tally.delimiters));
    }

    if level < MAX_ENCODED_NESTING {
        // Bodies are taken in order and never overlap, so decoding stays linear in the input.
        let mut covered_until = 0;
        let mut next_delimiter = NextDelimiter::new(&delimiters);
        for body in encoded_bodies {
            if body.body_start < covered_until {
                continue;
            }
            let rest = &bytes[body.body_start..];
            let (end, decoded) = if body.quoted_printable {
                let end = next_delimiter
                    .at_or_after(bytes, body.body_start)
                    .map_or(rest.len(), |at| at - body.body_start);
                (
                    end,
                    MessageStream::new(&rest[..end]).decode_quoted_printable_mime(b""),
                )
            } else {
                // Base64 has no '-': the parser's decoder stops at the first "--" or fails.
                let end = memmem::find(rest, b"--").unwrap_or(rest.len());
                (
                    end,
                    MessageStream::new(&rest[..end]).decode_base64_mime(b""),
                )
            };
            covered_until = body.body_start + end;
            if decoded.0 != usize::MAX && !decoded.1.is_empty() {
                scan(&decoded.1, level + 1, limits, tally)?;
            }
        }
    }
    Ok(())
}

/// The rest of the input after `: ` when the bytes after a field name look like a field.
fn field_value(after: &[u8]) -> Option<&[u8]> {
    let rest = trim_start_spaces(after);
    let value = rest.strip_prefix(b":")?;
    // Folding whitespace too: the parser unfolds "Field:\r\n value".
    let start = value
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(value.len());
    Some(&value[start..])
}

fn trim_start_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Finds the body after a header field: just past the next empty line. Remembers the last
/// answer, so many fields in one header block cost one search, and the scan stays linear.
#[derive(Default)]
struct BlankLines {
    /// (searched from, blank line start, body start) of the last search.
    last: Option<(usize, Option<(usize, usize)>)>,
}

impl BlankLines {
    fn body_after(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        if let Some((searched_from, found)) = self.last
            && searched_from <= from
        {
            match found {
                None => return None,
                Some((blank_start, body_start)) if blank_start >= from => return Some(body_start),
                Some(_) => {}
            }
        }
        // Line by line, so the search stops at the first empty line whatever its line end.
        let found = memchr::memchr_iter(b'\n', &bytes[from..]).find_map(|at| {
            let line_start = from + at + 1;
            let line = &bytes[line_start..];
            if line.starts_with(b"\n") {
                Some((line_start, line_start + 1))
            } else if line.starts_with(b"\r\n") {
                Some((line_start, line_start + 2))
            } else {
                None
            }
        });
        self.last = Some((from, found));
        found.map(|(_, body_start)| body_start)
    }
}

enum BoundaryValue<'a> {
    Literal(&'a [u8]),
    Unreadable,
    NotADeclaration,
}

/// Reads `="value"` or `=value` after the word "boundary".
fn boundary_value(after: &[u8]) -> BoundaryValue<'_> {
    let rest = trim_start_spaces(after);
    if rest.first() == Some(&b'*') {
        return BoundaryValue::Unreadable;
    }
    let Some(rest) = rest.strip_prefix(b"=") else {
        return BoundaryValue::NotADeclaration;
    };
    let rest = trim_start_spaces(rest);
    // RFC 2046 allows 70 characters; looking further would make the scan quadratic.
    let window = &rest[..rest.len().min(MAX_BOUNDARY_SEARCH)];
    let value = if let Some(quoted) = window.strip_prefix(b"\"") {
        let Some(end) = memchr::memchr(b'"', quoted) else {
            return BoundaryValue::Unreadable;
        };
        &quoted[..end]
    } else {
        let Some(end) = window
            .iter()
            .position(|&b| b == b';' || b.is_ascii_whitespace())
            .or((window.len() == rest.len()).then_some(rest.len()))
        else {
            return BoundaryValue::Unreadable;
        };
        &window[..end]
    };
    if value.is_empty() {
        BoundaryValue::NotADeclaration
    } else if value.contains(&b'\\')
        || value.contains(&b'\n')
        || value.contains(&b'\r')
        || memmem::find(value, b"=?").is_some()
    {
        BoundaryValue::Unreadable
    } else {
        BoundaryValue::Literal(value)
    }
}

/// Finds what the parser could take for a part delimiter: `--` followed by a declared boundary,
/// anywhere (mail-parser does not require it at the start of a line), or any `--` at all when
/// some boundary could not be read.
enum Delimiters {
    None,
    Any,
    /// Few boundaries (the usual case): one memmem search each.
    Few(Vec<Vec<u8>>),
    /// Many: one Aho-Corasick automaton.
    Many(AhoCorasick),
}

/// Up to this many boundaries, separate memmem searches beat an automaton.
const FEW_BOUNDARIES: usize = 8;

impl Delimiters {
    fn new(boundaries: &HashSet<&[u8]>, unknown_boundary: bool) -> Delimiters {
        if unknown_boundary {
            return Delimiters::Any;
        }
        if boundaries.is_empty() {
            return Delimiters::None;
        }
        let patterns: Vec<Vec<u8>> = boundaries
            .iter()
            .map(|boundary| [b"--", *boundary].concat())
            .collect();
        if patterns.len() <= FEW_BOUNDARIES {
            return Delimiters::Few(patterns);
        }
        match AhoCorasick::new(&patterns) {
            Ok(automaton) => Delimiters::Many(automaton),
            Err(_) => Delimiters::Any,
        }
    }

    /// Counts delimiters, stopping once past `stop_after`. For one boundary the parser's
    /// matches are the leftmost non-overlapping ones, which memmem counts; the sum over all
    /// boundaries (or the overlapping count of the automaton) is at least what the parser finds.
    fn count(&self, bytes: &[u8], stop_after: usize) -> usize {
        match self {
            Delimiters::None => 0,
            Delimiters::Any => memmem::find_iter(bytes, b"--").take(stop_after + 1).count(),
            Delimiters::Few(patterns) => {
                let mut total = 0;
                for pattern in patterns {
                    total += memmem::find_iter(bytes, pattern)
                        .take(stop_after + 1 - total.min(stop_after))
                        .count();
                    if total > stop_after {
                        break;
                    }
                }
                total
            }
            Delimiters::Many(automaton) => automaton
                .find_overlapping_iter(bytes)
                .take(stop_after + 1)
                .count(),
        }
    }

    fn first(&self, bytes: &[u8]) -> Option<usize> {
        match self {
            Delimiters::None => None,
            Delimiters::Any => memmem::find(bytes, b"--"),
            Delimiters::Few(patterns) => patterns
                .iter()
                .filter_map(|pattern| memmem::find(bytes, pattern))
                .min(),
            Delimiters::Many(automaton) => automaton.find(bytes).map(|found| found.start()),
        }
    }
}

/// The next delimiter at or after a position, for positions that only grow. With a few
/// boundaries searched one by one, each one's last answer is remembered, so no stretch of the
/// input is searched twice for the same boundary (else many encoded bodies would make the
/// scan quadratic).
struct NextDelimiter<'a> {
    delimiters: &'a Delimiters,
    /// Per pattern of `Delimiters::Few`: (searched from, found at).
    memo: Vec<Option<(usize, Option<usize>)>>,
}

impl<'a> NextDelimiter<'a> {
    fn new(delimiters: &'a Delimiters) -> Self {
        let patterns = match delimiters {
            Delimiters::Few(patterns) => patterns.len(),
            _ => 0,
        };
        NextDelimiter {
            delimiters,
            memo: vec![None; patterns],
        }
    }

    fn at_or_after(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        let Delimiters::Few(patterns) = self.delimiters else {
            return self.delimiters.first(&bytes[from..]).map(|at| from + at);
        };
        let mut nearest = None;
        for (pattern, memo) in patterns.iter().zip(&mut self.memo) {
            let found = match *memo {
                Some((searched_from, found))
                    if searched_from <= from && found.is_none_or(|at| at >= from) =>
                {
                    found
                }
                _ => {
                    let found = memmem::find(&bytes[from..], pattern).map(|at| from + at);
                    *memo = Some((from, found));
                    found
                }
            };
            nearest = match (nearest, found) {
                (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                (a, b) => a.or(b),
            };
        }
        nearest
    }
}

/// Counts the parsed parts and their depth, and checks each part's header block.
pub(crate) fn check_structure(
    message: &Message<'_>,
    limits: &ParseLimits,
) -> Result<(), ParseError> {
    let mut parts = 0usize;
    // (message, part id, depth); iterative so a deep tree cannot exhaust our stack.
    let mut pending: Vec<(&Message<'_>, usize, usize)> = vec![(message, 0, 1)];
    while let Some((owner, part_id, depth)) = pending.pop() {
        let Some(part) = owner.parts.get(part_id) else {
            continue;
        };
        parts += 1;
        if parts > limits.max_parts {
            return Err(ParseError::TooManyParts {
                found: parts,
                limit: limits.max_parts,
            });
        }
        if depth > limits.max_depth {
            return Err(ParseError::TooDeep {
                depth,
                limit: limits.max_depth,
            });
        }
        let header_bytes = part
            .raw_body_offset()
            .saturating_sub(part.raw_header_offset()) as usize;
        if header_bytes > limits.max_header_bytes {
            return Err(ParseError::HeadersTooLarge {
                size: header_bytes,
                limit: limits.max_header_bytes,
            });
        }
        match &part.body {
            PartType::Multipart(children) => {
                // Children always follow their parent; anything else would be a cycle.
                pending.extend(
                    children
                        .iter()
                        .map(|&child| child as usize)
                        .filter(|&child| child > part_id)
                        .map(|child| (owner, child, depth + 1)),
                );
            }
            PartType::Message(nested) => pending.push((nested, 0, depth + 1)),
            _ => {}
        }
    }
    Ok(())
}

/// Owns a parsed message and, when dropped, takes nested messages apart one at a time, so
/// dropping a deep tree does not recurse.
pub(crate) struct DismantleOnDrop<'x>(pub(crate) Message<'x>);

impl<'x> std::ops::Deref for DismantleOnDrop<'x> {
    type Target = Message<'x>;

    fn deref(&self) -> &Message<'x> {
        &self.0
    }
}

impl Drop for DismantleOnDrop<'_> {
    fn drop(&mut self) {
        let mut detached = Vec::new();
        detach_nested(&mut self.0, &mut detached);
        while let Some(mut nested) = detached.pop() {
            detach_nested(&mut nested, &mut detached);
        }
    }
}

fn detach_nested<'x>(message: &mut Message<'x>, detached: &mut Vec<Message<'x>>) {
    for part in &mut message.parts {
        if matches!(part.body, PartType::Message(_))
            && let PartType::Message(nested) = std::mem::take(&mut part.body)
        {
            detached.push(nested);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_block_ends_at_the_first_empty_line() {
        assert_eq!(header_block_len(b"A: b\r\nC: d\r\n\r\nbody", 100), 12);
        assert_eq!(header_block_len(b"A: b\n\nbody", 100), 5);
        assert_eq!(header_block_len(b"A: b\nC: d", 100), 9);
        assert_eq!(header_block_len(&[b'x'; 500], 100), 101);
    }

    #[test]
    fn boundary_values_are_read_quoted_or_bare() {
        assert!(matches!(
            boundary_value(b"=\"a b\"; x"),
            BoundaryValue::Literal(b"a b")
        ));
        assert!(matches!(
            boundary_value(b" = abc;"),
            BoundaryValue::Literal(b"abc")
        ));
        assert!(matches!(
            boundary_value(b"*0=\"a\""),
            BoundaryValue::Unreadable
        ));
        assert!(matches!(
            boundary_value(b"=\"=?utf-8?q?a?=\""),
            BoundaryValue::Unreadable
        ));
        assert!(matches!(
            boundary_value(b" of the property"),
            BoundaryValue::NotADeclaration
        ));
    }

    #[test]
    fn delimiters_are_counted_wherever_they_appear() {
        let boundaries: HashSet<&[u8]> = [&b"b"[..]].into_iter().collect();
        let delimiters = Delimiters::new(&boundaries, false);
        assert_eq!(delimiters.count(b"--b\nx--b--b\n--c", 100), 3);
        assert_eq!(delimiters.count(b"--b--b--b--b", 2), 3);
        assert_eq!(
            Delimiters::new(&boundaries, true).count(b"--c -- --", 100),
            3
        );
    }

    #[test]
    fn a_deeply_nested_parse_is_dropped_without_recursion() {
        // Bypasses the pre-scan on purpose: mail-parser's own recursive drop of this tree
        // would overflow the small stack and abort the test binary.
        let mut raw =
            String::from("From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n");
        raw.push_str(&"Content-Type: message/rfc822\r\n\r\n".repeat(20_000));
        raw.push_str("From: x@y.z\r\n\r\nbody\r\n--b--\r\n");
        let depth = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let message = mail_parser::MessageParser::default().parse(raw.as_bytes());
                let message = DismantleOnDrop(message.expect("parses"));
                let mut depth = 0;
                let mut current: &Message<'_> = &message;
                while let Some(nested) = current.parts.iter().find_map(|part| match &part.body {
                    PartType::Message(nested) => Some(nested),
                    _ => None,
                }) {
                    depth += 1;
                    current = nested;
                }
                depth
            })
            .expect("thread starts")
            .join()
            .expect("no stack overflow");
        assert!(depth > 19_000, "{depth}");
    }

    #[test]
    fn the_body_starts_after_the_first_empty_line_of_either_kind() {
        let mut blank_lines = BlankLines::default();
        let bytes = b"A: 1\r\nB: 2\r\n\r\nbody\nC: 3\n\nmore";
        assert_eq!(blank_lines.body_after(bytes, 0), Some(14));
        assert_eq!(blank_lines.body_after(bytes, 5), Some(14));
        assert_eq!(blank_lines.body_after(bytes, 15), Some(25));
        assert_eq!(blank_lines.body_after(bytes, 26), None);
    }

    #[test]
    fn the_next_delimiter_is_found_for_growing_positions() {
        let boundaries: HashSet<&[u8]> = [&b"a"[..], &b"b"[..]].into_iter().collect();
        let delimiters = Delimiters::new(&boundaries, false);
        let mut next = NextDelimiter::new(&delimiters);
        let bytes = b"xx--a yy--b zz--a";
        assert_eq!(next.at_or_after(bytes, 0), Some(2));
        assert_eq!(next.at_or_after(bytes, 3), Some(8));
        assert_eq!(next.at_or_after(bytes, 9), Some(14));
        assert_eq!(next.at_or_after(bytes, 15), None);
    }

    #[test]
    fn many_boundaries_are_counted_by_one_automaton() {
        let names: Vec<String> = (0..20).map(|index| format!("b{index}")).collect();
        let boundaries: HashSet<&[u8]> = names.iter().map(|name| name.as_bytes()).collect();
        let delimiters = Delimiters::new(&boundaries, false);
        assert!(matches!(delimiters, Delimiters::Many(_)));
        // "--b19" also holds "--b1": overlapping matches over-count, which is the safe side.
        assert_eq!(delimiters.count(b"--b3 --b19\n--b7--\n--x", 100), 4);
        assert_eq!(delimiters.first(b"xx--b12"), Some(2));
    }
}
