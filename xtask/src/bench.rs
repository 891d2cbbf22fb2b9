//! `cargo xtask bench`: PetSage's health endpoints under wrk, side by side
//! with a bare actix-web baseline, in interleaved rounds on pinned cores.
//!
//! Servers run on core 0 (`taskset -c 0`, one worker each), wrk on core 1.
//! Beside requests/s it reports each server's CPU time per request, read from
//! `/proc/PID/stat`, which stays steady on a noisy machine when throughput
//! does not. Writes `target/bench/report.md` and `report.json`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Bench settings from the command line.
pub(crate) struct Options {
    /// Seconds of load per target per round.
    duration: u32,
    /// Interleaved rounds (A B C D, A B C D, …).
    rounds: usize,
    /// Cold starts to time.
    starts: usize,
}

impl Options {
    /// Parses `--quick` and `--duration SECS`.
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            duration: 5,
            rounds: 5,
            starts: 20,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    options = Self {
                        duration: 1,
                        rounds: 2,
                        starts: 5,
                    }
                }
                "--duration" => {
                    let value = args.next().ok_or("--duration needs a number of seconds")?;
                    options.duration = value.parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                        format!("--duration: expected whole seconds, got {value:?}")
                    })?;
                }
                other => {
                    return Err(format!(
                        "bench: unknown option {other:?} (use --quick or --duration SECS)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// One server under test, pinned to core 0, and the target it is compared with.
struct Target {
    /// The name goals refer to it by.
    id: &'static str,
    label: &'static str,
    path: &'static str,
    server: usize,
    /// The id of the target it is compared with.
    baseline: &'static str,
}

/// The note every database row reads: the first one the bench creates.
const NOTE: &str = "/api/v1/notes/1";

const TARGETS: &[Target] = &[
    Target {
        id: "baseline",
        label: "baseline (bare actix-web)",
        path: "/api/v1/health",
        server: 0,
        baseline: "baseline",
    },
    Target {
        id: "health",
        label: "/api/v1/health",
        path: "/api/v1/health",
        server: 1,
        baseline: "baseline",
    },
    Target {
        id: "ready",
        label: "/api/v1/health/ready (3 checks, one taking 200 ms)",
        path: "/api/v1/health/ready",
        server: 2,
        baseline: "baseline",
    },
    Target {
        id: "health_checks",
        label: "/api/v1/health (3 checks, one taking 200 ms)",
        path: "/api/v1/health",
        server: 2,
        baseline: "baseline",
    },
    Target {
        id: "health_no_metrics",
        label: "/api/v1/health, metrics off (PETSAGE_METRICS=false)",
        path: "/api/v1/health",
        server: 7,
        baseline: "baseline",
    },
    Target {
        id: "live",
        label: "/api/v1/health/live",
        path: "/api/v1/health/live",
        server: 1,
        baseline: "baseline",
    },
    Target {
        id: "sqlite_baseline",
        label: "baseline: actix-web + sqlx, same query, SQLite",
        path: NOTE,
        server: 3,
        baseline: "sqlite_baseline",
    },
    Target {
        id: "notes_sqlite",
        label: "GET /api/v1/notes/{id} (generated feature), SQLite",
        path: NOTE,
        server: 4,
        baseline: "sqlite_baseline",
    },
    Target {
        id: "postgres_baseline",
        label: "baseline: actix-web + sqlx, same query, PostgreSQL",
        path: NOTE,
        server: 5,
        baseline: "postgres_baseline",
    },
    Target {
        id: "notes_postgres",
        label: "GET /api/v1/notes/{id} (generated feature), PostgreSQL",
        path: NOTE,
        server: 6,
        baseline: "postgres_baseline",
    },
];

/// The position of the target named `id` in [`TARGETS`].
fn target_index(id: &str) -> usize {
    TARGETS
        .iter()
        .position(|target| target.id == id)
        .unwrap_or_else(|| panic!("no bench target {id:?}"))
}

/// One wrk run's figures.
#[derive(Clone, Copy, Default)]
struct Sample {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    cpu_us_per_req: f64,
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the whole benchmark from the workspace at `root`.
pub(crate) fn run(root: &Path, options: &Options) -> Result<(), String> {
    for (tool, package) in [("wrk", "wrk"), ("taskset", "util-linux")] {
        if !crate::on_path(tool) {
            return Err(format!(
                "bench needs {tool}; install it with: sudo apt-get install -y {package}"
            ));
        }
    }
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "petsage-app",
        "-p",
        "petsage-tests",
        "--bins",
    ])?;
    let release = target_dir(root).join("release");
    let app = release.join("petsage-app");
    let test_app = release.join("petsage-test-app");
    let baseline = release.join("petsage-baseline");

    // The database rows read one note through the generated feature (the
    // test app's `notes`) and through bare actix-web + sqlx, on the same file
    // or database, with the same query.
    let sqlite_dir = target_dir(root).join("bench/sqlite");
    let _ = std::fs::remove_dir_all(&sqlite_dir);
    let sqlite_dir = sqlite_dir.display().to_string();
    let sqlite_url = format!("sqlite://{sqlite_dir}/petsage.db?mode=rwc");
    let postgres = BenchDatabase::create()?;
    let notes_sqlite = start(
        &test_app,
        &[],
        &[
            ("PETSAGE_TEST_FAULTS", "off"),
            ("PETSAGE_DATA_DIR", &sqlite_dir),
        ],
    )?;
    seed_note(notes_sqlite.port)?;
    let notes_postgres = start(
        &test_app,
        &[],
        &[
            ("PETSAGE_TEST_FAULTS", "off"),
            ("PETSAGE_DATABASE_URL", &postgres.url),
        ],
    )?;
    seed_note(notes_postgres.port)?;

    let servers = [
        start(&baseline, &[], &[])?,
        start(&app, &[], &[])?,
        start(
            &test_app,
            &[],
            &[
                ("PETSAGE_TEST_NOTES", "off"),
                (
                    "PETSAGE_TEST_CHECKS",
                    "db:critical,queue:critical:slow,cache:non-critical",
                ),
            ],
        )?,
        start(&baseline, &["--database-url", &sqlite_url], &[])?,
        notes_sqlite,
        start(&baseline, &["--database-url", &postgres.url], &[])?,
        notes_postgres,
        start(&app, &[], &[("PETSAGE_METRICS", "false")])?,
    ];
    let rss_idle_kb = status_kb(servers[1].child.id(), "VmRSS")?;

    eprintln!("bench: warm-up");
    for target in TARGETS {
        load(&servers[target.server], target.path, 1)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); TARGETS.len()];
    for round in 1..=options.rounds {
        // Rotate the order each round, so no target always follows the same one.
        for k in 0..TARGETS.len() {
            let i = (k + round) % TARGETS.len();
            let target = &TARGETS[i];
            eprintln!("bench: round {round}/{} {}", options.rounds, target.label);
            samples[i].push(load(
                &servers[target.server],
                target.path,
                options.duration,
            )?);
        }
    }
    let rss_peak_kb = status_kb(servers[1].child.id(), "VmHWM")?;
    eprintln!("bench: scrapes of /metrics under 256 connections of load");
    let scrapes_ms = scrapes_under_load(&servers[1], options.duration.max(3))?;
    drop(servers);
    drop(postgres);

    eprintln!("bench: {} cold starts", options.starts);
    let mut starts_ms = Vec::new();
    for _ in 0..options.starts {
        starts_ms.push(cold_start(&app)?);
    }

    let report = Report {
        medians: samples.iter().map(|s| median_sample(s)).collect(),
        ratios: TARGETS
            .iter()
            .zip(&samples)
            .map(|(target, s)| paired_ratios(s, &samples[target_index(target.baseline)]))
            .collect(),
        cold_start_ms: median(&mut starts_ms),
        scrape_median_ms: median(&mut scrapes_ms.clone()),
        scrape_max_ms: scrapes_ms.iter().copied().fold(0.0, f64::max),
        rss_idle_kb,
        rss_peak_kb,
        binary_bytes: std::fs::metadata(&app).map(|m| m.len()).unwrap_or(0),
        options,
        machine: machine(),
        revision: git_revision(root),
    };
    let dir = target_dir(root).join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let markdown = report.markdown();
    std::fs::write(dir.join("report.md"), &markdown).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("report.json"), report.json()).map_err(|e| e.to_string())?;
    println!("{markdown}");
    eprintln!("bench: wrote {}/report.md and report.json", dir.display());
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Starts `binary` on core 0 with one worker, and waits until it answers.
fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Server, String> {
    let port = free_port()?;
    let bind = format!("127.0.0.1:{port}");
    let child = Command::new("taskset")
        .arg("-c")
        .arg("0")
        .arg(binary)
        .arg("--bind")
        .arg(&bind)
        .args(args)
        .envs(env.iter().copied())
        .env("PETSAGE_WORKERS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers_200(port) {
        if Instant::now() > deadline {
            return Err(format!("{} did not answer on {bind}", binary.display()));
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(server)
}

/// Times scrapes of `/metrics` (one every 150 ms) while wrk holds 256
/// connections on `/api/v1/health` of the same server for `seconds`.
fn scrapes_under_load(server: &Server, seconds: u32) -> Result<Vec<f64>, String> {
    let mut wrk = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c256", &format!("-d{seconds}s")])
        .arg(format!("http://127.0.0.1:{}/api/v1/health", server.port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    thread::sleep(Duration::from_millis(500));
    let request = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let until = Instant::now() + Duration::from_secs(u64::from(seconds)) - Duration::from_secs(1);
    let mut times = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let reply = exchange(server.port, request).unwrap_or_default();
        if !reply.starts_with("HTTP/1.1 200") {
            let _ = wrk.kill();
            let _ = wrk.wait();
            return Err(format!("a scrape under load failed: {reply:.80}"));
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
        thread::sleep(Duration::from_millis(150));
    }
    let _ = wrk.wait();
    Ok(times)
}

/// Whether `GET /api/v1/health` on `port` answers 200 (one connection, no client crate).
fn answers_200(port: u16) -> bool {
    let request = "GET /api/v1/health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    exchange(port, request).is_some_and(|reply| reply.starts_with("HTTP/1.1 200"))
}

/// Sends a raw request on one connection and reads the whole reply.
fn exchange(port: u16, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

/// Creates the note the database rows read, and checks both servers will find it at [`NOTE`].
fn seed_note(port: u16) -> Result<(), String> {
    let body = r#"{"name":"Biscuit"}"#;
    let request = format!(
        "POST /api/v1/notes HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = exchange(port, &request).unwrap_or_default();
    if reply.starts_with("HTTP/1.1 201") && reply.contains(&format!("location: {NOTE}")) {
        Ok(())
    } else {
        Err(format!("could not create the bench note: {reply}"))
    }
}

/// A PostgreSQL database of the bench's own on the test server, dropped afterwards.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create() -> Result<Self, String> {
        let admin = std::env::var("PETSAGE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("petsage_bench_{}", std::process::id());
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

/// Spawn to first 200, in milliseconds.
fn cold_start(binary: &Path) -> Result<f64, String> {
    let port = free_port()?;
    let started = Instant::now();
    let child = Command::new(binary)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let _server = Server { child, port };
    while !answers_200(port) {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("no answer within 10 s of spawning".to_owned());
        }
        thread::sleep(Duration::from_micros(200));
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// One wrk run on core 1 against `server`; CPU per request from the server's /proc stat.
fn load(server: &Server, path: &str, seconds: u32) -> Result<Sample, String> {
    let pid = server.child.id();
    let cpu_before = cpu_ticks(pid)?;
    let output = Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c64",
            &format!("-d{seconds}s"),
            "--latency",
        ])
        .arg(format!("http://127.0.0.1:{}{path}", server.port))
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let cpu_after = cpu_ticks(pid)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let requests = field(&text, " requests in ").unwrap_or(0.0);
    let cpu_us = (cpu_after - cpu_before) as f64 * 1e6 / clock_ticks_per_second();
    Ok(Sample {
        rps: field(&text, "Requests/sec:").unwrap_or(0.0),
        p50_us: latency(&text, "50%").unwrap_or(f64::NAN),
        p99_us: latency(&text, "99%").unwrap_or(f64::NAN),
        errors: errors(&text),
        cpu_us_per_req: if requests > 0.0 {
            cpu_us / requests
        } else {
            f64::NAN
        },
    })
}

/// The number on the line containing `key` (before it for " requests in ", after it otherwise).
fn field(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(key))?;
    let (before, after) = line.split_once(key)?;
    let word = if key == " requests in " {
        before.split_whitespace().last()?
    } else {
        after.split_whitespace().next()?
    };
    word.parse().ok()
}

/// A latency percentile in microseconds ("50%  652.00us").
fn latency(text: &str, percentile: &str) -> Option<f64> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(percentile))?;
    let value = line.split_whitespace().nth(1)?;
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

/// Socket errors plus non-2xx/3xx responses.
fn errors(text: &str) -> u64 {
    let mut total = 0;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            total += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            total += rest.trim().parse::<u64>().unwrap_or(1);
        }
    }
    total
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

/// A `kB` line of `/proc/PID/status` (VmRSS, VmHWM).
fn status_kb(pid: u32, key: &str) -> Result<u64, String> {
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn median_sample(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    Sample {
        rps: pick(|s| s.rps),
        p50_us: pick(|s| s.p50_us),
        p99_us: pick(|s| s.p99_us),
        errors: samples.iter().map(|s| s.errors).sum(),
        cpu_us_per_req: pick(|s| s.cpu_us_per_req),
    }
}

fn machine() -> (usize, String) {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    (cpus, load)
}

fn git_revision(root: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

/// A target against the baseline: the median over rounds of each round's ratio.
#[derive(Clone, Copy)]
struct Ratios {
    rps: f64,
    cpu: f64,
    p99: f64,
}

/// Ratios paired round by round, so a slow drift of the machine cancels out.
fn paired_ratios(target: &[Sample], baseline: &[Sample]) -> Ratios {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = target
            .iter()
            .zip(baseline)
            .map(|(t, b)| f(t) / f(b))
            .collect();
        median(&mut values)
    };
    Ratios {
        rps: pick(|s| s.rps),
        cpu: pick(|s| s.cpu_us_per_req),
        p99: pick(|s| s.p99_us),
    }
}

struct Report<'a> {
    medians: Vec<Sample>,
    ratios: Vec<Ratios>,
    cold_start_ms: f64,
    scrape_median_ms: f64,
    scrape_max_ms: f64,
    rss_idle_kb: u64,
    rss_peak_kb: u64,
    binary_bytes: u64,
    options: &'a Options,
    machine: (usize, String),
    revision: String,
}

impl Report<'_> {
    /// The ratios of the target named `id`.
    fn ratio(&self, id: &str) -> Ratios {
        self.ratios[target_index(id)]
    }

    /// The goals from the benchmark issue, each with whether this run met it.
    fn goals(&self) -> Vec<(String, bool)> {
        let health = self.ratio("health");
        let ready = self.ratio("ready");
        let health_checks = self.ratio("health_checks");
        let errors: u64 = self.medians.iter().map(|s| s.errors).sum();
        vec![
            (
                format!("/api/v1/health ≥ 0.90× baseline req/s: {:.3}×", health.rps),
                health.rps >= 0.90,
            ),
            (
                format!(
                    "/api/v1/health ≤ 1.10× baseline CPU/req: {:.3}×",
                    health.cpu
                ),
                health.cpu <= 1.10,
            ),
            (
                format!("/api/v1/health p99 ≤ 1.2× baseline p99: {:.3}×", health.p99),
                health.p99 <= 1.2,
            ),
            (
                format!(
                    "/api/v1/health/ready (3 checks, one 200 ms) ≥ 0.95× baseline req/s: {:.3}×",
                    ready.rps
                ),
                ready.rps >= 0.95,
            ),
            (
                format!(
                    "/api/v1/health/ready (3 checks) p99 ≤ 1.2× baseline p99: {:.3}×",
                    ready.p99
                ),
                ready.p99 <= 1.2,
            ),
            (
                format!(
                    "/api/v1/health (3 checks, one 200 ms) ≥ 0.95× baseline req/s: {:.3}×",
                    health_checks.rps
                ),
                health_checks.rps >= 0.95,
            ),
            (
                format!("cold start median ≤ 20 ms: {:.1} ms", self.cold_start_ms),
                self.cold_start_ms <= 20.0,
            ),
            (
                format!(
                    "peak RSS after load ≤ 16 MB: {:.1} MB",
                    self.rss_peak_kb as f64 / 1024.0
                ),
                self.rss_peak_kb <= 16 * 1024,
            ),
            (
                format!(
                    "GET /api/v1/notes/{{id}} on SQLite ≥ 0.90× its baseline req/s: {:.3}×",
                    self.ratio("notes_sqlite").rps
                ),
                self.ratio("notes_sqlite").rps >= 0.90,
            ),
            (
                format!(
                    "GET /api/v1/notes/{{id}} on PostgreSQL ≥ 0.90× its baseline req/s: {:.3}×",
                    self.ratio("notes_postgres").rps
                ),
                self.ratio("notes_postgres").rps >= 0.90,
            ),
            (
                format!(
                    "/api/v1/health with metrics on ≥ 0.93× baseline req/s: {:.3}×",
                    health.rps
                ),
                health.rps >= 0.93,
            ),
            (
                format!(
                    "a scrape of /metrics under 256 connections of load < 50 ms: slowest {:.1} ms",
                    self.scrape_max_ms
                ),
                self.scrape_max_ms < 50.0,
            ),
            (format!("zero errors: {errors}"), errors == 0),
        ]
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "| target | req/s (median) | × baseline | p50 | p99 | errors | server CPU µs/req | × baseline |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for ((target, s), r) in TARGETS.iter().zip(&self.medians).zip(&self.ratios) {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.3} | {:.0} µs | {:.0} µs | {} | {:.2} | {:.3} |",
                target.label, s.rps, r.rps, s.p50_us, s.p99_us, s.errors, s.cpu_us_per_req, r.cpu,
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(md, "| measure | value |\n|---|---:|");
        let _ = writeln!(
            md,
            "| cold start, spawn to first 200 (median of {}) | {:.1} ms |",
            self.options.starts, self.cold_start_ms
        );
        let _ = writeln!(
            md,
            "| RSS idle / peak after load | {:.1} MB / {:.1} MB |",
            self.rss_idle_kb as f64 / 1024.0,
            self.rss_peak_kb as f64 / 1024.0
        );
        let _ = writeln!(
            md,
            "| scrape of /metrics under 256 connections, median / slowest | {:.1} ms / {:.1} ms |",
            self.scrape_median_ms, self.scrape_max_ms
        );
        let _ = writeln!(
            md,
            "| release binary size | {:.2} MB |",
            self.binary_bytes as f64 / 1_048_576.0
        );
        let _ = writeln!(md);
        for (goal, met) in self.goals() {
            let _ = writeln!(md, "- [{}] {goal}", if met { "x" } else { " " });
        }
        let _ = writeln!(
            md,
            "\n{} rounds × {} s per target, interleaved in rotating order; ratios are medians of each round's ratio to the same round's baseline (the bare actix-web server for health, bare actix-web + sqlx on the same database for notes); 64 connections; servers on core 0 (1 worker), wrk on core 1. \
             Machine: {} CPUs, load average {}. Revision {}.",
            self.options.rounds,
            self.options.duration,
            self.machine.0,
            self.machine.1,
            self.revision
        );
        md
    }

    fn json(&self) -> String {
        let targets: Vec<String> = TARGETS
            .iter()
            .zip(&self.medians)
            .zip(&self.ratios)
            .map(|((t, s), r)| {
                format!(
                    "    {{\"target\": {:?}, \"path\": {:?}, \"rps\": {}, \"rps_ratio\": {}, \"p50_us\": {}, \"p99_us\": {}, \"errors\": {}, \"cpu_us_per_req\": {}, \"cpu_ratio\": {}}}",
                    t.label, t.path, num(s.rps), num(r.rps), num(s.p50_us), num(s.p99_us), s.errors, num(s.cpu_us_per_req), num(r.cpu)
                )
            })
            .collect();
        let goals: Vec<String> = self
            .goals()
            .iter()
            .map(|(g, met)| format!("    {{\"goal\": {g:?}, \"met\": {met}}}"))
            .collect();
        format!(
            "{{\n  \"revision\": {:?},\n  \"machine\": {{\"cpus\": {}, \"loadavg\": {:?}}},\n  \"rounds\": {},\n  \"seconds_per_round\": {},\n  \"targets\": [\n{}\n  ],\n  \"cold_start_ms\": {},\n  \"scrape_max_ms\": {},\n  \"rss_idle_kb\": {},\n  \"rss_peak_kb\": {},\n  \"binary_bytes\": {},\n  \"goals\": [\n{}\n  ]\n}}\n",
            self.revision,
            self.machine.0,
            self.machine.1,
            self.options.rounds,
            self.options.duration,
            targets.join(",\n"),
            num(self.cold_start_ms),
            num(self.scrape_max_ms),
            self.rss_idle_kb,
            self.rss_peak_kb,
            self.binary_bytes,
            goals.join(",\n")
        )
    }
}

/// A JSON number, or null for NaN/infinite.
fn num(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "null".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 1s test @ http://127.0.0.1:1/api/v1/health\n  1 threads and 64 connections\n  Latency Distribution\n     50%  652.00us\n     75%    0.90ms\n     99%    2.31ms\n  53491 requests in 1.00s, 11.83MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  53491.50\n";

    #[test]
    fn reads_wrk_figures() {
        assert_eq!(field(WRK, " requests in "), Some(53491.0));
        assert_eq!(field(WRK, "Requests/sec:"), Some(53491.5));
        assert_eq!(latency(WRK, "50%"), Some(652.0));
        assert_eq!(latency(WRK, "99%"), Some(2310.0));
        assert_eq!(errors(WRK), 7);
    }

    #[test]
    fn every_target_is_compared_with_a_known_baseline_and_ids_are_unique() {
        for (i, target) in TARGETS.iter().enumerate() {
            assert_eq!(target_index(target.id), i, "{} is listed twice", target.id);
            let baseline = &TARGETS[target_index(target.baseline)];
            assert_eq!(
                baseline.baseline, baseline.id,
                "{} is not a baseline",
                baseline.id
            );
        }
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn options_take_quick_and_duration() {
        let quick = Options::parse(&["--quick".to_owned()]).expect("parses");
        assert_eq!((quick.duration, quick.rounds), (1, 2));
        let long = Options::parse(&["--duration".to_owned(), "10".to_owned()]).expect("parses");
        assert_eq!(long.duration, 10);
        assert!(Options::parse(&["--duration".to_owned(), "x".to_owned()]).is_err());
    }
}
