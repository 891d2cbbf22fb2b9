//! The database settings: flags with environment fallbacks, under the
//! `Database` heading of `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgAction;
use petsage_core::settings::{parse_bool, parse_duration};

/// Where the database is and how the pool behaves.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseSettings {
    /// Database URL: postgres://USER@HOST:PORT/DB, or sqlite://PATH [default: SQLite at DATA_DIR/petsage.db].
    #[arg(long, env = "PETSAGE_DATABASE_URL", value_name = "URL", value_parser = DatabaseUrl::parse)]
    pub database_url: Option<DatabaseUrl>,

    /// Folder of the embedded SQLite database, created on first use.
    #[arg(
        long,
        env = "PETSAGE_DATA_DIR",
        value_name = "DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// Most database connections this instance opens.
    #[arg(long, env = "PETSAGE_DATABASE_MAX_CONNECTIONS", value_name = "N", default_value = "10", value_parser = parse_connections)]
    pub database_max_connections: u32,

    /// Longest a request waits for a connection; then it gets a 503 with Retry-After.
    #[arg(long, env = "PETSAGE_DATABASE_ACQUIRE_TIMEOUT", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub database_acquire_timeout: Duration,

    /// Apply pending migrations at start; with false, refuse to start unless the schema is current.
    #[arg(long, env = "PETSAGE_MIGRATE", value_name = "true|false", default_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub migrate: bool,
}

impl Default for DatabaseSettings {
    /// The flags' own defaults, with no flag and no environment variable set.
    fn default() -> Self {
        petsage_core::settings::defaults()
    }
}

impl DatabaseSettings {
    /// The URL in force: the setting, or the SQLite file in the data folder.
    pub fn url(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| {
            let file = self.data_dir.join("petsage.db");
            DatabaseUrl {
                url: format!("sqlite://{}?mode=rwc", file.display()),
                backend: crate::Backend::Sqlite,
            }
        })
    }

    /// The folder the SQLite file lives in, to create before connecting.
    pub(crate) fn sqlite_dir(&self) -> Option<PathBuf> {
        match &self.database_url {
            None => Some(self.data_dir.clone()),
            Some(url) => {
                let path = url.url.strip_prefix("sqlite:")?.trim_start_matches("//");
                let path = path.split('?').next().unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return None;
                }
                PathBuf::from(path).parent().map(PathBuf::from)
            }
        }
    }
}

/// A database URL that names a backend PetSage supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: crate::Backend,
}

impl DatabaseUrl {
    /// `postgres://…`, `postgresql://…` or `sqlite:…`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let backend = if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            crate::Backend::Postgres
        } else if value.starts_with("sqlite:") {
            crate::Backend::Sqlite
        } else {
            return Err("expected postgres://USER@HOST:PORT/DB or sqlite://PATH".to_owned());
        };
        Ok(Self {
            url: value.to_owned(),
            backend,
        })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Which backend it names.
    pub fn backend(&self) -> crate::Backend {
        self.backend
    }

    /// The URL without its password, for logs.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return self.url.clone();
        };
        match rest.split_once('@') {
            Some((user, host)) if user.contains(':') => {
                let user = user.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            _ => self.url.clone(),
        }
    }
}

fn parse_connections(value: &str) -> Result<u32, String> {
    value
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| "expected a whole number of at least 1".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_flags_defaults() {
        let settings = DatabaseSettings::default();
        assert_eq!(settings.database_url, None);
        assert_eq!(settings.data_dir, PathBuf::from("./data"));
        assert_eq!(settings.database_max_connections, 10);
        assert_eq!(settings.database_acquire_timeout, Duration::from_secs(2));
        assert!(settings.migrate);
    }

    #[test]
    fn urls_name_their_backend_and_hide_passwords() {
        let pg = DatabaseUrl::parse("postgres://app:secret@db:5432/petsage").expect("valid");
        assert_eq!(pg.backend(), crate::Backend::Postgres);
        assert_eq!(pg.redacted(), "postgres://app:***@db:5432/petsage");
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        let settings = DatabaseSettings::default();
        assert_eq!(
            settings.url().as_str(),
            "sqlite://./data/petsage.db?mode=rwc"
        );
        assert_eq!(settings.sqlite_dir(), Some(PathBuf::from("./data")));
        let file = DatabaseSettings {
            database_url: Some(
                DatabaseUrl::parse("sqlite:///var/lib/petsage/p.db").expect("valid"),
            ),
            ..DatabaseSettings::default()
        };
        assert_eq!(file.sqlite_dir(), Some(PathBuf::from("/var/lib/petsage")));
    }
}
