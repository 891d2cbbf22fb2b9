//! PetSage's background jobs: durable work that features enqueue with their
//! writes, run by every instance that has jobs on, in the database the
//! service already has (SQLite on one machine, PostgreSQL for many).
//!
//! A feature asks for [`Jobs::from_context`] in its `build`, registers a
//! [`Handler`] per job type ([`Job`]) and any recurring [`Schedule`], and
//! enqueues with [`Jobs::enqueue`] on its own connection or transaction: the
//! job exists if and only if the write commits. Delivery is at least once:
//! a job is leased while it runs, and a job whose instance died runs again
//! once its lease expires. docs/architecture.md explains the lease, retry
//! and schedule model.

pub mod inspect;
mod metrics;
mod schedule;
mod settings;
mod store;
mod worker;

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petsage_core::{Context, HealthCheck};
use petsage_db::Database;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

pub use schedule::Schedule;
pub use settings::JobsSettings;

use crate::metrics::JobMetrics;
use crate::store::{NewJob, Store};

/// A type of job: a serde payload with a stable kind name.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The kind stored with each job, `<feature>.<name>` in lowercase
    /// (`notes.index`): keep it stable, queued jobs are found by it.
    const KIND: &'static str;
}

/// How one job is enqueued: its queue, priority, delay and unique key.
#[derive(Debug, Clone)]
pub struct Options {
    queue: String,
    priority: i64,
    run_at: Option<SystemTime>,
    unique_key: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            queue: "default".into(),
            priority: 0,
            run_at: None,
            unique_key: None,
        }
    }
}

impl Options {
    /// Queue `default`, priority 0, due now, no unique key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The queue the job waits in (a label for metrics and inspection).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Lower runs first; 0 by default.
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// Due this long from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(SystemTime::now() + delay);
        self
    }

    /// Due at `at`.
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self
    }

    /// While a job with this key is pending (waiting or running), enqueueing another is a no-op.
    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job, with its ID.
    New(i64),
    /// Nothing: a pending job already holds the unique key.
    Duplicate,
}

/// One attempt at a job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The job's ID.
    pub id: i64,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The attempt after which a failure discards the job.
    pub max_attempts: u32,
    /// The queue it waited in.
    pub queue: String,
    /// When it was due (a schedule's occurrence, for a scheduled job).
    pub due: SystemTime,
}

type RunFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Erased = Arc<dyn Fn(&str, Run) -> RunFuture + Send + Sync>;

/// A job type's handler and its retry rules, registered in a feature's `build`.
pub struct Handler {
    kind: &'static str,
    run: Erased,
    max_attempts: Option<u32>,
    timeout: Option<Duration>,
    backoff: Duration,
}

impl Handler {
    /// Runs `handler` for each job of type `J`; an `Err` (or a panic, or
    /// the timeout) fails the attempt, which is retried with backoff.
    pub fn new<J, F, Fut, E>(handler: F) -> Self
    where
        J: Job,
        F: Fn(J, Run) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let handler = Arc::new(handler);
        let run: Erased = Arc::new(move |payload: &str, run: Run| {
            let parsed = serde_json::from_str::<J>(payload);
            let handler = Arc::clone(&handler);
            Box::pin(async move {
                let job = parsed.map_err(|err| format!("the payload does not parse: {err}"))?;
                handler(job, run).await.map_err(|err| err.to_string())
            })
        });
        Self {
            kind: J::KIND,
            run,
            max_attempts: None,
            timeout: None,
            backoff: Duration::from_secs(1),
        }
    }

    /// Attempts before a failing job is discarded [default: `--jobs-max-attempts`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Longest one attempt may run [default: `--jobs-timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The first retry's delay (1 s by default); each later one doubles, up to an hour, with jitter.
    pub fn backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }
}

/// A registered handler with its rules resolved against the settings.
struct Kind {
    run: Erased,
    max_attempts: u32,
    timeout: Duration,
    backoff: Duration,
}

/// The jobs platform: shared by every feature that asks, set up on the first ask.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// The queue's statements, shared by enqueues, the worker and the scheduler
    /// so that on SQLite their writes take turns.
    store: Store,
    settings: JobsSettings,
    kinds: Mutex<HashMap<&'static str, Arc<Kind>>>,
    schedules: Mutex<Vec<Schedule>>,
    metrics: Arc<JobMetrics>,
    /// Wakes this instance's worker when a job is enqueued here.
    wake: Arc<tokio::sync::Notify>,
    /// Set once the worker took the handlers: no more can be registered.
    sealed: Mutex<bool>,
}

