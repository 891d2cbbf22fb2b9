//! The public HTTP contract, checked over real HTTP against the real server.
use petsage_tests::{Method, Server, StatusCode, raw_exchange};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");
/// The workspace version, which every crate here inherits.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn start() -> Server {
    Server::builder(APP).start()
}

fn assert_problem(reply: &petsage_tests::Reply, status: StatusCode) -> serde_json::Value {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["title"], status.canonical_reason().unwrap_or_default());
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

#[test]
fn health_check_returns_200_ok() {
    let server = start();
    assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
}

#[test]
fn health_check_response_body_is_the_seed_contract() {
    let server = start();
    let reply = server.get("/api/v1/health");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "ok", "service_name": "PetSage Backend", "version": VERSION})
    );
}

#[test]
fn health_is_never_cached() {
    let server = start();
    for method in [Method::GET, Method::HEAD] {
        let reply = server.request(method.clone(), "/api/v1/health");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{method}");
    }
}

#[test]
fn head_health_answers_200_with_get_headers_and_no_body() {
    let server = start();
    let get = server.get("/api/v1/health");

    // Raw TCP, so nothing between us and the server could hide a body.
    let raw = raw_exchange(
        server.addr(),
        b"HEAD /api/v1/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .expect("reply read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header block ends");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body, "", "HEAD must carry no body");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", get.body.len())),
        "{head}"
    );
}

#[test]
fn unknown_path_is_a_404_problem() {
    let server = start();
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v1/health/extra",
        "/api/v2/health",
    ] {
        let reply = server.get(path);
        let body = assert_problem(&reply, StatusCode::NOT_FOUND);
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(path)),
            "{body}"
        );
    }
}

#[test]
fn wrong_method_is_a_405_problem_with_allow() {
    let server = start();
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        for path in ["/api/v1/health", "/api-docs/openapi.json"] {
            let reply = server.request(method.clone(), path);
            assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method} {path}");
        }
    }
}

#[test]
fn root_and_docs_redirect_to_swagger_ui() {
    let server = start();
    for path in ["/", "/docs"] {
        let reply = server.get(path);
        assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT, "{path}");
        assert_eq!(reply.header("location"), Some("/docs/"), "{path}");
    }
}

#[test]
fn swagger_ui_is_served_and_points_at_the_document() {
    let server = start();
    let page = server.get("/docs/");
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(page.body.contains("swagger-ui"), "{}", page.body);
    let init = server.get("/docs/swagger-initializer.js");
    assert_eq!(init.status, StatusCode::OK);
    assert!(
        init.body.contains("/api-docs/openapi.json"),
        "{}",
        init.body
    );
    let bundle = server.get("/docs/swagger-ui-bundle.js");
    assert_eq!(bundle.status, StatusCode::OK);
    assert!(
        bundle.body.len() > 100_000,
        "the vendored bundle is served whole"
    );
}

