//! The health feature's answers, in an actix test service, for each phase,
//! check outcome and representation.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::test as atest;
use actix_web::web::Data;
use petsage_core::{BuiltFeature, Context, HealthCheck, HealthMonitor, MonitorSettings, Phase};

use super::*;

fn down(name: &'static str, critical: bool) -> HealthCheck {
    let check = move || async move { Err(format!("{name} is down")) };
    if critical {
        HealthCheck::critical(name, check)
    } else {
        HealthCheck::non_critical(name, check)
    }
}

fn up(name: &'static str) -> HealthCheck {
    HealthCheck::critical(name, || async { Ok(()) }).component_type("datastore")
}

/// A monitor that has run `checks` once, in `phase`.
async fn monitor(checks: Vec<HealthCheck>, phase: Phase) -> Data<HealthMonitor> {
    let monitor = Arc::new(HealthMonitor::new(
        checks,
        MonitorSettings {
            check_timeout: Duration::from_millis(200),
            interval: Duration::from_secs(3600),
            failure_threshold: 1,
            success_threshold: 1,
        },
    ));
    Arc::clone(&monitor).start().await;
    monitor.set_phase(phase);
    Data::from(monitor)
}

/// The reply to one request; `args` are the health feature's settings.
async fn call(
    monitor: Data<HealthMonitor>,
    args: &[&str],
    req: atest::TestRequest,
) -> actix_web::dev::ServiceResponse {
    let ctx = Context::for_features(["health", "pet-profiles"]);
    let (feature, _) = petsage_core::testing::start::<Health>(ctx, args)
        .await
        .expect("builds");
    let app = atest::init_service(petsage_core::testing::app(&*feature).app_data(monitor)).await;
    atest::call_service(&app, req.to_request()).await
}

async fn get(monitor: Data<HealthMonitor>, uri: &str) -> actix_web::dev::ServiceResponse {
    call(monitor, &[], atest::TestRequest::get().uri(uri)).await
}

async fn accept(
    monitor: Data<HealthMonitor>,
    uri: &str,
    accept: &str,
) -> actix_web::dev::ServiceResponse {
    let req = atest::TestRequest::get()
        .uri(uri)
        .insert_header((header::ACCEPT, accept));
    call(monitor, &[], req).await
}

async fn text(res: actix_web::dev::ServiceResponse) -> String {
    String::from_utf8(atest::read_body(res).await.to_vec()).expect("utf-8")
}

