//! The inbound SMTP listener, driven by lettre (through `send_raw`) and by a raw TCP client.

#![cfg(feature = "testkit")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otklik_mail_transport::testkit::MemorySink;
use otklik_mail_transport::{
    Envelope, SendError, SmtpListenerConfig, SmtpSessionLimits, SmtpSettings, send_raw, serve_smtp,
    serve_smtp_with_limits,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const MAX_BYTES: usize = 64 * 1024;
const MAX_RECIPIENTS: usize = 5;

struct Listener {
    addr: SocketAddr,
    sink: Arc<MemorySink>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

fn config() -> SmtpListenerConfig {
    SmtpListenerConfig {
        hostname: "mx.shop.test".to_owned(),
        accepted_domains: vec!["shop.test".to_owned()],
        max_message_bytes: MAX_BYTES,
        max_recipients: MAX_RECIPIENTS,
    }
}

async fn start(limits: Option<SmtpSessionLimits>) -> Listener {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let sink = Arc::new(MemorySink::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = match limits {
        None => tokio::spawn(serve_smtp(listener, config(), sink.clone(), shutdown)),
        Some(limits) => tokio::spawn(serve_smtp_with_limits(
            listener,
            config(),
            limits,
            sink.clone(),
            shutdown,
        )),
    };
    Listener {
        addr,
        sink,
        stop,
        task,
    }
}

impl Listener {
    fn settings(&self) -> SmtpSettings {
        SmtpSettings::from_url(&format!("smtp://127.0.0.1:{}", self.addr.port())).expect("url")
    }

    async fn client(&self) -> Client {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (read, write) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(read),
            writer: write,
        };
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220 mx.shop.test"), "{greeting}");
        client
    }
}

fn mail(n: usize) -> Vec<u8> {
    format!(
        "From: Customer <customer{n}@example.com>\r\n\
         To: support@shop.test\r\n\
         Subject: =?UTF-8?B?0JfQsNC60LDQtyB7bn0=?=\r\n\
         Message-ID: <smtp-{n}@example.com>\r\n\
         \r\n\
         Где мой заказ {n}?\r\n\
         .a line that starts with a dot\r\n\
         ..and one with two\r\n"
    )
    .into_bytes()
}

/// A line-oriented SMTP client for protocol-level checks.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    /// Reads one (possibly multi-line) reply.
    async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line))
                    .await
                    .expect("the server answers within 10 s")
                    .expect("read");
            assert!(read > 0, "connection closed; reply so far: {reply:?}");
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    async fn expect(&mut self, line: &str, code: &str) -> String {
        let reply = self.command(line).await;
        assert!(reply.starts_with(code), "{line} → {reply}");
        reply
    }

    async fn assert_closed(&mut self) {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), self.reader.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection");
        assert!(
            matches!(read, Ok(0)) || read.is_err(),
            "unexpected bytes {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

#[tokio::test]
async fn a_mail_sent_with_lettre_reaches_the_sink_byte_for_byte_with_its_envelope() {
    let listener = start(None).await;
    let recipients = vec!["support@shop.test".to_owned(), "Sales@SHOP.test".to_owned()];

    send_raw(
        &listener.settings(),
        "customer@example.com",
        &recipients,
        &mail(1),
    )
    .await
    .expect("250");

    assert_eq!(
        listener.sink.deliveries(),
        vec![(
            mail(1),
            Some(Envelope {
                mail_from: "customer@example.com".to_owned(),
                rcpt_to: recipients
            })
        )]
    );
}

#[tokio::test]
async fn data_is_answered_250_only_after_the_sink_returned() {
    let listener = start(None).await;
    listener.sink.set_delay(Duration::from_millis(400));
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("RCPT TO:<support@shop.test>", "250").await;
    client.expect("DATA", "354").await;
    client.send(b"Subject: hi\r\n\r\nbody\r\n.\r\n").await;

    let reply = client.reply().await;

    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(
        listener.sink.received(),
        vec![b"Subject: hi\r\n\r\nbody\r\n".to_vec()]
    );
    client.expect("QUIT", "221").await;
}

#[tokio::test]
async fn a_temporary_sink_failure_gives_451_and_the_client_delivers_on_retry() {
    let listener = start(None).await;
    let recipients = vec!["support@shop.test".to_owned()];
    listener.sink.set_failing(true);

    let first = send_raw(&listener.settings(), "a@example.com", &recipients, &mail(1)).await;

    assert!(
        matches!(&first, Err(SendError::Temporary(text)) if text.contains("451")),
        "{first:?}"
    );
    assert!(listener.sink.received().is_empty());

    listener.sink.set_failing(false);
    send_raw(&listener.settings(), "a@example.com", &recipients, &mail(1))
        .await
        .expect("the retry is accepted");
    assert_eq!(listener.sink.received(), vec![mail(1)]);
}

#[tokio::test]
async fn relaying_to_a_foreign_domain_is_refused_with_550() {
    let listener = start(None).await;

    let relayed = send_raw(
        &listener.settings(),
        "spammer@example.com",
        &["victim@gmail.com".to_owned()],
        &mail(1),
    )
    .await;

    assert!(
        matches!(&relayed, Err(SendError::Permanent(text)) if text.contains("550")),
        "{relayed:?}"
    );
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client
        .expect("RCPT TO:<victim@gmail.com>", "550 5.7.1")
        .await;
    client
        .expect("RCPT TO:<a@mail.shop.test>", "550 5.7.1")
        .await;
    client.expect("RCPT TO:<support@shop.test>", "250").await;
    client.expect("DATA", "354").await;
    client.send(b"Subject: x\r\n\r\ny\r\n.\r\n").await;
    assert!(client.reply().await.starts_with("250"));
    let (_, envelope) = listener.sink.deliveries().pop().expect("one delivery");
    assert_eq!(
        envelope.expect("SMTP has an envelope").rcpt_to,
        vec!["support@shop.test"]
    );
}

#[tokio::test]
async fn an_oversize_message_is_refused_with_552_and_the_session_stays_usable() {
    let listener = start(None).await;
    let mut client = listener.client().await;
    let ehlo = client.expect("EHLO client.example", "250").await;
    assert!(ehlo.contains(&format!("SIZE {MAX_BYTES}")), "{ehlo}");

    client
        .expect(
            &format!("MAIL FROM:<a@example.com> SIZE={}", MAX_BYTES + 1),
            "552 5.3.4",
        )
        .await;

    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("RCPT TO:<support@shop.test>", "250").await;
    client.expect("DATA", "354").await;
    let line = "x".repeat(998) + "\r\n";
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    while body.len() <= MAX_BYTES {
        body.extend_from_slice(line.as_bytes());
    }
    body.extend_from_slice(b".\r\n");
    client.send(&body).await;
    let reply = client.reply().await;
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(listener.sink.received().is_empty());

    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("RCPT TO:<support@shop.test>", "250").await;
    client.expect("DATA", "354").await;
    client.send(b"Subject: small\r\n\r\nok\r\n.\r\n").await;
    assert!(client.reply().await.starts_with("250"));
    assert_eq!(listener.sink.received().len(), 1);
}

#[tokio::test]
async fn a_message_exactly_at_the_limit_is_accepted() {
    let listener = start(None).await;
    let mut raw = b"Subject: exact\r\n\r\n".to_vec();
    raw.resize(MAX_BYTES - 2, b'y');
    raw.extend_from_slice(b"\r\n");
    assert_eq!(raw.len(), MAX_BYTES);

    send_raw(
        &listener.settings(),
        "a@example.com",
        &["support@shop.test".to_owned()],
        &raw,
    )
    .await
    .expect("a message of exactly max_message_bytes fits");

    assert_eq!(listener.sink.received(), vec![raw]);
}

#[tokio::test]
async fn twenty_concurrent_clients_are_served_at_the_same_time() {
    let listener = Arc::new(start(None).await);
    listener.sink.set_delay(Duration::from_millis(300));
    let started = tokio::time::Instant::now();

    let sends: Vec<_> = (0..20)
        .map(|n| {
            let listener = Arc::clone(&listener);
            tokio::spawn(async move {
                send_raw(
                    &listener.settings(),
                    &format!("customer{n}@example.com"),
                    &["support@shop.test".to_owned()],
                    &mail(n),
                )
                .await
            })
        })
        .collect();
    for send in sends {
        send.await.expect("no panic").expect("250");
    }

    let mut received = listener.sink.received();
    received.sort();
    let mut expected: Vec<Vec<u8>> = (0..20).map(mail).collect();
    expected.sort();
    assert_eq!(received, expected);
    assert!(
        listener.sink.max_in_flight() >= 10,
        "deliveries overlapped only {} deep",
        listener.sink.max_in_flight()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "20 × 300 ms took {:?}: sessions were served one by one",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dot_at_the_start_of_the_first_line_and_an_empty_message_are_read_correctly() {
    let listener = start(None).await;
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;
    for (sent, stored) in [
        (
            &b"..first line\r\nSubject: x\r\n\r\nbody\r\n.\r\n"[..],
            &b".first line\r\nSubject: x\r\n\r\nbody\r\n"[..],
        ),
        (&b".\r\n"[..], &b""[..]),
    ] {
        client.expect("MAIL FROM:<>", "250").await;
        client.expect("RCPT TO:<support@shop.test>", "250").await;
        client.expect("DATA", "354").await;
        client.send(sent).await;
        let reply = client.reply().await;
        assert!(reply.starts_with("250"), "{reply}");
        let (raw, envelope) = listener.sink.deliveries().pop().expect("delivered");
        assert_eq!(raw, stored);
        assert_eq!(
            envelope.expect("envelope").mail_from,
            "",
            "<> is the empty sender"
        );
    }
}

#[tokio::test]
async fn a_bare_lf_dot_does_not_end_the_message() {
    let listener = start(None).await;
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("RCPT TO:<support@shop.test>", "250").await;
    client.expect("DATA", "354").await;
    // A smuggling attempt: "\n.\n" must not be taken as the end of data.
    client
        .send(b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n")
        .await;

    assert!(client.reply().await.starts_with("250"));
    assert_eq!(
        listener.sink.received(),
        vec![b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@example.com>\r\n".to_vec()]
    );
}

#[tokio::test]
async fn recipients_beyond_the_limit_get_452() {
    let listener = start(None).await;
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    for n in 0..MAX_RECIPIENTS {
        client
            .expect(&format!("RCPT TO:<agent{n}@shop.test>"), "250")
            .await;
    }

    client
        .expect("RCPT TO:<one-more@shop.test>", "452 4.5.3")
        .await;
}

#[tokio::test]
async fn commands_out_of_order_and_overlong_lines_are_rejected_and_too_many_errors_close() {
    let listener = start(None).await;
    let mut client = listener.client().await;
    client.expect("MAIL FROM:<a@example.com>", "503").await;
    client.expect("EHLO client.example", "250").await;
    client.expect("RCPT TO:<support@shop.test>", "503").await;
    client.expect("DATA", "503").await;
    client
        .expect(&format!("NOOP {}", "x".repeat(5000)), "500 5.5.2")
        .await;
    client.expect("NOOP", "250").await;
    client.expect("STARTTLS", "502").await;
    client.expect("BOGUS", "500").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("MAIL FROM:<a@example.com>", "503").await;
    client.expect("RCPT TO:<a@gmail.com>", "550").await;
    client.expect("RCPT TO:<a@gmail.com>", "550").await;

    // The tenth rejected command ends the session.
    client.expect("RCPT TO:<a@gmail.com>", "550").await;
    let reply = client.reply().await;
    assert!(reply.starts_with("421 4.7.0"), "{reply}");
    client.assert_closed().await;
}

#[tokio::test]
async fn an_idle_client_is_disconnected_after_the_command_timeout() {
    let limits = SmtpSessionLimits {
        command_timeout: Duration::from_millis(300),
        ..SmtpSessionLimits::default()
    };
    let listener = start(Some(limits)).await;
    let mut client = listener.client().await;

    let reply = client.reply().await;

    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    client.assert_closed().await;
}

#[tokio::test]
async fn connections_over_the_session_limit_get_421() {
    let limits = SmtpSessionLimits {
        max_sessions: 2,
        ..SmtpSessionLimits::default()
    };
    let listener = start(Some(limits)).await;
    let _first = listener.client().await;
    let _second = listener.client().await;

    let mut third = TcpStream::connect(listener.addr).await.expect("connect");
    let mut reply = String::new();
    third.read_to_string(&mut reply).await.expect("read");

    assert!(reply.starts_with("421 4.3.2"), "{reply}");
}

#[tokio::test]
async fn shutdown_says_421_to_idle_sessions_stops_accepting_and_returns() {
    let listener = start(None).await;
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;

    listener.stop.send(()).expect("still running");

    let reply = client.reply().await;
    assert!(reply.starts_with("421 4.3.2"), "{reply}");
    client.assert_closed().await;
    tokio::time::timeout(Duration::from_secs(5), listener.task)
        .await
        .expect("serve_smtp returns")
        .expect("no panic")
        .expect("Ok after shutdown");
    assert!(
        TcpStream::connect(listener.addr).await.is_err(),
        "still accepting"
    );
}

#[tokio::test]
async fn shutdown_lets_a_delivery_in_progress_finish_with_250() {
    let listener = start(None).await;
    listener.sink.set_delay(Duration::from_millis(500));
    let mut client = listener.client().await;
    client.expect("EHLO client.example", "250").await;
    client.expect("MAIL FROM:<a@example.com>", "250").await;
    client.expect("RCPT TO:<support@shop.test>", "250").await;
    client.expect("DATA", "354").await;
    client.send(b"Subject: x\r\n\r\nlast one\r\n.\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    listener.stop.send(()).expect("still running");

    let reply = client.reply().await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(listener.sink.received().len(), 1);
    tokio::time::timeout(Duration::from_secs(5), listener.task)
        .await
        .expect("serve_smtp returns")
        .expect("no panic")
        .expect("Ok after shutdown");
}
