//! HTML from mail: sanitised for display, or turned into text.
//!
//! Both go through html5ever, whose tree builder slows down with nesting depth (each start tag
//! looks down the stack of open elements): 10,000 nested `<div>`s take seconds, 100,000 take
//! minutes. So a first pass with html5ever's tokenizer alone (linear) estimates the depth and
//! collects `cid:` references; past [`MAX_NESTING`] the HTML is shown as its text only.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use ammonia::Builder;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// Mail HTML past this many bytes is cut (at a character boundary) before rendering; the raw
/// mail keeps all of it. Gmail clips at about 100 KB, newsletters stay under 1 MB.
const MAX_HTML_BYTES: usize = 2 * 1024 * 1024;
/// Deepest element nesting we hand to the tree builder. Mail layouts nest tables a few dozen
/// levels; a long thread of quoted replies a few hundred elements at most.
const MAX_NESTING: usize = 400;
/// An end tag closes a matching element at most this far down the stack (in the estimate).
const END_TAG_REACH: usize = 16;

/// Sanitises mail HTML for display.
///
/// Policy (ammonia's allow-list, tightened):
/// - no script, event handlers, forms, frames, objects, `<base>`, `<meta>`, `<svg>` or `<math>`
///   (their content is dropped too), no comments, no `id`/`class`/`name`;
/// - links keep only `http`, `https`, `mailto` and `tel` URLs and get
///   `rel="noopener noreferrer nofollow"` and `target="_blank"`;
/// - `<img src="cid:...">` is rewritten with `resolve_cid` (given the Content-ID without
///   `cid:` and without `<>`), and the `src` is dropped when it returns `None`; remote images are
///   dropped (tracking pixels, SSRF) but keep their `alt` text; an image whose `src` is already
///   a path on our own origin (`/...`) is kept, which is what makes a second pass a no-op when
///   `resolve_cid` returns such paths;
/// - `style` attributes are kept, limited to presentational properties (colours, fonts, text,
///   spacing, borders, sizes, `display`), and dropped whole if they contain `url(`,
///   `expression`, `image-set`, `@import`, `behavior`, `binding`, a CSS escape or a comment.
///   Mail layouts depend on inline styles; serve the result under a CSP anyway.
///
/// Idempotent: `sanitize_html(&sanitize_html(x, r), r) == sanitize_html(x, r)` when `r`
/// returns paths on our own origin.
pub fn sanitize_html(html: &str, resolve_cid: &dyn Fn(&str) -> Option<String>) -> String {
    let html = bounded(html);
    let survey = Survey::of(html);
    if survey.too_deep {
        let text = format!("<pre>{}</pre>", ammonia::clean_text(survey.text.trim()));
        return policy(HashMap::new()).clean(&text).to_string();
    }
    let resolved: HashMap<String, String> = survey
        .content_ids
        .into_iter()
        .filter_map(|id| {
            let url = resolve_cid(&id).filter(|url| is_own_path(url) || is_http_url(url))?;
            Some((id, url))
        })
        .collect();
    let policy = policy(resolved);
    // The output is what a browser will parse, and some trees do not survive serialising
    // (an <a> that ended up inside an <a>, attributes reordered by a removal): clean again
    // until the output is stable, which is also what makes this function idempotent.
    let mut output = policy.clean(html).to_string();
    for _ in 0..MAX_PASSES {
        let again = policy.clean(&output).to_string();
        if again == output {
            return output;
        }
        output = again;
    }
    // Never seen; if the tree never settles, its text is still safe to show.
    let text = Survey::of(&output).text;
    policy
        .clean(&format!("<pre>{}</pre>", ammonia::clean_text(text.trim())))
        .to_string()
}

/// Extra sanitising passes before giving up on a stable tree.
const MAX_PASSES: usize = 3;

/// The HTML part of an agent's plain-text reply: every character escaped (ammonia's
/// `clean_text`), blank lines making paragraphs and single line breaks kept.
pub fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(|paragraph| paragraph.trim_matches('\n'))
        .filter(|paragraph| !paragraph.trim().is_empty())
        .map(|paragraph| {
            let lines: Vec<String> = paragraph.lines().map(ammonia::clean_text).collect();
            format!("<p>{}</p>", lines.join("<br>\n"))
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>{}</body></html>",
        paragraphs.join("\n")
    )
}

/// Plain text of mail HTML: layout tables read cell by cell, links as footnotes, no hard wraps.
pub fn html_to_text(html: &str) -> String {
    let html = bounded(html);
    let survey = Survey::of(html);
    if survey.too_deep {
        return survey.text.trim().to_owned();
    }
    html2text::config::plain()
        .raw_mode(true)
        .string_from_read(html.as_bytes(), TEXT_WIDTH)
        // html2text only fails on a width too narrow for its content; fall back to the text.
        .unwrap_or_else(|_| survey.text.trim().to_owned())
        .trim_end()
        .to_owned()
}

