//! Building outbound mail and reading it back (with mail-parser and with our own parser).

use mail_parser::{MessageParser, MimeHeaders};
use otklik_email::{
    BuildError, LOOP_HEADER, Mailbox, OutboundAttachment, OutboundEmail, ParseLimits, parse_inbound,
};

fn mailbox(address: &str, name: Option<&str>) -> Mailbox {
    Mailbox::new(address, name).expect("valid address")
}

fn reply() -> OutboundEmail {
    OutboundEmail {
        from: mailbox("support@shop.test", Some("Магазин «Ромашка»")),
        to: vec![mailbox("ivan@example.ru", Some("Иван Петров"))],
        cc: vec![mailbox("boss@example.ru", None)],
        reply_to: Some(mailbox("support+token@shop.test", None)),
        subject: "Re: Где мой заказ? [#42]".to_owned(),
        message_id: "0190e3a4000070008000000000000001.abc@shop.test".to_owned(),
        in_reply_to: Some("CAF=reply.1@mail.gmail.com".to_owned()),
        references: vec![
            "first.1@shop.test".to_owned(),
            "CAF=reply.1@mail.gmail.com".to_owned(),
        ],
        date: "2024-03-11T07:00:00Z".parse().unwrap(),
        text: "Здравствуйте, Иван!\nЗаказ отправлен.".to_owned(),
        html: Some("<p>Здравствуйте, Иван!</p><p>Заказ <b>отправлен</b>.</p>".to_owned()),
        attachments: vec![OutboundAttachment {
            file_name: "Накладная №5.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            bytes: b"%PDF-1.4 fake".to_vec(),
        }],
        automatic: false,
    }
}

