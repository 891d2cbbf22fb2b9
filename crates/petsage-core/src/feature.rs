//! The feature contract: a [`Feature`] declares its settings, is built once
//! at start from a [`Context`] (where it finds shared resources such as the
//! database and adds start and stop steps), and hands back its routes, its
//! OpenAPI fragment and its health checks.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgMatches, Args, Command, FromArgMatches};
use prometheus_client::collector::Collector;

use crate::background::{Background, Stopping, Task};
use crate::{HealthCheck, Routes};

/// A boxed step: `Err` says, in one line, why the instance cannot serve.
type StepFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What a feature crate implements; the app registers it with [`register`].
pub trait Feature: Sized + Send + Sync + 'static {
    /// Short, unique, kebab-case name: the prefix of its settings, its `--help` heading.
    const NAME: &'static str;

    /// The feature's settings: a `clap::Args` whose flags are named
    /// `--<NAME>-<setting>` with the variable `PETSAGE_<NAME>_<SETTING>`.
    /// [`NoSettings`] when it has none.
    type Settings: Args + FromArgMatches;

    /// Builds the feature once at start: read settings, ask `ctx` for shared
    /// resources, add start and stop steps. Do no I/O here; that belongs in a start step.
    fn build(settings: Self::Settings, ctx: &mut Context) -> Result<Self, String>;

    /// The feature's routes, relative to the API prefix, and the state their handlers read.
    ///
    /// Called once per server worker and once for the OpenAPI document.
    fn routes(&self) -> Routes;

    /// The feature's tags and any schema its routes do not reach; paths come from [`Feature::routes`].
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApi::default()
    }

    /// Health checks of the feature's own (shared resources add theirs through the context).
    fn health_checks(&self) -> Vec<HealthCheck> {
        Vec::new()
    }
}

/// The settings of a feature that has none.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
#[group(skip)]
pub struct NoSettings {}

/// A built feature, as the app holds it.
pub trait BuiltFeature: Send + Sync + 'static {
    /// The feature's routes and their state.
    fn routes(&self) -> Routes;
    /// The feature's whole OpenAPI fragment: its tags and schemas, and its routes' paths.
    fn openapi(&self) -> utoipa::openapi::OpenApi;
    /// The feature's own health checks.
    fn health_checks(&self) -> Vec<HealthCheck>;
}

impl<F: Feature> BuiltFeature for F {
    fn routes(&self) -> Routes {
        Feature::routes(self)
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = Feature::openapi(self);
        doc.merge(Feature::routes(self).openapi());
        doc
    }

    fn health_checks(&self) -> Vec<HealthCheck> {
        Feature::health_checks(self)
    }
}

/// One line in the app's feature list: how to declare and build one feature.
#[derive(Clone, Copy)]
pub struct Registration {
    name: &'static str,
    augment: fn(Command) -> Command,
    build: BuildFn,
}

type BuildFn = fn(&mut ArgMatches, &mut Context) -> Result<Arc<dyn BuiltFeature>, String>;

/// The registration of feature `F`.
pub fn register<F: Feature>() -> Registration {
    Registration {
        name: F::NAME,
        augment: augment::<F>,
        build: build::<F>,
    }
}

