//! Word splitting, character folding and stemming: the one place that decides what a token is.
//!
//! A *word* is a maximal run of Unicode letters and digits (combining accents, U+0300–U+036F,
//! stay inside the word); everything else — spaces, punctuation, hyphens, apostrophes,
//! symbols such as `№` or `#` — separates words. Each word is then *normalised* into the token
//! alphabet `[a-z0-9а-я]`:
//!
//! - letters are lower-cased; `ё`/`Ё` become `е`; a decomposed `и` + breve becomes `й`;
//! - Latin letters with accents are folded to their base letters (`é`→`e`, `ß`→`ss`, `æ`→`ae`,
//!   `ł`→`l`, …), full-width ASCII to ASCII, and the Cyrillic letters of neighbouring languages
//!   to the nearest Russian one (`і`,`ї`→`и`, `є`→`е`, `ґ`→`г`, `ў`→`у`);
//! - every other character (other scripts, other accents, emoji that count as letters, …) is
//!   **dropped from the word**, and a word left empty produces no token. So `naïve` → `naive`,
//!   `日本` → nothing, `abc日本def` → `abcdef`.
//!
//! Words longer than [`MAX_TOKEN_CHARS`] are cut to that length (base64 blobs and the like must
//! not bloat the index; PostgreSQL also refuses very long lexemes). The cut is the same for
//! texts and queries, so such a word still finds itself.
//!
//! A normalised word made only of Cyrillic letters is stemmed with the Russian Snowball stemmer,
//! one made only of Latin letters with the English one; a word with digits or with both alphabets
//! is kept as it is. A word that mixes letters and digits also yields each run of at least
//! [`MIN_DIGIT_RUN`] digits as its own token (`ORD448812` → `ord448812`, `448812`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use frostem::{Algorithm, Stemmer};

/// The longest token, in characters; longer words are cut to this length.
pub const MAX_TOKEN_CHARS: usize = 64;

/// The shortest run of digits inside a word that is also indexed as a token of its own.
pub const MIN_DIGIT_RUN: usize = 3;

/// Whether `token` belongs to the token alphabet: non-empty and only `[a-z0-9а-я]`.
pub fn is_token(token: &str) -> bool {
    !token.is_empty() && token.chars().all(is_token_char)
}

/// Whether `c` may appear in a token.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || ('а'..='я').contains(&c)
}

/// Whether `c` belongs to a word (as opposed to separating words).
pub(crate) fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        matches!(c, 'а'..='я' | 'А'..='Я' | 'ё' | 'Ё' | '\u{300}'..='\u{36f}')
            || c.is_alphanumeric()
    }
}

/// The byte ranges of the words of a text, in order.
pub(crate) fn words(text: &str) -> Words<'_> {
    Words { text, pos: 0 }
}

/// Iterator returned by [`words`].
pub(crate) struct Words<'a> {
    text: &'a str,
    pos: usize,
}

impl Words<'_> {
    /// The character at byte `i` and its length, with a fast path for ASCII.
    fn char_at(&self, i: usize) -> (char, usize) {
        let b = self.text.as_bytes()[i];
        if b.is_ascii() {
            (char::from(b), 1)
        } else {
            let c = self.text[i..].chars().next().unwrap_or(' ');
            (c, c.len_utf8())
        }
    }
}

impl Iterator for Words<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let len = self.text.len();
        let mut i = self.pos;
        while i < len {
            let (c, n) = self.char_at(i);
            if is_word_char(c) {
                break;
            }
            i += n;
        }
        if i >= len {
            self.pos = len;
            return None;
        }
        let start = i;
        while i < len {
            let (c, n) = self.char_at(i);
            if !is_word_char(c) {
                break;
            }
            i += n;
        }
        self.pos = i;
        Some(start..i)
    }
}

/// Which alphabets a normalised word uses.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub latin: bool,
    pub cyrillic: bool,
    pub digit: bool,
}

/// Appends the normalised form of `word` to `out` (see the module docs) and tells its shape.
fn normalize_into(word: &str, out: &mut String) -> Shape {
    let mut shape = Shape::default();
    let mut chars = 0usize;
    for c in word.chars() {
        if chars >= MAX_TOKEN_CHARS {
            break;
        }
        match c {
            'a'..='z' => {
                out.push(c);
                shape.latin = true;
            }
            'A'..='Z' => {
                out.push(c.to_ascii_lowercase());
                shape.latin = true;
            }
            '0'..='9' => {
                out.push(c);
                shape.digit = true;
            }
            'а'..='я' => {
                out.push(c);
                shape.cyrillic = true;
            }
            'А'..='Я' => {
                out.push(char::from_u32(c as u32 + 0x20).unwrap_or(c));
                shape.cyrillic = true;
            }
            'ё' | 'Ё' => {
                out.push('е');
                shape.cyrillic = true;
            }
            '\u{306}' if out.ends_with('и') => {
                out.pop();
                out.push('й');
                continue; // replaces a character already counted
            }
            _ => {
                let before = out.len();
                fold_rare(c, out, &mut shape);
                if out.len() == before {
                    continue; // dropped
                }
            }
        }
        chars += 1;
    }
    shape
}

