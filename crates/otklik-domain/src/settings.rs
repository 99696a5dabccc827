//! Instance settings an admin changes at run time (Admin → Settings): the helpdesk's name, the
//! default interface language, the public base URL that links in e-mails start with, and the
//! mailbox that sends system mail (password resets). Stored as named text values; this module
//! is the one place that knows the names and what a valid value is.

use crate::DomainError;
use crate::customer::parse_language;
use crate::ids::MailboxId;

/// The name shown when an admin has not chosen one.
pub const DEFAULT_HELPDESK_NAME: &str = "Otklik";

/// The stored names of the settings.
pub mod keys {
    pub const HELPDESK_NAME: &str = "helpdesk_name";
    pub const DEFAULT_LANGUAGE: &str = "default_language";
    pub const PUBLIC_BASE_URL: &str = "public_base_url";
    pub const SYSTEM_MAILBOX_ID: &str = "system_mailbox_id";
}

/// The settings of an instance, with defaults for the ones never saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    /// Shown in the page header and as the display name in the `From` of our e-mails.
    pub helpdesk_name: String,
    /// `ru` or `en`: the interface language for browsers that ask for neither.
    pub default_language: Option<String>,
    /// `https://help.shop.example` (no trailing slash): where links in e-mails point.
    pub public_base_url: Option<String>,
    /// The mailbox that sends password resets; `None` means the first mailbox.
    pub system_mailbox_id: Option<MailboxId>,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            helpdesk_name: DEFAULT_HELPDESK_NAME.to_owned(),
            default_language: None,
            public_base_url: None,
            system_mailbox_id: None,
        }
    }
}

impl InstanceSettings {
    /// Reads stored values; a value that no longer parses (written by a newer version, edited
    /// by hand) falls back to its default rather than breaking every page.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut settings = Self::default();
        for (name, value) in pairs {
            match name {
                keys::HELPDESK_NAME => {
                    if let Ok(name) = parse_helpdesk_name(value) {
                        settings.helpdesk_name = name;
                    }
                }
                keys::DEFAULT_LANGUAGE => settings.default_language = parse_language(value).ok(),
                keys::PUBLIC_BASE_URL => {
                    settings.public_base_url = parse_public_base_url(value).ok()
                }
                keys::SYSTEM_MAILBOX_ID => settings.system_mailbox_id = value.parse().ok(),
                _ => {}
            }
        }
        settings
    }

    /// Every setting as (name, stored value); `None` removes the stored value.
    pub fn to_pairs(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            (keys::HELPDESK_NAME, Some(self.helpdesk_name.clone())),
            (keys::DEFAULT_LANGUAGE, self.default_language.clone()),
            (keys::PUBLIC_BASE_URL, self.public_base_url.clone()),
            (
                keys::SYSTEM_MAILBOX_ID,
                self.system_mailbox_id.map(|id| id.to_string()),
            ),
        ]
    }
}

/// A helpdesk name: one line of 1..=100 characters (it goes into e-mail headers).
pub fn parse_helpdesk_name(raw: &str) -> Result<String, DomainError> {
    let name: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(DomainError::invalid("helpdesk_name", "must not be empty"));
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "helpdesk_name",
            "must be at most 100 characters on one line",
        ));
    }
    Ok(name)
}

/// A public base URL: absolute `http` or `https`, a host, an optional port and path, no user
/// name, query or fragment. The trailing `/` is dropped so paths can be appended.
pub fn parse_public_base_url(raw: &str) -> Result<String, DomainError> {
    let invalid = || {
        DomainError::invalid(
            "public_base_url",
            "must be an absolute http:// or https:// address such as https://help.example.com",
        )
    };
    let url = raw.trim();
    if url.len() > 2000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url["https://".len()..]
    } else if lower.starts_with("http://") {
        &url["http://".len()..]
    } else {
        return Err(invalid());
    };
    if rest.contains(['?', '#', '@', '\\']) {
        return Err(invalid());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-')));
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|port| port > 0));
    if !host_ok || !port_ok {
        return Err(invalid());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_and_https_urls_are_accepted_without_the_trailing_slash() {
        assert_eq!(
            parse_public_base_url(" https://help.shop.example/ ").unwrap(),
            "https://help.shop.example"
        );
        assert_eq!(
            parse_public_base_url("http://127.0.0.1:8080/otklik").unwrap(),
            "http://127.0.0.1:8080/otklik"
        );
        assert!(parse_public_base_url("https://[::1]:8443").is_ok());
    }

    #[test]
    fn relative_foreign_scheme_and_odd_urls_are_refused() {
        for bad in [
            "",
            "help.shop.example",
            "/reset",
            "ftp://help.shop.example",
            "javascript:alert(1)",
            "https://",
            "https://user@help.shop.example",
            "https://help.shop.example/?a=b",
            "https://help.shop.example/#x",
            "https://help shop.example",
            "https://help.shop.example:99999",
            "https://help.shop.example:port",
        ] {
            assert!(parse_public_base_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_values_read_back_and_broken_ones_fall_back_to_defaults() {
        let mailbox_id = MailboxId::new();
        let saved = InstanceSettings {
            helpdesk_name: "Магазин".into(),
            default_language: Some("en".into()),
            public_base_url: Some("https://help.shop.example".into()),
            system_mailbox_id: Some(mailbox_id),
        };
        let pairs = saved.to_pairs();
        let read = InstanceSettings::from_pairs(
            pairs
                .iter()
                .filter_map(|(name, value)| value.as_deref().map(|value| (*name, value))),
        );
        assert_eq!(read, saved);
        let broken = InstanceSettings::from_pairs([
            (keys::DEFAULT_LANGUAGE, "de"),
            (keys::PUBLIC_BASE_URL, "not a url"),
            (keys::HELPDESK_NAME, "   "),
        ]);
        assert_eq!(broken, InstanceSettings::default());
    }
}