fn content_type(res: &actix_web::dev::ServiceResponse) -> Option<&HeaderValue> {
    res.headers().get(header::CONTENT_TYPE)
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
async fn a_plain_get_of_health_is_the_seed_body_byte_for_byte() {
    let res = get(
        monitor(vec![up("database")], Phase::Serving).await,
        "/health",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = text(res).await;
    assert_eq!(
        body,
        format!(
            r#"{{"status":"ok","service_name":"PetSage Backend","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[actix_web::test]
async fn every_endpoint_answers_get_and_head_with_no_store() {
    for path in ["/health", "/health/ready", "/health/live", "/info"] {
        for method in [Method::GET, Method::HEAD] {
            let req = atest::TestRequest::default()
                .method(method.clone())
                .uri(path);
            let res = call(monitor(Vec::new(), Phase::Serving).await, &[], req).await;
            assert_eq!(res.status(), StatusCode::OK, "{method} {path}");
            assert_eq!(
                res.headers()
                    .get(header::CACHE_CONTROL)
                    .map(HeaderValue::as_bytes),
                Some(&b"no-store"[..])
            );
            assert_eq!(
                content_type(&res).map(HeaderValue::as_bytes),
                Some(&b"application/json"[..])
            );
        }
    }
}

#[actix_web::test]
async fn critical_failure_is_unavailable_and_non_critical_is_degraded() {
    let res = get(
        monitor(vec![down("db", true)], Phase::Serving).await,
        "/health",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: HealthCheckResponse = atest::read_body_json(res).await;
    assert_eq!(body.status, HealthStatus::Unavailable);

    let degraded = || monitor(vec![down("cache", false)], Phase::Serving);
    let res = get(degraded().await, "/health").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: HealthCheckResponse = atest::read_body_json(res).await;
    assert_eq!(body.status, HealthStatus::Degraded);

    let res = get(degraded().await, "/health/ready").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: ReadinessResponse = atest::read_body_json(res).await;
    assert_eq!(body.status, HealthStatus::Degraded);
    let cache = &body.checks[0];
    assert_eq!(cache.status, CheckState::Failed);
    assert_eq!(cache.consecutive_failures, 1);
    assert!(
        cache.since.ends_with('Z') && cache.since.contains('T'),
        "{}",
        cache.since
    );
    assert_eq!(cache.error, None, "details are off by default");

    let req = atest::TestRequest::get().uri("/health/ready");
    let res = call(degraded().await, &["--health-details", "true"], req).await;
    let body: ReadinessResponse = atest::read_body_json(res).await;
    assert_eq!(body.checks[0].error.as_deref(), Some("cache is down"));
}

#[actix_web::test]
async fn a_drain_fails_readiness_only() {
    let m = monitor(vec![up("database")], Phase::Draining).await;
    let ready = get(m.clone(), "/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: ReadinessResponse = atest::read_body_json(ready).await;
    assert_eq!(body.phase, Phase::Draining);
    let health = get(m.clone(), "/health").await;
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "uptime checkers see no outage"
    );
    assert_eq!(get(m, "/health/live").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn starting_is_unavailable_everywhere_but_liveness() {
    let m = Data::new(HealthMonitor::new(
        vec![up("database")],
        MonitorSettings {
            check_timeout: Duration::from_millis(200),
            interval: Duration::from_secs(1),
            failure_threshold: 1,
            success_threshold: 1,
        },
    ));
    for path in ["/health", "/health/ready", "/health/ready/database"] {
        assert_eq!(
            get(m.clone(), path).await.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}"
        );
    }
    assert_eq!(get(m, "/health/live").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn verbose_answers_in_the_kubernetes_form() {
    let checks = || vec![up("database"), down("queue", true), down("cache", false)];
    let res = get(
        monitor(checks(), Phase::Serving).await,
        "/health/ready?verbose",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        content_type(&res).map(HeaderValue::as_bytes),
        Some(&b"text/plain; charset=utf-8"[..])
    );
    assert_eq!(
        text(res).await,
        "[+]phase ok\n[+]database ok\n[-]queue failed: reason withheld\n[-]cache failed: reason withheld\nready check failed\n"
    );

    let req = atest::TestRequest::get().uri("/health/ready?verbose&exclude=queue&exclude=nope");
    let res = call(
        monitor(checks(), Phase::Serving).await,
        &["--health-details", "true"],
        req,
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "excluding the failing critical check"
    );
    assert_eq!(
        text(res).await,
        "[+]phase ok\n[+]database ok\n[+]queue excluded: ok\n[-]cache failed: cache is down\n\
         warn: some health checks cannot be excluded: no matches for \"nope\"\nready check passed\n"
    );

    let res = accept(
        monitor(checks(), Phase::Draining).await,
        "/health",
        "text/plain",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(res).await.ends_with(
        "[-]queue failed: reason withheld\n[-]cache failed: reason withheld\nhealth check failed\n"
    ));

    let res = get(
        monitor(checks(), Phase::Draining).await,
        "/health/live?verbose",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "[+]ping ok\nlive check passed\n");

    let res = get(
        monitor(Vec::new(), Phase::Serving).await,
        "/health/ready?verbose=maybe",
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn an_unknown_exclusion_does_not_change_the_status() {
    let m = monitor(vec![down("db", true)], Phase::Serving).await;
    let res = get(m.clone(), "/health?exclude=nope").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = get(m, "/health?exclude=db").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: HealthCheckResponse = atest::read_body_json(res).await;
    assert_eq!(body.status, HealthStatus::Ok);
}

#[actix_web::test]
async fn health_json_follows_the_ietf_draft() {
    let checks = vec![up("database"), down("cache", false)];
    let res = accept(
        monitor(checks, Phase::Serving).await,
        "/health/ready",
        "application/health+json",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "warn answers 200");
    assert_eq!(
        content_type(&res).map(HeaderValue::as_bytes),
        Some(&b"application/health+json"[..])
    );
    let body: serde_json::Value = atest::read_body_json(res).await;
    assert_eq!(body["status"], "warn");
    assert_eq!(body["version"], VERSION);
    assert_eq!(body["releaseId"], GIT_COMMIT);
    assert_eq!(body["serviceId"], "petsage-backend");
    assert_eq!(body["description"], "PetSage Backend");
    let db = &body["checks"]["database:responseTime"][0];
    assert_eq!(db["status"], "pass");
    assert_eq!(db["observedUnit"], "ms");
    assert_eq!(db["componentType"], "datastore");
    assert!(
        db["observedValue"].is_f64() && db["time"].is_string(),
        "{db}"
    );
    let cache = &body["checks"]["cache:responseTime"][0];
    assert_eq!(cache["status"], "warn");
    assert!(
        cache.get("output").is_none(),
        "no output without details: {cache}"
    );

    let res = accept(
        monitor(vec![down("db", true)], Phase::Serving).await,
        "/health",
        "application/health+json",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = atest::read_body_json(res).await;
    assert_eq!(body["status"], "fail");
}

#[actix_web::test]
async fn one_check_answers_alone() {
    let checks = || vec![up("database"), down("queue", true)];
    let res = get(
        monitor(checks(), Phase::Draining).await,
        "/health/ready/database",
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the phase is not the check's");
    let body: CheckReport = atest::read_body_json(res).await;
    assert_eq!(body.name, "database");
    let res = get(
        monitor(checks(), Phase::Serving).await,
        "/health/ready/queue",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = get(
        monitor(checks(), Phase::Serving).await,
        "/health/ready/nope",
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn info_names_the_build_and_the_features() {
    let res = get(monitor(Vec::new(), Phase::Serving).await, "/info").await;
    let body: InfoResponse = atest::read_body_json(res).await;
    assert_eq!(body.service_name, SERVICE_NAME);
    assert_eq!(body.version, VERSION);
    assert_eq!(body.git_commit, GIT_COMMIT);
    assert!(!GIT_COMMIT.is_empty());
    assert!(body.rustc.starts_with("rustc "), "{}", body.rustc);
    assert_eq!(body.features, ["health", "pet-profiles"]);
    assert!(body.build_time.ends_with('Z'), "{}", body.build_time);
}

#[test]
fn openapi_fragment_documents_the_contract() {
    let doc = serde_json::to_value(BuiltFeature::openapi(&Health {
        state: Data::new(HealthState::new(false, Vec::new())),
    }))
    .expect("serializes");
    let op = &doc["paths"]["/health"]["get"];
    assert_eq!(op["operationId"], "health_check");
    assert_eq!(op["summary"], "Perform a system health check");
    assert_eq!(op["tags"][0], "System");
    assert!(op["responses"]["503"].is_object());
    let ready = &doc["paths"]["/health/ready"]["get"];
    assert!(ready["responses"]["200"]["content"]["application/health+json"].is_object());
    assert!(ready["responses"]["200"]["content"]["text/plain"].is_object());
    let params: Vec<&str> = ready["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(params, ["verbose", "exclude"]);
    assert!(doc["paths"]["/health/ready/{check}"]["get"]["responses"]["404"].is_object());
    assert!(doc["paths"]["/info"]["get"].is_object());
    let schema = &doc["components"]["schemas"]["HealthCheckResponse"];
    assert_eq!(
        schema["properties"]["service_name"]["description"],
        "The name of the running service."
    );
}