/// Folds a character outside the fast paths into the token alphabet, or drops it.
fn fold_rare(c: char, out: &mut String, shape: &mut Shape) {
    // Full-width ASCII letters and digits (common in pasted order numbers).
    if let '\u{ff10}'..='\u{ff19}' | '\u{ff21}'..='\u{ff3a}' | '\u{ff41}'..='\u{ff5a}' = c {
        if let Some(ascii) = char::from_u32(c as u32 - 0xfee0) {
            let ascii = ascii.to_ascii_lowercase();
            out.push(ascii);
            if ascii.is_ascii_digit() {
                shape.digit = true;
            } else {
                shape.latin = true;
            }
        }
        return;
    }
    for lower in c.to_lowercase() {
        if is_token_char(lower) {
            // e.g. the Kelvin sign K → k
            out.push(lower);
            if ('а'..='я').contains(&lower) {
                shape.cyrillic = true;
            } else if lower.is_ascii_digit() {
                shape.digit = true;
            } else {
                shape.latin = true;
            }
        } else if let Some(folded) = fold_letter(lower) {
            out.push_str(folded);
            if folded.starts_with(|f: char| f.is_ascii()) {
                shape.latin = true;
            } else {
                shape.cyrillic = true;
            }
        }
    }
}

/// Base letters for accented Latin letters (Latin-1 and Latin Extended-A) and for the Cyrillic
/// letters of Ukrainian and Belarusian; `None` drops the character.
fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĳ' => "ij",
        'ĵ' => "j",
        'ķ' | 'ĸ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' | 'ſ' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'і' | 'ї' => "и",
        'є' => "е",
        'ґ' => "г",
        'ў' => "у",
        _ => return None,
    })
}

/// One analysed word: its index token and what it was made of.
pub(crate) struct Analysed<'a> {
    /// The stem, or the normalised word when it is not stemmed.
    pub token: Cow<'a, str>,
    /// The normalised word (before stemming).
    pub normal: &'a str,
    pub shape: Shape,
}

impl Analysed<'_> {
    /// Runs of at least [`MIN_DIGIT_RUN`] digits inside a word that also has letters (a word of
    /// digits only is its own token and yields nothing here).
    pub fn digit_runs(&self) -> impl Iterator<Item = &str> {
        let mixed = self.shape.digit && (self.shape.latin || self.shape.cyrillic);
        let text = if mixed { self.normal } else { "" };
        text.split(|c: char| !c.is_ascii_digit())
            .filter(|run| run.len() >= MIN_DIGIT_RUN)
    }
}

/// Turns words into tokens, reusing one buffer; cheap to create.
pub(crate) struct Analyzer {
    russian: Stemmer,
    english: Stemmer,
    word: String,
    stem: String,
}

/// Which stemmer a word goes through.
#[derive(Clone, Copy)]
enum Language {
    Russian,
    English,
}

/// Distinct words whose stems a thread keeps; past this the cache starts over. Support mail
/// repeats a small vocabulary (a few thousand words make most of it), and a Snowball stem costs
/// many times a hash lookup: stemming was most of the analysis, and the analysis a good part of
/// writing a message.
const CACHED_STEMS: usize = 16_384;

thread_local! {
    /// Stems of the words this thread analysed lately, by normalised word (which alone decides
    /// the stemmer).
    static STEMS: RefCell<HashMap<Box<str>, Box<str>>> = RefCell::default();
}

impl Analyzer {
    pub fn new() -> Self {
        Self {
            russian: Stemmer::new(Algorithm::Russian),
            english: Stemmer::new(Algorithm::English),
            word: String::with_capacity(4 * MAX_TOKEN_CHARS),
            stem: String::with_capacity(4 * MAX_TOKEN_CHARS),
        }
    }

