//! The PetSage backend: composes the feature crates into one HTTP service.
//!
//! This is the only crate that knows the API prefix, the middleware, the
//! logging set-up, the configuration and Swagger UI. Features are listed once,
//! in [`features`]; the command line, the served routes, the OpenAPI document,
//! the health checks and the start and stop steps are all built from that list.

mod app;
mod assets;
pub mod cli;
mod docs;
mod drain;
mod errors;
mod layers;
mod logging;
mod metrics;
mod server;

pub use docs::openapi;
pub use logging::LogFormat;
pub use server::{Settings, run};

use std::sync::Arc;

use clap::ArgMatches;
use petsage_core::{BuiltFeature, Context, Lifecycle, Registration, RouteInfo};
use petsage_db::DatabaseSettings;
use petsage_identity::{Identity, IdentitySettings};
use petsage_jobs::JobsSettings;

/// The prefix every feature's endpoints are served under.
pub const API_PREFIX: &str = "/api/v1";

/// The features this service is made of, in the order they are mounted.
pub type Features = Vec<Registration>;

/// PetSage's features: registering a feature is one line here.
pub fn features() -> Features {
    vec![
        petsage_core::register::<petsage_health::Health>(),
        // `cargo xtask new-feature` adds new features above this line.
    ]
}

/// The settings of the platforms a feature may ask for, each under its own
/// `--help` heading: the database, identity, and background jobs.
#[derive(Debug, Clone, clap::Args)]
pub struct Platform {
    /// Where the data is and how the pool behaves.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Who may call protected routes.
    #[command(flatten)]
    pub identity: IdentitySettings,
    /// Whether and how this instance runs jobs.
    #[command(flatten)]
    pub jobs: JobsSettings,
}

/// Features built once at start, and what building them added: health
/// checks, start steps and stop steps.
pub struct Built {
    /// The built features, in registration order.
    pub features: Vec<Arc<dyn BuiltFeature>>,
    /// Checks, start steps and stop steps from the features and the resources they asked for.
    pub lifecycle: Lifecycle,
    /// The identity platform, when a feature serves protected routes.
    pub identity: Option<Identity>,
}

/// Builds `features` from the parsed command line (each takes its settings
/// out of `matches`), to serve them or (not `serving`) only to document or
/// migrate them. No I/O happens here; it waits for the start steps. Must be
/// called inside an actix system.
pub fn build(
    features: &[Registration],
    matches: &mut ArgMatches,
    platform: Platform,
    serving: bool,
) -> Result<Built, String> {
    let Platform {
        database,
        mut identity,
        jobs,
    } = platform;
    identity.data_dir.clone_from(&database.data_dir);
    identity.documents_only = !serving;
    let mut ctx = Context::for_features(features.iter().map(Registration::name));
    ctx.insert(database);
    ctx.insert(identity);
    ctx.insert(jobs);
    let built = features
        .iter()
        .map(|feature| feature.build(&mut *matches, &mut ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Built {
        features: built,
        identity: ctx.get::<Identity>().cloned(),
        lifecycle: ctx.into_lifecycle(),
    })
}

/// Every endpoint `features` serve with their default settings, with full paths (API prefix included).
pub fn routes(features: &[Registration]) -> Vec<(String, RouteInfo)> {
    cli::with_defaults(features, |built| routes_of(&built.features))
}

fn routes_of(features: &[Arc<dyn BuiltFeature>]) -> Vec<(String, RouteInfo)> {
    features
        .iter()
        .flat_map(|feature| feature.routes().info())
        .map(|info| (format!("{API_PREFIX}{}", info.path), info))
        .collect()
}
