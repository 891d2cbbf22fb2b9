//! Prometheus metrics, served at `/metrics` in the text format by
//! prometheus-client: HTTP requests by route template, health and phase from
//! the monitor, the process's own figures and the build.
//!
//! Routes are labelled by template (`/api/v1/pets/{id}`), and every path no
//! route serves counts under `route="unmatched"`, so a scanner sending random
//! paths cannot grow the number of series.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{Error as FmtError, Write as _};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, web};
use petsage_core::{CheckStatus, HealthMonitor, Phase, RouteTemplate, Routes, Verdict};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Where metrics are served.
pub(crate) const PATH: &str = "/metrics";

/// A route template as a label value; `unmatched` for paths no route serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Route(Arc<str>);

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), FmtError> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Route,
}

type Durations = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The HTTP series the guard layer updates on every request, shared by every worker.
#[derive(Debug, Clone)]
struct HttpSeries {
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    in_flight: Gauge,
    unmatched: Route,
}

/// One worker's access to the HTTP series.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    series: HttpSeries,
    /// This worker's handles on the series it has used: a family lookup
    /// hashes the label strings with SipHash under a lock (about 1,500
    /// instructions a request, callgrind); a hit here costs a few dozen.
    cache: RefCell<HashMap<SeriesKey, Series, BuildHasherDefault<KeyHasher>>>,
}

/// A request's series: the route template's address (kept alive by the
/// cached `Series`), the method's index and the status.
type SeriesKey = (usize, u8, u16);

/// The handles of one (method, route, status): they share their values with the families.
#[derive(Debug, Clone)]
struct Series {
    requests: Counter,
    duration: Histogram,
    /// Holds the template, so its address cannot be reused by another.
    _route: Route,
}

/// FxHash's multiply-rotate, for keys made of two words and a status.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.add(u64::from(*byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A request being counted: in flight until it is finished or dropped.
pub(crate) struct Counted {
    metrics: Rc<HttpMetrics>,
    started: Instant,
}

impl Counted {
    /// Counts the request by its route template and status, and out of flight.
    pub(crate) fn finish<B>(self, res: &ServiceResponse<B>) {
        self.metrics.record(res, self.started);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.metrics.series.in_flight.dec();
    }
}

fn latency_buckets() -> Histogram {
    // 0.5 ms to 10 s: health polls sit at the bottom, slow queries at the top.
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// A method as a label: the standard ones by name, any other as `OTHER`;
/// with its index, for the worker's cache key.
fn method_label(method: &Method) -> (u8, &'static str) {
    match *method {
        Method::GET => (0, "GET"),
        Method::HEAD => (1, "HEAD"),
        Method::POST => (2, "POST"),
        Method::PUT => (3, "PUT"),
        Method::PATCH => (4, "PATCH"),
        Method::DELETE => (5, "DELETE"),
        Method::OPTIONS => (6, "OPTIONS"),
        _ => (7, "OTHER"),
    }
}

impl HttpMetrics {
    /// Starts counting a request. Each worker holds its series in an `Rc`,
    /// so a request costs a plain increment here, not a clone of every handle.
    pub(crate) fn start(self: &Rc<Self>) -> Counted {
        self.series.in_flight.inc();
        Counted {
            metrics: Rc::clone(self),
            started: Instant::now(),
        }
    }

    fn record<B>(&self, res: &ServiceResponse<B>, started: Instant) {
        let req = res.request();
        let template = match req.app_data::<RouteTemplate>() {
            Some(RouteTemplate(template)) => template,
            None => &self.series.unmatched.0,
        };
        let (index, method) = method_label(req.method());
        let status = res.status().as_u16();
        let key = (Arc::as_ptr(template).cast::<u8>() as usize, index, status);
        let mut cache = self.cache.borrow_mut();
        let series = cache.entry(key).or_insert_with(|| {
            let route = Route(Arc::clone(template));
            Series {
                requests: self
                    .series
                    .requests
                    .get_or_create(&RequestLabels {
                        method,
                        route: route.clone(),
                        status,
                    })
                    .clone(),
                duration: self
                    .series
                    .durations
                    .get_or_create(&RouteLabels {
                        method,
                        route: route.clone(),
                    })
                    .clone(),
                _route: route,
            }
        });
        series.requests.inc();
        series.duration.observe(started.elapsed().as_secs_f64());
    }
}

/// The registry and the HTTP series; one per process, shared by every worker.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    http: HttpSeries,
}

