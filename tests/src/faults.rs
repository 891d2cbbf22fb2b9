//! A test-only feature whose health checks and handlers the tests control
//! over HTTP: checks can be flipped to fail, hang or be slow; a handler can be
//! made slow. Registered only in the test app, never in `petsage-app`.
//!
//! Checks come from `PETSAGE_TEST_CHECKS`, a comma-separated list of
//! `name:critical` or `name:non-critical`, each optionally followed by its
//! first mode (`db:critical:slow`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use actix_web::middleware::DefaultHeaders;
use actix_web::rt::time::sleep;
use actix_web::web::{Data, Json, Path};
use actix_web::{HttpResponse, http::StatusCode};
use log::info;
use petsage_core::settings::{parse_bool, parse_duration};
use petsage_core::{Context, Feature, HealthCheck, Problem, Routes, route};
use petsage_db::Database;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// The header the faults feature's own middleware adds to its routes' answers.
pub const FEATURE_HEADER: &str = "x-test-feature";

/// How a controllable check behaves on its next runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Passes at once.
    Ok,
    /// Fails at once.
    Fail,
    /// Never finishes.
    Hang,
    /// Passes after 200 ms.
    Slow,
    /// Fails every other run: a flapping dependency.
    Flap,
}

struct Control {
    critical: bool,
    mode: AtomicU8,
    runs: AtomicUsize,
}

static CONTROLS: LazyLock<BTreeMap<String, Arc<Control>>> = LazyLock::new(|| {
    std::env::var("PETSAGE_TEST_CHECKS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|spec| {
            let mut parts = spec.trim().split(':');
            let (name, kind) = (parts.next()?, parts.next()?);
            let mode = match parts.next() {
                Some(mode) => serde_json::from_value(serde_json::json!(mode))
                    .unwrap_or_else(|_| panic!("PETSAGE_TEST_CHECKS: unknown mode {mode:?}")),
                None => Mode::Ok,
            };
            let control = Control {
                critical: kind == "critical",
                mode: AtomicU8::new(mode as u8),
                runs: AtomicUsize::new(0),
            };
            Some((name.to_owned(), Arc::new(control)))
        })
        .collect()
});

fn mode_of(control: &Control) -> Mode {
    match control.mode.load(Ordering::SeqCst) {
        0 => Mode::Ok,
        1 => Mode::Fail,
        2 => Mode::Hang,
        3 => Mode::Slow,
        _ => Mode::Flap,
    }
}

async fn run_check(name: String, control: Arc<Control>) -> Result<(), String> {
    let run = control.runs.fetch_add(1, Ordering::SeqCst);
    match mode_of(&control) {
        Mode::Ok => Ok(()),
        Mode::Fail => Err(format!("test check {name} is set to fail")),
        Mode::Hang => std::future::pending().await,
        Mode::Slow => {
            sleep(Duration::from_millis(200)).await;
            Ok(())
        }
        Mode::Flap if run % 2 == 1 => Err(format!("test check {name} flaps: run {run} fails")),
        Mode::Flap => Ok(()),
    }
}

fn control(name: &str) -> Result<&'static Arc<Control>, Problem> {
    CONTROLS
        .get(name)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no test check {name:?}")))
}

/// How many times a check has run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Runs {
    /// Runs so far.
    pub runs: usize,
}

/// Sets a test check's mode.
#[utoipa::path(put, path = "/test/checks/{name}", operation_id = "test_set_check", tag = "Test",
    params(("name" = String, Path, description = "Check name")),
    request_body = Mode,
    responses((status = 204, description = "Mode set"), (status = 404, description = "No such check", body = Problem)))]
pub async fn set_check(name: Path<String>, mode: Json<Mode>) -> Result<HttpResponse, Problem> {
    control(&name)?.mode.store(*mode as u8, Ordering::SeqCst);
    Ok(HttpResponse::NoContent().finish())
}

/// Reports how many times a test check has run.
#[utoipa::path(get, path = "/test/checks/{name}/runs", operation_id = "test_check_runs", tag = "Test",
    params(("name" = String, Path, description = "Check name")),
    responses((status = 200, description = "Run count", body = Runs), (status = 404, description = "No such check", body = Problem)))]
pub async fn check_runs(name: Path<String>) -> Result<Json<Runs>, Problem> {
    let runs = control(&name)?.runs.load(Ordering::SeqCst);
    Ok(Json(Runs { runs }))
}

/// Answers after `ms` milliseconds (at most 10 s), logging when it starts.
#[utoipa::path(get, path = "/test/slow/{ms}", operation_id = "test_slow", tag = "Test",
    params(("ms" = u64, Path, description = "Milliseconds to wait", maximum = 10000)),
    responses((status = 200, description = "Waited", body = String), (status = 400, description = "Bad duration", body = Problem)))]
