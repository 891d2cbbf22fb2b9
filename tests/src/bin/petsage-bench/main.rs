//! `cargo xtask bench`: PetSage's health and database endpoints under wrk,
//! side by side with bare actix-web baselines, in interleaved rounds on
//! pinned cores. Lives beside the test harness whose processes, wrk driver
//! and raw HTTP probe it uses.
//!
//! Servers run on core 0 (`taskset -c 0`, one worker each), wrk on core 1.
//! Beside requests/s it reports each server's CPU time per request, read from
//! `/proc/PID/stat`, which stays steady on a noisy machine when throughput
//! does not, and each server's instructions per request under callgrind,
//! which repeat from run to run. With `--old DIR`, an older build's rows run
//! beside this build's. Writes `target/bench/report.md` and `report.json`.
//!
//! Run from the workspace root, from `target/release/` (it starts the
//! release binaries beside it): `cargo xtask bench` builds and runs it.

mod growth;
mod instructions;
mod jobs;
mod options;
mod process;
mod report;
mod stats;
mod targets;
mod verify_cost;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use instructions::{Count, Row};
use options::{Options, USAGE};
use process::{BenchDatabase, Pinned};
use report::{ColdStarts, Report, RpsRun};
use stats::{Sample, median, median_sample, paired_ratios};
use targets::{NOTE, PUBLIC_NOTE, target_index, targets};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
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

/// One build's servers.
struct Build {
    app: PathBuf,
    test_app: PathBuf,
}

impl Build {
    /// The build whose binaries are in `dir`; fails naming a missing one.
    fn in_dir(dir: &Path) -> Result<Self, String> {
        let build = Self {
            app: dir.join("petsage-app"),
            test_app: dir.join("petsage-test-app"),
        };
        for binary in [&build.app, &build.test_app] {
            if !binary.is_file() {
                return Err(format!(
                    "no {} (a release build's folder?)",
                    binary.display()
                ));
            }
        }
        Ok(build)
    }
}

/// The three checks the readiness rows register, one taking 200 ms.
const CHECKS: &str = "db:critical,queue:critical:slow,cache:non-critical";

/// An empty SQLite folder under `target/bench`, and its database URL.
fn fresh_sqlite(target: &Path, name: &str) -> (String, String) {
    let dir = target.join("bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let dir = dir.display().to_string();
    let url = format!("sqlite://{dir}/petsage.db?mode=rwc");
    (dir, url)
}

fn run(options: &Options) -> Result<(), String> {
    let release = release_dir()?;
    let target = release.parent().ok_or("no target folder")?.to_path_buf();
    let new = Build::in_dir(&release)?;
    let baseline = release.join("petsage-baseline");
    let old = options.old.as_deref().map(Build::in_dir).transpose()?;

    let rps = if options.rps {
        Some(rps_run(options, &target, &new, old.as_ref(), &baseline)?)
    } else {
        None
    };
    let auth = if options.rps {
        Some(auth_run(options, &target, &new)?)
    } else {
        None
    };
    // --quick keeps CI short: fewer jobs and latency samples.
    let jobs = if options.jobs {
        let (count, samples) = if options.quick {
            (2_000, 30)
        } else {
            (20_000, 200)
        };
        Some(jobs::measure(&target, &new, &baseline, count, samples)?)
    } else {
        None
    };
    let instructions = if options.instructions {
        if let Some(missing) = instructions::tools_missing() {
            return Err(missing);
        }
        // The database rows' counts vary from run to run: three runs each, but one in --quick.
        let db_runs = if options.quick { 1 } else { 3 };
        Some(instruction_counts(
            &target,
            &new,
            old.as_ref(),
            &baseline,
            db_runs,
        )?)
    } else {
        None
    };

    let report = Report {
        rps,
        auth,
        jobs,
        instructions,
        binary_bytes: std::fs::metadata(&new.app).map(|m| m.len()).unwrap_or(0),
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

/// `settings`, then where the server keeps its data: `data_dir` (SQLite's
/// file, the dev key), and PostgreSQL when `database_url` is given.
fn with_store<'a>(
    settings: &[(&'static str, &'a str)],
    data_dir: &'a str,
    database_url: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut env = settings.to_vec();
    env.push(("PETSAGE_DATA_DIR", data_dir));
    if let Some(url) = database_url {
        env.push(("PETSAGE_DATABASE_URL", url));
    }
    env
}

/// The test app's settings with only its chores feature (jobs, no
/// schedule): SQLite in `data_dir`, or PostgreSQL when `database_url` is given.
fn jobs_env<'a>(data_dir: &'a str, database_url: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    let settings = [
        ("PETSAGE_TEST_NOTES", "off"),
        ("PETSAGE_TEST_FAULTS", "off"),
        ("PETSAGE_TEST_CHORES", "on"),
        ("PETSAGE_TEST_CHORES_TICK", "off"),
    ];
    with_store(&settings, data_dir, database_url)
}

/// The notes server's settings: dev-mode identity with its key in
/// `data_dir` (where SQLite keeps its file too), the public route beside the
/// protected one, and PostgreSQL when `database_url` is given.
fn notes_env<'a>(data_dir: &'a str, database_url: Option<&'a str>) -> Vec<(&'static str, &'a str)> {
    let settings = [
        ("PETSAGE_TEST_FAULTS", "off"),
        ("PETSAGE_TEST_PUBLIC_NOTES", "on"),
        ("PETSAGE_AUTH_MODE", "dev"),
    ];
    with_store(&settings, data_dir, database_url)
}

