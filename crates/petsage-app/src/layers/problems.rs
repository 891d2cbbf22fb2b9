//! [`Problems`]: every error answer leaves as an RFC 9457 problem body with
//! the request's ID in its `request_id` member. (A panicking handler's 500
//! problem is made by the layers' runner, and gets its ID from the
//! request-ID layer, as the request is gone with the panic.)

use actix_web::dev::ServiceRequest;

use super::{Layer, Response, Step};
use crate::errors;

/// Turns error answers into problems that quote the request's ID.
#[derive(Clone, Copy)]
pub(crate) struct Problems;

impl Layer for Problems {
    type Carry = ();

    fn before(&self, _req: &mut ServiceRequest) -> Step<()> {
        Step::Next(())
    }

    fn after((): (), res: Response) -> Response {
        errors::quote_request_id(errors::into_problem(res))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::dev::ServiceResponse;
    use actix_web::http::StatusCode;
    use actix_web::http::header;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, HttpResponse, web};
    use petsage_core::request_id::HEADER;
    use petsage_core::{PROBLEM_CONTENT_TYPE, Problem};

    use super::*;
    use crate::layers::Layered;
    use crate::layers::request_id::AssignRequestId;

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

    async fn own_problem() -> HttpResponse {
        let mut problem = Problem::new(StatusCode::CONFLICT, "taken");
        problem.request_id = Some("set-by-handler".into());
        problem.to_response()
    }

    async fn panics() -> HttpResponse {
        panic!("a handler bug")
    }

    /// Sends `req` through the request-ID and problems layers around a few handlers.
    async fn call(req: TestRequest) -> ServiceResponse {
        let app = atest::init_service(
            App::new()
                .wrap(Layered((Problems, AssignRequestId)))
                .route("/bad", web::get().to(bad_request))
                .route("/broken", web::get().to(broken))
                .route("/bare", web::get().to(bare_status))
                .route("/verbose", web::get().to(verbose_unready))
                .route("/own", web::get().to(own_problem))
                .route("/panics", web::get().to(panics)),
        )
        .await;
        match atest::try_call_service(&app, req.to_request()).await {
            Ok(res) => res,
            // An error (a panicking handler's) is rendered by actix's
            // dispatcher after the app: do as it does.
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
        let res = call(TestRequest::get().uri("/bad")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(problem(res).await.detail, "the pet id must be a number");

        let broken = problem(call(TestRequest::get().uri("/broken")).await).await;
        assert_eq!(broken.status, 500);
        assert!(!broken.detail.contains("hunter2"), "{}", broken.detail);

        let bare = problem(call(TestRequest::get().uri("/bare")).await).await;
        assert_eq!(bare.status, 403, "a bare status gets a problem body");

        let res = call(TestRequest::get().uri("/verbose")).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = atest::read_body(res).await;
        assert!(
            body.ends_with(b"ready check failed\n"),
            "a handler's own text stays"
        );
    }

    #[actix_web::test]
    async fn problems_quote_the_request_id_unless_they_carry_one() {
        let req = TestRequest::get()
            .uri("/bad")
            .insert_header((HEADER, "checkout-42"));
        let bad = problem(call(req).await).await;
        assert_eq!(bad.request_id.as_deref(), Some("checkout-42"));

        let req = TestRequest::get()
            .uri("/own")
            .insert_header((HEADER, "checkout-43"));
        let own = problem(call(req).await).await;
        assert_eq!(own.request_id.as_deref(), Some("set-by-handler"));
        assert_eq!(own.detail, "taken", "the rest of the body stays");
    }

    #[actix_web::test]
    async fn a_panicking_handler_gets_a_500_problem_with_its_request_id() {
        let req = TestRequest::get()
            .uri("/panics")
            .insert_header((HEADER, "crash-1"));
        let res = call(req).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(problem(res).await.request_id.as_deref(), Some("crash-1"));
    }
}
