//! End to end in a real headless Chromium (Debian's `chromium` + `chromedriver`, installed
//! with apt-get when missing), driven over WebDriver: an agent signs in, works a ticket from the
//! keyboard and the mouse, searches, switches the language, sees a new ticket arrive live,
//! assigns in bulk, merges, reads an HTML e-mail whose script never runs, opens an admin page,
//! and the browser logs no error. Screenshots go to `$CARGO_TARGET_DIR/ui-screenshots/`.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, Backend, PASSWORD, TestUi, test_ui_on};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Installs Chromium and its driver from Debian when they are missing. Several test processes
/// may get here at once, so installs are serialised with a lock file; a failure is a test
/// failure with the reason, never a silent skip.
fn ensure_chromium() {
    if PathBuf::from(CHROMEDRIVER).exists() && PathBuf::from(CHROMIUM).exists() {
        return;
    }
    let status = Command::new("flock")
        .args([
            "/tmp/otklik-apt.lock",
            "sh",
            "-c",
            "test -x /usr/bin/chromedriver && test -x /usr/bin/chromium || \
             (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
              --no-install-recommends chromium chromium-driver)",
        ])
        .status()
        .unwrap_or_else(|error| {
            panic!("could not run apt-get to install chromium and chromium-driver: {error}")
        });
    assert!(
        status.success() && PathBuf::from(CHROMEDRIVER).exists(),
        "installing chromium and chromium-driver with apt-get failed ({status}); \
         install them by hand: apt-get install chromium chromium-driver"
    );
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A chromedriver process on a free port, stopped when dropped.
pub(crate) struct Chromedriver {
    child: Child,
    port: u16,
}

impl Chromedriver {
    pub(crate) async fn start() -> Chromedriver {
        ensure_chromium();
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("could not start {CHROMEDRIVER}: {error}"));
        let driver = Chromedriver { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chrome's own console log (`goog:loggingPrefs`), read through chromedriver's log endpoint:
/// it also holds what scripts cannot see, such as CSP violations and failed loads.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

pub(crate) async fn connect(driver: &Chromedriver, profile: &std::path::Path) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--lang=ru-RU",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": { "intl.accept_languages": "ru-RU,ru" },
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(capabilities);
    builder
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|error| {
            panic!("chromedriver could not start Chromium ({CHROMIUM}): {error}")
        })
}

/// Serves the workspace on a random loopback port.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server runs");
    });
    format!("http://{address}")
}

fn screenshot_folder() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::catalogue::crate_dir()
                .join("..")
                .join("..")
                .join("target")
        });
    let folder = target.join("ui-screenshots");
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    folder
}

pub(crate) async fn save_screenshot(client: &Client, backend: Backend, name: &str) {
    // The SQLite run's pictures are the canonical ones; the PostgreSQL run's are suffixed.
    let name = match backend {
        Backend::Sqlite => name.to_owned(),
        Backend::Postgres => format!("{name}-postgres"),
    };
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_folder().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
}

async fn press(client: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    client.perform_actions(keys).await.expect("key press");
}

/// Text as a person reads it: runs of white space (line breaks between blocks) as one space.
pub(crate) fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) async fn text_of(client: &Client, css: &str) -> String {
    // Live updates may redraw the element between finding and reading it: read it again.
    for _ in 0..20 {
        let element = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"));
        match element.text().await {
            Ok(text) => return flat(&text),
            Err(error) if error.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the text of {css}: {error}"),
        }
    }
    panic!("{css} kept being redrawn while its text was read")
}

/// Waits until the element's text contains `expected` (pages load, live updates arrive).
pub(crate) async fn wait_for_text(client: &Client, css: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(element) => flat(&element.text().await.unwrap_or_default()),
            Err(_) => String::new(),
        };
        if text.contains(expected) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} did not show {expected:?} within 15 s; it shows {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css} to click: {error}"))
        .click()
        .await
        .unwrap_or_else(|error| panic!("could not click {css}: {error}"));
}

