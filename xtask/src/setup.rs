//! What the whole suite needs besides the Rust toolchain, and installing it:
//! Debian's test tools, schemathesis and kubernetes-validate in `.venv`,
//! playwright-core for the browser test, oidc-provider for the access-token
//! tests, and a PostgreSQL server on 127.0.0.1:5432.
//!
//! [`prepare`] says in one line what it will install, then installs it. Where
//! it cannot (not root, not Debian), it fails before anything is built, with
//! the command to run instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The schemathesis release the contract tests are written against.
pub(crate) const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The kubernetes-validate release the manifest test runs: its newest
/// schemas, Kubernetes 1.37, are what `tests/tests/deploy.rs` checks against.
pub(crate) const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The playwright-core release the browser test drives Debian's chromium with.
pub(crate) const PLAYWRIGHT: &str = "playwright-core@1.64.1";
/// The OpenID provider the access-token tests get tokens from (panva's
/// oidc-provider; it wants Node 22 and runs on Debian's Node 20 with a warning).
pub(crate) const OIDC_PROVIDER: &str = "oidc-provider@9.13.3";

/// A program the tests run, and the Debian package that brings it.
struct Tool {
    /// A name looked up on PATH, or an absolute path.
    program: &'static str,
    package: &'static str,
}

/// Everything the tool-dependent (`#[ignore]`d) tests and the bench run.
const TOOLS: &[Tool] = &[
    Tool {
        program: "haproxy",
        package: "haproxy",
    },
    Tool {
        program: "wrk",
        package: "wrk",
    },
    Tool {
        program: "prometheus-blackbox-exporter",
        package: "prometheus-blackbox-exporter",
    },
    Tool {
        program: "promtool",
        package: "prometheus",
    },
    // Nagios' plugin lives outside PATH.
    Tool {
        program: "/usr/lib/nagios/plugins/check_http",
        package: "monitoring-plugins-basic",
    },
    Tool {
        program: "chromium",
        package: "chromium",
    },
    Tool {
        program: "npm",
        package: "npm",
    },
    Tool {
        program: "python3",
        package: "python3-venv",
    },
    Tool {
        program: "psql",
        package: "postgresql-client",
    },
    Tool {
        program: "taskset",
        package: "util-linux",
    },
    // The bench's instruction counts (callgrind, and callgrind_control from the same package).
    Tool {
        program: "valgrind",
        package: "valgrind",
    },
];

/// The local server the database tests and the bench create databases on,
/// unless `PETSAGE_TEST_POSTGRES_URL` names another (as they both honour).
const POSTGRES: &str = "127.0.0.1:5432";

/// The variable naming another PostgreSQL server for the tests and the bench.
const POSTGRES_URL_VAR: &str = "PETSAGE_TEST_POSTGRES_URL";

/// What is missing, found without changing anything.
struct Plan {
    packages: Vec<&'static str>,
    schemathesis: bool,
    kubernetes_validate: bool,
    playwright: bool,
    oidc_provider: bool,
    start_postgres: bool,
}

impl Plan {
    fn of(root: &Path) -> Self {
        let mut packages: Vec<&'static str> = TOOLS
            .iter()
            .filter(|tool| !crate::on_path(tool.program))
            .map(|tool| tool.package)
            .collect();
        if !has_postgres_server() {
            packages.push("postgresql");
        }
        Self {
            packages,
            schemathesis: std::env::var_os("SCHEMATHESIS").is_none()
                && !root.join(".venv/bin/schemathesis").is_file(),
            kubernetes_validate: std::env::var_os("KUBERNETES_VALIDATE").is_none()
                && !root.join(".venv/bin/kubernetes-validate").is_file(),
            playwright: !playwright_dir(root)
                .join("node_modules/playwright-core")
                .is_dir(),
            oidc_provider: !oidc_dir(root).join("node_modules/oidc-provider").is_dir(),
            // A server named by the variable is the user's to run.
            start_postgres: std::env::var_os(POSTGRES_URL_VAR).is_none() && !answers(POSTGRES),
        }
    }

