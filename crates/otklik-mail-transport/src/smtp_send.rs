//! Sending finished messages over SMTP (lettre), with errors sorted into retry or give up.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::settings::{SettingsError, encode_user, is_loopback, parse_server_url, url_host};

/// lettre only bounds the TCP connect itself; the deadlines below bound everything else.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Connect, greeting, EHLO, STARTTLS and login together.
const SETUP_TIMEOUT: Duration = Duration::from_secs(2 * 60);
/// MAIL, RCPT and DATA up to the final reply (RFC 5321 §4.5.3.2.6 gives DATA 10 minutes).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// QUIT after the message was taken or refused.
const QUIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long each phase of a send may take.
struct Deadlines {
    setup: Duration,
    transaction: Duration,
}

const DEADLINES: Deadlines = Deadlines {
    setup: SETUP_TIMEOUT,
    transaction: TRANSACTION_TIMEOUT,
};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpSecurity {
    /// Implicit TLS from the first byte (`smtps://`, port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS; the send fails if the server does not offer it.
    StartTls,
    /// No encryption: loopback relays and tests only.
    Plain,
}

/// Login for the relay. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Where outbound mail goes. `Debug` and [`SmtpSettings::redacted`] hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<SmtpCredentials>,
}

impl SmtpSettings {
    /// Parses a relay URL:
    /// - `smtps://user:pass@host:465`: implicit TLS (default port 465);
    /// - `smtp://user:pass@host:587`: STARTTLS required (default port 587), except for a
    ///   loopback host, which is spoken to in plaintext;
    /// - `?tls=none` forces plaintext, `?tls=starttls` forces STARTTLS (also on loopback).
    ///
    /// User and password are percent-decoded. Plaintext with a password to a host that is not
    /// loopback is refused: it would send the password over the network in the clear.
    pub fn from_url(url: &str) -> Result<Self, SettingsError> {
        let parsed = parse_server_url(url)?;
        let mut tls_parameter = None;
        for (name, value) in parsed.url.query_pairs() {
            if name != "tls" {
                return Err(SettingsError::InvalidParameter {
                    name: name.into_owned(),
                    value: value.into_owned(),
                    reason: "the only parameter is tls=none|starttls",
                });
            }
            tls_parameter = Some(value.into_owned());
        }
        let (security, default_port) = match (parsed.scheme.as_str(), tls_parameter.as_deref()) {
            ("smtps", None) => (SmtpSecurity::Tls, 465),
            ("smtp", None) if is_loopback(&parsed.host) => (SmtpSecurity::Plain, 587),
            ("smtp", None | Some("starttls")) => (SmtpSecurity::StartTls, 587),
            ("smtp", Some("none")) => (SmtpSecurity::Plain, 587),
            ("smtp" | "smtps", Some(value)) => {
                return Err(SettingsError::InvalidParameter {
                    name: "tls".to_owned(),
                    value: value.to_owned(),
                    reason: "smtp:// takes tls=none or tls=starttls; smtps:// is always TLS",
                });
            }
            (scheme, _) => {
                return Err(SettingsError::UnsupportedScheme {
                    scheme: scheme.to_owned(),
                    expected: "smtps:// or smtp://",
                });
            }
        };
        if !matches!(parsed.url.path(), "" | "/") {
            return Err(SettingsError::InvalidParameter {
                name: "path".to_owned(),
                value: parsed.url.path().to_owned(),
                reason: "an SMTP URL has no path",
            });
        }
        let credentials = match (parsed.user.is_empty(), parsed.password.is_empty()) {
            (true, true) => None,
            (false, false) => Some(SmtpCredentials {
                user: parsed.user,
                password: parsed.password,
            }),
            (true, false) => return Err(SettingsError::Missing { part: "user name" }),
            (false, true) => return Err(SettingsError::Missing { part: "password" }),
        };
        if security == SmtpSecurity::Plain && credentials.is_some() && !is_loopback(&parsed.host) {
            return Err(SettingsError::InvalidParameter {
                name: "tls".to_owned(),
                value: "none".to_owned(),
                reason: "refusing to send a password unencrypted to a host that is not loopback",
            });
        }
        Ok(Self {
            port: parsed.port.unwrap_or(default_port),
            host: parsed.host,
            security,
            credentials,
        })
    }

