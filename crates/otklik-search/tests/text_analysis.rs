//! The behaviour the rest of Otklik relies on, through the public API only.

use otklik_search::{
    Clause, MAX_CLAUSES, MAX_QUERY_CHARS, QueryError, SearchQuery, email_token, index_terms,
    is_token, parse_query, phone_token, snippet,
};

/// Whether searching `query` finds `text`, with the semantics both backends implement.
fn finds(query: &str, text: &str) -> bool {
    parse_query(query)
        .unwrap_or_else(|e| panic!("{query:?}: {e}"))
        .matches(&index_terms(text))
}

fn tokens(text: &str) -> Vec<String> {
    index_terms(text).split(' ').map(str::to_owned).collect()
}

fn query(raw: &str) -> SearchQuery {
    parse_query(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

fn term(token: &str, prefix: bool) -> Clause {
    Clause::Term {
        token: token.to_owned(),
        prefix,
    }
}

/// A small deterministic PRNG (xorshift64*), so the generated cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random text made of pieces that stress the analyser: both alphabets, ё, digits, FTS syntax,
/// addresses, phones, accents, combining marks, other scripts, emoji, full-width and odd spaces.
fn random_text(rng: &mut Rng, pieces: usize) -> String {
    const PIECES: &[&str] = &[
        "доставка",
        "Заказы",
        "ВОЗВРАЩЁННЫЙ",
        "ёлка",
        "refunding",
        "Orders",
        "не",
        "a",
        "я",
        "1042",
        "№448812",
        "#",
        "4488",
        "7",
        " ",
        " ",
        "  ",
        "\n",
        "\t",
        "\u{a0}",
        "-",
        "'",
        "\"",
        "*",
        "(",
        ")",
        ":",
        "^",
        "NEAR",
        "OR",
        "AND",
        "NOT",
        "--",
        ";",
        "@",
        ".",
        "+",
        "+7",
        "8",
        "916",
        "123-45-67",
        "ivan@mail.ru",
        "Ivan.Petrov@Mail.RU",
        "+7 916 123-45-67",
        "8 (916) 123-45-67",
        "+44 20 7946 0958",
        "café",
        "Straße",
        "naïve",
        "日本語",
        "😀",
        "é",
        "\u{301}",
        "\u{306}",
        "и",
        "ＡＢＣ１２３",
        "İ",
        "ﬁ",
        "Ⅻ",
        "²",
        "٣",
        "ß",
        "\u{0}",
        "\\",
        "x:y",
        "ORD448812",
        "iPhoneы",
        "…",
        "’",
        "«",
        "»",
    ];
    let mut text = String::new();
    for _ in 0..pieces {
        text.push_str(PIECES[rng.below(PIECES.len())]);
        if rng.below(3) == 0 {
            // An arbitrary character, sometimes from odd parts of Unicode.
            let c = match rng.below(4) {
                0 => char::from_u32(rng.below(0x80) as u32),
                1 => char::from_u32(0x400 + rng.below(0x100) as u32),
                2 => char::from_u32(rng.below(0x3000) as u32),
                _ => char::from_u32(rng.below(0x11_0000) as u32),
            };
            text.push(c.unwrap_or('?'));
        }
    }
    text
}

fn assert_fts5_is_safe(raw: &str, q: &SearchQuery) {
    let fts5 = q.to_fts5();
    for part in fts5.split(" AND ") {
        let inner = part
            .strip_suffix('*')
            .unwrap_or(part)
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'));
        assert!(
            inner.is_some_and(is_token),
            "{raw:?} gave unsafe FTS5 {fts5:?}"
        );
    }
    let tsquery = q.to_tsquery();
    for part in tsquery.split(" & ") {
        let token = part.strip_suffix(":*").unwrap_or(part);
        assert!(is_token(token), "{raw:?} gave unsafe tsquery {tsquery:?}");
    }
}

// --- morphology ------------------------------------------------------------------------------

#[test]
fn dostavki_finds_dostavka_and_back() {
    assert!(finds("доставки", "Где моя доставка?"));
    assert!(finds("доставки ", "Где моя доставка?"));
    assert!(finds("доставка ", "Сроки доставки не соблюдены"));
}

#[test]
fn zakazy_finds_zakaz() {
    assert!(finds("заказы ", "Мой заказ не пришёл"));
    assert!(finds("заказы", "Мой заказ не пришёл"));
}

#[test]
fn refunding_finds_refund() {
    assert!(finds("refunding ", "I want a refund"));
    assert!(finds("refund ", "They are refunding me"));
}

#[test]
fn yolka_and_elka_are_the_same_word() {
    assert_eq!(index_terms("Ёлка"), index_terms("елка"));
    assert_eq!(index_terms("ёлка"), index_terms("ЕЛКА"));
    assert!(finds("елка ", "Ёлка приехала сломанной"));
    assert!(finds("Ёлка ", "елка приехала сломанной"));
}

#[test]
fn search_is_case_insensitive() {
    assert_eq!(
        index_terms("ДОСТАВКА Refund"),
        index_terms("доставка refund")
    );
    assert!(finds("REFUND ", "refund please"));
    assert!(finds("ДоСтАвКа ", "доставка"));
}

#[test]
fn vozvrashchyonny_and_vozvrashchenny_have_the_same_stem() {
    assert_eq!(index_terms("возвращённый"), index_terms("возвращенный"));
    assert_eq!(query("возвращённый "), query("возвращенный "));
    assert!(finds("возвращённый ", "товар возвращенный покупателем"));
}

#[test]
fn every_word_is_stemmed_by_its_script_and_mixed_words_are_kept_as_they_are() {
    assert_eq!(
        tokens("Заказы orders iPhoneы"),
        ["заказ", "order", "iphoneы"]
    );
}

#[test]
fn stop_words_are_kept() {
    assert!(tokens("не пришёл").contains(&"не".to_owned()));
    assert_eq!(query("не пришёл ").clauses.len(), 2);
    assert!(!finds("не пришел ", "пришел вовремя"));
}

// --- numbers, addresses, phones --------------------------------------------------------------

#[test]
fn ticket_and_order_numbers_give_digit_tokens_whatever_their_sign() {
    assert!(tokens("Тикет #1042").contains(&"1042".to_owned()));
    assert!(tokens("заказ №448812").contains(&"448812".to_owned()));
    assert!(tokens("заказ 448812").contains(&"448812".to_owned()));
    let inside = tokens("ORD448812");
    assert_eq!(inside, ["ord448812", "448812"]);
    assert!(finds("448812 ", "Заказ №448812 не доставлен"));
    assert!(finds("№448812 ", "заказ 448812"));
    assert!(finds("#1042 ", "тикет 1042"));
    assert!(finds("448812 ", "номер ORD448812"));
}

#[test]
fn a_partial_number_typed_last_finds_the_whole_number() {
    assert_eq!(query("4488").clauses, [term("4488", true)]);
    assert!(finds("4488", "заказ №448812"));
    assert!(finds("заказ 4488", "заказ №448812"));
    assert!(!finds("4488 ", "заказ №448812"));
}

#[test]
fn a_query_of_only_digits_is_a_term_that_is_a_prefix_only_when_typed_last() {
    assert_eq!(query("448812").clauses, [term("448812", true)]);
    assert_eq!(query("448812 ").clauses, [term("448812", false)]);
    assert_eq!(query("89161234567").clauses, [term("89161234567", true)]);
}

#[test]
fn an_e_mail_address_is_indexed_as_words_and_as_one_hashed_exact_token() {
    let terms = tokens("Пишите: Ivan.Petrov@Mail.ru, спасибо");
    let exact = email_token("ivan.petrov@mail.ru");
    assert!(exact.starts_with('e') && exact.len() == 21 && is_token(&exact));
    assert!(terms.contains(&exact));
    assert!(terms.contains(&"petrov".to_owned()));
    assert!(!terms.iter().any(|t| t.contains('@')));
    assert_eq!(
        query("IVAN.PETROV@MAIL.RU").clauses,
        [Clause::Exact { token: exact }]
    );
    assert!(finds("ivan.petrov@mail.ru", "от ivan.petrov@mail.ru"));
    assert!(!finds("ivan.petrov@mail.ru", "от ivan.petrov@gmail.com"));
    assert!(finds("petrov ", "от ivan.petrov@mail.ru"));
}

#[test]
fn a_phone_number_is_found_in_any_usual_format() {
    let exact = phone_token("+79161234567");
    assert!(exact.starts_with('p') && exact.len() == 21 && is_token(&exact));
    let text = "Перезвоните мне: +7 916 123-45-67";
    assert!(tokens(text).contains(&exact));
    for typed in [
        "8 (916) 123-45-67",
        "+79161234567",
        "+7 916 123 45 67",
        "8-916-123-45-67",
    ] {
        assert_eq!(
            query(typed).clauses,
            [Clause::Exact {
                token: exact.clone()
            }],
            "{typed}"
        );
        assert!(finds(typed, text), "{typed}");
        assert!(finds(typed, "тел 89161234567"), "{typed}");
    }
    assert!(finds("+44 20 7946 0958", "Call me on +442079460958"));
    assert!(!finds("+7 916 123-45-68", text));
}

#[test]
fn words_around_an_address_or_phone_in_a_query_stay_terms() {
    let q = query("заказ ivan@mail.ru 8 916 123-45-67 доставка");
    assert_eq!(
        q.clauses,
        [
            term("заказ", false),
            Clause::Exact {
                token: email_token("ivan@mail.ru")
            },
            Clause::Exact {
                token: phone_token("+79161234567")
            },
            term("доставк", true),
        ]
    );
}

// --- query syntax and abuse --------------------------------------------------------------------

#[test]
fn queries_render_for_fts5_and_tsquery() {
    let q = query("Доставка #4488");
    assert_eq!(q.to_fts5(), r#""доставк" AND "4488"*"#);
    assert_eq!(q.to_tsquery(), "доставк & 4488:*");
}

#[test]
fn the_last_word_is_a_prefix_only_when_nothing_follows_it() {
    assert_eq!(query("дост").clauses, [term("дост", true)]);
    assert_eq!(query("дост ").clauses, [term("дост", false)]);
    assert_eq!(query("\"доставка\"").clauses, [term("доставк", false)]);
    assert_eq!(query("я").clauses, [term("я", false)]);
    assert!(finds("refun", "They are refunding me"));
    assert!(finds("дост", "доставка"));
}

#[test]
fn repeated_words_are_one_clause() {
    assert_eq!(query("заказ заказы заказ ").clauses, [term("заказ", false)]);
}

#[test]
fn a_query_without_any_word_is_empty() {
    for raw in ["", "   ", "*\"()", "--- ; ' \" :", "日本語", "\u{301}"] {
        assert_eq!(parse_query(raw), Err(QueryError::Empty), "{raw:?}");
    }
}

#[test]
fn a_query_over_500_characters_is_too_long() {
    let at_limit = "я".repeat(MAX_QUERY_CHARS);
    assert!(parse_query(&at_limit).is_ok());
    let over = "я".repeat(MAX_QUERY_CHARS + 1);
    assert_eq!(
        parse_query(&over),
        Err(QueryError::TooLong { max_chars: 500 })
    );
    assert_eq!(
        parse_query(&"a ".repeat(1_000_000)),
        Err(QueryError::TooLong { max_chars: 500 })
    );
}

#[test]
fn a_query_of_more_than_16_distinct_words_has_too_many_terms() {
    let words: Vec<String> = (0..=MAX_CLAUSES).map(|i| format!("w{i}")).collect();
    assert_eq!(
        parse_query(&words[..MAX_CLAUSES].join(" ")).map(|q| q.clauses.len()),
        Ok(16)
    );
    assert_eq!(
        parse_query(&words.join(" ")),
        Err(QueryError::TooManyTerms { max: 16 })
    );
    assert!(parse_query(&"a ".repeat(200)).is_ok());
}

#[test]
fn refusals_explain_themselves_in_english() {
    assert!(
        QueryError::TooLong { max_chars: 500 }
            .to_string()
            .contains("500")
    );
    assert!(
        QueryError::TooManyTerms { max: 16 }
            .to_string()
            .contains("16")
    );
    assert!(!QueryError::Empty.to_string().is_empty());
    let _: &dyn std::error::Error = &QueryError::Empty;
}

#[test]
fn hostile_input_never_reaches_fts5_or_tsquery_unescaped() {
    for raw in [
        r#"") OR 1=1 --"#,
        "NEAR(a b)",
        "a*b",
        r#""quoted""#,
        "-x",
        "title:x",
        "a AND b OR NOT c",
        "x ^y {a b}:c",
        "'; DROP TABLE tickets; --",
        "a & b | !c <-> d:*",
        "x\\\"\u{0}y\u{1f}",
        "\\\"\u{0}\u{1f}",
    ] {
        match parse_query(raw) {
            Ok(q) => assert_fts5_is_safe(raw, &q),
            Err(e) => assert_eq!(e, QueryError::Empty, "{raw:?}"),
        }
    }
    assert_eq!(query(r#"") OR 1=1 --"#).to_fts5(), r#""or" AND "1""#);
    assert_eq!(query("NEAR(a b)").to_fts5(), r#""near" AND "a" AND "b""#);
    assert_eq!(query("title:x").to_fts5(), r#""titl" AND "x""#);
}

// --- robustness ----------------------------------------------------------------------------

#[test]
fn generated_texts_give_only_alphabet_tokens_and_never_break_the_parser() {
    let mut rng = Rng(0x0dd5_eed5_1234_5678);
    for _ in 0..500 {
        let longest = if rng.below(2) == 0 { 8 } else { 40 };
        let pieces = 1 + rng.below(longest);
        let text = random_text(&mut rng, pieces);
        let terms = index_terms(&text);
        if !terms.is_empty() {
            for token in terms.split(' ') {
                assert!(is_token(token), "{text:?} gave token {token:?}");
                assert!(!token.contains('ё'));
            }
        }
        // Searching for a text (typed out, then a space) finds that very text, and its snippet
        // marks something.
        if let Ok(q) = parse_query(&format!("{text} ")) {
            assert!(q.matches(&terms), "{text:?}: {q} does not match {terms:?}");
            let whole = snippet(&text, &q, usize::MAX);
            assert!(
                !whole.highlights.is_empty(),
                "{text:?}: nothing marked for {q}"
            );
        }
        match parse_query(&text) {
            Ok(q) => {
                assert!(!q.clauses.is_empty() && q.clauses.len() <= MAX_CLAUSES);
                assert!(q.clauses.iter().all(|c| is_token(c.token())));
                assert_fts5_is_safe(&text, &q);
                let max = rng.below(200);
                let s = snippet(&text, &q, max);
                assert!(s.text.chars().count() <= max, "{text:?} at {max}: {s:?}");
                for h in &s.highlights {
                    assert!(h.start < h.end && h.end <= s.text.len(), "{s:?}");
                    assert!(s.text.is_char_boundary(h.start) && s.text.is_char_boundary(h.end));
                }
            }
            Err(
                QueryError::Empty | QueryError::TooManyTerms { .. } | QueryError::TooLong { .. },
            ) => {}
        }
    }
}

#[test]
fn a_one_megabyte_text_is_indexed_without_trouble() {
    let paragraph = "Здравствуйте! Мой заказ №448812 от 12.03 до сих пор не доставлен, \
        курьер не перезвонил на +7 916 123-45-67. Please refund the payment or resend \
        the order to ivan.petrov@mail.ru — размер XL, цвет синий. ";
    let mut text = String::with_capacity(1 << 20);
    while text.len() < 1 << 20 {
        text.push_str(paragraph);
    }
    text.push_str(&"x".repeat(100_000));
    text.push_str(&"9".repeat(100_000));
    let terms = index_terms(&text);
    assert!(terms.len() < 2 * text.len());
    assert!(terms.split(' ').all(is_token));
    assert!(terms.contains(" доставл "));
    assert!(terms.contains(&phone_token("+79161234567")));
}

#[test]
#[ignore = "a measurement, not a check: cargo test --release -p otklik-search -- --ignored --nocapture"]
fn index_terms_throughput() {
    const PROSE: &[&str] = &[
        "здравствуйте",
        "заказ",
        "доставка",
        "курьер",
        "возврат",
        "оплата",
        "размер",
        "не",
        "пришёл",
        "деньги",
        "товар",
        "hello",
        "order",
        "delivery",
        "refund",
        "payment",
        "size",
        "the",
        "was",
        "спасибо,",
        "когда?",
        "Добрый",
        "день.",
        "вернуть",
        "получил",
    ];
    const IDENTIFIERS: &[&str] = &["№448812", "+7 916 123-45-67", "ivan@mail.ru", "#1042"];
    let mut rng = Rng(42);
    for (name, identifier_share) in [("prose", 0), ("prose + 1 identifier in 10 words", 10)] {
        let mut text = String::new();
        while text.len() < 8 << 20 {
            if identifier_share > 0 && rng.below(identifier_share) == 0 {
                text.push_str(IDENTIFIERS[rng.below(IDENTIFIERS.len())]);
            } else {
                text.push_str(PROSE[rng.below(PROSE.len())]);
            }
            text.push(' ');
        }
        // Messages of about 2 kB each.
        let mut messages = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let mut at = rest.len().min(2000);
            while !rest.is_char_boundary(at) {
                at += 1;
            }
            let (message, tail) = rest.split_at(at);
            messages.push(message);
            rest = tail;
        }
        let started = std::time::Instant::now();
        let total: usize = messages.iter().map(|m| index_terms(m).len()).sum();
        let elapsed = started.elapsed();
        let mib = text.len() as f64 / f64::from(1 << 20);
        println!(
            "index_terms, {name}: {mib:.1} MiB in {elapsed:?} = {:.1} MiB/s ({total} bytes of terms)",
            mib / elapsed.as_secs_f64()
        );
    }
}

// --- snippets --------------------------------------------------------------------------------

#[test]
fn a_snippet_highlights_words_by_stem() {
    let s = snippet("Сроки доставки сорваны", &query("доставка"), 100);
    assert_eq!(s.text, "Сроки доставки сорваны");
    assert_eq!(s.highlights.len(), 1);
    assert_eq!(&s.text[s.highlights[0].clone()], "доставки");
}

#[test]
fn a_snippet_of_a_long_text_is_cut_at_words_around_the_first_match() {
    let before = "Мы очень долго ждали ответа от магазина и писали несколько раз в поддержку ";
    let after = " но никто так и не ответил нам ни по почте ни по телефону ни в чате магазина";
    let text = format!("{before}{before}заказ №448812 не доставлен{after}{after}");
    let s = snippet(&text, &query("доставлен 448812"), 80);
    assert!(s.text.chars().count() <= 80, "{s:?}");
    assert!(s.text.starts_with('…') && s.text.ends_with('…'), "{s:?}");
    let body = s.text.trim_start_matches('…').trim_end_matches('…');
    let at = text
        .find(body)
        .unwrap_or_else(|| panic!("{body:?} not in text"));
    assert!(text[..at].ends_with(' '), "cut inside a word: {s:?}");
    assert!(
        text[at + body.len()..].starts_with(' '),
        "cut inside a word: {s:?}"
    );
    let marked: Vec<&str> = s.highlights.iter().map(|h| &s.text[h.clone()]).collect();
    assert_eq!(marked, ["448812", "доставлен"]);
}

#[test]
fn a_snippet_without_a_match_is_the_start_of_the_text() {
    let text = "Первое слово второе слово третье слово четвёртое слово";
    let s = snippet(text, &query("refund"), 20);
    assert!(s.text.starts_with("Первое"));
    assert!(s.text.ends_with('…'));
    assert!(s.text.chars().count() <= 20);
    assert!(s.highlights.is_empty());
}

#[test]
fn a_snippet_marks_an_address_and_a_phone_number_whole() {
    let text = "Мой адрес\nivan@mail.ru,   телефон 8 (916) 123-45-67.";
    let s = snippet(text, &query("+7 916 123 45 67 Ivan@Mail.ru"), 200);
    assert_eq!(s.text, "Мой адрес ivan@mail.ru, телефон 8 (916) 123-45-67.");
    let marked: Vec<&str> = s.highlights.iter().map(|h| &s.text[h.clone()]).collect();
    assert_eq!(marked, ["ivan@mail.ru", "8 (916) 123-45-67"]);
}

#[test]
fn a_snippet_never_exceeds_its_budget_even_inside_a_long_word() {
    let text = format!("{} доставка", "щ".repeat(300));
    for max in [0, 1, 2, 3, 5, 10, 11, 12, 40] {
        let s = snippet(&text, &query("доставка"), max);
        assert!(s.text.chars().count() <= max, "{max}: {s:?}");
    }
    let s = snippet(&"доставка".repeat(50), &query("доставка"), 10);
    assert_eq!(s.text.chars().count(), 10);
    assert_eq!(s.highlights.len(), 1);
}
