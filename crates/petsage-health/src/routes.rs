//! The health endpoints: `/health` for uptime checkers, `/health/ready` (and
//! one check at `/health/ready/{check}`) for load balancers, `/health/live`
//! for orchestrators, and `/info` for people. Every one reads the monitor's
//! latest snapshot; none waits for a check.

use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use petsage_core::{HealthMonitor, HealthStatus, Phase, Problem, Snapshot};

use crate::model::{
    CheckReport, HealthCheckResponse, IetfHealth, InfoResponse, LivenessResponse,
    ReadinessResponse, VerboseFlag,
};
use crate::views::{Format, View, ietf, json_bytes, verbose};
use crate::{BUILD_TIME, GIT_COMMIT, RUSTC, SERVICE_NAME, TARGET, VERSION, rfc3339};

/// A plain readiness answer: the snapshot and phase it was made for,
/// whether it passes, and its body.
type ReadyAnswer = (Arc<Snapshot>, Phase, bool, Bytes);

/// What the health endpoints read besides the monitor: settings, start time,
/// feature names, and the readiness body rendered for the latest snapshot.
pub(crate) struct HealthState {
    pub(crate) details: bool,
    pub(crate) started_at: SystemTime,
    pub(crate) started: Instant,
    pub(crate) features: Vec<String>,
    /// The plain readiness answer (whether it passes, and its body), made
    /// once per snapshot and phase instead of per poll.
    ready_body: RwLock<Option<ReadyAnswer>>,
}

impl HealthState {
    pub(crate) fn new(details: bool, features: Vec<String>) -> Self {
        Self {
            details,
            started_at: SystemTime::now(),
            started: Instant::now(),
            features,
            ready_body: RwLock::new(None),
        }
    }

    fn ready_body(
        &self,
        snapshot: &Arc<Snapshot>,
        phase: Phase,
        render: impl FnOnce() -> (bool, Bytes),
    ) -> (bool, Bytes) {
        if let Some((cached, cached_phase, passed, body)) = &*self
            .ready_body
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            && Arc::ptr_eq(cached, snapshot)
            && *cached_phase == phase
        {
            return (*passed, body.clone());
        }
        let (passed, body) = render();
        *self
            .ready_body
            .write()
            .unwrap_or_else(PoisonError::into_inner) =
            Some((Arc::clone(snapshot), phase, passed, body.clone()));
        (passed, body)
    }
}

/// The `ok` bodies never change during a run: serialize them once, not per poll.
static OK_BODY: LazyLock<Bytes> =
    LazyLock::new(|| json_bytes(&HealthCheckResponse::new(HealthStatus::Ok)));
static LIVE_BODY: LazyLock<Bytes> = LazyLock::new(|| {
    json_bytes(&LivenessResponse {
        status: HealthStatus::Ok,
    })
});

/// A health response: never cached. The header values are static, made at
/// compile time, so building one allocates and validates nothing.
fn answer(
    passed: bool,
    content_type: &'static HeaderValue,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let status = if passed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // Straight into the response's header map: the builder would convert
    // and check each header value again on every poll.
    let mut res = HttpResponse::with_body(status, body.into()).map_into_boxed_body();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type.clone());
    headers.insert(header::CACHE_CONTROL, NO_STORE.clone());
    res
}

