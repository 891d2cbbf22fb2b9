//! Databases for tests: a fresh SQLite file, or a fresh PostgreSQL database
//! created on the server at `PETSAGE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use petsage_core::Context;
use sqlx::{Connection as _, Executor as _};

use crate::{DatabaseSettings, DatabaseUrl};

/// The server tests create their databases on.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of one test's own, removed when dropped.
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin: String, name: String },
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

impl TestDatabase {
    /// A SQLite file in a fresh temporary folder.
    pub fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(unique("petsage_test"));
        let url = format!("sqlite://{}/test.db?mode=rwc", dir.display());
        Self {
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new, empty PostgreSQL database; panics with the way to get a server if none answers.
    pub fn postgres() -> Self {
        let admin = postgres_admin_url();
        let name = unique("petsage_test");
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("PETSAGE_TEST_POSTGRES_URL has no database part: {admin}"),
        };
        admin_sql(&admin, &format!("CREATE DATABASE {name}")).unwrap_or_else(|err| {
            panic!(
                "cannot create a test database on {admin}: {err}\n\
                 start PostgreSQL (cargo xtask ci does) or set PETSAGE_TEST_POSTGRES_URL"
            )
        });
        Self {
            url,
            cleanup: Cleanup::Postgres { admin, name },
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Settings that point at this database.
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            database_url: Some(DatabaseUrl::parse(&self.url).unwrap_or_else(|e| panic!("{e}"))),
            ..DatabaseSettings::default()
        }
    }

    /// A context holding this database's settings, as the app would build it.
    pub fn context(&self) -> Context {
        let mut ctx = Context::new();
        ctx.insert(self.settings());
        ctx
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin, name } => {
                let _ = admin_sql(
                    admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
            }
        }
    }
}

/// The URL of the server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("PETSAGE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Runs one statement on `url`, on a thread and runtime of its own, so it
/// works from inside an async test and from `Drop`.
pub fn admin_sql(url: &str, sql: &str) -> Result<(), String> {
    let sql = sql.to_owned();
    on_own_runtime(url, |mut conn| async move {
        conn.execute(sqlx::AssertSqlSafe(sql)).await?;
        let _ = conn.close().await;
        Ok(())
    })
}

/// Makes PostgreSQL at `url` refuse, at commit, every row written to `table`
/// for which `when` (a condition on `NEW`) holds: a deferred constraint
/// trigger raises after the statement has already returned its rows.
pub fn refuse_at_commit(url: &str, table: &str, when: &str) -> Result<(), String> {
    admin_sql(
        url,
        &format!(
            "CREATE FUNCTION refuse_at_commit_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF {when} THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$"
        ),
    )?;
    admin_sql(
        url,
        &format!(
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON {table} \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit_{table}()"
        ),
    )
}

/// The one number `sql` selects on `url` (`SELECT count(*) …`), on SQLite or PostgreSQL.
pub fn query_i64(url: &str, sql: &str) -> Result<i64, String> {
    let sql = sql.to_owned();
    on_own_runtime(url, |mut conn| async move {
        let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(value)
    })
}

/// Runs `f` on a connection of its own to `url` (SQLite or PostgreSQL), on a
/// thread and runtime of its own, so it works from inside an async test,
/// from `Drop` and from plain threads.
pub fn on_own_runtime<T, F, Fut>(url: &str, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(sqlx::AnyConnection) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    sqlx::any::install_default_drivers();
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = actix_web::rt::Runtime::new().map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let conn = sqlx::AnyConnection::connect(&url)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            f(conn).await.map_err(|e| e.to_string())
        })
    })
    .join()
    .map_err(|_| "the database thread panicked".to_owned())?
}
