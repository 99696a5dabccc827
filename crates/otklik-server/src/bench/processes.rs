//! The child processes a bench run drives (`otklik serve` and the CLI), killed on every way
//! out, and their resident memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{
    CLI_TIMEOUT, Env, PHASE_TIME_CAP, RSS_SAMPLE_EVERY, SEED_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT,
};

/// A child process that is killed if it is still running when the guard goes away.
pub(super) struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl ChildGuard {
    /// Waits for the child to exit, for at most `timeout`.
    pub(super) async fn wait_for(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A running `otklik serve`.
pub(crate) struct Server {
    pub(super) child: ChildGuard,
    pub(super) pid: u32,
    pub(super) base_url: String,
}

impl Server {
    pub(crate) async fn start(
        exe: &Path,
        env: &Env,
        client: &reqwest::Client,
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut command = env.command(exe, &["serve"])?;
        command
            .env("OTKLIK_BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let pid = child.id();
        let mut server = Server {
            child: ChildGuard(child),
            pid,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        wait_until_healthy(&mut server.child.0, &server.base_url, client, &env.log).await?;
        Ok(server)
    }

    /// Asks the server to shut down gracefully (SIGTERM), killing it if it takes too long.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let asked = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !asked.is_ok_and(|status| status.success()) {
            let _ = self.child.0.kill();
        }
        match self.child.wait_for(STOP_TIMEOUT).await? {
            Some(_) => Ok(()),
            None => {
                let _ = self.child.0.kill();
                self.child.0.wait()?;
                bail!(
                    "the server did not stop within {} s of SIGTERM and was killed",
                    STOP_TIMEOUT.as_secs()
                )
            }
        }
    }
}

/// Waits up to [`START_TIMEOUT`] for the server `child` started at `base_url` to answer
/// `/healthz`, failing at once if it exits (its log is at `log`). The caller's guard kills a
/// server that never answered.
pub(crate) async fn wait_until_healthy(
    child: &mut Child,
    base_url: &str,
    client: &reqwest::Client,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the server exited during start-up ({status}); see {}",
                log.display()
            );
        }
        let health = client
            .get(format!("{base_url}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if health.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the server did not answer /healthz within {} s",
                START_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free loopback port (there is a small window in which another process could take it).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Creates the benchmark's admin (unless the dataset already has them) through the CLI, as an
/// operator would, and issues an API token for them.
pub(crate) async fn admin_token(
    exe: &Path,
    env: &Env,
    (email, name, password): (&str, &str, &str),
    create_admin: bool,
) -> anyhow::Result<String> {
    if create_admin {
        run_cli(
            exe,
            env,
            &[
                "admin",
                "create",
                "--email",
                email,
                "--name",
                name,
                "--password-stdin",
            ],
            Some(format!("{password}\n")),
            CLI_TIMEOUT,
        )
        .await?;
    }
    issue_token(exe, env, email, "bench").await
}

/// An API token named `token_name` for the agent with `email`, issued through the child's CLI.
pub(super) async fn issue_token(
    exe: &Path,
    env: &Env,
    email: &str,
    token_name: &str,
) -> anyhow::Result<String> {
    let args = ["token", "create", "--email", email, "--name", token_name];
    let token = run_cli(exe, env, &args, None, CLI_TIMEOUT)
        .await?
        .trim()
        .to_owned();
    anyhow::ensure!(
        token.starts_with("otk_"),
        "`otklik token create` printed no token for {email}"
    );
    Ok(token)
}

/// Runs `otklik args…` to completion (at most `timeout`) and returns its standard output.
pub(crate) async fn run_cli(
    exe: &Path,
    env: &Env,
    args: &[&str],
    input: Option<String>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let shown = format!("otklik {}", args.join(" "));
    let mut command = env.command(exe, args)?;
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped());
    let mut child = ChildGuard(
        command
            .spawn()
            .with_context(|| format!("cannot run {shown}"))?,
    );
    if let (Some(input), Some(mut stdin)) = (input, child.0.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("cannot write to {shown}"))?;
    }
    let mut stdout = child.0.stdout.take().context("no standard output")?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let read = stdout.read_to_string(&mut text).map(|_| text);
        let _ = sender.send(read);
    });
    let status = child.wait_for(timeout).await?;
    let Some(status) = status else {
        bail!("{shown} did not finish within {} s", timeout.as_secs());
    };
    if !status.success() {
        bail!("{shown} failed ({status}):\n{}", log_tail(&env.log, 10));
    }
    let output = receiver
        .await
        .context("the output reader stopped")?
        .with_context(|| format!("cannot read the output of {shown}"))?;
    Ok(output)
}

/// The last `lines` lines of a log file (empty if it cannot be read).
pub(super) fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |metadata| metadata.len());
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Memory

/// `VmRSS` in kB from the text of `/proc/<pid>/status`.
pub(super) fn parse_vm_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.trim_start_matches("VmRSS:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(super) fn rss_kb(pid: u32) -> Option<u64> {
    parse_vm_rss_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Samples a process's resident memory in the background and keeps the peak.
pub(super) struct RssSampler {
    pub(super) peak_kb: Arc<AtomicU64>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub(super) fn start(pid: u32) -> RssSampler {
        let peak_kb = Arc::new(AtomicU64::new(rss_kb(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            async move {
                let mut ticks = tokio::time::interval(RSS_SAMPLE_EVERY);
                // Bounded like every loop here: stopped by `finish`, or after the longest phase.
                let deadline = Instant::now() + PHASE_TIME_CAP + SEED_TIMEOUT;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    ticks.tick().await;
                    if let Some(kb) = rss_kb(pid) {
                        peak_kb.fetch_max(kb, Ordering::Relaxed);
                    }
                }
            }
        });
        RssSampler {
            peak_kb,
            stop,
            task,
        }
    }

    /// Stops sampling; returns the peak in kB.
    pub(super) async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kb.load(Ordering::Relaxed)
    }
}
