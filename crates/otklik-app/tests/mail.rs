//! The email use cases on a real SQLite store: ingesting raw mail into the right ticket, the
//! outbox, bounces, loops and the corpora. Protocols are elsewhere (otklik-mail-transport and
//! the server's tests against dovecot and aiosmtpd); here a recording transport stands in for
//! the SMTP server so every rule can be driven and checked exactly.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::SignedDuration;
use otklik_app::App;
use otklik_app::mail::{IngestOutcome, MailTransport, MailboxInput, SendFailure};
use otklik_app::tickets::{AddMessageInput, AuthorKind};
use otklik_domain::clock::FakeClock;
use otklik_domain::email::{EmailDirection, EmailStatus, Mailbox};
use otklik_domain::ids::TicketId;
use otklik_domain::message::{Author, MessageVisibility};
use otklik_domain::permission::Principal;
use otklik_domain::ticket::{TicketPatch, TicketStatus};
use otklik_store::blobs::LocalBlobStore;
use otklik_store_sqlite::SqliteStore;

struct Harness {
    app: App,
    clock: Arc<FakeClock>,
    admin: Principal,
    mailbox: Mailbox,
    _folder: tempfile::TempDir,
}

async fn harness() -> Harness {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&folder.path().join("otklik.db")).unwrap());
    let blobs = Arc::new(LocalBlobStore::new(folder.path().join("blobs")));
    let clock = Arc::new(FakeClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
    let app = App::new(store, blobs, clock.clone());
    let admin = app
        .create_admin_from_cli("admin@shop.test", "Admin", "a long enough password".into())
        .await
        .unwrap();
    let mailbox = app
        .create_mailbox_from_cli(MailboxInput {
            name: "support".into(),
            address: "support@shop.test".into(),
            imap_url: None,
            smtp_url: Some("smtp://127.0.0.1:2525?tls=none".into()),
            auto_acknowledge: true,
        })
        .await
        .unwrap();
    Harness {
        admin: App::principal_of(&admin, None, None),
        app,
        clock,
        mailbox,
        _folder: folder,
    }
}

/// Records what would have been sent; fails as told.
#[derive(Default)]
struct RecordingTransport {
    sent: Mutex<Vec<(Vec<String>, Vec<u8>)>>,
    next_failures: Mutex<Vec<SendFailure>>,
}

impl RecordingTransport {
    fn sent(&self) -> Vec<(Vec<String>, Vec<u8>)> {
        self.sent.lock().unwrap().clone()
    }
    fn fail_next(&self, failure: SendFailure) {
        self.next_failures.lock().unwrap().push(failure);
    }
}

