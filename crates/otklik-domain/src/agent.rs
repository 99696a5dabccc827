//! Staff: agents with a role, teams they belong to, and the tags they put on tickets.

use jiff::Timestamp;

use crate::DomainError;
use crate::ids::{AgentId, TagId, TeamId};
use crate::ticket::string_enum;

string_enum!(
    /// What a staff member may do; see [`crate::permission`] for the table.
    Role {
        /// Works tickets of their teams (and unrouted ones).
        Agent = "agent",
        /// Sees every queue, merges customers, manages tags and teams.
        Supervisor = "supervisor",
        /// Everything, including staff and API set-up.
        Admin = "admin",
    }
);

/// A staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub team_ids: Vec<TeamId>,
    /// Deactivated agents cannot sign in and their tokens stop working; history keeps them.
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    /// The interface language the agent chose (`ru` or `en`); `None` until they switch once.
    /// Saved on its own (`Mutation::SetAgentLocale`), never by an agent update.
    pub locale: Option<String>,
}

/// A team of agents (a queue: "Delivery", "Returns", "VIP").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub created_at: Timestamp,
}

/// A tag that can be put on tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: TagId,
    pub name: String,
    pub created_at: Timestamp,
}

/// Passwords shorter than this are refused; there is no upper rule beyond a sanity bound.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Checks a new password's length (argon2id makes long ones cheap enough to allow 1,000 chars).
pub fn check_password(password: &str) -> Result<(), DomainError> {
    let n_chars = password.chars().count();
    if n_chars < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n_chars > 1000 {
        return Err(DomainError::invalid(
            "password",
            "must be at most 1000 characters",
        ));
    }
    Ok(())
}

/// Normalises a tag name: lower case, `ё`→`е`, 1..=64 letters, digits, `_`, `-` or `.`.
pub fn normalize_tag(raw: &str) -> Result<String, DomainError> {
    let tag: String = raw
        .trim()
        .to_lowercase()
        .replace('ё', "е")
        .replace(' ', "_");
    let valid = !tag.is_empty()
        && tag.chars().count() <= 64
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(tag)
    } else {
        Err(DomainError::invalid(
            "tags",
            format!("{raw:?} is not a tag: use 1 to 64 letters, digits, '_', '-' or '.'"),
        ))
    }
}

/// Normalises, de-duplicates and sorts a list of tags (at most 50 on one ticket).
pub fn normalize_tag_list(raw: &[String]) -> Result<Vec<String>, DomainError> {
    let mut tags = raw
        .iter()
        .map(|tag| normalize_tag(tag))
        .collect::<Result<Vec<_>, _>>()?;
    tags.sort();
    tags.dedup();
    if tags.len() > 50 {
        return Err(DomainError::invalid(
            "tags",
            "a ticket takes at most 50 tags",
        ));
    }
    Ok(tags)
}

/// A team name: one line, 1..=100 characters.
pub fn parse_team_name(raw: &str) -> Result<String, DomainError> {
    let name: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "must be 1 to 100 characters"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_lower_cased_with_yo_folded_and_spaces_joined() {
        assert_eq!(normalize_tag(" Возврат Денег ").unwrap(), "возврат_денег");
        assert_eq!(normalize_tag("Ёлка").unwrap(), "елка");
    }

    #[test]
    fn tags_with_punctuation_are_refused() {
        assert!(normalize_tag("a,b").is_err());
        assert!(normalize_tag("<script>").is_err());
        assert!(normalize_tag("").is_err());
    }

    #[test]
    fn tag_lists_are_sorted_and_deduplicated() {
        let tags = normalize_tag_list(&["b".into(), "A".into(), "a".into()]).unwrap();
        assert_eq!(tags, vec!["a", "b"]);
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough passphrase").is_ok());
    }
}
