//! The docs page in a real browser: Debian's chromium, headless, driven by
//! playwright-core (`tests/browser/docs.cjs`). Both are installed by
//! `cargo xtask ci`, which runs this test.

use std::path::{Path, PathBuf};
use std::process::Command;

use petsage_tests::{Scratch, Server};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

/// `target/`, where `cargo xtask ci` installs playwright-core and this test leaves its screenshot.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder holds tmp/")
        .to_path_buf()
}

/// Runs `tests/browser/docs.cjs` against `server` with `extra` arguments: what it saw.
fn docs_page(server: &Server, screenshot: &Path, extra: &[&str]) -> serde_json::Value {
    let browser_dir = target_dir().join("browser");
    let _ = std::fs::remove_file(screenshot);
    let profile = Scratch::new("chromium-profile");
    let output = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/docs.cjs"))
        .arg(server.url(""))
        .arg(screenshot)
        .arg(profile.path())
        .args(extra)
        .env("NODE_PATH", browser_dir.join("node_modules"))
        .output()
        .expect("node runs (cargo xtask ci installs npm and playwright-core)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

#[test]
#[ignore = "needs chromium and playwright-core run by cargo xtask ci"]
fn swagger_ui_renders_and_executes_the_health_check_in_chromium() {
    // The binary as operators run it: PetSage's own features and nothing
    // else (PETSAGE_APP_BINARY may name the release petsage-app).
    let binary = std::env::var("PETSAGE_APP_BINARY").unwrap_or_else(|_| APP.to_owned());
    let server = Server::builder(&binary)
        .env("PETSAGE_TEST_NOTES", "off")
        .env("PETSAGE_TEST_FAULTS", "off")
        .start();
    let screenshot = target_dir().join("browser/docs-health-executed.png");
    let seen = docs_page(&server, &screenshot, &[]);

    assert_eq!(
        seen["title"]
            .as_str()
            .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .as_deref(),
        Some("PetSage Backend API"),
        "{seen}"
    );
    assert!(
        seen["systemTag"].as_u64() > Some(0),
        "no System tag: {seen}"
    );
    assert_eq!(seen["status"], "200", "{seen}");
    let body: serde_json::Value =
        serde_json::from_str(seen["body"].as_str().expect("a body")).expect("JSON body");
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "service_name": "PetSage Backend", "version": env!("CARGO_PKG_VERSION")})
    );
    // The browser asked for compression and got the bundle compressed.
    let bundle = &seen["encodings"]["/docs/swagger-ui-bundle.js"];
    assert!(
        bundle == "br" || bundle == "gzip",
        "bundle sent as {bundle}"
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    eprintln!("screenshot: {}", screenshot.display());
}

#[test]
#[ignore = "needs chromium and playwright-core run by cargo xtask ci"]
fn swagger_ui_authorize_with_a_dev_token_lets_try_it_out_reach_a_protected_route() {
    // A generated feature in dev mode, as the generator's next steps describe.
    let server = Server::builder(APP)
        .env("PETSAGE_TEST_FAULTS", "off")
        .start();
    let token = server.token("alice", petsage_tests::NOTES_SCOPES);
    server.act_as("alice", petsage_tests::NOTES_SCOPES);
    let created = server.post_json(
        "/api/v1/notes",
        &serde_json::json!({"name": "written before the browser came"}),
    );
    assert_eq!(created.status.as_u16(), 201, "{}", created.body);

    let screenshot = target_dir().join("browser/docs-authorized.png");
    let seen = docs_page(
        &server,
        &screenshot,
        &[&token, "operations-Notes-notes_list"],
    );
    let protected = &seen["protected"];
    assert_eq!(protected["before"], "401", "without a token: {seen}");
    assert_eq!(protected["after"], "200", "after Authorize: {seen}");
    let body: serde_json::Value =
        serde_json::from_str(protected["body"].as_str().expect("a body")).expect("JSON body");
    assert!(
        body.to_string().contains("written before the browser came"),
        "alice's note in the list: {body}"
    );
}
