//! wrk, the load generator (Debian's package, installed by `cargo xtask ci`):
//! started on loopback for a bounded time, and its report read. The load
//! tests and `cargo xtask bench` both drive it through here.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// What wrk reported.
#[derive(Debug, Default, Clone)]
pub struct WrkReport {
    /// Requests completed.
    pub requests: u64,
    /// Responses with a status outside 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency in microseconds (NaN when wrk printed none).
    pub p50_us: f64,
    /// 99th-percentile latency in microseconds (NaN when wrk printed none).
    pub p99_us: f64,
    /// wrk's own output, for failure messages and notes.
    pub output: String,
}

impl WrkReport {
    /// Socket errors plus responses outside 2xx/3xx.
    pub fn errors(&self) -> u64 {
        self.socket_errors.saturating_add(self.non_2xx)
    }
}

/// A load run: `threads` threads holding `connections` connections to a URL for `seconds`.
#[derive(Clone, Copy, Debug)]
pub struct Wrk {
    /// wrk's threads.
    pub threads: u32,
    /// Open connections.
    pub connections: u32,
    /// How long the load lasts; wrk stops by itself.
    pub seconds: u32,
    /// The CPU core wrk is pinned to (`taskset -c`), if any.
    pub core: Option<u32>,
}

impl Wrk {
    /// Two threads, unpinned: the load tests' shape.
    pub fn new(connections: u32, seconds: u32) -> Self {
        Self {
            threads: 2,
            connections,
            seconds,
            core: None,
        }
    }

    /// The command line, with latency percentiles and a 5 s request timeout,
    /// `headers` (`Name: value`) on every request, and a Lua `script`
    /// (`wrk -s`) making each request when given.
    fn command(&self, url: &str, script: Option<&Path>, headers: &[&str]) -> Command {
        let mut command = match self.core {
            Some(core) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", &core.to_string(), "wrk"]);
                taskset
            }
            None => Command::new("wrk"),
        };
        command.args([
            &format!("-t{}", self.threads),
            &format!("-c{}", self.connections),
            &format!("-d{}s", self.seconds),
            "--timeout",
            "5s",
            "--latency",
        ]);
        for header in headers {
            command.arg("-H").arg(header);
        }
        if let Some(script) = script {
            command.arg("-s").arg(script);
        }
        command.arg(url);
        command
    }

    /// Starts the load in the background; [`wrk_report`] waits for its report.
    pub fn spawn(&self, url: &str) -> std::io::Result<Child> {
        piped(self.command(url, None, &[])).spawn()
    }

    /// [`Wrk::spawn`] with the Lua `script` making each request (random paths, say).
    pub fn spawn_scripted(&self, url: &str, script: &Path) -> std::io::Result<Child> {
        piped(self.command(url, Some(script), &[])).spawn()
    }

    /// Runs the load to its end and reads the report.
    pub fn run(&self, url: &str) -> Result<WrkReport, String> {
        self.run_with_headers(url, &[])
    }

    /// [`Wrk::run`] with `headers` (`Name: value`) on every request.
    pub fn run_with_headers(&self, url: &str, headers: &[&str]) -> Result<WrkReport, String> {
        let child = piped(self.command(url, None, headers))
            .spawn()
            .map_err(|e| format!("cannot run wrk (apt-get install -y wrk): {e}"))?;
        finish(child)
    }
}

/// `command` with its output captured for the report.
fn piped(mut command: Command) -> Command {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Starts `wrk` against `url` for `seconds` with `connections`; the child ends by itself.
pub fn spawn_wrk(url: &str, connections: u32, seconds: u32) -> Child {
    Wrk::new(connections, seconds)
        .spawn(url)
        .expect("wrk starts (apt-get install -y wrk)")
}

/// Waits for a wrk started by [`spawn_wrk`] and parses its report.
pub fn wrk_report(child: Child) -> WrkReport {
    finish(child).unwrap_or_else(|err| panic!("{err}"))
}

fn finish(child: Child) -> Result<WrkReport, String> {
    let Output {
        stdout,
        stderr,
        status,
    } = child.wait_with_output().map_err(|e| format!("wrk: {e}"))?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    if status.success() {
        Ok(parse(&output))
    } else {
        Err(format!("wrk failed ({status}): {output}"))
    }
}

/// Reads wrk's text report.
pub fn parse(output: &str) -> WrkReport {
    let mut report = WrkReport {
        output: output.to_owned(),
        p50_us: f64::NAN,
        p99_us: f64::NAN,
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
        } else if let Some(value) = line.strip_prefix("50%") {
            report.p50_us = micros(value).unwrap_or(f64::NAN);
        } else if let Some(value) = line.strip_prefix("99%") {
            report.p99_us = micros(value).unwrap_or(f64::NAN);
        }
    }
    report
}

/// A wrk duration ("652.00us", "2.31ms", "1.02s") in microseconds.
fn micros(value: &str) -> Option<f64> {
    let value = value.trim();
    let (number, scale) = if let Some(v) = value.strip_suffix("us") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1e3)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1e6)
    } else {
        (value, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 1s test @ http://127.0.0.1:1/api/v1/health\n  1 threads and 64 connections\n  Latency Distribution\n     50%  652.00us\n     75%    0.90ms\n     99%    2.31ms\n  545599 requests in 12.10s, 94.18MB read\n  Socket errors: connect 0, read 3, write 1, timeout 0\n  Non-2xx or 3xx responses: 7\nRequests/sec:  45090.48\n";

    #[test]
    fn reads_counts_errors_rate_and_latencies() {
        let report = parse(OUTPUT);
        assert_eq!(report.requests, 545_599);
        assert_eq!(report.socket_errors, 4);
        assert_eq!(report.non_2xx, 7);
        assert_eq!(report.errors(), 11);
        assert!((report.rps - 45_090.48).abs() < 0.01);
        assert_eq!(report.p50_us, 652.0);
        assert_eq!(report.p99_us, 2310.0);
    }

    #[test]
    fn a_report_without_latencies_has_none() {
        let report = parse("Requests/sec:  10.00\n");
        assert!(report.p50_us.is_nan() && report.p99_us.is_nan());
        assert_eq!(report.errors(), 0);
    }
}