fn augment<F: Feature>(command: Command) -> Command {
    // clap's derive makes a settings struct's doc comment the command's
    // `about`: keep the app's own.
    let about = command.get_about().cloned();
    let long_about = command.get_long_about().cloned();
    let command = F::Settings::augment_args(command.next_help_heading(heading(F::NAME)));
    let command = match about {
        Some(about) => command.about(about),
        None => command.about(None::<&'static str>),
    };
    match long_about {
        Some(long_about) => command.long_about(long_about),
        None => command.long_about(None::<&'static str>),
    }
}

fn build<F: Feature>(
    matches: &mut ArgMatches,
    ctx: &mut Context,
) -> Result<Arc<dyn BuiltFeature>, String> {
    let settings = F::Settings::from_arg_matches_mut(matches)
        .map_err(|err| format!("feature {}: {}", F::NAME, err.to_string().trim()))?;
    ctx.feature = F::NAME;
    let built = F::build(settings, ctx).map_err(|err| format!("feature {}: {err}", F::NAME))?;
    ctx.feature = "";
    // Fail closed: a route open by omission is refused, not served.
    if let Some(route) = Feature::routes(&built).undeclared().first() {
        return Err(format!(
            "feature {}: {route} neither requires a scope nor is declared public: add .require(…) or .public() to its route",
            F::NAME
        ));
    }
    Ok(Arc::new(built))
}

/// `pet-profiles` → `Pet profiles settings`.
fn heading(name: &str) -> String {
    let mut words = name.split('-');
    let first = words.next().unwrap_or_default();
    let mut title = first[..first.len().min(1)].to_uppercase() + &first[first.len().min(1)..];
    for word in words {
        title.push(' ');
        title.push_str(word);
    }
    title + " settings"
}

impl Registration {
    /// The feature's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds the feature's settings to `command`, under the feature's own `--help` heading.
    pub fn augment(&self, command: Command) -> Command {
        (self.augment)(command)
    }

    /// Builds the feature from the parsed command line (taking its settings
    /// out of `matches`, with no copy of the rest) and `ctx`.
    pub fn build(
        &self,
        matches: &mut ArgMatches,
        ctx: &mut Context,
    ) -> Result<Arc<dyn BuiltFeature>, String> {
        (self.build)(matches, ctx)
    }

    /// The settings that break the naming rule: id and flag `<name>-…`, variable
    /// `PETSAGE_<NAME>_…`. Ids are shared by every feature's settings, so
    /// unprefixed ones would collide.
    pub fn misnamed_settings(&self) -> Vec<String> {
        let command = self.augment(Command::new("check"));
        let flag_prefix = format!("{}-", self.name);
        let env_prefix = format!("PETSAGE_{}_", self.name.replace('-', "_").to_uppercase());
        command
            .get_arguments()
            .filter(|arg| {
                let long_ok = arg.get_long().is_some_and(|l| l.starts_with(&flag_prefix))
                    && arg.get_id().as_str().starts_with(&flag_prefix);
                let env_ok = arg
                    .get_env()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e.starts_with(&env_prefix));
                !(long_ok && env_ok)
            })
            .map(|arg| arg.get_id().to_string())
            .collect()
    }

    /// `Err` with one line naming every setting that breaks the naming rule of
    /// [`Registration::misnamed_settings`]: a feature with such settings must not start.
    pub fn check_setting_names(&self) -> Result<(), String> {
        let misnamed = self.misnamed_settings();
        if misnamed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "feature {name}: settings {} must be named {name}-… (id and flag) and PETSAGE_{}_… (variable)",
            misnamed.join(", "),
            self.name.replace('-', "_").to_uppercase(),
            name = self.name,
        ))
    }
}

struct Step {
    label: String,
    run: Box<dyn FnOnce() -> StepFuture + Send>,
}

/// What features are built from: shared resources, and the start and stop
/// steps and health checks the resources and features add.
#[derive(Default)]
pub struct Context {
    feature: &'static str,
    features: Vec<&'static str>,
    resources: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    checks: Vec<HealthCheck>,
    collectors: Vec<Box<dyn Collector>>,
    starts: Vec<Step>,
    stops: Vec<Step>,
    background: Vec<Task>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context for a service made of the features named `features`, in registration order.
    pub fn for_features(features: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            features: features.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The names of the service's registered features (empty unless made by [`Context::for_features`]).
    pub fn features(&self) -> &[&'static str] {
        &self.features
    }

    /// The name of the feature being built (empty outside [`Feature::build`]).
    pub fn feature(&self) -> &'static str {
        self.feature
    }

    /// Stores a shared resource (or a platform's settings), one per type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.resources.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The shared resource of type `T`, if one was stored.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.resources
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref())
    }

    /// Adds a health check to the service's readiness.
    pub fn add_health_check(&mut self, check: HealthCheck) {
        self.checks.push(check);
    }

    /// Adds Prometheus series of a feature or a shared resource (a database
    /// pool's), read at each scrape of `/metrics`.
    pub fn add_metrics(&mut self, collector: Box<dyn Collector>) {
        self.collectors.push(collector);
    }

    /// Adds a step that runs, in order, before the instance reports ready.
    ///
    /// `label` names it in the one line printed if it fails; inside
    /// [`Feature::build`] it is prefixed with the feature's name.
    pub fn on_start<F, Fut>(&mut self, label: impl Into<String>, step: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let label = self.label(label.into());
        self.on_start_shared(label, step);
    }

    /// Adds a start step of a shared resource (a database): its label is not
    /// prefixed with the feature that happened to ask for it first.
    pub fn on_start_shared<F, Fut>(&mut self, label: impl Into<String>, step: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.starts.push(Step {
            label: label.into(),
            run: Box::new(move || Box::pin(step())),
        });
    }

    /// Adds a step that runs after the drain, in reverse order of addition.
    pub fn on_stop<F, Fut>(&mut self, label: impl Into<String>, step: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let label = self.label(label.into());
        self.on_stop_shared(label, step);
    }

    /// Adds a stop step of a shared resource, labelled without a feature's name.
    pub fn on_stop_shared<F, Fut>(&mut self, label: impl Into<String>, step: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.stops.push(Step {
            label: label.into(),
            run: Box::new(move || {
                Box::pin(async move {
                    step().await;
                    Ok(())
                })
            }),
        });
    }

    /// Adds a background service (a job worker, a scheduler): it starts once
    /// the instance is ready, is told through [`Stopping`] when the drain
    /// begins, and is awaited before the stop steps. Only a serving instance
    /// runs it (`migrate` does not).
    pub fn run_in_background<F, Fut>(&mut self, label: impl Into<String>, task: F)
    where
        F: FnOnce(Stopping) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.background.push(Task::new(label.into(), task));
    }

    fn label(&self, label: String) -> String {
        if self.feature.is_empty() {
            label
        } else {
            format!("feature {}: {label}", self.feature)
        }
    }

    /// Takes the checks, start steps and stop steps out, leaving the resources.
    pub fn into_lifecycle(self) -> Lifecycle {
        Lifecycle {
            checks: self.checks,
            collectors: self.collectors,
            starts: self.starts,
            stops: self.stops,
            background: self.background,
        }
    }
}

