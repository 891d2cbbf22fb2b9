//! The cost of a first, uncached token verification: what a request pays
//! when its token is not yet in the cache. Each of many distinct tokens is
//! verified once with the platform's verifier (signature, then claims), on
//! this process's core, for ES256 and RS256.

use std::time::Instant;

use jsonwebtoken::Algorithm;
use petsage_identity::{IdentitySettings, Verifier, testing};

use crate::stats::median;

/// Tokens verified per algorithm, in batches whose medians are reported.
const TOKENS: usize = 2_000;
const BATCH: usize = 100;

/// Microseconds per uncached verification, by algorithm.
#[derive(serde::Serialize)]
pub(crate) struct VerifyCost {
    pub(crate) es256_us: f64,
    pub(crate) rs256_us: f64,
}

/// Verifies [`TOKENS`] distinct tokens of each algorithm.
pub(crate) fn measure() -> Result<VerifyCost, String> {
    let settings = IdentitySettings {
        auth_issuer: Some(testing::ISSUER.to_owned()),
        auth_audiences: vec![testing::AUDIENCE.to_owned()],
        ..IdentitySettings::default()
    };
    let verifier = Verifier::new(testing::ISSUER, &settings);
    let keys = testing::key_set();
    let per_alg = |algorithm, kid| -> Result<f64, String> {
        let tokens: Vec<String> = (0..TOKENS)
            .map(|n| {
                let subject = format!("caller-{n}");
                testing::sign(algorithm, kid, &testing::claims(&subject, &["notes:read"]))
            })
            .collect();
        let mut batches = Vec::new();
        for batch in tokens.chunks(BATCH) {
            let started = Instant::now();
            for token in batch {
                verifier
                    .verify(token, &keys)
                    .map_err(|e| format!("{algorithm:?}: {}", e.description()))?;
            }
            batches.push(started.elapsed().as_secs_f64() * 1e6 / batch.len() as f64);
        }
        Ok(median(&mut batches))
    };
    Ok(VerifyCost {
        es256_us: per_alg(Algorithm::ES256, testing::EC_KID)?,
        rs256_us: per_alg(Algorithm::RS256, testing::RSA_KID)?,
    })
}
