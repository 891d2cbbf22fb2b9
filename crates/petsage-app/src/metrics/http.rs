//! The HTTP series the observe layer updates on every request, and each
//! worker's cache of the handles it has used.
//!
//! Routes are labelled by template (`/api/v1/pets/{id}`), and every path no
//! route serves counts under `route="unmatched"`, so a scanner sending random
//! paths cannot grow the number of series.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Error as FmtError;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use petsage_core::RouteTemplate;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rustc_hash::FxBuildHasher;

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

/// The HTTP series the observe layer updates on every request, shared by every worker.
#[derive(Debug, Clone)]
pub(super) struct HttpSeries {
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    in_flight: Gauge,
    unmatched: Route,
}

impl HttpSeries {
    /// The HTTP series, registered in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let http = Self {
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
        http
    }

    /// A worker's handle on these series, with an empty cache.
    pub(super) fn worker(&self) -> HttpMetrics {
        HttpMetrics {
            series: self.clone(),
            cache: RefCell::default(),
        }
    }
}

/// One worker's access to the HTTP series.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    series: HttpSeries,
    /// This worker's handles on the series it has used: a family lookup
    /// hashes the label strings under a lock, a hit here hashes three numbers.
    cache: RefCell<HashMap<SeriesKey, Series, FxBuildHasher>>,
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

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::Arc;

    use actix_web::HttpResponse;
    use actix_web::dev::ServiceResponse;
    use petsage_core::RouteTemplate;

    use crate::metrics::Metrics;
    use crate::metrics::tests::monitor;

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
        crate::metrics::tests::assert_lines(
            &text,
            &[
                "petsage_http_requests_total{method=\"GET\",route=\"/api/v1/pets/{id}\",status=\"200\"} 3",
                "petsage_http_requests_total{method=\"GET\",route=\"/api/v1/pets/{id}\",status=\"404\"} 1",
                "petsage_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
                "petsage_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/pets/{id}\"} 4",
                "petsage_http_requests_in_flight 0",
            ],
        );
    }
}
