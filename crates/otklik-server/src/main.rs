//! The `otklik` binary: one program that runs the whole helpdesk, plus the operator commands.

mod bench;
mod bench_chat;
mod bench_mail;
mod config;
mod demo;
mod mail;
mod node;
mod serve;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use otklik_domain::permission::{Scope, parse_scopes};

use crate::config::{LogFormat, Settings};

/// Otklik: a self-hosted, omnichannel helpdesk for online shops.
#[derive(Debug, Parser)]
#[command(name = "otklik", version, about)]
struct Cli {
    /// A TOML config file (also OTKLIK_CONFIG); environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API, health, metrics).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to FILE while the server keeps running.
    Backup {
        /// The new file (must not exist).
        file: PathBuf,
    },
    /// Print the effective configuration (secrets redacted).
    Config,
    /// Recompute the search index and the queue counters from the data (normally kept current
    /// by every write; use after restoring an old backup or if ever in doubt).
    Reindex,
    /// Load a demo shop: teams, agents, Russian and English customers, tickets on every channel.
    Demo {
        /// How many tickets to create.
        #[arg(long, default_value_t = 300)]
        tickets: usize,
    },
    /// Manage admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Drive servers over HTTP and print throughput, latency and memory figures.
    Bench(BenchArgs),
    /// Measure e-mail ingestion through the SMTP listener and the pipe.
    BenchMail(BenchMailArgs),
    /// Measure live chat: N open visitor streams, message delivery latency, server memory.
    BenchChat(BenchChatArgs),
    /// Manage support mailboxes.
    Mailbox {
        #[command(subcommand)]
        command: MailboxCommand,
    },
    /// Feed e-mail to Otklik.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
}

/// Flags of `otklik bench-mail`.
#[derive(Debug, clap::Args)]
struct BenchMailArgs {
    /// Backends to measure: sqlite, postgres (repeat or comma-separate).
    #[arg(long = "backend", value_delimiter = ',', default_values_t = ["sqlite".to_owned(), "postgres".to_owned()])]
    backends: Vec<String>,
    /// Messages sent through the SMTP listener.
    #[arg(long, default_value_t = 5_000)]
    smtp_messages: usize,
    /// Messages fed through `otklik mail ingest`, one process each.
    #[arg(long, default_value_t = 500)]
    pipe_messages: usize,
    /// Concurrent SMTP clients and pipe processes.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// PostgreSQL admin URL; a fresh database is created under it and dropped afterwards.
    #[arg(
        long,
        env = "OTKLIK_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
}

/// Flags of `otklik bench-chat`.
#[derive(Debug, clap::Args)]
struct BenchChatArgs {
    /// The backend: sqlite or postgres (a fresh database).
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Concurrent visitors (chats with an open event stream); one run per size, e.g. 1000,5000.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize])]
    visitors: Vec<usize>,
    /// Visitor messages per second, all chats together.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// How long visitor messages are sent, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Agent replies timed from the API to the visitor's stream.
    #[arg(long, default_value_t = 200)]
    agent_replies: usize,
    /// PostgreSQL admin URL; a fresh database is created under it and dropped afterwards.
    #[arg(
        long,
        env = "OTKLIK_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// Keep the data folder and database for inspection.
    #[arg(long)]
    keep_data: bool,
}

