//! Dev mode (`PETSAGE_AUTH_MODE=dev`): this instance is its own token
//! issuer, so someone can run and try a protected feature on one machine
//! with no OpenID provider. The signing key is an ES256 (P-256) key kept in
//! the data folder, readable by its owner only; `petsage-app dev-token`
//! signs tokens with it, and the app serves the matching discovery document
//! and JWKS. Dev mode serves on loopback addresses only.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::HttpRequest;
use actix_web::web::Json;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::Generate as _;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use petsage_core::{Route, Routes};
use serde_json::{Value, json};

use crate::KeySet;

/// The issuer (`iss`) of dev tokens: a name, not a server, because a dev
/// token must verify whatever port the instance listens on.
pub const DEV_ISSUER: &str = "urn:petsage:dev";

/// The audience of dev tokens when `PETSAGE_AUTH_AUDIENCES` names none.
pub const DEV_AUDIENCE: &str = "petsage";

/// The key file's name inside the data folder.
pub const DEV_KEY_FILE: &str = "dev-issuer-key.pem";

/// Where dev mode's discovery document is served.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Where dev mode's key set is served.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The dev issuer: its signing key and the public key set that verifies it.
pub struct DevIssuer {
    key: EncodingKey,
    jwk: Jwk,
    path: PathBuf,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("kid", &self.kid())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// The dev issuer whose key is in `data_dir`, made (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join(DEV_KEY_FILE);
        let pem = match fs::read(&path) {
            Ok(pem) => pem,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => create_key(&path)?,
            Err(err) => return Err(format!("cannot read the dev key {}: {err}", path.display())),
        };
        let key = EncodingKey::from_ec_pem(&pem).map_err(|err| {
            format!(
                "the dev key {} is not a P-256 PKCS#8 PEM key ({err}); delete it to make a new one",
                path.display()
            )
        })?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .map_err(|err| format!("the dev key {}: {err}", path.display()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|err| format!("the dev key {}: {err}", path.display()))?;
        jwk.common.key_id = Some(kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self { key, jwk, path })
    }

    /// The key's id (`kid`): its RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    /// Where the key is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key set that verifies dev tokens.
    pub fn jwks(&self) -> Value {
        serde_json::to_value(JwkSet {
            keys: vec![self.jwk.clone()],
        })
        .unwrap_or_default()
    }

    /// The key set, as the verifier uses it.
    pub fn key_set(&self) -> KeySet {
        let json = self.jwks().to_string();
        KeySet::from_jwks(json.as_bytes(), SystemTime::now())
            .unwrap_or_else(|err| unreachable!("our own JWKS reads back: {err}"))
    }

    /// The discovery document, with the key set served at `origin`.
    pub fn discovery(&self, origin: &str) -> Value {
        json!({
            "issuer": DEV_ISSUER,
            "jwks_uri": format!("{origin}{JWKS_PATH}"),
            "response_types_supported": [],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": [],
        })
    }

    /// An access token (RFC 9068) for `subject` with `scopes`, for `audience`, valid for `ttl`.
    pub fn token(
        &self,
        subject: &str,
        scopes: &[String],
        audience: &str,
        ttl: Duration,
    ) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = json!({
            "iss": DEV_ISSUER,
            "aud": audience,
            "sub": subject,
            "client_id": "petsage-dev-token",
            "scope": scopes.join(" "),
            "iat": now,
            "nbf": now,
            "exp": now + ttl.as_secs(),
            "jti": uuid::Uuid::now_v7().to_string(),
        });
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|err| format!("cannot sign the token: {err}"))
    }
}

/// The discovery document and the key set, served by a dev-mode instance at the root.
pub fn routes(issuer: &Arc<DevIssuer>) -> Routes {
    let for_discovery = Arc::clone(issuer);
    let discovery = move |req: HttpRequest| {
        let info = req.connection_info();
        let origin = format!("{}://{}", info.scheme(), info.host());
        let document = for_discovery.discovery(&origin);
        async move { Json(document) }
    };
    let jwks = issuer.jwks();
    let serve_jwks = move || {
        let jwks = jwks.clone();
        async move { Json(jwks) }
    };
    Routes::new()
        .route(Route::undocumented(DISCOVERY_PATH, discovery))
        .route(Route::undocumented(JWKS_PATH, serve_jwks))
}

/// Makes a new P-256 key at `path`, readable by its owner only; its PEM.
fn create_key(path: &Path) -> Result<Vec<u8>, String> {
    let secret = p256::SecretKey::try_generate()
        .map_err(|err| format!("cannot make a dev key: no system randomness: {err}"))?;
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|err| format!("cannot encode the dev key: {err}"))?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .map_err(|err| format!("cannot make the data folder {}: {err}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(pem.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|err| format!("cannot write the dev key {}: {err}", path.display()))?;
            log::info!("identity: made a dev signing key at {}", path.display());
            Ok(pem.as_bytes().to_vec())
        }
        // Another process made it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => fs::read(path)
            .map_err(|err| format!("cannot read the dev key {}: {err}", path.display())),
        Err(err) => Err(format!(
            "cannot write the dev key {}: {err}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_owner_only_and_its_tokens_verify() {
        let dir = std::env::temp_dir().join(format!("petsage-dev-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let made = DevIssuer::load_or_create(&dir).expect("makes a key");
        let again = DevIssuer::load_or_create(&dir).expect("loads it");
        assert_eq!(made.kid(), again.kid(), "the same key the second time");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(made.path())
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let keys = again.key_set();
        assert_eq!(keys.len(), 1);
        let token = made
            .token(
                "alice",
                &["notes:read".to_owned()],
                DEV_AUDIENCE,
                Duration::from_secs(60),
            )
            .expect("signs");
        let header = jsonwebtoken::decode_header(&token).expect("a JWT");
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(made.kid()));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_key_file_is_named() {
        let dir = std::env::temp_dir().join(format!("petsage-dev-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join(DEV_KEY_FILE), "not a key").expect("write");
        let err = DevIssuer::load_or_create(&dir).expect_err("refused");
        assert!(
            err.contains(DEV_KEY_FILE) && err.contains("delete it"),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