/// The phase, as a word, when it rules the instance out of readiness or
/// (`readiness` false) the service out of the uptime view; core's
/// [`Phase::rules_out_instance`] and [`Phase::rules_out_service`] decide.
fn phase_fault(phase: Phase, readiness: bool) -> Option<&'static str> {
    let ruled_out = if readiness {
        phase.rules_out_instance()
    } else {
        phase.rules_out_service()
    };
    ruled_out.then(|| phase.as_str())
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");
static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
static HEALTH_JSON: HeaderValue = HeaderValue::from_static("application/health+json");
static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Answers `GET`/`HEAD /health` with the service's status, name and version.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health_check",
    tag = "System",
    summary = "Perform a system health check",
    description = "This endpoint can be used to verify that the PetSage backend service is operational. It's a lightweight check ideal for automated monitoring.\n\n\
        The status comes from the service's checks, which run in the background: polling never runs one. A drain does not change it (readiness reports that). \
        `?verbose` or `Accept: text/plain` answers in Kubernetes' verbose text; `Accept: application/health+json` in the IETF health format; `?exclude=<check>` leaves a check out.",
    params(
        ("verbose" = Option<VerboseFlag>, Query, description = "Answer in Kubernetes' verbose text: `[+]<check> ok` per check, then `health check passed`."),
        ("exclude" = Option<Vec<String>>, Query, style = Form, explode, description = "A check to leave out of this answer; repeatable."),
    ),
    responses(
        (status = 200, description = "The service is operational: `ok`, or `degraded` when a non-critical check fails.",
         content((HealthCheckResponse = "application/json"), (IetfHealth = "application/health+json"), (String = "text/plain")),
         headers(("Cache-Control" = String, description = "Always `no-store`: health is never cached."))),
        (status = 503, description = "The service is `unavailable`: a critical check fails, or it is starting.",
         content((HealthCheckResponse = "application/json", example = json!({"status": "unavailable", "service_name": SERVICE_NAME, "version": VERSION})),
                 (IetfHealth = "application/health+json"), (String = "text/plain")),
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 400, description = "`verbose` is not one of its values.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn health_check(req: HttpRequest) -> Result<HttpResponse, Problem> {
    respond(Probe::Health, &req)
}

/// Answers `GET`/`HEAD /health/ready` with the phase and every check's standing.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "System",
    summary = "Readiness: may this instance receive traffic?",
    description = "200 while serving with no critical check failing; 503 while starting, draining, or when a critical check fails. Load balancers and Kubernetes readiness probes poll this. \
        Checks run in the background on their own schedule, so a poll only reads their latest results. \
        `?verbose` or `Accept: text/plain` answers in Kubernetes' verbose text; `Accept: application/health+json` in the IETF health format; `?exclude=<check>` leaves a check out.",
    params(
        ("verbose" = Option<VerboseFlag>, Query, description = "Answer in Kubernetes' verbose text: `[+]<check> ok` per check, then `ready check passed`."),
        ("exclude" = Option<Vec<String>>, Query, style = Form, explode, description = "A check to leave out of this answer; repeatable."),
    ),
    responses(
        (status = 200, description = "Ready: `ok`, or `degraded` when a non-critical check fails.",
         content((ReadinessResponse = "application/json"), (IetfHealth = "application/health+json"), (String = "text/plain")),
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 503, description = "Not ready: send no traffic.",
         content((ReadinessResponse = "application/json", example = json!({"status": "unavailable", "phase": "draining", "checks": []})),
                 (IetfHealth = "application/health+json"), (String = "text/plain")),
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 400, description = "`verbose` is not one of its values.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn health_ready(req: HttpRequest) -> Result<HttpResponse, Problem> {
    respond(Probe::Ready, &req)
}

/// The `T` the app shares with the health routes, borrowed from the request
/// (a `Data<T>` argument would take a reference count and a future per poll).
fn shared<T: 'static>(req: &HttpRequest) -> Result<&T, Problem> {
    req.app_data::<Data<T>>().map(Data::get_ref).ok_or_else(|| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the health routes are served without their shared state",
        )
    })
}

/// The two views of the checks and phase: the uptime view (`/health`) and readiness.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe {
    Health,
    Ready,
}

/// The readiness answer's JSON: `status`, `phase` and each check `view` includes.
fn readiness_body(
    view: &View,
    snapshot: &Snapshot,
    status: HealthStatus,
    phase: Phase,
    details: bool,
) -> Bytes {
    json_bytes(&ReadinessResponse {
        status,
        phase,
        checks: view
            .included(&snapshot.checks)
            .map(|check| CheckReport::new(check, details))
            .collect(),
    })
}

/// Answers a poll of `probe` in the format and with the checks the request asks for.
fn respond(probe: Probe, req: &HttpRequest) -> Result<HttpResponse, Problem> {
    let (monitor, state) = (shared::<HealthMonitor>(req)?, shared::<HealthState>(req)?);
    let view = View::of(req, true)?;
    let snapshot = monitor.snapshot();
    let phase = monitor.phase();
    let readiness = probe == Probe::Ready;
    let details = state.details;
    // What load balancers poll: the plain readiness answer, from the cache
    // while the snapshot and phase are the ones it was made for.
    if readiness && view.format == Format::Json && view.exclude.is_empty() {
        let (passed, body) = state.ready_body(&snapshot, phase, || {
            let status = HealthStatus::of_instance(phase, view.included(&snapshot.checks));
            (
                status.passed(),
                readiness_body(&view, &snapshot, status, phase, details),
            )
        });
        return Ok(answer(passed, &JSON, body));
    }
    let included = view.included(&snapshot.checks);
    let status = if readiness {
        HealthStatus::of_instance(phase, included)
    } else {
        HealthStatus::of_service(phase, included)
    };
    // The phase, when it rules the instance out of this view.
    let fault = phase_fault(phase, readiness);
    Ok(match (view.format, probe) {
        (Format::Json, Probe::Health) if status == HealthStatus::Ok => {
            answer(true, &JSON, OK_BODY.clone())
        }
        (Format::Json, Probe::Health) => answer(
            status.passed(),
            &JSON,
            json_bytes(&HealthCheckResponse::new(status)),
        ),
        (Format::Json, Probe::Ready) => answer(
            status.passed(),
            &JSON,
            readiness_body(&view, &snapshot, status, phase, details),
        ),
        (Format::Text, _) => {
            // Readiness always lists its phase; the uptime view only when it rules the service out.
            let phase_line = match (probe, fault) {
                (Probe::Ready, fault) => Some(("phase", fault.map_or(Ok(()), Err))),
                (Probe::Health, fault) => fault.map(|word| ("phase", Err(word))),
            };
            let name = if readiness { "ready" } else { "health" };
            let extra: Vec<_> = phase_line.into_iter().collect();
            let text = verbose(
                name,
                &view,
                &snapshot.checks,
                &extra,
                status.passed(),
                details,
            );
            answer(status.passed(), &TEXT, text)
        }
        (Format::Ietf, _) => {
            let output = fault.map(|word| format!("the instance is {word}"));
            let body = ietf(status, view.included(&snapshot.checks), output, details);
            answer(status.passed(), &HEALTH_JSON, json_bytes(&body))
        }
    })
}

