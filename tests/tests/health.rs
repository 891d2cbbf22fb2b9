//! Liveness, readiness and health under failing, hanging, slow and flapping
//! checks, the operators' views (verbose text, exclusions, one check, the
//! IETF format, build information) and the graceful drain, over real HTTP
//! against the test app.
//!
//! Several tests time a reaction or send signals, so every test here runs one
//! at a time (`one_at_a_time`): a 2-core machine running them side by side
//! would measure itself, not the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use petsage_tests::{Method, Server, StatusCode, agent, run_to_exit};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");
const SOON: Duration = Duration::from_secs(5);

/// A server with one critical (`db`) and one non-critical (`cache`) check,
/// run every 20 ms so that a change shows within a few polls.
fn with_checks() -> petsage_tests::ServerBuilder {
    Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical,cache:non-critical")
        .env("PETSAGE_HEALTH_INTERVAL", "20ms")
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

/// How many times test check `name` has run.
fn runs(server: &Server, name: &str) -> u64 {
    let reply = server.get(&format!("/api/v1/test/checks/{name}/runs"));
    reply.json()["runs"].as_u64().expect("a run count")
}

#[test]
fn all_passing_checks_keep_the_seed_contract() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    let health = server.get("/api/v1/health");
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        health.body,
        format!(
            r#"{{"status":"ok","service_name":"PetSage Backend","version":"{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        "a plain GET keeps the seed's body byte for byte"
    );
    assert_eq!(health.header("content-type"), Some("application/json"));
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::OK);
    let body = ready.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["phase"], "serving");
    let checks = body["checks"].as_array().expect("checks");
    // The two test checks, the database check the notes feature brings, and
    // identity's key-set check (its protected routes need keys).
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names.len(), 4, "{body}");
    assert!(names.contains(&"database"), "{body}");
    assert!(names.contains(&"auth-keys"), "{body}");
    for check in checks {
        assert_eq!(check["status"], "ok");
        assert!(check["duration_ms"].as_f64().is_some(), "{check}");
        assert!(check["critical"].is_boolean(), "{check}");
        assert_eq!(check["consecutive_failures"], 0, "{check}");
        let since = check["since"].as_str().expect("since");
        assert!(
            since.len() == 24 && since.ends_with('Z'),
            "RFC 3339: {since}"
        );
    }
}

#[test]
fn failing_critical_check_makes_ready_and_health_503() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    server.fail_check("db");
    let ready = server.get("/api/v1/health/ready");
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
    server.wait_for_status("/api/v1/health/ready", StatusCode::OK, SOON);
    assert_eq!(server.get("/api/v1/health").json()["status"], "ok");
}

#[test]
fn failing_non_critical_check_makes_health_200_degraded() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    server.set_check("cache", "fail");
    let deadline = Instant::now() + SOON;
    while server.get("/api/v1/health").json()["status"] == "ok" {
        assert!(Instant::now() < deadline, "never degraded");
        thread::sleep(Duration::from_millis(10));
    }
    let health = server.get("/api/v1/health");
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "degraded");
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "degraded");
}

#[test]
fn failure_text_is_shown_only_with_details_on_and_each_change_is_logged_once() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().env("PETSAGE_HEALTH_DETAILS", "true").start();
    server.fail_check("db");
    let first = runs(&server, "db");
    // Let the failing check run many more times: still one line for the change.
    while runs(&server, "db") < first + 10 {
        let body = server.get("/api/v1/health/ready").json();
        assert_eq!(check(&body, "db")["error"], "test check db is set to fail");
        assert!(check(&body, "db")["consecutive_failures"].as_u64() >= Some(1));
        assert!(
            check(&body, "cache").get("error").is_none(),
            "a passing check has no error"
        );
    }
    server.set_check("db", "ok");
    server.wait_for_status("/api/v1/health/ready", StatusCode::OK, SOON);
    server.wait_for_log("health check \"db\" (critical) is now ok, after", SOON);
    let log = server.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("health check \"db\" (critical) is now failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert!(
        failed[0].contains(" s ok: test check db is set to fail"),
        "old state, how long it lasted, and why: {}",
        failed[0]
    );
}

#[test]
fn a_hanging_check_never_holds_a_poll() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks()
        .env("PETSAGE_HEALTH_CHECK_TIMEOUT", "2s")
        .env("PETSAGE_HEALTH_DETAILS", "true")
        .start();
    server.set_check("db", "hang");
    // While a run hangs, every poll still answers from the latest results.
    let hanging_since = Instant::now();
    while hanging_since.elapsed() < Duration::from_millis(1500) {
        for path in ["/api/v1/health/ready", "/api/v1/health"] {
            let started = Instant::now();
            let reply = server.get(path);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(1),
                "{path} took {took:?}: it waited for the check (timeout 2 s)"
            );
            assert_eq!(reply.status, StatusCode::OK, "{path}");
        }
    }
    // The run is cut off at the check timeout, and only then counts as failed.
    server.wait_for_status(
        "/api/v1/health/ready",
        StatusCode::SERVICE_UNAVAILABLE,
        SOON,
    );
    let ready = server.get("/api/v1/health/ready").json();
    assert_eq!(check(&ready, "db")["error"], "timed out after 2000 ms");
}