/// Every console entry Chrome logged since the last read, as "LEVEL message".
pub(crate) async fn console(client: &Client) -> Vec<String> {
    let entries = client
        .issue_cmd(BrowserLog)
        .await
        .expect("chromedriver returns the browser log");
    entries
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    format!(
                        "{} {}",
                        entry["level"].as_str().unwrap_or("?"),
                        entry["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn assert_no_console_errors(client: &Client, step: &str) {
    let errors: Vec<String> = console(client)
        .await
        .into_iter()
        .filter(|line| line.starts_with("SEVERE") || line.starts_with("WARNING"))
        .collect();
    assert!(
        errors.is_empty(),
        "the browser logged errors {step}: {errors:#?}"
    );
}

async fn scenario(client: &Client, ui: &TestUi, base: &str, backend: Backend) {
    // Sign in (Chromium asks for Russian).
    client
        .goto(&format!("{base}/inbox"))
        .await
        .expect("open the inbox");
    assert_eq!(text_of(client, "h1").await, "Вход");
    client
        .find(Locator::Css("#login-email"))
        .await
        .unwrap()
        .send_keys(ADMIN_EMAIL)
        .await
        .unwrap();
    client
        .find(Locator::Css("#login-password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click(client, "form[action='/login'] button[type=submit]").await;
    wait_for_text(client, "#views-nav", "Не назначенные").await;
    // The console check itself works: a logged error is seen.
    client
        .execute("console.error('probe of the console check')", vec![])
        .await
        .expect("run a script");
    let probe = console(client).await;
    assert!(
        probe
            .iter()
            .any(|line| line.starts_with("SEVERE") && line.contains("probe of the console check")),
        "the browser log is readable: {probe:?}"
    );

    // The inbox with its counters: two new tickets wait unassigned.
    let nav = text_of(client, "#views-nav").await;
    assert!(nav.contains("Мои открытые"), "{nav}");
    assert!(nav.contains("Не назначенные 2"), "{nav}");
    let unassigned_link = client
        .find(Locator::XPath(
            "//nav[@id='views-nav']//a[contains(., 'Не назначенные')]",
        ))
        .await
        .expect("the unassigned view");
    unassigned_link.click().await.unwrap();
    wait_for_text(client, "#list-title", "2 тикета").await;
    let rows = text_of(client, "#ticket-rows").await;
    assert!(rows.contains("Где мой заказ 1042?"), "{rows}");
    assert!(rows.contains("Иван Петров"), "{rows}");
    save_screenshot(client, backend, "inbox").await;

    // A new ticket arrives while the list is open: it appears without reloading.
    ui.ticket(
        "Новый вопрос про оплату",
        "Не проходит карта",
        "olga@example.com",
    )
    .await;
    wait_for_text(client, "#ticket-rows", "Новый вопрос про оплату").await;
    wait_for_text(client, "#list-title", "3 тикета").await;
    wait_for_text(client, "#views-nav", "Не назначенные 3").await;

    // j moves to the first ticket, k/j move on, Enter opens it.
    press(client, 'j').await;
    press(client, 'j').await;
    press(client, 'k').await;
    let selected = text_of(client, "tr.is-selected").await;
    assert!(selected.contains("Новый вопрос про оплату"), "{selected}");
    press(client, 'j').await;
    press(client, 'j').await;
    press(client, '\u{e007}').await;
    wait_for_text(client, "#ticket-title", "Где мой заказ 1042?").await;
    let timeline = text_of(client, "#timeline").await;
    assert!(timeline.contains("Заказ так и не пришёл"), "{timeline}");
    let customer = text_of(client, ".customer-card").await;
    assert!(customer.contains("Иван Петров"), "{customer}");
    assert!(customer.contains("ivan@example.com"), "{customer}");
    assert_no_console_errors(client, "opening a ticket").await;

    // r: a public reply.
    press(client, 'r').await;
    let active = client.active_element().await.unwrap();
    assert_eq!(
        active.attr("id").await.unwrap().as_deref(),
        Some("reply-body")
    );
    active
        .send_keys("Здравствуйте! Заказ уже в пути.")
        .await
        .unwrap();
    click(client, "#reply-send").await;
    wait_for_text(client, "#done", "Ответ отправлен.").await;
    let reply = text_of(client, "#timeline .entry-agent").await;
    assert!(reply.contains("Заказ уже в пути."), "{reply}");

    // n: an internal note.
    press(client, 'n').await;
    client
        .active_element()
        .await
        .unwrap()
        .send_keys("Проверить трек у курьерской службы")
        .await
        .unwrap();
    click(client, "#reply-send").await;
    wait_for_text(client, "#done", "Заметка добавлена.").await;
    let note = text_of(client, "#timeline .entry-note").await;
    assert!(note.contains("внутренняя заметка"), "{note}");
    assert!(note.contains("Проверить трек"), "{note}");

    // a: assign to me; s: solve.
    press(client, 'a').await;
    wait_for_text(client, "#done", "Тикет назначен на вас.").await;
    wait_for_text(client, "#ticket-assignee", "Анна Админова").await;
    press(client, 's').await;
    wait_for_text(client, "#done", "Тикет решён.").await;
    assert_eq!(text_of(client, "#ticket-status").await, "Решён");
    save_screenshot(client, backend, "ticket").await;
    assert_no_console_errors(client, "working the ticket").await;

    // ?: the shortcuts dialog.
    press(client, '?').await;
    let dialog = text_of(client, "dialog#shortcuts[open]").await;
    assert!(dialog.contains("Назначить тикет на себя"), "{dialog}");
    press(client, '\u{e00c}').await;

    // /: search.
    press(client, '/').await;
    let search = client.active_element().await.unwrap();
    assert_eq!(
        search.attr("id").await.unwrap().as_deref(),
        Some("search-q")
    );
    search.send_keys("заказа\u{e007}").await.unwrap();
    wait_for_text(client, "h1", "Поиск").await;
    let hits = text_of(client, ".hits").await;
    assert!(hits.contains("Где мой заказ 1042?"), "{hits}");
    assert!(!hits.contains("оплату"), "{hits}");
    let marked = text_of(client, ".hits mark").await;
    assert!(marked.to_lowercase().starts_with("заказ"), "{marked}");

    // The filters folded under the box: only open tickets leave the solved one out.
    click(client, ".search-filters summary").await;
    let status = client.find(Locator::Css("#flt-status")).await.unwrap();
    status.select_by_value("open").await.unwrap();
    click(client, ".search-page button.primary").await;
    wait_for_text(client, ".search-page", "Ничего не найдено").await;
    let status = client.find(Locator::Css("#flt-status")).await.unwrap();
    status.select_by_value("solved").await.unwrap();
    click(client, ".search-page button.primary").await;
    wait_for_text(client, ".hits", "Где мой заказ 1042?").await;
    save_screenshot(client, backend, "search").await;
    assert_no_console_errors(client, "searching with a filter").await;

    // The language: English and back, remembered across pages.
    click(client, "#switch-lang-en").await;
    wait_for_text(client, "h1", "Search").await;
    assert!(text_of(client, ".hits").await.contains("Solved"));
    client.goto(&format!("{base}/inbox")).await.unwrap();
    wait_for_text(client, "#views-nav", "Unassigned").await;
    click(client, "#switch-lang-ru").await;
    wait_for_text(client, "#views-nav", "Не назначенные").await;
    assert_no_console_errors(client, "searching and switching the language").await;

    // Phone width: the same inbox, one column, nothing wider than the screen.
    client.set_window_size(390, 844).await.unwrap();
    client
        .find(Locator::XPath(
            "//nav[@id='views-nav']//a[contains(., 'Все открытые')]",
        ))
        .await
        .expect("the all-open view")
        .click()
        .await
        .unwrap();
    wait_for_text(client, "#list-title", "Все открытые").await;
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        overflow.as_i64(),
        Some(0),
        "the page scrolls sideways at phone width"
    );
    save_screenshot(client, backend, "inbox-phone").await;
    assert_no_console_errors(client, "at phone width").await;
}

/// The rest of a day: bulk assignment from the keyboard, a merge, an e-mail whose HTML is
/// framed (and whose script never runs), and an admin page.
async fn more_of_the_day(client: &Client, ui: &TestUi, base: &str, backend: Backend) {
    client.set_window_size(1280, 900).await.unwrap();
    let principal = ui.admin_principal();
    let open_new = ui
        .app
        .list_tickets(
            &principal,
            otklik_store::TicketFilter {
                statuses: vec![otklik_domain::ticket::TicketStatus::New],
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap()
        .tickets;
    assert_eq!(
        open_new.len(),
        2,
        "two new tickets are left from the first part"
    );

    // Bulk: j/x tick both new tickets, then assign them to me.
    client
        .goto(&format!("{base}/tickets?status=new"))
        .await
        .unwrap();
    wait_for_text(client, "#ticket-rows", "Вопрос о размере").await;
    press(client, 'j').await;
    press(client, 'x').await;
    press(client, 'j').await;
    press(client, 'x').await;
    wait_for_text(client, "#bulk-count", "Отмечено: 2").await;
    save_screenshot(client, backend, "bulk").await;
    click(client, "#bulk-assign").await;
    wait_for_text(client, "#done", "Изменено 2 тикета.").await;
    // Assigned, they are open now and counted as mine.
    wait_for_text(client, "#views-nav", "Мои открытые 2").await;
    assert_no_console_errors(client, "assigning in bulk").await;

    // Merge the payment question into the size question, after seeing what moves.
    let (source, target) = match open_new[0].subject.contains("оплат") {
        true => (&open_new[0], &open_new[1]),
        false => (&open_new[1], &open_new[0]),
    };
    client
        .goto(&format!("{base}/tickets/{}", source.id))
        .await
        .unwrap();
    click(client, "#merge-link").await;
    let search = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#merge-q"))
        .await
        .unwrap();
    search
        .send_keys(&format!("{}\u{e007}", target.number))
        .await
        .unwrap();
    click(client, "#merge-results a.choose").await;
    let preview = wait_for_text(client, "#merge-preview", "переедет 1 сообщение").await;
    assert!(
        preview.contains(&format!("#{}", source.number)),
        "{preview}"
    );
    click(client, "#merge-confirm").await;
    wait_for_text(client, "#done", "Тикеты объединены.").await;
    wait_for_text(client, "#timeline", "Не проходит карта").await;
    assert_no_console_errors(client, "merging").await;

    // An HTML e-mail: its text shows in the sandboxed frame, its script never runs.
    let mailbox = ui.mailbox().await;
    let mail = ui
        .receive(&mailbox, crate::conversation::HOSTILE_HTML_MAIL)
        .await;
    client
        .goto(&format!("{base}/tickets/{}", mail.id))
        .await
        .unwrap();
    let frame = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("iframe.email-frame"))
        .await
        .expect("the e-mail frame");
    assert_eq!(
        frame.attr("sandbox").await.unwrap().as_deref(),
        Some("allow-popups allow-popups-to-escape-sandbox")
    );
    frame.enter_frame().await.expect("enter the frame");
    let inside = wait_for_text(client, "body", "my order").await;
    assert!(inside.contains("Where is my order?"), "{inside}");
    client.enter_parent_frame().await.unwrap();
    // Time for a script to have run, had it been allowed to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sentinel = client
        .execute(
            "return [document.body.dataset.pwned || 'clean', document.title]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(sentinel[0].as_str(), Some("clean"), "{sentinel:?}");
    assert_ne!(sentinel[1].as_str(), Some("pwned"), "{sentinel:?}");
    click(client, "details.quoted summary").await;
    wait_for_text(client, ".quoted-text", "Your order has shipped").await;
    save_screenshot(client, backend, "ticket-email").await;
    assert_no_console_errors(client, "reading an HTML e-mail").await;

    // An admin page.
    click(client, "#admin-link").await;
    wait_for_text(client, "h1", "Агенты").await;
    let agents = text_of(client, "#agents").await;
    assert!(agents.contains("Анна Админова"), "{agents}");
    save_screenshot(client, backend, "admin").await;
    assert_no_console_errors(client, "on the admin pages").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_ticket_in_a_real_browser_without_console_errors() {
    work_a_ticket_in_a_browser(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_ticket_in_a_real_browser_on_postgresql() {
    work_a_ticket_in_a_browser(Backend::Postgres).await;
}

async fn work_a_ticket_in_a_browser(backend: Backend) {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    let driver = Chromedriver::start().await;
    let ui = test_ui_on(backend).await;
    ui.ticket(
        "Где мой заказ 1042?",
        "Заказ так и не пришёл, прошла неделя.",
        "ivan@example.com",
    )
    .await;
    ui.ticket(
        "Вопрос о размере",
        "Подойдёт ли размер M?",
        "masha@example.com",
    )
    .await;
    let base = serve(ui.router.clone()).await;
    let profile = tempfile::tempdir().expect("a fresh Chromium profile");
    let client = connect(&driver, profile.path()).await;
    let outcome = std::panic::AssertUnwindSafe(async {
        scenario(&client, &ui, &base, backend).await;
        more_of_the_day(&client, &ui, &base, backend).await;
    })
    .catch_unwind()
    .await;
    if outcome.is_err() {
        save_screenshot(&client, backend, "failure").await;
    }
    let _ = client.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