#[test]
fn swagger_ui_assets_go_out_compressed_with_validators_and_charsets() {
    let server = start();
    let bundle = "/docs/swagger-ui-bundle.js";
    let plain = server.get(bundle);
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(
        plain.header("content-encoding"),
        None,
        "no Accept-Encoding, no coding"
    );
    assert_eq!(
        plain.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert!(
        plain
            .header("cache-control")
            .is_some_and(|c| c.contains("max-age=")),
        "{:?}",
        plain.headers
    );
    for (accept, coding) in [("gzip", "gzip"), ("gzip, deflate, br", "br")] {
        let packed = server.get_with(bundle, &[("accept-encoding", accept)]);
        assert_eq!(packed.status, StatusCode::OK, "{accept}");
        assert_eq!(packed.header("content-encoding"), Some(coding), "{accept}");
        assert!(
            packed.size * 10 <= plain.size * 3,
            "{coding}: {} of {} bytes is over 30 %",
            packed.size,
            plain.size
        );
        // A revisit with the validator transfers nothing.
        let etag = packed.header("etag").expect("an ETag").to_owned();
        let again = server.get_with(
            bundle,
            &[("accept-encoding", accept), ("if-none-match", &etag)],
        );
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{accept}");
        assert_eq!(again.size, 0);
        assert_eq!(again.header("etag"), Some(etag.as_str()));
    }
    let other = server.get_with(bundle, &[("if-none-match", "\"not-this-one\"")]);
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(
        server.get("/docs/").header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        server.get("/docs/no-such-file.js").status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_openapi_document_has_a_validator_and_health_has_none() {
    let server = start();
    let doc = server.get("/api-docs/openapi.json");
    let etag = doc.header("etag").expect("the document has an ETag");
    let again = server.get_with("/api-docs/openapi.json", &[("if-none-match", etag)]);
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    // Health stays as it was: no coding, no validator, whatever is asked.
    let health = server.get_with(
        "/api/v1/health",
        &[("accept-encoding", "gzip, br"), ("if-none-match", "*")],
    );
    assert_eq!(health.status, StatusCode::OK);
    for name in ["content-encoding", "etag", "vary"] {
        assert_eq!(health.header(name), None, "{name} on a health answer");
    }
}

#[test]
fn openapi_document_describes_the_health_check() {
    let server = start();
    let reply = server.get("/api-docs/openapi.json");
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "PetSage Backend API");
    assert_eq!(doc["info"]["version"], VERSION);
    assert!(
        doc["info"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("Welcome to the PetSage API"))
    );

    let get = &doc["paths"]["/api/v1/health"]["get"];
    assert_eq!(get["tags"], serde_json::json!(["System"]));
    assert_eq!(get["summary"], "Perform a system health check");
    assert_eq!(get["operationId"], "health_check");
    assert!(
        get["description"]
            .as_str()
            .is_some_and(|d| d.contains("automated monitoring"))
    );
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/HealthCheckResponse"
    );
    assert!(
        doc["paths"]["/api/v1/health"].get("head").is_none(),
        "HEAD is served (see head_health_answers_200_with_get_headers_and_no_body) but not listed as its own operation"
    );

    let schema = &doc["components"]["schemas"]["HealthCheckResponse"];
    for field in ["status", "service_name", "version"] {
        assert!(
            schema["properties"][field]["description"].is_string(),
            "{field}: {schema}"
        );
        assert!(
            schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&field.into())),
            "{field}"
        );
    }
    assert_eq!(schema["example"]["service_name"], "PetSage Backend");
}

#[test]
fn operation_ids_are_unique() {
    let server = start();
    let doc = server.get("/api-docs/openapi.json").json();
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("path item").values() {
            if let Some(id) = op["operationId"].as_str() {
                assert!(!ids.contains(&id.to_owned()), "duplicate operationId {id}");
                ids.push(id.to_owned());
            }
        }
    }
    assert!(!ids.is_empty());
}

/// What is served and what is documented cannot drift apart.
#[test]
fn served_routes_and_documented_paths_match() {
    let server = start();
    let doc = server.get("/api-docs/openapi.json").json();
    let paths = doc["paths"].as_object().expect("paths");

    // Every documented operation answers, and not with the router's 404.
    for (path, item) in paths {
        let concrete = with_example_params(path);
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let reply = server.request(method.clone(), &concrete);
            let routed =
                reply.status != StatusCode::NOT_FOUND || !reply.body.contains("no route for");
            assert!(
                routed,
                "{method} {path} is documented but not served: {}",
                reply.body
            );
            assert_ne!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }

    // Every served feature route is documented, with the same methods; HEAD,
    // served beside every GET, is not an operation of its own.
    let routes = petsage_app::routes(&petsage_tests::features());
    assert!(!routes.is_empty());
    for (path, mut info) in routes {
        let item = paths
            .get(&path)
            .unwrap_or_else(|| panic!("{path} is served but not documented"));
        info.methods.retain(|method| method.as_str() != "HEAD");
        for method in &info.methods {
            let key = method.as_str().to_lowercase();
            assert!(
                item.get(&key).is_some(),
                "{method} {path} is served but not documented"
            );
        }
        let documented = item.as_object().expect("path item").len();
        assert_eq!(
            documented,
            info.methods.len(),
            "{path}: documented methods differ from served ones"
        );
    }
}

#[test]
fn docs_can_be_switched_off() {
    let server = Server::builder(APP).env("PETSAGE_DOCS", "false").start();
    for path in ["/api-docs/openapi.json", "/docs/", "/docs", "/"] {
        assert_problem(&server.get(path), StatusCode::NOT_FOUND);
    }
    assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
}