/// A bearer for the bench's caller (the public route's owner) with the notes
/// scopes, signed with the dev key a notes server made in `data_dir`, valid
/// for a day: what a mobile app would send.
fn bench_bearer(data_dir: &str) -> Result<String, String> {
    let issuer = petsage_identity::dev::DevIssuer::load_or_create(Path::new(data_dir))?;
    let scopes = ["notes:read".to_owned(), "notes:write".to_owned()];
    let token = issuer.token(
        petsage_tests::public_notes::OWNER,
        &scopes,
        petsage_identity::dev::DEV_AUDIENCE,
        std::time::Duration::from_secs(24 * 3600),
    )?;
    Ok(format!("Bearer {token}"))
}

/// The notes server of `build` (see [`notes_env`]), acting as the bench's
/// caller, with the bench note created.
fn notes_server(
    build: &Build,
    data_dir: &str,
    database_url: Option<&str>,
) -> Result<Pinned, String> {
    let mut server = Pinned::start(&build.test_app, &[], &notes_env(data_dir, database_url))?;
    server.authorize(bench_bearer(data_dir)?);
    server.seed_note()?;
    Ok(server)
}

/// The cost of an uncached verification, and of list pages as the table grows.
fn auth_run(options: &Options, target: &Path, new: &Build) -> Result<report::AuthRun, String> {
    eprintln!("bench: uncached token verifications");
    let verify = verify_cost::measure()?;
    let start = |dir: &str, url: Option<&str>| notes_server(new, dir, url);
    // --quick keeps CI short: a tenth of the rows, two short rounds.
    let (big_rows, rounds) = if options.quick {
        (100_000, 2)
    } else {
        (1_000_000, 3)
    };
    let growth = growth::measure(target, &start, big_rows, rounds, options.duration)?;
    Ok(report::AuthRun { verify, growth })
}

