//! Health checks contributed by features, and the [`HealthMonitor`] that runs
//! them: concurrently, each under a timeout, cached for a TTL, with one run
//! shared by every concurrent caller.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix_web::rt::time::timeout;
use actix_web::web::Bytes;
use futures_util::FutureExt;
use futures_util::future::{Shared, join_all};
use log::{info, warn};

/// What a health check's future resolves to: `Err` explains the failure.
pub type CheckOutcome = Result<(), String>;

type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = CheckOutcome> + Send>> + Send + Sync;

/// A named, async health check that a feature contributes.
#[derive(Clone)]
pub struct HealthCheck {
    name: String,
    critical: bool,
    run: Arc<CheckFn>,
}

impl HealthCheck {
    /// A check whose failure makes the service unavailable (readiness 503).
    pub fn critical<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        Self::new(name.into(), true, check)
    }

    /// A check whose failure only degrades the service (still ready, status `degraded`).
    pub fn non_critical<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        Self::new(name.into(), false, check)
    }

    fn new<F, Fut>(name: String, critical: bool, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckOutcome> + Send + 'static,
    {
        Self {
            name,
            critical,
            run: Arc::new(move || Box::pin(check())),
        }
    }

    /// The check's name, unique within the service.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a failure makes the service unavailable.
    pub fn is_critical(&self) -> bool {
        self.critical
    }
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .finish_non_exhaustive()
    }
}

/// The outcome of one check in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Whether a failure makes the service unavailable.
    pub critical: bool,
    /// `None` when the check passed, else why it failed (including a timeout).
    pub error: Option<String>,
    /// How long the check took.
    pub duration: Duration,
}

impl CheckResult {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none()
    }
}

/// The results of one run of every check.
#[derive(Debug, Clone)]
pub struct Report {
    /// One result per check, in registration order.
    pub checks: Vec<CheckResult>,
    finished: Instant,
    /// A serialized answer derived from this report, made once by its reader
    /// (the health feature keeps its readiness body here) instead of per poll.
    pub rendered: OnceLock<Bytes>,
}

impl Report {
    /// Whether any critical check failed.
    pub fn critical_failed(&self) -> bool {
        self.checks.iter().any(|c| c.critical && !c.passed())
    }

    /// Whether any check failed.
    pub fn any_failed(&self) -> bool {
        self.checks.iter().any(|c| !c.passed())
    }
}

/// Where the service is in its life, as readiness sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not yet serving: start-up is not finished.
    Starting,
    /// Serving traffic.
    Serving,
    /// Shutting down: still answering, but asking for no new traffic.
    Draining,
}

/// How the monitor runs checks.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSettings {
    /// Longest a single check may take before it counts as failed.
    pub check_timeout: Duration,
    /// How long a run's results are reused.
    pub cache_ttl: Duration,
    /// Whether failure texts may be shown to HTTP clients.
    pub details: bool,
}

type RunFuture = Pin<Box<dyn Future<Output = Arc<Report>> + Send>>;

/// Runs the service's health checks and tracks its [`Phase`]; one per process,
/// shared by every worker.
pub struct HealthMonitor {
    checks: Arc<[HealthCheck]>,
    settings: MonitorSettings,
    phase: AtomicU8,
    /// The latest run: in flight, or finished with its report.
    run: RwLock<Option<Shared<RunFuture>>>,
    /// Per check, whether it failed last time (`None` before the first run).
    last_failed: Arc<Mutex<Vec<Option<bool>>>>,
    /// The report of a service with no checks, made once.
    empty: Arc<Report>,
}

impl HealthMonitor {
    /// A monitor for `checks`, in phase [`Phase::Starting`].
    pub fn new(checks: Vec<HealthCheck>, settings: MonitorSettings) -> Self {
        let count = checks.len();
        Self {
            checks: checks.into(),
            settings,
            phase: AtomicU8::new(Phase::Starting as u8),
            run: RwLock::new(None),
            last_failed: Arc::new(Mutex::new(vec![None; count])),
            empty: Arc::new(Report {
                checks: Vec::new(),
                finished: Instant::now(),
                rendered: OnceLock::new(),
            }),
        }
    }

    /// The settings the monitor runs with.
    pub fn settings(&self) -> MonitorSettings {
        self.settings
    }

