//! The jobs series: what this instance's worker did (started, succeeded,
//! failed, retried, discarded, rescued; run time), and what the queue holds
//! (jobs by queue and state, the age of each queue's oldest due job), as the
//! worker's last census found it.

use std::fmt::Error as FmtError;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector as PromCollector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::store::Census;

/// What happened to an attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Started,
    Succeeded,
    Failed,
    Retried,
    Discarded,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::Discarded => "discarded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EventLabels {
    queue: String,
    kind: String,
    event: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    queue: String,
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    queue: String,
    state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

/// The worker's counts and the last census; kinds and queues are the code's own, so the label sets are bounded.
#[derive(Debug)]
pub(crate) struct JobMetrics {
    events: Family<EventLabels, Counter>,
    durations: Family<KindLabels, Histogram>,
    rescued: Counter,
    census: Mutex<Option<(Census, i64)>>,
    census_error: Mutex<Option<String>>,
}

impl Default for JobMetrics {
    fn default() -> Self {
        Self {
            events: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 4.0, 10))
            }),
            rescued: Counter::default(),
            census: Mutex::default(),
            census_error: Mutex::default(),
        }
    }
}

impl JobMetrics {
    /// Counts `event` for a job of `(queue, kind)`.
    pub(crate) fn count(&self, (queue, kind): &(String, String), event: Event) {
        self.events
            .get_or_create(&EventLabels {
                queue: queue.clone(),
                kind: kind.clone(),
                event: event.as_str(),
            })
            .inc();
    }

    /// Records how long one attempt ran.
    pub(crate) fn observe_duration(&self, (queue, kind): &(String, String), took: Duration) {
        self.durations
            .get_or_create(&KindLabels {
                queue: queue.clone(),
                kind: kind.clone(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts jobs put back because their lease expired.
    pub(crate) fn count_rescued(&self, jobs: u64) {
        self.rescued.inc_by(jobs);
    }

    /// Keeps the latest census, taken at `at`.
    pub(crate) fn set_census(&self, census: Census, at: i64) {
        *self.census.lock().unwrap_or_else(PoisonError::into_inner) = Some((census, at));
        *self
            .census_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Remembers why the last census failed, for the `jobs` check.
    pub(crate) fn census_failed(&self, why: String) {
        *self
            .census_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// The `jobs` check's verdict at `now`: an error while the oldest due job
    /// has waited longer than `limit`, or while the queue cannot be read.
    pub(crate) fn backlog_verdict(&self, now: i64, limit: Duration) -> Result<(), String> {
        if let Some(why) = self
            .census_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Err(format!("cannot read the queue: {why}"));
        }
        let census = self.census.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((census, _)) = census.as_ref() else {
            return Ok(());
        };
        let limit_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        match census
            .oldest_due
            .iter()
            .map(|(q, due)| (q, now - due))
            .max_by_key(|(_, age)| *age)
        {
            Some((queue, age)) if age > limit_ms => Err(format!(
                "the oldest due job in queue {queue} has waited {} s (limit {} s, --jobs-backlog-age)",
                age / 1000,
                limit.as_secs()
            )),
            _ => Ok(()),
        }
    }
}

/// The series for `/metrics`.
#[derive(Debug)]
pub(crate) struct Collector {
    metrics: std::sync::Arc<JobMetrics>,
}

impl Collector {
    pub(crate) fn new(metrics: std::sync::Arc<JobMetrics>) -> Self {
        Self { metrics }
    }
}

impl PromCollector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let m = &self.metrics;
        m.events.encode(encoder.encode_descriptor(
            "petsage_jobs_attempts",
            "Job attempts on this instance by what happened: started, succeeded, failed (then retried or discarded)",
            None,
            m.events.metric_type(),
        )?)?;
        m.durations.encode(encoder.encode_descriptor(
            "petsage_jobs_run_duration_seconds",
            "How long each attempt ran on this instance",
            None,
            m.durations.metric_type(),
        )?)?;
        let rescued = ConstCounter::new(m.rescued.get());
        rescued.encode(encoder.encode_descriptor(
            "petsage_jobs_rescued",
            "Jobs this instance put back in the queue because their lease expired (their instance stopped)",
            None,
            rescued.metric_type(),
        )?)?;
        // The queue's gauges are written from the last census; before the
        // first one, their families are declared with no sample.
        let census = m
            .census
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (counts, oldest_due, at) = match &census {
            Some((census, at)) => (census.counts.as_slice(), census.oldest_due.as_slice(), *at),
            None => (&[][..], &[][..], 0),
        };
        let mut jobs = encoder.encode_descriptor(
            "petsage_jobs",
            "Jobs in the queue by queue and state (scheduled: waiting, not yet due), at the last census",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (queue, state, count) in counts {
            ConstGauge::new(*count).encode(jobs.encode_family(&StateLabels {
                queue: queue.clone(),
                state: state.clone(),
            })?)?;
        }
        let mut oldest = encoder.encode_descriptor(
            "petsage_jobs_oldest_due_age_seconds",
            "How long the oldest due job of each queue has waited, at the last census (absent: none due)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (queue, due) in oldest_due {
            #[allow(clippy::cast_precision_loss)]
            let age = (at - due).max(0) as f64 / 1e3;
            ConstGauge::new(age).encode(oldest.encode_family(&QueueLabels {
                queue: queue.clone(),
            })?)?;
        }
        Ok(())
    }
}