impl Jobs {
    /// The jobs platform, shared by every feature that asks, set up on the first ask.
    ///
    /// The first ask takes the database, adds the jobs tables' migrations,
    /// the non-critical `jobs` check and the jobs series, and (unless
    /// `--jobs false`) the worker and the scheduler as background services.
    /// Settings come from the [`JobsSettings`] the app put in the context,
    /// or the defaults.
    pub fn from_context(ctx: &mut Context) -> Result<Self, String> {
        if let Some(jobs) = ctx.get::<Jobs>() {
            return Ok(jobs.clone());
        }
        let settings = ctx.get::<JobsSettings>().cloned().unwrap_or_default();
        let db = Database::from_context(ctx)?;
        db.migrate_platform(ctx, "jobs", petsage_db::migrations!())?;
        let jobs = Self {
            inner: Arc::new(Inner {
                store: Store::new(db.clone()),
                db,
                settings,
                kinds: Mutex::default(),
                schedules: Mutex::default(),
                metrics: Arc::default(),
                wake: Arc::default(),
                sealed: Mutex::new(false),
            }),
        };
        ctx.add_metrics(Box::new(metrics::Collector::new(Arc::clone(
            &jobs.inner.metrics,
        ))));
        if jobs.inner.settings.jobs {
            ctx.add_health_check(jobs.health_check());
            let worker = jobs.clone();
            ctx.run_in_background("jobs: worker", move |stopping| {
                worker::run(worker, stopping)
            });
            let scheduler = jobs.clone();
            ctx.run_in_background("jobs: scheduler", move |stopping| {
                schedule::run(scheduler, stopping)
            });
        }
        ctx.insert(jobs.clone());
        Ok(jobs)
    }

    /// Registers the handler of one job type; call it from `Feature::build`.
    pub fn register(&self, handler: Handler) -> Result<(), String> {
        check_name("job kind", handler.kind)?;
        if *self
            .inner
            .sealed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            return Err(format!(
                "job kind {}: handlers are registered in Feature::build, before the worker starts",
                handler.kind
            ));
        }
        let settings = &self.inner.settings;
        let kind = Kind {
            run: handler.run,
            max_attempts: handler
                .max_attempts
                .unwrap_or_else(|| self.default_max_attempts()),
            timeout: handler.timeout.unwrap_or(settings.jobs_timeout),
            backoff: handler.backoff,
        };
        let mut kinds = self
            .inner
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if kinds.insert(handler.kind, Arc::new(kind)).is_some() {
            return Err(format!("job kind {} has two handlers", handler.kind));
        }
        Ok(())
    }

    /// Declares a recurring schedule; call it from `Feature::build`.
    pub fn schedule(&self, schedule: Schedule) -> Result<(), String> {
        check_name("schedule", &schedule.name)?;
        let mut schedules = self
            .inner
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if schedules.iter().any(|s| s.name == schedule.name) {
            return Err(format!("schedule {} is declared twice", schedule.name));
        }
        schedules.push(schedule);
        Ok(())
    }

    /// Enqueues `job` on `conn`: inside the caller's transaction, the job
    /// exists if and only if the transaction commits.
    pub async fn enqueue<J: Job>(
        &self,
        conn: &mut AnyConnection,
        job: &J,
        options: Options,
    ) -> Result<Enqueued, sqlx::Error> {
        let payload =
            serde_json::to_string(job).map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
        let max_attempts = self.max_attempts(J::KIND);
        let now = now_ms();
        let id = self
            .inner
            .store
            .enqueue(
                conn,
                NewJob {
                    kind: J::KIND,
                    queue: &options.queue,
                    payload,
                    priority: options.priority,
                    max_attempts,
                    run_at: options.run_at.map_or(now, to_ms),
                    unique_key: options.unique_key.as_deref(),
                    now,
                },
            )
            .await?;
        // On SQLite a worker that wakes before the caller commits waits for
        // the write lock, then sees the job; on PostgreSQL `pg_notify`
        // wakes every instance at commit.
        self.inner.wake.notify_one();
        Ok(id.map_or(Enqueued::Duplicate, Enqueued::New))
    }

    /// Enqueues `job` on a connection of its own (outside any transaction).
    pub async fn enqueue_now<J: Job>(
        &self,
        job: &J,
        options: Options,
    ) -> Result<Enqueued, sqlx::Error> {
        let mut conn = self.inner.db.acquire().await?;
        self.enqueue(&mut conn, job, options).await
    }

    /// The database the jobs live in.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The attempts a job of `kind` gets: its handler's, or the setting's.
    fn max_attempts(&self, kind: &str) -> i64 {
        let kinds = self
            .inner
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        i64::from(
            kinds
                .get(kind)
                .map_or_else(|| self.default_max_attempts(), |k| k.max_attempts),
        )
    }

    /// `--jobs-max-attempts`: the attempts of a job type that sets none.
    fn default_max_attempts(&self) -> u32 {
        u32::try_from(self.inner.settings.jobs_max_attempts.get()).unwrap_or(u32::MAX)
    }

    /// The handlers, frozen: the worker runs these kinds only.
    fn seal(&self) -> HashMap<&'static str, Arc<Kind>> {
        *self
            .inner
            .sealed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.inner
            .kinds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self) -> Store {
        self.inner.store.clone()
    }

    /// The non-critical `jobs` check: failing while the oldest due job has
    /// waited longer than `--jobs-backlog-age`, or the queue cannot be read.
    fn health_check(&self) -> HealthCheck {
        let metrics = Arc::clone(&self.inner.metrics);
        let limit = self.inner.settings.jobs_backlog_age;
        HealthCheck::non_critical("jobs", move || {
            let metrics = Arc::clone(&metrics);
            async move { metrics.backlog_verdict(now_ms(), limit) }
        })
    }
}

/// Job kinds and schedule names: 1–64 of `[a-z0-9._-]`, starting with a letter.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {name:?} must be 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter"
        ))
    }
}

/// How long from now until `at` (Unix ms), at most `limit`; zero if it has passed.
pub(crate) fn until(at: i64, limit: Duration) -> Duration {
    Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(limit)
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

fn to_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
