//! Harness for PetSage's black-box tests: start a server process on
//! `127.0.0.1:0`, learn its port from its log, talk HTTP to it, and end it by
//! its PID.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use ureq::http::{Method, StatusCode};

pub mod chores;
pub mod faults;
pub mod lb;
pub mod load;
pub mod oidc;
pub mod pg;
pub mod public_notes;
pub mod whoami;
pub mod wrk;

/// The scopes that let a caller read and write the `notes` feature's rows.
pub const NOTES_SCOPES: &[&str] = &["notes:read", "notes:write"];

/// The features the test app serves: PetSage's own; the generated `notes`
/// feature (a database-backed resource, rendered from the generator's
/// templates) unless `PETSAGE_TEST_NOTES=off`; and the test-only faults
/// unless `PETSAGE_TEST_FAULTS=off`; and, with `PETSAGE_TEST_WHOAMI=on`, one
/// more protected route; with `PETSAGE_TEST_PUBLIC_NOTES=on`, the notes GET
/// on a public route (for the bench); with `PETSAGE_TEST_CHORES=on`, a
/// feature with background jobs and a schedule. Notes and whoami need identity settings: the
/// harness starts servers in dev mode unless a test says otherwise. With
/// notes and faults off it serves exactly what `petsage-app` does.
pub fn features() -> petsage_app::Features {
    let mut features = petsage_app::features();
    if std::env::var("PETSAGE_TEST_NOTES").as_deref() != Ok("off") {
        features.push(petsage_core::register::<petsage_notes::Notes>());
    }
    if std::env::var("PETSAGE_TEST_FAULTS").as_deref() != Ok("off") {
        features.push(petsage_core::register::<faults::Faults>());
    }
    if std::env::var("PETSAGE_TEST_WHOAMI").as_deref() == Ok("on") {
        features.push(petsage_core::register::<whoami::Whoami>());
    }
    if std::env::var("PETSAGE_TEST_PUBLIC_NOTES").as_deref() == Ok("on") {
        features.push(petsage_core::register::<public_notes::PublicNotes>());
    }
    if std::env::var("PETSAGE_TEST_CHORES").as_deref() == Ok("on") {
        features.push(petsage_core::register::<chores::Chores>());
    }
    features
}

/// Serializes the tests of one test binary that load the machine or time a
/// reaction, so that on a 2-core machine neither skews the other.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Seconds of load for the load scenarios: 20, or `PETSAGE_SOAK_SECS` under `cargo xtask soak`.
pub fn load_seconds() -> u32 {
    std::env::var("PETSAGE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// How long a server may take to log its address before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server process, killed by its PID when dropped.
pub struct Server {
    child: KillOnDrop,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// The thread reading stderr; it ends when the process closes stderr.
    reader: Option<thread::JoinHandle<()>>,
    agent: ureq::Agent,
    /// The `Authorization` header every request carries, once a test acts as a caller.
    bearer: Mutex<Option<String>>,
    /// Where the server keeps its data: in dev mode, its signing key.
    data_dir: Option<std::path::PathBuf>,
    _scratch: Option<Scratch>,
}

/// A response as the tests see it: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: ureq::http::HeaderMap,
    /// Body, read to the end (bytes that are not UTF-8, such as a
    /// compressed body's, become U+FFFD).
    pub body: String,
    /// The body's size in bytes, as received.
    pub size: usize,
}

impl Reply {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.body))
    }
}

/// Builds and starts a [`Server`] from a binary path.
pub struct ServerBuilder {
    command: Command,
    /// The data folder made for this server alone, removed when it ends.
    scratch: Option<Scratch>,
    /// The data folder the server is given.
    data_dir: Option<std::path::PathBuf>,
    wait_ready: bool,
}

/// What the app logs once every start step is done and readiness turns 200.
pub const READY_LINE: &str = "ready: every start step and the first health-check run are done";

/// A folder of one test's own under the system's temporary folder, removed when dropped.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    /// A new, empty folder.
    pub fn new(label: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("petsage-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Self(dir)
    }

    /// The folder.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ServerBuilder {
    /// Sets an environment variable for the server process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable from the server's environment.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Runs the server in `dir`.
    pub fn current_dir(mut self, dir: &std::path::Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Keeps the server's SQLite database in `dir` (by default a fresh folder of its own).
    pub fn data_dir(mut self, dir: &std::path::Path) -> Self {
        self.command.env("PETSAGE_DATA_DIR", dir);
        self.scratch = None;
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Spawns the server and waits until it logs the address it listens on.
    pub fn start(mut self) -> Server {
        let mut child = self
            .command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        // Keep draining stderr for the server's whole life, so it never blocks on a full pipe.
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = listening_addr(&line);
                // Record the line before announcing the address, so a test that
                // starts the moment it has the address finds the line in the log.
                sink.lock().expect("log lock").push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not log its address; log:\n{}",
                    log.lock().expect("log lock").join("\n")
                );
            }
        };
        let server = Server {
            child: KillOnDrop(child),
            addr,
            log,
            reader: Some(reader),
            agent: agent(Duration::from_secs(10)),
            bearer: Mutex::new(None),
            data_dir: self.data_dir,
            _scratch: self.scratch,
        };
        if self.wait_ready {
            server.wait_for_log(READY_LINE, START_TIMEOUT);
        }
        server
    }

    /// Returns as soon as the server listens, before its start steps are done
    /// (by default `start` waits until it logs that it is ready).
    pub fn no_wait_ready(mut self) -> Self {
        self.wait_ready = false;
        self
    }
}

