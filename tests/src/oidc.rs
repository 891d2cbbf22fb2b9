//! A real OpenID provider for the tests: panva's `oidc-provider` (installed by
//! `cargo xtask ci` into `target/oidc`) run by `tests/oidc/provider.cjs` on
//! `127.0.0.1`, issuing RFC 9068 JWT access tokens to the confidential
//! clients `alice` and `bob` by the client credentials grant.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::{KillOnDrop, free_port, spawn_listening};

/// How long the provider may take to listen (Node loading oidc-provider, RSA key generation).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The audience of the tokens [`Provider::token`] gets.
pub const AUDIENCE: &str = "notes";

/// The resource indicator (RFC 8707) for [`AUDIENCE`]: oidc-provider takes only absolute URIs.
pub const RESOURCE: &str = "urn:petsage:notes";

/// The scopes the provider's clients may ask for.
pub const SCOPES: &str = "notes:read notes:write pets:read";

/// How the provider signs access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl Alg {
    /// The JOSE name (`RS256`, `ES256`).
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// A running oidc-provider, ended by its PID when dropped.
pub struct Provider {
    dir: PathBuf,
    alg: Alg,
    port: u16,
    /// Which key file is in use: `jwks-N.json`, N counting restarts with new keys.
    generation: u32,
    process: Option<KillOnDrop>,
    agent: ureq::Agent,
}

impl Provider {
    /// Starts the provider on a free port, signing with `alg`, its key file in `dir`.
    pub fn start(dir: &Path, alg: Alg) -> Provider {
        let mut provider = Provider {
            dir: dir.to_path_buf(),
            alg,
            port: free_port(),
            generation: 0,
            process: None,
            agent: crate::agent(Duration::from_secs(10)),
        };
        provider.spawn();
        provider
    }

    fn spawn(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc/provider.cjs");
        let mut command = Command::new("node");
        command
            .arg(script)
            .arg(self.port.to_string())
            .env("NODE_PATH", node_modules())
            .env("OIDC_JWKS_FILE", self.jwks_file())
            .env("OIDC_ALG", self.alg.name())
            .env("OIDC_AUDIENCE", AUDIENCE)
            .current_dir(&self.dir);
        self.process = Some(spawn_listening(
            &mut command,
            self.port,
            "oidc-provider",
            "cargo xtask ci installs node and oidc-provider",
            START_TIMEOUT,
        ));
    }

    /// The private key set the provider signs with (created by it when missing).
    pub fn jwks_file(&self) -> PathBuf {
        self.dir.join(format!("jwks-{}.json", self.generation))
    }

    /// `http://127.0.0.1:PORT`, the `iss` of its tokens (the same across restarts).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An access token for `client` with `scope`, for [`AUDIENCE`].
    pub fn token(&self, client: &str, secret: &str, scope: &str) -> String {
        self.token_for(client, secret, scope, RESOURCE)
    }

    /// An access token for `client` with `scope` for resource indicator
    /// `resource` (`urn:petsage:NAME` gives `aud` NAME): for tokens meant for another API.
    pub fn token_for(&self, client: &str, secret: &str, scope: &str, resource: &str) -> String {
        let reply = self.token_reply(client, secret, scope, resource);
        assert_eq!(reply.status, crate::StatusCode::OK, "{}", reply.body);
        reply.json()["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {}", reply.body))
            .to_owned()
    }

    /// The token endpoint's whole reply, errors included.
    pub fn token_reply(
        &self,
        client: &str,
        secret: &str,
        scope: &str,
        resource: &str,
    ) -> crate::Reply {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"));
        let form = format!(
            "grant_type=client_credentials&scope={}&resource={}",
            form_encode(scope),
            form_encode(resource)
        );
        let request = ureq::http::Request::post(format!("{}/token", self.issuer()))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .expect("valid request");
        self.exchange(request)
    }

    /// An ID token for `client` (`typ: JWT`, `aud` = client id) signed with
    /// the provider's RS256 key: not an access token.
    pub fn id_token(&self, client: &str) -> String {
        let reply = self.get(&format!("/test/id-token?client_id={}", form_encode(client)));
        assert_eq!(reply.status, crate::StatusCode::OK, "{}", reply.body);
        reply.body
    }

    /// `GET path` on the provider.
    pub fn get(&self, path: &str) -> crate::Reply {
        let request = ureq::http::Request::get(format!("{}{path}", self.issuer()))
            .body(())
            .expect("valid request");
        self.exchange(request)
    }

    fn exchange<B: ureq::AsSendBody>(&self, request: ureq::http::Request<B>) -> crate::Reply {
        let uri = request.uri().clone();
        let mut res = self
            .agent
            .run(request)
            .unwrap_or_else(|err| panic!("{uri}: {err}"));
        let body = res.body_mut().read_to_vec().expect("body reads");
        crate::Reply {
            status: res.status(),
            headers: res.headers().clone(),
            size: body.len(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The `jwks_uri` its discovery document names.
    pub fn jwks_uri(&self) -> String {
        let discovery = self.get("/.well-known/openid-configuration").json();
        discovery["jwks_uri"]
            .as_str()
            .unwrap_or_else(|| panic!("no jwks_uri: {discovery}"))
            .to_owned()
    }

    /// The public key set at its `jwks_uri` (one more JWKS fetch).
    pub fn jwks(&self) -> serde_json::Value {
        let request = ureq::http::Request::get(self.jwks_uri())
            .body(())
            .expect("valid request");
        let reply = self.exchange(request);
        assert_eq!(reply.status, crate::StatusCode::OK, "{}", reply.body);
        reply.json()
    }

    /// How many times its JWKS has been fetched (`GET /jwks`) since it started.
    pub fn jwks_fetches(&self) -> u64 {
        let reply = self.get("/test/jwks-fetches");
        assert_eq!(reply.status, crate::StatusCode::OK, "{}", reply.body);
        reply
            .body
            .trim()
            .parse()
            .unwrap_or_else(|err| panic!("jwks-fetches is not a number ({err}): {}", reply.body))
    }

    /// Stops it and starts it again on the same port (same issuer) with a new
    /// key file: keys rotated, the old ones gone, the fetch count back to 0.
    pub fn restart_with_new_keys(&mut self) {
        self.stop();
        self.generation += 1;
        self.spawn();
    }

    /// Ends the process (by its PID) and waits for it; the issuer stops answering.
    pub fn stop(&mut self) {
        drop(self.process.take());
    }
}

/// `target/oidc/node_modules`, where `cargo xtask ci` installs oidc-provider:
/// found from the test binary (`target/debug/deps/…`) upwards.
fn node_modules() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.ancestors()
        .map(|dir| dir.join("oidc/node_modules"))
        .find(|dir| dir.join("oidc-provider").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no oidc/node_modules/oidc-provider above {} (cargo xtask ci installs it)",
                exe.display()
            )
        })
}

/// `s` as an `application/x-www-form-urlencoded` value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The header and payload of a compact JWS, decoded but NOT verified.
pub fn decode_unverified(token: &str) -> (serde_json::Value, serde_json::Value) {
    let part = |s: &str| -> serde_json::Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap_or_else(|err| panic!("not base64url ({err}): {s}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("not JSON ({err}): {s}"))
    };
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(_signature), None) => (part(header), part(payload)),
        _ => panic!("not a compact JWS: {token}"),
    }
}
