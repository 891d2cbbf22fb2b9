//! `cargo xtask new-feature`, end to end: generate a feature into a copy of
//! the workspace, build and test it, serve it, and reject bad names with
//! nothing written. Slow (it builds a second workspace), so it is #[ignore]d
//! for a bare `cargo test` and run by `cargo xtask ci`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use petsage_tests::{Server, StatusCode};

/// The repository this test was built from.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Copies what a clean checkout holds (no target/, no .git) into `to`: the
/// sources and every root file the tools read (clippy.toml, .cargo/, …).
fn copy_workspace(to: &Path) {
    let _ = fs::remove_dir_all(to);
    for entry in fs::read_dir(repo()).expect("readdir") {
        let name = entry.expect("entry").file_name();
        // target/ and data/ are what builds and runs leave behind.
        if !["target", ".git", "data"].contains(&name.to_string_lossy().as_ref()) {
            copy(&repo().join(&name), &to.join(&name));
        }
    }
    assert!(to.join("clippy.toml").is_file(), "clippy.toml is copied");
}

/// A scratch workspace: its copy of the sources sits outside the repository
/// (a root config file the copy left out would otherwise be found in a parent
/// folder of the copy), its target folder inside this build's, kept between
/// runs so that the builds stay incremental.
fn scratch(label: &str) -> Workspace {
    let repo = fs::canonicalize(repo()).expect("the repository");
    let tag: String = repo
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let ws = Workspace {
        root: std::env::temp_dir().join(format!("petsage-{label}{tag}")),
        target: Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-feature-target"),
    };
    copy_workspace(&ws.root);
    ws
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).expect("mkdir");
        for entry in fs::read_dir(from).expect("readdir") {
            let entry = entry.expect("entry");
            copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        fs::create_dir_all(to.parent().expect("has parent")).expect("mkdir");
        fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// Every file under `root` and its contents.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("readdir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

struct Workspace {
    root: PathBuf,
    target: PathBuf,
}

impl Workspace {
    fn cargo(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args(args)
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn new_feature(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all = vec!["run", "-q", "--offline", "-p", "xtask", "--", "new-feature"];
        all.extend_from_slice(args);
        self.cargo(&all)
    }

    fn assert_ok(&self, args: &[&str]) {
        let (code, stdout, stderr) = self.cargo(args);
        assert_eq!(code, Some(0), "cargo {args:?} failed:\n{stdout}\n{stderr}");
    }
}

#[test]
fn new_feature_refuses_a_name_the_workspace_holds_and_changes_nothing() {
    let ws = scratch("name-in-use");
    let pristine = snapshot(&ws.root);
    // The test suite's own feature: no crates/petsage-notes folder, but its
    // crate, its member folder and its dependency key are all there.
    let (code, stdout, stderr) = ws.new_feature(&["notes"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert_eq!(
        stderr,
        "xtask: petsage-notes already exists: crate in tests/notes/Cargo.toml, \
         workspace member tests/notes, dependency key in Cargo.toml\n"
    );
    assert!(
        snapshot(&ws.root) == pristine,
        "refusing notes changed the workspace"
    );
    let (code, _, stderr) = ws.new_feature(&["db", "--dry-run"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.starts_with("xtask: petsage-db already exists: folder crates/petsage-db, "),
        "{stderr}"
    );
    assert!(
        snapshot(&ws.root) == pristine,
        "refusing db changed the workspace"
    );
}

#[test]
#[ignore = "slow: builds a generated workspace; run by cargo xtask ci"]
fn new_feature_generates_a_working_feature_and_rejects_bad_names() {
    let ws = scratch("new-feature");
    let pristine = snapshot(&ws.root);
    // A two-word name exercises every form (kebab, snake, Pascal, title);
    // numbered if a developer already has such a feature.
    let name = (1..)
        .map(|n| {
            if n == 1 {
                "pet-profiles".to_owned()
            } else {
                format!("pet-profiles-{n}")
            }
        })
        .find(|name| {
            !ws.root
                .join("crates")
                .join(format!("petsage-{name}"))
                .exists()
        })
        .expect("a free name");
    let krate = format!("petsage-{name}");
    let ident = name.replace('-', "_");
    let title: Vec<String> = name
        .split('-')
        .map(|word| word[..1].to_uppercase() + &word[1..])
        .collect();
    let title = title.join(" ");

    // Bad names: exit 2, one line, nothing written.
    for bad in [
        "Bad_Name", "1pets", "pets!", "type", "app", "core", "health",
    ] {
        let (code, _, stderr) = ws.new_feature(&[bad]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{bad}: {stderr}");
        assert!(
            snapshot(&ws.root) == pristine,
            "{bad} changed the workspace"
        );
    }

    // A dry run lists every file and edit and writes nothing.
    let (code, stdout, stderr) = ws.new_feature(&[&name, "--dry-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    let created = [
        "Cargo.toml",
        "migrations/postgres/1_create_table.sql",
        "migrations/sqlite/1_create_table.sql",
        "src/lib.rs",
        "src/model.rs",
        "src/routes.rs",
        "src/store.rs",
        "tests/api.rs",
    ]
    .map(|file| format!("crates/{krate}/{file}"));
    for file in &created {
        assert!(
            stdout.contains(&format!("create  {file}")),
            "missing {file}:\n{stdout}"
        );
    }
    for file in [
        "Cargo.toml",
        "crates/petsage-app/Cargo.toml",
        "crates/petsage-app/src/lib.rs",
    ] {
        assert!(
            stdout.contains(&format!("edit    {file}")),
            "missing {file}:\n{stdout}"
        );
    }
    assert!(
        snapshot(&ws.root) == pristine,
        "--dry-run changed the workspace"
    );

    // A step that cannot be done leaves everything as it was.
    let app_lib = ws.root.join("crates/petsage-app/src/lib.rs");
    let original = fs::read_to_string(&app_lib).expect("read");
    fs::write(
        &app_lib,
        original.replace("adds new features above this line", "(marker removed)"),
    )
    .expect("write");
    let broken = snapshot(&ws.root);
    let (code, _, stderr) = ws.new_feature(&[&name]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        snapshot(&ws.root) == broken,
        "a failed run left changes behind"
    );
    fs::write(&app_lib, &original).expect("restore");

    // The real thing.
    let (code, stdout, stderr) = ws.new_feature(&[&name]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("next:"), "{stdout}");
    let after = snapshot(&ws.root);
    let changed: Vec<String> = after
        .iter()
        .filter(|(path, text)| pristine.get(*path) != Some(*text))
        .map(|(path, _)| path.display().to_string())
        .collect();
    let mut expected_changes = vec![
        "Cargo.toml".to_owned(),
        "crates/petsage-app/Cargo.toml".to_owned(),
        "crates/petsage-app/src/lib.rs".to_owned(),
    ];
    expected_changes.extend(created);
    expected_changes.sort();
    assert_eq!(changed, expected_changes);
    let (code, _, stderr) = ws.new_feature(&[&name]);
    assert_eq!(code, Some(2), "an existing feature is refused: {stderr}");
    // `cargo run` itself records the new member in Cargo.lock; xtask wrote nothing.
    let mut again = snapshot(&ws.root);
    again.remove(Path::new("Cargo.lock"));
    let mut expected = after.clone();
    expected.remove(Path::new("Cargo.lock"));
    assert!(
        again == expected,
        "refusing an existing feature changed the workspace"
    );

    // As generated, it is formatted, lint-clean and tested on SQLite and PostgreSQL.
    ws.assert_ok(&["fmt", "--all", "--check"]);
    ws.assert_ok(&[
        "clippy",
        "--offline",
        "-p",
        &krate,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    ws.assert_ok(&["test", "--offline", "-p", &krate, "--", "--include-ignored"]);

    // A second feature touches one line outside its crate, plus the two manifests.
    let before_second = snapshot(&ws.root);
    let (code, _, stderr) = ws.new_feature(&["reminders", "--singular", "memo"]);
    assert_eq!(code, Some(0), "{stderr}");
    let after_second = snapshot(&ws.root);
    let outside: Vec<String> = after_second
        .iter()
        .filter(|(path, text)| {
            before_second.get(*path) != Some(*text) && !path.starts_with("crates/petsage-reminders")
        })
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert_eq!(
        outside,
        [
            "Cargo.toml",
            "crates/petsage-app/Cargo.toml",
            "crates/petsage-app/src/lib.rs"
        ]
    );
    let app_lib_diff = line_diff(
        &before_second[Path::new("crates/petsage-app/src/lib.rs")],
        &after_second[Path::new("crates/petsage-app/src/lib.rs")],
    );
    assert_eq!(
        app_lib_diff,
        ["petsage_core::register::<petsage_reminders::Reminders>(),"]
    );
    ws.assert_ok(&["build", "--offline", "-p", "petsage-app"]);
    let binary = ws.target.join("debug/petsage-app");
    let binary = binary.to_str().expect("utf-8 path");

    // Its setting is in --help under its own heading; a bad value exits 2 with one line.
    let (code, help, _) = petsage_tests::run_to_exit(binary, &["--help"], &[]);
    assert_eq!(code, Some(0));
    let heading = format!(
        "{}{} settings:",
        name[..1].to_uppercase(),
        name[1..].replace('-', " ")
    );
    let section = help
        .split(&heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no {heading:?} in --help:\n{help}"));
    let flag = format!("--{name}-default-limit");
    let env = format!("PETSAGE_{}_DEFAULT_LIMIT", ident.to_uppercase());
    assert!(section.contains(&flag) && section.contains(&env), "{help}");
    let (code, _, stderr) = petsage_tests::run_to_exit(binary, &[], &[(&env, "500")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&env), "{stderr}");

    // The app serves it on SQLite, and what it stored is there after a restart.
    let data = petsage_tests::Scratch::new("new-feature");
    let id = {
        let server = Server::builder(binary).data_dir(data.path()).start();
        let id = create_and_read(&server, &name, &ident, &title);
        let doc = server.get("/api-docs/openapi.json").json();
        assert_eq!(
            doc["paths"]["/api/v1/reminders"]["post"]["summary"], "Create a memo",
            "--singular names one item"
        );
        let ready = server.get("/api/v1/health/ready").json();
        assert!(
            ready["checks"]
                .as_array()
                .expect("checks")
                .iter()
                .any(|c| c["name"] == "database" && c["status"] == "ok"),
            "{ready}"
        );
        id
    };
    let server = Server::builder(binary).data_dir(data.path()).start();
    server.act_as("alice", &[&format!("{name}:read")]);
    let reply = server.get(&format!("/api/v1/{name}/{id}"));
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["name"], "Biscuit");
    drop(server);

    // And the same binary on PostgreSQL.
    let db = petsage_db::testing::TestDatabase::postgres();
    let server = Server::builder(binary)
        .env("PETSAGE_DATABASE_URL", db.url())
        .start();
    create_and_read(&server, &name, &ident, &title);
    let health = server.get("/api/v1/health");
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(
        health.json(),
        serde_json::json!({"status": "ok", "service_name": "PetSage Backend", "version": env!("CARGO_PKG_VERSION")})
    );
}

/// The lines of `after` that are not in `before`, trimmed.
fn line_diff(before: &[u8], after: &[u8]) -> Vec<String> {
    let before = String::from_utf8_lossy(before);
    let after = String::from_utf8_lossy(after);
    let old: Vec<&str> = before.lines().collect();
    after
        .lines()
        .filter(|line| !old.contains(line))
        .map(|line| line.trim().to_owned())
        .collect()
}

/// Creates, lists, replaces and reads an item of feature `name`; checks the
/// documentation; returns the item's id.
fn create_and_read(server: &Server, name: &str, ident: &str, title: &str) -> i64 {
    // Its routes need `<name>:read` and `<name>:write`; the harness runs dev mode.
    let (read, write) = (format!("{name}:read"), format!("{name}:write"));
    let anonymous = server.get(&format!("/api/v1/{name}"));
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.body
    );
    server.act_as("alice", &[&read, &write]);
    let created = server.post_json(
        &format!("/api/v1/{name}"),
        &serde_json::json!({"name": "Biscuit"}),
    );
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.json()["id"].as_i64().expect("an id");
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/{name}/{id}").as_str())
    );
    let one = server.get(&format!("/api/v1/{name}/{id}"));
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["name"], "Biscuit");
    let page = server.get(&format!("/api/v1/{name}?limit=1"));
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.json()["items"].as_array().map(Vec::len), Some(1));
    for missing in [
        format!("/api/v1/{name}/999999"),
        format!("/api/v1/{name}/not-a-number"),
    ] {
        let reply = server.get(&missing);
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{missing}"
        );
    }
    let doc = server.get("/api-docs/openapi.json").json();
    for (path, method, id) in [
        (format!("/api/v1/{name}"), "get", format!("{ident}_list")),
        (format!("/api/v1/{name}"), "post", format!("{ident}_create")),
        (
            format!("/api/v1/{name}/{{id}}"),
            "get",
            format!("{ident}_get"),
        ),
        (
            format!("/api/v1/{name}/{{id}}"),
            "put",
            format!("{ident}_replace"),
        ),
        (
            format!("/api/v1/{name}/{{id}}"),
            "delete",
            format!("{ident}_delete"),
        ),
    ] {
        let op = &doc["paths"][&path][method];
        assert_eq!(op["operationId"], id.as_str(), "{method} {path}");
        assert_eq!(op["tags"], serde_json::json!([title]), "{method} {path}");
        let one = title.to_lowercase();
        let one = one.strip_suffix('s').unwrap_or(&one);
        if method != "get" {
            assert!(
                op["summary"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!(" a {one}"))),
                "one item is named in the singular: {method} {path}: {}",
                op["summary"]
            );
        }
    }
    id
}
