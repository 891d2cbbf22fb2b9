//! Hostile input over raw TCP: every case gets a 4xx or a closed connection
//! within the client timeout, never a 5xx, and the service still answers its
//! health check after each one. Nothing panics.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use petsage_tests::{Server, StatusCode};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");
/// The server's client request timeout in these tests.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a case may take to be answered or closed.
const CASE_LIMIT: Duration = Duration::from_secs(4);

/// What a case must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A 4xx, or the connection closed without an answer.
    Reject,
    /// Exactly this status: the input is odd but legal.
    Status(u16),
    /// `n` answers of 200, in order, on one connection.
    Pipelined(usize),
    /// A 4xx whose body does not leak a system file.
    NoFileLeak,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        expect,
    }
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n").into_bytes()
}

fn with_headers(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n{headers}\r\n{body}"
    )
    .into_bytes()
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let mut cases = vec![
        // Request lines.
        case("binary garbage", &b"\x00\x01\x02\x03\xff\xfe\r\n\r\n"[..], Reject),
        case("method only", "GET\r\n\r\n", Reject),
        case("HTTP/0.9 request", "GET /api/v1/health\r\n\r\n", Reject),
        case("HTTP/9.9", "GET /api/v1/health HTTP/9.9\r\nHost: petsage\r\n\r\n", Reject),
        case("HTTP/1.2", "GET /api/v1/health HTTP/1.2\r\nHost: petsage\r\n\r\n", Reject),
        case("extra token in request line", "GET /api/v1/health HTTP/1.1 extra\r\nHost: petsage\r\n\r\n", Reject),
        case("lowercase method", "get /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n", Status(405)),
        case("unknown method", "BREW /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n", Status(405)),
        case("CONNECT", "CONNECT petsage:443 HTTP/1.1\r\nHost: petsage:443\r\n\r\n", Reject),
        case("TRACE", "TRACE /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n", Status(405)),
        case("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n", Reject),
        case("double space in request line", "GET  /api/v1/health HTTP/1.1\r\nHost: petsage\r\n\r\n", Reject),
        case("target without slash", "GET api/v1/health HTTP/1.1\r\nHost: petsage\r\n\r\n", Reject),
        case("10 KB method", format!("{} / HTTP/1.1\r\nHost: petsage\r\n\r\n", "A".repeat(10_240)), Reject),
        case("100 KB URI", get(&format!("/api/v1/health?{}", "a".repeat(100 * 1024))), Reject),
        // Headers.
        case("100 KB header", format!("GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nX-Big: {}\r\n\r\n", "b".repeat(100 * 1024)), Reject),
        case(
            "300 headers",
            format!(
                "GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\n{}\r\n",
                (0..300).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            ),
            Reject,
        ),
        case("header without colon", "GET /api/v1/health HTTP/1.1\r\nHost petsage\r\n\r\n", Reject),
        case("space in header name", "GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nBad Header: x\r\n\r\n", Reject),
        case("NUL in header value", &b"GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nX-A: a\x00b\r\n\r\n"[..], Reject),
        case("obsolete line folding", "GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nX-A: a\r\n folded\r\n\r\n", Reject),
        case("bare LF line endings and junk", "GET /api/v1/health HTTP/1.1\nHost: petsage\n\x7f\x7f\n\n", Reject),
        // Paths.
        case("NUL in path", &b"GET /api/v1/he\x00alth HTTP/1.1\r\nHost: petsage\r\n\r\n"[..], Reject),
        case("invalid UTF-8 in path", &b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n"[..], Reject),
        case("bad percent escape", get("/api/v1/health%ZZ"), Status(404)),
        case("percent-encoded NUL", get("/api/v1/health%00"), Status(404)),
        case("percent-encoded invalid UTF-8", get("/api/v1/%ff%fe"), Status(404)),
        case("traversal against /docs/", get("/docs/../../../../etc/passwd"), NoFileLeak),
        case("encoded traversal against /docs/", get("/docs/%2e%2e/%2e%2e/%2e%2e/etc/passwd"), NoFileLeak),
        case("encoded slash traversal", get("/docs/..%2f..%2f..%2fetc%2fpasswd"), NoFileLeak),
        case("double-dot-slash traversal", get("/docs/....//....//....//etc/passwd"), NoFileLeak),
        case("backslash traversal", get("/docs/..\\..\\..\\etc\\passwd"), NoFileLeak),
        // Bodies and framing.
        case("conflicting Content-Length", with_headers("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), Reject),
        case("huge Content-Length", with_headers("Content-Length: 99999999999999999999999\r\n", ""), Reject),
        case("negative Content-Length", with_headers("Content-Length: -1\r\n", ""), Reject),
        case("Content-Length with Transfer-Encoding", with_headers("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), Reject),
        case("chunked with a bad size", with_headers("Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n"), Reject),
        case("chunked with a huge size", with_headers("Transfer-Encoding: chunked\r\n", "ffffffffffffffffff\r\nx\r\n"), Reject),
        case("chunked cut short", with_headers("Transfer-Encoding: chunked\r\n", "5\r\nhe"), Reject),
        case("unknown Transfer-Encoding", with_headers("Transfer-Encoding: rot13\r\n", ""), Reject),
        case("doubled Transfer-Encoding", with_headers("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", "0\r\n\r\n"), Reject),
        case("oversized JSON body", {
            let body = format!("\"{}\"", "x".repeat(1024 * 1024));
            format!("PUT /api/v1/test/checks/db HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        }, Status(413)),
        // Other protocols on the plain port.
        case("TLS ClientHello", &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x00\x00\x20\xc0\x2b\xc0\x2f"[..], Reject),
        case("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", Reject),
        case("1 MB of NUL bytes", vec![0u8; 1024 * 1024], Reject),
        // Odd but legal: answered normally.
        case("GET with a body", "GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", Status(200)),
        case("Expect: 100-continue", "GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n", Status(200)),
        case("absolute-form target", "GET http://petsage/api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n", Status(200)),
        // What reaches the log: request IDs, quotes and bytes that are not UTF-8.
        case("request id with a control byte", &b"GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nX-Request-Id: a\x01b\r\n\r\n"[..], Reject),
        case("request id with quotes and a space", "GET /api/v1/nope HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nX-Request-Id: \"x\" y\r\n\r\n", Status(404)),
        case("request id of 129 characters", format!("GET /api/v1/nope HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nX-Request-Id: {}\r\n\r\n", "r".repeat(129)), Status(404)),
        case("request id not UTF-8", &b"GET /api/v1/nope HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nX-Request-Id: \xff\xfe\r\n\r\n"[..], Status(404)),
        case("quote and backslash in the path", "GET /api/v1/a\"b\\c HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n", Reject),
        case("path not UTF-8", &b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\n\r\n"[..], Reject),
        case("escaped newline in the path", get("/api/v1/a%0d%0aINFO%20forged"), Reject),
    ];
    let mut pipelined = Vec::new();
    for _ in 0..499 {
        pipelined.extend_from_slice(b"GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\n\r\n");
    }
    pipelined.extend_from_slice(&get("/api/v1/health"));
    cases.push(case("500 pipelined requests", pipelined, Pipelined(500)));
    cases
}

/// Sends `bytes` and reads until the server closes or the limit passes.
fn exchange(server: &Server, bytes: &[u8]) -> (Vec<u8>, Duration, bool) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr()).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    // The server may answer and close before it has read everything: that is fine.
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    let mut buf = [0u8; 65536];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            // An answer followed by 200 ms of quiet is complete (the
            // connection may stay open for keep-alive).
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if !reply.is_empty() || started.elapsed() > CASE_LIMIT {
                    break false;
                }
            }
            Err(_) => break true, // reset counts as closed
        }
    };
    (reply, started.elapsed(), closed)
}

/// Every status line in a reply, in order.
fn statuses(reply: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(reply);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

fn assert_healthy(server: &Server, after: &str) {
    let reply = server.get("/api/v1/health");
    assert_eq!(reply.status, StatusCode::OK, "health after {after:?}");
    assert_eq!(reply.json()["status"], "ok", "health after {after:?}");
}

#[test]
fn hostile_requests_get_a_4xx_or_a_close_and_never_hurt_the_service() {
    let server = Server::builder(APP)
        .env("PETSAGE_CLIENT_REQUEST_TIMEOUT", "2s")
        .env("PETSAGE_TEST_CHECKS", "db:critical")
        .env("PETSAGE_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .start();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut passed = 0;
    for case in &cases {
        let (reply, took, closed) = exchange(&server, &case.bytes);
        let statuses = statuses(&reply);
        assert!(
            statuses.iter().all(|s| *s < 500),
            "{}: got a 5xx: {statuses:?}",
            case.name
        );
        match case.expect {
            Expect::Reject => match statuses.first().copied() {
                Some(first) => assert!(
                    (400..500).contains(&first),
                    "{}: expected a 4xx, got {first}",
                    case.name
                ),
                None => assert!(
                    closed,
                    "{}: neither answered nor closed within {CASE_LIMIT:?}",
                    case.name
                ),
            },
            // Interim 1xx answers (100 Continue) come before the final one.
            Expect::Status(code) => {
                let last = statuses.iter().copied().find(|s| *s >= 200);
                assert_eq!(last, Some(code), "{}: {statuses:?}", case.name);
            }
            Expect::Pipelined(n) => {
                assert_eq!(statuses.len(), n, "{}", case.name);
                assert!(statuses.iter().all(|s| *s == 200), "{}", case.name);
            }
            Expect::NoFileLeak => {
                let first = statuses.first().copied();
                assert!(
                    first.is_some_and(|s| (400..500).contains(&s)),
                    "{}: {first:?}",
                    case.name
                );
                assert!(
                    !String::from_utf8_lossy(&reply).contains("root:"),
                    "{}: leaked a file",
                    case.name
                );
            }
        }
        assert!(took <= CASE_LIMIT, "{}: took {took:?}", case.name);
        assert_healthy(&server, case.name);
        passed += 1;
    }
    println!("hostile input: {passed} of {} cases passed", cases.len());
    let log = server.finish();
    assert!(!log.contains("panicked"), "{log}");

    // The JSON log of all of it: every line one valid object, and no client
    // request ID that is not safe to echo.
    let lines: Vec<&str> = log.lines().collect();
    let bad: Vec<&&str> = lines
        .iter()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .map_or(true, |v| !v["ts"].is_string() || !v["msg"].is_string())
        })
        .collect();
    println!(
        "JSON log of the hostile suite: {} lines, {} bad",
        lines.len(),
        bad.len()
    );
    assert!(lines.len() > cases.len(), "too few lines to prove anything");
    assert_eq!(bad, Vec::<&&str>::new());
    let access: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["target"] == "petsage::access")
        .collect();
    assert!(!access.is_empty());
    for line in &access {
        let id = line["request_id"]
            .as_str()
            .expect("every access line has an ID");
        assert!(
            id.len() <= 128 && !id.contains('"') && !id.contains(' '),
            "{line}"
        );
        assert!(
            line["status"].is_u64() && line["duration_ms"].is_f64(),
            "{line}"
        );
    }
}

/// The `x-request-id` of a raw reply.
fn request_id_of(reply: &[u8]) -> Option<String> {
    String::from_utf8_lossy(reply)
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: ").map(str::to_owned))
}

#[test]
fn request_ids_are_echoed_only_when_safe() {
    let server = Server::builder(APP).start();
    let with_id = |id: &[u8]| {
        let mut bytes =
            b"GET /api/v1/nope HTTP/1.1\r\nHost: petsage\r\nConnection: close\r\nX-Request-Id: "
                .to_vec();
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(b"\r\n\r\n");
        let (reply, _, _) = exchange(&server, &bytes);
        reply
    };
    let reply = with_id(b"checkout-42:a.b_c");
    assert_eq!(request_id_of(&reply).as_deref(), Some("checkout-42:a.b_c"));
    let body = String::from_utf8_lossy(&reply);
    assert!(
        body.contains(r#""request_id":"checkout-42:a.b_c""#),
        "{body}"
    );
    server.wait_for_log("checkout-42:a.b_c", Duration::from_secs(5));

    // (A control byte never gets this far: actix's parser answers it 400.)
    let long = "r".repeat(129);
    for hostile in [&b"\"x\" y"[..], long.as_bytes(), b"\xff\xfe", b"tab\there"] {
        let reply = with_id(hostile);
        let id = request_id_of(&reply).expect("a new ID");
        assert_eq!(id.len(), 36, "a generated UUID, not {hostile:?}: {id}");
        assert!(String::from_utf8_lossy(&reply).contains(&format!(r#""request_id":"{id}""#)));
    }
    let log = server.log();
    assert!(!log.contains(&long) && !log.contains("\"x\" y"), "{log}");
}

#[test]
fn slowloris_is_cut_off_at_the_client_timeout() {
    let server = Server::builder(APP)
        .env("PETSAGE_CLIENT_REQUEST_TIMEOUT", "2s")
        .start();
    let mut stream = TcpStream::connect(server.addr()).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let started = Instant::now();
    stream
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: petsage\r\n")
        .expect("head starts");
    // Dribble one header byte at a time and never finish the head (bounded to 8 s).
    let mut reply = Vec::new();
    let closed_at = loop {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the slow client was never cut off"
        );
        if stream.write_all(b"X").is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break started.elapsed(),
        }
        thread::sleep(Duration::from_millis(200));
    };
    let _ = stream.shutdown(Shutdown::Both);
    assert!(
        closed_at >= CLIENT_TIMEOUT - Duration::from_millis(300),
        "closed too early: {closed_at:?}"
    );
    assert!(
        closed_at <= CLIENT_TIMEOUT + Duration::from_secs(2),
        "closed too late: {closed_at:?}"
    );
    let statuses = statuses(&reply);
    assert!(statuses.iter().all(|s| *s == 408), "{statuses:?}");
    assert_healthy(&server, "slowloris");
}
