//! Threading keys: signed reply tokens in our Message-IDs and plus addresses, and the
//! `[#1234]` ticket marker in subjects.
//!
//! A token is the ticket's UUID (32 hex) followed by the first 8 bytes of
//! HMAC-SHA256(key, domain tag + UUID) (16 hex): 48 lowercase hex characters, safe in a
//! Message-ID's left part and in an address's local part. 64 bits of tag make guessing a
//! token for a known ticket hopeless at mail speeds; checking is constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::address::{normalize_address, one_line};

type HmacSha256 = Hmac<Sha256>;

/// Binds the tag to this use, so a MAC made with the same secret elsewhere is not a token.
const TOKEN_CONTEXT: &[u8] = b"otklik reply token v1\0";
const UUID_HEX: usize = 32;
const TAG_BYTES: usize = 8;
const TOKEN_LEN: usize = UUID_HEX + 2 * TAG_BYTES;

/// The secret that signs reply tokens. Keep it as long-lived as the mail threads: rotating it
/// makes replies to older mail fall back to the other threading rules.
#[derive(Clone)]
pub struct ReplyTokenKey(HmacSha256);

impl std::fmt::Debug for ReplyTokenKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ReplyTokenKey(..)")
    }
}

impl ReplyTokenKey {
    /// Any length works (HMAC hashes long keys); use at least 32 random bytes.
    pub fn new(secret: &[u8]) -> Self {
        ReplyTokenKey(HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"))
    }

    fn mac(&self, ticket: Uuid) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(TOKEN_CONTEXT);
        mac.update(ticket.as_bytes());
        mac
    }

    /// The token naming `ticket`: 48 lowercase hex characters.
    pub fn sign(&self, ticket: Uuid) -> String {
        let tag = self.mac(ticket).finalize().into_bytes();
        format!("{}{}", ticket.as_simple(), hex::encode(&tag[..TAG_BYTES]))
    }

    /// The ticket a token names, if the token is ours. Case-insensitive (some mail systems
    /// change the case of local parts); the tag is compared in constant time.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        if token.len() != TOKEN_LEN || !token.is_ascii() {
            return None;
        }
        let (uuid_hex, tag_hex) = token.split_at(UUID_HEX);
        let ticket = Uuid::try_parse(uuid_hex).ok()?;
        let tag = hex::decode(tag_hex).ok()?;
        self.mac(ticket).verify_truncated_left(&tag).ok()?;
        Some(ticket)
    }
}

/// The Message-ID of an outbound mail, without `<>`: `<email uuid>.<token>@<domain>`. Replies
/// quote it in `In-Reply-To`/`References`, which threads them even when the subject changed.
pub fn outbound_message_id(
    email_id: Uuid,
    ticket: Uuid,
    key: &ReplyTokenKey,
    domain: &str,
) -> String {
    format!(
        "{}.{}@{}",
        email_id.as_simple(),
        key.sign(ticket),
        domain.trim().to_ascii_lowercase()
    )
}

/// The ticket named by one of our Message-IDs (with or without `<>`); `None` unless the token
/// verifies.
pub fn ticket_of_message_id(message_id: &str, key: &ReplyTokenKey) -> Option<Uuid> {
    let id = strip_brackets(message_id);
    let (left, _domain) = id.rsplit_once('@')?;
    let (_email, token) = left.rsplit_once('.')?;
    key.verify(token)
}

/// Whether a Message-ID was made by us for `domain` (its right part), e.g. to spot our own
/// mail coming back.
pub fn is_own_message_id(message_id: &str, domain: &str) -> bool {
    strip_brackets(message_id)
        .rsplit_once('@')
        .is_some_and(|(_, right)| right.eq_ignore_ascii_case(domain.trim()))
}

fn strip_brackets(id: &str) -> &str {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id).trim()
}

/// `support@shop.test` with a reply token: `support+<token>@shop.test`. An existing `+tag` is
/// replaced.
pub fn plus_address(address: &str, ticket: Uuid, key: &ReplyTokenKey) -> String {
    let address = strip_brackets(address);
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let base = local.split_once('+').map_or(local, |(base, _)| base);
    format!(
        "{base}+{}@{}",
        key.sign(ticket),
        domain.to_ascii_lowercase()
    )
}

