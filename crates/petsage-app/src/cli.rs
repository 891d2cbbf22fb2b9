//! The command line: `petsage-app [FLAGS]` serves, `petsage-app openapi` prints
//! the document, `petsage-app migrate` applies migrations and exits,
//! `petsage-app dev-token` prints a dev-mode access token. Every
//! registered feature adds its own settings under its own heading.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgMatches, Command, CommandFactory, FromArgMatches, Parser, Subcommand};
use petsage_core::Registration;
use petsage_db::DatabaseSettings;
use petsage_identity::dev::DevIssuer;
use petsage_identity::{AuthMode, IdentitySettings};

use crate::Platform;

use crate::server::Stop;
use crate::{API_PREFIX, Built, Settings, build, openapi, run};

/// Exit code for a bad flag or environment value, as clap and sysexits use.
const EXIT_USAGE: u8 = 2;

/// PetSage backend: serves the PetSage API over HTTP.
#[derive(Debug, Parser)]
#[command(name = "petsage-app", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command_>,

    #[command(flatten)]
    settings: Settings,

    #[command(flatten)]
    platform: Platform,
}

#[derive(Debug, Subcommand)]
enum Command_ {
    /// Print the OpenAPI document to stdout and exit.
    Openapi,
    /// Apply every feature's pending database migrations and exit (for deploy pipelines).
    Migrate,
    /// Ask a running server whether it is ready: exit 0 if so, 1 if not (for container HEALTHCHECKs).
    Probe {
        /// URL to ask [default: the readiness endpoint at PETSAGE_BIND, 0.0.0.0 read as 127.0.0.1].
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Give up after this long.
        #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = petsage_core::settings::parse_duration)]
        timeout: Duration,
    },
    /// Inspect or retry background jobs (in the database the settings name).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Print an access token signed by the dev-mode key in the data folder (PETSAGE_AUTH_MODE=dev; never in production).
    DevToken {
        /// The caller's subject (`sub`): who the token speaks for.
        #[arg(long, value_name = "SUBJECT")]
        sub: String,
        /// Scopes the token grants, comma-separated (e.g. notes:read,notes:write).
        #[arg(long, value_name = "SCOPE,…", value_delimiter = ',')]
        scope: Vec<String>,
        /// How long the token is valid.
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = petsage_core::settings::parse_duration)]
        ttl: Duration,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Print the newest jobs, one JSON object per line, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long, value_parser = ["available", "running", "completed", "discarded"])]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value = "50", value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Make a discarded job due now, with a fresh set of attempts.
    Retry {
        /// The job's ID.
        id: i64,
    },
}

/// The command line: the app's own settings, then each feature's under its heading.
pub fn command(features: &[Registration]) -> Command {
    features
        .iter()
        .fold(Cli::command(), |command, feature| feature.augment(command))
}

/// Runs the command line against `features`, returning the process exit code.
pub fn main(features: Vec<Registration>) -> ExitCode {
    for feature in &features {
        if let Err(err) = feature.check_setting_names() {
            eprintln!("petsage-app: {err}");
            return ExitCode::FAILURE;
        }
    }
    // The app's own settings are taken out of the matches; each feature
    // takes its own from what is left, so nothing is parsed or copied twice.
    let parsed = command(&features)
        .try_get_matches()
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches).map(|cli| (cli, matches)));
    let (cli, mut matches) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => return usage_error(&command(&features), &err),
    };
    let platform = cli.platform;
    match cli.command {
        Some(Command_::Openapi) => print_openapi(&features, &mut matches, platform),
        Some(Command_::Migrate) => migrate(&cli.settings, &features, &mut matches, platform),
        Some(Command_::Jobs { command }) => jobs(&platform.database, command),
        Some(Command_::Probe { url, timeout }) => {
            let url = url.unwrap_or_else(|| readiness_url(cli.settings.bind));
            probe(&url, timeout)
        }
        Some(Command_::DevToken { sub, scope, ttl }) => {
            dev_token(&platform.identity, &platform.database, &sub, &scope, ttl)
        }
        None => {
            if platform.identity.auth_mode == AuthMode::Dev && !cli.settings.bind.ip().is_loopback()
            {
                eprintln!(
                    "petsage-app: invalid value \"{}\" for --bind / PETSAGE_BIND: PETSAGE_AUTH_MODE=dev serves on a loopback address only, such as 127.0.0.1:8080",
                    cli.settings.bind
                );
                return ExitCode::from(EXIT_USAGE);
            }
            serve(&cli.settings, &features, &mut matches, platform)
        }
    }
}

