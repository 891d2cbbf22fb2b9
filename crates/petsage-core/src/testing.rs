//! Helpers for a feature crate's own tests: build a feature as the app would,
//! and serve its routes in an actix test service.

use std::sync::Arc;

use clap::Command;

use crate::{BuiltFeature, Context, Feature, Lifecycle, register};

/// Builds `F` with its default settings (and `args`, as on the command line)
/// from `ctx`, then runs every start step, as the app does before it is ready.
/// Like the app, it refuses a feature whose settings are not named after it.
pub async fn start<F: Feature>(
    mut ctx: Context,
    args: &[&str],
) -> Result<(Arc<dyn BuiltFeature>, Lifecycle), String> {
    let registration = register::<F>();
    registration.check_setting_names()?;
    let command = registration.augment(Command::new("petsage-test").no_binary_name(true));
    let mut matches = command
        .try_get_matches_from(args)
        .map_err(|err| err.to_string())?;
    let feature = registration.build(&mut matches, &mut ctx)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Routes;

    /// Settings named after the feature, or (`misnamed`) not.
    #[derive(Debug, clap::Args)]
    struct ShelfSettings {
        /// Named after the feature.
        #[arg(
            id = "shelf-size",
            long = "shelf-size",
            env = "PETSAGE_SHELF_SIZE",
            default_value = "3"
        )]
        size: u32,
    }

    /// The same setting without the feature's prefix.
    #[derive(Debug, clap::Args)]
    struct MisnamedSettings {
        /// Not named after the feature.
        #[arg(long = "size", env = "PETSAGE_SIZE", default_value = "3")]
        size: u32,
    }

    struct Shelf;

    impl Feature for Shelf {
        const NAME: &'static str = "shelf";
        type Settings = ShelfSettings;

        fn build(settings: ShelfSettings, _: &mut Context) -> Result<Self, String> {
            assert_eq!(settings.size, 3);
            Ok(Self)
        }

        fn routes(&self) -> Routes {
            Routes::new()
        }
    }

    struct MisnamedShelf;

    impl Feature for MisnamedShelf {
        const NAME: &'static str = "shelf";
        type Settings = MisnamedSettings;

        fn build(settings: MisnamedSettings, _: &mut Context) -> Result<Self, String> {
            assert_eq!(settings.size, 3);
            Ok(Self)
        }

        fn routes(&self) -> Routes {
            Routes::new()
        }
    }

    #[actix_web::test]
    async fn start_refuses_settings_the_app_would_refuse() {
        assert!(start::<Shelf>(Context::new(), &[]).await.is_ok());
        let err = start::<MisnamedShelf>(Context::new(), &[])
            .await
            .err()
            .expect("a misnamed setting is refused");
        assert_eq!(
            Err(err),
            register::<MisnamedShelf>().check_setting_names(),
            "the app's own check and message"
        );
    }
}
