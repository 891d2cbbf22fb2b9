//! [`AssignRequestId`]: every request gets its ID, the client's safe
//! `X-Request-Id` or a new one, kept in the request's extensions for the
//! layers and handlers inside, and sent back in `X-Request-Id`. Outermost, so
//! every answer carries one, a 431 included.

use actix_web::dev::ServiceRequest;
use actix_web::{Error, HttpMessage};
use petsage_core::Problem;
use petsage_core::request_id::{self, RequestId};

use super::{Layer, Response, Step};

/// Gives each request its [`RequestId`] and echoes it in the response.
#[derive(Clone, Copy)]
pub(crate) struct AssignRequestId;

impl Layer for AssignRequestId {
    type Carry = RequestId;

    fn before(&self, req: &mut ServiceRequest) -> Step<RequestId> {
        let id = RequestId::from_header_or_new(req.headers().get(request_id::HEADER));
        req.extensions_mut().insert(id.clone());
        Step::Next(id)
    }

    fn after(id: RequestId, mut res: Response) -> Response {
        res.headers_mut()
            .insert(request_id::HEADER, id.into_header_value());
        res
    }

    /// An error actix renders itself (a panicking handler's 500 problem)
    /// gets the ID in its problem body, as every answer does.
    fn failed(id: RequestId, err: Error) -> Error {
        match err.as_error::<Problem>() {
            Some(problem) if problem.request_id.is_none() => {
                let mut problem = problem.clone();
                problem.request_id = Some(id.as_str().into());
                problem.into()
            }
            _ => err,
        }
    }
}

/// The ID [`AssignRequestId`] gave `req`, if the layer ran.
pub(crate) fn of(req: &actix_web::HttpRequest) -> Option<RequestId> {
    req.extensions().get::<RequestId>().cloned()
}

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, HttpRequest, web};

    use super::*;
    use crate::layers::Layered;

    async fn echo(req: HttpRequest) -> HttpResponse {
        HttpResponse::Ok().body(of(&req).map(|id| id.to_string()).unwrap_or_default())
    }

    async fn call(req: TestRequest) -> (Option<HeaderValue>, String) {
        let app = atest::init_service(
            App::new()
                .wrap(Layered(AssignRequestId))
                .route("/", web::get().to(echo)),
        )
        .await;
        let res = atest::call_service(&app, req.uri("/").to_request()).await;
        let header = res.headers().get(request_id::HEADER).cloned();
        let body = atest::read_body(res).await;
        (header, String::from_utf8_lossy(&body).into_owned())
    }

    #[actix_web::test]
    async fn a_safe_client_id_is_kept_and_echoed() {
        let req = TestRequest::get().insert_header((request_id::HEADER, "checkout-42"));
        let (header, seen) = call(req).await;
        assert_eq!(header, Some(HeaderValue::from_static("checkout-42")));
        assert_eq!(seen, "checkout-42", "handlers see the same ID");
    }

    #[actix_web::test]
    async fn an_unsafe_or_missing_id_is_replaced_by_a_new_one() {
        for req in [
            TestRequest::get(),
            TestRequest::get().insert_header((request_id::HEADER, "has space")),
        ] {
            let (header, seen) = call(req).await;
            let header = header.expect("an ID");
            assert_eq!(header.len(), 36, "a UUID-shaped ID: {header:?}");
            assert_eq!(header.to_str().ok(), Some(seen.as_str()));
        }
    }
}
