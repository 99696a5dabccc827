//! IMAP fetching against a real dovecot.

#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::Duration;

use otklik_mail_transport::testkit::{Dovecot, MemoryCursors, MemorySink};
use otklik_mail_transport::{
    DeliveryError, ImapCursor, ImapError, ImapSettings, ImapWatchOptions, fetch_new, test_imap,
    watch_imap,
};
use tokio::sync::oneshot;

const USER: &str = "support@shop.test";

fn mail(n: u32) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@example.com>\r\n\
         To: support@shop.test\r\n\
         Subject: Order {n}\r\n\
         Message-ID: <order-{n}@example.com>\r\n\
         \r\n\
         Where is my order {n}?\r\n"
    )
    .into_bytes()
}

fn append_each(dovecot: &Dovecot, numbers: impl IntoIterator<Item = u32>) -> Vec<u32> {
    numbers
        .into_iter()
        .map(|n| dovecot.append(USER, &mail(n)))
        .collect()
}

#[tokio::test]
async fn appended_mails_are_delivered_in_uid_order_and_only_then_flagged_seen() {
    let dovecot = Dovecot::start();
    let uids = append_each(&dovecot, 1..=3);
    let settings = ImapSettings::from_url(&dovecot.imap_url(USER)).expect("url");
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());

    let report = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(report.delivered, 3);
    assert_eq!(report.stored, 3);
    assert_eq!(report.deferred, None);
    assert_eq!(sink.received(), vec![mail(1), mail(2), mail(3)]);
    assert_eq!(dovecot.seen_uids(USER, "INBOX"), uids);
    let uid_validity = dovecot.uid_validity(USER, "INBOX");
    assert_eq!(
        cursors.saves(),
        uids.iter()
            .map(|&last_uid| ImapCursor {
                uid_validity,
                last_uid
            })
            .collect::<Vec<_>>(),
        "the cursor advances one acknowledged message at a time"
    );
    assert_eq!(report.cursor, cursors.get());
}

#[tokio::test]
async fn a_temporary_sink_failure_stops_the_pass_and_the_next_pass_resumes_there() {
    let dovecot = Dovecot::start();
    let uids = append_each(&dovecot, 1..=3);
    let settings = ImapSettings::from_url(&dovecot.imap_url(USER)).expect("url");
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());
    sink.fail_on_call(2);

    let first = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(first.delivered, 1);
    let deferred = first.deferred.expect("the second mail is deferred");
    assert_eq!(deferred.uid, uids[1]);
    assert!(matches!(deferred.reason, DeliveryError::Temporary(_)));
    assert_eq!(sink.received(), vec![mail(1)]);
    assert_eq!(dovecot.seen_uids(USER, "INBOX"), vec![uids[0]]);
    assert_eq!(cursors.get().map(|cursor| cursor.last_uid), Some(uids[0]));

    let second = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(second.delivered, 2);
    assert_eq!(second.deferred, None);
    assert_eq!(sink.received(), vec![mail(1), mail(2), mail(3)]);
    assert_eq!(dovecot.seen_uids(USER, "INBOX"), uids);
    assert_eq!(cursors.get().map(|cursor| cursor.last_uid), Some(uids[2]));
}

#[tokio::test]
async fn a_failing_cursor_store_ends_the_pass_and_the_mail_is_offered_again() {
    let dovecot = Dovecot::start();
    let uid = dovecot.append(USER, &mail(1));
    let settings = ImapSettings::from_url(&dovecot.imap_url(USER)).expect("url");
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());
    cursors.set_failing(true);

    let failed = fetch_new(&settings, &cursors, &sink).await;

    assert!(
        matches!(&failed, Err(ImapError::Cursor { uid: Some(at), .. }) if *at == uid),
        "{failed:?}"
    );
    assert_eq!(cursors.get(), None);
    cursors.set_failing(false);
    let again = fetch_new(&settings, &cursors, &sink).await.expect("fetch");
    assert_eq!(
        again.delivered, 1,
        "at least once: the sink's dedup sees it twice"
    );
    assert_eq!(sink.received(), vec![mail(1), mail(1)]);
    assert_eq!(cursors.get().map(|cursor| cursor.last_uid), Some(uid));
}

