//! Background jobs in the bench, on SQLite and PostgreSQL: no-op jobs per
//! second through PetSage's worker against the same claim-and-complete
//! statements run straight on sqlx (`petsage-baseline --jobs`), both on
//! core 0 with four at a time; and how long a job enqueued on an idle queue
//! waits to start (the test app's chores record when each was due and when
//! it ran).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use petsage_db::testing::{admin_sql, query_i64};
use serde::Serialize;
use sqlx::Connection as _;

use crate::Build;
use crate::process::{BenchDatabase, Pinned};
use crate::stats::percentiles;

/// One database's figures.
#[derive(Serialize)]
pub(crate) struct JobsRow {
    pub(crate) label: &'static str,
    /// No-op jobs run through PetSage's worker.
    pub(crate) jobs: i64,
    pub(crate) app_per_second: f64,
    pub(crate) baseline_per_second: f64,
    /// Start latency on an idle queue: enqueue (commit) to the handler's start, ms.
    pub(crate) latency_samples: usize,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
}

/// Both databases' figures.
#[derive(Serialize)]
pub(crate) struct JobsRun {
    pub(crate) rows: Vec<JobsRow>,
}

impl JobsRun {
    /// ≥ 0.80× the baseline's jobs/s, and p99 start latency ≤ 100 ms, on each database.
    pub(crate) fn goals(&self) -> Vec<(String, bool)> {
        self.rows
            .iter()
            .flat_map(|row| {
                let ratio = row.app_per_second / row.baseline_per_second;
                [
                    (
                        format!(
                            "jobs on {}: ≥ 0.80× the sqlx loop's jobs/s: {:.0} against {:.0}, {ratio:.3}×",
                            row.label, row.app_per_second, row.baseline_per_second
                        ),
                        ratio >= 0.80,
                    ),
                    (
                        format!(
                            "jobs on {}: p99 start latency on an idle queue ≤ 100 ms: {:.0} ms (p50 {:.0} ms, {} jobs)",
                            row.label, row.latency_p99_ms, row.latency_p50_ms, row.latency_samples
                        ),
                        row.latency_p99_ms <= 100.0,
                    ),
                ]
            })
            .collect()
    }

    pub(crate) fn markdown(&self, md: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            md,
            "| background jobs (no-ops, 4 at a time, core 0) | PetSage jobs/s | sqlx loop jobs/s | × | start latency, idle queue: p50 / p99 |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(
                md,
                "| {} ({} jobs; {} latency samples) | {:.0} | {:.0} | {:.3} | {:.0} / {:.0} ms |",
                row.label,
                row.jobs,
                row.latency_samples,
                row.app_per_second,
                row.baseline_per_second,
                row.app_per_second / row.baseline_per_second,
                row.latency_p50_ms,
                row.latency_p99_ms
            );
        }
        let _ = writeln!(md);
    }
}

/// Measures both databases: `jobs` no-op jobs and `samples` latency samples each.
pub(crate) fn measure(
    target: &Path,
    new: &Build,
    baseline: &Path,
    jobs: i64,
    samples: usize,
) -> Result<JobsRun, String> {
    let (sqlite_dir, sqlite_url) = crate::fresh_sqlite(target, "jobs-sqlite");
    let sqlite = measure_one(
        "SQLite",
        new,
        baseline,
        &sqlite_dir,
        None,
        &sqlite_url,
        jobs,
        samples,
    )?;
    let postgres_db = BenchDatabase::create("_jobs")?;
    let (postgres_dir, _) = crate::fresh_sqlite(target, "jobs-postgres-data");
    let postgres = measure_one(
        "PostgreSQL",
        new,
        baseline,
        &postgres_dir,
        Some(&postgres_db.url),
        &postgres_db.url,
        jobs,
        samples,
    )?;
    Ok(JobsRun {
        rows: vec![sqlite, postgres],
    })
}

#[allow(clippy::too_many_arguments)]
fn measure_one(
    label: &'static str,
    new: &Build,
    baseline: &Path,
    data_dir: &str,
    database_url: Option<&str>,
    url: &str,
    jobs: i64,
    samples: usize,
) -> Result<JobsRow, String> {
    let env = crate::jobs_env(data_dir, database_url);
    let server = Pinned::start(&new.test_app, &[], &env)?;
    eprintln!("bench: jobs on {label}: start latency, {samples} jobs on an idle queue");
    let latencies = latencies(&server, url, samples)?;
    eprintln!("bench: jobs on {label}: {jobs} no-op jobs");
    let app_per_second = throughput(&server, url, jobs)?;
    drop(server);
    // The baseline starts on a clean table too: PostgreSQL's index would
    // otherwise still hold the finished jobs' dead entries ahead of its own.
    admin_sql(url, "DELETE FROM petsage_jobs")?;
    admin_sql(url, "VACUUM")?;
    eprintln!("bench: jobs on {label}: {jobs} no-op jobs straight on sqlx");
    let baseline_per_second = baseline_loop(baseline, url, jobs)?;
    let latency_samples = latencies.len();
    let (p50, p99) = percentiles(latencies);
    Ok(JobsRow {
        label,
        jobs,
        app_per_second,
        baseline_per_second,
        latency_samples,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
    })
}

