//! Parsing inbound mail: charsets, addresses, threading headers, bodies, attachments,
//! automation and bounces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use encoding_rs::{Encoding, ISO_8859_5, KOI8_R, WINDOWS_1251};
use otklik_email::{AutoKind, InboundEmail, ParseLimits, parse_inbound};
use sha2::{Digest, Sha256};

fn parse(raw: impl AsRef<[u8]>) -> InboundEmail {
    parse_inbound(raw.as_ref(), &ParseLimits::default()).expect("parses")
}

fn encode(encoding: &'static Encoding, text: &str) -> Vec<u8> {
    let (bytes, _, had_unmappable) = encoding.encode(text);
    assert!(!had_unmappable, "{text:?} fits {}", encoding.name());
    bytes.into_owned()
}

/// An RFC 2047 B encoded-word.
fn encoded_word(encoding: &'static Encoding, text: &str) -> String {
    format!(
        "=?{}?B?{}?=",
        encoding.name(),
        STANDARD.encode(encode(encoding, text))
    )
}

/// An RFC 2231 extended parameter value: charset''percent-encoded.
fn rfc2231(encoding: &'static Encoding, text: &str) -> String {
    let encoded: String = encode(encoding, text)
        .iter()
        .map(|byte| format!("%{byte:02X}"))
        .collect();
    format!("{}''{encoded}", encoding.name())
}

#[test]
fn russian_in_koi8_r_windows_1251_and_iso_8859_5_comes_out_right() {
    let mut raw = Vec::new();
    raw.extend_from_slice(
        format!(
            "From: {} <ivan@example.ru>\r\nTo: support@shop.test\r\nSubject: {}\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n\
             --xyz\r\nContent-Type: text/plain; charset=windows-1251\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n",
            encoded_word(WINDOWS_1251, "Иван Петров"),
            encoded_word(KOI8_R, "Заказ 123 не пришёл"),
        )
        .as_bytes(),
    );
    raw.extend(encode(
        WINDOWS_1251,
        "Здравствуйте! Где мой заказ?\r\nСпасибо, Иван",
    ));
    raw.extend_from_slice(
        format!(
            "\r\n--xyz\r\nContent-Type: application/pdf\r\n\
             Content-Disposition: attachment; filename*={}\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n\
             --xyz\r\nContent-Type: text/plain; charset=koi8-r; name=\"{}\"\r\n\
             Content-Disposition: attachment\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            rfc2231(ISO_8859_5, "Счёт №5.pdf"),
            encoded_word(KOI8_R, "Заметки.txt"),
        )
        .as_bytes(),
    );
    raw.extend(encode(KOI8_R, "Привет из KOI8-R"));
    raw.extend_from_slice(b"\r\n--xyz--\r\n");

    let email = parse(&raw);
    assert_eq!(email.subject, "Заказ 123 не пришёл");
    let from = email.from.expect("from");
    assert_eq!(from.name.as_deref(), Some("Иван Петров"));
    assert_eq!(from.address, "ivan@example.ru");
    assert_eq!(email.text, "Здравствуйте! Где мой заказ?\nСпасибо, Иван");
    let names: Vec<&str> = email
        .attachments
        .iter()
        .map(|attachment| attachment.file_name.as_str())
        .collect();
    assert_eq!(names, ["Счёт №5.pdf", "Заметки.txt"]);
    assert_eq!(email.attachments[0].bytes, b"%PDF-1.4");
    assert_eq!(email.attachments[0].content_type, "application/pdf");
    assert_eq!(
        String::from_utf8(email.attachments[1].bytes.clone()).unwrap(),
        "Привет из KOI8-R"
    );
}