/// The wrk rounds over every target, the scrapes under load and the cold starts.
fn rps_run(
    options: &Options,
    target: &Path,
    new: &Build,
    old: Option<&Build>,
    baseline: &Path,
) -> Result<RpsRun, String> {
    let targets = targets(old.is_some());
    // The database rows read one note through the generated feature (the
    // test app's `notes`) and through bare actix-web + sqlx, on the same file
    // or database, with the same query.
    let (sqlite_dir, sqlite_url) = fresh_sqlite(target, "sqlite");
    let postgres = BenchDatabase::create("")?;
    let checks = [
        ("PETSAGE_TEST_NOTES", "off"),
        ("PETSAGE_TEST_CHECKS", CHECKS),
    ];

    // The notes servers first: they create the schema their baselines read.
    let (postgres_dir, _) = fresh_sqlite(target, "postgres-data");
    let notes_sqlite = notes_server(new, &sqlite_dir, None)?;
    let notes_postgres = notes_server(new, &postgres_dir, Some(&postgres.url))?;
    let (jobs_off_dir, _) = fresh_sqlite(target, "jobs-off");
    let (jobs_idle_dir, _) = fresh_sqlite(target, "jobs-idle");
    // Indexed by `Target::server`.
    let mut servers = vec![
        Pinned::start(baseline, &[], &[])?,
        Pinned::start(&new.app, &[], &[])?,
        Pinned::start(&new.test_app, &[], &checks)?,
        Pinned::start(baseline, &["--database-url", &sqlite_url], &[])?,
        notes_sqlite,
        Pinned::start(baseline, &["--database-url", &postgres.url], &[])?,
        notes_postgres,
        Pinned::start(&new.app, &[], &[("PETSAGE_METRICS", "false")])?,
        Pinned::start(baseline, &["--same-headers"], &[])?,
        Pinned::start(
            &new.test_app,
            &["--jobs", "false"],
            &jobs_env(&jobs_off_dir, None),
        )?,
        Pinned::start(&new.test_app, &[], &jobs_env(&jobs_idle_dir, None))?,
    ];
    // The older build reads its own note, on a file and a database of its own.
    let old_postgres = match old {
        Some(old) => {
            let (old_sqlite_dir, _) = fresh_sqlite(target, "sqlite-old");
            let (old_postgres_dir, _) = fresh_sqlite(target, "postgres-data-old");
            let old_postgres = BenchDatabase::create("_old")?;
            servers.extend([
                Pinned::start(&old.app, &[], &[])?,
                Pinned::start(&old.test_app, &[], &checks)?,
                notes_server(old, &old_sqlite_dir, None)?,
                notes_server(old, &old_postgres_dir, Some(&old_postgres.url))?,
            ]);
            Some(old_postgres)
        }
        None => None,
    };
    let rss_idle_kb = servers[1].status_kb("VmRSS")?;

    eprintln!("bench: warm-up");
    for target in &targets {
        servers[target.server].load(target.path, 1)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for round in 1..=options.rounds {
        // Rotate the order each round, so no target always follows the same one.
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let target = targets[i];
            eprintln!("bench: round {round}/{} {}", options.rounds, target.label);
            samples[i].push(servers[target.server].load(target.path, options.duration)?);
        }
    }
    let rss_peak_kb = servers[1].status_kb("VmHWM")?;
    eprintln!("bench: scrapes of /metrics under 256 connections of load");
    let scrapes_ms = servers[1].scrapes_under_load(options.duration.max(3))?;
    drop(servers);
    drop(postgres);
    drop(old_postgres);

    let cold_starts = cold_starts(options.starts, new, old, baseline)?;
    let sample_of = |id: &str| &samples[target_index(&targets, id)];
    Ok(RpsRun {
        medians: samples.iter().map(|s| median_sample(s)).collect(),
        ratios: targets
            .iter()
            .map(|target| paired_ratios(sample_of(target.id), sample_of(target.baseline)))
            .collect(),
        against_old: targets
            .iter()
            .filter_map(|target| {
                let new = target.old_of?;
                Some((new, paired_ratios(sample_of(new), sample_of(target.id))))
            })
            .collect(),
        targets,
        cold_starts,
        scrape_median_ms: median(&mut scrapes_ms.clone()),
        scrape_max_ms: scrapes_ms.iter().copied().fold(0.0, f64::max),
        rss_idle_kb,
        rss_peak_kb,
    })
}

/// Cold starts of PetSage, of the bare baseline with as many workers as
/// PetSage starts by default (one per CPU), and of the older build,
/// interleaved so a drift of the machine touches each alike.
fn cold_starts(
    starts: usize,
    new: &Build,
    old: Option<&Build>,
    baseline: &Path,
) -> Result<ColdStarts, String> {
    eprintln!("bench: {starts} cold starts of each server");
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .to_string();
    let (mut app, mut bare, mut previous) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..starts {
        app.push(process::cold_start(&new.app, &[])?);
        bare.push(process::cold_start(baseline, &["--workers", &workers])?);
        if let Some(old) = old {
            previous.push(process::cold_start(&old.app, &[])?);
        }
    }
    Ok(ColdStarts {
        app_ms: median(&mut app),
        baseline_ms: median(&mut bare),
        old_ms: old.map(|_| median(&mut previous)),
        baseline_workers: workers,
    })
}

