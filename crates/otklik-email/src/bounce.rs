//! Bounces: delivery status notifications (RFC 3464) and the plainer mailer-daemon kind.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::address::{Mailbox, normalize_address, one_line};
use crate::automation::is_mailer_daemon;
use crate::inbound::{clean_message_id, raw_fields};

/// What a bounce says about a mail we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// Message-ID of our original, from the returned `message/rfc822` or
    /// `text/rfc822-headers` part (or, for plain bounces, a `Message-ID:` line in the text);
    /// without `<>`.
    pub original_message_id: Option<String>,
    /// The address that failed (`Final-Recipient`, `Original-Recipient` or Exim's
    /// `X-Failed-Recipients`).
    pub recipient: Option<String>,
    /// `Action: failed` or a 5.x.x status: do not retry, suppress the recipient.
    pub permanent: bool,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's words, e.g. `550 5.1.1 user unknown`.
    pub diagnostic: Option<String>,
}

/// Subject words of bounces that are not `multipart/report` (qmail, old Exim, Exchange).
const BOUNCE_SUBJECT_WORDS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status notification",
    "delivery failure",
    "delivery has failed",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "could not be delivered",
    "недостав",
    "не доставлено",
    "не удалось доставить",
];

const MAX_DIAGNOSTIC_CHARS: usize = 1000;

pub(crate) struct BounceInput<'a, 'x> {
    pub message: &'a Message<'x>,
    pub root_fields: &'a [(String, String)],
    pub from: Option<&'a Mailbox>,
    pub subject: &'a str,
    pub text: &'a str,
}

pub(crate) fn detect(input: &BounceInput<'_, '_>) -> Option<Bounce> {
    let message = input.message;
    let status_part = message.parts.iter().find(|part| {
        part.is_content_type("message", "delivery-status")
            || part.is_content_type("message", "global-delivery-status")
    });
    let is_report = message.root_part().is_content_type("multipart", "report")
        && message
            .root_part()
            .content_type()
            .and_then(|ct| ct.attribute("report-type"))
            .is_some_and(|report| report.eq_ignore_ascii_case("delivery-status"));
    let failed_recipient = field(input.root_fields, "x-failed-recipients")
        .and_then(|value| value.split(',').find_map(normalize_address));
    let returned_id = returned_message_id(message);

    if !is_report && status_part.is_none() {
        let from_daemon = input.from.is_some_and(is_mailer_daemon);
        let subject = input.subject.to_lowercase();
        let looks_like_bounce = failed_recipient.is_some()
            || returned_id.is_some()
            || BOUNCE_SUBJECT_WORDS
                .iter()
                .any(|word| subject.contains(word));
        if !(from_daemon && looks_like_bounce) {
            return None;
        }
        let delayed = ["delay", "warning", "задерж"]
            .iter()
            .any(|word| subject.contains(word));
        return Some(Bounce {
            original_message_id: returned_id.or_else(|| inline_message_id(input.text)),
            recipient: failed_recipient,
            permanent: !delayed,
            status: None,
            diagnostic: None,
        });
    }

    let report = status_part
        .map(|part| DeliveryStatus::read(part.contents()))
        .unwrap_or_default();
    let status = report.status.filter(|status| !status.is_empty());
    let action_failed = report
        .action
        .as_deref()
        .is_some_and(|action| action.eq_ignore_ascii_case("failed"));
    Some(Bounce {
        original_message_id: returned_id,
        recipient: report.recipient.or(failed_recipient),
        permanent: action_failed || status.as_deref().is_some_and(|s| s.starts_with('5')),
        status,
        diagnostic: report.diagnostic,
    })
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(field_name, _)| field_name.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The Message-ID of the returned original, from a `message/rfc822` part or a headers-only
/// part.
fn returned_message_id(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Message(returned) => returned.message_id().and_then(clean_message_id),
        _ if part.is_content_type("text", "rfc822-headers")
            || part.is_content_type("message", "global-headers") =>
        {
            MessageParser::new()
                .parse_headers(part.contents())
                .and_then(|headers| headers.message_id().and_then(clean_message_id))
        }
        _ => None,
    })
}

