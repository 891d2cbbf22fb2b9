//! PetSage's database platform: the one pool every feature that asks shares,
//! its settings, each feature's embedded migrations, the `database` health
//! check, and the mapping of database failures to problems.
//!
//! The database is embedded SQLite (a file in `--data-dir`) unless
//! `--database-url` names PostgreSQL. Features write their queries once, with
//! `$1`-style placeholders, against sqlx's `Any` driver, and ship one set of
//! migrations per backend (`migrations/sqlite/`, `migrations/postgres/`).
//! Nothing here opens a connection or creates a file until a feature asks for
//! the database and the app runs the start steps.

mod error;
mod metrics;
mod settings;
pub mod testing;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use log::info;
use petsage_core::{Context, HealthCheck};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection as _, Executor as _};

pub use error::{Error, Unavailable, problem};
pub use settings::{DatabaseSettings, DatabaseUrl};

/// Embeds the calling crate's migrations: `migrations/sqlite/` and `migrations/postgres/`.
#[macro_export]
macro_rules! migrations {
    () => {
        $crate::Migrations::new(
            ::sqlx::migrate!("migrations/sqlite"),
            ::sqlx::migrate!("migrations/postgres"),
        )
    };
}

/// Which database the URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite: a file, no server.
    Sqlite,
    /// PostgreSQL: a server, shared by every instance.
    Postgres,
}

/// One feature's migrations, one set per backend, embedded in the binary.
pub struct Migrations {
    sqlite: Migrator,
    postgres: Migrator,
}

impl Migrations {
    /// The SQLite and PostgreSQL migrations of one feature (use [`migrations!`]).
    pub fn new(sqlite: Migrator, postgres: Migrator) -> Self {
        Self { sqlite, postgres }
    }

    fn take(self, backend: Backend) -> Migrator {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }
}

/// The database a feature reads and writes: a handle on the shared pool.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    /// Taken from only through [`Database::acquire`], which counts for `/metrics`.
    pool: AnyPool,
    /// What `acquire` counted: waits and timeouts of this pool.
    counters: Arc<metrics::PoolCounters>,
    /// How to open a connection: the pool's, and the start step's own one.
    options: AnyConnectOptions,
    backend: Backend,
    settings: DatabaseSettings,
    /// Tables of migrations already added, by feature: a feature's tables are its own.
    features: Mutex<Vec<&'static str>>,
}

impl Database {
    /// The database, shared by every feature that asks, set up on the first ask.
    ///
    /// The first ask adds the `database` health check (critical), a start step
    /// that connects (creating the SQLite file and its folder) and a stop step
    /// that closes the pool. Settings come from the [`DatabaseSettings`] the app
    /// put in the context, or the defaults.
    pub fn from_context(ctx: &mut Context) -> Result<Self, String> {
        if let Some(db) = ctx.get::<Database>() {
            return Ok(db.clone());
        }
        let settings = match ctx.get::<DatabaseSettings>() {
            Some(settings) => settings.clone(),
            None => DatabaseSettings::default(),
        };
        let db = Self::lazy(settings)?;
        ctx.add_health_check(db.health_check());
        ctx.add_metrics(Box::new(metrics::PoolCollector::new(
            db.pool().clone(),
            Arc::clone(&db.inner.counters),
        )));
        let started = db.clone();
        ctx.on_start_shared("database: connect", move || async move {
            started.connect().await
        });
        let stopped = db.clone();
        ctx.on_stop_shared("database: close the pool", move || async move {
            stopped.close().await;
        });
        ctx.insert(db.clone());
        Ok(db)
    }

