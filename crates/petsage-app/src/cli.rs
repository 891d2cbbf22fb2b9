//! The command line: `petsage-app [FLAGS]` serves, `petsage-app openapi` prints the document.

use std::net::TcpListener;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

use crate::{Features, Settings, openapi, run};

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
}

/// Runs the command line against `features`, returning the process exit code.
pub fn main(features: Features) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match cli.command {
        Some(Command::Openapi) => print_openapi(&features),
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
        Ok(()) => ExitCode::SUCCESS,
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
