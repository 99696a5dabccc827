//! Installing the test servers on first use, serialised across the parallel test processes.

use std::path::{Path, PathBuf};

use std::process::Command;

/// One lock for every installer: apt and pip must not run twice at once.
const LOCK: &str = "/tmp/otklik-apt.lock";
pub(super) const DOVECOT: &str = "/usr/sbin/dovecot";
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// Installs `dovecot-imapd` with apt-get unless it is there; `apt-get update` only if needed.
pub(super) fn ensure_dovecot() {
    if Path::new(DOVECOT).exists() {
        return;
    }
    run_locked(
        "install dovecot-imapd",
        r#"
        test -x /usr/sbin/dovecot && exit 0
        export DEBIAN_FRONTEND=noninteractive
        install() { apt-get install -y --no-install-recommends dovecot-imapd; }
        install || { apt-get update && install; }
        "#,
        &[],
    );
    assert!(
        Path::new(DOVECOT).exists(),
        "testkit: dovecot-imapd was installed but {DOVECOT} is missing"
    );
}

/// Makes a venv with aiosmtpd and returns its python.
pub(super) fn ensure_aiosmtpd() -> PathBuf {
    let venv = cache_dir().join("venv");
    let python = venv.join("bin/python");
    if python_has_aiosmtpd(&python) {
        return python;
    }
    run_locked(
        "install aiosmtpd into a venv",
        r#"
        venv="$1"; package="$2"
        "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null && exit 0
        export DEBIAN_FRONTEND=noninteractive
        # Debian's python3 needs python3-venv for ensurepip.
        python3 -m venv --clear "$venv" || {
            apt-get install -y --no-install-recommends python3-venv \
                || { apt-get update && apt-get install -y --no-install-recommends python3-venv; }
            python3 -m venv --clear "$venv"
        }
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$package"
        "#,
        &[venv.as_os_str(), AIOSMTPD.as_ref()],
    );
    assert!(
        python_has_aiosmtpd(&python),
        "testkit: installed {AIOSMTPD} into {} but python cannot import it",
        venv.display()
    );
    python
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/otklik")
}

fn python_has_aiosmtpd(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|output| output.status.success())
}

fn run_locked(what: &str, script: &str, args: &[&std::ffi::OsStr]) {
    let started = std::time::Instant::now();
    let output = Command::new("flock")
        .arg(LOCK)
        .args(["sh", "-c", script, "sh"])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("testkit: cannot run flock to {what}: {error}"));
    assert!(
        output.status.success(),
        "testkit: failed to {what} ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    eprintln!(
        "testkit: {what}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
