//! The widget script's promises: it parses, it fits the size budget, it touches no global but
//! `window.Otklik`, it never turns text into HTML or code, its strings exist in both languages,
//! and its logic behaves under node (`tests/*.test.js`). Node is required: these tests fail,
//! they do not skip, when it is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use otklik_widget::{TEST_IDS, WIDGET_JS};

/// The crate's folder in the checkout being tested: cargo and nextest set the variable when they
/// run the test too. The path built in is the fallback only: a target folder shared between
/// checkouts may run a binary built in another, since removed (node then failed to start there).
fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// node v20 or later, at /usr/bin/node or on PATH; a missing node is a failure, not a skip.
fn node(args: &[&str]) -> Output {
    let program = ["/usr/bin/node", "/usr/local/bin/node"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("node");
    Command::new(program)
        .args(args)
        .current_dir(crate_dir())
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "node is required to test the widget and could not be run ({program}: {error}); \
                 install Node.js 20 or later (apt-get install nodejs)"
            )
        })
}

fn node_must_pass(args: &[&str]) {
    let output = node(args);
    assert!(
        output.status.success(),
        "node {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The JSON block between the i18n markers.
fn dictionary() -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
    let start = WIDGET_JS
        .find("/* i18n:begin */")
        .expect("the i18n:begin marker")
        + "/* i18n:begin */".len();
    let end = WIDGET_JS
        .find("/* i18n:end */")
        .expect("the i18n:end marker");
    serde_json::from_str(&WIDGET_JS[start..end]).expect("the dictionary is strict JSON")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Every `word` in the source that stands alone (not part of a longer identifier), with what
/// follows it.
fn occurrences<'a>(source: &'a str, word: &str) -> Vec<&'a str> {
    source
        .match_indices(word)
        .filter(|(at, _)| {
            !source[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| is_ident(c) || c == '.')
        })
        .map(|(at, _)| &source[at + word.len()..])
        .collect()
}

fn identifier(text: &str) -> &str {
    let end = text.find(|c: char| !is_ident(c)).unwrap_or(text.len());
    &text[..end]
}

#[test]
fn the_script_passes_node_check() {
    node_must_pass(&["--check", "assets/widget.js"]);
}

#[test]
fn the_script_is_at_most_30_kb_gzip_compressed() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(WIDGET_JS.as_bytes()).unwrap();
    let compressed = encoder.finish().unwrap().len();
    eprintln!(
        "widget.js: {} bytes, {compressed} bytes gzip-compressed",
        WIDGET_JS.len()
    );
    assert!(
        compressed <= 30 * 1024,
        "widget.js is {compressed} bytes gzip-compressed; the issue's budget is 30 KB"
    );
}

#[test]
fn the_script_is_one_iife_and_touches_no_global_but_otklik() {
    let code = WIDGET_JS.trim();
    let body = code
        .split_once("*/")
        .map(|(_, rest)| rest.trim_start())
        .expect("the script opens with its header comment");
    assert!(
        body.starts_with("(function () {\n  \"use strict\";"),
        "everything is inside one strict IIFE"
    );
    assert!(body.ends_with("})();"), "the IIFE closes the file");

    let allowed_window = [
        "Otklik",
        "localStorage",
        "sessionStorage",
        "addEventListener",
    ];
    for rest in occurrences(code, "window.") {
        let name = identifier(rest);
        assert!(
            allowed_window.contains(&name),
            "the script uses window.{name}; allowed: {allowed_window:?}"
        );
        let after = rest[name.len()..].trim_start();
        if after.starts_with('=') && !after.starts_with("==") {
            assert_eq!(name, "Otklik", "the only global written is window.Otklik");
        }
    }
    for rest in occurrences(code, "globalThis.") {
        assert_eq!(
            identifier(rest),
            "__otklikWidgetTest",
            "globalThis is read only for the test hook"
        );
    }
    for word in ["self.", "top.", "parent.", "frames."] {
        assert!(
            occurrences(code, word).is_empty(),
            "the script does not use {word}"
        );
    }
}

#[test]
fn the_script_never_turns_text_into_html_nor_evaluates_code() {
    for forbidden in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "createContextualFragment",
        "DOMParser",
        "srcdoc",
        "new Function",
        "javascript:",
        "setHTML",
    ] {
        assert!(
            !WIDGET_JS.contains(forbidden),
            "widget.js contains {forbidden}"
        );
    }
    assert!(
        occurrences(WIDGET_JS, "eval").is_empty()
            || occurrences(WIDGET_JS, "eval")
                .iter()
                .all(|rest| rest.starts_with(|c: char| is_ident(c))),
        "widget.js calls eval"
    );
    for timer in [
        "setTimeout(\"",
        "setTimeout('",
        "setInterval(\"",
        "setInterval('",
    ] {
        assert!(
            !WIDGET_JS.contains(timer),
            "a timer is given a string of code"
        );
    }
}

