//! Health checks contributed by features, and the [`HealthMonitor`] that runs
//! each on its own schedule in the background. Polls only read the latest
//! [`Snapshot`]: no request ever waits for a check.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use actix_web::rt::task::JoinHandle;
use actix_web::rt::time::{sleep_until, timeout};
use futures_util::FutureExt;
use futures_util::future::join_all;
use log::{debug, info, warn};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A check's run: its future resolves to `Err` with why it failed.
type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

/// A named, async health check that a feature contributes.
#[derive(Clone)]
pub struct HealthCheck {
    name: String,
    critical: bool,
    component_type: &'static str,
    run: Arc<CheckFn>,
}

impl HealthCheck {
    /// A check whose failure makes the service unavailable (readiness 503);
    /// `check`'s future resolves to `Err` with why it failed.
    pub fn critical<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self::new(name.into(), true, check)
    }

    /// A check whose failure only degrades the service (still ready, status `degraded`).
    pub fn non_critical<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self::new(name.into(), false, check)
    }

    fn new<F, Fut>(name: String, critical: bool, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            critical,
            component_type: "component",
            run: Arc::new(move || Box::pin(check())),
        }
    }

    /// Names the kind of dependency checked (`datastore`, `system`; `component` by default).
    pub fn component_type(mut self, kind: &'static str) -> Self {
        self.component_type = kind;
        self
    }
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("critical", &self.critical)
            .field("component_type", &self.component_type)
            .finish_non_exhaustive()
    }
}

/// Whether one check passes.
///
/// The thresholds decide it from the check's latest runs; it is the
/// `status` (`ok`, `failed`) of a check in the health answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CheckStatusName, description = "Whether one check passes.")]
pub enum CheckState {
    /// Passing.
    Ok,
    /// Failing: the failure threshold was reached.
    Failed,
}

impl CheckState {
    /// The state as a word: `ok`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }
}

/// One check's standing, as the latest runs left it.
#[derive(Debug, Clone)]
pub struct CheckStatus {
    /// The check's name.
    pub name: String,
    /// Whether a failure makes the service unavailable.
    pub critical: bool,
    /// The kind of dependency checked.
    pub component_type: &'static str,
    /// Passing or failing, after the thresholds.
    pub state: CheckState,
    /// When the current state began.
    pub since: SystemTime,
    /// Failed runs in a row (0 after a passing run).
    pub consecutive_failures: u32,
    /// Failed runs since start.
    pub failed_runs: u64,
    /// How long the latest run took.
    pub duration: Duration,
    /// When the latest run finished.
    pub checked_at: SystemTime,
    /// Why the latest run failed (including a timeout); `None` if it passed.
    pub error: Option<String>,
    consecutive_successes: u32,
    changed: Instant,
}

impl CheckStatus {
    /// Whether the check counts as passing.
    pub fn passing(&self) -> bool {
        self.state == CheckState::Ok
    }
}

/// Every check's latest standing; empty until the first run has finished.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// One entry per check, in registration order.
    pub checks: Vec<CheckStatus>,
}

impl Snapshot {
    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&CheckStatus> {
        self.checks.iter().find(|check| check.name == name)
    }
}

/// The overall health of the service: what the checks and the phase say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(description = "The overall health of the service.")]
pub enum HealthStatus {
    /// Every check passes.
    Ok,
    /// A non-critical check fails: still serving.
    Degraded,
    /// A critical check fails, or the phase rules the instance out.
    Unavailable,
}

impl HealthStatus {
    /// The uptime view (`/health`): the checks decide, unless the phase rules
    /// the service out ([`Phase::rules_out_service`]: only starting does).
    pub fn of_service<'a>(phase: Phase, checks: impl IntoIterator<Item = &'a CheckStatus>) -> Self {
        if phase.rules_out_service() {
            Self::Unavailable
        } else {
            Self::of_checks(checks)
        }
    }

    /// Readiness: the checks decide, unless the phase rules the instance out
    /// ([`Phase::rules_out_instance`]: all but serving do).
    pub fn of_instance<'a>(
        phase: Phase,
        checks: impl IntoIterator<Item = &'a CheckStatus>,
    ) -> Self {
        if phase.rules_out_instance() {
            Self::Unavailable
        } else {
            Self::of_checks(checks)
        }
    }

    /// Whether the answer is a pass (200): ok or degraded.
    pub fn passed(self) -> bool {
        self != Self::Unavailable
    }

    fn of_checks<'a>(checks: impl IntoIterator<Item = &'a CheckStatus>) -> Self {
        let mut status = Self::Ok;
        for check in checks {
            if !check.passing() {
                if check.critical {
                    return Self::Unavailable;
                }
                status = Self::Degraded;
            }
        }
        status
    }
}

