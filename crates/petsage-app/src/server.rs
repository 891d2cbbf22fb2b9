//! The HTTP server: settings, middleware and the composition of the features.

use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{App, HttpServer, web};
use clap::{ArgAction, Args};
use log::info;
use petsage_core::Feature;

use crate::{API_PREFIX, Features, docs, errors, routes};

/// How the server runs: each setting is a flag with an environment fallback.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on, as IP:PORT; port 0 picks a free port.
    #[arg(long, env = "PETSAGE_BIND", value_name = "IP:PORT", default_value = "127.0.0.1:8080", value_parser = parse_bind)]
    pub bind: SocketAddr,

    /// Number of worker threads [default: the number of CPUs].
    #[arg(long, env = "PETSAGE_WORKERS", value_name = "N", value_parser = parse_workers)]
    pub workers: Option<NonZeroUsize>,

    /// Serve the OpenAPI document and Swagger UI.
    #[arg(long, env = "PETSAGE_DOCS", value_name = "true|false", default_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub docs: bool,
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

fn parse_workers(value: &str) -> Result<NonZeroUsize, String> {
    value
        .parse()
        .map_err(|_| "expected a whole number of at least 1".to_owned())
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// Starts serving `features` on `listener`; the returned server runs until stopped.
///
/// Must be called inside an actix system (`actix_web::rt::System` or `#[actix_web::main]`).
pub fn run(
    listener: TcpListener,
    settings: &Settings,
    features: Features,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let workers = settings.worker_count();
    let features: Arc<[Box<dyn Feature>]> = features.into();
    let openapi_json = settings.docs.then(|| docs::openapi_json(&features));
    let quiet_paths: Arc<[String]> = routes(&features)
        .into_iter()
        .filter(|(_, info)| info.quiet)
        .map(|(path, _)| path)
        .collect();

    let server = HttpServer::new(move || {
        let access_log = quiet_paths
            .iter()
            .fold(Logger::default(), |log, path| log.exclude(path.as_str()));
        let api = features
            .iter()
            .flat_map(|feature| feature.endpoints())
            .fold(web::scope(API_PREFIX), |scope, endpoint| {
                scope.service(endpoint.into_service())
            });
        let openapi_json = openapi_json.clone();
        App::new()
            .wrap(errors::problem_bodies())
            .wrap(DefaultHeaders::new().add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")))
            .wrap(access_log)
            .service(api)
            .configure(|cfg| {
                if let Some(json) = openapi_json {
                    docs::configure(cfg, json);
                }
            })
            .default_service(web::to(errors::not_found))
    })
    .workers(workers)
    .listen(listener)?
    .run();

    info!(
        "listening on http://{addr} (version {}, {workers} workers, docs {})",
        env!("CARGO_PKG_VERSION"),
        if settings.docs { "on" } else { "off" }
    );
    Ok(server)
}