    /// A pool for `settings` that opens nothing until first used.
    fn lazy(settings: DatabaseSettings) -> Result<Self, String> {
        sqlx::any::install_default_drivers();
        let url = settings.url();
        let backend = url.backend();
        let options: AnyConnectOptions = url
            .as_str()
            .parse()
            .map_err(|err| format!("database URL: {err}"))?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(settings.database_max_connections)
            .acquire_timeout(settings.database_acquire_timeout)
            // Keep no connection longer than the server may: a restarted or
            // failed-over PostgreSQL is picked up without a restart.
            .idle_timeout(Duration::from_secs(60))
            .max_lifetime(Duration::from_secs(30 * 60));
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool: pool_options.connect_lazy_with(options.clone()),
                counters: Arc::default(),
                options,
                backend,
                settings,
                features: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The pool, for the platform's own uncounted work (migrations, the
    /// health check, the metrics); features take connections with [`Database::acquire`].
    fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Which backend the URL names.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The settings the pool was made with.
    pub fn settings(&self) -> &DatabaseSettings {
        &self.inner.settings
    }

    /// Adds a start step that applies the feature's `migrations` (or, with
    /// `--migrate false`, checks they are applied). Call it from `Feature::build`.
    ///
    /// Each feature keeps its own record of applied migrations
    /// (`_petsage_migrations_<feature>`), so features version their tables independently.
    pub fn migrate(&self, ctx: &mut Context, migrations: Migrations) -> Result<(), String> {
        let feature = ctx.feature();
        if feature.is_empty() {
            return Err("migrations belong to a feature: call migrate from Feature::build".into());
        }
        self.add_migrations(ctx, feature, &format!("feature {feature}"), migrations)
    }

    /// Adds the start step that applies a platform's own `migrations` (the
    /// jobs tables), recorded as `_petsage_migrations_<name>`, once however
    /// many features ask for the platform.
    pub fn migrate_platform(
        &self,
        ctx: &mut Context,
        name: &'static str,
        migrations: Migrations,
    ) -> Result<(), String> {
        self.add_migrations(ctx, name, name, migrations)
    }

    /// Adds the start step for `name`'s migrations, labelled `owner` in the start log.
    fn add_migrations(
        &self,
        ctx: &mut Context,
        name: &'static str,
        owner: &str,
        migrations: Migrations,
    ) -> Result<(), String> {
        {
            let mut added = self
                .inner
                .features
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if added.contains(&name) {
                return Err(format!("the migrations of {name} are added twice"));
            }
            added.push(name);
        }
        let mut migrator = migrations.take(self.backend());
        migrator.dangerous_set_table_name(migrations_table(name));
        let db = self.clone();
        let apply = self.inner.settings.migrate;
        let verb = if apply { "apply" } else { "check" };
        ctx.on_start_shared(format!("{owner}: {verb} migrations"), move || async move {
            if apply {
                db.apply(&migrator).await
            } else {
                db.check_current(&migrator).await
            }
        });
        Ok(())
    }

    async fn connect(&self) -> Result<(), String> {
        if let (Backend::Sqlite, Some(dir)) = (self.backend(), self.settings().sqlite_dir()) {
            std::fs::create_dir_all(&dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        // One connection of its own, so the line names the cause (refused,
        // unknown host, bad password), not only the pool's timeout.
        let reach = async {
            let mut conn = sqlx::AnyConnection::connect_with(&self.inner.options).await?;
            conn.execute("SELECT 1").await?;
            conn.close().await
        };
        let timeout = self.settings().database_acquire_timeout;
        let unreachable =
            |why: String| format!("cannot reach {}: {why}", self.settings().url().redacted());
        match actix_web::rt::time::timeout(timeout, reach).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(unreachable(err.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} ms (--database-acquire-timeout)",
                    timeout.as_millis()
                )));
            }
        }
        info!(
            "database: connected to {} (pool of at most {}, acquire timeout {} ms)",
            self.settings().url().redacted(),
            self.settings().database_max_connections,
            self.settings().database_acquire_timeout.as_millis()
        );
        Ok(())
    }

    async fn apply(&self, migrator: &Migrator) -> Result<(), String> {
        let before = self.applied(migrator).await.unwrap_or_default();
        migrator.run(self.pool()).await.map_err(|err| {
            let mut line = err.to_string();
            if let Some(source) = std::error::Error::source(&err) {
                let _ = write!(line, ": {source}");
            }
            line.replace('\n', " ")
        })?;
        let applied: Vec<i64> = migrator
            .iter()
            .map(|m| m.version)
            .filter(|v| !before.contains(v))
            .collect();
        info!(
            "migrations in {}: {} applied now, {} already",
            migrator.table_name,
            applied.len(),
            before.len()
        );
        Ok(())
    }

    /// The versions recorded as applied in the migrator's table (none if it does not exist).
    async fn applied(&self, migrator: &Migrator) -> Result<Vec<i64>, sqlx::Error> {
        let exists = match self.backend() {
            Backend::Sqlite => {
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
            }
            Backend::Postgres => {
                "SELECT count(*) FROM information_schema.tables WHERE table_name = $1 AND table_schema = current_schema()"
            }
        };
        let count: i64 = sqlx::query_scalar(exists)
            .bind(migrator.table_name.as_ref())
            .fetch_one(self.pool())
            .await?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT version FROM {} WHERE success ORDER BY version",
            migrator.table_name
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await
    }

    async fn check_current(&self, migrator: &Migrator) -> Result<(), String> {
        let applied = self
            .applied(migrator)
            .await
            .map_err(|err| format!("cannot read {}: {err}", migrator.table_name))?;
        let missing: Vec<String> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| format!("{} ({})", m.version, m.description))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the schema is not current (--migrate false): migrations {} are not applied; run `petsage-app migrate` first",
                missing.join(", ")
            ))
        }
    }

    /// A connection from the pool for one query (or a transaction): the one
    /// way a feature takes a connection. When the pool is at its limit with
    /// none idle, the wait is counted and timed for `/metrics`; past the
    /// acquire timeout it fails with `PoolTimedOut` (a 503), counted too.
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        let pool = self.pool();
        let saturated = pool.num_idle() == 0 && pool.size() >= pool.options().get_max_connections();
        let connection = if saturated {
            let started = std::time::Instant::now();
            let connection = pool.acquire().await;
            self.inner.counters.count_wait(started.elapsed());
            connection
        } else {
            pool.acquire().await
        };
        if let Err(sqlx::Error::PoolTimedOut) = connection {
            self.inner.counters.count_timeout();
        }
        connection
    }

    /// The critical `database` check: one cheap round trip.
    fn health_check(&self) -> HealthCheck {
        let pool = self.pool().clone();
        HealthCheck::critical("database", move || {
            let pool = pool.clone();
            async move { ping(&pool).await.map_err(|err| err.to_string()) }
        })
        .component_type("datastore")
    }

    async fn close(&self) {
        let closing = self.pool().close();
        if actix_web::rt::time::timeout(Duration::from_secs(5), closing)
            .await
            .is_err()
        {
            log::warn!("database: the pool did not close within 5 s");
        }
    }
}

