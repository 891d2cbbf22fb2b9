//! The PetSage backend: composes the feature crates into one HTTP service.
//!
//! This is the only crate that knows the API prefix, the middleware, the
//! logging set-up, the configuration and Swagger UI. Features are listed once,
//! in [`features`]; the served routes and the OpenAPI document are both built
//! from that list.

pub mod cli;
mod docs;
mod drain;
mod errors;
mod server;

pub use docs::openapi;
pub use server::{Settings, run};

use petsage_core::{Feature, RouteInfo};

/// The prefix every feature's endpoints are served under.
pub const API_PREFIX: &str = "/api/v1";

/// The features this service is made of, in the order they are mounted.
pub type Features = Vec<Box<dyn Feature>>;

/// PetSage's features: registering a feature is one line here.
pub fn features() -> Features {
    vec![
        Box::new(petsage_health::Health),
        // `cargo xtask new-feature` adds new features above this line.
    ]
}

/// Every endpoint the features serve, with its full path (API prefix included).
pub fn routes(features: &[Box<dyn Feature>]) -> Vec<(String, RouteInfo)> {
    features
        .iter()
        .flat_map(|feature| feature.endpoints())
        .map(|endpoint| {
            let info = endpoint.info();
            (format!("{API_PREFIX}{}", info.path), info)
        })
        .collect()
}
