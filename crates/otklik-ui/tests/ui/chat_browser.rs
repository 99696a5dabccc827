//! Live chat end to end in real headless Chromium: the whole product (the workspace, the widget
//! API and `/widget.js`) on one port, the test shop page with its hostile CSS on another (a
//! different origin, listed in the chat site's allowed origins), and two browsers at once — the
//! customer on the shop, the agent signed in to the workspace. What a person sees is asserted:
//! the isolated widget, availability in the header, a conversation both ways seen live,
//! typing, read marks, an image, a network outage on the customer's side that loses and
//! doubles nothing, the end of the chat, and, with nobody online, an offline message that
//! becomes a ticket. No console errors in any window; screenshots go with the other browser
//! test's (`$CARGO_TARGET_DIR/ui-screenshots/chat-*.png`).
//!
//! The outage is two things at once, as on a phone that loses its network: Chrome is put
//! offline through DevTools (`Network.emulateNetworkConditions`, which alone keeps an open
//! response stream alive), and the TCP relay the customer's browser reaches the product
//! through drops every connection, the widget's live stream included, and refuses new ones.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::response::Html;
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use futures::FutureExt;
use otklik_app::chat::ChatSiteInput;
use otklik_domain::chat::{
    Availability, ChatSite, ChatState, FieldMode, PreChatForm, WorkingHours,
};
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::ticket::TicketStatus;
use serde_json::{Value, json};

use crate::browser::{
    Chromedriver, assert_no_console_errors, connect, console, flat, save_screenshot, text_of,
    wait_for_text,
};
use crate::helpers::{ADMIN_EMAIL, Backend, PASSWORD, TestUi, test_ui_on};

/// How long any awaited condition may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// Finds things inside the widget's shadow root: `$(testid)`, `$$(testid)`, `shown(el)`.
const PRELUDE: &str = r#"
const host = document.querySelector("otklik-chat");
const root = host && host.shadowRoot;
const $ = (id) => root ? root.querySelector('[data-testid="' + id + '"]') : null;
const $$ = (id) => root ? Array.from(root.querySelectorAll('[data-testid="' + id + '"]')) : [];
const shown = (el) => !!el && el.getClientRects().length > 0;
const markOf = (el) => {
  const mark = el.querySelector('[data-testid="mark"]');
  return mark ? mark.getAttribute("data-state") : null;
};
const entries = () => $$("entry").map((el) => ({
  seq: el.getAttribute("data-seq"),
  author: el.getAttribute("data-author"),
  event: el.getAttribute("data-event"),
  pending: el.getAttribute("data-pending") === "true",
  client: el.getAttribute("data-client-id"),
  mark: markOf(el),
  text: el.textContent,
}));
"#;

