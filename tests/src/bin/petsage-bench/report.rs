//! The bench's report: the table, the goals each run is judged by, and the
//! same figures as JSON.

use std::fmt::Write as _;
use std::process::Command;

use serde::Serialize;
use serde_json::json;

use crate::options::Options;
use crate::stats::{Ratios, Sample};
use crate::targets::{TARGETS, target_index};

/// The machine the run was on.
#[derive(Serialize)]
pub(crate) struct Machine {
    cpus: usize,
    loadavg: String,
}

impl Machine {
    /// The CPU count and load average now.
    pub(crate) fn read() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let loadavg = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Self { cpus, loadavg }
    }
}

/// The short commit of the working folder's checkout, or `unknown`.
pub(crate) fn git_revision() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

/// Everything one run measured, and the goals it is judged by.
pub(crate) struct Report<'a> {
    pub(crate) medians: Vec<Sample>,
    pub(crate) ratios: Vec<Ratios>,
    pub(crate) cold_start_ms: f64,
    pub(crate) scrape_median_ms: f64,
    pub(crate) scrape_max_ms: f64,
    pub(crate) rss_idle_kb: u64,
    pub(crate) rss_peak_kb: u64,
    pub(crate) binary_bytes: u64,
    pub(crate) options: &'a Options,
    pub(crate) machine: Machine,
    pub(crate) revision: String,
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

    /// The tables and goals, in Markdown.
    pub(crate) fn markdown(&self) -> String {
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
            self.machine.cpus,
            self.machine.loadavg,
            self.revision
        );
        md
    }

    /// The same figures as JSON, for tools.
    pub(crate) fn json(&self) -> String {
        let targets: Vec<_> = TARGETS
            .iter()
            .zip(&self.medians)
            .zip(&self.ratios)
            .map(|((target, median), ratio)| {
                json!({
                    "id": target.id,
                    "target": target.label,
                    "path": target.path,
                    "baseline": target.baseline,
                    "median": median,
                    "ratio": ratio,
                })
            })
            .collect();
        let goals: Vec<_> = self
            .goals()
            .into_iter()
            .map(|(goal, met)| json!({"goal": goal, "met": met}))
            .collect();
        let report = json!({
            "revision": self.revision,
            "machine": self.machine,
            "rounds": self.options.rounds,
            "seconds_per_round": self.options.duration,
            "targets": targets,
            "cold_start_ms": self.cold_start_ms,
            "scrape_median_ms": self.scrape_median_ms,
            "scrape_max_ms": self.scrape_max_ms,
            "rss_idle_kb": self.rss_idle_kb,
            "rss_peak_kb": self.rss_peak_kb,
            "binary_bytes": self.binary_bytes,
            "goals": goals,
        });
        // serde_json writes a NaN (a figure wrk did not print) as null.
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    }
}
