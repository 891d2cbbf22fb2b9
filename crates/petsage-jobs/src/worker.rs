//! The worker, one per instance with jobs on: takes due jobs (leased to this
//! instance), runs each under its timeout with panics caught, records the
//! outcome, keeps its leases alive, and puts expired leases back.
//!
//! It wakes on an enqueue in this process, on PostgreSQL's `NOTIFY` from any
//! instance, when a running job ends, when the next waiting job is due, and
//! at the poll interval at the latest.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use futures_util::FutureExt as _;
use petsage_core::Stopping;
use petsage_db::Backend;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::metrics::{Event, JobMetrics};
use crate::store::{CHANNEL, ClaimStatement, Claimed, Store};
use crate::{Jobs, Kind, Run, now_ms, until};

/// How often leases are put back, old jobs pruned and the census taken.
const MAINTENANCE: Duration = Duration::from_secs(5);
/// The longest a retry waits, however many attempts came before.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What each running job needs to record its outcome.
struct Shared {
    store: Store,
    claim: ClaimStatement,
    owner: String,
    metrics: Arc<JobMetrics>,
    /// Rows in the table when this worker last had PostgreSQL analyze it.
    analyzed_rows: std::sync::atomic::AtomicI64,
}

/// Runs jobs until stopping; then lets running ones finish within the grace
/// and puts the rest back.
pub(crate) async fn run(jobs: Jobs, mut stopping: Stopping) {
    let kinds = jobs.seal();
    if kinds.is_empty() {
        return;
    }
    let settings = jobs.inner.settings.clone();
    let store = jobs.store();
    let shared = Arc::new(Shared {
        claim: store.claim_statement(&kinds.keys().copied().collect::<Vec<_>>()),
        store,
        owner: uuid::Uuid::now_v7().to_string(),
        metrics: Arc::clone(&jobs.inner.metrics),
        analyzed_rows: std::sync::atomic::AtomicI64::new(0),
    });
    let wake = Arc::clone(&jobs.inner.wake);
    if jobs.database().backend() == Backend::Postgres {
        let url = jobs.database().settings().url().as_str().to_owned();
        tokio::spawn(listen(
            url,
            Arc::clone(&wake),
            stopping.clone(),
            settings.jobs_poll_interval,
        ));
    }
    log::info!(
        "jobs: worker {} runs {} kinds, {} at a time",
        shared.owner,
        kinds.len(),
        settings.jobs_concurrency
    );
    let concurrency = settings.jobs_concurrency.get();
    let lease = settings.jobs_lease;
    let mut running = JoinSet::new();
    let (mut maintained, mut heartbeat) = (None::<Instant>, Instant::now());
    while !stopping.is_requested() {
        if maintained.is_none_or(|at| at.elapsed() >= MAINTENANCE) {
            maintain(&shared, settings.jobs_retention).await;
            maintained = Some(Instant::now());
        }
        if !running.is_empty() && heartbeat.elapsed() >= lease / 3 {
            let until = now_ms() + millis(lease);
            if let Err(err) = shared.store.heartbeat(&shared.owner, until).await {
                log::warn!("jobs: cannot extend the leases: {err}");
            }
            heartbeat = Instant::now();
        }
        while running.try_join_next().is_some() {}
        let free = concurrency.saturating_sub(running.len());
        let mut wait = settings.jobs_poll_interval;
        if free > 0 {
            let now = now_ms();
            match shared
                .store
                .claim(
                    &shared.claim,
                    &shared.owner,
                    now,
                    now + millis(lease),
                    free as i64,
                )
                .await
            {
                Ok(claimed) => {
                    let taken = claimed.len();
                    for job in claimed {
                        let kind = kinds.get(job.kind.as_str()).cloned();
                        running.spawn(execute(Arc::clone(&shared), kind, job));
                    }
                    if taken == free {
                        // There may be more: take them as soon as a slot frees.
                        wait = Duration::ZERO;
                    } else {
                        wait = until_next_due(&shared.store, wait).await;
                    }
                }
                Err(err) => log::warn!("jobs: cannot take jobs: {err}"),
            }
        }
        if wait.is_zero() && running.len() < concurrency {
            continue;
        }
        let slot_freed = async {
            if running.len() >= concurrency {
                running.join_next().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        // Even when every slot is busy (nothing to wait for but a job's
        // end), wake within the poll interval and a third of the lease, so
        // long jobs' leases are extended and expired ones put back.
        let timer = if wait.is_zero() {
            settings.jobs_poll_interval
        } else {
            wait
        };
        let timer = timer.min(lease / 3).max(Duration::from_millis(1));
        tokio::select! {
            () = stopping.requested() => break,
            () = wake.notified() => {}
            () = slot_freed => {}
            () = tokio::time::sleep(timer) => {}
        }
    }
    drain(&shared, running, stopping.grace()).await;
}

/// How long until the next waiting job is due, at most `poll`.
async fn until_next_due(store: &Store, poll: Duration) -> Duration {
    match store.next_due().await {
        Ok(Some(at)) => until(at, poll),
        Ok(None) => poll,
        Err(err) => {
            log::warn!("jobs: cannot read the queue: {err}");
            poll
        }
    }
}

/// The drain: running jobs get `grace` to finish; the rest are stopped and put back.
async fn drain(shared: &Shared, mut running: JoinSet<()>, grace: Duration) {
    if !running.is_empty() {
        log::info!(
            "jobs: draining: {} running, {} ms to finish",
            running.len(),
            grace.as_millis()
        );
    }
    let finished = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
    match shared.store.release(&shared.owner, now_ms()).await {
        Ok(0) => {}
        Ok(n) => {
            log::warn!("jobs: {n} jobs did not finish within the grace; put back in the queue")
        }
        Err(err) => log::error!(
            "jobs: cannot put back this instance's unfinished jobs ({err}); they run again once their lease expires"
        ),
    }
}

/// Puts expired leases back, prunes old completed jobs and takes the census.
async fn maintain(shared: &Shared, retention: Duration) {
    let now = now_ms();
    match shared.store.rescue(now).await {
        Ok(0) => {}
        Ok(n) => {
            log::warn!(
                "jobs: {n} jobs' leases expired (their instance stopped); back in the queue"
            );
            shared.metrics.count_rescued(n);
        }
        Err(err) => log::warn!("jobs: cannot put back expired leases: {err}"),
    }
    if let Err(err) = shared.store.prune(now - millis(retention)).await {
        log::warn!("jobs: cannot prune completed jobs: {err}");
    }
    match shared.store.census(now).await {
        Ok(census) => {
            refresh_statistics(shared, census.counts.iter().map(|(_, _, n)| n).sum()).await;
            shared.metrics.set_census(census, now);
        }
        Err(err) => {
            log::warn!("jobs: cannot count the queue: {err}");
            shared.metrics.census_failed(err.to_string());
        }
    }
}

/// Has PostgreSQL analyze the jobs table once it holds over 1,000 rows and
/// at least twice what it held at the last analysis. Without statistics its
/// planner takes a burst of new jobs for a handful and sorts them all at
/// every claim; autovacuum would analyze, but up to a minute later.
async fn refresh_statistics(shared: &Shared, rows: i64) {
    use std::sync::atomic::Ordering;
    let analyzed = shared.analyzed_rows.load(Ordering::Relaxed);
    if rows <= 1_000 || rows < analyzed.saturating_mul(2) {
        return;
    }
    match shared.store.analyze().await {
        Ok(true) => shared.analyzed_rows.store(rows, Ordering::Relaxed),
        Ok(false) => {}
        Err(err) => log::warn!("jobs: cannot analyze the jobs table: {err}"),
    }
}

/// Runs one attempt and records its outcome.
async fn execute(shared: Arc<Shared>, kind: Option<Arc<Kind>>, job: Claimed) {
    let Some(kind) = kind else {
        return;
    };
    let labels = (job.queue.clone(), job.kind.clone());
    shared.metrics.count(&labels, Event::Started);
    let run = Run {
        id: job.id,
        attempt: u32::try_from(job.attempt).unwrap_or(u32::MAX),
        max_attempts: u32::try_from(job.max_attempts).unwrap_or(u32::MAX),
        queue: job.queue.clone(),
        due: UNIX_EPOCH + Duration::from_millis(u64::try_from(job.run_at).unwrap_or(0)),
    };
    let started = Instant::now();
    let attempt = AssertUnwindSafe((kind.run)(&job.payload, run)).catch_unwind();
    let outcome = match tokio::time::timeout(kind.timeout, attempt).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(err))) => Err(err),
        Ok(Err(panic)) => Err(format!("the handler panicked: {}", panic_message(&panic))),
        Err(_) => Err(format!("timed out after {} ms", kind.timeout.as_millis())),
    };
    shared.metrics.observe_duration(&labels, started.elapsed());
    let now = now_ms();
    let recorded = match &outcome {
        Ok(()) => {
            shared.metrics.count(&labels, Event::Succeeded);
            shared.store.complete(job.id, &shared.owner, now).await
        }
        Err(err) => {
            shared.metrics.count(&labels, Event::Failed);
            let retry_at = (job.attempt < job.max_attempts)
                .then(|| now + millis(backoff(kind.backoff, job.attempt)));
            let event = if retry_at.is_some() {
                Event::Retried
            } else {
                Event::Discarded
            };
            shared.metrics.count(&labels, event);
            log::warn!(
                "jobs: {} {} attempt {}/{} failed: {err}{}",
                job.kind,
                job.id,
                job.attempt,
                job.max_attempts,
                if retry_at.is_some() {
                    "; retrying"
                } else {
                    "; discarded"
                }
            );
            shared
                .store
                .fail(job.id, &shared.owner, err, retry_at, now)
                .await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => log::warn!(
            "jobs: {} {} ended after its lease was lost; another instance may run it again",
            job.kind,
            job.id
        ),
        Err(err) => log::warn!(
            "jobs: cannot record how {} {} ended ({err}); it runs again once its lease expires",
            job.kind,
            job.id
        ),
    }
}

