//! Mailboxes: an address we checked and an optional display name.

use mail_parser::{Addr, MessageParser};

/// RFC 5321 caps a path at 256 octets including the angle brackets.
const MAX_ADDRESS_BYTES: usize = 254;
const MAX_DOMAIN_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;
/// Display names longer than this are cut; nobody needs more and it bounds what we store.
const MAX_NAME_CHARS: usize = 200;

/// A checked email address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// `local@domain` with the domain lowercased; never contains whitespace or control
    /// characters, so it is safe in a header.
    pub address: String,
    /// The display name, RFC 2047-decoded, on one line; `None` when absent or blank.
    pub name: Option<String>,
}

impl Mailbox {
    /// Checks an address and cleans a display name; `None` when the address is not usable.
    pub fn new(address: &str, name: Option<&str>) -> Option<Mailbox> {
        Some(Mailbox {
            address: normalize_address(address)?,
            name: name.and_then(clean_display_name),
        })
    }

    pub(crate) fn from_addr(addr: &Addr<'_>) -> Option<Mailbox> {
        Mailbox::new(addr.address.as_deref()?, addr.name.as_deref())
    }

    /// The part after the `@`, lowercase.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }
}

/// Parses `"Name <a@b>"`, `"<a@b>"` or `"a@b"` (RFC 2047 names are decoded). `None` for anything
/// else, for more than one address, and for text with line breaks (which could smuggle headers).
pub fn parse_address(text: &str) -> Option<Mailbox> {
    if text.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return None;
    }
    // mail-parser's own address grammar, fed through a one-header message.
    let header = format!("From: {text}\r\n\r\n");
    let message = MessageParser::new().parse_headers(header.as_bytes())?;
    let address = message.from()?;
    let mut addrs = address.iter();
    let first = addrs.next()?;
    if addrs.next().is_some() {
        return None;
    }
    Mailbox::from_addr(first)
}

/// Checks `local@domain` and lowercases the domain. Lenient on the local part (mail servers
/// accept more than RFC 5321 says) but strict on what could break a header or a path.
pub(crate) fn normalize_address(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(raw);
    if raw.is_empty()
        || raw.len() > MAX_ADDRESS_BYTES
        || raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
    {
        return None;
    }
    let (local, domain) = raw.rsplit_once('@')?;
    if local.is_empty()
        || local.chars().any(|c| {
            matches!(
                c,
                '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '"' | '\\' | '@'
            )
        })
    {
        return None;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
    if !is_valid_domain(&domain) {
        return None;
    }
    Some(format!("{local}@{domain}"))
}

fn is_valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= MAX_DOMAIN_BYTES
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_BYTES
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// Zero-width and bidi controls let a name or address look like something it is not.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// One line of text fit for a header or a list: control and invisible characters become
/// spaces, runs of whitespace collapse, ends are trimmed.
pub(crate) fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control() || is_invisible(c))
        .filter(|word| !word.is_empty())
    {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    line
}

fn clean_display_name(name: &str) -> Option<String> {
    let name = one_line(name);
    let name = name.trim_matches(|c| c == '"' || c == '\'').trim();
    if name.is_empty() {
        return None;
    }
    Some(name.chars().take(MAX_NAME_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_address_keeps_its_name_and_lowercases_the_domain() {
        let mailbox = parse_address("Ivan Petrov <Ivan.Petrov@Example.COM>").unwrap();
        assert_eq!(mailbox.address, "Ivan.Petrov@example.com");
        assert_eq!(mailbox.name.as_deref(), Some("Ivan Petrov"));
        assert_eq!(mailbox.domain(), "example.com");
    }

    #[test]
    fn a_bare_address_has_no_name() {
        let mailbox = parse_address("support@shop.test").unwrap();
        assert_eq!(mailbox.address, "support@shop.test");
        assert_eq!(mailbox.name, None);
        assert_eq!(parse_address("<support@shop.test>").unwrap().name, None);
    }

    #[test]
    fn an_encoded_word_name_is_decoded() {
        let mailbox = parse_address("=?UTF-8?B?0JzQsNCz0LDQt9C40L0=?= <shop@example.ru>").unwrap();
        assert_eq!(mailbox.name.as_deref(), Some("Магазин"));
    }

    #[test]
    fn text_that_is_not_one_address_is_refused() {
        for text in [
            "",
            "no at sign",
            "a@",
            "@b.c",
            "a@b..c",
            "a@-b.c",
            "a@b.c, d@e.f",
            "Name <a@b.c>\r\nBcc: evil@x.y",
            "a\u{202e}b@c.d",
            "a b@c.d",
        ] {
            assert_eq!(parse_address(text), None, "{text:?}");
        }
    }

    #[test]
    fn one_line_folds_breaks_and_invisible_characters_into_single_spaces() {
        assert_eq!(one_line(" a\r\n\tb\u{200b}c  "), "a b c");
    }
}
