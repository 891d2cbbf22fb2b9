//! The database platform over real HTTP against the real binary: start steps
//! and readiness, start failures, migrations, a database outage under load,
//! `kill -9` during writes on SQLite and PostgreSQL, and the health-only
//! binary that opens nothing. PostgreSQL tests need a server (the machine's,
//! or `.ci/run`'s) and Debian's `postgresql` binaries: `cargo xtask ci` runs them.

use std::thread;
use std::time::{Duration, Instant};

use petsage_db::testing::{TestDatabase, admin_sql, query_i64, refuse_at_commit};
use petsage_tests::load::{WriteLoad, missing};
use petsage_tests::pg::PgCluster;
use petsage_tests::{NOTES_SCOPES, READY_LINE, Scratch, Server, StatusCode, run_to_exit};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

/// The lines the app itself printed to stderr (not its log lines).
fn app_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("petsage-app:"))
        .collect()
}

#[test]
fn readiness_says_starting_until_the_start_steps_are_done() {
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_FAULTS_START_DELAY", "1500ms")
        .no_wait_ready()
        .start();
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert_eq!(ready.json()["phase"], "starting");
    assert_eq!(
        server.get("/api/v1/health").status,
        StatusCode::SERVICE_UNAVAILABLE,
        "no balancer sends a starting instance traffic"
    );
    assert_eq!(server.get("/api/v1/health/live").status, StatusCode::OK);
    server.wait_for_log(READY_LINE, Duration::from_secs(10));
    let ready = server.get("/api/v1/health/ready");
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.json()["phase"], "serving");
}