/// Answers `GET`/`HEAD /health/ready/{check}` with one check's standing.
#[utoipa::path(
    get,
    path = "/health/ready/{check}",
    operation_id = "health_ready_check",
    tag = "System",
    summary = "One check alone: does it pass?",
    description = "200 when the named check passes, 503 when it fails, whatever the other checks and the instance's phase say.",
    params(("check" = String, Path, description = "The check's name, as readiness lists it.", example = "database")),
    responses(
        (status = 200, description = "The check passes.", body = CheckReport,
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 503, description = "The check fails, or has not run yet.", body = CheckReport,
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 404, description = "No check has that name.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn health_ready_check(
    check: Path<String>,
    monitor: Data<HealthMonitor>,
    state: Data<HealthState>,
) -> Result<HttpResponse, Problem> {
    let snapshot = monitor.snapshot();
    match snapshot.check(&check) {
        Some(found) => {
            let body = json_bytes(&CheckReport::new(found, state.details));
            Ok(answer(found.passing(), &JSON, body))
        }
        None if monitor.has_check(&check) => {
            let mut problem = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("health check {:?} has not run yet", check.as_str()),
            );
            problem.retry_after = Some(1);
            Err(problem)
        }
        None => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no health check named {:?}", check.as_str()),
        )),
    }
}

/// Answers `GET`/`HEAD /health/live`: 200 whenever the process can answer.
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "health_live",
    tag = "System",
    summary = "Liveness: is the process able to answer?",
    description = "Always 200 while the process can serve, including while it drains, so an orchestrator never restarts an instance that is only shutting down. Runs no checks. \
        `?verbose` or `Accept: text/plain` answers in Kubernetes' verbose text.",
    params(
        ("verbose" = Option<VerboseFlag>, Query, description = "Answer in Kubernetes' verbose text: `[+]ping ok`, then `live check passed`."),
        ("exclude" = Option<Vec<String>>, Query, style = Form, explode, description = "Accepted for symmetry; liveness runs no checks."),
    ),
    responses(
        (status = 200, description = "The process is alive.",
         content((LivenessResponse = "application/json"), (String = "text/plain")),
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 400, description = "`verbose` is not one of its values.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn health_live(req: HttpRequest) -> Result<HttpResponse, Problem> {
    let view = View::of(&req, false)?;
    Ok(match view.format {
        Format::Text => {
            let text = verbose("live", &view, &[], &[("ping", Ok(()))], true, false);
            answer(true, &TEXT, text)
        }
        Format::Json | Format::Ietf => answer(true, &JSON, LIVE_BODY.clone()),
    })
}

/// Answers `GET`/`HEAD /info` with what this build is and how long it has run.
#[utoipa::path(
    get,
    path = "/info",
    operation_id = "service_info",
    tag = "System",
    summary = "Build and run information",
    description = "The version, the git commit, the build's time, compiler and target, when the process started, and the registered features. No settings, secrets or environment.",
    responses(
        (status = 200, description = "This build and this process.", body = InfoResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`: the uptime changes."))),
    )
)]
pub(crate) async fn service_info(state: Data<HealthState>) -> HttpResponse {
    let info = InfoResponse {
        service_name: SERVICE_NAME.to_owned(),
        version: VERSION.to_owned(),
        git_commit: GIT_COMMIT.to_owned(),
        build_time: BUILD_TIME.clone(),
        rustc: RUSTC.to_owned(),
        target: TARGET.to_owned(),
        started_at: rfc3339(state.started_at),
        uptime_s: state.started.elapsed().as_secs(),
        features: state.features.clone(),
    };
    answer(true, &JSON, json_bytes(&info))
}
