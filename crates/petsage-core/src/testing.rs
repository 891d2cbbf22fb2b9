//! Helpers for a feature crate's own tests: build a feature as the app would,
//! and serve its routes in an actix test service.

use std::sync::Arc;

use clap::Command;

use crate::{BuiltFeature, Context, Feature, Lifecycle, register};

/// Builds `F` with its default settings (and `args`, as on the command line)
/// from `ctx`, then runs every start step, as the app does before it is ready.
pub async fn start<F: Feature>(
    mut ctx: Context,
    args: &[&str],
) -> Result<(Arc<dyn BuiltFeature>, Lifecycle), String> {
    let registration = register::<F>();
    let command = registration.augment(Command::new("petsage-test").no_binary_name(true));
    let matches = command
        .try_get_matches_from(args)
        .map_err(|err| err.to_string())?;
    let feature = registration.build(&matches, &mut ctx)?;
    let mut lifecycle = ctx.into_lifecycle();
    lifecycle.start().await?;
    Ok((feature, lifecycle))
}

/// An actix app serving `feature`'s routes at the root, for `actix_web::test`.
pub fn app(
    feature: &dyn BuiltFeature,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    feature
        .routes()
        .into_services()
        .into_iter()
        .fold(actix_web::App::new(), |app, service| app.service(service))
}