#[test]
fn polls_never_run_a_check() {
    let _serial = petsage_tests::one_at_a_time();
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical:slow")
        .env("PETSAGE_HEALTH_INTERVAL", "60s")
        .start();
    assert_eq!(runs(&server, "db"), 1, "the first run happens at start");
    let url = Arc::new(server.url("/api/v1/health/ready"));
    let answered = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (url, answered) = (Arc::clone(&url), Arc::clone(&answered));
            thread::spawn(move || {
                let client = agent(Duration::from_secs(10));
                for _ in 0..50 {
                    let res = client.get(url.as_str()).call().expect("answered");
                    assert_eq!(res.status(), StatusCode::OK);
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("poller ends");
    }
    assert_eq!(answered.load(Ordering::SeqCst), 400);
    assert_eq!(runs(&server, "db"), 1, "400 polls ran no check");
}

#[test]
fn a_flapping_check_under_a_failure_threshold_of_3_never_fails_readiness() {
    let _serial = petsage_tests::one_at_a_time();
    let flapping = |threshold: &str| {
        Server::builder(APP)
            .env("PETSAGE_TEST_CHECKS", "flaky:critical:flap")
            .env("PETSAGE_HEALTH_INTERVAL", "10ms")
            .env("PETSAGE_HEALTH_FAILURE_THRESHOLD", threshold)
            .start()
    };
    let server = flapping("3");
    let mut polls = 0;
    while runs(&server, "flaky") < 60 {
        let ready = server.get("/api/v1/health/ready");
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
        assert!(check(&ready.json(), "flaky")["consecutive_failures"].as_u64() <= Some(1));
        polls += 1;
    }
    println!(
        "flapping check: {} runs, {polls} polls, all 200",
        runs(&server, "flaky")
    );
    let log = server.finish();
    assert!(!log.contains("is now failed"), "no change of state: {log}");
    // The same flapping with a threshold of 1 does fail readiness: the threshold is what holds it.
    let server = flapping("1");
    server.wait_for_status(
        "/api/v1/health/ready",
        StatusCode::SERVICE_UNAVAILABLE,
        SOON,
    );
}

#[test]
fn operators_views_verbose_exclude_one_check_and_ietf() {
    let _serial = petsage_tests::one_at_a_time();
    let server = with_checks().start();
    server.fail_check("db");

    let verbose = server.get("/api/v1/health/ready?verbose");
    assert_eq!(verbose.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        verbose.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        verbose.body.contains("[-]db failed: reason withheld\n"),
        "{}",
        verbose.body
    );
    assert!(
        verbose.body.contains("[+]database ok\n"),
        "{}",
        verbose.body
    );
    assert!(
        verbose.body.ends_with("ready check failed\n"),
        "{}",
        verbose.body
    );
    let text = server.get_accepting("/api/v1/health", "text/plain");
    assert!(
        text.body.ends_with("health check failed\n"),
        "{}",
        text.body
    );

    let excluded = server.get("/api/v1/health/ready?verbose&exclude=db&exclude=nope");
    assert_eq!(excluded.status, StatusCode::OK, "{}", excluded.body);
    assert!(
        excluded.body.contains("[+]db excluded: ok\n"),
        "{}",
        excluded.body
    );
    assert!(
        excluded
            .body
            .contains("warn: some health checks cannot be excluded: no matches for \"nope\"\n"),
        "{}",
        excluded.body
    );
    assert!(excluded.body.ends_with("ready check passed\n"));
    let unknown = server.get("/api/v1/health?exclude=nope");
    assert_eq!(
        unknown.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "an unknown name changes nothing"
    );

    assert_eq!(
        server.get("/api/v1/health/ready/db").status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let database = server.get("/api/v1/health/ready/database");
    assert_eq!(database.status, StatusCode::OK);
    assert_eq!(database.json()["name"], "database");
    let unknown = server.get("/api/v1/health/ready/nope");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.header("content-type"),
        Some("application/problem+json")
    );

    let ietf = server.get_accepting("/api/v1/health/ready", "application/health+json");
    assert_eq!(ietf.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ietf.header("content-type"), Some("application/health+json"));
    let body = ietf.json();
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["db:responseTime"][0]["status"], "fail");
    assert_eq!(
        body["checks"]["database:responseTime"][0]["componentType"],
        "datastore"
    );
    assert_eq!(
        body["checks"]["database:responseTime"][0]["observedUnit"],
        "ms"
    );

    let info = server.get("/api/v1/info").json();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        info["features"],
        serde_json::json!(["health", "notes", "test-faults"])
    );
    assert!(info["uptime_s"].is_u64(), "{info}");
}

#[test]
fn sigterm_drains_ready_503_health_and_live_200_and_in_flight_requests_finish() {
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
    let health = server.get("/api/v1/health");
    assert_eq!(
        health.status,
        StatusCode::OK,
        "a drain is not an outage: uptime checkers see 200"
    );
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.header("connection"), Some("close"));
    let live = server.get("/api/v1/health/live");
    assert_eq!(
        live.status,
        StatusCode::OK,
        "liveness stays 200 while draining"
    );
    assert_eq!(live.header("connection"), Some("close"));

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
        "/api/v1/health/ready/db",
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
