//! The identity settings: flags with environment fallbacks, under the
//! `Identity` heading of `--help`.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use petsage_core::settings::parse_duration;

/// Which OpenID provider's access tokens to accept, and how.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Identity")]
pub struct IdentitySettings {
    /// Where keys come from: `provider` (an OpenID provider's JWKS) or `dev` (this instance signs its own tokens; loopback only).
    #[arg(long, env = "PETSAGE_AUTH_MODE", value_name = "provider|dev", default_value = "provider", value_parser = parse_mode)]
    pub auth_mode: AuthMode,

    /// The OpenID provider's issuer URL; its /.well-known/openid-configuration names the key set.
    #[arg(long, env = "PETSAGE_AUTH_ISSUER", value_name = "URL", value_parser = parse_url)]
    pub auth_issuer: Option<String>,

    /// The key set's URL, instead of the one the issuer's discovery document names.
    #[arg(long, env = "PETSAGE_AUTH_JWKS_URL", value_name = "URL", value_parser = parse_url)]
    pub auth_jwks_url: Option<String>,

    /// Accepted audiences, comma-separated; a token's `aud` must hold one. Required with an issuer.
    #[arg(
        long,
        env = "PETSAGE_AUTH_AUDIENCES",
        value_name = "AUDIENCE,…",
        value_delimiter = ','
    )]
    pub auth_audiences: Vec<String>,

    /// Accepted signature algorithms, comma-separated: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA.
    #[arg(long, env = "PETSAGE_AUTH_ALGORITHMS", value_name = "ALG,…", value_delimiter = ',', default_value = "RS256,ES256", value_parser = parse_algorithm)]
    pub auth_algorithms: Vec<Algorithm>,

    /// How far `exp` and `nbf` may be off this instance's clock.
    #[arg(long, env = "PETSAGE_AUTH_CLOCK_SKEW", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub auth_clock_skew: Duration,

    /// The claim that holds the token's scopes: `scope` (a space-separated string) or `scp` (an array).
    #[arg(long, env = "PETSAGE_AUTH_SCOPE_CLAIM", value_name = "scope|scp", default_value = "scope", value_parser = parse_scope_claim)]
    pub auth_scope_claim: ScopeClaim,

    /// How often the key set is fetched again.
    #[arg(long, env = "PETSAGE_AUTH_JWKS_REFRESH", value_name = "DURATION", default_value = "10m", value_parser = parse_refresh)]
    pub auth_jwks_refresh: Duration,

    /// The data folder, where dev mode keeps its signing key; the app sets it from `--data-dir`.
    #[arg(skip)]
    pub data_dir: PathBuf,

    /// Set by the app for a command that serves nothing (`openapi`,
    /// `migrate`): routes are documented, no issuer is needed and no key is fetched.
    #[arg(skip)]
    pub documents_only: bool,
}

/// Where the keys that verify tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// An OpenID provider's key set, fetched from its issuer.
    Provider,
    /// This instance's own dev key, kept in the data folder; for one machine only.
    Dev,
}

fn parse_mode(value: &str) -> Result<AuthMode, String> {
    match value {
        "provider" => Ok(AuthMode::Provider),
        "dev" => Ok(AuthMode::Dev),
        _ => Err("expected provider or dev".to_owned()),
    }
}

impl Default for IdentitySettings {
    /// The flags' own defaults, with no flag and no environment variable set.
    fn default() -> Self {
        petsage_core::settings::defaults()
    }
}

/// Where a token keeps its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeClaim {
    /// `scope`: one string, scopes separated by spaces (RFC 8693, RFC 9068).
    Scope,
    /// `scp`: an array of strings (Entra ID, Okta).
    Scp,
}

impl ScopeClaim {
    /// The claim's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scope => "scope",
            Self::Scp => "scp",
        }
    }
}

fn parse_scope_claim(value: &str) -> Result<ScopeClaim, String> {
    match value {
        "scope" => Ok(ScopeClaim::Scope),
        "scp" => Ok(ScopeClaim::Scp),
        _ => Err("expected scope or scp".to_owned()),
    }
}

fn parse_url(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !value.contains(char::is_whitespace) => {
            Ok(value.to_owned())
        }
        _ => Err("expected an http:// or https:// URL".to_owned()),
    }
}

/// An asymmetric algorithm we verify; `none` and the HMAC family are refused:
/// a resource server holds no shared secret, and HS256 with a public key as
/// the secret is the classic forgery.
fn parse_algorithm(value: &str) -> Result<Algorithm, String> {
    const EXPECTED: &str = "expected asymmetric algorithms such as RS256,ES256 (none and HS256/HS384/HS512 are refused)";
    match value.trim().parse::<Algorithm>() {
        Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => {
            Err(EXPECTED.to_owned())
        }
        Ok(algorithm) => Ok(algorithm),
    }
}

fn parse_refresh(value: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 10m, 600s or 600 (seconds), above zero";
    match parse_duration(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(EXPECTED.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults() {
        let settings = IdentitySettings::default();
        assert_eq!(settings.auth_issuer, None);
        assert_eq!(settings.auth_mode, AuthMode::Provider);
        assert_eq!(
            settings.auth_algorithms,
            [Algorithm::RS256, Algorithm::ES256]
        );
        assert_eq!(settings.auth_clock_skew, Duration::from_secs(60));
        assert_eq!(settings.auth_scope_claim, ScopeClaim::Scope);
        assert_eq!(settings.auth_jwks_refresh, Duration::from_secs(600));
    }

    #[test]
    fn none_and_symmetric_algorithms_are_refused() {
        for bad in ["none", "HS256", "HS384", "HS512", "rs256", ""] {
            assert!(parse_algorithm(bad).is_err(), "{bad:?}");
        }
        for good in ["RS256", "ES256", "PS256", "EdDSA"] {
            assert!(parse_algorithm(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn urls_and_refresh_intervals_are_checked() {
        assert!(parse_url("https://id.example.com/realms/pets").is_ok());
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("https://").is_err());
        assert_eq!(parse_refresh("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_refresh("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_refresh("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_refresh("0s").is_err());
    }
}
