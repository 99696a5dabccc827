//! Third-party mail corpora read where they are installed (never copied into the repository):
//! mail-parser's own test mails from the cargo registry, and CPython's `test_email` data.
//! Every file must parse to `Ok` or to a `ParseError`, without a panic.

use std::path::PathBuf;

use otklik_email::corpora::{cpython_email_files, mail_parser_eml_files};
use otklik_email::{ParseLimits, parse_inbound};

/// Parses every file and returns (ok, refused), after checking each outcome is coherent.
fn parse_all(files: &[PathBuf]) -> (usize, usize) {
    let mut ok = 0;
    let mut refused = Vec::new();
    for file in files {
        let raw = std::fs::read(file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        match parse_inbound(&raw, &ParseLimits::default()) {
            Ok(email) => {
                ok += 1;
                assert!(
                    email.dedup_key.starts_with("mid:") || email.dedup_key.starts_with("sha256:"),
                    "{}",
                    file.display()
                );
                assert!(!email.text.contains('\r'), "{}", file.display());
                assert!(
                    email
                        .attachments
                        .iter()
                        .all(|attachment| !attachment.file_name.is_empty()),
                    "{}",
                    file.display()
                );
            }
            Err(error) => refused.push(format!("{}: {error}", file.display())),
        }
    }
    assert_eq!(ok + refused.len(), files.len());
    eprintln!("{ok} parsed, {} refused: {refused:#?}", refused.len());
    (ok, refused.len())
}

#[test]
fn every_mail_parser_test_mail_parses_or_is_refused_without_a_panic() {
    let files = mail_parser_eml_files();
    assert!(files.len() >= 100, "only {} .eml files", files.len());
    let (ok, _refused) = parse_all(&files);
    assert!(
        ok * 10 >= files.len() * 9,
        "only {ok} of {} parsed",
        files.len()
    );
}

#[test]
fn every_cpython_test_email_message_parses_or_is_refused_without_a_panic() {
    let files = cpython_email_files();
    assert!(files.len() >= 40, "only {} msg_*.txt files", files.len());
    let (ok, _refused) = parse_all(&files);
    assert!(
        ok * 10 >= files.len() * 9,
        "only {ok} of {} parsed",
        files.len()
    );
}
