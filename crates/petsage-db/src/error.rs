//! Database failures as HTTP answers: an unreachable or saturated database is
//! a `503` with `Retry-After`, never a hang and never a `500`.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use petsage_core::Problem;
use utoipa::ToSchema as _;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::{Ref, RefOr};

/// A handler's error: a problem of its own making, or a database failure.
#[derive(Debug)]
pub enum Error {
    /// An answer the handler chose (404, 422, …).
    Problem(Problem),
    /// A database failure, answered by [`problem`].
    Database(sqlx::Error),
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Problem(problem) => problem.fmt(f),
            Self::Database(err) => write!(f, "database: {err}"),
        }
    }
}

impl ResponseError for Error {
    /// The status alone: asking for it neither logs nor builds a body.
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Problem(problem) => problem.status_code(),
            Self::Database(err) if is_unavailable(err) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Problem(problem) => problem.to_response(),
            Self::Database(err) => problem(err).to_response(),
        }
    }
}

/// The `503` every handler that reads or writes the database documents: name
/// it in the `responses(...)` of its `#[utoipa::path]`, beside its own.
pub struct Unavailable;

impl utoipa::IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(Problem::name())))
            .build();
        ResponsesBuilder::new()
            .response(
                "503",
                ResponseBuilder::new()
                    .description("The database is unavailable; retry after `Retry-After` seconds.")
                    .content("application/problem+json", body),
            )
            .build()
            .into()
    }
}

/// The problem for a database failure: `503` with `Retry-After: 1` when the
/// database is unreachable, busy or out of connections; `500` otherwise.
/// Either way the cause goes to the log, never to the client.
pub fn problem(err: &sqlx::Error) -> Problem {
    if is_unavailable(err) {
        log::warn!("database unavailable: {err}");
        Problem::unavailable("the database is unavailable; retry shortly", 1)
    } else {
        log::error!("database error: {err}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not complete this request",
        )
    }
}

fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => {
            // SQLite: busy or locked. PostgreSQL: shutting down, cannot connect now,
            // too many connections, serialization failure, deadlock.
            let code = db.code().unwrap_or_default();
            matches!(
                code.as_ref(),
                "5" | "6" | "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
            ) || code.starts_with("08")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 503 as each handler used to spell it out.
    #[utoipa::path(get, path = "/items", responses(
        (status = 200, description = "Items."),
        (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json"),
    ))]
    fn spelled_out() {}

    /// The same operation with the shared response set.
    #[utoipa::path(get, path = "/items", responses(
        (status = 200, description = "Items."),
        Unavailable,
    ))]
    fn shared() {}

    #[test]
    fn the_shared_503_documents_what_each_handler_spelled_out() {
        use utoipa::Path as _;
        spelled_out();
        shared();
        let shared = __path_shared::operation().responses;
        assert!(
            shared == __path_spelled_out::operation().responses,
            "the shared 503 differs from the spelled-out one"
        );
        let responses = &shared.responses;
        assert_eq!(responses.keys().collect::<Vec<_>>(), ["200", "503"]);
    }

    #[test]
    fn the_status_matches_the_answer_for_every_kind() {
        let cases = [
            (Error::Database(sqlx::Error::PoolTimedOut), 503),
            (Error::Database(sqlx::Error::PoolClosed), 503),
            (Error::Database(sqlx::Error::RowNotFound), 500),
            (
                Problem::new(StatusCode::NOT_FOUND, "no such pet").into(),
                404,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status_code().as_u16(), status, "{err}");
            let res = err.error_response();
            assert_eq!(res.status().as_u16(), status, "{err}");
            let retry = res.headers().get("retry-after").is_some();
            assert_eq!(retry, status == 503, "{err}");
        }
    }
}