#[async_trait]
impl MailTransport for RecordingTransport {
    async fn send(
        &self,
        _smtp_url: &str,
        _mail_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<(), SendFailure> {
        if let Some(failure) = self.next_failures.lock().unwrap().pop() {
            return Err(failure);
        }
        self.sent
            .lock()
            .unwrap()
            .push((recipients.to_vec(), raw.to_vec()));
        Ok(())
    }
    async fn check_imap(&self, _imap_url: &str) -> Result<(), String> {
        Ok(())
    }
    async fn check_smtp(&self, _smtp_url: &str) -> Result<(), String> {
        Ok(())
    }
}

fn mail(message_id: &str, from: &str, subject: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: Support <support@shop.test>\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\n{extra_headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn parse(raw: &[u8]) -> otklik_email::InboundEmail {
    otklik_email::parse_inbound(raw, &otklik_email::ParseLimits::default()).unwrap()
}

async fn ingest(h: &Harness, raw: Vec<u8>) -> IngestOutcome {
    h.app.ingest_email(&h.mailbox, raw).await.unwrap()
}

fn ticket_of(outcome: &IngestOutcome) -> (TicketId, bool) {
    match outcome {
        IngestOutcome::Ticket {
            ticket_id, created, ..
        } => (*ticket_id, *created),
        other => panic!("expected a ticket, got {other:?}"),
    }
}

async fn reply_as_agent(h: &Harness, ticket_id: TicketId, body: &str) {
    h.app
        .add_message(
            &h.admin,
            ticket_id,
            AddMessageInput {
                body: body.into(),
                visibility: MessageVisibility::Public,
                author: AuthorKind::Agent,
                status: None,
                attachments: vec![],
            },
            None,
        )
        .await
        .unwrap();
}

/// The outbound e-mails of a ticket that a person wrote (not acknowledgements).
async fn replies(h: &Harness, ticket_id: TicketId) -> Vec<otklik_domain::email::EmailRecord> {
    h.app
        .ticket_emails(&h.admin, ticket_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|email| email.direction == EmailDirection::Outbound && !email.automatic)
        .collect()
}

#[tokio::test]
async fn a_new_email_opens_a_ticket_for_its_sender_with_the_display_name_and_copies_recorded() {
    let h = harness().await;
    let raw = mail(
        "m1@customer.test",
        "=?utf-8?B?0JDQvdC90LAg0J/QtdGC0YDQvtCy0LA=?= <Anna@Customer.test>",
        "Где мой заказ?",
        "Cc: Boris <boris@customer.test>\r\n",
        "Здравствуйте!",
    );
    let (ticket_id, created) = ticket_of(&ingest(&h, raw).await);
    assert!(created);
    let ticket = h.app.get_ticket(&h.admin, ticket_id).await.unwrap();
    assert_eq!(ticket.subject, "Где мой заказ?");
    let customer = h
        .app
        .get_customer(&h.admin, ticket.customer_id)
        .await
        .unwrap();
    assert_eq!(customer.name, "Анна Петрова");
    assert_eq!(customer.identities[0].value.value, "anna@customer.test");
    let emails = h.app.ticket_emails(&h.admin, ticket_id).await.unwrap();
    let inbound = emails
        .iter()
        .find(|e| e.direction == EmailDirection::Inbound)
        .unwrap();
    assert_eq!(inbound.status, EmailStatus::Processed);
    assert!(
        inbound
            .recipients
            .contains(&"boris@customer.test".to_owned())
    );
    let raw_back = h.app.raw_email(&h.admin, inbound.id).await.unwrap();
    assert!(
        raw_back.starts_with(b"From: =?utf-8?B?"),
        "the raw message is kept as received"
    );
}

#[tokio::test]
async fn the_same_email_delivered_twice_or_concurrently_is_one_message() {
    let h = harness().await;
    let raw = mail(
        "twice@customer.test",
        "c@customer.test",
        "Twice",
        "",
        "Hello",
    );
    let first = ingest(&h, raw.clone()).await;
    let (ticket_id, _) = ticket_of(&first);
    assert!(matches!(
        ingest(&h, raw.clone()).await,
        IngestOutcome::Duplicate {
            ticket_number: Some(_)
        }
    ));
    let racing = mail("race@customer.test", "d@customer.test", "Race", "", "Hello");
    let outcomes =
        futures::future::join_all((0..8).map(|_| h.app.ingest_email(&h.mailbox, racing.clone())))
            .await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(IngestOutcome::Ticket { .. })))
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(
        h.app
            .list_messages(&h.admin, ticket_id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_reply_threads_by_our_message_id_and_reopens_the_solved_ticket() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    let (ticket_id, _) = ticket_of(
        &ingest(
            &h,
            mail(
                "q1@customer.test",
                "c@customer.test",
                "Размер",
                "",
                "Какой размер?",
            ),
        )
        .await,
    );
    reply_as_agent(&h, ticket_id, "Берите M.").await;
    let report = h.app.deliver_due_emails(&transport).await.unwrap();
    assert_eq!(
        report.sent, 2,
        "the acknowledgement and the reply: {report:?}"
    );
    let (recipients, raw) = transport
        .sent()
        .into_iter()
        .find(|(_, raw)| !String::from_utf8_lossy(raw).contains("Auto-Submitted"))
        .unwrap();
    assert_eq!(recipients, vec!["c@customer.test".to_owned()]);
    let sent = parse(&raw);
    assert_eq!(sent.in_reply_to, vec!["q1@customer.test".to_owned()]);
    assert!(
        sent.subject.starts_with("Re: Размер [#"),
        "{}",
        sent.subject
    );
    assert_eq!(sent.text.trim(), "Берите M.");
    assert!(
        sent.html
            .as_deref()
            .is_some_and(|html| otklik_email::html_to_text(html).contains("Берите M.")),
        "an HTML part too"
    );
    let our_id = sent.message_id.unwrap();
    assert_eq!(replies(&h, ticket_id).await[0].status, EmailStatus::Sent);

    h.app
        .update_ticket(
            &h.admin,
            ticket_id,
            TicketPatch {
                status: Some(TicketStatus::Solved),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // A new subject, a different From display: still the thread of our Message-ID.
    let answer = mail(
        "q2@customer.test",
        "Customer <c@customer.test>",
        "Спасибо",
        &format!("In-Reply-To: <{our_id}>\r\n"),
        "Спасибо!",
    );
    let (threaded, created) = ticket_of(&ingest(&h, answer).await);
    assert_eq!((threaded, created), (ticket_id, false));
    let ticket = h.app.get_ticket(&h.admin, ticket_id).await.unwrap();
    assert_eq!(
        ticket.status,
        TicketStatus::Open,
        "a customer reply reopens"
    );
}

#[tokio::test]
async fn a_reply_token_in_a_plus_address_threads_even_without_references() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    let (ticket_id, _) = ticket_of(
        &ingest(
            &h,
            mail(
                "t1@customer.test",
                "c@customer.test",
                "Return",
                "",
                "Return please",
            ),
        )
        .await,
    );
    h.app.deliver_due_emails(&transport).await.unwrap();
    let (_, ack) = transport.sent().pop().expect("an acknowledgement");
    let ack = parse(&ack);
    let reply_to = ack.reply_to[0].address.clone();
    assert!(reply_to.starts_with("support+"), "{reply_to}");
    let answer = format!(
        "From: c@customer.test\r\nTo: {reply_to}\r\nSubject: new words\r\nMessage-ID: <t2@customer.test>\r\n\r\nmore\r\n"
    );
    let (threaded, created) = ticket_of(&ingest(&h, answer.into_bytes()).await);
    assert_eq!((threaded, created), (ticket_id, false));
    // A forged token (right shape, wrong signature) threads nowhere.
    let forged = reply_to.replacen('+', "+0", 1);
    let forged_mail = format!(
        "From: c@customer.test\r\nTo: {forged}\r\nSubject: x\r\nMessage-ID: <t3@customer.test>\r\n\r\nx\r\n"
    );
    assert!(
        ticket_of(&ingest(&h, forged_mail.into_bytes()).await).1,
        "a new ticket"
    );
}

#[tokio::test]
async fn the_subject_number_threads_only_for_the_tickets_own_customer_never_by_sender_or_control_header()
 {
    let h = harness().await;
    let (ticket_id, _) = ticket_of(
        &ingest(
            &h,
            mail(
                "s1@customer.test",
                "owner@customer.test",
                "Refund",
                "",
                "Refund",
            ),
        )
        .await,
    );
    let number = h.app.get_ticket(&h.admin, ticket_id).await.unwrap().number;
    let from_owner = mail(
        "s2@customer.test",
        "owner@customer.test",
        &format!("Re: Refund [#{number}]"),
        "",
        "again",
    );
    assert_eq!(ticket_of(&ingest(&h, from_owner).await), (ticket_id, false));
    // Someone else quoting the number gets a ticket of their own: a number is guessable.
    let from_stranger = mail(
        "s3@evil.test",
        "stranger@evil.test",
        &format!("Re: Refund [#{number}]"),
        "",
        "let me in",
    );
    let (other, created) = ticket_of(&ingest(&h, from_stranger).await);
    assert!(created && other != ticket_id);
    // The owner's address alone, with no reference, starts a new conversation too.
    let (third, created) = ticket_of(
        &ingest(
            &h,
            mail(
                "s4@customer.test",
                "owner@customer.test",
                "Another question",
                "",
                "?",
            ),
        )
        .await,
    );
    assert!(created && third != ticket_id);
    // Headers that claim to be ours are not trusted from outside.
    let claiming = mail(
        "s5@evil.test",
        "stranger@evil.test",
        "hi",
        &format!("X-Otklik-Ticket: {ticket_id}\r\nX-Otklik-Ticket-Number: {number}\r\n"),
        "x",
    );
    assert!(ticket_of(&ingest(&h, claiming).await).1);
    assert_eq!(
        h.app
            .list_messages(&h.admin, ticket_id)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn replies_to_a_merged_ticket_reach_the_survivor_and_to_a_closed_one_open_a_new_ticket() {
    let h = harness().await;
    let (merged, _) = ticket_of(
        &ingest(
            &h,
            mail("g1@customer.test", "c@customer.test", "A", "", "a"),
        )
        .await,
    );
    let (survivor, _) = ticket_of(
        &ingest(
            &h,
            mail("g2@customer.test", "c@customer.test", "B", "", "b"),
        )
        .await,
    );
    h.app
        .merge_tickets(&h.admin, merged, survivor)
        .await
        .unwrap();
    let to_merged = mail(
        "g3@customer.test",
        "c@customer.test",
        "Re: A",
        "In-Reply-To: <g1@customer.test>\r\n",
        "c",
    );
    assert_eq!(ticket_of(&ingest(&h, to_merged).await), (survivor, false));
    for status in [TicketStatus::Solved, TicketStatus::Closed] {
        h.app
            .update_ticket(
                &h.admin,
                survivor,
                TicketPatch {
                    status: Some(status),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let to_closed = mail(
        "g4@customer.test",
        "c@customer.test",
        "Re: B",
        "In-Reply-To: <g2@customer.test>\r\n",
        "d",
    );
    let (fresh, created) = ticket_of(&ingest(&h, to_closed).await);
    assert!(created && fresh != survivor);
}

#[tokio::test]
async fn a_bounce_marks_the_reply_failed_with_its_reason_and_opens_no_ticket() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    let (ticket_id, _) = ticket_of(
        &ingest(
            &h,
            mail("b1@customer.test", "gone@customer.test", "Hi", "", "hi"),
        )
        .await,
    );
    reply_as_agent(&h, ticket_id, "Hello").await;
    h.app.deliver_due_emails(&transport).await.unwrap();
    let reply = replies(&h, ticket_id).await.remove(0);
    let original = reply.message_id_header.clone().unwrap();
    let dsn = format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\nTo: support@shop.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.customer.test>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n\
         Final-Recipient: rfc822; gone@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original}>\r\nSubject: Re: Hi\r\n\r\n--b--\r\n"
    );
    let outcome = ingest(&h, dsn.into_bytes()).await;
    assert!(
        matches!(outcome, IngestOutcome::Ignored { .. }),
        "{outcome:?}"
    );
    let reply = h.app.get_email(&h.admin, reply.id).await.unwrap();
    assert_eq!(reply.status, EmailStatus::Failed);
    let reason = reply.status_reason.unwrap();
    assert!(
        reason.contains("5.1.1") && reason.contains("gone@customer.test"),
        "{reason}"
    );
    assert_eq!(
        h.app
            .list_messages(&h.admin, ticket_id)
            .await
            .unwrap()
            .len(),
        2,
        "no message from the bounce"
    );
}

#[tokio::test]
async fn our_own_mail_coming_back_is_ignored_and_never_answered() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    let (ticket_id, _) = ticket_of(
        &ingest(
            &h,
            mail("o1@customer.test", "c@customer.test", "Loop", "", "x"),
        )
        .await,
    );
    reply_as_agent(&h, ticket_id, "answer").await;
    h.app.deliver_due_emails(&transport).await.unwrap();
    let sent_before = transport.sent().len();
    for (_, raw) in transport.sent() {
        // A forwarding rule sends our own mail straight back to the support address.
        assert!(matches!(
            ingest(&h, raw).await,
            IngestOutcome::Ignored { .. }
        ));
    }
    h.app.deliver_due_emails(&transport).await.unwrap();
    assert_eq!(
        transport.sent().len(),
        sent_before,
        "nothing answered our own mail"
    );
}

#[tokio::test]
async fn acknowledgements_skip_automatic_mail_and_stop_at_the_hourly_cap() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    for (n, header) in [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "Precedence: bulk\r\n",
        "Precedence: list\r\n",
        "List-Id: <news.customer.test>\r\n",
        "X-Autoreply: yes\r\n",
        "Return-Path: <>\r\n",
    ]
    .iter()
    .enumerate()
    {
        let raw = mail(
            &format!("auto{n}@peer.test"),
            "robot@peer.test",
            "Away",
            header,
            "away",
        );
        ticket_of(&ingest(&h, raw).await);
    }
    h.app.deliver_due_emails(&transport).await.unwrap();
    assert!(
        transport.sent().is_empty(),
        "no acknowledgement to automatic mail"
    );
    // `Auto-Submitted: no` is a person: acknowledged.
    ticket_of(
        &ingest(
            &h,
            mail(
                "person@peer.test",
                "human@peer.test",
                "Hi",
                "Auto-Submitted: no\r\n",
                "hi",
            ),
        )
        .await,
    );
    for n in 0..10 {
        let raw = mail(
            &format!("naive{n}@peer.test"),
            "naive@peer.test",
            "Away",
            "",
            "away",
        );
        ticket_of(&ingest(&h, raw).await);
    }
    h.app.deliver_due_emails(&transport).await.unwrap();
    let to = |address: &str| {
        transport
            .sent()
            .iter()
            .filter(|(r, _)| r[0] == address)
            .count() as i64
    };
    assert_eq!(to("human@peer.test"), 1);
    assert_eq!(
        to("naive@peer.test"),
        otklik_domain::email::AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR
    );
    for (_, raw) in transport.sent() {
        let text = String::from_utf8_lossy(&raw).to_string();
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    }
    // An hour later the cap has room again.
    h.clock.advance(SignedDuration::from_mins(61));
    ticket_of(
        &ingest(
            &h,
            mail(
                "naive-late@peer.test",
                "naive@peer.test",
                "Away",
                "",
                "away",
            ),
        )
        .await,
    );
    h.app.deliver_due_emails(&transport).await.unwrap();
    assert_eq!(
        to("naive@peer.test"),
        otklik_domain::email::AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR + 1
    );
}

#[tokio::test]
async fn the_outbox_retries_temporary_failures_later_and_shows_permanent_ones_until_retried() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    let raw = mail(
        "r1@customer.test",
        "c@customer.test",
        "Hi",
        "Auto-Submitted: auto-generated\r\n",
        "hi",
    );
    let (ticket_id, _) = ticket_of(&ingest(&h, raw).await);
    reply_as_agent(&h, ticket_id, "first answer").await;
    transport.fail_next(SendFailure::Temporary("451 try later".into()));
    let report = h.app.deliver_due_emails(&transport).await.unwrap();
    assert_eq!((report.sent, report.retried), (0, 1));
    let queued = replies(&h, ticket_id).await.remove(0);
    assert_eq!(queued.status, EmailStatus::Queued);
    assert_eq!(queued.status_reason.as_deref(), Some("451 try later"));
    // Not due yet: nothing is sent.
    assert_eq!(h.app.deliver_due_emails(&transport).await.unwrap().sent, 0);
    h.clock.advance(SignedDuration::from_mins(2));
    assert_eq!(h.app.deliver_due_emails(&transport).await.unwrap().sent, 1);
    assert_eq!(replies(&h, ticket_id).await[0].status, EmailStatus::Sent);

    reply_as_agent(&h, ticket_id, "second answer").await;
    transport.fail_next(SendFailure::Permanent("550 mailbox unavailable".into()));
    assert_eq!(
        h.app.deliver_due_emails(&transport).await.unwrap().failed,
        1
    );
    let failed = replies(&h, ticket_id)
        .await
        .into_iter()
        .find(|email| email.status == EmailStatus::Failed)
        .unwrap();
    assert_eq!(
        failed.status_reason.as_deref(),
        Some("550 mailbox unavailable")
    );
    h.app.retry_email(&h.admin, failed.id).await.unwrap();
    assert_eq!(h.app.deliver_due_emails(&transport).await.unwrap().sent, 1);
    assert!(
        replies(&h, ticket_id)
            .await
            .iter()
            .all(|e| e.status == EmailStatus::Sent)
    );
}

#[tokio::test]
async fn html_mail_is_sanitised_with_inline_images_pointing_at_stored_attachments() {
    let h = harness().await;
    let raw = "From: c@customer.test\r\nTo: support@shop.test\r\nSubject: Photo\r\nMessage-ID: <h1@customer.test>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n\
        --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <p onclick=\"steal()\">Вот <b>фото</b></p><img src=\"cid:photo1\"><script>alert(1)</script>\
        <img src=\"https://tracker.example/p.gif\"><blockquote>old</blockquote>\r\n\
        --r\r\nContent-Type: image/png\r\nContent-ID: <photo1>\r\nContent-Disposition: inline; filename=\"../../etc/passwd.png\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n--r--\r\n";
    let (ticket_id, _) = ticket_of(&ingest(&h, raw.as_bytes().to_vec()).await);
    let messages = h.app.list_messages(&h.admin, ticket_id).await.unwrap();
    let attachment = &messages[0].attachments[0];
    assert_eq!(attachment.content_type, "image/png");
    assert!(
        !attachment.file_name.contains('/'),
        "{}",
        attachment.file_name
    );
    assert!(matches!(messages[0].author, Author::Customer(_)));
    let email = h
        .app
        .ticket_emails(&h.admin, ticket_id)
        .await
        .unwrap()
        .remove(0);
    let html = email.html_body.unwrap();
    assert!(
        html.contains(&format!("/api/v1/attachments/{}", attachment.id)),
        "{html}"
    );
    for gone in ["<script", "onclick", "tracker.example", "cid:"] {
        assert!(!html.contains(gone), "{gone} survived: {html}");
    }
}

#[tokio::test]
async fn quarantined_mail_is_kept_raw_for_admins_and_stays_quarantined_when_reprocessing_fails() {
    let h = harness().await;
    let garbage = b"\x00\x01\x02 no headers here".to_vec();
    let outcome = ingest(&h, garbage.clone()).await;
    let IngestOutcome::Quarantined { email_id, reason } = outcome else {
        panic!("expected quarantine, got {outcome:?}");
    };
    assert!(!reason.is_empty());
    assert_eq!(h.app.raw_email(&h.admin, email_id).await.unwrap(), garbage);
    let listed = h
        .app
        .list_emails_with_status(&h.admin, EmailStatus::Quarantined, None, 50)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![email_id]
    );
    assert!(matches!(
        h.app.reprocess_email(&h.admin, email_id).await.unwrap(),
        IngestOutcome::Quarantined { .. }
    ));
    assert!(
        matches!(ingest(&h, garbage).await, IngestOutcome::Duplicate { .. }),
        "the same bytes again"
    );
}

#[tokio::test]
async fn every_mail_of_the_corpora_is_stored_quarantined_or_ignored_never_lost() {
    let h = harness().await;
    let mut files = otklik_email::corpora::mail_parser_eml_files();
    files.extend(otklik_email::corpora::cpython_email_files());
    assert!(files.len() > 150, "{} corpus files", files.len());
    let (mut tickets, mut duplicates, mut quarantined, mut ignored) = (0, 0, 0, 0);
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        match h.app.ingest_email(&h.mailbox, raw).await {
            Ok(IngestOutcome::Ticket { .. }) => tickets += 1,
            Ok(IngestOutcome::Duplicate { .. }) => duplicates += 1,
            Ok(IngestOutcome::Quarantined { reason, .. }) => {
                // Only two reasons are legitimate for these corpora: nobody to attribute the
                // mail to (no From, or one without a domain), or no e-mail at all.
                assert!(
                    reason.contains("no usable From") || reason.starts_with("not an email"),
                    "{} quarantined for {reason}",
                    file.display()
                );
                quarantined += 1
            }
            Ok(IngestOutcome::Ignored { .. }) => ignored += 1,
            Err(error) => panic!("{} was not handled: {error}", file.display()),
        }
    }
    eprintln!(
        "{} corpus mails: {tickets} into tickets, {duplicates} duplicates, {quarantined} quarantined, {ignored} ignored",
        files.len()
    );
    assert_eq!(tickets + duplicates + quarantined + ignored, files.len());
    assert!(
        tickets * 10 >= files.len() * 6,
        "most corpus mails become messages"
    );
    let stored = h
        .app
        .list_emails_with_status(&h.admin, EmailStatus::Quarantined, None, 200)
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        quarantined,
        "every quarantined mail is listed for admins"
    );
}

