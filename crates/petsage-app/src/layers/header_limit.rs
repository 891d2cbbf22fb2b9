//! [`HeaderLimit`]: a request whose headers total more than the limit is
//! answered `431` with a problem before routing, so no handler or extractor
//! ever reads them.

use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use petsage_core::Problem;

use super::{Layer, Response, Step};

/// Refuses requests whose header names and values total more than `max_bytes`.
#[derive(Clone, Copy)]
pub(crate) struct HeaderLimit {
    /// Largest total size of a request's header names and values.
    pub(crate) max_bytes: usize,
}

impl Layer for HeaderLimit {
    type Carry = ();

    fn before(&self, req: &mut ServiceRequest) -> Step<()> {
        let size = header_bytes(req);
        if size <= self.max_bytes {
            return Step::Next(());
        }
        Step::Answer(
            (),
            Problem::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "request headers total {size} bytes; the limit is {}",
                    self.max_bytes
                ),
            )
            .to_response(),
        )
    }

    fn after((): (), res: Response) -> Response {
        res
    }
}

/// The total size of a request's header names and values, in bytes.
fn header_bytes(req: &ServiceRequest) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;
    use std::cell::Cell;
    use std::rc::Rc;

    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, web};

    use super::*;
    use crate::layers::Layered;

    #[actix_web::test]
    async fn oversized_headers_get_431_before_any_handler_runs() {
        let ran = Rc::new(Cell::new(0));
        let counter = Rc::clone(&ran);
        let app = atest::init_service(
            App::new()
                .wrap(Layered(HeaderLimit { max_bytes: 1024 }))
                .route(
                    "/",
                    web::get().to(move || {
                        counter.set(counter.get() + 1);
                        async { HttpResponse::Ok().finish() }
                    }),
                ),
        )
        .await;

        let small = TestRequest::get().insert_header(("x-padding", "a".repeat(900)));
        let res = atest::call_service(&app, small.to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);

        let large = TestRequest::get().insert_header(("x-padding", "a".repeat(2000)));
        let res = atest::call_service(&app, large.to_request()).await;
        assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let problem: Problem = atest::read_body_json(res).await;
        assert!(
            problem.detail.contains("the limit is 1024"),
            "{}",
            problem.detail
        );
        assert_eq!(ran.get(), 1, "the handler ran for the small request only");
    }
}