/// The delay before the retry after `attempt`: `first`, doubled per
/// attempt, at most an hour, plus up to a quarter more at random so that
/// jobs that failed together do not retry together.
fn backoff(first: Duration, attempt: i64) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = first.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    base + base.mul_f64(rand::random::<f64>() * 0.25)
}

/// Listens for new jobs on PostgreSQL and wakes the worker; reconnects
/// after a failure (polling covers the gap).
async fn listen(url: String, wake: Arc<Notify>, mut stopping: Stopping, retry: Duration) {
    use sqlx::postgres::PgListener;
    while !stopping.is_requested() {
        let listener = async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listener.await {
            Ok(mut listener) => loop {
                tokio::select! {
                    () = stopping.requested() => return,
                    notification = listener.recv() => match notification {
                        Ok(_) => wake.notify_one(),
                        Err(err) => {
                            log::warn!("jobs: the NOTIFY listener failed ({err}); polling until it is back");
                            break;
                        }
                    },
                }
            },
            Err(err) => {
                log::warn!("jobs: cannot LISTEN for new jobs ({err}); polling until it can")
            }
        }
        tokio::select! {
            () = stopping.requested() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_an_hour() {
        for attempt in 1..=4 {
            let delay = backoff(Duration::from_secs(1), attempt);
            let base = Duration::from_secs(1 << (attempt - 1));
            assert!(
                delay >= base && delay <= base.mul_f64(1.25),
                "{attempt}: {delay:?}"
            );
        }
        let late = backoff(Duration::from_secs(1), 40);
        assert!(
            late >= MAX_BACKOFF && late <= MAX_BACKOFF.mul_f64(1.25),
            "{late:?}"
        );
    }
}
