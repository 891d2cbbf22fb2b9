//! Prometheus metrics, served at `/metrics` in the text format by
//! prometheus-client: HTTP requests by route template (`http`), health and
//! phase from the monitor (`health`), the process's own figures
//! (`process`, on Linux) and the features' and resources' collectors.

mod health;
mod http;
#[cfg(target_os = "linux")]
mod process;
mod text;

use std::fmt::Error as FmtError;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, web};
use petsage_core::{HealthMonitor, Routes};
use prometheus_client::collector::Collector;
use prometheus_client::registry::Registry;

pub(crate) use http::{Counted, HttpMetrics};

use health::HealthCollector;
use http::HttpSeries;
#[cfg(target_os = "linux")]
use process::ProcessCollector;
use text::prometheus_text;

/// Where metrics are served.
pub(crate) const PATH: &str = "/metrics";

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
        let http = HttpSeries::register(&mut registry);
        registry.register_collector(Box::new(HealthCollector::new(monitor)));
        #[cfg(target_os = "linux")]
        registry.register_collector(Box::new(ProcessCollector));
        for collector in collectors {
            registry.register_collector(collector);
        }
        Self { registry, http }
    }

    /// A worker's handle on the series the observe layer updates (one per
    /// worker: it caches series by route without a lock).
    pub(crate) fn http(&self) -> HttpMetrics {
        self.http.worker()
    }

    /// The scrape: every series in the OpenMetrics text format.
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

#[cfg(test)]
pub(crate) mod tests {
    /// Fails naming the first of `lines` that `text` lacks, with the text.
    pub(crate) fn assert_lines(text: &str, lines: &[&str]) {
        for line in lines {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    use super::*;
    use std::time::Duration;

    use petsage_core::{HealthCheck, MonitorSettings, Phase};

    /// A monitor with one critical check that always fails.
    pub(super) fn monitor() -> Arc<HealthMonitor> {
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

    #[actix_web::test]
    async fn a_scrape_has_every_series_family() {
        let monitor = monitor();
        Arc::clone(&monitor).start().await;
        monitor.set_phase(Phase::Serving);
        let metrics = Metrics::new(Arc::clone(&monitor), Vec::new());
        let text = metrics.encode().expect("encodes");
        crate::metrics::tests::assert_lines(
            &text,
            &[
                "petsage_health_status 0",
                "petsage_health_check_up{check=\"db\"} 0",
                "petsage_health_check_failures_total{check=\"db\"} 1",
                "petsage_phase{phase=\"serving\"} 1",
                "petsage_phase{phase=\"draining\"} 0",
                "petsage_http_requests_in_flight 0",
            ],
        );
        assert!(
            text.contains("petsage_build_info{version="),
            "petsage_build_info missing from:\n{text}"
        );
        #[cfg(target_os = "linux")]
        crate::metrics::tests::assert_lines(
            &text,
            &[
                "process_cpu_seconds_total ",
                "process_resident_memory_bytes ",
                "process_open_fds ",
                "process_start_time_seconds ",
            ],
        );
        monitor.stop();
    }
}
