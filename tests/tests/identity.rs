//! Identity against a real OpenID provider (panva's oidc-provider, run on
//! 127.0.0.1): tokens it issues are accepted with their caller and scopes,
//! RFC 6750's refusals, the hostile-token corpus, key rotation, a bounded
//! refetch on unknown keys, and a provider outage. Run against the test app
//! with its protected `/api/v1/test/whoami` (scope `notes:read`), and its
//! generated `notes` feature, whose rows each client sees only its own of,
//! on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use base64::Engine as _;
use petsage_tests::oidc::{self, Alg, Provider};
use petsage_tests::{Scratch, Server, StatusCode};
use serde_json::{Value, json};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");
const WHOAMI: &str = "/api/v1/test/whoami";

fn app(provider: &Provider, env: &[(&str, &str)]) -> Server {
    let issuer = provider.issuer();
    let builder = Server::builder(APP)
        .env("PETSAGE_TEST_WHOAMI", "on")
        .env("PETSAGE_AUTH_MODE", "provider")
        .env("PETSAGE_AUTH_ISSUER", &issuer)
        .env("PETSAGE_AUTH_AUDIENCES", oidc::AUDIENCE);
    env.iter()
        .fold(builder, |builder, (key, value)| builder.env(key, value))
        .start()
}

/// Alice's note is hers alone: bob's list is empty, and his GET, PUT and
/// DELETE of it are 404s that leave it unchanged.
fn owners_are_kept_apart(server: &Server, alice: &str, bob: &str, database: &str) {
    let (alice, bob) = (bearer(alice), bearer(bob));
    let send = |method: &str, path: &str, who: &str, body: Option<Value>| {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(server.url(path))
            .header("authorization", who)
            .header("content-type", "application/json")
            .body(body.map(|b| b.to_string()).unwrap_or_default())
            .expect("request");
        server.exchange(request)
    };
    let created = send(
        "POST",
        "/api/v1/notes",
        &alice,
        Some(json!({"name": "alice's"})),
    );
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_i64().expect("id");
    let note = format!("/api/v1/notes/{id}");
    let listed = send("GET", "/api/v1/notes", &bob, None);
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(
        listed.json()["items"],
        json!([]),
        "bob's list: {}",
        listed.body
    );
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"name": "bob's now"}))),
        ("DELETE", None),
    ] {
        let reply = send(method, &note, &bob, body);
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "bob {method}: {}",
            reply.body
        );
        println!(
            "owners on {database}: bob {method} {note}: {}",
            reply.status.as_u16()
        );
    }
    let mine = send("GET", &note, &alice, None);
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.json(), json!({"id": id, "name": "alice's"}));
    let listed = send("GET", "/api/v1/notes", &alice, None);
    assert_eq!(
        listed.json()["items"],
        json!([{"id": id, "name": "alice's"}])
    );
    println!("owners on {database}: alice's note unchanged after bob's attempts; bob's list empty");
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `token` with its header replaced: the signature no longer covers it.
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').expect("a JWT");
    format!("{}.{rest}", b64(header))
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let mut head: jsonwebtoken::Header = serde_json::from_value(header.clone()).expect("a header");
    head.alg = jsonwebtoken::Algorithm::HS256;
    let key = jsonwebtoken::EncodingKey::from_secret(secret).expect("a key");
    jsonwebtoken::encode(&head, claims, &key).expect("signs")
}

