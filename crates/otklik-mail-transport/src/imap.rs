//! IMAP fetching: a `(UIDVALIDITY, last UID)` cursor decides what is new, never `\Seen`.
//!
//! Messages are read with `BODY.PEEK[]` (which leaves `\Seen` alone), handed to the sink in UID
//! order, and only after the sink said they are durably handled are they flagged `\Seen` (a
//! courtesy for people who look at the mailbox) and the cursor advanced.

pub(crate) mod connection;
mod fetch;
mod watch;

use std::fmt;

use async_trait::async_trait;

pub use fetch::{Deferred, FetchReport, fetch_new, test_imap};
pub use watch::{ImapWatchOptions, watch_imap};

use crate::settings::{SettingsError, encode_user, parse_server_url, url_host};
use crate::sink::DeliveryError;

/// Where and how to log in to fetch mail. `Debug` and [`ImapSettings::redacted`] hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    /// Implicit TLS (`imaps://`, port 993). `false` is plaintext (`imap://`): loopback and tests.
    pub tls: bool,
    pub user: String,
    pub password: String,
    /// The folder to fetch from, as the server names it (`INBOX`, `INBOX.Support`, …).
    pub folder: String,
}

impl ImapSettings {
    /// Parses `imaps://user:pass@host:993/INBOX` or `imap://user:pass@host:143/INBOX`.
    ///
    /// The user and password are percent-decoded (write `support%40shop.test` for an `@`), the
    /// port defaults to 993/143 and the folder (the percent-decoded path) to `INBOX`.
    pub fn from_url(url: &str) -> Result<Self, SettingsError> {
        let parsed = parse_server_url(url)?;
        let (tls, default_port) = match parsed.scheme.as_str() {
            "imaps" => (true, 993),
            "imap" => (false, 143),
            _ => {
                return Err(SettingsError::UnsupportedScheme {
                    scheme: parsed.scheme,
                    expected: "imaps:// or imap://",
                });
            }
        };
        if parsed.user.is_empty() {
            return Err(SettingsError::Missing { part: "user name" });
        }
        if parsed.password.is_empty() {
            return Err(SettingsError::Missing { part: "password" });
        }
        if let Some((name, value)) = parsed.url.query_pairs().next() {
            return Err(SettingsError::InvalidParameter {
                name: name.into_owned(),
                value: value.into_owned(),
                reason: "IMAP URLs take no parameters",
            });
        }
        let path = crate::settings::decode(parsed.url.path(), "folder")?;
        let folder = match path.trim_start_matches('/') {
            "" => "INBOX".to_owned(),
            folder => folder.to_owned(),
        };
        validate_folder(&folder)?;
        Ok(Self {
            host: parsed.host,
            port: parsed.port.unwrap_or(default_port),
            tls,
            user: parsed.user,
            password: parsed.password,
            folder,
        })
    }

    /// The URL with the password replaced by `***`, for logs and the settings page.
    pub fn redacted(&self) -> String {
        let scheme = if self.tls { "imaps" } else { "imap" };
        let folder = percent_encoding::utf8_percent_encode(&self.folder, FOLDER_IN_URL);
        format!(
            "{scheme}://{}:***@{}:{}/{folder}",
            encode_user(&self.user),
            url_host(&self.host),
            self.port
        )
    }
}

impl fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Path characters escaped in a redacted URL; `/` stays, it separates folder levels.
const FOLDER_IN_URL: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>');

fn validate_folder(folder: &str) -> Result<(), SettingsError> {
    let reason = if !folder.is_ascii() {
        // IMAP wants modified UTF-7 for such names; rather than guess, ask for the encoded name.
        "non-ASCII folder names must be given in IMAP's modified UTF-7 form"
    } else if folder.chars().any(|c| c.is_ascii_control()) {
        "control characters are not allowed"
    } else {
        return Ok(());
    };
    Err(SettingsError::InvalidFolder {
        folder: folder.to_owned(),
        reason,
    })
}

/// Where the fetch got to in one folder. UIDs only mean something under the same UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImapCursor {
    pub uid_validity: u32,
    /// The highest UID that was durably handled; everything above it is new.
    pub last_uid: u32,
}

