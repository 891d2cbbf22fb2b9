//! The benchmark's baseline: a bare actix-web server answering
//! `GET /api/v1/health` with the same JSON body as PetSage, and nothing else
//! (no middleware, no logging, no features). With `--database-url`, it also
//! answers `GET /api/v1/notes/{id}` with the generated feature's query run
//! through the same library (sqlx's `Any` driver, the same pool size and the
//! same SQLite set-up). With `--same-headers`, its health answer carries the
//! headers a PetSage health poll must send (`Cache-Control: no-store`,
//! `X-Content-Type-Options: nosniff` and a new UUID v7 `X-Request-Id`),
//! set by a plain handler as a hand-written actix-web service would set them.
//! With `--database-url URL --jobs N`, it serves nothing: it inserts N jobs
//! into the jobs table PetSage made there and runs them as no-ops with the
//! same claim-and-complete statements as PetSage's worker, four at a time
//! (a claim for every free slot), straight on sqlx, then prints the jobs per second and exits.
//! Built with the same release profile, so `cargo xtask bench` measures what
//! PetSage adds on top of it.

use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{App, HttpResponse, HttpServer, web};
use sqlx::Executor as _;
use sqlx::any::AnyPoolOptions;

const BODY: &str = concat!(
    r#"{"status":"ok","service_name":"PetSage Backend","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}"#
);

async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

async fn health_same_headers() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(("x-request-id", uuid::Uuid::now_v7().to_string()))
        .body(BODY)
}

const USAGE: &str = "usage: petsage-baseline [--bind ADDR] [--workers N] [--same-headers] [--database-url URL [--jobs N]]";

async fn note(pool: Data<sqlx::AnyPool>, id: Path<i64>) -> HttpResponse {
    let row: Result<Option<(i64, String)>, _> =
        sqlx::query_as(
            r#"SELECT id, name FROM "notes" WHERE id = $1 AND owner_issuer = $2 AND owner_subject = $3"#,
        )
        .bind(id.into_inner())
        .bind(petsage_identity::dev::DEV_ISSUER)
        .bind(petsage_tests::public_notes::OWNER)
        .fetch_optional(pool.get_ref())
            .await;
    match row {
        Ok(Some((id, name))) => {
            HttpResponse::Ok().json(serde_json::json!({"id": id, "name": name}))
        }
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// The jobs loop's statements: PetSage's claim and completion, for the baseline's own kind.
const CLAIM: &str = "UPDATE petsage_jobs SET state = 'running', attempt = attempt + 1, lease_owner = $1, leased_until = $2 \
     WHERE id IN (SELECT id FROM petsage_jobs{hint} WHERE state = 'available' AND run_at <= $3 AND kind IN ('baseline.noop') \
     ORDER BY priority, run_at, id LIMIT $4{lock}) \
     RETURNING id, kind, queue, payload, attempt, max_attempts, run_at";
const COMPLETE: &str = "UPDATE petsage_jobs SET state = 'completed', finished_at = $1, lease_owner = NULL, leased_until = NULL \
     WHERE id = $2 AND state = 'running' AND lease_owner = $3";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Inserts `jobs` no-op jobs and runs them four at a time, as PetSage's
/// worker does (one claim for every free slot, each completion on its
/// own), and returns jobs per second.
async fn jobs_loop(pool: sqlx::AnyPool, postgres: bool, jobs: i64) -> Result<f64, sqlx::Error> {
    const SLOTS: usize = 4;
    let insert = "INSERT INTO petsage_jobs (kind, queue, payload, priority, state, max_attempts, run_at, created_at) \
         SELECT 'baseline.noop', 'default', '{}', 0, 'available', 20, $1, $1 FROM \
         (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) SELECT i FROM n) AS numbers";
    sqlx::query(insert)
        .bind(now_ms())
        .bind(jobs)
        .execute(&pool)
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("insert: {e}")))?;
    if postgres {
        // Statistics for the fresh rows, as PetSage's worker gets them:
        // without, the planner sorts every waiting job at each claim.
        sqlx::query("ANALYZE petsage_jobs").execute(&pool).await?;
    }
    let claim = if postgres {
        CLAIM
            .replace("{hint}", "")
            .replace("{lock}", " FOR UPDATE SKIP LOCKED")
    } else {
        CLAIM
            .replace("{hint}", " INDEXED BY petsage_jobs_due")
            .replace("{lock}", "")
    };
    let owner = "baseline";
    // On SQLite, writes take turns, as PetSage's store does: connections
    // racing for SQLite's one write lock can starve past the busy timeout.
    let turns = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let turn = move |turns: std::sync::Arc<tokio::sync::Mutex<()>>| async move {
        if postgres {
            None
        } else {
            Some(turns.lock_owned().await)
        }
    };
    let started = std::time::Instant::now();
    let mut running = tokio::task::JoinSet::new();
    loop {
        let free = SLOTS - running.len();
        let claiming = turn(turns.clone()).await;
        let now = now_ms();
        let taken: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(claim.as_str()))
            .bind(owner)
            .bind(now + 30_000)
            .bind(now)
            .bind(free as i64)
            .fetch_all(&pool)
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("claim: {e}")))?;
        drop(claiming);
        if taken.is_empty() && running.is_empty() {
            break;
        }
        for (id,) in taken {
            let (pool, turns) = (pool.clone(), turns.clone());
            running.spawn(async move {
                let _turn = turn(turns).await;
                sqlx::query(COMPLETE)
                    .bind(now_ms())
                    .bind(id)
                    .bind(owner)
                    .execute(&pool)
                    .await
                    .map_err(|e| sqlx::Error::Protocol(format!("complete {id}: {e}")))
            });
        }
        if let Some(done) = running.join_next().await {
            done.map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(jobs as f64 / started.elapsed().as_secs_f64())
}