/// Wide enough that html2text never wraps a paragraph: the UI wraps.
const TEXT_WIDTH: usize = 10_000;

fn bounded(html: &str) -> &str {
    if html.len() <= MAX_HTML_BYTES {
        return html;
    }
    let mut end = MAX_HTML_BYTES;
    while !html.is_char_boundary(end) {
        end -= 1;
    }
    &html[..end]
}

/// Presentational CSS properties kept in `style` attributes.
const STYLE_PROPERTIES: &[&str] = &[
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "white-space",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "width",
    "height",
    "max-width",
    "min-width",
    "max-height",
    "min-height",
    "display",
    "list-style-type",
    "table-layout",
    "float",
    "clear",
];

/// Substrings that make a whole `style` attribute go: ways to fetch, run or hide code in CSS.
const FORBIDDEN_IN_STYLE: &[&str] = &[
    "url(",
    "expression",
    "image-set",
    "image(",
    "@import",
    "behavior",
    "binding",
    "javascript",
    "vbscript",
    "\\",
    "/*",
];

/// Elements removed together with their content.
const DROPPED_WITH_CONTENT: &[&str] = &[
    "script",
    "style",
    "title",
    "noscript",
    "template",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "xmp",
    "noembed",
    "noframes",
    "plaintext",
    "head",
    "select",
    "textarea",
    "button",
];

fn policy(resolved_cids: HashMap<String, String>) -> Builder<'static> {
    let mut builder = Builder::default();
    builder
        .rm_tags(["area", "map"])
        .add_tags(["font", "center"])
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .generic_attributes(
            ["lang", "title", "dir", "style", "align"]
                .into_iter()
                .collect(),
        )
        .add_tag_attributes("img", ["width", "height", "border", "hspace", "vspace"])
        .add_tag_attributes("font", ["color", "face", "size"])
        .add_tag_attributes(
            "table",
            [
                "width",
                "height",
                "border",
                "cellpadding",
                "cellspacing",
                "bgcolor",
            ],
        )
        .add_tag_attributes("td", ["width", "height", "bgcolor", "nowrap"])
        .add_tag_attributes("th", ["width", "height", "bgcolor", "nowrap"])
        .add_tag_attributes("tr", ["bgcolor", "valign"])
        .add_tag_attributes("col", ["width"])
        .url_schemes(
            ["http", "https", "mailto", "tel", "cid"]
                .into_iter()
                .collect(),
        )
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| {
            filter_attribute(&resolved_cids, element, attribute, value)
        });
    builder
}

fn filter_attribute<'u>(
    resolved_cids: &HashMap<String, String>,
    element: &str,
    attribute: &str,
    value: &'u str,
) -> Option<std::borrow::Cow<'u, str>> {
    match (element, attribute) {
        ("img", "src") => {
            if let Some(id) = cid_of(value) {
                resolved_cids.get(&id).map(|url| url.clone().into())
            } else if is_own_path(value) {
                Some(value.into())
            } else {
                None
            }
        }
        (_, "href") => is_link_url(value).then_some(value.into()),
        (_, "style") => {
            let lower = value.to_ascii_lowercase();
            (!FORBIDDEN_IN_STYLE.iter().any(|bad| lower.contains(bad))).then_some(value.into())
        }
        // `cite`, `longdesc` and other URL attributes are of no use in a mail.
        (_, "cite" | "longdesc" | "usemap") => None,
        _ => Some(value.into()),
    }
}

/// The Content-ID in a `cid:` URL (RFC 2392: percent-encoded).
fn cid_of(url: &str) -> Option<String> {
    let url = url.trim();
    let prefix = url.get(..4)?;
    if !prefix.eq_ignore_ascii_case("cid:") {
        return None;
    }
    let id = percent_encoding::percent_decode_str(&url[4..])
        .decode_utf8_lossy()
        .trim()
        .to_owned();
    (!id.is_empty()).then_some(id)
}

/// A path on the page's own origin: `/x`, but not `//host` or anything a browser would turn
/// into it (backslashes, tabs, line breaks).
fn is_own_path(url: &str) -> bool {
    url.starts_with('/')
        && !url.starts_with("//")
        && !url
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
}

fn is_http_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

