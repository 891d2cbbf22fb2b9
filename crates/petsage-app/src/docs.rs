//! The merged OpenAPI document and the Swagger UI that shows it.

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use std::sync::Arc;

use petsage_core::{BuiltFeature, FieldError, Problem, Route, Routes};
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::API_PREFIX;

/// Where the OpenAPI document is served.
pub(crate) const OPENAPI_PATH: &str = "/api-docs/openapi.json";
/// Where Swagger UI is served (the trailing slash matters to its relative links).
pub(crate) const DOCS_PATH: &str = "/docs/";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "PetSage Backend API",
        description = "Welcome to the PetSage API.\nThis service powers all features for the PetSage ecosystem, helping you care for your pets.",
    ),
    components(schemas(Problem, FieldError))
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of the service: every feature nested under the API prefix.
pub fn openapi(features: &[Arc<dyn BuiltFeature>]) -> utoipa::openapi::OpenApi {
    let mut doc = features.iter().fold(ApiDoc::openapi(), |doc, feature| {
        doc.nest(API_PREFIX, feature.openapi())
    });
    petsage_core::document_head(&mut doc);
    doc
}

/// The document serialized once at start-up; every request shares the bytes.
pub(crate) fn openapi_json(features: &[Arc<dyn BuiltFeature>]) -> Bytes {
    Bytes::from(openapi(features).to_json().unwrap_or_default())
}

/// Registers the OpenAPI document, Swagger UI and the redirects to it.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, openapi_json: Bytes) {
    let serve_json = move || {
        let body = openapi_json.clone();
        async move {
            HttpResponse::Ok()
                .insert_header(ContentType::json())
                .insert_header(CacheControl(vec![CacheDirective::NoCache]))
                .body(body)
        }
    };
    let plumbing = Routes::new()
        .route(Route::undocumented(OPENAPI_PATH, serve_json))
        .route(Route::undocumented("/", redirect_to_docs))
        .route(Route::undocumented("/docs", redirect_to_docs));
    for service in plumbing.into_services() {
        cfg.service(service);
    }
    cfg.service(SwaggerUi::new("/docs/{_:.*}").config(Config::new([OPENAPI_PATH])));
}

async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, DOCS_PATH))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_nests_every_feature_under_the_api_prefix() {
        let doc = crate::cli::with_defaults(&crate::features(), |built| openapi(&built.features));
        assert!(
            doc.paths
                .paths
                .keys()
                .all(|path| path.starts_with(API_PREFIX))
        );
        assert!(doc.paths.paths.contains_key("/api/v1/health"));
        assert_eq!(doc.info.title, "PetSage Backend API");
        assert_eq!(doc.info.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_get_is_documented_with_head_too() {
        let doc = crate::cli::with_defaults(&crate::features(), |built| openapi(&built.features));
        for (path, item) in &doc.paths.paths {
            if item.get.is_some() {
                assert!(item.head.is_some(), "{path} lacks HEAD");
            }
        }
    }
}
