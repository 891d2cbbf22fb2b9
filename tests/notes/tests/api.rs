//! The Notes feature over HTTP, on a database of each kind: built as the
//! app builds it (settings, migrations), then served by actix's test server.
//! Callers are the identity platform's test principals: tokens of a test
//! issuer, no provider running.

use actix_web::http::{Method, StatusCode, header};
use actix_web::test as atest;
use petsage_core::Context;
use petsage_core::Problem;
use petsage_db::testing::TestDatabase;
use petsage_identity::testing::bearer;
use petsage_notes::{Notes, NotesItem, NotesPage, READ_SCOPE, WRITE_SCOPE};
use serde_json::{Value, json};

/// The caller most tests act as: both scopes.
const ALICE: &str = "alice";

/// `db`'s context, with the test issuer trusted.
fn context(db: &TestDatabase) -> Context {
    let mut ctx = db.context();
    petsage_identity::testing::trust_test_issuer(&mut ctx);
    ctx
}

/// Sends `method uri` with an optional JSON body to `feature` served alone,
/// as alice with both scopes, and returns the status, the `Location` header
/// and the body as JSON.
async fn call(
    feature: &dyn petsage_core::BuiltFeature,
    method: Method,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    call_as(
        feature,
        Some((ALICE, &[READ_SCOPE, WRITE_SCOPE])),
        method,
        uri,
        body,
    )
    .await
}

/// As `call`, as `caller` (a subject and its scopes), or with no token.
async fn call_as(
    feature: &dyn petsage_core::BuiltFeature,
    caller: Option<(&str, &[&str])>,
    method: Method,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let app = atest::init_service(petsage_core::testing::app(feature)).await;
    let mut req = atest::TestRequest::default().method(method).uri(uri);
    if let Some((subject, scopes)) = caller {
        req = req.insert_header(bearer(subject, scopes));
    }
    if let Some(body) = body {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(body.to_owned());
    }
    let res = atest::call_service(&app, req.to_request()).await;
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = atest::read_body(res).await;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, location, json)
}