#[derive(Debug, Subcommand)]
enum MailboxCommand {
    /// Add a mailbox (as the admin page does).
    Add {
        /// A short name: letters, digits, '-', '_', '.'.
        #[arg(long)]
        name: String,
        /// The address customers write to.
        #[arg(long)]
        address: String,
        /// imaps://user:password@host:993/INBOX (user and password percent-encoded).
        #[arg(long)]
        imap_url: Option<String>,
        /// smtps://user:password@host:465 or smtp://user:password@host:587.
        #[arg(long)]
        smtp_url: Option<String>,
        /// Send no automatic acknowledgement for new e-mail tickets.
        #[arg(long)]
        no_auto_acknowledge: bool,
    },
    /// List mailboxes (passwords hidden).
    List,
    /// Try a mailbox's IMAP and SMTP servers.
    Test {
        /// The mailbox's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Ingest one raw message from standard input (for Postfix/Exim pipe delivery). Prints the
    /// ticket number, `duplicate`, `quarantined: …` or `ignored: …`; exits 0 once the message is
    /// durably handled and 75 (temporary failure) when it could not be stored, so the MTA retries.
    Ingest {
        /// The mailbox it arrived for; the default mailbox (created on first use) when absent.
        #[arg(long)]
        mailbox: Option<String>,
    },
}

/// Flags of `otklik bench`.
#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// Backends to measure: sqlite, postgres (repeat or comma-separate).
    #[arg(long = "backend", value_delimiter = ',', default_values_t = ["sqlite".to_owned(), "postgres".to_owned()])]
    backends: Vec<String>,
    /// Concurrent clients for ticket creation.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Ticket creations to send.
    #[arg(long, default_value_t = 20_000)]
    create_requests: usize,
    /// Tickets in the database while list pages are measured.
    #[arg(long, default_value_t = 100_000)]
    list_tickets: usize,
    /// List requests to send.
    #[arg(long, default_value_t = 2_000)]
    list_requests: usize,
    /// PostgreSQL admin URL; a fresh database is created under it and dropped afterwards.
    #[arg(
        long,
        env = "OTKLIK_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// Keep the data folders and database for inspection.
    #[arg(long)]
    keep_data: bool,
    /// Dataset sizes of the scale phase (search, view counters, list pages, database size),
    /// grown in turn from the same data; e.g. 100000,1000000 (a million takes minutes). 0 skips.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000usize])]
    scale_tickets: Vec<usize>,
    /// Measured requests per scale probe.
    #[arg(long, default_value_t = 500)]
    scale_requests: usize,
    /// Also measure the agent workspace's pages (inbox, views, ticket page: server time and
    /// bytes sent) on the list phase's dataset (`--list-tickets`).
    #[arg(long)]
    ui: bool,
    /// Measured requests per workspace page kind.
    #[arg(long, default_value_t = 300)]
    ui_requests: usize,
}

