//! The bench's report: the table, the goals each run is judged by, and the
//! same figures as JSON.

use std::fmt::Write as _;
use std::process::Command;

use serde::Serialize;
use serde_json::json;

use crate::growth::{Growth, OWN_ROWS};
use crate::instructions::{Count, MEASURED, WARM_UP};
use crate::jobs::JobsRun;
use crate::options::Options;
use crate::stats::{Ratios, Sample};
use crate::targets::{Target, target_index};
use crate::verify_cost::VerifyCost;

/// What authentication costs: a first verification, and list pages as data grows.
#[derive(Serialize)]
pub(crate) struct AuthRun {
    pub(crate) verify: VerifyCost,
    pub(crate) growth: Growth,
}

impl AuthRun {
    /// Each page's cost within 1.3× on the small and the big table, either way.
    fn goals(&self) -> Vec<(String, bool)> {
        self.growth
            .rows
            .iter()
            .map(|row| {
                let ratio = row.small_rps / row.big_rps;
                (
                    format!(
                        "{}: {} rows against {} within 1.3× in req/s: {:.0} against {:.0}, {ratio:.3}×",
                        row.label, OWN_ROWS, self.growth.big_rows, row.small_rps, row.big_rps
                    ),
                    (1.0 / 1.3..=1.3).contains(&ratio),
                )
            })
            .collect()
    }

    fn markdown(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "| a first, uncached token verification (signature and claims) | ES256 {:.1} µs | RS256 {:.1} µs |\n",
            self.verify.es256_us, self.verify.rs256_us
        );
        let growth = &self.growth;
        let _ = writeln!(
            md,
            "| the caller's list page (limit 50) | {OWN_ROWS} rows, all the caller's: req/s | {} rows, {OWN_ROWS} the caller's: req/s | × |",
            growth.big_rows
        );
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for row in &growth.rows {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.0} | {:.3} |",
                row.label,
                row.small_rps,
                row.big_rps,
                row.big_rps / row.small_rps
            );
        }
        let _ = writeln!(md);
        for (label, plan) in &growth.plans {
            let _ = writeln!(md, "Plan of the list query, {label}:\n```\n{plan}\n```");
        }
        let _ = writeln!(md);
    }
}

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

/// The cold starts' medians.
pub(crate) struct ColdStarts {
    /// PetSage, default settings.
    pub(crate) app_ms: f64,
    /// The bare baseline with as many workers as PetSage starts.
    pub(crate) baseline_ms: f64,
    /// The older build's PetSage (`--old`).
    pub(crate) old_ms: Option<f64>,
    /// The baseline's `--workers`.
    pub(crate) baseline_workers: String,
}

/// What the wrk rounds, the scrapes and the cold starts measured.
pub(crate) struct RpsRun {
    pub(crate) targets: Vec<&'static Target>,
    /// By target, in `targets` order.
    pub(crate) medians: Vec<Sample>,
    /// Each target against its baseline, in `targets` order.
    pub(crate) ratios: Vec<Ratios>,
    /// This build's target (by id) against the older build's, paired by round.
    pub(crate) against_old: Vec<(&'static str, Ratios)>,
    pub(crate) cold_starts: ColdStarts,
    pub(crate) scrape_median_ms: f64,
    pub(crate) scrape_max_ms: f64,
    pub(crate) rss_idle_kb: u64,
    pub(crate) rss_peak_kb: u64,
}

impl RpsRun {
    /// The ratios of the target named `id`.
    fn ratio(&self, id: &str) -> Ratios {
        self.ratios[target_index(&self.targets, id)]
    }

