//! Embeds the browser assets into the binary: our own `assets/` files and htmx from npm
//! (`node_modules`, installed from the committed lockfile with `npm ci`). Each asset gets a
//! content hash in its URL, so browsers may cache it for a year and still see every change.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// (file on disk relative to the crate, name the pages ask for, content type)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "node_modules/htmx.org/dist/htmx.min.js",
        "htmx.min.js",
        "text/javascript; charset=utf-8",
    ),
    ("assets/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("assets/app.css", "app.css", "text/css; charset=utf-8"),
    ("assets/favicon.svg", "favicon.svg", "image/svg+xml"),
];

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed=package-lock.json");
    let packages = front_end_packages(&crate_dir, &out_dir);
    let mut code = String::from("pub(crate) static ASSETS: &[Asset] = &[\n");
    for (source, name, content_type) in ASSETS {
        let path = match source.strip_prefix("node_modules/") {
            Some(inside) => packages.join(inside),
            None => crate_dir.join(source),
        };
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|error| missing(&path, &error));
        let digest = Sha256::digest(&bytes);
        let hash: String = digest[..5].iter().fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        let hashed = match name.rsplit_once('.') {
            Some((stem, extension)) => format!("{stem}.{hash}.{extension}"),
            None => format!("{name}.{hash}"),
        };
        // A copy in OUT_DIR pins exactly the bytes that were hashed.
        let copy = out_dir.join(&hashed);
        std::fs::write(&copy, &bytes).expect("write the asset copy into OUT_DIR");
        let _ = writeln!(
            code,
            "    Asset {{ name: {name:?}, hashed: {hashed:?}, content_type: {content_type:?}, bytes: include_bytes!({copy:?}) }},",
            copy = copy.display().to_string(),
        );
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("assets.rs"), code).expect("write assets.rs");
}

/// The `node_modules` folder to embed from: the crate's own when a developer ran `npm ci`
/// there, else one installed from the committed lockfile into `OUT_DIR` (so a fresh clone
/// builds with `cargo build` alone; npm fetches only from its registry, pinned by integrity
/// hashes).
fn front_end_packages(crate_dir: &Path, out_dir: &Path) -> PathBuf {
    let local = crate_dir.join("node_modules");
    if local.join("htmx.org").is_dir() {
        return local;
    }
    let npm_dir = out_dir.join("npm");
    let installed = npm_dir.join("node_modules");
    let lock = std::fs::read(crate_dir.join("package-lock.json")).expect("read package-lock.json");
    let stamp = npm_dir.join("installed-lock.json");
    if installed.join("htmx.org").is_dir() && std::fs::read(&stamp).is_ok_and(|seen| seen == lock) {
        return installed;
    }
    std::fs::create_dir_all(&npm_dir).expect("create OUT_DIR/npm");
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(crate_dir.join(file), npm_dir.join(file)).expect("copy the npm manifest");
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&npm_dir)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`npm ci` for the front-end packages failed ({status}); run `npm ci --prefix crates/otklik-ui` to see why"
        ),
        Err(error) => panic!(
            "cannot run npm ({error}): install Node.js and npm (Debian: apt-get install nodejs npm), \
             or run `npm ci --prefix crates/otklik-ui` on a machine that has them"
        ),
    }
    std::fs::write(&stamp, lock).expect("record the installed lockfile");
    installed
}

fn missing(path: &Path, error: &std::io::Error) -> ! {
    if path
        .components()
        .any(|part| part.as_os_str() == "node_modules")
    {
        panic!(
            "{}: {error}.\nThe front-end packages are not installed: run `npm ci --prefix crates/otklik-ui` \
             (or `npm ci` in crates/otklik-ui) once, then build again.",
            path.display()
        );
    }
    panic!("{}: {error}", path.display());
}
