//! `cargo xtask bench`: PetSage's health and database endpoints under wrk,
//! side by side with bare actix-web baselines, in interleaved rounds on
//! pinned cores. Lives beside the test harness whose processes, wrk driver
//! and raw HTTP probe it uses.
//!
//! Servers run on core 0 (`taskset -c 0`, one worker each), wrk on core 1.
//! Beside requests/s it reports each server's CPU time per request, read from
//! `/proc/PID/stat`, which stays steady on a noisy machine when throughput
//! does not. Writes `target/bench/report.md` and `report.json`.
//!
//! Run from the workspace root, from `target/release/` (it starts the
//! release binaries beside it): `cargo xtask bench` builds and runs it.

mod options;
mod process;
mod report;
mod stats;
mod targets;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use options::Options;
use process::{BenchDatabase, Pinned};
use report::Report;
use stats::{Sample, median, median_sample, paired_ratios};
use targets::{TARGETS, target_index};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match Options::parse(&args).and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The release binaries the bench starts: the ones beside it.
fn release_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "the bench binary has no folder".to_owned())
}

fn run(options: &Options) -> Result<(), String> {
    let release = release_dir()?;
    let target = release.parent().ok_or("no target folder")?.to_path_buf();
    let app = release.join("petsage-app");
    let test_app = release.join("petsage-test-app");
    let baseline = release.join("petsage-baseline");

    // The database rows read one note through the generated feature (the
    // test app's `notes`) and through bare actix-web + sqlx, on the same file
    // or database, with the same query.
    let sqlite_dir = target.join("bench/sqlite");
    let _ = std::fs::remove_dir_all(&sqlite_dir);
    let sqlite_dir = sqlite_dir.display().to_string();
    let sqlite_url = format!("sqlite://{sqlite_dir}/petsage.db?mode=rwc");
    let postgres = BenchDatabase::create()?;
    let notes_sqlite = Pinned::start(
        &test_app,
        &[],
        &[
            ("PETSAGE_TEST_FAULTS", "off"),
            ("PETSAGE_DATA_DIR", &sqlite_dir),
        ],
    )?;
    notes_sqlite.seed_note()?;
    let notes_postgres = Pinned::start(
        &test_app,
        &[],
        &[
            ("PETSAGE_TEST_FAULTS", "off"),
            ("PETSAGE_DATABASE_URL", &postgres.url),
        ],
    )?;
    notes_postgres.seed_note()?;

    // Indexed by `Target::server`.
    let servers = [
        Pinned::start(&baseline, &[], &[])?,
        Pinned::start(&app, &[], &[])?,
        Pinned::start(
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
        Pinned::start(&baseline, &["--database-url", &sqlite_url], &[])?,
        notes_sqlite,
        Pinned::start(&baseline, &["--database-url", &postgres.url], &[])?,
        notes_postgres,
        Pinned::start(&app, &[], &[("PETSAGE_METRICS", "false")])?,
    ];
    let rss_idle_kb = servers[1].status_kb("VmRSS")?;

    eprintln!("bench: warm-up");
    for target in TARGETS {
        servers[target.server].load(target.path, 1)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); TARGETS.len()];
    for round in 1..=options.rounds {
        // Rotate the order each round, so no target always follows the same one.
        for k in 0..TARGETS.len() {
            let i = (k + round) % TARGETS.len();
            let target = &TARGETS[i];
            eprintln!("bench: round {round}/{} {}", options.rounds, target.label);
            samples[i].push(servers[target.server].load(target.path, options.duration)?);
        }
    }
    let rss_peak_kb = servers[1].status_kb("VmHWM")?;
    eprintln!("bench: scrapes of /metrics under 256 connections of load");
    let scrapes_ms = servers[1].scrapes_under_load(options.duration.max(3))?;
    drop(servers);
    drop(postgres);

    eprintln!("bench: {} cold starts", options.starts);
    let mut starts_ms = Vec::new();
    for _ in 0..options.starts {
        starts_ms.push(process::cold_start(&app)?);
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
        machine: report::Machine::read(),
        revision: report::git_revision(),
    };
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let markdown = report.markdown();
    std::fs::write(dir.join("report.md"), &markdown).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("report.json"), report.json()).map_err(|e| e.to_string())?;
    println!("{markdown}");
    eprintln!("bench: wrote {}/report.md and report.json", dir.display());
    Ok(())
}
