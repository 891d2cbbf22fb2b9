//! Prometheus metrics over real HTTP: series by route template, health and
//! phase series, `--metrics-bind` and `--metrics false`, a bounded number of
//! series under random paths (wrk), and `promtool check metrics` on a scrape.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use petsage_tests::lb::{free_port, wrk_report};
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
    let wrk = Command::new("wrk")
        .args(["-t2", "-c32", "-d15s", "-s"])
        .arg(&lua)
        .arg(server.url("/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk runs (apt-get install -y wrk)");
    let report = wrk_report(wrk);
    let requests = report.requests;
    let after = series(&server.get("/metrics").body).len();
    println!("{requests} random paths: {before} series before, {after} after");
    assert!(
        requests >= 100_000,
        "too few requests to prove it: {}",
        report.output
    );
    // The scrape itself adds its own route's series once; nothing per path.
    assert!(
        after <= before + 20,
        "{before} series before, {after} after"
    );
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
