//! Attachments: metadata and the rule for a safe display name. The bytes live in a blob store
//! addressed by their SHA-256, never under a name the sender chose.

use crate::ids::{AttachmentId, MessageId, TicketId};

/// What is known about a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMeta {
    pub id: AttachmentId,
    pub ticket_id: TicketId,
    pub message_id: MessageId,
    /// A display name made safe by [`safe_file_name`].
    pub file_name: String,
    /// The type sniffed from the bytes (never the sender's claim).
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes: the blob's address.
    pub sha256: String,
}

const MAX_NAME_BYTES: usize = 255;

fn is_invisible_or_control(character: char) -> bool {
    character.is_control()
        || matches!(character,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// Turns a sender-supplied file name into one safe to show and to offer for download: no path
/// separators, NUL, control, bidi or zero-width characters, no leading dot, at most 255 bytes.
/// Running it twice gives the same result.
pub fn safe_file_name(raw: &str) -> String {
    let last_segment = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last_segment
        .chars()
        .filter(|&character| !is_invisible_or_control(character))
        .map(|character| {
            if matches!(character, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                character
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut name = if trimmed.is_empty() {
        "attachment".to_owned()
    } else {
        trimmed.to_owned()
    };
    if name.len() > MAX_NAME_BYTES {
        // Keep the extension, cut the stem on a character boundary.
        let extension = name
            .rfind('.')
            .map(|dot| name[dot..].to_owned())
            .filter(|ext| ext.len() < 16);
        let extension = extension.unwrap_or_default();
        let mut stem_end = MAX_NAME_BYTES - extension.len();
        while !name.is_char_boundary(stem_end) {
            stem_end -= 1;
        }
        name = format!("{}{}", name[..stem_end].trim_end(), extension);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_in_a_file_name_keeps_only_the_last_segment() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("..\\x00/.htaccess"), "htaccess");
        assert_eq!(safe_file_name("C:\\Users\\a\\счёт.pdf"), "счёт.pdf");
    }

    #[test]
    fn invisible_and_control_characters_are_removed() {
        assert_eq!(safe_file_name("\u{200b}.htaccess"), "htaccess");
        assert_eq!(safe_file_name("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(safe_file_name("a\0b\r\n.txt"), "ab.txt");
    }

    #[test]
    fn an_empty_or_dot_only_name_becomes_attachment() {
        assert_eq!(safe_file_name(""), "attachment");
        assert_eq!(safe_file_name("..."), "attachment");
    }

    #[test]
    fn a_long_name_is_cut_to_255_bytes_and_keeps_its_extension() {
        let name = safe_file_name(&format!("{}.pdf", "ж".repeat(300)));
        assert!(name.len() <= 255);
        assert!(name.ends_with(".pdf"));
    }

    #[test]
    fn the_sanitiser_is_idempotent_on_awkward_inputs() {
        for raw in [
            "../a",
            " .x ",
            "\u{feff}.. a.pdf",
            "a:b?.txt",
            &"é".repeat(400),
            "a.php.jpg",
        ] {
            let once = safe_file_name(raw);
            assert_eq!(safe_file_name(&once), once, "{raw:?}");
            assert!(!once.starts_with('.'));
        }
    }
}
