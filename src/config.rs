//! Configuration from the environment, validated once at start.
//!
//! Every error names the variable that is wrong, so an operator can fix it
//! without reading code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

/// The secret used when none is configured. Production refuses it.
pub const DEVELOPMENT_JWT_SECRET: &str = "medesk-development-secret-do-not-use-in-production";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::new("DATABASE_URL", "is empty"));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "sqlite:// needs a file path",
                ));
            }
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if let Some(path) = raw.strip_prefix("sqlite:") {
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if raw.contains("://") {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "unsupported scheme; use postgres://, postgresql://, sqlite:// or a file path",
            ));
        }
        Ok(Self::Sqlite(raw.to_owned()))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Login attempt budgets (per minute, with the same burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_account_per_minute: NonZeroU32,
    pub per_address_per_minute: NonZeroU32,
}

/// Password-reset request budgets (per hour, with the same burst): per
/// address asked about, and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetLimits {
    pub per_account_per_hour: NonZeroU32,
    pub per_address_per_hour: NonZeroU32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub database: DatabaseUrl,
    pub database_pool_size: u32,
    pub bind: SocketAddr,
    pub admin: Option<AdminBootstrap>,
    pub jwt_secret: Secret,
    pub smtp_url: Option<String>,
    /// The most one SMTP delivery may take as a whole: connecting, every
    /// command and the data.
    pub smtp_timeout: std::time::Duration,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub login_limits: LoginLimits,
    pub reset_limits: ResetLimits,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Concurrent argon2 computations; each keeps one core busy for a while
    /// (docs/performance.md).
    pub password_hash_concurrency: usize,
    /// HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Base of the links in mails (no trailing slash); None: the address
    /// medesk listens on.
    pub public_url: Option<String>,
    /// Business days before an untriaged case is reported to supporters.
    pub triage_reminder_days: u32,
    /// Days the desk is closed besides weekends.
    pub holidays: Vec<chrono::NaiveDate>,
    /// How often the reminder check runs.
    pub reminder_interval: std::time::Duration,
    /// How long signed-in browsers stay signed in.
    pub browser_sessions: crate::desk::sessions::SessionPolicy,
    /// How often the queue and a case's messages refresh themselves in a
    /// browser with JavaScript (htmx).
    pub page_refresh_seconds: u32,
}

