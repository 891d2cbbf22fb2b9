//! [`Observe`]: the HTTP metrics and the access log, from the one place that
//! sees every answer's final status (a 431 and a 500 problem included).
//!
//! The access log is one line per request, written as the response leaves,
//! except for the quiet routes (health polls, scrapes). Lines go to the
//! `petsage::access` log target, so `RUST_LOG` can turn them off on their own
//! (`info,petsage::access=warn`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode, Uri, Version};
use actix_web::{Error, HttpMessage as _};
use log::Level;
use petsage_core::request_id;
use petsage_core::{Problem, RouteTemplate};
use petsage_identity::Principal;

use super::{Layer, Response, Step};
use crate::metrics::{Counted, HttpMetrics};

/// The log target of access lines.
pub(crate) const TARGET: &str = "petsage::access";

/// Counts every request in the HTTP metrics and writes its access line.
#[derive(Clone)]
pub(crate) struct Observe {
    /// Paths whose requests write no access line (health polls, scrapes).
    pub(crate) quiet_paths: Arc<[String]>,
    /// This worker's request counters, when metrics are on.
    pub(crate) metrics: Option<Rc<HttpMetrics>>,
}

/// What [`Observe`] keeps from a request for its answer.
pub(crate) struct Observed {
    access: Option<AccessLine>,
    counted: Option<Counted>,
}

impl Layer for Observe {
    type Carry = Observed;

    fn before(&self, req: &mut ServiceRequest) -> Step<Observed> {
        Step::Next(Observed {
            access: AccessLine::start(req, &self.quiet_paths),
            counted: self.metrics.as_ref().map(HttpMetrics::start),
        })
    }

    fn after(observed: Observed, res: Response) -> Response {
        if let Some(counted) = observed.counted {
            counted.finish(&res);
        }
        // The route template, looked up only for lines that are written:
        // a feature route carries its own; actix's `match_pattern` walks the
        // routes again (a regex match per dynamic route), so it is only the
        // fallback for the app's own routes (docs, metrics).
        if let Some(access) = observed.access {
            let req = res.request();
            let id = res
                .headers()
                .get(request_id::HEADER)
                .and_then(|v| v.to_str().ok());
            // The caller a protected route verified (never the token).
            let extensions = req.extensions();
            let subject = extensions
                .get::<std::sync::Arc<Principal>>()
                .map(|principal| &*principal.subject);
            match req.app_data::<RouteTemplate>() {
                Some(RouteTemplate(template)) => {
                    access.finish(res.status(), Some(template), id, subject);
                }
                None => access.finish(res.status(), req.match_pattern().as_deref(), id, subject),
            }
        }
        res
    }

    fn failed(observed: Observed, err: Error) -> Error {
        if let Some(access) = observed.access {
            let problem = err.as_error::<Problem>();
            let id = problem.and_then(|problem| problem.request_id.as_deref());
            access.finish(err.as_response_error().status_code(), None, id, None);
        }
        err
    }
}

/// What a request's access line needs, taken before the handler runs.
struct AccessLine {
    started: Instant,
    peer: Option<SocketAddr>,
    method: Method,
    uri: Uri,
    version: Version,
}

impl AccessLine {
    /// Starts timing `req`, unless its path is quiet or access lines are off.
    fn start(req: &ServiceRequest, quiet_paths: &[String]) -> Option<Self> {
        // The path comparison first: it is cheaper than asking the logger,
        // and health polls, the most frequent requests, stop at it.
        if quiet_paths.iter().any(|path| path == req.path())
            || !log::log_enabled!(target: TARGET, Level::Info)
        {
            return None;
        }
        Some(Self {
            started: Instant::now(),
            peer: req.peer_addr(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
        })
    }

    /// `127.0.0.1:5000 "GET /api/v1/pets/1 HTTP/1.1" 200 0.412ms 0193… alice`,
    /// with the same facts as key-values for the JSON log; `route` is the
    /// matched route template (`unmatched` when none), `id` the request's ID,
    /// `subject` the verified caller's (`-` when none).
    fn finish(
        self,
        status: StatusCode,
        route: Option<&str>,
        id: Option<&str>,
        subject: Option<&str>,
    ) {
        let peer = self
            .peer
            .map_or_else(|| "-".to_owned(), |peer| peer.to_string());
        let id = id.unwrap_or("-");
        let duration_ms = (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        log::info!(
            target: TARGET,
            request_id = id,
            method = self.method.as_str(),
            route = route.unwrap_or("unmatched"),
            status = status.as_u16(),
            duration_ms = duration_ms,
            peer = peer.as_str(),
            subject = subject.unwrap_or("-");
            "{peer} \"{} {} {:?}\" {} {duration_ms:.3}ms {id} {}",
            self.method,
            self.uri,
            self.version,
            status.as_u16(),
            subject.unwrap_or("-"),
        );
    }
}

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::Duration;

    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, web};
    use petsage_core::request_id::HEADER;
    use petsage_core::{HealthMonitor, MonitorSettings};

