//! HAProxy and wrk, driven by the tests that need a real load balancer and a
//! real load generator. Both are Debian packages that `.ci/run` installs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The repository's HAProxy config, the one operators deploy.
pub fn haproxy_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy/haproxy.cfg")
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("has address").port()
}

/// An HAProxy process running `deploy/haproxy/haproxy.cfg`, killed by its PID when dropped.
pub struct Haproxy {
    child: Child,
    port: u16,
    socket: PathBuf,
}

impl Haproxy {
    /// Starts HAProxy in front of `backends` (at most three), with retries and redispatch off.
    pub fn start(backends: &[String]) -> Haproxy {
        let port = free_port();
        let socket = std::env::temp_dir().join(format!(
            "petsage-haproxy-{}-{port}.sock",
            std::process::id()
        ));
        let mut command = Command::new("haproxy");
        command
            .arg("-f")
            .arg(haproxy_config())
            .env("HAPROXY_NO_RETRIES", "1")
            .env("PETSAGE_LB_BIND", format!("127.0.0.1:{port}"))
            .env("PETSAGE_LB_STATS_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (i, backend) in backends.iter().enumerate() {
            command.env(format!("PETSAGE_APP{}", i + 1), backend);
        }
        let child = command
            .spawn()
            .expect("haproxy starts (apt-get install -y haproxy)");
        let haproxy = Haproxy {
            child,
            port,
            socket,
        };
        haproxy.wait_for_socket();
        haproxy
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy stats socket never appeared"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`, through the balancer.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The check status HAProxy shows for server `name` (`UP`, `DOWN`, …).
    pub fn server_status(&self, name: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("stats socket connects");
        stream.write_all(b"show stat\n").expect("command sent");
        let mut csv = String::new();
        stream.read_to_string(&mut csv).expect("stats read");
        // Columns: pxname,svname,...; status is column 18 (index 17).
        csv.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|cols| cols.len() > 17 && cols[0] == "petsage" && cols[1] == name)
            .map(|cols| cols[17].to_owned())
            .unwrap_or_default()
    }

    /// Waits up to `limit` until server `name` has status `want`; returns how long it took.
    pub fn wait_status(&self, name: &str, want: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let status = self.server_status(name);
            if status.starts_with(want) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{name} is {status:?}, not {want} after {limit:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// What wrk reported.
#[derive(Debug, Default)]
pub struct WrkReport {
    /// Requests completed.
    pub requests: u64,
    /// Responses with a status outside 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// wrk's own output, for failure messages and notes.
    pub output: String,
}

/// Starts `wrk` against `url` for `seconds` with `connections`; the child ends by itself.
pub fn spawn_wrk(url: &str, connections: u32, seconds: u32) -> Child {
    Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "5s",
            "--latency",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk starts (apt-get install -y wrk)")
}

/// Waits for a wrk started by [`spawn_wrk`] and parses its report.
pub fn wrk_report(child: Child) -> WrkReport {
    let Output {
        stdout,
        stderr,
        status,
    } = child.wait_with_output().expect("wrk ends");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(status.success(), "wrk failed: {output}");
    parse_wrk(&output)
}

fn parse_wrk(output: &str) -> WrkReport {
    let mut report = WrkReport {
        output: output.to_owned(),
        ..WrkReport::default()
    };
    for line in output.lines().map(str::trim) {
        if let Some((count, _)) = line.split_once(" requests in ") {
            report.requests = count.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            report.non_2xx = n.trim().parse().unwrap_or(u64::MAX);
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 1, write 0, timeout 0"
            report.socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some(rps) = line.strip_prefix("Requests/sec:") {
            report.rps = rps.trim().parse().unwrap_or(0.0);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_errors_and_counts() {
        let out = "  545599 requests in 12.10s, 94.18MB read\n  Socket errors: connect 0, read 3, write 1, timeout 0\n  Non-2xx or 3xx responses: 7\nRequests/sec:  45090.48\n";
        let report = parse_wrk(out);
        assert_eq!(report.requests, 545_599);
        assert_eq!(report.socket_errors, 4);
        assert_eq!(report.non_2xx, 7);
        assert!((report.rps - 45_090.48).abs() < 0.01);
    }
}
