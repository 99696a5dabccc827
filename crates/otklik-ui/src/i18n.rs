//! Russian and English: the Fluent catalogues (`locales/{ru,en}/main.ftl`, embedded at build
//! time), choosing a language from the `otklik_lang` cookie or `Accept-Language`, and lookups
//! with Russian plural categories (1 тикет, 2 тикета, 5 тикетов).

use std::borrow::Cow;
use std::collections::HashMap;

use axum::http::HeaderMap;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Unicode isolation marks around placeables would end up inside HTML attributes and
        // visible text ("\u{2068}5\u{2069} тикетов"); our values are plain numbers and names.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ru,
    En,
}

/// The cookie that remembers a chosen language (per browser; see the report on per-user storage).
pub const LANG_COOKIE: &str = "otklik_lang";

impl Lang {
    /// Every language, in the order the switcher shows them.
    pub const ALL: &'static [Lang] = &[Lang::Ru, Lang::En];

    /// The BCP 47 code used in `lang=""`, the cookie and the catalogue folder.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The language's own name, for the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Ru => "Русский",
            Lang::En => "English",
        }
    }

    /// Parses a code as stored in the cookie or sent by the switcher.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn identifier(self) -> LanguageIdentifier {
        match self {
            Lang::Ru => langid!("ru"),
            Lang::En => langid!("en"),
        }
    }

    /// The language for a request: the switcher's cookie, else the best match of
    /// `Accept-Language`, else `default`.
    pub fn of_request(headers: &HeaderMap, default: Lang) -> Lang {
        crate::session::cookie(headers, LANG_COOKIE)
            .and_then(|value| Lang::from_code(&value))
            .or_else(|| {
                headers
                    .get(axum::http::header::ACCEPT_LANGUAGE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(negotiate)
            })
            .unwrap_or(default)
    }

    /// The message `key`, or the key itself if the catalogue lacks it (tests make sure none do).
    pub fn t(self, key: &str) -> String {
        LOCALES
            .try_lookup(&self.identifier(), key)
            .unwrap_or_else(|| key.to_owned())
    }

    /// The message `key` with a numeric `$count`, which selects the plural form.
    pub fn count(self, key: &str, count: i64) -> String {
        let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
        args.insert(Cow::Borrowed("count"), FluentValue::from(count));
        LOCALES
            .try_lookup_with_args(&self.identifier(), key, &args)
            .unwrap_or_else(|| key.to_owned())
    }

    /// The message `key` with one text argument `$value`.
    pub fn with(self, key: &str, value: &str) -> String {
        let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
        args.insert(Cow::Borrowed("value"), FluentValue::from(value.to_owned()));
        LOCALES
            .try_lookup_with_args(&self.identifier(), key, &args)
            .unwrap_or_else(|| key.to_owned())
    }

    /// Whether the catalogue of this language has `key` (for tests). The arguments that
    /// messages take are supplied, since a message missing one does not format.
    pub fn has(self, key: &str) -> bool {
        let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
        args.insert(Cow::Borrowed("count"), FluentValue::from(1));
        args.insert(Cow::Borrowed("value"), FluentValue::from("x"));
        LOCALES
            .try_lookup_with_args(&self.identifier(), key, &args)
            .is_some()
    }
}

/// The best supported language of an `Accept-Language` header, by quality and then order.
pub fn negotiate(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let quality = parts
            .find_map(|param| param.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        let Some(lang) = Lang::from_code(primary) else {
            continue;
        };
        if quality > 0.0 && best.is_none_or(|(_, best_quality)| quality > best_quality) {
            best = Some((lang, quality));
        }
    }
    best.map(|(lang, _)| lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_counts_take_the_one_few_and_many_forms() {
        let cases = [
            (1, "1 тикет"),
            (2, "2 тикета"),
            (4, "4 тикета"),
            (5, "5 тикетов"),
            (11, "11 тикетов"),
            (12, "12 тикетов"),
            (21, "21 тикет"),
            (22, "22 тикета"),
            (25, "25 тикетов"),
            (0, "0 тикетов"),
        ];
        for (count, expected) in cases {
            assert_eq!(Lang::Ru.count("tickets-count", count), expected);
        }
    }

    #[test]
    fn english_counts_take_the_one_and_other_forms() {
        assert_eq!(Lang::En.count("tickets-count", 1), "1 ticket");
        assert_eq!(Lang::En.count("tickets-count", 2), "2 tickets");
        assert_eq!(Lang::En.count("tickets-count", 0), "0 tickets");
    }

    #[test]
    fn accept_language_picks_the_best_supported_language_by_quality() {
        assert_eq!(negotiate("en-US,en;q=0.9,ru;q=0.8"), Some(Lang::En));
        assert_eq!(negotiate("de-DE, ru;q=0.5, en;q=0.4"), Some(Lang::Ru));
        assert_eq!(negotiate("ru-RU"), Some(Lang::Ru));
        assert_eq!(negotiate("de, fr;q=0.8"), None);
        assert_eq!(negotiate("en;q=0, ru;q=0.1"), Some(Lang::Ru));
        assert_eq!(negotiate(""), None);
    }

    #[test]
    fn the_language_cookie_wins_over_accept_language() {
        let mut headers = HeaderMap::new();
        headers.insert("accept-language", "en-US,en".parse().unwrap());
        assert_eq!(Lang::of_request(&headers, Lang::Ru), Lang::En);
        headers.insert("cookie", "a=b; otklik_lang=ru".parse().unwrap());
        assert_eq!(Lang::of_request(&headers, Lang::En), Lang::Ru);
        assert_eq!(Lang::of_request(&HeaderMap::new(), Lang::En), Lang::En);
    }

    #[test]
    fn text_arguments_are_substituted_without_isolation_marks() {
        let text = Lang::En.with("ticket-merged-into", "42");
        assert!(text.contains("42"), "{text}");
        assert!(!text.contains('\u{2068}'), "{text:?}");
    }
}