/// The reset link in a raw e-mail.
fn reset_link(raw: &[u8]) -> String {
    let text = otklik_email::parse_inbound(raw, &Default::default())
        .expect("a parseable e-mail")
        .text;
    let start = text
        .find("http://otklik.test/reset-password?token=")
        .unwrap_or_else(|| panic!("no link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_owned()
}

#[tokio::test]
async fn a_reset_link_goes_only_to_an_active_agent_at_most_three_times_an_hour() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    h.app
        .update_settings(
            &h.admin,
            &otklik_app::settings::SettingsInput {
                helpdesk_name: "Магазин Пример".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let base = "http://otklik.test";
    for email in ["nobody@shop.test", "not an e-mail", "ADMIN@shop.test"] {
        assert_eq!(
            h.app
                .request_password_reset(email, base, "ru")
                .await
                .unwrap(),
            otklik_app::password_reset::ResetRequest::Accepted,
            "{email}"
        );
    }
    h.app.deliver_due_emails(&transport).await.unwrap();
    let sent = transport.sent();
    assert_eq!(sent.len(), 1, "only the agent's address gets a link");
    assert_eq!(sent[0].0, vec!["admin@shop.test".to_owned()]);
    let parsed = otklik_email::parse_inbound(&sent[0].1, &Default::default()).unwrap();
    assert!(
        parsed.subject.contains("сброс пароля"),
        "{}",
        parsed.subject
    );
    assert_eq!(
        parsed.from.as_ref().unwrap().name.as_deref(),
        Some("Магазин Пример")
    );
    for _ in 0..4 {
        h.app
            .request_password_reset("admin@shop.test", base, "ru")
            .await
            .unwrap();
    }
    h.app.deliver_due_emails(&transport).await.unwrap();
    assert_eq!(
        transport.sent().len(),
        3,
        "three links an hour, however often asked"
    );
    // After an hour the limit lets one more through; only the newest link works.
    let older = token_of(&reset_link(&transport.sent()[2].1));
    h.clock.advance(SignedDuration::from_mins(61));
    h.app
        .request_password_reset("admin@shop.test", base, "ru")
        .await
        .unwrap();
    h.app.deliver_due_emails(&transport).await.unwrap();
    let newest = token_of(&reset_link(&transport.sent()[3].1));
    assert!(!h.app.password_reset_token_usable(&older).await.unwrap());
    assert!(h.app.password_reset_token_usable(&newest).await.unwrap());
    // A deactivated agent gets nothing.
    let petr = h
        .app
        .create_agent(
            &h.admin,
            otklik_app::auth::NewAgentInput {
                email: "petr@shop.test".into(),
                name: "Пётр".into(),
                role: otklik_domain::agent::Role::Agent,
                team_ids: vec![],
                password: None,
            },
        )
        .await
        .unwrap();
    h.app
        .update_agent(
            &h.admin,
            petr.id,
            otklik_app::staff::AgentPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.app
        .request_password_reset("petr@shop.test", base, "ru")
        .await
        .unwrap();
    h.app.deliver_due_emails(&transport).await.unwrap();
    assert_eq!(transport.sent().len(), 4);
}

#[tokio::test]
async fn a_reset_link_sets_the_password_once_ends_sessions_and_expires_after_an_hour() {
    let h = harness().await;
    let transport = RecordingTransport::default();
    let base = "http://otklik.test";
    let (old_session, _) = h
        .app
        .sign_in("admin@shop.test", "a long enough password".into())
        .await
        .unwrap();
    h.app
        .request_password_reset("admin@shop.test", base, "en")
        .await
        .unwrap();
    h.app.deliver_due_emails(&transport).await.unwrap();
    let token = token_of(&reset_link(&transport.sent()[0].1));
    let too_short = h.app.reset_password(&token, "short".into()).await;
    assert!(
        matches!(too_short, Err(otklik_app::AppError::Domain(_))),
        "{too_short:?}"
    );
    assert!(
        h.app.password_reset_token_usable(&token).await.unwrap(),
        "a refused password spends nothing"
    );
    h.app
        .reset_password(&token, "a brand new passphrase".into())
        .await
        .unwrap();
    assert!(
        h.app.authenticate_session(&old_session).await.is_err(),
        "old sessions end"
    );
    assert!(
        h.app
            .sign_in("admin@shop.test", "a long enough password".into())
            .await
            .is_err()
    );
    h.app
        .sign_in("admin@shop.test", "a brand new passphrase".into())
        .await
        .unwrap();
    let again = h
        .app
        .reset_password(&token, "yet another passphrase".into())
        .await;
    assert!(
        matches!(again, Err(otklik_app::AppError::Unauthenticated)),
        "{again:?}"
    );
    // An unspent link stops working after an hour.
    h.app
        .request_password_reset("admin@shop.test", base, "en")
        .await
        .unwrap();
    h.app.deliver_due_emails(&transport).await.unwrap();
    let late = token_of(&reset_link(&transport.sent()[1].1));
    h.clock.advance(SignedDuration::from_mins(61));
    let expired = h
        .app
        .reset_password(&late, "yet another passphrase".into())
        .await;
    assert!(
        matches!(expired, Err(otklik_app::AppError::Unauthenticated)),
        "{expired:?}"
    );
    let history = h
        .app
        .store
        .list_audit_events(h.admin.agent_id.0)
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|event| event.action == "agent.password_reset")
    );
}

#[tokio::test]
async fn settings_are_admin_only_validated_field_by_field_and_audited() {
    let h = harness().await;
    use otklik_app::settings::SettingsInput;
    let agent = h
        .app
        .create_agent(
            &h.admin,
            otklik_app::auth::NewAgentInput {
                email: "agent@shop.test".into(),
                name: "Агент".into(),
                role: otklik_domain::agent::Role::Supervisor,
                team_ids: vec![],
                password: None,
            },
        )
        .await
        .unwrap();
    let supervisor = otklik_app::App::principal_of(&agent, None, None);
    let input = SettingsInput {
        helpdesk_name: "Shop".into(),
        default_language: "en".into(),
        public_base_url: "https://help.shop.test/".into(),
        system_mailbox_id: h.mailbox.id.to_string(),
    };
    assert!(matches!(
        h.app.update_settings(&supervisor, &input).await,
        Err(otklik_app::AppError::Forbidden(_))
    ));
    for (field, bad) in [
        (
            "helpdesk_name",
            SettingsInput {
                helpdesk_name: " ".into(),
                ..input.clone()
            },
        ),
        (
            "default_language",
            SettingsInput {
                default_language: "de".into(),
                ..input.clone()
            },
        ),
        (
            "public_base_url",
            SettingsInput {
                public_base_url: "help.shop.test".into(),
                ..input.clone()
            },
        ),
    ] {
        match h.app.update_settings(&h.admin, &bad).await {
            Err(otklik_app::AppError::Domain(otklik_domain::DomainError::Validation {
                field: named,
                ..
            })) => {
                assert_eq!(named, field);
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    let unknown = SettingsInput {
        system_mailbox_id: otklik_domain::ids::MailboxId::new().to_string(),
        ..input.clone()
    };
    assert!(matches!(
        h.app.update_settings(&h.admin, &unknown).await,
        Err(otklik_app::AppError::InvalidReference {
            field: "system_mailbox_id",
            ..
        })
    ));
    assert_eq!(
        h.app.instance_settings().await.unwrap(),
        Default::default(),
        "nothing saved"
    );
    let saved = h.app.update_settings(&h.admin, &input).await.unwrap();
    assert_eq!(
        saved.public_base_url.as_deref(),
        Some("https://help.shop.test")
    );
    assert_eq!(h.app.instance_settings().await.unwrap(), saved);
    let history = h
        .app
        .store
        .list_audit_events(otklik_app::settings::SETTINGS_OBJECT_ID)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, "settings.updated");
}