/// Every instruction row: both baselines, health, ready with three checks,
/// and a note read on SQLite with its baseline; the older build's PetSage
/// rows beside them.
fn instruction_counts(
    target: &Path,
    new: &Build,
    old: Option<&Build>,
    baseline: &Path,
    db_runs: usize,
) -> Result<Vec<Count>, String> {
    let dumps = target.join("bench/callgrind");
    let _ = std::fs::remove_dir_all(&dumps);
    std::fs::create_dir_all(&dumps).map_err(|e| format!("{}: {e}", dumps.display()))?;
    let (sqlite_dir, sqlite_url) = fresh_sqlite(target, "sqlite-instructions");
    // Each build's note is created without valgrind, before the counted runs.
    drop(notes_server(new, &sqlite_dir, None)?);
    let bearer = bench_bearer(&sqlite_dir)?;
    let row = |id,
               label,
               baseline_id,
               path,
               binary: &Path,
               args: &[&str],
               env: &[(&'static str, &str)]| Row {
        id,
        label,
        baseline: baseline_id,
        path,
        binary: binary.to_path_buf(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        authorization: None,
        runs: if path == NOTE || path == PUBLIC_NOTE {
            db_runs
        } else {
            1
        },
    };
    let sqlite_env = notes_env(&sqlite_dir, None);
    let checks: [(&'static str, &str); 2] = [
        ("PETSAGE_TEST_NOTES", "off"),
        ("PETSAGE_TEST_CHECKS", CHECKS),
    ];
    let health = "/api/v1/health";
    let ready = "/api/v1/health/ready";
    let (jobs_off_dir, _) = fresh_sqlite(target, "jobs-off-instructions");
    let (jobs_idle_dir, _) = fresh_sqlite(target, "jobs-idle-instructions");
    let jobs_off_env = jobs_env(&jobs_off_dir, None);
    let jobs_idle_env = jobs_env(&jobs_idle_dir, None);
    let mut rows = vec![
        row(
            "baseline",
            "baseline (bare actix-web)",
            "baseline",
            health,
            baseline,
            &["--workers", "1"],
            &[],
        ),
        row(
            "same_headers",
            "baseline sending a health poll's headers (--same-headers)",
            "baseline",
            health,
            baseline,
            &["--workers", "1", "--same-headers"],
            &[],
        ),
        row(
            "health",
            "/api/v1/health",
            "same_headers",
            health,
            &new.app,
            &[],
            &[],
        ),
        row(
            "ready",
            "/api/v1/health/ready (3 checks)",
            "same_headers",
            ready,
            &new.test_app,
            &[],
            &checks,
        ),
        row(
            "sqlite_baseline",
            "baseline: actix-web + sqlx, same query, SQLite",
            "sqlite_baseline",
            NOTE,
            baseline,
            &["--workers", "1", "--database-url", &sqlite_url],
            &[],
        ),
        row(
            "health_jobs_off",
            "/api/v1/health, a feature with jobs, --jobs false",
            "health_jobs_off",
            health,
            &new.test_app,
            &["--jobs", "false"],
            &jobs_off_env,
        ),
        row(
            "health_jobs_idle",
            "/api/v1/health, the same with its job worker on and idle",
            "health_jobs_off",
            health,
            &new.test_app,
            &[],
            &jobs_idle_env,
        ),
        Row {
            authorization: Some(bearer.clone()),
            ..row(
                "notes_sqlite",
                "GET /api/v1/notes/{id} (generated feature, token verified from the cache), SQLite",
                "sqlite_baseline",
                NOTE,
                &new.test_app,
                &[],
                &sqlite_env,
            )
        },
        Row {
            authorization: Some(bearer.clone()),
            ..row(
                "notes_public_sqlite",
                "the same GET on a route declared public, SQLite",
                "sqlite_baseline",
                PUBLIC_NOTE,
                &new.test_app,
                &[],
                &sqlite_env,
            )
        },
    ];
    if let Some(old) = old {
        let (old_sqlite_dir, _) = fresh_sqlite(target, "sqlite-instructions-old");
        drop(notes_server(old, &old_sqlite_dir, None)?);
        rows.extend([
            row(
                "old_health",
                "old build: /api/v1/health",
                "same_headers",
                health,
                &old.app,
                &[],
                &[],
            ),
            row(
                "old_ready",
                "old build: /api/v1/health/ready (3 checks)",
                "same_headers",
                ready,
                &old.test_app,
                &[],
                &checks,
            ),
            Row {
                authorization: Some(bench_bearer(&old_sqlite_dir)?),
                ..row(
                    "old_notes_sqlite",
                    "old build: GET /api/v1/notes/{id}, SQLite",
                    "sqlite_baseline",
                    NOTE,
                    &old.test_app,
                    &[],
                    &notes_env(&old_sqlite_dir, None),
                )
            },
        ]);
    }
    rows.iter()
        .map(|row| {
            eprintln!("bench: instructions of {} under callgrind", row.label);
            row.count(&dumps)
        })
        .collect()
}
