//! [`Guard`], the one middleware around every handler. It is a single layer
//! because every health poll passes through it. For each request it
//! - gives it an ID (the client's safe `X-Request-Id`, or a new one), echoed in
//!   the response and quoted in problem bodies;
//! - answers oversized headers with a 431 problem, a panicking handler with a
//!   500 problem, and turns any other bare error into a problem body;
//! - adds `X-Content-Type-Options: nosniff`, and `Connection: close` to
//!   requests that start while the instance drains;
//! - counts it in the HTTP metrics and writes its access line (except for
//!   the quiet routes).

use std::future::{Future, Ready, ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Data;
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use petsage_core::request_id::{self, RequestId};
use petsage_core::{HealthMonitor, RouteTemplate};

use crate::access::AccessLine;
use crate::errors;
use crate::metrics::{Counted, HttpMetrics};

/// `nosniff`, made at compile time.
static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// The app's middleware; see the module documentation for what it does.
#[derive(Clone)]
pub(crate) struct Guard {
    /// Paths whose requests write no access line (health polls, scrapes).
    pub(crate) quiet_paths: Arc<[String]>,
    /// Tells whether the instance drains.
    pub(crate) monitor: Data<HealthMonitor>,
    /// This worker's request counters, when metrics are on.
    pub(crate) metrics: Option<Rc<HttpMetrics>>,
    /// Largest total size of a request's headers; larger ones get 431.
    pub(crate) max_header_bytes: usize,
}

impl<S, B> Transform<S, ServiceRequest> for Guard
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: Unpin,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = GuardService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GuardService {
            service,
            guard: self.clone(),
        }))
    }
}

/// [`Guard`] wrapped around the app's router.
pub(crate) struct GuardService<S> {
    service: S,
    guard: Guard,
}

impl<S, B> Service<ServiceRequest> for GuardService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: Unpin,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = GuardFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let guard = &self.guard;
        let id = RequestId::from_header_or_new(req.headers().get(request_id::HEADER));
        let access = AccessLine::start(&req, &guard.quiet_paths, &id);
        let counted = guard.metrics.as_ref().map(HttpMetrics::start);
        let size = errors::header_bytes(&req);
        let stage = if size <= guard.max_header_bytes {
            Stage::Called(AssertUnwindSafe(self.service.call(req)).catch_unwind())
        } else {
            Stage::Answered(Some(errors::headers_too_large(
                req,
                size,
                guard.max_header_bytes,
            )))
        };
        GuardFuture {
            stage,
            after: Some(After {
                id,
                access,
                counted,
                draining: guard.monitor.is_draining(),
            }),
        }
    }
}

/// A request going through [`Guard`]: the handler's answer, then what the
/// guard does to every answer. Named rather than boxed, so a request costs
/// no allocation of its own here.
pub(crate) struct GuardFuture<F> {
    stage: Stage<F>,
    /// Taken once the answer is ready.
    after: Option<After>,
}

/// Where the answer comes from.
enum Stage<F> {
    /// The router and handler, with a panic caught as a 500.
    Called(CatchUnwind<AssertUnwindSafe<F>>),
    /// The guard's own answer (431), taken when polled.
    Answered(Option<ServiceResponse>),
}

/// What the guard applies to the answer, taken before the handler ran.
struct After {
    id: RequestId,
    access: Option<AccessLine>,
    counted: Option<Counted>,
    /// Whether the instance drained when the request started.
    draining: bool,
}

impl<F, B> Future for GuardFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>> + Unpin,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<BoxBody>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        const DONE: &str = "GuardFuture polled after it completed";
        let this = self.get_mut();
        let answered = match &mut this.stage {
            Stage::Called(call) => ready!(Pin::new(call).poll(cx))
                .map(|res| res.map(ServiceResponse::map_into_boxed_body)),
            Stage::Answered(res) => Ok(Ok(res.take().expect(DONE))),
        };
        let after = this.after.take().expect(DONE);
        let err = match answered {
            Ok(Ok(res)) => return Poll::Ready(Ok(after.finish(res))),
            Ok(Err(err)) => err,
            Err(_panic) => errors::handler_panicked(&after.id),
        };
        if let Some(access) = after.access {
            access.finish(err.as_response_error().status_code(), None);
        }
        Poll::Ready(Err(err))
    }
}

