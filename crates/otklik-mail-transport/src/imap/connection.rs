//! Connecting and logging in, over plain TCP or implicit TLS, with every step under a deadline.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};

use super::{ImapError, ImapSettings};

/// Connecting, greeting, login, SELECT, STORE, LOGOUT: a healthy server answers in seconds.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Listing and fetching bodies move real data; a batch of large messages on a slow link takes time.
pub(crate) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) type Session = async_imap::Session<ImapStream>;

/// One type for both transports, because `async_imap::Session` is generic over its stream.
#[derive(Debug)]
pub(crate) enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Runs `operation` under a deadline. After a timeout the session is in an unknown state, so
/// callers drop it rather than reuse it.
pub(crate) async fn timed<T>(
    settings: &ImapSettings,
    operation: &'static str,
    limit: Duration,
    future: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| ImapError::Timeout {
            host: settings.host.clone(),
            operation,
            seconds: limit.as_secs(),
        })?
}

/// Maps a failed command to an error naming the host, folder and command.
pub(crate) fn protocol_error<'a>(
    settings: &'a ImapSettings,
    operation: &'static str,
) -> impl FnOnce(async_imap::error::Error) -> ImapError + 'a {
    move |error| ImapError::Protocol {
        host: settings.host.clone(),
        folder: settings.folder.clone(),
        operation,
        detail: error.to_string(),
    }
}

/// Connects, reads the greeting and logs in.
pub(crate) async fn login(settings: &ImapSettings) -> Result<Session, ImapError> {
    let stream = timed(settings, "connect", COMMAND_TIMEOUT, connect(settings)).await?;
    let mut client = async_imap::Client::new(stream);
    timed(settings, "greeting", COMMAND_TIMEOUT, async {
        let greeting = client
            .read_response()
            .await
            .map_err(|error| protocol_error(settings, "greeting")(error.into()))?;
        match greeting.as_ref().map(|response| response.parsed()) {
            Some(Response::Data {
                status: Status::Ok | Status::PreAuth,
                ..
            }) => Ok(()),
            Some(other) => Err(ImapError::Protocol {
                host: settings.host.clone(),
                folder: settings.folder.clone(),
                operation: "greeting",
                detail: format!("unexpected greeting {other:?}"),
            }),
            None => Err(protocol_error(settings, "greeting")(
                async_imap::error::Error::ConnectionLost,
            )),
        }
    })
    .await?;
    timed(settings, "LOGIN", COMMAND_TIMEOUT, async {
        client
            .login(&settings.user, &settings.password)
            .await
            .map_err(|(error, _client)| match error {
                async_imap::error::Error::No(detail) | async_imap::error::Error::Bad(detail) => {
                    ImapError::Login {
                        host: settings.host.clone(),
                        user: settings.user.clone(),
                        detail,
                    }
                }
                other => protocol_error(settings, "LOGIN")(other),
            })
    })
    .await
}

async fn connect(settings: &ImapSettings) -> Result<ImapStream, ImapError> {
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .map_err(|source| ImapError::Connect {
            host: settings.host.clone(),
            port: settings.port,
            source,
        })?;
    // IMAP is a ping-pong of small commands; Nagle only adds latency.
    let _ = tcp.set_nodelay(true);
    if !settings.tls {
        return Ok(ImapStream::Plain(tcp));
    }
    let tls_error = |source: io::Error| ImapError::Tls {
        host: settings.host.clone(),
        source,
    };
    let server_name = ServerName::try_from(settings.host.clone())
        .map_err(|error| tls_error(io::Error::new(io::ErrorKind::InvalidInput, error)))?;
    let config = client_config().map_err(|error| tls_error(io::Error::other(error)))?;
    let stream = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(tls_error)?;
    Ok(ImapStream::Tls(Box::new(stream)))
}

/// Certificates are checked against the Mozilla roots, so a self-signed server is refused.
fn client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Ends the session politely; the outcome does not matter any more, so failures are only traced.
pub(crate) async fn logout(settings: &ImapSettings, mut session: Session) {
    let result = tokio::time::timeout(COMMAND_TIMEOUT, session.logout()).await;
    if !matches!(result, Ok(Ok(()))) {
        tracing::debug!(imap = %settings.redacted(), "IMAP LOGOUT did not complete cleanly");
    }
}
