//! The queue's SQL: one statement per transition of a job, written once per
//! backend where they differ (PostgreSQL's `FOR UPDATE SKIP LOCKED` and
//! `pg_notify`), with times in Unix milliseconds.

use std::sync::Arc;

use petsage_db::{Backend, Database};
use sqlx::{AnyConnection, Row as _};

/// A job as the worker takes it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Claimed {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) queue: String,
    pub(crate) payload: String,
    pub(crate) attempt: i64,
    pub(crate) max_attempts: i64,
    pub(crate) run_at: i64,
}

/// A new job, as enqueued.
pub(crate) struct NewJob<'a> {
    pub(crate) kind: &'a str,
    pub(crate) queue: &'a str,
    pub(crate) payload: String,
    pub(crate) priority: i64,
    pub(crate) max_attempts: i64,
    pub(crate) run_at: i64,
    pub(crate) unique_key: Option<&'a str>,
    pub(crate) now: i64,
}

/// The channel instances listen on for new jobs (PostgreSQL).
pub(crate) const CHANNEL: &str = "petsage_jobs";

const PENDING: &str = "state IN ('available', 'running')";

/// The queue's statements for one backend. Clones share one turn for writes.
#[derive(Clone)]
pub(crate) struct Store {
    db: Database,
    enqueue: String,
    /// On SQLite, this store's writes take turns (see [`Store::write_turn`]).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// The claim statement for the kinds one worker runs.
pub(crate) struct ClaimStatement(String);

impl Store {
    /// Statements for `db`'s backend.
    pub(crate) fn new(db: Database) -> Self {
        let insert = format!(
            "INSERT INTO petsage_jobs (kind, queue, payload, priority, state, max_attempts, run_at, unique_key, created_at) \
             VALUES ($1, $2, $3, $4, 'available', $5, $6, $7, $8) \
             ON CONFLICT (unique_key) WHERE {PENDING} DO NOTHING RETURNING id"
        );
        let enqueue = match db.backend() {
            Backend::Sqlite => insert,
            // The notification is sent when the transaction commits, and
            // only for a job that was inserted.
            Backend::Postgres => format!(
                "WITH job AS ({insert}) SELECT id FROM job \
                 CROSS JOIN LATERAL (SELECT pg_notify('{CHANNEL}', '')) AS wake"
            ),
        };
        Self {
            db,
            enqueue,
            writer: Arc::default(),
        }
    }

