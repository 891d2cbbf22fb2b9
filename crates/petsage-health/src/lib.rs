//! PetSage's health feature: the health model and the endpoints that uptime
//! checkers (`/health`), load balancers (`/health/ready`) and orchestrators
//! (`/health/live`) poll.
//!
//! The checks themselves come from every feature and run in the app's
//! [`HealthMonitor`]; this crate turns the monitor's phase and report into
//! answers.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpResponse, HttpResponseBuilder};
use petsage_core::{Context, Feature, HealthMonitor, NoSettings, Phase, Report, Routes, route};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// The service's name as reported by the health check.
pub const SERVICE_NAME: &str = "PetSage Backend";

/// The service's version: the workspace version this build was made from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Path of the health check, relative to the API prefix.
pub const HEALTH_PATH: &str = "/health";
/// Path of the readiness check, relative to the API prefix.
pub const READY_PATH: &str = "/health/ready";
/// Path of the liveness check, relative to the API prefix.
pub const LIVE_PATH: &str = "/health/live";

/// The overall health of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Serving, and every check passes.
    Ok,
    /// Serving, but a non-critical check fails.
    Degraded,
    /// Not serving: a critical check fails, or start-up or drain is under way.
    Unavailable,
}

impl HealthStatus {
    /// The status for a service in `phase` whose checks gave `report`.
    pub fn of(phase: Phase, report: &Report) -> Self {
        if phase != Phase::Serving || report.critical_failed() {
            Self::Unavailable
        } else if report.any_failed() {
            Self::Degraded
        } else {
            Self::Ok
        }
    }

    /// The HTTP status that carries this health: 503 when unavailable, else 200.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Ok | Self::Degraded => StatusCode::OK,
        }
    }
}

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

/// Where the service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PhaseName {
    /// Start-up is not finished.
    Starting,
    /// Serving traffic.
    Serving,
    /// Shutting down: finishing requests, asking for no new traffic.
    Draining,
}

impl From<Phase> for PhaseName {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Starting => Self::Starting,
            Phase::Serving => Self::Serving,
            Phase::Draining => Self::Draining,
        }
    }
}

/// Whether one check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The check passed.
    Ok,
    /// The check failed or timed out.
    Failed,
}

/// One check's result in a readiness answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "database", "status": "ok", "critical": true, "duration_ms": 1.25}))]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub status: CheckStatus,
    /// Whether its failure makes the service unavailable.
    pub critical: bool,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Why it failed; present only when `PETSAGE_HEALTH_DETAILS=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Response of the readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok", "phase": "serving", "checks": [
    {"name": "database", "status": "ok", "critical": true, "duration_ms": 1.25}
]}))]
pub struct ReadinessResponse {
    /// `unavailable` (with 503) when a critical check fails or the service is starting or draining.
    pub status: HealthStatus,
    /// Where the service is in its life.
    pub phase: PhaseName,
    /// Every check's result, in registration order.
    pub checks: Vec<CheckReport>,
}

/// The `ok` bodies never change during a run: serialize them once, not per poll.
static OK_BODY: LazyLock<Bytes> =
    LazyLock::new(|| json_bytes(&HealthCheckResponse::new(HealthStatus::Ok)));
static LIVE_BODY: LazyLock<Bytes> = LazyLock::new(|| {
    json_bytes(&LivenessResponse {
        status: HealthStatus::Ok,
    })
});

fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// A health response: JSON, never cached. The header values are static, so
/// building one allocates nothing.
fn health_response(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    builder
}

/// Answers `GET`/`HEAD /health` with the service's status, name and version.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health_check",
    tag = "System",
    summary = "Perform a system health check",
    description = "This endpoint can be used to verify that the PetSage backend service is operational. It's a lightweight check ideal for automated monitoring.",
    responses(
        (status = 200, description = "The service is operational: `ok`, or `degraded` when a non-critical check fails.", body = HealthCheckResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`: health is never cached."))),
        (status = 503, description = "The service is `unavailable`: a critical check fails, or it is starting or draining.", body = HealthCheckResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`.")),
         example = json!({"status": "unavailable", "service_name": SERVICE_NAME, "version": VERSION})),
    )
)]
pub async fn health_check(monitor: Data<HealthMonitor>) -> HttpResponse {
    let report = monitor.report().await;
    match HealthStatus::of(monitor.phase(), &report) {
        HealthStatus::Ok => health_response(StatusCode::OK).body(OK_BODY.clone()),
        status => health_response(status.http_status())
            .body(json_bytes(&HealthCheckResponse::new(status))),
    }
}

/// Answers `GET`/`HEAD /health/ready` with the phase and every check's result.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "System",
    summary = "Readiness: may this instance receive traffic?",
    description = "200 while serving with no critical check failing; 503 while starting, draining, or when a critical check fails. Load balancers and Kubernetes readiness probes poll this. Check results are cached briefly and every check is bounded by a timeout, so it answers quickly whatever a check does.",
    responses(
        (status = 200, description = "Ready: `ok`, or `degraded` when a non-critical check fails.", body = ReadinessResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
        (status = 503, description = "Not ready: send no traffic.", body = ReadinessResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`.")),
         example = json!({"status": "unavailable", "phase": "draining", "checks": []})),
    )
)]
pub async fn health_ready(monitor: Data<HealthMonitor>) -> HttpResponse {
    let report = monitor.report().await;
    let phase = monitor.phase();
    let status = HealthStatus::of(phase, &report);
    let details = monitor.settings().details;
    let render = || json_bytes(&ReadinessResponse::new(phase, &report, details));
    // While serving, the body only changes with the report: render it once per run.
    let body = if phase == Phase::Serving {
        report.rendered.get_or_init(render).clone()
    } else {
        render()
    };
    health_response(status.http_status()).body(body)
}