#[test]
fn every_string_exists_in_russian_and_english() {
    let dictionary = dictionary();
    assert_eq!(
        dictionary.keys().collect::<Vec<_>>(),
        ["en", "ru"],
        "the two languages"
    );
    let ru = &dictionary["ru"];
    let en = &dictionary["en"];
    let ru_keys: BTreeSet<_> = ru.keys().collect();
    let en_keys: BTreeSet<_> = en.keys().collect();
    assert_eq!(
        ru_keys.symmetric_difference(&en_keys).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "keys present in only one language"
    );
    let placeholders = |value: &serde_json::Value| -> BTreeSet<String> {
        let texts: Vec<String> = match value {
            serde_json::Value::String(text) => vec![text.clone()],
            serde_json::Value::Object(forms) => forms
                .values()
                .map(|form| form.as_str().expect("plural forms are strings").to_owned())
                .collect(),
            other => panic!("a string or plural forms, not {other}"),
        };
        texts
            .iter()
            .flat_map(|text| {
                text.split('{')
                    .skip(1)
                    .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    for key in ru.keys() {
        for (lang, value) in [("ru", &ru[key]), ("en", &en[key])] {
            match value {
                serde_json::Value::String(text) => {
                    assert!(!text.trim().is_empty(), "{lang}.{key} is empty")
                }
                serde_json::Value::Object(forms) => {
                    let expected: &[&str] = if lang == "ru" {
                        &["few", "many", "one"]
                    } else {
                        &["one", "other"]
                    };
                    assert_eq!(
                        forms.keys().map(String::as_str).collect::<Vec<_>>(),
                        expected,
                        "{lang}.{key}: plural forms"
                    );
                }
                other => panic!("{lang}.{key} is {other}"),
            }
        }
        assert_eq!(
            placeholders(&ru[key]),
            placeholders(&en[key]),
            "{key}: both languages fill in the same placeholders"
        );
    }
}

#[test]
fn every_string_the_script_uses_is_in_the_dictionary_and_none_is_unused() {
    let dictionary = dictionary();
    let keys: BTreeSet<&str> = dictionary["en"].keys().map(String::as_str).collect();
    let code = &WIDGET_JS[WIDGET_JS.find("/* i18n:end */").unwrap()..];
    let mut used = BTreeSet::new();
    for call in ["t(\"", "tn(\""] {
        for rest in occurrences(code, call) {
            let key = rest.split('"').next().unwrap();
            assert!(
                keys.contains(key),
                "{call}{key}\") is not in the dictionary"
            );
            used.insert(key);
        }
    }
    assert!(used.len() > 20, "the scan found the t(\"…\") calls");
    for key in keys {
        assert!(
            code.contains(&format!("\"{key}\"")),
            "the string {key} is never used"
        );
    }
}

#[test]
fn every_documented_test_id_is_in_the_script() {
    let dynamic_fields = ["name", "email", "order_number"];
    for id in TEST_IDS {
        let literal = format!("\"data-testid\": \"{id}\"");
        let dynamic = id
            .split_once('-')
            .filter(|(prefix, field)| {
                matches!(*prefix, "prechat" | "error") && dynamic_fields.contains(field)
            })
            .map(|(prefix, _)| format!("\"data-testid\": \"{prefix}-\" + name"));
        assert!(
            WIDGET_JS.contains(&literal) || dynamic.is_some_and(|d| WIDGET_JS.contains(&d)),
            "data-testid {id} is documented but not in widget.js"
        );
    }
    for rest in WIDGET_JS.split("\"data-testid\": \"").skip(1) {
        let id = rest.split('"').next().unwrap();
        let id = id.strip_suffix('-').unwrap_or(id);
        assert!(
            TEST_IDS
                .iter()
                .any(|known| known == &id || known.starts_with(&format!("{id}-"))),
            "data-testid {id} is in widget.js but not in TEST_IDS"
        );
    }
}

#[test]
fn the_reliability_logic_passes_its_node_tests() {
    node_must_pass(&["tests/widget_logic.test.js"]);
}

#[test]
fn the_test_shop_page_carries_the_placeholders_and_hostile_css() {
    let page = otklik_widget::TEST_SHOP_HTML;
    for needle in [
        "{{WIDGET_SRC}}",
        "{{SITE_ID}}",
        "font-size: 30px !important",
        "#shop div { display: none !important; }",
    ] {
        assert!(page.contains(needle), "test-shop.html lacks {needle}");
    }
}
