//! The embeddable live-chat widget that shops put on their pages:
//!
//! ```html
//! <script src="https://HOST/widget.js" data-site="SITE_ID" async></script>
//! ```
//!
//! [`WIDGET_JS`] is `assets/widget.js`, shipped as written (no build step, no dependencies; the
//! server gzip-compresses it). It speaks the contract in `docs/chat-widget-api.md`. The server
//! serves it at `/widget.js` with [`etag`] and, if it links it with `?v=`, [`content_hash`] for
//! cache busting.
//!
//! The tests in `tests/widget.rs` keep the script's promises: it parses, it stays under the
//! issue's size budget, it defines no global but `window.Otklik` and never turns text into
//! HTML, both languages carry the same strings, and its reliability logic (SSE parsing, the
//! outbox, de-duplication by seq) behaves under node (`tests/widget_logic.test.js`).

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The widget script, served at `/widget.js` as `text/javascript; charset=utf-8`.
pub const WIDGET_JS: &str = include_str!("../assets/widget.js");

/// A plain shop page with hostile global CSS, for the end-to-end tests: it embeds the widget
/// from `{{WIDGET_SRC}}` for site `{{SITE_ID}}` (see [`test_shop_page`]).
pub const TEST_SHOP_HTML: &str = include_str!("../assets/test-shop.html");

/// The `data-testid`s of the widget's DOM, inside the shadow root of the `<otklik-chat>` host
/// (`document.querySelector("otklik-chat").shadowRoot`). End-to-end tests drive the widget
/// through these; a test in `tests/widget.rs` keeps the list and the script in step.
///
/// Attributes that go with them: `entry` carries `data-seq` and `data-author`
/// (`visitor|agent|system`, and `data-event` for system events) once the server has it, or
/// `data-pending="true"` and `data-client-id` while it waits in the outbox (and
/// `data-failed="true"` if refused); `mark` carries `data-state` (`pending|sent|read|failed`);
/// `status` carries `data-state` (`online|offline`); `prechat` carries `data-mode`
/// (`online|offline`).
pub const TEST_IDS: &[&str] = &[
    "widget",           // the root inside the shadow root; hidden until the site is loaded
    "launcher",         // the round button; aria-expanded
    "unread",           // the badge on it
    "panel",            // the chat panel (role=dialog)
    "site-name",        // its title
    "status",           // online/offline, or the agent's name
    "close",            // minimise
    "history",          // earlier chats, collapsed
    "history-chat",     // one earlier chat (data-ticket), a button that loads it
    "history-entries",  // its entries, once loaded
    "messages",         // the aria-live log around the two lists below
    "entries",          // the chat's entries, in seq order
    "greeting",         // the site's greeting, first in `entries`
    "pending",          // the outbox, after the entries
    "entry",            // one message or event (see above)
    "mark",             // ⏱ ✓ ✓✓ ✕ on the visitor's messages
    "attachment",       // a link to a file (images: a link around the thumbnail)
    "attachment-image", // the thumbnail
    "queue",            // "You are #2 in the queue · waiting 1:20"
    "typing",           // "Anna is typing…"
    "prechat",          // the pre-chat form, also the offline form (data-mode)
    "prechat-name",     // its inputs
    "prechat-email",
    "prechat-order_number",
    "error-name", // field errors (from the widget's checks or a 422's errors[])
    "error-email",
    "error-order_number",
    "error-body",       // errors under the message box (a 422 on body, a refused file)
    "offline",          // the offline explanation in the form
    "offline-done",     // "the answer will come by e-mail" after an offline message
    "ended",            // the box after the chat has ended
    "transcript",       // "Email me the transcript"
    "transcript-email", // asked when the visitor gave no e-mail
    "transcript-send",
    "transcript-status",
    "new-chat",   // "Start a new chat"
    "error",      // a problem that stops the chat (identity required, site unavailable)
    "connection", // "No connection…" banner
    "input",      // the message box
    "send",
    "attach",
    "file", // the hidden file input behind `attach`
    "end",  // "End chat"
];

/// The first 16 hex digits of the script's SHA-256: stable for one build, changes with any
/// edit. Use it in a strong ETag or as `/widget.js?v=<hash>`.
pub fn content_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = Sha256::digest(WIDGET_JS.as_bytes());
        digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    })
}

/// The `ETag` header value for [`WIDGET_JS`], quotes included.
pub fn etag() -> String {
    format!("\"{}\"", content_hash())
}

/// [`TEST_SHOP_HTML`] with the widget's URL and the site id filled in. Both are put into
/// HTML attributes, so they are escaped.
pub fn test_shop_page(widget_src: &str, site_id: &str) -> String {
    TEST_SHOP_HTML
        .replace("{{WIDGET_SRC}}", &escape_attribute(widget_src))
        .replace("{{SITE_ID}}", &escape_attribute(site_id))
}

fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_hash_is_sixteen_hex_digits_and_stable() {
        let hash = content_hash();
        assert_eq!(hash.len(), 16);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(hash, content_hash());
        assert_eq!(etag(), format!("\"{hash}\""));
    }

    #[test]
    fn the_test_shop_page_gets_the_widget_and_site_filled_in_escaped() {
        let page = test_shop_page("http://127.0.0.1:8080/widget.js", "site\"1<");
        assert!(page.contains(r#"src="http://127.0.0.1:8080/widget.js""#));
        assert!(page.contains(r#"data-site="site&quot;1&lt;""#));
        assert!(!page.contains("{{"));
    }
}