fn addresses(address: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    address
        .map(|address| {
            address
                .iter()
                .filter_map(|addr| addr.address.as_deref().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_reply_reads_back_with_its_headers_threading_bodies_and_attachment() {
    let bytes = reply().to_bytes().unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(message.subject(), Some("Re: Где мой заказ? [#42]"));
    assert_eq!(
        message.message_id(),
        Some("0190e3a4000070008000000000000001.abc@shop.test")
    );
    assert_eq!(
        message.in_reply_to().as_text(),
        Some("CAF=reply.1@mail.gmail.com")
    );
    let references: Vec<&str> = message
        .references()
        .as_text_list()
        .unwrap()
        .iter()
        .map(|id| id.as_ref())
        .collect();
    assert_eq!(
        references,
        ["first.1@shop.test", "CAF=reply.1@mail.gmail.com"]
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name.as_deref(), Some("Магазин «Ромашка»"));
    assert_eq!(addresses(message.to()), ["ivan@example.ru"]);
    assert_eq!(
        message.to().unwrap().first().unwrap().name.as_deref(),
        Some("Иван Петров")
    );
    assert_eq!(addresses(message.cc()), ["boss@example.ru"]);
    assert_eq!(addresses(message.reply_to()), ["support+token@shop.test"]);
    assert_eq!(message.date().unwrap().to_timestamp(), 1_710_140_400);
    assert_eq!(
        message.header_raw(LOOP_HEADER).map(str::trim),
        Some("shop.test")
    );
    assert!(message.header("Auto-Submitted").is_none());

    assert!(message.root_part().is_content_type("multipart", "mixed"));
    assert_eq!(
        message.body_text(0).as_deref(),
        Some("Здравствуйте, Иван!\nЗаказ отправлен.")
    );
    assert!(message.body_html(0).unwrap().contains("<b>отправлен</b>"));
    let alternative = message
        .parts
        .iter()
        .any(|part| part.is_content_type("multipart", "alternative"));
    assert!(alternative, "text and html are alternatives");
    let attachment = message.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("Накладная №5.pdf"));
    assert!(attachment.is_content_type("application", "pdf"));
    assert_eq!(attachment.contents(), b"%PDF-1.4 fake");
    assert!(
        bytes
            .windows(2)
            .all(|pair| pair[1] != b'\n' || pair[0] == b'\r'),
        "CRLF only"
    );
}

#[test]
fn our_own_parser_reads_the_reply_back() {
    let email = parse_inbound(&reply().to_bytes().unwrap(), &ParseLimits::default()).unwrap();
    assert_eq!(
        email.message_id.as_deref(),
        Some("0190e3a4000070008000000000000001.abc@shop.test")
    );
    assert_eq!(email.subject, "Re: Где мой заказ? [#42]");
    assert_eq!(email.text, "Здравствуйте, Иван!\nЗаказ отправлен.");
    assert_eq!(email.attachments[0].file_name, "Накладная №5.pdf");
    assert_eq!(email.otklik_loop.as_deref(), Some("shop.test"));
    assert!(email.automation.may_auto_reply());
}

#[test]
fn an_automatic_mail_says_so_and_is_not_answered_by_us_either() {
    let mut acknowledgement = reply();
    acknowledgement.automatic = true;
    let bytes = acknowledgement.to_bytes().unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        message
            .header_raw("X-Auto-Response-Suppress")
            .map(str::trim),
        Some("All")
    );
    assert_eq!(
        message.header_raw("Precedence").map(str::trim),
        Some("bulk")
    );
    let email = parse_inbound(&bytes, &ParseLimits::default()).unwrap();
    assert!(!email.automation.may_auto_reply());
}

#[test]
fn html_only_content_still_gets_a_text_part() {
    let mut mail = reply();
    mail.text = String::new();
    mail.attachments.clear();
    let bytes = mail.to_bytes().unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert!(
        message
            .root_part()
            .is_content_type("multipart", "alternative")
    );
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("Здравствуйте, Иван!") && text.contains("отправлен"),
        "{text}"
    );
}

#[test]
fn names_and_subjects_with_line_breaks_cannot_add_headers_or_recipients() {
    let mut mail = reply();
    mail.cc.clear();
    mail.reply_to = None;
    mail.to = vec![Mailbox {
        address: "ivan@example.ru".to_owned(),
        name: Some("Ivan\r\nBcc: evil@x.test".to_owned()),
    }];
    mail.from.name = Some("Shop\nTo: evil2@x.test".to_owned());
    mail.subject = "Hello\r\nBcc: evil3@x.test\r\n\r\nInjected body".to_owned();
    mail.attachments[0].file_name = "a.pdf\"\r\nContent-Type: text/html".to_owned();
    let bytes = mail.to_bytes().unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(addresses(message.to()), ["ivan@example.ru"]);
    assert!(message.cc().is_none());
    assert!(message.bcc().is_none());
    assert!(message.header("Bcc").is_none());
    assert_eq!(addresses(message.from()), ["support@shop.test"]);
    assert_eq!(
        message.subject(),
        Some("Hello Bcc: evil3@x.test Injected body")
    );
    let raw = String::from_utf8_lossy(&bytes);
    for line in raw.lines() {
        assert!(
            !line.to_ascii_lowercase().starts_with("bcc:"),
            "a Bcc header line appeared: {line:?}"
        );
    }
    let attachment = message.attachments().next().unwrap();
    assert!(attachment.is_content_type("application", "pdf"));
}

#[test]
fn encoded_word_lookalikes_in_names_stay_names() {
    let mut mail = reply();
    mail.cc.clear();
    mail.to = vec![Mailbox {
        address: "ivan@example.ru".to_owned(),
        name: Some("=?utf-8?q?x=0D=0ABcc:_evil@x.test?=".to_owned()),
    }];
    let message_bytes = mail.to_bytes().unwrap();
    let email = parse_inbound(&message_bytes, &ParseLimits::default()).unwrap();
    assert_eq!(email.to.len(), 1);
    assert_eq!(email.to[0].address, "ivan@example.ru");
    assert!(email.cc.is_empty());
    let name = email.to[0].name.as_deref().unwrap_or_default();
    assert!(!name.contains('\r') && !name.contains('\n'), "{name:?}");
}

#[test]
fn addresses_and_ids_that_could_break_a_header_are_refused() {
    let mut bad_to = reply();
    bad_to.to = vec![Mailbox {
        address: "ivan@example.ru\r\nBcc: evil@x.test".to_owned(),
        name: None,
    }];
    assert!(matches!(
        bad_to.to_bytes(),
        Err(BuildError::InvalidAddress { field: "To", .. })
    ));

    let mut bad_id = reply();
    bad_id.in_reply_to = Some("a@b>\r\nBcc: evil@x.test".to_owned());
    assert!(matches!(
        bad_id.to_bytes(),
        Err(BuildError::InvalidMessageId {
            field: "In-Reply-To",
            ..
        })
    ));

    let mut no_domain = reply();
    no_domain.message_id = "no-at-sign".to_owned();
    assert!(matches!(
        no_domain.to_bytes(),
        Err(BuildError::InvalidMessageId {
            field: "Message-ID",
            ..
        })
    ));

    let mut bad_type = reply();
    bad_type.attachments[0].content_type = "text/html\r\nX-Evil: 1".to_owned();
    assert!(matches!(
        bad_type.to_bytes(),
        Err(BuildError::InvalidContentType { .. })
    ));

    let mut nobody = reply();
    nobody.to.clear();
    nobody.cc.clear();
    assert!(matches!(nobody.to_bytes(), Err(BuildError::NoRecipients)));
    assert_eq!(
        BuildError::NoRecipients.to_string(),
        "the mail has no recipient in To or Cc"
    );
}

#[test]
fn attachment_names_are_made_safe_before_they_are_written() {
    let mut mail = reply();
    mail.attachments[0].file_name = "../../\u{202e}fdp.exe".to_owned();
    let bytes = mail.to_bytes().unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        message.attachments().next().unwrap().attachment_name(),
        Some("fdp.exe")
    );
}
