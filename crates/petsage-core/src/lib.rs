//! The contract between PetSage feature crates and the app that composes them.
//!
//! A feature crate implements [`Feature`]: it hands over its [`Endpoint`]s
//! (relative to the API prefix, which only the app knows), its OpenAPI fragment,
//! its name and its [`HealthCheck`]s, which the app's one [`HealthMonitor`] runs. Errors leave every endpoint as RFC 9457 [`Problem`] bodies.

mod endpoint;
mod health;
mod openapi;
mod problem;

pub use endpoint::{Endpoint, RouteInfo};
pub use health::{
    CheckOutcome, CheckResult, HealthCheck, HealthMonitor, MonitorSettings, Phase, Report,
};
pub use openapi::document_head;
pub use problem::{PROBLEM_CONTENT_TYPE, Problem};

/// What a feature crate hands the app.
///
/// The app keeps one list of features and builds both the served routes and
/// the OpenAPI document from it, so the two cannot drift apart.
pub trait Feature: Send + Sync + 'static {
    /// Short, unique, kebab-case name of the feature (used in logs and docs).
    fn name(&self) -> &'static str;

    /// The feature's endpoints, with paths relative to the API prefix.
    ///
    /// Called once per server worker; build the endpoints, do no I/O here.
    fn endpoints(&self) -> Vec<Endpoint>;

    /// The feature's OpenAPI fragment, with paths relative to the API prefix.
    fn openapi(&self) -> utoipa::openapi::OpenApi;

    /// The health checks this feature contributes; readiness runs them all.
    fn health_checks(&self) -> Vec<HealthCheck> {
        Vec::new()
    }
}