/// Where the service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PhaseName, description = "Where the service is in its life.")]
pub enum Phase {
    /// Not yet serving: start-up or the first check run is not finished.
    Starting,
    /// Serving traffic.
    Serving,
    /// Shutting down: still answering, but asking for no new traffic.
    Draining,
}

impl Phase {
    /// Every phase, in the order a service goes through them.
    pub const ALL: [Phase; 3] = [Self::Starting, Self::Serving, Self::Draining];

    /// The phase as a word: `starting`, `serving`, `draining`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Serving => "serving",
            Self::Draining => "draining",
        }
    }

    /// Whether this phase makes the service unavailable whatever its checks
    /// say, in the uptime view: only starting (a drain is readiness' business).
    pub fn rules_out_service(self) -> bool {
        self == Self::Starting
    }

    /// Whether this phase makes the instance not ready whatever its checks
    /// say: every phase but serving.
    pub fn rules_out_instance(self) -> bool {
        self != Self::Serving
    }
}

/// How the monitor runs checks.
#[derive(Debug, Clone, Copy)]
pub struct MonitorSettings {
    /// Longest a single run may take before it counts as failed.
    pub check_timeout: Duration,
    /// Time from the start of one run of a check to the start of its next.
    pub interval: Duration,
    /// Failed runs in a row that turn a passing check failed.
    pub failure_threshold: u32,
    /// Passing runs in a row that turn a failed check passing.
    pub success_threshold: u32,
}

/// Runs the service's health checks in the background and tracks its
/// [`Phase`]; one per process, shared by every worker.
pub struct HealthMonitor {
    checks: Arc<[HealthCheck]>,
    settings: MonitorSettings,
    phase: AtomicU8,
    /// What polls read: replaced whole after every run.
    snapshot: RwLock<Arc<Snapshot>>,
    /// The writers' copy: per check, its status once it has run.
    statuses: Mutex<Vec<Option<CheckStatus>>>,
    schedules: Mutex<Vec<JoinHandle<()>>>,
}

impl HealthMonitor {
    /// A monitor for `checks`, in phase [`Phase::Starting`]; nothing runs before [`HealthMonitor::start`].
    pub fn new(checks: Vec<HealthCheck>, settings: MonitorSettings) -> Self {
        let count = checks.len();
        Self {
            checks: checks.into(),
            settings,
            phase: AtomicU8::new(Phase::Starting as u8),
            snapshot: RwLock::new(Arc::default()),
            statuses: Mutex::new(vec![None; count]),
            schedules: Mutex::new(Vec::new()),
        }
    }

    /// The number of registered checks.
    pub fn check_count(&self) -> usize {
        self.checks.len()
    }

    /// Whether a check named `name` is registered (it may not have run yet).
    pub fn has_check(&self, name: &str) -> bool {
        self.checks.iter().any(|check| check.name == name)
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

    /// The latest standing of every check: a read, never a run.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs every check once, concurrently, and returns when all have
    /// finished; from then on each check runs again every interval, on its own.
    ///
    /// Must be called inside an actix system; [`HealthMonitor::stop`] ends the schedules.
    pub async fn start(self: Arc<Self>) {
        let first = Instant::now();
        let runs = self
            .checks
            .iter()
            .map(|check| run_once(check, self.settings.check_timeout));
        for (index, run) in join_all(runs).await.into_iter().enumerate() {
            self.record(index, run);
        }
        let next = actix_web::rt::time::Instant::from_std(first + self.settings.interval);
        let schedules = (0..self.checks.len())
            .map(|index| actix_web::rt::spawn(Arc::clone(&self).schedule(index, next)))
            .collect();
        *self
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = schedules;
    }

    /// Stops running checks; the last snapshot stays readable.
    pub fn stop(&self) {
        for schedule in self
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            schedule.abort();
        }
    }

    /// Runs check `index` at `next`, then every interval after each run's start.
    async fn schedule(self: Arc<Self>, index: usize, mut next: actix_web::rt::time::Instant) {
        let check = &self.checks[index];
        loop {
            sleep_until(next).await;
            let started = actix_web::rt::time::Instant::now();
            let run = run_once(check, self.settings.check_timeout).await;
            self.record(index, run);
            // A run longer than the interval is followed by the next at once.
            next = (started + self.settings.interval).max(actix_web::rt::time::Instant::now());
        }
    }