    fn is_empty(&self) -> bool {
        self.packages.is_empty()
            && !self.schemathesis
            && !self.kubernetes_validate
            && !self.playwright
            && !self.oidc_provider
            && !self.start_postgres
    }

    /// What to tell a user this task cannot install for: what is missing, and the commands.
    fn refusal(&self) -> String {
        let mut commands = Vec::new();
        if !self.packages.is_empty() {
            commands.push(format!(
                "sudo apt-get install -y {}",
                self.packages.join(" ")
            ));
        }
        if self.start_postgres {
            commands.push(
                "sudo pg_ctlcluster $(ls /etc/postgresql | sort -n | tail -1) main start (with trust auth for 127.0.0.1 in its pg_hba.conf)"
                    .to_owned(),
            );
        }
        format!(
            "the test suite needs: {}.\nInstalling that needs root on Debian or Ubuntu; run this, then cargo xtask ci again:\n  {}\n(cargo xtask ci --quick runs the tests that need no outside tool)",
            self.describe(),
            commands.join("\n  "),
        )
    }

    /// One line naming everything this run installs or starts.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.packages.is_empty() {
            parts.push(format!("Debian packages {}", self.packages.join(" ")));
        }
        if self.schemathesis {
            parts.push(format!("{SCHEMATHESIS} into .venv"));
        }
        if self.kubernetes_validate {
            parts.push(format!("{KUBERNETES_VALIDATE} into .venv"));
        }
        if self.playwright {
            parts.push(format!("{PLAYWRIGHT} into target/browser"));
        }
        if self.oidc_provider {
            parts.push(format!("{OIDC_PROVIDER} into target/oidc"));
        }
        if self.start_postgres {
            parts.push(format!(
                "a PostgreSQL server on {POSTGRES} (trust auth for loopback)"
            ));
        }
        parts.join("; ")
    }
}

/// Installs and starts whatever the whole suite needs, or fails with what to run.
pub(crate) fn prepare(root: &Path) -> Result<(), String> {
    if let Ok(url) = std::env::var(POSTGRES_URL_VAR) {
        let addr = host_and_port(&url);
        if !answers(&addr) {
            return Err(format!(
                "no PostgreSQL answers at {addr} ({POSTGRES_URL_VAR}); start it, or unset the variable to use one on {POSTGRES}"
            ));
        }
    }
    let plan = Plan::of(root);
    if plan.is_empty() {
        return Ok(());
    }
    let privileged = plan.start_postgres || !plan.packages.is_empty();
    if privileged && !(is_root() && Path::new("/usr/bin/apt-get").is_file()) {
        return Err(plan.refusal());
    }
    eprintln!("xtask: installing {}", plan.describe());
    if !plan.packages.is_empty() {
        run("apt-get", &["update", "-qq"], &[])?;
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&plan.packages);
        run("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])?;
    }
    if plan.start_postgres && !answers(POSTGRES) {
        start_postgres()?;
    }
    let python_tools: Vec<&str> = [
        (plan.schemathesis, SCHEMATHESIS),
        (plan.kubernetes_validate, KUBERNETES_VALIDATE),
    ]
    .into_iter()
    .filter_map(|(missing, tool)| missing.then_some(tool))
    .collect();
    if !python_tools.is_empty() {
        install_into_venv(root, &python_tools)?;
    }
    if plan.playwright {
        // playwright-core brings no browser: the test drives Debian's chromium.
        npm_install(
            &playwright_dir(root),
            PLAYWRIGHT,
            &[("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")],
        )?;
    }
    if plan.oidc_provider {
        npm_install(&oidc_dir(root), OIDC_PROVIDER, &[])?;
    }
    Ok(())
}

/// Installs PyPI `requirements` (pinned) into `.venv` under `root`, making it if need be.
fn install_into_venv(root: &Path, requirements: &[&str]) -> Result<(), String> {
    let venv = root.join(".venv");
    run("python3", &["-m", "venv", &venv.display().to_string()], &[])?;
    let pip = venv.join("bin/pip").display().to_string();
    let mut args = vec!["install", "-q", "--disable-pip-version-check"];
    args.extend(requirements);
    run(&pip, &args, &[])
}

