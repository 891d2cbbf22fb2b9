//! The command line: `petsage-app [FLAGS]` serves, `petsage-app openapi` prints the document.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

use crate::{API_PREFIX, Features, Settings, openapi, run};

/// Exit code for a bad flag or environment value, as clap and sysexits use.
const EXIT_USAGE: u8 = 2;

/// PetSage backend: serves the PetSage API over HTTP.
#[derive(Debug, Parser)]
#[command(name = "petsage-app", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the OpenAPI document to stdout and exit.
    Openapi,
    /// Ask a running server whether it is ready: exit 0 if so, 1 if not (for container HEALTHCHECKs).
    Probe {
        /// URL to ask [default: the readiness endpoint at PETSAGE_BIND, 0.0.0.0 read as 127.0.0.1].
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Give up after this long.
        #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::server::parse_duration)]
        timeout: Duration,
    },
}

/// Runs the command line against `features`, returning the process exit code.
pub fn main(features: Features) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match cli.command {
        Some(Command::Openapi) => print_openapi(&features),
        Some(Command::Probe { url, timeout }) => {
            let url = url.unwrap_or_else(|| readiness_url(cli.settings.bind));
            probe(&url, timeout)
        }
        None => serve(&cli.settings, features),
    }
}

fn print_openapi(features: &Features) -> ExitCode {
    match openapi(features).to_pretty_json() {
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

fn serve(settings: &Settings, features: Features) -> ExitCode {
    init_logging();
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
    let outcome = actix_web::rt::System::new()
        .block_on(async move { run(listener, settings, features)?.await });
    match outcome {
        Ok(()) => {
            log::info!("stopped: no request left in flight; exiting");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("petsage-app: server failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through env_logger: `info` unless `RUST_LOG` says otherwise.
fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// Prints help and version as clap does; anything else as one line, exit code 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Writes to stdout; nothing useful can be done if that fails.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            if let Some(line) = invalid_value_line(err) {
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
fn invalid_value_line(err: &clap::Error) -> Option<String> {
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) => value.as_str(),
        _ => "",
    };
    // `arg` renders as "--bind <IP:PORT>": find the flag to name its variable too.
    let long = arg.split_whitespace().next()?.trim_start_matches('-');
    let command = Cli::command();
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