impl Metrics {
    /// Every PetSage series, reading health and phase from `monitor`, plus
    /// the features' and resources' own `collectors`.
    pub(crate) fn new(monitor: Arc<HealthMonitor>, collectors: Vec<Box<dyn Collector>>) -> Self {
        // No registry prefix: the collectors' `process_*` series must keep their standard names.
        let mut registry = Registry::default();
        let http = HttpSeries {
            requests: Family::default(),
            durations: Family::new_with_constructor(latency_buckets),
            in_flight: Gauge::default(),
            unmatched: Route(Arc::from("unmatched")),
        };
        registry.register(
            "petsage_http_requests",
            "HTTP requests answered, by method, route template and status",
            http.requests.clone(),
        );
        registry.register(
            "petsage_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method and route template",
            http.durations.clone(),
        );
        registry.register(
            "petsage_http_requests_in_flight",
            "Requests being handled now",
            http.in_flight.clone(),
        );
        registry.register_collector(Box::new(HealthCollector { monitor }));
        registry.register_collector(Box::new(ProcessCollector));
        for collector in collectors {
            registry.register_collector(collector);
        }
        Self { registry, http }
    }

    /// A worker's handle on the series the guard layer updates (one per
    /// worker: it caches series by route without a lock).
    pub(crate) fn http(&self) -> HttpMetrics {
        HttpMetrics {
            series: self.http.clone(),
            cache: RefCell::default(),
        }
    }

    /// The scrape: every series in the Prometheus text format.
    pub(crate) fn encode(&self) -> Result<String, FmtError> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Answers a scrape: OpenMetrics when the scraper asks for it (Prometheus
/// does), else the classic Prometheus text format (curl, promtool).
pub(crate) async fn scrape(req: HttpRequest, metrics: Data<Metrics>) -> HttpResponse {
    let Ok(text) = metrics.encode() else {
        return HttpResponse::InternalServerError().finish();
    };
    let open_metrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, body) = if open_metrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            prometheus_text(&text),
        )
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body)
}