fn main() -> std::io::Result<()> {
    let mut bind = "127.0.0.1:8081".to_owned();
    let mut database_url = None;
    let mut jobs = None;
    let mut workers = 1;
    let mut same_headers = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--same-headers" {
            same_headers = true;
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--bind", Some(value)) => bind = value,
            ("--database-url", Some(value)) => database_url = Some(value),
            ("--jobs", Some(value)) => {
                jobs = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| std::io::Error::other(USAGE))?,
                );
            }
            ("--workers", Some(value)) => {
                workers = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| std::io::Error::other(USAGE))?;
            }
            _ => return Err(std::io::Error::other(USAGE)),
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let pool = match database_url.clone() {
            Some(url) => {
                sqlx::any::install_default_drivers();
                let sqlite = url.starts_with("sqlite:");
                let options =
                    AnyPoolOptions::new()
                        .max_connections(10)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                if sqlite {
                                    conn.execute(petsage_db::SQLITE_PRAGMAS).await?;
                                }
                                Ok(())
                            })
                        });
                Some(Data::new(
                    options.connect(&url).await.map_err(std::io::Error::other)?,
                ))
            }
            None => None,
        };
        if let Some(jobs) = jobs {
            let (Some(pool), Some(url)) = (&pool, &database_url) else {
                return Err(std::io::Error::other(USAGE));
            };
            let per_second = jobs_loop(pool.get_ref().clone(), url.starts_with("postgres"), jobs)
                .await
                .map_err(std::io::Error::other)?;
            println!("{per_second:.1}");
            return Ok(());
        }
        HttpServer::new(move || {
            let app = if same_headers {
                App::new().route("/api/v1/health", web::get().to(health_same_headers))
            } else {
                App::new().route("/api/v1/health", web::get().to(health))
            };
            match &pool {
                Some(pool) => app
                    .app_data(pool.clone())
                    .route("/api/v1/notes/{id}", web::get().to(note)),
                None => app,
            }
        })
        .workers(workers)
        .bind(bind)?
        .run()
        .await
    })
}