    /// The URL with the password replaced by `***`; reads back to the same settings.
    pub fn redacted(&self) -> String {
        let (scheme, parameter) = match self.security {
            SmtpSecurity::Tls => ("smtps", ""),
            SmtpSecurity::StartTls => ("smtp", "?tls=starttls"),
            SmtpSecurity::Plain => ("smtp", "?tls=none"),
        };
        let user = match &self.credentials {
            Some(credentials) => format!("{}:***@", encode_user(&credentials.user)),
            None => String::new(),
        };
        format!(
            "{scheme}://{user}{}:{}{parameter}",
            url_host(&self.host),
            self.port
        )
    }

    /// Connects, greets, upgrades to TLS and logs in. Every failure here is the relay's (down,
    /// misconfigured, wrong password), never the message's, so it is temporary whatever the
    /// reply code: the outbox keeps the message until the relay works again.
    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        let relay_error = |step: &str, error: lettre::transport::smtp::Error| {
            SendError::Temporary(format!("{}: {step} failed: {error}", self.endpoint()))
        };
        let tls_parameters = || {
            TlsParameters::new(self.host.clone()).map_err(|error| relay_error("TLS setup", error))
        };
        let hello = ClientId::default();
        let implicit_tls = match self.security {
            SmtpSecurity::Tls => Some(tls_parameters()?),
            SmtpSecurity::StartTls | SmtpSecurity::Plain => None,
        };
        let mut connection = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(CONNECT_TIMEOUT),
            &hello,
            implicit_tls,
            None,
        )
        .await
        .map_err(|error| relay_error("connect", error))?;
        if self.security == SmtpSecurity::StartTls {
            // Fails when the server does not offer STARTTLS: never fall back to plaintext.
            connection
                .starttls(tls_parameters()?, &hello)
                .await
                .map_err(|error| relay_error("STARTTLS", error))?;
        }
        if let Some(credentials) = &self.credentials {
            let credentials =
                Credentials::new(credentials.user.clone(), credentials.password.clone());
            connection
                .auth(DEFAULT_MECHANISMS, &credentials)
                .await
                .map_err(|error| relay_error("login", error))?;
        }
        Ok(connection)
    }

    async fn open_within(&self, limit: Duration) -> Result<AsyncSmtpConnection, SendError> {
        tokio::time::timeout(limit, self.open())
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Temporary(format!(
                    "{}: no complete greeting, TLS and login within {} s",
                    self.endpoint(),
                    limit.as_secs()
                )))
            })
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", url_host(&self.host), self.port)
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why a send failed, sorted by what the outbox should do about it. The text names the relay and
/// repeats the server's reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 4xx replies; connection, TLS, login and timeout problems (any reply code before the
    /// transaction starts: they concern the relay, not the message): retry later.
    #[error("temporary SMTP failure: {0}")]
    Temporary(String),
    /// 5xx replies to MAIL, RCPT or DATA and messages that cannot be sent as they are (bad
    /// addresses, 8-bit content to a 7-bit server): do not retry.
    #[error("permanent SMTP failure: {0}")]
    Permanent(String),
}

/// Connects, greets, upgrades TLS and logs in as configured, then says NOOP and QUIT.
pub async fn test_smtp(settings: &SmtpSettings) -> Result<(), SendError> {
    let mut connection = settings.open_within(DEADLINES.setup).await?;
    let answered =
        tokio::time::timeout(QUIT_TIMEOUT, connection.test_connected()).await == Ok(true);
    quit(connection).await;
    if answered {
        Ok(())
    } else {
        Err(SendError::Temporary(format!(
            "{}: the server did not answer NOOP",
            settings.endpoint()
        )))
    }
}

/// Sends `raw` as it is (its Message-ID and headers were fixed by the caller) to `recipients`,
/// with `mail_from` as the envelope sender (`""` for the null sender `<>`).
///
/// Two things are adjusted because SMTP requires them: bare CR or LF line ends become CRLF (a
/// bare LF before a dot is how SMTP smuggling works), and one final CRLF is dropped because the
/// end-of-data marker supplies it; a CRLF-terminated message therefore arrives byte for byte.
pub async fn send_raw(
    settings: &SmtpSettings,
    mail_from: &str,
    recipients: &[String],
    raw: &[u8],
) -> Result<(), SendError> {
    send_within(settings, mail_from, recipients, raw, &DEADLINES).await
}

