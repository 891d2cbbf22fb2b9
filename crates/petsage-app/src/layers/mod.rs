//! The request pipeline: one named layer per job, stacked in [`crate::app`].
//!
//! Outermost first, a request passes through:
//! 1. [`observe::Observe`]: the HTTP metrics and the access line, of the
//!    final answer;
//! 2. [`security_headers::SecurityHeaders`]: `X-Content-Type-Options: nosniff`;
//! 3. [`problems::Problems`]: every error answer becomes a problem body with
//!    the request's ID;
//! 4. [`request_id::AssignRequestId`]: the request's ID, in the answer's
//!    `X-Request-Id`, where the layers outside it read it;
//! 5. [`drain::CloseWhileDraining`]: `Connection: close` while the instance drains;
//! 6. [`header_limit::HeaderLimit`]: 431 for oversized headers, before routing.
//!
//! Each is a [`Layer`]: a step before the inner service and a step on its
//! answer, with its own module and tests. The app runs the whole stack as
//! one middleware: a pair of layers is a layer (the first around the
//! second), so the six make one [`Transform`] with one named future, not six
//! services a request passes in and out of. That future also catches a
//! panicking handler, which becomes a 500 problem that each layer's
//! [`Layer::failed`] sees.

pub(crate) mod drain;
pub(crate) mod header_limit;
pub(crate) mod observe;
pub(crate) mod problems;
pub(crate) mod request_id;
pub(crate) mod security_headers;

use std::future::{Future, Ready, ready};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpResponse};
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use pin_project_lite::pin_project;

use crate::errors;

/// The response type inside the pipeline.
pub(crate) type Response = ServiceResponse<BoxBody>;

/// What a layer does with a request before the inner service.
pub(crate) enum Step<C> {
    /// Pass the request on, keeping `C` for the answer.
    Next(C),
    /// Answer it now with this response, which then passes through every
    /// layer's `after`, this one's included, as any answer does.
    Answer(C, HttpResponse),
}

/// One step of the pipeline: what it does before the inner service, and what
/// it does to the answer.
pub(crate) trait Layer: Clone + 'static {
    /// What the layer keeps from the request for the answer.
    type Carry;

    /// Before the inner service: pass the request on, or answer it at once.
    fn before(&self, req: &mut ServiceRequest) -> Step<Self::Carry>;

    /// Applied to the answer, from what the request left in the carry: the
    /// layer itself is not kept for it, so a request clones none of a
    /// layer's handles.
    fn after(carry: Self::Carry, res: Response) -> Response;

    /// Applied when the inner service failed: the error actix renders itself
    /// (a panicking handler's 500 problem among them).
    fn failed(carry: Self::Carry, err: Error) -> Error {
        drop(carry);
        err
    }
}

/// Two layers as one: `.0` around `.1`. Nest pairs for a whole stack.
impl<A: Layer, B: Layer> Layer for (A, B) {
    /// The inner layer's carry is `None` when the outer one answered itself.
    type Carry = (A::Carry, Option<B::Carry>);

    fn before(&self, req: &mut ServiceRequest) -> Step<Self::Carry> {
        match self.0.before(req) {
            Step::Answer(a, answer) => Step::Answer((a, None), answer),
            Step::Next(a) => match self.1.before(req) {
                Step::Next(b) => Step::Next((a, Some(b))),
                Step::Answer(b, answer) => Step::Answer((a, Some(b)), answer),
            },
        }
    }

    fn after((a, b): Self::Carry, res: Response) -> Response {
        let res = match b {
            Some(b) => B::after(b, res),
            None => res,
        };
        A::after(a, res)
    }

    fn failed((a, b): Self::Carry, err: Error) -> Error {
        let err = match b {
            Some(b) => B::failed(b, err),
            None => err,
        };
        A::failed(a, err)
    }
}

/// A [`Layer`] as an actix middleware: `App::wrap(Layered(layer))`.
#[derive(Clone)]
pub(crate) struct Layered<L>(pub(crate) L);

impl<S, L> Transform<S, ServiceRequest> for Layered<L>
where
    S: Service<ServiceRequest, Response = Response, Error = Error> + 'static,
    L: Layer,
{
    type Response = Response;
    type Error = Error;
    type Transform = LayeredService<S, L>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(LayeredService {
            service,
            layer: self.0.clone(),
        }))
    }
}

/// A [`Layer`] around the service it wraps.
pub(crate) struct LayeredService<S, L> {
    service: S,
    layer: L,
}

impl<S, L> Service<ServiceRequest> for LayeredService<S, L>
where
    S: Service<ServiceRequest, Response = Response, Error = Error>,
    L: Layer,
{
    type Response = Response;
    type Error = Error;
    type Future = LayeredFuture<S::Future, L>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        match self.layer.before(&mut req) {
            Step::Next(carry) => LayeredFuture {
                call: Some(AssertUnwindSafe(self.service.call(req)).catch_unwind()),
                answered: None,
                carry: Some(carry),
            },
            Step::Answer(carry, answer) => {
                let (req, _) = req.into_parts();
                LayeredFuture {
                    call: None,
                    answered: Some(ServiceResponse::new(req, answer.map_into_boxed_body())),
                    carry: Some(carry),
                }
            }
        }
    }
}

pin_project! {
    /// A request inside the layers: the inner service's answer (a panic
    /// caught), or the layers' own; then each layer's step on it.
    pub(crate) struct LayeredFuture<F, L: Layer> {
        #[pin]
        call: Option<CatchUnwind<AssertUnwindSafe<F>>>,
        answered: Option<Response>,
        carry: Option<L::Carry>,
    }
}

impl<F, L> Future for LayeredFuture<F, L>
where
    F: Future<Output = Result<Response, Error>>,
    L: Layer,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        const DONE: &str = "LayeredFuture polled after it completed";
        let this = self.project();
        let answer = match this.call.as_pin_mut() {
            Some(call) => ready!(call.poll(cx)),
            None => Ok(Ok(this.answered.take().expect(DONE))),
        };
        let carry = this.carry.take().expect(DONE);
        Poll::Ready(match answer {
            Ok(Ok(res)) => Ok(L::after(carry, res)),
            Ok(Err(err)) => Err(L::failed(carry, err)),
            // The request is gone with the panic: the answer is an error,
            // which actix renders after the app.
            Err(_panic) => Err(L::failed(carry, errors::handler_panicked())),
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, HttpResponse, web};

    use super::header_limit::HeaderLimit;
    use super::security_headers::SecurityHeaders;
    use super::*;

    async fn panics() -> HttpResponse {
        panic!("a handler bug")
    }

    #[actix_web::test]
    async fn a_pair_runs_the_outer_step_on_the_inner_layers_own_answer() {
        let app = atest::init_service(
            App::new()
                .wrap(Layered((SecurityHeaders, HeaderLimit { max_bytes: 64 })))
                .route("/", web::get().to(HttpResponse::Ok))
                .route("/panics", web::get().to(panics)),
        )
        .await;
        let large = TestRequest::get().insert_header(("x-padding", "a".repeat(100)));
        let res = atest::call_service(&app, large.to_request()).await;
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(
            res.headers().contains_key(header::X_CONTENT_TYPE_OPTIONS),
            "the outer layer's after ran on the inner layer's answer"
        );

        let err = atest::try_call_service(&app, TestRequest::get().uri("/panics").to_request())
            .await
            .expect_err("a panic leaves as an error actix renders");
        assert_eq!(
            err.error_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