impl BenchArgs {
    fn into_options(self) -> anyhow::Result<bench::BenchOptions> {
        let backends = self
            .backends
            .iter()
            .map(|name| match name.as_str() {
                "sqlite" => Ok(bench::BenchBackend::Sqlite),
                "postgres" => Ok(bench::BenchBackend::Postgres),
                other => anyhow::bail!("unknown backend {other:?}; use sqlite or postgres"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(bench::BenchOptions {
            backends,
            concurrency: self.concurrency.max(1),
            create_requests: self.create_requests,
            list_tickets: self.list_tickets,
            list_requests: self.list_requests,
            pg_url: self.pg_url,
            keep_data: self.keep_data,
            scale_tickets: self.scale_tickets,
            scale_requests: self.scale_requests.max(1),
            ui: self.ui,
            ui_requests: self.ui_requests.max(1),
        })
    }
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an admin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set an agent's password (ends their sessions): the way back in when no mailbox can
    /// send a reset link.
    ResetPassword {
        #[arg(long)]
        email: String,
        /// Read the new password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for the agent with this e-mail; prints only the token.
    Create {
        #[arg(long)]
        email: String,
        /// Scopes (repeat or comma-separate): tickets:read, tickets:write, customers:read,
        /// customers:write, admin. Default: all.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn scopes_from(raw: &[String]) -> anyhow::Result<BTreeSet<Scope>> {
    if raw.is_empty() {
        return Ok(Scope::ALL.iter().copied().collect());
    }
    Ok(parse_scopes(&raw.join(","))?)
}

/// mimalloc rather than the system's allocator: the demo generator's writer spent a tenth of its
/// time in glibc's malloc and free, and a million-ticket demo loads faster: 72 s against 78 s on
/// SQLite, 140 s against 175 s on PostgreSQL. Only Rust's allocations: SQLite keeps the
/// system's (overriding it gained nothing more).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config)?;
    init_logging(settings.log_format);
    match cli.command {
        Command::Serve => serve::serve(settings).await,
        Command::Migrate => {
            node::open_store(&settings).await?;
            eprintln!("the database schema is up to date");
            Ok(())
        }
        Command::Backup { file } => {
            let store = node::open_store(&settings).await?;
            store
                .backup_to(&file)
                .await
                .with_context(|| format!("backup to {} failed", file.display()))?;
            eprintln!("backup written to {}", file.display());
            Ok(())
        }
        Command::Reindex => {
            let store = node::open_store(&settings).await?;
            // One transaction: writes wait until it ends, and a million tickets take a minute or
            // more. Said before it starts, so a quiet terminal is not taken for a hang.
            eprintln!(
                "rebuilding the search index and counters in one transaction (about a minute per \
                 million tickets on SQLite, three on PostgreSQL); writes wait until it is done"
            );
            let started = std::time::Instant::now();
            store
                .rebuild_derived_data()
                .await
                .context("rebuilding the search index and counters failed")?;
            eprintln!(
                "search index and counters rebuilt in {:.1?}",
                started.elapsed()
            );
            Ok(())
        }
        Command::Config => {
            print!("{}", settings.to_redacted_toml()?);
            Ok(())
        }
        Command::Demo { tickets } => {
            let app = node::build_app(&settings).await?;
            let principal = demo_principal(&app).await?;
            let summary = demo::load_demo(&app, &principal, &demo::DemoOptions { tickets }).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    name,
                    password_stdin: _,
                },
        } => {
            let app = node::build_app(&settings).await?;
            let password = read_password_line()?;
            let agent = app
                .create_admin_from_cli(&email, &name, password)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            eprintln!("admin {} created", agent.email);
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::ResetPassword {
                    email,
                    password_stdin: _,
                },
        } => {
            let app = node::build_app(&settings).await?;
            let password = read_password_line()?;
            let agent = app
                .reset_password_from_cli(&email, password)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            eprintln!("password of {} set; their sessions ended", agent.email);
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    email,
                    scopes,
                    name,
                },
        } => {
            let app = node::build_app(&settings).await?;
            let issued = app
                .create_token_from_cli(&email, scopes_from(&scopes)?, &name)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            println!("{}", issued.secret);
            Ok(())
        }
        Command::Bench(args) => bench::run(args.into_options()?).await,
        Command::BenchMail(args) => {
            let backends = args
                .backends
                .iter()
                .map(|name| match name.as_str() {
                    "sqlite" => Ok(bench::BenchBackend::Sqlite),
                    "postgres" => Ok(bench::BenchBackend::Postgres),
                    other => anyhow::bail!("unknown backend {other:?}; use sqlite or postgres"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            bench_mail::run(bench_mail::MailBenchOptions {
                backends,
                smtp_messages: args.smtp_messages,
                pipe_messages: args.pipe_messages,
                concurrency: args.concurrency.max(1),
                pg_url: args.pg_url,
            })
            .await
        }
        Command::BenchChat(args) => {
            let backend = match args.backend.as_str() {
                "sqlite" => bench::BenchBackend::Sqlite,
                "postgres" => bench::BenchBackend::Postgres,
                other => anyhow::bail!("unknown backend {other:?}; use sqlite or postgres"),
            };
            anyhow::ensure!(
                args.rate > 0.0 && args.visitors.iter().all(|&n| n > 0),
                "--rate and --visitors must be positive"
            );
            bench_chat::run(bench_chat::ChatBenchOptions {
                backend,
                visitors: args.visitors,
                rate: args.rate,
                seconds: args.seconds.max(1),
                agent_replies: args.agent_replies,
                pg_url: args.pg_url,
                keep_data: args.keep_data,
            })
            .await
        }
        Command::Mailbox { command } => mailbox_command(&settings, command).await,
        Command::Mail {
            command: MailCommand::Ingest { mailbox },
        } => match ingest_stdin(&settings, mailbox).await {
            Ok(summary) => {
                println!("{summary}");
                Ok(())
            }
            Err(error) => {
                // EX_TEMPFAIL: the MTA keeps the message and tries again later.
                eprintln!("otklik mail ingest: the message was not stored: {error:#}");
                std::process::exit(75);
            }
        },
    }
}

async fn mailbox_command(settings: &Settings, command: MailboxCommand) -> anyhow::Result<()> {
    let app = node::build_app(settings).await?;
    match command {
        MailboxCommand::Add {
            name,
            address,
            imap_url,
            smtp_url,
            no_auto_acknowledge,
        } => {
            let mailbox = app
                .create_mailbox_from_cli(otklik_app::mail::MailboxInput {
                    name,
                    address,
                    imap_url,
                    smtp_url,
                    auto_acknowledge: !no_auto_acknowledge,
                })
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            eprintln!("mailbox {} <{}> added", mailbox.name, mailbox.address);
        }
        MailboxCommand::List => {
            for mailbox in app.mailboxes().await.map_err(|e| anyhow::anyhow!("{e}"))? {
                let url = |url: &Option<String>| {
                    url.as_deref()
                        .map_or("-".to_owned(), otklik_app::mail::redact_url)
                };
                println!(
                    "{}\t{}\timap={}\tsmtp={}",
                    mailbox.name,
                    mailbox.address,
                    url(&mailbox.imap_url),
                    url(&mailbox.smtp_url)
                );
            }
        }
        MailboxCommand::Test { name } => {
            use otklik_app::mail::MailTransport;
            let mailbox = app
                .mailbox_named(&name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_context(|| format!("no mailbox named {name:?}"))?;
            let mut failed = false;
            for (label, url, imap) in [
                ("IMAP", &mailbox.imap_url, true),
                ("SMTP", &mailbox.smtp_url, false),
            ] {
                let Some(url) = url else {
                    println!("{label}: not configured");
                    continue;
                };
                let result = if imap {
                    mail::Transport.check_imap(url).await
                } else {
                    mail::Transport.check_smtp(url).await
                };
                match result {
                    Ok(()) => println!("{label}: ok"),
                    Err(error) => {
                        failed = true;
                        println!("{label}: {error}");
                    }
                }
            }
            if failed {
                anyhow::bail!("the mailbox's servers did not all answer");
            }
        }
    }
    Ok(())
}

/// `otklik mail ingest`: reads the whole message, then stores it; any error is a temporary
/// failure for the MTA.
async fn ingest_stdin(settings: &Settings, mailbox: Option<String>) -> anyhow::Result<String> {
    use std::io::Read;
    let limit = otklik_app::mail::MAX_RAW_EMAIL_BYTES as u64 + 1;
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut raw)
        .context("cannot read the message from standard input")?;
    let app = node::build_app(settings).await?;
    let mailbox = match mailbox {
        Some(name) => app
            .mailbox_named(&name)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_context(|| {
                format!("no mailbox named {name:?} (add it with otklik mailbox add)")
            })?,
        None => app
            .default_mailbox()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let outcome = app
        .ingest_email(&mailbox, raw)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(outcome.summary())
}

/// The demo acts as the first admin; it needs one to exist.
async fn demo_principal(
    app: &otklik_app::App,
) -> anyhow::Result<otklik_domain::permission::Principal> {
    let agents = app
        .store
        .list_agents(&otklik_store::IdPage {
            after: None,
            limit: 200,
        })
        .await?;
    let admin = agents
        .into_iter()
        .find(|agent| agent.active && agent.role == otklik_domain::agent::Role::Admin)
        .context(
            "create an admin first: otklik admin create --email … --name … --password-stdin",
        )?;
    Ok(otklik_app::App::principal_of(&admin, None, None))
}
