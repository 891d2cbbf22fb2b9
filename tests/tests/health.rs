//! Liveness, readiness and health under failing, hanging and slow checks,
//! and the graceful drain, over real HTTP against the test app.
//!
//! Several tests time a reaction or send signals, so every test here runs one
//! at a time (`one_at_a_time`): a 2-core machine running them side by side
//! would measure itself, not the service.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use petsage_tests::{Method, Server, StatusCode, agent, run_to_exit};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

/// A server with one critical (`db`) and one non-critical (`cache`) check, re-run on every poll.
fn with_checks() -> petsage_tests::ServerBuilder {
    Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical,cache:non-critical")
        .env("PETSAGE_HEALTH_CACHE_TTL", "0s")
}

/// The readiness body's entry for check `name`.
fn check(body: &serde_json::Value, name: &str) -> serde_json::Value {
    let checks = body["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {body}"));
    let found = checks.iter().find(|c| c["name"] == name);
    found
        .cloned()
        .unwrap_or_else(|| panic!("no check {name} in {body}"))
}

#[test]
fn all_passing_checks_keep_the_seed_contract() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    let health = server.get("/api/v1/health");
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::OK);
    let body = ready.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["phase"], "serving");
    let checks = body["checks"].as_array().expect("checks");
    // The two test checks, and the database check the notes feature brings.
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names.len(), 3, "{body}");
    assert!(names.contains(&"database"), "{body}");
    for check in checks {
        assert_eq!(check["status"], "ok");
        assert!(check["duration_ms"].as_f64().is_some(), "{check}");
        assert!(check["critical"].is_boolean(), "{check}");
    }
}

#[test]
fn failing_critical_check_makes_ready_and_health_503() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    server.set_check("db", "fail");
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.json();
    assert_eq!(body["status"], "unavailable");
    let db = check(&body, "db");
    assert_eq!(db["status"], "failed");
    assert_eq!(db["critical"], true);
    assert!(
        db.get("error").is_none(),
        "error internals stay out of the body by default: {db}"
    );

    let health = server.get("/api/v1/health");
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["status"], "unavailable");
    assert_eq!(
        server.get("/api/v1/health/live").status,
        StatusCode::OK,
        "liveness runs no checks"
    );

    server.set_check("db", "ok");
    assert_eq!(server.get("/api/v1/health/ready").status, StatusCode::OK);
    assert_eq!(server.get("/api/v1/health").json()["status"], "ok");
}

#[test]
fn failing_non_critical_check_makes_health_200_degraded() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    server.set_check("cache", "fail");
    let health = server.get("/api/v1/health");
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "degraded");
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "degraded");
}

#[test]
fn failure_text_is_shown_only_with_details_on_and_logged_once() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().env("PETSAGE_HEALTH_DETAILS", "true").start();
    server.set_check("db", "fail");
    for _ in 0..5 {
        let body = server.get("/api/v1/health/ready").json();
        assert_eq!(check(&body, "db")["error"], "test check db is set to fail");
        assert!(
            check(&body, "cache").get("error").is_none(),
            "a passing check has no error"
        );
    }
    server.set_check("db", "ok");
    assert_eq!(server.get("/api/v1/health/ready").status, StatusCode::OK);
    server.wait_for_log("health check \"db\" recovered", Duration::from_secs(5));
    let log = server.log();
    assert_eq!(
        log.matches("critical health check \"db\" failed: test check db is set to fail")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn hanging_check_is_cut_off_at_the_timeout() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks()
        .env("PETSAGE_HEALTH_CHECK_TIMEOUT", "300ms")
        .env("PETSAGE_HEALTH_DETAILS", "true")
        .start();
    server.set_check("db", "hang");
    for path in ["/api/v1/health/ready", "/api/v1/health"] {
        let started = Instant::now();
        let reply = server.get(path);
        let took = started.elapsed();
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            took < Duration::from_millis(400),
            "{path} took {took:?}, limit is timeout + 100 ms"
        );
        assert!(
            took >= Duration::from_millis(300),
            "{path} took {took:?}: the check was not waited for"
        );
    }
    let ready = server.get("/api/v1/health/ready").json();
    assert_eq!(check(&ready, "db")["error"], "timed out after 300 ms");
}

