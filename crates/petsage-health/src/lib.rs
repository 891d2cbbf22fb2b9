//! PetSage's health feature: the health model and the endpoints that uptime
//! checkers (`/health`), load balancers (`/health/ready`), orchestrators
//! (`/health/live`) and people (`/info`) ask.
//!
//! The checks come from every feature and run in the app's
//! [`petsage_core::HealthMonitor`]; this crate decides what their latest
//! results mean for each endpoint and how the answer is written.

mod model;
mod routes;
mod views;

use std::sync::LazyLock;
use std::time::SystemTime;

use actix_web::web::Data;
use clap::ArgAction;
use petsage_core::settings::parse_bool;
use petsage_core::{CheckState, Context, Feature, HealthStatus, Phase, Routes, route};
use utoipa::OpenApi;

pub use model::{
    CheckReport, HealthCheckResponse, IetfCheck, IetfHealth, IetfStatus, InfoResponse,
    LivenessResponse, ReadinessResponse, VerboseFlag,
};

use routes::HealthState;

/// The service's name as reported by the health check.
pub const SERVICE_NAME: &str = "PetSage Backend";

/// The service's identifier in the IETF health format.
pub const SERVICE_ID: &str = "petsage-backend";

/// The service's version: the workspace version this build was made from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build was made from (`-dirty` for a modified tree, `unknown` outside git).
pub const GIT_COMMIT: &str = env!("PETSAGE_GIT_COMMIT");

/// The compiler that made this build.
pub const RUSTC: &str = env!("PETSAGE_RUSTC");

/// The target triple of this build.
pub const TARGET: &str = env!("PETSAGE_TARGET");

/// Path of the readiness check, relative to the API prefix.
pub const READY_PATH: &str = "/health/ready";

/// When this build was made (RFC 3339; `SOURCE_DATE_EPOCH` when set).
pub static BUILD_TIME: LazyLock<String> = LazyLock::new(|| {
    env!("PETSAGE_BUILD_EPOCH")
        .parse()
        .ok()
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
        .map_or_else(|| "unknown".to_owned(), |ts| ts.to_string())
});

/// `time` in RFC 3339, UTC, to the millisecond.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time).map_or_else(|_| "unknown".to_owned(), |ts| format!("{ts:.3}"))
}

/// The health feature's settings: how its endpoints answer.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthSettings {
    /// Show failing checks' error texts in health answers (they always go to the log).
    #[arg(id = "health-details", long = "health-details", env = "PETSAGE_HEALTH_DETAILS", value_name = "true|false", default_value = "false", action = ArgAction::Set, value_parser = parse_bool)]
    pub details: bool,
}

/// The health feature's tags and schemas; its paths come from its routes.
#[derive(OpenApi)]
#[openapi(
    components(schemas(HealthCheckResponse, HealthStatus, LivenessResponse, ReadinessResponse, CheckReport, CheckState, Phase, IetfHealth, IetfCheck, IetfStatus, InfoResponse, VerboseFlag)),
    tags((name = "System", description = "Service health and operations."))
)]
pub struct HealthApi;

/// The health feature, as registered in the app's feature list.
pub struct Health {
    state: Data<HealthState>,
}

impl Feature for Health {
    const NAME: &'static str = "health";
    type Settings = HealthSettings;

    fn build(settings: HealthSettings, ctx: &mut Context) -> Result<Self, String> {
        let features = ctx.features().iter().map(|&name| name.to_owned()).collect();
        Ok(Self {
            state: Data::new(HealthState::new(settings.details, features)),
        })
    }

    fn routes(&self) -> Routes {
        // Static paths first: actix tries resources in order, and a path with
        // a parameter costs every poll behind it a regex match. Readiness
        // leads: load balancers poll it most, and its answer is the dearest.
        Routes::new()
            .route(route!(routes::health_ready).public().quiet())
            .route(route!(routes::health_check).public().quiet())
            .route(route!(routes::health_live).public().quiet())
            .route(route!(routes::service_info).public())
            .route(route!(routes::health_ready_check).public())
            .data(self.state.clone())
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        HealthApi::openapi()
    }
}

#[cfg(test)]
mod tests;