#[test]
fn a_failing_start_step_exits_1_with_one_line_naming_the_feature() {
    let data = Scratch::new("start-error");
    let (code, _, stderr) = run_to_exit(
        APP,
        &["--bind", "127.0.0.1:0"],
        &[
            ("PETSAGE_TEST_FAULTS_START_ERROR", "the cache is cold"),
            ("PETSAGE_DATA_DIR", data.path().to_str().expect("utf-8")),
            ("RUST_LOG", "warn"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        app_lines(&stderr),
        ["petsage-app: cannot start: feature test-faults: warm up: the cache is cold"],
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unreachable_database_at_start_exits_1_with_one_line() {
    let port = petsage_tests::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/petsage");
    let (code, _, stderr) = run_to_exit(
        APP,
        &["--bind", "127.0.0.1:0"],
        &[("PETSAGE_DATABASE_URL", &url), ("RUST_LOG", "warn")],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let lines = app_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("petsage-app: cannot start: database: connect: cannot reach"),
        "{stderr}"
    );
}

#[test]
fn a_bad_database_url_exits_2_naming_the_variable() {
    let (code, _, stderr) = run_to_exit(APP, &[], &[("PETSAGE_DATABASE_URL", "mysql://db")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "petsage-app: invalid value \"mysql://db\" for --database-url / PETSAGE_DATABASE_URL: expected postgres://USER@HOST:PORT/DB or sqlite://PATH"
    );
}

#[test]
fn the_health_only_service_creates_no_file_and_opens_no_database() {
    let cwd = Scratch::new("health-only");
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_NOTES", "off")
        .env("PETSAGE_TEST_FAULTS", "off")
        .env_remove("PETSAGE_DATA_DIR")
        .current_dir(cwd.path())
        .start();
    for path in [
        "/api/v1/health",
        "/api/v1/health/ready",
        "/api-docs/openapi.json",
    ] {
        assert_eq!(server.get(path).status, StatusCode::OK, "{path}");
    }
    let ready = server.get("/api/v1/health/ready").json();
    assert_eq!(ready["checks"], serde_json::json!([]), "{ready}");
    let created: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("readable")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(created.is_empty(), "files appeared: {created:?}");
    let log = server.finish();
    assert!(!log.contains("database"), "{log}");
}

#[test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
fn a_failing_migration_stops_the_start_and_changes_nothing() {
    let db = TestDatabase::postgres();
    // A table of the same name, made by someone else: the feature's migration cannot create its own.
    admin_sql(db.url(), "CREATE TABLE notes (x integer)").expect("table");
    let (code, _, stderr) = run_to_exit(
        APP,
        &["--bind", "127.0.0.1:0"],
        &[("PETSAGE_DATABASE_URL", db.url()), ("RUST_LOG", "warn")],
    );
    assert_eq!(code, Some(1), "{stderr}");
    let lines = app_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("petsage-app: cannot start: feature notes: apply migrations:"),
        "{stderr}"
    );
    let applied = query_i64(
        db.url(),
        "SELECT count(*) FROM _petsage_migrations_notes WHERE success",
    );
    assert_eq!(applied, Ok(0));
    let columns = query_i64(
        db.url(),
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes'",
    );
    assert_eq!(columns, Ok(1), "the failed migration left a change behind");
}

#[test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
fn migrate_false_refuses_a_stale_schema_and_migrate_applies_it() {
    let db = TestDatabase::postgres();
    let env = [("PETSAGE_DATABASE_URL", db.url()), ("RUST_LOG", "warn")];
    let mut stale = env.to_vec();
    stale.push(("PETSAGE_MIGRATE", "false"));
    let (code, _, stderr) = run_to_exit(APP, &["--bind", "127.0.0.1:0"], &stale);
    assert_eq!(code, Some(1), "{stderr}");
    let lines = app_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("feature notes: check migrations: the schema is not current")
            && lines[0].contains("petsage-app migrate"),
        "{stderr}"
    );

    let (code, _, stderr) = run_to_exit(APP, &["migrate"], &env);
    assert_eq!(code, Some(0), "{stderr}");

    let server = Server::builder(APP)
        .env("PETSAGE_DATABASE_URL", db.url())
        .env("PETSAGE_MIGRATE", "false")
        .start();
    server.act_as("alice", NOTES_SCOPES);
    let created = server.post_json(
        "/api/v1/notes",
        &serde_json::json!({"name": "after migrate"}),
    );
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}

#[test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
fn two_instances_starting_at_once_apply_each_migration_once() {
    let db = TestDatabase::postgres();
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let url = db.url().to_owned();
            thread::spawn(move || {
                Server::builder(APP)
                    .env("PETSAGE_DATABASE_URL", &url)
                    .start()
            })
        })
        .collect();
    let servers: Vec<Server> = starts
        .into_iter()
        .map(|s| s.join().expect("starts"))
        .collect();
    for server in &servers {
        assert_eq!(server.get("/api/v1/health/ready").status, StatusCode::OK);
    }
    let rows = query_i64(db.url(), "SELECT count(*) FROM _petsage_migrations_notes");
    assert_eq!(rows, Ok(1), "one migration, recorded once");
}

/// A `503` problem that asks the client to retry after a second.
fn assert_retry_later(reply: &petsage_tests::Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{reply:?}"
    );
    assert_eq!(reply.json()["status"], 503, "{}", reply.body);
}