/// The health checks and the start and stop steps collected while building features.
pub struct Lifecycle {
    /// Checks added through the context (a shared resource's, such as `database`).
    checks: Vec<HealthCheck>,
    /// Metrics added through the context, for the app's registry.
    collectors: Vec<Box<dyn Collector>>,
    starts: Vec<Step>,
    stops: Vec<Step>,
    background: Vec<Task>,
}

impl Lifecycle {
    /// Hands over the background services, which get `grace` to finish once stopped.
    pub fn take_background(&mut self, grace: Duration) -> Background {
        Background::new(std::mem::take(&mut self.background), grace)
    }

    /// Hands over the checks added through the context (a shared resource's, such as `database`), for the app's monitor.
    pub fn take_checks(&mut self) -> Vec<HealthCheck> {
        std::mem::take(&mut self.checks)
    }

    /// Hands over the metrics added through the context, for the app's registry.
    pub fn take_collectors(&mut self) -> Vec<Box<dyn Collector>> {
        std::mem::take(&mut self.collectors)
    }

    /// Runs every start step in order; the first failure is `Err("<label>: <why>")`.
    pub fn start(&mut self) -> impl Future<Output = Result<(), String>> + use<> {
        let steps = std::mem::take(&mut self.starts);
        async move {
            for step in steps {
                log::info!("start: {}", step.label);
                (step.run)()
                    .await
                    .map_err(|err| format!("{}: {err}", step.label))?;
            }
            Ok(())
        }
    }

    /// Runs every stop step, last added first.
    pub fn stop(&mut self) -> impl Future<Output = ()> + use<> {
        let steps = std::mem::take(&mut self.stops);
        async move {
            for step in steps.into_iter().rev() {
                log::info!("stop: {}", step.label);
                let _ = (step.run)().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Args)]
    struct PetSettings {
        /// Largest page.
        #[arg(
            id = "pet-profiles-page-max",
            long = "pet-profiles-page-max",
            env = "PETSAGE_PET_PROFILES_PAGE_MAX",
            default_value = "50"
        )]
        page_max: u32,
        /// Misnamed.
        #[arg(long = "other", env = "PETSAGE_OTHER")]
        other: Option<String>,
    }

    struct PetProfiles;

    impl Feature for PetProfiles {
        const NAME: &'static str = "pet-profiles";
        type Settings = PetSettings;

        fn build(settings: PetSettings, ctx: &mut Context) -> Result<Self, String> {
            let base = *ctx.get::<u32>().ok_or("no base")?;
            if settings.page_max + base != 107 {
                return Err(format!("page max {} from settings", settings.page_max));
            }
            ctx.on_start("warm up", || async { Err("cache is cold".to_owned()) });
            Ok(Self)
        }

        fn routes(&self) -> Routes {
            Routes::new()
        }
    }

    #[actix_web::test]
    async fn a_feature_is_built_from_its_settings_and_the_context() {
        let registration = register::<PetProfiles>();
        let command = registration.augment(Command::new("app"));
        let help = command.clone().render_help().to_string();
        assert!(help.contains("Pet profiles settings:"), "{help}");
        let app = registration.augment(Command::new("app").about("The app."));
        assert_eq!(
            app.get_about().map(ToString::to_string).as_deref(),
            Some("The app."),
            "a feature's settings keep the app's about"
        );
        let mut matches = command
            .try_get_matches_from(["app", "--pet-profiles-page-max", "7"])
            .expect("parses");
        let mut ctx = Context::new();
        ctx.insert(100_u32);
        let built = registration.build(&mut matches, &mut ctx).expect("builds");
        assert_eq!(built.routes().info().len(), 0, "a feature with no routes");

        let mut lifecycle = ctx.into_lifecycle();
        assert_eq!(
            lifecycle.start().await,
            Err("feature pet-profiles: warm up: cache is cold".to_owned())
        );
        assert_eq!(registration.misnamed_settings(), vec!["other".to_owned()]);
        assert_eq!(
            registration.check_setting_names(),
            Err(
                "feature pet-profiles: settings other must be named pet-profiles-… (id and flag) \
                 and PETSAGE_PET_PROFILES_… (variable)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn headings_read_as_words() {
        assert_eq!(heading("pets"), "Pets settings");
        assert_eq!(heading("pet-profiles"), "Pet profiles settings");
    }
}
