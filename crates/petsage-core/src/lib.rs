//! The contract between PetSage feature crates and the app that composes them.
//!
//! A feature crate implements [`Feature`]: it declares its settings, is built
//! once from a [`Context`] (where it finds shared resources and adds start and
//! stop steps), and hands back its [`Routes`] (each declared once, with its
//! OpenAPI operation, by [`route!`]) and its [`HealthCheck`]s, which the app's
//! one [`HealthMonitor`] runs. Errors leave every endpoint as RFC 9457
//! [`Problem`] bodies; [`JsonBody`] turns bad input into `415` and `422` problems.

pub mod background;
mod feature;
mod health;
mod json;
mod problem;
pub mod request_id;
mod routes;
pub mod settings;
pub mod testing;

pub use background::{Background, Stopping};
pub use feature::{BuiltFeature, Context, Feature, Lifecycle, NoSettings, Registration, register};
pub use health::{
    CheckState, CheckStatus, HealthCheck, HealthMonitor, HealthStatus, MonitorSettings, Phase,
    Snapshot,
};
pub use json::{JsonBody, Validate, parse as parse_json};
pub use problem::{FieldError, PROBLEM_CONTENT_TYPE, Problem};
pub use request_id::RequestId;
pub use routes::{Requirement, Route, RouteInfo, RouteTemplate, Routes};

#[doc(hidden)]
pub mod __private {
    pub use pastey;
}
