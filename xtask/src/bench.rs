//! `cargo xtask bench [--quick] [--duration SECS] [--instructions | --jobs] [--old DIR]`: builds the release
//! binaries and runs the bench (`tests/src/bin/petsage-bench`), which lives
//! beside the test harness it shares.

use std::path::Path;
use std::process::Command;

/// Builds PetSage, the baselines and the bench in release, then runs the bench with `args`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let instructions_only = args.iter().any(|a| a == "--instructions");
    let jobs_only = args.iter().any(|a| a == "--jobs");
    for (tool, package, needed) in [
        ("wrk", "wrk", !instructions_only && !jobs_only),
        ("taskset", "util-linux", !instructions_only),
        ("psql", "postgresql-client", !instructions_only),
        ("valgrind", "valgrind", !jobs_only),
    ] {
        if needed && !crate::on_path(tool) {
            return Err(format!(
                "bench needs {tool}; install it with: sudo apt-get install -y {package} (cargo xtask ci installs it too)"
            ));
        }
    }
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "petsage-app",
        "-p",
        "petsage-tests",
        "--bins",
    ])?;
    let bench = crate::target_dir(root).join("release/petsage-bench");
    let status = Command::new(&bench)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bench.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the bench failed ({status})"))
    }
}