    /// The statement that claims only jobs of `kinds` (checked names).
    pub(crate) fn claim_statement(&self, kinds: &[&str]) -> ClaimStatement {
        let kinds = if kinds.is_empty() {
            "''".to_owned()
        } else {
            kinds
                .iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // SQLite's planner, with no statistics, takes the `run_at` range of
        // `petsage_jobs_next` and sorts every waiting job for each claim;
        // the hint keeps it on `petsage_jobs_due`, already in claim order.
        // PostgreSQL's planner picks that index by itself.
        let (hint, lock) = match self.db.backend() {
            Backend::Sqlite => (" INDEXED BY petsage_jobs_due", ""),
            Backend::Postgres => ("", " FOR UPDATE SKIP LOCKED"),
        };
        ClaimStatement(format!(
            "UPDATE petsage_jobs SET state = 'running', attempt = attempt + 1, lease_owner = $1, leased_until = $2 \
             WHERE id IN (SELECT id FROM petsage_jobs{hint} WHERE state = 'available' AND run_at <= $3 AND kind IN ({kinds}) \
             ORDER BY priority, run_at, id LIMIT $4{lock}) \
             RETURNING id, kind, queue, payload, attempt, max_attempts, run_at"
        ))
    }

    /// On SQLite, one of this store's writes at a time. SQLite has one
    /// writer, so nothing is lost by waiting here, while connections racing
    /// for its lock are woken in no order and one can starve past the busy
    /// timeout ("database is locked"). PostgreSQL writes in parallel.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.db.backend() {
            Backend::Sqlite => Some(self.writer.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Inserts `job` on `conn` (inside the caller's transaction, if any);
    /// `None` when a pending job holds its unique key. Read with `fetch_all`:
    /// the `Any` driver's `fetch_optional` answers before PostgreSQL commits.
    pub(crate) async fn enqueue(
        &self,
        conn: &mut AnyConnection,
        job: NewJob<'_>,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(self.enqueue.as_str()))
            .bind(job.kind)
            .bind(job.queue)
            .bind(job.payload)
            .bind(job.priority)
            .bind(job.max_attempts)
            .bind(job.run_at)
            .bind(job.unique_key)
            .bind(job.now)
            .fetch_all(conn)
            .await
            .map(|mut ids| ids.pop())
    }

    /// Leases up to `limit` due jobs to `owner` until `leased_until`.
    pub(crate) async fn claim(
        &self,
        statement: &ClaimStatement,
        owner: &str,
        now: i64,
        leased_until: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        sqlx::query_as(sqlx::AssertSqlSafe(statement.0.as_str()))
            .bind(owner)
            .bind(leased_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await
    }

    /// Marks a job `owner` holds as completed; false if its lease was lost.
    pub(crate) async fn complete(
        &self,
        id: i64,
        owner: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        let done = sqlx::query(
            "UPDATE petsage_jobs SET state = 'completed', finished_at = $1, lease_owner = NULL, leased_until = NULL \
             WHERE id = $2 AND state = 'running' AND lease_owner = $3",
        )
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt: back to `available` at `retry_at`, or
    /// `discarded` when `retry_at` is `None`; false if the lease was lost.
    pub(crate) async fn fail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        let (state, run_at, finished_at) = match retry_at {
            Some(at) => ("available", at, None),
            None => ("discarded", now, Some(now)),
        };
        let done = sqlx::query(
            "UPDATE petsage_jobs SET state = $1, run_at = $2, finished_at = $3, last_error = $4, \
             lease_owner = NULL, leased_until = NULL \
             WHERE id = $5 AND state = 'running' AND lease_owner = $6",
        )
        .bind(state)
        .bind(run_at)
        .bind(finished_at)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease of every job `owner` is running.
    pub(crate) async fn heartbeat(
        &self,
        owner: &str,
        leased_until: i64,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        sqlx::query(
            "UPDATE petsage_jobs SET leased_until = $1 WHERE state = 'running' AND lease_owner = $2",
        )
        .bind(leased_until)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Jobs whose lease expired (their instance died) go back to the queue,
    /// or are discarded when that was their last attempt. Returns how many.
    pub(crate) async fn rescue(&self, now: i64) -> Result<u64, sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        let done = sqlx::query(
            "UPDATE petsage_jobs SET \
             state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END, \
             finished_at = CASE WHEN attempt >= max_attempts THEN $1 ELSE NULL END, \
             run_at = $1, last_error = 'its lease expired: the instance running it stopped or lost the database', \
             lease_owner = NULL, leased_until = NULL \
             WHERE state = 'running' AND leased_until < $1",
        )
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Puts back every job `owner` is still running, as not yet attempted
    /// (the drain ran out of time; the job did not fail).
    pub(crate) async fn release(&self, owner: &str, now: i64) -> Result<u64, sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        let done = sqlx::query(
            "UPDATE petsage_jobs SET state = 'available', attempt = attempt - 1, run_at = $1, \
             lease_owner = NULL, leased_until = NULL WHERE state = 'running' AND lease_owner = $2",
        )
        .bind(now)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// When the next waiting job is due, if any job waits.
    pub(crate) async fn next_due(&self) -> Result<Option<i64>, sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        sqlx::query_scalar("SELECT MIN(run_at) FROM petsage_jobs WHERE state = 'available'")
            .fetch_one(&mut *conn)
            .await
    }

    /// On PostgreSQL, refreshes the planner's statistics of the jobs table;
    /// false on SQLite, whose claim names its index instead.
    pub(crate) async fn analyze(&self) -> Result<bool, sqlx::Error> {
        if self.db.backend() != Backend::Postgres {
            return Ok(false);
        }
        let mut conn = self.db.acquire().await?;
        sqlx::query("ANALYZE petsage_jobs")
            .execute(&mut *conn)
            .await?;
        Ok(true)
    }

    /// Deletes completed jobs that finished before `before`.
    pub(crate) async fn prune(&self, before: i64) -> Result<u64, sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        let done =
            sqlx::query("DELETE FROM petsage_jobs WHERE state = 'completed' AND finished_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?;
        Ok(done.rows_affected())
    }

    /// Jobs by queue and state (`scheduled`: waiting, not yet due), and
    /// each queue's oldest due job's due time.
    pub(crate) async fn census(&self, now: i64) -> Result<Census, sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        let rows = sqlx::query(
            "SELECT queue, CASE WHEN state = 'available' AND run_at > $1 THEN 'scheduled' ELSE state END AS s, \
             COUNT(*), MIN(CASE WHEN state = 'available' AND run_at <= $1 THEN run_at END) \
             FROM petsage_jobs GROUP BY queue, s",
        )
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        let mut census = Census::default();
        for row in rows {
            let queue: String = row.try_get(0)?;
            let state: String = row.try_get(1)?;
            let count: i64 = row.try_get(2)?;
            let oldest: Option<i64> = row.try_get(3)?;
            if let Some(oldest) = oldest {
                census.oldest_due.push((queue.clone(), oldest));
            }
            census.counts.push((queue, state, count));
        }
        Ok(census)
    }

    /// Makes `name` exist with `expression`; a changed expression moves its next occurrence to `next_at`.
    pub(crate) async fn declare_schedule(
        &self,
        name: &str,
        expression: &str,
        next_at: i64,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        sqlx::query(
            "INSERT INTO petsage_schedules (name, expression, next_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, next_at = excluded.next_at \
             WHERE petsage_schedules.expression <> excluded.expression",
        )
        .bind(name)
        .bind(expression)
        .bind(next_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Each schedule's next occurrence.
    pub(crate) async fn schedules(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let mut conn = self.db.acquire().await?;
        sqlx::query_as("SELECT name, next_at FROM petsage_schedules")
            .fetch_all(&mut *conn)
            .await
    }

    /// Moves `name` from occurrence `due` to `next` and enqueues `job` for
    /// `due`, in one transaction; false if another instance moved it first.
    pub(crate) async fn take_occurrence(
        &self,
        name: &str,
        due: i64,
        next: i64,
        job: NewJob<'_>,
    ) -> Result<bool, sqlx::Error> {
        use sqlx::Connection as _;
        let _turn = self.write_turn().await;
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        let moved = sqlx::query(
            "UPDATE petsage_schedules SET next_at = $1 WHERE name = $2 AND next_at = $3",
        )
        .bind(next)
        .bind(name)
        .bind(due)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        self.enqueue(&mut tx, job).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// What the queue holds, for the metrics and the `jobs` check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Census {
    /// `(queue, state, jobs)`.
    pub(crate) counts: Vec<(String, String, i64)>,
    /// `(queue, due time of its oldest due job)`.
    pub(crate) oldest_due: Vec<(String, i64)>,
}
