//! Parser denial of service (SECURITY.md item 12): hostile shapes are refused or handled, and
//! the process survives. Outcomes are asserted, not timings.

use otklik_email::{ParseError, ParseLimits, parse_inbound};

const HEAD: &str = "From: a@example.com\r\nTo: support@shop.test\r\nSubject: x\r\n";

fn parse(raw: &[u8]) -> Result<otklik_email::InboundEmail, ParseError> {
    parse_inbound(raw, &ParseLimits::default())
}

/// `depth` multiparts inside each other around one text part: depth + 1 levels.
fn nested_multiparts(depth: usize) -> String {
    let mut raw = String::from(HEAD);
    for level in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
    for level in (0..depth).rev() {
        raw.push_str(&format!("--b{level}--\r\n"));
    }
    raw
}

/// `depth` message/rfc822 parts inside each other, inside one multipart.
fn nested_messages(depth: usize) -> String {
    let mut raw = format!("{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n");
    for _ in 0..depth {
        raw.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    raw.push_str("From: x@example.org\r\nSubject: inner\r\n\r\nbody\r\n--b--\r\n");
    raw
}

#[test]
fn a_message_over_the_size_limit_is_refused_before_parsing() {
    let mut raw = HEAD.as_bytes().to_vec();
    raw.extend_from_slice(b"\r\n");
    raw.resize(50 * 1024 * 1024, b'a');
    assert_eq!(
        parse(&raw).unwrap_err(),
        ParseError::TooLarge {
            size: 50 * 1024 * 1024,
            limit: 25 * 1024 * 1024
        }
    );
}

#[test]
fn ten_thousand_parts_are_refused() {
    let mut raw = format!("{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    for index in 0..10_000 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\n\r\npart {index}\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    assert!(matches!(
        parse(raw.as_bytes()),
        Err(ParseError::TooManyParts { limit: 500, .. })
    ));
}

#[test]
fn a_flood_of_empty_parts_is_refused_before_the_parser_allocates_them() {
    // 25 MB of "--b\r\n\r\n" would be 3.7 million parts (650 MB) in mail-parser.
    let mut raw = format!("{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    raw.push_str(&"--b\r\n\r\n".repeat(3_000_000));
    let error = parse(raw.as_bytes()).unwrap_err();
    assert!(matches!(error, ParseError::TooManyParts { .. }), "{error}");
}

#[test]
fn delimiters_hidden_mid_line_are_counted_too() {
    let mut raw = format!("{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    raw.push_str(&"x--b".repeat(1000));
    assert!(matches!(
        parse(raw.as_bytes()),
        Err(ParseError::TooManyParts { .. })
    ));
}

#[test]
fn a_boundary_the_scan_cannot_read_makes_every_dash_pair_count() {
    // RFC 2231 continuation: the value is only known after joining the pieces.
    let mut raw =
        format!("{HEAD}Content-Type: multipart/mixed; boundary*0=\"b\"; boundary*1=\"c\"\r\n\r\n");
    raw.push_str(&"--bc\r\n\r\n".repeat(1000));
    assert!(matches!(
        parse(raw.as_bytes()),
        Err(ParseError::TooManyParts { .. })
    ));
    let small = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary*0=\"b\"; boundary*1=\"c\"\r\n\r\n\
         --bc\r\nContent-Type: text/plain\r\n\r\nhello\r\n--bc--\r\n"
    );
    assert_eq!(parse(small.as_bytes()).unwrap().text, "hello");
}

#[test]
fn nesting_depth_one_hundred_is_refused() {
    assert_eq!(
        parse(nested_multiparts(100).as_bytes()).unwrap_err(),
        ParseError::TooDeep {
            depth: 21,
            limit: 20
        }
    );
}

#[test]
fn nesting_up_to_the_depth_limit_is_accepted() {
    let email = parse(nested_multiparts(19).as_bytes()).unwrap();
    assert_eq!(email.text, "innermost");
    assert!(matches!(
        parse(nested_multiparts(20).as_bytes()),
        Err(ParseError::TooDeep { depth: 21, .. })
    ));
}

#[test]
fn a_hundred_thousand_nested_messages_are_refused_without_overflowing_the_stack() {
    // mail-parser drops nested messages recursively: parsing this would abort the process.
    let error = parse(nested_messages(100_000).as_bytes()).unwrap_err();
    assert!(matches!(error, ParseError::TooManyParts { .. }), "{error}");
}

#[test]
fn nested_messages_past_the_depth_limit_are_refused() {
    assert!(matches!(
        parse(nested_messages(30).as_bytes()),
        Err(ParseError::TooDeep { .. })
    ));
}

#[test]
fn nesting_hidden_in_a_base64_attached_message_is_found() {
    use base64::Engine as _;
    let inner = nested_messages(100_000);
    let encoded = base64::engine::general_purpose::STANDARD.encode(inner.as_bytes());
    let mut raw = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n\
         Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    for line in encoded.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).unwrap());
        raw.push_str("\r\n");
    }
    raw.push_str("--outer--\r\n");
    let error = parse(raw.as_bytes()).unwrap_err();
    assert!(matches!(error, ParseError::TooManyParts { .. }), "{error}");
}

