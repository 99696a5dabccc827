//! Customers and their identities. One person may write from an e-mail, a phone, the chat
//! widget, a messenger and a marketplace; each of those is an identity of one customer, and an
//! identity belongs to exactly one (unmerged) customer.

use jiff::Timestamp;

use crate::DomainError;
use crate::ids::{AgentId, CustomerId, CustomerMergeId, IdentityId, TicketId};
use crate::ticket::string_enum;

string_enum!(
    /// The kind of address a customer can be reached at.
    IdentityKind {
        Email = "email",
        Phone = "phone",
        /// An anonymous or logged-in visitor of the chat widget.
        ChatVisitor = "chat_visitor",
        /// A messenger account; `provider` says which (telegram, whatsapp, vk…).
        Messenger = "messenger",
        /// A marketplace buyer; `provider` says which (ozon, wildberries, yandex_market…).
        MarketplaceBuyer = "marketplace_buyer",
    }
);

/// One validated, normalised identity value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdentityValue {
    pub kind: IdentityKind,
    /// Empty for e-mail, phone and chat visitors.
    pub provider: String,
    pub value: String,
}

fn parse_provider(kind: IdentityKind, provider: Option<&str>) -> Result<String, DomainError> {
    let needs_provider = matches!(
        kind,
        IdentityKind::Messenger | IdentityKind::MarketplaceBuyer
    );
    match (
        needs_provider,
        provider.map(str::trim).filter(|p| !p.is_empty()),
    ) {
        (true, None) => Err(DomainError::invalid(
            "provider",
            format!("is required for {kind}"),
        )),
        (false, Some(_)) => Err(DomainError::invalid(
            "provider",
            format!("is not used for {kind}"),
        )),
        (false, None) => Ok(String::new()),
        (true, Some(provider)) => {
            let provider = provider.to_lowercase();
            let valid = provider.len() <= 40
                && provider
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if valid {
                Ok(provider)
            } else {
                Err(DomainError::invalid(
                    "provider",
                    "use latin letters, digits, '_' or '-'",
                ))
            }
        }
    }
}

/// Lower-cases and checks an e-mail address. It is a sanity check (one `@`, a dotted domain, no
/// spaces), not RFC 5322: deliverability is the mail channel's concern.
pub fn normalize_email(raw: &str) -> Result<String, DomainError> {
    let email = raw.trim().to_lowercase();
    let Some((local, domain)) = email.split_once('@') else {
        return Err(DomainError::invalid("email", "must contain @"));
    };
    let valid = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if valid {
        Ok(email)
    } else {
        Err(DomainError::invalid(
            "email",
            format!("{raw:?} is not an e-mail address"),
        ))
    }
}

/// Reduces a phone number to `+` and digits. A Russian trunk prefix (`8XXXXXXXXXX`) becomes
/// `+7XXXXXXXXXX`, so the two ways Russians write one number match.
pub fn normalize_phone(raw: &str) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    let allowed = trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if !allowed || !(7..=15).contains(&digits.len()) {
        return Err(DomainError::invalid(
            "phone",
            format!("{raw:?} is not a phone number"),
        ));
    }
    if !trimmed.starts_with('+') && digits.len() == 11 && digits.starts_with('8') {
        return Ok(format!("+7{}", &digits[1..]));
    }
    Ok(format!("+{digits}"))
}

impl IdentityValue {
    /// Validates and normalises an identity as given by a user or a channel.
    pub fn parse(
        kind: IdentityKind,
        provider: Option<&str>,
        value: &str,
    ) -> Result<Self, DomainError> {
        let provider = parse_provider(kind, provider)?;
        let value = match kind {
            IdentityKind::Email => normalize_email(value)?,
            IdentityKind::Phone => normalize_phone(value)?,
            IdentityKind::ChatVisitor
            | IdentityKind::Messenger
            | IdentityKind::MarketplaceBuyer => {
                let value = value.trim();
                if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
                    return Err(DomainError::invalid(
                        "value",
                        "must be 1 to 200 printable characters",
                    ));
                }
                value.to_owned()
            }
        };
        Ok(Self {
            kind,
            provider,
            value,
        })
    }
}

/// One identity of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: IdentityId,
    pub customer_id: CustomerId,
    pub value: IdentityValue,
    pub created_at: Timestamp,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    /// Preferred language for replies ("ru", "en"), if known.
    pub language: Option<String>,
    pub identities: Vec<Identity>,
    /// Set when merged into another customer.
    pub merged_into: Option<CustomerId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// A validated customer or agent display name: one line, 1..=200 characters.
pub fn parse_person_name(raw: &str) -> Result<String, DomainError> {
    let name: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > 200 {
        return Err(DomainError::invalid("name", "must be 1 to 200 characters"));
    }
    Ok(name)
}

/// A supported reply language.
pub fn parse_language(raw: &str) -> Result<String, DomainError> {
    match raw.trim().to_lowercase().as_str() {
        language @ ("ru" | "en") => Ok(language.to_owned()),
        other => Err(DomainError::invalid(
            "language",
            format!("{other:?} is not supported; use ru or en"),
        )),
    }
}

/// The record of one customer merge: what moved from the source to the target, so the merge can
/// be explained to an agent and undone exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMerge {
    pub id: CustomerMergeId,
    pub source_id: CustomerId,
    pub target_id: CustomerId,
    pub moved_identity_ids: Vec<IdentityId>,
    pub moved_ticket_ids: Vec<TicketId>,
    pub merged_by: Option<AgentId>,
    pub merged_at: Timestamp,
    pub undone_at: Option<Timestamp>,
}

/// Checks that `source` may be merged into `target`.
pub fn check_merge(source: &Customer, target: &Customer) -> Result<(), DomainError> {
    if source.id == target.id {
        return Err(DomainError::InvalidMerge(
            "a customer cannot be merged into itself".into(),
        ));
    }
    if source.merged_into.is_some() || target.merged_into.is_some() {
        return Err(DomainError::InvalidMerge(
            "an already merged customer cannot take part in a merge".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_trimmed() {
        assert_eq!(
            normalize_email("  Ivan.Petrov@Example.RU ").unwrap(),
            "ivan.petrov@example.ru"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "", "ivan", "ivan@", "@x.ru", "a@b", "a b@x.ru", "a@x.ru>", "a@@x.ru", "a@x.ru.",
        ] {
            assert!(normalize_email(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn russian_phones_written_two_ways_normalise_to_one() {
        assert_eq!(
            normalize_phone("8 (916) 123-45-67").unwrap(),
            "+79161234567"
        );
        assert_eq!(normalize_phone("+7 916 123 45 67").unwrap(), "+79161234567");
        assert_eq!(
            normalize_phone("+44 20 7946 0958").unwrap(),
            "+442079460958"
        );
    }

    #[test]
    fn phones_with_letters_or_too_few_digits_are_refused() {
        assert!(normalize_phone("call me").is_err());
        assert!(normalize_phone("12345").is_err());
        assert!(normalize_phone("+7 916 ABC").is_err());
    }

    #[test]
    fn messenger_identities_need_a_provider_and_email_ones_refuse_it() {
        assert!(IdentityValue::parse(IdentityKind::Messenger, None, "12345").is_err());
        let telegram =
            IdentityValue::parse(IdentityKind::Messenger, Some("Telegram"), "12345").unwrap();
        assert_eq!(telegram.provider, "telegram");
        assert!(IdentityValue::parse(IdentityKind::Email, Some("gmail"), "a@b.ru").is_err());
    }
}
