//! The Fluent catalogues: both languages have the same keys, and every key the templates and
//! the code use exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use otklik_domain::customer::IdentityKind;
use otklik_domain::ticket::{Channel, Priority, TicketStatus};
use otklik_ui::Lang;

/// The crate's folder in the checkout being tested: cargo and nextest set the variable when they
/// run the test too. The path built in is the fallback only: a target folder shared between
/// checkouts may run a binary built in another, since removed.
pub(crate) fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn keys_of(language: &str) -> BTreeSet<String> {
    let path = crate_dir().join("locales").join(language).join("main.ftl");
    let source = std::fs::read_to_string(&path).expect("the catalogue exists");
    let resource = match fluent_syntax::parser::parse(source.as_str()) {
        Ok(resource) => resource,
        Err((_, errors)) => panic!("{}: {errors:?}", path.display()),
    };
    resource
        .body
        .iter()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(message) => Some(message.id.name.to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_key_exists_in_both_russian_and_english() {
    let russian = keys_of("ru");
    let english = keys_of("en");
    let only_ru: Vec<_> = russian.difference(&english).collect();
    let only_en: Vec<_> = english.difference(&russian).collect();
    assert!(only_ru.is_empty(), "missing in en/main.ftl: {only_ru:?}");
    assert!(only_en.is_empty(), "missing in ru/main.ftl: {only_en:?}");
    assert!(russian.len() > 100, "the catalogues were read");
}

fn files(folder: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, extension, found);
        } else if path.extension().is_some_and(|ext| ext == extension) {
            found.push(path);
        }
    }
}

/// The string literals that follow `call` in `text`: `t("key")` → `key`.
fn literal_arguments(text: &str, call: &str) -> Vec<String> {
    text.match_indices(call)
        .filter_map(|(index, _)| {
            let rest = &text[index + call.len()..];
            let end = rest.find('"')?;
            Some(rest[..end].to_owned())
        })
        .collect()
}

fn looks_like_key(text: &str) -> bool {
    !text.is_empty()
        && text.contains('-')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[test]
fn every_key_used_in_templates_and_code_exists_in_both_languages() {
    let mut sources = Vec::new();
    files(&crate_dir().join("templates"), "html", &mut sources);
    files(&crate_dir().join("src"), "rs", &mut sources);
    let mut used = BTreeSet::new();
    for path in &sources {
        let text = std::fs::read_to_string(path).expect("source");
        for call in [".t(\"", ".count(\"", ".with(\""] {
            used.extend(literal_arguments(&text, call));
        }
        // Keys handed around as values: `Some("login-expired")`, `("error-404-title", …)`.
        for call in ["Some(\"", "(\"", ", \""] {
            used.extend(
                literal_arguments(&text, call)
                    .into_iter()
                    .filter(|literal| looks_like_key(literal))
                    .filter(|literal| {
                        [
                            "error-",
                            "login-",
                            "setup-",
                            "form-error-",
                            "done-",
                            "view-",
                        ]
                        .iter()
                        .any(|prefix| literal.starts_with(prefix))
                    }),
            );
        }
    }
    assert!(used.len() > 80, "the scan found the keys: {used:?}");
    for lang in Lang::ALL {
        let missing: Vec<_> = used.iter().filter(|key| !lang.has(key)).collect();
        assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
    }
}

#[test]
fn every_status_priority_channel_and_identity_has_a_label() {
    let mut keys = Vec::new();
    keys.extend(
        TicketStatus::ALL
            .iter()
            .map(|s| format!("status-{}", s.as_str())),
    );
    keys.extend(
        Priority::ALL
            .iter()
            .map(|p| format!("priority-{}", p.as_str())),
    );
    keys.extend(
        Channel::ALL
            .iter()
            .map(|c| format!("channel-{}", c.as_str())),
    );
    keys.extend(
        IdentityKind::ALL
            .iter()
            .map(|k| format!("identity-{}", k.as_str())),
    );
    keys.extend(["customer", "agent", "note", "system"].map(|kind| format!("entry-{kind}")));
    for lang in Lang::ALL {
        for key in &keys {
            let key = key.replace('_', "-");
            assert!(lang.has(&key), "{lang:?} lacks {key}");
        }
    }
}

#[test]
fn every_chat_state_availability_and_question_mode_has_a_label() {
    use otklik_domain::chat::{Availability, ChatState, FieldMode};
    let mut keys = Vec::new();
    keys.extend(
        ChatState::ALL
            .iter()
            .map(|s| format!("chat-state-{}", s.as_str())),
    );
    keys.extend(
        Availability::ALL
            .iter()
            .map(|a| format!("availability-{}", a.as_str())),
    );
    keys.extend(
        FieldMode::ALL
            .iter()
            .map(|m| format!("chat-field-{}", m.as_str())),
    );
    for lang in Lang::ALL {
        for key in &keys {
            assert!(lang.has(key), "{lang:?} lacks {key}");
        }
    }
    // Russian plurals of the chat counts.
    assert_eq!(Lang::Ru.count("chats-count", 3), "3 чата");
    assert_eq!(Lang::Ru.count("chats-count", 5), "5 чатов");
    assert_eq!(Lang::Ru.count("chats-count", 21), "21 чат");
    assert_eq!(Lang::En.count("chats-count", 1), "1 chat");
}
