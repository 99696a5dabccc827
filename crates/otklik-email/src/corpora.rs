//! Where the third-party e-mail corpora live on a machine, read in place and never copied into
//! the repository: mail-parser's own test mails (from the cargo registry) and CPython's
//! `test_email` data. Used by the tests of this crate and of the ingest use case; each finder
//! panics naming where it looked, so a missing corpus fails a test instead of skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every `.eml` of mail-parser 0.11's test resources, sorted.
pub fn mail_parser_eml_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_with_extension(&mail_parser_resources(), "eml", &mut files);
    files.sort();
    files
}

/// Every `msg_*.txt` of CPython's `test_email` data, sorted.
pub fn cpython_email_files() -> Vec<PathBuf> {
    let dir = cpython_email_data();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("msg_") && name.ends_with(".txt")
        })
        .collect();
    files.sort();
    files
}

fn files_with_extension(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_with_extension(&path, extension, found);
        } else if path.extension().is_some_and(|ext| ext == extension) {
            found.push(path);
        }
    }
}

/// `$CARGO_HOME/registry/src/*/mail-parser-0.11.*/resources/eml`, the newest 0.11 fetched.
pub fn mail_parser_resources() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    let registry = cargo_home.join("registry").join("src");
    let mut candidates = Vec::new();
    if let Ok(indexes) = std::fs::read_dir(&registry) {
        for index in indexes.flatten() {
            for package in std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = package.file_name().to_string_lossy().into_owned();
                let resources = package.path().join("resources").join("eml");
                if name.starts_with("mail-parser-0.11.") && resources.is_dir() {
                    candidates.push(resources);
                }
            }
        }
    }
    candidates.sort();
    candidates.pop().unwrap_or_else(|| {
        panic!(
            "mail-parser 0.11's test mails were not found: looked for \
             {}/*/mail-parser-0.11.*/resources/eml (run `cargo fetch` first)",
            registry.display()
        )
    })
}

/// CPython's `test/test_email/data`: from the interpreter, else Debian's usual place.
pub fn cpython_email_data() -> PathBuf {
    let mut looked = Vec::new();
    let from_python = Command::new("python3")
        .args(["-c", "import test,os;print(os.path.dirname(test.__file__))"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_python.into_iter().collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        let mut debian: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
            .map(|entry| entry.path().join("test"))
            .collect();
        debian.sort();
        candidates.extend(debian.into_iter().rev());
    }
    for test_dir in candidates {
        let data = test_dir.join("test_email").join("data");
        if data.join("msg_01.txt").is_file() {
            return data;
        }
        looked.push(data.display().to_string());
    }
    panic!(
        "CPython's test_email data was not found; looked in `python3 -c 'import test'`'s \
         folder and /usr/lib/python3*/test: {looked:?} (on Debian: apt-get install \
         libpython3-testsuite)"
    )
}
