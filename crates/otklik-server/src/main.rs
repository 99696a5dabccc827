//! The `otklik` binary: one program that runs the whole helpdesk, plus the operator commands.

mod bench;
mod config;
mod demo;
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
    }
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