#[test]
fn every_response_carries_nosniff() {
    let server = start();
    for path in [
        "/api/v1/health",
        "/nope",
        "/",
        "/docs/",
        "/api-docs/openapi.json",
    ] {
        assert_eq!(
            server.get(path).header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

#[test]
fn start_up_logs_address_version_and_workers() {
    let server = start();
    let expected = format!(
        "listening on http://{} (version {VERSION}, 2 workers",
        server.addr()
    );
    assert!(server.log().contains(&expected), "{}", server.log());
}

#[test]
fn health_polls_stay_out_of_the_access_log() {
    let server = start();
    for _ in 0..5 {
        assert_eq!(server.get("/api/v1/health").status, StatusCode::OK);
    }
    assert_eq!(server.get("/nope").status, StatusCode::NOT_FOUND);
    // The whole log, read to the end after the server stopped.
    let log = server.finish();
    assert!(log.contains("\"GET /nope HTTP/1.1\" 404"), "{log}");
    assert!(!log.contains("GET /api/v1/health"), "{log}");
}

/// `/pets/{id}` becomes `/pets/1`: a concrete path the router can match.
fn with_example_params(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn a_feature_middleware_wraps_that_features_routes_only() {
    let server = start();
    let own = server.get("/api/v1/test/checks/nope/runs");
    assert_eq!(
        own.header(petsage_tests::faults::FEATURE_HEADER),
        Some("test-faults"),
        "{}",
        own.body
    );
    for path in [
        "/api/v1/health",
        "/api/v1/notes",
        "/api-docs/openapi.json",
        "/api/v1/nope",
    ] {
        let reply = server.get(path);
        assert_eq!(
            reply.header(petsage_tests::faults::FEATURE_HEADER),
            None,
            "{path}"
        );
    }
}

/// The scopes an operation's `security` names, or `None` when it is public.
fn documented_scopes(operation: &serde_json::Value) -> Option<Vec<String>> {
    let requirements = operation["security"].as_array()?;
    let schemes = requirements
        .iter()
        .filter_map(|r| r.as_object())
        .find(|r| !r.is_empty())?;
    let scopes = schemes.values().next()?.as_array()?;
    Some(
        scopes
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Declared once, enforced and documented from the same declaration: each
/// documented-secured operation answers `401` without a token and `403`
/// naming the documented scopes with a token that lacks them; each public one
/// answers without asking for a token. (`served_routes_and_documented_paths_match`
/// shows that every served route is documented, so this covers every route.)
#[test]
fn enforcement_and_documentation_agree_for_every_operation() {
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_FAULTS", "off")
        .env("PETSAGE_TEST_WHOAMI", "on")
        .start();
    let doc = server.get("/api-docs/openapi.json").json();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer", "{schemes}");
    let no_scopes = format!("Bearer {}", server.token("alice", &[]));
    let (mut secured, mut public) = (0, 0);
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = with_example_params(path);
        for (method, operation) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let anonymous = server.request(method.clone(), &concrete);
            let challenge = anonymous.header("www-authenticate");
            match documented_scopes(operation) {
                Some(scopes) => {
                    secured += 1;
                    assert_eq!(
                        anonymous.status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path}"
                    );
                    assert_eq!(
                        challenge,
                        Some(r#"Bearer realm="petsage""#),
                        "{method} {path}"
                    );
                    assert!(!scopes.is_empty(), "{method} {path} documents no scope");
                    let request = ureq::http::Request::builder()
                        .method(method.clone())
                        .uri(server.url(&concrete))
                        .header("authorization", &no_scopes)
                        .body(())
                        .expect("request");
                    let reply = server.exchange(request);
                    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method} {path}");
                    let expected = format!(
                        r#"Bearer realm="petsage", error="insufficient_scope", scope="{}""#,
                        scopes.join(" ")
                    );
                    assert_eq!(
                        reply.header("www-authenticate"),
                        Some(expected.as_str()),
                        "{method} {path}"
                    );
                }
                None => {
                    public += 1;
                    assert_ne!(
                        anonymous.status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path}"
                    );
                    assert_ne!(anonymous.status, StatusCode::FORBIDDEN, "{method} {path}");
                    assert_eq!(challenge, None, "{method} {path}");
                }
            }
        }
    }
    println!("{secured} secured and {public} public operations checked");
    assert!(
        secured >= 6 && public >= 3,
        "{secured} secured, {public} public"
    );
}