    use super::*;
    use crate::layers::Layered;
    use crate::layers::header_limit::HeaderLimit;
    use crate::layers::request_id::AssignRequestId;
    use crate::metrics::Metrics;

    /// Keeps every access line written in this test binary.
    struct Lines(Mutex<Vec<String>>);

    impl log::Log for Lines {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.target() == TARGET
        }

        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                self.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record.args().to_string());
            }
        }

        fn flush(&self) {}
    }

    fn lines() -> &'static Lines {
        static LINES: OnceLock<&'static Lines> = OnceLock::new();
        LINES.get_or_init(|| {
            let lines: &'static Lines = Box::leak(Box::new(Lines(Mutex::default())));
            let _ = log::set_logger(lines);
            log::set_max_level(log::LevelFilter::Info);
            lines
        })
    }

    /// The access lines that name `id`.
    fn lines_for(id: &str) -> Vec<String> {
        lines()
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(id))
            .cloned()
            .collect()
    }

    fn metrics() -> Metrics {
        let monitor = HealthMonitor::new(
            Vec::new(),
            MonitorSettings {
                check_timeout: Duration::from_millis(500),
                interval: Duration::from_secs(60),
                failure_threshold: 1,
                success_threshold: 1,
            },
        );
        Metrics::new(Arc::new(monitor), Vec::new())
    }

    #[actix_web::test]
    async fn every_answer_is_counted_and_logged_except_quiet_paths() {
        lines();
        let metrics = metrics();
        let app = atest::init_service(
            App::new()
                .wrap(Layered(HeaderLimit { max_bytes: 1024 }))
                .wrap(Layered(AssignRequestId))
                .wrap(Layered(Observe {
                    quiet_paths: Arc::from(vec!["/quiet".to_owned()]),
                    metrics: Some(Rc::new(metrics.http())),
                }))
                .route("/quiet", web::get().to(HttpResponse::Ok))
                .route("/loud", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let send = |uri: &str, id: &str, padding: usize| {
            TestRequest::get()
                .uri(uri)
                .insert_header((HEADER, id.to_owned()))
                .insert_header(("x-padding", "a".repeat(padding)))
                .to_request()
        };
        for (uri, id, padding, status) in [
            ("/quiet", "observe-quiet", 0, 200),
            ("/loud", "observe-loud", 0, 200),
            ("/loud", "observe-large", 2000, 431),
            ("/nowhere", "observe-missing", 0, 404),
        ] {
            let res = atest::call_service(&app, send(uri, id, padding)).await;
            assert_eq!(res.status().as_u16(), status, "{uri}");
        }

        assert!(
            lines_for("observe-quiet").is_empty(),
            "quiet paths write no line"
        );
        for (id, expected) in [
            ("observe-loud", "\"GET /loud HTTP/1.1\" 200 "),
            ("observe-large", "\"GET /loud HTTP/1.1\" 431 "),
            ("observe-missing", "\"GET /nowhere HTTP/1.1\" 404 "),
        ] {
            let written = lines_for(id);
            assert_eq!(written.len(), 1, "{id}: {written:?}");
            assert!(written[0].contains(expected), "{id}: {written:?}");
        }

        let text = metrics.encode().expect("encodes");
        crate::metrics::tests::assert_lines(
            &text,
            &[
                "petsage_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"200\"} 2",
                "petsage_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"431\"} 1",
                "petsage_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
                "petsage_http_requests_in_flight 0",
            ],
        );
    }
}
