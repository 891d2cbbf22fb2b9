//! A protected route, served by actix, answers each case of RFC 6750 as the
//! platform documents it.

use actix_web::http::StatusCode;
use actix_web::test::{self as atest, TestRequest};
use actix_web::{App, HttpResponse};
use petsage_core::{Problem, Routes, route};
use petsage_identity::testing::{self, AUDIENCE, ISSUER};
use petsage_identity::{Identity, IdentitySettings, Principal};

/// Reads a note.
#[utoipa::path(get, path = "/notes", operation_id = "t_notes", tag = "T",
    responses((status = 200, description = "the caller", body = String)))]
async fn notes(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().body(format!("{}:{}", principal.issuer, principal.subject))
}

/// Is public.
#[utoipa::path(get, path = "/open", operation_id = "t_open", tag = "T",
    responses((status = 200, description = "anyone")))]
async fn open() -> HttpResponse {
    HttpResponse::Ok().finish()
}

fn identity() -> Identity {
    Identity::new(&IdentitySettings {
        auth_issuer: Some(ISSUER.to_owned()),
        auth_audiences: vec![AUDIENCE.to_owned()],
        ..IdentitySettings::default()
    })
    .expect("settings are complete")
}

fn routes(identity: &Identity) -> Routes {
    Routes::new()
        .route(route!(notes).require(identity.require(&["notes:read"])))
        .route(route!(open).public())
}

macro_rules! serve {
    ($identity:expr) => {
        atest::init_service(
            routes(&$identity)
                .into_services()
                .into_iter()
                .fold(App::new(), |app, service| app.service(service)),
        )
        .await
    };
}

fn challenge(res: &actix_web::dev::ServiceResponse) -> Option<String> {
    res.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("text").to_owned())
}

#[actix_web::test]
async fn every_refusal_has_its_status_challenge_and_problem() {
    let identity = identity();
    identity.set_keys(testing::key_set());
    let app = serve!(identity);
    let bearer = |token: &str| ("authorization", format!("Bearer {token}"));

    let res = atest::call_service(&app, TestRequest::get().uri("/notes").to_request()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&res).as_deref(), Some("Bearer realm=\"petsage\""));
    let problem: Problem = atest::read_body_json(res).await;
    assert_eq!(problem.status, 401);

    let expired = testing::sign(
        jsonwebtoken::Algorithm::RS256,
        testing::RSA_KID,
        &serde_json::json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": testing::now() - 3600}),
    );
    let req = TestRequest::get()
        .uri("/notes")
        .insert_header(bearer(&expired));
    let res = atest::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let header = challenge(&res).expect("a challenge");
    assert_eq!(
        header,
        "Bearer realm=\"petsage\", error=\"invalid_token\", error_description=\"the token has expired\""
    );
    assert!(!header.contains(&expired[..20]), "never the token");

    let scopeless = testing::token("alice", &["notes:readx", "pets:read"]);
    let req = TestRequest::get()
        .uri("/notes")
        .insert_header(bearer(&scopeless));
    let res = atest::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&res).as_deref(),
        Some("Bearer realm=\"petsage\", error=\"insufficient_scope\", scope=\"notes:read\"")
    );

    let good = testing::token("alice", &["notes:read"]);
    for req in [
        TestRequest::get()
            .uri("/notes")
            .append_header(bearer(&good))
            .append_header(bearer(&good)),
        TestRequest::get()
            .uri("/notes")
            .insert_header(("authorization", format!("Basic {good}"))),
        TestRequest::get()
            .uri("/notes")
            .insert_header(("authorization", "Bearer two words")),
    ] {
        let res = atest::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            challenge(&res).as_deref(),
            Some("Bearer realm=\"petsage\", error=\"invalid_request\"")
        );
    }

    let from_query = TestRequest::get().uri(&format!("/notes?access_token={good}"));
    let res = atest::call_service(&app, from_query.to_request()).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the query string is never read"
    );

    for _ in 0..2 {
        // Verified, then from the cache.
        let req = TestRequest::get()
            .uri("/notes")
            .insert_header(bearer(&good));
        let res = atest::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(atest::read_body(res).await, format!("{ISSUER}:alice"));
    }

    let res = atest::call_service(&app, TestRequest::get().uri("/open").to_request()).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a public route needs no token"
    );
}

#[actix_web::test]
async fn without_any_key_set_protected_routes_answer_503_with_retry_after() {
    let identity = identity();
    let app = serve!(identity);
    let req = TestRequest::get().uri("/notes").insert_header((
        "authorization",
        format!("Bearer {}", testing::token("alice", &["notes:read"])),
    ));
    let res = atest::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
}

#[test]
fn the_document_says_what_is_enforced() {
    let identity = identity();
    let doc = serde_json::to_value(routes(&identity).openapi()).expect("serializes");
    assert_eq!(
        doc["paths"]["/notes"]["get"]["security"],
        serde_json::json!([{"bearerAuth": ["notes:read"]}])
    );
    for status in ["400", "401", "403"] {
        assert!(
            doc["paths"]["/notes"]["get"]["responses"][status].is_object(),
            "{status}"
        );
    }
    assert!(doc["paths"]["/open"]["get"].get("security").is_none());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    assert_eq!(
        schemes["openIdConnect"]["openIdConnectUrl"],
        format!("{ISSUER}/.well-known/openid-configuration")
    );
}
