//! The processes the bench runs and measures: servers pinned to core 0, wrk
//! on core 1, cold starts, and a PostgreSQL database of its own.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use petsage_tests::wrk::Wrk;
use petsage_tests::{KillOnDrop, free_port, raw_exchange};

use crate::stats::Sample;
use crate::targets::NOTE;

/// A server on core 0 with one worker, ended by its PID when dropped.
pub(crate) struct Pinned {
    process: KillOnDrop,
    addr: SocketAddr,
    /// The `Authorization` header every loaded request carries, if any.
    authorization: Option<String>,
}

impl Pinned {
    /// Starts `binary` with `args` and `env` on core 0, and waits until it answers.
    pub(crate) fn start(
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(binary)
            .arg("--bind")
            .arg(addr.to_string())
            .args(args)
            .envs(env.iter().copied())
            .env("PETSAGE_WORKERS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let server = Self {
            process: KillOnDrop(child),
            addr,
            authorization: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_200(addr) {
            if Instant::now() > deadline {
                return Err(format!("{} did not answer on {addr}", binary.display()));
            }
            thread::sleep(Duration::from_millis(5));
        }
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// Where the server listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on every request the bench sends carries `authorization`.
    pub(crate) fn authorize(&mut self, authorization: String) {
        self.authorization = Some(authorization);
    }

    /// The `Authorization` request header line (with its CRLF), or nothing.
    pub(crate) fn authorization_line(&self) -> String {
        self.authorization
            .as_ref()
            .map_or_else(String::new, |a| format!("Authorization: {a}\r\n"))
    }

    /// One wrk run on core 1 against `path`, with the server's CPU time per request.
    pub(crate) fn load(&self, path: &str, seconds: u32) -> Result<Sample, String> {
        let cpu_before = cpu_ticks(self.pid())?;
        let wrk = Wrk {
            threads: 1,
            connections: 64,
            seconds,
            core: Some(1),
        };
        let header = self
            .authorization
            .as_ref()
            .map(|a| format!("Authorization: {a}"));
        let headers: Vec<&str> = header.iter().map(String::as_str).collect();
        let report = wrk.run_with_headers(&format!("http://{}{path}", self.addr), &headers)?;
        let cpu_after = cpu_ticks(self.pid())?;
        let cpu_us = (cpu_after - cpu_before) as f64 * 1e6 / clock_ticks_per_second();
        Ok(Sample {
            rps: report.rps,
            p50_us: report.p50_us,
            p99_us: report.p99_us,
            errors: report.errors(),
            cpu_us_per_req: if report.requests > 0 {
                cpu_us / report.requests as f64
            } else {
                f64::NAN
            },
        })
    }

    /// Times scrapes of `/metrics` (one every 150 ms) while wrk holds 256
    /// connections on `/api/v1/health` of the same server for `seconds`.
    pub(crate) fn scrapes_under_load(&self, seconds: u32) -> Result<Vec<f64>, String> {
        let wrk = Wrk {
            threads: 1,
            connections: 256,
            seconds,
            core: Some(1),
        }
        .spawn(&format!("http://{}/api/v1/health", self.addr))
        .map_err(|e| format!("cannot run wrk: {e}"))?;
        let wrk = KillOnDrop(wrk);
        thread::sleep(Duration::from_millis(500));
        let request = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
        let until =
            Instant::now() + Duration::from_secs(u64::from(seconds)) - Duration::from_secs(1);
        let mut times = Vec::new();
        while Instant::now() < until {
            let started = Instant::now();
            let reply = raw_exchange(self.addr, request).unwrap_or_default();
            if !reply.starts_with("HTTP/1.1 200") {
                return Err(format!("a scrape under load failed: {reply:.80}"));
            }
            times.push(started.elapsed().as_secs_f64() * 1e3);
            thread::sleep(Duration::from_millis(150));
        }
        drop(wrk);
        Ok(times)
    }

    /// Creates the note the database rows read, and checks the server will find it at [`NOTE`].
    pub(crate) fn seed_note(&self) -> Result<(), String> {
        let reply = self.post("/api/v1/notes", r#"{"name":"Biscuit"}"#);
        if reply.starts_with("HTTP/1.1 201") && reply.contains(&format!("location: {NOTE}")) {
            Ok(())
        } else {
            Err(format!("could not create the bench note: {reply}"))
        }
    }

    /// POSTs a JSON `body` to `path` (as the bench's caller, if any): the whole reply.
    fn post(&self, path: &str, body: &str) -> String {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.authorization_line(),
            body.len()
        );
        raw_exchange(self.addr, request.as_bytes()).unwrap_or_default()
    }

    /// POSTs a JSON `body` to `path`, expecting a 2xx.
    pub(crate) fn post_json(&self, path: &str, body: &str) -> Result<(), String> {
        let reply = self.post(path, body);
        if reply.starts_with("HTTP/1.1 2") {
            Ok(())
        } else {
            Err(format!("POST {path}: {reply}"))
        }
    }

    /// A `kB` line of the server's `/proc/PID/status` (VmRSS, VmHWM).
    pub(crate) fn status_kb(&self, key: &str) -> Result<u64, String> {
        let pid = self.pid();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))
    }
}

/// Whether `GET /api/v1/health` at `addr` answers 200.
pub(crate) fn answers_200(addr: SocketAddr) -> bool {
    raw_exchange(
        addr,
        b"GET /api/v1/health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
    )
    .is_ok_and(|reply| reply.starts_with("HTTP/1.1 200"))
}

/// Spawn of `binary` with `args` to its first 200 on `/api/v1/health`, in milliseconds.
pub(crate) fn cold_start(binary: &Path, args: &[&str]) -> Result<f64, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let started = Instant::now();
    let child = Command::new(binary)
        .args(["--bind", &addr.to_string()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let _process = KillOnDrop(child);
    while !answers_200(addr) {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("no answer within 10 s of spawning".to_owned());
        }
        thread::sleep(Duration::from_micros(200));
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("bad /proc stat field")
    };
    Ok(tick(11)? + tick(12)?)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A PostgreSQL database of the bench's own on the test server, dropped afterwards.
pub(crate) struct BenchDatabase {
    admin: String,
    name: String,
    /// Where the servers under test find it.
    pub(crate) url: String,
}

impl BenchDatabase {
    /// Creates `petsage_bench_<pid><suffix>` on `$PETSAGE_TEST_POSTGRES_URL`'s server.
    pub(crate) fn create(suffix: &str) -> Result<Self, String> {
        let admin = std::env::var("PETSAGE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("petsage_bench_{}{suffix}", std::process::id());
        let server = admin.rsplit_once('/').map_or(admin.as_str(), |(s, _)| s);
        let url = format!("{server}/{name}");
        let db = Self { admin, name, url };
        db.psql(&format!("DROP DATABASE IF EXISTS {}", db.name))?;
        db.psql(&format!("CREATE DATABASE {}", db.name))?;
        Ok(db)
    }

    fn psql(&self, sql: &str) -> Result<(), String> {
        let out = Command::new("psql")
            .args([self.admin.as_str(), "-q", "-c", sql])
            .output()
            .map_err(|e| format!("bench needs psql and PostgreSQL at {}: {e}", self.admin))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "psql {sql:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let _ = self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
