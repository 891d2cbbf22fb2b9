//! The HTTP server: settings, middleware and the composition of the features.

use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web::Data;
use actix_web::{App, HttpServer, web};
use clap::{ArgAction, Args};
use log::info;
use petsage_core::settings::{parse_bool, parse_count, parse_duration};
use petsage_core::{Background, BuiltFeature, HealthMonitor, Lifecycle, MonitorSettings, Phase};

use crate::app::AppParts;
use crate::metrics::{self, Metrics};
use crate::{Built, docs, drain, errors};

/// How the server runs: each setting is a flag with an environment fallback.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on, as IP:PORT; port 0 picks a free port.
    #[arg(long, env = "PETSAGE_BIND", value_name = "IP:PORT", default_value = "127.0.0.1:8080", value_parser = parse_bind)]
    pub bind: SocketAddr,

    /// Number of worker threads [default: the number of CPUs].
    #[arg(long, env = "PETSAGE_WORKERS", value_name = "N", value_parser = parse_count)]
    pub workers: Option<NonZeroUsize>,

    /// Serve the OpenAPI document and Swagger UI.
    #[arg(long, env = "PETSAGE_DOCS", value_name = "true|false", default_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub docs: bool,

    /// Longest one health check may take before it counts as failed.
    #[arg(long, env = "PETSAGE_HEALTH_CHECK_TIMEOUT", value_name = "DURATION", default_value = "500ms", value_parser = parse_duration)]
    pub health_check_timeout: Duration,

    /// How often each health check runs, in the background; polls read the latest results.
    #[arg(long, env = "PETSAGE_HEALTH_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    pub health_interval: Duration,

    /// Failed runs in a row before a passing check counts as failed.
    #[arg(long, env = "PETSAGE_HEALTH_FAILURE_THRESHOLD", value_name = "N", default_value = "1", value_parser = parse_threshold)]
    pub health_failure_threshold: u32,

    /// Passing runs in a row before a failed check counts as passing again.
    #[arg(long, env = "PETSAGE_HEALTH_SUCCESS_THRESHOLD", value_name = "N", default_value = "1", value_parser = parse_threshold)]
    pub health_success_threshold: u32,

    /// On SIGTERM/SIGINT, keep serving (readiness 503, health and liveness unchanged) this long before closing the listener.
    #[arg(long, env = "PETSAGE_SHUTDOWN_DELAY", value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After the delay, how long in-flight requests get to finish (whole seconds).
    #[arg(long, env = "PETSAGE_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// How long an idle keep-alive connection stays open.
    #[arg(long, env = "PETSAGE_KEEP_ALIVE", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub keep_alive: Duration,

    /// How long a client may take to send a request's head; slower ones get 408 and are closed.
    #[arg(long, env = "PETSAGE_CLIENT_REQUEST_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub client_request_timeout: Duration,

    /// Most open connections per worker; beyond it, new ones wait in the kernel's accept queue.
    #[arg(long, env = "PETSAGE_MAX_CONNECTIONS", value_name = "N", default_value = "25000", value_parser = parse_count)]
    pub max_connections: NonZeroUsize,

    /// Largest total size of a request's headers, in bytes; a larger one gets 431.
    #[arg(long, env = "PETSAGE_MAX_HEADER_BYTES", value_name = "BYTES", default_value = "16384", value_parser = parse_bytes)]
    pub max_header_bytes: usize,

    /// Serve Prometheus metrics at /metrics.
    #[arg(long, env = "PETSAGE_METRICS", value_name = "true|false", default_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub metrics: bool,

    /// Serve /metrics on this address instead, on a listener of its own (the main port then answers 404 there).
    #[arg(long, env = "PETSAGE_METRICS_BIND", value_name = "IP:PORT", value_parser = parse_bind)]
    pub metrics_bind: Option<SocketAddr>,

    /// Log lines as `text` or `json` (one object per line, for a log pipeline).
    #[arg(long, env = "PETSAGE_LOG_FORMAT", value_name = "text|json", default_value = "text", value_parser = crate::logging::parse_log_format)]
    pub log_format: crate::LogFormat,

    /// Largest request body accepted, in bytes; a larger one gets 413.
    #[arg(long, env = "PETSAGE_MAX_BODY_BYTES", value_name = "BYTES", default_value = "65536", value_parser = parse_bytes)]
    pub max_body_bytes: usize,
}

impl Settings {
    /// The worker count to use: the setting, or the number of CPUs.
    pub fn worker_count(&self) -> usize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }
}

fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| "expected IP:PORT, for example 127.0.0.1:8080 or 0.0.0.0:8080".to_owned())
}

fn parse_interval(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        Duration::ZERO => Err("expected a duration above zero, for example 5s or 500ms".to_owned()),
        interval => Ok(interval),
    }
}

fn parse_threshold(value: &str) -> Result<u32, String> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected a whole number of runs, 1 or more".to_owned())
}

fn parse_bytes(value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| "expected a whole number of bytes, for example 65536".to_owned())
}

/// `/metrics` alone on `bind`, one worker, stopped with the main server.
fn metrics_server(metrics: Data<Metrics>, bind: SocketAddr) -> Result<ServerHandle, Stop> {
    let server = HttpServer::new(move || {
        let metrics = metrics.clone();
        App::new()
            .configure(|cfg| metrics::configure(cfg, metrics))
            .default_service(web::to(errors::not_found))
    })
    .workers(1)
    .disable_signals()
    .bind(bind)
    .map_err(|err| {
        Stop::Server(std::io::Error::new(
            err.kind(),
            format!("cannot listen on {bind} (--metrics-bind / PETSAGE_METRICS_BIND): {err}"),
        ))
    })?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    info!("metrics on http://{bind}{}", metrics::PATH);
    Ok(handle)
}