    /// The req/s goals, each with whether this run met it.
    fn goals(&self) -> Vec<(String, bool)> {
        let health = self.ratio("health");
        let ready = self.ratio("ready");
        let health_checks = self.ratio("health_checks");
        let errors: u64 = self.medians.iter().map(|s| s.errors).sum();
        let cold = &self.cold_starts;
        let cold_ratio = cold.app_ms / cold.baseline_ms;
        let mut goals = vec![
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
                    "/api/v1/health/ready (3 checks, one 200 ms) ≥ 0.85× bare baseline req/s: {:.3}×",
                    ready.rps
                ),
                ready.rps >= 0.85,
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
                    "/api/v1/health (3 checks, one 200 ms) ≥ 0.85× bare baseline req/s: {:.3}×",
                    health_checks.rps
                ),
                health_checks.rps >= 0.85,
            ),
            (
                format!(
                    "cold start ≤ 1.25× a bare actix-web server's: {:.1} ms against {:.1} ms, {cold_ratio:.2}×",
                    cold.app_ms, cold.baseline_ms
                ),
                cold_ratio <= 1.25,
            ),
            (
                format!("cold start median ≤ 20 ms: {:.1} ms", cold.app_ms),
                cold.app_ms <= 20.0,
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
                    "GET /api/v1/notes/{{id}} on SQLite, authenticated, ≥ 0.80× its unauthenticated baseline's req/s: {:.3}×",
                    self.ratio("notes_sqlite").rps
                ),
                self.ratio("notes_sqlite").rps >= 0.80,
            ),
            (
                format!(
                    "GET /api/v1/notes/{{id}} on PostgreSQL, authenticated, ≥ 0.80× its unauthenticated baseline's req/s: {:.3}×",
                    self.ratio("notes_postgres").rps
                ),
                self.ratio("notes_postgres").rps >= 0.80,
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
            (
                format!(
                    "/api/v1/health with an idle job worker ≥ 0.97× the same service with --jobs false: req/s {:.3}×, CPU/req {:.3}×",
                    self.ratio("health_jobs_idle").rps,
                    self.ratio("health_jobs_idle").cpu
                ),
                self.ratio("health_jobs_idle").rps >= 0.97,
            ),
            (format!("zero errors: {errors}"), errors == 0),
        ];
        for (id, ratio) in &self.against_old {
            goals.push((
                format!(
                    "{id}: req/s ≥ 0.97× the old build's: {:.3}×, CPU/req {:.3}×",
                    ratio.rps, ratio.cpu
                ),
                ratio.rps >= 0.97,
            ));
        }
        if let Some(old_ms) = cold.old_ms {
            goals.push((
                format!(
                    "cold start ≤ 1.03× the old build's: {:.1} ms against {old_ms:.1} ms, {:.2}×",
                    cold.app_ms,
                    cold.app_ms / old_ms
                ),
                cold.app_ms <= 1.03 * old_ms,
            ));
        }
        goals
    }

    fn markdown(&self, md: &mut String, options: &Options) {
        let _ = writeln!(
            md,
            "| target | req/s (median) | × baseline | p50 | p99 | errors | server CPU µs/req | × baseline |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for ((target, s), r) in self.targets.iter().zip(&self.medians).zip(&self.ratios) {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.3} | {:.0} µs | {:.0} µs | {} | {:.2} | {:.3} |",
                target.label, s.rps, r.rps, s.p50_us, s.p99_us, s.errors, s.cpu_us_per_req, r.cpu,
            );
        }
        if !self.against_old.is_empty() {
            let _ = writeln!(
                md,
                "\n| this build against the old build | req/s × old | CPU/req × old |\n|---|---:|---:|"
            );
            for (id, ratio) in &self.against_old {
                let _ = writeln!(md, "| {id} | {:.3} | {:.3} |", ratio.rps, ratio.cpu);
            }
        }
        let cold = &self.cold_starts;
        let _ = writeln!(md);
        let _ = writeln!(md, "| measure | value |\n|---|---:|");
        let _ = writeln!(
            md,
            "| cold start, spawn to first 200 on /api/v1/health (median of {}) | {:.1} ms |",
            options.starts, cold.app_ms
        );
        let _ = writeln!(
            md,
            "| cold start of the bare baseline (--workers {}, as many as PetSage) | {:.1} ms ({:.2}×) |",
            cold.baseline_workers,
            cold.baseline_ms,
            cold.app_ms / cold.baseline_ms
        );
        if let Some(old_ms) = cold.old_ms {
            let _ = writeln!(md, "| cold start of the old build | {old_ms:.1} ms |");
        }
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
    }

    fn json(&self) -> serde_json::Value {
        let targets: Vec<_> = self
            .targets
            .iter()
            .zip(&self.medians)
            .zip(&self.ratios)
            .map(|((target, median), ratio)| {
                json!({
                    "id": target.id,
                    "target": target.label,
                    "path": target.path,
                    "baseline": target.baseline,
                    "old_of": target.old_of,
                    "median": median,
                    "ratio": ratio,
                })
            })
            .collect();
        let against_old: Vec<_> = self
            .against_old
            .iter()
            .map(|(id, ratio)| json!({"id": id, "ratio": ratio}))
            .collect();
        let cold = &self.cold_starts;
        json!({
            "targets": targets,
            "against_old": against_old,
            "cold_start_ms": cold.app_ms,
            "cold_start_baseline_ms": cold.baseline_ms,
            "cold_start_old_ms": cold.old_ms,
            "scrape_median_ms": self.scrape_median_ms,
            "scrape_max_ms": self.scrape_max_ms,
            "rss_idle_kb": self.rss_idle_kb,
            "rss_peak_kb": self.rss_peak_kb,
        })
    }
}