impl ReadinessResponse {
    /// The readiness answer for `phase` and `report`; error texts only with `details`.
    pub fn new(phase: Phase, report: &Report, details: bool) -> Self {
        Self {
            status: HealthStatus::of(phase, report),
            phase: phase.into(),
            checks: report
                .checks
                .iter()
                .map(|check| CheckReport {
                    name: check.name.clone(),
                    status: if check.passed() {
                        CheckStatus::Ok
                    } else {
                        CheckStatus::Failed
                    },
                    critical: check.critical,
                    duration_ms: (check.duration.as_secs_f64() * 1e6).round() / 1e3,
                    error: check.error.clone().filter(|_| details),
                })
                .collect(),
        }
    }
}

/// Answers `GET`/`HEAD /health/live`: 200 whenever the process can answer.
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "health_live",
    tag = "System",
    summary = "Liveness: is the process able to answer?",
    description = "Always 200 while the process can serve, including while it drains, so an orchestrator never restarts an instance that is only shutting down. Runs no checks.",
    responses(
        (status = 200, description = "The process is alive.", body = LivenessResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`."))),
    )
)]
pub async fn health_live() -> HttpResponse {
    health_response(StatusCode::OK).body(LIVE_BODY.clone())
}

/// The health feature's tags and schemas; its paths come from its routes.
#[derive(OpenApi)]
#[openapi(
    components(schemas(HealthCheckResponse, HealthStatus, LivenessResponse, ReadinessResponse, CheckReport, CheckStatus, PhaseName)),
    tags((name = "System", description = "Service health and operations."))
)]
pub struct HealthApi;

/// The health feature, as registered in the app's feature list.
pub struct Health;

impl Feature for Health {
    const NAME: &'static str = "health";
    type Settings = NoSettings;

    fn build(_: NoSettings, _: &mut Context) -> Result<Self, String> {
        Ok(Self)
    }

    fn routes(&self) -> Routes {
        Routes::new()
            .route(route!(health_check).quiet())
            .route(route!(health_ready).quiet())
            .route(route!(health_live).quiet())
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        HealthApi::openapi()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use actix_web::App;
    use actix_web::http::Method;
    use actix_web::test as atest;
    use petsage_core::{BuiltFeature, HealthCheck, MonitorSettings};

    fn monitor(checks: Vec<HealthCheck>, phase: Phase) -> Data<HealthMonitor> {
        let monitor = HealthMonitor::new(
            checks,
            MonitorSettings {
                check_timeout: Duration::from_millis(200),
                cache_ttl: Duration::ZERO,
                details: false,
            },
        );
        monitor.set_phase(phase);
        Data::new(monitor)
    }

    async fn call(
        monitor: Data<HealthMonitor>,
        method: Method,
        uri: &str,
    ) -> actix_web::dev::ServiceResponse {
        let app = Feature::routes(&Health)
            .into_services()
            .into_iter()
            .fold(App::new().app_data(monitor), |app, service| {
                app.service(service)
            });
        let app = atest::init_service(app).await;
        atest::call_service(
            &app,
            atest::TestRequest::default()
                .method(method)
                .uri(uri)
                .to_request(),
        )
        .await
    }

    #[test]
    fn model_serializes_to_the_seed_contract() {
        let json =
            serde_json::to_value(HealthCheckResponse::new(HealthStatus::Ok)).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"status": "ok", "service_name": "PetSage Backend", "version": env!("CARGO_PKG_VERSION")})
        );
    }

    #[actix_web::test]
    async fn every_endpoint_answers_get_and_head_with_no_store() {
        for path in ["/health", "/health/ready", "/health/live"] {
            for method in [Method::GET, Method::HEAD] {
                let res = call(monitor(Vec::new(), Phase::Serving), method.clone(), path).await;
                assert_eq!(res.status(), StatusCode::OK, "{method} {path}");
                assert_eq!(
                    res.headers()
                        .get(header::CACHE_CONTROL)
                        .map(|v| v.as_bytes()),
                    Some(&b"no-store"[..])
                );
                assert_eq!(
                    res.headers()
                        .get(header::CONTENT_TYPE)
                        .map(|v| v.as_bytes()),
                    Some(&b"application/json"[..])
                );
            }
        }
        let res = call(monitor(Vec::new(), Phase::Serving), Method::GET, "/health").await;
        let body: HealthCheckResponse = atest::read_body_json(res).await;
        assert_eq!(body, HealthCheckResponse::new(HealthStatus::Ok));
    }

    #[actix_web::test]
    async fn critical_failure_is_unavailable_and_non_critical_is_degraded() {
        let critical = HealthCheck::critical("db", || async { Err("down".to_owned()) });
        let optional = HealthCheck::non_critical("cache", || async { Err("cold".to_owned()) });

        let res = call(
            monitor(vec![critical], Phase::Serving),
            Method::GET,
            "/health",
        )
        .await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: HealthCheckResponse = atest::read_body_json(res).await;
        assert_eq!(body.status, HealthStatus::Unavailable);

        let res = call(
            monitor(vec![optional.clone()], Phase::Serving),
            Method::GET,
            "/health",
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: HealthCheckResponse = atest::read_body_json(res).await;
        assert_eq!(body.status, HealthStatus::Degraded);

        let res = call(
            monitor(vec![optional], Phase::Serving),
            Method::GET,
            "/health/ready",
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: ReadinessResponse = atest::read_body_json(res).await;
        assert_eq!(body.status, HealthStatus::Degraded);
        assert_eq!(body.checks[0].status, CheckStatus::Failed);
        assert_eq!(body.checks[0].error, None, "details are off by default");
    }

    #[actix_web::test]
    async fn draining_fails_readiness_but_not_liveness() {
        let m = monitor(Vec::new(), Phase::Draining);
        assert_eq!(
            call(m.clone(), Method::GET, "/health/ready").await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(m.clone(), Method::GET, "/health").await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(m, Method::GET, "/health/live").await.status(),
            StatusCode::OK
        );
    }

    #[actix_web::test]
    async fn starting_is_not_ready() {
        let res = call(
            monitor(Vec::new(), Phase::Starting),
            Method::GET,
            "/health/ready",
        )
        .await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: ReadinessResponse = atest::read_body_json(res).await;
        assert_eq!(body.phase, PhaseName::Starting);
    }

    #[test]
    fn openapi_fragment_documents_the_contract() {
        let doc = serde_json::to_value(BuiltFeature::openapi(&Health)).expect("serializes");
        let op = &doc["paths"]["/health"]["get"];
        assert_eq!(op["operationId"], "health_check");
        assert_eq!(op["summary"], "Perform a system health check");
        assert_eq!(op["tags"][0], "System");
        assert!(op["responses"]["503"].is_object());
        assert!(doc["paths"]["/health/ready"]["get"]["responses"]["503"].is_object());
        let schema = &doc["components"]["schemas"]["HealthCheckResponse"];
        assert_eq!(
            schema["properties"]["service_name"]["description"],
            "The name of the running service."
        );
    }

    #[test]
    fn serves_the_paths_the_constants_name() {
        let served: Vec<String> = Feature::routes(&Health)
            .info()
            .into_iter()
            .map(|info| info.path)
            .collect();
        assert_eq!(served, [HEALTH_PATH, READY_PATH, LIVE_PATH]);
    }
}