fn is_link_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    ["https://", "http://", "mailto:", "tel:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// What the tokenizer pass learns about a document.
#[derive(Default)]
struct Survey {
    /// Open elements in the depth estimate.
    open: Vec<String>,
    too_deep: bool,
    /// `cid:` references of images.
    content_ids: BTreeSet<String>,
    /// The text outside raw-text elements, for when the HTML is too deep to render.
    text: String,
    /// Inside `<script>`, `<style>` and the like, whose text is not content.
    in_raw_text: bool,
}

/// Elements that never have content.
const VOID_ELEMENTS: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements a start tag of the same name closes (in the estimate).
const CLOSED_BY_SIBLING: &[&str] = &[
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "rb", "rp", "rt", "rtc",
];

impl Survey {
    fn of(html: &str) -> Survey {
        let tokenizer = Tokenizer::new(SurveySink(RefCell::default()), TokenizerOpts::default());
        let input = BufferQueue::default();
        input.push_back(StrTendril::from_slice(html));
        // The sink never asks to stop, so feeding runs to the end of the input.
        let _ = tokenizer.feed(&input);
        tokenizer.end();
        tokenizer.sink.0.into_inner()
    }

    fn start_tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        if name == "img"
            && let Some(src) = tag.attrs.iter().find(|attr| &*attr.name.local == "src")
            && let Some(id) = cid_of(&src.value)
        {
            self.content_ids.insert(id);
        }
        if matches!(
            name,
            "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "table"
        ) {
            self.text.push('\n');
        }
        if !self.too_deep && !VOID_ELEMENTS.contains(&name) {
            if CLOSED_BY_SIBLING.contains(&name) && self.open.last().is_some_and(|top| top == name)
            {
                self.open.pop();
            }
            self.open.push(name.to_owned());
            self.too_deep = self.open.len() > MAX_NESTING;
        }
        // Switch the tokenizer as the tree builder would, so script and style text is not
        // read as markup.
        match name {
            "script" => self.raw(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                self.raw(RawKind::Rawtext)
            }
            "title" | "textarea" => self.raw(RawKind::Rcdata),
            _ => TokenSinkResult::Continue,
        }
    }

    fn raw(&mut self, kind: RawKind) -> TokenSinkResult<()> {
        self.in_raw_text = true;
        TokenSinkResult::RawData(kind)
    }

    fn end_tag(&mut self, tag: &Tag) {
        self.in_raw_text = false;
        let name: &str = &tag.name;
        if let Some(depth) = self
            .open
            .iter()
            .rev()
            .take(END_TAG_REACH)
            .position(|open| open == name)
        {
            let new_len = self.open.len() - depth - 1;
            self.open.truncate(new_len);
        }
    }
}

struct SurveySink(RefCell<Survey>);

impl TokenSink for SurveySink {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        let mut survey = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => return survey.start_tag(&tag),
                TagKind::EndTag => survey.end_tag(&tag),
            },
            Token::CharacterTokens(text) if !survey.in_raw_text => survey.text.push_str(&text),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod text_to_html_tests {
    use super::text_to_html;

    #[test]
    fn a_plain_reply_becomes_escaped_paragraphs_with_its_line_breaks() {
        let html = text_to_html("Здравствуйте!\n\nЗаказ <b>4417</b> & доставка\nзавтра.");
        assert!(html.contains("<p>Здравствуйте!</p>"), "{html}");
        assert_eq!(html.matches("<p>").count(), 2, "{html}");
        assert!(html.contains("<br>"), "{html}");
        assert!(
            !html.contains("<b>"),
            "the reply's text never becomes markup: {html}"
        );
        let text = super::html_to_text(&html);
        assert!(text.contains("Заказ <b>4417</b> & доставка"), "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_survey_sees_depth_and_content_ids() {
        let survey = Survey::of(r#"<div><p>a<p>b<img src="cid:logo%40shop"></div>"#);
        assert!(!survey.too_deep);
        assert!(survey.open.is_empty());
        assert_eq!(
            survey.content_ids.into_iter().collect::<Vec<_>>(),
            ["logo@shop"]
        );
        assert!(Survey::of(&"<div>".repeat(MAX_NESTING + 1)).too_deep);
        assert!(!Survey::of(&"<p>x".repeat(MAX_NESTING * 2)).too_deep);
        assert!(!Survey::of(&"<br><img>".repeat(MAX_NESTING * 2)).too_deep);
    }

    #[test]
    fn script_text_is_not_read_as_markup_or_content() {
        let survey = Survey::of("<script>if (a<b) { '<div>'.repeat(9) }</script>Hello");
        assert_eq!(survey.text, "Hello");
        assert!(survey.open.is_empty());
    }

    #[test]
    fn own_paths_are_told_from_other_hosts() {
        assert!(is_own_path("/attachments/1/logo.png"));
        for url in [
            "//evil.test/x",
            "/\\evil.test",
            "/\t/evil.test",
            "https://x",
            "x.png",
        ] {
            assert!(!is_own_path(url), "{url:?}");
        }
    }
}