    /// Folds one run into check `index`'s status, logs a change of state,
    /// and publishes a new snapshot once every check has run.
    fn record(&self, index: usize, run: Run) {
        let check = &self.checks[index];
        let mut statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        let failed = run.error.is_some();
        let status = match &mut statuses[index] {
            Some(status) => {
                if failed {
                    status.failed_runs += 1;
                    status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                    status.consecutive_successes = 0;
                } else {
                    status.consecutive_successes = status.consecutive_successes.saturating_add(1);
                    status.consecutive_failures = 0;
                }
                let next = match status.state {
                    CheckState::Ok
                        if status.consecutive_failures >= self.settings.failure_threshold =>
                    {
                        CheckState::Failed
                    }
                    CheckState::Failed
                        if status.consecutive_successes >= self.settings.success_threshold =>
                    {
                        CheckState::Ok
                    }
                    same => same,
                };
                if next != status.state {
                    log_change(check, status.state, next, status.changed.elapsed(), &run);
                    status.state = next;
                    status.since = run.checked_at;
                    status.changed = Instant::now();
                }
                status
            }
            // The first run decides the state: there is no earlier one to hold on to.
            empty @ None => {
                let state = if failed {
                    CheckState::Failed
                } else {
                    CheckState::Ok
                };
                log_first(check, &run);
                empty.insert(CheckStatus {
                    name: check.name.clone(),
                    critical: check.critical,
                    component_type: check.component_type,
                    state,
                    since: run.checked_at,
                    consecutive_failures: u32::from(failed),
                    failed_runs: u64::from(failed),
                    consecutive_successes: u32::from(!failed),
                    duration: run.duration,
                    checked_at: run.checked_at,
                    error: None,
                    changed: Instant::now(),
                })
            }
        };
        status.duration = run.duration;
        status.checked_at = run.checked_at;
        status.error = run.error;
        if statuses.iter().all(Option::is_some) {
            let snapshot = Arc::new(Snapshot {
                checks: statuses.iter().flatten().cloned().collect(),
            });
            *self
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner) = snapshot;
        }
    }
}

impl Drop for HealthMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One run of one check.
struct Run {
    error: Option<String>,
    duration: Duration,
    checked_at: SystemTime,
}

async fn run_once(check: &HealthCheck, limit: Duration) -> Run {
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
    Run {
        error,
        duration: started.elapsed(),
        checked_at: SystemTime::now(),
    }
}

fn kind(check: &HealthCheck) -> &'static str {
    if check.critical {
        "critical"
    } else {
        "non-critical"
    }
}

fn log_first(check: &HealthCheck, run: &Run) {
    match &run.error {
        Some(err) => warn!(
            "health check {:?} ({}) is failed on its first run: {err}",
            check.name,
            kind(check)
        ),
        None => debug!("health check {:?} is ok on its first run", check.name),
    }
}

