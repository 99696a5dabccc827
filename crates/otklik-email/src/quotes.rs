//! Folding quoted history and signatures away from what the customer wrote now.
//!
//! Mail clients mark history in a handful of ways; each rule below names the clients it is
//! for. The rules err on the side of showing: a line is taken for an attribution only with a
//! date or an address in it, and `>` lines fold only when nothing unquoted follows them
//! (interleaved answers stay visible).

/// A reply split into the new part and the folded rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedText {
    /// What the sender wrote now; the whole text when nothing was folded.
    pub visible: String,
    /// Quoted history and signature, from the first marker on; `None` when nothing was folded.
    pub folded: Option<String>,
}

/// Splits `text` (LF line ends) at the first marker of quoted history or signature. Never
/// leaves `visible` empty for a non-empty text: if everything looks quoted, nothing is folded.
pub fn fold_quotes(text: &str) -> FoldedText {
    let lines: Vec<&str> = text.split('\n').collect();
    if let Some(cut) = find_cut(&lines) {
        let visible = lines[..cut].join("\n").trim_end().to_owned();
        let folded = lines[cut..].join("\n").trim_end().to_owned();
        if !visible.trim().is_empty() && !folded.trim().is_empty() {
            return FoldedText {
                visible,
                folded: Some(folded),
            };
        }
    }
    FoldedText {
        visible: text.to_owned(),
        folded: None,
    }
}

/// Index of the first folded line.
fn find_cut(lines: &[&str]) -> Option<usize> {
    let history = (0..lines.len()).find(|&index| starts_history(lines, index));
    let quote = trailing_quote_start(&lines[..history.unwrap_or(lines.len())]);
    // A footer counts when only blank lines separate it from the history or quote.
    let end = [history, quote]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(lines.len());
    let signature = (0..end).find(|&index| starts_signature(lines, index, end));
    [history, quote, signature].into_iter().flatten().min()
}

fn clean(line: &str) -> &str {
    line.trim_end_matches('\r').trim()
}

/// Lowercase, without the `*` Outlook and Gmail put around bold header names in plain text.
fn plain_lower(line: &str) -> String {
    clean(line).replace('*', "").to_lowercase()
}

fn starts_history(lines: &[&str], index: usize) -> bool {
    is_attribution(lines, index)
        || is_separator(lines[index])
        || is_header_block(lines, index)
        || (is_rule(lines[index])
            && (index + 1..lines.len().min(index + 3)).any(|next| is_header_block(lines, next)))
}

/// Endings of attribution lines: Gmail, Apple Mail and Thunderbird in several languages.
const ATTRIBUTION_ENDINGS: &[&str] = &[
    "wrote:",
    "writes:",
    "пишет:",
    "написал:",
    "написала:",
    "написал(а):",
    "писал:",
    "писала:",
    "писал(а):",
    "schrieb:",
    "a écrit :",
    "a écrit:",
    "escribió:",
    "ha scritto:",
];

const MAX_ATTRIBUTION_CHARS: usize = 300;

/// "On Mon, 11 Mar 2024 at 10:00, Shop <support@shop.test> wrote:" (Gmail, may wrap onto a
/// second line), "11.03.2024 10:00, Shop пишет:" (Thunderbird), "11.03.2024, 10:15, "Shop"
/// <support@shop.test>:" (Yandex), "Понедельник, 11 марта 2024, 10:00 +03:00 от Shop
/// <support@shop.test>:" (Mail.ru): a line ending in ':' with a digit, and an attribution
/// verb or an address.
fn is_attribution(lines: &[&str], index: usize) -> bool {
    let line = clean(lines[index]);
    if line.is_empty() || line.starts_with('>') {
        return false;
    }
    if looks_like_attribution(line) {
        return true;
    }
    // A wrapped attribution: the verb alone on the next line.
    lines.get(index + 1).is_some_and(|next| {
        let next = clean(next);
        next.chars().count() <= 40
            && next.ends_with(':')
            && looks_like_attribution(&format!("{line} {next}"))
    })
}

fn looks_like_attribution(line: &str) -> bool {
    if line.chars().count() > MAX_ATTRIBUTION_CHARS || !line.ends_with(':') {
        return false;
    }
    let lower = line.to_lowercase();
    lower.chars().any(|c| c.is_ascii_digit())
        && (ATTRIBUTION_ENDINGS
            .iter()
            .any(|ending| lower.ends_with(ending))
            || (lower.contains('@') && lower.ends_with(">:")))
}

/// Words between dashes in separator lines: "-----Original Message-----" (Outlook),
/// "-------- Исходное сообщение --------" and "-------- Пересылаемое сообщение --------"
/// (Thunderbird, Mail.ru), "---------- Forwarded message ---------" (Gmail).
const SEPARATOR_WORDS: &[&str] = &[
    "original message",
    "forwarded message",
    "исходное сообщение",
    "пересылаемое сообщение",
    "пересланное сообщение",
    "message d'origine",
    "ursprüngliche nachricht",
    "mensaje original",
];