async fn crud_pages_and_survives_a_restart(db: &TestDatabase) {
    let (feature, mut lifecycle) = petsage_core::testing::start::<Notes>(context(db), &[])
        .await
        .expect("starts");
    let f = &*feature;

    let (status, location, body) =
        call(f, Method::POST, "/notes", Some(r#"{"name":"Biscuit"}"#)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let created: NotesItem = serde_json::from_value(body).expect("an item");
    assert_eq!(created.name, "Biscuit");
    assert_eq!(location, Some(format!("/notes/{}", created.id)));

    let (status, _, body) = call(f, Method::GET, &format!("/notes/{}", created.id), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"id": created.id, "name": "Biscuit"}));

    for name in ["Clover", "Dusty", "Echo"] {
        let body = json!({ "name": name }).to_string();
        assert_eq!(
            call(f, Method::POST, "/notes", Some(&body)).await.0,
            StatusCode::CREATED
        );
    }
    let (status, _, body) = call(f, Method::GET, "/notes?limit=3", None).await;
    assert_eq!(status, StatusCode::OK);
    let first: NotesPage = serde_json::from_value(body).expect("a page");
    let names: Vec<&str> = first.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["Biscuit", "Clover", "Dusty"]);
    let cursor = first.next_cursor.expect("a next page");
    let (_, _, body) = call(
        f,
        Method::GET,
        &format!("/notes?limit=3&cursor={cursor}"),
        None,
    )
    .await;
    let second: NotesPage = serde_json::from_value(body).expect("a page");
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].name, "Echo");
    assert_eq!(second.next_cursor, None);

    let uri = format!("/notes/{}", created.id);
    let (status, _, body) = call(f, Method::PUT, &uri, Some(r#"{"name":"Biscuit II"}"#)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Biscuit II");

    // Stop and build again on the same database: what was written is there.
    lifecycle.stop().await;
    let (feature, mut lifecycle) = petsage_core::testing::start::<Notes>(context(db), &[])
        .await
        .expect("starts again");
    let f = &*feature;
    let (status, _, body) = call(f, Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Biscuit II");

    assert_eq!(
        call(f, Method::DELETE, &uri, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(f, Method::GET, &uri, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(f, Method::DELETE, &uri, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(f, Method::PUT, &uri, Some(r#"{"name":"x"}"#)).await.0,
        StatusCode::NOT_FOUND
    );
    lifecycle.stop().await;
}

async fn bad_input_is_a_problem_naming_the_field(db: &TestDatabase) {
    let (feature, mut lifecycle) = petsage_core::testing::start::<Notes>(context(db), &[])
        .await
        .expect("starts");
    let f = &*feature;
    let too_long = json!({ "name": "x".repeat(201) }).to_string();
    for (body, field) in [
        (r#"{"name":""}"#, "name"),
        (too_long.as_str(), "name"),
        (r#"{"name":7}"#, "name"),
        (r#"{}"#, "name"),
        (r#"{"name":"a","colour":"red"}"#, "colour"),
        (r#"{"name":"a","owner_subject":"bob"}"#, "owner_subject"),
        (r#"{"name":"#, "body"),
        (r#"["a"]"#, "body"),
    ] {
        let (status, _, problem) = call(f, Method::POST, "/notes", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let problem: Problem = serde_json::from_value(problem).expect("a problem");
        assert_eq!(problem.errors[0].field, field, "{body}");
    }

    let app = atest::init_service(petsage_core::testing::app(f)).await;
    let req = atest::TestRequest::post()
        .uri("/notes")
        .insert_header(bearer(ALICE, &[WRITE_SCOPE]))
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload(r#"{"name":"a"}"#)
        .to_request();
    assert_eq!(
        atest::call_service(&app, req).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    for (uri, field) in [
        ("/notes?limit=0", "limit"),
        ("/notes?limit=201", "limit"),
        ("/notes?limit=ten", "limit"),
        ("/notes?cursor=not-ours", "cursor"),
        ("/notes?limit=1&limit=2", "limit"),
    ] {
        let (status, _, problem) = call(f, Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert_eq!(problem["errors"][0]["field"], field, "{uri}");
    }
    for uri in ["/notes/not-a-number", "/notes/999999"] {
        assert_eq!(
            call(f, Method::GET, uri, None).await.0,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    lifecycle.stop().await;
}

async fn each_caller_sees_only_their_own_notes(db: &TestDatabase) {
    let (feature, mut lifecycle) = petsage_core::testing::start::<Notes>(context(db), &[])
        .await
        .expect("starts");
    let f = &*feature;
    let both: &[&str] = &[READ_SCOPE, WRITE_SCOPE];
    let alice = Some((ALICE, both));
    let bob = Some(("bob", both));
    let (status, _, body) = call_as(
        f,
        alice,
        Method::POST,
        "/notes",
        Some(r#"{"name":"Biscuit"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let uri = format!("/notes/{}", body["id"]);

    let (status, _, page) = call_as(f, bob, Method::GET, "/notes", None).await;
    assert_eq!((status, page), (StatusCode::OK, json!({"items": []})));
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(r#"{"name":"Bob's now"}"#)),
        (Method::DELETE, None),
    ] {
        let (status, _, problem) = call_as(f, bob, method.clone(), &uri, body).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "bob's {method} of alice's note"
        );
        assert_eq!(problem["status"], 404, "{problem}");
    }
    let (status, _, note) = call_as(f, alice, Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(note["name"], "Biscuit", "unchanged by bob");

    // Scopes: none, read only, write only; an unknown caller gets 401.
    let read_only: &[&str] = &[READ_SCOPE];
    let write_only: &[&str] = &[WRITE_SCOPE];
    let near_miss: &[&str] = &["notes:readx"];
    for (caller, method, path, want) in [
        (None, Method::GET, uri.as_str(), StatusCode::UNAUTHORIZED),
        (
            Some((ALICE, read_only)),
            Method::GET,
            uri.as_str(),
            StatusCode::OK,
        ),
        (
            Some((ALICE, read_only)),
            Method::DELETE,
            uri.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (
            Some((ALICE, write_only)),
            Method::GET,
            "/notes",
            StatusCode::FORBIDDEN,
        ),
        (
            Some((ALICE, near_miss)),
            Method::GET,
            "/notes",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (status, _, body) = call_as(f, caller, method.clone(), path, None).await;
        assert_eq!(status, want, "{caller:?} {method} {path}: {body}");
    }
    lifecycle.stop().await;
}

#[actix_web::test]
async fn sqlite_crud_pages_and_survives_a_restart() {
    crud_pages_and_survives_a_restart(&TestDatabase::sqlite()).await;
}

#[actix_web::test]
async fn sqlite_bad_input_is_a_problem_naming_the_field() {
    bad_input_is_a_problem_naming_the_field(&TestDatabase::sqlite()).await;
}

#[actix_web::test]
async fn sqlite_each_caller_sees_only_their_own_notes() {
    each_caller_sees_only_their_own_notes(&TestDatabase::sqlite()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_each_caller_sees_only_their_own_notes() {
    each_caller_sees_only_their_own_notes(&TestDatabase::postgres()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_crud_pages_and_survives_a_restart() {
    crud_pages_and_survives_a_restart(&TestDatabase::postgres()).await;
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: run by cargo xtask ci"]
async fn postgres_bad_input_is_a_problem_naming_the_field() {
    bad_input_is_a_problem_naming_the_field(&TestDatabase::postgres()).await;
}
