//! What protected routes add to the OpenAPI document: their refusals, and the
//! security schemes their `security` names.

use utoipa::openapi::security::{Http, HttpAuthScheme, OpenIdConnect, SecurityScheme};
use utoipa::openapi::{Components, Ref, RefOr, Response, ResponseBuilder};

use crate::require::BEARER_SCHEME;

/// The scheme that points Swagger UI and clients at the provider's discovery document.
pub const OPENID_SCHEME: &str = "openIdConnect";

/// The answers every protected operation may give besides its own.
pub(crate) fn refusals() -> Vec<(String, RefOr<Response>)> {
    [
        (
            "400",
            "Malformed Authorization header (`error=\"invalid_request\"`)",
        ),
        (
            "401",
            "No bearer token, or one that is not valid (`WWW-Authenticate: Bearer …`)",
        ),
        (
            "403",
            "The token lacks a scope this operation needs (`error=\"insufficient_scope\"`)",
        ),
    ]
    .into_iter()
    .map(|(status, description)| {
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                petsage_core::PROBLEM_CONTENT_TYPE,
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build();
        (status.to_owned(), RefOr::T(response))
    })
    .collect()
}

/// `bearerAuth` (HTTP bearer, JWT), and `openIdConnect` at `issuer`'s
/// discovery document when there is a provider (not in dev mode, whose
/// tokens come from `petsage-app dev-token`).
pub(crate) fn security_schemes(components: &mut Components, issuer: Option<&str>) {
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.bearer_format = Some("JWT".to_owned());
    components.security_schemes.insert(
        BEARER_SCHEME.to_owned(),
        RefOr::T(SecurityScheme::Http(bearer)),
    );
    let Some(issuer) = issuer else {
        return;
    };
    components.security_schemes.insert(
        OPENID_SCHEME.to_owned(),
        RefOr::T(SecurityScheme::OpenIdConnect(OpenIdConnect::new(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )))),
    );
}
