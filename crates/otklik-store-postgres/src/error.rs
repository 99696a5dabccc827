//! The one place where PostgreSQL errors become port errors.
//!
//! Constraint names are the migration's (named explicitly there); the port exposes stable,
//! backend-neutral names so the app can tell "that e-mail is taken" from "that team name is
//! taken" without knowing which database it runs on.

use otklik_store::StoreError;
use tokio_postgres::error::SqlState;

/// Maps a driver error: unique violations become [`StoreError::Conflict`] with the port's stable
/// constraint name, foreign-key violations become [`StoreError::NotFound`] (a mutation named a
/// row that does not exist), everything else is a [`StoreError::Database`].
pub(crate) fn map_error(error: tokio_postgres::Error) -> StoreError {
    let Some(db_error) = error.as_db_error() else {
        return StoreError::database(error);
    };
    let constraint = db_error.constraint().unwrap_or_default();
    if *db_error.code() == SqlState::UNIQUE_VIOLATION {
        return StoreError::Conflict {
            constraint: conflict_name(constraint),
        };
    }
    if *db_error.code() == SqlState::FOREIGN_KEY_VIOLATION {
        return StoreError::NotFound {
            what: referenced_kind(constraint),
        };
    }
    StoreError::database(error)
}

/// A pool failure (no connection could be made or handed out in time).
pub(crate) fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        // Keep the driver error as the source so its message (connection refused, …) shows.
        deadpool_postgres::PoolError::Backend(error) => map_error(error),
        other => StoreError::database(other),
    }
}

/// The stable name of a unique constraint, shared with the SQLite backend.
fn conflict_name(constraint: &str) -> String {
    let stable = match constraint {
        "agents_email_key" => "agents.email",
        "teams_name_key" => "teams.name",
        "tags_name_key" => "tags.name",
        "customer_identities_value_key" => "customer_identities.value",
        "idempotency_keys_pkey" => "idempotency_keys",
        "api_tokens_token_hash_key" => "api_tokens.token_hash",
        "tickets_number_key" => "tickets.number",
        "sessions_pkey" => "sessions.id_hash",
        "setup_tokens_pkey" => "setup_tokens.token_hash",
        "agent_teams_pkey" => "agent_teams",
        "ticket_tags_pkey" => "ticket_tags",
        "counters_pkey" => "counters.name",
        "mailboxes_name_key" => "mailboxes.name",
        "mailboxes_address_key" => "mailboxes.address",
        "emails_dedup_key_key" => "emails.dedup_key",
        "instance_secrets_pkey" => "instance_secrets.name",
        "visitors_external_id_key" => "visitors.external_id",
        "visitor_tokens_pkey" => "visitor_tokens.token_hash",
        "chats_pkey" => "chats.ticket_id",
        "chat_entries_pkey" => "chat_entries.seq",
        "chat_entries_client_id_key" => "chat_entries.client_id",
        "agent_chat_status_pkey" => "agent_chat_status.agent_id",
        // Every other primary key is a UUID `id` column: `<table>_pkey` → `<table>.id`.
        other => match other.strip_suffix("_pkey") {
            Some(table) => return format!("{table}.id"),
            // A constraint added by a later migration and not mapped yet: its raw name is still
            // more useful than nothing, and a test of that migration will ask for a stable one.
            None => other,
        },
    };
    stable.to_owned()
}

/// What kind of row a foreign key points at, from the constraint PostgreSQL generated for it
/// (`<table>_<column>_fkey`).
fn referenced_kind(constraint: &str) -> &'static str {
    let column = constraint.strip_suffix("_fkey").unwrap_or(constraint);
    // A chat entry's ticket id names the chat (the chats row), not only the ticket.
    if column == "chat_entries_ticket_id" {
        "chat"
    } else if column == "tickets_merged_into" || column.ends_with("_ticket_id") {
        "ticket"
    } else if column == "customers_merged_into"
        || column.ends_with("_customer_id")
        || column.ends_with("_source_id")
        || column.ends_with("_target_id")
    {
        "customer"
    } else if column.ends_with("_agent_id")
        || column.ends_with("_assignee_id")
        || column.ends_with("_merged_by")
    {
        "agent"
    } else if column.ends_with("_team_id") {
        "team"
    } else if column.ends_with("_tag_id") {
        "tag"
    } else if column.ends_with("_message_id") {
        "message"
    } else if column.ends_with("_site_id") {
        "chat site"
    } else if column.ends_with("_visitor_id") {
        "visitor"
    } else if column.ends_with("_mailbox_id") {
        "mailbox"
    } else {
        "referenced row"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_constraints_map_to_the_ports_stable_names() {
        assert_eq!(
            conflict_name("customer_identities_value_key"),
            "customer_identities.value"
        );
        assert_eq!(conflict_name("idempotency_keys_pkey"), "idempotency_keys");
        assert_eq!(conflict_name("tickets_pkey"), "tickets.id");
        assert_eq!(conflict_name("something_new"), "something_new");
        assert_eq!(conflict_name("chat_entries_pkey"), "chat_entries.seq");
        assert_eq!(
            conflict_name("chat_entries_client_id_key"),
            "chat_entries.client_id"
        );
        assert_eq!(
            conflict_name("visitors_external_id_key"),
            "visitors.external_id"
        );
    }

    #[test]
    fn foreign_keys_name_the_missing_kind_of_row() {
        assert_eq!(referenced_kind("tickets_customer_id_fkey"), "customer");
        assert_eq!(referenced_kind("tickets_merged_into_fkey"), "ticket");
        assert_eq!(referenced_kind("customers_merged_into_fkey"), "customer");
        assert_eq!(referenced_kind("attachments_message_id_fkey"), "message");
        assert_eq!(referenced_kind("customer_merges_merged_by_fkey"), "agent");
        assert_eq!(referenced_kind("ticket_tags_tag_id_fkey"), "tag");
        assert_eq!(referenced_kind("chat_entries_ticket_id_fkey"), "chat");
        assert_eq!(referenced_kind("chats_ticket_id_fkey"), "ticket");
        assert_eq!(referenced_kind("visitors_site_id_fkey"), "chat site");
        assert_eq!(referenced_kind("chats_visitor_id_fkey"), "visitor");
    }
}