/// A string that never appears in debug output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct AdminBootstrap {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminBootstrap {
    // Never print the password, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads a given set of variables (tests pass their own).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let environment = match get("MEDESK_ENV") {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "MEDESK_ENV",
                    format!("unknown environment {other:?}; use development or production"),
                ));
            }
        };

        let database = match get("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(raw)?,
            None => DatabaseUrl::Sqlite("medesk.db".to_owned()),
        };

        let bind = get("MEDESK_BIND")
            .unwrap_or("127.0.0.1:8080")
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::new("MEDESK_BIND", format!("not a socket address: {e}")))?;

        let admin = match (get("MEDESK_ADMIN_EMAIL"), vars.get("MEDESK_ADMIN_PASSWORD")) {
            (None, None) => None,
            (Some(email), Some(password)) if !password.is_empty() => Some(AdminBootstrap {
                email: email.to_owned(),
                password: password.clone(),
            }),
            (Some(_), _) => {
                return Err(ConfigError::new(
                    "MEDESK_ADMIN_PASSWORD",
                    "must be set together with MEDESK_ADMIN_EMAIL",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "MEDESK_ADMIN_EMAIL",
                    "must be set together with MEDESK_ADMIN_PASSWORD",
                ));
            }
        };

        let jwt_secret = match get("MEDESK_JWT_SECRET") {
            Some(secret) if secret == DEVELOPMENT_JWT_SECRET => {
                if environment == Environment::Production {
                    return Err(ConfigError::new(
                        "MEDESK_JWT_SECRET",
                        "the development secret is refused when MEDESK_ENV=production",
                    ));
                }
                secret.to_owned()
            }
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::new(
                    "MEDESK_JWT_SECRET",
                    "must be at least 32 characters",
                ));
            }
            Some(secret) => secret.to_owned(),
            None if environment == Environment::Production => {
                return Err(ConfigError::new(
                    "MEDESK_JWT_SECRET",
                    "is required when MEDESK_ENV=production",
                ));
            }
            None => DEVELOPMENT_JWT_SECRET.to_owned(),
        };

        let smtp_url = get("MEDESK_SMTP_URL").map(str::to_owned);
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            return Err(ConfigError::new(
                "MEDESK_SMTP_URL",
                "must start with smtp:// or smtps://",
            ));
        }

        let mail_from = get("MEDESK_MAIL_FROM").unwrap_or("medesk@localhost");
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "MEDESK_MAIL_FROM",
                format!("not a mail address: {mail_from:?}"),
            ));
        }

        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let default_pool_size = match &database {
            // SQLite reads are CPU-bound: a reader thread per core serves
            // them back to back (more only switch between threads and add
            // page caches and allocator arenas; docs/performance.md).
            DatabaseUrl::Sqlite(_) => (cores as u32).clamp(2, 64),
            // PostgreSQL connections also wait on round trips, so a few
            // more than cores keep the work going; many more only add
            // backends taking turns on the same cores: on 2 cores 16
            // connections gave the same intake rate as 6 at a p99 of 51–57
            // ms instead of 38 (docs/performance.md).
            DatabaseUrl::Postgres(_) => postgres_pool_size(cores),
        };
        Ok(Self {
            environment,
            database_pool_size: parse_number(
                vars,
                "MEDESK_DB_POOL_SIZE",
                default_pool_size,
                1,
                512,
            )?,
            database,
            bind,
            admin,
            jwt_secret: Secret(jwt_secret),
            smtp_url,
            smtp_timeout: std::time::Duration::from_secs(
                parse_number(vars, "MEDESK_SMTP_TIMEOUT_SECONDS", 60, 1, 600)?.into(),
            ),
            mail_dir: PathBuf::from(get("MEDESK_MAIL_DIR").unwrap_or("mail")),
            mail_from: mail_from.to_owned(),
            login_limits: LoginLimits {
                per_account_per_minute: nonzero(parse_number(
                    vars,
                    "MEDESK_LOGIN_PER_ACCOUNT_PER_MINUTE",
                    10,
                    1,
                    1_000_000,
                )?),
                per_address_per_minute: nonzero(parse_number(
                    vars,
                    "MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE",
                    60,
                    1,
                    1_000_000,
                )?),
            },
            reset_limits: ResetLimits {
                per_account_per_hour: nonzero(parse_number(
                    vars,
                    "MEDESK_PASSWORD_RESET_PER_ACCOUNT_PER_HOUR",
                    5,
                    1,
                    1_000_000,
                )?),
                per_address_per_hour: nonzero(parse_number(
                    vars,
                    "MEDESK_PASSWORD_RESET_PER_ADDRESS_PER_HOUR",
                    30,
                    1,
                    1_000_000,
                )?),
            },
            trust_forwarded_for: parse_bool(vars, "MEDESK_TRUST_FORWARDED_FOR")?,
            // Leave at least one core to the request workers (see docs/performance.md).
            password_hash_concurrency: parse_number(
                vars,
                "MEDESK_PASSWORD_HASH_CONCURRENCY",
                (cores.saturating_sub(1)).max(1) as u32,
                1,
                64,
            )? as usize,
            browser_sessions: crate::desk::sessions::SessionPolicy {
                idle: std::time::Duration::from_secs(
                    u64::from(parse_number(
                        vars,
                        "MEDESK_SESSION_IDLE_MINUTES",
                        30,
                        1,
                        24 * 60,
                    )?) * 60,
                ),
                ..Default::default()
            },
            page_refresh_seconds: parse_number(vars, "MEDESK_PAGE_REFRESH_SECONDS", 30, 1, 3600)?,
            public_url: get("MEDESK_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned()),
            triage_reminder_days: parse_number(vars, "MEDESK_TRIAGE_REMINDER_DAYS", 3, 0, 60)?,
            holidays: match get("MEDESK_HOLIDAYS") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| {
                        d.parse().map_err(|_| {
                            ConfigError::new(
                                "MEDESK_HOLIDAYS",
                                format!("{d:?} is not a date YYYY-MM-DD"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            reminder_interval: std::time::Duration::from_secs(
                parse_number(vars, "MEDESK_REMINDER_INTERVAL_SECONDS", 300, 1, 86_400)?.into(),
            ),
            workers: match get("MEDESK_WORKERS") {
                None => None,
                Some(_) => Some(parse_number(vars, "MEDESK_WORKERS", 1, 1, 256)? as usize),
            },
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    pub fn uses_development_secret(&self) -> bool {
        self.jwt_secret.expose() == DEVELOPMENT_JWT_SECRET
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The default PostgreSQL pool for a machine of `cores`: two per core and
/// two more, 4 to 32.
fn postgres_pool_size(cores: usize) -> u32 {
    (2 * cores as u32 + 2).clamp(4, 32)
}

fn parse_number(
    vars: &HashMap<String, String>,
    name: &'static str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    match vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError::new(
                name,
                format!("must be a whole number from {min} to {max}, got {raw:?}"),
            )),
        },
    }
}

fn parse_bool(vars: &HashMap<String, String>, name: &'static str) -> Result<bool, ConfigError> {
    match vars
        .get(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(other) => Err(ConfigError::new(
            name,
            format!("must be true or false, got {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_default_pool_follows_the_database() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let sqlite = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(sqlite.database_pool_size, cores.clamp(2, 64));
        let postgres =
            Config::from_vars(&vars(&[("DATABASE_URL", "postgres://localhost/medesk")])).unwrap();
        assert_eq!(
            postgres.database_pool_size,
            postgres_pool_size(cores as usize)
        );
        assert_eq!(
            [1, 2, 8, 64].map(postgres_pool_size),
            [4, 6, 18, 32],
            "two per core and two more, 4 to 32"
        );
        let chosen = Config::from_vars(&vars(&[("MEDESK_DB_POOL_SIZE", "3")])).unwrap();
        assert_eq!(chosen.database_pool_size, 3);
    }

    #[test]
    fn defaults_need_nothing() {
        let config = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(config.database, DatabaseUrl::Sqlite("medesk.db".into()));
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.mail_from, "medesk@localhost");
        assert_eq!(config.smtp_timeout, std::time::Duration::from_secs(60));
        assert!(config.uses_development_secret());
        assert!(config.admin.is_none());
    }

    #[test]
    fn database_url_selects_backend() {
        for (raw, backend) in [
            ("postgres://postgres@127.0.0.1/x", "postgres"),
            ("postgresql://postgres@127.0.0.1/x", "postgres"),
            ("sqlite://data/medesk.db", "sqlite"),
            ("/var/lib/medesk/medesk.db", "sqlite"),
        ] {
            assert_eq!(DatabaseUrl::parse(raw).unwrap().backend_name(), backend);
        }
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/m.db").unwrap(),
            DatabaseUrl::Sqlite("data/m.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("mysql://x").unwrap_err().variable,
            "DATABASE_URL"
        );
    }

    #[test]
    fn production_refuses_development_secret() {
        let err = Config::from_vars(&vars(&[("MEDESK_ENV", "production")])).unwrap_err();
        assert_eq!(err.variable, "MEDESK_JWT_SECRET");
        let err = Config::from_vars(&vars(&[
            ("MEDESK_ENV", "production"),
            ("MEDESK_JWT_SECRET", DEVELOPMENT_JWT_SECRET),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "MEDESK_JWT_SECRET");
        assert!(err.message.contains("development"));
        let ok = Config::from_vars(&vars(&[
            ("MEDESK_ENV", "production"),
            (
                "MEDESK_JWT_SECRET",
                "a-real-secret-that-is-long-enough-1234",
            ),
        ]))
        .unwrap();
        assert!(ok.is_production());
    }

    #[test]
    fn errors_name_the_variable() {
        let cases = [
            (("MEDESK_BIND", "not-an-address"), "MEDESK_BIND"),
            (("MEDESK_ENV", "staging"), "MEDESK_ENV"),
            (("MEDESK_SMTP_URL", "http://x"), "MEDESK_SMTP_URL"),
            (("MEDESK_JWT_SECRET", "short"), "MEDESK_JWT_SECRET"),
            (("MEDESK_DB_POOL_SIZE", "0"), "MEDESK_DB_POOL_SIZE"),
            (
                ("MEDESK_SMTP_TIMEOUT_SECONDS", "0"),
                "MEDESK_SMTP_TIMEOUT_SECONDS",
            ),
            (
                ("MEDESK_SMTP_TIMEOUT_SECONDS", "601"),
                "MEDESK_SMTP_TIMEOUT_SECONDS",
            ),
            (
                ("MEDESK_ADMIN_EMAIL", "a@b.example"),
                "MEDESK_ADMIN_PASSWORD",
            ),
            (
                ("MEDESK_TRUST_FORWARDED_FOR", "maybe"),
                "MEDESK_TRUST_FORWARDED_FOR",
            ),
        ];
        for ((name, value), expected) in cases {
            let err = Config::from_vars(&vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.variable, expected, "{name}={value}");
            assert!(err.to_string().starts_with(expected));
        }
    }

    #[test]
    fn admin_password_is_not_debug_printed() {
        let config = Config::from_vars(&vars(&[
            ("MEDESK_ADMIN_EMAIL", "admin@example.org"),
            ("MEDESK_ADMIN_PASSWORD", "correct horse battery staple"),
            (
                "MEDESK_JWT_SECRET",
                "a-real-secret-that-is-long-enough-1234",
            ),
        ]))
        .unwrap();
        let printed = format!("{config:?}");
        assert!(printed.contains("admin@example.org"));
        assert!(!printed.contains("battery"));
        assert!(!printed.contains("a-real-secret"));
    }
}