#[test]
fn a_gmail_style_reply_yields_its_threading_headers_and_addresses() {
    let raw = "Delivered-To: support+abc@shop.test\r\n\
        Delivered-To: support@shop.test\r\n\
        X-Original-To: Support@Shop.Test\r\n\
        Return-Path: <ivan@example.ru>\r\n\
        Message-ID: <CAF=reply.1@mail.gmail.com>\r\n\
        In-Reply-To: <first.2@shop.test>\r\n\
        References: <first.1@shop.test>\r\n <first.2@shop.test>\r\n\
        From: \"Ivan\" <ivan@Example.RU>\r\n\
        Reply-To: Ivan Home <ivan@home.example>\r\n\
        To: Shop Support <support@shop.test>, sales@shop.test\r\n\
        Cc: Boss: boss@example.ru, Ann <ann@example.ru>;, not an address\r\n\
        Date: Mon, 11 Mar 2024 10:00:00 +0300\r\n\
        Subject: Re: Order [#42]\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\n\
        Thanks!\r\n\r\n> earlier\r\n";
    let email = parse(raw);
    assert_eq!(
        email.message_id.as_deref(),
        Some("CAF=reply.1@mail.gmail.com")
    );
    assert_eq!(email.dedup_key, "mid:CAF=reply.1@mail.gmail.com");
    assert_eq!(email.in_reply_to, ["first.2@shop.test"]);
    assert_eq!(email.references, ["first.1@shop.test", "first.2@shop.test"]);
    assert_eq!(email.from.unwrap().address, "ivan@example.ru");
    assert_eq!(email.reply_to[0].address, "ivan@home.example");
    let to: Vec<&str> = email.to.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(to, ["support@shop.test", "sales@shop.test"]);
    assert_eq!(email.to[0].name.as_deref(), Some("Shop Support"));
    let cc: Vec<&str> = email.cc.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(cc, ["boss@example.ru", "ann@example.ru"]);
    assert_eq!(
        email.delivered_to,
        [
            "support+abc@shop.test",
            "support@shop.test",
            "Support@shop.test"
        ]
    );
    assert_eq!(email.return_path.as_deref(), Some("ivan@example.ru"));
    assert_eq!(
        email.date,
        Some("2024-03-11T07:00:00Z".parse::<jiff::Timestamp>().unwrap())
    );
    assert_eq!(email.subject, "Re: Order [#42]");
    assert_eq!(email.text, "Thanks!\n\n> earlier\n");
    assert!(email.automation.may_auto_reply());
    assert_eq!(email.bounce, None);
    assert_eq!(email.otklik_loop, None);
}

#[test]
fn a_mail_without_message_id_is_deduplicated_by_its_bytes() {
    let raw = "From: a@example.com\r\nSubject: no id\r\n\r\nhello\r\n";
    let email = parse(raw);
    assert_eq!(email.message_id, None);
    assert_eq!(
        email.dedup_key,
        format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
    );
    assert_eq!(parse(raw).dedup_key, email.dedup_key);
}

#[test]
fn an_html_only_mail_gets_text_from_its_html_and_keeps_the_html_unsanitised() {
    let raw = "From: a@example.com\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <html><body><p>Hello <b>there</b></p><script>alert(1)</script><p>Second line</p></body></html>\r\n";
    let email = parse(raw);
    assert!(email.text.contains("Hello"), "{:?}", email.text);
    assert!(email.text.contains("Second line"), "{:?}", email.text);
    assert!(!email.text.contains("alert"), "{:?}", email.text);
    assert!(email.html.as_deref().unwrap().contains("<script>"));
}

#[test]
fn an_alternative_mail_takes_text_from_the_text_part() {
    let raw = "From: a@example.com\r\nSubject: alt\r\n\
        Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
        --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain version\r\n\
        --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML version</p>\r\n--alt--\r\n";
    let email = parse(raw);
    assert_eq!(email.text, "Plain version");
    assert_eq!(email.html.as_deref(), Some("<p>HTML version</p>"));
    assert!(email.attachments.is_empty());
}

#[test]
fn inline_images_and_attachments_are_told_apart() {
    let raw = "From: a@example.com\r\nSubject: pics\r\n\
        Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
        --rel\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:logo@shop\">\r\n\
        --rel\r\nContent-Type: image/png\r\nContent-ID: <logo@shop>\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
        --rel\r\nContent-Type: image/png; name=\"photo.png\"\r\n\
        Content-Disposition: attachment; filename=\"photo.png\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--rel--\r\n";
    let email = parse(raw);
    assert_eq!(email.attachments.len(), 2);
    let logo = &email.attachments[0];
    assert_eq!(logo.content_id.as_deref(), Some("logo@shop"));
    assert!(logo.inline);
    assert_eq!(logo.file_name, "attachment");
    assert_eq!(logo.bytes, b"\x89PNG\r\n\x1a\n");
    let photo = &email.attachments[1];
    assert!(!photo.inline);
    assert_eq!(photo.file_name, "photo.png");
    assert_eq!(photo.content_type, "image/png");
}

#[test]
fn hostile_attachment_names_become_safe_display_names() {
    let cases = [
        ("filename=\"../../etc/passwd\"", "passwd"),
        ("filename*=utf-8''..%00%2F.htaccess", "htaccess"),
        ("filename*=utf-8''%E2%80%8B.htaccess", "htaccess"),
        ("filename*=utf-8''invoice%E2%80%AEfdp.exe", "invoicefdp.exe"),
        ("filename=\"=?utf-8?B?Li5cLmJhc2hyYw==?=\"", "bashrc"),
        ("filename=\"a.php.jpg\"", "a.php.jpg"),
        ("filename=\"\"", "attachment"),
        (
            "filename*0=\"long\"; filename*1=\"name.txt\"",
            "longname.txt",
        ),
    ];
    for (disposition, expected) in cases {
        let raw = format!(
            "From: a@example.com\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
             --b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; {disposition}\r\n\r\ndata\r\n--b--\r\n"
        );
        let email = parse(raw);
        assert_eq!(email.attachments.len(), 1, "{disposition}");
        assert_eq!(email.attachments[0].file_name, expected, "{disposition}");
    }
}

