//! Clients nobody here wrote: Prometheus' blackbox_exporter probing health
//! with the modules in `deploy/blackbox/`, Nagios' `check_http` (Debian's
//! monitoring-plugins), and schemathesis fuzzing the OpenAPI contract. All
//! are installed by `.ci/run`; `cargo xtask ci` runs these.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use petsage_tests::free_port;
use petsage_tests::{KillOnDrop, Server, StatusCode, agent, spawn_listening};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// blackbox_exporter on loopback, killed by its PID when dropped.
struct Blackbox {
    _process: KillOnDrop,
    port: u16,
}

impl Blackbox {
    fn start() -> Blackbox {
        let port = free_port();
        let process = spawn_listening(
            Command::new("prometheus-blackbox-exporter")
                .arg(format!(
                    "--config.file={}",
                    repo().join("deploy/blackbox/blackbox.yml").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            port,
            "blackbox_exporter",
            "apt-get install -y prometheus-blackbox-exporter",
            Duration::from_secs(10),
        );
        Blackbox {
            _process: process,
            port,
        }
    }

    /// The `probe_success` value for `target` with `module`.
    fn probe_success(&self, module: &str, target: &str) -> String {
        let url = format!(
            "http://127.0.0.1:{}/probe?module={module}&target={target}",
            self.port
        );
        let mut res = agent(Duration::from_secs(10))
            .get(&url)
            .call()
            .expect("probe answers");
        let metrics = res.body_mut().read_to_string().expect("metrics");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("probe_success "))
            .unwrap_or_else(|| panic!("no probe_success in:\n{metrics}"))
            .trim()
            .to_owned()
    }
}

#[test]
#[ignore = "needs prometheus-blackbox-exporter: run by cargo xtask ci"]
fn blackbox_exporter_sees_healthy_failing_and_draining() {
    let mut server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical,cache:non-critical")
        .env("PETSAGE_HEALTH_INTERVAL", "20ms")
        .env("PETSAGE_SHUTDOWN_DELAY", "30s")
        .start();
    let exporter = Blackbox::start();
    let health = server.url("/api/v1/health");
    let ready = server.url("/api/v1/health/ready");
    // (uptime module on /health, status-code module on /health/ready,
    // health+json "pass" module on /health/ready)
    let verdicts = || {
        [
            exporter.probe_success("petsage_health", &health),
            exporter.probe_success("petsage_ready", &ready),
            exporter.probe_success("petsage_ready_pass", &ready),
        ]
        .join(" ")
    };
    let settle = |path: &str, status: StatusCode| {
        server.wait_for_status(path, status, Duration::from_secs(5));
    };

    assert_eq!(verdicts(), "1 1 1", "healthy");
    server.set_check("cache", "fail");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/api/v1/health").json()["status"] != "degraded" {
        assert!(Instant::now() < deadline, "never degraded");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        verdicts(),
        "1 1 0",
        "degraded still serves; health+json says warn"
    );
    server.set_check("cache", "ok");
    server.set_check("db", "fail");
    settle("/api/v1/health/ready", StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(verdicts(), "0 0 0", "critical check failing");
    server.set_check("db", "ok");
    settle("/api/v1/health/ready", StatusCode::OK);
    assert_eq!(verdicts(), "1 1 1", "recovered");

    server.signal("TERM");
    server.wait_for_log("SIGTERM received: draining", Duration::from_secs(5));
    assert_eq!(
        verdicts(),
        "1 0 0",
        "draining: an uptime checker sees no outage"
    );
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10)).expect("exits");
}

/// Debian's monitoring-plugins `check_http`, as Nagios or Icinga runs it.
const CHECK_HTTP: &str = "/usr/lib/nagios/plugins/check_http";

/// `check_http` against `/api/v1/health` of `server`, asking for `"status":"ok"`: its exit code and line.
fn check_http(server: &Server) -> (Option<i32>, String) {
    let output = Command::new(CHECK_HTTP)
        .args(["-H", "127.0.0.1", "-p", &server.addr().port().to_string()])
        .args(["-u", "/api/v1/health", "-s", r#""status":"ok""#, "-t", "5"])
        .output()
        .expect("check_http runs (apt-get install -y monitoring-plugins-basic)");
    let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.code(), line)
}

#[test]
#[ignore = "needs monitoring-plugins-basic: run by cargo xtask ci"]
fn nagios_check_http_is_ok_when_healthy_critical_when_a_critical_check_fails() {
    let mut server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .env("PETSAGE_HEALTH_INTERVAL", "20ms")
        .env("PETSAGE_SHUTDOWN_DELAY", "30s")
        .start();
    let (code, line) = check_http(&server);
    println!("healthy: exit {code:?}: {line}");
    assert_eq!(code, Some(0), "{line}");

    server.set_check("db", "fail");
    server.wait_for_status(
        "/api/v1/health",
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(5),
    );
    let (code, line) = check_http(&server);
    println!("critical check failing: exit {code:?}: {line}");
    assert_eq!(code, Some(2), "{line}");

    server.set_check("db", "ok");
    server.wait_for_status("/api/v1/health", StatusCode::OK, Duration::from_secs(5));
    server.signal("TERM");
    server.wait_for_log("SIGTERM received: draining", Duration::from_secs(5));
    let (code, line) = check_http(&server);
    println!("draining: exit {code:?}: {line}");
    assert_eq!(code, Some(0), "a drain is no outage: {line}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10)).expect("exits");
}

/// The schemathesis CLI: `$SCHEMATHESIS`, or the virtualenv `.ci/run` makes.
fn schemathesis() -> PathBuf {
    std::env::var_os("SCHEMATHESIS")
        .map_or_else(|| repo().join(".venv/bin/schemathesis"), PathBuf::from)
}

#[test]
#[ignore = "needs schemathesis in .venv: run by cargo xtask ci"]
fn schemathesis_finds_no_contract_violation() {
    // Exactly petsage-app's features: no test-only endpoints in the contract.
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_FAULTS", "off")
        .start();
    // A caller with every scope the contract names, so every operation is
    // reached; `--checks all` includes `ignored_auth`, which also sends each
    // secured operation without the token and with a bad one, and fails if
    // either is let in.
    let authorization = server
        .act_as("alice", petsage_tests::NOTES_SCOPES)
        .authorization()
        .unwrap_or_default();
    let output = Command::new(schemathesis())
        .args(["run", &server.url("/api-docs/openapi.json")])
        .args(["--url", &server.url("")])
        .args(["--header", &format!("Authorization: {authorization}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "100",
            "--generation-deterministic",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs (pip install schemathesis in .venv)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    println!("{text}");
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{text}"
    );
    let counts = text
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_else(|| panic!("no case count in:\n{text}"));
    let generated: u64 = counts
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(generated > 0, "{counts}");
    assert!(!counts.contains("failed"), "{counts}");
    let log = server.finish();
    assert!(!log.contains("panicked"), "{log}");
}