    /// Normalises and stems one word (as split by [`words`]); `None` if nothing of it survives.
    pub fn analyse(&mut self, word: &str) -> Option<Analysed<'_>> {
        self.word.clear();
        let shape = normalize_into(word, &mut self.word);
        if self.word.is_empty() {
            return None;
        }
        let language = match shape {
            Shape { digit: true, .. }
            | Shape {
                latin: true,
                cyrillic: true,
                ..
            } => None,
            Shape { cyrillic: true, .. } => Some(Language::Russian),
            _ => Some(Language::English),
        };
        let token = match language {
            None => Cow::Borrowed(self.word.as_str()),
            Some(language) => {
                self.stem_into(language);
                Cow::Borrowed(self.stem.as_str())
            }
        };
        Some(Analysed {
            token,
            normal: self.word.as_str(),
            shape,
        })
    }

    /// Puts the token of the normalised word `self.word` into `self.stem`: its stem, from this
    /// thread's cache when the word was seen lately.
    fn stem_into(&mut self, language: Language) {
        self.stem.clear();
        let cached = STEMS.with_borrow(|stems| match stems.get(self.word.as_str()) {
            Some(stem) => {
                self.stem.push_str(stem);
                true
            }
            None => false,
        });
        if cached {
            return;
        }
        let stemmer = match language {
            Language::Russian => self.russian,
            Language::English => self.english,
        };
        match stemmer.stem(&self.word) {
            // The stemmers only shorten or respell within the alphabet, but the index must never
            // see anything else, so a surprising stem falls back to the word itself.
            Cow::Owned(stem) if is_token(&stem) => self.stem.push_str(&stem),
            Cow::Borrowed(stem) if is_token(stem) => self.stem.push_str(stem),
            _ => self.stem.push_str(&self.word),
        }
        STEMS.with_borrow_mut(|stems| {
            if stems.len() >= CACHED_STEMS {
                stems.clear();
            }
            stems.insert(Box::from(self.word.as_str()), Box::from(self.stem.as_str()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(word: &str) -> Option<String> {
        Analyzer::new().analyse(word).map(|a| a.token.into_owned())
    }

    /// The word's stem straight from the stemmer, bypassing the cache.
    fn uncached_stem(word: &str) -> String {
        let algorithm = if word.is_ascii() {
            Algorithm::English
        } else {
            Algorithm::Russian
        };
        Stemmer::new(algorithm).stem(word).into_owned()
    }

    /// Words of 2–5 letters of one alphabet, all different.
    fn distinct_words(alphabet: &[char], count: usize) -> Vec<String> {
        (0..count)
            .map(|mut index| {
                let mut word = String::new();
                loop {
                    word.push(alphabet[index % alphabet.len()]);
                    index /= alphabet.len();
                    if index == 0 && word.chars().count() >= 2 {
                        return word;
                    }
                }
            })
            .collect()
    }

    #[test]
    fn a_word_stems_the_same_from_the_cache_as_from_the_stemmer_even_after_it_starts_over() {
        let russian: Vec<char> = ('а'..='я').collect();
        let english: Vec<char> = ('a'..='z').collect();
        let mut words = vec!["доставки".to_owned(), "refunding".to_owned()];
        words.extend(distinct_words(&russian, CACHED_STEMS / 2 + 100));
        words.extend(distinct_words(&english, CACHED_STEMS / 2 + 100));
        words.extend(["доставки".to_owned(), "refunding".to_owned()]);
        let mut analyzer = Analyzer::new();
        for round in ["first", "cached", "after starting over"] {
            for word in &words {
                let token = analyzer.analyse(word).map(|a| a.token.into_owned());
                assert_eq!(
                    token.as_deref(),
                    Some(uncached_stem(word).as_str()),
                    "{word}, {round} time"
                );
            }
        }
        assert_eq!(tokens("доставки").as_deref(), Some("доставк"));
        assert_eq!(tokens("refunding").as_deref(), Some("refund"));
    }

    #[test]
    fn punctuation_hyphens_and_apostrophes_separate_words() {
        let text = "интернет-магазин don't #1042 №448812 a_b";
        let got: Vec<&str> = words(text).map(|r| &text[r]).collect();
        assert_eq!(
            got,
            [
                "интернет",
                "магазин",
                "don",
                "t",
                "1042",
                "448812",
                "a",
                "b"
            ]
        );
    }

    #[test]
    fn accented_latin_letters_fold_to_their_base_letters() {
        assert_eq!(tokens("Crème").as_deref(), Some("creme"));
        assert_eq!(tokens("STRASSE"), tokens("Straße"));
        assert_eq!(tokens("naïve"), tokens("naive"));
    }

    #[test]
    fn letters_of_other_scripts_are_dropped() {
        assert_eq!(tokens("日本"), None);
        assert_eq!(tokens("abc日本def").as_deref(), Some("abcdef"));
    }

    #[test]
    fn a_decomposed_short_i_and_yo_fold_like_the_composed_letters() {
        assert_eq!(tokens("и\u{306}од"), tokens("йод"));
        assert_eq!(tokens("е\u{308}лка"), tokens("елка"));
    }

    #[test]
    fn full_width_digits_and_letters_become_ascii() {
        assert_eq!(tokens("４４８８１２").as_deref(), Some("448812"));
        assert_eq!(tokens("ＯＲＤ１２").as_deref(), Some("ord12"));
    }

    #[test]
    fn very_long_words_are_cut_to_the_maximum_token_length() {
        let long = "я".repeat(500);
        let token = tokens(&long).unwrap_or_default();
        assert!(token.chars().count() <= MAX_TOKEN_CHARS);
        assert_eq!(tokens(&"7".repeat(500)), Some("7".repeat(MAX_TOKEN_CHARS)));
    }

    #[test]
    fn mixed_script_and_alphanumeric_words_are_not_stemmed() {
        assert_eq!(tokens("iPhoneы").as_deref(), Some("iphoneы"));
        assert_eq!(tokens("Orders15").as_deref(), Some("orders15"));
    }
}
