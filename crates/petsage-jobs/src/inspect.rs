//! Inspecting and retrying jobs, for `petsage-app jobs list` and `jobs retry`.

use serde::Serialize;

use petsage_db::Database;

/// One job as `jobs list` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    /// Its ID.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// Its queue.
    pub queue: String,
    /// `available`, `running`, `completed` or `discarded`.
    pub state: String,
    /// Attempts made so far.
    pub attempt: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// When it is (or was) due, Unix ms.
    pub run_at: i64,
    /// The last attempt's error, if one failed.
    pub last_error: Option<String>,
}

/// The newest `limit` jobs, in `state` if given, newest first.
pub async fn list(
    db: &Database,
    state: Option<&str>,
    limit: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    sqlx::query_as(
        "SELECT id, kind, queue, state, attempt, max_attempts, run_at, last_error FROM petsage_jobs \
         WHERE ($1 = '' OR state = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(state.unwrap_or(""))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Makes a discarded job due now with a fresh set of attempts; false if no
/// discarded job has this ID.
pub async fn retry(db: &Database, id: i64) -> Result<bool, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let done = sqlx::query(
        "UPDATE petsage_jobs SET state = 'available', attempt = 0, run_at = $1, finished_at = NULL \
         WHERE id = $2 AND state = 'discarded'",
    )
    .bind(crate::now_ms())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