#[test]
fn an_attached_mail_keeps_its_bytes_and_gets_an_eml_name() {
    let raw = "From: a@example.com\r\nSubject: Fwd: order\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nForwarding this.\r\n\
        --b\r\nContent-Type: message/rfc822\r\n\r\n\
        From: shop@example.com\r\nSubject: Your order\r\nMessage-ID: <order@example.com>\r\n\r\nShipped.\r\n--b--\r\n";
    let email = parse(raw);
    assert_eq!(email.text, "Forwarding this.");
    assert_eq!(email.attachments.len(), 1);
    let attached = &email.attachments[0];
    assert_eq!(attached.file_name, "message.eml");
    assert_eq!(attached.content_type, "message/rfc822");
    let bytes = String::from_utf8(attached.bytes.clone()).unwrap();
    assert!(bytes.starts_with("From: shop@example.com\r\n"), "{bytes:?}");
    assert!(bytes.trim_end().ends_with("Shipped."), "{bytes:?}");
}

/// A Postfix-style DSN for a mail we sent.
const POSTFIX_DSN: &str = "Return-Path: <>\r\n\
    Message-ID: <20240311100500.ABC123@mx.shop.test>\r\n\
    Date: Mon, 11 Mar 2024 10:05:00 +0000 (UTC)\r\n\
    From: MAILER-DAEMON@mx.shop.test (Mail Delivery System)\r\n\
    Subject: Undelivered Mail Returned to Sender\r\n\
    To: support@shop.test\r\n\
    Auto-Submitted: auto-replied\r\n\
    MIME-Version: 1.0\r\n\
    Content-Type: multipart/report; report-type=delivery-status;\r\n\
    \tboundary=\"ABC123.1710151500/mx.shop.test\"\r\n\r\n\
    This is a MIME-encapsulated message.\r\n\r\n\
    --ABC123.1710151500/mx.shop.test\r\n\
    Content-Description: Notification\r\n\
    Content-Type: text/plain; charset=us-ascii\r\n\r\n\
    This is the mail system at host mx.shop.test.\r\n\r\n\
    I'm sorry to have to inform you that your message could not\r\n\
    be delivered to one or more recipients.\r\n\r\n\
    <gone@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1\r\n\
        <gone@example.org>: Recipient address rejected: User unknown\r\n\r\n\
    --ABC123.1710151500/mx.shop.test\r\n\
    Content-Description: Delivery report\r\n\
    Content-Type: message/delivery-status\r\n\r\n\
    Reporting-MTA: dns; mx.shop.test\r\n\
    X-Postfix-Queue-ID: ABC123\r\n\
    X-Postfix-Sender: rfc822; support@shop.test\r\n\
    Arrival-Date: Mon, 11 Mar 2024 10:04:58 +0000 (UTC)\r\n\r\n\
    Final-Recipient: rfc822; gone@example.org\r\n\
    Original-Recipient: rfc822;gone@example.org\r\n\
    Action: failed\r\n\
    Status: 5.1.1\r\n\
    Remote-MTA: dns; mx.example.org\r\n\
    Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: Recipient address rejected:\r\n\
    \tUser unknown\r\n\r\n\
    --ABC123.1710151500/mx.shop.test\r\n\
    Content-Description: Undelivered Message Headers\r\n\
    Content-Type: text/rfc822-headers\r\n\r\n\
    Return-Path: <support@shop.test>\r\n\
    From: Shop Support <support@shop.test>\r\n\
    To: gone@example.org\r\n\
    Subject: Re: Order [#42]\r\n\
    Message-ID: <0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4.token@shop.test>\r\n\
    Date: Mon, 11 Mar 2024 10:04:58 +0000\r\n\r\n\
    --ABC123.1710151500/mx.shop.test--\r\n";

#[test]
fn a_delivery_status_notification_names_our_original_and_is_permanent() {
    let email = parse(POSTFIX_DSN);
    let bounce = email.bounce.expect("a bounce");
    assert_eq!(
        bounce.original_message_id.as_deref(),
        Some("0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4.token@shop.test")
    );
    assert_eq!(bounce.recipient.as_deref(), Some("gone@example.org"));
    assert!(bounce.permanent);
    assert_eq!(bounce.status.as_deref(), Some("5.1.1"));
    assert_eq!(
        bounce.diagnostic.as_deref(),
        Some("550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown")
    );
    assert_eq!(email.automation.kind, Some(AutoKind::DeliveryReport));
    assert_eq!(email.return_path.as_deref(), Some(""));
    assert!(!email.automation.may_auto_reply());
    assert!(email.text.contains("could not"), "{:?}", email.text);
}