async fn send_within(
    settings: &SmtpSettings,
    mail_from: &str,
    recipients: &[String],
    raw: &[u8],
    deadlines: &Deadlines,
) -> Result<(), SendError> {
    let from = if mail_from.is_empty() {
        None
    } else {
        Some(parse_address(mail_from, "sender")?)
    };
    let to = recipients
        .iter()
        .map(|recipient| parse_address(recipient, "recipient"))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::new(from, to)
        .map_err(|error| SendError::Permanent(format!("unusable envelope: {error}")))?;
    let data = smtp_data(raw);
    let mut connection = settings.open_within(deadlines.setup).await?;
    let sent = tokio::time::timeout(deadlines.transaction, connection.send(&envelope, &data)).await;
    let Ok(sent) = sent else {
        // The server may have stored the message without answering: a retry can duplicate it,
        // which the receiving side can spot by the unchanged Message-ID.
        return Err(SendError::Temporary(format!(
            "{}: no final reply within {} s; the message may or may not have been taken",
            settings.endpoint(),
            deadlines.transaction.as_secs()
        )));
    };
    quit(connection).await;
    sent.map(|_response| ())
        .map_err(|error| classify(settings, &error))
}

/// Says QUIT and closes; once the transaction is over its outcome no longer matters.
async fn quit(mut connection: AsyncSmtpConnection) {
    let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.abort()).await;
}

fn parse_address(address: &str, role: &str) -> Result<Address, SendError> {
    address.parse().map_err(|error| {
        SendError::Permanent(format!("invalid {role} address {address:?}: {error}"))
    })
}

/// Sorts a failure of the transaction (MAIL, RCPT, DATA) on an open connection.
fn classify(settings: &SmtpSettings, error: &lettre::transport::smtp::Error) -> SendError {
    let text = format!("{}: {error}", settings.endpoint());
    // At this stage a client error is lettre refusing the message for this server (non-ASCII
    // addresses without SMTPUTF8, 8-bit content without 8BITMIME): retrying will not help.
    if error.is_permanent() || error.is_client() {
        SendError::Permanent(text)
    } else {
        SendError::Temporary(text)
    }
}

