//! Recurring schedules: a cron expression and the job each occurrence
//! enqueues. Every instance with jobs on runs the scheduler; for each
//! occurrence, the one instance that moves the schedule's `next_at` forward
//! (compare-and-set, in the transaction that enqueues the job) runs it.
//! After downtime, the missed occurrences collapse into one: the next
//! occurrence is counted from now, not from the missed one.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use petsage_core::Stopping;

use crate::store::{NewJob, Store};
use crate::{Job, Jobs, Options, now_ms, until};

/// A recurring job: each occurrence of a cron expression (UTC) enqueues it once across all instances.
pub struct Schedule {
    pub(crate) name: String,
    expression: String,
    cron: Cron,
    kind: &'static str,
    payload: String,
    options: Options,
}

impl Schedule {
    /// `job` at every occurrence of `expression`: five fields (minute hour
    /// day month weekday) or six with seconds first (`*/10 * * * * *`).
    pub fn new<J: Job>(name: impl Into<String>, expression: &str, job: &J) -> Result<Self, String> {
        let name = name.into();
        let cron = Cron::from_str(expression).map_err(|err| {
            format!("schedule {name}: {expression:?} is not a cron expression: {err}")
        })?;
        let payload =
            serde_json::to_string(job).map_err(|err| format!("schedule {name}: {err}"))?;
        Ok(Self {
            name,
            expression: expression.to_owned(),
            cron,
            kind: J::KIND,
            payload,
            options: Options::default(),
        })
    }

    /// The queue and priority of the jobs it enqueues (a delay or unique key is ignored).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The first occurrence after `after` (Unix ms).
    pub(crate) fn next_after(&self, after: i64) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp_millis(after)?;
        self.cron
            .find_next_occurrence(&after, false)
            .ok()
            .map(|next| next.timestamp_millis())
    }

    /// The job of the occurrence due at `due`, under `key`.
    fn occurrence<'a>(&'a self, due: i64, key: &'a str, max_attempts: i64) -> NewJob<'a> {
        NewJob {
            kind: self.kind,
            queue: &self.options.queue,
            payload: self.payload.clone(),
            priority: self.options.priority,
            max_attempts,
            run_at: due,
            unique_key: Some(key),
            now: now_ms(),
        }
    }
}

/// The scheduler, one per instance with jobs on: declares each schedule,
/// then at each due occurrence tries to take it.
pub(crate) async fn run(jobs: Jobs, mut stopping: Stopping) {
    let schedules = std::mem::take(
        &mut *jobs
            .inner
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    if schedules.is_empty() {
        return;
    }
    let store = jobs.store();
    let poll = jobs.inner.settings.jobs_poll_interval;
    for schedule in &schedules {
        loop {
            let Some(next) = schedule.next_after(now_ms()) else {
                log::error!(
                    "schedule {}: {:?} has no next occurrence",
                    schedule.name,
                    schedule.expression
                );
                break;
            };
            match store
                .declare_schedule(&schedule.name, &schedule.expression, next)
                .await
            {
                Ok(()) => break,
                Err(err) => {
                    log::warn!(
                        "schedule {}: cannot declare it: {err}; retrying",
                        schedule.name
                    );
                    if pause(&mut stopping, poll).await {
                        return;
                    }
                }
            }
        }
    }
    let schedules: Arc<[Schedule]> = schedules.into();
    loop {
        let wait = match tick(&jobs, &store, &schedules).await {
            Ok(next) => until(next, poll),
            Err(err) => {
                log::warn!(
                    "schedules: cannot read them: {err}; retrying in {} ms",
                    poll.as_millis()
                );
                poll
            }
        };
        if pause(&mut stopping, wait).await {
            return;
        }
    }
}

/// Takes every due occurrence this instance wins; returns when the next one is due.
async fn tick(jobs: &Jobs, store: &Store, schedules: &[Schedule]) -> Result<i64, sqlx::Error> {
    let next_at: HashMap<String, i64> = store.schedules().await?.into_iter().collect();
    let now = now_ms();
    let mut wake_at = i64::MAX;
    for schedule in schedules {
        let Some(&due) = next_at.get(&schedule.name) else {
            continue;
        };
        if due > now {
            wake_at = wake_at.min(due);
            continue;
        }
        let Some(next) = schedule.next_after(now) else {
            continue;
        };
        let key = format!("schedule:{}:{due}", schedule.name);
        let job = schedule.occurrence(due, &key, jobs.max_attempts(schedule.kind));
        if store
            .take_occurrence(&schedule.name, due, next, job)
            .await?
        {
            log::debug!("schedule {}: occurrence {due} enqueued", schedule.name);
            jobs.inner.wake.notify_one();
        }
        wake_at = wake_at.min(next);
    }
    Ok(wake_at)
}

/// One scheduler pass, for the crate's tests.
#[cfg(test)]
pub(crate) async fn tick_for_tests(
    jobs: &Jobs,
    schedules: &[Schedule],
) -> Result<i64, sqlx::Error> {
    tick(jobs, &jobs.store(), schedules).await
}

/// Sleeps `wait`, or less if stopping begins; true if it did.
async fn pause(stopping: &mut Stopping, wait: Duration) -> bool {
    tokio::select! {
        () = stopping.requested() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Tidy;
    impl Job for Tidy {
        const KIND: &'static str = "test.tidy";
    }

    #[test]
    fn next_occurrences_follow_the_expression_with_or_without_seconds() {
        let every_second = Schedule::new("tick", "* * * * * *", &Tidy).expect("valid");
        assert_eq!(every_second.next_after(1_000_500), Some(1_001_000));
        assert_eq!(
            every_second.next_after(1_001_000),
            Some(1_002_000),
            "strictly after"
        );
        let nightly = Schedule::new("nightly", "0 3 * * *", &Tidy).expect("valid");
        // 2026-12-06T00:00:00Z → 03:00 the same day.
        assert_eq!(
            nightly.next_after(1_796_515_200_000),
            Some(1_796_526_000_000)
        );
        let err = Schedule::new("bad", "61 * * * *", &Tidy)
            .err()
            .expect("refused");
        assert!(
            err.starts_with("schedule bad: \"61 * * * *\" is not a cron expression"),
            "{err}"
        );
    }
}
