//! [`AssignRequestId`]: every request gets its ID, the client's safe
//! `X-Request-Id` or a new one, sent back in `X-Request-Id`. The layers
//! outside it (problem bodies, the access line) read the ID from that header:
//! nothing is stored in the request for them, which an extension would cost
//! every request. Inside every layer that answers, so a 431 carries one.

use actix_web::Error;
use actix_web::dev::ServiceRequest;
use petsage_core::Problem;
use petsage_core::request_id::{self, RequestId};

use super::{Layer, Response, Step};

/// Gives each request its [`RequestId`] and echoes it in the response.
#[derive(Clone, Copy)]
pub(crate) struct AssignRequestId;

impl Layer for AssignRequestId {
    type Carry = RequestId;

    fn before(&self, req: &mut ServiceRequest) -> Step<RequestId> {
        Step::Next(RequestId::from_header_or_new(
            req.headers().get(request_id::HEADER),
        ))
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

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;
    use actix_web::http::StatusCode;
    use actix_web::http::header::HeaderValue;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, web};

    use super::*;
    use crate::layers::Layered;

    async fn call(req: TestRequest) -> Option<HeaderValue> {
        let app = atest::init_service(
            App::new()
                .wrap(Layered(AssignRequestId))
                .route("/", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let res = atest::call_service(&app, req.uri("/").to_request()).await;
        res.headers().get(request_id::HEADER).cloned()
    }

    #[actix_web::test]
    async fn a_safe_client_id_is_kept_and_echoed() {
        let req = TestRequest::get().insert_header((request_id::HEADER, "checkout-42"));
        assert_eq!(
            call(req).await,
            Some(HeaderValue::from_static("checkout-42"))
        );
    }

    #[actix_web::test]
    async fn an_unsafe_or_missing_id_is_replaced_by_a_new_one() {
        for req in [
            TestRequest::get(),
            TestRequest::get().insert_header((request_id::HEADER, "has space")),
        ] {
            let header = call(req).await.expect("an ID");
            assert_eq!(header.len(), 36, "a UUID-shaped ID: {header:?}");
        }
    }

    #[test]
    fn an_error_actix_renders_gets_the_id_in_its_problem() {
        let id = RequestId::from_header_or_new(Some(&HeaderValue::from_static("crash-2")));
        let err: Error = Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "boom").into();
        let err = AssignRequestId::failed(id, err);
        let problem = err.as_error::<Problem>().expect("still a problem");
        assert_eq!(problem.request_id.as_deref(), Some("crash-2"));
    }
}
