//! Settings: defaults, then an optional TOML file, then `OTKLIK_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The effective configuration of an Otklik node.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `postgres://…` for PostgreSQL; empty for the embedded SQLite database in `data_dir`.
    pub database_url: String,
    /// Where the HTTP server listens.
    pub bind: SocketAddr,
    /// The SQLite database and attachments live here unless set otherwise.
    pub data_dir: PathBuf,
    /// Where attachment bytes go; defaults to `<data_dir>/attachments`. Several nodes on
    /// PostgreSQL must share it (a network folder).
    pub attachments_dir: Option<PathBuf>,
    /// PostgreSQL connections per node.
    pub pg_max_connections: usize,
    /// Searches one node runs in PostgreSQL at once (more wait their turn); twice the node's
    /// cores when unset. Where the database has cores of its own, twice those.
    pub pg_searches_at_once: Option<usize>,
    pub log_format: LogFormat,
    /// Where the inbound SMTP listener listens (for an MTA relaying mail to Otklik); off when
    /// unset.
    pub smtp_listen: Option<SocketAddr>,
    /// Domains the SMTP listener accepts mail for, beyond those of the mailboxes.
    pub smtp_domains: Vec<String>,
    /// Seconds between IMAP polls when the server offers no IDLE (and between re-reads of the
    /// mailbox list).
    pub mail_poll_seconds: u64,
    /// Milliseconds between outbox rounds.
    pub outbox_interval_ms: u64,
    /// This node's name among the nodes of one database (leases); defaults to the host name and
    /// the HTTP port, which stay the same when the node restarts.
    pub node_id: Option<String>,
    /// Mark the workspace's cookies `Secure` (serve over HTTPS, e.g. behind a TLS proxy). Off by
    /// default so `otklik serve` works on http://127.0.0.1 out of the box.
    pub secure_cookies: bool,
    /// New chat visitors one IP address may start per minute (per node).
    pub widget_visitors_per_ip_per_minute: u32,
    /// Messages, files, typing and read marks one chat visitor may send per minute.
    pub widget_actions_per_visitor_per_minute: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: String::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            attachments_dir: None,
            pg_max_connections: 16,
            pg_searches_at_once: None,
            log_format: LogFormat::Text,
            smtp_listen: None,
            smtp_domains: Vec::new(),
            mail_poll_seconds: 60,
            outbox_interval_ms: 1000,
            secure_cookies: false,
            node_id: None,
            widget_visitors_per_ip_per_minute: 30,
            widget_actions_per_visitor_per_minute: 120,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("attachments_dir", &self.attachments_dir)
            .field("pg_max_connections", &self.pg_max_connections)
            .field("pg_searches_at_once", &self.pg_searches_at_once)
            .field("log_format", &self.log_format)
            .field("smtp_listen", &self.smtp_listen)
            .field("smtp_domains", &self.smtp_domains)
            .field("mail_poll_seconds", &self.mail_poll_seconds)
            .field("outbox_interval_ms", &self.outbox_interval_ms)
            .field("secure_cookies", &self.secure_cookies)
            .field("node_id", &self.node_id)
            .field(
                "widget_visitors_per_ip_per_minute",
                &self.widget_visitors_per_ip_per_minute,
            )
            .field(
                "widget_actions_per_visitor_per_minute",
                &self.widget_actions_per_visitor_per_minute,
            )
            .finish()
    }
}