/// One connection the bench watches the queue through, on a runtime of its
/// own, so that polling while it measures adds little load.
struct Watch {
    runtime: actix_web::rt::Runtime,
    conn: sqlx::AnyConnection,
}

impl Watch {
    fn open(url: &str) -> Result<Self, String> {
        sqlx::any::install_default_drivers();
        let runtime = actix_web::rt::Runtime::new().map_err(|e| e.to_string())?;
        let conn = runtime
            .block_on(sqlx::AnyConnection::connect(url))
            .map_err(|e| format!("{url}: {e}"))?;
        Ok(Self { runtime, conn })
    }

    /// The first column of each row of `sql`.
    fn column(&mut self, sql: &'static str) -> Result<Vec<i64>, String> {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_all(&mut self.conn))
            .map_err(|e| e.to_string())
    }

    /// The one value `sql` selects.
    fn value(&mut self, sql: &'static str) -> Result<i64, String> {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_one(&mut self.conn))
            .map_err(|e| e.to_string())
    }

    /// Waits until `sql` counts at least `n`, polling every `every`, for at most `limit`.
    fn wait_for(
        &mut self,
        sql: &'static str,
        n: i64,
        every: Duration,
        limit: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while self.value(sql)? < n {
            if Instant::now() > deadline {
                return Err(format!("{sql}: not {n} within {limit:?}"));
            }
            std::thread::sleep(every);
        }
        Ok(())
    }

    fn close(self) {
        let _ = self.runtime.block_on(self.conn.close());
    }
}

/// Enqueues one chore at a time on an idle queue, waiting for each to run
/// (and a little more, so the worker is asleep again); each one's wait
/// from due (its commit) to start, in ms.
fn latencies(server: &Pinned, url: &str, samples: usize) -> Result<Vec<i64>, String> {
    let mut watch = Watch::open(url)?;
    for i in 1..=samples {
        let body = r#"{"count":1,"chore":{"label":"latency"}}"#;
        server.post_json("/api/v1/test/chores", body)?;
        watch
            .wait_for(
                "SELECT count(*) FROM chore_runs WHERE label = 'latency'",
                i64::try_from(i).unwrap_or(i64::MAX),
                Duration::from_millis(2),
                Duration::from_secs(10),
            )
            .map_err(|e| format!("latency job {i} did not run: {e}"))?;
        // Between 20 and 50 ms idle, varied so no sample lines up with the poll.
        std::thread::sleep(Duration::from_millis(20 + (i as u64 * 7) % 31));
    }
    let waits = watch.column("SELECT ran_at - due_at FROM chore_runs WHERE label = 'latency'")?;
    watch.close();
    Ok(waits)
}

/// Enqueues `jobs` no-ops in one transaction and waits for all to complete:
/// jobs per second from the first completion to the last.
fn throughput(server: &Pinned, url: &str, jobs: i64) -> Result<f64, String> {
    let mut watch = Watch::open(url)?;
    server.post_json(
        "/api/v1/test/chores/noop",
        &format!(r#"{{"count":{jobs}}}"#),
    )?;
    watch
        .wait_for(
            "SELECT count(*) FROM petsage_jobs WHERE kind = 'test.noop' AND state = 'completed'",
            jobs,
            Duration::from_millis(50),
            Duration::from_secs(600),
        )
        .map_err(|e| format!("{jobs} no-op jobs did not complete: {e}"))?;
    watch.close();
    completion_rate(url, "test.noop", jobs)
}

/// Jobs per second of `kind` from its first completion to its last (the
/// same yardstick for PetSage and the baseline).
fn completion_rate(url: &str, kind: &str, jobs: i64) -> Result<f64, String> {
    let span = query_i64(
        url,
        &format!(
            "SELECT MAX(finished_at) - MIN(finished_at) FROM petsage_jobs WHERE kind = '{kind}'"
        ),
    )?;
    #[allow(clippy::cast_precision_loss)]
    Ok((jobs - 1) as f64 * 1000.0 / span.max(1) as f64)
}

/// `petsage-baseline --jobs` on core 0 against the same table: its jobs per second.
fn baseline_loop(baseline: &Path, url: &str, jobs: i64) -> Result<f64, String> {
    let output = Command::new("taskset")
        .args(["-c", "0"])
        .arg(baseline)
        .args(["--database-url", url, "--jobs", &jobs.to_string()])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", baseline.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "petsage-baseline --jobs failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let _: f64 = stdout
        .trim()
        .parse()
        .map_err(|_| format!("petsage-baseline --jobs printed {stdout:?}"))?;
    completion_rate(url, "baseline.noop", jobs)
}