#[test]
fn concurrent_readiness_requests_share_one_run() {
    let _serial = petsage_tests::one_at_a_time();
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .env("PETSAGE_HEALTH_CACHE_TTL", "60s")
        .start();
    // A slow check keeps the run in flight while every request arrives.
    server.set_check("db", "slow");
    let url = server.url("/api/v1/health/ready");
    let barrier = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                let client = agent(Duration::from_secs(10));
                barrier.wait();
                client.get(&url).call().map(|res| res.status())
            })
        })
        .collect();
    for thread in threads {
        let status = thread
            .join()
            .expect("thread ends")
            .expect("request answered");
        assert_eq!(status, StatusCode::OK);
    }
    let runs = server.get("/api/v1/test/checks/db/runs").json();
    assert_eq!(runs["runs"], 1, "50 concurrent requests must share one run");
}

#[test]
fn sigterm_drains_ready_503_live_200_and_in_flight_requests_finish() {
    let _serial = petsage_tests::one_at_a_time();
    let mut server = Server::builder(APP)
        .env("PETSAGE_SHUTDOWN_DELAY", "1500ms")
        .start();
    let slow_url = server.url("/api/v1/test/slow/2500");
    let slow = thread::spawn(move || {
        let mut res = agent(Duration::from_secs(10))
            .get(&slow_url)
            .call()
            .expect("slow request answered");
        (res.status(), res.body_mut().read_to_string().expect("body"))
    });
    server.wait_for_log("slow request started", Duration::from_secs(5));

    server.signal("TERM");
    server.wait_for_log("SIGTERM received: draining", Duration::from_secs(5));
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["phase"], "draining");
    assert_eq!(
        ready.header("connection"),
        Some("close"),
        "clients must stop reusing connections"
    );
    assert_eq!(
        server.get("/api/v1/health").status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let live = server.get("/api/v1/health/live");
    assert_eq!(
        live.status,
        StatusCode::OK,
        "liveness stays 200 while draining"
    );

    let (status, body) = slow.join().expect("slow thread ends");
    assert_eq!(status, StatusCode::OK, "the in-flight request completes");
    assert_eq!(body, "\"waited 2500 ms\"");
    let exit = server
        .wait_exit(Duration::from_secs(10))
        .expect("process exits by itself");
    assert!(exit.success(), "exit status {exit:?}\n{}", server.log());
    // The process has exited, but its last lines may still be in the pipe.
    for step in [
        "shutdown delay over: no longer accepting",
        "stopped: no request left in flight; exiting",
    ] {
        server.wait_for_log(step, Duration::from_secs(5));
    }
}

#[test]
fn second_signal_stops_at_once() {
    let _serial = petsage_tests::one_at_a_time();
    let mut server = Server::builder(APP)
        .env("PETSAGE_SHUTDOWN_DELAY", "60s")
        .start();
    server.signal("TERM");
    server.wait_for_log("SIGTERM received: draining", Duration::from_secs(5));
    let started = Instant::now();
    server.signal("INT");
    let exit = server
        .wait_exit(Duration::from_secs(10))
        .expect("process exits");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        exit.code().is_some(),
        "exited by itself, not killed: {exit:?}"
    );
    server.wait_for_log(
        "second signal (SIGINT): stopping now",
        Duration::from_secs(5),
    );
}

#[test]
fn head_answers_on_every_health_endpoint() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    for path in [
        "/api/v1/health",
        "/api/v1/health/ready",
        "/api/v1/health/live",
    ] {
        let reply = server.request(Method::HEAD, path);
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        let reply = server.request(Method::POST, path);
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}

#[test]
fn probe_exits_0_when_ready_and_1_when_draining_or_closed() {
    let _serial = petsage_tests::one_at_a_time();
    let mut server = Server::builder(APP)
        .env("PETSAGE_SHUTDOWN_DELAY", "30s")
        .start();
    let bind = server.addr().to_string();
    let (code, stdout, _) = run_to_exit(APP, &["probe"], &[("PETSAGE_BIND", &bind)]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with("ready: 200"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);

    let wildcard = format!("0.0.0.0:{}", server.addr().port());
    let (code, _, _) = run_to_exit(APP, &["probe"], &[("PETSAGE_BIND", &wildcard)]);
    assert_eq!(code, Some(0), "0.0.0.0 is read as 127.0.0.1");

    server.signal("TERM");
    server.wait_for_log("SIGTERM received: draining", Duration::from_secs(5));
    let url = server.url("/api/v1/health/ready");
    let (code, stdout, _) = run_to_exit(APP, &["probe", "--url", &url], &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("not ready: 503"), "{stdout}");

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(10)).expect("exits");
    let (code, stdout, _) = run_to_exit(
        APP,
        &["probe", "--timeout", "1s"],
        &[("PETSAGE_BIND", &bind)],
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("not ready:"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
}
