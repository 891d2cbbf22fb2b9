//! Tokens for tests, signed by a fixed test issuer, so a feature's own tests
//! can call its routes as a given caller with given scopes, no provider
//! running. The keys here are public test keys: never trust them anywhere else.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use petsage_core::Context;

use crate::{Identity, IdentitySettings, KeySet};

/// The test issuer's URL.
pub const ISSUER: &str = "https://issuer.petsage.invalid";
/// The audience test tokens are for.
pub const AUDIENCE: &str = "petsage-test";
/// The `kid` of the test RSA key (RS256).
pub const RSA_KID: &str = "test-rsa";
/// The `kid` of the test P-256 key (ES256).
pub const EC_KID: &str = "test-ec";

/// The test RSA key, PKCS#8 PEM.
pub const RSA_PRIVATE_PEM: &str = include_str!("testing/rsa.pem");
/// The test RSA key's public half, SPKI PEM.
pub const RSA_PUBLIC_PEM: &str = include_str!("testing/rsa.pub.pem");
/// The test P-256 key, PKCS#8 PEM.
pub const EC_PRIVATE_PEM: &str = include_str!("testing/ec.pem");
/// The test issuer's JWKS: both keys' public halves.
pub const JWKS: &str = include_str!("testing/jwks.json");

/// The test issuer's key set.
pub fn key_set() -> KeySet {
    KeySet::from_jwks(JWKS.as_bytes(), SystemTime::now())
        .unwrap_or_else(|err| panic!("the test JWKS: {err}"))
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The claims of a valid access token for `subject` with `scopes`, for an hour.
pub fn claims(subject: &str, scopes: &[&str]) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "client_id": subject,
        "scope": scopes.join(" "),
        "iat": now(),
        "exp": now() + 3600,
    })
}

/// A valid RS256 access token for `subject` with `scopes`.
pub fn token(subject: &str, scopes: &[&str]) -> String {
    sign(Algorithm::RS256, RSA_KID, &claims(subject, scopes))
}

/// `claims` signed with the test key for `algorithm` (RS256 or ES256) under `kid`.
pub fn sign(algorithm: Algorithm, kid: &str, claims: &Value) -> String {
    let key = match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()),
        _ => EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()),
    }
    .unwrap_or_else(|err| panic!("the test key: {err}"));
    let mut header = Header::new(algorithm);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_else(|err| panic!("signs: {err}"))
}

/// Puts in `ctx` an identity that accepts the test issuer's tokens (made by
/// [`token`]), its keys already in use, so a feature's own tests call its
/// protected routes with no provider running.
pub fn trust_test_issuer(ctx: &mut Context) -> Identity {
    let settings = IdentitySettings {
        auth_issuer: Some(ISSUER.to_owned()),
        auth_audiences: vec![AUDIENCE.to_owned()],
        ..IdentitySettings::default()
    };
    let identity =
        Identity::new(&settings).unwrap_or_else(|err| panic!("the test issuer's settings: {err}"));
    identity.set_keys(key_set());
    ctx.insert(settings);
    ctx.insert(identity.clone());
    identity
}

/// The `Authorization` header of a valid test token for `subject` with `scopes`.
pub fn bearer(subject: &str, scopes: &[&str]) -> (&'static str, String) {
    (
        "authorization",
        format!("Bearer {}", token(subject, scopes)),
    )
}
