//! One SMTP session: read a command line, parse it with smtp-proto, answer, repeat.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use smtp_proto::{Error as ParseError, MailFrom, RcptTo, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::{SmtpListenerConfig, SmtpSessionLimits};
use crate::sink::{DeliveryError, Envelope, InboundSink};

/// Longest command line we read, CRLF included. RFC 5321 §4.5.3.1.4 requires 512; extensions
/// (SIZE, SMTPUTF8 addresses) make lines longer, so allow what smtp-proto itself allows.
const MAX_COMMAND_LINE: usize = smtp_proto::request::receiver::MAX_LINE_LENGTH;
/// Read buffer per session; DATA streams through it.
const READ_BUFFER: usize = 16 * 1024;

/// What all sessions share.
pub(super) struct Shared {
    config: SmtpListenerConfig,
    /// `accepted_domains` lower-cased and without a trailing dot, ready to compare.
    domains: Vec<String>,
    pub(super) limits: SmtpSessionLimits,
    sink: Arc<dyn InboundSink>,
}

impl Shared {
    pub(super) fn new(
        config: SmtpListenerConfig,
        limits: SmtpSessionLimits,
        sink: Arc<dyn InboundSink>,
    ) -> Self {
        let domains = config
            .accepted_domains
            .iter()
            .map(|domain| normalise_domain(domain))
            .collect();
        Self {
            config,
            domains,
            limits,
            sink,
        }
    }

    fn accepts(&self, address: &str) -> bool {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = normalise_domain(domain);
        !local.is_empty() && self.domains.contains(&domain)
    }
}

fn normalise_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_lowercase()
}

/// Answers a connection over the session limit and closes it.
pub(super) async fn refuse_busy(mut stream: TcpStream, peer: SocketAddr) {
    tracing::warn!(%peer, "SMTP session limit reached; refusing a connection");
    let reply = b"421 4.3.2 Too many connections, try again later\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(reply)).await;
}

pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let (read, write) = stream.into_split();
    let mut session = Session {
        reader: BufReader::with_capacity(READ_BUFFER, read),
        writer: write,
        shared,
        peer,
        helo: None,
        mail_from: None,
        rcpt_to: Vec::new(),
        errors: 0,
    };
    if let Err(error) = session.run(&mut stop).await {
        tracing::debug!(%peer, %error, "SMTP session ended by an I/O error");
    }
}

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    shared: Arc<Shared>,
    peer: SocketAddr,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    errors: usize,
}

enum Line {
    Complete,
    TooLong,
    Closed,
}

enum Data {
    Complete(Vec<u8>),
    TooBig,
    Closed,
}

/// Whether the session goes on after a command.
enum Next {
    Continue,
    Close,
}

