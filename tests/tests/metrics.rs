//! Prometheus metrics over real HTTP: series by route template, health and
//! phase series, `--metrics-bind` and `--metrics false`, a bounded number of
//! series under random paths (wrk), and `promtool check metrics` on a scrape.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use petsage_tests::free_port;
use petsage_tests::wrk::{Wrk, wrk_report};
use petsage_tests::{Server, StatusCode};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

/// The series lines of a scrape (no comments).
fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
}

#[test]
fn requests_are_counted_by_route_template_and_unknown_paths_as_unmatched() {
    let server = Server::builder(APP).start();
    server.act_as("alice", petsage_tests::NOTES_SCOPES);
    assert_eq!(
        server.get("/api/v1/notes/424242").status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/api/v1/no/such/path").status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
    let scrape = server.get("/metrics");
    assert_eq!(scrape.status, StatusCode::OK);
    assert!(
        scrape
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        scrape.header("content-type")
    );
    let text = scrape.body;
    for line in [
        r#"petsage_http_requests_total{method="GET",route="/api/v1/notes/{id}",status="404"} 1"#,
        r#"petsage_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"petsage_http_requests_total{method="GET",route="/api/v1/health",status="200"} "#,
        r#"petsage_http_request_duration_seconds_bucket{le="0.0005",method="GET",route="/api/v1/health"} "#,
        "petsage_health_status 2",
        r#"petsage_health_check_up{check="database"} 1"#,
        r#"petsage_phase{phase="serving"} 1"#,
        "petsage_build_info{",
        "process_resident_memory_bytes ",
        r#"petsage_db_pool_connections{state="in_use"} "#,
        r#"petsage_db_pool_connections{state="idle"} "#,
        "petsage_db_pool_max_connections 10",
        "petsage_db_pool_acquire_timeouts_total 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(
        !text.contains("424242") && !text.contains("no/such"),
        "raw paths never become labels"
    );
}

#[test]
fn a_failing_critical_check_shows_in_the_health_series() {
    let server = Server::with_failing_critical_check(APP);
    let text = server.get("/metrics").body;
    assert!(text.contains("petsage_health_status 0"), "{text}");
    assert!(
        text.contains(r#"petsage_health_check_up{check="db"} 0"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"petsage_health_check_failures_total{check="db"} 0"#),
        "{text}"
    );
}

#[test]
fn metrics_bind_moves_metrics_off_the_main_port_and_false_turns_them_off() {
    let port = free_port();
    let server = Server::builder(APP)
        .env("PETSAGE_METRICS_BIND", &format!("127.0.0.1:{port}"))
        .start();
    assert_eq!(server.get("/metrics").status, StatusCode::NOT_FOUND);
    let mut res = petsage_tests::agent(Duration::from_secs(5))
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("the metrics listener answers");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.body_mut().read_to_string().expect("body");
    assert!(text.contains("petsage_health_status"), "{text}");

    let server = Server::builder(APP).env("PETSAGE_METRICS", "false").start();
    assert_eq!(server.get("/metrics").status, StatusCode::NOT_FOUND);
}

#[test]
#[ignore = "needs wrk: run by cargo xtask ci"]
fn a_hundred_thousand_random_paths_add_no_series() {
    let server = Server::builder(APP)
        .env("RUST_LOG", "info,petsage::access=warn")
        .start();
    assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
    let warm = server.get("/api/v1/anything-at-all");
    assert_eq!(warm.status, StatusCode::NOT_FOUND);
    // A first scrape makes the scrape route's own series; count from the second.
    server.get("/metrics");
    let before = series(&server.get("/metrics").body).len();

    let script = petsage_tests::Scratch::new("wrk-random");
    let lua = script.path().join("random.lua");
    std::fs::write(
        &lua,
        "math.randomseed(42)\nrequest = function()\n  return wrk.format(\"GET\", \"/api/v1/r\" .. math.random(1, 1000000000) .. \"/\" .. math.random(1, 1000000000))\nend\n",
    )
    .expect("script written");
    // Rounds of 10 s until 100,000 requests have gone, at most 6 rounds.
    let mut requests = 0;
    for _ in 0..6 {
        let wrk = Wrk::new(32, 10)
            .spawn_scripted(&server.url("/"), &lua)
            .expect("wrk runs (apt-get install -y wrk)");
        requests += wrk_report(wrk).requests;
        if requests >= 100_000 {
            break;
        }
    }
    let after = series(&server.get("/metrics").body).len();
    println!("{requests} random paths: {before} series before, {after} after");
    assert!(
        requests >= 100_000,
        "too few requests to prove it: {requests}"
    );
    assert_eq!(after, before, "random paths added series");
    let text = server.get("/metrics").body;
    assert!(!text.contains("/api/v1/r"), "a raw path became a label");
}

#[test]
#[ignore = "needs promtool (Debian's prometheus): run by cargo xtask ci"]
fn promtool_finds_no_problem_in_a_scrape() {
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .start();
    server.get("/api/v1/health");
    server.get("/api/v1/nope");
    let scrape = server.get("/metrics").body;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install -y prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("scrape written");
    let output = promtool.wait_with_output().expect("promtool ends");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    println!(
        "promtool check metrics: exit {:?} {said}",
        output.status.code()
    );
    assert!(output.status.success(), "{said}\n{scrape}");
    assert!(said.trim().is_empty(), "promtool reported: {said}");
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `promtool <args>` in the repository: its exit status and what it said.
fn promtool(args: &[&str]) -> (bool, String) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("promtool runs (apt-get install -y prometheus)");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), said)
}

