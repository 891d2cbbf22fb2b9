//! The queue's semantics on both databases, with the worker and scheduler
//! run as the app runs them (background services of a started context).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use petsage_core::{Background, Context, Lifecycle};
use petsage_db::testing::TestDatabase;
use serde::{Deserialize, Serialize};
use sqlx::{Connection as _, Row as _};

use super::*;

#[derive(Serialize, Deserialize)]
struct Count {
    n: u32,
}
impl Job for Count {
    const KIND: &'static str = "test.count";
}

#[derive(Serialize, Deserialize)]
struct Flaky;
impl Job for Flaky {
    const KIND: &'static str = "test.flaky";
}

#[derive(Serialize, Deserialize)]
struct Broken;
impl Job for Broken {
    const KIND: &'static str = "test.broken";
}

#[derive(Serialize, Deserialize)]
struct Slow;
impl Job for Slow {
    const KIND: &'static str = "test.slow";
}

/// One instance: its jobs platform, started (migrated), its worker and scheduler running.
struct Instance {
    jobs: Jobs,
    lifecycle: Lifecycle,
    background: Background,
}

impl Instance {
    async fn start(
        db: &TestDatabase,
        settings: JobsSettings,
        register: impl FnOnce(&Jobs),
    ) -> Self {
        let mut ctx: Context = db.context();
        ctx.insert(settings);
        let jobs = Jobs::from_context(&mut ctx).expect("jobs");
        register(&jobs);
        let mut lifecycle = ctx.into_lifecycle();
        lifecycle.start().await.expect("starts");
        let background = lifecycle.take_background(Duration::from_millis(300));
        background.start();
        Self {
            jobs,
            lifecycle,
            background,
        }
    }

    /// An instance with `--jobs false`: no worker and no scheduler, so what
    /// the test enqueues, claims or ticks stays for it to look at.
    async fn without_worker(db: &TestDatabase) -> Self {
        let settings = JobsSettings {
            jobs: false,
            ..fast()
        };
        Self::start(db, settings, |_| {}).await
    }

    async fn stop(mut self) {
        self.background.join().await;
        self.lifecycle.stop().await;
    }
}

fn fast() -> JobsSettings {
    JobsSettings {
        jobs_poll_interval: Duration::from_millis(200),
        jobs_lease: Duration::from_secs(2),
        ..JobsSettings::default()
    }
}

