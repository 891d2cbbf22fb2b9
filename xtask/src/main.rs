//! Project automation, run as `cargo xtask <task>`: no shell scripts to drift.

mod bench;
mod new_feature;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  ci      cargo fmt --check, clippy with warnings denied, and the whole test suite,
          including the tests that need haproxy and wrk: the one command to run
          before pushing
  bench [--quick] [--duration SECS]
          release-build PetSage and a bare actix-web baseline, load both with
          wrk in interleaved rounds on pinned cores, print the table and write
          target/bench/report.md and report.json
  soak [--secs N]
          the load and rolling-restart scenarios for N seconds each (default 300)
  new-feature <name> [--dry-run]
          create crates/petsage-<name> (a feature that stores items in the
          database: model, migrations, create/list/get/replace/delete endpoints,
          OpenAPI, tests on SQLite and PostgreSQL) and register it in the app;
          --dry-run prints the files and edits without writing anything
  fixture
          render the feature templates into tests/notes, the feature the test
          suite serves (a test fails when it is stale)
";

/// Tools the ignored-by-default tests need, and the Debian packages that bring them.
const TEST_TOOLS: &[(&str, &str)] = &[
    ("haproxy", "haproxy"),
    ("wrk", "wrk"),
    (
        "prometheus-blackbox-exporter",
        "prometheus-blackbox-exporter",
    ),
    ("promtool", "prometheus"),
    // Nagios' plugin lives outside PATH.
    (
        "/usr/lib/nagios/plugins/check_http",
        "monitoring-plugins-basic",
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("new-feature") => return new_feature_cmd(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("fixture") => workspace_root().and_then(|root| new_feature::refresh_fixture(&root)),
        Some("bench") => bench::Options::parse(&args[1..])
            .and_then(|options| bench::run(&workspace_root()?, &options)),
        Some("-h" | "--help" | "help") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => {
            eprintln!("xtask: unknown task {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

fn new_feature_cmd(args: &[String]) -> ExitCode {
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let names: Vec<&String> = args.iter().filter(|a| *a != "--dry-run").collect();
    let [name] = names.as_slice() else {
        eprintln!("xtask: usage: cargo xtask new-feature <name> [--dry-run]");
        return ExitCode::from(2);
    };
    let root = match workspace_root() {
        Ok(root) => root,
        Err(err) => {
            eprintln!("xtask: {err}");
            return ExitCode::FAILURE;
        }
    };
    match new_feature::run(&root, name, dry_run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(new_feature::Error::Usage(reason)) => {
            eprintln!("xtask: {reason}");
            ExitCode::from(2)
        }
        Err(new_feature::Error::Failed(reason)) => {
            eprintln!("xtask: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The nearest folder at or above the current one whose Cargo.toml has `[workspace]`.
fn workspace_root() -> Result<PathBuf, String> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?;
    cwd.ancestors()
        .find(|dir| is_workspace_root(dir))
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("no Cargo workspace at or above {}", cwd.display()))
}

fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
}

/// Everything CI checks, in the order that fails fastest.
fn ci() -> Result<(), String> {
    require_tools(TEST_TOOLS)?;
    require_schemathesis()?;
    require_postgres()?;
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Tests that need external tools are #[ignore]d so a bare `cargo test` passes
    // anywhere; CI and this task run them too.
    cargo(&["test", "--workspace", "--", "--include-ignored"])?;
    Ok(())
}

/// `cargo xtask soak [--secs N]`: the load and rolling-restart scenarios, long.
fn soak(args: &[String]) -> Result<(), String> {
    let secs = match args {
        [] => "300".to_owned(),
        [flag, n] if flag == "--secs" && n.parse::<u32>().is_ok_and(|n| n >= 20) => n.clone(),
        _ => return Err("usage: cargo xtask soak [--secs N] (N >= 20)".to_owned()),
    };
    require_tools(TEST_TOOLS)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: soak for {secs} s per scenario");
    let status = Command::new(&cargo)
        .args([
            "test",
            "-p",
            "petsage-tests",
            "--test",
            "load",
            "--test",
            "rolling_restart",
        ])
        .args([
            "--",
            "--include-ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("PETSAGE_SOAK_SECS", &secs)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("soak failed ({status})"))
    }
}

/// The ignored tests fuzz the contract with schemathesis from the `.venv` `.ci/run` makes.
fn require_schemathesis() -> Result<(), String> {
    let found = std::env::var_os("SCHEMATHESIS").is_some()
        || workspace_root()?.join(".venv/bin/schemathesis").is_file();
    if found {
        return Ok(());
    }
    Err("missing schemathesis; install it with: python3 -m venv .venv && .venv/bin/pip install schemathesis==4.32.5 (or set SCHEMATHESIS)".to_owned())
}

/// The database tests need a PostgreSQL server to create databases on, and
/// the server binaries to run clusters of their own.
fn require_postgres() -> Result<(), String> {
    let binaries = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .any(|v| v.path().join("bin/pg_ctl").is_file())
        })
        .unwrap_or(false);
    if !binaries {
        return Err("missing PostgreSQL's server binaries; install them with: sudo apt-get install -y postgresql".to_owned());
    }
    let url = std::env::var("PETSAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432");
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
        });
    if reachable {
        return Ok(());
    }
    Err(format!(
        "no PostgreSQL answers at {host_port}; start one (.ci/run shows how: pg_ctlcluster <version> main start, trust auth for 127.0.0.1) or set PETSAGE_TEST_POSTGRES_URL"
    ))
}

/// Fails with the install command when a tool is not on PATH.
fn require_tools(tools: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(bin, _)| !on_path(bin))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing test tools; install them with: sudo apt-get install -y {}",
        missing.join(" ")
    ))
}

pub(crate) fn on_path(bin: &str) -> bool {
    if bin.contains('/') {
        return std::path::Path::new(bin).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(bin).is_file()))
}

/// Runs `cargo <args>` (the cargo that runs us), failing on a non-zero exit.
pub(crate) fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .map_err(|err| format!("cannot run {cargo}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}