impl After {
    /// Problem bodies, the guard's headers, the metrics and the access line.
    fn finish(self, res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
        let mut res = errors::quote_request_id(errors::into_problem(res), &self.id);
        let headers = res.headers_mut();
        // `nosniff` is the header's one value: set it whatever a handler did.
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF.clone());
        headers.insert(request_id::HEADER, self.id.into_header_value());
        if self.draining {
            res.response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        if let Some(counted) = self.counted {
            counted.finish(&res);
        }
        // The route template, looked up only for lines that are written:
        // a feature route carries its own; actix's `match_pattern` walks the
        // routes again (a regex match per dynamic route), so it is only the
        // fallback for the app's own routes (docs, metrics).
        if let Some(access) = self.access {
            let req = res.request();
            match req.app_data::<RouteTemplate>() {
                Some(RouteTemplate(template)) => access.finish(res.status(), Some(template)),
                None => access.finish(res.status(), req.match_pattern().as_deref()),
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::dev::ServiceResponse;
    use actix_web::http::StatusCode;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, HttpResponse, web};
    use petsage_core::{MonitorSettings, PROBLEM_CONTENT_TYPE, Phase, Problem};

    use super::*;

    fn monitor() -> Data<HealthMonitor> {
        Data::new(HealthMonitor::new(
            Vec::new(),
            MonitorSettings {
                check_timeout: Duration::from_millis(500),
                interval: Duration::from_secs(5),
                failure_threshold: 1,
                success_threshold: 1,
            },
        ))
    }

    async fn bad_request() -> actix_web::Result<HttpResponse> {
        Err(actix_web::error::ErrorBadRequest(
            "the pet id must be a number",
        ))
    }

    async fn broken() -> actix_web::Result<HttpResponse> {
        Err(actix_web::error::ErrorInternalServerError(
            "db password is hunter2",
        ))
    }

    async fn bare_status() -> HttpResponse {
        HttpResponse::Forbidden().finish()
    }

    async fn verbose_unready() -> HttpResponse {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("[-]db failed: reason withheld\nready check failed\n")
    }

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().body("ok")
    }

    async fn panics() -> HttpResponse {
        panic!("a handler bug")
    }

    /// Sends `req` through the guard around a few handlers; `monitor` tells
    /// it whether the instance drains.
    async fn call(monitor: Data<HealthMonitor>, req: TestRequest) -> ServiceResponse {
        let app = atest::init_service(
            App::new()
                .wrap(Guard {
                    quiet_paths: Arc::from(vec!["/ok".to_owned()]),
                    monitor,
                    metrics: None,
                    max_header_bytes: 1024,
                })
                .route("/ok", web::get().to(ok))
                .route("/bad", web::get().to(bad_request))
                .route("/broken", web::get().to(broken))
                .route("/bare", web::get().to(bare_status))
                .route("/verbose", web::get().to(verbose_unready))
                .route("/panics", web::get().to(panics)),
        )
        .await;
        match atest::try_call_service(&app, req.to_request()).await {
            Ok(res) => res.map_into_boxed_body(),
            // An error (a panicking handler's) is rendered by actix's
            // dispatcher after the guard: do as it does.
            Err(err) => {
                let res = err.error_response();
                ServiceResponse::new(TestRequest::default().to_http_request(), res)
            }
        }
    }

    async fn problem(res: ServiceResponse) -> Problem {
        assert_eq!(
            res.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_CONTENT_TYPE.as_bytes())
        );
        atest::read_body_json(res).await
    }

    #[actix_web::test]
    async fn plain_errors_become_problems_without_leaking_internals() {
        let res = call(monitor(), TestRequest::get().uri("/bad")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(problem(res).await.detail, "the pet id must be a number");

        let res = call(monitor(), TestRequest::get().uri("/broken")).await;
        let broken = problem(res).await;
        assert_eq!(broken.status, 500);
        assert!(!broken.detail.contains("hunter2"), "{}", broken.detail);

        let res = call(monitor(), TestRequest::get().uri("/bare")).await;
        assert_eq!(
            problem(res).await.status,
            403,
            "a bare status gets a problem body"
        );

        let res = call(monitor(), TestRequest::get().uri("/verbose")).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = atest::read_body(res).await;
        assert!(
            body.ends_with(b"ready check failed\n"),
            "a handler's own text stays"
        );
    }

    #[actix_web::test]
    async fn every_answer_carries_its_request_id_and_nosniff() {
        let res = call(monitor(), TestRequest::get().uri("/ok")).await;
        let id = res.headers().get(request_id::HEADER).expect("an ID");
        assert_eq!(id.len(), 36, "a new UUID-shaped ID: {id:?}");
        assert_eq!(
            res.headers().get(header::X_CONTENT_TYPE_OPTIONS),
            Some(&HeaderValue::from_static("nosniff"))
        );

        let req = TestRequest::get()
            .uri("/bad")
            .insert_header((request_id::HEADER, "checkout-42"));
        let res = call(monitor(), req).await;
        assert_eq!(
            res.headers().get(request_id::HEADER),
            Some(&HeaderValue::from_static("checkout-42"))
        );
        assert_eq!(
            problem(res).await.request_id.as_deref(),
            Some("checkout-42")
        );
    }

    #[actix_web::test]
    async fn oversized_headers_get_431_before_any_handler_runs() {
        let req = TestRequest::get()
            .uri("/panics")
            .insert_header(("x-padding", "a".repeat(2000)));
        let res = call(monitor(), req).await;
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(problem(res).await.detail.contains("the limit is 1024"));
    }

    #[actix_web::test]
    async fn a_panicking_handler_gets_a_500_problem_with_its_request_id() {
        let req = TestRequest::get()
            .uri("/panics")
            .insert_header((request_id::HEADER, "crash-1"));
        let res = call(monitor(), req).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem(res).await.request_id.as_deref(), Some("crash-1"));
    }

    #[actix_web::test]
    async fn requests_that_start_while_draining_close_their_connection() {
        let serving = monitor();
        serving.set_phase(Phase::Serving);
        let res = call(serving, TestRequest::get().uri("/ok")).await;
        assert_eq!(
            res.response().head().connection_type(),
            ConnectionType::KeepAlive
        );

        let draining = monitor();
        draining.set_phase(Phase::Draining);
        let res = call(draining, TestRequest::get().uri("/ok")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.response().head().connection_type(),
            ConnectionType::Close
        );
    }
}
