//! Otklik's email rules, with no I/O.
//!
//! - [`parse_inbound`] turns raw RFC 5322 bytes into an [`InboundEmail`] within [`ParseLimits`],
//!   or into a [`ParseError`] whose text is the quarantine reason an admin reads.
//! - [`Automation`] says whether a mail was sent by a machine (RFC 3834), so we never auto-reply
//!   to it; [`Bounce`] carries what a delivery status notification says about our original.
//! - Threading keys: our outbound Message-IDs and plus addresses carry a [`ReplyTokenKey`]-signed
//!   token naming the ticket; [`subject_ticket_number`] finds our `[#1234]` subject marker.
//! - Display helpers: [`sanitize_html`], [`html_to_text`] and [`fold_quotes`].
//! - [`OutboundEmail::to_bytes`] builds outbound mail with a typed builder.
//!
//! Mail parsing is done by `mail-parser`, building by `mail-builder`, sanitising by `ammonia`,
//! HTML to text by `html2text`. This crate adds the limits, the rules and the glue.

mod address;
mod automation;
mod bounce;
pub mod corpora;
mod html;
mod inbound;
mod limits;
mod outbound;
mod quotes;
mod threading;

pub use address::{Mailbox, parse_address};
pub use automation::{AutoKind, Automation};
pub use bounce::Bounce;
pub use html::{html_to_text, sanitize_html, text_to_html};
pub use inbound::{InboundAttachment, InboundEmail, parse_inbound};
pub use limits::{ParseError, ParseLimits};
pub use outbound::{BuildError, LOOP_HEADER, OutboundAttachment, OutboundEmail};
pub use quotes::{FoldedText, fold_quotes};
pub use threading::{
    ReplyTokenKey, is_own_message_id, outbound_message_id, plus_address, reply_subject,
    subject_ticket_number, ticket_of_address, ticket_of_message_id,
};