#[test]
#[ignore = "needs promtool (Debian's prometheus): run by cargo xtask ci"]
fn every_alert_rule_passes_its_promtool_unit_test() {
    let (ok, said) = promtool(&["test", "rules", "deploy/prometheus/alerts_test.yml"]);
    println!("promtool test rules: {said}");
    assert!(ok, "{said}");
    let (ok, said) = promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(ok, "{said}");
    // Every rule is tested: each alert name appears in the tests.
    let rules =
        std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).expect("rules");
    let tests =
        std::fs::read_to_string(repo().join("deploy/prometheus/alerts_test.yml")).expect("tests");
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(names.len(), 9, "{names:?}");
    for name in names {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name} has no test"
        );
    }
}

/// Every series name in `text` that looks like ours (`petsage_…`, `process_…`).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("petsage_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
    }
    names
}

#[test]
fn the_dashboard_and_the_alert_rules_read_only_series_the_service_serves() {
    // With a protected route, so the identity platform's series are served
    // (its provider is unreachable here: the key set stays unfetched), and
    // with background jobs, so the jobs platform's are.
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .env("PETSAGE_TEST_CHORES", "on")
        .env("PETSAGE_TEST_WHOAMI", "on")
        .env("PETSAGE_AUTH_MODE", "provider")
        .env("PETSAGE_AUTH_ISSUER", "http://127.0.0.1:9")
        .env("PETSAGE_AUTH_AUDIENCES", "notes")
        .start();
    server.get("/api/v1/health");
    let scrape = server.get("/metrics").body;
    let served = metric_names(&scrape);
    let dashboard =
        std::fs::read_to_string(repo().join("deploy/grafana/petsage.json")).expect("dashboard");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10));
    let rules =
        std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).expect("rules");
    for (file, text) in [("petsage.json", dashboard), ("alerts.yml", rules)] {
        for name in metric_names(&text) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                served.iter().any(|s| s == &name || s.starts_with(base)),
                "{file} reads {name}, which /metrics does not serve"
            );
        }
    }
}

/// A Prometheus server on loopback scraping `target` every second, killed by its PID when dropped.
struct Prometheus {
    _process: petsage_tests::KillOnDrop,
    _data: petsage_tests::Scratch,
    port: u16,
}

impl Prometheus {
    fn start(target: std::net::SocketAddr) -> Prometheus {
        let data = petsage_tests::Scratch::new("prometheus");
        let config = data.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: petsage\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .expect("config written");
        let port = free_port();
        let process = petsage_tests::spawn_listening(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    data.path().join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
            port,
            "prometheus",
            "apt-get install -y prometheus",
            Duration::from_secs(20),
        );
        Prometheus {
            _process: process,
            _data: data,
            port,
        }
    }

    /// The value of instant query `query`'s first result, if any.
    fn query(&self, query: &str) -> Option<String> {
        let mut res = petsage_tests::agent(Duration::from_secs(5))
            .get(&format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query("query", query)
            .call()
            .ok()?;
        let body: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().ok()?).ok()?;
        body["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
    }

    /// Polls `query` until it answers `want`; returns how long that took.
    fn wait_for(&self, query: &str, want: &str, limit: Duration) -> Duration {
        let started = std::time::Instant::now();
        loop {
            let got = self.query(query);
            if got.as_deref() == Some(want) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{query} was {got:?}, not {want}, after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
#[ignore = "needs Debian's prometheus: run by cargo xtask ci"]
fn a_real_prometheus_scrapes_the_service_and_sees_a_check_fail() {
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .env("PETSAGE_HEALTH_INTERVAL", "100ms")
        .start();
    let prometheus = Prometheus::start(server.addr());
    let limit = Duration::from_secs(30);
    let took = prometheus.wait_for(r#"up{job="petsage"}"#, "1", limit);
    println!("Prometheus API: up == 1 after {took:?}");
    prometheus.wait_for("petsage_health_status", "2", limit);
    prometheus.wait_for(r#"petsage_health_check_up{check="db"}"#, "1", limit);
    println!(
        "Prometheus API: petsage_health_status == 2, petsage_health_check_up{{check=\"db\"}} == 1"
    );
    server.set_check("db", "fail");
    let took = prometheus.wait_for(r#"petsage_health_check_up{check="db"}"#, "0", limit);
    prometheus.wait_for("petsage_health_status", "0", limit);
    println!(
        "Prometheus API: petsage_health_check_up{{check=\"db\"}} == 0 and petsage_health_status == 0, {took:?} after the check was set to fail"
    );
    let requests = prometheus
        .query(r#"sum(petsage_http_requests_total{route="/metrics"})"#)
        .expect("scrapes are counted");
    println!(
        "Prometheus API: sum(petsage_http_requests_total{{route=\"/metrics\"}}) == {requests}"
    );
}