#[tokio::test]
async fn a_mail_a_person_already_read_is_still_fetched_because_the_cursor_decides() {
    let dovecot = Dovecot::start();
    let read_in_a_client = dovecot.append(USER, &mail(1));
    dovecot.mark_seen(USER, "INBOX", read_in_a_client);
    dovecot.append_to(USER, "INBOX", &mail(2), Some("(\\Seen)"));
    assert_eq!(dovecot.seen_uids(USER, "INBOX").len(), 2);
    let settings = ImapSettings::from_url(&dovecot.imap_url(USER)).expect("url");
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());

    let report = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(report.delivered, 2);
    assert_eq!(sink.received(), vec![mail(1), mail(2)]);
}

#[tokio::test]
async fn a_pass_with_nothing_new_delivers_nothing_even_though_n_star_returns_the_last_mail() {
    let dovecot = Dovecot::start();
    append_each(&dovecot, 1..=2);
    let settings = ImapSettings::from_url(&dovecot.imap_url(USER)).expect("url");
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());
    fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    let again = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(again.delivered, 0);
    assert_eq!(again.cursor, None);
    assert_eq!(
        sink.calls(),
        2,
        "the last mail was not offered a second time"
    );
}

#[tokio::test]
async fn more_mails_than_one_batch_holds_all_arrive_in_order() {
    let dovecot = Dovecot::start();
    dovecot.append_all(USER, &(1..=45).map(mail).collect::<Vec<_>>());
    let settings = ImapSettings::from_url(&dovecot.imap_url(USER)).expect("url");
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());

    let report = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(report.delivered, 45);
    assert_eq!(sink.received(), (1..=45).map(mail).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_changed_uidvalidity_makes_the_whole_folder_new_again() {
    let dovecot = Dovecot::start();
    let folder = "Support";
    dovecot.create_folder(USER, folder);
    for n in 1..=3 {
        dovecot.append_to(USER, folder, &mail(n), None);
    }
    let settings = dovecot.settings(USER, folder);
    let (cursors, sink) = (MemoryCursors::new(), MemorySink::new());
    fetch_new(&settings, &cursors, &sink).await.expect("fetch");
    assert_eq!(cursors.get().map(|cursor| cursor.last_uid), Some(3));

    let new_validity = dovecot.recreate_folder(USER, folder);
    // Under the new UIDVALIDITY these get UIDs 1 and 2, below the old cursor's 3.
    dovecot.append_to(USER, folder, &mail(4), None);
    dovecot.append_to(USER, folder, &mail(5), None);
    let report = fetch_new(&settings, &cursors, &sink).await.expect("fetch");

    assert_eq!(report.delivered, 2);
    assert_eq!(sink.received()[3..], [mail(4), mail(5)]);
    assert_eq!(
        cursors.get(),
        Some(ImapCursor {
            uid_validity: new_validity,
            last_uid: 2
        })
    );
}

#[tokio::test]
async fn test_imap_accepts_good_settings_and_names_the_problem_otherwise() {
    let dovecot = Dovecot::start();
    test_imap(&dovecot.settings(USER, "INBOX"))
        .await
        .expect("good settings work");

    let missing = test_imap(&dovecot.settings(USER, "NoSuchFolder")).await;
    assert!(
        matches!(&missing, Err(ImapError::Folder { folder, .. }) if folder == "NoSuchFolder"),
        "{missing:?}"
    );

    let mut wrong = dovecot.settings(USER, "INBOX");
    wrong.password = "hunter2-wrong".to_owned();
    let refused = test_imap(&wrong).await.expect_err("wrong password");
    assert!(matches!(refused, ImapError::Login { .. }), "{refused:?}");
    let text = refused.to_string();
    assert!(text.contains(USER) && !text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_naming_host_and_port() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let settings =
        ImapSettings::from_url(&format!("imap://u:p@127.0.0.1:{port}/INBOX")).expect("url");

    let error = test_imap(&settings).await.expect_err("nobody listens");

    assert!(
        matches!(&error, ImapError::Connect { host, port: p, .. } if host == "127.0.0.1" && *p == port),
        "{error:?}"
    );
}

struct Watch {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn watch(
    settings: ImapSettings,
    cursors: Arc<MemoryCursors>,
    sink: Arc<MemorySink>,
    options: ImapWatchOptions,
) -> Watch {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(watch_imap(settings, cursors, sink, options, async move {
        let _ = stopped.await;
    }));
    Watch { stop, task }
}

impl Watch {
    async fn shut_down(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("watch_imap returns promptly after shutdown")
            .expect("watch_imap did not panic");
    }
}

#[tokio::test]
async fn watch_imap_with_idle_picks_up_a_new_mail_within_seconds_and_stops_on_shutdown() {
    let dovecot = Dovecot::start();
    dovecot.append(USER, &mail(1));
    let sink = Arc::new(MemorySink::new());
    // An hour between polls: only IDLE can bring the second mail in time.
    let options = ImapWatchOptions {
        poll_interval: Duration::from_secs(3600),
        use_idle: true,
        max_backoff: Duration::from_secs(1),
    };
    let running = watch(
        dovecot.settings(USER, "INBOX"),
        Arc::new(MemoryCursors::new()),
        Arc::clone(&sink),
        options,
    );
    sink.wait_for(1, Duration::from_secs(10)).await;
    // Give the loop time to enter IDLE, so the mail arrives while it idles.
    tokio::time::sleep(Duration::from_millis(300)).await;

    dovecot.append(USER, &mail(2));

    assert_eq!(
        sink.wait_for(2, Duration::from_secs(5)).await,
        vec![mail(1), mail(2)]
    );
    running.shut_down().await;
}

#[tokio::test]
async fn watch_imap_without_idle_polls_at_the_interval() {
    let dovecot = Dovecot::start();
    let sink = Arc::new(MemorySink::new());
    let options = ImapWatchOptions {
        poll_interval: Duration::from_millis(200),
        use_idle: false,
        max_backoff: Duration::from_secs(1),
    };
    let running = watch(
        dovecot.settings(USER, "INBOX"),
        Arc::new(MemoryCursors::new()),
        Arc::clone(&sink),
        options,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    dovecot.append(USER, &mail(1));

    sink.wait_for(1, Duration::from_secs(5)).await;
    running.shut_down().await;
}

#[tokio::test]
async fn watch_imap_retries_a_message_the_sink_could_not_take() {
    let dovecot = Dovecot::start();
    dovecot.append(USER, &mail(1));
    let sink = Arc::new(MemorySink::new());
    sink.set_failing(true);
    let options = ImapWatchOptions {
        poll_interval: Duration::from_secs(3600),
        use_idle: true,
        max_backoff: Duration::from_millis(300),
    };
    let running = watch(
        dovecot.settings(USER, "INBOX"),
        Arc::new(MemoryCursors::new()),
        Arc::clone(&sink),
        options,
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.calls() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retry after a temporary failure"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sink.received().is_empty());

    sink.set_failing(false);

    assert_eq!(
        sink.wait_for(1, Duration::from_secs(5)).await,
        vec![mail(1)]
    );
    running.shut_down().await;
}

#[tokio::test]
async fn watch_imap_keeps_reconnecting_until_the_login_works() {
    let dovecot = Dovecot::start();
    let late = "late@shop.test";
    let sink = Arc::new(MemorySink::new());
    let options = ImapWatchOptions {
        poll_interval: Duration::from_secs(3600),
        use_idle: true,
        max_backoff: Duration::from_millis(300),
    };
    let running = watch(
        dovecot.settings(late, "INBOX"),
        Arc::new(MemoryCursors::new()),
        Arc::clone(&sink),
        options,
    );
    // The user does not exist yet: logins fail and the watch backs off.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sink.received().is_empty());

    dovecot.add_user(late);
    dovecot.append(late, &mail(1));

    assert_eq!(
        sink.wait_for(1, Duration::from_secs(5)).await,
        vec![mail(1)]
    );
    running.shut_down().await;
}