/// `(state, attempt, last_error)` of job `id`.
async fn job(db: &Database, id: i64) -> (String, i64, Option<String>) {
    let mut conn = db.acquire().await.expect("connection");
    let row = sqlx::query("SELECT state, attempt, last_error FROM petsage_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .expect("the job");
    (row.get(0), row.get(1), row.get(2))
}

/// Waits (up to 10 s) until job `id` is in `state`.
async fn until_state(db: &Database, id: i64, state: &str) -> (String, i64, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = job(db, id).await;
        if found.0 == state || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn new_id(enqueued: Enqueued) -> i64 {
    match enqueued {
        Enqueued::New(id) => id,
        Enqueued::Duplicate => panic!("expected a new job"),
    }
}

async fn runs_retries_and_discards(db: TestDatabase) {
    let counted = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&counted);
    let instance = Instance::start(&db, fast(), |jobs| {
        jobs.register(Handler::new(move |job: Count, run: Run| {
            let seen = Arc::clone(&seen);
            async move {
                assert_eq!(run.attempt, 1);
                seen.fetch_add(job.n, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        }))
        .expect("count");
        jobs.register(
            Handler::new(|_: Flaky, run: Run| async move {
                if run.attempt < 3 {
                    Err(format!("attempt {} fails", run.attempt))
                } else {
                    Ok(())
                }
            })
            .backoff(Duration::from_millis(10)),
        )
        .expect("flaky");
        jobs.register(
            Handler::new(|_: Broken, _| async { Err::<(), _>("always broken") })
                .max_attempts(3)
                .backoff(Duration::from_millis(10)),
        )
        .expect("broken");
    })
    .await;
    let jobs = &instance.jobs;
    let db = jobs.database().clone();

    let count = new_id(
        jobs.enqueue_now(&Count { n: 5 }, Options::new())
            .await
            .expect("enqueued"),
    );
    let flaky = new_id(
        jobs.enqueue_now(&Flaky, Options::new())
            .await
            .expect("enqueued"),
    );
    let broken = new_id(
        jobs.enqueue_now(&Broken, Options::new())
            .await
            .expect("enqueued"),
    );

    assert_eq!(
        until_state(&db, count, "completed").await,
        ("completed".into(), 1, None)
    );
    assert_eq!(counted.load(Ordering::SeqCst), 5);
    let (state, attempts, error) = until_state(&db, flaky, "completed").await;
    assert_eq!(
        (state.as_str(), attempts),
        ("completed", 3),
        "fails twice, then succeeds"
    );
    assert_eq!(
        error.as_deref(),
        Some("attempt 2 fails"),
        "the last error is kept"
    );
    let (state, attempts, error) = until_state(&db, broken, "discarded").await;
    assert_eq!((state.as_str(), attempts), ("discarded", 3));
    assert_eq!(error.as_deref(), Some("always broken"));
    let listed = inspect::list(&db, Some("discarded"), 10)
        .await
        .expect("listed");
    assert_eq!(
        listed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![broken]
    );
    assert!(inspect::retry(&db, broken).await.expect("retried"));
    assert!(
        !inspect::retry(&db, count).await.expect("not discarded"),
        "only a discarded job is retried"
    );
    let (state, attempts, _) = until_state(&db, broken, "discarded").await;
    assert_eq!(
        (state.as_str(), attempts),
        ("discarded", 3),
        "three fresh attempts, all failed"
    );
    instance.stop().await;
}

#[actix_web::test]
async fn sqlite_runs_retries_and_discards() {
    runs_retries_and_discards(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_runs_retries_and_discards() {
    runs_retries_and_discards(TestDatabase::postgres()).await;
}

async fn enqueues_with_the_write_or_not_at_all(db: TestDatabase) {
    // No worker: only what was enqueued is looked at.
    let instance = Instance::without_worker(&db).await;
    let jobs = &instance.jobs;
    let mut conn = jobs.database().acquire().await.expect("connection");
    sqlx::query("CREATE TABLE written (id BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await
        .expect("table");
    for (i, commit) in [(1_i64, true), (2, false), (3, true), (4, false)] {
        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("INSERT INTO written (id) VALUES ($1)")
            .bind(i)
            .execute(&mut *tx)
            .await
            .expect("write");
        jobs.enqueue(
            &mut tx,
            &Count {
                n: u32::try_from(i).expect("small"),
            },
            Options::new(),
        )
        .await
        .expect("enqueued");
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
    }
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM petsage_jobs ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .expect("jobs");
    assert_eq!(payloads, vec![r#"{"n":1}"#, r#"{"n":3}"#]);

    let key = || {
        Options::new()
            .unique("count:7")
            .queue("mail")
            .priority(2)
            .delay(Duration::from_secs(60))
    };
    let first = jobs
        .enqueue(&mut conn, &Count { n: 7 }, key())
        .await
        .expect("first");
    assert!(matches!(first, Enqueued::New(_)));
    let second = jobs
        .enqueue(&mut conn, &Count { n: 7 }, key())
        .await
        .expect("second");
    assert_eq!(second, Enqueued::Duplicate, "pending: the key holds");
    sqlx::query("UPDATE petsage_jobs SET state = 'completed' WHERE unique_key = 'count:7'")
        .execute(&mut *conn)
        .await
        .expect("finish it");
    let third = jobs
        .enqueue(&mut conn, &Count { n: 7 }, key())
        .await
        .expect("third");
    assert!(
        matches!(third, Enqueued::New(_)),
        "finished: the key is free again"
    );
    drop(conn);
    instance.stop().await;
}

#[actix_web::test]
async fn sqlite_enqueues_with_the_write_or_not_at_all() {
    enqueues_with_the_write_or_not_at_all(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_enqueues_with_the_write_or_not_at_all() {
    enqueues_with_the_write_or_not_at_all(TestDatabase::postgres()).await;
}

/// An enqueue PostgreSQL refuses at its commit is an error, not an id: a
/// deferred constraint refuses the job after `RETURNING` has sent its id.
#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_an_enqueue_refused_at_its_commit_is_an_error() {
    let db = TestDatabase::postgres();
    let instance = Instance::without_worker(&db).await;
    let jobs = &instance.jobs;
    petsage_db::testing::refuse_at_commit(db.url(), "petsage_jobs", "true").expect("the trigger");
    let mut conn = jobs.database().acquire().await.expect("connection");
    let refused = jobs
        .enqueue(&mut conn, &Count { n: 1 }, Options::new())
        .await;
    assert!(refused.is_err(), "acknowledged: {refused:?}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM petsage_jobs")
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    drop(conn);
    instance.stop().await;
}

async fn panics_and_timeouts_fail_and_the_drain_puts_back(test_db: TestDatabase) {
    let instance = Instance::start(&test_db, fast(), |jobs| {
        jobs.register(
            Handler::new(|job: Count, _| async move {
                assert!(job.n != 13, "unlucky {}", job.n);
                Ok::<_, String>(())
            })
            .max_attempts(1),
        )
        .expect("count");
        jobs.register(
            Handler::new(|_: Slow, _| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, String>(())
            })
            .timeout(Duration::from_millis(100))
            .max_attempts(1),
        )
        .expect("slow");
    })
    .await;
    let jobs = instance.jobs.clone();
    let db = jobs.database().clone();
    let panics = new_id(
        jobs.enqueue_now(&Count { n: 13 }, Options::new())
            .await
            .expect("enqueued"),
    );
    let slow = new_id(
        jobs.enqueue_now(&Slow, Options::new())
            .await
            .expect("enqueued"),
    );
    let (_, _, error) = until_state(&db, panics, "discarded").await;
    assert_eq!(error.as_deref(), Some("the handler panicked: unlucky 13"));
    let (_, _, error) = until_state(&db, slow, "discarded").await;
    assert_eq!(error.as_deref(), Some("timed out after 100 ms"));
    instance.stop().await;

    // A job still running when the drain's grace (300 ms) is over goes back, not attempted.
    let instance = Instance::start(&test_db, fast(), |jobs| {
        jobs.register(
            Handler::new(|_: Slow, _| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, String>(())
            })
            .timeout(Duration::from_secs(60)),
        )
        .expect("slow");
    })
    .await;
    let db = instance.jobs.database().clone();
    let slow = new_id(
        instance
            .jobs
            .enqueue_now(&Slow, Options::new())
            .await
            .expect("enqueued"),
    );
    until_state(&db, slow, "running").await;
    let mut instance = instance;
    let started = Instant::now();
    instance.background.join().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the grace bounds the drain"
    );
    assert_eq!(job(&db, slow).await, ("available".into(), 0, None));
    instance.lifecycle.stop().await;
}

#[actix_web::test]
async fn sqlite_panics_and_timeouts_fail_and_the_drain_puts_back() {
    panics_and_timeouts_fail_and_the_drain_puts_back(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_panics_and_timeouts_fail_and_the_drain_puts_back() {
    panics_and_timeouts_fail_and_the_drain_puts_back(TestDatabase::postgres()).await;
}

async fn an_expired_lease_runs_again_elsewhere(test_db: TestDatabase) {
    let runs = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&runs);
    let instance = Instance::start(&test_db, fast(), |jobs| {
        jobs.register(Handler::new(move |_: Count, run: Run| {
            let seen = Arc::clone(&seen);
            async move {
                assert_eq!(run.attempt, 2, "the dead instance's attempt counts");
                seen.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        }))
        .expect("count");
    })
    .await;
    let db = instance.jobs.database().clone();
    let mut conn = db.acquire().await.expect("connection");
    // A job a dead instance took: leased, its lease running out in 500 ms.
    let until = now_ms() + 500;
    sqlx::query(
        "INSERT INTO petsage_jobs (kind, queue, payload, priority, state, attempt, max_attempts, run_at, \
         lease_owner, leased_until, created_at) VALUES ('test.count', 'default', '{\"n\":1}', 0, 'running', 1, 20, $1, 'dead', $2, $1)",
    )
    .bind(now_ms())
    .bind(until)
    .execute(&mut *conn)
    .await
    .expect("a leased job");
    drop(conn);
    let id = 1;
    let (state, attempt, error) = until_state(&db, id, "completed").await;
    assert_eq!((state.as_str(), attempt), ("completed", 2));
    assert_eq!(
        error.as_deref(),
        Some("its lease expired: the instance running it stopped or lost the database")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(now_ms() >= until, "not before the lease expired");
    instance.stop().await;
}

#[actix_web::test]
async fn sqlite_an_expired_lease_runs_again_elsewhere() {
    an_expired_lease_runs_again_elsewhere(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_an_expired_lease_runs_again_elsewhere() {
    an_expired_lease_runs_again_elsewhere(TestDatabase::postgres()).await;
}

async fn a_job_longer_than_its_lease_keeps_it(test_db: TestDatabase) {
    // One slot, so the worker is full while the job runs; a 300 ms lease
    // and a 5.5 s job: at least one census pass (every 5 s) of each instance
    // looks for expired leases while it runs.
    let settings = || JobsSettings {
        jobs_lease: Duration::from_millis(300),
        jobs_concurrency: std::num::NonZeroUsize::MIN,
        ..fast()
    };
    let runs = Arc::new(AtomicU32::new(0));
    let register = |runs: Arc<AtomicU32>| {
        move |jobs: &Jobs| {
            jobs.register(Handler::new(move |_: Slow, _| {
                let runs = Arc::clone(&runs);
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5500)).await;
                    Ok::<_, String>(())
                }
            }))
            .expect("slow");
        }
    };
    let first = Instance::start(&test_db, settings(), register(Arc::clone(&runs))).await;
    let second = Instance::start(&test_db, settings(), register(Arc::clone(&runs))).await;
    let db = first.jobs.database().clone();
    let id = new_id(
        first
            .jobs
            .enqueue_now(&Slow, Options::new())
            .await
            .expect("enqueued"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while job(&db, id).await.0 != "completed" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        job(&db, id).await,
        ("completed".into(), 1, None),
        "one attempt, its lease kept"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "never taken by the other instance"
    );
    first.stop().await;
    second.stop().await;
}

#[actix_web::test]
async fn sqlite_a_job_longer_than_its_lease_keeps_it() {
    a_job_longer_than_its_lease_keeps_it(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_a_job_longer_than_its_lease_keeps_it() {
    a_job_longer_than_its_lease_keeps_it(TestDatabase::postgres()).await;
}

async fn each_occurrence_is_taken_once_and_missed_ones_collapse(test_db: TestDatabase) {
    // Two instances' schedulers race for the same occurrences.
    let instances = [
        Instance::without_worker(&test_db).await,
        Instance::without_worker(&test_db).await,
    ];
    let schedule = || Schedule::new("tick", "* * * * * *", &Count { n: 1 }).expect("valid");
    let schedules = [schedule()];
    let store = instances[0].jobs.store();
    let now = now_ms();
    store
        .declare_schedule("tick", "* * * * * *", now - 10_000)
        .await
        .expect("declared");
    // Ten seconds of missed ticks: one run, and the next one after now.
    let (a, b) = tokio::join!(
        schedule::tick_for_tests(&instances[0].jobs, &schedules),
        schedule::tick_for_tests(&instances[1].jobs, &schedules),
    );
    assert!(a.expect("tick") > now && b.expect("tick") > now);
    let mut conn = instances[0]
        .jobs
        .database()
        .acquire()
        .await
        .expect("connection");
    let keys: Vec<String> = sqlx::query_scalar("SELECT unique_key FROM petsage_jobs")
        .fetch_all(&mut *conn)
        .await
        .expect("jobs");
    assert_eq!(keys, vec![format!("schedule:tick:{}", now - 10_000)]);
    drop(conn);
    for instance in instances {
        instance.stop().await;
    }
}

#[actix_web::test]
async fn sqlite_each_occurrence_is_taken_once_and_missed_ones_collapse() {
    each_occurrence_is_taken_once_and_missed_ones_collapse(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_each_occurrence_is_taken_once_and_missed_ones_collapse() {
    each_occurrence_is_taken_once_and_missed_ones_collapse(TestDatabase::postgres()).await;
}

async fn claims_follow_priority_and_leave_jobs_not_yet_due(test_db: TestDatabase) {
    // No worker: the test claims through the store as the worker does.
    let instance = Instance::without_worker(&test_db).await;
    let jobs = &instance.jobs;
    let mut conn = jobs.database().acquire().await.expect("connection");
    for (n, options) in [
        (1, Options::new().priority(5).queue("later")),
        (2, Options::new().priority(0).queue("first")),
        (3, Options::new().delay(Duration::from_secs(60))),
    ] {
        jobs.enqueue(&mut conn, &Count { n }, options)
            .await
            .expect("enqueued");
    }
    drop(conn);
    let store = jobs.store();
    let claim = store.claim_statement(&[Count::KIND]);
    let mut taken = Vec::new();
    loop {
        let now = now_ms();
        let claimed = store
            .claim(&claim, "test", now, now + 60_000, 1)
            .await
            .expect("claim");
        let Some(job) = claimed.into_iter().next() else {
            break;
        };
        taken.push((job.payload, job.queue));
    }
    assert_eq!(
        taken,
        vec![
            (r#"{"n":2}"#.to_owned(), "first".to_owned()),
            (r#"{"n":1}"#.to_owned(), "later".to_owned()),
        ],
        "lower priority first; the delayed job waits"
    );
    instance.stop().await;
}

#[actix_web::test]
async fn sqlite_claims_follow_priority_and_leave_jobs_not_yet_due() {
    claims_follow_priority_and_leave_jobs_not_yet_due(TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_claims_follow_priority_and_leave_jobs_not_yet_due() {
    claims_follow_priority_and_leave_jobs_not_yet_due(TestDatabase::postgres()).await;
}

#[test]
fn names_are_checked() {
    assert!(check_name("job kind", "notes.index").is_ok());
    let err = check_name("job kind", "Notes Index").expect_err("refused");
    assert!(err.starts_with("job kind \"Notes Index\" must be"), "{err}");
}