/// The instruction count of row `id`.
fn count<'a>(counts: &'a [Count], id: &str) -> Option<&'a Count> {
    counts.iter().find(|c| c.id == id)
}

/// A row's instructions per request against its baseline's.
fn against_baseline(counts: &[Count], row: &Count) -> f64 {
    count(counts, row.baseline).map_or(f64::NAN, |b| row.ir_per_request / b.ir_per_request)
}

/// This build's row against the older build's (`old_<id>`), when there is one.
fn against_old(counts: &[Count], row: &Count) -> Option<f64> {
    let old = counts
        .iter()
        .find(|c| c.id.strip_prefix("old_") == Some(row.id))?;
    Some(row.ir_per_request / old.ir_per_request)
}

/// The instruction goals, each with whether this run met it.
fn instruction_goals(counts: &[Count]) -> Vec<(String, bool)> {
    let mut goals = Vec::new();
    if let (Some(protected), Some(public)) = (
        count(counts, "notes_sqlite"),
        count(counts, "notes_public_sqlite"),
    ) {
        let ratio = protected.ir_per_request / public.ir_per_request;
        goals.push((
            format!(
                "an authenticated GET /api/v1/notes/{{id}} (token from the cache) ≤ 1.10× the instructions of the same GET on a public route: {ratio:.3}×"
            ),
            ratio <= 1.10,
        ));
    }
    for (id, limit) in [
        ("health", 1.00),
        ("ready", 1.00),
        ("notes_sqlite", 1.25),
        ("health_jobs_idle", 1.03),
    ] {
        if let Some(row) = count(counts, id) {
            let ratio = against_baseline(counts, row);
            goals.push((
                format!(
                    "{}: ≤ {limit:.2}× the instructions of {}: {ratio:.3}×",
                    row.label, row.baseline
                ),
                ratio <= limit,
            ));
        }
    }
    for row in counts {
        if let Some(ratio) = against_old(counts, row) {
            goals.push((
                format!(
                    "{}: ≤ 1.03× the old build's instructions: {ratio:.3}×",
                    row.label
                ),
                ratio <= 1.03,
            ));
        }
    }
    goals
}

/// Everything one run measured, and the goals it is judged by.
pub(crate) struct Report<'a> {
    pub(crate) rps: Option<RpsRun>,
    pub(crate) auth: Option<AuthRun>,
    pub(crate) jobs: Option<JobsRun>,
    pub(crate) instructions: Option<Vec<Count>>,
    pub(crate) binary_bytes: u64,
    pub(crate) options: &'a Options,
    pub(crate) machine: Machine,
    pub(crate) revision: String,
}