/// The address in a `listening on http://IP:PORT` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on http://").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// An HTTP client that returns every status as a reply, follows no redirect
/// and opens a new connection per request (a pooled one may have been closed
/// by the server's keep-alive or request timeout in between).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

impl Server {
    /// A builder for `binary` listening on `127.0.0.1:0` with `info` logging,
    /// a data folder of its own, and identity in dev mode (its own signing
    /// key in that folder: see [`Server::token`]).
    pub fn builder(binary: &str) -> ServerBuilder {
        let scratch = Scratch::new("data");
        let mut command = Command::new(binary);
        command
            .env("PETSAGE_BIND", "127.0.0.1:0")
            .env("PETSAGE_WORKERS", "2")
            .env("RUST_LOG", "info")
            .env("PETSAGE_DATA_DIR", scratch.path())
            .env("PETSAGE_AUTH_MODE", "dev")
            .env_remove("PETSAGE_DOCS")
            .env_remove("PETSAGE_DATABASE_URL")
            .env_remove("PETSAGE_AUTH_ISSUER")
            .env_remove("PETSAGE_AUTH_JWKS_URL")
            .env_remove("PETSAGE_AUTH_AUDIENCES");
        ServerBuilder {
            data_dir: Some(scratch.path().to_owned()),
            command,
            scratch: Some(scratch),
            wait_ready: true,
        }
    }

    /// A dev-mode access token for `subject` with `scopes`, signed with this
    /// server's own key, as `petsage-app dev-token` makes it.
    pub fn token(&self, subject: &str, scopes: &[&str]) -> String {
        let dir = self.data_dir.as_deref().expect("the server's data folder");
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        petsage_identity::dev::DevIssuer::load_or_create(dir)
            .and_then(|issuer| {
                issuer.token(
                    subject,
                    &scopes,
                    petsage_identity::dev::DEV_AUDIENCE,
                    Duration::from_secs(3600),
                )
            })
            .unwrap_or_else(|err| panic!("dev token: {err}"))
    }

    /// From now on every request carries a token for `subject` with `scopes`.
    pub fn act_as(&self, subject: &str, scopes: &[&str]) -> &Self {
        let bearer = format!("Bearer {}", self.token(subject, scopes));
        *self.bearer.lock().expect("bearer lock") = Some(bearer);
        self
    }

