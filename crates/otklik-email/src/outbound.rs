//! Outbound mail, built with mail-builder's typed headers: values are encoded by the builder,
//! never pasted into header text.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use otklik_domain::attachment::safe_file_name;

use crate::address::{Mailbox, normalize_address, one_line};
use crate::html::html_to_text;
use crate::inbound::clean_message_id;

/// The header every mail we send carries, naming the sending domain, so our own mail coming
/// back in is recognised.
pub const LOOP_HEADER: &str = "X-Otklik-Loop";

/// A mail to send. Its Message-ID is fixed when it is queued (see
/// [`outbound_message_id`](crate::outbound_message_id)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundEmail {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    /// Line breaks and control characters become spaces.
    pub subject: String,
    /// Without `<>`; its domain (after `@`) is written in [`LOOP_HEADER`].
    pub message_id: String,
    /// Without `<>`.
    pub in_reply_to: Option<String>,
    /// Without `<>`.
    pub references: Vec<String>,
    pub date: jiff::Timestamp,
    /// The text part; when empty and `html` is set, made from the HTML.
    pub text: String,
    /// The HTML part, sent as the alternative to `text`.
    pub html: Option<String>,
    pub attachments: Vec<OutboundAttachment>,
    /// An automatic mail (acknowledgement, notification): adds `Auto-Submitted: auto-replied`,
    /// `X-Auto-Response-Suppress: All` and `Precedence: bulk`, so other systems do not answer.
    pub automatic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAttachment {
    /// Made safe with `otklik_domain::attachment::safe_file_name` before it is written.
    pub file_name: String,
    /// `type/subtype`; parameters after `;` are ignored.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why a mail could not be built. Nothing here is worth retrying: fix the data.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the {field} address {value:?} is not a valid email address")]
    InvalidAddress { field: &'static str, value: String },
    #[error("the {field} message id {value:?} is not a valid Message-ID")]
    InvalidMessageId { field: &'static str, value: String },
    #[error("the mail has no recipient in To or Cc")]
    NoRecipients,
    #[error("attachment {file_name:?} has an invalid content type {content_type:?}")]
    InvalidContentType {
        file_name: String,
        content_type: String,
    },
    #[error("could not write the mail: {0}")]
    Write(#[from] std::io::Error),
}

impl OutboundEmail {
    /// The RFC 5322 bytes, CRLF line ends, ready for SMTP.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BuildError> {
        if self.to.is_empty() && self.cc.is_empty() {
            return Err(BuildError::NoRecipients);
        }
        let message_id = checked_id("Message-ID", &self.message_id)?;
        let loop_domain = message_id
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .ok_or_else(|| BuildError::InvalidMessageId {
                field: "Message-ID",
                value: self.message_id.clone(),
            })?;

        let mut builder = MessageBuilder::new()
            .from(address("From", &self.from)?)
            .subject(one_line(&self.subject))
            .message_id(message_id)
            .date(Date::new(self.date.as_second()))
            .header(LOOP_HEADER, Raw::new(loop_domain));
        if !self.to.is_empty() {
            builder = builder.to(addresses("To", &self.to)?);
        }
        if !self.cc.is_empty() {
            builder = builder.cc(addresses("Cc", &self.cc)?);
        }
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(address("Reply-To", reply_to)?);
        }
        if let Some(in_reply_to) = &self.in_reply_to {
            builder = builder.in_reply_to(checked_id("In-Reply-To", in_reply_to)?);
        }
        if !self.references.is_empty() {
            let references = self
                .references
                .iter()
                .map(|id| checked_id("References", id))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.references(MessageId::from(references));
        }
        if self.automatic {
            builder = builder
                .header("Auto-Submitted", Raw::new("auto-replied"))
                .header("X-Auto-Response-Suppress", Raw::new("All"))
                .header("Precedence", Raw::new("bulk"));
        }

        let text = match (&self.html, self.text.trim().is_empty()) {
            (Some(html), true) => html_to_text(html),
            _ => self.text.clone(),
        };
        builder = builder.text_body(text);
        if let Some(html) = &self.html {
            builder = builder.html_body(html.as_str());
        }
        for attachment in &self.attachments {
            let file_name = safe_file_name(&attachment.file_name);
            let content_type = checked_content_type(&attachment.content_type).ok_or_else(|| {
                BuildError::InvalidContentType {
                    file_name: file_name.clone(),
                    content_type: attachment.content_type.clone(),
                }
            })?;
            builder = builder.attachment(content_type, file_name, attachment.bytes.as_slice());
        }
        Ok(builder.write_to_vec()?)
    }
}

fn address<'a>(field: &'static str, mailbox: &'a Mailbox) -> Result<Address<'a>, BuildError> {
    let checked =
        normalize_address(&mailbox.address).ok_or_else(|| BuildError::InvalidAddress {
            field,
            value: mailbox.address.clone(),
        })?;
    let name = mailbox
        .name
        .as_deref()
        .map(one_line)
        .filter(|name| !name.is_empty());
    Ok(Address::new_address(name, checked))
}

fn addresses<'a>(field: &'static str, mailboxes: &'a [Mailbox]) -> Result<Address<'a>, BuildError> {
    let list = mailboxes
        .iter()
        .map(|mailbox| address(field, mailbox))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Address::new_list(list))
}

/// A Message-ID in the form `left@right`, with nothing that could end the header.
fn checked_id(field: &'static str, id: &str) -> Result<String, BuildError> {
    clean_message_id(id)
        .filter(|id| id.contains('@') && id.is_ascii())
        .ok_or_else(|| BuildError::InvalidMessageId {
            field,
            value: id.to_owned(),
        })
}

/// `type/subtype` made of RFC 2045 token characters, lowercase.
fn checked_content_type(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let is_token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    (is_token(kind) && is_token(subtype)).then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_reduced_to_type_and_subtype() {
        assert_eq!(
            checked_content_type("Application/PDF; name=x").as_deref(),
            Some("application/pdf")
        );
        assert_eq!(checked_content_type("text/plain\r\nBcc: x@y.z"), None);
        assert_eq!(checked_content_type("pdf"), None);
        assert_eq!(checked_content_type("a/b/c"), None);
    }
}
