//! PetSage's health feature: the health model and the endpoint uptime
//! checkers, load balancers and orchestrators poll.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::web::Bytes;
use petsage_core::{Endpoint, Feature};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// The service's name as reported by the health check.
pub const SERVICE_NAME: &str = "PetSage Backend";

/// The service's version: the workspace version this build was made from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Path of the health check, relative to the API prefix.
pub const HEALTH_PATH: &str = "/health";

/// The overall health of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The service is operational.
    Ok,
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

/// The `ok` body never changes during a run: serialize it once, not per poll.
static OK_BODY: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(serde_json::to_vec(&HealthCheckResponse::new(HealthStatus::Ok)).unwrap_or_default())
});

/// Answers `GET`/`HEAD /health` with the service's status, name and version.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health_check",
    tag = "System",
    summary = "Perform a system health check",
    description = "This endpoint can be used to verify that the PetSage backend service is operational. It's a lightweight check ideal for automated monitoring.",
    responses(
        (status = 200, description = "The service is operational.", body = HealthCheckResponse,
         headers(("Cache-Control" = String, description = "Always `no-store`: health is never cached."))),
    )
)]
pub async fn health_check() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .insert_header(no_store())
        .body(OK_BODY.clone())
}

fn no_store() -> (header::HeaderName, CacheControl) {
    (
        header::CACHE_CONTROL,
        CacheControl(vec![CacheDirective::NoStore]),
    )
}

/// The OpenAPI fragment of the health feature, relative to the API prefix.
#[derive(OpenApi)]
#[openapi(
    paths(health_check),
    components(schemas(HealthCheckResponse, HealthStatus)),
    tags((name = "System", description = "Service health and operations."))
)]
pub struct HealthApi;

/// The health feature, as registered in the app's feature list.
pub struct Health;

impl Feature for Health {
    fn name(&self) -> &'static str {
        "health"
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        vec![Endpoint::new(HEALTH_PATH).get(health_check).quiet()]
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        HealthApi::openapi()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::App;
    use actix_web::http::{Method, StatusCode};
    use actix_web::test as atest;

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
    async fn health_answers_ok_with_no_store() {
        let app = atest::init_service(
            App::new().service(Endpoint::new(HEALTH_PATH).get(health_check).into_service()),
        )
        .await;
        for method in [Method::GET, Method::HEAD] {
            let req = atest::TestRequest::default()
                .method(method.clone())
                .uri("/health")
                .to_request();
            let res = atest::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::OK, "{method}");
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
            if method == Method::GET {
                let body: HealthCheckResponse = atest::read_body_json(res).await;
                assert_eq!(body, HealthCheckResponse::new(HealthStatus::Ok));
            }
        }
    }

    #[test]
    fn openapi_fragment_documents_the_contract() {
        let doc = serde_json::to_value(HealthApi::openapi()).expect("serializes");
        let op = &doc["paths"]["/health"]["get"];
        assert_eq!(op["operationId"], "health_check");
        assert_eq!(op["summary"], "Perform a system health check");
        assert_eq!(op["tags"][0], "System");
        let schema = &doc["components"]["schemas"]["HealthCheckResponse"];
        assert_eq!(
            schema["properties"]["service_name"]["description"],
            "The name of the running service."
        );
    }

    #[test]
    fn feature_serves_what_it_documents() {
        let doc = HealthApi::openapi();
        for endpoint in Health.endpoints() {
            let info = endpoint.info();
            assert!(
                doc.paths.paths.contains_key(info.path),
                "{} undocumented",
                info.path
            );
        }
    }
}