#[test]
fn a_delayed_delivery_report_is_not_permanent() {
    let raw = POSTFIX_DSN
        .replace("Action: failed", "Action: delayed")
        .replace("Status: 5.1.1", "Status: 4.4.1")
        .replace("550 5.1.1", "451 4.4.1");
    let bounce = parse(raw).bounce.expect("a bounce");
    assert!(!bounce.permanent);
    assert_eq!(bounce.status.as_deref(), Some("4.4.1"));
}

#[test]
fn a_returned_message_rfc822_part_gives_the_original_message_id() {
    let raw = POSTFIX_DSN.replace(
        "Content-Type: text/rfc822-headers\r\n\r\n",
        "Content-Type: message/rfc822\r\n\r\n",
    );
    let bounce = parse(raw).bounce.expect("a bounce");
    assert_eq!(
        bounce.original_message_id.as_deref(),
        Some("0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4.token@shop.test")
    );
}

#[test]
fn a_plain_mailer_daemon_bounce_is_recognised() {
    let raw = "Return-Path: <>\r\nFrom: MAILER-DAEMON@mail.example.net\r\nTo: support@shop.test\r\n\
        Subject: failure notice\r\nX-Failed-Recipients: lost@example.net\r\n\r\n\
        Hi. This is the qmail-send program at mail.example.net.\r\n\
        I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n\
        <lost@example.net>:\r\nSorry, no mailbox here by that name.\r\n\r\n\
        --- Below this line is a copy of the message.\r\n\r\n\
        Return-Path: <support@shop.test>\r\nMessage-ID: <out.1@shop.test>\r\nSubject: Re: x\r\n";
    let email = parse(raw);
    let bounce = email.bounce.expect("a bounce");
    assert_eq!(
        bounce.original_message_id.as_deref(),
        Some("out.1@shop.test")
    );
    assert_eq!(bounce.recipient.as_deref(), Some("lost@example.net"));
    assert!(bounce.permanent);
    assert_eq!(email.automation.kind, Some(AutoKind::MailerDaemon));
}

#[test]
fn a_postmaster_writing_like_a_person_is_not_a_bounce() {
    let raw = "From: postmaster@example.net\r\nTo: support@shop.test\r\n\
        Subject: Question about your SPF record\r\n\r\nHello, could you check...\r\n";
    let email = parse(raw);
    assert_eq!(email.bounce, None);
    assert_eq!(email.automation.kind, Some(AutoKind::MailerDaemon));
}

#[test]
fn automation_headers_are_read_through_the_parser() {
    let cases = [
        ("Auto-Submitted: no\r\n", None),
        (
            "Auto-Submitted: auto-replied\r\n",
            Some(AutoKind::AutoReplied),
        ),
        (
            "Auto-Submitted: auto-generated\r\n",
            Some(AutoKind::AutoGenerated),
        ),
        ("Precedence: bulk\r\n", Some(AutoKind::Bulk)),
        ("Precedence: junk\r\n", Some(AutoKind::Junk)),
        ("X-Precedence: list\r\n", Some(AutoKind::MailingList)),
        (
            "List-Id: Shop news <news.shop.example>\r\n",
            Some(AutoKind::MailingList),
        ),
        (
            "List-Unsubscribe: <mailto:unsub@example.com>\r\n",
            Some(AutoKind::MailingList),
        ),
        ("X-Autoreply: yes\r\n", Some(AutoKind::AutoReplied)),
        (
            "X-Auto-Response-Suppress: OOF\r\n",
            Some(AutoKind::AutoResponseSuppressed),
        ),
        ("Return-Path: <>\r\n", Some(AutoKind::NullSender)),
    ];
    for (header, kind) in cases {
        let raw = format!("{header}From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n");
        let email = parse(raw);
        assert_eq!(email.automation.kind, kind, "{header}");
        assert_eq!(
            email.automation.may_auto_reply(),
            kind.is_none(),
            "{header}"
        );
        if kind.is_some() {
            assert_eq!(email.automation.headers_seen.len(), 1, "{header}");
        }
    }
}

#[test]
fn our_loop_header_is_reported() {
    let raw = "X-Otklik-Loop: shop.test\r\nFrom: support@shop.test\r\nSubject: x\r\n\r\nbody\r\n";
    assert_eq!(parse(raw).otklik_loop.as_deref(), Some("shop.test"));
}

#[test]
fn line_ends_become_lf_and_subjects_one_line() {
    let raw =
        "From: a@example.com\r\nSubject: =?utf-8?Q?two=0D=0Alines?=\r\n\r\none\r\ntwo\rthree\r\n";
    let email = parse(raw);
    assert_eq!(email.subject, "two lines");
    assert_eq!(email.text, "one\ntwo\nthree\n");
}
