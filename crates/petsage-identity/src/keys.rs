//! The provider's signing keys: a JWKS, read into [`KeySet`], each key with
//! the algorithms it can verify.

use std::collections::HashMap;
use std::time::SystemTime;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// One verification key and what it may verify.
pub(crate) struct Key {
    pub(crate) decoding: DecodingKey,
    /// The algorithms this key's type (and its `alg`, when the JWK names one) allows.
    pub(crate) algorithms: Vec<Algorithm>,
}

/// The keys of one fetch of the provider's JWKS, by `kid`.
pub struct KeySet {
    pub(crate) keys: HashMap<String, Key>,
    /// When the set was fetched.
    pub fetched_at: SystemTime,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

impl KeySet {
    /// The signing keys of a JWKS document. Keys without a `kid`, for
    /// encryption, symmetric, or of an unsupported type are left out: a token
    /// must name its key, and a resource server holds no shared secret.
    pub fn from_jwks(json: &[u8], fetched_at: SystemTime) -> Result<Self, String> {
        let set: JwkSet =
            serde_json::from_slice(json).map_err(|err| format!("not a JWKS document: {err}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|usage| *usage != jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                continue;
            }
            let mut algorithms = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => vec![
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                ],
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => vec![Algorithm::ES256],
                    EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => continue,
                },
                AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
                _ => continue,
            };
            if let Some(named) = jwk.common.key_algorithm {
                // A key for encryption (RSA-OAEP, …) verifies nothing.
                let Some(named) = algorithm_of(named) else {
                    continue;
                };
                algorithms.retain(|algorithm| *algorithm == named);
            }
            let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.insert(
                kid.clone(),
                Key {
                    decoding,
                    algorithms,
                },
            );
        }
        if keys.is_empty() {
            return Err("the JWKS holds no signing key with a kid".to_owned());
        }
        Ok(Self { keys, fetched_at })
    }

    /// Whether the set holds a key named `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none (never true of a set made by [`KeySet::from_jwks`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The signature algorithm a JWK's `alg` names, if it is one.
fn algorithm_of(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}
