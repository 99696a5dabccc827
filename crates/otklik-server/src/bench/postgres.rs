//! A fresh PostgreSQL database for each run, created under the admin URL and dropped after.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;

#[derive(Debug)]
pub(crate) struct BenchDatabase {
    pub(crate) name: String,
    pub(crate) url: String,
}

/// Refuses an admin URL that points anywhere but this machine.
pub(super) fn ensure_loopback(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host {
            let loopback = name == "localhost"
                || name
                    .parse::<IpAddr>()
                    .is_ok_and(|address| address.is_loopback());
            anyhow::ensure!(
                loopback,
                "the benchmark only talks to this machine; {name} is not a loopback address"
            );
        }
    }
    for address in config.get_hostaddrs() {
        anyhow::ensure!(
            address.is_loopback(),
            "the benchmark only talks to this machine; {address} is not a loopback address"
        );
    }
    Ok(())
}

pub(super) async fn admin_client(admin_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = admin_url
        .parse()
        .context("the PostgreSQL admin URL does not parse")?;
    ensure_loopback(&config)?;
    let target = otklik_store_postgres::redacted_target(admin_url);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("PostgreSQL is unreachable at {target} (set --pg-url)"))?;
    tokio::spawn(connection);
    Ok(client)
}

pub(crate) async fn create_database(admin_url: &str) -> anyhow::Result<BenchDatabase> {
    let name = format!("otklik_bench_{}", uuid::Uuid::now_v7().simple());
    let client = admin_client(admin_url).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    Ok(BenchDatabase {
        url: with_database(admin_url, &name),
        name,
    })
}

/// The database a kept PostgreSQL run uses: the one named in `folder` by an earlier run, or a
/// new one whose name is written there.
pub(super) async fn kept_database(admin_url: &str, folder: &Path) -> anyhow::Result<BenchDatabase> {
    let file = folder.join("bench-database");
    match std::fs::read_to_string(&file) {
        Ok(name) => {
            let name = name.trim().to_owned();
            anyhow::ensure!(
                name.starts_with("otklik_bench_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{} does not name a bench database",
                file.display()
            );
            Ok(BenchDatabase {
                url: with_database(admin_url, &name),
                name,
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let database = create_database(admin_url).await?;
            std::fs::write(&file, &database.name)
                .with_context(|| format!("cannot write {}", file.display()))?;
            Ok(database)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Does for the bench database what autovacuum does on a live server after a bulk load (it is
/// off on some installations, this machine's among them): planner statistics, and the visibility
/// map and hint bits a load leaves unset. Without them the first reads of every page write them
/// back inside the measurement, and the plans chosen are not those of a settled database.
/// Then a checkpoint writes out what the load and the vacuum left dirty: otherwise the one the
/// load's log started goes on writing, paced over minutes, during the probes (seen still running
/// four minutes after a million-ticket load).
pub(super) async fn vacuum_analyze(database_url: &str) -> anyhow::Result<()> {
    let client = admin_client(database_url).await?;
    client
        .batch_execute("VACUUM (ANALYZE)")
        .await
        .context("VACUUM (ANALYZE) of the bench database failed")?;
    if let Err(error) = client.batch_execute("CHECKPOINT").await {
        // Only superusers and pg_checkpoint members may: the probes then share the disk with it.
        eprintln!("[postgres] no CHECKPOINT after VACUUM ({error}); measuring anyway");
    }
    Ok(())
}

pub(crate) async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let client = admin_client(admin_url).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

/// `url` with its database replaced by `database` (URL or key=value form).
pub(super) fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={database}");
    };
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |slash| authority_start + slash);
    format!("{}/{database}{query}", &base[..authority_end])
}