impl Report<'_> {
    /// The goals from the benchmark issues, each with whether this run met it.
    fn goals(&self) -> Vec<(String, bool)> {
        let mut goals = self.rps.as_ref().map(RpsRun::goals).unwrap_or_default();
        if let Some(auth) = &self.auth {
            goals.extend(auth.goals());
        }
        if let Some(jobs) = &self.jobs {
            goals.extend(jobs.goals());
        }
        if let Some(counts) = &self.instructions {
            goals.extend(instruction_goals(counts));
        }
        goals
    }

    /// The tables and goals, in Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut md = String::new();
        if let Some(rps) = &self.rps {
            rps.markdown(&mut md, self.options);
            let _ = writeln!(
                md,
                "| release binary size | {:.2} MB |",
                self.binary_bytes as f64 / 1_048_576.0
            );
            let _ = writeln!(md);
        }
        if let Some(auth) = &self.auth {
            auth.markdown(&mut md);
        }
        if let Some(jobs) = &self.jobs {
            jobs.markdown(&mut md);
        }
        if let Some(counts) = &self.instructions {
            let _ = writeln!(
                md,
                "| callgrind, one worker | instructions/request | compared with | × it | × old build |"
            );
            let _ = writeln!(md, "|---|---:|---|---:|---:|");
            for row in counts {
                let old = against_old(counts, row).map_or_else(String::new, |r| format!("{r:.3}"));
                let spread = if row.runs > 1 {
                    format!(" (lowest of {}; highest {:.0})", row.runs, row.highest)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    md,
                    "| {} | {:.0}{spread} | {} | {:.3} | {old} |",
                    row.label,
                    row.ir_per_request,
                    row.baseline,
                    against_baseline(counts, row),
                );
            }
            let _ = writeln!(md);
        }
        for (goal, met) in self.goals() {
            let _ = writeln!(md, "- [{}] {goal}", if met { "x" } else { " " });
        }
        if self.rps.is_some() {
            let _ = writeln!(
                md,
                "\n{} rounds × {} s per target, interleaved in rotating order; ratios are medians of each round's ratio to the same round's baseline (the bare actix-web server for health, bare actix-web + sqlx on the same database for notes); 64 connections; servers on core 0 (1 worker), wrk on core 1.",
                self.options.rounds, self.options.duration,
            );
        }
        if self.instructions.is_some() {
            let _ = writeln!(
                md,
                "\nInstructions: each server under valgrind --tool=callgrind with one worker; {WARM_UP} keep-alive requests, counters zeroed, {MEASURED} keep-alive requests on one connection, counters dumped; the dump's total over {MEASURED}. The database rows are counted in three runs (one in --quick) and keep the lowest: their counts vary with how sqlx's SQLite worker thread and the server's thread interleave."
            );
        }
        let _ = writeln!(
            md,
            "\nMachine: {} CPUs, load average {}. Revision {}.",
            self.machine.cpus, self.machine.loadavg, self.revision
        );
        md
    }

    /// The same figures as JSON, for tools.
    pub(crate) fn json(&self) -> String {
        let goals: Vec<_> = self
            .goals()
            .into_iter()
            .map(|(goal, met)| json!({"goal": goal, "met": met}))
            .collect();
        let instructions = self.instructions.as_ref().map(|counts| {
            counts
                .iter()
                .map(|row| {
                    json!({
                        "id": row.id,
                        "target": row.label,
                        "path": row.path,
                        "baseline": row.baseline,
                        "instructions_per_request": row.ir_per_request,
                        "highest_of_runs": row.highest,
                        "runs": row.runs,
                        "ratio": against_baseline(counts, row),
                        "ratio_to_old": against_old(counts, row),
                    })
                })
                .collect::<Vec<_>>()
        });
        let report = json!({
            "revision": self.revision,
            "machine": self.machine,
            "rounds": self.options.rounds,
            "seconds_per_round": self.options.duration,
            "rps": self.rps.as_ref().map(RpsRun::json),
            "auth": self.auth,
            "jobs": self.jobs,
            "instructions": instructions,
            "binary_bytes": self.binary_bytes,
            "goals": goals,
        });
        // serde_json writes a NaN (a figure wrk did not print) as null.
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    }
}
