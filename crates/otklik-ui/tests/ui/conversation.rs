//! The ticket page beyond replying: e-mail HTML in an isolated frame, quoted text, delivery
//! status with retry, history events, files in the reply box, merge, split, presence.

use async_trait::async_trait;
use axum::http::StatusCode;
use otklik_app::mail::{MailTransport, SendFailure};
use otklik_domain::message::MessageVisibility;

use crate::helpers::{ADMIN_EMAIL, attachment, test_ui};

/// A tiny PNG (1×1).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0xDA, 0x63, 0x64, 0xF8, 0xCF, 0x50,
    0x0F, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5A, 0x34, 0x7D, 0x6B, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// An HTML e-mail with a script, an inline picture, a remote tracker and quoted history.
pub const HOSTILE_HTML_MAIL: &str = "From: Ivan <ivan@example.com>\r\nTo: support@shop.test\r\n\
    Subject: =?utf-8?B?0JPQtNC1INC30LDQutCw0Lc/?=\r\nMessage-ID: <html-1@example.com>\r\nMIME-Version: 1.0\r\n\
    Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
    --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
    Where is my order?\r\n\r\nOn Monday Shop wrote:\r\n> Your order has shipped\r\n> Tracking 123\r\n\
    --alt\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
    --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
    <p id=\"mail-text\" style=\"color:#0b57d0\">Where is <b>my order</b>?</p>\
    <script>document.title='pwned';parent.document.body.dataset.pwned='1'</script>\
    <img src=\"x\" onerror=\"parent.document.body.dataset.pwned='2'\">\
    <img id=\"inline-photo\" src=\"cid:photo1\"><img src=\"https://tracker.example/p.gif\">\r\n\
    --rel\r\nContent-Type: image/png\r\nContent-ID: <photo1>\r\nContent-Disposition: inline; filename=\"photo.png\"\r\n\
    Content-Transfer-Encoding: base64\r\n\r\n\
    iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
    --rel--\r\n--alt--\r\n";