/// One line per change of state: old and new state, and how long the old one lasted.
fn log_change(check: &HealthCheck, from: CheckState, to: CheckState, lasted: Duration, run: &Run) {
    let line = format!(
        "health check {:?} ({}) is now {}, after {:.1} s {}",
        check.name,
        kind(check),
        to.as_str(),
        lasted.as_secs_f64(),
        from.as_str()
    );
    match &run.error {
        Some(err) => warn!("{line}: {err}"),
        None => info!("{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn settings(interval: Duration, failure: u32, success: u32) -> MonitorSettings {
        MonitorSettings {
            check_timeout: Duration::from_millis(100),
            interval,
            failure_threshold: failure,
            success_threshold: success,
        }
    }

    /// A check that fails on the runs `fails` says, counting its runs.
    fn scripted(fails: fn(usize) -> bool) -> (HealthCheck, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let check = HealthCheck::critical("scripted", move || {
            let run = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if fails(run) {
                    Err(format!("run {run} fails"))
                } else {
                    Ok(())
                }
            }
        });
        (check, runs)
    }

    /// Feeds runs to a monitor by hand, as its schedule would.
    fn feed(monitor: &HealthMonitor, outcomes: &[bool]) -> Vec<CheckState> {
        outcomes
            .iter()
            .map(|&fails| {
                monitor.record(
                    0,
                    Run {
                        error: fails.then(|| "down".to_owned()),
                        duration: Duration::ZERO,
                        checked_at: SystemTime::now(),
                    },
                );
                monitor.snapshot().checks[0].state
            })
            .collect()
    }

    #[test]
    fn thresholds_hold_a_state_until_enough_runs_agree() {
        use CheckState::{Failed, Ok as Up};
        let (check, _) = scripted(|_| false);
        let monitor = HealthMonitor::new(vec![check], settings(Duration::from_secs(1), 3, 2));
        let states = feed(
            &monitor,
            &[
                false, true, false, true, true, true, false, true, false, false,
            ],
        );
        assert_eq!(
            states,
            [Up, Up, Up, Up, Up, Failed, Failed, Failed, Failed, Up]
        );
        assert_eq!(monitor.snapshot().checks[0].consecutive_failures, 0);
    }

    #[test]
    fn the_first_run_decides_and_a_threshold_of_one_follows_every_run() {
        use CheckState::{Failed, Ok as Up};
        let (check, _) = scripted(|_| false);
        let monitor = HealthMonitor::new(vec![check], settings(Duration::from_secs(1), 3, 3));
        assert_eq!(feed(&monitor, &[true]), [Failed]);
        let (check, _) = scripted(|_| false);
        let monitor = HealthMonitor::new(vec![check], settings(Duration::from_secs(1), 1, 1));
        assert_eq!(
            feed(&monitor, &[false, true, false, true]),
            [Up, Failed, Up, Failed]
        );
    }

    #[actix_web::test]
    async fn start_runs_every_check_once_then_each_on_its_schedule() {
        let (check, runs) = scripted(|run| run % 2 == 1);
        let monitor = Arc::new(HealthMonitor::new(
            vec![check],
            settings(Duration::from_millis(10), 3, 1),
        ));
        assert!(monitor.snapshot().checks.is_empty(), "nothing before start");
        Arc::clone(&monitor).start().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(monitor.snapshot().checks[0].passing());
        // Wait for the schedule to run the flapping check many times.
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 20 {
            assert!(Instant::now() < deadline, "the schedule stopped running");
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
            assert!(
                monitor.snapshot().checks[0].passing(),
                "one failure in a row never reaches a threshold of 3"
            );
        }
        monitor.stop();
        let after_stop = runs.load(Ordering::SeqCst);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            after_stop,
            "stop ends the schedule"
        );
    }

    #[actix_web::test]
    async fn hanging_and_panicking_checks_fail_within_the_timeout() {
        let hang = HealthCheck::critical("hang", std::future::pending::<Result<(), String>>);
        let boom = HealthCheck::non_critical("boom", || async { panic!("boom") });
        let fine = HealthCheck::non_critical("fine", || async { Ok(()) });
        let monitor = Arc::new(HealthMonitor::new(
            vec![hang, boom, fine],
            settings(Duration::from_secs(60), 1, 1),
        ));
        Arc::clone(&monitor).start().await;
        let snapshot = monitor.snapshot();
        assert_eq!(
            snapshot.checks[0].error.as_deref(),
            Some("timed out after 100 ms")
        );
        assert!(!snapshot.checks[0].passing());
        assert_eq!(
            snapshot.checks[1].error.as_deref(),
            Some("the check panicked")
        );
        assert!(snapshot.checks[2].passing());
        assert_eq!(
            snapshot.check("fine").map(|c| c.name.as_str()),
            Some("fine")
        );
        monitor.stop();
    }

    #[test]
    fn the_phase_rules_out_the_service_only_while_starting_and_the_instance_unless_serving() {
        let none: [&CheckStatus; 0] = [];
        for phase in Phase::ALL {
            let service = HealthStatus::of_service(phase, none);
            let instance = HealthStatus::of_instance(phase, none);
            assert_eq!(service.passed(), phase != Phase::Starting, "{phase:?}");
            assert_eq!(instance.passed(), phase == Phase::Serving, "{phase:?}");
        }
    }

    #[test]
    fn words_are_the_wire_names() {
        for phase in Phase::ALL {
            let wire = serde_json::to_value(phase).expect("serializes");
            assert_eq!(wire, phase.as_str());
        }
        for state in [CheckState::Ok, CheckState::Failed] {
            let wire = serde_json::to_value(state).expect("serializes");
            assert_eq!(wire, state.as_str());
        }
    }

    #[test]
    fn draining_is_final() {
        let monitor = HealthMonitor::new(Vec::new(), settings(Duration::from_secs(1), 1, 1));
        assert_eq!(monitor.phase(), Phase::Starting);
        monitor.set_phase(Phase::Serving);
        monitor.set_phase(Phase::Draining);
        monitor.set_phase(Phase::Serving);
        assert_eq!(monitor.phase(), Phase::Draining);
        assert!(monitor.is_draining());
    }
}