/// Polls `path` until it answers `want`; how long that took.
#[test]
#[ignore = "needs PostgreSQL's server binaries: run by cargo xtask ci"]
fn a_database_outage_under_load_is_503_at_once_and_recovers_by_itself() {
    let _serial = petsage_tests::one_at_a_time();
    let cluster = PgCluster::start();
    let acquire = Duration::from_secs(2);
    let server = Server::builder(APP)
        .env("PETSAGE_DATABASE_URL", &cluster.url())
        .env("PETSAGE_DATABASE_ACQUIRE_TIMEOUT", "2s")
        .env("PETSAGE_HEALTH_CHECK_TIMEOUT", "500ms")
        .env("PETSAGE_HEALTH_INTERVAL", "250ms")
        .env("RUST_LOG", "info,petsage::access=warn")
        .start();
    let base = server.url("");
    let alice = server
        .act_as("alice", NOTES_SCOPES)
        .authorization()
        .unwrap_or_default();

    let before = WriteLoad::run_for(&base, &alice, 4, Duration::from_secs(1));
    assert!(before.acknowledged.len() > 10, "{before:?}");
    assert_eq!(before.non_2xx(), 0, "{before:?}");

    // The database goes away under load.
    let during = WriteLoad::start(&base, &alice, 4, Duration::from_secs(30));
    cluster.down();
    let to_unready = server.wait_for_status(
        "/api/v1/health/ready",
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(5),
    );
    thread::sleep(Duration::from_secs(3));
    assert_eq!(server.get("/api/v1/health/live").status, StatusCode::OK);
    let probe_started = Instant::now();
    let refused = server.post_json("/api/v1/notes", &serde_json::json!({"name": "while down"}));
    let refused_in = probe_started.elapsed();
    assert_retry_later(&refused);
    let during = during.finish();

    // It comes back: readiness and writes recover without a restart.
    let back = Instant::now();
    cluster.up();
    let to_ready = server.wait_for_status(
        "/api/v1/health/ready",
        StatusCode::OK,
        Duration::from_secs(10),
    );
    let after = WriteLoad::run_for(&base, &alice, 4, Duration::from_secs(1));
    let recovered_in = back.elapsed();
    assert_eq!(after.non_2xx(), 0, "{after:?}");
    assert!(!after.acknowledged.is_empty(), "{after:?}");

    println!(
        "outage: before {} requests ({} writes acknowledged); during {} requests, statuses {:?}, \
         slowest {:?}; readiness 503 after {to_unready:?}; a write while down answered 503 in \
         {refused_in:?}; after restart of PostgreSQL readiness 200 in {to_ready:?}, writes \
         again ({} acknowledged) {recovered_in:?} after it was started",
        before.sent,
        before.acknowledged.len(),
        during.sent,
        during.statuses,
        during.slowest,
        after.acknowledged.len(),
    );
    assert!(during.unexplained.is_empty(), "{:?}", during.unexplained);
    assert_eq!(during.transport_errors, 0, "{during:?}");
    assert!(
        during.statuses.get(&503).copied().unwrap_or(0) > 0,
        "{during:?}"
    );
    // Bounds from the settings: a check timeout plus a cache period; the acquire timeout.
    assert!(
        to_unready < Duration::from_millis(1500) + Duration::from_secs(1),
        "{to_unready:?}"
    );
    assert!(
        during.slowest < acquire + Duration::from_secs(1),
        "{:?}",
        during.slowest
    );
    let everything = [before.acknowledged, during.acknowledged, after.acknowledged].concat();
    assert_eq!(missing(&base, &alice, &everything), Vec::<i64>::new());
}

