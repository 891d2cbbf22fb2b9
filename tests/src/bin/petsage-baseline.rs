//! The benchmark's baseline: a bare actix-web server answering
//! `GET /api/v1/health` with the same JSON body as PetSage, and nothing else
//! (no middleware, no logging, no features). With `--database-url`, it also
//! answers `GET /api/v1/notes/{id}` with the generated feature's query run
//! through the same library (sqlx's `Any` driver, the same pool size and the
//! same SQLite set-up). With `--same-headers`, its health answer carries the
//! headers a PetSage health poll must send (`Cache-Control: no-store`,
//! `X-Content-Type-Options: nosniff` and a new UUID v7 `X-Request-Id`),
//! set by a plain handler as a hand-written actix-web service would set them.
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

const USAGE: &str =
    "usage: petsage-baseline [--bind ADDR] [--workers N] [--same-headers] [--database-url URL]";

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

fn main() -> std::io::Result<()> {
    let mut bind = "127.0.0.1:8081".to_owned();
    let mut database_url = None;
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
        let pool = match database_url {
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