/// The message as SMTP DATA content: CRLF line ends, without the final CRLF (see [`send_raw`]).
fn smtp_data(raw: &[u8]) -> Cow<'_, [u8]> {
    let conforming = raw.iter().enumerate().all(|(index, &byte)| match byte {
        b'\r' => raw.get(index + 1) == Some(&b'\n'),
        b'\n' => index > 0 && raw[index - 1] == b'\r',
        _ => true,
    });
    let mut data: Cow<'_, [u8]> = if conforming {
        Cow::Borrowed(raw)
    } else {
        let mut fixed = Vec::with_capacity(raw.len() + raw.len() / 32);
        let mut bytes = raw.iter().copied().peekable();
        while let Some(byte) = bytes.next() {
            match byte {
                b'\r' => {
                    bytes.next_if_eq(&b'\n');
                    fixed.extend_from_slice(b"\r\n");
                }
                b'\n' => fixed.extend_from_slice(b"\r\n"),
                other => fixed.push(other),
            }
        }
        Cow::Owned(fixed)
    };
    if data.ends_with(b"\r\n") {
        match &mut data {
            Cow::Borrowed(slice) => *slice = &slice[..slice.len() - 2],
            Cow::Owned(vec) => vec.truncate(vec.len() - 2),
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtps_is_implicit_tls_on_465_with_decoded_credentials() {
        let settings =
            SmtpSettings::from_url("smtps://out%40shop.test:p%40ss@smtp.example.com").expect("ok");
        assert_eq!(settings.security, SmtpSecurity::Tls);
        assert_eq!(settings.port, 465);
        assert_eq!(
            settings.credentials,
            Some(SmtpCredentials {
                user: "out@shop.test".to_owned(),
                password: "p@ss".to_owned()
            })
        );
    }

    #[test]
    fn smtp_requires_starttls_on_587_for_a_remote_host() {
        let settings = SmtpSettings::from_url("smtp://u:p@smtp.example.com").expect("ok");
        assert_eq!(settings.security, SmtpSecurity::StartTls);
        assert_eq!(settings.port, 587);
    }

    #[test]
    fn smtp_to_loopback_is_plain_unless_starttls_is_asked_for() {
        let plain = SmtpSettings::from_url("smtp://127.0.0.1:10025").expect("ok");
        assert_eq!(plain.security, SmtpSecurity::Plain);
        assert_eq!(plain.credentials, None);
        let forced = SmtpSettings::from_url("smtp://localhost:25?tls=starttls").expect("ok");
        assert_eq!(forced.security, SmtpSecurity::StartTls);
    }

    #[test]
    fn tls_none_is_plain_but_not_with_a_password_to_a_remote_host() {
        let settings = SmtpSettings::from_url("smtp://relay.lan:25?tls=none").expect("ok");
        assert_eq!(settings.security, SmtpSecurity::Plain);
        assert!(matches!(
            SmtpSettings::from_url("smtp://u:p@relay.lan:25?tls=none"),
            Err(SettingsError::InvalidParameter { .. })
        ));
        assert!(SmtpSettings::from_url("smtp://u:p@127.0.0.1:25?tls=none").is_ok());
    }

    #[test]
    fn unknown_parameters_schemes_and_tls_values_are_refused() {
        for url in [
            "smtp://h?tls=maybe",
            "smtps://h?tls=none",
            "smtp://h?pool=1",
            "lmtp://h",
            "smtp://h/path",
            "smtp://:p@h",
            "smtp://u@h",
        ] {
            assert!(SmtpSettings::from_url(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn redacted_hides_the_password_and_reads_back_to_the_same_settings() {
        for url in [
            "smtps://out%40shop.test:hunter2@smtp.example.com",
            "smtp://u:hunter2@smtp.example.com:2525",
            "smtp://[::1]:10025",
        ] {
            let settings = SmtpSettings::from_url(url).expect("ok");
            let redacted = settings.redacted();
            assert!(!redacted.contains("hunter2"), "{redacted}");
            assert!(!format!("{settings:?}").contains("hunter2"));
            let mut reread = SmtpSettings::from_url(&redacted.replace("***", "x")).expect("ok");
            if let Some(credentials) = &mut reread.credentials {
                credentials.password = "hunter2".to_owned();
            }
            assert_eq!(reread, settings, "{redacted}");
        }
    }

    #[test]
    fn crlf_messages_only_lose_the_final_crlf() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        assert_eq!(&*smtp_data(raw), b"Subject: x\r\n\r\nbody");
        assert!(matches!(smtp_data(raw), Cow::Borrowed(_)));
        assert_eq!(&*smtp_data(b"a\r\nb"), b"a\r\nb");
    }

    /// A server that accepts connections and then says nothing, or stops after DATA.
    async fn stalling_server(answer_until_data: bool) -> u16 {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let (read, mut write) = stream.into_split();
            if !answer_until_data {
                std::future::pending::<()>().await;
            }
            write
                .write_all(b"220 stall.test ESMTP\r\n")
                .await
                .expect("greet");
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply: &[u8] = match line.get(..4).unwrap_or("") {
                    "EHLO" => b"250 stall.test\r\n",
                    "MAIL" | "RCPT" => b"250 OK\r\n",
                    "DATA" => b"354 go on\r\n",
                    _ => continue,
                };
                write.write_all(reply).await.expect("reply");
            }
            std::future::pending::<()>().await;
        });
        port
    }

    const SHORT: Deadlines = Deadlines {
        setup: Duration::from_millis(300),
        transaction: Duration::from_millis(300),
    };

    #[tokio::test]
    async fn a_server_that_never_greets_is_a_temporary_error_after_the_setup_deadline() {
        let port = stalling_server(false).await;
        let settings = SmtpSettings::from_url(&format!("smtp://127.0.0.1:{port}")).expect("url");

        let sent = send_within(
            &settings,
            "a@b.test",
            &["c@d.test".to_owned()],
            b"x\r\n",
            &SHORT,
        )
        .await;

        assert!(
            matches!(&sent, Err(SendError::Temporary(text)) if text.contains("greeting")),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_the_data_is_a_temporary_error_after_the_deadline() {
        let port = stalling_server(true).await;
        let settings = SmtpSettings::from_url(&format!("smtp://127.0.0.1:{port}")).expect("url");

        let sent = send_within(
            &settings,
            "a@b.test",
            &["c@d.test".to_owned()],
            b"x\r\n",
            &SHORT,
        )
        .await;

        assert!(
            matches!(&sent, Err(SendError::Temporary(text)) if text.contains("may or may not")),
            "{sent:?}"
        );
    }

    #[test]
    fn bare_line_ends_become_crlf() {
        assert_eq!(
            &*smtp_data(b"Subject: x\n\nline\n.\nend\r\rlast\n"),
            b"Subject: x\r\n\r\nline\r\n.\r\nend\r\n\r\nlast"
        );
    }
}