/// Whole-line openers of forwarded mail (Apple Mail, and Yandex in Russian).
const FORWARD_OPENERS: &[&str] = &[
    "begin forwarded message:",
    "начало пересылаемого сообщения:",
];

fn is_separator(line: &str) -> bool {
    let lower = plain_lower(line);
    if FORWARD_OPENERS.contains(&lower.as_str()) {
        return true;
    }
    if !(lower.starts_with("--") || lower.starts_with("__") || lower.starts_with("==")) {
        return false;
    }
    let words = lower.trim_matches(|c: char| matches!(c, '-' | '_' | '=' | ' '));
    SEPARATOR_WORDS.contains(&words)
}

/// A line of underscores or dashes, which Outlook puts above its header block.
fn is_rule(line: &str) -> bool {
    let line = clean(line);
    line.chars().count() >= 10 && line.chars().all(|c| c == '_' || c == '-')
}

const FROM_FIELDS: &[&str] = &["from:", "от:", "от кого:"];
const DATE_FIELDS: &[&str] = &["sent:", "date:", "отправлено:", "дата:"];
const TO_FIELDS: &[&str] = &["to:", "subject:", "кому:", "тема:"];

/// Outlook's quoted header block: "From: ... / Sent: ... / To: ... / Subject: ..." (and
/// "От: / Отправлено: / Кому: / Тема:").
fn is_header_block(lines: &[&str], index: usize) -> bool {
    let starts_with_any =
        |line: &str, fields: &[&str]| fields.iter().any(|field| line.starts_with(field));
    if !starts_with_any(&plain_lower(lines[index]), FROM_FIELDS) {
        return false;
    }
    let following: Vec<String> = lines[index + 1..]
        .iter()
        .take(6)
        .map(|line| plain_lower(line))
        .collect();
    following
        .iter()
        .any(|line| starts_with_any(line, DATE_FIELDS))
        && following
            .iter()
            .any(|line| starts_with_any(line, TO_FIELDS))
}

fn is_quoted(line: &str) -> bool {
    clean(line).starts_with('>')
}

/// Start of a block of `>` lines that nothing unquoted follows (bottom quoting).
fn trailing_quote_start(lines: &[&str]) -> Option<usize> {
    let last_unquoted = lines
        .iter()
        .rposition(|line| !clean(line).is_empty() && !is_quoted(line));
    let first_quoted = lines.iter().position(|line| is_quoted(line))?;
    match last_unquoted {
        Some(last) if last > first_quoted => {
            // Interleaved: only a final quote block after the last answer could fold.
            lines[last + 1..]
                .iter()
                .position(|line| is_quoted(line))
                .map(|offset| last + 1 + offset)
        }
        _ => Some(first_quoted),
    }
}

/// Mobile and webmail footers, folded when nothing but blank lines follow them.
const FOOTER_OPENERS: &[&str] = &[
    "sent from my ",
    "sent from mail for ",
    "sent from yahoo mail",
    "get outlook for ",
    "отправлено с ",
    "отправлено из ",
    "отправлено через ",
];

/// The "-- " signature separator (also "--", as many clients trim the space), or a footer.
fn starts_signature(lines: &[&str], index: usize, end: usize) -> bool {
    let line = lines[index].trim_end_matches('\r');
    if line == "-- " || line == "--" {
        return true;
    }
    let lower = plain_lower(line);
    FOOTER_OPENERS
        .iter()
        .any(|opener| lower.starts_with(opener))
        && lines[index + 1..end]
            .iter()
            .all(|rest| clean(rest).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_sentence_ending_in_wrote_is_not_an_attribution() {
        let text = "My colleague wrote:\nthe parcel never arrived";
        assert_eq!(fold_quotes(text).folded, None);
    }

    #[test]
    fn a_dash_line_that_is_not_a_separator_stays() {
        assert!(!is_separator("----------"));
        assert!(is_separator("-----Original Message-----"));
        assert!(is_separator("-------- Исходное сообщение --------"));
        assert!(is_separator("---------- Forwarded message ---------"));
    }

    #[test]
    fn interleaved_answers_keep_their_quotes_visible() {
        let text = "> Which size?\nM, please.\n> Which colour?\nBlue.";
        assert_eq!(fold_quotes(text).folded, None);
    }

    #[test]
    fn a_text_that_is_all_quote_stays_visible() {
        let text = "> only a quote\n> nothing else";
        let folded = fold_quotes(text);
        assert_eq!(folded.visible, text);
        assert_eq!(folded.folded, None);
    }
}
