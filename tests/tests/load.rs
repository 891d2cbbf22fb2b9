//! Load held: many concurrent connections get no error, and idle keep-alive
//! connections do not starve a new client. Checked for errors and latency of
//! one request, never for throughput. Needs wrk; run by `cargo xtask ci`, and
//! longer by `cargo xtask soak` (which sets `PETSAGE_SOAK_SECS`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use petsage_tests::wrk::{spawn_wrk, wrk_report};
use petsage_tests::{Server, StatusCode, agent};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

#[test]
#[ignore = "needs wrk: run by cargo xtask ci"]
fn two_hundred_fifty_six_connections_get_no_error() {
    let _serial = petsage_tests::one_at_a_time();
    let server = Server::builder(APP)
        .env("RUST_LOG", "info,petsage::access=warn")
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .start();
    let seconds = petsage_tests::load_seconds();
    let report = wrk_report(spawn_wrk(&server.url("/api/v1/health"), 256, seconds));
    println!("{}", report.output);
    assert!(report.requests > 1000, "{}", report.output);
    assert_eq!(report.non_2xx, 0, "{}", report.output);
    assert_eq!(report.socket_errors, 0, "{}", report.output);
    assert_eq!(server.get("/api/v1/health/ready").status, StatusCode::OK);
    let log = server.finish();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
#[ignore = "holds 1,000 sockets: run by cargo xtask ci"]
fn a_new_client_is_answered_fast_while_a_thousand_idle_connections_are_held() {
    let _serial = petsage_tests::one_at_a_time();
    let server = Server::builder(APP)
        .env("PETSAGE_KEEP_ALIVE", "60s")
        .start();
    // Each connection makes one request, reads its answer, then sits idle.
    let mut idle = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut stream =
            TcpStream::connect(server.addr()).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
            .write_all(b"GET /api/v1/health/live HTTP/1.1\r\nHost: petsage\r\n\r\n")
            .expect("request");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "connection {i}");
        idle.push(stream);
    }

    let client = agent(Duration::from_secs(5));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let status = client
            .get(&server.url("/api/v1/health"))
            .call()
            .map(|r| r.status());
        let took = started.elapsed();
        assert_eq!(status.ok(), Some(StatusCode::OK));
        slowest = slowest.max(took);
    }
    println!("slowest of 20 new clients beside 1,000 idle connections: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(100),
        "a new client waited {slowest:?}"
    );

    // The idle connections are still served.
    for stream in idle.iter_mut().step_by(100) {
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\n\r\n")
            .expect("reuse");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).expect("answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
}
