//! [`Verifier`]: whether an access token is one this service accepts, and
//! who it names. Pure: the key set and the clock are given.

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::keys::KeySet;
use crate::{IdentitySettings, Principal, ScopeClaim};

/// The longest token read: larger ones are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token was refused: a bounded set, so it can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// Over [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three base64url parts of JSON, a claim of the wrong type, or a
    /// header whose `crit` names an extension we do not understand.
    Malformed,
    /// `alg` not accepted, or not the one its key is for.
    Algorithm,
    /// No `kid`, or one the key set does not hold.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iss` is not the configured issuer.
    Issuer,
    /// `aud` holds no accepted audience.
    Audience,
    /// A required claim (`exp`, `iss`, `aud`, `sub`) is missing.
    Claims,
}

impl Invalid {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Claims => "claims",
        }
    }

    /// The short, generic `error_description` a client gets: never the token.
    pub fn description(self) -> &'static str {
        match self {
            Self::TooLarge => "the token is too large",
            Self::Malformed => "the token is malformed",
            Self::Algorithm => "the token's algorithm is not accepted",
            Self::UnknownKey => "the token is signed by an unknown key",
            Self::Signature => "the token's signature does not verify",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::Issuer => "the token is from another issuer",
            Self::Audience => "the token is not meant for this service",
            Self::Claims => "the token lacks a required claim",
        }
    }
}

/// A verified token: who it names, and until when it holds (`exp`, seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The caller.
    pub principal: Principal,
    /// The token's `exp`.
    pub expires_at: u64,
}

/// The claims PetSage reads; `jsonwebtoken` checks `exp`, `nbf`, `iss` and
/// `aud`, and that `exp`, `iss`, `aud` and `sub` are there (so a missing one
/// is reported as missing, not as a parse error).
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

/// Checks access tokens against the settings' issuer, audiences, algorithms and skew.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    skew_seconds: u64,
    scope_claim: ScopeClaim,
}

impl Verifier {
    /// A verifier for tokens from `issuer`, as `settings` say.
    pub fn new(issuer: &str, settings: &IdentitySettings) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audiences: settings.auth_audiences.clone(),
            algorithms: settings.auth_algorithms.clone(),
            skew_seconds: settings.auth_clock_skew.as_secs(),
            scope_claim: settings.auth_scope_claim,
        }
    }

    /// The `kid` a token names, if its header can be read: to tell an unknown
    /// key (worth a key-set refetch) from any other refusal.
    pub fn key_id(token: &str) -> Option<String> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        jsonwebtoken::decode_header(token).ok()?.kid
    }

    /// Verifies `token` with `keys`: every check passes, or the first failure says why.
    pub fn verify(&self, token: &str, keys: &KeySet) -> Result<Verified, Invalid> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Invalid::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Invalid::Malformed)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(Invalid::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| keys.keys.get(kid))
            .ok_or(Invalid::UnknownKey)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(Invalid::Algorithm);
        }
        // `jku`, `x5u` and an embedded `jwk` are never fetched nor used: the
        // key comes from our key set, by `kid`, and nowhere else.
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.skew_seconds;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|err| invalid(err.kind()))?;
        let claims = data.claims;
        let scopes = match self.scope_claim {
            ScopeClaim::Scope => claims
                .scope
                .map(|scope| {
                    scope
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ScopeClaim::Scp => claims.scp.unwrap_or_default(),
        };
        Ok(Verified {
            principal: Principal {
                issuer: claims.iss.into(),
                subject: claims.sub.into(),
                client_id: claims.client_id.map(Into::into),
                scopes: dedup(scopes).into(),
            },
            expires_at: claims.exp,
        })
    }
}

fn dedup(scopes: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    scopes
        .into_iter()
        .filter(|scope| seen.insert(scope.clone()))
        .collect()
}

