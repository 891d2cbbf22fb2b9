//! The benchmark's baseline: a bare actix-web server answering
//! `GET /api/v1/health` with the same JSON body as PetSage, and nothing else
//! (no middleware, no logging, no features). Built with the same release
//! profile, so `cargo xtask bench` measures what PetSage adds on top of it.

use actix_web::{App, HttpResponse, HttpServer, web};

const BODY: &str = concat!(
    r#"{"status":"ok","service_name":"PetSage Backend","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}"#
);

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = match (args.next().as_deref(), args.next()) {
        (Some("--bind"), Some(addr)) => addr,
        _ => "127.0.0.1:8081".to_owned(),
    };
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new().route(
                "/api/v1/health",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(BODY)
                }),
            )
        })
        .workers(1)
        .bind(bind)?
        .run()
        .await
    })
}