/// Persists the cursor of one mailbox (the ingest use case keeps it next to the mailbox row).
#[async_trait]
pub trait CursorStore: Send + Sync {
    async fn load(&self) -> Result<Option<ImapCursor>, DeliveryError>;
    async fn save(&self, cursor: ImapCursor) -> Result<(), DeliveryError>;
}

/// An IMAP problem. Messages carry host, folder and UID, never the password.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to IMAP server {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS handshake with IMAP server {host} failed: {source}")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("IMAP server {host} refused the login of {user}: {detail}")]
    Login {
        host: String,
        user: String,
        detail: String,
    },
    #[error("cannot open folder {folder:?} on IMAP server {host}: {detail}")]
    Folder {
        host: String,
        folder: String,
        detail: String,
    },
    #[error("IMAP server {host} failed {operation} in folder {folder:?}: {detail}")]
    Protocol {
        host: String,
        folder: String,
        operation: &'static str,
        detail: String,
    },
    #[error("IMAP server {host} did not answer {operation} within {seconds} s")]
    Timeout {
        host: String,
        operation: &'static str,
        seconds: u64,
    },
    #[error(
        "IMAP server {host} lists UID {uid} in folder {folder:?} but returns no body for it; \
         not advancing past it"
    )]
    MissingBody {
        host: String,
        folder: String,
        uid: u32,
    },
    #[error("cursor store failed for folder {folder:?} on {host} (at UID {uid:?}): {source}")]
    Cursor {
        host: String,
        folder: String,
        uid: Option<u32>,
        #[source]
        source: DeliveryError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imaps_url_gives_tls_port_993_and_the_decoded_credentials() {
        let settings =
            ImapSettings::from_url("imaps://support%40shop.test:p%40ss%2Fw%20rd@mail.example.com/")
                .expect("valid");
        assert!(settings.tls);
        assert_eq!(settings.port, 993);
        assert_eq!(settings.host, "mail.example.com");
        assert_eq!(settings.user, "support@shop.test");
        assert_eq!(settings.password, "p@ss/w rd");
        assert_eq!(settings.folder, "INBOX");
    }

    #[test]
    fn an_imap_url_is_plaintext_on_port_143_with_the_folder_from_the_path() {
        let settings =
            ImapSettings::from_url("imap://u:p@127.0.0.1/INBOX.Support%20Desk").expect("valid");
        assert!(!settings.tls);
        assert_eq!(settings.port, 143);
        assert_eq!(settings.folder, "INBOX.Support Desk");
    }

    #[test]
    fn an_explicit_port_wins_over_the_default() {
        let settings = ImapSettings::from_url("imaps://u:p@h:1993/INBOX").expect("valid");
        assert_eq!(settings.port, 1993);
    }

    #[test]
    fn urls_without_user_or_password_or_with_other_schemes_are_refused() {
        assert_eq!(
            ImapSettings::from_url("imaps://host/INBOX"),
            Err(SettingsError::Missing { part: "user name" })
        );
        assert_eq!(
            ImapSettings::from_url("imaps://user@host/INBOX"),
            Err(SettingsError::Missing { part: "password" })
        );
        assert!(matches!(
            ImapSettings::from_url("pop3://u:p@host/"),
            Err(SettingsError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            ImapSettings::from_url("imaps://u:p@host/INBOX?x=1"),
            Err(SettingsError::InvalidParameter { .. })
        ));
    }

    #[test]
    fn a_non_ascii_folder_is_refused_with_a_hint() {
        let error = ImapSettings::from_url("imaps://u:p@host/%D0%9F%D0%BE%D0%B4%D0%B4%D0%B5%D1%80")
            .expect_err("non-ASCII");
        assert!(error.to_string().contains("modified UTF-7"), "{error}");
    }

    #[test]
    fn redacted_and_debug_hide_the_password_but_show_the_rest() {
        let settings =
            ImapSettings::from_url("imaps://support%40shop.test:hunter2@[::1]:993/A%20B")
                .expect("valid");
        let redacted = settings.redacted();
        assert_eq!(redacted, "imaps://support%40shop.test:***@[::1]:993/A%20B");
        assert!(!format!("{settings:?}").contains("hunter2"));
        let reparsed = ImapSettings::from_url(&redacted.replace("***", "x")).expect("readable");
        assert_eq!(reparsed.user, "support@shop.test");
        assert_eq!(reparsed.folder, "A B");
    }
}