#[test]
fn a_ten_megabyte_header_is_refused() {
    let raw = format!(
        "{HEAD}X-Junk: {}\r\n\r\nbody\r\n",
        "a".repeat(10 * 1024 * 1024)
    );
    assert!(matches!(
        parse(raw.as_bytes()),
        Err(ParseError::HeadersTooLarge { limit: 262_144, .. })
    ));
}

#[test]
fn a_ten_megabyte_header_inside_a_part_is_refused() {
    let raw = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\nX-Junk: {}\r\n\r\nbody\r\n--b--\r\n",
        "=?utf-8?q?a?= ".repeat(700_000)
    );
    assert!(matches!(
        parse(raw.as_bytes()),
        Err(ParseError::HeadersTooLarge { .. })
    ));
}

#[test]
fn a_million_line_base64_body_is_decoded() {
    let mut raw = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n\
         Content-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    );
    raw.push_str(&"QUJD\r\n".repeat(1_000_000));
    raw.push_str("--b--\r\n");
    let email = parse(raw.as_bytes()).unwrap();
    assert_eq!(email.attachments.len(), 1);
    assert_eq!(email.attachments[0].bytes.len(), 3_000_000);
    assert!(email.attachments[0].bytes.starts_with(b"ABCABC"));
}

#[test]
fn invalid_utf8_everywhere_still_parses_to_valid_text() {
    let mut raw = Vec::new();
    raw.extend_from_slice(
        b"From: \xff\xfe <a@example.com>\r\nSubject: \xc3\x28 bad \xed\xa0\x80\r\n",
    );
    raw.extend_from_slice(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody \xf0\x28\x8c\x28 end\x00\r\n",
    );
    let email = parse(&raw).unwrap();
    assert!(email.subject.contains("bad"));
    assert!(email.text.starts_with("body "));
    assert!(!email.text.contains('\0'));
    assert_eq!(email.from.unwrap().address, "a@example.com");
}

#[test]
fn random_bytes_and_plain_text_are_not_emails() {
    let noise: Vec<u8> = (0u32..100_000)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(matches!(parse(&noise), Err(ParseError::NotAnEmail(_))));
    assert!(matches!(parse(b""), Err(ParseError::NotAnEmail(_))));
    assert!(matches!(
        parse(b"Dear team: just a text file\nwith no headers at all\n"),
        Err(ParseError::NotAnEmail(_))
    ));
}

#[test]
fn text_full_of_dashes_is_not_taken_for_parts() {
    let raw = format!(
        "{HEAD}Content-Type: text/plain\r\n\r\n{}",
        "-- select * from orders; -- comment --\r\n".repeat(5_000)
    );
    let email = parse(raw.as_bytes()).unwrap();
    assert!(email.text.starts_with("-- select"));
}

#[test]
fn the_refusal_reason_reads_as_a_sentence_for_the_admin() {
    let error = parse(nested_multiparts(100).as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the message nests MIME parts 21 levels deep, over the limit of 20"
    );
}

#[test]
fn many_quoted_printable_bodies_are_scanned_once() {
    // Each encoded body could be a nested message, so the scan decodes it up to the next
    // delimiter; searching for the unused boundary "never" must not restart for every body.
    let mut raw = format!(
        "{HEAD}Content-Type: multipart/mixed; boundary=\"a\"\r\n\
         X-Note: boundary=\"never\"\r\n\r\n"
    );
    for index in 0..400 {
        raw.push_str(&format!(
            "--a\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nline {index}=3D\r\n"
        ));
    }
    raw.push_str("--a--\r\n");
    raw.push_str(&"filler text without delimiters\r\n".repeat(500_000));
    let email = parse(raw.as_bytes()).unwrap();
    assert!(email.text.starts_with("line 0="), "{:?}", &email.text[..20]);
}