/// The ticket named by a plus address (e.g. from `Delivered-To`); `None` unless the token
/// verifies.
pub fn ticket_of_address(address: &str, key: &ReplyTokenKey) -> Option<Uuid> {
    let address = normalize_address(address)?;
    let (local, _) = address.rsplit_once('@')?;
    let (_, token) = local.rsplit_once('+')?;
    key.verify(token)
}

/// Our ticket marker `[#1234]`, anywhere in the subject (the first one that parses).
pub fn subject_ticket_number(subject: &str) -> Option<i64> {
    markers(subject).next().map(|(_, number)| number)
}

/// (byte range, number) of every `[#digits]` marker.
fn markers(subject: &str) -> impl Iterator<Item = (std::ops::Range<usize>, i64)> + '_ {
    subject.match_indices("[#").filter_map(move |(start, _)| {
        let digits_start = start + 2;
        let rest = &subject[digits_start..];
        let digits_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits_len == 0 || digits_len > 18 || rest.as_bytes().get(digits_len) != Some(&b']') {
            return None;
        }
        let number = rest[..digits_len].parse().ok()?;
        Some((start..digits_start + digits_len + 1, number))
    })
}

/// Reply and forward prefixes, compared case-insensitively before a ':' (with an optional
/// counter like "Re[2]" or "RE(3)"): English, Outlook in other languages, and Russian clients
/// ("Ответ", "Отв", "На" from Outlook, "Пересл" for forwards).
const PREFIXES: &[&str] = &[
    "re",
    "fw",
    "fwd",
    "aw",
    "wg",
    "sv",
    "antw",
    "ответ",
    "отв",
    "на",
    "пересл",
    "фв",
];

/// `"Re: <subject> [#1234]"`: one `Re:`, whatever prefixes and markers the subject had.
pub fn reply_subject(subject: &str, ticket_number: i64) -> String {
    let mut base = one_line(subject);
    // Markers go first (ours is added back at the end), then the prefixes they may have hidden.
    let ranges: Vec<_> = markers(&base).map(|(range, _)| range).collect();
    for range in ranges.into_iter().rev() {
        base.replace_range(range, " ");
    }
    let mut base = one_line(&base);
    while let Some(rest) = strip_prefix(&base) {
        base = rest.to_owned();
    }
    if base.is_empty() {
        format!("Re: [#{ticket_number}]")
    } else {
        format!("Re: {base} [#{ticket_number}]")
    }
}

/// The subject without one leading reply/forward prefix, if it has one.
fn strip_prefix(subject: &str) -> Option<&str> {
    let colon = subject.find([':', '：'])?;
    let head = subject[..colon].trim_end();
    // "Re[2]" / "Re(2)": drop the counter.
    let word = head
        .strip_suffix([']', ')'])
        .and_then(|inner| inner.rsplit_once(['[', '(']))
        .filter(|(_, count)| !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()))
        .map_or(head, |(word, _)| word.trim_end());
    let word = word.to_lowercase();
    if !PREFIXES.contains(&word.as_str()) {
        return None;
    }
    let after = &subject[colon..];
    let after = after.trim_start_matches([':', '：']);
    Some(after.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_must_be_digits_in_brackets() {
        assert_eq!(subject_ticket_number("Order [#42] late"), Some(42));
        assert_eq!(subject_ticket_number("[#] [#x1] [#12"), None);
        assert_eq!(subject_ticket_number("[#1234567890123456789]"), None);
        assert_eq!(subject_ticket_number("Re: [#7] and [#8]"), Some(7));
    }

    #[test]
    fn a_prefix_needs_its_colon_and_a_known_word() {
        assert_eq!(strip_prefix("Re: x"), Some("x"));
        assert_eq!(strip_prefix("RE[2]: x"), Some("x"));
        assert_eq!(strip_prefix("Ответ: x"), Some("x"));
        assert_eq!(strip_prefix("Return policy: x"), None);
        assert_eq!(strip_prefix("Re x"), None);
    }
}