/// prometheus-client's OpenMetrics text in the classic Prometheus format: a
/// counter's HELP and TYPE name its samples (`x_total`), and the OpenMetrics
/// `# UNIT` and `# EOF` lines go. Every sample line is kept as encoded.
fn prometheus_text(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(open_metrics.len() + 16 * counters.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let comment = line
            .strip_prefix("# HELP ")
            .map(|rest| ("# HELP ", rest))
            .or_else(|| line.strip_prefix("# TYPE ").map(|rest| ("# TYPE ", rest)));
        match comment {
            Some((kind, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                let _ = writeln!(text, "{kind}{name}{suffix} {tail}");
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// Mounts `/metrics` on an app's configuration, as a [`Route`](petsage_core::Route)
/// like every other path: GET and HEAD, a 405 problem with `Allow` for any
/// other method, and its template for its own requests' label.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, metrics: Data<Metrics>) {
    let routes = Routes::new()
        .route(petsage_core::Route::undocumented(PATH, scrape))
        .data(metrics);
    for service in routes.into_services() {
        cfg.service(service);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_commit: &'static str,
}

/// Health, checks, phase and build, read from the monitor at each scrape.
struct HealthCollector {
    monitor: Arc<HealthMonitor>,
}

impl std::fmt::Debug for HealthCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCollector").finish_non_exhaustive()
    }
}

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let snapshot = self.monitor.snapshot();
        let phase = self.monitor.phase();
        // 2 ok, 1 degraded, 0 unavailable: the uptime view, as /health answers.
        let status: i64 = match Verdict::of_service(phase, &snapshot.checks) {
            Verdict::Ok => 2,
            Verdict::Degraded => 1,
            Verdict::Unavailable => 0,
        };
        let gauge = ConstGauge::new(status);
        gauge.encode(encoder.encode_descriptor(
            "petsage_health_status",
            "Service health: 2 ok, 1 degraded (a non-critical check fails), 0 unavailable",
            None,
            gauge.metric_type(),
        )?)?;

        per_check(
            &mut encoder,
            "petsage_health_check_up",
            "Whether a health check passes (1) or fails (0), after its thresholds",
            &snapshot.checks,
            |check| ConstGauge::new(i64::from(check.passing())),
        )?;
        per_check(
            &mut encoder,
            "petsage_health_check_duration_seconds",
            "How long a health check's latest run took",
            &snapshot.checks,
            |check| ConstGauge::new(check.duration.as_secs_f64()),
        )?;
        per_check(
            &mut encoder,
            "petsage_health_check_failures",
            "Failed runs of a health check since start",
            &snapshot.checks,
            |check| ConstCounter::new(check.failed_runs),
        )?;

        let mut phases = encoder.encode_descriptor(
            "petsage_phase",
            "The instance's phase: 1 for the current one",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, each) in [
            ("starting", Phase::Starting),
            ("serving", Phase::Serving),
            ("draining", Phase::Draining),
        ] {
            ConstGauge::new(i64::from(phase == each))
                .encode(phases.encode_family(&PhaseLabels { phase: name })?)?;
        }

        let mut build = encoder.encode_descriptor(
            "petsage_build_info",
            "The running build: always 1, with its version and git commit as labels",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(1).encode(build.encode_family(&BuildLabels {
            version: petsage_health::VERSION,
            git_commit: petsage_health::GIT_COMMIT,
        })?)?;
        Ok(())
    }
}

/// One series per check, labelled `check`, with `value` of each.
fn per_check<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    checks: &[CheckStatus],
    value: impl Fn(&CheckStatus) -> M,
) -> Result<(), FmtError> {
    let Some(first) = checks.first() else {
        return Ok(());
    };
    let mut family = encoder.encode_descriptor(name, help, None, value(first).metric_type())?;
    for check in checks {
        let labels = CheckLabels {
            check: check.name.clone(),
        };
        value(check).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The standard `process_*` series, read from `/proc/self` at each scrape.
#[derive(Debug)]
struct ProcessCollector;

/// Linux's clock ticks per second for `/proc` times (USER_HZ), fixed at 100.
const TICKS_PER_SECOND: f64 = 100.0;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let Some(stat) = ProcStat::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stat.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                stat.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                stat.open_fds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// What `/proc` says of this process.
struct ProcStat {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
}

impl ProcStat {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces and ends at the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<f64>().ok());
        let ticks = field(14)? + field(15)?;
        let start_ticks = field(22)?;
        let virtual_bytes = field(23)?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let resident_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())?;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        Some(Self {
            cpu_seconds: ticks / TICKS_PER_SECOND,
            resident_bytes: resident_kb * 1024.0,
            virtual_bytes,
            start_time_seconds: boot + start_ticks / TICKS_PER_SECOND,
            open_fds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use petsage_core::{HealthCheck, MonitorSettings};

    fn monitor() -> Arc<HealthMonitor> {
        Arc::new(HealthMonitor::new(
            vec![HealthCheck::critical("db", || async {
                Err("down".to_owned())
            })],
            MonitorSettings {
                check_timeout: Duration::from_millis(100),
                interval: Duration::from_secs(60),
                failure_threshold: 1,
                success_threshold: 1,
            },
        ))
    }

    #[test]
    fn the_prometheus_text_names_counters_by_their_samples() {
        let open = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{a=\"1\"} 3\n# HELP up Up.\n# TYPE up gauge\nup 1\n# EOF\n";
        assert_eq!(
            prometheus_text(open),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total{a=\"1\"} 3\n# HELP up Up.\n# TYPE up gauge\nup 1\n"
        );
    }

    #[actix_web::test]
    async fn a_scrape_has_every_series_family() {
        let monitor = monitor();
        Arc::clone(&monitor).start().await;
        monitor.set_phase(Phase::Serving);
        let metrics = Metrics::new(Arc::clone(&monitor), Vec::new());
        let text = metrics.encode().expect("encodes");
        for line in [
            "petsage_health_status 0",
            "petsage_health_check_up{check=\"db\"} 0",
            "petsage_health_check_failures_total{check=\"db\"} 1",
            "petsage_phase{phase=\"serving\"} 1",
            "petsage_phase{phase=\"draining\"} 0",
            "petsage_http_requests_in_flight 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        for name in [
            "petsage_build_info{version=",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        monitor.stop();
    }

    #[actix_web::test]
    async fn workers_count_into_the_same_series_through_their_caches() {
        use actix_web::test::TestRequest;

        let metrics = Metrics::new(monitor(), Vec::new());
        let template = RouteTemplate(Arc::from("/api/v1/pets/{id}"));
        let answer = |status: u16| {
            let req = TestRequest::get()
                .uri("/api/v1/pets/7")
                .app_data(template.clone())
                .to_http_request();
            let res =
                HttpResponse::new(actix_web::http::StatusCode::from_u16(status).expect("status"));
            ServiceResponse::new(req, res)
        };
        // Two workers, each with its own cache, on the shared families.
        let (one, two) = (Rc::new(metrics.http()), Rc::new(metrics.http()));
        one.start().finish(&answer(200));
        one.start().finish(&answer(200));
        two.start().finish(&answer(200));
        two.start().finish(&answer(404));
        let unmatched = TestRequest::get().uri("/nope").to_http_request();
        one.start().finish(&ServiceResponse::new(
            unmatched,
            HttpResponse::NotFound().finish(),
        ));
        let text = metrics.encode().expect("encodes");
        for line in [
            "petsage_http_requests_total{method=\"GET\",route=\"/api/v1/pets/{id}\",status=\"200\"} 3",
            "petsage_http_requests_total{method=\"GET\",route=\"/api/v1/pets/{id}\",status=\"404\"} 1",
            "petsage_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
            "petsage_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/pets/{id}\"} 4",
            "petsage_http_requests_in_flight 0",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
