//! [`SecurityHeaders`]: `X-Content-Type-Options: nosniff` on every answer, so
//! no browser guesses a JSON or problem body to be something it can run.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderValue};

use super::{Layer, Response, Step};

/// `nosniff`, made at compile time.
static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// Sets the response security headers, whatever a handler set.
#[derive(Clone, Copy)]
pub(crate) struct SecurityHeaders;

impl Layer for SecurityHeaders {
    type Carry = ();

    fn before(&self, _req: &mut ServiceRequest) -> Step<()> {
        Step::Next(())
    }

    fn after((): (), mut res: Response) -> Response {
        // `nosniff` is the header's one value: set it whatever a handler did.
        res.headers_mut()
            .insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF.clone());
        res
    }
}

#[cfg(test)]
mod tests {
    use actix_web::HttpResponse;
    use actix_web::test::{self as atest, TestRequest};
    use actix_web::{App, web};

    use super::*;
    use crate::layers::Layered;

    async fn sniffable() -> HttpResponse {
        HttpResponse::Ok()
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "sniff-away"))
            .body("<html>")
    }

    #[actix_web::test]
    async fn nosniff_replaces_whatever_a_handler_set() {
        let app = atest::init_service(
            App::new()
                .wrap(Layered(SecurityHeaders))
                .route("/", web::get().to(sniffable)),
        )
        .await;
        for uri in ["/", "/missing"] {
            let res = atest::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
            let values: Vec<_> = res
                .headers()
                .get_all(header::X_CONTENT_TYPE_OPTIONS)
                .collect();
            assert_eq!(values, [&NOSNIFF], "{uri}");
        }
    }
}