    /// The registered checks.
    pub fn checks(&self) -> &[HealthCheck] {
        &self.checks
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Whether the service is draining (cheap: one atomic load).
    pub fn is_draining(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == Phase::Draining as u8
    }

    /// Moves to `phase`; draining is final.
    pub fn set_phase(&self, phase: Phase) {
        // One atomic step: a concurrent move to Serving can never undo a drain.
        let draining = Phase::Draining as u8;
        let _ = self
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current != draining).then_some(phase as u8)
            });
    }

    /// The latest report, running the checks if the cached one is older than the TTL.
    ///
    /// Concurrent callers share one run; no caller waits longer than the check timeout.
    pub async fn report(&self) -> Arc<Report> {
        if self.checks.is_empty() {
            return Arc::clone(&self.empty);
        }
        // The hot path: a fresh report, read under a shared lock that pollers
        // on every worker can hold at once.
        let in_flight = {
            let slot = self.run.read().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref().map(|run| (run, run.peek())) {
                Some((_, Some(report))) if self.is_fresh(report) => return Arc::clone(report),
                Some((run, None)) => Some(run.clone()),
                _ => None,
            }
        };
        let run = match in_flight {
            Some(run) => run,
            None => {
                let mut slot = self.run.write().unwrap_or_else(PoisonError::into_inner);
                // Another caller may have started a run since the read above.
                match slot.as_ref().map(|run| (run, run.peek())) {
                    Some((_, Some(report))) if self.is_fresh(report) => return Arc::clone(report),
                    Some((run, None)) => run.clone(),
                    _ => {
                        let run = self.start_run();
                        *slot = Some(run.clone());
                        run
                    }
                }
            }
        };
        run.await
    }

    fn is_fresh(&self, report: &Report) -> bool {
        report.finished.elapsed() < self.settings.cache_ttl
    }

    fn start_run(&self) -> Shared<RunFuture> {
        let checks = Arc::clone(&self.checks);
        let limit = self.settings.check_timeout;
        let last_failed = Arc::clone(&self.last_failed);
        let run: RunFuture = Box::pin(async move {
            let results = join_all(checks.iter().map(|check| run_one(check, limit))).await;
            log_changes(&results, &last_failed);
            Arc::new(Report {
                checks: results,
                finished: Instant::now(),
                rendered: OnceLock::new(),
            })
        });
        run.shared()
    }
}

async fn run_one(check: &HealthCheck, limit: Duration) -> CheckResult {
    let started = Instant::now();
    let outcome = AssertUnwindSafe(timeout(limit, (check.run)()))
        .catch_unwind()
        .await;
    let error = match outcome {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(err))) => Some(err),
        Ok(Err(_elapsed)) => Some(format!("timed out after {} ms", limit.as_millis())),
        Err(_panic) => Some("the check panicked".to_owned()),
    };
    CheckResult {
        name: check.name.clone(),
        critical: check.critical,
        error,
        duration: started.elapsed(),
    }
}

/// Logs a check's failure once when it starts failing, and once when it recovers.
fn log_changes(results: &[CheckResult], last_failed: &Mutex<Vec<Option<bool>>>) {
    let mut last = last_failed.lock().unwrap_or_else(PoisonError::into_inner);
    for (result, last) in results.iter().zip(last.iter_mut()) {
        let failed = !result.passed();
        match (*last, &result.error) {
            (Some(true), None) => info!("health check {:?} recovered", result.name),
            (None | Some(false), Some(err)) => {
                let kind = if result.critical {
                    "critical"
                } else {
                    "non-critical"
                };
                warn!("{kind} health check {:?} failed: {err}", result.name);
            }
            _ => {}
        }
        *last = Some(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn settings(ttl: Duration) -> MonitorSettings {
        MonitorSettings {
            check_timeout: Duration::from_millis(100),
            cache_ttl: ttl,
            details: false,
        }
    }

    #[actix_web::test]
    async fn concurrent_callers_share_one_run_until_the_ttl_passes() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let check = HealthCheck::critical("counted", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                Ok(())
            }
        });
        let monitor = HealthMonitor::new(vec![check], settings(Duration::from_secs(60)));
        let reports = join_all((0..50).map(|_| monitor.report())).await;
        assert!(reports.iter().all(|r| !r.any_failed()));
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let monitor = HealthMonitor::new(monitor.checks().to_vec(), settings(Duration::ZERO));
        monitor.report().await;
        monitor.report().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "a zero TTL runs every time");
    }

    #[actix_web::test]
    async fn hanging_and_panicking_checks_fail_within_the_timeout() {
        let hang = HealthCheck::critical("hang", std::future::pending::<CheckOutcome>);
        let boom = HealthCheck::non_critical("boom", || async { panic!("boom") });
        let fine = HealthCheck::non_critical("fine", || async { Ok(()) });
        let monitor = HealthMonitor::new(vec![hang, boom, fine], settings(Duration::ZERO));
        let started = Instant::now();
        let report = monitor.report().await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            report.checks[0].error.as_deref(),
            Some("timed out after 100 ms")
        );
        assert_eq!(
            report.checks[1].error.as_deref(),
            Some("the check panicked")
        );
        assert!(report.checks[2].passed());
        assert!(report.critical_failed());
    }

    #[test]
    fn draining_is_final() {
        let monitor = HealthMonitor::new(Vec::new(), settings(Duration::ZERO));
        assert_eq!(monitor.phase(), Phase::Starting);
        monitor.set_phase(Phase::Serving);
        monitor.set_phase(Phase::Draining);
        monitor.set_phase(Phase::Serving);
        assert_eq!(monitor.phase(), Phase::Draining);
        assert!(monitor.is_draining());
    }
}
