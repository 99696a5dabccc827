//! What IMAP and SMTP settings share: URL parsing errors and helpers.
//!
//! Error messages never contain the URL itself, because it carries a password.

use std::net::IpAddr;

use url::{Host, Url};

/// A mail server URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Not a URL at all (the URL is not repeated here: it may contain a password).
    #[error("not a valid URL: {reason}")]
    InvalidUrl { reason: String },
    /// A scheme this setting does not understand.
    #[error("unsupported scheme {scheme:?}; expected {expected}")]
    UnsupportedScheme {
        scheme: String,
        expected: &'static str,
    },
    /// The URL names no server.
    #[error("the URL names no host")]
    MissingHost,
    /// A required part (user name, password) is empty.
    #[error("the URL has no {part}")]
    Missing { part: &'static str },
    /// A percent-encoded part does not decode to UTF-8 text.
    #[error("the {part} in the URL is not valid UTF-8 after percent-decoding")]
    NotUtf8 { part: &'static str },
    /// An IMAP folder name that cannot be sent as given.
    #[error("invalid folder {folder:?}: {reason}")]
    InvalidFolder {
        folder: String,
        reason: &'static str,
    },
    /// An unknown query parameter or an unknown value of a known one.
    #[error("invalid URL parameter {name}={value:?}: {reason}")]
    InvalidParameter {
        name: String,
        value: String,
        reason: &'static str,
    },
}

/// A parsed server URL with its user and password already percent-decoded.
pub(crate) struct ServerUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub user: String,
    pub password: String,
    pub url: Url,
}

pub(crate) fn parse_server_url(text: &str) -> Result<ServerUrl, SettingsError> {
    let url = Url::parse(text.trim()).map_err(|error| SettingsError::InvalidUrl {
        reason: error.to_string(),
    })?;
    // Non-special schemes (imap, smtp) keep IP literals as opaque hosts, so only IPv6 needs
    // unbracketing here; the string form is what we connect to and show.
    let host = match url.host() {
        Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
        Some(Host::Ipv4(addr)) => addr.to_string(),
        Some(Host::Ipv6(addr)) => addr.to_string(),
        _ => return Err(SettingsError::MissingHost),
    };
    Ok(ServerUrl {
        scheme: url.scheme().to_ascii_lowercase(),
        host,
        port: url.port(),
        user: decode(url.username(), "user name")?,
        password: decode(url.password().unwrap_or(""), "password")?,
        url,
    })
}

pub(crate) fn decode(part: &str, what: &'static str) -> Result<String, SettingsError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| SettingsError::NotUtf8 { part: what })
}

/// Loopback hosts may be used without TLS: the traffic never leaves the machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|addr| addr.is_loopback())
}

/// `host` as it must appear in a URL (IPv6 literals in brackets).
pub(crate) fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The user name percent-encoded for a URL, so a redacted URL can still be read back.
pub(crate) fn encode_user(user: &str) -> String {
    percent_encoding::utf8_percent_encode(user, USERINFO).to_string()
}

/// Characters that must be escaped in the user-info part of a URL (RFC 3986).
pub(crate) const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'*');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_and_others_are_not() {
        assert!(is_loopback("localhost"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.3.2.1"));
        assert!(is_loopback("::1"));
        assert!(!is_loopback("mail.example.com"));
        assert!(!is_loopback("10.0.0.1"));
        assert!(!is_loopback("localhost.evil.example"));
    }

    #[test]
    fn an_invalid_url_error_does_not_repeat_the_url() {
        let error = parse_server_url("imaps://user:hunter2@ho st/INBOX")
            .err()
            .expect("a space in the host is invalid");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn user_and_password_are_percent_decoded() {
        let url = parse_server_url("imap://support%40shop.test:p%40ss%20word@127.0.0.1:143/")
            .expect("valid");
        assert_eq!(url.user, "support@shop.test");
        assert_eq!(url.password, "p@ss word");
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, Some(143));
    }

    #[test]
    fn an_ipv6_host_is_unbracketed_for_connecting_and_bracketed_for_urls() {
        let url = parse_server_url("smtp://[::1]:25").expect("valid");
        assert_eq!(url.host, "::1");
        assert_eq!(url_host(&url.host), "[::1]");
    }

    #[test]
    fn an_encoded_user_reads_back_as_the_same_user() {
        let user = "support@shop.test/ü:x";
        assert_eq!(decode(&encode_user(user), "user").expect("utf-8"), user);
    }
}
