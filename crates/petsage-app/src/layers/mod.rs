//! The request pipeline: one named layer per job, stacked in [`crate::app`].
//!
//! Outermost first, a request passes through:
//! 1. [`request_id::AssignRequestId`]: the request's ID, in its extensions and
//!    in the answer's `X-Request-Id`;
//! 2. [`security_headers::SecurityHeaders`]: `X-Content-Type-Options: nosniff`;
//! 3. [`observe::Observe`]: the HTTP metrics and the access line;
//! 4. [`drain::CloseWhileDraining`]: `Connection: close` while the instance drains;
//! 5. [`problems::Problems`]: every error answer becomes a problem body with
//!    the request's ID, and a panicking handler a 500 problem;
//! 6. [`header_limit::HeaderLimit`]: 431 for oversized headers, before routing.
//!
//! Most layers are a [`Layer`]: a step before the inner service and a step on
//! its answer, run by one shared [`Transform`] whose future is named, not
//! boxed, so a layer costs a request no allocation.

pub(crate) mod drain;
pub(crate) mod header_limit;
pub(crate) mod observe;
pub(crate) mod problems;
pub(crate) mod request_id;
pub(crate) mod security_headers;

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpResponse};
use pin_project_lite::pin_project;

/// The response type inside the pipeline.
pub(crate) type Response = ServiceResponse<BoxBody>;

/// One step of the pipeline: what it does before the inner service, and what
/// it does to the answer.
pub(crate) trait Layer: Clone + 'static {
    /// What the layer keeps from the request for the answer.
    type Carry;

    /// Before the inner service: `Ok` passes the request on, `Err` answers it at once.
    fn before(&self, req: &mut ServiceRequest) -> Result<Self::Carry, HttpResponse>;

    /// Applied to the inner service's answer (not to the layer's own), from
    /// what the request left in the carry: the layer itself is not kept for
    /// it, so a request clones none of a layer's handles.
    fn after(carry: Self::Carry, res: Response) -> Response;

    /// Applied when the inner service failed: the error actix renders itself.
    fn failed(carry: Self::Carry, err: Error) -> Error {
        drop(carry);
        err
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
            Ok(carry) => LayeredFuture {
                call: Some(self.service.call(req)),
                answered: None,
                carry: Some(carry),
            },
            Err(answer) => {
                let (req, _) = req.into_parts();
                LayeredFuture {
                    call: None,
                    answered: Some(ServiceResponse::new(req, answer.map_into_boxed_body())),
                    carry: None,
                }
            }
        }
    }
}

pin_project! {
    /// A request inside one layer: the inner service's answer, then the
    /// layer's step on it; or the layer's own answer.
    pub(crate) struct LayeredFuture<F, L: Layer> {
        #[pin]
        call: Option<F>,
        answered: Option<Response>,
        // What the layer carries to the answer.
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
        let Some(call) = this.call.as_pin_mut() else {
            return Poll::Ready(Ok(this.answered.take().expect(DONE)));
        };
        let answer = ready!(call.poll(cx));
        let carry = this.carry.take().expect(DONE);
        Poll::Ready(match answer {
            Ok(res) => Ok(L::after(carry, res)),
            Err(err) => Err(L::failed(carry, err)),
        })
    }
}
