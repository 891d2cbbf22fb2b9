//! A test-only feature with background jobs (`PETSAGE_TEST_CHORES=on`): a
//! chore job that records each run (instance, attempt, due and start time)
//! in `chore_runs`, and can be told to sleep or to fail its first attempts;
//! a no-op job (for the bench); a schedule, `test-tick`, every second
//! (unless `PETSAGE_TEST_CHORES_TICK=off`); and public routes that enqueue
//! chores, alone or in the same transaction as a write that commits or
//! rolls back. The jobs tests count its rows to find lost and repeated runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::HttpResponse;
use actix_web::web::{Data, Json};
use petsage_core::{Context, Feature, NoSettings, Routes, route};
use petsage_db::{Database, Error};
use petsage_jobs::{Handler, Job, Jobs, Options, Run, Schedule};
use serde::{Deserialize, Serialize};
use sqlx::Connection as _;
use utoipa::ToSchema;

/// One chore: recorded in `chore_runs` when it succeeds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Chore {
    /// What the run is recorded as.
    pub label: String,
    /// How long each attempt takes, in milliseconds.
    #[serde(default)]
    pub sleep_ms: u64,
    /// How many first attempts fail.
    #[serde(default)]
    pub fail_times: u32,
}

impl Job for Chore {
    const KIND: &'static str = "test.chore";
}

/// A job that does nothing: what the bench's throughput rows run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "test.noop";
}

/// How many no-op jobs to enqueue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopCount {
    /// How many, enqueued in one transaction.
    pub count: u32,
}

/// What to enqueue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enqueue {
    /// How many copies of the chore, enqueued in one transaction.
    pub count: u32,
    /// The chore.
    pub chore: Chore,
}

/// One write with its job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// The trial's number, written to `chore_writes` and into the job's label.
    pub trial: i64,
    /// Roll the transaction back instead of committing it.
    pub rollback: bool,
}

/// The instance's name in `chore_runs`: `PETSAGE_TEST_INSTANCE`, or the PID.
fn instance() -> String {
    std::env::var("PETSAGE_TEST_INSTANCE").unwrap_or_else(|_| std::process::id().to_string())
}

async fn run_chore(db: Database, chore: Chore, run: Run) -> Result<(), String> {
    let started = SystemTime::now();
    if run.attempt <= chore.fail_times {
        return Err(format!(
            "attempt {} of {} fails",
            run.attempt, chore.fail_times
        ));
    }
    if chore.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(chore.sleep_ms)).await;
    }
    let ms = |at: SystemTime| {
        at.duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    let mut conn = db.acquire().await.map_err(|e| e.to_string())?;
    sqlx::query(
        "INSERT INTO chore_runs (job_id, attempt, instance, due_at, ran_at, label) VALUES ($1, $2, $3, $4, $5, $6)",
    )
        .bind(run.id)
        .bind(i64::from(run.attempt))
        .bind(instance())
        .bind(ms(run.due))
        .bind(ms(started))
        .bind(chore.label)
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Enqueues `count` chores in one transaction.
#[utoipa::path(post, path = "/test/chores", operation_id = "test_chores_enqueue", tag = "Test",
    request_body = Enqueue,
    responses((status = 204, description = "Enqueued")))]
async fn enqueue(jobs: Data<Jobs>, body: Json<Enqueue>) -> Result<HttpResponse, Error> {
    enqueue_copies(&jobs, &body.chore, body.count).await
}

/// Enqueues `count` copies of `job` in one transaction: 204.
async fn enqueue_copies<J: Job>(jobs: &Jobs, job: &J, count: u32) -> Result<HttpResponse, Error> {
    let mut conn = jobs.database().acquire().await?;
    let mut tx = conn.begin().await?;
    for _ in 0..count {
        jobs.enqueue(&mut tx, job, Options::new()).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Enqueues `count` no-op jobs in one transaction.
#[utoipa::path(post, path = "/test/chores/noop", operation_id = "test_chores_noop", tag = "Test",
    request_body = NoopCount,
    responses((status = 204, description = "Enqueued")))]
async fn noop(jobs: Data<Jobs>, body: Json<NoopCount>) -> Result<HttpResponse, Error> {
    enqueue_copies(&jobs, &Noop {}, body.count).await
}

/// Writes a row to `chore_writes` and enqueues its chore in the same transaction.
#[utoipa::path(post, path = "/test/chores/trial", operation_id = "test_chores_trial", tag = "Test",
    request_body = Trial,
    responses((status = 204, description = "Committed or rolled back, as asked")))]
async fn trial(jobs: Data<Jobs>, body: Json<Trial>) -> Result<HttpResponse, Error> {
    let mut conn = jobs.database().acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT INTO chore_writes (trial) VALUES ($1)")
        .bind(body.trial)
        .execute(&mut *tx)
        .await?;
    let chore = Chore {
        label: format!("trial-{}", body.trial),
        sleep_ms: 0,
        fail_times: 0,
    };
    jobs.enqueue(&mut tx, &chore, Options::new()).await?;
    if body.rollback {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The test-only chores feature.
pub struct Chores {
    jobs: Jobs,
}

impl Feature for Chores {
    const NAME: &'static str = "test-chores";
    type Settings = NoSettings;

    fn build(_: NoSettings, ctx: &mut Context) -> Result<Self, String> {
        let jobs = Jobs::from_context(ctx)?;
        let db = jobs.database().clone();
        db.migrate(ctx, petsage_db::migrations!())?;
        jobs.register(
            Handler::new(move |chore: Chore, run: Run| run_chore(db.clone(), chore, run))
                .backoff(Duration::from_millis(20)),
        )?;
        jobs.register(Handler::new(|_: Noop, _| async { Ok::<_, String>(()) }))?;
        if std::env::var("PETSAGE_TEST_CHORES_TICK").as_deref() != Ok("off") {
            let tick = Chore {
                label: "tick".into(),
                sleep_ms: 0,
                fail_times: 0,
            };
            jobs.schedule(Schedule::new("test-tick", "* * * * * *", &tick)?)?;
        }
        Ok(Self { jobs })
    }

    fn routes(&self) -> Routes {
        Routes::new()
            .data(Data::new(self.jobs.clone()))
            .route(route!(enqueue).public())
            .route(route!(trial).public())
            .route(route!(noop).public())
    }
}
