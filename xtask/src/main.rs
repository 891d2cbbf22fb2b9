//! Project automation, run as `cargo xtask <task>`: no shell scripts to drift.

mod bench;
mod new_feature;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  ci [--quick]
          install what the whole suite needs (Debian's test tools, schemathesis,
          kubernetes-validate, playwright-core, oidc-provider, a PostgreSQL
          server; it names them first), then cargo fmt --check, clippy with
          warnings denied, and every test: the one command to run before
          pushing. --quick installs nothing and runs fmt, clippy and the tests
          that need no outside tool
  bench [--quick] [--duration SECS] [--instructions] [--old DIR]
          release-build PetSage and bare actix-web baselines, load them with
          wrk in interleaved rounds on pinned cores, time cold starts, count
          instructions per request under callgrind, print the tables and write
          target/bench/report.md and report.json. --quick: short rounds (what
          CI runs); --instructions: instruction counts only; --old DIR: add
          rows for the petsage-app and petsage-test-app of an older release
          build in DIR
  soak [--secs N]
          the load and rolling-restart scenarios for N seconds each (default 300)
  new-feature <name> [--singular <word>] [--dry-run]
          create crates/petsage-<name> (a feature that stores items in the
          database: model, migrations, create/list/get/replace/delete endpoints,
          OpenAPI, tests on SQLite and PostgreSQL) and register it in the app;
          --singular names one item in summaries (\"Create a pet\"; derived
          from the name when absent: pets → pet, categories → category);
          --dry-run prints the files and edits without writing anything; a
          name already in the workspace is refused, and a failure undoes
          every write
  fixture
          render the feature templates into tests/notes, the feature the test
          suite serves (a test fails when it is stale)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&args[1..]),
        Some("new-feature") => return new_feature_cmd(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("fixture") => workspace_root().and_then(|root| new_feature::refresh_fixture(&root)),
        Some("bench") => workspace_root().and_then(|root| bench::run(&root, &args[1..])),
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
    const USAGE: &str = "usage: cargo xtask new-feature <name> [--singular <word>] [--dry-run]";
    let mut dry_run = false;
    let mut singular = None;
    let mut names = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dry-run" => dry_run = true,
            "--singular" => match args.next() {
                Some(word) if singular.is_none() => singular = Some(word.as_str()),
                _ => {
                    eprintln!("xtask: {USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => names.push(arg),
        }
    }
    let [name] = names.as_slice() else {
        eprintln!("xtask: {USAGE}");
        return ExitCode::from(2);
    };
    let root = match workspace_root() {
        Ok(root) => root,
        Err(err) => {
            eprintln!("xtask: {err}");
            return ExitCode::FAILURE;
        }
    };
    match new_feature::run(&root, name, singular, dry_run) {
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

/// Everything CI checks, in the order that fails fastest; `--quick` for the
/// inner loop leaves out set-up and the tests that need outside tools.
fn ci(args: &[String]) -> Result<(), String> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err("usage: cargo xtask ci [--quick]".to_owned()),
    };
    if !quick {
        setup::prepare(&workspace_root()?)?;
    }
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Tests that need outside tools are #[ignore]d so a bare `cargo test`
    // passes anywhere; the full run includes them.
    if quick {
        cargo(&["test", "--workspace"])
    } else {
        cargo(&["test", "--workspace", "--", "--include-ignored"])
    }
}

/// `cargo xtask soak [--secs N]`: the load and rolling-restart scenarios, long.
fn soak(args: &[String]) -> Result<(), String> {
    let secs = match args {
        [] => "300".to_owned(),
        [flag, n] if flag == "--secs" && n.parse::<u32>().is_ok_and(|n| n >= 20) => n.clone(),
        _ => return Err("usage: cargo xtask soak [--secs N] (N >= 20)".to_owned()),
    };
    setup::prepare(&workspace_root()?)?;
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

/// Where cargo builds: `$CARGO_TARGET_DIR`, or `target/` in the workspace.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Whether `bin` is on PATH (or, when it is a path, exists).
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