/// Runs `body` (which `return`s) with the widget prelude in the page.
async fn in_widget(client: &Client, body: &str) -> Value {
    client
        .execute(&format!("{PRELUDE}\n{body}"), vec![])
        .await
        .unwrap_or_else(|error| panic!("the script failed: {error}\n{body}"))
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Polls `script` (run in the page, `return`ing a value) until it is truthy.
async fn wait_js(client: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|error| panic!("the script for {what:?} failed: {error}"));
        if truthy(&value) {
            return value;
        }
        if Instant::now() > deadline {
            let seen = client
                .execute(
                    &format!("{PRELUDE}\nreturn root ? root.textContent : document.body.innerText"),
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            panic!(
                "{what}: not within {} s (last answer {value}); the page shows {}",
                PATIENCE.as_secs(),
                flat(seen.as_str().unwrap_or_default())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `condition` (a widget expression) holds.
async fn wait_widget(client: &Client, what: &str, condition: &str) -> Value {
    wait_js(client, what, &format!("{PRELUDE}\nreturn {condition};")).await
}

/// An element of the widget, found through its shadow root as WebDriver sees it.
async fn widget_element(client: &Client, testid: &str) -> Element {
    let host = client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("otklik-chat"))
        .await
        .expect("the widget's host element");
    let root = host.shadow_root().await.expect("its shadow root");
    root.find(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
        .await
        .unwrap_or_else(|error| panic!("no {testid} in the widget: {error}"))
}

/// Waits for an element of the workspace.
async fn wait_element(client: &Client, css: &str) -> Element {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
}

/// Chrome DevTools through chromedriver: here, to cut the customer's network.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

async fn set_offline(client: &Client, offline: bool) {
    client
        .issue_cmd(Cdp {
            cmd: "Network.enable",
            params: json!({}),
        })
        .await
        .expect("Network.enable");
    client
        .issue_cmd(Cdp {
            cmd: "Network.emulateNetworkConditions",
            params: json!({
                "offline": offline,
                "latency": 0,
                "downloadThroughput": -1,
                "uploadThroughput": -1,
            }),
        })
        .await
        .expect("Network.emulateNetworkConditions");
}

/// A small PNG (a 24×24 square in the shop's green), written by hand: stored deflate blocks,
/// CRC-32 and Adler-32.
fn square_png() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffff_u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    const SIDE: u32 = 24;
    // Each row: filter type 0 (none), then the pixels.
    let row: Vec<u8> = std::iter::once(0)
        .chain([0x2d, 0xa4, 0x4e].repeat(SIDE as usize))
        .collect();
    let raw = row.repeat(SIDE as usize);
    let (mut a, mut b) = (1_u32, 0_u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    zlib.extend(len.to_le_bytes());
    zlib.extend((!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend(SIDE.to_be_bytes());
    header.extend(SIDE.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Serves `router` on a loopback port, with the peer address the widget's limits read.
async fn serve_with_peers(listener: tokio::net::TcpListener, router: axum::Router) -> String {
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    format!("http://{address}")
}

async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port")
}

/// The customer's line to the product: a TCP relay the widget's requests go through (the
/// agent reaches the product directly). Cutting it drops every connection on it — the live
/// stream included, which an emulated offline browser would keep — and refuses new ones
/// until it is restored.
struct Line {
    down: tokio::sync::watch::Sender<bool>,
}

impl Line {
    /// A relay to `target`, and its address.
    async fn to(target: SocketAddr) -> (Line, String) {
        let listener = loopback().await;
        let address = listener.local_addr().expect("the line's address");
        let (down, _) = tokio::sync::watch::channel(false);
        let watch = down.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *watch.borrow() {
                    continue; // dropped: the connection is refused
                }
                let mut cut = watch.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        (Line { down }, format!("http://{address}"))
    }

    fn cut(&self) {
        self.down.send_replace(true);
    }

    fn restore(&self) {
        self.down.send_replace(false);
    }
}

/// The chat site of the tea shop, answering from anywhere at any hour.
async fn tea_site(ui: &TestUi, shop_origin: &str) -> ChatSite {
    ui.app
        .create_chat_site(
            &ui.admin_principal(),
            ChatSiteInput {
                name: "Чайная лавка".into(),
                allowed_origins: vec![shop_origin.into()],
                greeting: "Здравствуйте! Чем помочь?".into(),
                accent_colour: "#0b57d0".into(),
                working_hours: WorkingHours::around_the_clock(),
                pre_chat: PreChatForm {
                    name: FieldMode::Required,
                    email: FieldMode::Optional,
                    order_number: FieldMode::Optional,
                },
                require_identity: false,
                team_id: None,
                mailbox_id: None,
                active: true,
            },
        )
        .await
        .expect("a chat site")
}

async fn sign_in(client: &Client, base: &str) {
    client
        .goto(&format!("{base}/inbox"))
        .await
        .expect("open the inbox");
    assert_eq!(text_of(client, "h1").await, "Вход");
    wait_element(client, "#login-email")
        .await
        .send_keys(ADMIN_EMAIL)
        .await
        .unwrap();
    wait_element(client, "#login-password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    click_live(client, "form[action='/login'] button[type=submit]").await;
    wait_for_text(client, "#views-nav", "Не назначенные").await;
}

/// Clicks `css`, finding it again if it was redrawn in between: the header's availability
/// control and the chat bar are swapped in by live updates at any moment.
async fn click_live(client: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let outcome = match client.find(Locator::Css(css)).await {
            Ok(element) => element.click().await.map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(()) => return,
            Err(error) if Instant::now() > deadline => panic!("could not click {css}: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Marks the page so a later check can tell it was never reloaded.
async fn mark_page(client: &Client) {
    client
        .execute("window.__otklikSamePage = true; return true;", vec![])
        .await
        .expect("mark the page");
}

async fn assert_same_page(client: &Client, step: &str) {
    let same = client
        .execute("return window.__otklikSamePage === true;", vec![])
        .await
        .expect("read the mark");
    assert_eq!(same, Value::Bool(true), "the page was reloaded {step}");
}

/// How many timeline messages of the agent's page contain `text`.
async fn timeline_count(client: &Client, text: &str) -> i64 {
    client
        .execute(
            "return Array.from(document.querySelectorAll('#timeline .entry-body'))\
               .filter((el) => el.textContent.includes(arguments[0])).length;",
            vec![json!(text)],
        )
        .await
        .expect("count timeline messages")
        .as_i64()
        .unwrap_or_default()
}

/// The customer types `text` in the widget and presses Enter.
async fn customer_writes(client: &Client, text: &str) {
    let input = widget_element(client, "input").await;
    input.send_keys(text).await.expect("type in the widget");
    input.send_keys("\u{e007}").await.expect("press Enter");
}

/// Console lines that are errors, except the failed loads a deliberate outage causes.
async fn console_errors_but_outage(client: &Client) -> Vec<String> {
    console(client)
        .await
        .into_iter()
        .filter(|line| line.starts_with("SEVERE") || line.starts_with("WARNING"))
        .filter(|line| !(line.contains("/widget/v1/") && line.contains("net::ERR_")))
        .collect()
}

struct Scene<'a> {
    ui: &'a TestUi,
    backend: Backend,
    base: String,
    shop: String,
    customer: &'a Client,
    agent: &'a Client,
    driver: &'a Chromedriver,
    line: &'a Line,
}

async fn conversation(scene: &Scene<'_>) {
    let Scene {
        ui,
        backend,
        base,
        shop,
        customer,
        agent,
        line,
        ..
    } = scene;
    let (ui, backend) = (*ui, *backend);

    // 1. The widget appears on the shop's page, untouched by the shop's hostile CSS, and the
    //    shop's page untouched by it.
    customer.goto(shop).await.expect("open the shop");
    wait_widget(
        customer,
        "the widget shows its launcher",
        r#"root && !$("widget").hidden && shown($("launcher"))"#,
    )
    .await;
    let isolation = in_widget(
        customer,
        r#"
        const style = (el) => getComputedStyle(el);
        const launcher = $("launcher").getBoundingClientRect();
        const before = window.__shopGlobalsBefore;
        return {
          launcher: [Math.round(launcher.width), Math.round(launcher.height)],
          launcherBackground: style($("launcher")).backgroundColor,
          launcherPadding: style($("launcher")).paddingTop,
          launcherBorder: style($("launcher")).borderTopStyle,
          fontSize: style($("widget")).fontSize,
          fontFamily: style($("widget")).fontFamily,
          letterSpacing: style($("widget")).letterSpacing,
          statusColour: style($("status")).color,
          shopTitleSize: style(document.querySelector('[data-testid="shop-title"]')).fontSize,
          shopTrap: style(document.querySelector('[data-testid="shop-trap"]')).display,
          shopBuy: style(document.querySelector('[data-testid="shop-buy"]')).backgroundColor,
          // the shop's own snapshot and chromedriver's helper are no widget's doing
          newGlobals: Object.keys(window).filter((key) => !before.includes(key)
            && key !== "__shopGlobalsBefore" && key !== "ret_nodes"),
          marker: window.Otklik && window.Otklik.shopMarker,
          api: typeof (window.Otklik && window.Otklik.open),
          status: $("status").getAttribute("data-state"),
          statusText: $("status").textContent,
          siteName: $("site-name").textContent,
        };
        "#,
    )
    .await;
    assert_eq!(isolation["launcher"], json!([58, 58]), "{isolation:#}");
    assert_eq!(
        isolation["launcherBackground"], "rgb(11, 87, 208)",
        "the site's accent, not the shop's yellow: {isolation:#}"
    );
    assert_eq!(isolation["launcherPadding"], "0px", "{isolation:#}");
    assert_ne!(isolation["launcherBorder"], "dashed", "{isolation:#}");
    assert_eq!(isolation["fontSize"], "15px", "{isolation:#}");
    assert!(
        !isolation["fontFamily"]
            .as_str()
            .unwrap_or_default()
            .contains("Comic"),
        "{isolation:#}"
    );
    assert_eq!(isolation["letterSpacing"], "normal", "{isolation:#}");
    assert_ne!(isolation["statusColour"], "rgb(255, 0, 0)", "{isolation:#}");
    assert_eq!(isolation["shopTitleSize"], "30px", "{isolation:#}");
    assert_eq!(isolation["shopTrap"], "none", "{isolation:#}");
    assert_eq!(isolation["shopBuy"], "rgb(255, 255, 0)", "{isolation:#}");
    assert_eq!(
        isolation["newGlobals"],
        json!([]),
        "the widget defines no global: {isolation:#}"
    );
    assert_eq!(isolation["marker"], "kept", "{isolation:#}");
    assert_eq!(isolation["api"], "function", "{isolation:#}");
    assert_eq!(isolation["siteName"], "Чайная лавка", "{isolation:#}");
    assert_eq!(
        isolation["status"], "offline",
        "nobody is online yet: {isolation:#}"
    );
    assert_no_console_errors(customer, "loading the shop with the widget").await;

    // 2. The agent signs in and goes online from the header.
    sign_in(agent, base).await;
    wait_element(
        agent,
        "[data-testid=availability][data-availability=offline]",
    )
    .await;
    click_live(agent, "[data-testid=availability-online]").await;
    wait_element(
        agent,
        "[data-testid=availability][data-availability=online]",
    )
    .await;
    let status = ui
        .app
        .chat_status(&ui.admin_principal())
        .await
        .expect("the agent's chat status");
    assert_eq!(status.availability, Availability::Online);
    click_live(agent, "#chats-link").await;
    wait_element(agent, "[data-testid=my-chats]").await;
    wait_for_text(agent, "[data-testid=my-chats]", "У вас нет активных чатов").await;
    mark_page(agent).await;
    assert_no_console_errors(agent, "going online").await;

    // 3. The customer opens the widget: someone is online now; the pre-chat form asks for
    //    the name (required) and an order number; the first message goes out.
    widget_element(customer, "launcher")
        .await
        .click()
        .await
        .unwrap();
    wait_widget(
        customer,
        "the panel opens with the online pre-chat form",
        r#"shown($("panel")) && shown($("prechat")) && $("prechat").getAttribute("data-mode") === "online"
           && $("status").getAttribute("data-state") === "online""#,
    )
    .await;
    let greeting = in_widget(customer, r#"return $("greeting").textContent"#).await;
    assert_eq!(greeting, "Здравствуйте! Чем помочь?");
    // Sending without the name is stopped by the widget, with the reason next to the field.
    customer_writes(customer, "Здравствуйте, где мой заказ?").await;
    wait_widget(
        customer,
        "the missing name is pointed out",
        r#"shown($("error-name")) && $$("pending").every((list) => list.children.length === 0)"#,
    )
    .await;
    widget_element(customer, "prechat-name")
        .await
        .send_keys("Ольга")
        .await
        .unwrap();
    widget_element(customer, "prechat-order_number")
        .await
        .send_keys("7731")
        .await
        .unwrap();
    widget_element(customer, "send")
        .await
        .click()
        .await
        .unwrap();
    wait_widget(
        customer,
        "the first message is stored and the agent named",
        r#"entries().some((e) => e.author === "visitor" && e.seq && e.text.includes("где мой заказ"))
           && $("status").textContent.includes("Анна Админова")"#,
    )
    .await;
    let first_mark = in_widget(
        customer,
        r#"return entries().find((e) => e.author === "visitor" && e.seq).mark"#,
    )
    .await;
    assert_eq!(first_mark, "sent", "delivered, not yet read");

    // The agent sees the chat arrive on the Chats page without reloading it.
    let mine = wait_for_text(agent, "[data-testid=my-chats]", "Ольга").await;
    assert!(mine.contains("где мой заказ"), "{mine}");
    assert_same_page(agent, "while the chat arrived").await;
    click_live(agent, "[data-testid=my-chat-row] a").await;
    wait_for_text(agent, "#timeline", "Здравствуйте, где мой заказ?").await;
    wait_element(agent, "[data-testid=chat-bar][data-chat-state=active]").await;
    let order_note = text_of(agent, "#timeline").await;
    assert!(order_note.contains("7731"), "{order_note}");
    mark_page(agent).await;
    // The agent has seen it: the customer's message turns read.
    wait_widget(
        customer,
        "the first message is marked read",
        r#"entries().filter((e) => e.author === "visitor" && e.seq).every((e) => e.mark === "read")"#,
    )
    .await;

    // A second message reaches the open ticket live.
    customer_writes(customer, "Курьер так и не приехал").await;
    wait_for_text(agent, "#timeline", "Курьер так и не приехал").await;
    assert_same_page(agent, "while the customer wrote").await;
    wait_widget(
        customer,
        "the second message is marked read",
        r#"entries().filter((e) => e.author === "visitor" && e.seq).length === 2
           && entries().filter((e) => e.author === "visitor").every((e) => e.mark === "read")"#,
    )
    .await;
    assert_no_console_errors(agent, "receiving the chat").await;

    // 4. The agent types: the customer sees it; the reply arrives, the typing line goes.
    let reply_box = wait_element(agent, "#reply-body").await;
    reply_box.send_keys("Сейчас проверю").await.unwrap();
    let typing = wait_widget(
        customer,
        "the customer sees the agent typing",
        r#"shown($("typing")) && $("typing").textContent"#,
    )
    .await;
    assert_eq!(typing, "Анна Админова печатает…");
    reply_box
        .send_keys(", одну минуту. Посылка у курьера.")
        .await
        .unwrap();
    click_live(agent, "#reply-send").await;
    wait_widget(
        customer,
        "the reply arrives and the typing line goes",
        r#"entries().some((e) => e.author === "agent" && e.text.includes("Сейчас проверю, одну минуту. Посылка у курьера."))
           && !shown($("typing"))"#,
    )
    .await;
    wait_for_text(agent, "#timeline", "Посылка у курьера").await;
    assert_no_console_errors(agent, "replying").await;

    // A customer typing shows in the workspace too.
    widget_element(customer, "input")
        .await
        .send_keys("Спасибо")
        .await
        .unwrap();
    wait_for_text(agent, "[data-testid=chat-typing]", "Клиент печатает…").await;
    widget_element(customer, "input")
        .await
        .send_keys("!\u{e007}")
        .await
        .unwrap();
    wait_for_text(agent, "#timeline", "Спасибо!").await;
    mark_page(agent).await;

    // 5. A photo from the customer: a thumbnail in the widget and in the agent's timeline.
    let folder = tempfile::tempdir().expect("a folder for the photo");
    let photo = folder.path().join("parcel.png");
    std::fs::write(&photo, square_png()).expect("write the photo");
    widget_element(customer, "file")
        .await
        .send_keys(photo.to_str().expect("a UTF-8 path"))
        .await
        .expect("choose the file");
    wait_widget(
        customer,
        "the photo shows in the widget",
        r#"$$("attachment-image").some((img) => img.complete && img.naturalWidth === 24)"#,
    )
    .await;
    wait_js(
        agent,
        "the photo shows in the agent's timeline",
        r#"return Array.from(document.querySelectorAll('#timeline img[alt="parcel.png"]'))
             .some((img) => img.complete && img.naturalWidth === 24);"#,
    )
    .await;
    assert_same_page(agent, "while the photo arrived").await;
    save_screenshot(customer, backend, "chat-widget").await;
    save_screenshot(agent, backend, "chat-agent").await;
    assert_no_console_errors(customer, "chatting").await;
    assert_no_console_errors(agent, "seeing the photo").await;

    // 6. The customer's network goes away: the browser goes offline and every connection on
    //    the line drops, the live stream too. What they write waits in the widget, marked as
    //    sending; the agent's answer meanwhile waits on the server. Back online, everything
    //    arrives once, on both sides.
    line.cut();
    set_offline(customer, true).await;
    wait_widget(
        customer,
        "the widget says the connection is gone",
        r#"shown($("connection"))"#,
    )
    .await;
    customer_writes(customer, "Пока нет связи: первое").await;
    customer_writes(customer, "Пока нет связи: второе").await;
    let waiting = wait_widget(
        customer,
        "both wait in the outbox",
        r#"entries().filter((e) => e.pending && e.mark === "pending").length === 2
           && entries().filter((e) => e.pending).map((e) => e.text)"#,
    )
    .await;
    assert!(
        waiting.to_string().contains("первое") && waiting.to_string().contains("второе"),
        "{waiting}"
    );
    let outbox = in_widget(
        customer,
        r#"return Object.keys(localStorage).filter((k) => k.endsWith(":outbox"))
             .map((k) => JSON.parse(localStorage.getItem(k)).length);"#,
    )
    .await;
    assert_eq!(
        outbox,
        json!([2]),
        "kept in localStorage until acknowledged"
    );
    let reply_box = wait_element(agent, "#reply-body").await;
    reply_box
        .send_keys("Пока вас не было: посылка в пункте выдачи.")
        .await
        .unwrap();
    click_live(agent, "#reply-send").await;
    wait_for_text(agent, "#timeline", "посылка в пункте выдачи").await;
    assert_eq!(
        timeline_count(agent, "Пока нет связи").await,
        0,
        "nothing got through while offline"
    );
    // The live stream went down with the network: the reply waits for the resync.
    let early = in_widget(
        customer,
        r#"return entries().some((e) => e.text.includes("посылка в пункте выдачи"));"#,
    )
    .await;
    assert_eq!(early, json!(false), "the reply reached an offline browser");
    line.restore();
    set_offline(customer, false).await;
    wait_widget(
        customer,
        "back online, the outbox empties and the missed reply arrives",
        r#"!shown($("connection"))
           && entries().filter((e) => e.pending).length === 0
           && entries().filter((e) => e.text.includes("Пока нет связи")).length === 2
           && entries().some((e) => e.author === "agent" && e.text.includes("посылка в пункте выдачи"))"#,
    )
    .await;
    let agent_sees = wait_js(
        agent,
        "the agent gets both messages",
        r#"const bodies = Array.from(document.querySelectorAll('#timeline .entry-body'))
             .map((el) => el.textContent.trim());
           return bodies.includes("Пока нет связи: первое") && bodies.includes("Пока нет связи: второе")
             && bodies;"#,
    )
    .await;
    // Once each, in order, on screen and in the database.
    let bodies: Vec<&str> = agent_sees
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|body| body.starts_with("Пока нет связи"))
        .collect();
    assert_eq!(
        bodies,
        ["Пока нет связи: первое", "Пока нет связи: второе"],
        "once each, in order"
    );
    let widget_log = in_widget(customer, "return entries();").await;
    let log = widget_log.as_array().unwrap();
    let mut seqs: Vec<i64> = log
        .iter()
        .filter_map(|entry| entry["seq"].as_str().and_then(|seq| seq.parse().ok()))
        .collect();
    let count = seqs.len();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "entries in seq order: {widget_log:#}"
    );
    seqs.dedup();
    assert_eq!(seqs.len(), count, "no seq twice: {widget_log:#}");
    for text in ["Пока нет связи: первое", "Пока нет связи: второе"]
    {
        assert_eq!(
            log.iter()
                .filter(|entry| entry["text"].as_str().unwrap_or_default().contains(text))
                .count(),
            1,
            "{text:?} once in the widget: {widget_log:#}"
        );
    }
    let ticket_id = wait_element(agent, "body[data-ticket-id]")
        .await
        .attr("data-ticket-id")
        .await
        .unwrap()
        .expect("the ticket id");
    let ticket_id: otklik_domain::ids::TicketId = ticket_id.parse().expect("a ticket id");
    let stored = ui
        .app
        .store
        .list_messages(ticket_id)
        .await
        .expect("the ticket's messages");
    for text in ["Пока нет связи: первое", "Пока нет связи: второе"]
    {
        assert_eq!(
            stored.iter().filter(|message| message.body == text).count(),
            1,
            "{text:?} stored once"
        );
    }
    let outage = console_errors_but_outage(customer).await;
    assert!(
        outage.is_empty(),
        "the browser logged errors beyond the outage's failed loads: {outage:#?}"
    );
    wait_widget(
        customer,
        "everything the customer sent is read",
        r#"entries().filter((e) => e.author === "visitor").every((e) => e.mark === "read")"#,
    )
    .await;
    assert_no_console_errors(agent, "during the customer's outage").await;

    // 7. The agent ends the chat and goes offline; the customer is told it has ended.
    click_live(agent, "[data-testid=chat-end]").await;
    wait_element(agent, "[data-testid=chat-bar][data-chat-state=ended]").await;
    wait_widget(
        customer,
        "the customer sees the chat has ended",
        r#"shown($("ended")) && entries().some((e) => e.event === "ended") && !shown($("input"))"#,
    )
    .await;
    click_live(agent, "[data-testid=availability-offline]").await;
    wait_element(
        agent,
        "[data-testid=availability][data-availability=offline]",
    )
    .await;
    assert_eq!(
        ui.app
            .get_chat(&ui.admin_principal(), ticket_id)
            .await
            .unwrap()
            .chat
            .state,
        ChatState::Ended
    );
    assert_no_console_errors(customer, "at the end of the chat").await;
    assert_no_console_errors(agent, "ending the chat and going offline").await;
}

/// A new customer (a fresh browser) while nobody is online: the offline form takes the
/// message and the e-mail, and a ticket waits for the agents.
async fn offline_message(scene: &Scene<'_>, newcomer: &Client) {
    let Scene {
        ui,
        backend,
        base,
        shop,
        agent,
        ..
    } = scene;
    let (ui, backend) = (*ui, *backend);
    newcomer.goto(shop).await.expect("open the shop");
    wait_widget(
        newcomer,
        "the widget says nobody is there",
        r#"root && !$("widget").hidden && $("status").getAttribute("data-state") === "offline""#,
    )
    .await;
    let fresh = in_widget(
        newcomer,
        r#"return Object.keys(localStorage).filter((k) => k.startsWith("otklik:"));"#,
    )
    .await;
    assert_eq!(fresh, json!([]), "a new browser knows no visitor");
    widget_element(newcomer, "launcher")
        .await
        .click()
        .await
        .unwrap();
    wait_widget(
        newcomer,
        "the offline form asks for the e-mail",
        r#"shown($("prechat")) && $("prechat").getAttribute("data-mode") === "offline"
           && shown($("offline")) && $("prechat-email").required"#,
    )
    .await;
    widget_element(newcomer, "prechat-name")
        .await
        .send_keys("Игорь")
        .await
        .unwrap();
    widget_element(newcomer, "prechat-email")
        .await
        .send_keys("igor@example.ru")
        .await
        .unwrap();
    customer_writes(newcomer, "Есть ли улун в пакетиках?").await;
    let done = wait_widget(
        newcomer,
        "the widget says the answer will come by e-mail",
        r#"shown($("offline-done")) && $("offline-done").textContent"#,
    )
    .await;
    assert_eq!(done, "Спасибо! Ответ придёт на igor@example.ru.");
    save_screenshot(newcomer, backend, "chat-widget-offline").await;

    // The agent finds the ticket among the new ones.
    agent
        .goto(&format!("{base}/tickets?status=new"))
        .await
        .unwrap();
    let rows = wait_for_text(agent, "#ticket-rows", "Есть ли улун в пакетиках?").await;
    assert!(rows.contains("Игорь"), "{rows}");
    let tickets = ui
        .app
        .list_tickets(
            &ui.admin_principal(),
            otklik_store::TicketFilter {
                statuses: vec![TicketStatus::New],
                ..Default::default()
            },
            None,
            20,
        )
        .await
        .unwrap()
        .tickets;
    let ticket = tickets
        .iter()
        .find(|ticket| ticket.subject == "Есть ли улун в пакетиках?")
        .expect("the offline message is a ticket");
    let chat = ui
        .app
        .get_chat(&ui.admin_principal(), ticket.id)
        .await
        .unwrap()
        .chat;
    assert_eq!(chat.state, ChatState::Offline);
    let owner = ui
        .app
        .store
        .find_customer_by_identity(&IdentityValue {
            kind: IdentityKind::Email,
            provider: String::new(),
            value: "igor@example.ru".into(),
        })
        .await
        .unwrap()
        .expect("the e-mail is the customer's");
    assert_eq!(owner.id, ticket.customer_id);
    assert_no_console_errors(newcomer, "leaving an offline message").await;
    assert_no_console_errors(agent, "finding the offline message").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_with_a_shop_customer_in_real_browsers() {
    chat_in_browsers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_with_a_shop_customer_in_real_browsers_on_postgresql() {
    chat_in_browsers(Backend::Postgres).await;
}

async fn chat_in_browsers(backend: Backend) {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    let started = Instant::now();
    let driver = Chromedriver::start().await;
    let ui = test_ui_on(backend).await;

    // The shop's port first: its origin goes into the site's allowed origins.
    let shop_listener = loopback().await;
    let shop_origin = format!(
        "http://{}",
        shop_listener.local_addr().expect("the shop's address")
    );
    let site = tea_site(&ui, &shop_origin).await;
    let product = otklik_web::router_with_pages(
        otklik_web::AppState::new(ui.app.clone(), None),
        Some(ui.router.clone()),
    );
    let base = serve_with_peers(loopback().await, product).await;
    let product_address: SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .expect("the product's address");
    // The customer's browser reaches the same server through a line the test can cut.
    let (line, via_line) = Line::to(product_address).await;
    let page =
        otklik_widget::test_shop_page(&format!("{via_line}/widget.js"), &site.id.to_string());
    let shop_router = axum::Router::new()
        .route(
            "/",
            axum::routing::get(move || {
                let page = page.clone();
                async move { Html(page) }
            }),
        )
        .route(
            "/favicon.ico",
            axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
    let shop = serve_with_peers(shop_listener, shop_router).await;
    assert_eq!(shop, shop_origin);
    let shop = format!("{shop}/");

    let profiles: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("a fresh Chromium profile"))
        .collect();
    let customer = connect(&driver, profiles[0].path()).await;
    let agent = connect(&driver, profiles[1].path()).await;
    let scene = Scene {
        ui: &ui,
        backend,
        base,
        shop,
        customer: &customer,
        agent: &agent,
        driver: &driver,
        line: &line,
    };
    let mut newcomer: Option<Client> = None;
    let outcome = std::panic::AssertUnwindSafe(async {
        conversation(&scene).await;
        let client = connect(scene.driver, profiles[2].path()).await;
        newcomer = Some(client.clone());
        offline_message(&scene, &client).await;
    })
    .catch_unwind()
    .await;
    if outcome.is_err() {
        // What the browsers logged helps to tell a refused request from a slow one.
        eprintln!("customer's console: {:#?}", console(&customer).await);
        eprintln!("agent's console: {:#?}", console(&agent).await);
        save_screenshot(&customer, backend, "chat-failure-customer").await;
        save_screenshot(&agent, backend, "chat-failure-agent").await;
        if let Some(client) = &newcomer {
            save_screenshot(client, backend, "chat-failure-newcomer").await;
        }
    }
    for client in [Some(customer), Some(agent), newcomer]
        .into_iter()
        .flatten()
    {
        let _ = client.close().await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    eprintln!(
        "chat in real browsers ({backend:?}): {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The preflight a browser sends before the widget's JSON and authorised calls is answered
/// with CORS headers by the whole product's router (the API's 405 fallback once took it).
#[tokio::test]
async fn chat_widget_preflights_are_answered_through_the_product_router() {
    use tower::ServiceExt;
    let ui = test_ui_on(Backend::Sqlite).await;
    let product = otklik_web::router_with_pages(
        otklik_web::AppState::new(ui.app.clone(), None),
        Some(ui.router.clone()),
    );
    for (path, method) in [
        (
            "/widget/v1/sites/01a20881-7741-7194-9104-e18a3387f055/visitors",
            "POST",
        ),
        (
            "/widget/v1/sites/01a20881-7741-7194-9104-e18a3387f055",
            "GET",
        ),
        ("/widget/v1/state", "GET"),
        ("/widget/v1/events", "GET"),
        ("/widget/v1/chats", "POST"),
        (
            "/widget/v1/chats/01a20881-7741-7194-9104-e18a3387f055/messages",
            "POST",
        ),
        (
            "/widget/v1/chats/01a20881-7741-7194-9104-e18a3387f055/attachments",
            "POST",
        ),
        (
            "/widget/v1/chats/01a20881-7741-7194-9104-e18a3387f055/entries",
            "GET",
        ),
        (
            "/widget/v1/chats/01a20881-7741-7194-9104-e18a3387f055/read",
            "POST",
        ),
    ] {
        let request = axum::http::Request::builder()
            .method("OPTIONS")
            .uri(path)
            .header("origin", "https://shop.example")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .body(axum::body::Body::empty())
            .unwrap();
        let response = product.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success(), "{path}: {response:?}");
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"], "https://shop.example",
            "{path}"
        );
        assert!(
            headers["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("authorization"),
            "{path}"
        );
    }
}