#[tokio::test]
async fn customer_html_is_framed_in_a_sandbox_from_a_script_free_route() {
    let ui = test_ui().await;
    let mailbox = ui.mailbox().await;
    let ticket = ui.receive(&mailbox, HOSTILE_HTML_MAIL).await;
    let email = ui
        .app
        .ticket_emails(&ui.admin_principal(), ticket.id)
        .await
        .unwrap()
        .remove(0);
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get(&format!("/tickets/{}", ticket.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    let frame = format!("src=\"/emails/{}/html\"", email.id);
    assert!(page.body.contains(&frame), "{}", page.body);
    assert!(
        page.body
            .contains("sandbox=\"allow-popups allow-popups-to-escape-sandbox\"")
    );
    assert!(!page.body.contains("allow-scripts") && !page.body.contains("allow-same-origin"));
    assert!(
        page.body.contains("Показать цитату"),
        "the folded quote is offered"
    );
    assert!(page.body.contains(&format!("/emails/{}/raw", email.id)));
    assert!(
        page.header("content-security-policy")
            .contains("frame-src 'self'"),
        "the page may frame only our own routes"
    );

    let html = browser.get(&format!("/emails/{}/html", email.id)).await;
    assert_eq!(html.status, StatusCode::OK);
    let policy = html.header("content-security-policy");
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(policy.contains("sandbox"), "{policy}");
    assert!(
        !policy.contains("script-src") && !policy.contains("allow-scripts"),
        "{policy}"
    );
    assert!(!policy.contains("allow-same-origin"), "{policy}");
    assert_eq!(html.header("x-frame-options"), "SAMEORIGIN");
    assert!(html.body.contains("my order"));
    assert!(!html.body.contains("<script"), "{}", html.body);
    assert!(!html.body.contains("onerror"), "{}", html.body);
    assert!(
        html.body.contains("data:image/png;base64,"),
        "the inline picture is inlined"
    );
    assert!(!html.body.contains("/api/v1/attachments/"));
    assert!(
        !html.body.contains("src=\"https://tracker.example"),
        "remote pictures are not requested"
    );

    // Another team's agent cannot read it by its id.
    let team = ui
        .app
        .create_team(&ui.admin_principal(), "Другая")
        .await
        .unwrap();
    let other = ui
        .app
        .create_team(&ui.admin_principal(), "Своя")
        .await
        .unwrap();
    ui.app
        .update_ticket(
            &ui.admin_principal(),
            ticket.id,
            otklik_domain::ticket::TicketPatch {
                team_id: Some(Some(team.id)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ui.agent("petr@shop.test", vec![other.id]).await;
    let mut petr = ui.signed_in("petr@shop.test").await;
    for path in [
        format!("/emails/{}/html", email.id),
        format!("/emails/{}/raw", email.id),
    ] {
        assert_eq!(
            petr.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

/// Fails every send permanently, as a server refusing the recipient would.
struct RefusingTransport;

#[async_trait]
impl MailTransport for RefusingTransport {
    async fn send(&self, _: &str, _: &str, _: &[String], _: &[u8]) -> Result<(), SendFailure> {
        Err(SendFailure::Permanent("550 mailbox unavailable".into()))
    }
    async fn check_imap(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    async fn check_smtp(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test]
async fn a_reply_shows_its_delivery_and_a_failed_one_can_be_sent_again() {
    let ui = test_ui().await;
    let mailbox = ui.mailbox().await;
    let ticket = ui
        .receive(
            &mailbox,
            "From: ivan@example.com\r\nTo: support@shop.test\r\nSubject: Hello\r\nMessage-ID: <p1@example.com>\r\n\r\nWhere is it?\r\n",
        )
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let sent = browser
        .post_form(
            &format!("/tickets/{}/messages", ticket.id),
            &[
                ("_csrf", &csrf),
                ("kind", "reply"),
                ("body", "It is on its way."),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let page = browser.get(&format!("/tickets/{}", ticket.id)).await;
    assert!(page.body.contains("в очереди на отправку"), "{}", page.body);

    ui.app.deliver_due_emails(&RefusingTransport).await.unwrap();
    let page = browser.get(&format!("/tickets/{}", ticket.id)).await;
    assert!(page.body.contains("не доставлено"));
    assert!(page.body.contains("550 mailbox unavailable"));
    let outbound = ui
        .app
        .ticket_emails(&ui.admin_principal(), ticket.id)
        .await
        .unwrap()
        .into_iter()
        .find(|email| email.direction == otklik_domain::email::EmailDirection::Outbound)
        .unwrap();
    assert!(
        page.body
            .contains(&format!("/emails/{}/retry", outbound.id))
    );
    let retried = browser
        .post_form(
            &format!("/emails/{}/retry", outbound.id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER);
    assert_eq!(
        retried.location(),
        format!("/tickets/{}?done=retried", ticket.id)
    );
    let page = browser.get(retried.location()).await;
    assert!(page.body.contains("Ответ снова поставлен в очередь"));
    assert!(page.body.contains("в очереди на отправку"));
}

#[tokio::test]
async fn status_and_assignment_changes_appear_in_the_conversation() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    browser
        .post_form(
            &format!("/tickets/{}/assign-to-me", ticket.id),
            &[("_csrf", &csrf)],
        )
        .await;
    browser
        .post_form(
            &format!("/tickets/{}/solve", ticket.id),
            &[("_csrf", &csrf)],
        )
        .await;
    let timeline = browser
        .get(&format!("/tickets/{}/timeline", ticket.id))
        .await;
    assert!(
        timeline.body.contains("Исполнитель: Никто → Анна Админова"),
        "{}",
        timeline.body
    );
    assert!(
        timeline.body.contains("Статус: Открыт → Решён"),
        "{}",
        timeline.body
    );
    let message = timeline.body.find("Хочу вернуть").unwrap();
    let assigned = timeline.body.find("Исполнитель: Никто").unwrap();
    let solved = timeline.body.find("Статус: Открыт → Решён").unwrap();
    assert!(message < assigned && assigned < solved, "oldest first");
}

#[tokio::test]
async fn files_go_with_a_reply_and_pictures_are_previewed() {
    let ui = test_ui().await;
    let ticket = ui.ticket("Фото", "Пришлите фото", "ivan@example.com").await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let path = format!("/tickets/{}/messages", ticket.id);
    let refused = browser
        .post_multipart(
            &path,
            &[("kind", "note"), ("body", "без токена")],
            &[("files", "a.txt", b"x")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "multipart needs the token too"
    );
    let sent = browser
        .post_multipart(
            &path,
            &[
                ("_csrf", &csrf),
                ("kind", "note"),
                ("body", "Вот фото и счёт"),
                ("status", ""),
            ],
            &[
                ("files", "фото.png", PNG),
                ("files", "счёт.html", b"<script>x</script>"),
                ("files", "", b""),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let messages = ui
        .app
        .list_messages(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    let note = messages.last().unwrap();
    assert_eq!(note.visibility, MessageVisibility::Internal);
    assert_eq!(
        note.attachments.len(),
        2,
        "the empty file input is not a file"
    );
    let png = note
        .attachments
        .iter()
        .find(|a| a.file_name.ends_with(".png"))
        .unwrap();
    let html = note
        .attachments
        .iter()
        .find(|a| a.file_name.ends_with(".html"))
        .unwrap();
    let page = browser.get(&format!("/tickets/{}", ticket.id)).await;
    assert!(
        page.body
            .contains(&format!("<img src=\"/attachments/{}\"", png.id))
    );
    assert!(
        !page
            .body
            .contains(&format!("<img src=\"/attachments/{}\"", html.id)),
        "only sniffed pictures are previewed"
    );

    // Too many files: the text is kept and the field says why.
    let files: Vec<(&str, &str, &[u8])> =
        (0..11).map(|_| ("files", "a.txt", b"x" as &[u8])).collect();
    let many = browser
        .post_multipart(
            &path,
            &[
                ("_csrf", &csrf),
                ("kind", "reply"),
                ("body", "Много файлов"),
            ],
            &files,
        )
        .await;
    assert_eq!(many.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(many.body.contains("Много файлов"));
    assert!(many.body.contains("id=\"reply-files-error\""));
    assert!(many.body.contains("До 10 файлов"), "{}", many.body);
}

#[tokio::test]
async fn a_ticket_is_merged_into_another_after_seeing_what_moves() {
    let ui = test_ui().await;
    let first = ui
        .ticket_with(
            "Где заказ 77?",
            "Первое",
            "ivan@example.com",
            None,
            vec![attachment("чек.txt", b"1")],
        )
        .await;
    let second = ui
        .ticket("Заказ 77 снова", "Второе", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let search = browser
        .get(&format!("/tickets/{}/merge?q={}", second.id, first.number))
        .await;
    assert_eq!(search.status, StatusCode::OK);
    assert!(
        search.body.contains(&format!("target={}", first.id)),
        "{}",
        search.body
    );
    let preview = browser
        .get(&format!("/tickets/{}/merge?target={}", second.id, first.id))
        .await;
    assert!(
        preview.body.contains("переедет 1 сообщение"),
        "{}",
        preview.body
    );
    assert!(
        preview
            .body
            .contains(&format!("Тикет #{} будет закрыт", second.number))
    );
    assert_eq!(
        ui.app
            .get_ticket(&ui.admin_principal(), second.id)
            .await
            .unwrap()
            .merged_into,
        None,
        "the preview changes nothing"
    );
    let csrf = preview.csrf();
    let target = first.id.to_string();
    let merged = browser
        .post_form(
            &format!("/tickets/{}/merge", second.id),
            &[("_csrf", &csrf), ("target", &target)],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    assert_eq!(
        merged.location(),
        format!("/tickets/{}?done=merged", first.id)
    );
    let page = browser.get(merged.location()).await;
    assert!(page.body.contains("Тикеты объединены"));
    assert!(page.body.contains("Второе"));
    assert!(
        page.body
            .contains(&format!("Тикет #{} объединён с этим", second.number))
    );
    let again = browser
        .post_form(
            &format!("/tickets/{}/merge", second.id),
            &[("_csrf", &csrf), ("target", &target)],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_customer_message_is_split_into_a_new_ticket_linked_both_ways() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket(
            "Заказ и возврат",
            "Где заказ? И как вернуть куртку?",
            "ivan@example.com",
        )
        .await;
    let message = ui
        .app
        .list_messages(&ui.admin_principal(), ticket.id)
        .await
        .unwrap()[0]
        .id;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get(&format!("/tickets/{}", ticket.id)).await;
    let split_path = format!("/tickets/{}/split/{message}", ticket.id);
    assert!(page.body.contains(&split_path));
    let form = browser.get(&split_path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("Где заказ? И как вернуть куртку?"));
    let csrf = form.csrf();
    let empty = browser
        .post_form(&split_path, &[("_csrf", &csrf), ("subject", "<>")])
        .await;
    assert_eq!(
        empty.status,
        StatusCode::SEE_OTHER,
        "a subject of symbols is still a subject"
    );
    let split = browser
        .post_form(
            &split_path,
            &[("_csrf", &csrf), ("subject", "Возврат куртки")],
        )
        .await;
    assert_eq!(split.status, StatusCode::SEE_OTHER);
    let new_page = browser.get(split.location()).await;
    assert!(new_page.body.contains("Возврат куртки"));
    assert!(new_page.body.contains("Из сообщения создан новый тикет"));
    assert!(
        new_page.body.contains(&format!("/tickets/{}", ticket.id)),
        "links back"
    );
    let original = browser
        .get(&format!("/tickets/{}/timeline", ticket.id))
        .await;
    assert!(original.body.contains("Сообщение выделено в новый тикет"));
}

#[tokio::test]
async fn another_agent_on_the_ticket_is_shown_viewing_then_replying_then_gone() {
    let ui = test_ui().await;
    let ticket = ui.ticket("Вопрос", "Текст", "ivan@example.com").await;
    ui.agent("petr@shop.test", vec![]).await;
    let mut anna = ui.signed_in(ADMIN_EMAIL).await;
    let mut petr = ui.signed_in("petr@shop.test").await;
    let path = format!("/tickets/{}/presence", ticket.id);
    let petr_csrf = petr.csrf().await;
    let mine = petr
        .post_form(&path, &[("_csrf", &petr_csrf), ("activity", "viewing")])
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(
        !mine.body.contains("Пётр"),
        "nobody is told about themselves"
    );
    let seen = anna.get(&path).await;
    assert!(
        seen.body.contains("Пётр Агентов смотрит этот тикет"),
        "{}",
        seen.body
    );
    let page = anna.get(&format!("/tickets/{}", ticket.id)).await;
    assert!(page.body.contains("Пётр Агентов смотрит этот тикет"));
    petr.post_form(&path, &[("_csrf", &petr_csrf), ("activity", "replying")])
        .await;
    assert!(
        anna.get(&path)
            .await
            .body
            .contains("Пётр Агентов пишет ответ")
    );
    petr.post_form(&path, &[("_csrf", &petr_csrf), ("activity", "left")])
        .await;
    assert!(!anna.get(&path).await.body.contains("Пётр"));
    let forged = petr.post_form(&path, &[("activity", "viewing")]).await;
    assert_eq!(
        forged.status,
        StatusCode::FORBIDDEN,
        "a heartbeat is a POST with CSRF"
    );
    let bogus = petr
        .post_form(&path, &[("_csrf", &petr_csrf), ("activity", "dancing")])
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn presence_is_neither_shown_nor_accepted_for_a_ticket_the_agent_cannot_see() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let secret_team = ui.app.create_team(&principal, "Секретная").await.unwrap();
    let other_team = ui.app.create_team(&principal, "Другая").await.unwrap();
    let hidden = ui
        .ticket_with(
            "Секрет",
            "Текст",
            "vip@example.com",
            Some(secret_team.id),
            vec![],
        )
        .await;
    ui.agent("petr@shop.test", vec![other_team.id]).await;
    let mut petr = ui.signed_in("petr@shop.test").await;
    let csrf = petr.csrf().await;
    let path = format!("/tickets/{}/presence", hidden.id);
    assert_eq!(petr.get(&path).await.status, StatusCode::NOT_FOUND);
    let claimed = petr
        .post_form(&path, &[("_csrf", &csrf), ("activity", "replying")])
        .await;
    assert_eq!(claimed.status, StatusCode::NOT_FOUND);
    let mut anna = ui.signed_in(ADMIN_EMAIL).await;
    assert!(!anna.get(&path).await.body.contains("Пётр"));
}
