//! Every error leaves the service as an RFC 9457 problem body, whichever
//! layer produced it (routing, an extractor, a handler).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use log::error;
use petsage_core::{PROBLEM_CONTENT_TYPE, Problem};

use petsage_core::request_id;

/// Turns a 4xx/5xx response that actix or an extractor made (an `Error`, or
/// no body type at all) into a problem body; any other response passes
/// through untouched.
///
/// JSON error bodies are left alone (problems, and the health endpoints'
/// 503s), and so is any error body a handler chose the type of (readiness's
/// verbose text): each carries its own documented schema.
pub(crate) fn into_problem(res: ServiceResponse) -> ServiceResponse {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let content_type = res.headers().get(header::CONTENT_TYPE);
    let is_json = content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_type);
    let chosen_by_handler = content_type.is_some() && res.response().error().is_none();
    if is_json || chosen_by_handler {
        return res;
    }
    let detail = match res.response().error() {
        // Client errors explain what was wrong with the request.
        Some(err) if status.is_client_error() => err.to_string(),
        // Server errors keep their internals in the log, not in the body.
        _ if status.is_server_error() => "the server could not complete this request".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let (req, original) = res.into_parts();
    let mut problem = Problem::new(status, detail).to_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(req, problem)
}

/// `application/json`, `application/problem+json`, and the like.
fn is_json_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence == "application/json" || essence.ends_with("+json")
}

/// Adds the request's ID (the answer's `X-Request-Id`, set by the request-ID
/// layer inside) as the `request_id` member of a problem body that has none;
/// any other response passes through untouched. Problems answer errors only,
/// so a successful request costs nothing but a status check.
pub(crate) fn quote_request_id(res: ServiceResponse) -> ServiceResponse {
    let status = res.status();
    let is_problem = (status.is_client_error() || status.is_server_error())
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes());
    if !is_problem {
        return res;
    }
    let Some(id) = res
        .headers()
        .get(request_id::HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
    else {
        return res;
    };
    let (req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        Err(body) => return ServiceResponse::new(req, head.set_body(body)),
    };
    let body = match serde_json::from_slice::<Problem>(&bytes) {
        Ok(mut problem) if problem.request_id.is_none() => {
            problem.request_id = Some(id.into());
            serde_json::to_vec(&problem).map_or(bytes, Bytes::from)
        }
        _ => bytes,
    };
    ServiceResponse::new(req, head.set_body(BoxBody::new(body)))
}

/// The answer to a request whose handler panicked: a 500 problem, returned as
/// an error because the request is gone (actix routing needs the only handle
/// on it). The panic hook has already logged where it happened.
pub(crate) fn handler_panicked() -> actix_web::Error {
    error!("a handler panicked; answered 500 (its access line names the request)");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server could not complete this request",
    )
    .into()
}

/// The app's fallback: no route matched the path.
pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no route for {} {}", req.method(), truncated(req.path())),
    )
    .to_response()
}

/// Echoing a client's 100 KB path back to it helps nobody: keep the start.
fn truncated(path: &str) -> &str {
    const MAX: usize = 200;
    match path.char_indices().nth(MAX) {
        Some((end, _)) => &path[..end],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_in_details() {
        let long = "/x".repeat(1000);
        assert_eq!(truncated(&long).len(), 200);
        assert_eq!(truncated("/short"), "/short");
    }

    #[test]
    fn json_types_are_recognised_by_their_essence() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("application/problem+json; charset=utf-8"));
        assert!(!is_json_type("text/plain; charset=utf-8"));
    }
}
