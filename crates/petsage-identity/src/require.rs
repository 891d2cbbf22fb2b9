//! [`Scopes`]: the requirement a protected route declares. It writes the
//! route's OpenAPI `security` and enforces, from the same list: a bearer
//! token in the `Authorization` header (never the query string), verified,
//! granting every listed scope. Refusals follow RFC 6750 (`WWW-Authenticate`)
//! with an RFC 9457 problem body.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpResponse, Route};
use petsage_core::{Problem, Requirement};
use utoipa::openapi::Components;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;

use crate::metrics::Failure;
use crate::verify::{Invalid, Verifier};
use crate::{Identity, Principal};

/// The security scheme protected operations name in the OpenAPI document.
pub const BEARER_SCHEME: &str = "bearerAuth";

/// The `realm` of every challenge.
const REALM: &str = "petsage";

/// Most verified tokens each worker keeps.
const CACHE_CAPACITY: usize = 4096;

/// Every scope in a list, required of a route's caller.
#[derive(Clone)]
pub struct Scopes {
    identity: Identity,
    scopes: Rc<[String]>,
}

impl Scopes {
    pub(crate) fn new(identity: Identity, scopes: &[&str]) -> Self {
        Self {
            identity,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl Requirement for Scopes {
    fn document(&self, operation: &mut Operation) {
        operation
            .security
            .get_or_insert_with(Vec::new)
            .push(SecurityRequirement::new(BEARER_SCHEME, self.scopes.iter()));
        operation
            .responses
            .responses
            .extend(crate::openapi::refusals());
    }

    fn document_components(&self, components: &mut Components) {
        let discovery = self
            .identity
            .dev_issuer()
            .is_none()
            .then(|| self.identity.issuer());
        crate::openapi::security_schemes(components, discovery);
    }

    fn enforce(&self, route: Route) -> Route {
        let scopes = self.clone();
        route.wrap(from_fn(move |req: ServiceRequest, next: Next<BoxBody>| {
            let scopes = scopes.clone();
            async move {
                match scopes.admit(&req).await {
                    Ok(principal) => {
                        req.extensions_mut().insert(principal);
                        next.call(req).await
                    }
                    Err(refusal) => {
                        scopes.identity.counters().failed(refusal.failure);
                        Ok(req.into_response(refusal.into_response()))
                    }
                }
            }
        }))
    }
}

impl Scopes {
    /// The caller `req`'s token names, if it may call the route.
    async fn admit(&self, req: &ServiceRequest) -> Result<Arc<Principal>, Refusal> {
        let credentials = bearer_credentials(req)?;
        let principal = self.principal(credentials).await?;
        if !self.scopes.iter().all(|scope| principal.has_scope(scope)) {
            return Err(Refusal::insufficient_scope(&self.scopes));
        }
        Ok(principal)
    }

    /// The verified caller of the token in `credentials`: from this worker's
    /// cache, or checked and verified now (after one key-set refetch when it
    /// names an unknown key).
    async fn principal(&self, credentials: &[u8]) -> Result<Arc<Principal>, Refusal> {
        let identity = &self.identity;
        let Some((keys, generation)) = identity.keys() else {
            return Err(Refusal::no_keys());
        };
        // Only a token that passed `bearer_token` is ever cached, so a hit
        // needs no second look at its characters.
        if let Some(principal) = cached(credentials, generation) {
            return Ok(principal);
        }
        let token = bearer_token(credentials)?;
        let verifier: &Verifier = identity.verifier();
        let verified = match verifier.verify(token, &keys) {
            Err(Invalid::UnknownKey)
                if Verifier::key_id(token).is_some()
                    && identity.refetch_for_unknown_key().await =>
            {
                match identity.keys() {
                    Some((keys, _)) => verifier.verify(token, &keys),
                    None => Err(Invalid::UnknownKey),
                }
            }
            other => other,
        }
        .map_err(Refusal::invalid_token)?;
        let principal = Arc::new(verified.principal);
        let generation = identity.keys().map_or(generation, |(_, g)| g);
        remember(
            credentials,
            generation,
            verified.expires_at,
            Arc::clone(&principal),
        );
        Ok(principal)
    }
}

/// The value of the one `Authorization` header, as sent; nothing else is read.
fn bearer_credentials(req: &ServiceRequest) -> Result<&[u8], Refusal> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Err(Refusal::missing());
    };
    if values.next().is_some() {
        return Err(Refusal::invalid_request("send one Authorization header"));
    }
    Ok(value.as_bytes())
}

/// The token of `Bearer <token>` (RFC 6750's `b64token` characters only).
fn bearer_token(credentials: &[u8]) -> Result<&str, Refusal> {
    let malformed = || Refusal::invalid_request("expected Authorization: Bearer <token>");
    let value = std::str::from_utf8(credentials)
        .map_err(|_| Refusal::invalid_request("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim_start_matches(' ');
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.bytes().all(token68) {
        return Err(malformed());
    }
    Ok(token)
}

/// Why a request was refused, and how to answer it.
struct Refusal {
    failure: Failure,
    status: StatusCode,
    challenge: String,
    detail: String,
}

impl Refusal {
    fn missing() -> Self {
        Self {
            failure: Failure::MissingToken,
            status: StatusCode::UNAUTHORIZED,
            challenge: format!("Bearer realm=\"{REALM}\""),
            detail: "this route needs a bearer access token".to_owned(),
        }
    }

    fn invalid_request(detail: &str) -> Self {
        Self {
            failure: Failure::InvalidRequest,
            status: StatusCode::BAD_REQUEST,
            challenge: format!("Bearer realm=\"{REALM}\", error=\"invalid_request\""),
            detail: detail.to_owned(),
        }
    }

    fn invalid_token(invalid: Invalid) -> Self {
        Self {
            failure: Failure::Invalid(invalid),
            status: StatusCode::UNAUTHORIZED,
            challenge: format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
                invalid.description()
            ),
            detail: invalid.description().to_owned(),
        }
    }

    fn insufficient_scope(needed: &[String]) -> Self {
        let needed = needed.join(" ");
        Self {
            failure: Failure::InsufficientScope,
            status: StatusCode::FORBIDDEN,
            challenge: format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{needed}\""
            ),
            detail: format!("this route needs the scopes: {needed}"),
        }
    }

    fn no_keys() -> Self {
        Self {
            failure: Failure::NoKeys,
            status: StatusCode::SERVICE_UNAVAILABLE,
            challenge: String::new(),
            detail: "the identity provider's keys are not available yet".to_owned(),
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut problem = Problem::new(self.status, self.detail);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            problem.retry_after = Some(5);
        }
        let mut res = problem.to_response();
        if let Ok(challenge) = HeaderValue::from_str(&self.challenge)
            && !self.challenge.is_empty()
        {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        res
    }
}

/// A verified token in this worker's cache.
struct Cached {
    principal: Arc<Principal>,
    expires_at: u64,
    generation: u64,
}

thread_local! {
    /// Each worker's verified tokens, looked up by a hash of the whole token
    /// and confirmed by comparing it, so a collision can never admit one.
    static CACHE: RefCell<HashMap<Box<[u8]>, Cached, rustc_hash::FxBuildHasher>> =
        RefCell::new(HashMap::default());
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The caller of the token in `credentials` (the `Authorization` value) if
/// this worker verified it under key-set `generation` and it has not expired since.
fn cached(credentials: &[u8], generation: u64) -> Option<Arc<Principal>> {
    CACHE.with_borrow(|cache| {
        let entry = cache.get(credentials)?;
        (entry.generation == generation && entry.expires_at > now())
            .then(|| Arc::clone(&entry.principal))
    })
}

/// Keeps a verified token until its `exp`; a full cache first drops what
/// expired, then everything.
fn remember(credentials: &[u8], generation: u64, expires_at: u64, principal: Arc<Principal>) {
    CACHE.with_borrow_mut(|cache| {
        if cache.len() >= CACHE_CAPACITY {
            let now = now();
            cache.retain(|_, entry| entry.expires_at > now && entry.generation == generation);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            credentials.into(),
            Cached {
                principal,
                expires_at,
                generation,
            },
        );
    });
}
