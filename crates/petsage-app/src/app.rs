//! The app factory: the features' routes, the docs and metrics routes and the
//! fallback, inside the request pipeline's layers, stacked in one place.
//! Start-up and teardown live in [`crate::server`].

use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::web::Data;
use actix_web::{App, Error, web};
use petsage_core::{BuiltFeature, HealthMonitor, Routes};
use petsage_identity::dev::DevIssuer;

use crate::layers::Layered;
use crate::layers::drain::CloseWhileDraining;
use crate::layers::header_limit::HeaderLimit;
use crate::layers::observe::Observe;
use crate::layers::problems::Problems;
use crate::layers::request_id::AssignRequestId;
use crate::layers::security_headers::SecurityHeaders;
use crate::metrics::{self, Metrics};
use crate::{API_PREFIX, docs, errors, routes_of};

/// Everything one worker's app is made from; shared by every worker.
#[derive(Clone)]
pub(crate) struct AppParts {
    /// The built features, whose routes are served under the API prefix.
    pub(crate) features: Arc<[Arc<dyn BuiltFeature>]>,
    /// The OpenAPI document and Swagger UI, when docs are on.
    pub(crate) docs: Option<Arc<docs::Docs>>,
    /// The service's health, read by the health routes and the drain layer.
    pub(crate) monitor: Data<HealthMonitor>,
    /// The registry, when metrics are on: its HTTP series count every request.
    pub(crate) metrics: Option<Data<Metrics>>,
    /// Whether `/metrics` is served here (else on its own listener).
    pub(crate) metrics_route: bool,
    /// Paths whose requests write no access line.
    pub(crate) quiet_paths: Arc<[String]>,
    /// Largest request body accepted.
    pub(crate) max_body_bytes: usize,
    /// Largest total size of a request's headers.
    pub(crate) max_header_bytes: usize,
    /// In dev mode, the instance's own token issuer, whose discovery document and keys are served.
    pub(crate) dev_issuer: Option<Arc<DevIssuer>>,
}

impl AppParts {
    /// Paths that write no access line: the features' quiet routes, and scrapes.
    pub(crate) fn quiet_paths(features: &[Arc<dyn BuiltFeature>]) -> Arc<[String]> {
        routes_of(features)
            .into_iter()
            .filter(|(_, info)| info.quiet)
            .map(|(path, _)| path)
            .chain(std::iter::once(metrics::PATH.to_owned()))
            .collect()
    }

    /// One worker's app: the routes inside the layers.
    pub(crate) fn app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<BoxBody>,
            Error = Error,
            InitError = (),
        > + use<>,
    > {
        // Mounted under the prefix one by one rather than in a `web::scope`:
        // a scope costs every request a second router pass.
        let api: Vec<_> = self
            .features
            .iter()
            .flat_map(|feature| feature.routes().into_services_under(API_PREFIX))
            .collect();
        let docs = self.docs.clone();
        let metrics_route = self.metrics.clone().filter(|_| self.metrics_route);
        let dev_routes = self.dev_issuer.as_ref().map(petsage_identity::dev::routes);
        App::new()
            .app_data(self.monitor.clone())
            .app_data(web::PayloadConfig::new(self.max_body_bytes))
            .app_data(web::JsonConfig::default().limit(self.max_body_bytes))
            // The request pipeline, outermost first; why in this order:
            // docs/architecture.md. One middleware runs them all.
            .wrap(Layered((
                Observe {
                    quiet_paths: Arc::clone(&self.quiet_paths),
                    metrics: self.metrics.as_ref().map(|m| Rc::new(m.http())),
                },
                (
                    SecurityHeaders,
                    (
                        Problems,
                        (
                            AssignRequestId,
                            (
                                CloseWhileDraining {
                                    monitor: self.monitor.clone(),
                                },
                                HeaderLimit {
                                    max_bytes: self.max_header_bytes,
                                },
                            ),
                        ),
                    ),
                ),
            )))
            .service(api)
            .configure(|cfg| {
                if let Some(docs) = docs {
                    docs::configure(cfg, docs);
                }
                if let Some(metrics) = metrics_route {
                    metrics::configure(cfg, metrics);
                }
                for service in dev_routes.into_iter().flat_map(Routes::into_services) {
                    cfg.service(service);
                }
            })
            .default_service(web::to(errors::not_found))
    }
}
