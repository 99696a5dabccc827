//! Inbound mail: raw bytes in, the fields Otklik stores and acts on out.

use mail_parser::{
    Encoding, Header, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};
use otklik_domain::attachment::safe_file_name;
use sha2::{Digest, Sha256};

use crate::address::{Mailbox, normalize_address, one_line};
use crate::automation::{self, Automation};
use crate::bounce::{self, Bounce, BounceInput};
use crate::html::html_to_text;
use crate::limits::{self, DismantleOnDrop, ParseError, ParseLimits};
use crate::outbound::LOOP_HEADER;

/// Message-IDs longer than this are not ids but payloads; they are ignored.
const MAX_MESSAGE_ID_BYTES: usize = 512;
/// Only the newest `References` are kept: threading needs the recent ones, and this bounds
/// what we store.
const MAX_REFERENCES: usize = 100;

/// One parsed inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEmail {
    /// Without `<>`, trimmed; `None` when missing or unusable (whitespace, control
    /// characters, over 512 bytes).
    pub message_id: Option<String>,
    /// `"mid:" + message_id`, or `"sha256:" + hex of the raw bytes` without a Message-ID.
    pub dedup_key: String,
    /// Without `<>`.
    pub in_reply_to: Vec<String>,
    /// Without `<>`, in header order (oldest first), at most the newest 100.
    pub references: Vec<String>,
    /// The first valid `From` mailbox, its RFC 2047 display name decoded.
    pub from: Option<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// `Delivered-To`, `X-Original-To` and `Envelope-To` addresses, in header order, without
    /// duplicates: where plus-address reply tokens are found.
    pub delivered_to: Vec<String>,
    /// The first `Return-Path`; `Some("")` is the null sender `<>`.
    pub return_path: Option<String>,
    /// Decoded, on one line.
    pub subject: String,
    pub date: Option<jiff::Timestamp>,
    /// The text/plain body, else text made from the HTML body; LF line ends, no NUL.
    pub text: String,
    /// The HTML body as decoded, NOT sanitised: sanitise with
    /// [`sanitize_html`](crate::sanitize_html) once attachments have URLs.
    pub html: Option<String>,
    pub attachments: Vec<InboundAttachment>,
    pub automation: Automation,
    /// For delivery status notifications and obvious mailer-daemon bounces.
    pub bounce: Option<Bounce>,
    /// The value of our own loop header ([`LOOP_HEADER`]) when the mail carries it: mail we
    /// sent has come back (a forward, an alias, a misconfigured mailbox).
    pub otklik_loop: Option<String>,
}

/// An attachment or inline part, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAttachment {
    /// The sender's file name (RFC 2231/2047 decoded) made safe to show and offer for download
    /// by `otklik_domain::attachment::safe_file_name`; `"attachment"` (or `"message.eml"`
    /// for an attached mail) when there is none. Never a storage path.
    pub file_name: String,
    /// `type/subtype` as the sender declared it, lowercase, without parameters; the sender's
    /// claim, to be checked against sniffed bytes before serving.
    pub content_type: String,
    /// Without `<>`; what `cid:` URLs in the HTML refer to.
    pub content_id: Option<String>,
    /// Meant to be shown in the body (`Content-Disposition: inline`, or a Content-ID without
    /// a disposition) rather than listed.
    pub inline: bool,
    /// Decoded bytes. Text parts are already converted to UTF-8 by the parser; an attached
    /// mail is its raw bytes.
    pub bytes: Vec<u8>,
}

/// Parses a raw message within `limits`. Never panics on any input; refusals say why.
pub fn parse_inbound(raw: &[u8], limits: &ParseLimits) -> Result<InboundEmail, ParseError> {
    limits::precheck(raw, limits)?;
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ParseError::NotAnEmail("no header fields found".to_owned()))?;
    let message = DismantleOnDrop(message);
    limits::check_structure(&message, limits)?;

    // mail-parser takes any "name: value" line for a header; refuse input where no field is
    // one of the standard ones (random bytes, a text file), but keep bare MIME entities.
    if !message
        .headers()
        .iter()
        .any(|header| !matches!(header.name, HeaderName::Other(_)))
    {
        return Err(ParseError::NotAnEmail(
            "no standard header field (From, To, Subject, Date, Content-Type, ...) found"
                .to_owned(),
        ));
    }
    let root_fields = raw_fields(message.raw_message(), message.headers());

    let message_id = message.message_id().and_then(clean_message_id);
    let dedup_key = match &message_id {
        Some(id) => format!("mid:{id}"),
        None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    };
    let mut references = message_ids(message.references());
    if references.len() > MAX_REFERENCES {
        references.drain(..references.len() - MAX_REFERENCES);
    }
    let from = message
        .from()
        .and_then(|address| address.iter().find_map(Mailbox::from_addr));
    let subject = message.subject().map(one_line).unwrap_or_default();
    let (text, html) = bodies(&message);
    let is_report = message.root_part().is_content_type("multipart", "report");
    let automation = automation::classify(&root_fields, from.as_ref(), is_report);
    let bounce = bounce::detect(&BounceInput {
        message: &message,
        root_fields: &root_fields,
        from: from.as_ref(),
        subject: &subject,
        text: &text,
    });

    Ok(InboundEmail {
        dedup_key,
        message_id,
        in_reply_to: message_ids(message.in_reply_to()),
        references,
        reply_to: mailboxes(message.header_values("Reply-To")),
        to: mailboxes(message.header_values("To")),
        cc: mailboxes(message.header_values("Cc")),
        delivered_to: delivered_to(&root_fields),
        return_path: return_path(&root_fields),
        date: message
            .date()
            .filter(|date| date.is_valid())
            .and_then(|date| jiff::Timestamp::from_second(date.to_timestamp()).ok()),
        attachments: message
            .attachments()
            .map(|part| attachment(part, message.raw_message()))
            .collect(),
        otklik_loop: root_fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(LOOP_HEADER))
            .map(|(_, value)| one_line(value)),
        from,
        subject,
        text,
        html,
        automation,
        bounce,
    })
}