/// Plain bounces quote the original's headers in the text.
fn inline_message_id(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim_start();
        let name = line.get(..11)?;
        if !name.eq_ignore_ascii_case("message-id:") {
            return None;
        }
        let header = format!("{line}\r\n\r\n");
        MessageParser::new()
            .parse_headers(header.as_bytes())
            .and_then(|headers| headers.message_id().and_then(clean_message_id))
    })
}

/// The fields of a `message/delivery-status` body we use.
#[derive(Default)]
struct DeliveryStatus {
    recipient: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

impl DeliveryStatus {
    /// The body is one block of per-message fields, then a block per recipient, separated by
    /// empty lines; each block is read with mail-parser's header parser. The first failed
    /// recipient wins, else the first recipient.
    fn read(body: &[u8]) -> DeliveryStatus {
        let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
        let mut recipients: Vec<DeliveryStatus> = text
            .split("\n\n")
            .skip(1)
            .filter_map(|block| {
                let block = format!("{}\n\n", block.trim_matches('\n'));
                let parsed = MessageParser::new().parse_headers(block.as_bytes())?;
                let fields = raw_fields(parsed.raw_message(), parsed.headers());
                let after_type = |name: &str| {
                    field(&fields, name).map(|value| {
                        // "rfc822; a@b" and "smtp; 550 ...": the part after the type.
                        let value = value.split_once(';').map_or(value, |(_, rest)| rest);
                        one_line(value)
                    })
                };
                let recipient = after_type("final-recipient")
                    .or_else(|| after_type("original-recipient"))
                    .map(|address| normalize_address(&address).unwrap_or(address));
                let entry = DeliveryStatus {
                    recipient,
                    action: field(&fields, "action").map(one_line),
                    status: field(&fields, "status").map(|status| {
                        // "5.1.1 (user unknown)": keep the code.
                        one_line(status)
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    }),
                    diagnostic: after_type("diagnostic-code")
                        .map(|text| text.chars().take(MAX_DIAGNOSTIC_CHARS).collect()),
                };
                (entry.recipient.is_some() || entry.action.is_some() || entry.status.is_some())
                    .then_some(entry)
            })
            .collect();
        let failed = recipients.iter().position(|entry| {
            entry
                .action
                .as_deref()
                .is_some_and(|action| action.eq_ignore_ascii_case("failed"))
        });
        match failed {
            Some(index) => recipients.swap_remove(index),
            None if !recipients.is_empty() => recipients.swap_remove(0),
            None => DeliveryStatus::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_recipient_block_is_read() {
        let body = b"Reporting-MTA: dns; mx.example.net\r\n\r\n\
            Final-Recipient: rfc822; ok@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n\
            Final-Recipient: rfc822; Gone@Example.ORG\r\nAction: failed\r\nStatus: 5.1.1 (unknown)\r\n\
            Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>:\r\n  Recipient address rejected\r\n";
        let status = DeliveryStatus::read(body);
        assert_eq!(status.recipient.as_deref(), Some("Gone@example.org"));
        assert_eq!(status.action.as_deref(), Some("failed"));
        assert_eq!(status.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            status.diagnostic.as_deref(),
            Some("550 5.1.1 <gone@example.org>: Recipient address rejected")
        );
    }

    #[test]
    fn an_inline_message_id_line_is_found() {
        let text = "Hi. This is the qmail-send program.\n\n--- copy of the message\n\
            Return-Path: <support@shop.test>\nMessage-ID: <abc.123@shop.test>\nSubject: x\n";
        assert_eq!(
            inline_message_id(text).as_deref(),
            Some("abc.123@shop.test")
        );
        assert_eq!(inline_message_id("no headers here"), None);
    }
}
