//! [`Principal`]: who called, as a verified access token says.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use petsage_core::Problem;

/// The caller of a protected route: from its verified access token. Each
/// field is shared, so handing it to a handler copies no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's issuer (`iss`).
    pub issuer: Arc<str>,
    /// The caller within that issuer (`sub`): the user, or the client for client credentials.
    pub subject: Arc<str>,
    /// The OAuth client the token was issued to (`client_id`), when the token says.
    pub client_id: Option<Arc<str>>,
    /// The scopes the token grants.
    pub scopes: Arc<[String]>,
}

impl Principal {
    /// Whether the token grants `scope`, matched exactly (`pets:readx` is not `pets:read`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|granted| granted == scope)
    }
}

/// A handler's `Principal` argument: the caller its route's requirement verified.
impl FromRequest for Principal {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<Arc<Principal>>() {
            Some(principal) => Ok(Principal::clone(principal)),
            // A handler asked for a caller on a route that requires none:
            // a bug in the feature, never the client's fault.
            None => {
                log::error!(
                    "{} asks for the caller, but its route requires no scope",
                    req.path()
                );
                Err(Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server could not complete this request",
                ))
            }
        })
    }
}