/// Header fields as (name, raw value with line folds removed), in order. Raw, because the
/// classification rules are about what the sender wrote, whatever mail-parser makes of it.
pub(crate) fn raw_fields(raw: &[u8], headers: &[Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|header| {
            let value = raw
                .get(header.offset_start() as usize..header.offset_end() as usize)
                .unwrap_or_default();
            let value: String = String::from_utf8_lossy(value)
                .chars()
                .filter(|&c| c != '\r' && c != '\n')
                .collect();
            (header.name().to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// Strips `<>` and refuses ids that cannot be a Message-ID.
pub(crate) fn clean_message_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id).trim();
    (!id.is_empty()
        && id.len() <= MAX_MESSAGE_ID_BYTES
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>'))
    .then(|| id.to_owned())
}

fn message_ids(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(ids) => ids.iter().map(|id| id.as_ref()).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().filter_map(clean_message_id).collect()
}

/// Every valid mailbox of every occurrence of a header, without duplicates.
fn mailboxes<'a>(values: impl Iterator<Item = &'a HeaderValue<'a>>) -> Vec<Mailbox> {
    let mut found: Vec<Mailbox> = Vec::new();
    for address in values.filter_map(HeaderValue::as_address) {
        for mailbox in address.iter().filter_map(Mailbox::from_addr) {
            if !found.iter().any(|seen| seen.address == mailbox.address) {
                found.push(mailbox);
            }
        }
    }
    found
}

fn delivered_to(fields: &[(String, String)]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (_, value) in fields.iter().filter(|(name, _)| {
        ["delivered-to", "x-original-to", "envelope-to"]
            .iter()
            .any(|wanted| name.eq_ignore_ascii_case(wanted))
    }) {
        // Envelope-To may list several, comma-separated.
        for address in value.split(',').filter_map(normalize_address) {
            if !found.contains(&address) {
                found.push(address);
            }
        }
    }
    found
}

fn return_path(fields: &[(String, String)]) -> Option<String> {
    let (_, value) = fields
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("return-path"))?;
    if automation::is_null_path(value) {
        return Some(String::new());
    }
    normalize_address(value)
}

/// The text and HTML bodies, from the parts mail-parser chose as the message body.
fn bodies(message: &mail_parser::Message<'_>) -> (String, Option<String>) {
    let texts: Vec<String> = message
        .text_bodies()
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(clean_text(text)),
            PartType::Html(html) => Some(clean_text(&html_to_text(html))),
            _ => None,
        })
        .filter(|text| !text.trim().is_empty())
        .collect();
    let htmls: Vec<String> = message
        .html_bodies()
        .filter_map(|part| match &part.body {
            PartType::Html(html) => Some(html.replace('\0', "")),
            _ => None,
        })
        .collect();
    let html = (!htmls.is_empty()).then(|| htmls.join("\n"));
    let mut text = texts.join("\n\n");
    if text.is_empty()
        && let Some(html) = &html
    {
        text = clean_text(&html_to_text(html));
    }
    (text, html)
}

/// LF line ends, and no NUL (PostgreSQL text cannot hold it).
fn clean_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r'], "\n")
        .replace('\0', "")
}

fn attachment(part: &MessagePart<'_>, raw: &[u8]) -> InboundAttachment {
    let is_message = matches!(part.body, PartType::Message(_));
    let content_type = part.content_type().map_or_else(
        || {
            match part.body {
                PartType::Text(_) => "text/plain",
                PartType::Html(_) => "text/html",
                PartType::Message(_) => "message/rfc822",
                _ => "application/octet-stream",
            }
            .to_owned()
        },
        |ct| match ct.subtype() {
            Some(subtype) => format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
    );
    let file_name = match part.attachment_name() {
        Some(name) => safe_file_name(name),
        None if is_message => "message.eml".to_owned(),
        None => safe_file_name(""),
    };
    let content_id = part.content_id().and_then(clean_message_id);
    let disposition = part.content_disposition();
    let inline = match disposition {
        Some(disposition) => disposition.is_inline(),
        None => content_id.is_some() || matches!(part.body, PartType::InlineBinary(_)),
    };
    let bytes = match &part.body {
        // An attached mail keeps its own bytes, as sent; an encoded one (against RFC 2046, but
        // it happens) has been decoded by the parser into its own buffer.
        PartType::Message(_) if part.encoding == Encoding::None => raw
            .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
            .unwrap_or_default()
            .to_vec(),
        PartType::Message(nested) => nested.raw_message().to_vec(),
        _ => part.contents().to_vec(),
    };
    InboundAttachment {
        file_name,
        content_type,
        content_id,
        inline,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_lose_their_brackets_and_junk_is_refused() {
        assert_eq!(clean_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(clean_message_id("a b@c"), None);
        assert_eq!(clean_message_id("<>"), None);
        assert_eq!(clean_message_id(&"x".repeat(600)), None);
    }
}