#[test]
#[ignore = "needs node and oidc-provider: run by cargo xtask ci"]
fn tokens_from_a_real_provider_are_accepted_and_every_forgery_refused() {
    let scratch = Scratch::new("identity");
    let mut provider = Provider::start(scratch.path(), Alg::Rs256);
    let server = app(&provider, &[]);

    // Two clients, each seen as itself.
    for (client, secret) in [("alice", "alice-secret"), ("bob", "bob-secret")] {
        let token = provider.token(client, secret, "notes:read notes:write");
        let reply = server.get_with(WHOAMI, &[("authorization", &bearer(&token))]);
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let caller = reply.json();
        assert_eq!(caller["subject"], client);
        assert_eq!(caller["issuer"], provider.issuer());
        assert_eq!(caller["scopes"], json!(["notes:read", "notes:write"]));
        println!("{client}: {caller}");
    }

    // Owners: each client sees only its own notes, on SQLite and PostgreSQL.
    let alice_rw = provider.token("alice", "alice-secret", "notes:read notes:write");
    let bob_rw = provider.token("bob", "bob-secret", "notes:read notes:write");
    owners_are_kept_apart(&server, &alice_rw, &bob_rw, "SQLite");
    let db = petsage_db::testing::TestDatabase::postgres();
    let on_postgres = app(&provider, &[("PETSAGE_DATABASE_URL", db.url())]);
    owners_are_kept_apart(&on_postgres, &alice_rw, &bob_rw, "PostgreSQL");
    drop(on_postgres);

    // RFC 6750, each with a problem body carrying the request ID.
    let alice = provider.token("alice", "alice-secret", "notes:read");
    let pets_only = provider.token("alice", "alice-secret", "pets:read");
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "no token",
            vec![],
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"petsage\"",
        ),
        (
            "bad token",
            vec![("authorization", bearer("not.a.token"))],
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"petsage\", error=\"invalid_token\", error_description=\"the token is malformed\"",
        ),
        (
            "missing scope",
            vec![("authorization", bearer(&pets_only))],
            StatusCode::FORBIDDEN,
            "Bearer realm=\"petsage\", error=\"insufficient_scope\", scope=\"notes:read\"",
        ),
        (
            "two Authorization headers",
            vec![
                ("authorization", bearer(&alice)),
                ("authorization", bearer(&alice)),
            ],
            StatusCode::BAD_REQUEST,
            "Bearer realm=\"petsage\", error=\"invalid_request\"",
        ),
        (
            "not Bearer",
            vec![("authorization", format!("Token {alice}"))],
            StatusCode::BAD_REQUEST,
            "Bearer realm=\"petsage\", error=\"invalid_request\"",
        ),
    ];
    for (name, headers, status, challenge) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = server.get_with(WHOAMI, &headers);
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some(challenge), "{name}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        let problem = reply.json();
        assert_eq!(problem["status"], status.as_u16(), "{name}");
        assert!(problem["request_id"].is_string(), "{name}: {problem}");
        println!("{name}: {} {}", reply.status.as_u16(), challenge);
    }

    // The hostile corpus: each refused with 401 (or 400), never 2xx.
    let (header, claims) = oidc::decode_unverified(&alice);
    let kid = header["kid"].as_str().expect("a kid").to_owned();
    let jwks = provider.jwks();
    let rsa = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published")
        .clone();
    let now = claims["iat"].as_u64().expect("iat");
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3600);
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().expect("claims").remove("exp");
    let mut exp_text = claims.clone();
    exp_text["exp"] = json!(claims["exp"].to_string());
    let mut future = claims.clone();
    future["nbf"] = json!(now + 3600);
    let mut evil_iss = claims.clone();
    evil_iss["iss"] = json!("http://127.0.0.1:1");
    let mut no_aud = claims.clone();
    no_aud.as_object_mut().expect("claims").remove("aud");
    let resign = |claims: &Value| with_header(&format!("x.{}.x", b64(claims)), &header);
    let corpus: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": kid})),
                b64(&claims)
            ),
        ),
        (
            "HS256 keyed with the RSA public key",
            hs256(&header, &claims, rsa.to_string().as_bytes()),
        ),
        (
            "HS256 keyed with the modulus",
            hs256(&header, &claims, rsa["n"].as_str().expect("n").as_bytes()),
        ),
        (
            "alg not the key's",
            with_header(
                &alice,
                &json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}),
            ),
        ),
        (
            "embedded jwk",
            with_header(&alice, &json!({"alg": "RS256", "kid": kid, "jwk": rsa})),
        ),
        (
            "jku",
            with_header(
                &alice,
                &json!({"alg": "RS256", "kid": kid, "jku": format!("{}/jwks", provider.issuer())}),
            ),
        ),
        (
            "x5u",
            with_header(
                &alice,
                &json!({"alg": "RS256", "kid": kid, "x5u": format!("{}/cert", provider.issuer())}),
            ),
        ),
        (
            "unknown crit",
            with_header(
                &alice,
                &json!({"alg": "RS256", "kid": kid, "crit": ["urn:x"], "urn:x": 1}),
            ),
        ),
        ("expired", resign(&expired)),
        ("exp missing", resign(&no_exp)),
        ("exp a string", resign(&exp_text)),
        ("nbf in the future", resign(&future)),
        ("wrong iss", resign(&evil_iss)),
        ("aud missing", resign(&no_aud)),
        (
            "another audience",
            provider.token_for("alice", "alice-secret", "notes:read", "urn:petsage:pets"),
        ),
        ("an ID token", provider.id_token("alice")),
        ("9 KiB", format!("{alice}{}", "A".repeat(9 * 1024))),
    ];
    for (name, token) in &corpus {
        let reply = server.get_with(WHOAMI, &[("authorization", &bearer(token))]);
        assert!(
            matches!(reply.status.as_u16(), 400 | 401),
            "{name}: {} {}",
            reply.status,
            reply.body
        );
        println!("hostile {name}: {}", reply.status.as_u16());
    }
    let reply = server.get(&format!("{WHOAMI}?access_token={alice}"));
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "the query string is never read"
    );
    println!("hostile ?access_token=: {}", reply.status.as_u16());

    // Key rotation: a token under the new kid is accepted after one
    // refetch; one signed by the removed key is refused.
    let fetches_before = provider.jwks_fetches();
    provider.restart_with_new_keys();
    let rotated = provider.token("alice", "alice-secret", "notes:read");
    assert_ne!(oidc::decode_unverified(&rotated).0["kid"], kid.as_str());
    let reply = server.get_with(WHOAMI, &[("authorization", &bearer(&rotated))]);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let refetches = provider.jwks_fetches();
    assert_eq!(
        refetches, 1,
        "one refetch after the rotation (count restarts with the provider)"
    );
    let reply = server.get_with(WHOAMI, &[("authorization", &bearer(&alice))]);
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "the removed key's token"
    );
    println!(
        "rotation: new kid accepted after {refetches} refetch (before: {fetches_before}); old kid refused"
    );

    // 1,000 requests naming random unknown keys.
    let started = Instant::now();
    let fetches_before = provider.jwks_fetches();
    for n in 0..1000u32 {
        let forged = with_header(
            &rotated,
            &json!({"alg": "RS256", "kid": format!("unknown-{n}-{}", started.elapsed().as_nanos())}),
        );
        let reply = server.get_with(WHOAMI, &[("authorization", &bearer(&forged))]);
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    let seconds = started.elapsed().as_secs_f64();
    let fetched = provider.jwks_fetches() - fetches_before;
    let allowed = (seconds / 30.0).ceil() as u64 + 1;
    println!("1000 unknown kids in {seconds:.1} s: {fetched} key-set fetches (allowed {allowed})");
    assert!(fetched <= allowed, "{fetched} fetches in {seconds:.1} s");
    drop(server);

    // A provider outage: cached keys keep verifying, health turns degraded
    // (auth-keys), readiness stays 200.
    let server = app(
        &provider,
        &[
            ("PETSAGE_AUTH_JWKS_REFRESH", "1s"),
            ("PETSAGE_HEALTH_INTERVAL", "200ms"),
        ],
    );
    let reply = server.get_with(WHOAMI, &[("authorization", &bearer(&rotated))]);
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    provider.stop();
    let limit = Instant::now() + Duration::from_secs(15);
    loop {
        let health = server.get("/api/v1/health").json();
        if health["status"] == "degraded" {
            println!("outage: /api/v1/health {health}");
            break;
        }
        assert!(
            Instant::now() < limit,
            "health never turned degraded: {health}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let reply = server.get_with(WHOAMI, &[("authorization", &bearer(&rotated))]);
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a valid token keeps working: {}",
        reply.body
    );
    assert_eq!(server.get("/api/v1/health/ready").status, StatusCode::OK);
    let ready = server.get("/api/v1/health/ready/auth-keys").json();
    println!("outage: auth-keys {ready}");
    let log = server.finish();
    assert!(!log.contains(&rotated), "the token never reaches the log");
    assert!(!log.contains("panicked"), "{log}");
}
