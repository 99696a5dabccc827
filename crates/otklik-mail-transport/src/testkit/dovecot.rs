//! A private dovecot IMAP server for tests.

use std::fmt::Write as _;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tempfile::TempDir;

use super::install::{DOVECOT, ensure_dovecot};
use super::{block_on, free_port, kill_process_group, pause};
use crate::imap::ImapSettings;
use crate::imap::connection::{Session, login};
use crate::settings::encode_user;

/// The uid/gid dovecot stores mail as ("nobody"): it must be ≥ 500 and exist on every Debian.
const MAIL_UID: u32 = 65534;

/// A dovecot IMAP server on a free loopback port, in its own temp dir, killed on drop.
///
/// Users [`Dovecot::USERS`] exist from the start, all with [`Dovecot::PASSWORD`]; more can be
/// added with [`Dovecot::add_user`]. Plaintext login, Maildir storage, IDLE on (changes are
/// noticed within a second). Folder levels are separated by `.` (`INBOX.Support`), but
/// top-level folders such as `Support` work too.
pub struct Dovecot {
    port: u16,
    child: Child,
    dir: TempDir,
}

impl Dovecot {
    /// Users created at start.
    pub const USERS: [&'static str; 3] =
        ["support@shop.test", "sales@shop.test", "agent@shop.test"];
    /// Every user's password; its `@`, `/` and space exercise percent-decoding of URLs.
    pub const PASSWORD: &'static str = "s3cret p@ss/word";

    /// Installs dovecot-imapd if missing and starts a private instance. Panics if it cannot.
    pub fn start() -> Self {
        ensure_dovecot();
        let dir = tempfile::Builder::new()
            .prefix("otklik-dovecot-")
            .tempdir()
            .unwrap_or_else(|error| panic!("testkit: cannot create a temp dir: {error}"));
        // dovecot's unprivileged processes must reach the config, users file and mail.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|error| {
                panic!("testkit: cannot chmod {}: {error}", dir.path().display())
            });
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).expect("testkit: create the mail dir");
        std::os::unix::fs::chown(&mail, Some(MAIL_UID), Some(MAIL_UID))
            .unwrap_or_else(|error| panic!("testkit: cannot chown {}: {error}", mail.display()));
        let users: String = Self::USERS
            .iter()
            .map(|user| format!("{user}:{{PLAIN}}{}\n", Self::PASSWORD))
            .collect();
        std::fs::write(dir.path().join("users"), users).expect("testkit: write the users file");

        let mut last_log = String::new();
        // A port found free can be taken by someone else before dovecot binds it: try again.
        for _attempt in 0..5 {
            let port = free_port();
            std::fs::write(dir.path().join("dovecot.conf"), config(dir.path(), port))
                .expect("testkit: write dovecot.conf");
            let mut child = spawn(dir.path());
            if wait_until_ready(&mut child, port) {
                return Self { port, child, dir };
            }
            last_log = std::fs::read_to_string(dir.path().join("dovecot.log")).unwrap_or_default();
            kill_process_group(child.id());
            let _ = child.wait();
        }
        panic!("testkit: dovecot did not start; its log:\n{last_log}");
    }

    /// The port dovecot listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `imap://user:password@127.0.0.1:port/INBOX`, percent-encoded.
    pub fn imap_url(&self, user: &str) -> String {
        self.imap_url_for_folder(user, "INBOX")
    }

    /// Like [`Dovecot::imap_url`] for another folder.
    pub fn imap_url_for_folder(&self, user: &str, folder: &str) -> String {
        format!(
            "imap://{}:{}@127.0.0.1:{}/{}",
            encode_user(user),
            encode_user(Self::PASSWORD),
            self.port,
            encode_user(folder)
        )
    }

    /// Settings for `user` and `folder`.
    pub fn settings(&self, user: &str, folder: &str) -> ImapSettings {
        ImapSettings::from_url(&self.imap_url_for_folder(user, folder))
            .expect("testkit: the IMAP URL we build parses")
    }

    /// Adds a user with [`Dovecot::PASSWORD`] (dovecot re-reads the file on the next login).
    pub fn add_user(&self, user: &str) {
        let path = self.dir.path().join("users");
        let mut users = std::fs::read_to_string(&path).expect("testkit: read the users file");
        let _ = writeln!(users, "{user}:{{PLAIN}}{}", Self::PASSWORD);
        std::fs::write(&path, users).expect("testkit: write the users file");
    }

    /// APPENDs `raw` to the user's INBOX and returns its UID.
    pub fn append(&self, user: &str, raw: &[u8]) -> u32 {
        self.append_to(user, "INBOX", raw, None)
    }

    /// APPENDs every message to the user's INBOX over one connection, in order.
    pub fn append_all(&self, user: &str, raws: &[Vec<u8>]) {
        self.with_session(user, |mut session| async move {
            for raw in raws {
                session
                    .append("INBOX", None, None, raw)
                    .await
                    .unwrap_or_else(|error| panic!("testkit: APPEND failed: {error}"));
            }
            (session, ())
        });
    }

    /// APPENDs `raw` to `folder` with optional flags (for example `"(\\Seen)"`); returns its UID.
    pub fn append_to(&self, user: &str, folder: &str, raw: &[u8], flags: Option<&str>) -> u32 {
        self.with_session(user, |mut session| async move {
            session
                .append(folder, flags, None, raw)
                .await
                .unwrap_or_else(|error| panic!("testkit: APPEND to {folder} failed: {error}"));
            // Nobody else appends to a test mailbox, so the new message is the one below UIDNEXT.
            let uid_next = select(&mut session, folder)
                .await
                .uid_next
                .expect("testkit: dovecot reports UIDNEXT");
            (session, uid_next - 1)
        })
    }

    /// All UIDs in `folder`, ascending.
    pub fn uids(&self, user: &str, folder: &str) -> Vec<u32> {
        self.search(user, folder, "ALL")
    }

    /// The UIDs in `folder` that carry `\Seen`, ascending.
    pub fn seen_uids(&self, user: &str, folder: &str) -> Vec<u32> {
        self.search(user, folder, "SEEN")
    }

    /// How many messages in the user's INBOX are not `\Seen`.
    pub fn unseen_count(&self, user: &str) -> usize {
        self.search(user, "INBOX", "UNSEEN").len()
    }

    /// Sets `\Seen` on one message, as a person reading it in a mail client would.
    pub fn mark_seen(&self, user: &str, folder: &str, uid: u32) {
        self.with_session(user, |mut session| async move {
            select(&mut session, folder).await;
            let updates: Vec<_> = session
                .uid_store(uid.to_string(), "+FLAGS (\\Seen)")
                .await
                .expect("testkit: UID STORE")
                .try_collect()
                .await
                .expect("testkit: UID STORE responses");
            assert!(
                !updates.is_empty(),
                "testkit: no message with UID {uid} in {folder}"
            );
            (session, ())
        });
    }

    /// The folder's UIDVALIDITY.
    pub fn uid_validity(&self, user: &str, folder: &str) -> u32 {
        self.with_session(user, |mut session| async move {
            let validity = select(&mut session, folder)
                .await
                .uid_validity
                .expect("testkit: dovecot reports UIDVALIDITY");
            (session, validity)
        })
    }

    /// Creates a folder.
    pub fn create_folder(&self, user: &str, folder: &str) {
        self.with_session(user, |mut session| async move {
            session
                .create(folder)
                .await
                .unwrap_or_else(|error| panic!("testkit: CREATE {folder} failed: {error}"));
            (session, ())
        });
    }

    /// Deletes and creates `folder` again, which gives it a new UIDVALIDITY; returns that.
    pub fn recreate_folder(&self, user: &str, folder: &str) -> u32 {
        let before = self.uid_validity(user, folder);
        self.with_session(user, |mut session| async move {
            session
                .delete(folder)
                .await
                .unwrap_or_else(|error| panic!("testkit: DELETE {folder} failed: {error}"));
            session
                .create(folder)
                .await
                .unwrap_or_else(|error| panic!("testkit: CREATE {folder} failed: {error}"));
            (session, ())
        });
        let after = self.uid_validity(user, folder);
        assert_ne!(
            before, after,
            "testkit: recreating {folder} kept its UIDVALIDITY"
        );
        after
    }

    fn search(&self, user: &str, folder: &str, query: &str) -> Vec<u32> {
        let mut uids: Vec<u32> = self.with_session(user, |mut session| async move {
            select(&mut session, folder).await;
            let found = session
                .uid_search(query)
                .await
                .unwrap_or_else(|error| panic!("testkit: UID SEARCH {query} failed: {error}"));
            (session, found.into_iter().collect())
        });
        uids.sort_unstable();
        uids
    }

    /// Logs in as `user`, runs `work` and logs out, all on the testkit's own runtime.
    fn with_session<'a, T, W, F>(&'a self, user: &'a str, work: W) -> T
    where
        T: Send,
        W: FnOnce(Session) -> F + Send + 'a,
        F: Future<Output = (Session, T)> + Send + 'a,
    {
        block_on(async move {
            let session = login(&self.settings(user, "INBOX"))
                .await
                .unwrap_or_else(|error| panic!("testkit: login as {user} failed: {error}"));
            let (mut session, result) = work(session).await;
            let _ = session.logout().await;
            result
        })
    }
}

async fn select(session: &mut Session, folder: &str) -> async_imap::types::Mailbox {
    session
        .select(folder)
        .await
        .unwrap_or_else(|error| panic!("testkit: SELECT {folder} failed: {error}"))
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        kill_process_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// Waits until dovecot greets on `port`; `false` if it exited or stayed silent for 10 s.
fn wait_until_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut greeting = [0_u8; 4];
            if stream.read_exact(&mut greeting).is_ok() && &greeting == b"* OK" {
                return true;
            }
        }
        pause(Duration::from_millis(50));
    }
    false
}

/// Runs dovecot in the foreground under a shell that stops it when our stdin closes, so a test
/// process killed by a timeout does not leave a dovecot behind.
fn spawn(dir: &Path) -> Child {
    Command::new("sh")
        .args([
            "-c",
            r#""$1" -F -c "$2" & server=$!; read _ignored; kill "$server"; wait "$server""#,
            "sh",
            DOVECOT,
        ])
        .arg(dir.join("dovecot.conf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("testkit: cannot start dovecot: {error}"))
}

fn config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        r#"# Private test instance written by otklik-mail-transport's testkit.
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
mail_location = maildir:{dir}/mail/%u
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"#
    )
}
