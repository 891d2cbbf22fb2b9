//! The command line: bad configuration, a busy port, help, version and the
//! `openapi` subcommand, run against the built binary.

use std::net::TcpListener;

use petsage_tests::run_to_exit;

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

fn assert_one_clear_line(stderr: &str) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn bad_bind_variable_exits_2_naming_it_and_the_expected_form() {
    let (code, _, stderr) = run_to_exit(APP, &[], &[("PETSAGE_BIND", "not-an-address")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("PETSAGE_BIND"), "{stderr}");
    assert!(stderr.contains("--bind"), "{stderr}");
    assert!(stderr.contains("IP:PORT"), "{stderr}");
    assert!(stderr.contains("not-an-address"), "{stderr}");
}

#[test]
fn bad_values_exit_2_with_one_line() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (&["--bind", "localhost"], &[], "--bind"),
        (&[], &[("PETSAGE_WORKERS", "0")], "PETSAGE_WORKERS"),
        (&["--workers", "many"], &[], "--workers"),
        (&[], &[("PETSAGE_DOCS", "yes")], "PETSAGE_DOCS"),
        (&["--no-such-flag"], &[], "--no-such-flag"),
        (
            &[],
            &[("PETSAGE_AUTH_ALGORITHMS", "none")],
            "PETSAGE_AUTH_ALGORITHMS",
        ),
        (
            &[],
            &[("PETSAGE_AUTH_ALGORITHMS", "RS256,HS256")],
            "PETSAGE_AUTH_ALGORITHMS",
        ),
        (
            &[],
            &[("PETSAGE_AUTH_ISSUER", "issuer.example")],
            "PETSAGE_AUTH_ISSUER",
        ),
        (
            &[],
            &[("PETSAGE_AUTH_SCOPE_CLAIM", "scopes")],
            "PETSAGE_AUTH_SCOPE_CLAIM",
        ),
        (
            &[],
            &[("PETSAGE_AUTH_CLOCK_SKEW", "a while")],
            "PETSAGE_AUTH_CLOCK_SKEW",
        ),
    ];
    for (args, env, named) in cases {
        let (code, _, stderr) = run_to_exit(APP, args, env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
        assert_one_clear_line(&stderr);
        assert!(stderr.contains(named), "{args:?} {env:?}: {stderr}");
    }
}

#[test]
fn busy_port_exits_non_zero_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("has address").to_string();
    let (code, _, stderr) = run_to_exit(APP, &["--bind", &addr], &[("RUST_LOG", "off")]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(code.is_some(), "killed by a signal: {stderr}");
    assert_one_clear_line(&stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let (code, stdout, _) = run_to_exit(APP, &["--help"], &[]);
    assert_eq!(code, Some(0));
    // Every setting the command line has (the app's, the database's and
    // each feature's), straight from clap: none may lack a variable or be
    // missing from --help.
    let command = petsage_app::cli::command(&petsage_tests::features());
    let mut checked = 0;
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("--{long} has no environment variable"))
            .to_string_lossy();
        let line = stdout
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("--{long} ")))
            .unwrap_or_else(|| panic!("--{long} missing from --help:\n{stdout}"));
        // clap writes the variable at the end of the setting's entry.
        let entry: String = stdout.lines().skip(line).take(4).collect();
        assert!(
            entry.contains(&format!("[env: {env}")),
            "--{long} lacks [env: {env}] in --help:\n{stdout}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} settings found");
    assert!(
        stdout.contains("openapi"),
        "the openapi subcommand: {stdout}"
    );
    assert!(
        stdout.starts_with("The PetSage backend binary"),
        "the app's own description comes first:\n{stdout}"
    );
}

#[test]
fn version_prints_the_workspace_version() {
    let (code, stdout, _) = run_to_exit(APP, &["--version"], &[]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout.trim(),
        format!("petsage-app {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn openapi_subcommand_prints_the_document() {
    let (code, stdout, stderr) = run_to_exit(APP, &["openapi"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert_eq!(doc["info"]["title"], "PetSage Backend API");
    assert_eq!(
        doc["paths"]["/api/v1/health"]["get"]["operationId"],
        "health_check"
    );
}