/// What every SQLite connection is set up with (see docs/architecture.md, Database):
/// WAL lets readers run beside the one writer; `synchronous = FULL` syncs the
/// WAL at every commit, so an acknowledged write survives `kill -9` and power
/// loss; a writer waits up to 5 s for the lock instead of failing at once.
pub const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

async fn ping(pool: &AnyPool) -> Result<(), sqlx::Error> {
    pool.execute("SELECT 1").await.map(drop)
}

/// Each feature's record of applied migrations.
fn migrations_table(feature: &str) -> String {
    format!("_petsage_migrations_{}", feature.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    /// The pool's series as a scrape shows them.
    fn scrape(db: &Database) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(metrics::PoolCollector::new(
            db.pool().clone(),
            Arc::clone(&db.inner.counters),
        )));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        text
    }

    #[actix_web::test]
    async fn each_pool_counts_its_own_waits_and_timeouts_in_acquire() {
        let file = testing::TestDatabase::sqlite();
        let settings = DatabaseSettings {
            database_max_connections: 1,
            database_acquire_timeout: Duration::from_millis(100),
            ..file.settings()
        };
        let (busy, other) = (
            Database::lazy(settings.clone()).expect("valid"),
            Database::lazy(settings).expect("valid"),
        );
        busy.connect().await.expect("connects");
        let held = busy.acquire().await.expect("the one connection");
        let err = busy.acquire().await.expect_err("the pool is exhausted");
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err}");
        drop(held);
        // Answering the failure counts nothing more: the count is acquire's.
        assert_eq!(problem(&err).status, 503);

        let text = scrape(&busy);
        for line in [
            "petsage_db_pool_acquire_waits_total 1\n",
            "petsage_db_pool_acquire_timeouts_total 1\n",
            "petsage_db_pool_max_connections 1\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        let text = scrape(&other);
        for line in [
            "petsage_db_pool_acquire_waits_total 0\n",
            "petsage_db_pool_acquire_timeouts_total 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        busy.close().await;
        other.close().await;
    }
}
