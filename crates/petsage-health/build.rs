//! Records what this build was made from, for `/api/v1/info` and the IETF
//! health format's `releaseId`: the git commit (with `-dirty` for a modified
//! tree, `unknown` outside git), the build time, rustc and the target.
//! Runs git and rustc only; it never reaches the network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let commit = match git(&root, &["rev-parse", "--short=12", "HEAD"]) {
        Some(sha) => {
            watch_git(&root);
            let dirty = git(&root, &["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|changes| !changes.is_empty());
            if dirty { format!("{sha}-dirty") } else { sha }
        }
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=PETSAGE_GIT_COMMIT={commit}");

    // Reproducible builds set SOURCE_DATE_EPOCH; otherwise, now.
    let built = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|epoch| epoch.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=PETSAGE_BUILD_EPOCH={built}");

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=PETSAGE_RUSTC={version}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=PETSAGE_TARGET={target}");
}

/// `git args` in `root`, trimmed; `None` if git is missing or fails.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Reruns this script when the commit, the index or the workspace's sources change.
fn watch_git(root: &Path) {
    if let Some(dir) = git(root, &["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        for file in ["HEAD", "index", "packed-refs"] {
            println!("cargo:rerun-if-changed={}", dir.join(file).display());
        }
        if let Some(head) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", dir.join(head).display());
        }
    }
    // An edit makes the tree dirty before anything is staged.
    // (Source folders only: tools write caches beside them, `tests/.schemathesis`.)
    let sources = [
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "xtask/src",
        "tests/src",
        "tests/tests",
    ];
    for path in sources {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
}
