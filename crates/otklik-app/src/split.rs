//! Splitting: a customer asked two things in one message, so one of them becomes a ticket of its
//! own. The message (text and attachments) is copied into a new ticket of the same customer and
//! channel; the original stays where it was, so the first ticket's conversation still reads as
//! it happened, and both tickets' histories say where the copy went and came from.

use otklik_domain::DomainError;
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::ids::{AttachmentId, MessageId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::permission::{Action, Principal};
use otklik_domain::ticket::{NewTicket, Ticket, TicketStatus, parse_subject};
use otklik_store::{Mutation, StoreError, UnitOfWork};

use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

impl App {
    /// Copies the customer's message `message_id` of `ticket_id` into a new ticket with
    /// `subject` (the original's subject when empty), in one unit of work with an audit event on
    /// each ticket. Returns the new ticket.
    pub async fn split_message(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        message_id: MessageId,
        subject: &str,
    ) -> AppResult<Ticket> {
        principal.require(Action::WriteTickets)?;
        for _ in 0..MAX_ATTEMPTS {
            let source = self.get_ticket(principal, ticket_id).await?;
            if let Some(survivor) = source.merged_into {
                let survivor_number = self
                    .store
                    .find_ticket(survivor)
                    .await?
                    .map_or(0, |ticket| ticket.number);
                return Err(DomainError::TicketMerged { survivor_number }.into());
            }
            source.ensure_editable(|| 0)?;
            let messages = self.store.list_messages(source.id).await?;
            let original = messages
                .into_iter()
                .find(|message| message.id == message_id)
                .ok_or(AppError::NotFound { what: "message" })?;
            if !matches!(original.author, Author::Customer(_))
                || original.visibility != MessageVisibility::Public
            {
                return Err(DomainError::invalid(
                    "message_id",
                    "only a customer's message can be split into a new ticket",
                )
                .into());
            }
            let subject = if subject.trim().is_empty() {
                source.subject.clone()
            } else {
                parse_subject(subject)?
            };
            let now = self.clock.now();
            let draft = NewTicket {
                id: TicketId::new(),
                subject,
                status: TicketStatus::New,
                priority: source.priority,
                channel: original.channel,
                customer_id: source.customer_id,
                // The team is where the question was routed; who answers it is decided anew.
                assignee_id: None,
                team_id: source.team_id,
                tags: Vec::new(),
                created_at: now,
            };
            let copy_id = MessageId::new();
            let copy = Message {
                id: copy_id,
                ticket_id: draft.id,
                author: original.author,
                visibility: MessageVisibility::Public,
                channel: original.channel,
                body: original.body.clone(),
                // The bytes are content-addressed blobs: the copy refers to the same ones.
                attachments: original
                    .attachments
                    .iter()
                    .map(|attachment| AttachmentMeta {
                        id: AttachmentId::new(),
                        ticket_id: draft.id,
                        message_id: copy_id,
                        ..attachment.clone()
                    })
                    .collect(),
                created_at: original.created_at,
            };
            let mut touched = source.clone();
            touched.updated_at = now;
            let actor = Actor::Agent(principal.agent_id);
            let mut created = draft.creation_changes();
            created.push(set("split_from_ticket_id", source.id));
            created.push(set("split_from_message_id", original.id));
            let unit = UnitOfWork::new()
                .with(Mutation::InsertTicket(draft.clone()))
                .with(Mutation::InsertMessage(copy))
                .with(Mutation::UpdateTicket {
                    ticket: touched,
                    expected_version: source.version,
                })
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor,
                    "ticket.created",
                    "ticket",
                    draft.id.0,
                    created,
                )))
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor,
                    "ticket.split",
                    "ticket",
                    source.id.0,
                    vec![
                        set("message_id", original.id),
                        set("new_ticket_id", draft.id),
                    ],
                )));
            match self.store.commit(unit).await {
                Ok(receipt) => {
                    let number = receipt.ticket_numbers.first().copied().ok_or_else(|| {
                        AppError::Store(StoreError::corrupt(
                            "the store gave the split ticket no number",
                        ))
                    })?;
                    return Ok(draft.into_ticket(number));
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::VersionConflict { what: "ticket" }.into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use otklik_domain::agent::Role;
    use otklik_domain::clock::SystemClock;
    use otklik_domain::customer::{IdentityKind, IdentityValue};
    use otklik_domain::ticket::Channel;
    use otklik_store::blobs::LocalBlobStore;
    use otklik_store_sqlite::SqliteStore;

    use super::*;
    use crate::auth::NewAgentInput;
    use crate::tickets::{
        AddMessageInput, AuthorKind, CreateTicketInput, CustomerRef, NewAttachment,
    };

    struct Setup {
        app: App,
        admin: Principal,
        ticket: Ticket,
        _folder: tempfile::TempDir,
    }

    async fn setup() -> Setup {
        let folder = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&folder.path().join("o.db")).unwrap());
        let blobs = Arc::new(LocalBlobStore::new(folder.path().join("blobs")));
        let app = App::new(store, blobs, Arc::new(SystemClock));
        let agent = app
            .create_admin_from_cli("admin@shop.test", "Анна", "long enough password".into())
            .await
            .unwrap();
        let admin = App::principal_of(&agent, None, None);
        let ticket = app
            .create_ticket(
                &admin,
                CreateTicketInput {
                    subject: "Заказ 1042".into(),
                    body: "Где заказ? И ещё: как вернуть куртку?".into(),
                    customer: CustomerRef::Identity {
                        identity: IdentityValue::parse(
                            IdentityKind::Email,
                            None,
                            "ivan@example.com",
                        )
                        .unwrap(),
                        name: Some("Иван".into()),
                    },
                    channel: Channel::Email,
                    priority: None,
                    status: None,
                    assignee_id: None,
                    team_id: None,
                    tags: vec![],
                    attachments: vec![NewAttachment {
                        file_name: "чек.txt".into(),
                        bytes: b"receipt".to_vec(),
                    }],
                },
                None,
            )
            .await
            .unwrap();
        Setup {
            app,
            admin,
            ticket,
            _folder: folder,
        }
    }

    #[tokio::test]
    async fn a_split_copies_the_message_and_its_files_into_a_new_ticket_of_the_same_customer() {
        let Setup {
            app,
            admin,
            ticket,
            _folder,
        } = setup().await;
        let original = app.list_messages(&admin, ticket.id).await.unwrap()[0].clone();
        let split = app
            .split_message(&admin, ticket.id, original.id, "Возврат куртки")
            .await
            .unwrap();
        assert_ne!(split.id, ticket.id);
        assert_eq!(split.number, ticket.number + 1);
        assert_eq!(split.subject, "Возврат куртки");
        assert_eq!(split.customer_id, ticket.customer_id);
        assert_eq!(split.status, TicketStatus::New);
        let copied = app.list_messages(&admin, split.id).await.unwrap();
        assert_eq!(copied.len(), 1);
        assert_eq!(copied[0].body, original.body);
        assert_eq!(copied[0].author, original.author);
        assert_eq!(copied[0].attachments.len(), 1);
        let file = &copied[0].attachments[0];
        assert_ne!(file.id, original.attachments[0].id);
        let (_, bytes) = app.get_attachment(&admin, file.id).await.unwrap();
        assert_eq!(bytes, b"receipt");
        assert_eq!(
            app.list_messages(&admin, ticket.id).await.unwrap().len(),
            1,
            "the original keeps its message"
        );
        let on_source = app.ticket_audit(&admin, ticket.id).await.unwrap();
        let split_event = on_source
            .iter()
            .find(|event| event.action == "ticket.split")
            .expect("the source's history names the split");
        assert!(
            split_event
                .changes
                .to_string()
                .contains(&split.id.to_string())
        );
        let on_new = app.ticket_audit(&admin, split.id).await.unwrap();
        assert!(
            on_new[0]
                .changes
                .to_string()
                .contains(&ticket.id.to_string())
        );
        assert_eq!(
            app.get_ticket(&admin, ticket.id).await.unwrap().version,
            ticket.version + 1
        );
    }

    #[tokio::test]
    async fn an_empty_subject_keeps_the_original_subject() {
        let Setup {
            app,
            admin,
            ticket,
            _folder,
        } = setup().await;
        let message = app.list_messages(&admin, ticket.id).await.unwrap()[0].id;
        let split = app
            .split_message(&admin, ticket.id, message, "  ")
            .await
            .unwrap();
        assert_eq!(split.subject, "Заказ 1042");
    }

    #[tokio::test]
    async fn notes_and_agent_replies_are_not_split_and_nothing_changes() {
        let Setup {
            app,
            admin,
            ticket,
            _folder,
        } = setup().await;
        let (note, _) = app
            .add_message(
                &admin,
                ticket.id,
                AddMessageInput {
                    body: "Внутренняя заметка".into(),
                    visibility: MessageVisibility::Internal,
                    author: AuthorKind::Agent,
                    status: None,
                    attachments: vec![],
                },
                None,
            )
            .await
            .unwrap();
        let before = app.get_ticket(&admin, ticket.id).await.unwrap();
        let error = app
            .split_message(&admin, ticket.id, note.id, "x")
            .await
            .unwrap_err();
        assert!(
            matches!(error, AppError::Domain(DomainError::Validation { .. })),
            "{error:?}"
        );
        let error = app
            .split_message(&admin, ticket.id, MessageId::new(), "x")
            .await
            .unwrap_err();
        assert!(matches!(error, AppError::NotFound { .. }), "{error:?}");
        assert_eq!(
            app.get_ticket(&admin, ticket.id).await.unwrap().version,
            before.version
        );
    }

    #[tokio::test]
    async fn an_agent_who_cannot_see_the_ticket_gets_not_found() {
        let Setup {
            app,
            admin,
            ticket,
            _folder,
        } = setup().await;
        let team = app.create_team(&admin, "Доставка").await.unwrap();
        let other = app.create_team(&admin, "Возвраты").await.unwrap();
        app.update_ticket(
            &admin,
            ticket.id,
            otklik_domain::ticket::TicketPatch {
                team_id: Some(Some(team.id)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let agent = app
            .create_agent(
                &admin,
                NewAgentInput {
                    email: "petr@shop.test".into(),
                    name: "Пётр".into(),
                    role: Role::Agent,
                    team_ids: vec![other.id],
                    password: None,
                },
            )
            .await
            .unwrap();
        let petr = App::principal_of(&agent, None, None);
        let message = app.list_messages(&admin, ticket.id).await.unwrap()[0].id;
        let error = app
            .split_message(&petr, ticket.id, message, "x")
            .await
            .unwrap_err();
        assert!(matches!(error, AppError::NotFound { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn a_merged_ticket_cannot_be_split() {
        let Setup {
            app,
            admin,
            ticket,
            _folder,
        } = setup().await;
        let message = app.list_messages(&admin, ticket.id).await.unwrap()[0].id;
        let other = app
            .split_message(&admin, ticket.id, message, "Второй")
            .await
            .unwrap();
        app.merge_tickets(&admin, ticket.id, other.id)
            .await
            .unwrap();
        let error = app
            .split_message(&admin, ticket.id, message, "x")
            .await
            .unwrap_err();
        assert!(
            matches!(error, AppError::Domain(DomainError::TicketMerged { survivor_number }) if survivor_number == other.number),
            "{error:?}"
        );
    }
}