impl Session {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> io::Result<()> {
        let greeting = format!("220 {} ESMTP Otklik\r\n", self.shared.config.hostname);
        self.send(greeting.as_bytes()).await?;
        let mut line = Vec::with_capacity(512);
        loop {
            let command_timeout = self.shared.limits.command_timeout;
            let read = tokio::select! {
                biased;
                () = crate::stop::requested(stop) => {
                    return self.reply(421, [4, 3, 2], "Service shutting down, try again later").await;
                }
                read = tokio::time::timeout(command_timeout, self.read_line(&mut line)) => read,
            };
            let Ok(read) = read else {
                return self
                    .reply(421, [4, 4, 2], "Timeout waiting for a command")
                    .await;
            };
            let next = match read? {
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    self.reply(500, [5, 5, 2], "Line too long").await?;
                    Next::Continue
                }
                Line::Complete => match Request::parse(&mut line.iter()) {
                    Ok(request) => self.handle(request).await?,
                    Err(error) => {
                        self.reject_syntax(error).await?;
                        Next::Continue
                    }
                },
            };
            if let Next::Close = next {
                return Ok(());
            }
            if self.errors >= self.shared.limits.max_errors {
                return self.reply(421, [4, 7, 0], "Too many errors, closing").await;
            }
        }
    }

    async fn handle(&mut self, request: Request<Cow<'_, str>>) -> io::Result<Next> {
        match request {
            Request::Ehlo { host } => {
                self.helo = Some(host.into_owned());
                self.reset();
                self.send_ehlo().await?;
            }
            Request::Helo { host } => {
                self.helo = Some(host.into_owned());
                self.reset();
                // RFC 2034: no enhanced status code in the HELO/EHLO reply.
                let reply = format!("250 {}\r\n", self.shared.config.hostname);
                self.send(reply.as_bytes()).await?;
            }
            Request::Mail { from } => self.mail(from).await?,
            Request::Rcpt { to } => self.rcpt(to).await?,
            Request::Data => return self.data().await,
            Request::Rset => {
                self.reset();
                self.reply(250, [2, 0, 0], "OK").await?;
            }
            Request::Noop { .. } => self.reply(250, [2, 0, 0], "OK").await?,
            Request::Quit => {
                self.reply(221, [2, 0, 0], "Bye").await?;
                return Ok(Next::Close);
            }
            Request::Vrfy { .. } => {
                self.reply(252, [2, 5, 0], "Cannot VRFY; send the mail and we will try")
                    .await?;
            }
            Request::Help { .. } => {
                self.reply(214, [2, 0, 0], "See RFC 5321").await?;
            }
            Request::Bdat { .. } => {
                // The chunk's bytes follow the command unasked; we cannot read them as commands.
                self.reply(502, [5, 5, 1], "CHUNKING is not offered")
                    .await?;
                return Ok(Next::Close);
            }
            Request::Lhlo { .. } => {
                self.reply(500, [5, 5, 1], "This is SMTP, not LMTP").await?;
            }
            Request::StartTls
            | Request::Auth { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                let reply = format!("{} is not offered", request.name());
                self.reply(502, [5, 5, 1], &reply).await?;
            }
        }
        Ok(Next::Continue)
    }

    async fn send_ehlo(&mut self) -> io::Result<()> {
        let reply = format!(
            "250-{}\r\n250-PIPELINING\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
             250 ENHANCEDSTATUSCODES\r\n",
            self.shared.config.hostname, self.shared.config.max_message_bytes
        );
        self.send(reply.as_bytes()).await
    }

    async fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> io::Result<()> {
        if self.helo.is_none() {
            return self.reply(503, [5, 5, 1], "Send EHLO first").await;
        }
        if self.mail_from.is_some() {
            return self.reply(503, [5, 5, 1], "Nested MAIL command").await;
        }
        if from.size > self.shared.config.max_message_bytes {
            return self
                .reply(552, [5, 3, 4], "Message size exceeds the fixed maximum")
                .await;
        }
        self.mail_from = Some(from.address.into_owned());
        self.rcpt_to.clear();
        self.reply(250, [2, 1, 0], "OK").await
    }

    async fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>) -> io::Result<()> {
        if self.mail_from.is_none() {
            return self.reply(503, [5, 5, 1], "Send MAIL first").await;
        }
        if self.rcpt_to.len() >= self.shared.config.max_recipients {
            return self.reply(452, [4, 5, 3], "Too many recipients").await;
        }
        if !self.shared.accepts(&to.address) {
            tracing::info!(peer = %self.peer, "SMTP recipient outside the accepted domains refused");
            return self
                .reply(
                    550,
                    [5, 7, 1],
                    "Relaying denied: we do not take mail for that domain",
                )
                .await;
        }
        self.rcpt_to.push(to.address.into_owned());
        self.reply(250, [2, 1, 5], "OK").await
    }

    async fn data(&mut self) -> io::Result<Next> {
        if self.mail_from.is_none() {
            self.reply(503, [5, 5, 1], "Send MAIL first").await?;
            return Ok(Next::Continue);
        }
        if self.rcpt_to.is_empty() {
            self.reply(554, [5, 5, 1], "No valid recipients").await?;
            return Ok(Next::Continue);
        }
        self.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            .await?;
        let received =
            tokio::time::timeout(self.shared.limits.data_timeout, self.read_data()).await;
        let envelope = Envelope {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        let raw = match received {
            Err(_elapsed) => {
                self.reply(421, [4, 4, 2], "Timeout receiving the message")
                    .await?;
                return Ok(Next::Close);
            }
            Ok(data) => match data? {
                Data::Closed => return Ok(Next::Close),
                Data::TooBig => {
                    self.reply(552, [5, 3, 4], "Message size exceeds the fixed maximum")
                        .await?;
                    return Ok(Next::Continue);
                }
                Data::Complete(raw) => raw,
            },
        };
        self.deliver(raw, envelope).await?;
        Ok(Next::Continue)
    }

    /// `250` only once the sink said the message is durable; otherwise `451`, so the client
    /// keeps the message and retries.
    async fn deliver(&mut self, raw: Vec<u8>, envelope: Envelope) -> io::Result<()> {
        let bytes = raw.len();
        let recipients = envelope.rcpt_to.len();
        let delivered = tokio::time::timeout(
            self.shared.limits.deliver_timeout,
            self.shared.sink.deliver(raw, Some(envelope)),
        )
        .await;
        match delivered {
            Ok(Ok(handled)) => {
                tracing::info!(peer = %self.peer, bytes, recipients, ?handled, "SMTP message accepted");
                self.reply(250, [2, 0, 0], "OK: message accepted").await
            }
            Ok(Err(DeliveryError::Temporary(reason))) => {
                tracing::warn!(peer = %self.peer, bytes, %reason, "SMTP message deferred: sink failed");
                self.reply(451, [4, 3, 0], "Temporary failure, try again later")
                    .await
            }
            Err(_elapsed) => {
                tracing::warn!(peer = %self.peer, bytes, "SMTP message deferred: sink timed out");
                self.reply(451, [4, 3, 0], "Temporary failure, try again later")
                    .await
            }
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    async fn reject_syntax(&mut self, error: ParseError) -> io::Result<()> {
        let (code, status, text): (u16, [u8; 3], Cow<'static, str>) = match error {
            ParseError::UnknownCommand => (500, [5, 5, 1], "Unknown command".into()),
            ParseError::InvalidSenderAddress => (501, [5, 1, 7], "Invalid sender address".into()),
            ParseError::InvalidRecipientAddress => {
                (501, [5, 1, 3], "Invalid recipient address".into())
            }
            ParseError::SyntaxError { syntax } => {
                (501, [5, 5, 2], format!("Syntax: {syntax}").into())
            }
            ParseError::InvalidParameter { param } => {
                (501, [5, 5, 4], format!("Invalid parameter {param}").into())
            }
            ParseError::UnsupportedParameter { .. } => {
                (555, [5, 5, 4], "Unsupported parameter".into())
            }
            ParseError::ResponseTooLong => (500, [5, 5, 2], "Line too long".into()),
            ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => {
                (500, [5, 5, 2], "Syntax error".into())
            }
        };
        self.reply(code, status, &text).await
    }

    /// Writes one reply with an enhanced status code (RFC 2034); 5xx replies count as errors.
    async fn reply(&mut self, code: u16, status: [u8; 3], text: &str) -> io::Result<()> {
        if code >= 500 {
            self.errors += 1;
        }
        let mut bytes = Vec::with_capacity(text.len() + 16);
        Response::new(code, status[0], status[1], status[2], text).write(&mut bytes)?;
        self.send(&bytes).await
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // A client that stops reading must not hold the session forever.
        tokio::time::timeout(
            self.shared.limits.command_timeout,
            self.writer.write_all(bytes),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
    }

    /// Asks the kernel to ACK the next segment at once. Clients that write the message and
    /// its terminating `.` line separately under Nagle's algorithm (lettre does) otherwise wait
    /// for our delayed ACK, about 40 ms per message. Linux drops quick-ACK mode on its own, so
    /// it is set again before every read of DATA.
    fn acknowledge_promptly(&self) {
        #[cfg(target_os = "linux")]
        {
            let stream: &tokio::net::TcpStream = self.reader.get_ref().as_ref();
            let _ = stream.set_quickack(true);
        }
    }

    /// Reads one line into `line`. Longer lines are consumed up to their end but not kept.
    async fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<Line> {
        line.clear();
        let mut too_long = false;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Line::Closed);
            }
            let (used, complete) = match available.iter().position(|&byte| byte == b'\n') {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                if line.len() + used > MAX_COMMAND_LINE {
                    too_long = true;
                    line.clear();
                } else {
                    line.extend_from_slice(&available[..used]);
                }
            }
            self.reader.consume(used);
            if complete {
                return Ok(if too_long {
                    Line::TooLong
                } else {
                    Line::Complete
                });
            }
        }
    }

    /// Reads DATA up to the terminating `.` line, dot-unstuffed. Past the size limit the rest
    /// is read and thrown away, so the client gets its `552` at the end and memory stays bounded.
    async fn read_data(&mut self) -> io::Result<Data> {
        let max = self.shared.config.max_message_bytes;
        let mut receiver = DataReceiver::new();
        let mut message = Vec::new();
        // smtp-proto recognises a leading dot only after a CRLF it has seen, and DATA starts
        // right after one: prime it with that CRLF so an empty message or a first line starting
        // with a dot is read correctly, and drop it again at the end.
        receiver.ingest(&mut b"\r\n".iter(), &mut message);
        let mut discard: Option<DummyDataReceiver> = None;
        loop {
            self.acknowledge_promptly();
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Data::Closed);
            }
            let mut bytes = available.iter();
            let done = match &mut discard {
                Some(discard) => discard.ingest(&mut bytes),
                None => receiver.ingest(&mut bytes, &mut message),
            };
            let used = available.len() - bytes.as_slice().len();
            self.reader.consume(used);
            if discard.is_none() && message.len() - 2 > max {
                discard = Some(DummyDataReceiver::new_data(&receiver));
                message = Vec::new();
            }
            if done {
                return Ok(match discard {
                    Some(_) => Data::TooBig,
                    None => {
                        message.drain(..2);
                        Data::Complete(message)
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSink;

    #[async_trait::async_trait]
    impl InboundSink for NoSink {
        async fn deliver(
            &self,
            _raw: Vec<u8>,
            _envelope: Option<Envelope>,
        ) -> Result<crate::sink::Handled, DeliveryError> {
            Err(DeliveryError::Temporary("unused".to_owned()))
        }
    }

    fn shared(domains: &[&str]) -> Shared {
        Shared::new(
            SmtpListenerConfig {
                hostname: "mx.test".to_owned(),
                accepted_domains: domains.iter().map(|domain| (*domain).to_owned()).collect(),
                max_message_bytes: 1000,
                max_recipients: 10,
            },
            SmtpSessionLimits::default(),
            Arc::new(NoSink),
        )
    }

    #[test]
    fn recipients_in_accepted_domains_pass_whatever_their_case() {
        let shared = shared(&["Shop.Test", "help.example."]);
        assert!(shared.accepts("support@shop.test"));
        assert!(shared.accepts("Support@SHOP.TEST"));
        assert!(shared.accepts("a@help.example"));
        assert!(shared.accepts("a@help.example."));
    }

    #[test]
    fn other_domains_subdomains_and_addresses_without_domain_are_refused() {
        let shared = shared(&["shop.test"]);
        assert!(!shared.accepts("victim@gmail.com"));
        assert!(!shared.accepts("a@mail.shop.test"));
        assert!(!shared.accepts("a@shop.test.evil.example"));
        assert!(!shared.accepts("postmaster"));
        assert!(!shared.accepts(""));
        assert!(!shared.accepts("@shop.test"));
        assert!(!shared.accepts("a@[127.0.0.1]"));
    }
}
