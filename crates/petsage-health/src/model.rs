//! The health feature's wire models: the seed's health answer, readiness,
//! liveness, the IETF health format and the build information.

use std::collections::BTreeMap;

use petsage_core::{CheckState, CheckStatus, HealthStatus, Phase};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{SERVICE_NAME, VERSION};

/// Response of the health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "service_name": SERVICE_NAME, "version": VERSION}))]
pub struct HealthCheckResponse {
    /// The operational status of the service. 'ok' indicates healthy.
    #[schema(example = "ok")]
    pub status: HealthStatus,
    /// The name of the running service.
    #[schema(example = "PetSage Backend")]
    pub service_name: String,
    /// The current version of the service.
    #[schema(example = "0.1.0")]
    pub version: String,
}

impl HealthCheckResponse {
    /// The response for a service in `status`.
    pub fn new(status: HealthStatus) -> Self {
        Self {
            status,
            service_name: SERVICE_NAME.to_owned(),
            version: VERSION.to_owned(),
        }
    }
}

/// Response of the liveness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct LivenessResponse {
    /// Always `ok`: the process is able to answer.
    pub status: HealthStatus,
}

/// One check's standing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "database", "status": "ok", "critical": true, "duration_ms": 1.25,
    "since": "2026-11-30T09:00:00.000Z", "consecutive_failures": 0}))]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Whether it passes, after the failure and success thresholds.
    pub status: CheckState,
    /// Whether its failure makes the service unavailable.
    pub critical: bool,
    /// How long its latest run took, in milliseconds.
    pub duration_ms: f64,
    /// When the current status began (RFC 3339).
    pub since: String,
    /// Failed runs in a row; 0 after a passing run.
    pub consecutive_failures: u32,
    /// Why the latest run failed; present only with `--health-details true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CheckReport {
    /// The report of `check`; the error text only with `details`.
    pub fn new(check: &CheckStatus, details: bool) -> Self {
        Self {
            name: check.name.clone(),
            status: check.state,
            critical: check.critical,
            duration_ms: millis(check.duration),
            since: crate::rfc3339(check.since),
            consecutive_failures: check.consecutive_failures,
            error: check.error.clone().filter(|_| details),
        }
    }
}

/// Milliseconds, to the microsecond.
pub(crate) fn millis(duration: std::time::Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Response of the readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "phase": "serving", "checks": [
    {"name": "database", "status": "ok", "critical": true, "duration_ms": 1.25,
     "since": "2026-11-30T09:00:00.000Z", "consecutive_failures": 0}
]}))]
pub struct ReadinessResponse {
    /// `unavailable` (with 503) when a critical check fails or the instance is starting or draining.
    pub status: HealthStatus,
    /// Where the instance is in its life.
    pub phase: Phase,
    /// Every check's standing, in registration order (excluded ones left out).
    pub checks: Vec<CheckReport>,
}

/// A status in the IETF health format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IetfStatus {
    /// Healthy.
    Pass,
    /// Healthy, with a concern (a non-critical check fails).
    Warn,
    /// Unhealthy.
    Fail,
}

impl From<HealthStatus> for IetfStatus {
    fn from(status: HealthStatus) -> Self {
        match status {
            HealthStatus::Ok => Self::Pass,
            HealthStatus::Degraded => Self::Warn,
            HealthStatus::Unavailable => Self::Fail,
        }
    }
}

/// One measurement of one check, in the IETF health format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IetfCheck {
    /// `pass`; `fail` for a failed critical check, `warn` for a failed non-critical one.
    pub status: IetfStatus,
    /// How long the latest run took.
    pub observed_value: f64,
    /// Always `ms`.
    pub observed_unit: String,
    /// The kind of dependency: `datastore`, `component`, `system`.
    pub component_type: String,
    /// When the latest run finished (RFC 3339).
    pub time: String,
    /// Why it fails; present only when it fails and `--health-details true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl IetfCheck {
    /// `check` in the IETF format; the failure text only with `details`.
    pub fn new(check: &CheckStatus, details: bool) -> Self {
        let status = match (check.passing(), check.critical) {
            (true, _) => IetfStatus::Pass,
            (false, true) => IetfStatus::Fail,
            (false, false) => IetfStatus::Warn,
        };
        Self {
            status,
            observed_value: millis(check.duration),
            observed_unit: "ms".to_owned(),
            component_type: check.component_type.to_owned(),
            time: crate::rfc3339(check.checked_at),
            output: check.error.clone().filter(|_| details && !check.passing()),
        }
    }
}

/// A health answer in the format of draft-inadarei-api-health-check (`application/health+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"status": "pass", "version": VERSION, "releaseId": "3f2c1a9b0d4e",
    "serviceId": "petsage-backend", "description": "PetSage Backend",
    "checks": {"database:responseTime": [{"status": "pass", "observedValue": 0.42, "observedUnit": "ms",
        "componentType": "datastore", "time": "2026-11-30T09:00:05.000Z"}]}}))]
pub struct IetfHealth {
    /// `pass` and `warn` answer 200, `fail` 503.
    pub status: IetfStatus,
    /// The service's public version.
    pub version: String,
    /// The build's git commit.
    pub release_id: String,
    /// The service's identifier.
    pub service_id: String,
    /// The service's name.
    pub description: String,
    /// Why the instance is not ready (starting or draining); readiness only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Each check's latest measurement, keyed `"<check>:responseTime"`.
    pub checks: BTreeMap<String, Vec<IetfCheck>>,
}

/// What this build is and how long it has run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"service_name": SERVICE_NAME, "version": VERSION, "git_commit": "3f2c1a9b0d4e",
    "build_time": "2026-11-30T09:00:00Z", "rustc": "rustc 1.95.0 (59807616e 2026-04-14)",
    "target": "x86_64-unknown-linux-gnu", "started_at": "2026-11-30T09:10:00.000Z", "uptime_s": 42,
    "features": ["health", "pet-profiles"]}))]
pub struct InfoResponse {
    /// The service's name.
    pub service_name: String,
    /// The service's version.
    pub version: String,
    /// The git commit built (`-dirty` when the tree was modified; `unknown` outside git).
    pub git_commit: String,
    /// When the binary was built (RFC 3339).
    pub build_time: String,
    /// The compiler that built it.
    pub rustc: String,
    /// The target triple it was built for.
    pub target: String,
    /// When this process started serving (RFC 3339).
    pub started_at: String,
    /// Whole seconds since `started_at`.
    pub uptime_s: u64,
    /// The registered features, in registration order.
    pub features: Vec<String>,
}

/// The values `?verbose` takes: bare (`?verbose`, as Kubernetes' probes
/// ask), `true` or `1` for the verbose text; `false` or `0` for the default
/// representation. (Documented by hand: a derived enum cannot name the empty value.)
#[derive(Debug, Clone, Copy)]
pub struct VerboseFlag;

impl utoipa::PartialSchema for VerboseFlag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(["", "true", "1", "false", "0"]))
            .description(Some("Empty (bare `?verbose`), `true` or `1` for the verbose text; `false` or `0` for the default."))
            .into()
    }
}

impl ToSchema for VerboseFlag {}
