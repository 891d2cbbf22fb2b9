//! PetSage's identity platform: the service is an OAuth 2.0 resource server.
//! It verifies bearer access tokens (JWTs, RFC 9068) issued by an OpenID
//! provider, with the keys of the provider's JWKS, and enforces the scopes a
//! route requires. It stores no password.

pub mod dev;
mod identity;
mod keys;
mod metrics;
mod openapi;
mod principal;
mod require;
mod settings;
pub mod testing;
mod verify;

pub use identity::{Identity, REFETCH_INTERVAL};
pub use keys::KeySet;
pub use metrics::Failure;
pub use openapi::OPENID_SCHEME;
pub use principal::Principal;
pub use require::{BEARER_SCHEME, Scopes};
pub use settings::{AuthMode, IdentitySettings, ScopeClaim};
pub use verify::{Invalid, MAX_TOKEN_BYTES, Verified, Verifier};
