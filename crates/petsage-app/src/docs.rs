//! The merged OpenAPI document and the Swagger UI that shows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use petsage_core::{BuiltFeature, FieldError, Problem, Route, Routes};
use utoipa::OpenApi;
use utoipa_swagger_ui::Config;

use crate::API_PREFIX;
use crate::assets::Asset;

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
    // HEAD is served beside every GET but not documented as an operation of
    // its own, as FastAPI and Spring do: listed, each GET's copy doubled the
    // docs page and gave generated clients a `*_head` function per path.
    features.iter().fold(ApiDoc::openapi(), |doc, feature| {
        doc.nest(API_PREFIX, feature.openapi())
    })
}

/// The document serialized once at start-up; every request shares the bytes.
pub(crate) fn openapi_json(features: &[Arc<dyn BuiltFeature>]) -> Bytes {
    Bytes::from(openapi(features).to_json().unwrap_or_default())
}

/// What the docs routes serve: the OpenAPI document and Swagger UI's files,
/// each compressed once and validated by `ETag`. One per server, shared by its workers.
pub(crate) struct Docs {
    /// The features the document describes.
    features: Arc<[Arc<dyn BuiltFeature>]>,
    /// The document, built and serialized on its first request.
    openapi: OnceLock<Arc<Asset>>,
    config: Arc<Config<'static>>,
    /// Swagger UI's files by name, made on first request; only names it ships get in.
    files: Mutex<HashMap<String, Arc<Asset>>>,
}

impl Docs {
    /// The docs of a server made of `features`; nothing is built until asked for.
    pub(crate) fn new(features: Arc<[Arc<dyn BuiltFeature>]>) -> Self {
        Self {
            features,
            openapi: OnceLock::new(),
            config: Arc::new(Config::new([OPENAPI_PATH])),
            files: Mutex::default(),
        }
    }

    /// The OpenAPI document, built and serialized once, on its first request.
    fn openapi(&self) -> Arc<Asset> {
        Arc::clone(self.openapi.get_or_init(|| {
            Arc::new(Asset::new(
                openapi_json(&self.features),
                HeaderValue::from_static("application/json"),
                "no-cache",
            ))
        }))
    }

    /// Swagger UI's file `name` (`""` is its page), or `None` when it ships no such file.
    fn file(&self, name: &str) -> Option<Arc<Asset>> {
        let name = if name.is_empty() { "index.html" } else { name };
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(asset) = files.get(name) {
            return Some(Arc::clone(asset));
        }
        let file = utoipa_swagger_ui::serve(name, Arc::clone(&self.config)).ok()??;
        let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("html") => HeaderValue::from_static("text/html; charset=utf-8"),
            Some("js") => HeaderValue::from_static("text/javascript; charset=utf-8"),
            Some("css") => HeaderValue::from_static("text/css; charset=utf-8"),
            _ => HeaderValue::from_str(&file.content_type).ok()?,
        };
        // The page and its initializer (which names the document) are
        // revalidated on every visit; the versioned library files are kept a day.
        let cache = if matches!(name, "index.html" | "swagger-initializer.js") {
            "no-cache"
        } else {
            "public, max-age=86400"
        };
        let asset = Arc::new(Asset::new(file.bytes.into_owned(), content_type, cache));
        files.insert(name.to_owned(), Arc::clone(&asset));
        Some(asset)
    }
}

/// Registers the OpenAPI document, Swagger UI and the redirects to it.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, docs: Arc<Docs>) {
    let json_docs = Arc::clone(&docs);
    let serve_json = move |req: HttpRequest| {
        let asset = json_docs.openapi();
        async move { asset.respond(&req).await }
    };
    let serve_ui = move |req: HttpRequest, name: web::Path<String>| {
        let file = docs.file(&name);
        async move {
            match file {
                Some(asset) => Ok(asset.respond(&req).await),
                None => Err(Problem::new(
                    StatusCode::NOT_FOUND,
                    format!("Swagger UI has no file {:?}", name.as_str()),
                )),
            }
        }
    };
    let plumbing = Routes::new()
        .route(Route::undocumented(OPENAPI_PATH, serve_json))
        .route(Route::undocumented(
            "/docs/{name:[A-Za-z0-9._-]*}",
            serve_ui,
        ))
        .route(Route::undocumented("/", redirect_to_docs))
        .route(Route::undocumented("/docs", redirect_to_docs));
    for service in plumbing.into_services() {
        cfg.service(service);
    }
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
    fn head_is_served_but_not_listed_as_an_operation() {
        let doc = crate::cli::with_defaults(&crate::features(), |built| openapi(&built.features));
        let gets = doc.paths.paths.values().filter(|item| item.get.is_some());
        assert!(gets.count() > 0);
        for (path, item) in &doc.paths.paths {
            assert!(item.head.is_none(), "{path} lists HEAD");
        }
    }
}
