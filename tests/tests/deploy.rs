//! The deployment files in `deploy/` probe only what the app serves, on the
//! port it listens on, with settings it accepts.

use std::collections::BTreeMap;
use std::path::Path;

use petsage_tests::run_to_exit;

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

/// The Deployment's `env` list as name -> value.
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

    // The app accepts every PETSAGE_ value the Deployment sets.
    let vars: Vec<(&str, &str)> = env
        .iter()
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