/// A write PostgreSQL refuses at its commit is not acknowledged. A deferred
/// constraint refuses it after `RETURNING` has sent the row: a client that
/// stops at that row answers `201` for a note that was never stored (as a
/// write cut off by the outage above once was).
#[test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
fn a_write_refused_at_its_commit_is_not_acknowledged() {
    let db = TestDatabase::postgres();
    let server = Server::builder(APP)
        .env("PETSAGE_DATABASE_URL", db.url())
        .start();
    server.act_as("alice", NOTES_SCOPES);
    let kept = server.post_json("/api/v1/notes", &serde_json::json!({"name": "kept"}));
    assert_eq!(kept.status, StatusCode::CREATED, "{}", kept.body);
    let id = kept.json()["id"].as_i64().expect("id");
    refuse_at_commit(db.url(), "notes", "NEW.name = 'refused'").expect("the trigger");

    let refused = serde_json::json!({"name": "refused"});
    let created = server.post_json("/api/v1/notes", &refused);
    let replaced = server.put_json(&format!("/api/v1/notes/{id}"), &refused);
    for reply in [&created, &replaced] {
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    assert_eq!(
        server.get(&format!("/api/v1/notes/{id}")).json()["name"],
        "kept"
    );
    assert_eq!(
        query_i64(
            db.url(),
            "SELECT count(*) FROM notes WHERE name = 'refused'"
        ),
        Ok(0)
    );
}

#[test]
fn an_exhausted_pool_is_503_within_the_acquire_timeout_then_recovers() {
    let _serial = petsage_tests::one_at_a_time();
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_FAULTS_HOLD_DATABASE", "true")
        .env("PETSAGE_DATABASE_MAX_CONNECTIONS", "1")
        .env("PETSAGE_DATABASE_ACQUIRE_TIMEOUT", "300ms")
        .start();
    server.act_as("alice", NOTES_SCOPES);
    let created = server.post_json("/api/v1/notes", &serde_json::json!({"name": "kept"}));
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_i64().expect("id");

    // The pool's one connection is taken for 3 s.
    let url = server.url("/api/v1/test/hold-database/3000");
    let holder = thread::spawn(move || {
        petsage_tests::agent(Duration::from_secs(10))
            .get(url)
            .call()
            .map(|res| res.status())
    });
    server.wait_for_log("holding a database connection", Duration::from_secs(5));
    let started = Instant::now();
    let refused = server.get(&format!("/api/v1/notes/{id}"));
    let took = started.elapsed();
    println!(
        "exhausted pool: answered {} in {took:?} (acquire timeout 300 ms)",
        refused.status
    );
    assert_retry_later(&refused);
    assert!(
        took < Duration::from_millis(300) + Duration::from_secs(1),
        "{took:?}"
    );

    let held = holder.join().expect("holder").expect("holder answered");
    assert_eq!(held.as_u16(), 204);
    let again = server.get(&format!("/api/v1/notes/{id}"));
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("petsage_db_pool_acquire_timeouts_total 1\n"),
        "the timeout is counted:\n{metrics}"
    );
    assert!(
        metrics.contains("petsage_db_pool_max_connections 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("petsage_db_pool_acquire_waits_total 0\n")
            && metrics.contains("petsage_db_pool_acquire_waits_total "),
        "the wait is counted:\n{metrics}"
    );
}

/// Writes under load, `kill -9`, restart on the same database (and the same
/// data folder, so the same dev signing key): every `201` is there.
fn kill_9_during_writes(builder: impl Fn() -> petsage_tests::ServerBuilder, label: &str) {
    let server = builder().start();
    let alice = server
        .act_as("alice", NOTES_SCOPES)
        .authorization()
        .unwrap_or_default();
    let load = WriteLoad::start(&server.url(""), &alice, 4, Duration::from_secs(10));
    thread::sleep(Duration::from_millis(1500));
    server.signal("KILL");
    let report = load.finish();
    drop(server);
    let server = builder().start();
    let lost = missing(&server.url(""), &alice, &report.acknowledged);
    println!(
        "kill -9 on {label}: {} requests sent, {} writes acknowledged, {} found after restart, {} lost",
        report.sent,
        report.acknowledged.len(),
        report.acknowledged.len() - lost.len(),
        lost.len()
    );
    assert!(report.acknowledged.len() > 10, "{report:?}");
    assert_eq!(lost, Vec::<i64>::new(), "acknowledged writes lost");
}

#[test]
fn kill_9_during_writes_loses_no_acknowledged_write_on_sqlite() {
    let _serial = petsage_tests::one_at_a_time();
    let data = Scratch::new("kill9");
    kill_9_during_writes(|| Server::builder(APP).data_dir(data.path()), "SQLite");
}

#[test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
fn kill_9_during_writes_loses_no_acknowledged_write_on_postgres() {
    let _serial = petsage_tests::one_at_a_time();
    let db = TestDatabase::postgres();
    let data = Scratch::new("kill9");
    kill_9_during_writes(
        || {
            Server::builder(APP)
                .env("PETSAGE_DATABASE_URL", db.url())
                .data_dir(data.path())
        },
        "PostgreSQL",
    );
}
