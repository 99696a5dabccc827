//! Sending through a real SMTP peer (aiosmtpd).

#![cfg(feature = "testkit")]

use std::time::Duration;

use otklik_mail_transport::testkit::SmtpSink;
use otklik_mail_transport::{SendError, SmtpSettings, send_raw, test_smtp};

const WAIT: Duration = Duration::from_secs(10);

fn reply_mail() -> Vec<u8> {
    "From: Otklik Support <support@shop.test>\r\n\
     To: Иван <ivan@example.com>\r\n\
     Subject: =?UTF-8?B?UmU6INCX0LDQutCw0Lc=?= [#1042]\r\n\
     Message-ID: <ticket-1042.article-9@helpdesk.shop.test>\r\n\
     In-Reply-To: <order-7@example.com>\r\n\
     Auto-Submitted: no\r\n\
     MIME-Version: 1.0\r\n\
     Content-Type: text/plain; charset=utf-8\r\n\
     Content-Transfer-Encoding: 8bit\r\n\
     \r\n\
     Здравствуйте! Ваш заказ отправлен.\r\n\
     .a line that starts with a dot\r\n\
     \r\n\
     -- \r\n\
     Otklik\r\n"
        .as_bytes()
        .to_vec()
}

fn settings(sink: &SmtpSink) -> SmtpSettings {
    SmtpSettings::from_url(&sink.url()).expect("url")
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind")
        .port()
}

#[tokio::test]
async fn send_raw_delivers_the_message_byte_for_byte_with_its_message_id_and_envelope() {
    let sink = SmtpSink::start();
    let recipients = vec!["ivan@example.com".to_owned(), "copy@example.org".to_owned()];

    send_raw(
        &settings(&sink),
        "bounces@shop.test",
        &recipients,
        &reply_mail(),
    )
    .await
    .expect("sent");

    let received = sink.wait_for_mails(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].raw, reply_mail());
    assert_eq!(received[0].mail_from, "bounces@shop.test");
    assert_eq!(received[0].rcpt_to, recipients);
}

#[tokio::test]
async fn the_null_sender_goes_out_as_an_empty_reverse_path() {
    let sink = SmtpSink::start();

    send_raw(
        &settings(&sink),
        "",
        &["ivan@example.com".to_owned()],
        &reply_mail(),
    )
    .await
    .expect("sent");

    let received = sink.wait_for_mails(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].mail_from, "");
}

#[tokio::test]
async fn bare_line_feeds_are_sent_as_crlf() {
    let sink = SmtpSink::start();

    send_raw(
        &settings(&sink),
        "a@shop.test",
        &["ivan@example.com".to_owned()],
        b"Subject: lf\n\nline one\n.\nline two\n",
    )
    .await
    .expect("sent");

    assert_eq!(
        sink.wait_for(1, WAIT),
        vec![b"Subject: lf\r\n\r\nline one\r\n.\r\nline two\r\n".to_vec()]
    );
}

#[tokio::test]
async fn a_451_for_a_recipient_is_a_temporary_error_that_quotes_the_reply() {
    let sink = SmtpSink::start();

    let sent = send_raw(
        &settings(&sink),
        "a@shop.test",
        &["temp-fail@example.com".to_owned()],
        &reply_mail(),
    )
    .await;

    assert!(
        matches!(&sent, Err(SendError::Temporary(text))
            if text.contains("451") && text.contains("Temporary failure (testkit)")),
        "{sent:?}"
    );
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_550_for_a_recipient_is_a_permanent_error_that_quotes_the_reply() {
    let sink = SmtpSink::start();

    let sent = send_raw(
        &settings(&sink),
        "a@shop.test",
        &[
            "ivan@example.com".to_owned(),
            "perm-fail@example.com".to_owned(),
        ],
        &reply_mail(),
    )
    .await;

    assert!(
        matches!(&sent, Err(SendError::Permanent(text))
            if text.contains("550") && text.contains("No such user (testkit)")),
        "{sent:?}"
    );
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn an_unreachable_port_is_a_temporary_error() {
    let settings =
        SmtpSettings::from_url(&format!("smtp://127.0.0.1:{}", closed_port())).expect("url");

    let sent = send_raw(
        &settings,
        "a@shop.test",
        &["b@example.com".to_owned()],
        b"x\r\n",
    )
    .await;

    assert!(matches!(sent, Err(SendError::Temporary(_))), "{sent:?}");
}

#[tokio::test]
async fn addresses_no_server_would_take_are_permanent_errors() {
    let settings = SmtpSettings::from_url("smtp://127.0.0.1:9?tls=none").expect("url");

    for (from, to) in [
        ("a@shop.test", vec!["not an address".to_owned()]),
        ("not an address", vec!["b@example.com".to_owned()]),
        ("a@shop.test", vec![]),
    ] {
        let sent = send_raw(&settings, from, &to, b"x\r\n").await;
        assert!(
            matches!(sent, Err(SendError::Permanent(_))),
            "{from} {to:?}: {sent:?}"
        );
    }
}

#[tokio::test]
async fn test_smtp_passes_against_a_live_server_and_fails_temporarily_on_a_closed_port() {
    let sink = SmtpSink::start();
    test_smtp(&settings(&sink)).await.expect("the sink answers");

    let closed =
        SmtpSettings::from_url(&format!("smtp://127.0.0.1:{}", closed_port())).expect("url");
    let tested = test_smtp(&closed).await;

    assert!(matches!(tested, Err(SendError::Temporary(_))), "{tested:?}");
}

#[tokio::test]
async fn starttls_required_fails_against_a_server_without_it_rather_than_sending_in_the_clear() {
    let sink = SmtpSink::start();
    let settings =
        SmtpSettings::from_url(&format!("smtp://127.0.0.1:{}?tls=starttls", sink.port()))
            .expect("url");

    let sent = send_raw(
        &settings,
        "a@shop.test",
        &["b@example.com".to_owned()],
        b"x\r\n",
    )
    .await;

    assert!(
        matches!(&sent, Err(SendError::Temporary(text)) if text.contains("STARTTLS")),
        "{sent:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_relay_that_cannot_log_us_in_is_a_temporary_error_not_a_verdict_on_the_message() {
    let sink = SmtpSink::start();
    let settings = SmtpSettings::from_url(&format!("smtp://out:secret@127.0.0.1:{}", sink.port()))
        .expect("url");

    let sent = send_raw(
        &settings,
        "a@shop.test",
        &["b@example.com".to_owned()],
        b"x\r\n",
    )
    .await;

    assert!(
        matches!(&sent, Err(SendError::Temporary(text)) if text.contains("login")),
        "{sent:?}"
    );
}