fn invalid(kind: &ErrorKind) -> Invalid {
    match kind {
        ErrorKind::ExpiredSignature => Invalid::Expired,
        ErrorKind::ImmatureSignature => Invalid::NotYetValid,
        ErrorKind::InvalidIssuer => Invalid::Issuer,
        ErrorKind::InvalidAudience => Invalid::Audience,
        ErrorKind::InvalidSignature => Invalid::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Invalid::Algorithm,
        ErrorKind::MissingRequiredClaim(_) => Invalid::Claims,
        _ => Invalid::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{self, AUDIENCE, EC_KID, ISSUER, RSA_KID};

    fn verifier() -> Verifier {
        let settings = IdentitySettings {
            auth_audiences: vec![AUDIENCE.to_owned(), "other-api".to_owned()],
            ..IdentitySettings::default()
        };
        Verifier::new(ISSUER, &settings)
    }

    fn check(token: &str) -> Result<Verified, Invalid> {
        verifier().verify(token, &testing::key_set())
    }

    fn b64(json: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    }

    /// A token from hand-made parts, with a junk signature.
    fn forged(header: &Value, claims: &Value) -> String {
        format!("{}.{}.c2lnbmF0dXJl", b64(header), b64(claims))
    }

    fn with(claims: impl FnOnce(&mut Value)) -> String {
        let mut value = testing::claims("alice", &["notes:read"]);
        claims(&mut value);
        testing::sign(Algorithm::RS256, RSA_KID, &value)
    }

    #[test]
    fn a_valid_token_names_its_caller_and_scopes() {
        for (algorithm, kid) in [(Algorithm::RS256, RSA_KID), (Algorithm::ES256, EC_KID)] {
            let claims = testing::claims("alice", &["notes:read", "notes:write", "notes:read"]);
            let verified = check(&testing::sign(algorithm, kid, &claims)).expect("accepted");
            assert_eq!(
                verified.principal,
                Principal {
                    issuer: ISSUER.into(),
                    subject: "alice".into(),
                    client_id: Some("alice".into()),
                    scopes: vec!["notes:read".to_owned(), "notes:write".to_owned()].into(),
                }
            );
            assert!(verified.expires_at > testing::now());
        }
        // Any accepted audience, in a list.
        let token = with(|c| c["aud"] = json!(["someone-else", "other-api"]));
        assert!(check(&token).is_ok());
    }

    #[test]
    fn scopes_come_from_the_configured_claim() {
        let settings = IdentitySettings {
            auth_audiences: vec![AUDIENCE.to_owned()],
            auth_scope_claim: ScopeClaim::Scp,
            ..IdentitySettings::default()
        };
        let token = with(|c| c["scp"] = json!(["pets:read", "pets:write"]));
        let verified = Verifier::new(ISSUER, &settings)
            .verify(&token, &testing::key_set())
            .expect("accepted");
        assert_eq!(*verified.principal.scopes, ["pets:read", "pets:write"]);
    }

    #[test]
    fn the_hostile_corpus_is_refused_each_for_its_reason() {
        let claims = testing::claims("mallory", &["notes:read"]);
        let hs256 = |secret: &[u8]| {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(RSA_KID.to_owned());
            jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_secret(secret).expect("a key"),
            )
            .expect("signs")
        };
        let valid = testing::token("mallory", &["notes:read"]);
        let (_, rest) = valid.split_once('.').expect("three parts");
        let rsa_header = |extra: Value| {
            let mut header = json!({"alg": "RS256", "typ": "at+jwt", "kid": RSA_KID});
            for (k, v) in extra.as_object().expect("object") {
                header[k] = v.clone();
            }
            header
        };
        let resigned_header = |extra: Value| {
            // The payload and signature of a valid token under another header:
            // the signature covers the header, so it cannot verify.
            format!("{}.{}", b64(&rsa_header(extra)), rest)
        };
        let cases: Vec<(&str, String, Invalid)> = vec![
            (
                "alg none",
                format!(
                    "{}.{}.",
                    b64(&json!({"alg": "none", "kid": RSA_KID})),
                    b64(&claims)
                ),
                Invalid::Malformed,
            ),
            (
                "HS256 with the RSA public key as secret",
                hs256(testing::RSA_PUBLIC_PEM.as_bytes()),
                Invalid::Algorithm,
            ),
            (
                "alg not the key's",
                testing::sign(Algorithm::ES256, RSA_KID, &claims),
                Invalid::Algorithm,
            ),
            (
                "RS384 not accepted",
                forged(&json!({"alg": "RS384", "kid": RSA_KID}), &claims),
                Invalid::Algorithm,
            ),
            (
                "embedded jwk",
                resigned_header(json!({"jwk": {"kty": "oct", "k": "c2VjcmV0"}})),
                Invalid::Signature,
            ),
            (
                "jku",
                resigned_header(json!({"jku": "http://127.0.0.1:1/jwks"})),
                Invalid::Signature,
            ),
            (
                "x5u",
                resigned_header(json!({"x5u": "http://127.0.0.1:1/cert"})),
                Invalid::Signature,
            ),
            (
                "unknown crit",
                resigned_header(json!({"crit": ["exp-ext"], "exp-ext": 1})),
                Invalid::Malformed,
            ),
            (
                "unknown kid",
                testing::sign(Algorithm::RS256, "rotated-away", &claims),
                Invalid::UnknownKey,
            ),
            (
                "no kid",
                forged(&json!({"alg": "RS256"}), &claims),
                Invalid::UnknownKey,
            ),
            (
                "bad signature",
                forged(&rsa_header(json!({})), &claims),
                Invalid::Signature,
            ),
            (
                "expired",
                with(|c| c["exp"] = json!(testing::now() - 120)),
                Invalid::Expired,
            ),
            (
                "exp missing",
                with(|c| {
                    c.as_object_mut().expect("object").remove("exp");
                }),
                Invalid::Claims,
            ),
            (
                "exp a string",
                with(|c| c["exp"] = json!((testing::now() + 3600).to_string())),
                Invalid::Malformed,
            ),
            (
                "nbf in the future",
                with(|c| c["nbf"] = json!(testing::now() + 120)),
                Invalid::NotYetValid,
            ),
            (
                "wrong iss",
                with(|c| c["iss"] = json!("https://evil.invalid")),
                Invalid::Issuer,
            ),
            (
                "iss a prefix",
                with(|c| c["iss"] = json!(format!("{ISSUER}/"))),
                Invalid::Issuer,
            ),
            (
                "wrong aud",
                with(|c| c["aud"] = json!("another-service")),
                Invalid::Audience,
            ),
            (
                "aud missing",
                with(|c| {
                    c.as_object_mut().expect("object").remove("aud");
                }),
                Invalid::Claims,
            ),
            (
                "an ID token: aud is the client",
                with(|c| c["aud"] = json!("mallory")),
                Invalid::Audience,
            ),
            (
                "sub missing",
                with(|c| {
                    c.as_object_mut().expect("object").remove("sub");
                }),
                Invalid::Claims,
            ),
            (
                "9 KiB",
                with(|c| c["pad"] = json!("x".repeat(9 * 1024))),
                Invalid::TooLarge,
            ),
            ("not a JWT", "not-a-token".to_owned(), Invalid::Malformed),
        ];
        for (name, token, reason) in cases {
            assert_eq!(check(&token).map(|v| v.principal), Err(reason), "{name}");
        }
    }

    #[test]
    fn the_skew_is_allowed_both_ways() {
        assert!(check(&with(|c| c["exp"] = json!(testing::now() - 30))).is_ok());
        assert!(check(&with(|c| c["nbf"] = json!(testing::now() + 30))).is_ok());
    }
}
