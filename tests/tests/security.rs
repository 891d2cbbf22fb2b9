//! Security headers and exposure, a panicking handler, a closed stderr and
//! request body limits, over real HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use petsage_tests::{KillOnDrop, Method, Server, StatusCode, agent};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

#[test]
fn no_server_header_and_nosniff_on_every_kind_of_response() {
    let server = Server::builder(APP).start();
    let big = format!("/api/v1/health?{}", "q".repeat(64));
    for (method, path) in [
        (Method::GET, "/api/v1/health"),
        (Method::HEAD, "/api/v1/health/ready"),
        (Method::GET, "/nope"),
        (Method::DELETE, "/api/v1/health"),
        (Method::GET, "/"),
        (Method::GET, "/docs/"),
        (Method::GET, "/api-docs/openapi.json"),
        (Method::GET, "/api/v1/test/panic"),
        (Method::GET, big.as_str()),
    ] {
        let reply = server.request(method.clone(), path);
        assert_eq!(
            reply.header("server"),
            None,
            "{method} {path} announces a server"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
    }
}

#[test]
fn a_panicking_handler_costs_one_500_and_nothing_else() {
    let server = Server::builder(APP).start();
    for _ in 0..20 {
        let reply = server.get("/api/v1/test/panic");
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert!(
            !reply.body.contains("on purpose"),
            "panic text leaked: {}",
            reply.body
        );
        assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
    }
    assert_eq!(server.get("/api/v1/health/ready").status, StatusCode::OK);
    server.wait_for_log("a handler panicked; answered 500", Duration::from_secs(5));
}

#[test]
fn request_bodies_are_size_limited() {
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .env("PETSAGE_MAX_BODY_BYTES", "1024")
        .start();
    let small = serde_json::json!("fail");
    assert_eq!(
        server.put_json("/api/v1/test/checks/db", &small).status,
        StatusCode::NO_CONTENT
    );
    let large = serde_json::json!("x".repeat(4096));
    let reply = server.put_json("/api/v1/test/checks/db", &large);
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

#[test]
fn oversized_headers_get_431() {
    let server = Server::builder(APP)
        .env("PETSAGE_MAX_HEADER_BYTES", "2048")
        .start();
    let client = agent(Duration::from_secs(5));
    let mut res = client
        .get(server.url("/api/v1/health"))
        .header("x-padding", "p".repeat(4096))
        .call()
        .expect("answered");
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body = res.body_mut().read_to_string().expect("body");
    assert!(body.contains("\"status\":431"), "{body}");
    assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
}

#[test]
fn health_bodies_carry_no_error_internals_by_default() {
    let server = Server::with_failing_critical_check(APP);
    for path in [
        "/api/v1/health",
        "/api/v1/health/ready",
        "/api/v1/health/ready/db",
        "/api/v1/health/live",
        "/api/v1/health/ready?verbose",
    ] {
        let reply = server.get(path);
        assert!(
            !reply.body.contains("set to fail"),
            "{path}: {}",
            reply.body
        );
        assert!(!reply.body.contains("error"), "{path}: {}", reply.body);
    }
}

#[test]
fn a_closed_stderr_does_not_stop_the_service() {
    let port = petsage_tests::free_port();
    let data = petsage_tests::Scratch::new("stderr");
    let mut child = KillOnDrop(
        Command::new(APP)
            .env("PETSAGE_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "debug")
            .env("PETSAGE_DATA_DIR", data.path())
            .env("PETSAGE_AUTH_MODE", "dev")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts"),
    );
    let child = &mut child.0;
    // Read until the server is ready, then close our end: every later log write fails.
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let up = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(petsage_tests::READY_LINE));
    assert!(up, "server never logged its address");
    drop(lines);

    let client = agent(Duration::from_secs(5));
    let url = format!("http://127.0.0.1:{port}");
    for path in [
        "/nope",
        "/api/v1/health",
        "/api/v1/test/panic",
        "/api/v1/health/ready",
    ] {
        // Logged requests, a panic (the panic hook writes to stderr too) and health polls.
        let _ = client.get(format!("{url}{path}")).call();
    }
    for _ in 0..50 {
        let status = client
            .get(format!("{url}/api/v1/health"))
            .call()
            .map(|r| r.status());
        assert_eq!(
            status.ok(),
            Some(StatusCode::OK),
            "the service stopped answering"
        );
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the process exited"
    );
}