/// Hides the password of a database URL (`postgres://user:***@host/db`).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let credentials = &rest[..at];
    match credentials.split_once(':') {
        Some((user, _password)) => {
            format!("{}://{user}:***@{}", &url[..scheme_end], &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// The names of the environment variables, each overriding its setting.
const ENV: &[&str] = &[
    "OTKLIK_DATABASE_URL",
    "OTKLIK_BIND",
    "OTKLIK_DATA_DIR",
    "OTKLIK_ATTACHMENTS_DIR",
    "OTKLIK_PG_MAX_CONNECTIONS",
    "OTKLIK_PG_SEARCHES_AT_ONCE",
    "OTKLIK_LOG_FORMAT",
    "OTKLIK_SMTP_LISTEN",
    "OTKLIK_SMTP_DOMAINS",
    "OTKLIK_MAIL_POLL_SECONDS",
    "OTKLIK_OUTBOX_INTERVAL_MS",
    "OTKLIK_SECURE_COOKIES",
    "OTKLIK_NODE_ID",
    "OTKLIK_WIDGET_VISITORS_PER_IP_PER_MINUTE",
    "OTKLIK_WIDGET_ACTIONS_PER_VISITOR_PER_MINUTE",
];

impl Settings {
    /// Loads settings from `file` (if given, or `OTKLIK_CONFIG`) and the environment.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Settings> {
        Self::load_from(file, |name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`], reading variables through `env` (tests pass a map).
    pub fn load_from(
        file: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let file = file.or_else(|| env("OTKLIK_CONFIG").map(PathBuf::from));
        let mut settings = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Settings::default(),
        };
        for name in ENV {
            let Some(value) = env(name) else { continue };
            let invalid = |error: &dyn std::fmt::Display| {
                anyhow::anyhow!("{name}={value:?} is invalid: {error}")
            };
            match *name {
                "OTKLIK_DATABASE_URL" => settings.database_url = value.clone(),
                "OTKLIK_BIND" => settings.bind = value.parse().map_err(|e| invalid(&e))?,
                "OTKLIK_DATA_DIR" => settings.data_dir = PathBuf::from(&value),
                "OTKLIK_ATTACHMENTS_DIR" => settings.attachments_dir = Some(PathBuf::from(&value)),
                "OTKLIK_PG_MAX_CONNECTIONS" => {
                    settings.pg_max_connections = value.parse().map_err(|e| invalid(&e))?
                }
                "OTKLIK_PG_SEARCHES_AT_ONCE" => {
                    settings.pg_searches_at_once = Some(value.parse().map_err(|e| invalid(&e))?)
                }
                "OTKLIK_LOG_FORMAT" => {
                    settings.log_format = match value.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        other => {
                            return Err(invalid(&format!("{other:?} is neither text nor json")));
                        }
                    }
                }
                "OTKLIK_SMTP_LISTEN" => {
                    settings.smtp_listen = Some(value.parse().map_err(|e| invalid(&e))?)
                }
                "OTKLIK_SMTP_DOMAINS" => {
                    settings.smtp_domains = value
                        .split(',')
                        .map(|domain| domain.trim().to_lowercase())
                        .filter(|domain| !domain.is_empty())
                        .collect()
                }
                "OTKLIK_MAIL_POLL_SECONDS" => {
                    settings.mail_poll_seconds = value.parse().map_err(|e| invalid(&e))?
                }
                "OTKLIK_NODE_ID" => settings.node_id = Some(value.clone()),
                "OTKLIK_SECURE_COOKIES" => {
                    settings.secure_cookies = value.parse().map_err(|e| invalid(&e))?
                }
                "OTKLIK_OUTBOX_INTERVAL_MS" => {
                    settings.outbox_interval_ms = value.parse().map_err(|e| invalid(&e))?
                }
                "OTKLIK_WIDGET_VISITORS_PER_IP_PER_MINUTE" => {
                    settings.widget_visitors_per_ip_per_minute =
                        value.parse().map_err(|e| invalid(&e))?
                }
                "OTKLIK_WIDGET_ACTIONS_PER_VISITOR_PER_MINUTE" => {
                    settings.widget_actions_per_visitor_per_minute =
                        value.parse().map_err(|e| invalid(&e))?
                }
                _ => {}
            }
        }
        if settings.pg_searches_at_once == Some(0) {
            anyhow::bail!(
                "pg_searches_at_once (OTKLIK_PG_SEARCHES_AT_ONCE) is 0: at least one search must \
                 be able to run"
            );
        }
        Ok(settings)
    }

    /// The settings as TOML, with the database password hidden.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.database_url = redact_url(&shown.database_url);
        Ok(toml::to_string_pretty(&shown)?)
    }

    /// This node's name in leases (see [`Settings::node_id`]).
    pub fn node_id(&self) -> String {
        match &self.node_id {
            Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
            _ => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|name| name.trim().to_owned())
                    .ok()
                    .filter(|name| !name.is_empty())
                    .unwrap_or_else(|| "otklik".into());
                format!("{host}:{}", self.bind.port())
            }
        }
    }

    /// Where links in e-mails point when Admin → Settings names no public base URL: the listen
    /// address (`localhost` for a wildcard one). Behind a TLS proxy this is not what people
    /// open, which is why the settings page asks for the public address.
    pub fn fallback_base_url(&self) -> String {
        let scheme = "http";
        let host = if self.bind.ip().is_unspecified() {
            "localhost".to_owned()
        } else if self.bind.is_ipv6() {
            format!("[{}]", self.bind.ip())
        } else {
            self.bind.ip().to_string()
        };
        format!("{scheme}://{host}:{}", self.bind.port())
    }

    /// Where attachments are kept.
    pub fn attachments_dir(&self) -> PathBuf {
        self.attachments_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("attachments"))
    }

    /// Whether the database is PostgreSQL.
    pub fn uses_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }

    /// The SQLite file, when SQLite is used.
    pub fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        if self.database_url.is_empty() {
            return Ok(self.data_dir.join("otklik.db"));
        }
        match self.database_url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => anyhow::bail!(
                "OTKLIK_DATABASE_URL must start with postgres://, postgresql:// or sqlite://"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn with_nothing_set_otklik_uses_sqlite_under_data_on_localhost_8080() {
        let settings = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.sqlite_path().unwrap(),
            PathBuf::from("./data/otklik.db")
        );
        assert!(!settings.uses_postgres());
    }

    #[test]
    fn environment_variables_override_the_file() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("otklik.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:9000\"\ndata_dir = \"/srv/otklik\"\n",
        )
        .unwrap();
        let settings =
            Settings::load_from(Some(file), env(&[("OTKLIK_BIND", "0.0.0.0:8081")])).unwrap();
        assert_eq!(settings.bind.to_string(), "0.0.0.0:8081");
        assert_eq!(settings.data_dir, PathBuf::from("/srv/otklik"));
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("otklik.toml");
        std::fs::write(&file, "bnd = \"x\"\n").unwrap();
        assert!(Settings::load_from(Some(file), env(&[])).is_err());
    }

    #[test]
    fn the_widget_limits_are_read_from_the_environment() {
        let settings = Settings::load_from(
            None,
            env(&[
                ("OTKLIK_WIDGET_VISITORS_PER_IP_PER_MINUTE", "5000"),
                ("OTKLIK_WIDGET_ACTIONS_PER_VISITOR_PER_MINUTE", "600"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.widget_visitors_per_ip_per_minute, 5000);
        assert_eq!(settings.widget_actions_per_visitor_per_minute, 600);
    }

    #[test]
    fn searches_at_once_are_read_from_the_environment_or_the_file_and_never_zero() {
        let settings =
            Settings::load_from(None, env(&[("OTKLIK_PG_SEARCHES_AT_ONCE", "6")])).unwrap();
        assert_eq!(settings.pg_searches_at_once, Some(6));
        let unset = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(unset.pg_searches_at_once, None);
        let error =
            Settings::load_from(None, env(&[("OTKLIK_PG_SEARCHES_AT_ONCE", "0")])).unwrap_err();
        assert!(
            error.to_string().contains("OTKLIK_PG_SEARCHES_AT_ONCE"),
            "{error}"
        );
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("otklik.toml");
        std::fs::write(&file, "pg_searches_at_once = 0\n").unwrap();
        assert!(Settings::load_from(Some(file), env(&[])).is_err());
    }

    #[test]
    fn a_bad_bind_address_names_the_variable() {
        let error = Settings::load_from(None, env(&[("OTKLIK_BIND", "localhost")])).unwrap_err();
        assert!(error.to_string().contains("OTKLIK_BIND"), "{error}");
    }

    #[test]
    fn the_printed_config_hides_the_database_password() {
        let settings = Settings::load_from(
            None,
            env(&[(
                "OTKLIK_DATABASE_URL",
                "postgres://otklik:s3cret@db:5432/otklik",
            )]),
        )
        .unwrap();
        let printed = settings.to_redacted_toml().unwrap();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://otklik:***@db:5432/otklik"),
            "{printed}"
        );
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
