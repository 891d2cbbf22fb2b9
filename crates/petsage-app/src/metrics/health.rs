//! Health, checks, phase and build as series, read from the monitor at each scrape.

use std::fmt::Error as FmtError;
use std::sync::Arc;

use petsage_core::{CheckStatus, HealthMonitor, HealthStatus, Phase};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_commit: &'static str,
}

/// Health, checks, phase and build, read from the monitor at each scrape.
pub(super) struct HealthCollector {
    monitor: Arc<HealthMonitor>,
}

impl HealthCollector {
    /// The series of `monitor`'s checks and phase.
    pub(super) fn new(monitor: Arc<HealthMonitor>) -> Self {
        Self { monitor }
    }
}

impl std::fmt::Debug for HealthCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCollector").finish_non_exhaustive()
    }
}

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let snapshot = self.monitor.snapshot();
        let phase = self.monitor.phase();
        // 2 ok, 1 degraded, 0 unavailable: the uptime view, as /health answers.
        let status: i64 = match HealthStatus::of_service(phase, &snapshot.checks) {
            HealthStatus::Ok => 2,
            HealthStatus::Degraded => 1,
            HealthStatus::Unavailable => 0,
        };
        let gauge = ConstGauge::new(status);
        gauge.encode(encoder.encode_descriptor(
            "petsage_health_status",
            "Service health: 2 ok, 1 degraded (a non-critical check fails), 0 unavailable",
            None,
            gauge.metric_type(),
        )?)?;

        per_check(
            &mut encoder,
            "petsage_health_check_up",
            "Whether a health check passes (1) or fails (0), after its thresholds",
            &snapshot.checks,
            |check| ConstGauge::new(i64::from(check.passing())),
        )?;
        per_check(
            &mut encoder,
            "petsage_health_check_duration_seconds",
            "How long a health check's latest run took",
            &snapshot.checks,
            |check| ConstGauge::new(check.duration.as_secs_f64()),
        )?;
        per_check(
            &mut encoder,
            "petsage_health_check_failures",
            "Failed runs of a health check since start",
            &snapshot.checks,
            |check| ConstCounter::new(check.failed_runs),
        )?;

        encode_phase(&mut encoder, phase)?;
        encode_build(&mut encoder)
    }
}

/// `petsage_phase`: 1 for the instance's current phase, 0 for the others.
fn encode_phase(encoder: &mut DescriptorEncoder<'_>, phase: Phase) -> Result<(), FmtError> {
    let mut phases = encoder.encode_descriptor(
        "petsage_phase",
        "The instance's phase: 1 for the current one",
        None,
        MetricType::Gauge,
    )?;
    for each in Phase::ALL {
        ConstGauge::new(i64::from(phase == each)).encode(phases.encode_family(
            &PhaseLabels {
                phase: each.as_str(),
            },
        )?)?;
    }
    Ok(())
}

/// `petsage_build_info`: always 1, with the version and git commit as labels.
fn encode_build(encoder: &mut DescriptorEncoder<'_>) -> Result<(), FmtError> {
    let mut build = encoder.encode_descriptor(
        "petsage_build_info",
        "The running build: always 1, with its version and git commit as labels",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(1).encode(build.encode_family(&BuildLabels {
        version: petsage_health::VERSION,
        git_commit: petsage_health::GIT_COMMIT,
    })?)
}

/// One series per check, labelled `check`, with `value` of each.
fn per_check<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    checks: &[CheckStatus],
    value: impl Fn(&CheckStatus) -> M,
) -> Result<(), FmtError> {
    let Some(first) = checks.first() else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, None, value(first).metric_type())?;
    for check in checks {
        let labels = CheckLabels {
            check: check.name.clone(),
        };
        value(check).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