/// Why serving ended other than by a signal.
#[derive(Debug)]
pub enum Stop {
    /// A feature could not be built, or a start step failed: the one line to print.
    Start(String),
    /// The HTTP server failed.
    Server(std::io::Error),
}

/// Serves `built` on `listener` until stopped: the listener answers at once
/// (readiness 503, phase `starting`) while the start steps run, then the
/// instance turns ready. SIGTERM or SIGINT drains gracefully; the stop steps
/// run after the drain. A failed start step ends it with [`Stop::Start`].
///
/// Must be called inside an actix system (`actix_web::rt::System` or `#[actix_web::main]`).
pub async fn run(listener: TcpListener, settings: &Settings, built: Built) -> Result<(), Stop> {
    let addr = listener.local_addr().map_err(Stop::Server)?;
    let signals = drain::Signals::install().map_err(Stop::Server)?;
    let Built {
        features,
        mut lifecycle,
        identity,
    } = built;
    let mut parts = app_parts(settings, features.into(), &mut lifecycle);
    parts.dev_issuer = identity.and_then(|identity| identity.dev_issuer().cloned());
    let monitor = parts.monitor.clone().into_inner();
    let metrics_server = match (&parts.metrics, settings.metrics_bind) {
        (Some(metrics), Some(bind)) => Some(metrics_server(metrics.clone(), bind)?),
        _ => None,
    };
    let server = http_server(settings, parts, listener)?;
    let background =
        Arc::new(lifecycle.take_background(settings.shutdown_delay + settings.shutdown_timeout));
    actix_web::rt::spawn(drain::on_signal(
        signals,
        server.handle(),
        Arc::clone(&monitor),
        Arc::clone(&background),
        settings.shutdown_delay,
        settings.shutdown_timeout,
    ));
    info!(
        "listening on http://{addr} (version {}, {} workers, docs {}, {} health checks)",
        env!("CARGO_PKG_VERSION"),
        settings.worker_count(),
        if settings.docs { "on" } else { "off" },
        monitor.check_count(),
    );

    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let started = actix_web::rt::spawn(start(
        lifecycle.start(),
        Arc::clone(&monitor),
        Arc::clone(&background),
        server.handle(),
        Arc::clone(&failure),
    ));
    let served = server.await;
    started.abort();
    background.join().await;
    monitor.stop();
    if let Some(metrics_server) = metrics_server {
        metrics_server.stop(true).await;
    }
    lifecycle.stop().await;
    if let Some(err) = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return Err(Stop::Start(err));
    }
    served.map_err(Stop::Server)
}

/// What every worker's app is made from: the features, the docs, the health
/// monitor with every check, and the metrics registry.
fn app_parts(
    settings: &Settings,
    features: Arc<[Arc<dyn BuiltFeature>]>,
    lifecycle: &mut Lifecycle,
) -> AppParts {
    let checks = lifecycle
        .take_checks()
        .into_iter()
        .chain(features.iter().flat_map(|f| f.health_checks()))
        .collect();
    let monitor = Data::new(HealthMonitor::new(
        checks,
        MonitorSettings {
            check_timeout: settings.health_check_timeout,
            interval: settings.health_interval,
            failure_threshold: settings.health_failure_threshold,
            success_threshold: settings.health_success_threshold,
        },
    ));
    let collectors = lifecycle.take_collectors();
    let metrics = settings
        .metrics
        .then(|| Data::new(Metrics::new(monitor.clone().into_inner(), collectors)));
    AppParts {
        docs: settings
            .docs
            .then(|| Arc::new(docs::Docs::new(Arc::clone(&features)))),
        quiet_paths: AppParts::quiet_paths(&features),
        features,
        monitor,
        metrics,
        metrics_route: settings.metrics_bind.is_none(),
        max_body_bytes: settings.max_body_bytes,
        max_header_bytes: settings.max_header_bytes,
        dev_issuer: None,
    }
}

/// The HTTP server for `parts` on `listener`, with the connection settings, running.
fn http_server(
    settings: &Settings,
    parts: AppParts,
    listener: TcpListener,
) -> Result<Server, Stop> {
    Ok(HttpServer::new(move || parts.app())
        .workers(settings.worker_count())
        .keep_alive(settings.keep_alive)
        .client_request_timeout(settings.client_request_timeout)
        .max_connections(settings.max_connections.get())
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs_f64().ceil() as u64)
        .listen(listener)
        .map_err(Stop::Server)?
        .run())
}

/// The start steps, then the first run of every check, then `serving` and
/// the background services. Readiness says `starting` until then; a failed
/// step is kept in `failure`, and the server stops at once.
async fn start(
    steps: impl Future<Output = Result<(), String>>,
    monitor: Arc<HealthMonitor>,
    background: Arc<Background>,
    server: ServerHandle,
    failure: Arc<Mutex<Option<String>>>,
) {
    match steps.await {
        Ok(()) => {
            Arc::clone(&monitor).start().await;
            monitor.set_phase(Phase::Serving);
            info!("ready: every start step and the first health-check run are done");
            background.start();
        }
        Err(err) => {
            *failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(err);
            server.stop(false).await;
        }
    }
}
