//! RFC 9457 problem details: the one error body shape of every PetSage route.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Media type of problem bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "no route for GET /nothing-here"
}))]
pub struct Problem {
    /// URI identifying the problem type; `about:blank` means "see the status code".
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human-readable summary: the status code's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// For `422`: each bad field of the request and what is wrong with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The ID of the request this answers (`X-Request-Id`), to quote in a support request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<Box<str>>,
    /// Seconds after which a retry may succeed; sent as `Retry-After`, not in the body.
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

/// One bad field of a request, in a `422` problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where the bad value is: a field name (`name`), a query parameter, or `body` for the whole body.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// `field` is wrong because of `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Problem {
    /// A problem of type `about:blank` for `status`, explained by `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
            retry_after: None,
        }
    }

    /// A `422` naming each bad field.
    pub fn unprocessable(errors: Vec<FieldError>) -> Self {
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid request: check {}", fields.join(", ")),
        );
        problem.errors = errors;
        problem
    }

    /// A `503` that asks the client to retry after `seconds`.
    pub fn unavailable(detail: impl Into<String>, seconds: u32) -> Self {
        let mut problem = Self::new(StatusCode::SERVICE_UNAVAILABLE, detail);
        problem.retry_after = Some(seconds);
        problem
    }

    /// The status code this problem carries.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problem as a response with the `application/problem+json` type.
    /// (The app's problems layer adds the request's `request_id` on the way out.)
    pub fn to_response(&self) -> HttpResponse {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut builder = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, seconds));
        }
        builder
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
            ))
            // Also set here, for problems rendered outside the app's middleware.
            .insert_header((
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .body(body)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        Problem::status_code(self)
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_rfc_9457_shape() {
        let problem = Problem::new(StatusCode::NOT_FOUND, "nothing here");
        let json = serde_json::to_value(&problem).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": "nothing here"
            })
        );
    }

    #[test]
    fn response_carries_problem_media_type_and_status() {
        let res = Problem::new(StatusCode::METHOD_NOT_ALLOWED, "no").to_response();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            res.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_CONTENT_TYPE.as_bytes())
        );
    }
}
