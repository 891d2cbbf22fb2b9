//! A test-only feature with one protected route, `/test/whoami`, that needs
//! `notes:read` and answers with the caller its token names: the black-box
//! identity tests run it against a real OpenID provider.

use actix_web::HttpResponse;
use petsage_core::{Context, Feature, NoSettings, Routes, route};
use petsage_identity::{Identity, Principal};
use serde::Serialize;
use utoipa::ToSchema;

/// The scope `/test/whoami` requires.
pub const SCOPE: &str = "notes:read";

/// The caller, as `/test/whoami` tells it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Caller {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `client_id`.
    pub client_id: Option<String>,
    /// The token's scopes.
    pub scopes: Vec<String>,
}

/// Tells the caller who it is.
#[utoipa::path(get, path = "/test/whoami", operation_id = "test_whoami", tag = "Test",
    responses((status = 200, description = "The caller its token names", body = Caller)))]
async fn whoami(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(Caller {
        issuer: principal.issuer.to_string(),
        subject: principal.subject.to_string(),
        client_id: principal.client_id.map(|id| id.to_string()),
        scopes: principal.scopes.to_vec(),
    })
}

/// The test-only feature: one protected route.
pub struct Whoami {
    identity: Identity,
}

impl Feature for Whoami {
    const NAME: &'static str = "test-whoami";
    type Settings = NoSettings;

    fn build(_: NoSettings, ctx: &mut Context) -> Result<Self, String> {
        Ok(Self {
            identity: Identity::from_context(ctx)?,
        })
    }

    fn routes(&self) -> Routes {
        Routes::new().route(route!(whoami).require(self.identity.require(&[SCOPE])))
    }
}