pub async fn slow(ms: Path<u64>) -> Result<HttpResponse, Problem> {
    let ms = *ms;
    if ms > 10_000 {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "at most 10000 ms"));
    }
    info!("slow request started: {ms} ms");
    sleep(Duration::from_millis(ms)).await;
    Ok(HttpResponse::Ok().json(format!("waited {ms} ms")))
}

/// Panics: proves a panicking handler costs one 500, not the service.
#[utoipa::path(get, path = "/test/panic", operation_id = "test_panic", tag = "Test",
    responses((status = 500, description = "The handler panicked", body = Problem)))]
pub async fn panic() -> HttpResponse {
    std::panic::panic_any("test handler panicked on purpose")
}

#[derive(OpenApi)]
#[openapi(
    components(schemas(Mode, Runs)),
    tags((name = "Test", description = "Test-only controls; never in petsage-app."))
)]
struct FaultsApi;

/// Holds one database connection for `ms` milliseconds (at most 10 s): with
/// a pool of one, every other request finds the pool exhausted meanwhile.
#[utoipa::path(get, path = "/test/hold-database/{ms}", operation_id = "test_hold_database", tag = "Test",
    params(("ms" = u64, Path, description = "Milliseconds to hold the connection", maximum = 10000)),
    responses((status = 204, description = "Held and released"), (status = 404, description = "The database is not asked for", body = Problem),
        (status = 503, description = "No connection within the acquire timeout", body = Problem)))]
pub async fn hold_database(
    faults: Data<Faults>,
    ms: Path<u64>,
) -> Result<HttpResponse, petsage_db::Error> {
    let db = faults.database.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "start with PETSAGE_TEST_FAULTS_HOLD_DATABASE=true",
        )
    })?;
    let ms = (*ms).min(10_000);
    let connection = db.acquire().await?;
    info!("holding a database connection for {ms} ms");
    sleep(Duration::from_millis(ms)).await;
    drop(connection);
    Ok(HttpResponse::NoContent().finish())
}

/// The test-only feature.
#[derive(Clone)]
pub struct Faults {
    database: Option<Database>,
}

/// The test feature's settings: `--test-faults-…`, `PETSAGE_TEST_FAULTS_…`.
#[derive(Debug, Clone, clap::Args)]
pub struct FaultsSettings {
    /// Make the feature's start step take this long (to observe the `starting` phase).
    #[arg(id = "test-faults-start-delay", long = "test-faults-start-delay", env = "PETSAGE_TEST_FAULTS_START_DELAY", value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub start_delay: Duration,

    /// Ask for the database, so `/test/hold-database/{ms}` can hold a connection.
    #[arg(id = "test-faults-hold-database", long = "test-faults-hold-database", env = "PETSAGE_TEST_FAULTS_HOLD_DATABASE", value_name = "true|false", default_value = "false", action = clap::ArgAction::Set, value_parser = parse_bool)]
    pub hold_database: bool,

    /// Make the feature's start step fail with this message.
    #[arg(
        id = "test-faults-start-error",
        long = "test-faults-start-error",
        env = "PETSAGE_TEST_FAULTS_START_ERROR",
        value_name = "TEXT"
    )]
    pub start_error: Option<String>,
}

impl Feature for Faults {
    const NAME: &'static str = "test-faults";
    type Settings = FaultsSettings;

    fn build(settings: FaultsSettings, ctx: &mut Context) -> Result<Self, String> {
        if !settings.start_delay.is_zero() || settings.start_error.is_some() {
            ctx.on_start("warm up", move || async move {
                sleep(settings.start_delay).await;
                settings.start_error.map_or(Ok(()), Err)
            });
        }
        let database = if settings.hold_database {
            Some(Database::from_context(ctx)?)
        } else {
            None
        };
        Ok(Self { database })
    }

    fn routes(&self) -> Routes {
        // A middleware of this feature's own, around its routes only: the
        // black-box tests check that no other route carries its header.
        Routes::new()
            .wrap(DefaultHeaders::new().add((FEATURE_HEADER, "test-faults")))
            .route(route!(set_check).public())
            .route(route!(check_runs).public())
            .route(route!(slow).public())
            .route(route!(panic).public())
            .route(route!(hold_database).public())
            .data(Data::new(self.clone()))
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        FaultsApi::openapi()
    }

    fn health_checks(&self) -> Vec<HealthCheck> {
        CONTROLS
            .iter()
            .map(|(name, control)| {
                let critical = control.critical;
                let (check_name, control) = (name.clone(), Arc::clone(control));
                let check = move || run_check(check_name.clone(), Arc::clone(&control));
                if critical {
                    HealthCheck::critical(name.clone(), check)
                } else {
                    HealthCheck::non_critical(name.clone(), check)
                }
            })
            .collect()
    }
}