/// `petsage-app dev-token`: one token on stdout, signed by the dev key in the data folder.
fn dev_token(
    identity: &IdentitySettings,
    database: &DatabaseSettings,
    subject: &str,
    scopes: &[String],
    ttl: Duration,
) -> ExitCode {
    let scopes: Vec<String> = scopes
        .iter()
        .map(|scope| scope.trim().to_owned())
        .filter(|scope| !scope.is_empty())
        .collect();
    if subject.trim().is_empty() || scopes.iter().any(|s| s.contains(char::is_whitespace)) {
        eprintln!(
            "petsage-app: dev-token: expected --sub NAME and --scope a,b (scopes without spaces)"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let audience = identity
        .auth_audiences
        .first()
        .map_or(petsage_identity::dev::DEV_AUDIENCE, String::as_str);
    let token = DevIssuer::load_or_create(&database.data_dir)
        .and_then(|issuer| issuer.token(subject, &scopes, audience, ttl));
    match token {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("petsage-app: dev-token: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Calls `f` with `features` built from their default settings (and the
/// environment), inside an actix system of its own. Nothing is started.
pub(crate) fn with_defaults<T>(features: &[Registration], f: impl FnOnce(Built) -> T) -> T {
    let mut matches = command(features)
        .no_binary_name(true)
        .try_get_matches_from(Vec::<String>::new())
        .unwrap_or_else(|err| panic!("default settings do not parse: {err}"));
    let cli = Cli::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|err| panic!("default settings: {err}"));
    actix_web::rt::System::new().block_on(async move {
        let built = build(features, &mut matches, cli.platform, false)
            .unwrap_or_else(|err| panic!("features do not build with defaults: {err}"));
        f(built)
    })
}

fn print_openapi(
    features: &[Registration],
    matches: &mut ArgMatches,
    platform: Platform,
) -> ExitCode {
    let built =
        actix_web::rt::System::new().block_on(async { build(features, matches, platform, false) });
    let built = match built {
        Ok(built) => built,
        Err(err) => return start_error(&err),
    };
    match openapi(&built.features).to_pretty_json() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("petsage-app: cannot serialize the OpenAPI document: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `petsage-app migrate`: run the start steps (connect, migrate) and the stop steps, then exit.
fn migrate(
    settings: &Settings,
    features: &[Registration],
    matches: &mut ArgMatches,
    mut platform: Platform,
) -> ExitCode {
    crate::logging::init(settings.log_format);
    platform.database.migrate = true;
    let outcome = actix_web::rt::System::new().block_on(async move {
        let mut built = build(features, matches, platform, false)?;
        let started = built.lifecycle.start().await;
        built.lifecycle.stop().await;
        started
    });
    match outcome {
        Ok(()) => {
            log::info!("migrate: every feature's schema is current");
            ExitCode::SUCCESS
        }
        Err(err) => start_error(&err),
    }
}

/// `petsage-app jobs list|retry`: reads or changes the jobs table directly;
/// no feature is built and no worker runs. Nothing is logged: the answer
/// is on stdout, a failure one line on stderr.
fn jobs(database: &DatabaseSettings, command: JobsCommand) -> ExitCode {
    let outcome = actix_web::rt::System::new().block_on(async move {
        let mut ctx = petsage_core::Context::new();
        ctx.insert(database.clone());
        let db = petsage_db::Database::from_context(&mut ctx)?;
        let mut lifecycle = ctx.into_lifecycle();
        lifecycle.start().await?;
        let outcome = match command {
            JobsCommand::List { state, limit } => {
                petsage_jobs::inspect::list(&db, state.as_deref(), limit)
                    .await
                    .map_err(|err| format!("cannot read the jobs: {err}"))
                    .map(|rows| {
                        for row in rows {
                            println!("{}", serde_json::to_string(&row).unwrap_or_default());
                        }
                    })
            }
            JobsCommand::Retry { id } => match petsage_jobs::inspect::retry(&db, id).await {
                Ok(true) => {
                    println!("job {id}: due now, with a fresh set of attempts");
                    Ok(())
                }
                Ok(false) => Err(format!("no discarded job has the ID {id}")),
                Err(err) => Err(format!("cannot retry job {id}: {err}")),
            },
        };
        lifecycle.stop().await;
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("petsage-app: jobs: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One line naming what failed to start; exit code 1.
fn start_error(err: &str) -> ExitCode {
    eprintln!("petsage-app: cannot start: {err}");
    ExitCode::FAILURE
}

/// The readiness URL of a server bound to `bind`, reachable from this host.
fn readiness_url(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, bind.port());
    format!("http://{addr}{API_PREFIX}{}", petsage_health::READY_PATH)
}

/// One request, one line of output; exit 0 on 2xx, 1 on anything else.
fn probe(url: &str, timeout: Duration) -> ExitCode {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into();
    match agent.get(url).call() {
        Ok(res) if res.status().is_success() => {
            println!("ready: {} from {url}", res.status());
            ExitCode::SUCCESS
        }
        Ok(res) => {
            println!("not ready: {} from {url}", res.status());
            ExitCode::FAILURE
        }
        Err(err) => {
            println!("not ready: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    settings: &Settings,
    features: &[Registration],
    matches: &mut ArgMatches,
    platform: Platform,
) -> ExitCode {
    crate::logging::init(settings.log_format);
    let listener = match TcpListener::bind(settings.bind) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "petsage-app: cannot listen on {} (--bind / PETSAGE_BIND): {err}",
                settings.bind
            );
            return ExitCode::FAILURE;
        }
    };
    let outcome = actix_web::rt::System::new().block_on(async move {
        let built = build(features, matches, platform, true).map_err(Stop::Start)?;
        run(listener, settings, built).await
    });
    match outcome {
        Ok(()) => {
            log::info!("stopped: no request left in flight; exiting");
            ExitCode::SUCCESS
        }
        Err(Stop::Start(err)) => start_error(&err),
        Err(Stop::Server(err)) => {
            eprintln!("petsage-app: server failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prints help and version as clap does; anything else as one line, exit code 2.
fn usage_error(command: &Command, err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Writes to stdout; nothing useful can be done if that fails.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            if let Some(line) = invalid_value_line(command, err) {
                eprintln!("petsage-app: {line}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
        _ => {}
    }
    let rendered = err.to_string();
    let first = rendered.lines().next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("petsage-app: {first} (see --help)");
    ExitCode::from(EXIT_USAGE)
}

/// `invalid value "x" for --bind / PETSAGE_BIND: expected IP:PORT, …`
fn invalid_value_line(command: &Command, err: &clap::Error) -> Option<String> {
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => value.as_str(),
        _ => "",
    };
    // `arg` renders as "--bind <IP:PORT>": find the flag to name its variable too.
    let long = arg.split_whitespace().next()?.trim_start_matches('-');
    let env = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| format!(" / {}", env.to_string_lossy()))
        .unwrap_or_default();
    let expected = std::error::Error::source(err)
        .map(|source| source.to_string())
        .unwrap_or_else(|| "see --help".to_owned());
    Some(format!(
        "invalid value {value:?} for --{long}{env}: {expected}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_url_reads_unspecified_addresses_as_loopback() {
        let ready = petsage_health::READY_PATH;
        assert_eq!(
            readiness_url("0.0.0.0:8080".parse().expect("addr")),
            format!("http://127.0.0.1:8080/api/v1{ready}")
        );
        assert_eq!(
            readiness_url("[::]:9000".parse().expect("addr")),
            format!("http://[::1]:9000/api/v1{ready}")
        );
        assert_eq!(
            readiness_url("10.1.2.3:80".parse().expect("addr")),
            format!("http://10.1.2.3:80/api/v1{ready}")
        );
    }
}