/// Installs the pinned npm `package` into `dir/node_modules` (a project-local
/// folder, never a global install), quiet unless it fails.
fn npm_install(dir: &Path, package: &str, env: &[(&str, &str)]) -> Result<(), String> {
    let dir = dir.display().to_string();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    run(
        "npm",
        &[
            "install",
            "--prefix",
            &dir,
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--silent",
            package,
        ],
        env,
    )
}

/// Where playwright-core is installed: `target/browser`, beside the browser test's screenshot.
pub(crate) fn playwright_dir(root: &Path) -> PathBuf {
    crate::target_dir(root).join("browser")
}

/// Where oidc-provider is installed: `target/oidc`, where the tests'
/// harness (`petsage_tests::oidc`) looks for it above the test binary.
pub(crate) fn oidc_dir(root: &Path) -> PathBuf {
    crate::target_dir(root).join("oidc")
}

/// Debian's cluster `main` of the newest installed version, with trust auth
/// for loopback connections, as this machine kind runs it.
fn start_postgres() -> Result<(), String> {
    let version = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("no /etc/postgresql (is postgresql installed?): {e}"))?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .ok_or("no PostgreSQL cluster under /etc/postgresql")?
        .to_string();
    let hba = format!("/etc/postgresql/{version}/main/pg_hba.conf");
    let text = std::fs::read_to_string(&hba).map_err(|e| format!("{hba}: {e}"))?;
    let trusted: Vec<String> = text
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [
                    "host",
                    "all",
                    "all",
                    addr @ ("127.0.0.1/32" | "::1/128"),
                    _method,
                ] => {
                    format!("host    all             all             {addr:<23} trust")
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    std::fs::write(&hba, trusted.join("\n") + "\n").map_err(|e| format!("{hba}: {e}"))?;
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "start"],
        &[],
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(POSTGRES) {
        if Instant::now() > deadline {
            return Err(format!(
                "PostgreSQL {version} did not answer on {POSTGRES} within 30 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn has_postgres_server() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|dir| {
        dir.filter_map(Result::ok)
            .any(|v| v.path().join("bin/pg_ctl").is_file())
    })
}

/// `host:port` of a `postgres://user@host:port/db` URL (port 5432 when none is given).
fn host_and_port(url: &str) -> String {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// Whether something accepts TCP connections at `addr`.
fn answers(addr: &str) -> bool {
    std::net::ToSocketAddrs::to_socket_addrs(addr)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Runs `program args` with `env` added, its output kept back unless it
/// fails; says how long it took.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let started = Instant::now();
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let command = format!("{program} {}", args.join(" "));
    if output.status.success() {
        eprintln!(
            "xtask: {command}: done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        Err(format!(
            "{command} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_what_is_missing_and_the_commands_to_run() {
        let plan = Plan {
            packages: vec!["haproxy", "wrk"],
            schemathesis: true,
            kubernetes_validate: true,
            playwright: false,
            oidc_provider: true,
            start_postgres: true,
        };
        let text = plan.refusal();
        assert!(text.contains("Debian packages haproxy wrk"), "{text}");
        assert!(text.contains("schemathesis==4.32.5 into .venv"), "{text}");
        assert!(
            text.contains("kubernetes-validate==1.37.0 into .venv"),
            "{text}"
        );
        assert!(
            text.contains("oidc-provider@9.13.3 into target/oidc"),
            "{text}"
        );
        assert!(
            text.contains("sudo apt-get install -y haproxy wrk"),
            "{text}"
        );
        assert!(text.contains("pg_ctlcluster"), "{text}");
        assert!(
            !Plan {
                packages: Vec::new(),
                schemathesis: false,
                kubernetes_validate: false,
                playwright: false,
                oidc_provider: false,
                start_postgres: false
            }
            .describe()
            .contains(';')
        );
    }

    #[test]
    fn the_tests_postgres_url_gives_the_address_to_check() {
        assert_eq!(
            host_and_port("postgres://postgres@127.0.0.1:5433/postgres"),
            "127.0.0.1:5433"
        );
        assert_eq!(
            host_and_port("postgres://db.internal/petsage"),
            "db.internal:5432"
        );
    }
}
