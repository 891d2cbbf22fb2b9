//! The deployment files in `deploy/` probe only what the app serves, on the
//! port it listens on, with settings it accepts; the Kubernetes manifests
//! wire the database, the migrations and the identity settings together, and
//! are valid objects of the Kubernetes version they are written for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use petsage_tests::{Scratch, run_to_exit};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Paths served by the production feature list, with the API prefix.
fn served_paths() -> Vec<String> {
    petsage_app::routes(&petsage_app::features())
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// The value after `key:` on each line that has it (YAML, one level of quoting).
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .collect()
}

/// A pod template's `env` list as name -> value (entries with a `value:`).
fn deployment_env(yaml: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let name = w[0].strip_prefix("- name: ")?;
            let value = w[1].strip_prefix("value: ")?;
            Some((name.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect()
}

/// The Secret and key a pod template's variable `var` is read from.
fn secret_ref(yaml: &str, var: &str) -> Option<(String, String)> {
    let lines: Vec<&str> = yaml
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let at = lines.iter().position(|l| *l == format!("- name: {var}"))?;
    match &lines[at + 1..] {
        ["valueFrom:", "secretKeyRef:", name, key, ..] => Some((
            name.strip_prefix("name: ")?.to_owned(),
            key.strip_prefix("key: ")?.to_owned(),
        )),
        _ => None,
    }
}

/// The ConfigMaps a pod template takes every key of as a variable (`envFrom`).
fn config_map_refs(yaml: &str) -> Vec<&str> {
    let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|w| w[0] == "- configMapRef:")
        .filter_map(|w| w[1].strip_prefix("name: "))
        .collect()
}

/// A ConfigMap's `data` as key -> value (commented keys left out).
fn config_map_data(yaml: &str) -> BTreeMap<String, String> {
    yaml.split_once("\ndata:\n")
        .expect("a data section")
        .1
        .lines()
        .take_while(|l| l.starts_with(' ') || l.is_empty())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l.split_once(':').expect("key: value");
            (key.to_owned(), value.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// The identity settings the app reads, all optional to set but the first two.
const AUTH_SETTINGS: [&str; 7] = [
    "PETSAGE_AUTH_ISSUER",
    "PETSAGE_AUTH_AUDIENCES",
    "PETSAGE_AUTH_JWKS_URL",
    "PETSAGE_AUTH_ALGORITHMS",
    "PETSAGE_AUTH_CLOCK_SKEW",
    "PETSAGE_AUTH_SCOPE_CLAIM",
    "PETSAGE_AUTH_JWKS_REFRESH",
];

fn seconds(value: &str) -> f64 {
    let number = value.trim_end_matches('s');
    number
        .parse()
        .unwrap_or_else(|_| panic!("not seconds: {value}"))
}

#[test]
fn kubernetes_probes_hit_served_paths_on_the_container_port() {
    let yaml = read("deploy/k8s/deployment.yaml");
    let served = served_paths();
    let paths = values(&yaml, "path");
    assert_eq!(paths.len(), 3, "startup, liveness and readiness probes");
    for path in &paths {
        assert!(
            served.iter().any(|s| s == path),
            "probe path {path} is not served; served: {served:?}"
        );
    }
    assert!(
        yaml.contains(
            "readinessProbe:\n            httpGet:\n              path: /api/v1/health/ready"
        ),
        "readiness probes /health/ready"
    );
    assert!(
        yaml.contains(
            "livenessProbe:\n            httpGet:\n              path: /api/v1/health/live"
        ),
        "liveness probes /health/live"
    );

    assert_eq!(values(&yaml, "containerPort"), ["8080", "9464"]);
    for port in values(&yaml, "port") {
        assert_eq!(port, "http", "probes name the container port");
    }
    let env = deployment_env(&yaml);
    assert_eq!(
        env.get("PETSAGE_BIND").map(String::as_str),
        Some("0.0.0.0:8080")
    );
    // Metrics on their own port, which the headless Service and the scrape example name.
    assert_eq!(
        env.get("PETSAGE_METRICS_BIND").map(String::as_str),
        Some("0.0.0.0:9464")
    );
    let metrics_service = read("deploy/k8s/metrics-service.yaml");
    assert!(metrics_service.contains("clusterIP: None"), "headless");
    assert_eq!(values(&metrics_service, "port"), ["9464"]);
    assert!(read("deploy/prometheus/prometheus.yml").contains("port: 9464"));
}

#[test]
fn kubernetes_drain_timings_fit_together() {
    let yaml = read("deploy/k8s/deployment.yaml");
    let env = deployment_env(&yaml);
    let delay = seconds(&env["PETSAGE_SHUTDOWN_DELAY"]);
    let timeout = seconds(&env["PETSAGE_SHUTDOWN_TIMEOUT"]);
    let periods = values(&yaml, "periodSeconds");
    let ready_period: f64 = yaml
        .split("readinessProbe:")
        .nth(1)
        .and_then(|rest| values(rest, "periodSeconds").first().map(|v| seconds(v)))
        .expect("readiness period");
    assert!(!periods.is_empty());
    assert!(
        delay > ready_period,
        "shutdown delay {delay}s must outlast one readiness period {ready_period}s"
    );
    let grace = seconds(values(&yaml, "terminationGracePeriodSeconds")[0]);
    assert!(
        grace > delay + timeout,
        "grace {grace}s must exceed delay {delay}s + drain timeout {timeout}s"
    );

    // The app accepts every PETSAGE_ value the Deployment and its ConfigMap set.
    let config = config_map_data(&read("deploy/k8s/configmap.yaml"));
    let vars: Vec<(&str, &str)> = env
        .iter()
        .chain(&config)
        .filter(|(k, _)| k.starts_with("PETSAGE_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (code, _, stderr) = run_to_exit(APP, &["openapi"], &vars);
    assert_eq!(
        code,
        Some(0),
        "the Deployment's settings are rejected: {stderr}"
    );
}

#[test]
fn kubernetes_manifests_include_service_pdb_and_hpa() {
    let service = read("deploy/k8s/service.yaml");
    assert!(service.contains("kind: Service") && service.contains("targetPort: http"));
    assert!(read("deploy/k8s/pdb.yaml").contains("kind: PodDisruptionBudget"));
    let hpa = read("deploy/k8s/hpa.yaml");
    assert!(hpa.contains("kind: HorizontalPodAutoscaler") && hpa.contains("name: petsage-backend"));
}

#[test]
fn dockerfile_binds_all_interfaces_on_8080_and_probes_itself() {
    let docker = read("deploy/Dockerfile");
    assert!(docker.contains("EXPOSE 8080"), "{docker}");
    assert!(
        docker.contains(r#"CMD ["--bind", "0.0.0.0:8080"]"#),
        "{docker}"
    );
    assert!(
        docker.contains("ENV PETSAGE_BIND=0.0.0.0:8080"),
        "the probe reads PETSAGE_BIND"
    );
    assert!(
        docker.contains(r#"CMD ["/usr/local/bin/petsage-app", "probe""#),
        "HEALTHCHECK uses probe"
    );
    assert!(docker.contains("USER nonroot"), "runs as non-root");
    assert!(docker.contains("cargo build --release --locked -p petsage-app"));
}

#[test]
fn haproxy_checks_readiness_with_http_1_1_and_a_host_header() {
    let cfg = read("deploy/haproxy/haproxy.cfg");
    let send = cfg
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("http-check send"))
        .expect("an http-check send line");
    let uri = send
        .split_whitespace()
        .skip_while(|w| *w != "uri")
        .nth(1)
        .expect("uri");
    assert!(
        served_paths().iter().any(|p| p == uri),
        "{uri} is not served"
    );
    assert_eq!(uri, "/api/v1/health/ready");
    assert!(
        send.contains("ver HTTP/1.1") && send.contains("hdr Host"),
        "{send}"
    );
    assert!(cfg.contains("http-check expect status 200"));
}

#[test]
fn kubernetes_pods_check_the_schema_that_the_job_migrates_with_one_secret_and_image() {
    let deployment = read("deploy/k8s/deployment.yaml");
    let job = read("deploy/k8s/migrate/job.yaml");
    assert!(job.contains("kind: Job"), "{job}");
    assert_eq!(
        deployment_env(&deployment)
            .get("PETSAGE_MIGRATE")
            .map(String::as_str),
        Some("false"),
        "instances only check migrations; the Job applies them"
    );
    assert_eq!(values(&job, "args"), [r#"["migrate"]"#]);
    let (code, stdout, stderr) = run_to_exit(APP, &["migrate", "--help"], &[]);
    assert_eq!(code, Some(0), "migrate is a subcommand: {stderr}");
    assert!(stdout.contains("migrations"), "{stdout}");

    let images = values(&deployment, "image");
    assert_eq!(images.len(), 1);
    assert_eq!(
        values(&job, "image"),
        images,
        "the Job migrates for this image"
    );

    let url = Some(("petsage-database".to_owned(), "url".to_owned()));
    assert_eq!(secret_ref(&deployment, "PETSAGE_DATABASE_URL"), url);
    assert_eq!(secret_ref(&job, "PETSAGE_DATABASE_URL"), url);
    let secret = read("deploy/k8s/example/secret.example.yaml");
    assert!(secret.contains("kind: Secret") && secret.contains("name: petsage-database"));
    let example = values(&secret, "url");
    assert_eq!(example.len(), 1, "{secret}");
    assert!(
        example[0].starts_with("postgres://") && example[0].contains(":REPLACE_ME@"),
        "a placeholder, never a password: {}",
        example[0]
    );

    // The Job's pod is no backend: no Service routes to it, no budget counts it.
    for file in ["service.yaml", "metrics-service.yaml", "pdb.yaml"] {
        let selector = read(&format!("deploy/k8s/{file}"));
        assert!(
            values(&selector, "app.kubernetes.io/name").contains(&"petsage-backend"),
            "{file}"
        );
    }
    assert!(!values(&job, "app.kubernetes.io/name").contains(&"petsage-backend"));
    assert!(job.contains("restartPolicy: Never"));
    for yaml in [&deployment, &job] {
        assert!(yaml.contains("readOnlyRootFilesystem: true"));
        assert!(yaml.contains("runAsNonRoot: true"));
    }
}

#[test]
fn kubernetes_identity_settings_come_from_one_config_map_by_their_names() {
    let config = read("deploy/k8s/configmap.yaml");
    assert!(config.contains("kind: ConfigMap"));
    let name = values(&config, "name")[0];
    let data = config_map_data(&config);
    for key in data.keys() {
        assert!(
            AUTH_SETTINGS.contains(&key.as_str()),
            "{key} is no identity setting"
        );
    }
    for key in AUTH_SETTINGS {
        if key == "PETSAGE_AUTH_JWKS_URL" {
            // Optional: unset means the discovered jwks_uri; shown, commented.
            assert!(!data.contains_key(key) && config.contains(&format!("# {key}: ")));
        } else {
            assert!(data.contains_key(key), "{key} missing from {config}");
        }
    }
    assert!(data["PETSAGE_AUTH_ISSUER"].starts_with("https://"));
    assert_eq!(data["PETSAGE_AUTH_ALGORITHMS"], "RS256,ES256");
    assert_eq!(data["PETSAGE_AUTH_CLOCK_SKEW"], "60s");
    assert_eq!(data["PETSAGE_AUTH_JWKS_REFRESH"], "10m");
    assert!(["scope", "scp"].contains(&data["PETSAGE_AUTH_SCOPE_CLAIM"].as_str()));

    // The server and the migrator (which builds every feature) both read it.
    for file in ["deployment.yaml", "migrate/job.yaml"] {
        assert_eq!(
            config_map_refs(&read(&format!("deploy/k8s/{file}"))),
            [name],
            "{file}"
        );
    }
}

/// The Kubernetes release the manifests are checked against: the newest the
/// pinned kubernetes-validate (xtask/src/setup.rs) knows.
const KUBERNETES: &str = "1.37.0";

/// The kubernetes-validate CLI: `$KUBERNETES_VALIDATE`, or the one set-up puts in `.venv`.
fn kubernetes_validate() -> PathBuf {
    std::env::var_os("KUBERNETES_VALIDATE").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/kubernetes-validate"),
        PathBuf::from,
    )
}

/// Every YAML file under `dir`, subfolders included, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Whether `kubernetes-validate --strict` accepts `files`, and what it said.
fn validate(files: &[PathBuf]) -> (bool, String) {
    let output = Command::new(kubernetes_validate())
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(files)
        .output()
        .expect("kubernetes-validate runs (pip install kubernetes-validate in .venv)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
#[ignore = "needs kubernetes-validate in .venv: run by cargo xtask ci"]
fn kubernetes_manifests_are_valid_objects_of_the_kubernetes_they_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s");
    let files = yaml_files(&dir);
    assert!(files.len() >= 8, "{files:?}");
    let (ok, text) = validate(&files);
    println!("{text}");
    assert!(
        ok,
        "kubernetes-validate --strict refused a manifest:\n{text}"
    );
    let version = KUBERNETES.trim_end_matches(".0");
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource ") && l.ends_with(version))
        .count();
    assert_eq!(
        passed,
        files.len(),
        "one object per file, each passed:\n{text}"
    );

    // The check can fail: the real Deployment with a misspelled field (only
    // --strict refuses it), and with a mistyped value.
    let deployment = read("deploy/k8s/deployment.yaml");
    let scratch = Scratch::new("k8s");
    for (name, from, to) in [
        (
            "unknown-field.yaml",
            "terminationGracePeriodSeconds:",
            "terminationGracePeriodSecond:",
        ),
        ("wrong-type.yaml", "replicas: 2", "replicas: two"),
    ] {
        let broken = deployment.replace(from, to);
        assert_ne!(broken, deployment, "{from} is in the Deployment");
        let path = scratch.path().join(name);
        std::fs::write(&path, broken).expect("write");
        let (ok, text) = validate(&[path]);
        println!("{text}");
        assert!(!ok, "{name} was accepted:\n{text}");
        assert!(text.contains("did not validate"), "{text}");
    }
}