    /// The `Authorization` header the requests carry, if a test acts as a caller.
    pub fn authorization(&self) -> Option<String> {
        self.bearer.lock().expect("bearer lock").clone()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// `http://IP:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends `method path` with an empty body and reads the whole reply.
    pub fn request(&self, method: Method, path: &str) -> Reply {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .body(())
            .expect("valid request");
        self.exchange(request)
    }

    /// Sends `request` and reads the whole reply (no body for HEAD).
    pub fn exchange<B: ureq::AsSendBody>(&self, mut request: ureq::http::Request<B>) -> Reply {
        if let Some(bearer) = self.authorization() {
            let headers = request.headers_mut();
            if !headers.contains_key("authorization") {
                headers.insert("authorization", bearer.parse().expect("a header value"));
            }
        }
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let mut res = self
            .agent
            .run(request)
            .unwrap_or_else(|err| panic!("{method} {uri}: {err}"));
        let body = if method == Method::HEAD {
            Vec::new()
        } else {
            res.body_mut().read_to_vec().expect("body reads")
        };
        Reply {
            status: res.status(),
            headers: res.headers().clone(),
            size: body.len(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path)
    }

    /// `GET path` with `Accept: accept`.
    pub fn get_accepting(&self, path: &str, accept: &str) -> Reply {
        self.get_with(path, &[("accept", accept)])
    }

    /// `GET path` with the request headers `headers`.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let request = headers
            .iter()
            .fold(
                ureq::http::Request::builder().uri(self.url(path)),
                |r, (k, v)| r.header(*k, *v),
            )
            .body(())
            .expect("valid request");
        self.exchange(request)
    }

    /// Polls `GET path` until it answers `want`; returns how long that took,
    /// or panics with the last reply after `limit`.
    pub fn wait_for_status(&self, path: &str, want: StatusCode, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let reply = self.get(path);
            if reply.status == want {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{path} did not answer {want} within {limit:?}; last: {} {}",
                reply.status,
                reply.body
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `PUT path` with a JSON body.
    pub fn put_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send_json(Method::PUT, path, body)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.send_json(Method::POST, path, body)
    }

    /// `method path` with a JSON body, read whole.
    pub fn send_json(&self, method: Method, path: &str, body: &serde_json::Value) -> Reply {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .expect("valid request");
        self.exchange(request)
    }

    /// A test app whose one critical check, `db`, runs every 20 ms and has
    /// failed: it returns once readiness answers 503.
    pub fn with_failing_critical_check(binary: &str) -> Server {
        let server = Server::builder(binary)
            .env("PETSAGE_TEST_CHECKS", "db:critical")
            .env("PETSAGE_HEALTH_INTERVAL", "20ms")
            .start();
        server.fail_check("db");
        server
    }

    /// Sets critical test check `name` to fail, and waits until readiness answers 503.
    pub fn fail_check(&self, name: &str) {
        self.set_check(name, "fail");
        self.wait_for_status(
            "/api/v1/health/ready",
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(5),
        );
    }

    /// Sets a test check's mode (`ok`, `fail`, `hang`, `slow`, `flap`) in the test app.
    pub fn set_check(&self, name: &str, mode: &str) {
        let reply = self.put_json(
            &format!("/api/v1/test/checks/{name}"),
            &serde_json::json!(mode),
        );
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    }

    /// Waits up to `limit` for a log line containing `needle`; panics with the log if none comes.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {limit:?}:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the server has logged so far (lines still in the pipe may
    /// be missing: to check a line is absent, use [`Server::finish`]).
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) unless it has
    /// exited, and returns its whole log, read to the end: what a test needs
    /// to show a line never came.
    pub fn finish(mut self) -> String {
        if let Ok(None) = self.child.0.try_wait() {
            self.signal("TERM");
        }
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            let _ = self.child.0.kill();
            let _ = self.child.0.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Sends `signal` (for example `TERM`) to the process, by its PID.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A child process ended by its PID (kill, then wait) when dropped, so a
/// test that fails or panics leaves no process behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("has address").port()
}

/// Sends `request` as raw bytes on a new connection to `addr` and reads until
/// the server closes it (at most 5 s): nothing between client and server
/// could hide or add a byte.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// A raw HTTP/1.1 connection kept open between requests: [`raw_exchange`]
/// for many requests on one connection. Each reply is framed by its
/// `Content-Length` (a chunked reply is an error), so the loop never waits
/// for the server to close.
pub struct RawConnection {
    stream: std::net::TcpStream,
    /// Bytes read past the end of the last reply.
    buffer: Vec<u8>,
}

impl RawConnection {
    /// Connects to `addr`; every read then waits at most 5 s.
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` (which must leave the connection open) and reads one
    /// reply whole: its status code.
    pub fn exchange(&mut self, request: &[u8]) -> std::io::Result<u16> {
        use std::io::{Error, ErrorKind, Read, Write};
        self.stream.write_all(request)?;
        let mut chunk = [0_u8; 4096];
        let head_end = loop {
            if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed before a reply",
                ));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| Error::new(ErrorKind::InvalidData, format!("no status in {head:?}")))?;
        let mut length = None;
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(Error::new(ErrorKind::InvalidData, "a chunked reply"));
                }
            }
        }
        let length = length.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidData,
                format!("no Content-Length in {head:?}"),
            )
        })?;
        while self.buffer.len() < head_end + length {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "closed within a body"));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        self.buffer.drain(..head_end + length);
        Ok(status)
    }
}

/// Starts `command`, a tool that listens on `127.0.0.1:port`, with its
/// output discarded, and waits up to `limit` until it listens. Panics naming
/// `what` (and `install`, how to get it) if it cannot start or never listens.
/// The process is ended by its PID when the returned guard drops.
pub fn spawn_listening(
    command: &mut Command,
    port: u16,
    what: &str,
    install: &str,
    limit: Duration,
) -> KillOnDrop {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("{what} starts ({install}): {err}"));
    let process = KillOnDrop(child);
    let deadline = Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} never listened on port {port}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    process
}

/// Runs `binary` with `args` and `env` to completion: (exit code, stdout, stderr).
pub fn run_to_exit(
    binary: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let scratch = Scratch::new("run");
    let output = Command::new(binary)
        .args(args)
        .env("PETSAGE_AUTH_MODE", "dev")
        .env("PETSAGE_DATA_DIR", scratch.path())
        .envs(env.iter().copied())
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_connection_reads_each_reply_by_its_length_and_keeps_the_rest() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("has address");
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accepts");
            let mut request = [0_u8; 256];
            let _ = stream.read(&mut request).expect("reads");
            // Both replies in one write: the second must wait in the buffer.
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .expect("writes");
            let _ = stream.read(&mut request).expect("reads");
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                .expect("writes");
        });
        let mut connection = RawConnection::connect(addr).expect("connects");
        let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
        assert_eq!(connection.exchange(get).expect("first reply"), 200);
        assert_eq!(connection.exchange(get).expect("second reply"), 404);
        assert!(
            connection.exchange(get).is_err(),
            "a chunked reply is refused"
        );
        server.join().expect("server thread");
    }
}
